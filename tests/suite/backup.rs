//! `maildesk backup` while the daemon takes in mail, and a restore from a copy.

use std::time::Duration;

use rusqlite::Connection;

use crate::common::*;

const T: Duration = Duration::from_secs(60);
const N: usize = 40;

/// Whole commits only: every ticket has the request that opened it, and every request its
/// acknowledgement (both are written in one transaction).
fn assert_consistent(copy: &std::path::Path) {
    let db = Connection::open(copy).unwrap();
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    let tickets = count("SELECT count(*) FROM tickets");
    let requests = count("SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'request'");
    let acks = count("SELECT count(*) FROM messages WHERE direction = 'out' AND kind = 'acknowledgement'");
    assert_eq!((requests, acks), (tickets, tickets), "{}: a commit was cut in half", copy.display());
    let integrity: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(integrity, "ok");
}

#[test]
fn a_backup_taken_during_intake_is_consistent_and_a_restore_loses_nothing() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    desk.start();
    desk.wait_log("IMAP connected", T);
    let sending = {
        let support = desk.support.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                // A requester each: acknowledgements to one address are rate-limited.
                let from = address("requester");
                let id = format!("b{i}-{}@example.test", nanos());
                send_smtp(&from, &support, &message(&from, &support, &format!("Request {i}"), &id, "", "help"));
            }
        })
    };
    // Copies taken while mail keeps arriving and being recorded.
    let mut copies = Vec::new();
    for (k, at_least) in [5, 20].into_iter().enumerate() {
        desk.wait_status("intake under way", T, |s| s["messages_ingested"].as_i64().unwrap_or(0) >= at_least);
        let path = desk.path(&format!("backup-{k}.db"));
        let b = desk.json(&["backup", path.to_str().unwrap()]);
        assert_eq!(b["integrity"], "ok", "{b:#}");
        assert_consistent(&path);
        copies.push((path, b["tickets"].as_i64().unwrap()));
    }
    sending.join().unwrap();
    desk.wait_settled(N as i64, T);
    // Intake went on beside the backups: everything was recorded.
    assert_eq!(desk.json(&["tickets"]).as_array().unwrap().len(), N);
    // A copy is never overwritten.
    let again = std::process::Command::new(bin())
        .arg("--config")
        .arg(&desk.config)
        .arg("backup")
        .arg(&copies[0].0)
        .output()
        .unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // Restore the copy taken mid-intake: the daemon stopped, the copy put in place of the
    // database (and its -wal and -shm files removed), the daemon started again.
    let (mid, tickets_then) = &copies[1];
    assert!(*tickets_then < N as i64, "the copy was taken mid-intake ({tickets_then} tickets)");
    desk.stop();
    let db = desk.path(desk.database);
    for ext in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    std::fs::copy(mid, &db).unwrap();
    desk.start();
    // Mail recorded after the copy is still in the mailbox above the copy's mark: read again.
    desk.wait_settled(N as i64, T);
    let subjects: std::collections::BTreeSet<String> = desk
        .json(&["tickets"])
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["subject"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(subjects.len(), N, "every request is a ticket again, none twice");
}
