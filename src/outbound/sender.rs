//! The outbox sender: delivers committed outbox rows over SMTP, one envelope per recipient.
//!
//! A row goes `pending` → `sending` (noted just before the final "." of DATA, see [`super::smtp`])
//! → `sent` on the server's 250. A row found `sending` at start-up was cut off by a crash after its
//! "." was written, so the server has it: it becomes `sent` with `unconfirmed = 1` and an event on
//! the ticket, and is not sent again. A crash at any other moment leaves the row `pending` and the
//! server without a complete message, so it is simply sent again. Hence exactly once, except that a
//! crash inside the microseconds between the note and the write of the "." would lose that one mail;
//! it is then visible as an unconfirmed delivery, never silent. A connection that drops or times out
//! after the "." was written is different: the "." may never have arrived, so the mail is sent again
//! (at least once), and the ticket records that the recipient may see two copies.
//!
//! Failures: a 5xx reply to the mail (MAIL FROM, RCPT TO, DATA) is permanent (the row becomes
//! `failed` and the ticket records the server's words); a 5xx that refuses the session before any
//! mail is named (greeting, EHLO, STARTTLS, AUTH) is retried, since it says nothing of the mail and
//! an admin fixes it; anything else (4xx, refused connection, timeout, TLS trouble) is retried on the schedule
//! of [`retry_delay`] until `smtp.retry_for` has passed since the mail was queued.
//!
//! A database that cannot be written (locked by another writer, disk full, read-only) must not turn
//! into repeated mail: before each transaction the sender proves it can write to the row, and a
//! verdict it could not write down is kept in memory ("owed") and written before anything else is
//! sent, so a row whose mail went out is never picked up again while the process lives.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::sync::Mutex;

use lettre::address::Address;
use lettre::transport::smtp::client::AsyncSmtpConnection;
use rusqlite::{Connection, params};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::outgoing::{self, OutgoingError};
use super::smtp::{self, DeliverError, SetupError};
use crate::config::Config;
use crate::health::Task;
use crate::outbound::login_alerts::{Outcome as LoginOutcome, Server};
use crate::shutdown::Shutdown;
use crate::store::{self, write};

/// The wait after the n-th failed attempt (n starts at 1): 5 s, 10 s, 20 s, ... doubling up to
/// 10 minutes, so a short outage is bridged within seconds and a long one costs a few attempts an hour.
pub fn retry_delay(attempts: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(16));
    Duration::from_secs(secs.min(600))
}

/// A mail bigger than this on the wire is made and sent by one connection at a time, so that the
/// sender holds one large mail, not one per connection.
const LARGE_MAIL: i64 = 8 << 20;

/// How long the sender sleeps when nothing is due and nobody wakes it.
const IDLE_WAKEUP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
struct Due {
    id: i64,
    ticket: Option<i64>,
    envelope_from: String,
    recipient: String,
    /// The outbound message; its bytes are read when it is sent (see [`super::outgoing`]).
    message_row: i64,
    /// About how many bytes it has on the wire, forwarded files included.
    size: i64,
    attempts: u32,
    created_at: i64,
}

#[derive(Debug, Clone)]
enum Verdict {
    Sent,
    /// The final "." was written but no reply came (connection lost, timeout). The server may or
    /// may not have the mail; it is sent again (a lost mail is worse than a second copy, and the
    /// copy carries the same Message-ID, which mail clients fold into one), with an event saying so.
    Uncertain(String),
    Retry(String),
    Failed(String),
}

pub struct Sender {
    pub config: Arc<Config>,
    pub database: PathBuf,
    pub wake: Arc<Notify>,
    pub shutdown: Shutdown,
    /// Where this task notes its progress, for systemd's watchdog.
    pub health: Arc<crate::health::Health>,
    /// Where XOAUTH2 tokens come from, when `smtp.auth` is "xoauth2".
    pub tokens: Option<Arc<crate::oauth::TokenSource>>,
}

/// An open SMTP connection, and when it must be replaced so that the next one logs in with a
/// fresh token (`None`: a password login, kept as long as it works).
struct Link {
    conn: AsyncSmtpConnection,
    renew_at: Option<i64>,
}

