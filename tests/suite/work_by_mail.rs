//! Technicians' work by mail, end to end through the real binary, Postfix and Dovecot: canned
//! replies and macros, and time logged with `#time`.

use std::time::Duration;

use crate::common::*;

const T: Duration = Duration::from_secs(30);

#[test]
fn a_macro_applies_its_commands_and_canned_reply_and_time_adds_up() {
    let Some(_lab) = lab() else { return };
    let tech = address("tech");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]"),
        tail: "[macros.fixed]\ncommands = [\"#status pending\"]\nreply = \"check-fixed\"\n".into(),
        ..DeskOptions::default()
    });
    desk.start();
    let alice = address("alice");
    desk.request(&alice, "Printer jammed", &format!("p{}@a.test", nanos()), "Error E42.");
    let notice = wait_inbox(&tech, 1, T).remove(0);
    // A canned reply alone is a whole reply.
    answer(&tech, &notice, "#reply need-more-info\n#time 10m", "");
    let got = wait_inbox(&alice, 2, T);
    let asked = text(&got[1]);
    assert!(asked.contains("we need a little more from you") && asked.contains("[ACME #1]"), "{asked}");
    assert!(!asked.contains("+t1-"), "a canned reply never carries a technician's address: {asked}");
    // A macro, with the technician's own words after the canned text.
    answer(&tech, &notice, "#macro fixed\n#time 1h5m\nThe fuser was replaced.", "");
    let got = wait_inbox(&alice, 3, T);
    let fixed = text(&got[2]);
    let (canned, own) = (fixed.find("We believe [ACME #1]"), fixed.find("The fuser was replaced."));
    assert!(canned.is_some() && own.is_some() && canned < own, "the canned text comes first: {fixed}");
    desk.wait_settled(3, T);
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["status"], "pending", "{show:#}");
    assert_eq!(show["time"]["total_minutes"], 75, "{show:#}");
    assert_eq!(events(&show, "time").last().unwrap(), &format!("{tech} spent 1h05m (ticket total 1h15m)"));
    let report = desk.json(&["report"]);
    let row = report["technicians"].as_array().unwrap().iter().find(|t| t["technician"] == tech.as_str()).cloned();
    assert_eq!(row.unwrap()["time_minutes"], 75, "{report:#}");
    // An unknown name applies nothing and tells the technician which names there are.
    answer(&tech, &notice, "#reply nope\n#close", "");
    let errors = wait_inbox(&tech, 2, T);
    let said = text(&errors[1]);
    assert!(said.contains("no canned reply \"nope\"") && said.contains("check-fixed, need-more-info"), "{said}");
    desk.wait_settled(4, T);
    assert_eq!(desk.json(&["show", "1"])["ticket"]["status"], "pending", "nothing applied");
}

