//! Turns a plan's mail intents into outbox rows, inside the ingest transaction.
//!
//! Each intent is stored as an outbound message and queued once per recipient; its text and bytes
//! are rendered and composed by the [`Composer`] and filled in before the commit. Mail to
//! technicians is one message per technician because each carries that technician's own reply
//! address as `Reply-To`. A template or address problem is recorded on the ticket instead of
//! failing the message: the ticket change stands either way.

use rusqlite::{Connection, OptionalExtension};
use tracing::warn;

use super::compose::Forwarded;
use super::composer::{Composer, Job, Mail};
use crate::auth::{self, AddressKind};
use crate::desk::Desk;
use crate::domain::MailKind;
use crate::message::parse::{Inbound, Mailbox};
use crate::store::StoreError;
use crate::store::write::{self, NewMessage};
use crate::templates::{Context, DeskContext, EscalationContext, ExtraContext, MessageContext, TicketContext};
use crate::threading::format_tag;
use crate::tickets::Plan;

/// Queues every mail of `plan` for `ticket`. Returns how many outbox rows were written.
pub fn queue(
    conn: &Connection,
    composer: &mut Composer<'_>,
    msg: &Inbound,
    plan: &Plan,
    ticket: i64,
    inbound_row: i64,
    now: i64,
) -> Result<usize, StoreError> {
    if plan.mails.is_empty() {
        return Ok(0);
    }
    let desk = composer.desk();
    let ticket_ctx = ticket_context(conn, desk.config, ticket)?;
    // Only files stored with the message are passed on: the sender reads them from there.
    let kept = plan.attachments_kept.as_deref().unwrap_or_default();
    let (forwarded, too_large) = forwardable(msg, kept, inbound_row, desk.config.limits.max_forward_bytes);
    let mut queued = 0;
    for (n, mail) in plan.mails.iter().enumerate() {
        let Some(first) = mail.to.first() else { continue };
        if let Some(reason) = rate_limited(conn, desk, mail.kind, ticket, &first.address, now)? {
            warn!(ticket, to = %first.address, %reason, "automatic mail suppressed");
            write::insert_event(conn, Some(ticket), now, "maildesk", crate::domain::EventKind::RateLimited, &reason)?;
            continue;
        }
        let to_technician = mail.kind.to_technicians();
        let addresses = to_technician.then(|| TechnicianAddresses::of(desk, ticket, &first.address));
        let message = MessageContext {
            subject: msg.subject.clone(),
            from: msg.from.as_ref().map(|f| f.address.clone()).unwrap_or_default(),
            from_name: msg.from.as_ref().and_then(|f| f.name.clone()).unwrap_or_default(),
            text: plan.text.clone(),
        };
        let ctx = context(
            desk,
            &ticket_ctx,
            message,
            addresses.as_ref(),
            ExtraContext {
                error_line: plan.rejected.as_ref().map(|e| e.line.clone()).unwrap_or_default(),
                error_reason: plan.rejected.as_ref().map(|e| e.reason.clone()).unwrap_or_default(),
                attachments: forwarded.iter().map(|a| a.name.clone().unwrap_or_else(|| "(unnamed)".into())).collect(),
                attachments_not_forwarded: too_large.clone(),
                notice: plan.notice.clone().unwrap_or_default(),
                ratings: if mail.kind == MailKind::Resolution {
                    let support = &desk.config.helpdesk.address;
                    crate::templates::rating_links(|score| {
                        auth::rating_address(desk.reply_secret, support, ticket, score)
                    })
                } else {
                    Vec::new()
                },
                ..ExtraContext::default()
            },
        );
        // The requester's conversation threads on what the requester saw; technicians' mail threads
        // on the message that caused it.
        let (in_reply_to, references) = match mail.kind {
            MailKind::Reply | MailKind::Resolution => requester_thread(conn, ticket)?,
            // Each technician's notifications of a ticket form one thread in their client, rooted
            // at the first one they got, whatever caused each.
            _ if to_technician => {
                let (root, last) = technician_thread(conn, ticket, &first.address)?;
                let mut refs: Vec<String> = root.iter().chain(last.iter()).cloned().collect();
                refs.dedup();
                refs.push(msg.message_id.clone());
                (Some(last.unwrap_or_else(|| msg.message_id.clone())), refs)
            }
            _ => {
                let mut refs = msg.references.clone();
                refs.push(msg.message_id.clone());
                (Some(msg.message_id.clone()), refs)
            }
        };
        let attachments = if mail.kind.is_automatic_answer() { Vec::new() } else { forwarded.clone() };
        let message_id = format!("{}.{ticket}.{inbound_row}.{n}.{}@{}", mail.kind, desk.instance, desk.domain());
        queued += queue_one(
            conn,
            composer,
            Mail {
                ticket,
                kind: mail.kind,
                to: mail.to.clone(),
                reply_to: addresses.map(|a| a.reply),
                ctx,
                message_id,
                in_reply_to,
                references,
                attachments,
                // RFC 3834: the acknowledgement answers a mail; notifications are generated.
                // Relayed replies carry a person's words and are neither.
                auto_submitted: match mail.kind {
                    MailKind::Acknowledgement => Some("auto-replied"),
                    MailKind::Reply => None,
                    _ => Some("auto-generated"),
                },
            },
            to_technician,
            now,
        )?;
    }
    Ok(queued)
}

