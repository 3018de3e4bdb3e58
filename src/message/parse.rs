//! Raw bytes to [`Inbound`]: the few facts about a message that the rest of maildesk needs.
//!
//! Parsing is best effort. A message with a missing subject, sender or Message-ID still becomes an
//! `Inbound` (with the gap noted in `defects`), because a half-readable request is still a request.
//! Only a message that cannot be parsed at all is an error, and the caller quarantines it with the
//! raw bytes. mail-parser is run under `catch_unwind` so that a parser panic costs one message, not
//! the daemon.

use std::panic::{AssertUnwindSafe, catch_unwind};

use data_encoding::HEXLOWER;
use mail_parser::{Address, HeaderName, HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

/// A name and a lower-cased address, as found in From/To/Cc/Reply-To.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The sender's file name: shown to people, never used as a path.
    pub name: Option<String>,
    pub content_type: String,
    /// Decoded size in bytes.
    pub size: usize,
    /// Hex SHA-256 of the decoded bytes, worked out with the parse so that it runs off the writing
    /// thread.
    pub sha256: String,
}

impl Attachment {
    /// Describes a file by its decoded bytes, which it does not keep: they stay in the raw message
    /// (see [`attachment_contents`]), so a 40 MB file is not held twice while its mail is recorded.
    pub fn describe(name: Option<String>, content_type: String, data: &[u8]) -> Attachment {
        let sha256 = HEXLOWER.encode(&Sha256::digest(data));
        Attachment { name, content_type, size: data.len(), sha256 }
    }
}

/// Headers that decide whether a mail was sent by a machine and must not be answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutomationHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    /// List-Id, or a list manager's own mark (X-MLServer, X-Mailman-Version, ...).
    pub list_id: bool,
    pub list_unsubscribe: bool,
    /// The Return-Path as written; `Some("")` is the null sender `<>` of bounces.
    pub return_path: Option<String>,
    pub x_loop: Vec<String>,
    pub x_auto_response_suppress: Option<String>,
    /// The receiving server's spam verdict, when it says spam (`X-Spam-Flag: YES`, `X-Spam-Status: Yes…`).
    pub spam_verdict: Option<String>,
    /// A challenge-response filter's header (`X-Boxtrapper`, `X-TMDA-…`, `X-Challenge…`).
    pub challenge: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Without angle brackets. Synthesised from a hash of the raw bytes when the header is missing,
    /// so the same bytes fetched twice still count as one message.
    pub message_id: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// Decoded, with control characters (CR, LF, ...) replaced by spaces.
    pub subject: String,
    /// The Date header as Unix seconds, when it parsed.
    pub date: Option<i64>,
    pub text: String,
    pub automation: AutomationHeaders,
    /// Every address the message was sent to: To, Cc, Delivered-To, X-Original-To (lower case).
    /// Per-ticket reply addresses are looked for here.
    pub recipients: Vec<String>,
    /// Set when the message is a delivery report (see `bounce`).
    pub bounce: Option<super::bounce::Bounce>,
    /// Set when a machine's report makes up the message: any `multipart/report`, a delivery
    /// status, disposition (read receipt) or feedback part anywhere, or a plain read receipt.
    pub machine_report: Option<String>,
    /// "high" or "low" from Importance, Priority or X-Priority; None when absent or normal.
    pub importance: Option<&'static str>,
    /// `Authentication-Results` header values, newest (topmost) first, each with the number of
    /// `Received:` fields above it: only those a receiving server added above its own hop can be
    /// trusted (anything below was written by whoever sent the mail; see `auth::dmarc_pass`).
    pub authentication_results: Vec<(usize, String)>,
    pub attachments: Vec<Attachment>,
    /// What was missing or broken, recorded on the ticket so nobody wonders why a field is empty.
    pub defects: Vec<String>,
    /// The top-level header fields as written (name, raw value), for `[[routing]]` rules that
    /// match a header: at most [`MAX_HEADERS`], each value cut at [`MAX_HEADER_VALUE`] bytes.
    pub headers: Vec<(String, String)>,
}

/// How many header fields [`Inbound::headers`] keeps ...
pub const MAX_HEADERS: usize = 100;
/// ... and how much of each value.
pub const MAX_HEADER_VALUE: usize = 998;