/// The mail whose subject contains `needle`, among `user`'s.
fn find(user: &str, needle: &str, n: usize) -> Vec<u8> {
    let all = wait_inbox(user, n, Duration::from_secs(60));
    all.into_iter().find(|m| subject(m).contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in {user}'s inbox"))
}

#[test]
fn digests_go_once_per_period_across_a_restart_and_technicians_query_by_reply() {
    let Some(_lab) = lab() else { return };
    let tech = address("tech");
    let admin = address("admin");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]\nadmins = [\"{admin}\"]"),
        tail: "[digests]\ndaily = \"00:00\"\nweekly = \"mon 00:00\"\n".into(),
        ..DeskOptions::default()
    });
    desk.start();
    let alice = address("alice");
    desk.request(&alice, "Printer jammed on floor 3", &format!("d{}@a.test", nanos()), "Error E42 again.");
    desk.wait_settled(1, T);
    // The scheduler looks every 30 s: the technician has an unassigned ticket now.
    let digest = find(&tech, "your tickets on", 2);
    let body = text(&digest);
    assert!(body.contains("UNASSIGNED IN YOUR QUEUES (1)") && body.contains("Printer jammed on floor 3"), "{body}");
    let weekly = find(&admin, "the week to", 1);
    assert!(text(&weekly).contains("1 opened") || subject(&weekly).contains("1 opened"), "{}", subject(&weekly));
    // A restart (its first look is at once) and the CLI do not send today's again.
    desk.stop();
    desk.start();
    std::thread::sleep(Duration::from_secs(3));
    assert!(desk.cli(&["digest", "--kind", "daily"]).contains("no digest-daily digest queued"));
    desk.wait_status("outbox drained", T, |s| s["outbox"]["pending"] == 0);
    assert_eq!(desk.mails_to(&tech), 2, "the new-ticket notice and one digest");
    // --to tries it once more, counting for nothing.
    assert!(desk.cli(&["digest", "--kind", "daily", "--to", &tech]).contains("queued for"));
    wait_inbox(&tech, 3, T);

    // A reply to the digest asks the desk; the answer comes to the technician alone.
    answer(&tech, &digest, "#open\n\n(sent from my phone)", "");
    let open = find(&tech, "#open: 1 ticket(s)", 4);
    assert!(text(&open).contains("[ACME #1] Printer jammed on floor 3"), "{}", text(&open));
    answer(&tech, &digest, "#find e42", "");
    let found = find(&tech, "#find e42: 1 message(s)", 5);
    assert!(text(&found).contains("[E42]"), "{}", text(&found));
    // Someone else writing as the technician to the shared query address gets nothing: no proof.
    let ask = desk.support.replace('@', "+ask@");
    send_smtp(&tech, &ask, &message(&tech, &ask, "q", &format!("f{}@x.test", nanos()), "", "#mine"));
    // Nor does the requester at the technician's own query address.
    let query_address = header_address(&digest, "Reply-To");
    send_smtp(
        &alice,
        &query_address,
        &message(&alice, &query_address, "q", &format!("g{}@x.test", nanos()), "", "#show 1"),
    );
    desk.wait_settled(5, T);
    assert_eq!(desk.mails_to(&tech), 5, "no answer to a forged query");
    assert_eq!(desk.mails_to(&alice), 1, "the requester got her acknowledgement only");
    assert_eq!(desk.json(&["tickets"]).as_array().unwrap().len(), 1, "queries never open tickets");
}

#[test]
fn a_resolution_mail_carries_signed_ratings_and_the_last_rating_counts() {
    let Some(_lab) = lab() else { return };
    let tech = address("tech");
    let mut desk =
        Desk::with(DeskOptions { helpdesk: format!("technicians = [\"{tech}\"]"), ..DeskOptions::default() });
    desk.start();
    let alice = address("alice");
    desk.request(&alice, "VPN drops", &format!("v{}@a.test", nanos()), "Every ten minutes.");
    let notice = wait_inbox(&tech, 1, T).remove(0);
    answer(&tech, &notice, "#take\n#resolve\nThe VPN profile was renewed.", "");
    let got = wait_inbox(&alice, 2, T);
    let resolution = &got[1];
    assert!(subject(resolution).contains("Resolved: VPN drops"), "{}", subject(resolution));
    let body = text(resolution);
    assert!(body.contains("The VPN profile was renewed."), "one mail carries the reply: {body}");
    let links: Vec<&str> = body.lines().filter_map(|l| l.split("mailto:").nth(1)).collect();
    assert_eq!(links.len(), 5, "{body}");
    let four = links[3].split('?').next().unwrap();
    assert!(four.contains("+r1-4-"), "{four}");
    // One click: a mail to the signed address, with a comment.
    send_smtp(&alice, four, &message(&alice, four, "Rating 4", &format!("r4{}@a.test", nanos()), "", "Quick fix."));
    desk.wait_settled(3, T);
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["status"], "resolved", "a rating reopens nothing: {show:#}");
    assert_eq!(events(&show, "rated"), [format!("{alice} rated the resolution 4 of 5: Quick fix.")]);
    // A forged link (another score with this ticket's token) rates nothing.
    let forged = four.replace("-4-", "-5-");
    send_smtp(&alice, &forged, &message(&alice, &forged, "Rating 5", &format!("f{}@a.test", nanos()), "", "x"));
    // A reply with the score alone on the first line: the last rating counts.
    let id = header(resolution, "Message-ID").unwrap();
    let reply = message(
        &alice,
        &desk.support,
        &format!("Re: {}", subject(resolution)),
        &format!("r5{}@a.test", nanos()),
        &format!("In-Reply-To: {id}\r\nReferences: {id}\r\n"),
        "5\r\nActually it has been perfect since.",
    );
    send_smtp(&alice, &desk.support, &reply);
    desk.wait_settled(5, T);
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["status"], "resolved", "{show:#}");
    assert_eq!(events(&show, "rated").len(), 2, "the forged link did not count: {show:#}");
    let report = desk.json(&["report"]);
    let row =
        report["technicians"].as_array().unwrap().iter().find(|t| t["technician"] == tech.as_str()).cloned().unwrap();
    assert_eq!((row["ratings"].as_u64(), row["rating_average"].as_f64()), (Some(1), Some(5.0)), "{report:#}");
}

