//! Turns a rendered template into RFC 5322 bytes ready for the outbox.
//!
//! Pure: the Message-ID and the Date are inputs, so the same draft always gives the same headers.
//! Every outbound mail carries `X-Loop: <support address>` (so maildesk recognises its own mail coming
//! back) and, when automatic, `Auto-Submitted: auto-replied` plus `X-Auto-Response-Suppress: All` (so
//! well-behaved autoresponders, Exchange's included, stay quiet).

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment as LettreAttachment, Mailbox as LettreMailbox, MultiPart, SinglePart};

use crate::message::parse::{Attachment, Mailbox, one_line};
use crate::templates::Rendered;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("address {0:?} cannot be used in a mail header")]
    Address(String),
    #[error("building the message: {0}")]
    Build(lettre::error::Error),
}

// Not `#[from]`: the message shows lettre's words, so they are not a source as well.
impl From<lettre::error::Error> for ComposeError {
    fn from(e: lettre::error::Error) -> Self {
        ComposeError::Build(e)
    }
}

/// Everything an outbound mail needs besides its rendered text.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    pub from_name: &'a str,
    pub from_address: &'a str,
    pub to: &'a Mailbox,
    pub cc: &'a [Mailbox],
    /// Where replies should go: a per-ticket technician address, for mail to technicians.
    pub reply_to: Option<&'a str>,
    /// Files passed on from the message being relayed.
    pub attachments: &'a [Attachment],
    /// Without angle brackets.
    pub message_id: &'a str,
    pub in_reply_to: Option<&'a str>,
    /// Without angle brackets, oldest first.
    pub references: &'a [String],
    pub date: i64,
    /// `Some("auto-replied")` for acknowledgements; `None` for mail a person wrote.
    pub auto_submitted: Option<&'a str>,
    pub rendered: &'a Rendered,
}

/// How many References are kept: the first (thread root) and the most recent ones. Some servers
/// refuse very long header lines, and threading needs only the ends of the chain.
const MAX_REFERENCES: usize = 20;

pub fn compose(d: &Draft<'_>) -> Result<Vec<u8>, ComposeError> {
    let from = mailbox(Some(d.from_name), d.from_address)?;
    let to = mailbox(d.to.name.as_deref(), &d.to.address)?;
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_secs(d.date.max(0) as u64);
    let mut builder = lettre::Message::builder().from(from).to(to);
    // One Cc header built once: lettre's `cc()` re-parses the whole header for every address it
    // adds (quadratic; 20,000 addresses took 109 s).
    if !d.cc.is_empty() {
        let mut all = lettre::message::Mailboxes::new();
        for cc in d.cc {
            all.push(mailbox(cc.name.as_deref(), &cc.address)?);
        }
        builder = builder.mailbox(lettre::message::header::Cc::from(all));
    }
    if let Some(reply_to) = d.reply_to {
        builder = builder.reply_to(mailbox(Some(d.from_name), reply_to)?);
    }
    let mut builder = builder.subject(one_line(&d.rendered.subject)).date(date).message_id(Some(bracket(d.message_id)));
    if let Some(irt) = d.in_reply_to {
        builder = builder.in_reply_to(bracket(irt));
    }
    let refs = trim_references(d.references);
    if !refs.is_empty() {
        builder = builder.references(refs.iter().map(|r| bracket(r)).collect::<Vec<_>>().join(" "));
    }
    let mut extra: Vec<(&'static str, String)> = Vec::new();
    if let Some(auto) = d.auto_submitted {
        extra.push(("Auto-Submitted", auto.to_string()));
        extra.push(("X-Auto-Response-Suppress", "All".to_string()));
    }
    extra.push(("X-Loop", d.from_address.to_string()));
    extra.push(("X-Mailer", format!("maildesk {}", env!("CARGO_PKG_VERSION"))));
    for (name, value) in extra {
        builder = builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(name), value));
    }

    let text = SinglePart::builder().header(ContentType::TEXT_PLAIN).body(d.rendered.text.clone());
    let body = match &d.rendered.html {
        Some(html) => MultiPart::alternative()
            .singlepart(text)
            .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
        None if d.attachments.is_empty() => return Ok(builder.singlepart(text)?.formatted()),
        None => MultiPart::mixed().singlepart(text),
    };
    if d.attachments.is_empty() {
        return Ok(builder.multipart(body)?.formatted());
    }
    let mut mixed = MultiPart::mixed().multipart(body);
    for a in d.attachments {
        // The sender's file name is data: one line, and lettre encodes it.
        let name = a.name.as_deref().map(one_line).filter(|n| !n.is_empty()).unwrap_or_else(|| "attachment".into());
        let ctype = ContentType::parse(&a.content_type)
            .unwrap_or(ContentType::parse("application/octet-stream").expect("valid"));
        mixed = mixed.singlepart(LettreAttachment::new(name).body(a.data.clone(), ctype));
    }
    Ok(builder.multipart(mixed)?.formatted())
}