/// Why a message could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty message (0 bytes)")]
    Empty,
    #[error("not a mail message: no header could be read")]
    NoHeaders,
    #[error("the MIME parser crashed on this message")]
    ParserPanic,
}

/// Longer subjects are cut: they end up in every reply's Subject line and in ticket lists.
pub const MAX_SUBJECT_CHARS: usize = 500;

/// Parses one raw message. Never panics.
pub fn parse(raw: &[u8]) -> Result<Inbound, ParseError> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseError::Empty);
    }
    match catch_unwind(AssertUnwindSafe(|| parse_inner(raw))) {
        // Broken MIME can hide every text part (a boundary parameter on a line of its own, say):
        // rather than a ticket with no text, show the body as sent, without its structure.
        // (A multipart without a usable boundary comes back as an "attachment" of type multipart/*.)
        Ok(Ok(mut msg))
            if msg.text.trim().is_empty()
                && msg.attachments.iter().all(|a| a.content_type.starts_with("multipart/"))
                && has_body(raw) =>
        {
            if let Ok(Ok(plain)) = catch_unwind(AssertUnwindSafe(|| parse_inner(&without_mime_structure(raw))))
                && !plain.text.trim().is_empty()
            {
                msg.text = plain.text;
                // The report's words were hidden too.
                msg.bounce = msg.bounce.or(plain.bounce);
                msg.machine_report = msg.machine_report.or(plain.machine_report);
                msg.defects
                    .push("no text part could be read from the MIME structure: the body is shown as plain text".into());
            }
            Ok(msg)
        }
        Ok(result) => result,
        // mail-parser 0.11 can panic on broken MIME nesting (found by the fuzz target). The request
        // is still a request: read it again as one plain-text part, so it becomes a ticket with the
        // body as sent. The stored original keeps the real structure.
        Err(_) => catch_unwind(AssertUnwindSafe(|| parse_inner(&without_mime_structure(raw))))
            .unwrap_or(Err(ParseError::ParserPanic))
            .map(|mut msg| {
                msg.defects.push(
                    "the MIME structure could not be read (the parser crashed): the body is shown as plain text".into(),
                );
                msg
            }),
    }
}

/// Hands `each` the decoded bytes of the attachments at `parts` (positions among the message's
/// attachments, as [`parse`] lists them), in the order asked, read again from the stored raw
/// message: how the outbox passes files on without storing a copy of them. `None` for a position
/// the message does not have. The bytes are lent, not copied. Never panics; falls back as [`parse`]
/// does when the parser crashes, so that the positions mean the same.
pub fn visit_attachments(raw: &[u8], parts: &[usize], mut each: impl FnMut(usize, Option<&[u8]>)) {
    let parsed = match catch_unwind(AssertUnwindSafe(|| MessageParser::default().parse(raw))) {
        Ok(parsed) => parsed,
        Err(_) => {
            let plain = without_mime_structure(raw);
            catch_unwind(AssertUnwindSafe(|| MessageParser::default().parse(&plain).map(|m| m.into_owned())))
                .ok()
                .flatten()
        }
    };
    let Some(msg) = parsed else {
        parts.iter().for_each(|&i| each(i, None));
        return;
    };
    let visited = catch_unwind(AssertUnwindSafe(|| {
        let all: Vec<&mail_parser::MessagePart<'_>> = msg.attachments().collect();
        for &i in parts {
            each(i, all.get(i).map(|p| p.contents()));
        }
    }));
    if visited.is_err() {
        tracing::warn!("the MIME parser crashed while reading a stored message's attachments");
    }
}

/// The decoded bytes of the attachments at `parts`, copied: see [`visit_attachments`].
pub fn attachment_contents(raw: &[u8], parts: &[usize]) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(parts.len());
    visit_attachments(raw, parts, |_, contents| out.push(contents.map(<[u8]>::to_vec)));
    out.resize(parts.len(), None);
    out
}

/// Whether anything but whitespace follows the header block.
fn has_body(raw: &[u8]) -> bool {
    let start = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2));
    start.is_some_and(|s| raw[s..].iter().any(|b| !b.is_ascii_whitespace()))
}

