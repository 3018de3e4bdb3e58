//! Turns a rendered template into RFC 5322 bytes ready for the outbox.
//!
//! Pure: the Message-ID and the Date are inputs, so the same draft always gives the same headers.
//! Every outbound mail carries `X-Loop: <support address>` (so maildesk recognises its own mail coming
//! back) and, when automatic, `Auto-Submitted: auto-replied` plus `X-Auto-Response-Suppress: All` (so
//! well-behaved autoresponders, Exchange's included, stay quiet).
//!
//! Forwarded files are not copied into the outbox. Each attachment part is composed around a
//! stand-in body that is then cut out, leaving a *hole*: the offset where the file's base64 text
//! goes. The sender fills the holes from the stored inbound message when it sends (see
//! [`super::outgoing`]), so a file mailed to ten technicians is stored once, as the requester sent it.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment as LettreAttachment, Mailbox as LettreMailbox, MultiPart, SinglePart};

use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

use crate::message::parse::{Mailbox, one_line};
use crate::templates::Rendered;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("address {0:?} cannot be used in a mail header")]
    Address(String),
    #[error("building the message: {0}")]
    Build(lettre::error::Error),
    /// A bug in maildesk: a stand-in body was not found exactly once in what lettre made.
    #[error("internal error: attachment {0} could not be placed")]
    Placement(usize),
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
    /// Files passed on from the message being relayed: described here, filled in when sent.
    pub attachments: &'a [Forwarded],
    /// Secret per mail (see [`stand_in`]): makes the stand-in bodies impossible to guess, so no
    /// text a sender wrote can be taken for one.
    pub stand_in_key: [u8; 16],
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

/// A file passed on from a stored inbound message: its description, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub name: Option<String>,
    pub content_type: String,
    /// The inbound message's row and the file's position among its attachments.
    pub source_message: i64,
    pub part: usize,
}

/// An outbound mail as stored: bytes with a hole for each forwarded file, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    pub bytes: Vec<u8>,
    /// `holes[i]` is the offset in `bytes` where attachment `i`'s base64 text goes.
    pub holes: Vec<usize>,
}

/// How many References are kept: the first (thread root) and the most recent ones. Some servers
/// refuse very long header lines, and threading needs only the ends of the chain.
const MAX_REFERENCES: usize = 20;

pub fn compose(d: &Draft<'_>) -> Result<Composed, ComposeError> {
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
        None if d.attachments.is_empty() => return Ok(whole(builder.singlepart(text)?.formatted())),
        None => MultiPart::mixed().singlepart(text),
    };
    if d.attachments.is_empty() {
        return Ok(whole(builder.multipart(body)?.formatted()));
    }
    let mut mixed = MultiPart::mixed().multipart(body);
    for (i, a) in d.attachments.iter().enumerate() {
        // The sender's file name is data: one line, and lettre encodes it.
        let name = a.name.as_deref().map(one_line).filter(|n| !n.is_empty()).unwrap_or_else(|| "attachment".into());
        let ctype = ContentType::parse(&a.content_type)
            .unwrap_or(ContentType::parse("application/octet-stream").expect("valid"));
        let body = Body::new_with_encoding(stand_in(&d.stand_in_key, i).to_vec(), ContentTransferEncoding::Base64)
            .map_err(|_| ComposeError::Placement(i))?;
        mixed = mixed.singlepart(LettreAttachment::new(name).body(body, ctype));
    }
    let made = builder.multipart(mixed)?.formatted();
    cut_holes(made, &d.stand_in_key, d.attachments.len())
}

/// Appends `data` as base64 in lines of 76 characters joined by CRLF, with no line end after the
/// last: the text lettre writes into an attachment part, so that a filled hole reads as lettre's.
pub fn push_base64(out: &mut Vec<u8>, data: &[u8]) {
    let mut line = [0u8; 76];
    for (n, chunk) in data.chunks(57).enumerate() {
        if n > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let len = data_encoding::BASE64.encode_len(chunk.len());
        data_encoding::BASE64.encode_mut(chunk, &mut line[..len]);
        out.extend_from_slice(&line[..len]);
    }
}

fn whole(bytes: Vec<u8>) -> Composed {
    Composed { bytes, holes: Vec::new() }
}

/// The stand-in body of attachment `i`: 21 bytes, whose base64 text (28 characters, no padding,
/// one line) occurs nowhere else in the mail unless someone knows the key.
fn stand_in(key: &[u8; 16], i: usize) -> [u8; 21] {
    let mut b = [0u8; 21];
    b[..16].copy_from_slice(key);
    b[16..20].copy_from_slice(&(i as u32).to_be_bytes());
    b[20] = 0xa5;
    b
}

/// Removes each stand-in's base64 text from `made` and notes where it was.
fn cut_holes(made: Vec<u8>, key: &[u8; 16], count: usize) -> Result<Composed, ComposeError> {
    let mut found = Vec::with_capacity(count);
    for i in 0..count {
        let text = data_encoding::BASE64.encode(&stand_in(key, i));
        let mut at = memchr::memmem::find_iter(&made, text.as_bytes());
        match (at.next(), at.next()) {
            (Some(p), None) => found.push((p, text.len())),
            _ => return Err(ComposeError::Placement(i)),
        }
    }
    // lettre writes the parts in order, so the stand-ins are in order too.
    if found.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(ComposeError::Placement(0));
    }
    let mut bytes = Vec::with_capacity(made.len());
    let mut holes = Vec::with_capacity(count);
    let mut from = 0;
    for (p, len) in found {
        bytes.extend_from_slice(&made[from..p]);
        holes.push(bytes.len());
        from = p + len;
    }
    bytes.extend_from_slice(&made[from..]);
    Ok(Composed { bytes, holes })
}

