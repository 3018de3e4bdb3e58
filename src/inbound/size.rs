//! The size limits (`[limits]`): what of a message is stored, and what its sender is told. Pure.
//!
//! A message over `max_message_mb` still opens or joins its ticket, but only its header block and
//! text are kept (the original stays in the mailbox) and no attachment is stored. Otherwise
//! attachments are stored in order while they fit `max_attachments` and `max_attachment_mb`; the
//! rest are named on the ticket and to the sender. Only stored attachments are forwarded.

use crate::config::Limits;
use crate::message::parse::Attachment;

/// What of one message is stored.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Kept<'a> {
    /// The raw bytes stored: all of them, or the header block of an oversized message.
    pub(super) raw: &'a [u8],
    /// The size of the message as received.
    pub(super) received: usize,
    pub(super) oversized: bool,
    /// The positions of the attachments stored.
    pub(super) attachments: Vec<usize>,
    /// The attachments not stored, as "name (N bytes)".
    pub(super) skipped: Vec<String>,
}

/// Applies the limits to a message of `raw` bytes with `attachments`.
pub(super) fn keep<'a>(raw: &'a [u8], attachments: &[Attachment], limits: &Limits) -> Kept<'a> {
    let oversized = raw.len() > limits.max_message_bytes;
    let header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).unwrap_or(raw.len().min(64 * 1024));
    let stored = if oversized { &raw[..header_end.min(raw.len())] } else { raw };
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    let mut bytes = 0usize;
    for (i, a) in attachments.iter().enumerate() {
        if oversized || i >= limits.max_attachments || bytes + a.size > limits.max_attachment_bytes {
            let name = a.name.as_deref().unwrap_or("(unnamed)");
            skipped.push(format!("{name} ({} bytes)", a.size));
            continue;
        }
        bytes += a.size;
        kept.push(i);
    }
    Kept { raw: stored, received: raw.len(), oversized, attachments: kept, skipped }
}

impl Kept<'_> {
    /// What the ticket records about the limits, if anything was left out.
    pub(super) fn events(&self) -> Vec<(crate::domain::EventKind, String)> {
        let mut events = Vec::new();
        if self.oversized {
            events.push((
                crate::domain::EventKind::Oversized,
                format!(
                    "message of {} bytes exceeds limits.max_message_mb: its text is kept, the original stays in the mailbox, attachments were not stored",
                    self.received
                ),
            ));
        }
        if !self.skipped.is_empty() {
            events.push((
                crate::domain::EventKind::AttachmentsSkipped,
                format!("attachments not stored (limits): {}", self.skipped.join(", ")),
            ));
        }
        events
    }

    /// What the people mailed about this message are told, if anything was left out.
    pub(super) fn notice(&self, limits: &Limits) -> Option<String> {
        if self.oversized {
            Some(format!(
                "Your message was larger than {} MB, so only its text was kept; please send attachments in smaller mails or another way.",
                limits.max_message_bytes / (1024 * 1024)
            ))
        } else if !self.skipped.is_empty() {
            Some(format!("These attachments were over the size limits and were not kept: {}.", self.skipped.join(", ")))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_message_bytes: usize, max_attachments: usize, max_attachment_bytes: usize) -> Limits {
        Limits {
            auto_replies_per_recipient_per_hour: 10,
            auto_replies_per_ticket_per_hour: 10,
            max_message_bytes,
            max_attachments,
            max_attachment_bytes,
            max_forward_bytes: 15 << 20,
            max_watchers_per_message: 10,
            max_watchers_per_ticket: 50,
        }
    }

    fn attachment(name: &str, size: usize) -> Attachment {
        Attachment::describe(Some(name.into()), "application/octet-stream".into(), &vec![0; size])
    }

    #[test]
    fn attachments_are_kept_in_order_while_they_fit() {
        let raw = b"Subject: x\r\n\r\nbody";
        let a = [attachment("a", 40), attachment("b", 70), attachment("c", 50), attachment("d", 1)];
        let k = keep(raw, &a, &limits(1 << 20, 3, 100));
        assert_eq!(k.raw, raw);
        assert!(!k.oversized);
        // b would pass 100 bytes; d is the fourth of at most three.
        assert_eq!(k.attachments, vec![0, 2]);
        assert_eq!(k.skipped, vec!["b (70 bytes)", "d (1 bytes)"]);
        assert_eq!(k.events().len(), 1);
        let notice = k.notice(&limits(1 << 20, 3, 100)).unwrap();
        assert!(notice.contains("b (70 bytes), d (1 bytes)"), "{notice}");
    }

    #[test]
    fn an_oversized_message_keeps_its_header_block_only_and_no_attachment() {
        let raw = b"Subject: big\r\nFrom: a@x.test\r\n\r\nlots of text";
        let k = keep(raw, &[attachment("a", 1)], &limits(10, 50, 1 << 20));
        assert_eq!(k.raw, b"Subject: big\r\nFrom: a@x.test\r\n\r\n");
        assert!(k.oversized && k.attachments.is_empty());
        let kinds: Vec<_> = k.events().into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds, vec![crate::domain::EventKind::Oversized, crate::domain::EventKind::AttachmentsSkipped]);
        assert!(k.notice(&limits(10, 50, 1 << 20)).unwrap().starts_with("Your message was larger than 0 MB"));
    }

    #[test]
    fn within_every_limit_nothing_is_said() {
        let k = keep(b"a\r\n\r\nb", &[attachment("a", 5)], &limits(1 << 20, 50, 1 << 20));
        assert_eq!((k.attachments.clone(), k.events().is_empty(), k.notice(&limits(1, 1, 1))), (vec![0], true, None));
    }
}
