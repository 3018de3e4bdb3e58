//! The spine, end to end through the real binary, real Postfix and real Dovecot: mail in, ticket
//! recorded, acknowledgement in the requester's INBOX, replies threaded, nothing twice.

use std::time::Duration;

use crate::common::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn new_request_gets_ticket_and_acknowledgement_and_reply_joins_it() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    let alice = address("alice");
    desk.start();
    send_smtp(
        &alice,
        &desk.support,
        &message(
            &format!("Alice <{alice}>"),
            &desk.support,
            "Printer on floor 3 is jammed",
            "req-1@alice.example.test",
            "",
            "It says E42.",
        ),
    );

    let acks = wait_inbox(&alice, 1, T);
    let ack = &acks[0];
    assert_eq!(subject(ack), "[ACME #1] Printer on floor 3 is jammed");
    assert_eq!(header(ack, "In-Reply-To").as_deref(), Some("<req-1@alice.example.test>"));
    assert_eq!(header(ack, "References").as_deref(), Some("<req-1@alice.example.test>"));
    assert_eq!(header(ack, "Auto-Submitted").as_deref(), Some("auto-replied"));
    assert_eq!(header(ack, "X-Loop").as_deref(), Some(desk.support.as_str()));
    let ack_id = header(ack, "Message-ID").unwrap();
    assert!(ack_id.ends_with("@example.test>"), "Message-ID under the support domain: {ack_id}");
    let body = String::from_utf8_lossy(ack);
    assert!(body.contains("ACME IT") && body.contains("[ACME #1]"), "ack is rendered from the templates");
    assert!(body.contains("text/html"), "the shipped templates include an HTML part");

    // Alice replies from her mail client: subject tag and References.
    send_smtp(
        &alice,
        &desk.support,
        &message(
            &alice,
            &desk.support,
            "Re: [ACME #1] Printer on floor 3 is jammed",
            "req-2@alice.example.test",
            &format!("In-Reply-To: {ack_id}\r\nReferences: <req-1@alice.example.test> {ack_id}\r\n"),
            "Still jammed.\r\n\r\n> Hello Alice,",
        ),
    );
    desk.wait_settled(2, T);
    let tickets = desk.json(&["tickets"]);
    assert_eq!(tickets.as_array().unwrap().len(), 1, "{tickets:#}");
    let show = desk.json(&["show", "1"]);
    let msgs = show["messages"].as_array().unwrap();
    let dirs: Vec<(&str, &str)> =
        msgs.iter().map(|m| (m["direction"].as_str().unwrap(), m["kind"].as_str().unwrap())).collect();
    assert_eq!(dirs, vec![("in", "request"), ("out", "acknowledgement"), ("in", "reply")]);
    assert_eq!(msgs[2]["from"], alice.as_str());
    assert!(msgs[2]["text"].as_str().unwrap().contains("Still jammed."));
    assert_eq!(msgs[1]["delivery"][0]["status"], "sent");
    desk.assert_mailed(&alice, 1, "a reply must not be acknowledged again");

    // The human views work on the same data.
    let human = desk.cli(&["show", "1"]);
    assert!(human.contains("[ACME #1] Printer on floor 3 is jammed") && human.contains("Still jammed."), "{human}");
    let (took, ok) = desk.stop();
    assert!(ok, "clean exit on SIGTERM");
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
}

#[test]
fn threading_by_references_foreign_tags_and_unknown_numbers() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    let bob = address("bob");
    desk.start();
    send_smtp(
        &bob,
        &desk.support,
        &message(&bob, &desk.support, "VPN drops every hour", "v1@bob.example.test", "", "Since Monday."),
    );
    let ack = wait_inbox(&bob, 1, T).remove(0);
    let ack_id = header(&ack, "Message-ID").unwrap();

    // A mangled subject (tag removed by a client) still threads by References.
    send_smtp(
        &bob,
        &desk.support,
        &message(
            &bob,
            &desk.support,
            "AW: VPN drops",
            "v2@bob.example.test",
            &format!("References: {ack_id}\r\n"),
            "More logs.",
        ),
    );
    // Another desk's tag with the same number opens a new ticket...
    send_smtp(
        &bob,
        &desk.support,
        &message(&bob, &desk.support, "Re: [OTHER #1] Laptop", "v3@bob.example.test", "", "x"),
    );
    // ...and so does our tag with a number that does not exist.
    send_smtp(
        &bob,
        &desk.support,
        &message(&bob, &desk.support, "Re: [ACME #99] Mouse", "v4@bob.example.test", "", "y"),
    );
    desk.wait_settled(4, T);

    let tickets = desk.json(&["tickets"]);
    let subjects: Vec<(i64, &str, i64)> = tickets
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_i64().unwrap(), t["subject"].as_str().unwrap(), t["messages"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        subjects,
        vec![(1, "VPN drops every hour", 3), (2, "Re: [OTHER #1] Laptop", 2), (3, "Re: [ACME #99] Mouse", 2)]
    );
    let events = desk.json(&["show", "3"])["events"].to_string();
    assert!(events.contains("[ACME #99] names no existing ticket"), "{events}");
    let acks = wait_inbox(&bob, 3, T);
    let mut subjects: Vec<String> = acks.iter().map(|a| subject(a)).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        vec!["[ACME #1] VPN drops every hour", "[ACME #2] Re: [OTHER #1] Laptop", "[ACME #3] Re: [ACME #99] Mouse"]
    );
}

