//! The pure first step of ingest: a fetched message parsed, its new text cut from the quotes, and
//! its content digest, owned so that the watcher can prepare the next batch while one is written.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::message::parse::{Inbound, ParseError, parse};

/// One message as fetched from IMAP.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// A fetched message after the pure first step.
pub(super) struct Parsed<'a> {
    pub(super) uid: u32,
    pub(super) raw: &'a [u8],
    pub(super) parsed: ParsedMessage,
}

/// The pure first step's result, owned: the watcher parses the next batch while this one is
/// written (see [`parse_batch`]).
pub struct ParsedMessage {
    pub(super) msg: Result<Inbound, ParseError>,
    /// What the sender wrote in this message, without quotes and signature (see `reply_text`).
    pub(super) visible: String,
    /// What makes this message this message (see [`content_digest`]).
    pub(super) digest: String,
}

/// Parses a whole batch, for [`record_batch`]'s `parsed_ahead`.
pub fn parse_batch(batch: &[Fetched]) -> Vec<ParsedMessage> {
    batch.iter().map(|m| parse_message(&m.raw)).collect()
}

/// Never panics: every message of a batch must reach the writer, or the batch would commit without
/// it. (`parse` survives mail-parser's panics itself; this also covers quote stripping.)
fn parse_message(raw: &[u8]) -> ParsedMessage {
    let work = || {
        let msg = parse(raw);
        let visible = msg.as_ref().map(|msg| crate::reply_text::visible_text(&msg.text)).unwrap_or_default();
        let digest = msg.as_ref().map(|m| content_digest(m, &visible)).unwrap_or_default();
        (msg, visible, digest)
    };
    let (msg, visible, digest) =
        catch_unwind(AssertUnwindSafe(work)).unwrap_or((Err(ParseError::ParserPanic), String::new(), String::new()));
    ParsedMessage { msg, visible, digest }
}

/// The digest that decides whether two messages with one Message-ID are the same message: the
/// sender, the Date, the new text (whitespace collapsed, so a list's re-wrapping or footer, which
/// quote stripping removes, does not count) and every attachment's digest. The same mail fetched
/// again (another UID, a new UIDVALIDITY, a copy through a list) has the same digest; a scanner's
/// next scan or a monitor's next alert under a reused Message-ID does not.
pub fn content_digest(msg: &Inbound, visible: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(msg.from.as_ref().map(|f| f.address.as_str()).unwrap_or("").as_bytes());
    h.update([0]);
    h.update(msg.date.unwrap_or(0).to_le_bytes());
    for word in visible.split_whitespace() {
        h.update(word.as_bytes());
        h.update([b' ']);
    }
    h.update([0]);
    for a in &msg.attachments {
        h.update(a.sha256.as_bytes());
    }
    data_encoding::HEXLOWER.encode(&h.finalize())
}

pub(super) fn parse_fetched(m: &Fetched) -> Parsed<'_> {
    Parsed { uid: m.uid, raw: &m.raw, parsed: parse_message(&m.raw) }
}