/// The message with its top-level Content-* header fields removed, so that a parser sees a single
/// plain-text part: the fallback for MIME structures that crash the parser.
fn without_mime_structure(raw: &[u8]) -> Vec<u8> {
    let header_end = raw
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|p| p + 1)
        .into_iter()
        .chain(raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 2))
        .min()
        .unwrap_or(raw.len());
    let mut out = Vec::with_capacity(raw.len());
    let mut dropping = false;
    for line in raw[..header_end].split_inclusive(|&b| b == b'\n') {
        let continuation = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !continuation {
            dropping = line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"content-");
        }
        if !dropping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&raw[header_end..]);
    out
}

fn parse_inner(raw: &[u8]) -> Result<Inbound, ParseError> {
    let msg = MessageParser::default().parse(raw).ok_or(ParseError::NoHeaders)?;
    if msg.headers().is_empty() {
        return Err(ParseError::NoHeaders);
    }
    let mut defects = Vec::new();

    let message_id = match msg.message_id().map(crate::domain::clean_id).filter(|id| !id.is_empty()) {
        Some(id) => id,
        None => {
            defects.push("no Message-ID header; one was derived from the message's content".into());
            synthetic_message_id(raw)
        }
    };
    // The first From field: a second one (or a garbage line after it) never replaces the sender.
    let from_fields: Vec<&Address<'_>> =
        msg.header_values(HeaderName::From).filter_map(HeaderValue::as_address).collect();
    let from = from_fields.iter().find_map(|a| first_mailbox(Some(a)));
    if from_fields.len() > 1 {
        defects.push(format!("{} From fields; the first was used", from_fields.len()));
    }
    if from.is_none() {
        defects.push("no usable From address".into());
    }
    let subject = match msg.subject() {
        Some(s) => {
            let s = one_line(s);
            match s.char_indices().nth(MAX_SUBJECT_CHARS) {
                Some((cut, _)) => {
                    defects
                        .push(format!("subject of {} characters shortened to {MAX_SUBJECT_CHARS}", s.chars().count()));
                    format!("{}…", &s[..cut])
                }
                None => s,
            }
        }
        None => {
            defects.push("no Subject header".into());
            String::new()
        }
    };
    let text = body_text(&msg);
    let attachments = msg
        .attachments()
        .map(|part| {
            let content_type = part
                .content_type()
                .map(|ct| match &ct.c_subtype {
                    Some(sub) => format!("{}/{}", ct.c_type, sub),
                    None => ct.c_type.to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_ascii_lowercase();
            // A forwarded message has no file name of its own: name it after its subject.
            let name = part.attachment_name().map(one_line).or_else(|| {
                part.message().map(|inner| {
                    let subject: String = inner.subject().map(one_line).unwrap_or_default().chars().take(80).collect();
                    format!("{}.eml", if subject.is_empty() { "forwarded message".to_string() } else { subject })
                })
            });
            Attachment::describe(name, content_type, part.contents())
        })
        .collect::<Vec<Attachment>>();
    // Outlook's TNEF wrapper: no maintained crate unpacks it, so it is kept whole and said so.
    if attachments.iter().any(|a| {
        a.content_type == "application/ms-tnef"
            || a.content_type == "application/vnd.ms-tnef"
            || a.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case("winmail.dat"))
    }) {
        defects.push(
            "Outlook sent its attachments wrapped in winmail.dat (TNEF); it is kept as is, its files were not extracted \
             (open it with a TNEF viewer, or ask the sender to send plain text or HTML mail)"
                .into(),
        );
    }

    let header_text = |name: &str| msg.header(name).and_then(HeaderValue::as_text).map(|s| s.trim().to_string());
    let automation = AutomationHeaders {
        auto_submitted: header_text("Auto-Submitted"),
        precedence: header_text("Precedence"),
        // Besides List-Id, the marks list managers (fml, Mailman, ezmlm) put on their own notices.
        list_id: ["List-Id", "X-MLServer", "X-ML-Name", "X-Mailman-Version", "Mailing-List"]
            .iter()
            .any(|h| msg.header_raw(*h).is_some()),
        list_unsubscribe: ["List-Unsubscribe", "List-Subscribe", "List-Post"]
            .iter()
            .any(|h| msg.header_raw(*h).is_some()),
        return_path: msg.header_raw("Return-Path").map(|rp| rp.trim().trim_matches(['<', '>']).trim().to_string()),
        x_loop: msg
            .header_values("X-Loop")
            .filter_map(|v| v.as_text().map(|s| s.trim().to_ascii_lowercase()))
            .collect(),
        x_auto_response_suppress: header_text("X-Auto-Response-Suppress"),
        spam_verdict: msg.headers_raw().find_map(|(h, v)| {
            let v = v.trim();
            let yes = v.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("yes"));
            ((h.eq_ignore_ascii_case("X-Spam-Flag") || h.eq_ignore_ascii_case("X-Spam-Status")) && yes)
                .then(|| format!("{h}: {}", one_line(v).chars().take(60).collect::<String>()))
        }),
        challenge: msg.headers_raw().find_map(|(h, _)| {
            let l = h.to_ascii_lowercase();
            (l == "x-boxtrapper" || l.starts_with("x-tmda") || l.starts_with("x-challenge") || l == "x-spamarrest")
                .then(|| h.to_string())
        }),
    };

    let to = mailboxes(msg.to());
    let cc = mailboxes(msg.cc());
    let mut recipients: Vec<String> = to.iter().chain(cc.iter()).map(|m| m.address.clone()).collect();
    for name in ["Delivered-To", "X-Original-To"] {
        for (header, value) in msg.headers_raw() {
            if header.eq_ignore_ascii_case(name)
                && let Some(a) = crate::domain::parse_address(value.trim().trim_matches(['<', '>']))
            {
                recipients.push(a);
            }
        }
    }
    let mut received_above = 0;
    let mut authentication_results = Vec::new();
    for (h, v) in msg.headers_raw() {
        if h.eq_ignore_ascii_case("Received") {
            received_above += 1;
        } else if h.eq_ignore_ascii_case("Authentication-Results") {
            authentication_results.push((received_above, one_line(v)));
        }
    }

    let importance = msg.headers_raw().find_map(|(name, value)| importance(name, value));
    let bounce = super::bounce::detect(
        &msg,
        from.as_ref().map(|f| f.address.as_str()),
        &subject,
        automation.return_path.as_deref() == Some(""),
        automation.auto_submitted.as_deref().is_some_and(|a| !a.eq_ignore_ascii_case("no")),
    );

    let machine_report = machine_report(&msg, &subject, &text);
    Ok(Inbound {
        message_id,
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        from,
        reply_to: first_mailbox(msg.reply_to()),
        to,
        cc,
        subject,
        date: msg.date().map(|d| d.to_timestamp()),
        text,
        automation,
        recipients,
        bounce,
        machine_report,
        importance,
        authentication_results,
        attachments,
        defects,
        headers: msg
            .headers_raw()
            .take(MAX_HEADERS)
            .map(|(h, v)| {
                let v = v.trim();
                let mut end = v.len().min(MAX_HEADER_VALUE);
                while !v.is_char_boundary(end) {
                    end -= 1;
                }
                (h.to_string(), v[..end].to_string())
            })
            .collect(),
    })
}

