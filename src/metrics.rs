//! Opt-in Prometheus metrics: `[metrics] listen = "127.0.0.1:9464"` serves `GET /metrics` in the
//! OpenMetrics text format (which Prometheus reads), encoded by the `prometheus-client` crate.
//!
//! Each scrape reads a snapshot from the database (tickets by status, the outbox, the quarantine,
//! SLA breaches and escalations, when IMAP and SMTP last worked) and adds what the tasks counted
//! since the daemon started (messages recorded and quarantined, authentication failures), so the
//! figures are the database's own and nothing is kept twice. Only counts leave the process: no
//! address, subject or text.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tracing::{info, warn};

use crate::health::{Counts, Health};
use crate::shutdown::Shutdown;
use crate::store::{self, read::MetricsSnapshot};

/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub struct MetricsServer {
    pub listen: SocketAddr,
    pub database: PathBuf,
    pub health: Arc<Health>,
    pub shutdown: Shutdown,
}

impl MetricsServer {
    pub async fn run(mut self) {
        let listener = match tokio::net::TcpListener::bind(self.listen).await {
            Ok(l) => l,
            Err(e) => {
                // The desk works without its metrics: say so and wait for the stop.
                warn!(listen = %self.listen, error = %e, "metrics: cannot listen; no metrics are served");
                self.shutdown.requested().await;
                return;
            }
        };
        info!(listen = %self.listen, "metrics served at /metrics");
        let state = Arc::new(State {
            database: self.database.clone(),
            health: self.health.clone(),
            conn: std::sync::Mutex::new(None),
        });
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = self.shutdown.requested() => return,
            };
            let Ok((stream, _)) = accepted else { continue };
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| answer(req, state.clone()));
                let connection = hyper::server::conn::http1::Builder::new()
                    .header_read_timeout(REQUEST_TIMEOUT)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                let _ = tokio::time::timeout(Duration::from_secs(60), connection).await;
            });
        }
    }
}

/// What every scrape shares: one read connection, opened on the first scrape and again after an
/// error, so a scrape runs two queries, not a database open with its pragmas.
struct State {
    database: PathBuf,
    health: Arc<Health>,
    conn: std::sync::Mutex<Option<rusqlite::Connection>>,
}

async fn answer(req: Request<hyper::body::Incoming>, state: Arc<State>) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = content_type.parse() {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        Ok(r)
    };
    if req.method() != hyper::Method::GET || req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "text/plain", "maildesk serves /metrics only\n".into());
    }
    let counts = state.health.counts();
    let snapshot = tokio::task::spawn_blocking(move || {
        let mut conn = state.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if conn.is_none() {
            *conn = Some(store::open_existing(&state.database)?);
        }
        let read = conn.as_ref().map(|c| store::read::metrics_snapshot(c, store::now()));
        match read {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => {
                conn.take();
                Err(e)
            }
            None => Err(store::StoreError::Internal("no database connection")),
        }
    })
    .await;
    match snapshot {
        Ok(Ok(s)) => match render(&s, counts) {
            Ok(text) => reply(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", text),
            Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("encoding: {e}\n")),
        },
        Ok(Err(e)) => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", format!("{e}\n")),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("{e}\n")),
    }
}

type Labels = Vec<(&'static str, &'static str)>;

