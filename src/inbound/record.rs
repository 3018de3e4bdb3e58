//! Applies fetched messages to the database: parse → classify → thread → plan → record → outbox.
//!
//! One call handles a batch in **one transaction**. A message is therefore all-or-nothing (its
//! ticket change, raw bytes, attachments, events and outbox rows commit together or not at all),
//! while the batch pays for one fsync. If recording a message fails because of the message, the
//! batch is rolled back and written again with that message quarantined with the reason, so one
//! bad message never blocks the ones behind it. A failure of the database itself (locked, full,
//! read-only) aborts the batch; then nothing of it is committed, the UIDs stay unflagged on the
//! server, and the next attempt starts from the same place.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rusqlite::{Connection, TransactionBehavior};
use tracing::{info, warn};

use crate::auth::{self, AddressKind};
use crate::desk::Desk;
use crate::domain::Proof;
use crate::message::classify::suppress_auto_reply;
use crate::message::parse::{Inbound, ParseError, parse};
use crate::outbound::composer::{self, Composer, JOBS_AHEAD};
use crate::outbound::mails;
use crate::store::write::{self, Lookup, NewMessage};
use crate::store::{self, MailboxState, StoreError};
use crate::threading::{Thread, ThreadedBy, TicketLookup, thread};
use crate::tickets::{self, Policy, Role, Target};

/// One message as fetched from IMAP.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

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
}

/// Records a batch of messages from `mailbox`. With `advance_to`, the mailbox's last UID moves to
/// it in the same commit (it may exceed the last fetched UID when messages were expunged between
/// SEARCH and FETCH). Without it (the first sync of a mailbox) the mark is left alone, so a crash
/// mid-way repeats the first sync instead of skipping what it had not reached.
///
/// Parsing is pure and about two fifths of the work (decoding base64 attachments above all), so it
/// happens off the writing thread: `parsed_ahead` is the batch already parsed (by the watcher, while
/// the batch before was written); without it, a second thread parses a few messages ahead of the
/// writer. The batch is written in one transaction without a savepoint per message: savepoints
/// made SQLite copy every page a message touched into its statement journal, a tenth of the cost.
/// A message that fails on its content therefore rolls back the whole batch, which is written
/// again with that message quarantined (see `is_about_the_message`); each pass sets aside one more
/// message, so this ends.
pub fn record_batch(
    conn: &mut Connection,
    desk: &Desk<'_>,
    target: &Destination<'_>,
    batch: &[Fetched],
    parsed_ahead: Option<Vec<ParsedMessage>>,
) -> Result<Vec<(u32, Outcome)>, StoreError> {
    let mut refused = HashMap::new();
    let mut pass = match parsed_ahead.filter(|p| p.len() == batch.len()) {
        Some(parsed) => {
            let parsed = batch.iter().zip(parsed).map(|(m, parsed)| Parsed { uid: m.uid, raw: &m.raw, parsed });
            write_pass(conn, desk, target, parsed, batch.len(), &refused)?
        }
        None => parse_and_write(conn, desk, target, batch, &refused)?,
    };
    loop {
        match pass {
            Pass::Committed(outcomes) => {
                outcomes.iter().for_each(|(uid, o)| log_outcome(*uid, o));
                return Ok(outcomes);
            }
            Pass::Refused { uid, reason } => {
                refused.insert(uid, reason);
                pass = write_pass(conn, desk, target, batch.iter().map(parse_fetched), batch.len(), &refused)?;
            }
        }
    }
}

/// Parses on a second thread a few messages ahead of the writer.
fn parse_and_write(
    conn: &mut Connection,
    desk: &Desk<'_>,
    target: &Destination<'_>,
    batch: &[Fetched],
    refused: &HashMap<u32, String>,
) -> Result<Pass, StoreError> {
    std::thread::scope(|s| {
        if batch.len() < 2 {
            return write_pass(conn, desk, target, batch.iter().map(parse_fetched), batch.len(), refused);
        }
        let (ahead, parsed) = std::sync::mpsc::sync_channel(PARSE_AHEAD);
        let parser = std::thread::Builder::new().name("parse".into()).spawn_scoped(s, move || {
            for m in batch {
                // The writer stopped early (a refused message or a database error): so does this.
                if ahead.send(parse_fetched(m)).is_err() {
                    return;
                }
            }
        });
        match parser {
            Ok(_) => write_pass(conn, desk, target, parsed.into_iter(), batch.len(), refused),
            Err(e) => {
                warn!(error = %e, "cannot start a parsing thread; parsing on the writing thread");
                write_pass(conn, desk, target, batch.iter().map(parse_fetched), batch.len(), refused)
            }
        }
    })
}

