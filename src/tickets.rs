//! What a message does to the tickets: the pure decision, before anything is written.
//!
//! [`plan`] takes the parsed message, the threading decision and the auto-reply verdict and returns a
//! [`Plan`]: open a ticket or append to one, whom to acknowledge, and the events to record. The store
//! then carries out the plan in one transaction, so that what is decided here and what is written
//! there can never disagree halfway.

use crate::inbound::classify::Suppression;
use crate::inbound::parse::{Inbound, Mailbox};
use crate::threading::{Thread, ThreadedBy};

/// Ticket states. Only `open` is reached by this module; technicians' commands move the others.
pub const STATUSES: [&str; 4] = ["open", "pending", "resolved", "closed"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new ticket. Its number is assigned by the store.
    Open {
        subject: String,
        requester: Option<Mailbox>,
    },
    Append {
        ticket: i64,
    },
}

/// How a stored message is labelled in `maildesk show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Reply,
    Automatic,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::Reply => "reply",
            MessageKind::Automatic => "automatic",
        }
    }
}

/// Something worth recording on the ticket that is not itself a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub change: Change,
    pub kind: MessageKind,
    /// The address that gets the acknowledgement, if one is due.
    pub acknowledge: Option<Mailbox>,
    pub events: Vec<Event>,
}

/// Decides what one inbound message does. `desk_addresses` are never acknowledged.
pub fn plan(msg: &Inbound, thread: &Thread, suppression: Option<&Suppression>, desk_addresses: &[String]) -> Plan {
    let mut events: Vec<Event> = msg.defects.iter().map(|d| Event { kind: "defect", detail: d.clone() }).collect();
    let kind = if suppression.is_some() {
        MessageKind::Automatic
    } else if matches!(thread, Thread::New { .. }) {
        MessageKind::Request
    } else {
        MessageKind::Reply
    };
    match thread {
        Thread::Existing { ticket, by } => {
            let how = match by {
                ThreadedBy::SubjectTag => "subject tag",
                ThreadedBy::InReplyTo => "In-Reply-To",
                ThreadedBy::References => "References",
            };
            events.push(Event { kind: "threaded", detail: format!("message {} joined by {how}", msg.message_id) });
            Plan { change: Change::Append { ticket: *ticket }, kind, acknowledge: None, events }
        }
        Thread::New { note } => {
            if let Some(note) = note {
                events.push(Event { kind: "threading", detail: note.clone() });
            }
            let recipient = msg.reply_to.clone().or_else(|| msg.from.clone());
            let acknowledge = match (suppression, recipient) {
                (Some(s), _) => {
                    events.push(Event { kind: "ack-suppressed", detail: s.0.clone() });
                    None
                }
                (None, Some(r)) if desk_addresses.contains(&r.address) => {
                    events.push(Event {
                        kind: "ack-suppressed",
                        detail: format!("reply address {} is the desk's own", r.address),
                    });
                    None
                }
                (None, r) => r,
            };
            let subject = if msg.subject.is_empty() { "(no subject)".to_string() } else { msg.subject.clone() };
            Plan { change: Change::Open { subject, requester: msg.from.clone() }, kind, acknowledge, events }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    fn msg(headers: &str) -> Inbound {
        parse(format!("{headers}\r\nMessage-ID: <m1@x.test>\r\n\r\nbody").as_bytes()).unwrap()
    }

    const DESK: &[&str] = &["support@acme.test"];

    fn desk() -> Vec<String> {
        DESK.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn new_request_is_acknowledged_to_reply_to_or_from() {
        let m = msg("From: Alice <alice@x.test>\r\nSubject: Printer");
        let p = plan(&m, &Thread::New { note: None }, None, &desk());
        assert_eq!(p.change, Change::Open { subject: "Printer".into(), requester: m.from.clone() });
        assert_eq!(p.acknowledge.map(|a| a.address), Some("alice@x.test".into()));
        assert_eq!(p.kind, MessageKind::Request);

        let m = msg("From: alice@x.test\r\nReply-To: helpdesk-contact@x.test\r\nSubject: Printer");
        let p = plan(&m, &Thread::New { note: None }, None, &desk());
        assert_eq!(p.acknowledge.map(|a| a.address), Some("helpdesk-contact@x.test".into()));
    }

    #[test]
    fn replies_are_never_acknowledged() {
        let m = msg("From: alice@x.test\r\nSubject: Re: [ACME #1] Printer");
        let p = plan(&m, &Thread::Existing { ticket: 1, by: ThreadedBy::SubjectTag }, None, &desk());
        assert_eq!(p.change, Change::Append { ticket: 1 });
        assert_eq!(p.acknowledge, None);
        assert_eq!(p.kind, MessageKind::Reply);
    }

    #[test]
    fn suppressed_and_own_address_are_recorded_not_dropped() {
        let m = msg("From: alice@x.test\r\nSubject: Out of office");
        let s = Suppression("Auto-Submitted: auto-replied".into());
        let p = plan(&m, &Thread::New { note: None }, Some(&s), &desk());
        assert!(matches!(p.change, Change::Open { .. }));
        assert_eq!(p.acknowledge, None);
        assert_eq!(p.kind, MessageKind::Automatic);
        assert!(p.events.iter().any(|e| e.kind == "ack-suppressed" && e.detail.contains("Auto-Submitted")));

        let m = msg("From: alice@x.test\r\nReply-To: support@acme.test\r\nSubject: x");
        let p = plan(&m, &Thread::New { note: None }, None, &desk());
        assert_eq!(p.acknowledge, None);
        assert!(p.events.iter().any(|e| e.kind == "ack-suppressed"));
    }

    #[test]
    fn missing_subject_gets_a_placeholder_and_defects_are_events() {
        let m = msg("From: alice@x.test");
        let p = plan(&m, &Thread::New { note: None }, None, &desk());
        assert!(matches!(p.change, Change::Open { ref subject, .. } if subject == "(no subject)"));
        assert!(p.events.iter().any(|e| e.kind == "defect" && e.detail.contains("Subject")));
    }
}
