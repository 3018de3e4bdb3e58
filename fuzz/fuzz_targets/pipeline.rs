//! Raw bytes → parse → classify → thread → quote stripping → ticket plan: the pure half of what the
//! daemon does with every fetched message. Any panic is a bug (libFuzzer aborts on it, even inside
//! the parser's `catch_unwind`).
//!
//! The first input byte picks who the message comes from and what ticket it lands on, so one target
//! reaches the requester, technician and command paths; the rest is the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maildesk::domain::TicketStatus;
use maildesk::message::classify::suppress_auto_reply;
use maildesk::message::parse::parse;
use maildesk::reply_text::visible_text;
use maildesk::threading::{Thread, TicketLookup, thread};
use maildesk::tickets::{Facts, Policy, Role, TicketState, plan};

/// Tickets 1..=50 exist, 7 was merged into 3, and every Message-ID ending in a digit belongs to
/// ticket 1: enough for every threading rule to fire on fuzzed input.
struct Lookup;

impl TicketLookup for Lookup {
    type Error = std::convert::Infallible;
    fn live_ticket(&self, id: i64) -> Result<Option<i64>, Self::Error> {
        Ok(match id {
            7 => Some(3),
            1..=50 => Some(id),
            _ => None,
        })
    }
    fn ticket_of_message(&self, message_id: &str) -> Result<Option<i64>, Self::Error> {
        Ok(message_id.ends_with(|c: char| c.is_ascii_digit()).then_some(1))
    }
}

/// mail-parser panics are handled by design (`parse` re-reads the message as plain text, or
/// quarantines it), so they are not findings; a panic anywhere else still aborts the run.
fn tolerate_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.location().is_some_and(|l| l.file().contains("mail-parser")) {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_parser_panics();
    let Some((&selector, raw)) = data.split_first() else { return };
    let Ok(msg) = parse(raw) else { return };
    let desk = ["support@acme.example".to_string(), "support+comment@acme.example".to_string()];
    let technicians = ["tech1@acme.example".to_string(), "tech2@acme.example".to_string()];
    let suppression = suppress_auto_reply(&msg, &desk);
    let lookup = Lookup;
    let Ok(threaded) = thread(&msg.subject, &msg.in_reply_to, &msg.references, "ACME", &lookup);
    let visible = visible_text(&msg.text);
    let state = match &threaded {
        Thread::Existing { ticket, .. } => Some(TicketState {
            id: *ticket,
            status: TicketStatus::ALL[usize::from(selector & 3)],
            requester: Some("alice@example.test".into()),
            assignee: (selector & 4 != 0).then(|| technicians[1].clone()),
            watchers: vec!["carol@example.test".into()],
            closed_at: (selector & 8 != 0).then_some(1_700_000_000),
            first_response_at: None,
            automatic: selector & 128 != 0,
            queue: None,
            // A pending change of a service with approvers, or nothing of the kind.
            itsm: if selector & 4 != 0 {
                maildesk::tickets::Itsm {
                    ticket_type: Some(maildesk::domain::TicketType::Change),
                    service: Some("network".into()),
                    approval: Some(maildesk::domain::ApprovalState::Pending),
                }
            } else {
                maildesk::tickets::Itsm::default()
            },
        }),
        Thread::New { .. } => None,
    };
    let sender = msg.from.as_ref().map(|f| f.address.clone()).unwrap_or_default();
    let role = match selector >> 4 & 3 {
        0 => Role::Requester,
        1 => Role::Technician { address: sender, proof: "reply token", note: false },
        2 => Role::Technician { address: sender, proof: "DMARC", note: true },
        _ => Role::Unverified { address: sender, reason: "fuzzed".into() },
    };
    // Routing over hostile headers and text: the queue a new ticket would land in.
    let queue_addresses = vec!["security@example.test".to_string()];
    let rules = vec![
        maildesk::routing::Rule {
            subject_matches: regex::Regex::new("(?i)badge").ok(),
            queue: Some(1),
            ..Default::default()
        },
        maildesk::routing::Rule {
            header: regex::Regex::new("^yes$").ok().map(|r| ("x-urgent".to_string(), r)),
            priority: Some(maildesk::domain::Priority::P1),
            ..Default::default()
        },
    ];
    let _ = maildesk::routing::route(&[&[], &queue_addresses], &rules, &msg, 0);
    let queues = vec!["default".to_string(), "security".to_string()];
    let canned = vec!["need-more-info".to_string()];
    let macros = vec![maildesk::commands::Macro {
        name: "wait".into(),
        commands: vec![maildesk::commands::Command::Status(TicketStatus::Pending)],
        reply: Some("need-more-info".into()),
    }];
    let services = vec!["email".to_string(), "network".to_string()];
    let templates = vec!["onboarding".to_string()];
    let policy = Policy {
        desk_addresses: &desk,
        technicians: &technicians,
        team: &technicians,
        new_team: &technicians,
        queues: &queues,
        timezone: &jiff::tz::TimeZone::UTC,
        canned: &canned,
        macros: &macros,
        services: &services,
        approval_services: &services,
        default_approvals: selector & 128 != 0,
        templates: &templates,
        reopen_window_secs: 14 * 86_400,
        cc_watchers: true,
        max_watchers_per_message: 10,
        max_watchers_per_ticket: 50,
    };
    let merge = |n: i64| match lookup.live_ticket(n) {
        Ok(Some(live)) if live == n => Ok(()),
        _ => Err(format!("ticket {n} does not exist")),
    };
    let participant = selector & 64 != 0;
    let facts = Facts {
        msg: &msg,
        visible: &visible,
        thread: &threaded,
        role: &role,
        suppression: suppression.as_ref(),
        participant,
    };
    let others = maildesk::tickets::OtherTickets { merge: &merge, problem: &merge };
    let _ = plan(&policy, &facts, state.as_ref(), others, 1_795_341_600);
});
