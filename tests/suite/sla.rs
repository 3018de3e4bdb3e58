//! SLA clocks and escalations end to end, with real mail servers and short targets on the 24x7
//! calendar (the business-hours arithmetic itself is covered by the calendar's unit and property
//! tests): levels fire once each, also across a restart; a reply prevents them; pending pauses.

use std::time::{Duration, Instant};

use crate::common::*;

const T: Duration = Duration::from_secs(30);

fn sla_desk(technicians: &[&str], tail: &str) -> Desk {
    let list: Vec<String> = technicians.iter().map(|t| format!("\"{t}\"")).collect();
    Desk::with(DeskOptions {
        helpdesk: format!("technicians = [{}]", list.join(", ")),
        tail: format!("[sla]\nsweep_interval = \"1s\"\n{tail}"),
        ..DeskOptions::default()
    })
}

#[test]
fn p1_escalates_at_75_and_100_percent_once_each_across_a_restart() {
    let Some(_lab) = crate::common::lab() else { return };
    let (lead, manager) = (address("lead"), address("manager"));
    let mut desk = sla_desk(
        &[],
        &format!(
            r#"[sla.P1]
first_response = "8s"
resolution = "1h"
calendar = "24x7"
escalate = [ {{ at = "75%", notify = ["{lead}"] }}, {{ at = "100%", notify = ["{manager}"] }} ]

[priority]
rules = [ {{ priority = "P1", subject_matches = "(?i)\\b(down|outage)\\b" }} ]
"#
        ),
    );
    let bob = address("bob");
    desk.start();
    let sent = Instant::now();
    send_smtp(
        &bob,
        &desk.support,
        &message(&bob, &desk.support, "Outage: VPN is down", "o1@bob.example.test", "", "Nobody can connect."),
    );
    desk.wait_settled(1, T);
    assert_eq!(desk.json(&["tickets"])[0]["priority"], "P1", "the subject rule made it P1");

    let first = wait_inbox(&lead, 1, T).remove(0);
    let at_75 = sent.elapsed();
    assert!(subject(&first).contains("SLA first response 75%"), "{}", subject(&first));
    assert!(text(&first).contains("75% of the 8s target"), "{}", text(&first));
    // A restart between the levels must neither repeat the first nor lose the second.
    desk.kill9();
    desk.start();
    let second = wait_inbox(&manager, 1, T).remove(0);
    assert!(subject(&second).contains("100%"), "{}", subject(&second));
    assert!(at_75 >= Duration::from_secs(5), "75% of 8s fired after {at_75:?}");
    // Each level is one outbox row, and its mail arrived once.
    desk.assert_mailed(&lead, 1, "75% fired exactly once");
    exactly(&manager, 1, T, "100% fired exactly once");

    let sla = desk.json(&["sla", "1"]);
    let levels = &sla["clock"]["first_response"]["levels"];
    assert!(levels[0]["fired_at"].is_i64() && levels[1]["fired_at"].is_i64(), "{sla:#}");
    assert_eq!(sla["clock"]["first_response"]["breached"], true);
    let human = desk.cli(&["sla", "1"]);
    assert!(human.contains("BREACHED") && human.contains("75%"), "{human}");
    let report = desk.json(&["report"]);
    let p1 = &report["priorities"][0];
    assert_eq!(
        (p1["priority"].as_str(), p1["opened"].as_i64(), p1["breaches"].as_i64()),
        (Some("P1"), Some(1), Some(1)),
        "{report:#}"
    );
}

#[test]
fn a_reply_before_75_percent_prevents_every_escalation() {
    let Some(_lab) = crate::common::lab() else { return };
    let tech = address("tech");
    let (lead, manager) = (address("lead"), address("manager"));
    let desk = sla_desk(
        &[&tech],
        &format!(
            r#"[sla.P3]
first_response = "10s"
resolution = "1h"
calendar = "24x7"
escalate = [ {{ at = "75%", notify = ["{lead}"] }}, {{ at = "100%", notify = ["{manager}"] }} ]
"#
        ),
    );
    let mut desk = desk;
    let carl = address("carl");
    desk.start();
    let sent = Instant::now();
    send_smtp(
        &carl,
        &desk.support,
        &message(&carl, &desk.support, "Mouse broken", "m1@carl.example.test", "", "Left button."),
    );
    let notice = wait_inbox(&tech, 1, T).remove(0);
    let reply_to = header_address(&notice, "Reply-To");
    let id = header(&notice, "Message-ID").unwrap();
    send_to(
        &reply_to,
        &message(
            &tech,
            &reply_to,
            &format!("Re: {}", subject(&notice)),
            "t1@tech.example.test",
            &format!("In-Reply-To: {id}\r\n"),
            "New mouse on its way.",
        ),
    );
    desk.wait_settled(2, T);
    assert!(sent.elapsed() < Duration::from_secs(7), "the reply came too late to test anything: {:?}", sent.elapsed());
    std::thread::sleep(Duration::from_secs(12).saturating_sub(sent.elapsed()));
    assert!(inbox(&lead).is_empty() && inbox(&manager).is_empty(), "no escalation after a timely reply");
    let sla = desk.json(&["sla", "1"]);
    assert_eq!(sla["clock"]["first_response"]["state"], "met", "{sla:#}");
    assert_eq!(sla["clock"]["first_response"]["breached"], false);
    let report = desk.json(&["report"]);
    let tech_row = &report["technicians"][0];
    assert_eq!((tech_row["technician"].as_str(), tech_row["first_responses"].as_i64()), (Some(tech.as_str()), Some(1)));
}

#[test]
fn pending_pauses_the_resolution_clock() {
    let Some(_lab) = crate::common::lab() else { return };
    let tech = address("tech");
    let lead = address("lead");
    let mut desk = sla_desk(
        &[&tech],
        &format!(
            r#"[sla.P3]
first_response = "1h"
resolution = "6s"
calendar = "24x7"
pause_when_pending = true
escalate = [ {{ at = "100%", notify = ["{lead}"] }} ]
"#
        ),
    );
    let dora = address("dora");
    desk.start();
    send_smtp(
        &dora,
        &desk.support,
        &message(&dora, &desk.support, "Need a licence", "l1@dora.example.test", "", "For Visio."),
    );
    let notice = wait_inbox(&tech, 1, T).remove(0);
    let reply_to = header_address(&notice, "Reply-To");
    send_to(
        &reply_to,
        &message(&tech, &reply_to, &format!("Re: {}", subject(&notice)), "p1@tech.example.test", "", "#status pending"),
    );
    desk.wait_settled(2, T);
    std::thread::sleep(Duration::from_secs(9));
    assert!(inbox(&lead).is_empty(), "the resolution clock must not run while pending");
    let sla = desk.json(&["sla", "1"]);
    let res = &sla["clock"]["resolution"];
    assert_eq!(res["state"], "paused", "{sla:#}");
    assert!(res["elapsed_secs"].as_i64().unwrap() < 6, "{sla:#}");
    assert!(res["due_at"].is_null());
    assert_eq!(sla["clock"]["pauses"][0][1], serde_json::Value::Null, "an open pause: {sla:#}");
}
