//! Which ticket does a message belong to?
//!
//! The rules, in order (first match wins):
//! 1. a subject tag `[TAG #n]` for this desk's TAG, anywhere in the subject, whose ticket exists;
//! 2. `In-Reply-To`, then `References` newest first, naming a Message-ID maildesk stored or sent;
//! 3. otherwise a new ticket.
//!
//! The tag comes first because it survives clients that drop References and is what people see;
//! References come second because they survive people who edit the subject. A tag with another
//! desk's TAG, or with a number that has no ticket, is ignored rather than attached to a wrong ticket.
//!
//! The functions here are pure: the database is reached only through [`TicketLookup`].

use std::sync::OnceLock;

use regex::Regex;

/// What threading needs to know about existing tickets and messages. A lookup that fails is an
/// error, never "no ticket": a read failure must not open a new ticket for a reply.
pub trait TicketLookup {
    type Error;
    /// The ticket that mail for number `id` now lands in: `id` itself, or the ticket it was merged
    /// into; `None` when there is no such ticket.
    fn live_ticket(&self, id: i64) -> Result<Option<i64>, Self::Error>;
    /// The ticket of a message maildesk received or sent, by Message-ID (without brackets).
    fn ticket_of_message(&self, message_id: &str) -> Result<Option<i64>, Self::Error>;
}

