//! Turns a plan's mail intents into outbox rows, inside the ingest transaction.
//!
//! Each intent is rendered from its template, composed, stored as an outbound message and queued
//! once per recipient. Mail to technicians is one message per technician because each carries that
//! technician's own reply address as `Reply-To`. A template or address problem is recorded on the
//! ticket instead of failing the message: the ticket change stands either way.

use rusqlite::{Connection, OptionalExtension};
use tracing::warn;

use super::compose::{Draft, compose};
use crate::auth::{self, AddressKind};
use crate::inbound::parse::{Inbound, Mailbox};
use crate::inbound::record::Desk;
use crate::store::StoreError;
use crate::store::write::{self, NewMessage};
use crate::templates::{Context, DeskContext, ExtraContext, MessageContext, TicketContext};
use crate::threading::format_tag;
use crate::tickets::{MailKind, Plan};

/// Queues every mail of `plan` for `ticket`. Returns how many outbox rows were written.
pub fn queue(
    conn: &Connection,
    desk: &Desk<'_>,
    msg: &Inbound,
    plan: &Plan,
    ticket: i64,
    inbound_row: i64,
    now: i64,
) -> Result<usize, StoreError> {
    if plan.mails.is_empty() {
        return Ok(0);
    }
    let h = &desk.config.helpdesk;
    let ticket_ctx = ticket_context(conn, &h.tag, ticket)?;
    let mut queued = 0;
    for (n, mail) in plan.mails.iter().enumerate() {
        let Some(first) = mail.to.first() else { continue };
        let to_technician = mail.kind.to_technicians();
        let reply_address = to_technician
            .then(|| auth::ticket_address(desk.reply_secret, &h.address, AddressKind::Reply, ticket, &first.address));
        let ctx = Context {
            desk: DeskContext { name: h.name.clone(), tag: h.tag.clone(), address: h.address.clone() },
            ticket: ticket_ctx.clone(),
            message: MessageContext {
                subject: msg.subject.clone(),
                from: msg.from.as_ref().map(|f| f.address.clone()).unwrap_or_default(),
                from_name: msg.from.as_ref().and_then(|f| f.name.clone()).unwrap_or_default(),
                text: plan.text.clone(),
            },
            extra: ExtraContext {
                reply_address: reply_address.clone().unwrap_or_default(),
                note_address: if to_technician {
                    auth::ticket_address(desk.reply_secret, &h.address, AddressKind::Note, ticket, &first.address)
                } else {
                    String::new()
                },
                commands_help: crate::commands::HELP.into(),
                error_line: plan.rejected.as_ref().map(|e| e.line.clone()).unwrap_or_default(),
                error_reason: plan.rejected.as_ref().map(|e| e.reason.clone()).unwrap_or_default(),
                attachments: msg
                    .attachments
                    .iter()
                    .map(|a| a.name.clone().unwrap_or_else(|| "(unnamed)".into()))
                    .collect(),
            },
        };
        // The requester's conversation threads on what the requester saw; technicians' mail threads
        // on the message that caused it.
        let (in_reply_to, references) = match mail.kind {
            MailKind::Reply => requester_thread(conn, ticket)?,
            _ => {
                let mut refs = msg.references.clone();
                refs.push(msg.message_id.clone());
                (Some(msg.message_id.clone()), refs)
            }
        };
        let attachments = match mail.kind {
            MailKind::Acknowledgement | MailKind::CommandError => &[][..],
            _ => &msg.attachments[..],
        };
        let kind = mail.kind.template();
        let message_id = format!("{kind}.{ticket}.{inbound_row}.{n}.{}@{}", desk.instance, desk.domain());
        let composed = desk.templates.render(kind, &ctx).map_err(|e| e.to_string()).and_then(|rendered| {
            let draft = Draft {
                from_name: &h.name,
                from_address: &h.address,
                to: first,
                cc: &mail.to[1..],
                reply_to: reply_address.as_deref(),
                attachments,
                message_id: &message_id,
                in_reply_to: in_reply_to.as_deref(),
                references: &references,
                date: now,
                // RFC 3834: the acknowledgement answers a mail; notifications are generated. Relayed
                // replies carry a person's words and are neither.
                auto_submitted: match mail.kind {
                    MailKind::Acknowledgement => Some("auto-replied"),
                    MailKind::Reply => None,
                    _ => Some("auto-generated"),
                },
                rendered: &rendered,
            };
            compose(&draft).map(|raw| (rendered, raw)).map_err(|e| e.to_string())
        });
        let (rendered, raw) = match composed {
            Ok(ok) => ok,
            Err(e) => {
                warn!(ticket, kind, error = %e, "mail not sent");
                write::insert_event(
                    conn,
                    Some(ticket),
                    now,
                    "maildesk",
                    "mail-failed",
                    &format!("{kind} not sent: {e}"),
                )?;
                continue;
            }
        };
        let from = Mailbox { name: Some(h.name.clone()), address: h.address.clone() };
        let out_row = write::insert_message(
            conn,
            &NewMessage {
                ticket_id: Some(ticket),
                direction: "out",
                message_id: &message_id,
                kind,
                internal: to_technician,
                source: None,
                from: Some(&from),
                to: std::slice::from_ref(first),
                cc: &mail.to[1..],
                subject: &rendered.subject,
                sent_at: Some(now),
                received_at: now,
                body_text: &rendered.text,
                raw: &raw,
            },
        )?;
        for rcpt in &mail.to {
            write::insert_outbox(conn, out_row, Some(ticket), &h.address, &rcpt.address, now)?;
            queued += 1;
        }
    }
    Ok(queued)
}

fn ticket_context(conn: &Connection, tag: &str, id: i64) -> rusqlite::Result<TicketContext> {
    conn.query_row(
        "SELECT subject, status, priority, coalesce(requester, ''), coalesce(requester_name, ''), coalesce(assignee, '')
         FROM tickets WHERE id = ?1",
        [id],
        |r| {
            Ok(TicketContext {
                id,
                tag: format_tag(tag, id),
                subject: r.get(0)?,
                status: r.get(1)?,
                priority: r.get(2)?,
                requester: r.get(3)?,
                requester_name: r.get(4)?,
                assignee: r.get(5)?,
            })
        },
    )
}

/// In-Reply-To and References for mail to the requester: the messages the requester has seen on
/// this ticket (theirs and what maildesk sent them), newest last.
fn requester_thread(conn: &Connection, ticket: i64) -> rusqlite::Result<(Option<String>, Vec<String>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT message_id FROM messages
         WHERE ticket_id = ?1 AND internal = 0 AND kind IN ('request', 'reply', 'acknowledgement')
         ORDER BY id",
    )?;
    let ids: Vec<String> = stmt.query_map([ticket], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let last = conn
        .query_row(
            "SELECT message_id FROM messages WHERE ticket_id = ?1 AND internal = 0
             AND kind IN ('request', 'reply') AND direction = 'in' ORDER BY id DESC LIMIT 1",
            [ticket],
            |r| r.get(0),
        )
        .optional()?;
    Ok((last.or_else(|| ids.last().cloned()), ids))
}