/// The metrics in the OpenMetrics text format. Pure.
pub fn render(s: &MetricsSnapshot, counts: Counts) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("maildesk");
    let counter = |registry: &mut Registry, name: &str, help: &str, value: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        registry.register(name, help, c);
    };
    let gauge = |registry: &mut Registry, name: &str, help: &str, value: i64| {
        let g = Gauge::<i64>::default();
        g.set(value);
        registry.register(name, help, g);
    };
    counter(&mut registry, "messages_recorded", "Messages recorded since the daemon started", counts.recorded);
    counter(
        &mut registry,
        "messages_quarantined",
        "Messages quarantined (could not become a ticket) since the daemon started",
        counts.quarantined,
    );
    let auth = Family::<Labels, Counter>::default();
    auth.get_or_create(&vec![("server", "imap")]).inc_by(counts.imap_auth_failures);
    auth.get_or_create(&vec![("server", "smtp")]).inc_by(counts.smtp_auth_failures);
    registry.register("auth_failures", "Logins the IMAP or SMTP server refused, since the daemon started", auth);

    let tickets = Family::<Labels, Gauge>::default();
    for (status, n) in &s.tickets {
        tickets.get_or_create(&vec![("status", status.as_str())]).set(*n);
    }
    registry.register("tickets", "Tickets by status", tickets);
    let outbox = Family::<Labels, Gauge>::default();
    outbox.get_or_create(&vec![("state", "pending")]).set(s.outbox_pending);
    outbox.get_or_create(&vec![("state", "sent")]).set(s.outbox_sent);
    outbox.get_or_create(&vec![("state", "failed")]).set(s.outbox_failed);
    registry.register("outbox", "Outbox rows (one per mail and recipient) by state", outbox);
    gauge(
        &mut registry,
        "outbox_oldest_pending_seconds",
        "Age of the oldest mail waiting to be sent; 0 when none waits",
        s.outbox_oldest_pending_secs,
    );
    gauge(&mut registry, "quarantine", "Messages in the quarantine", s.quarantined);
    let breaches = Family::<Labels, Gauge>::default();
    breaches.get_or_create(&vec![("target", "first_response")]).set(s.first_response_breaches);
    breaches.get_or_create(&vec![("target", "resolution")]).set(s.resolution_breaches);
    registry.register("sla_breached_tickets", "Tickets whose SLA target was breached", breaches);
    gauge(&mut registry, "escalations_fired", "SLA escalation levels fired", s.escalations_fired);
    let since = Family::<Labels, Gauge>::default();
    if let Some(secs) = s.imap_ok_secs_ago {
        since.get_or_create(&vec![("server", "imap")]).set(secs);
    }
    if let Some(secs) = s.smtp_ok_secs_ago {
        since.get_or_create(&vec![("server", "smtp")]).set(secs);
    }
    registry.register(
        "last_success_age_seconds",
        "Seconds since the last successful IMAP session or SMTP delivery (absent: never)",
        since,
    );
    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TicketStatus;

    #[test]
    fn every_metric_is_named_typed_and_valued() {
        let s = MetricsSnapshot {
            tickets: TicketStatus::ALL.iter().map(|s| (*s, 3)).collect(),
            outbox_pending: 2,
            outbox_sent: 40,
            outbox_failed: 1,
            outbox_oldest_pending_secs: 75,
            quarantined: 4,
            first_response_breaches: 5,
            resolution_breaches: 6,
            escalations_fired: 7,
            imap_ok_secs_ago: Some(12),
            smtp_ok_secs_ago: None,
        };
        let counts = Counts { recorded: 9, quarantined: 1, imap_auth_failures: 2, smtp_auth_failures: 0 };
        let text = render(&s, counts).unwrap();
        for line in [
            "# TYPE maildesk_messages_recorded counter",
            "maildesk_messages_recorded_total 9",
            "maildesk_messages_quarantined_total 1",
            "maildesk_auth_failures_total{server=\"imap\"} 2",
            "maildesk_tickets{status=\"pending\"} 3",
            "maildesk_outbox{state=\"sent\"} 40",
            "maildesk_outbox_oldest_pending_seconds 75",
            "maildesk_quarantine 4",
            "maildesk_sla_breached_tickets{target=\"resolution\"} 6",
            "maildesk_escalations_fired 7",
            "maildesk_last_success_age_seconds{server=\"imap\"} 12",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
        }
        assert!(!text.contains("server=\"smtp\"} 0\nmaildesk_last"), "no SMTP success: no sample");
        assert!(!text.lines().any(|l| l.starts_with("maildesk_last_success_age_seconds{server=\"smtp\"}")));
    }
}
