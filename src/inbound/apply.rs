//! Carrying out a decision inside the batch's transaction: the ticket opened or touched, the
//! message row with what the size limits keep, attachments, events, the plan's updates, the SLA
//! fields, and the mails it causes queued in the outbox.

use rusqlite::Connection;

use super::decide::Decision;
use super::size;
use crate::domain::{Direction, EventKind};
use crate::message::parse::Inbound;
use crate::outbound::composer::Composer;
use crate::outbound::mails;
use crate::store::StoreError;
use crate::store::write::{self, NewMessage};
use crate::tickets::{Role, Target, Update};

/// What became of one fetched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded on ticket `id`; `queued` outbound mails are waiting in the outbox.
    Ticket {
        id: i64,
        created: bool,
        queued: usize,
        /// What the message was taken for: request, reply, note, bounce, ...
        kind: &'static str,
    },
    /// Already recorded: the same UID, or the same Message-ID under another UID.
    Duplicate,
    Quarantined {
        reason: String,
    },
    /// A query by mail (never a ticket); `answered` when the sender was a verified technician.
    Query {
        answered: bool,
    },
    /// A decision on a change that did not count (`ticket`: the change, when it exists);
    /// `queued`: the mails it caused (telling a proved approver why).
    Approval {
        ticket: Option<i64>,
        counted: bool,
        queued: usize,
    },
}

impl Outcome {
    /// Whether recording it queued mail: the sender is woken at once instead of at its next round.
    pub fn queued_mail(&self) -> bool {
        match self {
            Outcome::Ticket { queued, .. } | Outcome::Approval { queued, .. } => *queued > 0,
            Outcome::Query { answered } => *answered,
            Outcome::Duplicate | Outcome::Quarantined { .. } => false,
        }
    }
}

/// One received message as the recorder holds it.
pub(super) struct Received<'a> {
    /// Mailbox, UIDVALIDITY and UID.
    pub(super) source: (&'a str, u32, u32),
    pub(super) raw: &'a [u8],
    /// See [`super::prepare::content_digest`].
    pub(super) digest: &'a str,
    pub(super) msg: &'a Inbound,
    /// What the sender wrote in it: quotes and signature stripped.
    pub(super) visible: &'a str,
}

impl Received<'_> {
    /// Stores the message whole (its bytes as received, with its digest) on `ticket`, or on no
    /// ticket, labelled `kind` (and whether it is internal), with `text` as its text; its row.
    pub(super) fn store(
        &self,
        conn: &Connection,
        ticket: Option<i64>,
        kind: (&str, bool),
        text: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut row = inbound_row(self.msg, ticket, self.source, kind, text, self.raw, now);
        row.content_sha256 = Some(self.digest);
        Ok(write::insert_message(conn, &row)?)
    }
}