fn bracket(id: &str) -> String {
    format!("<{}>", id.trim_matches(['<', '>']))
}

fn trim_references(refs: &[String]) -> Vec<&str> {
    let clean: Vec<&str> = refs
        .iter()
        .map(|r| r.as_str())
        .filter(|r| !r.is_empty() && !r.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>'))
        .collect();
    if clean.len() <= MAX_REFERENCES {
        return clean;
    }
    let mut kept = vec![clean[0]];
    kept.extend_from_slice(&clean[clean.len() - (MAX_REFERENCES - 1)..]);
    kept
}

fn mailbox(name: Option<&str>, address: &str) -> Result<LettreMailbox, ComposeError> {
    let addr = address.parse().map_err(|_| ComposeError::Address(address.to_string()))?;
    Ok(LettreMailbox::new(name.map(one_line).filter(|n| !n.is_empty()), addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse::parse;

    fn draft_with<'a>(to: &'a Mailbox, rendered: &'a Rendered, refs: &'a [String]) -> Draft<'a> {
        Draft {
            from_name: "ACME IT",
            from_address: "support@acme.test",
            to,
            cc: &[],
            reply_to: None,
            attachments: &[],
            message_id: "ack.1.1.abcd@acme.test",
            in_reply_to: Some("req@alice.test"),
            references: refs,
            date: 1_795_341_600,
            auto_submitted: Some("auto-replied"),
            rendered,
        }
    }

    #[test]
    fn acknowledgement_headers_round_trip() {
        let to = Mailbox { name: Some("Alice".into()), address: "alice@alice.test".into() };
        let rendered =
            Rendered {
                subject: "[ACME #1] Printér".into(), text: "Hello\n".into(), html: Some("<p>Hello</p>".into())
            };
        let refs = vec!["root@x".to_string(), "req@alice.test".to_string()];
        let raw = compose(&draft_with(&to, &rendered, &refs)).unwrap();
        let m = parse(&raw).unwrap();
        assert_eq!(m.message_id, "ack.1.1.abcd@acme.test");
        assert_eq!(m.subject, "[ACME #1] Printér");
        assert_eq!(m.in_reply_to, vec!["req@alice.test"]);
        assert_eq!(m.references, refs);
        assert_eq!(m.automation.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(m.automation.x_loop, vec!["support@acme.test"]);
        assert_eq!(m.to[0].address, "alice@alice.test");
        assert_eq!(m.date, Some(1_795_341_600));
        assert_eq!(m.text.trim(), "Hello");
    }

    #[test]
    fn newlines_in_subject_and_names_never_become_headers() {
        let to = Mailbox { name: Some("Eve\r\nBcc: victim@x.test".into()), address: "eve@x.test".into() };
        let rendered = Rendered { subject: "hi\r\nBcc: victim@x.test".into(), text: "x".into(), html: None };
        let raw = compose(&draft_with(&to, &rendered, &[])).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{text}");
    }

    #[test]
    fn cc_reply_to_and_attachments() {
        let to = Mailbox { name: None, address: "alice@alice.test".into() };
        let cc = vec![Mailbox { name: None, address: "carol@alice.test".into() }];
        let rendered = Rendered { subject: "s".into(), text: "see attached".into(), html: None };
        let files =
            vec![Attachment::new(Some("../../etc/passwd\r\nX: y".into()), "application/pdf".into(), b"%PDF".to_vec())];
        let mut d = draft_with(&to, &rendered, &[]);
        d.cc = &cc;
        d.reply_to = Some("support+t1-abc@acme.test");
        d.attachments = &files;
        let m = parse(&compose(&d).unwrap()).unwrap();
        assert_eq!(m.cc[0].address, "carol@alice.test");
        assert_eq!(m.reply_to.unwrap().address, "support+t1-abc@acme.test");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].data, b"%PDF");
        assert_eq!(m.attachments[0].name.as_deref(), Some("../../etc/passwd X: y"));
        assert_eq!(m.text.trim(), "see attached");
    }

    #[test]
    fn long_reference_chains_keep_root_and_newest() {
        let refs: Vec<String> = (0..50).map(|i| format!("r{i}@x")).collect();
        let kept = trim_references(&refs);
        assert_eq!(kept.len(), MAX_REFERENCES);
        assert_eq!(kept[0], "r0@x");
        assert_eq!(*kept.last().unwrap(), "r49@x");
    }
}