impl Sender {
    pub async fn run(mut self) {
        let conn = loop {
            match open(&self.database) {
                Ok(conn) => break Mutex::new(conn),
                Err(e) => {
                    warn!(error = %e, "outbox sender cannot open the database; retrying in 10 s");
                    if self.shutdown.sleep(Duration::from_secs(10)).await {
                        return;
                    }
                }
            }
        };
        let owed = Mutex::new(Vec::new());
        loop {
            self.health.busy(Task::Sender);
            let wait = match self.round(&conn, &owed).await {
                Ok(wait) => wait,
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "outbox: the database cannot be written; nothing is sent until it can; retrying in 10 s");
                    Duration::from_secs(10)
                }
            };
            if self.shutdown.is_requested() {
                return;
            }
            self.health.waiting(Task::Sender);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.requested() => return,
            }
        }
    }

    /// Sends everything due over up to `smtp.connections` connections. Returns how long to wait
    /// before the next round.
    async fn round(&self, conn: &Mutex<Connection>, owed: &Mutex<Vec<(Due, Verdict)>>) -> anyhow::Result<Duration> {
        pay_owed(conn, owed, self.config.smtp.retry_for)?;
        loop {
            let now = store::now();
            let due = due_rows(&lock(conn), now, 200)?;
            if due.is_empty() {
                let next: Option<i64> = lock(conn).query_row(
                    "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'",
                    [],
                    |r| r.get(0),
                )?;
                return Ok(next.map(|t| Duration::from_secs((t - now).clamp(0, 30) as u64)).unwrap_or(IDLE_WAKEUP));
            }
            let lanes = self.config.smtp.connections.min(due.len());
            let mut queues: Vec<Vec<Due>> = (0..lanes).map(|_| Vec::new()).collect();
            for (i, d) in due.into_iter().enumerate() {
                queues[i % lanes].push(d);
            }
            let large = tokio::sync::Mutex::new(());
            let tallies =
                futures_util::future::join_all(queues.into_iter().map(|q| self.lane(conn, owed, &large, q))).await;
            let mut total = Tally::default();
            for t in tallies {
                let t = t?;
                total.sent += t.sent;
                total.failed += t.failed;
                total.retry.extend(t.retry);
            }
            if total.sent > 0 {
                store::set_meta(&lock(conn), "last_smtp_ok", &store::now().to_string())?;
            }
            if self.shutdown.is_requested() || (total.sent == 0 && total.failed == 0) {
                // Everything failed transiently: the server is likely down; back off, don't spin.
                return Ok(total.retry.into_iter().min().unwrap_or(IDLE_WAKEUP));
            }
        }
    }

    /// One connection's share of a round, sent in order. A connection that fails is dropped and
    /// the rest of the lane waits for the next round, so a dead server costs one attempt per lane.
    async fn lane(
        &self,
        conn: &Mutex<Connection>,
        owed: &Mutex<Vec<(Due, Verdict)>>,
        large: &tokio::sync::Mutex<()>,
        queue: Vec<Due>,
    ) -> rusqlite::Result<Tally> {
        let mut tally = Tally::default();
        let mut link: Option<Link> = None;
        for d in queue {
            if self.shutdown.is_requested() {
                break;
            }
            let one_at_a_time = if d.size > LARGE_MAIL { Some(large.lock().await) } else { None };
            let sent = self.send_one(conn, &mut link, &d).await;
            if one_at_a_time.is_some() {
                crate::memory::release_after_large_mail();
            }
            drop(one_at_a_time);
            let verdict = match sent {
                Ok(verdict) => verdict,
                // Nothing was sent: the row stays as it was, and the lane stops.
                Err(e) => {
                    if let Some(mut l) = link.take() {
                        l.conn.abort().await;
                    }
                    return Err(e);
                }
            };
            self.health.busy(Task::Sender);
            let broken = !matches!(verdict, Verdict::Sent);
            match &verdict {
                Verdict::Sent => tally.sent += 1,
                Verdict::Failed(_) => tally.failed += 1,
                Verdict::Retry(_) | Verdict::Uncertain(_) => tally.retry.push(retry_delay(d.attempts + 1)),
            }
            let recorded = tokio::task::block_in_place(|| {
                record(&lock(conn), &d, &verdict, store::now(), self.config.smtp.retry_for)
            });
            if let Err(e) = recorded {
                lock_owed(owed).push((d, verdict));
                if let Some(mut l) = link.take() {
                    l.conn.abort().await;
                }
                return Err(e);
            }
            if broken {
                // After a refusal the session is mid-transaction; a fresh one is simplest.
                if let Some(mut l) = link.take() {
                    l.conn.abort().await;
                }
                if matches!(verdict, Verdict::Retry(_) | Verdict::Uncertain(_)) {
                    break;
                }
            }
        }
        if let Some(mut l) = link {
            let _ = l.conn.quit().await;
        }
        Ok(tally)
    }

    /// A new connection, logged in with a password or a token; with the token's expiry.
    async fn connect(&self) -> Result<(Link, Option<i64>), SetupError> {
        match &self.tokens {
            None => {
                let conn = smtp::connect(&self.config, smtp::SmtpLogin::Password).await?;
                Ok((Link { conn, renew_at: None }, None))
            }
            Some(source) => {
                let token = source.token().await?;
                let login = smtp::SmtpLogin::Token { user: &source.user, token: &token, source };
                let conn = smtp::connect(&self.config, login).await?;
                Ok((Link { conn, renew_at: Some(token.renew_at()) }, Some(token.expires_at)))
            }
        }
    }

    /// Notes a login's outcome for `status` and the admins' alerts (which may queue a mail, sent in
    /// this round or the next).
    fn note_login(&self, conn: &Mutex<Connection>, outcome: &LoginOutcome) {
        let noted = tokio::task::block_in_place(|| {
            crate::outbound::login_alerts::record(&mut lock(conn), &self.config, &Server::Smtp, outcome, store::now())
        });
        match noted {
            Ok(Some(_)) => self.wake.notify_one(),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "cannot note the SMTP login's state"),
        }
    }

    /// Sends one row. Err means the database refused the write that must precede a send, and
    /// nothing was sent.
    async fn send_one(&self, conn: &Mutex<Connection>, link: &mut Option<Link>, d: &Due) -> rusqlite::Result<Verdict> {
        let (Ok(from), Ok(to)) = (d.envelope_from.parse::<Address>(), d.recipient.parse::<Address>()) else {
            return Ok(Verdict::Failed(format!("invalid address in envelope {} -> {}", d.envelope_from, d.recipient)));
        };
        // The same kind of write as the `sending` note below: if the database cannot take it now
        // (locked, full, read-only), the mail is not started.
        tokio::task::block_in_place(|| {
            lock(conn).prepare_cached("UPDATE outbox SET attempts = attempts WHERE id = ?1")?.execute([d.id])
        })?;
        if link.as_ref().is_some_and(|l| l.renew_at.is_some_and(|at| store::now() >= at)) {
            // Its token is near expiry: end it before the server does.
            if let Some(mut l) = link.take() {
                let _ = l.conn.quit().await;
            }
        }
        if link.is_none() {
            match self.connect().await {
                Ok(l) => {
                    self.note_login(conn, &LoginOutcome::Ok { token_expires_at: l.1 });
                    *link = Some(l.0);
                }
                Err(e) if e.is_login() => {
                    self.health.smtp_auth_failed();
                    let said = match &e {
                        SetupError::Smtp(e) => error_text(e),
                        other => other.to_string(),
                    };
                    self.note_login(conn, &LoginOutcome::Failed(said.clone()));
                    return Ok(Verdict::Retry(format!("the SMTP server refused the login: {said}")));
                }
                // A 5xx before any mail was named (greeting, EHLO, STARTTLS) refuses the session,
                // not this mail: a blocked address is fixed by the admin, and the mail must still
                // go then. Retried like any outage, until smtp.retry_for.
                Err(SetupError::Smtp(e)) if e.is_permanent() => {
                    return Ok(Verdict::Retry(format!(
                        "the SMTP server refused the session (check [smtp] host, security and credentials): {}",
                        error_text(&e)
                    )));
                }
                Err(SetupError::Smtp(e)) => return Ok(Verdict::Retry(error_text(&e))),
                Err(e) => return Ok(Verdict::Retry(e.to_string())),
            }
        }
        let Some(Link { conn: l, .. }) = link.as_mut() else { return Ok(Verdict::Retry("no connection".into())) };
        // Read last, so a connection holds one mail's files at a time.
        let raw = match tokio::task::block_in_place(|| outgoing::bytes(&lock(conn), d.message_row)) {
            Ok(raw) => raw,
            Err(OutgoingError::Sql(e)) => return Err(e),
            Err(e) => return Ok(Verdict::Failed(format!("cannot be made: {e}"))),
        };
        let dot_next = std::sync::atomic::AtomicBool::new(false);
        let mark = || {
            dot_next.store(true, std::sync::atomic::Ordering::SeqCst);
            if let Err(e) = lock(conn).execute("UPDATE outbox SET status = 'sending' WHERE id = ?1", [d.id]) {
                warn!(outbox = d.id, error = %e, "cannot note the send in progress; a crash now could repeat it");
            }
        };
        let dot_written = || dot_next.load(std::sync::atomic::Ordering::SeqCst);
        Ok(match smtp::deliver(l, &from, &to, &raw, self.config.smtp.timeout, mark).await {
            Ok(_) => Verdict::Sent,
            Err(DeliverError::Smtp(e)) if e.is_permanent() => Verdict::Failed(error_text(&e)),
            Err(e) => {
                let refused = matches!(&e, DeliverError::Smtp(e) if e.is_transient());
                let text = match &e {
                    DeliverError::Smtp(e) => error_text(e),
                    timeout => timeout.to_string(),
                };
                // A 4xx reply, or trouble before the final ".": the server does not have the mail.
                if refused || !dot_written() { Verdict::Retry(text) } else { Verdict::Uncertain(text) }
            }
        })
    }
}

