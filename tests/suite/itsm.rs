//! IT service management end to end through the real binary, Postfix and Dovecot: a change that
//! needs two of three approvers (one by its signed address, one by DMARC on the thread; a forged
//! decision and one replayed after the change was revised are refused), a rejected change with a
//! reminder, a problem resolving its three linked incidents, an onboarding request spawning task
//! tickets in two queues and closing with one mail, a service's owner told of a breach, and
//! `replay --dry-run` matching what the daemon then does.

use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);
const PASS: &str =
    "Authentication-Results: mx.example.test; dkim=pass header.d=example.test; dmarc=pass header.from=example.test\r\n";

fn show(desk: &Desk, id: i64) -> Value {
    desk.json(&["show", &id.to_string()])
}

/// A started desk with one technician and `tail` (DMARC from the lab's `mx.example.test` trusted).
fn itsm_desk(tail: &str) -> (Desk, String) {
    let tech = address("tech");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]"),
        tail: format!(
            "{NO_RATE_LIMITS}\n[security]\ntechnician_proof = [\"token\", \"dmarc\"]\nauthserv_id = \"mx.example.test\"\n\n[sla]\nsweep_interval = \"1s\"\n\n{tail}"
        ),
        ..DeskOptions::default()
    });
    let check = desk.cli(&["check"]);
    assert!(check.contains("approval-request"), "check renders the approval templates:\n{check}");
    desk.start();
    (desk, tech)
}

/// The mail in `mails` whose subject contains `needle`.
fn find<'a>(mails: &'a [Vec<u8>], needle: &str) -> &'a Vec<u8> {
    mails.iter().find(|m| subject(m).contains(needle)).unwrap_or_else(|| {
        panic!("no mail with {needle:?} among {:?}", mails.iter().map(|m| subject(m)).collect::<Vec<_>>())
    })
}

