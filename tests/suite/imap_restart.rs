//! The IMAP server restarts in the middle of a backlog. Its own test binary: restarting the lab's
//! Dovecot would break the connections of tests running beside it.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

fn restart_dovecot() {
    let pidfile = format!("{}/run/dovecot/master.pid", lab_dir());
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "dovecot did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    // With shutdown_clients = yes the master's children go with it; in some sandboxes they outlive
    // it, so end them as a real restart would.
    let _ = Command::new("pkill").args(["-TERM", "-f", "dovecot-maildesk-lab/"]).status();
    // Down for a moment, as during a package upgrade.
    std::thread::sleep(Duration::from_secs(2));
    let out =
        Command::new(repo_path("scripts/mail-lab")).arg("start").stdin(std::process::Stdio::null()).output().unwrap();
    assert!(out.status.success(), "mail-lab start: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn dovecot_restarted_mid_backlog_loses_and_repeats_nothing() {
    // Restarting Dovecot cuts every session: no other lab test runs meanwhile.
    let Some(_lab) = crate::common::lab_exclusive() else { return };
    // Dovecot goes down at maildesk's 10th UID FETCH: after the sizes, as it asks for its 9th batch of 5.
    let tap = Tap::start(IMAP_PORT, b"UID FETCH", 10, restart_dovecot);
    let mut desk = Desk::with(DeskOptions {
        imap: format!("{}\nbatch_size = 5", plain_loopback(tap.port)),
        tail: NO_RATE_LIMITS.into(),
        ..DeskOptions::default()
    });
    const N: usize = 300;
    let kim = address("kim");
    let raws: Vec<Vec<u8>> = (0..N)
        .map(|i| message(&kim, &desk.support, &format!("Restart test {i}"), &format!("r{i}@kim.example.test"), "", "x"))
        .collect();
    append(&desk.support, &raws);
    desk.start();
    let status = desk.wait_settled(N as i64, Duration::from_secs(120));
    assert_eq!(status["tickets"]["open"], N as i64, "{status:#}");
    let logs = desk.logs();
    assert!(logs.contains("IMAP session ended"), "the restart cut the session:\n{logs}");
    // Acknowledgements delivered while Dovecot was down wait in Postfix's queue and arrive later.
    wait_inbox(&kim, N, Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    let acks = inbox(&kim);
    let mut subjects: Vec<String> = acks.iter().map(|a| subject(a)).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), N, "one acknowledgement per request");
    // maildesk handed each acknowledgement to Postfix once: one Postfix queue id each. (Dovecot may
    // store a copy twice on its own: shutting down, its LMTP can save a message and still answer
    // 421 to the end of DATA, and Postfix then delivers that same queue file again.)
    let mut submissions: Vec<String> = acks.iter().map(|a| postfix_queue_id(a)).collect();
    submissions.sort();
    submissions.dedup();
    assert_eq!(submissions.len(), N, "no acknowledgement submitted twice");
}

/// The queue id Postfix gave a message when maildesk submitted it (its `Received:` header).
fn postfix_queue_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let marker = "(Postfix) with ESMTP id ";
    let at = text.find(marker).expect("a Received header from Postfix") + marker.len();
    text[at..].split_whitespace().next().unwrap_or_default().to_string()
}
