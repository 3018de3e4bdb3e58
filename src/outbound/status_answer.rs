//! The answer to a requester's status request (see `inbound::status`): their open tickets, to
//! their own address only, only when they have tickets here, within the automatic-mail limits.

use rusqlite::Connection;

use super::deskmail::{self, DeskMail};
use crate::desk::Desk;
use crate::message::parse::Inbound;
use crate::store::StoreError;
use crate::templates::Rendered;

/// The stored kind of an answer (counted by the automatic-mail limits).
pub const ANSWER_KIND: &str = "status-answer";

/// Queues the list of the sender's open tickets to the sender, if they have tickets here, the mail
/// is not automatic, and the automatic-mail limit allows it. Returns whether it was queued.
pub fn queue(conn: &Connection, desk: &Desk<'_>, msg: &Inbound, now: i64) -> Result<bool, StoreError> {
    let Some(from) = msg.from.as_ref().map(|f| f.address.clone()) else { return Ok(false) };
    if crate::message::classify::suppress_auto_reply(msg, &desk.addresses()).is_some() {
        return Ok(false);
    }
    let h = &desk.config.helpdesk;
    let tickets: Vec<(i64, String, String, Option<String>, i64)> = conn
        .prepare_cached(
            "SELECT id, subject, status, assignee, updated_at FROM tickets
             WHERE requester = ?1 AND merged_into IS NULL AND automatic = 0 ORDER BY id DESC LIMIT 200",
        )?
        .query_map([&from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if tickets.is_empty() {
        tracing::info!(%from, "a status request from someone with no tickets here: not answered");
        return Ok(false);
    }
    let sent_this_hour = super::mails::automatic_mails_to(conn, &from, now - 3600)?;
    if sent_this_hour >= i64::from(desk.config.limits.auto_replies_per_recipient_per_hour) {
        tracing::warn!(%from, "status request not answered: the automatic-mail limit for this address is reached");
        return Ok(false);
    }
    let open: Vec<&(i64, String, String, Option<String>, i64)> =
        tickets.iter().filter(|t| t.2 == "open" || t.2 == "pending").collect();
    let mut text = if open.is_empty() {
        "You have no open tickets with us right now.\n".to_string()
    } else {
        format!("Your open tickets ({}):\n\n", open.len())
    };
    for (id, subject, status, assignee, updated) in &open {
        let who = match assignee {
            Some(_) => "a technician is on it",
            None => "waiting for a technician",
        };
        let status = if status == "pending" { "waiting for your answer" } else { "open" };
        text.push_str(&format!(
            "  {} {subject}\n    {status}, {who}; last update {}\n",
            crate::threading::format_tag(&h.tag, *id),
            crate::templates::local_time(&h.timezone, Some(*updated))
        ));
    }
    text.push_str(&format!("\nReply on a ticket's own thread to add to it.\n--\n{}\n", h.name));
    let rendered = Rendered { subject: format!("{}: your tickets", h.name), text, html: None };
    let key = msg.message_id.chars().filter(|c| c.is_ascii_alphanumeric()).take(24).collect::<String>();
    let mail = DeskMail {
        kind: ANSWER_KIND,
        to: std::slice::from_ref(&from),
        reply_to: None,
        key: &key,
        in_reply_to: Some(&msg.message_id),
        rendered: &rendered,
        auto_submitted: "auto-replied",
    };
    deskmail::queue(conn, desk.config, &mail, now)
}