/// The mail as sent: `stored.bytes` with each file's base64 text in its hole; `files[i]` fills
/// `holes[i]`. What [`super::outgoing`] does from the database, for the tests here.
#[cfg(test)]
fn fill_holes(stored: &Composed, files: &[Vec<u8>]) -> Vec<u8> {
    let encoded: usize = files.iter().map(|f| f.len() / 57 * 78 + 80).sum();
    let mut out = Vec::with_capacity(stored.bytes.len() + encoded);
    let mut from = 0;
    for (&hole, file) in stored.holes.iter().zip(files) {
        out.extend_from_slice(&stored.bytes[from..hole]);
        push_base64(&mut out, file);
        from = hole;
    }
    out.extend_from_slice(&stored.bytes[from..]);
    out
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
    use crate::message::parse::{attachment_contents, parse};

    fn draft_with<'a>(to: &'a Mailbox, rendered: &'a Rendered, refs: &'a [String]) -> Draft<'a> {
        Draft {
            from_name: "ACME IT",
            from_address: "support@acme.test",
            to,
            cc: &[],
            reply_to: None,
            attachments: &[],
            stand_in_key: [7; 16],
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
        let raw = compose(&draft_with(&to, &rendered, &refs)).unwrap().bytes;
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
        let raw = compose(&draft_with(&to, &rendered, &[])).unwrap().bytes;
        let text = String::from_utf8_lossy(&raw);
        assert!(!text.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{text}");
    }

    fn forwarded(name: &str, content_type: &str, part: usize) -> Forwarded {
        Forwarded { name: Some(name.into()), content_type: content_type.into(), source_message: 1, part }
    }

    #[test]
    fn cc_reply_to_and_attachments() {
        let to = Mailbox { name: None, address: "alice@alice.test".into() };
        let cc = vec![Mailbox { name: None, address: "carol@alice.test".into() }];
        let rendered = Rendered { subject: "s".into(), text: "see attached".into(), html: None };
        let files = vec![forwarded("../../etc/passwd\r\nX: y", "application/pdf", 0)];
        let mut d = draft_with(&to, &rendered, &[]);
        d.cc = &cc;
        d.reply_to = Some("support+t1-abc@acme.test");
        d.attachments = &files;
        let stored = compose(&d).unwrap();
        let sent = fill_holes(&stored, &[b"%PDF".to_vec()]);
        let m = parse(&sent).unwrap();
        assert_eq!(m.cc[0].address, "carol@alice.test");
        assert_eq!(m.reply_to.unwrap().address, "support+t1-abc@acme.test");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(attachment_contents(&sent, &[0]), vec![Some(b"%PDF".to_vec())]);
        assert_eq!(m.attachments[0].name.as_deref(), Some("../../etc/passwd X: y"));
        assert_eq!(m.text.trim(), "see attached");
    }

    #[test]
    fn files_are_stored_as_holes_and_filled_with_their_bytes_in_order() {
        let to = Mailbox { name: None, address: "bob@acme.test".into() };
        let rendered = Rendered { subject: "s".into(), text: "two files".into(), html: Some("<p>two</p>".into()) };
        let files = vec![forwarded("a.bin", "application/octet-stream", 3), forwarded("b.txt", "text/plain", 0)];
        let mut d = draft_with(&to, &rendered, &[]);
        d.attachments = &files;
        let stored = compose(&d).unwrap();
        assert_eq!(stored.holes.len(), 2);
        let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        // Nothing of the files is in what is stored.
        assert!(stored.bytes.len() < 2_000, "{}", stored.bytes.len());
        let sent = fill_holes(&stored, &[big.clone(), b"plain words\n".to_vec()]);
        let m = parse(&sent).unwrap();
        assert_eq!(m.attachments.len(), 2);
        assert_eq!(attachment_contents(&sent, &[0, 1]), vec![Some(big), Some(b"plain words\n".to_vec())]);
        assert_eq!(m.attachments[0].name.as_deref(), Some("a.bin"));
        assert!(sent.split(|&b| b == b'\n').all(|l| l.len() <= 998));
    }

    #[test]
    fn a_stand_in_written_by_the_sender_is_not_mistaken_for_a_hole() {
        let to = Mailbox { name: None, address: "bob@acme.test".into() };
        let key = [9u8; 16];
        // Someone who knew the key and wrote the stand-in into the text: found twice, refused.
        let text = data_encoding::BASE64.encode(&stand_in(&key, 0));
        let rendered = Rendered { subject: "s".into(), text: format!("look: {text}"), html: None };
        let files = vec![forwarded("a.bin", "application/octet-stream", 0)];
        let mut d = draft_with(&to, &rendered, &[]);
        d.attachments = &files;
        d.stand_in_key = key;
        assert!(matches!(compose(&d), Err(ComposeError::Placement(0))));
        d.stand_in_key = [1; 16];
        assert_eq!(compose(&d).unwrap().holes.len(), 1);
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