/// How many parsed messages may wait for the writer: enough to keep both threads busy, few enough
/// that decoded attachments do not pile up in memory.
const PARSE_AHEAD: usize = 4;

/// Where a batch goes: the mailbox and UIDVALIDITY its UIDs belong to, the mark to move, the time.
pub struct Destination<'a> {
    pub mailbox: &'a str,
    pub uid_validity: u32,
    /// The mailbox's mark moves here on commit (`None`: the first sync leaves it alone).
    pub advance_to: Option<u32>,
    pub now: i64,
}

/// A fetched message after the pure first step.
struct Parsed<'a> {
    uid: u32,
    raw: &'a [u8],
    parsed: ParsedMessage,
}

/// The pure first step's result, owned: the watcher parses the next batch while this one is
/// written (see [`parse_batch`]).
pub struct ParsedMessage {
    msg: Result<Inbound, ParseError>,
    /// What the sender wrote in this message, without quotes and signature (see `reply_text`).
    visible: String,
    /// What makes this message this message (see [`content_digest`]).
    digest: String,
}

/// Parses a whole batch, for [`record_batch`]'s `parsed_ahead`.
pub fn parse_batch(batch: &[Fetched]) -> Vec<ParsedMessage> {
    batch.iter().map(|m| parse_message(&m.raw)).collect()
}

/// Never panics: every message of a batch must reach the writer, or the batch would commit without
/// it. (`parse` survives mail-parser's panics itself; this also covers quote stripping.)
fn parse_message(raw: &[u8]) -> ParsedMessage {
    let work = || {
        let msg = parse(raw);
        let visible = msg.as_ref().map(|msg| crate::reply_text::visible_text(&msg.text)).unwrap_or_default();
        let digest = msg.as_ref().map(|m| content_digest(m, &visible)).unwrap_or_default();
        (msg, visible, digest)
    };
    let (msg, visible, digest) =
        catch_unwind(AssertUnwindSafe(work)).unwrap_or((Err(ParseError::ParserPanic), String::new(), String::new()));
    ParsedMessage { msg, visible, digest }
}

/// The digest that decides whether two messages with one Message-ID are the same message: the
/// sender, the Date, the new text (whitespace collapsed, so a list's re-wrapping or footer, which
/// quote stripping removes, does not count) and every attachment's digest. The same mail fetched
/// again (another UID, a new UIDVALIDITY, a copy through a list) has the same digest; a scanner's
/// next scan or a monitor's next alert under a reused Message-ID does not.
pub fn content_digest(msg: &Inbound, visible: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(msg.from.as_ref().map(|f| f.address.as_str()).unwrap_or("").as_bytes());
    h.update([0]);
    h.update(msg.date.unwrap_or(0).to_le_bytes());
    for word in visible.split_whitespace() {
        h.update(word.as_bytes());
        h.update([b' ']);
    }
    h.update([0]);
    for a in &msg.attachments {
        h.update(a.sha256.as_bytes());
    }
    data_encoding::HEXLOWER.encode(&h.finalize())
}

fn parse_fetched(m: &Fetched) -> Parsed<'_> {
    Parsed { uid: m.uid, raw: &m.raw, parsed: parse_message(&m.raw) }
}

enum Pass {
    Committed(Vec<(u32, Outcome)>),
    /// Recording this message failed because of its content; nothing of the pass was committed.
    Refused {
        uid: u32,
        reason: String,
    },
}

/// One attempt at writing a batch in one transaction. Messages in `refused` are quarantined with
/// the reason instead of recorded.
fn write_pass<'a>(
    conn: &mut Connection,
    desk: &Desk<'_>,
    target: &Destination<'_>,
    parsed: impl Iterator<Item = Parsed<'a>>,
    expected: usize,
    refused: &HashMap<u32, String>,
) -> Result<Pass, StoreError> {
    if expected < 2 {
        return write_transaction(conn, &mut Composer::Inline(desk), target, parsed, expected, refused);
    }
    std::thread::scope(|s| {
        let (jobs, queued) = std::sync::mpsc::sync_channel(JOBS_AHEAD);
        let (made, done) = std::sync::mpsc::channel();
        let composing = std::thread::Builder::new()
            .name("compose".into())
            .spawn_scoped(s, move || composer::run_composing(desk, queued, made));
        let mut composer = match composing {
            Ok(_) => Composer::threaded(desk, jobs, done),
            Err(e) => {
                warn!(error = %e, "cannot start a composing thread; composing on the writing thread");
                Composer::Inline(desk)
            }
        };
        // Returning drops the composer, which closes the jobs channel and so ends the thread.
        write_transaction(conn, &mut composer, target, parsed, expected, refused)
    })
}

