//! Loops and bounces against the real servers: two desks mailing each other, a dumb autoresponder,
//! delivery reports for mail the desk sent, and a recipient the SMTP server refuses.

use std::time::{Duration, Instant};

use crate::common::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn two_desks_and_a_dumb_autoresponder_settle_within_a_bound() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut a = Desk::with(DeskOptions {
        tail: "[limits]\nauto_replies_per_recipient_per_hour = 3\n".into(),
        ..DeskOptions::default()
    });
    let mut b = Desk::with(DeskOptions { tag: "BETA", ..DeskOptions::default() });
    a.start();
    b.start();
    // Someone at desk B writes to desk A from B's support address: A acknowledges to B, and B must
    // not acknowledge the acknowledgement.
    send_smtp(
        &b.support,
        &a.support,
        &message(&b.support, &a.support, "Shared printer contract", "ab1@b.example.test", "", "Hello A."),
    );
    // A robot that answers everything with a fresh subject and no loop headers at all.
    let robot = address("robot");
    send_smtp(&robot, &a.support, &message(&robot, &a.support, "Ping", "robot-0@robot.example.test", "", "ping"));
    let start = Instant::now();
    let mut answered = 0;
    while start.elapsed() < Duration::from_secs(15) {
        let got = inbox(&robot);
        while answered < got.len() {
            answered += 1;
            let id = format!("robot-{answered}@robot.example.test");
            send_smtp(
                &robot,
                &a.support,
                // No marker at all, not even in the subject ("Auto answer" would be recognised).
                &message(&robot, &a.support, &format!("Answer {answered}"), &id, "", "I answer everything."),
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let robot_got = inbox(&robot).len();
    assert!(robot_got <= 3, "the rate limit bounds the loop: the robot got {robot_got} acknowledgements");
    let a_status = a.status().unwrap();
    let suppressed = (1..=a.json(&["tickets"]).as_array().unwrap().len())
        .filter(|id| a.json(&["show", &id.to_string()])["events"].to_string().contains("rate-limited"))
        .count();
    assert!(suppressed >= 1, "suppressed acknowledgements are recorded: {a_status:#}");
    // Desk B got exactly one mail from A (the acknowledgement) and sent none back.
    let b_status = b.wait_settled(1, T);
    assert_eq!(b_status["outbox"]["sent"], 0, "B never answers an acknowledgement: {b_status:#}");
    assert_eq!(b.json(&["show", "1"])["messages"][0]["kind"], "automatic");
}

#[test]
fn a_delivery_report_is_attached_reported_once_and_never_opens_a_ticket() {
    let Some(_lab) = crate::common::lab() else { return };
    let tech = address("tech");
    let mut desk =
        Desk::with(DeskOptions { helpdesk: format!("technicians = [\"{tech}\"]"), ..DeskOptions::default() });
    let alice = address("alice");
    desk.start();
    send_smtp(
        &alice,
        &desk.support,
        &message(&alice, &desk.support, "Scanner", "s1@alice.example.test", "", "Broken."),
    );
    let ack = wait_inbox(&alice, 1, T).remove(0);
    let ack_id = header(&ack, "Message-ID").unwrap();
    wait_inbox(&tech, 1, T);
    // Later, alice's server reports that the acknowledgement bounced after all (twice).
    let dsn = |n: u32| {
        format!(
            "From: MAILER-DAEMON@mx.alice.example.test (Mail Delivery System)\r\nTo: {support}\r\n\
Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <dsn{n}@mx.alice.example.test>\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\n\
Content-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n\
Reporting-MTA: dns; mx.alice.example.test\r\n\r\nFinal-Recipient: rfc822; {alice}\r\nAction: failed\r\nStatus: 5.2.2\r\n\
Diagnostic-Code: smtp; 552 5.2.2 mailbox full\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
From: ACME IT <{support}>\r\nTo: {alice}\r\nMessage-ID: {ack_id}\r\nSubject: [ACME #1] Scanner\r\n\r\n--B--\r\n",
            support = desk.support
        )
        .into_bytes()
    };
    append(&desk.support, &[dsn(1), dsn(2)]);
    desk.wait_settled(3, T);
    let tickets = desk.json(&["tickets"]);
    assert_eq!(tickets.as_array().unwrap().len(), 1, "a bounce never opens a ticket: {tickets:#}");
    let show = desk.json(&["show", "1"]);
    let kinds: Vec<&str> = show["messages"].as_array().unwrap().iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "bounce").count(), 2, "{kinds:?}");
    let ack_row = show["messages"].as_array().unwrap().iter().find(|m| m["kind"] == "acknowledgement").unwrap();
    assert_eq!(ack_row["delivery"][0]["status"], "failed");
    assert!(ack_row["delivery"][0]["last_error"].as_str().unwrap().contains("5.2.2"), "{ack_row:#}");
    let reports = wait_inbox(&tech, 2, T);
    assert!(subject(&reports[1]).contains("Delivery failed"), "{}", subject(&reports[1]));
    assert!(text(&reports[1]).contains("mailbox full"));
    desk.assert_mailed(&tech, 2, "technicians hear of the failure once");
    desk.assert_mailed(&alice, 1, "nobody acknowledges a bounce");
}

#[test]
fn a_permanent_smtp_refusal_is_recorded_on_the_ticket() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    // The lab's Postfix accepts only @example.test: mail to this requester is refused with a 5xx.
    let outsider = "someone@outside.invalid";
    append(&desk.support, &[message(outsider, &desk.support, "Access request", "x1@outside.invalid", "", "Please.")]);
    desk.start();
    let status = desk.wait_status("the refusal recorded", T, |s| s["outbox"]["failed"] == 1);
    assert_eq!(status["outbox"]["sent"], 0);
    let show = desk.json(&["show", "1"]);
    let delivery = &show["messages"][1]["delivery"][0];
    assert!(delivery["last_error"].as_str().unwrap().contains("55"), "the server's words are kept: {delivery:#}");
    assert!(show["events"].to_string().contains("refused permanently"), "{show:#}");
}

