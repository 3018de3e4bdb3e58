//! maildesk's core against a second IMAP server, Cyrus 3.6 (Debian's package, default settings),
//! so that assumptions that hold only for Dovecot surface: intake and acknowledgement, threading,
//! how fast new mail is noticed when IDLE is slow (Cyrus without its idled helper announces new mail
//! only on its own 60-second poll), and recovery from SIGKILL in the middle of a backlog.

use std::time::{Duration, Instant};

use crate::common::*;

const T: Duration = Duration::from_secs(30);

/// Nothing listens here on the lab machine: an SMTP server that is down.
const CLOSED_PORT: u16 = 2599;

fn cyrus_desk(extra_imap: &str, tail: &str) -> Desk {
    Desk::with(DeskOptions {
        support_domain: CYRUS_DOMAIN,
        imap: format!("{}{extra_imap}", plain_loopback(CYRUS_PORT)),
        tail: tail.into(),
        ..DeskOptions::default()
    })
}

#[test]
fn a_request_on_cyrus_is_acknowledged_and_its_reply_joins_the_ticket() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = cyrus_desk("", "");
    desk.start();
    let alice = address("alice");
    send_smtp(
        &alice,
        &desk.support,
        &message(&alice, &desk.support, "Wi-Fi drops", "c1@alice.example.test", "", "Every ten minutes."),
    );
    let ack = wait_inbox(&alice, 1, T).remove(0);
    assert_eq!(subject(&ack), "[ACME #1] Wi-Fi drops");
    let ack_id = header(&ack, "Message-ID").unwrap();
    send_smtp(
        &alice,
        &desk.support,
        &message(
            &alice,
            &desk.support,
            "Re: Wi-Fi drops",
            "c2@alice.example.test",
            &format!("In-Reply-To: {ack_id}\r\nReferences: <c1@alice.example.test> {ack_id}\r\n"),
            "Still dropping.",
        ),
    );
    let status = desk.wait_settled(2, T);
    assert_eq!(status["tickets"]["open"], 1, "{status:#}");
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["messages"].as_array().unwrap().iter().filter(|m| m["direction"] == "in").count(), 2);
    // The desk flags what it recorded as \Seen on Cyrus too.
    assert_eq!(unseen(&desk.support), 0);
}

#[test]
fn new_mail_on_cyrus_is_noticed_within_seconds_although_its_idle_is_slow() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = cyrus_desk("", "");
    desk.start();
    desk.wait_log("IMAP connected", T);
    std::thread::sleep(Duration::from_secs(2));
    let mut took = Vec::new();
    for i in 0..3 {
        let bob = address("bob");
        let start = Instant::now();
        send_smtp(
            &bob,
            &desk.support,
            &message(
                &bob,
                &desk.support,
                &format!("Latency {i}"),
                &format!("l{i}-{}@bob.example.test", std::process::id()),
                "",
                "x",
            ),
        );
        wait_inbox(&bob, 1, T);
        took.push(start.elapsed());
    }
    eprintln!("SMTP to acknowledgement in the requester's mailbox, via Cyrus: {took:?}");
    // Cyrus itself would announce these after up to 60 s; poll_interval (1 s here) bounds the wait.
    assert!(took.iter().all(|t| *t < Duration::from_secs(10)), "{took:?}");
}

#[test]
fn sigkill_mid_backlog_on_cyrus_loses_and_repeats_nothing() {
    let Some(_lab) = crate::common::lab() else { return };
    const N: usize = 200;
    // The kills land on the IMAP side, which is what Cyrus changes: while they happen, the SMTP
    // server is a closed port, so no acknowledgement is in flight (killing the sender is covered
    // against Dovecot in spine.rs). The last run gets the real server.
    let mut desk = Desk::with(DeskOptions {
        support_domain: CYRUS_DOMAIN,
        imap: format!("{}\nbatch_size = 5", plain_loopback(CYRUS_PORT)),
        smtp: plain_loopback(CLOSED_PORT),
        tail: NO_RATE_LIMITS.into(),
        ..DeskOptions::default()
    });
    let frank = address("frank");
    let raws: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            message(&frank, &desk.support, &format!("Request {i}"), &format!("ck{i}@frank.example.test"), "", "please")
        })
        .collect();
    append(&desk.support, &raws);
    let mut progress = Vec::new();
    for delay_ms in [150u64, 400, 250, 600, 300] {
        desk.start();
        std::thread::sleep(Duration::from_millis(delay_ms));
        desk.kill9();
        progress.push(desk.status().map(|s| s["messages_ingested"].as_i64().unwrap()));
    }
    eprintln!("ingested after each kill: {progress:?}");
    assert!(progress.iter().any(|p| p.is_some_and(|n| n < N as i64)), "the kills interrupted nothing: {progress:?}");
    let config = std::fs::read_to_string(&desk.config).unwrap();
    let real = config.replace(&format!("port = {CLOSED_PORT}"), &format!("port = {SMTP_PORT}"));
    assert_ne!(config, real);
    std::fs::write(&desk.config, real).unwrap();
    desk.start();
    let status = desk.wait_settled(N as i64, Duration::from_secs(90));
    assert_eq!(status["tickets"]["open"], N as i64, "{status:#}");
    assert_eq!(status["outbox"]["sent"], N as i64, "{status:#}");
    exactly(&frank, N, Duration::from_secs(90), "one acknowledgement per request, none repeated");
}
