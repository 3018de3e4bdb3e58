//! Delivery reports: is this mail a bounce, and of which message?
//!
//! Standard reports (RFC 3464: `multipart/report; report-type=delivery-status`) carry the failed
//! recipient, status and diagnostic in a `message/delivery-status` part and the original message (or
//! its headers) beside it. Many servers send something looser ("Undelivered Mail Returned to
//! Sender", Exchange NDRs, qmail's plain text); those are recognised by their sender and subject.
//! Either way the result lists every Message-ID the report mentions, and the recorder looks for one
//! that maildesk sent. A bounce never opens a ticket and is never answered.

use std::sync::OnceLock;

use mail_parser::{Message, MimeHeaders};
use regex::Regex;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounce {
    /// An RFC 3464 report (rather than a heuristic match).
    pub standard: bool,
    /// Message-IDs found in the report, most specific first (the returned message's own id).
    pub message_ids: Vec<String>,
    pub recipient: Option<String>,
    /// "failed", "delayed", "delivered", ... (RFC 3464 Action); "failed" when unknown.
    pub action: String,
    /// Enhanced status code, e.g. "5.1.1".
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

impl Bounce {
    /// A delay or success notice reports no failure.
    pub fn is_failure(&self) -> bool {
        !matches!(self.action.as_str(), "delayed" | "delivered" | "relayed" | "expanded")
    }
}

fn subject_pattern() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)(undeliver(ed|able)|returned mail|delivery (status notification|failure|has failed|problem)|mail delivery failed|failure notice|non[- ]?delivery|could not be delivered|unzustellbar|nicht zugestellt|non remis|no se puede entregar|message not delivered)",
        )
        .expect("valid regex")
    })
}

fn message_id_line() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?im)^\s*message-id:\s*<([^<>\s]+)>").expect("valid regex"))
}

/// Looks at a parsed message and decides whether it is a delivery report.
pub fn detect(
    msg: &Message<'_>,
    from: Option<&str>,
    subject: &str,
    null_sender: bool,
    auto_submitted: bool,
) -> Option<Bounce> {
    let report = msg.parts.iter().find(|p| {
        p.is_content_type("message", "delivery-status") || p.is_content_type("message", "global-delivery-status")
    });
    let machine = from.is_some_and(super::classify::is_machine_sender);
    let looks_like = subject_pattern().is_match(subject) && (machine || null_sender || auto_submitted);
    if report.is_none() && !machine && !looks_like {
        return None;
    }
    if report.is_none() && machine && !subject_pattern().is_match(subject) && !null_sender {
        // postmaster@ writing about something else is a person.
        return None;
    }
    let mut b = Bounce { standard: report.is_some(), action: "failed".into(), ..Bounce::default() };
    if let Some(part) = report {
        let text = String::from_utf8_lossy(part.contents()).into_owned();
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else { continue };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "final-recipient" | "original-recipient" if b.recipient.is_none() => {
                    b.recipient =
                        Some(v.rsplit(';').next().unwrap_or(v).trim().trim_matches(['<', '>']).to_ascii_lowercase());
                }
                "action" => b.action = v.to_ascii_lowercase(),
                "status" if b.status.is_none() => b.status = Some(v.split_whitespace().next().unwrap_or(v).to_string()),
                "diagnostic-code" if b.diagnostic.is_none() => {
                    b.diagnostic = Some(v.rsplit_once(';').map(|(_, d)| d).unwrap_or(v).trim().to_string())
                }
                _ => {}
            }
        }
    }
    // The returned message, attached whole or as headers only.
    for part in &msg.parts {
        if let Some(inner) = part.message() {
            if let Some(id) = inner.message_id() {
                push_id(&mut b.message_ids, id);
            }
        } else if part.is_content_type("text", "rfc822-headers") || part.is_content_type("message", "rfc822-headers") {
            for c in message_id_line().captures_iter(&String::from_utf8_lossy(part.contents())) {
                push_id(&mut b.message_ids, &c[1]);
            }
        }
    }
    // Loose reports quote the original headers in the text.
    for part in &msg.parts {
        if part.is_content_type("text", "plain") || part.content_type().is_none() {
            for c in message_id_line().captures_iter(&String::from_utf8_lossy(part.contents())) {
                push_id(&mut b.message_ids, &c[1]);
            }
        }
    }
    Some(b)
}

fn push_id(ids: &mut Vec<String>, id: &str) {
    let id = super::parse::clean_id(id);
    if !id.is_empty() && !ids.contains(&id) {
        ids.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;

    #[test]
    fn standard_report_with_returned_message() {
        let raw = b"From: MAILER-DAEMON@mx.test\r\nTo: support@acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\n\
Auto-Submitted: auto-replied\r\nMessage-ID: <dsn1@mx.test>\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n\
I'm sorry.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\n\
Final-Recipient: rfc822; nobody@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <nobody@customer.test>: Recipient address rejected\r\n\r\n--B\r\n\
Content-Type: message/rfc822\r\n\r\nFrom: support@acme.test\r\nMessage-ID: <ack.1.1.0.x@acme.test>\r\nSubject: [ACME #1] x\r\n\r\nhello\r\n--B--\r\n";
        let b = parse(raw).unwrap().bounce.expect("a bounce");
        assert!(b.standard && b.is_failure());
        assert_eq!(b.recipient.as_deref(), Some("nobody@customer.test"));
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(b.diagnostic.as_deref(), Some("550 5.1.1 <nobody@customer.test>: Recipient address rejected"));
        assert_eq!(b.message_ids, vec!["ack.1.1.0.x@acme.test"]);
    }

    #[test]
    fn loose_reports_and_people_who_are_not_bounces() {
        let loose =
            b"From: postmaster@old.test\r\nSubject: Delivery Status Notification (Failure)\r\nReturn-Path: <>\r\n\r\n\
Your message could not be delivered.\r\n\r\n----- Original message -----\r\nMessage-ID: <reply.7.3.0.y@acme.test>\r\n";
        let b = parse(loose).unwrap().bounce.expect("a heuristic bounce");
        assert!(!b.standard);
        assert_eq!(b.message_ids, vec!["reply.7.3.0.y@acme.test"]);
        for person in [
            "From: alice@x.test\r\nSubject: Undeliverable mail to the CEO?\r\n\r\nWhy?",
            "From: postmaster@x.test\r\nSubject: New firewall rules\r\n\r\nFYI",
        ] {
            assert!(parse(person.as_bytes()).unwrap().bounce.is_none(), "{person}");
        }
    }
}