/// At most this many `References` are followed (newest first): a hostile header with thousands
/// of ids must not cost thousands of lookups.
pub const MAX_REFERENCES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thread {
    Existing {
        ticket: i64,
        by: ThreadedBy,
    },
    /// A new ticket; `note` explains a tag that was seen but not followed.
    New {
        note: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadedBy {
    SubjectTag,
    InReplyTo,
    References,
    /// A per-ticket reply address issued to a technician (see `auth`).
    ReplyAddress,
}

fn tag_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    // Tolerates the spacing clients and people produce: "[ACME #12]", "[acme#12]", "[ ACME # 12 ]".
    RE.get_or_init(|| Regex::new(r"\[\s*([A-Za-z0-9_-]+)\s*#\s*([0-9]{1,18})\s*\]").expect("valid regex"))
}

/// Every ticket number tagged in `subject` for the desk `tag` (case-insensitive), in order.
pub fn subject_tags(subject: &str, tag: &str) -> Vec<i64> {
    tag_pattern()
        .captures_iter(subject)
        .filter(|c| c[1].eq_ignore_ascii_case(tag))
        .filter_map(|c| c[2].parse().ok())
        .collect()
}

/// The subject tag for a ticket, as it appears in every subject maildesk sends.
pub fn format_tag(tag: &str, ticket: i64) -> String {
    format!("[{tag} #{ticket}]")
}

/// Decides the ticket for a message with the given subject and reply headers.
pub fn thread<L: TicketLookup + ?Sized>(
    subject: &str,
    in_reply_to: &[String],
    references: &[String],
    tag: &str,
    lookup: &L,
) -> Result<Thread, L::Error> {
    let tagged = subject_tags(subject, tag);
    for &t in &tagged {
        if let Some(ticket) = lookup.live_ticket(t)? {
            return Ok(Thread::Existing { ticket, by: ThreadedBy::SubjectTag });
        }
    }
    if let Some((ticket, by)) = by_reply_headers(in_reply_to, references, lookup)? {
        return Ok(Thread::Existing { ticket, by });
    }
    let note = (!tagged.is_empty()).then(|| {
        let list: Vec<String> = tagged.iter().map(|t| format_tag(tag, *t)).collect();
        format!("subject tag {} names no existing ticket", list.join(", "))
    });
    Ok(Thread::New { note })
}

/// The ticket the reply headers point to: `In-Reply-To`, then `References` newest first.
pub fn by_reply_headers<L: TicketLookup + ?Sized>(
    in_reply_to: &[String],
    references: &[String],
    lookup: &L,
) -> Result<Option<(i64, ThreadedBy)>, L::Error> {
    for id in in_reply_to.iter().take(MAX_REFERENCES) {
        if let Some(ticket) = lookup.ticket_of_message(id)? {
            return Ok(Some((ticket, ThreadedBy::InReplyTo)));
        }
    }
    for id in references.iter().rev().take(MAX_REFERENCES) {
        if let Some(ticket) = lookup.ticket_of_message(id)? {
            return Ok(Some((ticket, ThreadedBy::References)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fake {
        tickets: Vec<i64>,
        messages: HashMap<&'static str, i64>,
    }

    impl TicketLookup for Fake {
        type Error = std::convert::Infallible;
        fn live_ticket(&self, id: i64) -> Result<Option<i64>, Self::Error> {
            // Ticket 3 was merged into 2.
            Ok(if id == 3 { Some(2) } else { self.tickets.contains(&id).then_some(id) })
        }
        fn ticket_of_message(&self, message_id: &str) -> Result<Option<i64>, Self::Error> {
            Ok(self.messages.get(message_id).copied())
        }
    }

    struct Broken;
    impl TicketLookup for Broken {
        type Error = &'static str;
        fn live_ticket(&self, _: i64) -> Result<Option<i64>, Self::Error> {
            Err("disk I/O error")
        }
        fn ticket_of_message(&self, _: &str) -> Result<Option<i64>, Self::Error> {
            Err("disk I/O error")
        }
    }

    #[test]
    fn a_failed_lookup_is_an_error_not_a_new_ticket() {
        assert_eq!(thread("Re: [ACME #7]", &[], &[], "ACME", &Broken), Err("disk I/O error"));
        assert_eq!(thread("Re: x", &ids(&["a@b"]), &[], "ACME", &Broken), Err("disk I/O error"));
    }

    fn fake() -> Fake {
        Fake { tickets: vec![1, 2, 7], messages: HashMap::from([("ack-1@acme.test", 1), ("req-2@alice.test", 2)]) }
    }

    fn ids(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn table() {
        use ThreadedBy::*;
        let existing = |ticket, by| Thread::Existing { ticket, by };
        let cases: Vec<(&str, &[&str], &[&str], Thread)> = vec![
            ("[ACME #7] Printer", &[], &[], existing(7, SubjectTag)),
            ("Re: [ACME #7] Printer", &[], &[], existing(7, SubjectTag)),
            ("AW: RE: Fwd: [acme #7] Printer", &[], &[], existing(7, SubjectTag)),
            ("SV: Printer [ ACME # 7 ]", &[], &[], existing(7, SubjectTag)),
            ("Printer [ACME#7]", &[], &[], existing(7, SubjectTag)),
            // The tag wins over references that point elsewhere.
            ("Re: [ACME #7]", &["ack-1@acme.test"], &[], existing(7, SubjectTag)),
            // A mangled subject still threads by In-Reply-To, then by References (newest first).
            ("Re: Printer", &["ack-1@acme.test"], &[], existing(1, InReplyTo)),
            ("Printer!!", &["unknown@x"], &["req-2@alice.test", "ack-1@acme.test"], existing(1, References)),
            ("Printer!!", &[], &["req-2@alice.test", "nobody@x"], existing(2, References)),
            // Another desk's tag, or a number with no ticket, never attaches to a wrong ticket.
            ("Re: [OTHER #7] Printer", &[], &[], Thread::New { note: None }),
            (
                "Re: [ACME #99] Printer",
                &[],
                &[],
                Thread::New { note: Some("subject tag [ACME #99] names no existing ticket".into()) },
            ),
            ("Re: [ACME #99] x", &[], &["req-2@alice.test"], existing(2, References)),
            ("[ACME #99] [ACME #2]", &[], &[], existing(2, SubjectTag)),
            ("Re: [ACME #3] merged away", &[], &[], existing(2, SubjectTag)),
            ("Printer on floor 3 is jammed", &[], &[], Thread::New { note: None }),
            ("[ACME #] x [#5]", &[], &[], Thread::New { note: None }),
            ("[ACME #99999999999999999999] x", &[], &[], Thread::New { note: None }),
        ];
        let f = fake();
        for (subject, irt, refs, want) in cases {
            assert_eq!(thread(subject, &ids(irt), &ids(refs), "ACME", &f), Ok(want), "{subject}");
        }
    }

    proptest::proptest! {
        /// Whatever else is in the subject, a tagged existing ticket is found.
        #[test]
        fn tag_survives_surrounding_text(prefix in "[^\\[\\]]{0,40}", suffix in "[^\\[\\]]{0,40}", n in 1i64..=7) {
            let f = fake();
            let subject = format!("{prefix}[ACME #{n}]{suffix}");
            let got = thread(&subject, &[], &[], "ACME", &f).unwrap();
            if let Some(live) = f.live_ticket(n).unwrap() {
                proptest::prop_assert_eq!(got, Thread::Existing { ticket: live, by: ThreadedBy::SubjectTag });
            } else {
                proptest::prop_assert!(matches!(got, Thread::New { .. }), "expected a new ticket, got {:?}", got);
            }
        }

        /// Subjects without a tag and unknown ids always make a new ticket.
        #[test]
        fn no_evidence_no_thread(subject in "[^\\[]{0,80}", refs in proptest::collection::vec("[a-z]{1,8}@[a-z]{1,8}", 0..5)) {
            let got = thread(&subject, &refs, &refs, "ACME", &fake()).unwrap();
            proptest::prop_assert_eq!(got, Thread::New { note: None });
        }
    }
}
