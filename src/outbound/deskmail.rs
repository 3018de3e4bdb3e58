//! Mail the desk sends that belongs to no ticket (admins' login alerts, digests, answers to
//! queries): composed now and queued in the caller's transaction, sent by the sender like any mail.

use rusqlite::Connection;

use super::compose::{Draft, compose};
use crate::config::Config;
use crate::message::parse::Mailbox;
use crate::store::{self, StoreError, write};
use crate::templates::Rendered;

/// One such mail: to `to` (one message; the first is `To`, the rest `Cc`), stored with `kind`.
pub struct DeskMail<'a> {
    pub kind: &'a str,
    pub to: &'a [String],
    pub reply_to: Option<&'a str>,
    /// In its Message-ID, with the time: what makes it unique (a server, a person, a period).
    pub key: &'a str,
    pub in_reply_to: Option<&'a str>,
    pub rendered: &'a Rendered,
    /// Auto-Submitted: "auto-generated" for scheduled mail, "auto-replied" for an answer.
    pub auto_submitted: &'a str,
}

/// Queues `mail`; `Ok(false)` when it could not be built (logged: addresses passed `check`).
pub fn queue(conn: &Connection, config: &Config, mail: &DeskMail<'_>, now: i64) -> Result<bool, StoreError> {
    let h = &config.helpdesk;
    let Some((first, rest)) = mail.to.split_first() else { return Ok(false) };
    let domain = h.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost");
    let instance = store::instance_token(conn)?;
    let message_id = format!("{}.{}.{now}.{instance}@{domain}", mail.kind, mail.key);
    let to = Mailbox { name: None, address: first.clone() };
    let cc: Vec<Mailbox> = rest.iter().map(|a| Mailbox { name: None, address: a.clone() }).collect();
    let draft = Draft {
        from_name: &h.name,
        from_address: &h.address,
        to: &to,
        cc: &cc,
        reply_to: mail.reply_to,
        attachments: &[],
        stand_in_key: [0; 16],
        message_id: &message_id,
        in_reply_to: mail.in_reply_to,
        references: &[],
        date: now,
        auto_submitted: Some(mail.auto_submitted),
        rendered: mail.rendered,
    };
    let composed = match compose(&draft) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(kind = mail.kind, error = %e, "cannot build the desk's mail");
            return Ok(false);
        }
    };
    let from = Mailbox { name: Some(h.name.clone()), address: h.address.clone() };
    let row = write::insert_message(
        conn,
        &write::NewMessage {
            ticket_id: None,
            direction: crate::domain::Direction::Out,
            message_id: &message_id,
            kind: mail.kind,
            internal: true,
            source: None,
            from: Some(&from),
            to: std::slice::from_ref(&to),
            cc: &cc,
            subject: &mail.rendered.subject,
            sent_at: Some(now),
            received_at: now,
            body_text: &mail.rendered.text,
            raw: Some(&composed.bytes),
            content_sha256: None,
        },
    )?;
    for a in mail.to {
        write::insert_outbox(conn, row, None, &h.address, a, now)?;
    }
    Ok(true)
}
