//! Technicians working from their mail client, end to end through the real binary, Postfix and
//! Dovecot: notifications, relayed replies, notes, commands, watchers, and forged technician mail.

use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

struct Team {
    desk: Desk,
    alice: String,
    tech1: String,
    tech2: String,
}

/// A running desk with two technicians and one request from alice, acknowledged and announced.
/// Returns the team and tech1's new-ticket notification.
fn team_with_request(cc: Option<&str>) -> (Team, Vec<u8>) {
    let tech1 = address("tech1");
    let tech2 = address("tech2");
    let mut desk = Desk::with(DeskOptions {
        helpdesk: format!("technicians = [\"{tech1}\", \"{tech2}\"]"),
        ..DeskOptions::default()
    });
    let alice = address("alice");
    desk.start();
    let extra = cc.map(|c| format!("Cc: {c}\r\n")).unwrap_or_default();
    send_smtp(
        &alice,
        &desk.support,
        &message(
            &alice,
            &desk.support,
            "Printer on floor 3 is jammed",
            "req-1@alice.example.test",
            &extra,
            "Error E42.",
        ),
    );
    wait_inbox(&alice, 1, T);
    let notice = wait_inbox(&tech1, 1, T).remove(0);
    (Team { desk, alice, tech1, tech2 }, notice)
}

impl Team {
    /// tech1 answers the notification from their mail client: to the Reply-To address, threaded.
    fn tech1_replies(&self, notice: &[u8], body: &str) {
        self.reply_from(&self.tech1, notice, body, None);
    }

    /// Replies to `notice` with `cc` in the Cc header (only the Reply-To gets the envelope).
    fn reply_with_cc(&self, from: &str, notice: &[u8], body: &str, cc: &str) {
        self.reply_with(from, notice, body, None, &format!("Cc: {cc}\r\n"));
    }

    fn reply_from(&self, from: &str, notice: &[u8], body: &str, to_override: Option<&str>) {
        self.reply_with(from, notice, body, to_override, "");
    }

    fn reply_with(&self, from: &str, notice: &[u8], body: &str, to_override: Option<&str>, extra: &str) {
        let reply_to = header_address(notice, "Reply-To");
        let to = to_override.unwrap_or(&reply_to).to_string();
        let id = header(notice, "Message-ID").unwrap();
        let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let raw = message(
            from,
            &to,
            &format!("Re: {}", subject(notice)),
            &format!("r{n}@tech.example.test"),
            &format!("{extra}In-Reply-To: {id}\r\nReferences: {id}\r\n"),
            &format!(
                "{body}\r\n\r\nOn Sun, 22 Nov 2026, ACME IT <{}> wrote:\r\n> {}",
                self.desk.support,
                text(notice).lines().next().unwrap_or("")
            ),
        );
        send_to(&to, &raw);
    }

    fn show(&self, id: i64) -> Value {
        self.desk.json(&["show", &id.to_string()])
    }

    fn settle(&self, ingested: i64) -> Value {
        self.desk.wait_settled(ingested, T)
    }
}

#[test]
fn new_ticket_goes_to_every_technician_with_a_private_reply_address() {
    let Some(_lab) = crate::common::lab() else { return };
    let (team, notice) = team_with_request(None);
    let notice2 = wait_inbox(&team.tech2, 1, T).remove(0);
    assert!(subject(&notice).starts_with("[ACME #1] New: Printer on floor 3 is jammed"), "{}", subject(&notice));
    let body = text(&notice);
    assert!(body.contains("Error E42.") && body.contains(&team.alice) && body.contains("#priority"), "{body}");
    let r1 = header_address(&notice, "Reply-To");
    let r2 = header_address(&notice2, "Reply-To");
    let (local, domain) = team.desk.support.split_once('@').unwrap();
    assert!(r1.starts_with(&format!("{local}+t1-")) && r1.ends_with(domain), "{r1}");
    assert_ne!(r1, r2, "each technician gets an address of their own");
}

#[test]
fn technician_reply_reaches_the_requester_threaded_and_the_team_gets_a_copy() {
    let Some(_lab) = crate::common::lab() else { return };
    let (team, notice) = team_with_request(None);
    team.tech1_replies(&notice, "#priority P2\nToner replaced, please try again.\n\n-- \nTech One");
    team.settle(2);
    let mail = wait_inbox(&team.alice, 2, T);
    let reply = &mail[1];
    assert_eq!(subject(reply), "[ACME #1] Printer on floor 3 is jammed");
    assert_eq!(header(reply, "In-Reply-To").as_deref(), Some("<req-1@alice.example.test>"));
    assert!(header(reply, "References").unwrap().contains("<req-1@alice.example.test>"));
    assert_eq!(header_address(reply, "From"), team.desk.support, "relayed from the support address");
    let body = text(reply);
    assert!(body.contains("Toner replaced, please try again."), "{body}");
    assert!(!body.contains("#priority") && !body.contains("Tech One") && !body.contains("wrote:"), "{body}");

    let copies = wait_inbox(&team.tech2, 2, T);
    assert!(subject(&copies[1]).contains("replied"), "{}", subject(&copies[1]));
    let show = team.show(1);
    assert_eq!(show["ticket"]["priority"], "P2");
    assert!(show["ticket"]["first_response_at"].is_string(), "{show:#}");
    assert!(show["events"].to_string().contains("technician verified by reply token"));
    team.desk.assert_mailed(&team.tech1, 1, "the replying technician gets no copy of their own reply");
}

