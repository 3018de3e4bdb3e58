//! Applies fetched messages to the database: parse → classify → thread → plan → record → outbox.
//!
//! One call handles a batch in **one transaction**, each message inside its own savepoint. A message
//! is therefore all-or-nothing (its ticket change, raw bytes, attachments, events and outbox rows
//! commit together or not at all), while the batch pays for one fsync. If recording a message fails,
//! its savepoint is rolled back and the message is quarantined with the reason instead, so one bad
//! message never blocks the ones behind it. Only a failure to write even the quarantine record (disk
//! full, read-only database) aborts the batch; then nothing of it is committed, the UIDs stay
//! unflagged on the server, and the next attempt starts from the same place.

use rusqlite::{Connection, TransactionBehavior};
use tracing::{info, warn};

use super::classify::suppress_auto_reply;
use super::parse::{Inbound, parse};
use crate::config::Config;
use crate::outbound::compose::{Draft, compose};
use crate::store::write::{self, Lookup, NewMessage};
use crate::store::{self, MailboxState, StoreError};
use crate::templates::{Context, DeskContext, MessageContext, Templates, TicketContext};
use crate::threading::{format_tag, thread};
use crate::tickets::{Change, Plan, plan};

/// One message as fetched from IMAP.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// What became of one fetched message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ticket {
        id: i64,
        created: bool,
        acknowledged: bool,
    },
    /// Already recorded: the same UID, or the same Message-ID under another UID.
    Duplicate,
    Quarantined {
        reason: String,
    },
}

/// What the recorder needs to know about the desk.
pub struct Desk<'a> {
    pub config: &'a Config,
    pub templates: &'a Templates,
    /// The database's instance token, part of every Message-ID maildesk creates.
    pub instance: &'a str,
}

impl Desk<'_> {
    fn addresses(&self) -> Vec<String> {
        vec![self.config.helpdesk.address.clone()]
    }

    fn domain(&self) -> &str {
        self.config.helpdesk.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost")
    }
}

/// Records a batch of messages from `mailbox`. With `advance_to`, the mailbox's last UID moves to
/// it in the same commit (it may exceed the last fetched UID when messages were expunged between
/// SEARCH and FETCH). Without it (the first sync of a mailbox) the mark is left alone, so a crash
/// mid-way repeats the first sync instead of skipping what it had not reached.
pub fn record_batch(
    conn: &mut Connection,
    desk: &Desk<'_>,
    mailbox: &str,
    uid_validity: u32,
    batch: &[Fetched],
    advance_to: Option<u32>,
    now: i64,
) -> Result<Vec<(u32, Outcome)>, StoreError> {
    // IMMEDIATE: take the write lock up front. A deferred transaction that reads first and writes
    // later fails at once with "database is locked" if the sender committed in between.
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    for m in batch {
        let source = (mailbox, uid_validity, m.uid);
        let mut sp = tx.savepoint()?;
        let result = record_one(&sp, desk, source, &m.raw, now);
        let outcome = match result {
            Ok(outcome) => {
                sp.commit()?;
                outcome
            }
            Err(e) if is_about_the_message(&e) => {
                sp.rollback()?;
                drop(sp);
                let reason = format!("could not be recorded: {e}");
                warn!(uid = m.uid, %reason, "message quarantined");
                write::insert_quarantine(&tx, source, &reason, &m.raw, now)?;
                Outcome::Quarantined { reason }
            }
            // The database itself is in trouble (locked, full, read-only, I/O): nothing of this
            // batch commits, the messages stay unflagged on the server, and the caller retries.
            Err(e) => return Err(e),
        };
        outcomes.push((m.uid, outcome));
    }
    if let Some(last_uid) = advance_to {
        store::set_mailbox_state(&tx, mailbox, MailboxState { uid_validity, last_uid })?;
    }
    tx.commit()?;
    Ok(outcomes)
}

/// Whether a failure is caused by this message's content (so quarantining it is right) rather than
/// by the database's condition (so every message would fail the same way, and must wait).
fn is_about_the_message(e: &StoreError) -> bool {
    use rusqlite::ErrorCode::*;
    match e {
        StoreError::Sql(rusqlite::Error::SqliteFailure(f, _)) => {
            matches!(f.code, ConstraintViolation | TooBig | TypeMismatch | ParameterOutOfRange)
        }
        StoreError::Sql(rusqlite::Error::ToSqlConversionFailure(_) | rusqlite::Error::InvalidParameterCount(..)) => {
            true
        }
        _ => false,
    }
}