/// The pass's transaction; its outbound mail is made by `composer` and complete before the commit.
fn write_transaction<'a>(
    conn: &mut Connection,
    composer: &mut Composer<'_>,
    target: &Destination<'_>,
    parsed: impl Iterator<Item = Parsed<'a>>,
    expected: usize,
    refused: &HashMap<u32, String>,
) -> Result<Pass, StoreError> {
    let desk = composer.desk();
    let &Destination { mailbox, uid_validity, advance_to, now } = target;
    // IMMEDIATE: take the write lock up front. A deferred transaction that reads first and writes
    // later fails at once with "database is locked" if the sender committed in between.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::new();
    for p in parsed {
        let source = (mailbox, uid_validity, p.uid);
        let outcome = match refused.get(&p.uid) {
            Some(e) => {
                let reason = format!("could not be recorded: {e}");
                write::insert_quarantine(&tx, source, &reason, p.raw, now)?;
                Outcome::Quarantined { reason }
            }
            None => match record_one(&tx, desk, composer, source, &p, now) {
                Ok(outcome) => outcome,
                // Dropping the transaction rolls the batch back.
                Err(e) if is_about_the_message(&e) => return Ok(Pass::Refused { uid: p.uid, reason: e.to_string() }),
                // The database itself is in trouble (locked, full, read-only, I/O): nothing of
                // this batch commits, the messages stay unflagged on the server, and the caller
                // retries.
                Err(e) => return Err(e),
            },
        };
        outcomes.push((p.uid, outcome));
    }
    // The mark must never pass a message that was not recorded.
    if outcomes.len() != expected {
        return Err(StoreError::Internal("the parsing thread stopped before the end of the batch"));
    }
    composer.finish(&tx)?;
    if let Some(last_uid) = advance_to {
        store::set_mailbox_state(&tx, mailbox, MailboxState { uid_validity, last_uid })?;
    }
    tx.commit()?;
    Ok(Pass::Committed(outcomes))
}

