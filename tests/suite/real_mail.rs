//! Mail as it really arrives, end to end through the real binary, Postfix and Dovecot: reused
//! Message-IDs, machine mail that threads nowhere, read receipts, interleaved and HTML-only
//! replies, East Asian charsets, and servers whose IDLE stays silent.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

const T: Duration = Duration::from_secs(30);

fn desk_with_tech() -> (Desk, String) {
    crate::common::desk_with_tech(NO_RATE_LIMITS)
}

#[test]
fn a_reused_message_id_is_a_new_message_and_the_same_message_twice_is_one() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, _tech) = desk_with_tech();
    let scanner = address("scanner");
    // A multifunction printer that stamps every scan with the same Message-ID.
    let id = format!("scan-{}@printer.example.test", nanos());
    let scan = |page: &str| message(&scanner, &desk.support, "Scanned document", &id, "", page);
    send_smtp(&scanner, &desk.support, &scan("page one"));
    desk.wait_settled(1, T);
    send_smtp(&scanner, &desk.support, &scan("page two"));
    desk.wait_settled(2, T);
    let tickets = desk.json(&["tickets"]);
    assert_eq!(tickets.as_array().unwrap().len(), 2, "{tickets:#}");
    assert_eq!(events(&desk.json(&["show", "2"]), "duplicate-message-id").len(), 1);
    // The same scan delivered again (another UID) is the same message: recorded once.
    append(&desk.support, &[scan("page two")]);
    desk.wait_log("already recorded", T);
    let status = desk.wait_settled(2, T);
    assert_eq!(status["messages_ingested"], 2, "{status:#}");
}

#[test]
fn machine_mail_that_threads_nowhere_is_recorded_but_is_no_request() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, tech) = desk_with_tech();
    let alice = address("alice");
    send_smtp(
        &alice,
        &desk.support,
        &message(
            &alice,
            &desk.support,
            "Automatic reply: Newsletter",
            &format!("ooo-{}@alice.example.test", nanos()),
            "",
            "I am out of the office until Monday.",
        ),
    );
    desk.wait_settled(1, T);
    desk.assert_mailed(&alice, 0, "no acknowledgement");
    desk.assert_mailed(&tech, 0, "no technician notified");
    assert_eq!(desk.json(&["tickets"]).as_array().unwrap().len(), 0, "not in the list of requests");
    let automatic = desk.json(&["tickets", "--automatic"]);
    assert_eq!(automatic.as_array().unwrap().len(), 1, "{automatic:#}");
    let sla = desk.json(&["sla", "1"]);
    assert!(sla["clock"]["next_level_at"].is_null(), "no SLA clock runs: {sla:#}");
    assert_eq!(desk.json(&["status"])["automatic_tickets"], 1);
    // A technician decides it was a request after all.
    assert!(desk.cli(&["promote", "1"]).contains("request"));
    assert_eq!(desk.json(&["tickets"]).as_array().unwrap().len(), 1);
    assert!(!desk.json(&["sla", "1"])["clock"]["next_level_at"].is_null());
}

#[test]
fn a_read_receipt_reopens_nothing_and_mails_nobody() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, tech) = desk_with_tech();
    let alice = address("alice");
    desk.request(&alice, "Printer", "req-1@alice.example.test", "Jammed.");
    let notice = wait_inbox(&tech, 1, T).remove(0);
    answer(&tech, &notice, "#resolve\nCleared the jam.", "");
    desk.wait_settled(2, T);
    let relayed = wait_inbox(&alice, 2, T).remove(1);
    // Outlook's read receipt for the fix: a multipart/report with a disposition notification.
    let receipt = format!(
        "From: {alice}\r\nTo: {support}\r\nSubject: Read: {subject}\r\nMessage-ID: <rr-{n}@alice.example.test>\r\n\
In-Reply-To: {irt}\r\nReferences: {irt}\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=disposition-notification; boundary=RR\r\n\r\n--RR\r\n\
Content-Type: text/plain\r\n\r\nYour message was read on Monday.\r\n--RR\r\n\
Content-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822;{alice}\r\n\
Disposition: manual-action/MDN-sent-manually; displayed\r\n--RR--\r\n",
        support = desk.support,
        subject = subject(&relayed),
        n = nanos(),
        irt = header(&relayed, "Message-ID").unwrap(),
    );
    send_smtp(&alice, &desk.support, receipt.as_bytes());
    desk.wait_settled(3, T);
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["status"], "resolved", "{show:#}");
    desk.assert_mailed(&tech, 1, "nobody is told of a read receipt");
}

#[test]
fn interleaved_and_html_only_replies_keep_what_people_wrote() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, tech) = desk_with_tech();
    let alice = address("alice");
    desk.request(&alice, "New laptop", "req-1@alice.example.test", "Two questions.");
    let notice = wait_inbox(&tech, 1, T).remove(0);
    let inline =
        "Hi,\n\nOn Mon, Alice <a@example.test> wrote:\n> Which model?\nThe 14-inch one.\n> When?\nThursday.\n\nBob";
    answer(&tech, &notice, inline, "");
    desk.wait_settled(2, T);
    let relayed = text(&wait_inbox(&alice, 2, T).remove(1));
    assert!(relayed.contains("The 14-inch one.") && relayed.contains("Thursday."), "answers lost: {relayed}");
    // alice answers from a webmail that sends HTML only, with Outlook's header block below.
    let html = format!(
        "From: {alice}\r\nTo: {support}\r\nSubject: RE: [ACME #1] New laptop\r\nMessage-ID: <h-{n}@alice.example.test>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
<html><body><div>Thank you!</div><div><br></div><hr><div><b>From:</b> ACME IT &lt;{support}&gt;<br>\
<b>Sent:</b> Monday<br><b>To:</b> {alice}<br><b>Subject:</b> New laptop</div><div>The 14-inch one.</div></body></html>\r\n",
        support = desk.support,
        n = nanos()
    );
    send_smtp(&alice, &desk.support, html.as_bytes());
    desk.wait_settled(3, T);
    let show = desk.json(&["show", "1"]);
    let texts: Vec<&str> = show["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts[2], "Thank you!", "{texts:?}");
}