#[derive(Default)]
struct Tally {
    sent: usize,
    failed: usize,
    retry: Vec<Duration>,
}

fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock_owed(owed: &Mutex<Vec<(Due, Verdict)>>) -> std::sync::MutexGuard<'_, Vec<(Due, Verdict)>> {
    owed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes down verdicts the database refused earlier, oldest first; stops at the first refusal.
fn pay_owed(conn: &Mutex<Connection>, owed: &Mutex<Vec<(Due, Verdict)>>, retry_for: Duration) -> rusqlite::Result<()> {
    let mut owed = lock_owed(owed);
    while let Some((d, verdict)) = owed.first() {
        record(&lock(conn), d, verdict, store::now(), retry_for)?;
        owed.remove(0);
    }
    Ok(())
}

/// Opens the sender's connection and settles rows a crash left `sending`.
fn open(path: &std::path::Path) -> anyhow::Result<Connection> {
    let conn = store::open(path)?;
    // Noting a send must be quick: NORMAL in WAL mode survives a process crash without an fsync
    // per note; only a power cut can undo one, and then the mail is sent again, never lost.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    settle_interrupted(&conn, store::now())?;
    Ok(conn)
}

/// Rows left `sending` had their final "." written before the crash: the server has them.
pub fn settle_interrupted(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let rows: Vec<(i64, Option<i64>, String, i64)> = tx
        .prepare("SELECT id, ticket_id, recipient, message_id FROM outbox WHERE status = 'sending'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, ticket, recipient, message_row) in &rows {
        tx.prepare_cached(
            "UPDATE outbox SET status = 'sent', unconfirmed = 1, attempts = attempts + 1, sent_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, now])?;
        let detail = format!(
            "mail to {recipient} was fully transmitted when maildesk stopped, before the server's reply; \
             it is counted as sent (unconfirmed) and not sent again"
        );
        write::insert_event(&tx, *ticket, now, "maildesk", crate::domain::EventKind::DeliveryUnconfirmed, &detail)?;
        write::trim_sent(&tx, *message_row, now)?;
        warn!(outbox = id, "{detail}");
    }
    tx.commit()?;
    Ok(rows.len())
}

fn due_rows(conn: &Connection, now: i64, limit: i64) -> rusqlite::Result<Vec<Due>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.ticket_id, o.envelope_from, o.recipient, o.message_id, o.attempts, o.created_at,
                coalesce((SELECT length(raw) FROM message_raw WHERE message_id = o.message_id), 0)
                + coalesce((SELECT sum(a.size) FROM outbound_files f
                            JOIN attachments a ON a.message_id = f.source_message AND a.part = f.part
                            WHERE f.message_id = o.message_id), 0) * 4 / 3
         FROM outbox o
         WHERE o.status = 'pending' AND o.next_attempt_at <= ?1
         ORDER BY o.next_attempt_at, o.id LIMIT ?2",
    )?;
    stmt.query_map(params![now, limit], |r| {
        Ok(Due {
            id: r.get(0)?,
            ticket: r.get(1)?,
            envelope_from: r.get(2)?,
            recipient: r.get(3)?,
            message_row: r.get(4)?,
            attempts: r.get(5)?,
            created_at: r.get(6)?,
            size: r.get(7)?,
        })
    })?
    .collect()
}

