//! Deciding what one message does: who sent it (a technician needs a proof), which ticket it
//! threads to, whether the sender takes part in that ticket, and the plan. Reads the database,
//! writes nothing; the plan itself is made by the pure [`crate::tickets::plan`].

use rusqlite::Connection;

use crate::auth::{self, AddressKind};
use crate::desk::Desk;
use crate::domain::{EventKind, Proof, TicketType};
use crate::message::classify::suppress_auto_reply;
use crate::message::parse::Inbound;
use crate::store::StoreError;
use crate::store::write::{self, Lookup};
use crate::threading::{Thread, ThreadedBy, TicketLookup, thread};
use crate::tickets::{self, Plan, Policy, Role, Target};

/// What was decided about one message.
pub(super) struct Decision {
    pub(super) plan: Plan,
    pub(super) role: Role,
    /// For a new ticket: its priority (a routing rule's, else the first matching `[priority]`
    /// rule's, else its queue's default, else the desk's).
    pub(super) priority: Option<crate::domain::Priority>,
    /// For a new ticket: its queue and why.
    pub(super) queue: Option<(String, String)>,
    /// For a new ticket: who it is assigned to, why, and whether auto-assignment chose them.
    pub(super) assign: Option<Assignment>,
    /// For a new ticket: its type, when a routing rule gives one.
    pub(super) ticket_type: Option<crate::domain::TicketType>,
    /// For a new ticket: its service and why.
    pub(super) service: Option<(String, String)>,
    /// For a new ticket: the request template it follows.
    pub(super) template: Option<String>,
    /// For an existing ticket: its status before this message.
    pub(super) was: Option<crate::domain::TicketStatus>,
}

pub(super) struct Assignment {
    pub(super) to: String,
    pub(super) reason: String,
    pub(super) automatic: bool,
}

