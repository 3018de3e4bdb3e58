//! The outbox sender: delivers committed outbox rows over SMTP, one envelope per recipient.
//!
//! Delivery is at-least-once: a row is marked `sent` right after the server's 250, so only a crash
//! in the instant between the two can send a mail twice; nothing can be lost, because a row stays
//! `pending` until a server accepted it.
//!
//! Failures: a 5xx reply is permanent (the row becomes `failed` and the ticket records the server's
//! words); anything else (4xx, refused connection, timeout, TLS trouble) is retried on the schedule
//! of [`retry_delay`] until `smtp.retry_for` has passed since the mail was queued.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rusqlite::{Connection, params};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::config::{Config, Security};
use crate::shutdown::Shutdown;
use crate::store::{self, write};

/// The wait after the n-th failed attempt (n starts at 1): 5 s, 10 s, 20 s, ... doubling up to
/// 10 minutes, so a short outage is bridged within seconds and a long one costs a few attempts an hour.
pub fn retry_delay(attempts: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << attempts.saturating_sub(1).min(16));
    Duration::from_secs(secs.min(600))
}

/// How long the sender sleeps when nothing is due and nobody wakes it.
const IDLE_WAKEUP: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Due {
    id: i64,
    ticket: Option<i64>,
    envelope_from: String,
    recipient: String,
    raw: Vec<u8>,
    attempts: u32,
    created_at: i64,
}

enum Verdict {
    Sent,
    Retry(String),
    Failed(String),
}

pub struct Sender {
    pub config: Arc<Config>,
    pub database: PathBuf,
    pub wake: Arc<Notify>,
    pub shutdown: Shutdown,
}

impl Sender {
    pub async fn run(mut self) {
        let (mut conn, transport) = loop {
            match store::open(&self.database)
                .map_err(anyhow::Error::from)
                .and_then(|c| Ok((c, transport(&self.config)?)))
            {
                Ok(ready) => break ready,
                Err(e) => {
                    warn!(error = %e, "outbox sender cannot start; retrying in 10 s");
                    if self.shutdown.sleep(Duration::from_secs(10)).await {
                        return;
                    }
                }
            }
        };
        loop {
            let wait = match self.round(&mut conn, &transport).await {
                Ok(wait) => wait,
                Err(e) => {
                    warn!(error = %e, "outbox: database error; retrying in 10 s");
                    Duration::from_secs(10)
                }
            };
            if self.shutdown.is_requested() {
                return;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.requested() => return,
            }
        }
    }

    /// Sends everything due. Returns how long to wait before the next round.
    async fn round(
        &self,
        conn: &mut Connection,
        transport: &AsyncSmtpTransport<Tokio1Executor>,
    ) -> anyhow::Result<Duration> {
        loop {
            let now = store::now();
            let due = due_rows(conn, now, 200)?;
            if due.is_empty() {
                let next: Option<i64> = conn.query_row(
                    "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'",
                    [],
                    |r| r.get(0),
                )?;
                return Ok(next
                    .map(|t| Duration::from_secs((t - now).clamp(0, 30) as u64))
                    .unwrap_or(IDLE_WAKEUP));
            }
            let results: Vec<(Due, Verdict)> = futures_util::stream::iter(due)
                .map(|d| async move {
                    let verdict = send(transport, &d).await;
                    (d, verdict)
                })
                .buffer_unordered(self.config.smtp.connections)
                .collect()
                .await;
            let now = store::now();
            let mut any_sent = false;
            for (d, verdict) in &results {
                any_sent |= matches!(verdict, Verdict::Sent);
                tokio::task::block_in_place(|| {
                    record(conn, d, verdict, now, self.config.smtp.retry_for)
                })?;
            }
            if any_sent {
                store::set_meta(conn, "last_smtp_ok", &now.to_string())?;
            }
            if self.shutdown.is_requested()
                || results.iter().all(|(_, v)| matches!(v, Verdict::Retry(_)))
            {
                // Everything failed transiently: the server is likely down; back off instead of spinning.
                let delay = results
                    .iter()
                    .map(|(d, _)| retry_delay(d.attempts + 1))
                    .min()
                    .unwrap_or(IDLE_WAKEUP);
                return Ok(delay);
            }
        }
    }
}