#[test]
fn a_change_needs_two_of_three_approvals_and_forged_or_replayed_decisions_do_not_count() {
    let Some(_lab) = lab() else { return };
    let (cab1, cab2, cab3, owner) = (address("cab1"), address("cab2"), address("cab3"), address("owner"));
    let (desk, tech) = itsm_desk(&format!(
        r#"[[services]]
name = "network"
owner = "{owner}"
keywords = ["switch", "vpn"]
[services.approvals]
approvers = ["{cab1}", "{cab2}", "{cab3}"]
required = 2

[[routing]]
subject_matches = "(?i)^change:"
type = "change"
"#
    ));
    let alice = address("alice");
    desk.request(
        &alice,
        "Change: upgrade the core switch",
        "c1@alice.test",
        "Firmware 9.3 on core-sw1, Saturday 22:00.",
    );
    desk.wait_settled(1, T);
    let s = show(&desk, 1);
    let t = &s["ticket"];
    assert_eq!(
        (t["type"].as_str(), t["service"].as_str(), t["approval"].as_str(), t["change_version"].as_i64()),
        (Some("change"), Some("network"), Some("pending"), Some(1)),
        "{s:#}"
    );
    assert!(events(&s, "routed").iter().any(|e| e == "service network: \"switch\" in the subject"), "{s:#}");
    // Each approver is asked, with a Reply-To of their own; no token is printed in the body.
    let mut v1 = Vec::new();
    for cab in [&cab1, &cab2, &cab3] {
        let m = wait_inbox(cab, 1, T).remove(0);
        assert!(
            subject(&m).contains("Approval needed: Change: upgrade the core switch (version 1)"),
            "{}",
            subject(&m)
        );
        assert!(text(&m).contains("Firmware 9.3") && text(&m).contains("2 of 3 approvers"), "{}", text(&m));
        let reply_to = header_address(&m, "Reply-To");
        assert!(reply_to.contains("+a1-1-"), "{reply_to}");
        assert!(!text(&m).contains("+a1-"), "the token is in the header only:\n{}", text(&m));
        v1.push(m);
    }
    assert_ne!(header_address(&v1[0], "Reply-To"), header_address(&v1[1], "Reply-To"));
    assert_eq!(desk.status().unwrap()["changes_awaiting_approval"]["count"], 1);
    assert!(desk.cli(&["status"]).contains("awaiting approval  1 change(s)"));

    // Not resolved before it is approved.
    let notice = wait_inbox(&tech, 1, T).remove(0);
    answer(&tech, &notice, "#resolve", "");
    let refused = find(&wait_inbox(&tech, 2, T), "Commands not applied").clone();
    assert!(text(&refused).contains("not approved (pending)"), "{}", text(&refused));

    // Forged: someone else writes to cab1's address; cab2 makes up an address of the right shape.
    let eve = address("eve");
    answer(&eve, &v1[0], "#approve", "");
    let made_up = header_address(&v1[1], "Reply-To")
        .split_once("+a1-1-")
        .map(|(l, r)| format!("{l}+a1-1-aaaaaaaaaaaaaaaa@{}", r.split_once('@').unwrap().1))
        .unwrap();
    send_to(&made_up, &message(&cab2, &made_up, "Re: approval", "forged2@cab.test", "", "#approve"));
    desk.wait_settled(4, T);
    assert_eq!(show(&desk, 1)["ticket"]["approval"], "pending");

    // The technician revises the change: version 2, everyone asked again.
    answer(&tech, &notice, "#submit\n#note Added a rollback plan: the 9.2 image stays on flash.", "");
    let mut v2 = Vec::new();
    for cab in [&cab1, &cab2, &cab3] {
        let mails = wait_inbox(cab, 2, T);
        let m = find(&mails, "(version 2)").clone();
        assert!(text(&m).contains("rollback plan"), "{}", text(&m));
        assert!(header_address(&m, "Reply-To").contains("+a1-2-"));
        v2.push(m);
    }
    // cab1's approval of version 1, sent now, is a replay on an edited change: refused.
    answer(&cab1, &v1[0], "#approve", "");
    desk.wait_settled(6, T);
    assert_eq!(show(&desk, 1)["ticket"]["approval"], "pending");
    // cab1 proved who it is, so it hears why, with version 2's address to answer; eve hears nothing.
    let not_counted = find(&wait_inbox(&cab1, 3, T), "Not counted").clone();
    assert!(text(&not_counted).contains("revised to version 2"), "{}", text(&not_counted));
    assert!(header_address(&not_counted, "Reply-To").contains("+a1-2-"));
    desk.assert_mailed(&eve, 0, "a forger is told nothing");
    // cab3 asks a question instead of deciding: the team gets it as a note, nothing is counted.
    answer(&cab3, &v2[2], "How long does the rollback take?", "");
    let question = find(&wait_inbox(&tech, 3, T), "Note from").clone();
    assert!(text(&question).contains("How long does the rollback take?"), "{}", text(&question));
    // cab1 approves version 2 by its signed address; cab2 by DMARC on the thread.
    answer(&cab1, &v2[0], "#approve Looks good.", "");
    desk.wait_settled(8, T);
    assert_eq!(show(&desk, 1)["ticket"]["approval"], "pending", "one of two");
    let id = header(&v2[1], "Message-ID").unwrap();
    append(
        &desk.support,
        &[message(
            &cab2,
            &desk.support,
            &format!("Re: {}", subject(&v2[1])),
            &format!("d{}@cab.test", nanos()),
            &format!("{PASS}In-Reply-To: {id}\r\nReferences: {id}\r\n"),
            "#approve",
        )],
    );
    desk.wait_settled(9, T);
    let s = show(&desk, 1);
    assert_eq!(s["ticket"]["approval"], "approved", "{s:#}");
    let refusals = events(&s, "approval-refused");
    assert_eq!(refusals.len(), 3, "{refusals:#?}");
    assert!(refusals[0].contains("not issued to") && refusals[0].contains(&eve), "{refusals:#?}");
    assert!(refusals[1].contains("not issued to") && refusals[1].contains(&cab2), "{refusals:#?}");
    assert!(refusals[2].contains("revised to version 2"), "{refusals:#?}");
    let approvals = s["approvals"].as_array().unwrap();
    let proofs: Vec<(&str, i64, &str)> = approvals
        .iter()
        .map(|a| (a["approver"].as_str().unwrap(), a["version"].as_i64().unwrap(), a["proof"].as_str().unwrap()))
        .collect();
    assert_eq!(proofs, [(cab1.as_str(), 2, "signed approval address"), (cab2.as_str(), 2, "DMARC")]);
    assert_eq!(events(&s, "change-approved").len(), 1);
    assert_eq!(desk.status().unwrap()["changes_awaiting_approval"]["count"], 0);
    // The requester hears the outcome; now the change can be resolved.
    let decision = find(&wait_inbox(&alice, 2, T), "Change approved").clone();
    assert!(text(&decision).contains(&format!("{cab1}: approve (Looks good.)")), "{}", text(&decision));
    answer(&tech, &notice, "#resolve\nDone, all ports up.", "");
    desk.wait_settled(10, T);
    assert_eq!(show(&desk, 1)["ticket"]["status"], "resolved");
    find(&wait_inbox(&alice, 3, T), "Resolved");
    let human = desk.cli(&["show", "1"]);
    assert!(human.contains("change version 2: approved") && human.contains("service network (owner"), "{human}");
    // cab3 was never needed: asked twice, nothing more.
    desk.assert_mailed(&cab3, 2, "cab3 got the two requests only");
}

