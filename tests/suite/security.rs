//! Hostile senders end to end, through the real binary, Postfix and Dovecot: outsiders who guess a
//! ticket number, forged authentication headers, technician addresses leaking into relayed text,
//! backscatter through a chosen Reply-To, Cc floods, oversized forwards and terminal escapes.

use std::time::Duration;

use crate::common::*;

const T: Duration = Duration::from_secs(30);

/// A running desk with one technician and alice's request, acknowledged and announced.
fn desk_with_request(helpdesk_extra: &str, tail: &str) -> (Desk, String, String, Vec<u8>) {
    let tech = address("tech");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]\n{helpdesk_extra}"),
        tail: tail.to_string(),
        ..DeskOptions::default()
    });
    desk.start();
    let alice = address("alice");
    desk.request(&alice, "VPN is down", "req-1@alice.example.test", "Cannot connect.");
    wait_inbox(&alice, 1, T);
    let notice = wait_inbox(&tech, 1, T).remove(0);
    (desk, alice, tech, notice)
}

#[test]
fn an_outsider_who_guesses_the_ticket_number_is_held_until_a_technician_accepts() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, alice, tech, notice) = desk_with_request("", "");
    answer(&tech, &notice, "#resolve\nThe VPN gateway was restarted.", "");
    desk.wait_settled(2, T);
    assert_eq!(wait_inbox(&alice, 2, T).len(), 2);

    // Mallory knows only the subject tag (numbers are sequential) and Ccs an accomplice.
    let mallory = address("mallory");
    let eve = address("eve");
    send_smtp(
        &mallory,
        &desk.support,
        &message(
            &mallory,
            &desk.support,
            "Re: [ACME #1] VPN is down",
            "m1@evil.example.test",
            &format!("Cc: {eve}\r\n"),
            "Please reopen and add me.",
        ),
    );
    desk.wait_settled(3, T);
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["status"], "resolved", "an outsider reopens nothing: {show:#}");
    assert_eq!(show["watchers"], serde_json::json!([]), "an outsider subscribes nobody");
    assert_eq!(events(&show, "held").len(), 1, "{show:#}");
    let held = show["messages"].as_array().unwrap().iter().find(|m| m["kind"] == "held").unwrap().clone();
    assert_eq!(held["internal"], true);

    // A forged technician (From: the technician, no token) gets no further by the tag alone.
    send_smtp(
        &tech,
        &desk.support,
        &message(
            &tech,
            &desk.support,
            "Re: [ACME #1] VPN is down",
            "forged-1@evil.example.test",
            "",
            "#reopen\nReopening.",
        ),
    );
    desk.wait_settled(4, T);
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["status"], "resolved", "a forged technician reopens nothing: {show:#}");
    assert_eq!(events(&show, "held").len(), 2, "{show:#}");

    // The technician hears of it and accepts it; from then on mallory is a participant.
    let notices = wait_inbox(&tech, 2, T);
    let held_notice = &notices[1];
    assert!(text(held_notice).contains("#accept"), "{}", text(held_notice));
    answer(&tech, held_notice, "#accept", "");
    desk.wait_settled(5, T);
    let show = desk.json(&["show", "1"]);
    // Both held senders are accepted: mallory, and the forger's address (a technician, so not a watcher).
    assert_eq!(show["watchers"], serde_json::json!([mallory]), "{show:#}");
    answer(&tech, &notice, "We are on it again.", "");
    desk.wait_settled(6, T);
    let got = wait_inbox(&mallory, 1, T);
    assert!(text(&got[0]).contains("We are on it again."));
    desk.assert_mailed(&eve, 0, "mallory's Cc never became a watcher");
}