fn due_rows(conn: &Connection, now: i64, limit: i64) -> rusqlite::Result<Vec<Due>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.ticket_id, o.envelope_from, o.recipient, m.raw, o.attempts, o.created_at
         FROM outbox o JOIN messages m ON m.id = o.message_id
         WHERE o.status = 'pending' AND o.next_attempt_at <= ?1
         ORDER BY o.next_attempt_at, o.id LIMIT ?2",
    )?;
    stmt.query_map(params![now, limit], |r| {
        Ok(Due {
            id: r.get(0)?,
            ticket: r.get(1)?,
            envelope_from: r.get(2)?,
            recipient: r.get(3)?,
            raw: r.get(4)?,
            attempts: r.get(5)?,
            created_at: r.get(6)?,
        })
    })?
    .collect()
}

async fn send(transport: &AsyncSmtpTransport<Tokio1Executor>, d: &Due) -> Verdict {
    let envelope = match (d.envelope_from.parse(), d.recipient.parse()) {
        (Ok(from), Ok(to)) => match Envelope::new(Some(from), vec![to]) {
            Ok(e) => e,
            Err(e) => return Verdict::Failed(format!("invalid envelope: {e}")),
        },
        _ => {
            return Verdict::Failed(format!(
                "invalid address in envelope {} -> {}",
                d.envelope_from, d.recipient
            ));
        }
    };
    match transport.send_raw(&envelope, &d.raw).await {
        Ok(_) => Verdict::Sent,
        Err(e) if e.is_permanent() => Verdict::Failed(error_text(&e)),
        Err(e) => Verdict::Retry(error_text(&e)),
    }
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

fn record(
    conn: &Connection,
    d: &Due,
    verdict: &Verdict,
    now: i64,
    retry_for: Duration,
) -> rusqlite::Result<()> {
    let attempts = d.attempts + 1;
    match verdict {
        Verdict::Sent => {
            conn.execute(
                "UPDATE outbox SET status = 'sent', attempts = ?2, sent_at = ?3, last_error = NULL WHERE id = ?1",
                params![d.id, attempts, now],
            )?;
            info!(outbox = d.id, ticket = d.ticket, to = %d.recipient, "mail sent");
        }
        Verdict::Retry(err) if now - d.created_at < retry_for.as_secs() as i64 => {
            let next = now + retry_delay(attempts).as_secs() as i64;
            conn.execute(
                "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4 WHERE id = ?1",
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
            let tx = conn.unchecked_transaction()?;
            tx.execute(
                "UPDATE outbox SET status = 'failed', attempts = ?2, last_error = ?3 WHERE id = ?1",
                params![d.id, attempts, err],
            )?;
            write::insert_event(&tx, d.ticket, now, "maildesk", "delivery-failed", &detail)?;
            tx.commit()?;
            warn!(outbox = d.id, ticket = d.ticket, "{detail}");
        }
    }
    Ok(())
}

/// Builds the SMTP transport from config: TLS mode, optional login, optional private CA.
pub fn transport(config: &Config) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    crate::tls::install_provider();
    let s = &config.smtp;
    let tls_parameters = || -> anyhow::Result<TlsParameters> {
        let mut b = TlsParameters::builder(s.host.clone());
        if let Some(ca) = &s.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| anyhow::anyhow!("smtp.ca_file {}: {e}", ca.display()))?;
            b = b.add_root_certificate(Certificate::from_pem(&pem)?);
        }
        Ok(b.build_rustls()?)
    };
    let tls = match s.security {
        Security::None => Tls::None,
        Security::Starttls => Tls::Required(tls_parameters()?),
        Security::Tls => Tls::Wrapper(tls_parameters()?),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
        .port(s.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(60)))
        .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
            s.hello_name.clone(),
        ));
    if let (Some(user), Some(pass)) = (&s.username, &s.password) {
        b = b.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
    }
    Ok(b.build())
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
