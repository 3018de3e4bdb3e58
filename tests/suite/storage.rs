//! Every byte stored once: files a requester sends are stored with their message and passed on to
//! each technician from there, and a sent mail keeps only its header block and text.

use std::time::Duration;

use maildesk::message::parse::{attachment_contents, parse};
use rusqlite::Connection;

use crate::common::{Desk, DeskOptions, address, append, message, nanos, text, wait_inbox};

const T: Duration = Duration::from_secs(60);

/// Bytes that do not compress or repeat, so a copy anywhere shows in the database's size.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// A request from `from` with the given files, as multipart/mixed with base64 parts.
fn request_with_files(from: &str, to: &str, subject: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = String::from("--XX\r\nContent-Type: text/plain\r\n\r\nFiles attached.\r\n");
    for (name, data) in files {
        let encoded = data_encoding::BASE64.encode(data);
        let lines: Vec<&str> = encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
        body.push_str(&format!(
            "--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        ));
    }
    body.push_str("--XX--");
    let raw = message(from, to, subject, &format!("files-{}@example.test", nanos()), "", &body);
    String::from_utf8(raw)
        .unwrap()
        .replace("Content-Type: text/plain; charset=utf-8", "Content-Type: multipart/mixed; boundary=XX")
        .into_bytes()
}

fn db(desk: &Desk) -> Connection {
    Connection::open_with_flags(desk.path(desk.database), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

fn stored_bytes(conn: &Connection, direction: &str) -> i64 {
    conn.query_row(
        "SELECT coalesce(sum(length(r.raw)), 0) FROM message_raw r JOIN messages m ON m.id = r.message_id
         WHERE m.direction = ?1",
        [direction],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn files_reach_every_technician_whole_and_are_stored_once() {
    let Some(_lab) = crate::common::lab() else { return };
    let techs = [address("tech-a"), address("tech-b"), address("tech-c")];
    let list = techs.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(", ");
    let mut desk = Desk::with(DeskOptions { helpdesk: format!("technicians = [{list}]"), ..DeskOptions::default() });
    let alice = address("alice");
    let photo = noise(2_000_000, 1);
    let notes = b"line one\r\nline two\r\n".to_vec();
    append(
        &desk.support,
        &[request_with_files(&alice, &desk.support, "Broken screen", &[("photo.jpg", &photo), ("notes.txt", &notes)])],
    );
    desk.start();
    desk.wait_settled(1, T);
    for tech in &techs {
        let notice = wait_inbox(tech, 1, T).remove(0);
        let m = parse(&notice).unwrap();
        let names: Vec<Option<&str>> = m.attachments.iter().map(|a| a.name.as_deref()).collect();
        assert_eq!(names, vec![Some("photo.jpg"), Some("notes.txt")], "{tech}");
        let files = attachment_contents(&notice, &[0, 1]);
        assert_eq!(files, vec![Some(photo.clone()), Some(notes.clone())], "{tech}");
    }
    let conn = db(&desk);
    let inbound = stored_bytes(&conn, "in");
    let outbound = stored_bytes(&conn, "out");
    assert!(inbound > 2_600_000, "the request is kept whole: {inbound} bytes");
    // Three notifications and an acknowledgement: before, each notification held a copy (8 MB).
    assert!(outbound < 20_000, "sent mail keeps its header blocks only: {outbound} bytes");
    let trimmed: i64 =
        conn.query_row("SELECT count(*) FROM message_raw WHERE trimmed_at IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(trimmed, 4);
    let texts: i64 = conn
        .query_row("SELECT count(*) FROM messages WHERE direction = 'out' AND length(body_text) > 0", [], |r| r.get(0))
        .unwrap();
    assert_eq!(texts, 4, "the text of each sent mail stays");
}

#[test]
fn files_over_the_forwarding_limit_stay_on_the_ticket_and_are_named() {
    let Some(_lab) = crate::common::lab() else { return };
    let tech = address("tech");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]"),
        tail: "[limits]\nforward_attachments_mb = 1\n".into(),
        ..DeskOptions::default()
    });
    let bob = address("bob");
    let first = noise(700_000, 2);
    let second = noise(600_000, 3);
    let third = noise(100_000, 4);
    append(
        &desk.support,
        &[request_with_files(
            &bob,
            &desk.support,
            "Crash dumps",
            &[("a.dmp", &first), ("b.dmp", &second), ("c.log", &third)],
        )],
    );
    desk.start();
    desk.wait_settled(1, T);
    let notice = wait_inbox(&tech, 1, T).remove(0);
    let m = parse(&notice).unwrap();
    let names: Vec<&str> = m.attachments.iter().filter_map(|a| a.name.as_deref()).collect();
    // In order while the total fits: a.dmp, then c.log still fits after b.dmp does not.
    assert_eq!(names, vec!["a.dmp", "c.log"]);
    assert!(
        text(&notice).contains("Not attached, too large to mail (kept with the ticket): b.dmp (600000 bytes)"),
        "{}",
        text(&notice)
    );
    let show = desk.json(&["show", "1"]);
    let kept: Vec<&str> =
        show["messages"][0]["attachments"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(kept, vec!["a.dmp", "b.dmp", "c.log"], "all three are stored");
    // The technician fetches the one that was not mailed, as `show` numbers it.
    let message = show["messages"][0]["id"].as_i64().unwrap().to_string();
    let part = show["messages"][0]["attachments"][1]["part"].as_i64().unwrap().to_string();
    let saved = desk.path("b.dmp");
    desk.cli(&["attachment", &message, &part, "--out", saved.to_str().unwrap()]);
    assert!(std::fs::read(&saved).unwrap() == second, "the saved file is the one sent");
    let again = std::process::Command::new(crate::common::bin())
        .args([
            "--config",
            desk.config.to_str().unwrap(),
            "attachment",
            &message,
            &part,
            "--out",
            saved.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!again.status.success(), "an existing file is never overwritten");
}