#[test]
fn size_limits_keep_the_ticket_and_tell_the_requester() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::with(DeskOptions {
        tail: "[limits]\nmax_attachments = 1\nmax_attachment_mb = 1\n".into(),
        ..DeskOptions::default()
    });
    let gus = address("gus");
    let file = |name: &str, size: usize| {
        let data: String = "QUFB".repeat(size / 3 + 1);
        format!(
            "--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{data}\r\n"
        )
    };
    let body = format!(
        "--XX\r\nContent-Type: text/plain\r\n\r\nScans attached.\r\n{}{}--XX--",
        file("small.pdf", 10_000),
        file("huge.tiff", 1_500_000)
    );
    let raw =
        message(&gus, &desk.support, "Scans", "big1@gus.example.test", "", &body).into_iter().collect::<Vec<u8>>();
    let raw = String::from_utf8(raw)
        .unwrap()
        .replace("Content-Type: text/plain; charset=utf-8", "Content-Type: multipart/mixed; boundary=XX");
    append(&desk.support, &[raw.into_bytes()]);
    desk.start();
    desk.wait_settled(1, T);
    let show = desk.json(&["show", "1"]);
    let names: Vec<&str> =
        show["messages"][0]["attachments"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["small.pdf"], "{show:#}");
    assert!(show["events"].to_string().contains("huge.tiff"), "the skipped file is recorded: {show:#}");
    let ack = wait_inbox(&gus, 1, T).remove(0);
    assert!(
        text(&ack).contains("huge.tiff") && text(&ack).contains("not kept"),
        "the requester is told: {}",
        text(&ack)
    );
}

#[test]
fn a_temporary_refusal_is_retried_with_back_off_then_given_up_and_recorded() {
    let Some(_lab) = crate::common::lab() else { return };
    let mut desk = Desk::new();
    // Attempts at 0 s, 5 s, 15 s: the second is retried (well inside 12 s, even on a slow machine),
    // the third gives up.
    let config = std::fs::read_to_string(&desk.config).unwrap().replace("retry_for = \"1h\"", "retry_for = \"12s\"");
    std::fs::write(&desk.config, config).unwrap();
    // The lab's Postfix answers 451 for any tempfail-* recipient.
    let requester = address("tempfail");
    append(&desk.support, &[message(&requester, &desk.support, "Try me", "tf1@example.test", "", "x")]);
    desk.start();
    let status = desk.wait_status("a second attempt", T, |s| {
        s["messages_ingested"] == 1 && {
            let show = desk.json(&["show", "1"]);
            show["messages"][1]["delivery"][0]["attempts"].as_i64().unwrap_or(0) >= 2
        }
    });
    assert_eq!(status["outbox"]["pending"], 1, "still queued after a 4xx: {status:#}");
    let show = desk.json(&["show", "1"]);
    let d = &show["messages"][1]["delivery"][0];
    assert!(d["last_error"].as_str().unwrap().contains("451"), "{d:#}");
    assert!(!show["events"].to_string().contains("delivery-failed"));
    // Once retry_for has passed, the next failure gives up and says so on the ticket.
    desk.wait_status("giving up", Duration::from_secs(40), |s| s["outbox"]["failed"] == 1);
    let show = desk.json(&["show", "1"]);
    assert!(show["events"].to_string().contains("not delivered after"), "{show:#}");
}
