//! An approver's decision on a change, by reply: `#approve` or `#reject REASON` sent to the signed
//! address of their approval request (`support+a42-3-<token>@`), or, for an approver whose domain
//! passes DMARC at the desk's own server, on the change's thread.
//!
//! A decision counts only from an approver of the change's service, with that proof, for the
//! version the change is at: the token binds ticket, version and approver, so a forged address,
//! an address used by someone else, or a decision on a version since revised is recorded on the
//! change and counted for nothing. The change is approved once enough approvers approve, and
//! rejected once enough reject that the approvals required can no longer come; the requester and
//! the team are told either way.

use rusqlite::{Connection, OptionalExtension};

use super::apply::{Outcome, Received};
use crate::desk::Desk;
use crate::domain::{ApprovalState, Decision, EventKind, Proof};
use crate::message::parse::Inbound;
use crate::outbound::composer::Composer;
use crate::store::StoreError;
use crate::store::itsm;
use crate::store::write::{self, Lookup};
use crate::threading::{Thread, TicketLookup};

/// How the mail claims to decide a change.
pub(super) enum Claim {
    /// Sent to an approval address: its ticket and version, and whether its token is the sender's.
    Address { ticket: i64, version: i64, signed: bool },
    /// On the change's thread, from an approver whose domain passed DMARC.
    Dmarc { ticket: i64 },
}

/// Whether `msg` is a decision on a change (or claims to be one).
pub(super) fn claim(
    conn: &Connection,
    desk: &Desk<'_>,
    msg: &Inbound,
    visible: &str,
) -> Result<Option<Claim>, StoreError> {
    let c = desk.config;
    let sender = msg.from.as_ref().map(|f| f.address.as_str()).unwrap_or("");
    if let Some((ticket, version, signed)) =
        crate::auth::approval_recipient(desk.reply_secret, &c.helpdesk.address, &msg.recipients, sender)
    {
        return Ok(Some(Claim::Address { ticket, version, signed }));
    }
    // The DMARC path: an approver's `#approve`/`#reject` on a change's thread.
    let is_approver = c
        .services
        .iter()
        .filter_map(|s| s.approvals.as_ref())
        .chain(c.changes.as_ref())
        .any(|a| a.approvers.iter().any(|x| x == sender));
    if !is_approver
        || crate::commands::decision(visible).is_none()
        || !c.security.technician_proof.contains(&Proof::Dmarc)
    {
        return Ok(None);
    }
    let Some(id) = &c.security.authserv_id else { return Ok(None) };
    let domain = sender.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    if !crate::auth::dmarc_pass(&msg.authentication_results, id, c.security.authserv_internal_hops, domain) {
        return Ok(None);
    }
    let lookup = Lookup(conn);
    match crate::threading::thread(&msg.subject, &msg.in_reply_to, &msg.references, &c.helpdesk.tag, &lookup)? {
        Thread::Existing { ticket, .. } if itsm::change(conn, ticket)?.is_some_and(|ch| ch.version > 0) => {
            Ok(Some(Claim::Dmarc { ticket }))
        }
        _ => Ok(None),
    }
}