#[test]
fn automatic_and_system_mail_gets_no_acknowledgement() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    let carol = address("carol");
    let cases = [
        ("Auto-Submitted: auto-replied\r\n", "Out of office"),
        ("Precedence: bulk\r\n", "Newsletter"),
        ("List-Id: <announce.example.test>\r\n", "List mail"),
    ];
    let mut raws: Vec<Vec<u8>> = cases
        .iter()
        .enumerate()
        .map(|(i, (h, s))| message(&carol, &desk.support, s, &format!("auto-{i}@carol.example.test"), h, "automatic"))
        .collect();
    let daemon = address("mailer-daemon").replace("mailer-daemon-", "MAILER-DAEMON+");
    raws.push(message(
        &daemon,
        &desk.support,
        "Undelivered Mail Returned to Sender",
        "dsn@mx.example.test",
        "",
        "bounce",
    ));
    raws.push(message(&desk.support, &desk.support, "Looped", "loop@example.test", "", "from ourselves"));
    append(&desk.support, &raws);
    desk.start();
    let status = desk.wait_status("all five accounted for", T, |s| {
        s["messages_ingested"].as_i64().unwrap() + s["quarantined"].as_i64().unwrap() == 5
            && s["outbox"]["pending"] == 0
    });
    assert_eq!(status["outbox"]["sent"], 0, "{status:#}");
    assert_eq!(status["tickets"]["open"], 4, "automatic mail is still recorded: {status:#}");
    // A bounce about mail this desk never sent opens no ticket: it is quarantined with the reason.
    assert_eq!(status["quarantined"], 1, "{status:#}");
    let q = desk.json(&["quarantine"]);
    assert!(q[0]["reason"].as_str().unwrap().contains("delivery report"), "{q:#}");
    for id in 1..=4 {
        let show = desk.json(&["show", &id.to_string()]);
        assert_eq!(show["messages"].as_array().unwrap().len(), 1, "{show:#}");
        assert!(show["events"].to_string().contains("ack-suppressed"), "ticket {id}: {show:#}");
    }
    desk.assert_mailed(&carol, 0, "automatic mail is not acknowledged");
}

#[test]
fn malformed_message_between_two_good_ones_is_accounted_for() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    let dave = address("dave");
    let hostile = std::fs::read(repo_path("tests/corpus/mime/flanker/missing-final-boundary.eml")).unwrap();
    let raws = vec![
        message(&dave, &desk.support, "First good one", "g1@dave.example.test", "", "one"),
        b"\x00\x00\x00\r\n\r\n".to_vec(),
        hostile,
        message(&dave, &desk.support, "Second good one", "g2@dave.example.test", "", "two"),
    ];
    append(&desk.support, &raws);
    desk.start();
    let status = desk.wait_status("all four accounted for", T, |s| {
        s["messages_ingested"].as_i64().unwrap() + s["quarantined"].as_i64().unwrap() == 4
            && s["outbox"]["pending"] == 0
    });
    assert_eq!(status["quarantined"], 1, "{status:#}");
    assert_eq!(status["messages_ingested"], 3, "the broken-MIME message still becomes a ticket: {status:#}");
    let q = desk.json(&["quarantine"]);
    assert_eq!(q[0]["uid"], 2);
    assert!(!q[0]["reason"].as_str().unwrap().is_empty());
    // Dovecot stores NUL bytes as 0x80: compare with what the server actually holds.
    let raw = desk.cli_bytes(&["quarantine", "--raw", &q[0]["id"].to_string()]);
    assert_eq!(raw, inbox(&desk.support)[1], "quarantine keeps the raw bytes");
    let acks = wait_inbox(&dave, 2, T);
    let mut subjects: Vec<String> = acks.iter().map(|a| subject(a)).collect();
    subjects.sort();
    assert_eq!(subjects, vec!["[ACME #1] First good one", "[ACME #3] Second good one"]);
}

