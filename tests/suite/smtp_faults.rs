//! SMTP faults between maildesk and a real Postfix: a server that never answers, a connection lost
//! before the final "." of DATA reaches the server, and one lost after it. Mail the server never
//! took is retried until it arrives exactly once; when the reply to the "." is lost, the mail is
//! sent again (at least once), and the ticket says so.

use std::time::Duration;

use crate::common::*;

const T: Duration = Duration::from_secs(60);

fn delivery(desk: &Desk, ticket: &str) -> serde_json::Value {
    desk.json(&["show", ticket])["messages"][1]["delivery"][0].clone()
}

fn wait_attempts(desk: &Desk, ticket: &str, n: i64) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let d = delivery(desk, ticket);
        if d["attempts"].as_i64().unwrap_or(0) >= n {
            return d;
        }
        assert!(start.elapsed() < T, "ticket {ticket}: {n} attempts expected, delivery {d:#}\n{}", desk.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn hung_and_dropped_smtp_connections_are_retried_until_the_server_has_the_mail() {
    let Some(_lab) = crate::common::lab() else { return };
    let relay = FaultyRelay::start(SMTP_PORT, SmtpFault::Silent);
    let mut desk = Desk::with(DeskOptions {
        smtp: format!("{}\ntimeout = \"3s\"", plain_loopback(relay.port)),
        ..DeskOptions::default()
    });
    let gus = address("gus");
    let hal = address("hal");
    desk.start();

    // A server that accepts the connection and never greets: the attempt times out.
    send_smtp(&gus, &desk.support, &message(&gus, &desk.support, "Dock dead", "d1@gus.example.test", "", "x"));
    desk.wait_status("the request recorded", T, |s| s["messages_ingested"] == 1);
    let d = wait_attempts(&desk, "1", 1);
    assert_eq!(d["status"], "pending", "{d:#}");
    assert!(d["last_error"].as_str().unwrap_or("").contains("did not answer within"), "{d:#}");

    // The connection drops just before the final ".": the server discards the mail; retried.
    relay.set(SmtpFault::DropBeforeDot);
    let d = wait_attempts(&desk, "1", 2);
    assert_eq!(d["status"], "pending", "{d:#}");
    assert!(inbox(&gus).is_empty(), "an unfinished DATA delivers nothing");

    relay.set(SmtpFault::Pass);
    let d = wait_attempts(&desk, "1", 3);
    assert_eq!(d["status"], "sent", "{d:#}");
    assert_eq!(wait_inbox(&gus, 1, T).len(), 1);

    // The connection drops after the final ".": Postfix has the mail, maildesk never heard so.
    // SMTP cannot tell this from a "." lost on the way, so the mail is sent again: at least once,
    // and the second copy carries the same Message-ID (mail clients fold the two together).
    relay.set(SmtpFault::DropAfterDot);
    send_smtp(&hal, &desk.support, &message(&hal, &desk.support, "Badge reader", "b1@hal.example.test", "", "y"));
    desk.wait_status("the request recorded", T, |s| s["messages_ingested"] == 2);
    let d = wait_attempts(&desk, "2", 1);
    assert_eq!(d["status"], "pending", "{d:#}");
    relay.set(SmtpFault::Pass);
    let d = wait_attempts(&desk, "2", 2);
    assert_eq!(d["status"], "sent", "{d:#}");
    let copies = exactly(&hal, 2, T, "one copy per time the server took it, no more");
    assert_eq!(header(&copies[0], "Message-ID"), header(&copies[1], "Message-ID"));
    assert_eq!(inbox(&gus).len(), 1);
    let events = desk.json(&["show", "2"])["events"].to_string();
    assert!(events.contains("delivery-uncertain"), "the ticket says a second copy may arrive: {events}");
}

#[test]
fn a_server_refusing_the_session_gets_the_mail_later_not_never() {
    let Some(_lab) = crate::common::lab() else { return };
    // A wrong password or a blocked address: the server says 5xx before any mail is named.
    let relay = FaultyRelay::start(SMTP_PORT, SmtpFault::RefuseSession);
    let mut desk = Desk::with(DeskOptions { smtp: plain_loopback(relay.port), ..DeskOptions::default() });
    let ivy = address("ivy");
    desk.start();
    send_smtp(&ivy, &desk.support, &message(&ivy, &desk.support, "Laptop", "l1@ivy.example.test", "", "x"));
    desk.wait_status("the request recorded", T, |s| s["messages_ingested"] == 1);
    let d = wait_attempts(&desk, "1", 1);
    assert_eq!(d["status"], "pending", "a refused session fails no mail: {d:#}");
    assert!(d["last_error"].as_str().unwrap_or("").contains("554"), "the server's words are kept: {d:#}");
    // The admin fixes it; the next attempt (5 s later) delivers.
    relay.set(SmtpFault::Pass);
    let d = wait_attempts(&desk, "1", 2);
    assert_eq!(d["status"], "sent", "{d:#}");
    assert_eq!(wait_inbox(&ivy, 1, T).len(), 1);
}