pub(super) fn apply(
    conn: &Connection,
    composer: &mut Composer<'_>,
    received: &Received<'_>,
    decision: Decision,
    now: i64,
) -> Result<Outcome, StoreError> {
    let desk = composer.desk();
    let &Received { source, raw, digest, msg, .. } = received;
    let Decision { mut plan, role, priority, queue, assign, ticket_type, service, template, was } = decision;
    let limits = &desk.config.limits;
    let kept = size::keep(raw, &msg.attachments, limits);

    let (ticket, created) = match &plan.target {
        Target::Open { subject, requester, follow_up_of, automatic } => {
            let priority = priority.unwrap_or_else(|| desk.config.sla.priority_for(msg));
            let queue = queue.as_ref().map(|(q, _)| q.as_str());
            let id = write::insert_ticket(
                conn,
                subject,
                requester.as_ref(),
                (priority, queue),
                *follow_up_of,
                *automatic,
                now,
            )?;
            (id, true)
        }
        Target::Existing(ticket) => {
            write::touch_ticket(conn, *ticket, now)?;
            (*ticket, false)
        }
    };
    let mut new_row =
        inbound_row(msg, Some(ticket), source, (plan.kind.as_str(), plan.internal), &plan.text, kept.raw, now);
    new_row.content_sha256 = Some(digest);
    let row = write::insert_message(conn, &new_row)?;
    for &i in &kept.attachments {
        write::insert_attachment(conn, row, i, &msg.attachments[i])?;
    }
    for (kind, detail) in kept.events() {
        write::insert_event(conn, Some(ticket), now, "maildesk", kind, &detail)?;
    }
    plan.notice = kept.notice(limits);
    plan.attachments_kept = Some(kept.attachments);

    let actor = msg.from.as_ref().map(|f| f.address.as_str()).unwrap_or("(unknown sender)");
    if created {
        let detail = match &plan.target {
            Target::Open { follow_up_of: Some(old), .. } => {
                format!("ticket opened by message {} as a follow-up of closed ticket {old}", msg.message_id)
            }
            _ => format!("ticket opened by message {}", msg.message_id),
        };
        write::insert_event(conn, Some(ticket), now, actor, EventKind::Opened, &detail)?;
        if let Some((name, reason)) = &queue {
            write::insert_event(
                conn,
                Some(ticket),
                now,
                "maildesk",
                EventKind::Routed,
                &format!("queue {name}: {reason}"),
            )?;
        }
        if let Some((name, reason)) = &service {
            write::apply_updates(conn, ticket, &[Update::Service(name.clone())], "maildesk", now)?;
            write::insert_event(
                conn,
                Some(ticket),
                now,
                "maildesk",
                EventKind::Routed,
                &format!("service {name}: {reason}"),
            )?;
        }
        if let Some(t) = ticket_type {
            write::apply_updates(conn, ticket, &[Update::Type(t)], "maildesk", now)?;
            // A change that needs approval asks its approvers at once.
            let service = service.as_ref().map(|(s, _)| s.as_str());
            if t == crate::domain::TicketType::Change && desk.config.approvals_for(service).is_some() {
                plan.updates.push(Update::SubmitChange);
            }
        }
        // Before the mails are made, so that the team's notification names the assignee.
        if let Some(a) = &assign {
            write::apply_updates(conn, ticket, &[Update::Assign(a.to.clone())], "maildesk", now)?;
            let how = if a.automatic { "auto-assigned" } else { "assigned by a routing rule" };
            write::insert_event(
                conn,
                Some(ticket),
                now,
                "maildesk",
                EventKind::Assigned,
                &format!("{how}: {}", a.reason),
            )?;
            if let (true, Some((name, _))) = (a.automatic, &queue) {
                write::note_auto_assigned(conn, name, &a.to, ticket, now)?;
            }
        }
    }
    if let Role::Technician { proof, .. } = &role {
        write::insert_event(
            conn,
            Some(ticket),
            now,
            actor,
            EventKind::Technician,
            &format!("technician verified by {proof}"),
        )?;
    }
    for e in &plan.events {
        write::insert_event(conn, Some(ticket), now, "maildesk", e.kind, &e.detail)?;
    }
    let live = write::apply_updates(conn, ticket, &plan.updates, actor, now)?;
    crate::store::sla::refresh(conn, desk.config, live, now)?;
    let mut queued = mails::queue(conn, composer, msg, &plan, live, row, now)?;
    let happened = super::itsm::Happened {
        ticket: live,
        updates: &plan.updates,
        template: template.as_deref(),
        was,
        text: &plan.text,
        actor,
    };
    queued += super::itsm::follow(conn, composer, &happened, now)?;
    if plan.kind == crate::tickets::MessageKind::StatusRequest
        && crate::outbound::status_answer::queue(conn, desk, msg, now)?
    {
        queued += 1;
    }
    Ok(Outcome::Ticket { id: live, created, queued, kind: plan.kind.as_str() })
}

/// The message row for an inbound mail; `kind` is its label and whether it is internal.
fn inbound_row<'a>(
    msg: &'a Inbound,
    ticket: Option<i64>,
    source: (&'a str, u32, u32),
    (kind, internal): (&'a str, bool),
    body_text: &'a str,
    raw: &'a [u8],
    now: i64,
) -> NewMessage<'a> {
    NewMessage {
        ticket_id: ticket,
        direction: Direction::In,
        message_id: &msg.message_id,
        kind,
        internal,
        source: Some(source),
        from: msg.from.as_ref(),
        to: &msg.to,
        cc: &msg.cc,
        subject: &msg.subject,
        sent_at: msg.date,
        received_at: now,
        body_text,
        raw: Some(raw),
        content_sha256: None,
    }
}