#[test]
fn requesters_ask_for_their_tickets_status_and_strangers_get_nothing() {
    let Some(_lab) = lab() else { return };
    let tech = address("tech");
    let mut desk =
        Desk::with(DeskOptions { helpdesk: format!("technicians = [\"{tech}\"]"), ..DeskOptions::default() });
    desk.start();
    let alice = address("alice");
    desk.request(&alice, "Laptop fan loud", &format!("l{}@a.test", nanos()), "Very loud.");
    desk.request(&alice, "Monitor flickers", &format!("m{}@a.test", nanos()), "Since Monday.");
    let notices = wait_inbox(&tech, 2, T);
    let fan = notices.iter().find(|m| subject(m).contains("Laptop fan")).unwrap();
    answer(&tech, fan, "#take\n#resolve\nNew fan fitted.", "");
    desk.wait_settled(3, T);
    let status = desk.support.replace('@', "+status@");
    send_smtp(&alice, &status, &message(&alice, &status, "status?", &format!("s{}@a.test", nanos()), "", ""));
    let got = wait_inbox(&alice, 4, T);
    let listed = got.iter().find(|m| subject(m).contains("your tickets")).expect("the status answer");
    let body = text(listed);
    assert!(body.contains("Your open tickets (1)") && body.contains("Monitor flickers"), "{body}");
    assert!(!body.contains("Laptop fan"), "resolved tickets are not open: {body}");
    // Someone with no tickets here (or writing as someone else to have mail sent to them) gets nothing.
    let stranger = address("stranger");
    send_smtp(&stranger, &status, &message(&stranger, &status, "status", &format!("x{}@x.test", nanos()), "", ""));
    // "status" alone on a ticket's thread asks too, and reopens nothing.
    let resolution = got.iter().find(|m| subject(m).contains("Resolved")).unwrap();
    let id = header(resolution, "Message-ID").unwrap();
    let reply = message(
        &alice,
        &desk.support,
        &format!("Re: {}", subject(resolution)),
        &format!("st{}@a.test", nanos()),
        &format!("In-Reply-To: {id}\r\nReferences: {id}\r\n"),
        "Status?",
    );
    send_smtp(&alice, &desk.support, &reply);
    desk.wait_settled(6, T);
    wait_inbox(&alice, 5, T);
    assert_eq!(desk.mails_to(&stranger), 0, "nothing to someone with no tickets");
    let show = desk.json(&["show", "1"]);
    assert_eq!(show["ticket"]["status"], "resolved", "{show:#}");
    assert_eq!(desk.json(&["tickets"]).as_array().unwrap().len(), 2, "status requests open no tickets");
}