/// Records the mail on the change and counts the decision if it may count.
pub(super) fn record(
    conn: &Connection,
    composer: &mut Composer<'_>,
    received: &Received<'_>,
    claim: Claim,
    now: i64,
) -> Result<Outcome, StoreError> {
    let &Received { msg, visible, .. } = received;
    let desk = composer.desk();
    let sender = msg.from.as_ref().map(|f| f.address.clone()).unwrap_or_else(|| "(no sender)".into());
    let claimed = match claim {
        Claim::Address { ticket, .. } | Claim::Dmarc { ticket } => ticket,
    };
    let ticket = Lookup(conn).live_ticket(claimed)?;
    let change = match ticket {
        Some(t) => itsm::change(conn, t)?.filter(|c| c.version > 0),
        None => None,
    };
    let (Some(ticket), Some(change)) = (ticket, change) else {
        // No such change: recorded with no ticket, answered by nobody.
        store(conn, received, None, "approval-refused", now)?;
        tracing::warn!(%sender, ticket = claimed, "a decision on a change that does not exist: recorded, not counted");
        return Ok(Outcome::Approval { ticket: None, counted: false, queued: 0 });
    };
    let automatic = crate::message::classify::suppress_auto_reply(msg, &desk.addresses()).is_some_and(|s| s.automatic);
    let approvals = desk.config.approvals_for(change.service.as_deref()).cloned();
    let refusal = match (&claim, &approvals) {
        _ if automatic => Some("an automatic reply decides nothing".to_string()),
        _ if status(conn, ticket)?.is_done() => Some("the change is resolved or closed".to_string()),
        (_, None) => Some("the change's service no longer needs approvals".to_string()),
        (Claim::Address { signed: false, .. }, _) => {
            Some(format!("sent to an approval address that was not issued to {sender} (forged, or someone else's)"))
        }
        (_, Some(a)) if !a.approvers.contains(&sender) => Some(format!("{sender} is not an approver of this change")),
        // Separation of duties: whoever asked for a change does not approve it.
        _ if requester(conn, ticket)?.as_deref() == Some(sender.as_str()) => {
            Some(format!("{sender} asked for this change and cannot approve it"))
        }
        (Claim::Address { version, .. }, _) if *version != change.version => Some(format!(
            "for version {version}, but the change has been revised to version {}: only a decision on it counts",
            change.version
        )),
        (Claim::Dmarc { .. }, _) if answers_older_version(conn, msg, ticket, change.asked_at)? => {
            Some(format!("a reply to the request for an earlier version; the change is at version {}", change.version))
        }
        _ => None,
    };
    let decision = crate::commands::decision(visible);
    // A proved approver's mail without a decision (a question about the change) is for the team:
    // kept on the change, and sent to the assignee or the team as a note.
    if refusal.is_none() && decision.is_none() {
        return comment(conn, composer, received, ticket, now);
    }
    let counted = match (refusal, decision) {
        (Some(why), _) => Err(why),
        (None, None) => Err("no #approve or #reject on its first line".to_string()),
        (None, Some(Err(why))) => Err(why),
        (None, Some(Ok(d))) => Ok(d),
    };
    let kind = if counted.is_ok() { "approval" } else { "approval-refused" };
    store(conn, received, Some(ticket), kind, now)?;
    let (decision, reason) = match counted {
        Ok(d) => d,
        Err(why) => {
            write::insert_event(
                conn,
                Some(ticket),
                now,
                &sender,
                EventKind::ApprovalRefused,
                &format!("not counted: {why}"),
            )?;
            tracing::warn!(ticket, %sender, %why, "a decision on a change not counted");
            // An approver who proved who they are hears why; anyone else hears nothing.
            let proved = match claim {
                Claim::Address { signed, .. } => signed,
                Claim::Dmarc { .. } => true,
            };
            let approver = approvals.as_ref().is_some_and(|a| a.approvers.contains(&sender));
            let told = proved
                && approver
                && !automatic
                && tell_not_counted(conn, desk, msg, ticket, change.version, &why, now)?;
            return Ok(Outcome::Approval { ticket: Some(ticket), counted: false, queued: usize::from(told) });
        }
    };
    let proof = match claim {
        Claim::Address { .. } => "signed approval address",
        Claim::Dmarc { .. } => "DMARC",
    };
    let Some(approvals) = approvals else {
        return Ok(Outcome::Approval { ticket: Some(ticket), counted: false, queued: 0 });
    };
    let first = itsm::record_decision(conn, ticket, change.version, &sender, (decision, &reason), proof, now)?;
    let verb = match decision {
        Decision::Approve => "approved",
        Decision::Reject => "rejected",
    };
    let said = if reason.is_empty() { String::new() } else { format!(": {reason}") };
    if !first {
        write::insert_event(
            conn,
            Some(ticket),
            now,
            &sender,
            EventKind::ApprovalRefused,
            &format!(
                "not counted: {sender} has decided version {} already (the first decision stands)",
                change.version
            ),
        )?;
        return Ok(Outcome::Approval { ticket: Some(ticket), counted: false, queued: 0 });
    }
    write::insert_event(
        conn,
        Some(ticket),
        now,
        &sender,
        EventKind::Approval,
        &format!("{sender} {verb} version {} (by {proof}){said}", change.version),
    )?;
    // This version's decisions by the service's approvers as configured now.
    let decided: Vec<_> = itsm::decisions(conn, ticket)?
        .into_iter()
        .filter(|d| d.version == change.version && approvals.approvers.contains(&d.approver))
        .collect();
    let approvals_n = decided.iter().filter(|d| d.decision == Decision::Approve.as_str()).count();
    let rejections = decided.len() - approvals_n;
    let outcome = approvals.required.outcome(approvals.approvers.len(), approvals_n, rejections);
    let mut queued = 0;
    if change.approval == Some(ApprovalState::Pending) && outcome != ApprovalState::Pending {
        itsm::set_approval(conn, ticket, outcome)?;
        let (kind, what) = match outcome {
            ApprovalState::Approved => (EventKind::ChangeApproved, "approved"),
            _ => (EventKind::ChangeRejected, "rejected"),
        };
        write::insert_event(
            conn,
            Some(ticket),
            now,
            "maildesk",
            kind,
            &format!(
                "version {} {what}: {approvals_n} approval(s), {rejections} rejection(s) of {} approver(s), {} required",
                change.version,
                approvals.approvers.len(),
                approvals.required
            ),
        )?;
        queued += crate::outbound::itsm::queue_change_decision(conn, composer, ticket, outcome, now)?;
    }
    crate::store::sla::refresh(conn, desk.config, ticket, now)?;
    Ok(Outcome::Ticket { id: ticket, created: false, queued, kind: "approval" })
}

