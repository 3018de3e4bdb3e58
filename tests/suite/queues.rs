//! Queues and teams end to end through the real binary, Postfix and Dovecot: three queues on the
//! desk's mailbox, a plus-address of it and a mailbox of their own; routing by address and by rule;
//! a queue's own acknowledgement and SLA; notifications to the team only; `#queue`; round-robin
//! (4/3/3 over 10 tickets, skipping who is away, fair across a restart); least-open; and a
//! queue mailbox that refuses the login while the others keep working.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

struct ThreeQueues {
    desk: Desk,
    security: String,
    facilities: String,
    helpdesk_team: [String; 3],
    sec_lead: String,
    fac_tech: String,
}

/// A desk with three queues: "helpdesk" (the first: mail to the support address that no rule
/// places; round-robin over three),
/// "security" (a mailbox of its own, its own acknowledgement, a 24x7 one-hour first response),
/// "facilities" (a plus-address of the support mailbox), and two routing rules.
fn three_queues(extra_security: &str) -> ThreeQueues {
    let helpdesk_team = [address("ann"), address("bob"), address("cid")];
    let sec_lead = address("sec");
    let fac_tech = address("fac");
    let security = address("security");
    let mut desk = Desk::new();
    let facilities = desk.support.replace('@', "+facilities@");
    let templates = desk.path("security-templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(
        templates.join("acknowledgement.subject.tera"),
        "{{ ticket.tag }} Security team: {{ ticket.subject }}",
    )
    .unwrap();
    std::fs::write(
        templates.join("acknowledgement.txt.tera"),
        "The security team has your report as ticket {{ ticket.id }} (queue {{ ticket.queue }}).\n",
    )
    .unwrap();
    let [ann, bob, cid] = &helpdesk_team;
    let tail = format!(
        r#"{rates}
[[queues]]
name = "helpdesk"
team = ["{ann}", "{bob}", "{cid}"]
lead = "{ann}"
assign = "round-robin"

[[queues]]
name = "security"
addresses = ["{security}"]
team = ["{sec_lead}"]
lead = "{sec_lead}"
templates = "security-templates"
default_priority = "P2"
[queues.imap]
{imap}
username = "{security}"
{extra_security}
poll_interval = "1s"
[queues.sla]
calendar = "24x7"
P2 = {{ first_response = "1h" }}

[[queues]]
name = "facilities"
addresses = ["{facilities}"]
team = ["{fac_tech}"]

[[routing]]
subject_matches = "(?i)\\bbadge\\b"
queue = "facilities"

[[routing]]
from_domain = ["vip.example.test"]
priority = "P1"
"#,
        rates = NO_RATE_LIMITS,
        imap = plain_loopback(IMAP_PORT),
        extra_security = if extra_security.is_empty() { "password_file = \"imap.secret\"" } else { extra_security },
    );
    let config = std::fs::read_to_string(&desk.config).unwrap() + &tail;
    std::fs::write(&desk.config, config).unwrap();
    let check = desk.cli(&["check"]);
    assert!(check.contains("security/acknowledgement"), "check renders the queue's own templates:\n{check}");
    desk.start();
    ThreeQueues { desk, security, facilities, helpdesk_team, sec_lead, fac_tech }
}

fn show(desk: &Desk, id: i64) -> Value {
    desk.json(&["show", &id.to_string()])
}

/// The ticket whose requester is `from`.
fn ticket_of(desk: &Desk, from: &str) -> Value {
    let list = desk.json(&["tickets"]);
    list.as_array().unwrap().iter().find(|t| t["requester"] == from).cloned().unwrap_or_else(|| panic!("{list:#}"))
}