/// The stored attachments (`kept`, positions among `msg`'s) passed on with the mails about it, in
/// order while their total stays within `limit` bytes; and the names of the rest, which stay on
/// the ticket. Servers refuse mail over 25-35 MB, and base64 adds a third.
fn forwardable(msg: &Inbound, kept: &[usize], inbound_row: i64, limit: usize) -> (Vec<Forwarded>, Vec<String>) {
    let mut forwarded = Vec::new();
    let mut too_large = Vec::new();
    let mut total = 0usize;
    for &part in kept {
        let Some(a) = msg.attachments.get(part) else { continue };
        if total + a.size > limit {
            too_large.push(format!("{} ({} bytes)", a.name.as_deref().unwrap_or("(unnamed)"), a.size));
            continue;
        }
        total += a.size;
        forwarded.push(Forwarded {
            name: a.name.clone(),
            content_type: a.content_type.clone(),
            source_message: inbound_row,
            part,
        });
    }
    (forwarded, too_large)
}

/// Whether an automatic mail would exceed `[limits]`; the reason when it would.
/// How many automatic answers (acknowledgements, command errors, status answers, decisions not
/// counted) `recipient` got
/// since `since`: what `limits.auto_replies_per_recipient_per_hour` counts.
pub fn automatic_mails_to(conn: &Connection, recipient: &str, since: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT count(*) FROM messages WHERE direction = 'out' AND to_addrs = ?1 AND sent_at > ?2
         AND kind IN ('acknowledgement', 'command-error', 'status-answer', 'approval-not-counted')",
    )?
    .query_row(rusqlite::params![recipient, since], |r| r.get(0))
}

fn rate_limited(
    conn: &Connection,
    desk: &Desk<'_>,
    kind: MailKind,
    ticket: i64,
    recipient: &str,
    now: i64,
) -> rusqlite::Result<Option<String>> {
    if !kind.is_automatic_answer() {
        return Ok(None);
    }
    let limits = &desk.config.limits;
    let since = now - 3600;
    let to_recipient = automatic_mails_to(conn, recipient, since)?;
    if to_recipient >= limits.auto_replies_per_recipient_per_hour as i64 {
        return Ok(Some(format!(
            "{} not sent: {recipient} already got {to_recipient} automatic mails this hour (limits.auto_replies_per_recipient_per_hour)",
            kind.template()
        )));
    }
    let on_ticket: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM messages WHERE direction = 'out' AND ticket_id = ?1 AND sent_at > ?2
         AND kind IN ('acknowledgement', 'command-error')",
        )?
        .query_row(rusqlite::params![ticket, since], |r| r.get(0))?;
    if on_ticket >= limits.auto_replies_per_ticket_per_hour as i64 {
        return Ok(Some(format!(
            "{} not sent: the ticket already caused {on_ticket} automatic mails this hour (limits.auto_replies_per_ticket_per_hour)",
            kind.template()
        )));
    }
    Ok(None)
}

