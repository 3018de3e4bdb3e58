//! Records fetched messages, a batch at a time: each is prepared ([`super::prepare`]: parse, new
//! text, digest), checked for duplicates, then decided ([`super::decide`]: thread, who, plan) and
//! applied ([`super::apply`]: rows, events, outbox); delivery reports go to [`super::bounce_report`].
//!
//! One call handles a batch in **one transaction**. A message is therefore all-or-nothing (its
//! ticket change, raw bytes, attachments, events and outbox rows commit together or not at all),
//! while the batch pays for one fsync. If recording a message fails because of the message, the
//! batch is rolled back and written again with that message quarantined with the reason, so one
//! bad message never blocks the ones behind it. A failure of the database itself (locked, full,
//! read-only) aborts the batch; then nothing of it is committed, the UIDs stay unflagged on the
//! server, and the next attempt starts from the same place.

use std::borrow::Cow;
use std::collections::HashMap;

use rusqlite::{Connection, TransactionBehavior};
use tracing::{info, warn};

use super::prepare::{Parsed, parse_fetched};
use super::{apply, bounce_report, decide};
use crate::desk::Desk;
use crate::message::parse::Inbound;
use crate::outbound::composer::{self, Composer, JOBS_AHEAD};
use crate::store::write;
use crate::store::{self, MailboxState, StoreError};

pub use super::apply::Outcome;
pub use super::prepare::{Fetched, ParsedMessage, content_digest, parse_batch};

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

/// Records one message exactly as a batch would, inside the caller's transaction, with its mail
/// made on this thread: for `maildesk replay --dry-run`, which rolls the transaction back. `uid`
/// numbers the message in the mailbox `replay`.
pub fn record_for_replay(
    conn: &Connection,
    desk: &Desk<'_>,
    uid: u32,
    raw: Vec<u8>,
    now: i64,
) -> Result<Outcome, StoreError> {
    let fetched = Fetched { uid, raw };
    let parsed = parse_fetched(&fetched);
    let mut composer = Composer::Inline(desk);
    let outcome = record_one(conn, desk, &mut composer, ("replay", 0, uid), &parsed, now)?;
    composer.finish(conn)?;
    Ok(outcome)
}

/// Logged after the commit, so the log never claims a message that was rolled back.
fn log_outcome(uid: u32, outcome: &Outcome) {
    match outcome {
        Outcome::Ticket { id, created, queued, kind } => {
            info!(uid, ticket = id, created, queued, kind, "message recorded")
        }
        Outcome::Duplicate => info!(uid, "already recorded (same UID, or same Message-ID under another UID); skipped"),
        Outcome::Quarantined { reason } => warn!(uid, %reason, "message quarantined"),
        Outcome::Query { answered } => info!(uid, answered, "query by mail"),
        Outcome::Approval { ticket, counted, .. } => info!(uid, ?ticket, counted, "decision on a change"),
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

/// One message: a duplicate, quarantined, a delivery report, or decided and applied.
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
    let mut reused_id = None;
    let msg: Cow<'_, Inbound> = match write::message_digest(conn, &msg.message_id)? {
        None => Cow::Borrowed(msg),
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
            Cow::Owned(m)
        }
    };
    let received = apply::Received { source, raw, digest, msg: &msg, visible };
    if let Some(b) = &msg.bounce {
        return bounce_report::record(conn, composer, &received, b, now);
    }
    if let Some(rated) = super::rating::rates(conn, desk, &msg)? {
        return super::rating::record(conn, desk, &received, rated, now);
    }
    if super::status::is_status_request(desk, &msg) {
        return super::status::record(conn, desk, &received, now);
    }
    if let Some(claim) = super::approval::claim(conn, desk, &msg, visible)? {
        return super::approval::record(conn, composer, &received, claim, now);
    }
    if super::query::is_query(desk, &msg) {
        return super::query::record(conn, desk, &received, now);
    }
    let decision = decide::decide(conn, desk, &msg, visible, reused_id.as_deref(), now)?;
    apply::apply(conn, composer, &received, decision, now)
}
