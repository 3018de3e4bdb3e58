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
            r"(?i)(undeliver(ed|able)|returned mail|returned to sender|delivery (status notification|failure|failed|has failed|problem|notification: delivery has failed)|mail delivery (failed|failure|error|problem|subsystem)|failure notice|failed delivery|non[- ]?delivery|(could|can) ?not (be )?deliver(ed)?|was not delivered|message not delivered|mail system error|permanent (error|failure)|error (while )?sending your (mail|message)|(failed|unable) to (send|deliver)|message delivery failed|invalid (user|recipient|address)|user unknown|no such user|unzustellbar|nicht zugestellt|zustellung fehlgeschlagen|unzustellbare|non remis|non distribu[ée]|[ée]chec de (la )?(remise|distribution)|non recapitabile|mancato recapito|no se puede entregar|no (se )?pudo (ser )?entregar|error de entrega|n[ãa]o (foi poss[íi]vel )?entreg|onbestelbaar|niet (kunnen )?afgeleverd|kan ikke leveres|kunde inte levereras|ej levererbart|nie mo[żz]na dostarczy[ćc]|niedostarczon|nedoru[čc]iteln|не доставлен|недоставлен|配信不能|配信エラー|メールエラー|エラー通知|配信できません|未送達|送信できませんでした|退信|无法投递|無法傳遞)",
        )
        .expect("valid regex")
    })
}

fn message_id_line() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?im)^\s*message-id:\s*<([^<>\s]+)>").expect("valid regex"))
}

/// "FW:", "Fwd:", "WG:", "TR:", "RV:", "Re:", "AW:", "SV:", "VS:", "Doorst:", "I:", "ENC:" …
fn forwarded_by_a_person(subject: &str) -> bool {
    static PREFIX: OnceLock<Regex> = OnceLock::new();
    PREFIX
        .get_or_init(|| {
            Regex::new(r"(?i)^\s*(fw|fwd|wg|tr|rv|re|aw|sv|vs|vb|doorst|i|enc|odp|pd|ynt|转发|回复|転送|返信)\s?[:：]")
                .expect("valid regex")
        })
        .is_match(subject)
}

/// The first 8 KB of the body text: reports put their words at the top, and reading no more keeps
/// every check here linear and cheap. Worked out once per message (an HTML body is converted for
/// it), and only for a message that might be a report.
fn report_text(msg: &Message<'_>) -> String {
    msg.body_text(0).map(|t| t.chars().take(8192).collect()).unwrap_or_default()
}

/// Whether the body's first 2 KB say the mail was not delivered.
fn body_says_undelivered(text: &str) -> bool {
    let head: String = text.chars().take(2048).collect();
    subject_pattern().is_match(&head)
}