/// lettre's Display omits the server's own words, which are what an admin needs.
fn error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn record(conn: &Connection, d: &Due, verdict: &Verdict, now: i64, retry_for: Duration) -> rusqlite::Result<()> {
    let attempts = d.attempts + 1;
    match verdict {
        Verdict::Sent => {
            let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
            tx.prepare_cached(
                "UPDATE outbox SET status = 'sent', attempts = ?2, sent_at = ?3, last_error = NULL WHERE id = ?1",
            )?
            .execute(params![d.id, attempts, now])?;
            write::trim_sent(&tx, d.message_row, now)?;
            tx.commit()?;
            info!(outbox = d.id, ticket = d.ticket, to = %d.recipient, "mail sent");
        }
        Verdict::Uncertain(err) => {
            let detail = format!(
                "the connection to the SMTP server was lost after the whole mail to {} was sent ({err}); \
                 it is sent again, so the recipient may see two copies with the same Message-ID",
                d.recipient
            );
            write::insert_event(conn, d.ticket, now, "maildesk", crate::domain::EventKind::DeliveryUncertain, &detail)?;
            warn!(outbox = d.id, ticket = d.ticket, "{detail}");
            return record(conn, d, &Verdict::Retry(err.clone()), now, retry_for);
        }
        Verdict::Retry(err) if now - d.created_at < retry_for.as_secs() as i64 => {
            let next = now + retry_delay(attempts).as_secs() as i64;
            conn.prepare_cached("UPDATE outbox SET status = 'pending', attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE id = ?1")?.execute(
                params![d.id, attempts, next, err],
            )?;
            warn!(outbox = d.id, to = %d.recipient, attempts, error = %err, "sending failed; will retry");
        }
        Verdict::Retry(err) | Verdict::Failed(err) => {
            let gave_up = matches!(verdict, Verdict::Retry(_));
            let detail = if gave_up {
                format!(
                    "mail to {} not delivered after {attempts} attempts over {}s: {err}",
                    d.recipient,
                    now - d.created_at
                )
            } else {
                format!("mail to {} refused permanently: {err}", d.recipient)
            };
            let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
            tx.prepare_cached("UPDATE outbox SET status = 'failed', attempts = ?2, last_error = ?3 WHERE id = ?1")?
                .execute(params![d.id, attempts, err])?;
            write::insert_event(&tx, d.ticket, now, "maildesk", crate::domain::EventKind::DeliveryFailed, &detail)?;
            write::trim_sent(&tx, d.message_row, now)?;
            tx.commit()?;
            warn!(outbox = d.id, ticket = d.ticket, "{detail}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_schedule_doubles_and_caps() {
        let secs: Vec<u64> = (1..=10).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(secs, vec![5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(retry_delay(0).as_secs(), 5);
        assert_eq!(retry_delay(u32::MAX).as_secs(), 600);
    }
}