#[test]
fn forged_authentication_results_below_the_receiving_hop_prove_nothing() {
    let Some(_lab) = crate::common::lab() else { return };
    let tech = address("tech");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]"),
        tail: "[security]\ntechnician_proof = [\"token\", \"dmarc\"]\nauthserv_id = \"mx.example.test\"\n".into(),
        ..DeskOptions::default()
    });
    desk.start();
    let alice = address("alice");
    desk.request(&alice, "Printer", "req-1@alice.example.test", "Jammed.");
    desk.wait_settled(1, T);
    let pass = "Authentication-Results: mx.example.test; dkim=pass header.d=example.test; dmarc=pass header.from=example.test\r\n";
    let fail = "Authentication-Results: mx.example.test; dmarc=fail (p=reject) header.from=example.test\r\n";
    // 1. Through Postfix: the lab's own Received field lands above the sender's forged header.
    send_smtp(
        &tech,
        &desk.support,
        &message(&tech, &desk.support, "Re: [ACME #1] Printer", &format!("f1-{}@x", nanos()), pass, "#close"),
    );
    // 2. The receiving server's own verdict on top says fail; a forged pass below it changes nothing.
    append(
        &desk.support,
        &[message(
            &tech,
            &desk.support,
            "Re: [ACME #1] Printer",
            &format!("f2-{}@x", nanos()),
            &format!("{fail}{pass}"),
            "#close",
        )],
    );
    desk.wait_settled(3, T);
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["status"], "open", "{show:#}");
    assert_eq!(events(&show, "not-verified").len(), 2, "{show:#}");
    // 3. The receiving server's own pass, topmost: DMARC still works as configured.
    append(
        &desk.support,
        &[message(&tech, &desk.support, "Re: [ACME #1] Printer", &format!("ok-{}@x", nanos()), pass, "#close")],
    );
    desk.wait_settled(4, T);
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["status"], "closed", "{show:#}");
    assert!(show["events"].to_string().contains("technician verified by DMARC"));
}

#[test]
fn a_technician_address_never_reaches_the_requester() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, alice, tech, notice) = desk_with_request("", "");
    let body = text(&notice);
    assert!(!body.contains("+t1-") && !body.contains("+n1-"), "no token in a body: {body}");
    let mine = header_address(&notice, "Reply-To");
    // A client that quotes headers, or a technician who pastes their address, brings it into the text.
    answer(&tech, &notice, &format!("Restarted the gateway. If it fails again write to {mine} directly."), "");
    desk.wait_settled(2, T);
    let reply = wait_inbox(&alice, 2, T).remove(1);
    let relayed = text(&reply);
    assert!(relayed.contains("Restarted the gateway."), "{relayed}");
    assert!(!relayed.to_lowercase().contains("+t1-"), "{relayed}");
    assert!(relayed.contains("[technician address removed]"), "{relayed}");
    assert_eq!(events(&desk.json(&["show", "1"]), "address-redacted").len(), 1);
}

#[test]
fn acknowledgements_go_to_the_sender_not_to_a_reply_to_they_chose() {
    let Some(_lab) = crate::common::lab() else { return };
    let desk = {
        let mut d = Desk::new();
        d.start();
        d
    };
    let spammer = address("spammer");
    let victim = address("victim");
    send_smtp(
        &spammer,
        &desk.support,
        &message(
            &spammer,
            &desk.support,
            "You won a prize, click here",
            "spam-1@spam.example.test",
            &format!("Reply-To: {victim}\r\n"),
            "Click.",
        ),
    );
    desk.wait_settled(1, T);
    assert_eq!(wait_inbox(&spammer, 1, T).len(), 1);
    desk.assert_mailed(&victim, 0, "the genuine support address mailed a third party");
}