/// Whether a machine's report makes up the message (see [`Inbound::machine_report`]).
fn machine_report(msg: &Message<'_>, subject: &str, text: &str) -> Option<String> {
    for part in &msg.parts {
        let Some(ct) = part.content_type() else { continue };
        let sub = ct.c_subtype.as_deref().unwrap_or("").to_ascii_lowercase();
        let ty = ct.c_type.to_ascii_lowercase();
        if ty == "multipart" && sub == "report" {
            let kind = ct.attribute("report-type").unwrap_or("unknown").to_ascii_lowercase();
            return Some(format!("a report (multipart/report; report-type={kind})"));
        }
        if ty == "message"
            && matches!(
                sub.as_str(),
                "delivery-status"
                    | "global-delivery-status"
                    | "disposition-notification"
                    | "global-disposition-notification"
                    | "feedback-report"
            )
        {
            return Some(format!("a report (message/{sub} part)"));
        }
    }
    static READ_SUBJECT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static READ_BODY: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let subject_re = READ_SUBJECT.get_or_init(|| {
        regex::Regex::new(r"(?i)^\s*(read|not read|read receipt|read-receipt|return receipt|gelesen|nicht gelesen|lesebestätigung|lu|non lu|accusé de lecture|le[íi]do|no le[íi]do|confirmación de lectura|lido|letto|non letto|conferma di lettura|gelezen|niet gelezen|l[äa]st|ol[äa]st|przeczytano|nieprzeczytano|p[řr]e[čc]teno|прочитано|не прочитано|開封済み|已读|已讀)\s?[:：]")
            .expect("valid regex")
    });
    let body_re = READ_BODY.get_or_init(|| {
        regex::Regex::new(r"(?i)(was read on|was read at|was deleted without being read|was received by|wurde am .{0,40}gelesen|ohne gelesen zu werden|a été lu|supprimé sans avoir été lu|fue leído|ha sido leído|è stato letto|is gelezen op|lästes|został przeczytany|прочитано)")
            .expect("valid regex")
    });
    // A plain read receipt (Outlook sends some without a report part): the subject and the body
    // must both say so, since "Read: the manual" is also a sentence.
    let start: String = text.chars().take(2000).collect();
    (subject_re.is_match(subject) && body_re.is_match(&start)).then(|| "a read receipt".to_string())
}