/// Decides what `msg` does. `reused_id`: the Message-ID it arrived with, when another message had
/// used it already (it is recorded under another id, and the ticket says so).
pub(super) fn decide(
    conn: &Connection,
    desk: &Desk<'_>,
    msg: &Inbound,
    visible: &str,
    reused_id: Option<&str>,
    now: i64,
) -> Result<Decision, StoreError> {
    let h = &desk.config.helpdesk;
    let desk_addresses = desk.addresses();
    let suppression = suppress_auto_reply(msg, &desk_addresses);
    let lookup = Lookup(conn);
    let sender = msg.from.as_ref().map(|f| f.address.as_str());
    let token = sender.and_then(|s| auth::verify_ticket_address(desk.reply_secret, &h.address, &msg.recipients, s));
    let mut threaded = thread(&msg.subject, &msg.in_reply_to, &msg.references, &h.tag, &lookup)?;
    if let (Thread::New { .. }, Some((t, _))) = (&threaded, token)
        && let Some(live) = lookup.live_ticket(t)?
    {
        threaded = Thread::Existing { ticket: live, by: ThreadedBy::ReplyAddress };
    }
    let state = match &threaded {
        Thread::Existing { ticket, .. } => write::ticket_state(conn, *ticket)?,
        Thread::New { .. } => None,
    };
    let role = role(desk, msg, token, state.as_ref().map(|t| t.id), &lookup)?;
    let participant = match (&threaded, &state) {
        (Thread::Existing { by: ThreadedBy::SubjectTag, .. }, Some(t)) => {
            is_participant(conn, msg, t, &role)? || replies_to_ticket(msg, t.id, &lookup)?
        }
        _ => true,
    };
    let config = desk.config;
    // The team told about the ticket: its queue's; a new ticket's from where it is routed (a
    // follow-up of a long-closed ticket is routed afresh).
    let (_, ticket_queue) = config.queue(state.as_ref().and_then(|t| t.queue.as_deref()));
    let route = state.as_ref().is_none_or(|t| t.status == crate::domain::TicketStatus::Closed).then(|| {
        let addresses: Vec<&[String]> = config.queues.iter().map(|q| q.addresses.as_slice()).collect();
        crate::routing::route(&addresses, &config.routing, msg, desk.home_queue)
    });
    // A new ticket's service; its queue when nothing else chose one.
    let service = route.as_ref().and_then(|r| {
        let matches: Vec<crate::routing::ServiceMatch<'_>> = config
            .services
            .iter()
            .map(|s| crate::routing::ServiceMatch { addresses: &s.addresses, keywords: s.keywords.as_ref() })
            .collect();
        crate::routing::service(&matches, r.service, msg)
    });
    let mut route = route;
    if let (Some(r), Some((i, why))) = (route.as_mut(), &service)
        && let (true, Some(q)) = (r.fallback, config.services[*i].queue)
    {
        r.queue = q;
        r.reason = format!("service {} ({why})", config.services[*i].name);
    }
    let new_queue = &config.queues[route.as_ref().map(|r| r.queue).unwrap_or(0)];
    let queue_names: Vec<String> = config.queues.iter().map(|q| q.name.clone()).collect();
    let service_names: Vec<String> = config.services.iter().map(|s| s.name.clone()).collect();
    let approval_services: Vec<String> =
        config.services.iter().filter(|s| s.approvals.is_some()).map(|s| s.name.clone()).collect();
    let template_names: Vec<String> = config.request_templates.iter().map(|t| t.name.clone()).collect();
    let policy = Policy {
        desk_addresses: &desk_addresses,
        technicians: &h.technicians,
        team: &ticket_queue.team,
        new_team: &new_queue.team,
        queues: &queue_names,
        timezone: &h.timezone,
        canned: desk.templates.canned(),
        macros: &config.macros,
        services: &service_names,
        approval_services: &approval_services,
        default_approvals: config.changes.is_some(),
        templates: &template_names,
        reopen_window_secs: h.reopen_window.as_secs() as i64,
        cc_watchers: h.cc_watchers,
        max_watchers_per_message: desk.config.limits.max_watchers_per_message,
        max_watchers_per_ticket: desk.config.limits.max_watchers_per_ticket,
    };
    // Merge targets are checked inside the plan; a failed lookup there fails the batch here.
    let lookup_error = std::cell::RefCell::new(None);
    let merge_allowed = |n: i64| -> Result<(), String> {
        match lookup.live_ticket(n) {
            Ok(live) if live == Some(n) => {}
            Ok(_) => return Err(format!("ticket {n} does not exist")),
            Err(e) => {
                lookup_error.borrow_mut().get_or_insert(e);
                return Err("the database could not be read".into());
            }
        }
        proves_ticket(desk, msg, &role, n).then_some(()).ok_or_else(|| {
            format!(
                "a merge acts on ticket {n} too: send this mail also (Cc) to your reply address for ticket {n} \
                 (the Reply-To of its notifications)"
            )
        })
    };
    let facts =
        tickets::Facts { msg, visible, thread: &threaded, role: &role, suppression: suppression.as_ref(), participant };
    // A problem to link to exists and is (or may become) a problem: not a change or a request.
    let problem_allowed = |n: i64| -> Result<(), String> {
        let found = match lookup.live_ticket(n) {
            Ok(Some(live)) if live == n => write::ticket_state(conn, n),
            Ok(Some(live)) => return Err(format!("ticket {n} was merged into {live}; link to {live}")),
            Ok(None) => return Err(format!("ticket {n} does not exist")),
            Err(e) => Err(e),
        };
        match found {
            Ok(Some(t)) => match t.itsm.ticket_type {
                None | Some(TicketType::Incident) | Some(TicketType::Problem) => Ok(()),
                Some(other) => Err(format!("ticket {n} is a {other}, not a problem")),
            },
            Ok(None) => Err(format!("ticket {n} does not exist")),
            Err(e) => {
                lookup_error.borrow_mut().get_or_insert(e);
                Err("the database could not be read".into())
            }
        }
    };
    let others = tickets::OtherTickets { merge: &merge_allowed, problem: &problem_allowed };
    let mut plan = tickets::plan(&policy, &facts, state.as_ref(), others, now);
    if let Some(e) = lookup_error.into_inner() {
        return Err(e.into());
    }
    if let Some(original) = reused_id {
        plan.events.push(tickets::Event {
            kind: EventKind::DuplicateMessageId,
            detail: format!(
                "Message-ID {original} was already used by a different message; this one is recorded as {}",
                msg.message_id
            ),
        });
    }
    if let (Some(name), Target::Existing(ticket), Role::Technician { address, .. }) =
        (plan.canned.clone(), &plan.target, &role)
    {
        match crate::outbound::mails::canned_reply(conn, desk, *ticket, &name, msg)? {
            Ok(text) if plan.text.is_empty() => plan.text = text,
            Ok(text) => plan.text = format!("{text}\n\n{}", plan.text),
            // A template that fails to render is the technician's command failing: nothing applies.
            Err(e) => reject(&mut plan, address, &name, e),
        }
    }
    // No relayed or stored text carries a technician's per-ticket address.
    let (redacted, count) = auth::redact_ticket_addresses(&plan.text, &h.address);
    if count > 0 {
        plan.text = redacted;
        plan.events.push(tickets::Event {
            kind: EventKind::AddressRedacted,
            detail: format!("{count} technician reply address(es) removed from the text before it was stored or sent"),
        });
    }

    let Target::Open { automatic, .. } = plan.target else {
        return Ok(Decision {
            plan,
            role,
            priority: None,
            queue: None,
            assign: None,
            ticket_type: None,
            service: None,
            template: None,
            was: state.as_ref().map(|t| t.status),
        });
    };
    let route = route.unwrap_or_else(|| crate::routing::Route {
        queue: 0,
        priority: None,
        assign: None,
        ticket_type: None,
        service: None,
        template: None,
        fallback: true,
        reason: "the default queue".into(),
    });
    let priority = route
        .priority
        .or_else(|| config.sla.rule_priority(msg))
        .or(new_queue.default_priority)
        .unwrap_or(config.sla.default_priority);
    // Machine mail is nobody's work until a person writes on it.
    let assign = if automatic { None } else { assignment(conn, new_queue, &route, now)? };
    // A rule's type, else the type whose address the mail was sent to.
    let by_address = config.type_by_address(msg);
    let ticket_type = route.ticket_type.or(by_address.as_ref().map(|(t, _)| *t));
    let service = service.map(|(i, why)| (config.services[i].name.clone(), why));
    // Machine mail follows no template: nobody asked for anything.
    let templates: Vec<Option<&regex::Regex>> =
        config.request_templates.iter().map(|t| t.subject_matches.as_ref()).collect();
    let template = (!automatic)
        .then(|| crate::routing::request_template(&templates, route.template, &msg.subject))
        .flatten()
        .map(|i| config.request_templates[i].name.clone());
    Ok(Decision {
        plan,
        role,
        priority: Some(priority),
        queue: Some((new_queue.name.clone(), route.reason)),
        assign,
        ticket_type,
        service,
        template,
        was: None,
    })
}