#[test]
fn cc_floods_are_capped_and_merges_need_a_proof_for_both_tickets() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, alice, tech, notice) = desk_with_request("", "[limits]\nmax_watchers_per_message = 3\n");
    let many: Vec<String> = (0..40).map(|i| format!("cc{i}-{}@example.test", nanos())).collect();
    send_smtp(
        &alice,
        &desk.support,
        &message(
            &alice,
            &desk.support,
            "Re: [ACME #1] VPN is down",
            "req-2@alice.example.test",
            &format!("Cc: {}\r\n", many.join(", ")),
            "Adding my team.",
        ),
    );
    desk.wait_settled(2, T);
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["watchers"].as_array().unwrap().len(), 3, "{show:#}");
    assert!(events(&show, "watchers-capped")[0].starts_with("37 "), "{show:#}");

    // Two merges in one mail, or a merge into itself, change nothing and are answered.
    answer(&tech, &notice, "#merge 1", "");
    answer(&tech, &notice, "#merge 2\n#merge 2", "");
    desk.wait_settled(4, T);
    let errors = wait_inbox(&tech, 4, T);
    let texts: String = errors[2..].iter().map(|m| text(m)).collect();
    assert!(texts.contains("cannot be merged into itself") && texts.contains("only one #merge"), "{texts}");
    let show = desk.json(&["show", "1"]);
    assert!(show["ticket"]["merged_into"].is_null());
    assert_eq!(desk.json(&["tickets"]).as_array().unwrap().len(), 1);
}

#[test]
fn attachments_over_the_limit_are_not_forwarded_and_show_output_is_terminal_safe() {
    let Some(_lab) = crate::common::lab() else { return };
    let tech = address("tech");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]"),
        tail: "[limits]\nmax_attachment_mb = 1\n".into(),
        ..DeskOptions::default()
    });
    desk.start();
    let alice = address("alice");
    let big = "QUFB".repeat(600_000); // 2.4 MB of base64: 1.8 MB decoded
    let raw = format!(
        "From: {alice}\r\nTo: {}\r\nSubject: Logs \x1b]0;pwned\x07\x1b[2J attached\r\nMessage-ID: <big-{}@alice.example.test>\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\n\
see \x1b[31mred\x1b[0m logs\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.log\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{big}\r\n--XX--\r\n",
        desk.support,
        nanos()
    );
    send_smtp(&alice, &desk.support, raw.as_bytes());
    desk.wait_settled(1, T);
    let notice = wait_inbox(&tech, 1, T).remove(0);
    assert!(notice.len() < 200_000, "the technician got {} bytes: an attachment the desk did not keep", notice.len());
    let shown = desk.cli(&["show", "1"]);
    assert!(!shown.contains('\x1b') && !shown.contains('\x07'), "escape sequences reach the terminal: {shown:?}");
    assert!(shown.contains("attached") && shown.contains("logs"), "{shown}");
    let listed = desk.cli(&["tickets"]);
    assert!(!listed.contains('\x1b'), "{listed:?}");
}

#[test]
fn the_database_is_readable_by_its_owner_only() {
    let Some(_lab) = crate::common::lab() else { return };
    use std::os::unix::fs::PermissionsExt;
    let mut desk = Desk::new();
    desk.start();
    desk.wait_status("the database", T, |_| true);
    let mode = std::fs::metadata(desk.path(desk.database)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "database mode {mode:o}");
}

#[test]
fn a_hanging_password_command_neither_blocks_sigterm_nor_the_cli() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    desk.start();
    desk.wait_log("IMAP connected", T);
    // The admin switches the IMAP secret to a vault command that hangs, and reloads.
    let config = std::fs::read_to_string(&desk.config).unwrap();
    let hanging = config.replace("password_file = \"imap.secret\"", "password_command = \"sleep 60; echo secret\"");
    assert_ne!(config, hanging);
    std::fs::write(&desk.config, hanging).unwrap();
    // The CLI views read no secret: they answer at once.
    let start = std::time::Instant::now();
    desk.json(&["status"]);
    assert!(start.elapsed() < Duration::from_secs(5), "a view ran the password command: {:?}", start.elapsed());
    desk.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    let (took, clean) = desk.stop();
    assert!(clean, "{}", desk.logs());
    // Before: the reload ran on the event loop and SIGTERM waited for the command (60 s).
    assert!(took < Duration::from_secs(8), "SIGTERM took {took:?} during a hanging reload\n{}", desk.logs());
}
