//! Renders and composes outbound mail beside the writing thread, inside the same transaction.
//!
//! Rendering templates and building MIME took about two fifths of the writing thread's time in a
//! backlog (perf), and neither needs the database. So the writer stores each outbound message's row
//! and outbox rows at once, with its text still empty, and hands a [`Job`] to a composing thread;
//! the text and bytes come back as [`Made`] and are filled in before the commit. Every query in the
//! same transaction (rate limits, threading, bounces) therefore sees every mail already queued,
//! and nothing commits half made: [`Composer::finish`] waits for every job, and a missing one fails
//! the batch.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, SyncSender};

use rusqlite::Connection;
use tracing::warn;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::compose::{Composed, Draft, Forwarded, compose};
use crate::desk::Desk;
use crate::domain::MailKind;
use crate::message::parse::Mailbox;
use crate::store::StoreError;
use crate::store::write;
use crate::templates::{Context, Rendered};

/// One outbound message, owned so that another thread can make it.
pub struct Mail {
    pub ticket: i64,
    pub kind: MailKind,
    pub ctx: Context,
    /// The first is `To`, the rest `Cc`.
    pub to: Vec<Mailbox>,
    pub reply_to: Option<String>,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// Files passed on, filled in by the sender from the stored inbound message.
    pub attachments: Vec<Forwarded>,
    pub auto_submitted: Option<&'static str>,
}

impl Mail {
    /// A generated mail (`Auto-Submitted: auto-generated`) of `kind` to one recipient, without
    /// files or `Reply-To`, threaded on `(In-Reply-To, References)`.
    pub fn generated(
        ticket: i64,
        kind: MailKind,
        to: Mailbox,
        ctx: Context,
        message_id: String,
        (in_reply_to, references): (Option<String>, Vec<String>),
    ) -> Mail {
        Mail {
            ticket,
            kind,
            ctx,
            to: vec![to],
            reply_to: None,
            message_id,
            in_reply_to,
            references,
            attachments: Vec::new(),
            auto_submitted: Some("auto-generated"),
        }
    }
}

/// A mail to render and compose, whose row is already stored with its text empty.
pub struct Job {
    pub out_row: i64,
    pub now: i64,
    pub mail: Mail,
}

/// A job's result: the rendered text and the RFC 5322 bytes (with holes for forwarded files), or
/// why the mail cannot be made.
pub struct Made {
    out_row: i64,
    ticket: i64,
    kind: MailKind,
    now: i64,
    result: Result<(Rendered, Composed), String>,
    attachments: Vec<Forwarded>,
}

/// Renders and composes. Pure; a panic in a template engine or MIME builder becomes an error, so
/// that every job gets its answer.
pub fn make(desk: &Desk<'_>, job: Job) -> Made {
    let Job { out_row, now, mail } = job;
    let work = || {
        let h = &desk.config.helpdesk;
        let rendered = desk.templates.render(mail.kind, &mail.ctx).map_err(|e| e.to_string())?;
        let (first, cc) = mail.to.split_first().ok_or("no recipient")?;
        let draft = Draft {
            from_name: &h.name,
            from_address: &h.address,
            to: first,
            cc,
            reply_to: mail.reply_to.as_deref(),
            attachments: &mail.attachments,
            stand_in_key: stand_in_key(desk.reply_secret, &mail.message_id),
            message_id: &mail.message_id,
            in_reply_to: mail.in_reply_to.as_deref(),
            references: &mail.references,
            date: now,
            auto_submitted: mail.auto_submitted,
            rendered: &rendered,
        };
        let raw = compose(&draft).map_err(|e| e.to_string())?;
        Ok::<_, String>((rendered, raw))
    };
    let result = catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err("internal error: rendering or composing panicked".to_string()));
    Made { out_row, ticket: mail.ticket, kind: mail.kind, now, result, attachments: mail.attachments }
}

/// A key per mail that only this desk can work out: the stand-ins of its forwarded files.
fn stand_in_key(secret: &[u8], message_id: &str) -> [u8; 16] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(b"maildesk stand-in\0");
    mac.update(message_id.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    key
}