fn record_one(
    conn: &Connection,
    desk: &Desk<'_>,
    source: (&str, u32, u32),
    raw: &[u8],
    now: i64,
) -> Result<Outcome, StoreError> {
    if write::uid_known(conn, source.0, source.1, source.2)? {
        return Ok(Outcome::Duplicate);
    }
    let msg = match parse(raw) {
        Ok(msg) => msg,
        Err(e) => {
            let reason = e.to_string();
            warn!(uid = source.2, %reason, "message quarantined");
            write::insert_quarantine(conn, source, &reason, raw, now)?;
            return Ok(Outcome::Quarantined { reason });
        }
    };
    if write::message_id_known(conn, &msg.message_id)? {
        info!(uid = source.2, message_id = %msg.message_id, "already recorded under another UID; skipped");
        return Ok(Outcome::Duplicate);
    }

    let desk_addresses = desk.addresses();
    let suppression = suppress_auto_reply(&msg, &desk_addresses);
    let threaded = thread(&msg.subject, &msg.in_reply_to, &msg.references, &desk.config.helpdesk.tag, &Lookup(conn));
    let plan = plan(&msg, &threaded, suppression.as_ref(), &desk_addresses);

    let (ticket, created) = match &plan.change {
        Change::Open { subject, requester } => (write::insert_ticket(conn, subject, requester.as_ref(), now)?, true),
        Change::Append { ticket } => {
            write::touch_ticket(conn, *ticket, now)?;
            (*ticket, false)
        }
    };
    let row = write::insert_message(
        conn,
        &NewMessage {
            ticket_id: Some(ticket),
            direction: "in",
            message_id: &msg.message_id,
            kind: plan.kind.as_str(),
            source: Some(source),
            from: msg.from.as_ref(),
            to: &msg.to,
            cc: &msg.cc,
            subject: &msg.subject,
            sent_at: msg.date,
            received_at: now,
            body_text: &msg.text,
            raw,
        },
    )?;
    for a in &msg.attachments {
        write::insert_attachment(conn, row, a)?;
    }
    let actor = msg.from.as_ref().map(|f| f.address.as_str()).unwrap_or("(unknown sender)");
    if created {
        write::insert_event(
            conn,
            Some(ticket),
            now,
            actor,
            "opened",
            &format!("ticket opened by message {}", msg.message_id),
        )?;
    }
    for e in &plan.events {
        write::insert_event(conn, Some(ticket), now, "maildesk", e.kind, &e.detail)?;
    }
    let acknowledged = acknowledge(conn, desk, &msg, &plan, ticket, row, now)?;
    info!(uid = source.2, ticket, created, acknowledged, kind = plan.kind.as_str(), "message recorded");
    Ok(Outcome::Ticket { id: ticket, created, acknowledged })
}

/// Renders and queues the acknowledgement, if the plan calls for one. A template or address problem
/// is recorded on the ticket instead: the ticket exists either way.
fn acknowledge(
    conn: &Connection,
    desk: &Desk<'_>,
    msg: &Inbound,
    plan: &Plan,
    ticket: i64,
    row: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let (Some(to), Change::Open { subject, requester }) = (&plan.acknowledge, &plan.change) else {
        return Ok(false);
    };
    let h = &desk.config.helpdesk;
    let ctx = Context {
        desk: DeskContext { name: h.name.clone(), tag: h.tag.clone(), address: h.address.clone() },
        ticket: TicketContext {
            id: ticket,
            tag: format_tag(&h.tag, ticket),
            subject: subject.clone(),
            status: "open".into(),
            priority: "P3".into(),
            requester: requester.as_ref().map(|r| r.address.clone()).unwrap_or_default(),
            requester_name: requester.as_ref().and_then(|r| r.name.clone()).unwrap_or_default(),
        },
        message: MessageContext {
            subject: msg.subject.clone(),
            from: msg.from.as_ref().map(|f| f.address.clone()).unwrap_or_default(),
            from_name: msg.from.as_ref().and_then(|f| f.name.clone()).unwrap_or_default(),
            text: msg.text.clone(),
        },
    };
    let message_id = format!("ack.{ticket}.{row}.{}@{}", desk.instance, desk.domain());
    let mut references = msg.references.clone();
    if references.last() != Some(&msg.message_id) {
        references.push(msg.message_id.clone());
    }
    let composed = desk.templates.render("acknowledgement", &ctx).map_err(|e| e.to_string()).and_then(|rendered| {
        let draft = Draft {
            from_name: &h.name,
            from_address: &h.address,
            to,
            message_id: &message_id,
            in_reply_to: Some(&msg.message_id),
            references: &references,
            date: now,
            auto_submitted: Some("auto-replied"),
            rendered: &rendered,
        };
        compose(&draft).map(|raw| (rendered, raw)).map_err(|e| e.to_string())
    });
    let (rendered, raw) = match composed {
        Ok(ok) => ok,
        Err(e) => {
            warn!(ticket, error = %e, "acknowledgement not sent");
            write::insert_event(
                conn,
                Some(ticket),
                now,
                "maildesk",
                "ack-failed",
                &format!("acknowledgement not sent: {e}"),
            )?;
            return Ok(false);
        }
    };
    let from = crate::inbound::parse::Mailbox { name: Some(h.name.clone()), address: h.address.clone() };
    let out_row = write::insert_message(
        conn,
        &NewMessage {
            ticket_id: Some(ticket),
            direction: "out",
            message_id: &message_id,
            kind: "acknowledgement",
            source: None,
            from: Some(&from),
            to: std::slice::from_ref(to),
            cc: &[],
            subject: &rendered.subject,
            sent_at: Some(now),
            received_at: now,
            body_text: &rendered.text,
            raw: &raw,
        },
    )?;
    write::insert_outbox(conn, out_row, Some(ticket), &h.address, &to.address, now)?;
    Ok(true)
}