#[test]
fn internal_notes_never_reach_the_requester() {
    let Some(_lab) = crate::common::lab() else { return };
    let (team, notice) = team_with_request(None);
    team.tech1_replies(&notice, "#note\nVendor says the fuser is broken; part ordered.");
    // No per-ticket address is printed in a body (a quote could carry it to the requester).
    assert!(!text(&notice).contains("+n1-") && !text(&notice).contains("+t1-"), "{}", text(&notice));
    team.tech1_replies(&notice, "#note Part arrives Tuesday.");
    team.settle(3);
    let notes = wait_inbox(&team.tech2, 3, T);
    // Two deliveries may be queued in either order by Postfix: check both copies, in any order.
    let copies = format!("{}{}", text(&notes[1]), text(&notes[2]));
    assert!(copies.contains("fuser is broken") && copies.contains("Part arrives Tuesday."), "{copies}");
    team.desk.assert_mailed(&team.alice, 1, "alice only ever got her acknowledgement");
    let show = team.show(1);
    let kinds: Vec<(&str, bool)> = show["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "in")
        .map(|m| (m["kind"].as_str().unwrap(), m["internal"].as_bool().unwrap()))
        .collect();
    assert_eq!(kinds, vec![("request", false), ("note", true), ("note", true)]);
}

#[test]
fn commands_change_the_ticket_and_merge_moves_everything() {
    let Some(_lab) = crate::common::lab() else { return };
    let (team, notice) = team_with_request(None);
    team.tech1_replies(&notice, &format!("#assign {}\n#priority P1", team.tech2));
    team.settle(2);
    let t = &team.show(1)["ticket"];
    assert_eq!((t["assignee"].as_str().unwrap(), t["priority"].as_str().unwrap()), (team.tech2.as_str(), "P1"));

    // A second request from alice, merged into the first by a technician.
    send_smtp(
        &team.alice,
        &team.desk.support,
        &message(&team.alice, &team.desk.support, "Printer still jammed", "req-2@alice.example.test", "", "Again."),
    );
    let notice2 = wait_inbox(&team.tech1, 2, T).remove(1);
    assert!(subject(&notice2).starts_with("[ACME #2]"));
    // A token for ticket 2 alone does not give control of ticket 1: the merge is refused ...
    team.tech1_replies(&notice2, "#merge 1\n#take");
    team.settle(4);
    let refusal = wait_inbox(&team.tech1, 3, T).remove(2);
    assert!(
        text(&refusal).contains("Cc") && text(&refusal).contains("reply address for ticket 1"),
        "{}",
        text(&refusal)
    );
    assert!(team.show(2)["ticket"]["merged_into"].is_null());
    // ... and done when the mail also goes to tech1's reply address for ticket 1.
    let one = header_address(&notice, "Reply-To");
    team.reply_with_cc(&team.tech1, &notice2, "#merge 1\n#take", &one);
    team.settle(5);
    let merged = team.show(2);
    assert_eq!(merged["ticket"]["merged_into"], 1);
    assert_eq!(merged["ticket"]["status"], "closed");
    let one = team.show(1);
    assert_eq!(one["ticket"]["assignee"], team.tech1.as_str(), "#take after #merge applies to the merged-into ticket");
    assert!(one["messages"].to_string().contains("req-2@alice.example.test"), "messages moved");

    // Mail to the old number lands in ticket 1 and goes to its assignee.
    send_smtp(
        &team.alice,
        &team.desk.support,
        &message(
            &team.alice,
            &team.desk.support,
            "Re: [ACME #2] Printer still jammed",
            "req-3@alice.example.test",
            "",
            "Hello?",
        ),
    );
    team.settle(6);
    let one = team.show(1);
    assert!(one["messages"].to_string().contains("req-3@alice.example.test"));

    team.tech1_replies(&notice, "#close");
    team.settle(7);
    assert_eq!(team.show(1)["ticket"]["status"], "closed");
    assert_eq!(team.desk.json(&["tickets"]).as_array().unwrap().len(), 2);
}

#[test]
fn a_bad_command_changes_nothing_and_gets_an_error_reply() {
    let Some(_lab) = crate::common::lab() else { return };
    let (team, notice) = team_with_request(None);
    team.tech1_replies(&notice, "#close\n#asign bob@example.test\nAll done!");
    team.settle(2);
    let mail = wait_inbox(&team.tech1, 2, T);
    let error = &mail[1];
    assert!(subject(error).contains("Commands not applied"), "{}", subject(error));
    let body = text(error);
    assert!(
        body.contains("#asign bob@example.test")
            && body.contains("unknown command")
            && body.contains("#assign ADDRESS"),
        "{body}"
    );
    assert_eq!(team.show(1)["ticket"]["status"], "open");
    team.desk.assert_mailed(&team.alice, 1, "nothing relayed");
}

#[test]
fn requester_reply_reopens_a_resolved_ticket_and_reaches_technicians() {
    let Some(_lab) = crate::common::lab() else { return };
    let (team, notice) = team_with_request(None);
    team.tech1_replies(&notice, "#resolve\nFixed: the fuser was replaced.");
    team.settle(2);
    assert_eq!(team.show(1)["ticket"]["status"], "resolved");
    let fix = wait_inbox(&team.alice, 2, T).remove(1);
    let fix_id = header(&fix, "Message-ID").unwrap();
    send_smtp(
        &team.alice,
        &team.desk.support,
        &message(
            &team.alice,
            &team.desk.support,
            &format!("Re: {}", subject(&fix)),
            "req-2@alice.example.test",
            &format!("In-Reply-To: {fix_id}\r\nReferences: <req-1@alice.example.test> {fix_id}\r\n"),
            "It jammed again.\r\n\r\n> Fixed: the fuser was replaced.",
        ),
    );
    team.settle(3);
    assert_eq!(team.show(1)["ticket"]["status"], "open");
    let forwarded = wait_inbox(&team.tech2, 3, T).remove(2);
    let body = text(&forwarded);
    assert!(body.contains("It jammed again.") && !body.contains("> Fixed"), "{body}");
}

#[test]
fn forged_technician_mail_cannot_command_or_reach_the_requester() {
    let Some(_lab) = crate::common::lab() else { return };
    let (team, notice) = team_with_request(None);
    // From: tech1, but to the plain support address (no token) ...
    team.reply_from(&team.tech1, &notice, "#close\nClosing this, all good.", Some(&team.desk.support.clone()));
    // ... or to a reply address with a token made up by the forger ...
    let (local, domain) = team.desk.support.split_once('@').unwrap();
    let fake = format!("{local}+t1-aaaaaaaaaaaaaaaa@{domain}");
    team.reply_from(&team.tech1, &notice, &format!("#merge 1\n#assign {}", team.tech1), Some(&fake));
    // ... or tech2 replaying tech1's reply address.
    team.reply_from(&team.tech2, &notice, "#close", None);
    team.settle(4);
    let show = team.show(1);
    assert_eq!(show["ticket"]["status"], "open", "{show:#}");
    assert!(show["ticket"]["assignee"].is_null());
    let not_verified = show["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "not-verified").count();
    assert_eq!(not_verified, 3, "{show:#}");
    team.desk.assert_mailed(&team.alice, 1, "no forged text reached alice");
}

#[test]
fn cc_watchers_receive_technician_replies() {
    let Some(_lab) = crate::common::lab() else { return };
    let carol = address("carol");
    let (team, notice) = team_with_request(Some(&carol));
    team.tech1_replies(&notice, "Looking into it now.");
    team.settle(2);
    let show = team.show(1);
    assert_eq!(show["watchers"], serde_json::json!([carol]));
    let got = wait_inbox(&carol, 1, T);
    assert!(text(&got[0]).contains("Looking into it now."));
    assert!(header(&got[0], "Cc").unwrap_or_default().contains(&carol));
}

#[test]
fn a_technicians_notifications_of_one_ticket_form_one_thread() {
    let Some(_lab) = crate::common::lab() else { return };
    let (team, notice) = team_with_request(None);
    let root = header(&notice, "Message-ID").unwrap();
    // alice writes again twice: each forward to tech1 threads under tech1's first notification.
    for n in 2..=3 {
        send_smtp(
            &team.alice,
            &team.desk.support,
            &message(
                &team.alice,
                &team.desk.support,
                "Re: [ACME #1] Printer on floor 3 is jammed",
                &format!("req-{n}@alice.example.test"),
                "In-Reply-To: <req-1@alice.example.test>\r\n",
                &format!("Update {n}."),
            ),
        );
        team.settle(n as i64);
    }
    let mail = wait_inbox(&team.tech1, 3, T);
    for later in &mail[1..] {
        let refs = header(later, "References").unwrap_or_default();
        assert!(refs.contains(&root), "not threaded under the first notification {root}: {refs}");
    }
    assert_eq!(
        header(&mail[2], "In-Reply-To"),
        header(&mail[1], "Message-ID"),
        "each notification answers the one before it"
    );
}