/// Turns a technician's plan into a rejection: nothing applied or relayed, the sender told why.
fn reject(plan: &mut Plan, sender: &str, canned: &str, why: String) {
    let e = crate::commands::CommandError {
        line_no: 0,
        line: format!("#reply {canned}"),
        reason: format!("the canned reply could not be made: {why}"),
    };
    plan.events.push(tickets::Event {
        kind: EventKind::CommandsRejected,
        detail: format!("{sender}: {e}; nothing applied, nothing relayed"),
    });
    plan.kind = tickets::MessageKind::RejectedCommands;
    plan.internal = true;
    plan.updates.clear();
    plan.mails = vec![tickets::Mail {
        kind: crate::domain::MailKind::CommandError,
        to: vec![crate::message::parse::Mailbox { name: None, address: sender.to_string() }],
    }];
    plan.rejected = Some(e);
    plan.canned = None;
}

/// Who a new ticket of `queue` goes to: the routing rule's assignee, else the queue's
/// auto-assignment over its team (nobody away), from what the database says of each member.
fn assignment(
    conn: &Connection,
    queue: &crate::config::Queue,
    route: &crate::routing::Route,
    now: i64,
) -> Result<Option<Assignment>, StoreError> {
    if let Some(a) = &route.assign {
        return Ok(Some(Assignment { to: a.clone(), reason: route.reason.clone(), automatic: false }));
    }
    if queue.assign == crate::routing::Assign::None {
        return Ok(None);
    }
    let away = write::away(conn, &queue.team, now)?;
    let open = write::open_counts(conn, &queue.team)?;
    let (last_each, last) = write::assigned_last(conn, &queue.name, &queue.team)?;
    let members: Vec<crate::routing::Member<'_>> = queue
        .team
        .iter()
        .zip(open)
        .zip(last_each)
        .map(|((a, open), last_assigned)| crate::routing::Member {
            address: a,
            away: away.contains(a),
            open,
            last_assigned,
        })
        .collect();
    Ok(match crate::routing::choose_assignee(queue.assign, &members, last.as_deref()) {
        Ok((to, reason)) => Some(Assignment { to, reason, automatic: true }),
        Err(why) => {
            tracing::info!(queue = %queue.name, "not auto-assigned: {why}");
            None
        }
    })
}