/// Stores one message (its text still empty; `internal`: for technicians only) with an outbox row
/// per recipient, and hands it to `composer` to be rendered and composed before the commit. A
/// template or address problem withdraws the rows and becomes an event on the ticket. Returns the
/// number of outbox rows.
pub(super) fn queue_one(
    conn: &Connection,
    composer: &mut Composer<'_>,
    mail: Mail,
    internal: bool,
    now: i64,
) -> Result<usize, StoreError> {
    let h = &composer.desk().config.helpdesk;
    let Some(first) = mail.to.first() else { return Ok(0) };
    let from = Mailbox { name: Some(h.name.clone()), address: h.address.clone() };
    let out_row = write::insert_message(
        conn,
        &NewMessage {
            ticket_id: Some(mail.ticket),
            direction: crate::domain::Direction::Out,
            message_id: &mail.message_id,
            kind: mail.kind.template(),
            internal,
            source: None,
            from: Some(&from),
            to: std::slice::from_ref(first),
            cc: &mail.to[1..],
            subject: "",
            sent_at: Some(now),
            received_at: now,
            body_text: "",
            raw: None,
            content_sha256: None,
        },
    )?;
    for rcpt in &mail.to {
        write::insert_outbox(conn, out_row, Some(mail.ticket), &h.address, &rcpt.address, now)?;
    }
    let queued = mail.to.len();
    composer.submit(conn, Job { out_row, now, mail })?;
    Ok(queued)
}

/// Queues an SLA escalation for `ticket` to each recipient: one message each, so technicians get
/// their own reply address.
pub fn queue_escalation(
    conn: &Connection,
    composer: &mut Composer<'_>,
    ticket: i64,
    clock: &crate::sla::clock::Clock,
    due: &[(crate::sla::clock::Target, u32, Vec<u32>)],
    recipients: &[Mailbox],
    now: i64,
) -> Result<usize, StoreError> {
    let desk = composer.desk();
    let h = &desk.config.helpdesk;
    let ticket_ctx = ticket_context(conn, desk.config, ticket)?;
    let local = |t: Option<i64>| crate::templates::local_time(&h.timezone, t);
    let escalations: Vec<EscalationContext> = due
        .iter()
        .map(|(target, percent, _)| {
            let t = match target {
                crate::sla::clock::Target::FirstResponse => &clock.first_response,
                crate::sla::clock::Target::Resolution => &clock.resolution,
            };
            let left = t.target_secs - t.elapsed_secs;
            EscalationContext {
                target: target.label().to_string(),
                percent: *percent,
                target_time: human_duration(t.target_secs),
                elapsed: human_duration(t.elapsed_secs),
                due: local(t.due_at),
                overdue: left < 0,
                remaining: if left >= 0 {
                    human_duration(left)
                } else {
                    format!("overdue by {}", human_duration(-left))
                },
            }
        })
        .collect();
    let fired: i64 = conn
        .prepare_cached("SELECT count(*) FROM sla_fired WHERE ticket_id = ?1")?
        .query_row([ticket], |r| r.get(0))?;
    let mut queued = 0;
    for (n, rcpt) in recipients.iter().enumerate() {
        // An escalation may go to an address that is no technician's (a manager): no reply address.
        let addresses =
            h.technicians.contains(&rcpt.address).then(|| TechnicianAddresses::of(desk, ticket, &rcpt.address));
        let extra = ExtraContext { escalations: escalations.clone(), ..ExtraContext::default() };
        let ctx = context(desk, &ticket_ctx, MessageContext::default(), addresses.as_ref(), extra);
        let message_id = format!("escalation.{ticket}.{fired}.{n}.{}@{}", desk.instance, desk.domain());
        let mut thread = technician_thread(conn, ticket, &rcpt.address)?;
        if thread.0 == thread.1 {
            thread.1 = None;
        }
        queued += queue_one(
            conn,
            composer,
            Mail {
                ticket,
                kind: MailKind::Escalation,
                to: vec![rcpt.clone()],
                reply_to: addresses.map(|a| a.reply),
                ctx,
                message_id,
                in_reply_to: thread.1.clone().or_else(|| thread.0.clone()),
                references: thread.0.iter().chain(thread.1.iter()).cloned().collect::<Vec<_>>(),
                attachments: Vec::new(),
                auto_submitted: Some("auto-generated"),
            },
            true,
            now,
        )?;
    }
    Ok(queued)
}