/// Logged after the commit, so the log never claims a message that was rolled back.
fn log_outcome(uid: u32, outcome: &Outcome) {
    match outcome {
        Outcome::Ticket { id, created, queued, kind } => {
            info!(uid, ticket = id, created, queued, kind, "message recorded")
        }
        Outcome::Duplicate => info!(uid, "already recorded (same UID, or same Message-ID under another UID); skipped"),
        Outcome::Quarantined { reason } => warn!(uid, %reason, "message quarantined"),
    }
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
    composer: &mut Composer<'_>,
    source: (&str, u32, u32),
    parsed: &Parsed<'_>,
    now: i64,
) -> Result<Outcome, StoreError> {
    let Parsed { raw, parsed: ParsedMessage { msg, visible, digest }, .. } = parsed;
    if write::uid_known(conn, source.0, source.1, source.2)? {
        return Ok(Outcome::Duplicate);
    }
    let msg = match msg {
        Ok(msg) => msg,
        Err(e) => {
            let reason = e.to_string();
            write::insert_quarantine(conn, source, &reason, raw, now)?;
            return Ok(Outcome::Quarantined { reason });
        }
    };
    // Only the same message is a duplicate. A different message reusing a Message-ID is recorded
    // under that id with its digest appended, and the ticket says so.
    let renamed;
    let mut reused_id = None;
    let msg = match write::message_digest(conn, &msg.message_id)? {
        None => msg,
        // Recorded before digests were kept: the old rule (same id, same message) stands.
        Some(None) => return Ok(Outcome::Duplicate),
        Some(Some(d)) if d == *digest => return Ok(Outcome::Duplicate),
        Some(Some(_)) => {
            let alternative = format!("{}~{}", msg.message_id, &digest[..digest.len().min(16)]);
            if write::message_id_known(conn, &alternative)? {
                return Ok(Outcome::Duplicate);
            }
            reused_id = Some(msg.message_id.clone());
            let mut m = msg.clone();
            m.message_id = alternative;
            renamed = m;
            &renamed
        }
    };

    if let Some(b) = &msg.bounce {
        return record_bounce(conn, composer, source, (raw, digest), msg, b, now);
    }
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
    let policy = Policy {
        desk_addresses: &desk_addresses,
        technicians: &h.technicians,
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
    let mut plan = tickets::plan(&policy, &facts, state.as_ref(), &merge_allowed, now);
    if let Some(e) = lookup_error.into_inner() {
        return Err(e.into());
    }
    if let Some(original) = &reused_id {
        plan.events.push(tickets::Event {
            kind: crate::domain::EventKind::DuplicateMessageId,
            detail: format!(
                "Message-ID {original} was already used by a different message; this one is recorded as {}",
                msg.message_id
            ),
        });
    }
    // No relayed or stored text carries a technician's per-ticket address.
    let (redacted, count) = auth::redact_ticket_addresses(&plan.text, &h.address);
    if count > 0 {
        plan.text = redacted;
        plan.events.push(tickets::Event {
            kind: crate::domain::EventKind::AddressRedacted,
            detail: format!("{count} technician reply address(es) removed from the text before it was stored or sent"),
        });
    }

    // Over the size limit, only the header block is kept (the original stays on the server).
    let oversized = raw.len() > desk.config.limits.max_message_bytes;
    let header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).unwrap_or(raw.len().min(64 * 1024));
    let stored_raw = if oversized { &raw[..header_end.min(raw.len())] } else { raw };

    let (ticket, created) = match &plan.target {
        Target::Open { subject, requester, follow_up_of, automatic } => {
            // The first matching `[priority]` rule, else the default.
            let priority = desk.config.sla.priority_for(msg);
            (write::insert_ticket(conn, subject, requester.as_ref(), &priority, *follow_up_of, *automatic, now)?, true)
        }
        Target::Existing(ticket) => {
            write::touch_ticket(conn, *ticket, now)?;
            (*ticket, false)
        }
    };
    let mut new_row =
        inbound_row(msg, ticket, source, (plan.kind.as_str(), plan.internal), &plan.text, stored_raw, now);
    new_row.content_sha256 = Some(digest);
    let row = write::insert_message(conn, &new_row)?;
    let limits = &desk.config.limits;
    let mut skipped = Vec::new();
    let mut kept = Vec::new();
    let mut stored_bytes = 0usize;
    for (i, a) in msg.attachments.iter().enumerate() {
        let name = a.name.clone().unwrap_or_else(|| "(unnamed)".into());
        if oversized || i >= limits.max_attachments || stored_bytes + a.data.len() > limits.max_attachment_bytes {
            skipped.push(format!("{name} ({} bytes)", a.data.len()));
            continue;
        }
        stored_bytes += a.data.len();
        write::insert_attachment(conn, row, i, a)?;
        kept.push(i);
    }
    plan.attachments_kept = Some(kept);
    let actor = sender.unwrap_or("(unknown sender)");
    if oversized {
        let detail = format!(
            "message of {} bytes exceeds limits.max_message_mb: its text is kept, the original stays in the mailbox, attachments were not stored",
            raw.len()
        );
        write::insert_event(conn, Some(ticket), now, "maildesk", crate::domain::EventKind::Oversized, &detail)?;
    }
    if oversized {
        plan.notice = Some(format!(
            "Your message was larger than {} MB, so only its text was kept; please send attachments in smaller mails or another way.",
            desk.config.limits.max_message_bytes / (1024 * 1024)
        ));
    } else if !skipped.is_empty() {
        plan.notice =
            Some(format!("These attachments were over the size limits and were not kept: {}.", skipped.join(", ")));
    }
    if !skipped.is_empty() {
        let detail = format!("attachments not stored (limits): {}", skipped.join(", "));
        write::insert_event(
            conn,
            Some(ticket),
            now,
            "maildesk",
            crate::domain::EventKind::AttachmentsSkipped,
            &detail,
        )?;
    }
    if created {
        let detail = match &plan.target {
            Target::Open { follow_up_of: Some(old), .. } => {
                format!("ticket opened by message {} as a follow-up of closed ticket {old}", msg.message_id)
            }
            _ => format!("ticket opened by message {}", msg.message_id),
        };
        write::insert_event(conn, Some(ticket), now, actor, crate::domain::EventKind::Opened, &detail)?;
    }
    if let Role::Technician { proof, .. } = &role {
        write::insert_event(
            conn,
            Some(ticket),
            now,
            actor,
            crate::domain::EventKind::Technician,
            &format!("technician verified by {proof}"),
        )?;
    }
    for e in &plan.events {
        write::insert_event(conn, Some(ticket), now, "maildesk", e.kind, &e.detail)?;
    }
    let live = write::apply_updates(conn, ticket, &plan.updates, actor, now)?;
    crate::store::sla::refresh(conn, &desk.config.sla, live, now)?;
    let queued = mails::queue(conn, composer, msg, &plan, live, row, now)?;
    Ok(Outcome::Ticket { id: live, created, queued, kind: plan.kind.as_str() })
}