#[test]
fn smtp_down_then_back_delivers_exactly_once() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut switch = Switch::off(SMTP_PORT);
    let mut desk = Desk::with(DeskOptions { smtp: plain_loopback(switch.port), ..DeskOptions::default() });
    let erin = address("erin");
    desk.start();
    send_smtp(
        &erin,
        &desk.support,
        &message(&erin, &desk.support, "Monitor flickers", "m1@erin.example.test", "", "x"),
    );
    desk.wait_status("a failed delivery attempt", T, |s| s["messages_ingested"] == 1 && s["outbox"]["pending"] == 1);
    let show = desk.json(&["show", "1"]);
    let delivery = &show["messages"][1]["delivery"][0];
    assert!(delivery["attempts"].as_i64().unwrap() >= 1, "{delivery:#}");
    assert!(delivery["last_error"].as_str().unwrap().contains("onnection"), "{delivery:#}");

    // Restart the daemon while SMTP is still down: the queued mail survives it.
    desk.stop();
    desk.start();
    switch.on();
    desk.wait_status("delivery after SMTP came back", Duration::from_secs(60), |s| s["outbox"]["sent"] == 1);
    let acks = exactly(&erin, 1, T, "exactly one acknowledgement");
    assert_eq!(subject(&acks[0]), "[ACME #1] Monitor flickers");
}

/// A backlog of `n` requests; the daemon is started and killed with SIGKILL `kills` times at
/// moments drawn from `seed`, then left to finish. Exactly one ticket and one acknowledgement per
/// request, nothing missing, and a sound database.
fn kill_rounds(seed: u64, n: usize, kills: usize) {
    // One requester sends everything: lift the per-recipient rate limit, which is not under test.
    let mut desk = Desk::with(DeskOptions {
        tail: NO_RATE_LIMITS.into(),
        // A small batch size makes many commits, so kills land between and inside them.
        imap: format!("{}\nbatch_size = 5", plain_loopback(IMAP_PORT)),
        ..DeskOptions::default()
    });
    let frank = address("frank");
    let raws: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            message(
                &frank,
                &desk.support,
                &format!("Request number {i}"),
                &format!("k{i}@frank.example.test"),
                "",
                "please",
            )
        })
        .collect();
    append(&desk.support, &raws);
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut progress = Vec::new();
    for _ in 0..kills {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay_ms = 80 + rng % 620;
        desk.start();
        std::thread::sleep(Duration::from_millis(delay_ms));
        desk.kill9();
        progress.push((
            delay_ms,
            desk.status().map(|s| (s["messages_ingested"].as_i64().unwrap(), s["outbox"]["sent"].as_i64().unwrap())),
        ));
    }
    eprintln!("seed {seed}: (kill after ms, (ingested, sent)): {progress:?}");
    let before = progress.last().and_then(|p| p.1).unwrap_or((0, 0));
    assert!(before.0 < n as i64 || before.1 < n as i64, "the kills interrupted nothing: {progress:?}");
    assert!(progress.iter().filter_map(|p| p.1).any(|p| p.0 > 0), "no run got anything done: {progress:?}");
    desk.start();
    let status = desk.wait_settled(n as i64, Duration::from_secs(90));
    assert_eq!(status["tickets"]["open"], n as i64, "{status:#}");
    assert_eq!(status["outbox"]["sent"], n as i64, "{status:#}");

    wait_inbox(&frank, n, Duration::from_secs(90));
    std::thread::sleep(Duration::from_secs(2));
    let acks = inbox(&frank);
    let mut subjects: Vec<String> = acks.iter().map(|a| subject(a)).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), n, "one acknowledgement per request");
    // A kill can only repeat a mail if it lands between noting the row `sending` and writing the
    // final "." (microseconds); report it plainly if it ever happens.
    assert_eq!(acks.len(), n, "duplicate acknowledgements after SIGKILL (seed {seed})");

    let db = rusqlite::Connection::open(desk.path("maildesk.db")).unwrap();
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn sigkill_mid_backlog_seed_1() {
    let Some(_lab) = crate::common::lab() else { return };
    kill_rounds(1, 1000, 10);
}

#[test]
fn sigkill_mid_backlog_seed_2() {
    let Some(_lab) = crate::common::lab() else { return };
    kill_rounds(2, 1000, 10);
}

#[test]
fn sigkill_mid_backlog_seed_3() {
    let Some(_lab) = crate::common::lab() else { return };
    kill_rounds(3, 1000, 10);
}

#[test]
fn tls_imap_and_smtp_with_a_private_ca() {
    let Some(_lab) = crate::common::lab() else { return };
    let ca = format!("{}/tls/ca.pem", lab_dir());
    let mut desk = Desk::with(DeskOptions {
        imap: format!("host = \"localhost\"\nport = {IMAPS_PORT}\nsecurity = \"tls\"\nca_file = \"{ca}\""),
        smtp: format!("host = \"localhost\"\nport = {SMTPS_PORT}\nsecurity = \"tls\"\nca_file = \"{ca}\""),
        ..DeskOptions::default()
    });
    let gina = address("gina");
    desk.start();
    send_smtp(&gina, &desk.support, &message(&gina, &desk.support, "Keyboard", "t1@gina.example.test", "", "x"));
    let acks = wait_inbox(&gina, 1, T);
    assert_eq!(subject(&acks[0]), "[ACME #1] Keyboard");
}