/// A technician's per-ticket addresses: replies to the first reach the requester, mail to the second
/// is an internal note.
pub(super) struct TechnicianAddresses {
    pub(super) reply: String,
    pub(super) note: String,
}

impl TechnicianAddresses {
    pub(super) fn of(desk: &Desk<'_>, ticket: i64, technician: &str) -> TechnicianAddresses {
        let address =
            |kind| auth::ticket_address(desk.reply_secret, &desk.config.helpdesk.address, kind, ticket, technician);
        TechnicianAddresses { reply: address(AddressKind::Reply), note: address(AddressKind::Note) }
    }
}

/// A template's context: the desk, the ticket, the message that caused the mail, and what is
/// particular to this mail; a technician's addresses where the mail goes to one.
pub(super) fn context(
    desk: &Desk<'_>,
    ticket: &TicketContext,
    message: MessageContext,
    technician: Option<&TechnicianAddresses>,
    extra: ExtraContext,
) -> Context {
    let h = &desk.config.helpdesk;
    Context {
        desk: DeskContext { name: h.name.clone(), tag: h.tag.clone(), address: h.address.clone() },
        ticket: ticket.clone(),
        message,
        extra: ExtraContext {
            reply_address: technician.map(|t| t.reply.clone()).unwrap_or_default(),
            note_address: technician.map(|t| t.note.clone()).unwrap_or_default(),
            commands_help: crate::commands::HELP.into(),
            ..extra
        },
    }
}

/// The canned reply `name` rendered for `ticket`, for a technician's mail (`#reply NAME`). Its
/// context never holds a technician's per-ticket addresses: the text goes to the requester.
pub fn canned_reply(
    conn: &Connection,
    desk: &Desk<'_>,
    ticket: i64,
    name: &str,
    msg: &Inbound,
) -> Result<Result<String, String>, StoreError> {
    let ticket_ctx = ticket_context(conn, desk.config, ticket)?;
    let message = MessageContext {
        subject: msg.subject.clone(),
        from: msg.from.as_ref().map(|f| f.address.clone()).unwrap_or_default(),
        from_name: msg.from.as_ref().and_then(|f| f.name.clone()).unwrap_or_default(),
        text: String::new(),
    };
    let ctx = context(desk, &ticket_ctx, message, None, ExtraContext::default());
    Ok(desk.templates.render_canned(name, &ctx).map(|t| t.trim().to_string()).map_err(|e| e.to_string()))
}

/// "45m", "2h 05m", "3d 4h": how long, for people.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, m) => format!("{h}h {m:02}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

pub(super) fn ticket_context(
    conn: &Connection,
    config: &crate::config::Config,
    id: i64,
) -> rusqlite::Result<TicketContext> {
    let tag = &config.helpdesk.tag;
    conn.prepare_cached("SELECT subject, status, priority, coalesce(requester, ''), coalesce(requester_name, ''), coalesce(assignee, ''), queue, coalesce(type, ''), coalesce(service, '')
         FROM tickets WHERE id = ?1")?.query_row(
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
                queue: config.queue(r.get::<_, Option<String>>(6)?.as_deref()).1.name.clone(),
                ticket_type: r.get(7)?,
                service: r.get(8)?,
            })
        },
    )
}

/// In-Reply-To and References for mail to the requester: the messages the requester has seen on
/// this ticket (theirs and what maildesk sent them), newest last.
/// The first and the latest notification `technician` got on `ticket`: what their next one threads on.
pub(super) fn technician_thread(
    conn: &Connection,
    ticket: i64,
    technician: &str,
) -> rusqlite::Result<(Option<String>, Option<String>)> {
    let one = |order: &str| -> rusqlite::Result<Option<String>> {
        conn.prepare_cached(&format!(
            "SELECT message_id FROM messages WHERE ticket_id = ?1 AND direction = 'out' AND internal = 1
             AND to_addrs = ?2 ORDER BY id {order} LIMIT 1"
        ))?
        .query_row(rusqlite::params![ticket, technician], |r| r.get(0))
        .optional()
    };
    Ok((one("ASC")?, one("DESC")?))
}