/// Stores the mail (internal, with `kind`) on `ticket`, or on none; its row.
fn store(
    conn: &Connection,
    received: &Received<'_>,
    ticket: Option<i64>,
    kind: &str,
    now: i64,
) -> Result<i64, StoreError> {
    let id = received.store(conn, ticket, (kind, true), received.visible, now)?;
    if let Some(t) = ticket {
        write::touch_ticket(conn, t, now)?;
    }
    Ok(id)
}

/// An approver's question on the change: stored (internal) and copied to the assignee or team.
fn comment(
    conn: &Connection,
    composer: &mut Composer<'_>,
    received: &Received<'_>,
    ticket: i64,
    now: i64,
) -> Result<Outcome, StoreError> {
    let &Received { msg, visible, .. } = received;
    let id = store(conn, received, Some(ticket), "approval-comment", now)?;
    let Some(state) = write::ticket_state(conn, ticket)? else {
        return Ok(Outcome::Approval { ticket: Some(ticket), counted: false, queued: 0 });
    };
    let team = match &state.assignee {
        Some(a) => vec![a.clone()],
        None => composer.desk().config.queue(state.queue.as_deref()).1.team.clone(),
    };
    let mut plan = crate::tickets::Plan::existing(ticket, crate::tickets::MessageKind::Note, visible);
    plan.internal = true;
    plan.mails = team
        .into_iter()
        .map(|t| crate::tickets::Mail {
            kind: crate::domain::MailKind::NoteCopy,
            to: vec![crate::message::parse::Mailbox { name: None, address: t }],
        })
        .collect();
    let queued = crate::outbound::mails::queue(conn, composer, msg, &plan, ticket, id, now)?;
    Ok(Outcome::Ticket { id: ticket, created: false, queued, kind: "approval-comment" })
}

fn status(conn: &Connection, ticket: i64) -> Result<crate::domain::TicketStatus, StoreError> {
    Ok(conn.prepare_cached("SELECT status FROM tickets WHERE id = ?1")?.query_row([ticket], |r| r.get(0))?)
}

fn requester(conn: &Connection, ticket: i64) -> Result<Option<String>, StoreError> {
    Ok(conn.prepare_cached("SELECT requester FROM tickets WHERE id = ?1")?.query_row([ticket], |r| r.get(0))?)
}

/// Tells an approver why their mail decided nothing, with the current version's address as
/// `Reply-To`, within the automatic-mail limit per recipient.
fn tell_not_counted(
    conn: &Connection,
    desk: &crate::desk::Desk<'_>,
    msg: &Inbound,
    ticket: i64,
    version: i64,
    why: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let Some(to) = msg.from.as_ref().map(|f| f.address.clone()) else { return Ok(false) };
    let limit = desk.config.limits.auto_replies_per_recipient_per_hour as i64;
    if crate::outbound::mails::automatic_mails_to(conn, &to, now - 3600)? >= limit {
        return Ok(false);
    }
    let h = &desk.config.helpdesk;
    let subject: String =
        conn.prepare_cached("SELECT subject FROM tickets WHERE id = ?1")?.query_row([ticket], |r| r.get(0))?;
    let tag = crate::threading::format_tag(&h.tag, ticket);
    let text = format!(
        "Your mail about the change {tag} \"{subject}\" was recorded but decided nothing: {why}.\n\n\
         To decide version {version}, reply to this mail with one of these alone on the first line:\n\n  \
         #approve\n  #reject REASON\n\n--\n{}\n",
        h.name
    );
    let rendered = crate::templates::Rendered {
        subject: crate::message::parse::one_line(&format!("{tag} Not counted: {subject}")),
        text,
        html: None,
    };
    let reply_to = crate::auth::approval_address(desk.reply_secret, &h.address, ticket, version, &to);
    let key = format!("{ticket}.{version}");
    let mail = crate::outbound::deskmail::DeskMail {
        kind: "approval-not-counted",
        to: std::slice::from_ref(&to),
        reply_to: Some(&reply_to),
        key: &key,
        in_reply_to: Some(&msg.message_id),
        rendered: &rendered,
        auto_submitted: "auto-replied",
    };
    crate::outbound::deskmail::queue(conn, desk.config, &mail, now)
}

/// Whether the mail answers an approval request sent before the change's current version was
/// submitted (a DMARC-proved decision carries no version of its own).
fn answers_older_version(
    conn: &Connection,
    msg: &Inbound,
    ticket: i64,
    asked_at: Option<i64>,
) -> Result<bool, StoreError> {
    let Some(asked_at) = asked_at else { return Ok(false) };
    for id in msg.in_reply_to.iter().chain(&msg.references) {
        let old: Option<i64> = conn
            .prepare_cached(
                "SELECT sent_at FROM messages WHERE message_id = ?1 AND ticket_id = ?2 AND kind = 'approval-request'",
            )?
            .query_row(rusqlite::params![id, ticket], |r| r.get(0))
            .optional()?
            .flatten();
        if old.is_some_and(|sent| sent < asked_at) {
            return Ok(true);
        }
    }
    Ok(false)
}