/// Every inline text part in order (text that follows an image or is split around an inline
/// attachment is text too), HTML ones converted with their block structure kept.
fn body_text(msg: &Message<'_>) -> String {
    let mut parts = Vec::new();
    for id in &msg.text_body {
        let Some(part) = msg.parts.get(*id as usize) else { continue };
        let text = match &part.body {
            PartType::Text(t) => t.to_string(),
            PartType::Html(h) => super::html::html_to_text(h),
            _ => continue,
        };
        if !text.trim().is_empty() {
            parts.push(text);
        }
    }
    parts.join("\n\n")
}

/// "high" or "low" from one Importance / Priority / X-Priority header.
fn importance(name: &str, value: &str) -> Option<&'static str> {
    let v = value.trim().to_ascii_lowercase();
    match name.to_ascii_lowercase().as_str() {
        "importance" | "priority" if v.starts_with("high") || v.starts_with("urgent") => Some("high"),
        "importance" | "priority" if v.starts_with("low") || v.starts_with("non-urgent") => Some("low"),
        "x-priority" if v.starts_with('1') || v.starts_with('2') => Some("high"),
        "x-priority" if v.starts_with('4') || v.starts_with('5') => Some("low"),
        _ => None,
    }
}

fn synthetic_message_id(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    let hex = HEXLOWER.encode(&digest[..16]);
    format!("{hex}@no-message-id.maildesk.invalid")
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    value
        .as_text_list()
        .map(|ids| ids.iter().map(|id| crate::domain::clean_id(id)).filter(|id| !id.is_empty()).collect())
        .unwrap_or_default()
}

fn mailboxes(addr: Option<&Address<'_>>) -> Vec<Mailbox> {
    let Some(addr) = addr else { return Vec::new() };
    addr.iter()
        .filter_map(|a| {
            let address = crate::domain::parse_address(a.address()?)?;
            Some(Mailbox { name: a.name().map(one_line).filter(|n| !n.is_empty()), address })
        })
        .collect()
}

fn first_mailbox(addr: Option<&Address<'_>>) -> Option<Mailbox> {
    mailboxes(addr).into_iter().next()
}