#[test]
fn a_rejected_change_is_told_to_the_requester_after_a_reminder_and_cannot_be_resolved() {
    let Some(_lab) = lab() else { return };
    let (cab1, cab2) = (address("cab1"), address("cab2"));
    let (desk, tech) = itsm_desk(&format!(
        r#"[changes]
approvers = ["{cab1}", "{cab2}"]
required = "all"
remind_after = "3s"

[[routing]]
subject_matches = "(?i)^change:"
type = "change"
"#
    ));
    let bert = address("bert");
    desk.request(&bert, "Change: open port 25 on the firewall", "c2@bert.test", "For the new relay.");
    // Nobody decides: each approver is reminded once.
    for cab in [&cab1, &cab2] {
        let mails = wait_inbox(cab, 2, T);
        assert!(subject(&mails[1]).contains("Reminder: approval needed"), "{}", subject(&mails[1]));
        assert!(text(&mails[1]).contains("still waiting"), "{}", text(&mails[1]));
    }
    std::thread::sleep(Duration::from_secs(4));
    desk.assert_mailed(&cab1, 2, "one reminder per version");
    let s = show(&desk, 1);
    assert_eq!(events(&s, "approval-reminder").len(), 1, "{s:#}");
    // One rejection of "all" is a veto.
    let request = inbox(&cab1).remove(0);
    answer(&cab1, &request, "#reject\nNo rollback plan, and not during month end.", "");
    desk.wait_settled(2, T);
    let s = show(&desk, 1);
    assert_eq!(s["ticket"]["approval"], "rejected", "{s:#}");
    assert!(events(&s, "approval")[0].contains("rejected version 1 (by signed approval address): No rollback plan"));
    let told = find(&wait_inbox(&bert, 2, T), "Change rejected").clone();
    assert!(text(&told).contains("No rollback plan"), "{}", text(&told));
    // The team is told too; a rejected change is closed, not resolved.
    let notices = wait_inbox(&tech, 2, T);
    find(&notices, "Change rejected");
    let notice = find(&notices, "New:").clone();
    answer(&tech, &notice, "#resolve", "");
    find(&wait_inbox(&tech, 3, T), "Commands not applied");
    answer(&tech, &notice, "#close", "");
    desk.wait_settled(4, T);
    assert_eq!(show(&desk, 1)["ticket"]["status"], "closed");
    // cab2's late approval changes nothing.
    answer(&cab2, &inbox(&cab2).remove(0), "#approve", "");
    desk.wait_settled(5, T);
    assert_eq!(show(&desk, 1)["ticket"]["approval"], "rejected");
}

