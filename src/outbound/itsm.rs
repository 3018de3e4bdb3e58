//! Mail of IT service management, queued in the caller's transaction like every other mail:
//! approval requests (each approver's own signed `Reply-To`) and their reminders, a change's
//! decision to its requester and team, a solved problem to its incidents' requesters, a request's
//! completion to its requester, and a task ticket's notification to its queue's team.

use rusqlite::{Connection, OptionalExtension};

use super::composer::{Composer, Mail};
use super::mails::{TechnicianAddresses, context, queue_one, requester_thread, technician_thread, ticket_context};
use crate::domain::{ApprovalState, MailKind};
use crate::message::parse::Mailbox;
use crate::store::StoreError;
use crate::store::itsm::{self, Linked};
use crate::templates::{ChangeContext, DecisionContext, ExtraContext, LinkContext, MessageContext};

fn mailbox(a: &str) -> Mailbox {
    Mailbox { name: None, address: a.to_string() }
}

/// A Message-ID no other mail of the ticket has: its kind, the ticket, how many mails it has.
fn message_id(
    conn: &Connection,
    composer: &Composer<'_>,
    kind: MailKind,
    ticket: i64,
    n: usize,
) -> rusqlite::Result<String> {
    let desk = composer.desk();
    let serial: i64 = conn
        .prepare_cached("SELECT count(*) FROM messages WHERE ticket_id = ?1 AND direction = 'out'")?
        .query_row([ticket], |r| r.get(0))?;
    Ok(format!("{kind}.{ticket}.s{serial}.{n}.{}@{}", desk.instance, desk.domain()))
}