/// Collapses control characters (including encoded CR/LF) to spaces: a header value must stay one
/// line when it is copied into outbound mail.
pub fn one_line(s: &str) -> String {
    let replaced: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    replaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_message() {
        let raw = b"From: Alice Example <Alice@Example.test>\r\nTo: support@example.test\r\n\
Subject: =?UTF-8?Q?Drucker_im_3=2E_Stock_st=C3=B6rt?=\r\nMessage-ID: <abc@example.test>\r\n\
In-Reply-To: <x@y>\r\nReferences: <a@b> <x@y>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n\r\nHello\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.message_id, "abc@example.test");
        assert_eq!(m.from, Some(Mailbox { name: Some("Alice Example".into()), address: "alice@example.test".into() }));
        assert_eq!(m.subject, "Drucker im 3. Stock stört");
        assert_eq!(m.in_reply_to, vec!["x@y"]);
        assert_eq!(m.references, vec!["a@b", "x@y"]);
        assert_eq!(m.date, Some(1_795_341_600));
        assert_eq!(m.text.trim(), "Hello");
        assert!(m.defects.is_empty());
    }

    #[test]
    fn missing_fields_are_defects_not_errors() {
        let m = parse(b"X-Nothing: here\r\n\r\nbody only\r\n").unwrap();
        assert!(m.message_id.ends_with("@no-message-id.maildesk.invalid"));
        assert_eq!(m.from, None);
        assert_eq!(m.subject, "");
        assert_eq!(m.defects.len(), 3, "{:?}", m.defects);
        // The same bytes give the same synthetic id: a refetch is recognised as a duplicate.
        assert_eq!(parse(b"X-Nothing: here\r\n\r\nbody only\r\n").unwrap().message_id, m.message_id);
    }

    #[test]
    fn encoded_newlines_in_subject_cannot_inject_headers() {
        let m = parse(b"From: a@b.test\r\nSubject: =?UTF-8?B?aGkNCkJjYzogZXZpbEBleC50ZXN0?=\r\n\r\nx").unwrap();
        assert_eq!(m.subject, "hi Bcc: evil@ex.test");
    }

    #[test]
    fn empty_input_is_an_error() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"\r\n\r\n"), Err(ParseError::Empty));
    }

    #[test]
    fn null_return_path_and_automation_headers() {
        let raw = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@x.test\r\nAuto-Submitted: auto-replied\r\n\
Precedence: bulk\r\nList-Id: <l.x.test>\r\nX-Loop: Support@Example.test\r\nSubject: s\r\n\r\nb";
        let a = parse(raw).unwrap().automation;
        assert_eq!(a.return_path.as_deref(), Some(""));
        assert_eq!(a.auto_submitted.as_deref(), Some("auto-replied"));
        assert_eq!(a.precedence.as_deref(), Some("bulk"));
        assert!(a.list_id);
        assert_eq!(a.x_loop, vec!["support@example.test"]);
    }

    #[test]
    fn attachments_keep_names_as_data() {
        let raw = b"From: a@b.test\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
Content-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=\"../../etc/passwd\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX--\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].name.as_deref(), Some("../../etc/passwd"));
        assert_eq!(m.attachments[0].content_type, "application/pdf");
        assert_eq!(m.attachments[0].size, 5);
        assert_eq!(attachment_contents(raw, &[0]), vec![Some(b"hello".to_vec())]);
        assert_eq!(m.attachments[0].sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    }

    #[test]
    fn attachment_contents_reads_the_same_parts_parse_lists() {
        let raw = b"From: a@b.test\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
Content-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX\r\n\
Content-Type: image/png\r\nContent-Disposition: attachment; filename=b.png\r\n\r\nPNG\r\n--XX--\r\n";
        let listed: Vec<(usize, String)> =
            parse(raw).unwrap().attachments.into_iter().map(|a| (a.size, a.sha256)).collect();
        assert_eq!(listed.len(), 2);
        let read = attachment_contents(raw, &[1, 0, 2]);
        assert_eq!(read, vec![Some(b"PNG".to_vec()), Some(b"hello".to_vec()), None]);
        assert_eq!(listed[0], (5, HEXLOWER.encode(&Sha256::digest(b"hello"))));
        assert_eq!(listed[1], (3, HEXLOWER.encode(&Sha256::digest(b"PNG"))));
        assert_eq!(attachment_contents(b"", &[0]), vec![None]);
    }

    #[test]
    fn every_inline_text_part_is_kept_in_order() {
        let raw = b"From: a@b.test\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
Content-Type: text/plain\r\n\r\nbefore the picture\r\n--XX\r\nContent-Type: image/png\r\n\
Content-Disposition: inline; filename=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX\r\n\
Content-Type: text/plain\r\n\r\nafter the picture\r\n--XX--\r\n";
        let m = parse(raw).unwrap();
        assert!(m.text.contains("before the picture") && m.text.contains("after the picture"), "{:?}", m.text);
        assert!(m.text.find("before").unwrap() < m.text.find("after").unwrap());
        assert_eq!(m.attachments.len(), 1);
    }

    #[test]
    fn html_only_replies_keep_their_blocks() {
        let raw = b"From: a@b.test\r\nSubject: s\r\nContent-Type: text/html\r\n\r\n\
<div>Thank you!</div><hr><div><b>From:</b> Bob<br><b>Sent:</b> Monday<br><b>To:</b> support</div><div>old</div>";
        let m = parse(raw).unwrap();
        assert_eq!(m.text, "Thank you!\nFrom: Bob\nSent: Monday\nTo: support\nold");
        assert_eq!(crate::reply_text::visible_text(&m.text), "Thank you!");
    }

    #[test]
    fn east_asian_charsets_are_decoded() {
        // ISO-2022-JP in an encoded word and in the body; GB2312 and Big5 bodies.
        let raw = b"From: =?ISO-2022-JP?B?GyRCRURDZhsoQg==?= <t@b.test>\r\nSubject: =?ISO-2022-JP?B?GyRCJTUlXSE8JUgbKEI=?=\r\n\
Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n\x1b$B$3$s$K$A$O\x1b(B\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.subject, "サポート");
        assert_eq!(m.from.unwrap().name.as_deref(), Some("田中"));
        assert_eq!(m.text.trim(), "こんにちは");
        let gb =
            b"From: a@b.test\r\nSubject: s\r\nContent-Type: text/plain; charset=GB2312\r\n\r\n\xc4\xe3\xba\xc3\r\n";
        assert_eq!(parse(gb).unwrap().text.trim(), "你好");
        let big5 =
            b"From: a@b.test\r\nSubject: s\r\nContent-Type: text/plain; charset=Big5\r\n\r\n\xa7\x41\xa6\x6e\r\n";
        assert_eq!(parse(big5).unwrap().text.trim(), "你好");
    }

    #[test]
    fn a_second_from_or_a_garbage_line_never_replaces_the_sender() {
        let m = parse(b"From: alice@x.test\r\nFrom: mallory@evil.test\r\nSubject: s\r\n\r\nb").unwrap();
        assert_eq!(m.from.unwrap().address, "alice@x.test");
        assert!(m.defects.iter().any(|d| d.contains("2 From fields")), "{:?}", m.defects);
        let m = parse(b"From: alice@x.test\r\nFr om: mallory@evil.test\r\nSubject: s\r\n\r\nb").unwrap();
        assert_eq!(m.from.unwrap().address, "alice@x.test");
    }

    #[test]
    fn rfc2231_names_forwarded_messages_and_winmail_dat() {
        let raw = "From: a@b.test\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
Content-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\nContent-Type: application/pdf\r\n\
Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC%20rates%20; filename*1*=2026.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n\
From: c@d.test\r\nSubject: first forward\r\n\r\none\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\n\
From: e@f.test\r\nSubject: second forward\r\n\r\ntwo\r\n--XX\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\n\
Content-Disposition: attachment; filename=winmail.dat\r\nContent-Transfer-Encoding: base64\r\n\r\neJ8+IgAA\r\n--XX--\r\n";
        let m = parse(raw.as_bytes()).unwrap();
        let names: Vec<(Option<&str>, &str)> =
            m.attachments.iter().map(|a| (a.name.as_deref(), a.content_type.as_str())).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        assert_eq!(names[0], (Some("€ rates 2026.pdf"), "application/pdf"));
        assert_eq!(names.iter().filter(|(_, t)| *t == "message/rfc822").count(), 2, "{names:?}");
        let all: Vec<usize> = (0..m.attachments.len()).collect();
        let forwarded = m.attachments.iter().zip(attachment_contents(raw.as_bytes(), &all)).any(|(a, data)| {
            a.content_type == "message/rfc822" && data.is_some_and(|d| d.starts_with(b"From: c@d.test"))
        });
        assert!(forwarded);
        assert!(m.defects.iter().any(|d| d.contains("winmail.dat")), "{:?}", m.defects);
    }
}