#[test]
fn japanese_mail_is_decoded_in_the_ticket_and_the_acknowledgement() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, _tech) = desk_with_tech();
    let taro = address("taro");
    // ISO-2022-JP, as Japanese mail clients still send it: "プリンター" in the subject, "こんにちは" in the body.
    let raw = format!(
        "From: =?ISO-2022-JP?B?GyRCRURDZhsoQg==?= <{taro}>\r\nTo: {}\r\nSubject: =?ISO-2022-JP?B?GyRCJVclaiVzJT8hPBsoQg==?=\r\n\
Message-ID: <jp-{}@taro.example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n\
\x1b$B$3$s$K$A$O\x1b(B\r\n",
        desk.support,
        nanos()
    );
    send_smtp(&taro, &desk.support, raw.as_bytes());
    let ack = wait_inbox(&taro, 1, T).remove(0);
    assert!(subject(&ack).contains("プリンター"), "{}", subject(&ack));
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["subject"], "プリンター");
    assert_eq!(show["ticket"]["requester_name"], "田中");
    assert!(show["messages"][0]["text"].as_str().unwrap().contains("こんにちは"), "{show:#}");
}

/// An IMAP proxy whose IDLE never announces anything: untagged EXISTS and RECENT lines sent while
/// the client idles are dropped, as by a server that polls its own mailbox rarely or a proxy that
/// swallows them.
fn silent_idle_proxy(dropped: Arc<AtomicU32>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", IMAP_PORT)) else { continue };
            let (mut c2s_from, mut c2s_to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2s_from, &mut c2s_to);
                let _ = c2s_to.shutdown(std::net::Shutdown::Write);
            });
            let dropped = dropped.clone();
            std::thread::spawn(move || {
                let mut from = BufReader::new(server);
                let mut to = client;
                let mut idling = false;
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match from.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let s = String::from_utf8_lossy(&line);
                    if s.starts_with("+ ") {
                        idling = true;
                    } else if !s.starts_with('*') {
                        idling = false;
                    }
                    let announces = s.starts_with("* ") && (s.contains(" EXISTS") || s.contains(" RECENT"));
                    if idling && announces {
                        dropped.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    if to.write_all(&line).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn new_mail_is_found_even_when_idle_stays_silent() {
    let Some(_lab) = crate::common::lab() else { return };
    let dropped = Arc::new(AtomicU32::new(0));
    let port = silent_idle_proxy(dropped.clone());
    // Five seconds between looks: long enough that the mail arrives while the desk idles (so the
    // proxy really hides Dovecot's announcement), short enough to prove the look happens.
    let mut desk = Desk::with(DeskOptions {
        imap: format!("{}\npoll_interval = \"5s\"", plain_loopback(port)),
        ..DeskOptions::default()
    });
    desk.start();
    desk.wait_log("IMAP connected", T);
    std::thread::sleep(Duration::from_secs(2));
    let alice = address("alice");
    let start = Instant::now();
    desk.request(&alice, "Silent server", &format!("s-{}@alice.example.test", nanos()), "Hi");
    wait_inbox(&alice, 1, T);
    let took = start.elapsed();
    assert!(dropped.load(Ordering::SeqCst) > 0, "the proxy never hid an announcement: the test proves nothing");
    // One poll interval, plus Postfix and the acknowledgement's delivery.
    assert!(took < Duration::from_secs(15), "new mail took {took:?} to be noticed");
}

#[test]
fn a_person_forwarding_a_bounce_gets_a_ticket_not_a_quarantine() {
    let Some(_lab) = crate::common::lab() else { return };
    let (desk, tech) = desk_with_tech();
    let alice = address("alice");
    let body = "Why did this bounce? I need to reach our auditor.\r\n\r\n\
From: Microsoft Outlook <postmaster@corp.example.test>\r\nSent: Monday\r\nSubject: Undeliverable: Q3 report\r\n\r\n\
Delivery has failed to these recipients or groups:\r\nauditor@elsewhere.test\r\n\
Remote server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound; not found'\r\n";
    send_smtp(
        &alice,
        &desk.support,
        &message(
            &alice,
            &desk.support,
            "FW: Undeliverable: Q3 report",
            &format!("fw-{}@alice.example.test", nanos()),
            "",
            body,
        ),
    );
    let ack = wait_inbox(&alice, 1, T).remove(0);
    assert!(subject(&ack).contains("[ACME #1]"), "{}", subject(&ack));
    wait_inbox(&tech, 1, T);
    assert_eq!(desk.json(&["quarantine"]).as_array().unwrap().len(), 0);
    assert_eq!(desk.json(&["show", "1"])["messages"][0]["kind"], "request");
}