/// The change as its mails show it: its version, state, rule, approvers and this version's
/// decisions, and the request that opened it.
pub fn change_context(
    conn: &Connection,
    approvals: &crate::config::Approvals,
    ticket: i64,
    reminder: bool,
) -> Result<ChangeContext, StoreError> {
    let change = itsm::change(conn, ticket)?.ok_or(StoreError::Internal("a change without its ticket"))?;
    let decisions = itsm::decisions(conn, ticket)?
        .into_iter()
        .filter(|d| d.version == change.version)
        .map(|d| DecisionContext { approver: d.approver, decision: d.decision, reason: d.reason })
        .collect();
    let description: String = conn
        .prepare_cached(
            "SELECT body_text FROM messages WHERE ticket_id = ?1 AND direction = 'in' AND kind = 'request' ORDER BY id LIMIT 1",
        )?
        .query_row([ticket], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    Ok(ChangeContext {
        version: change.version,
        state: change.approval.map(|a| a.as_str().to_string()).unwrap_or_default(),
        required: approvals.required.to_string(),
        approvers: approvals.approvers.clone(),
        decisions,
        reminder,
        description,
    })
}

/// Asks each of `to` to approve the change's current version, each with their own signed
/// `Reply-To`; `text`: what the submitting mail said (a revision's notes). No token is printed
/// in the body: it is in the header only, so quoting or forwarding the mail passes none on.
pub fn queue_approval_requests(
    conn: &Connection,
    composer: &mut Composer<'_>,
    ticket: i64,
    to: &[String],
    text: &str,
    reminder: bool,
    now: i64,
) -> Result<usize, StoreError> {
    let desk = composer.desk();
    let service: Option<String> =
        conn.prepare_cached("SELECT service FROM tickets WHERE id = ?1")?.query_row([ticket], |r| r.get(0))?;
    let Some(approvals) = desk.config.approvals_for(service.as_deref()) else { return Ok(0) };
    let change = change_context(conn, approvals, ticket, reminder)?;
    let ticket_ctx = ticket_context(conn, desk.config, ticket)?;
    let mut queued = 0;
    for (n, approver) in to.iter().enumerate() {
        let reply_to = crate::auth::approval_address(
            desk.reply_secret,
            &desk.config.helpdesk.address,
            ticket,
            change.version,
            approver,
        );
        let message =
            MessageContext { subject: ticket_ctx.subject.clone(), text: text.to_string(), ..Default::default() };
        let extra = ExtraContext { change: change.clone(), ..ExtraContext::default() };
        let ctx = context(desk, &ticket_ctx, message, None, extra);
        let (root, last) = technician_thread(conn, ticket, approver)?;
        let message_id = message_id(conn, composer, MailKind::ApprovalRequest, ticket, n)?;
        queued += queue_one(
            conn,
            composer,
            Mail {
                reply_to: Some(reply_to),
                ..Mail::generated(
                    ticket,
                    MailKind::ApprovalRequest,
                    mailbox(approver),
                    ctx,
                    message_id,
                    (last.clone().or(root.clone()), root.into_iter().chain(last).collect()),
                )
            },
            // Only the approver sees it: never part of the requester's conversation.
            true,
            now,
        )?;
    }
    Ok(queued)
}

/// Tells the requester, and the assignee or the team, that the change was approved or rejected.
pub fn queue_change_decision(
    conn: &Connection,
    composer: &mut Composer<'_>,
    ticket: i64,
    state: ApprovalState,
    now: i64,
) -> Result<usize, StoreError> {
    let desk = composer.desk();
    let (service, requester, assignee, queue): (Option<String>, Option<String>, Option<String>, Option<String>) = conn
        .prepare_cached("SELECT service, requester, assignee, queue FROM tickets WHERE id = ?1")?
        .query_row([ticket], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let Some(approvals) = desk.config.approvals_for(service.as_deref()) else { return Ok(0) };
    let mut change = change_context(conn, approvals, ticket, false)?;
    change.state = state.as_str().to_string();
    let ticket_ctx = ticket_context(conn, desk.config, ticket)?;
    let team: Vec<String> = match assignee {
        Some(a) => vec![a],
        None => desk.config.queue(queue.as_deref()).1.team.clone(),
    };
    let mut queued = 0;
    let people = requester.iter().map(|r| (r, false)).chain(team.iter().map(|t| (t, true)));
    for (n, (to, technician)) in people.enumerate() {
        let addresses = technician.then(|| TechnicianAddresses::of(desk, ticket, to));
        let extra = ExtraContext { change: change.clone(), ..ExtraContext::default() };
        let ctx = context(desk, &ticket_ctx, MessageContext::default(), addresses.as_ref(), extra);
        let (in_reply_to, references) = if technician {
            let (root, last) = technician_thread(conn, ticket, to)?;
            (last.clone().or(root.clone()), root.into_iter().chain(last).collect())
        } else {
            requester_thread(conn, ticket)?
        };
        let message_id = message_id(conn, composer, MailKind::ChangeDecision, ticket, n)?;
        queued += queue_one(
            conn,
            composer,
            Mail {
                reply_to: addresses.map(|a| a.reply),
                ..Mail::generated(
                    ticket,
                    MailKind::ChangeDecision,
                    mailbox(to),
                    ctx,
                    message_id,
                    (in_reply_to, references),
                )
            },
            technician,
            now,
        )?;
    }
    Ok(queued)
}

fn link_context(config: &crate::config::Config, l: &Linked) -> LinkContext {
    LinkContext {
        id: l.id,
        tag: crate::threading::format_tag(&config.helpdesk.tag, l.id),
        subject: l.subject.clone(),
        status: l.status.as_str().to_string(),
    }
}

/// Tells the requester of incident `incident` that problem `problem` is solved; `text`: what the
/// technician wrote when resolving it.
pub fn queue_problem_resolved(
    conn: &Connection,
    composer: &mut Composer<'_>,
    incident: &Linked,
    problem: &Linked,
    text: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let Some(requester) = &incident.requester else { return Ok(0) };
    let desk = composer.desk();
    let ticket_ctx = ticket_context(conn, desk.config, incident.id)?;
    let extra = ExtraContext { problem: link_context(desk.config, problem), ..ExtraContext::default() };
    let message = MessageContext { text: text.to_string(), ..Default::default() };
    let ctx = context(desk, &ticket_ctx, message, None, extra);
    let (in_reply_to, references) = requester_thread(conn, incident.id)?;
    let message_id = message_id(conn, composer, MailKind::ProblemResolved, incident.id, 0)?;
    queue_one(
        conn,
        composer,
        Mail::generated(
            incident.id,
            MailKind::ProblemResolved,
            mailbox(requester),
            ctx,
            message_id,
            (in_reply_to, references),
        ),
        false,
        now,
    )
}

/// The one mail a request's requester gets when its last task is done: the resolution, with its
/// tasks and the ratings.
pub fn queue_request_done(
    conn: &Connection,
    composer: &mut Composer<'_>,
    parent: i64,
    tasks: &[Linked],
    now: i64,
) -> Result<usize, StoreError> {
    let desk = composer.desk();
    let requester: Option<String> =
        conn.prepare_cached("SELECT requester FROM tickets WHERE id = ?1")?.query_row([parent], |r| r.get(0))?;
    let Some(requester) = requester else { return Ok(0) };
    let ticket_ctx = ticket_context(conn, desk.config, parent)?;
    let support = &desk.config.helpdesk.address;
    let done: Vec<String> = tasks.iter().map(|t| format!("- {} ({})", t.subject, t.status)).collect();
    let message = MessageContext { text: format!("Everything is done:\n{}", done.join("\n")), ..Default::default() };
    let extra = ExtraContext {
        tasks: tasks.iter().map(|t| link_context(desk.config, t)).collect(),
        ratings: crate::templates::rating_links(|score| {
            crate::auth::rating_address(desk.reply_secret, support, parent, score)
        }),
        ..ExtraContext::default()
    };
    let ctx = context(desk, &ticket_ctx, message, None, extra);
    let (in_reply_to, references) = requester_thread(conn, parent)?;
    let message_id = message_id(conn, composer, MailKind::Resolution, parent, 0)?;
    queue_one(
        conn,
        composer,
        Mail::generated(parent, MailKind::Resolution, mailbox(&requester), ctx, message_id, (in_reply_to, references)),
        false,
        now,
    )
}

/// Tells the team of a ticket's queue about a ticket the desk opened itself (a request's task, a
/// problem opened from an incident), as about any new ticket, so each has its reply address;
/// `text`: what caused it.
pub fn queue_team_notifications(
    conn: &Connection,
    composer: &mut Composer<'_>,
    task: i64,
    text: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let desk = composer.desk();
    let queue: Option<String> =
        conn.prepare_cached("SELECT queue FROM tickets WHERE id = ?1")?.query_row([task], |r| r.get(0))?;
    let team = desk.config.queue(queue.as_deref()).1.team.clone();
    let ticket_ctx = ticket_context(conn, desk.config, task)?;
    let mut queued = 0;
    for (n, t) in team.iter().enumerate() {
        let addresses = TechnicianAddresses::of(desk, task, t);
        let message =
            MessageContext { subject: ticket_ctx.subject.clone(), text: text.to_string(), ..Default::default() };
        let ctx = context(desk, &ticket_ctx, message, Some(&addresses), ExtraContext::default());
        let message_id = message_id(conn, composer, MailKind::NewTicket, task, n)?;
        queued += queue_one(
            conn,
            composer,
            Mail {
                reply_to: Some(addresses.reply),
                ..Mail::generated(task, MailKind::NewTicket, mailbox(t), ctx, message_id, (None, Vec::new()))
            },
            true,
            now,
        )?;
    }
    Ok(queued)
}
