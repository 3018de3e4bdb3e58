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