/// Who sent the message: a technician only with a proof the config accepts (see `auth`).
fn role(
    desk: &Desk<'_>,
    msg: &Inbound,
    token: Option<(i64, AddressKind)>,
    ticket: Option<i64>,
    lookup: &Lookup<'_>,
) -> Result<Role, StoreError> {
    let Some(from) = &msg.from else { return Ok(Role::Requester) };
    let c = desk.config;
    if !c.helpdesk.technicians.contains(&from.address) {
        return Ok(Role::Requester);
    }
    let accepts = |p: Proof| c.security.technician_proof.contains(&p);
    if let (true, Some((t, kind)), Some(ticket)) = (accepts(Proof::Token), token, ticket)
        && lookup.live_ticket(t)? == Some(ticket)
    {
        return Ok(Role::Technician {
            address: from.address.clone(),
            proof: "reply token",
            note: kind == AddressKind::Note,
        });
    }
    if let (true, Some(id)) = (accepts(Proof::Dmarc), &c.security.authserv_id) {
        let domain = from.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if auth::dmarc_pass(&msg.authentication_results, id, c.security.authserv_internal_hops, domain) {
            let note = c.helpdesk.comment_address.as_ref().is_some_and(|a| msg.recipients.contains(a));
            return Ok(Role::Technician { address: from.address.clone(), proof: "DMARC", note });
        }
    }
    Ok(Role::Unverified {
        address: from.address.clone(),
        reason: "was not sent to a reply address issued to them for this ticket and carries no trusted DMARC pass"
            .into(),
    })
}

/// Whether the sender proved they may act on ticket `n` as well: a DMARC-verified technician may;
/// a token-verified one must also have sent the mail to their own reply or note address for `n`
/// (a token for one ticket must not give control of another).
fn proves_ticket(desk: &Desk<'_>, msg: &Inbound, role: &Role, n: i64) -> bool {
    match role {
        Role::Technician { proof: "DMARC", .. } => true,
        Role::Technician { address, .. } => [AddressKind::Reply, AddressKind::Note].into_iter().any(|kind| {
            let wanted = auth::ticket_address(desk.reply_secret, &desk.config.helpdesk.address, kind, n, address);
            msg.recipients.iter().any(|r| r.eq_ignore_ascii_case(&wanted))
        }),
        _ => false,
    }
}

/// Whether the sender takes part in the ticket: its requester, a watcher, a verified technician, or
/// someone the desk has mailed on it. Ticket numbers are sequential, so a subject tag proves nothing; only
/// participants may reopen, subscribe or be relayed by a mail that threads by tag alone.
fn is_participant(conn: &Connection, msg: &Inbound, t: &tickets::TicketState, role: &Role) -> Result<bool, StoreError> {
    let Some(from) = &msg.from else { return Ok(false) };
    let a = from.address.as_str();
    // A technician counts only with a proof: `From: tech@…` alone is what a forger would write,
    // and the desk has mailed every technician on the ticket.
    Ok(matches!(role, Role::Technician { .. })
        || t.requester.as_deref() == Some(a)
        || t.watchers.iter().any(|w| w == a)
        || (write::desk_mailed(conn, t.id, a)? && !matches!(role, Role::Unverified { .. })))
}

/// Whether the reply headers also name a message of this ticket: possession of a Message-ID the
/// desk sent or stored shows the mail belongs to the conversation, not only its subject.
fn replies_to_ticket(msg: &Inbound, ticket: i64, lookup: &Lookup<'_>) -> Result<bool, StoreError> {
    Ok(match crate::threading::by_reply_headers(&msg.in_reply_to, &msg.references, lookup)? {
        Some((t, _)) => lookup.live_ticket(t)? == Some(ticket),
        None => false,
    })
}
