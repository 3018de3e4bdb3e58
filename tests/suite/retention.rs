//! Retention and erasure through the real binary, while the daemon runs: what `[retention]` and
//! `maildesk erase` remove, what they keep, and that intake goes on.

use std::time::Duration;

use rusqlite::Connection;

use crate::common::{Desk, address, answer, desk_with_tech, nanos, send_smtp, wait_inbox};

const T: Duration = Duration::from_secs(60);

/// A request with a Cc and a small attachment.
fn request(from: &str, to: &str, cc: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\n{cc}Subject: {subject}\r\nMessage-ID: <ret-{}@example.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nPlease help, {from} here.\r\n\
--XX\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=scan.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IK\r\n--XX--\r\n",
        nanos(),
        cc = if cc.is_empty() { String::new() } else { format!("Cc: {cc}\r\n") }
    )
    .into_bytes()
}

fn age_closed_ticket(desk: &Desk, ticket: i64, days: i64) {
    // Time cannot pass in a test: the ticket is made to have been closed `days` earlier.
    let conn = Connection::open(desk.path(desk.database)).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn.execute("UPDATE tickets SET closed_at = closed_at - ?2 * 86400 WHERE id = ?1", [ticket, days]).unwrap();
}

#[test]
fn erasure_removes_a_person_everywhere_while_the_daemon_runs() {
    let Some(_lab) = crate::common::lab() else { return };
    let (mut desk, _tech) = desk_with_tech("");
    let alice = address("alice");
    let bob = address("bob");
    send_smtp(&alice, &desk.support, &request(&alice, &desk.support, "", "Laptop broken"));
    desk.wait_settled(1, T);
    send_smtp(&bob, &desk.support, &request(&bob, &desk.support, &alice.to_uppercase(), "Printer jammed"));
    desk.wait_settled(2, T);
    assert_eq!(desk.json(&["show", "2"])["watchers"].as_array().map(Vec::len), Some(1), "alice watches bob's ticket");

    let dry = desk.json(&["erase", "--requester", &alice, "--dry-run"]);
    assert_eq!(dry["messages_removed"], 3, "her request, its acknowledgement, the notice quoting her: {dry:#}");
    assert_eq!(desk.json(&["show", "1"])["ticket"]["requester"], alice.as_str(), "a dry run changes nothing");

    let done = desk.json(&["erase", "--requester", &alice.to_uppercase()]);
    assert_eq!(done["tickets_anonymised"], serde_json::json!([1]));
    assert_eq!(done["tickets_touched"], serde_json::json!([1, 2]));
    let one = desk.json(&["show", "1"]);
    assert_eq!(one["ticket"]["subject"], "(erased)");
    assert!(one["ticket"]["requester"].is_null());
    assert!(one["events"].to_string().contains("erased on request"), "{one:#}");
    let two = desk.json(&["show", "2"]);
    assert_eq!(two["ticket"]["subject"], "Printer jammed", "bob's ticket is his");
    assert_eq!(two["watchers"].as_array().map(Vec::len), Some(0));
    // Intake goes on.
    let carol = address("carol");
    send_smtp(&carol, &desk.support, &request(&carol, &desk.support, "", "VPN"));
    // Her message is gone from the count: bob's and carol's.
    desk.wait_settled(2, T);
    assert_eq!(desk.json(&["tickets"]).as_array().map(Vec::len), Some(3));
    // Not a byte of her address left in the database file once the daemon has closed it.
    desk.stop();
    let mut bytes = std::fs::read(desk.path(desk.database)).unwrap();
    if let Ok(wal) = std::fs::read(desk.path(&format!("{}-wal", desk.database))) {
        bytes.extend(wal);
    }
    let needle = alice.to_ascii_lowercase();
    let lower: Vec<u8> = bytes.iter().map(u8::to_ascii_lowercase).collect();
    let found = lower.windows(needle.len()).filter(|w| *w == needle.as_bytes()).count();
    assert_eq!(found, 0, "{found} copies of the address left in the database file");
    assert!(lower.windows(carol.len()).any(|w| w == carol.as_bytes()), "the scan would find an address");
}

#[test]
fn retention_drops_originals_then_deletes_closed_tickets() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, tech) = desk_with_tech("[retention]\ndrop_raw_after = \"30d\"\ndelete_after = \"365d\"\n");
    let dana = address("dana");
    send_smtp(&dana, &desk.support, &request(&dana, &desk.support, "", "Monitor flickers"));
    let notice = wait_inbox(&tech, 1, T).remove(0);
    answer(&tech, &notice, "#close\nReplaced the cable.", "");
    desk.wait_status("the ticket closed", T, |s| s["tickets"]["closed"] == 1);
    desk.wait_settled(2, T);
    let nothing = desk.json(&["retention", "--dry-run"]);
    assert_eq!(nothing["raw_dropped_tickets"], serde_json::json!([]), "closed today: {nothing:#}");

    age_closed_ticket(&desk, 1, 40);
    let dry = desk.json(&["retention", "--dry-run"]);
    assert_eq!(dry["raw_dropped_tickets"], serde_json::json!([1]), "{dry:#}");
    assert!(dry["raw_dropped_bytes"].as_i64().unwrap() > 100);
    let done = desk.json(&["retention"]);
    assert_eq!(done["raw_dropped_tickets"], serde_json::json!([1]));
    assert_eq!(done["raw_dropped_bytes"], dry["raw_dropped_bytes"], "the dry run said what would go");
    let show = desk.json(&["show", "1"]);
    assert!(show["events"].to_string().contains("raw-dropped"), "{show:#}");
    assert_eq!(
        show["messages"][0]["text"].as_str().map(|t| t.contains("Please help")),
        Some(true),
        "text stays: {show:#}"
    );
    let status = desk.json(&["status"]);
    assert_eq!(status["retention_last_run"]["raw_dropped_tickets"], 1, "{status:#}");

    age_closed_ticket(&desk, 1, 400);
    let gone = desk.json(&["retention"]);
    assert_eq!(gone["deleted_tickets"], serde_json::json!([1]));
    assert_eq!(desk.json(&["tickets"]).as_array().map(Vec::len), Some(0));
    assert_eq!(desk.json(&["status"])["retention_last_run"]["deleted_tickets"], 1);
}