#[test]
fn resolving_a_problem_resolves_its_three_linked_incidents_and_tells_their_requesters() {
    let Some(_lab) = lab() else { return };
    let (desk, tech) = itsm_desk("");
    let people = [address("alice"), address("bert"), address("carl")];
    for (i, p) in people.iter().enumerate() {
        desk.request(p, "No network in room 4", &format!("n{i}@x.test"), "The cable is in, nothing works.");
    }
    desk.wait_settled(3, T);
    let notices = wait_inbox(&tech, 3, T);
    // The first opens a problem; the others are linked to it.
    answer(&tech, &notices[0], "#problem\n#note Same for everyone in room 4: looks like the DHCP scope.", "");
    desk.wait_settled(4, T);
    let p = show(&desk, 1)["ticket"]["problem"].as_i64().expect("ticket 1 is linked to a new problem");
    assert_eq!(p, 4);
    // A ticket that does not exist is no problem to link to: refused like any bad command.
    answer(&tech, &notices[1], "#problem 99", "");
    desk.wait_settled(5, T);
    let refused = find(&wait_inbox(&tech, 5, T), "Commands not applied").clone();
    assert!(text(&refused).contains("ticket 99 does not exist"), "{}", text(&refused));
    for n in &notices[1..] {
        answer(&tech, n, "#problem 4", "");
    }
    desk.wait_settled(7, T);
    let problem = show(&desk, 4);
    assert_eq!(problem["ticket"]["type"], "problem", "{problem:#}");
    let linked: Vec<i64> = problem["incidents"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(linked, [1, 2, 3]);
    assert_eq!(show(&desk, 2)["ticket"]["problem"], 4);
    let human = desk.cli(&["show", "4"]);
    assert!(human.contains("linked incidents (0 of 3 done)"), "{human}");
    // A technician asks by mail (DMARC, support+ask@): the answer shows the links too.
    let ask = desk.support.replace('@', "+ask@");
    append(&desk.support, &[message(&tech, &ask, "query", &format!("q{}@tech.test", nanos()), PASS, "#show 4")]);
    let shown = find(&wait_inbox(&tech, 6, T), "#show 4").clone();
    assert!(
        text(&shown).contains("type problem") && text(&shown).contains("linked incidents: 0 of 3 done ([ACME #1]"),
        "{}",
        text(&shown)
    );
    assert!(desk.cli(&["show", "2"]).contains("linked to problem [ACME #4]"));
    // The technician got the problem's notification, and resolves it from there.
    let problem_notice = find(&wait_inbox(&tech, 4, T), "Problem: No network").clone();
    answer(&tech, &problem_notice, "#resolve\nThe DHCP scope was full; it is twice as large now.", "");
    desk.wait_settled(9, T);
    for (i, person) in people.iter().enumerate() {
        let mails = wait_inbox(person, 2, T);
        let told = find(&mails, "Resolved: No network in room 4");
        assert!(text(told).contains("DHCP scope was full"), "{}", text(told));
        assert!(text(told).contains("[ACME #4]"), "{}", text(told));
        assert_eq!(show(&desk, i as i64 + 1)["ticket"]["status"], "resolved");
        assert_eq!(events(&show(&desk, i as i64 + 1), "linked-resolved"), ["resolved with problem 4"]);
    }
    assert!(desk.cli(&["show", "4"]).contains("linked incidents (3 of 3 done)"));
    for p in &people {
        desk.assert_mailed(p, 2, "an acknowledgement and the problem's resolution, nothing else");
    }
}

#[test]
fn an_onboarding_request_spawns_a_task_per_team_and_closes_with_one_mail() {
    let Some(_lab) = lab() else { return };
    let (ann, fac) = (address("ann"), address("fac"));
    let mut desk = Desk::with(DeskOptions {
        tail: format!(
            r#"{NO_RATE_LIMITS}
[[queues]]
name = "helpdesk"
team = ["{ann}"]

[[queues]]
name = "facilities"
team = ["{fac}"]

[request_templates.onboarding]
subject_matches = "(?i)^new starter"
tasks = [
  {{ queue = "helpdesk", title = "Laptop and accounts" }},
  {{ queue = "facilities", title = "Desk and badge" }},
]
"#
        ),
        ..DeskOptions::default()
    });
    desk.start();
    let hr = address("hr");
    desk.request(&hr, "New starter: Jane Doe, 1 February", "o1@hr.test", "Sales, second floor.");
    desk.wait_settled(1, T);
    let parent = show(&desk, 1);
    let tasks = parent["tasks"].as_array().unwrap();
    let titles: Vec<&str> = tasks.iter().map(|t| t["subject"].as_str().unwrap()).collect();
    assert_eq!(
        titles,
        [
            "Laptop and accounts (#1: New starter: Jane Doe, 1 February)",
            "Desk and badge (#1: New starter: Jane Doe, 1 February)"
        ]
    );
    assert_eq!(show(&desk, 3)["ticket"]["queue"], "facilities");
    assert_eq!(show(&desk, 3)["ticket"]["parent"], 1);
    // Each team is told of its task (helpdesk also of the request itself).
    let ann_mails = wait_inbox(&ann, 2, T);
    let laptop = find(&ann_mails, "Laptop and accounts").clone();
    let desk_task = wait_inbox(&fac, 1, T).remove(0);
    assert!(subject(&desk_task).contains("Desk and badge"), "{}", subject(&desk_task));
    assert!(text(&desk_task).contains("Sales, second floor."), "{}", text(&desk_task));
    answer(&fac, &desk_task, "#resolve\nDesk 2.14, badge printed.", "");
    desk.wait_settled(2, T);
    assert!(desk.cli(&["show", "1"]).contains("tasks (1 of 2 done)"));
    assert_eq!(show(&desk, 1)["ticket"]["status"], "open");
    answer(&ann, &laptop, "#resolve", "");
    desk.wait_settled(3, T);
    let parent = show(&desk, 1);
    assert_eq!(parent["ticket"]["status"], "resolved", "{parent:#}");
    assert_eq!(events(&parent, "linked-resolved"), ["every task is done: the request is resolved"]);
    // The requester: the acknowledgement, and one mail when everything is done.
    let mails = wait_inbox(&hr, 2, T);
    let done = find(&mails, "Resolved: New starter");
    assert!(text(done).contains("Everything is done") && text(done).contains("Desk and badge"), "{}", text(done));
    desk.assert_mailed(&hr, 2, "acknowledgement and completion only");
}

#[test]
fn a_services_owner_is_told_of_a_breach_and_report_counts_per_service() {
    let Some(_lab) = lab() else { return };
    let owner = address("olivia");
    let (desk, tech) = itsm_desk(&format!(
        r#"[[services]]
name = "email"
owner = "{owner}"
keywords = ["outlook", "mailbox"]
[services.sla]
calendar = "24x7"
P3 = {{ first_response = "3s", resolution = "1h" }}

[[services]]
name = "printing"
keywords = ["printer"]
"#
    ));
    let alice = address("alice");
    desk.request(&alice, "Outlook keeps asking for my password", "e1@a.test", "Since this morning.");
    desk.request(&alice, "Paper jam", "e2@a.test", "The printer on floor 2.");
    desk.wait_settled(2, T);
    let breach = wait_inbox(&owner, 1, T).remove(0);
    assert!(subject(&breach).contains("100%"), "{}", subject(&breach));
    let email = desk.json(&["tickets", "--service", "email"]);
    assert_eq!(email.as_array().unwrap().len(), 1, "{email:#}");
    let sla = desk.json(&["sla", &email[0]["id"].to_string()]);
    assert_eq!(sla["policy"]["first_response_secs"], 3, "the service's own SLA: {sla:#}");
    // The printing ticket is in no breach: the owner of email heard of email only.
    std::thread::sleep(Duration::from_secs(2));
    desk.assert_mailed(&owner, 1, "one breach, of the owner's service");
    // #service moves the other ticket to the email service.
    let notices = wait_inbox(&tech, 2, T);
    answer(&tech, find(&notices, "Paper jam"), "#service email", "");
    desk.wait_settled(3, T);
    let report = desk.json(&["report"]);
    let services: Vec<(&str, i64)> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["service"].as_str().unwrap(), s["opened"].as_i64().unwrap()))
        .collect();
    assert_eq!(services, [("email", 2), ("printing", 0)], "{report:#}");
    assert!(desk.cli(&["report"]).contains("SERVICE"));
    let list = desk.cli(&["tickets"]);
    assert!(list.contains("SERVICE") && list.lines().filter(|l| l.contains(" email ")).count() == 2, "{list}");
}

