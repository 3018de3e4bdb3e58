//! The Prometheus metrics through the real binary: scraped directly, and by the lab's real
//! Prometheus (scripts/mail-lab: it scrapes 127.0.0.1:19464 every second), which must read them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{Desk, DeskOptions, address};

const T: Duration = Duration::from_secs(60);

/// GET over HTTP/1.1 on loopback: (status line, body).
fn get(port: u16, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

/// Asks the lab's Prometheus for `query`: the first sample's value, if any.
fn prometheus(query: &str) -> Option<f64> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (_, body) = get(19090, &format!("/api/v1/query?query={encoded}"));
    let v: serde_json::Value = serde_json::from_str(body.trim().rsplit('\n').next().unwrap_or("")).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn metrics_are_served_and_a_real_prometheus_reads_them() {
    let Some(_lab) = crate::common::lab() else { return };
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let mut desk =
        Desk::with(DeskOptions { tail: "[metrics]\nlisten = \"127.0.0.1:19464\"\n".into(), ..DeskOptions::default() });
    desk.start();
    let alice = address("alice");
    desk.request(&alice, "Printer", &format!("m1-{}@alice.example.test", crate::common::nanos()), "Jammed.");
    desk.wait_settled(1, T);
    let (status, body) = get(19464, "/metrics");
    assert!(status.contains("200"), "{status}");
    for line in [
        "maildesk_messages_recorded_total 1",
        "maildesk_tickets{status=\"open\"} 1",
        "maildesk_outbox{state=\"sent\"} 1",
        "maildesk_outbox{state=\"pending\"} 0",
        "maildesk_auth_failures_total{server=\"imap\"} 0",
        "maildesk_quarantine 0",
    ] {
        assert!(body.lines().any(|l| l == line), "{line:?} missing from\n{body}");
    }
    assert!(body.lines().any(|l| l.starts_with("maildesk_last_success_age_seconds{server=\"smtp\"} ")), "{body}");
    assert!(get(19464, "/").0.contains("404"));

    // Prometheus scraped it: a sample taken after this test started, with the same values. (A
    // single scrape may time out on a loaded machine and make `up` 0 for a second: polled too.)
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fresh = prometheus("timestamp(maildesk_tickets{status=\"open\"})").is_some_and(|t| t >= started);
        if fresh
            && prometheus("maildesk_tickets{status=\"open\"}") == Some(1.0)
            && prometheus("maildesk_outbox{state=\"sent\"}") == Some(1.0)
            && prometheus("up{job=\"maildesk\"}") == Some(1.0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never read maildesk's samples (up: {:?}, tickets: {:?})",
            prometheus("up{job=\"maildesk\"}"),
            prometheus("maildesk_tickets{status=\"open\"}")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