/// A body that reads like a delivery report: an SMTP reply or enhanced status code next to report
/// wording, or the original message attached (`message/rfc822`, or its headers).
fn machine_evidence(msg: &Message<'_>, text: &str) -> bool {
    static CODE: OnceLock<Regex> = OnceLock::new();
    let code = CODE.get_or_init(|| {
        Regex::new(r"(?i)(\b[45]\.\d{1,3}\.\d{1,3}\b|\b(550|551|552|553|554|450|451|452)[ -][^\n]{0,200}|smtp error|remote server (replied|returned)|diagnostic-code|final-recipient|original message (follows|is attached)|the following (address|recipient)(es|s)?( failed)?|delivery to the following recipient)")
            .expect("valid regex")
    });
    let attached_original = msg.parts.iter().any(|p| {
        p.message().is_some()
            || p.is_content_type("text", "rfc822-headers")
            || p.is_content_type("message", "rfc822-headers")
    });
    attached_original || code.is_match(text)
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
    let machine = from.is_some_and(super::senders::is_machine_sender);
    // A person forwarding a report to the help desk ("FW: Undeliverable: …", "why did this bounce?")
    // is asking for help: their mail carries the report's words, codes and original, but it is a
    // request. Reports themselves never open with a forward or reply prefix.
    if !machine && !null_sender && !auto_submitted && forwarded_by_a_person(subject) {
        return None;
    }
    // A failure subject alone could be a person's ("Delivery failure of my order"): it needs a
    // machine's mark too. Besides the sender and headers, that is a body that quotes SMTP status
    // codes or an attached original message, as gateways and content filters send them.
    let text = std::cell::OnceCell::new();
    let text = || text.get_or_init(|| report_text(msg)).as_str();
    let evidence = std::cell::OnceCell::new();
    let evidence = || *evidence.get_or_init(|| machine_evidence(msg, text()));
    let subject_matches = subject_pattern().is_match(subject);
    let looks_like = subject_matches && (machine || null_sender || auto_submitted || evidence());
    // Some carriers write the failure only in the body (Japanese mobile carriers, for one), from a
    // no-reply sender with the original attached: the body's first lines say it instead.
    let no_reply = from.is_some_and(super::senders::is_no_reply_sender);
    let looks_like = looks_like
        || ((machine || null_sender || auto_submitted || no_reply) && body_says_undelivered(text()) && evidence())
        // A system sender (or the null sender) quoting SMTP replies or returning the original.
        || ((machine || null_sender) && evidence());
    if report.is_none() && !machine && !looks_like {
        return None;
    }
    if report.is_none() && machine && !looks_like && !null_sender {
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
    if report.is_none() {
        loose_details(text(), subject, &mut b);
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

/// What a report without a delivery-status part says in its words: a delay or a failure, the first
/// enhanced status code and the line it stands on, and the address in angle brackets on that line.
fn loose_details(text: &str, subject: &str, b: &mut Bounce) {
    static DELAY: OnceLock<Regex> = OnceLock::new();
    static STATUS: OnceLock<Regex> = OnceLock::new();
    let delay = DELAY.get_or_init(|| {
        Regex::new(r"(?i)(\(delay\)|delayed|delay notification|will (be )?retr(y|ied)|still trying|could not send message for past|warning: message .{0,40}(delayed|still undelivered)|verzögert|retardé|ritardat|retrasad)")
            .expect("valid regex")
    });
    let status =
        STATUS.get_or_init(|| Regex::new(r"(?m)^.{0,200}?\b([45]\.\d{1,3}\.\d{1,3})\b.{0,300}$").expect("valid regex"));
    let head: String = text.chars().take(600).collect();
    if delay.is_match(subject) || delay.is_match(&head) {
        b.action = "delayed".into();
    }
    if let Some(c) = status.captures(text) {
        b.status = Some(c[1].to_string());
        let line = c[0].trim();
        b.diagnostic = Some(line.to_string());
        if b.recipient.is_none()
            && let Some(start) = line.find('<')
            && let Some(len) = line[start + 1..].find('>')
        {
            let r = line[start + 1..start + 1 + len].to_ascii_lowercase();
            if r.contains('@') {
                b.recipient = Some(r);
            }
        }
    }
}

fn push_id(ids: &mut Vec<String>, id: &str) {
    let id = crate::domain::clean_id(id);
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
        let gateway = "From: SMTP Gateway <smtpgw@mail.corp.test>\r\nSubject: Unzustellbar: Drucker\r\n\r\n\
Ihre Nachricht konnte nicht zugestellt werden.\r\n\r\n  <nobody@corp.test>: 550 5.1.1 User unknown\r\n";
        let b = parse(gateway.as_bytes()).unwrap().bounce.expect("a gateway's report");
        assert_eq!(b.status.as_deref(), Some("5.1.1"));
        assert_eq!(b.recipient.as_deref(), Some("nobody@corp.test"));
        let filter = "From: Content Filter <filter@corp.test>\r\nSubject: Non recapitabile: stampante\r\n\r\n\
Il messaggio non e' stato recapitato.\r\nRemote server replied: 554 5.7.1 Message rejected\r\n";
        assert!(parse(filter.as_bytes()).unwrap().bounce.is_some(), "SMTP codes in the body are a machine's mark");
        let delay = "From: MAILER-DAEMON@mx.test\r\nSubject: Delivery Status Notification (Delay)\r\n\r\n\
Delivery is delayed to these recipients. The server will retry.\r\n";
        assert!(!parse(delay.as_bytes()).unwrap().bounce.unwrap().is_failure());
        let forwarded = "From: alice@x.test\r\nSubject: FW: Undeliverable: Quarterly report\r\n\r\n\
Why did this bounce?\r\n\r\nFrom: Microsoft Outlook\r\nDelivery has failed to these recipients.\r\n\
Remote server returned '550 5.1.1 RESOLVER.ADR.RecipNotFound'\r\n";
        assert!(parse(forwarded.as_bytes()).unwrap().bounce.is_none(), "a person forwarding a bounce asks for help");
        for person in [
            "From: alice@x.test\r\nSubject: Undeliverable mail to the CEO?\r\n\r\nWhy?",
            "From: alice@x.test\r\nSubject: Delivery failure of my order\r\n\r\nThe parcel never came.",
            "From: postmaster@x.test\r\nSubject: New firewall rules\r\n\r\nFYI",
        ] {
            assert!(parse(person.as_bytes()).unwrap().bounce.is_none(), "{person}");
        }
    }
}