/// Fills in a made message, or withdraws its rows and notes on the ticket why it was not sent.
fn store(conn: &Connection, made: Made) -> Result<(), StoreError> {
    let error = match &made.result {
        Ok((rendered, composed)) => match fill(conn, &made, rendered, composed) {
            Ok(()) => return Ok(()),
            // Larger than SQLite takes: that mail is not sent, and the message that caused it (perhaps
            // one earlier in this batch) is not to blame, so the batch goes on.
            Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::TooBig => {
                format!("too large to store ({} bytes)", composed.bytes.len())
            }
            Err(e) => return Err(e.into()),
        },
        Err(e) => e.clone(),
    };
    warn!(ticket = made.ticket, kind = %made.kind, error = %error, "mail not sent");
    write::withdraw_outbound(conn, made.out_row)?;
    let detail = format!("{} not sent: {error}", made.kind);
    write::insert_event(conn, Some(made.ticket), made.now, "maildesk", crate::domain::EventKind::MailFailed, &detail)?;
    Ok(())
}

fn fill(conn: &Connection, made: &Made, rendered: &Rendered, composed: &Composed) -> rusqlite::Result<()> {
    write::fill_outbound(conn, made.out_row, &rendered.subject, &rendered.text, &composed.bytes)?;
    for (position, (hole, file)) in composed.holes.iter().zip(&made.attachments).enumerate() {
        write::insert_outbound_file(conn, made.out_row, position, *hole, file.source_message, file.part)?;
    }
    Ok(())
}

/// Where jobs go: made at once on the calling thread, or by a composing thread.
pub enum Composer<'d> {
    Inline(&'d Desk<'d>),
    Threaded {
        desk: &'d Desk<'d>,
        /// `None` once [`Composer::finish`] has begun.
        jobs: Option<SyncSender<Job>>,
        made: Receiver<Made>,
        submitted: usize,
        stored: usize,
    },
}

/// How many jobs may wait for the composing thread before the writer waits for it.
pub const JOBS_AHEAD: usize = 64;

impl<'d> Composer<'d> {
    /// A composer whose jobs are made by a thread running [`run_composing`] on the other ends of
    /// the two channels.
    pub fn threaded(desk: &'d Desk<'d>, jobs: SyncSender<Job>, made: Receiver<Made>) -> Composer<'d> {
        Composer::Threaded { desk, jobs: Some(jobs), made, submitted: 0, stored: 0 }
    }

    /// The desk whose mail this is.
    pub fn desk(&self) -> &'d Desk<'d> {
        match self {
            Composer::Inline(desk) | Composer::Threaded { desk, .. } => desk,
        }
    }

    pub fn submit(&mut self, conn: &Connection, job: Job) -> Result<(), StoreError> {
        match self {
            Composer::Inline(desk) => store(conn, make(desk, job)),
            Composer::Threaded { jobs, made, submitted, stored, .. } => {
                let sender = jobs.as_ref().ok_or(StoreError::Internal("a job was submitted after finish"))?;
                sender.send(job).map_err(|_| StoreError::Internal("the composing thread stopped"))?;
                *submitted += 1;
                // Fill in what is ready, so that finished work does not pile up in memory.
                for m in made.try_iter() {
                    store(conn, m)?;
                    *stored += 1;
                }
                Ok(())
            }
        }
    }

    /// Waits for every submitted job and fills it in. Must run before the commit.
    pub fn finish(&mut self, conn: &Connection) -> Result<(), StoreError> {
        let Composer::Threaded { jobs, made, submitted, stored, .. } = self else { return Ok(()) };
        // Closing the channel ends the composing thread once it has made the rest.
        jobs.take();
        for m in made.iter() {
            store(conn, m)?;
            *stored += 1;
        }
        // An outbound row without its bytes would never be sent: refuse to commit.
        if stored != submitted {
            return Err(StoreError::Internal("the composing thread stopped before making every mail"));
        }
        Ok(())
    }
}

/// The composing thread's loop: makes jobs in order until the writer closes the channel.
pub fn run_composing(desk: &Desk<'_>, jobs: Receiver<Job>, made: std::sync::mpsc::Sender<Made>) {
    for job in jobs {
        // The writer gave up on the batch (it rolls back): stop.
        if made.send(make(desk, job)).is_err() {
            return;
        }
    }
}