pub(super) fn requester_thread(conn: &Connection, ticket: i64) -> rusqlite::Result<(Option<String>, Vec<String>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT message_id FROM messages
         WHERE ticket_id = ?1 AND internal = 0 AND kind IN ('request', 'reply', 'acknowledgement')
         ORDER BY id",
    )?;
    let ids: Vec<String> = stmt.query_map([ticket], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let last = conn
        .prepare_cached(
            "SELECT message_id FROM messages WHERE ticket_id = ?1 AND internal = 0
             AND kind IN ('request', 'reply') AND direction = 'in' ORDER BY id DESC LIMIT 1",
        )?
        .query_row([ticket], |r| r.get(0))
        .optional()?;
    Ok((last.or_else(|| ids.last().cloned()), ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::domain::{Direction, Priority};
    use crate::templates::Templates;

    const CONFIG: &str = r#"
[helpdesk]
name = "ACME IT"
tag = "ACME"
address = "support@acme.test"
templates = "templates"
[imap]
host = "127.0.0.1"
security = "none"
username = "support@acme.test"
password = "x"
[smtp]
host = "127.0.0.1"
security = "none"
[limits]
auto_replies_per_recipient_per_hour = 2
auto_replies_per_ticket_per_hour = 3
"#;

    /// An automatic mail of `kind` to `to` on `ticket`, sent at `at`.
    fn sent(conn: &Connection, ticket: i64, kind: MailKind, to: &str, at: i64) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let rcpt = Mailbox { name: None, address: to.into() };
        write::insert_message(
            conn,
            &NewMessage {
                ticket_id: Some(ticket),
                direction: Direction::Out,
                message_id: &format!("m{n}@acme.test"),
                kind: kind.template(),
                internal: false,
                source: None,
                from: None,
                to: std::slice::from_ref(&rcpt),
                cc: &[],
                subject: "",
                sent_at: Some(at),
                received_at: at,
                body_text: "",
                raw: None,
                content_sha256: None,
            },
        )
        .unwrap();
    }

    #[test]
    fn automatic_answers_are_limited_per_recipient_and_per_ticket_within_an_hour() {
        let config =
            Config::from_str(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("m.toml"), CONFIG).unwrap();
        let templates = Templates::load(&config.helpdesk.templates).unwrap();
        let desk = Desk {
            config: &config,
            templates: &templates,
            instance: "i",
            reply_secret: b"0123456789abcdef",
            home_queue: 0,
        };
        let conn = crate::store::open_in_memory();
        let new = |n: &str| write::insert_ticket(&conn, n, None, (Priority::P3, None), None, false, 0).unwrap();
        let (one, two) = (new("one"), new("two"));
        let now = 10_000;
        let limited = |kind, ticket, to: &str| rate_limited(&conn, &desk, kind, ticket, to, now).unwrap();

        // An hour ago does not count; two within the hour to robot@ reach the per-recipient limit.
        sent(&conn, one, MailKind::Acknowledgement, "robot@x.test", now - 3601);
        sent(&conn, one, MailKind::Acknowledgement, "robot@x.test", now - 100);
        assert_eq!(limited(MailKind::Acknowledgement, two, "robot@x.test"), None);
        sent(&conn, two, MailKind::CommandError, "robot@x.test", now - 50);
        let reason = limited(MailKind::Acknowledgement, two, "robot@x.test").unwrap();
        assert!(reason.contains("limits.auto_replies_per_recipient_per_hour"), "{reason}");

        // Notifications and relayed replies are not automatic answers: never limited here.
        assert_eq!(limited(MailKind::Reply, two, "robot@x.test"), None);
        assert_eq!(limited(MailKind::NewTicket, two, "robot@x.test"), None);

        // Three automatic mails on one ticket, to anyone, reach the per-ticket limit.
        sent(&conn, one, MailKind::CommandError, "tech@acme.test", now - 10);
        assert_eq!(limited(MailKind::CommandError, one, "other@x.test"), None);
        sent(&conn, one, MailKind::Acknowledgement, "other@x.test", now - 5);
        let reason = limited(MailKind::CommandError, one, "new@x.test").unwrap();
        assert!(reason.contains("limits.auto_replies_per_ticket_per_hour"), "{reason}");
        assert_eq!(limited(MailKind::CommandError, two, "new@x.test"), None, "another ticket is not limited");
    }
}