#[test]
fn mail_lands_in_its_queue_by_address_rule_and_mailbox_and_only_its_team_is_told() {
    let Some(_lab) = lab() else { return };
    let q = three_queues("");
    let desk = &q.desk;
    let (alice, bert, carl, dora) =
        (address("alice"), address("bert"), address("carl"), address("dora").replace("@", "@vip."));
    // To the security queue's own mailbox.
    send_smtp(&alice, &q.security, &message(&alice, &q.security, "Phishing mail", "q1@a.test", "", "Look at this."));
    // To the facilities plus-address of the support mailbox (one mailbox, two queues).
    // (Cc another queue's address: a desk address, never a watcher, or the desk would mail itself.)
    let cc = format!("Cc: {}\r\n", q.security);
    send_smtp(&bert, &q.facilities, &message(&bert, &q.facilities, "Heating", "q2@b.test", &cc, "Cold."));
    // To the support address, routed by a rule.
    desk.request(&carl, "Badge lost", "q3@c.test", "My badge is gone.");
    // To the support address: the helpdesk queue, and P1 by rule.
    desk.request(&dora, "Laptop", "q4@d.test", "Broken.");
    desk.wait_settled(4, T);

    let sec = ticket_of(desk, &alice);
    assert_eq!((sec["queue"].as_str(), sec["priority"].as_str()), (Some("security"), Some("P2")), "{sec:#}");
    let s = show(desk, sec["id"].as_i64().unwrap());
    assert_eq!(events(&s, "routed"), [format!("queue security: sent to {}", q.security)]);
    let ack = wait_inbox(&alice, 1, T).remove(0);
    assert!(subject(&ack).contains("Security team: Phishing mail"), "{}", subject(&ack));
    assert!(text(&ack).contains("(queue security)"), "{}", text(&ack));
    // The queue's SLA: 24x7, P2 first response in one hour.
    let sla = desk.json(&["sla", &sec["id"].to_string()]);
    assert_eq!(
        (sla["policy"]["first_response_secs"].as_i64(), sla["policy"]["calendar"].as_str()),
        (Some(3600), Some("24x7"))
    );

    let fac = ticket_of(desk, &bert);
    assert_eq!(fac["queue"], "facilities", "{fac:#}");
    let s = show(desk, fac["id"].as_i64().unwrap());
    assert_eq!(s["watchers"], serde_json::json!([]), "{s:#}");
    let badge = ticket_of(desk, &carl);
    assert_eq!(badge["queue"], "facilities", "{badge:#}");
    assert_eq!(events(&show(desk, badge["id"].as_i64().unwrap()), "routed"), ["queue facilities: routing rule 1"]);
    let laptop = ticket_of(desk, &dora);
    assert_eq!((laptop["queue"].as_str(), laptop["priority"].as_str()), (Some("helpdesk"), Some("P1")));
    // The desk's own acknowledgement for the other queues.
    assert!(!subject(&wait_inbox(&bert, 1, T)[0]).contains("Security team"));

    // New-ticket notifications go to each queue's team only.
    desk.assert_mailed(&q.sec_lead, 1, "the security team hears of the security ticket only");
    desk.assert_mailed(&q.fac_tech, 2, "facilities hears of its two tickets only");
    for t in &q.helpdesk_team {
        desk.assert_mailed(t, 1, "the helpdesk team hears of the helpdesk ticket only");
    }
    assert_eq!(desk.json(&["tickets", "--queue", "facilities"]).as_array().unwrap().len(), 2);
    let report = desk.json(&["report"]);
    let opened: Vec<(String, u64)> = report["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["queue"].as_str().unwrap().to_string(), r["opened"].as_u64().unwrap()))
        .collect();
    assert_eq!(opened, [("helpdesk".into(), 1), ("security".into(), 1), ("facilities".into(), 2)]);

    // The assignee moves the laptop ticket to security: the move is an event, the queue's policy
    // measures it from then, and the requester's next mail reaches the security team.
    let laptop_id = laptop["id"].as_i64().unwrap();
    let assignee = laptop["assignee"].as_str().unwrap().to_string();
    let notice = wait_inbox(&assignee, 1, T).remove(0);
    answer(&assignee, &notice, "#queue security", "");
    desk.wait_settled(5, T);
    let s = show(desk, laptop_id);
    assert_eq!(s["ticket"]["queue"], "security", "{s:#}");
    assert_eq!(events(&s, "queue"), ["queue helpdesk -> security: its team and SLA policy from now on"]);
    let sla = desk.json(&["sla", &laptop_id.to_string()]);
    assert_eq!(sla["policy"]["calendar"], "24x7", "{sla:#}");
}

#[test]
fn round_robin_gives_four_three_three_skips_who_is_away_and_stays_fair_across_a_restart() {
    let Some(_lab) = lab() else { return };
    let mut q = three_queues("");
    let requester = address("req");
    for n in 0..10 {
        q.desk.request(&requester, &format!("Request {n}"), &format!("rr{n}-{}@r.test", nanos()), "Help.");
    }
    q.desk.wait_settled(10, Duration::from_secs(60));
    let count = |desk: &Desk| -> BTreeMap<String, usize> {
        let mut c = BTreeMap::new();
        for t in desk.json(&["tickets", "--queue", "helpdesk"]).as_array().unwrap() {
            *c.entry(t["assignee"].as_str().unwrap_or("nobody").to_string()).or_insert(0) += 1;
        }
        c
    };
    let first = count(&q.desk);
    let [ann, bob, cid] = &q.helpdesk_team;
    assert_eq!(
        (first.get(ann), first.get(bob), first.get(cid)),
        (Some(&4), Some(&3), Some(&3)),
        "in team order from the first: {first:?}"
    );
    let list = q.desk.json(&["tickets", "--queue", "helpdesk"]);
    let first_ticket = list[0]["id"].as_i64().unwrap();
    assert!(
        events(&show(&q.desk, first_ticket), "assigned").iter().any(|e| e.starts_with("auto-assigned: round-robin")),
        "{:#}",
        show(&q.desk, first_ticket)
    );
    // The tenth went to ann; bob is next, but says he is away (on any ticket's reply).
    let notice = wait_inbox(bob, 3, T).remove(0);
    answer(bob, &notice, "#away until 2099-12-31", "");
    q.desk.wait_settled(11, T);
    let status = q.desk.json(&["status"]);
    assert_eq!(status["queues"][0]["away"], serde_json::json!([bob]), "{status:#}");
    // A restart in between: the turn is read back from the database.
    q.desk.stop();
    q.desk.start();
    for n in 10..13 {
        q.desk.request(&requester, &format!("Request {n}"), &format!("rr{n}-{}@r.test", nanos()), "Help.");
    }
    q.desk.wait_settled(14, Duration::from_secs(60));
    let after = count(&q.desk);
    assert_eq!(after.get(bob), Some(&3), "nobody away is assigned: {after:?}");
    // cid (after ann's tenth), ann, cid.
    assert_eq!((after.get(ann), after.get(cid)), (Some(&5), Some(&5)), "{after:?}");
    let last = q.desk.json(&["tickets", "--queue", "helpdesk"]).as_array().unwrap().last().cloned().unwrap();
    let why = events(&show(&q.desk, last["id"].as_i64().unwrap()), "assigned");
    assert!(why.iter().any(|e| e.contains(&format!("away: {bob}"))), "{why:?}");
    // Back again: bob is in the turn (after cid's last comes ann, then bob).
    let notice = wait_inbox(bob, 3, T).remove(0);
    answer(bob, &notice, "#back", "");
    q.desk.wait_settled(15, T);
    for n in 13..15 {
        q.desk.request(&requester, &format!("Request {n}"), &format!("rr{n}-{}@r.test", nanos()), "Help.");
    }
    q.desk.wait_settled(17, T);
    let back = count(&q.desk);
    assert_eq!((back.get(ann), back.get(bob)), (Some(&6), Some(&4)), "bob is assigned again after #back: {back:?}");
}

#[test]
fn least_open_gives_work_to_whoever_has_least() {
    let Some(_lab) = lab() else { return };
    let (a, b) = (address("lo-a"), address("lo-b"));
    let mut desk = Desk::with(DeskOptions {
        tail: format!(
            "{NO_RATE_LIMITS}\n[[queues]]\nname = \"it\"\nteam = [\"{a}\", \"{b}\"]\nassign = \"least-open\"\n"
        ),
        ..DeskOptions::default()
    });
    desk.start();
    let requester = address("req");
    for n in 0..4 {
        desk.request(&requester, &format!("Ticket {n}"), &format!("lo{n}-{}@r.test", nanos()), "Help.");
    }
    desk.wait_settled(4, T);
    let assigned = |desk: &Desk, who: &str| {
        desk.json(&["tickets"]).as_array().unwrap().iter().filter(|t| t["assignee"] == who).count()
    };
    assert_eq!((assigned(&desk, &a), assigned(&desk, &b)), (2, 2));
    // Ties go to whoever waited longest: a, b, a, b. b closes both of his: the next two both go
    // to b, who now has none open.
    let notices = wait_inbox(&b, 4, T);
    let mine: Vec<&Vec<u8>> =
        notices.iter().filter(|m| subject(m).contains("Ticket 1") || subject(m).contains("Ticket 3")).collect();
    assert_eq!(mine.len(), 2);
    for notice in mine {
        answer(&b, notice, "#close", "");
    }
    desk.wait_settled(6, T);
    for n in 4..6 {
        desk.request(&requester, &format!("Ticket {n}"), &format!("lo{n}-{}@r.test", nanos()), "Help.");
    }
    desk.wait_settled(8, T);
    assert_eq!((assigned(&desk, &a), assigned(&desk, &b)), (2, 4), "{:#}", desk.json(&["tickets"]));
}

#[test]
fn a_queue_mailbox_that_refuses_the_login_holds_up_no_other() {
    let Some(_lab) = lab() else { return };
    let q = three_queues("password = \"wrong\"");
    let desk = &q.desk;
    let alice = address("alice");
    desk.request(&alice, "VPN down", "vpn@a.test", "Since 9.");
    desk.wait_settled(1, T);
    wait_inbox(&alice, 1, T);
    let status = desk.wait_status("the security mailbox's failure shown", T, |s| {
        s["watched"].as_array().is_some_and(|w| w.iter().any(|m| m["queue"] == "security" && m["error"].is_string()))
    });
    let logins = status["logins"].as_array().unwrap();
    let sec = logins.iter().find(|l| l["server"] == "IMAP (queue security)").unwrap();
    assert!(sec["failing_since"].is_string(), "{status:#}");
    let main = logins.iter().find(|l| l["server"] == "IMAP").unwrap();
    assert!(main["failing_since"].is_null(), "{status:#}");
    let shown = desk.cli(&["status"]);
    assert!(shown.contains("(queue security): last sync never"), "{shown}");
}

#[test]
fn a_queue_reads_another_folder_of_the_desks_mailbox() {
    let Some(_lab) = lab() else { return };
    let tech = address("fac");
    let mut desk = Desk::with(DeskOptions {
        tail: format!(
            "[[queues]]\nname = \"helpdesk\"\n\n[[queues]]\nname = \"facilities\"\nfolder = \"Facilities\"\nteam = [\"{tech}\"]\n"
        ),
        ..DeskOptions::default()
    });
    // The folder exists before the desk starts (a filter rule's target); its mail is filed there.
    append_to(&desk.support, "Facilities", &[]);
    desk.start();
    let dora = address("dora");
    append_to(
        &desk.support,
        "Facilities",
        &[message(&dora, &desk.support, "Radiator leaks", &format!("f{}@d.test", nanos()), "", "Room 4.")],
    );
    desk.wait_settled(1, T);
    let t = ticket_of(&desk, &dora);
    assert_eq!(t["queue"], "facilities", "{t:#}");
    assert_eq!(
        events(&show(&desk, t["id"].as_i64().unwrap()), "routed"),
        ["queue facilities: read from the queue's mailbox"]
    );
    desk.assert_mailed(&tech, 1, "the facilities team is told");
    let status = desk.json(&["status"]);
    assert_eq!(status["watched"].as_array().unwrap().len(), 2, "{status:#}");
    assert!(status["watched"][1]["last_ok"].is_string(), "{status:#}");
}

#[test]
fn a_routing_rule_and_type_set_a_tickets_type_shown_to_the_team() {
    let Some(_lab) = lab() else { return };
    let tech = address("tech");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]"),
        tail: "[[routing]]\nsubject_matches = \"(?i)\\\\bdown\\\\b\"\ntype = \"incident\"\npriority = \"P1\"\n".into(),
        ..DeskOptions::default()
    });
    desk.start();
    let alice = address("alice");
    desk.request(&alice, "Mail server down", &format!("t1{}@a.test", nanos()), "Since 9.");
    let notice = wait_inbox(&tech, 1, T).remove(0);
    assert!(text(&notice).contains("Priority P1, status open, incident"), "{}", text(&notice));
    desk.request(&alice, "New laptop please", &format!("t2{}@a.test", nanos()), "Mine is old.");
    let notices = wait_inbox(&tech, 2, T);
    let laptop = notices.iter().find(|m| subject(m).contains("New laptop")).unwrap();
    answer(&tech, laptop, "#type request", "");
    desk.wait_settled(3, T);
    let incidents = desk.json(&["tickets", "--type", "incident"]);
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents:#}");
    assert_eq!(incidents[0]["type"], "incident");
    let requests = desk.json(&["tickets", "--type", "request"]);
    assert_eq!(requests[0]["subject"], "New laptop please", "{requests:#}");
    assert_eq!(events(&show(&desk, requests[0]["id"].as_i64().unwrap()), "type"), ["type none -> request"]);
}