/// A delivery report: attached to the ticket of the mail it reports on, recorded as a delivery
/// failure, and reported to the technicians once per failed message and recipient. It never opens a
/// ticket and is never answered; one that matches nothing maildesk sent is quarantined with the reason.
fn record_bounce(
    conn: &Connection,
    composer: &mut Composer<'_>,
    source: (&str, u32, u32),
    (raw, digest): (&[u8], &str),
    msg: &Inbound,
    b: &crate::message::bounce::Bounce,
    now: i64,
) -> Result<Outcome, StoreError> {
    let desk = composer.desk();
    let candidates = b.message_ids.iter().chain(msg.in_reply_to.iter()).chain(msg.references.iter().rev());
    let mut original = None;
    for id in candidates {
        if let Some(found) = write::outbound_message(conn, id)? {
            original = Some((id.clone(), found));
            break;
        }
    }
    let what = format!(
        "{}{}{}",
        b.recipient.as_deref().map(|r| format!("to {r}")).unwrap_or_else(|| "to an unknown recipient".into()),
        b.status.as_deref().map(|s| format!(", status {s}")).unwrap_or_default(),
        b.diagnostic.as_deref().map(|d| format!(": {d}")).unwrap_or_default(),
    );
    let Some((original_id, (out_row, Some(ticket)))) = original else {
        let reason = format!("delivery report ({}) about mail maildesk did not send: {what}", b.action);
        write::insert_quarantine(conn, source, &reason, raw, now)?;
        return Ok(Outcome::Quarantined { reason });
    };
    let ticket = Lookup(conn).live_ticket(ticket)?.unwrap_or(ticket);
    let mut new_row =
        inbound_row(msg, ticket, source, (tickets::MessageKind::Bounce.as_str(), true), &msg.text, raw, now);
    new_row.content_sha256 = Some(digest);
    let row = write::insert_message(conn, &new_row)?;
    if !b.is_failure() {
        let detail = format!("delivery report ({}) for {original_id} {what}", b.action);
        write::insert_event(conn, Some(ticket), now, "maildesk", crate::domain::EventKind::DeliveryReport, &detail)?;
        return Ok(Outcome::Ticket {
            id: ticket,
            created: false,
            queued: 0,
            kind: tickets::MessageKind::Bounce.as_str(),
        });
    }
    let first_report = write::mark_bounced(conn, out_row, b.recipient.as_deref(), &what)?;
    let detail = format!("mail {original_id} bounced {what}");
    write::insert_event(conn, Some(ticket), now, "maildesk", crate::domain::EventKind::DeliveryFailed, &detail)?;
    let mut queued = 0;
    if first_report {
        let assignee = write::ticket_state(conn, ticket)?.and_then(|t| t.assignee);
        let to: Vec<String> = assignee.map(|a| vec![a]).unwrap_or_else(|| desk.config.helpdesk.technicians.clone());
        let mut plan = tickets::Plan::existing(ticket, tickets::MessageKind::Bounce, &detail);
        plan.internal = true;
        plan.mails = to
            .iter()
            .map(|a| tickets::Mail {
                kind: crate::domain::MailKind::DeliveryFailure,
                to: vec![crate::message::parse::Mailbox { name: None, address: a.clone() }],
            })
            .collect();
        queued = mails::queue(conn, composer, msg, &plan, ticket, row, now)?;
    }
    Ok(Outcome::Ticket { id: ticket, created: false, queued, kind: tickets::MessageKind::Bounce.as_str() })
}

/// The message row for an inbound mail; `kind` is its label and whether it is internal.
fn inbound_row<'a>(
    msg: &'a Inbound,
    ticket: i64,
    source: (&'a str, u32, u32),
    (kind, internal): (&'a str, bool),
    body_text: &'a str,
    raw: &'a [u8],
    now: i64,
) -> NewMessage<'a> {
    NewMessage {
        ticket_id: Some(ticket),
        direction: crate::domain::Direction::In,
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