#[test]
fn replay_dry_run_shows_what_the_daemon_then_does_and_writes_nothing() {
    let Some(_lab) = lab() else { return };
    let (cab, net) = (address("cab"), address("net"));
    let tech = address("tech");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech}\"]"),
        tail: format!(
            r#"{NO_RATE_LIMITS}
[[queues]]
name = "helpdesk"

[[queues]]
name = "network"
team = ["{net}"]

[[services]]
name = "vpn"
queue = "network"
keywords = ["vpn"]
[services.approvals]
approvers = ["{cab}"]

[[routing]]
subject_matches = "(?i)^change:"
type = "change"
priority = "P2"

[types.change]
addresses = ["CHANGES"]
"#
        ),
        ..DeskOptions::default()
    });
    // Mail to support+changes@ is a change by its address.
    let changes = desk.support.replace('@', "+changes@");
    let config = std::fs::read_to_string(&desk.config).unwrap().replace("CHANGES", &changes);
    std::fs::write(&desk.config, config).unwrap();
    let (alice, bert, carl) = (address("alice"), address("bert"), address("carl"));
    let mails = [
        message(&alice, &desk.support, "VPN drops every hour", &format!("r1{}@a.test", nanos()), "", "Since Monday."),
        message(
            &bert,
            &desk.support,
            "Change: new VPN certificate",
            &format!("r2{}@b.test", nanos()),
            "",
            "Expires soon.",
        ),
        message(&carl, &desk.support, "Mouse broken", &format!("r3{}@c.test", nanos()), "", "Left button."),
        message(&carl, &changes, "Open port 8443", &format!("r4{}@c.test", nanos()), "", "For the new portal."),
    ];
    let mut mbox = Vec::new();
    for m in &mails {
        mbox.extend_from_slice(b"From someone@example.test Sat Dec  5 09:00:00 2026\n");
        mbox.extend_from_slice(m);
        mbox.extend_from_slice(b"\n");
    }
    let file = desk.path("past.mbox");
    std::fs::write(&file, &mbox).unwrap();
    // Before the desk ever ran: no database, and replay makes none.
    let planned = desk.json(&["replay", "--dry-run", file.to_str().unwrap()]);
    assert!(!desk.path(desk.database).exists(), "replay created no database");
    let plan: Vec<Value> = planned.as_array().unwrap().clone();
    assert_eq!(plan.len(), 4, "{planned:#}");
    assert_eq!(
        (plan[0]["ticket"]["queue"].as_str(), plan[0]["ticket"]["service"].as_str()),
        (Some("network"), Some("vpn")),
        "{planned:#}"
    );
    assert_eq!(
        (plan[1]["ticket"]["type"].as_str(), plan[1]["ticket"]["priority"].as_str()),
        (Some("change"), Some("P2"))
    );
    assert!(
        plan[1]["mails"].as_array().unwrap().iter().any(|m| m["kind"] == "approval-request" && m["to"] == cab.as_str())
    );
    assert_eq!(plan[2]["ticket"]["queue"], "helpdesk");
    assert_eq!(plan[3]["ticket"]["type"], "change", "by the address it was sent to");
    assert!(plan.iter().all(|p| p["acknowledged"] == true));
    // Now the daemon gets the same mail: it does exactly what replay said.
    desk.start();
    for m in &mails {
        send_smtp(&header_address(m, "From"), &header_address(m, "To"), m);
        // In order, as the mbox had them.
        let n = mails.iter().position(|x| x == m).unwrap() as i64 + 1;
        desk.wait_settled(n, T);
    }
    for (i, p) in plan.iter().enumerate() {
        let s = show(&desk, i as i64 + 1);
        for key in ["queue", "service", "type", "priority", "assignee", "status"] {
            assert_eq!(s["ticket"][key], p["ticket"][key], "ticket {} {key}: {s:#}", i + 1);
        }
        let sent: Vec<(String, String)> = s["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "out")
            .map(|m| (m["kind"].as_str().unwrap().to_string(), m["to"].as_str().unwrap().to_string()))
            .collect();
        let said: Vec<(String, String)> = p["mails"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["kind"].as_str().unwrap().to_string(), m["to"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(sent, said, "ticket {}", i + 1);
    }
    // On a live desk: the same mails are duplicates, a new one would open ticket 4, and nothing is
    // written or queued by saying so.
    let status = desk.status().unwrap();
    let again = desk.json(&["replay", "--dry-run", file.to_str().unwrap()]);
    assert!(again.as_array().unwrap().iter().all(|r| r["outcome"] == "duplicate"), "{again:#}");
    let new = desk.path("new.eml");
    std::fs::write(&new, message(&alice, &desk.support, "Printer", "r5@a.test", "", "Jammed.")).unwrap();
    let one = desk.cli(&["replay", "--dry-run", new.to_str().unwrap()]);
    assert!(one.contains("new-ticket [ACME #5]") && one.contains("nothing was written"), "{one}");
    let after = desk.status().unwrap();
    assert_eq!(after["messages_ingested"], status["messages_ingested"]);
    assert_eq!(desk.json(&["tickets"]).as_array().unwrap().len(), 4);
    assert_eq!(after["outbox"], status["outbox"]);
}
