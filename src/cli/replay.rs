//! `maildesk replay --dry-run FILE.mbox`: what the current config would do with past mail. Each
//! message goes through the daemon's own path (parse, classify, thread, route, decide, apply, mail
//! made) inside one transaction that is rolled back: nothing is written and nothing is sent. The
//! messages thread on the desk's tickets as they stand, and on each other in order.

use std::io::Write;
use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::config::Config;
use crate::inbound::record::{Outcome, record_for_replay};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// An mbox file (or one message as .eml).
    pub file: PathBuf,
    /// Required: replay only ever shows, it never writes or sends.
    #[arg(long, required = true)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

/// What one message would do.
#[derive(Debug, Serialize)]
pub struct Replayed {
    /// Its position in the file, from 1.
    pub index: usize,
    pub message_id: Option<String>,
    pub from: Option<String>,
    pub subject: Option<String>,
    /// new-ticket, existing-ticket, duplicate, quarantined, query, approval.
    pub outcome: String,
    /// What the message was taken for (request, reply, note, bounce, ...), or why it was set aside.
    pub detail: String,
    pub ticket: Option<TicketAfter>,
    /// The mails it would cause, in the order queued.
    pub mails: Vec<MailOut>,
    /// Whether the sender would get an acknowledgement.
    pub acknowledged: bool,
    /// The events it would record (kind: detail).
    pub events: Vec<String>,
}

/// The ticket as the message would leave it.
#[derive(Debug, Serialize)]
pub struct TicketAfter {
    pub id: i64,
    pub status: String,
    pub priority: String,
    pub queue: String,
    pub service: Option<String>,
    #[serde(rename = "type")]
    pub ticket_type: Option<String>,
    pub assignee: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MailOut {
    pub kind: String,
    pub to: String,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let data = std::fs::read(&args.file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let messages = crate::message::mbox::split(&data);
    let templates = crate::templates::Templates::load_desk(config)?;
    let db = &config.helpdesk.database;
    // A desk not started yet replays on an empty database in memory.
    let mut conn = if db.exists() { crate::store::open_existing(db)? } else { crate::store::open_scratch()? };
    // Everything below, keys included, happens in this transaction, and it is never committed.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let instance = crate::store::instance_token(&tx)?;
    let reply_secret = crate::store::reply_secret(&tx, config.security.reply_secret_file.as_deref())?;
    let desk = crate::desk::Desk {
        config,
        templates: &templates,
        instance: &instance,
        reply_secret: &reply_secret,
        home_queue: 0,
    };
    let now = crate::store::now();
    let mut all = Vec::new();
    for (i, raw) in messages.into_iter().enumerate() {
        let mark = marks(&tx)?;
        let headers = crate::message::parse::parse(&raw).ok();
        let outcome = record_for_replay(&tx, &desk, i as u32 + 1, raw, now)?;
        all.push(replayed(&tx, config, i + 1, headers.as_ref(), &outcome, mark)?);
    }
    drop(tx);
    if args.json {
        return super::json_out(out, &all);
    }
    for r in &all {
        human(config, r, out)?;
    }
    writeln!(out, "{} message(s) replayed; nothing was written and nothing was sent.", all.len())?;
    Ok(())
}

/// The last outbox row and event before a message: what it adds comes after.
fn marks(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    // A bare max(id) is one step down the table's b-tree; wrapped in an expression it is a scan.
    let last = |table: &str| -> rusqlite::Result<i64> {
        conn.prepare_cached(&format!("SELECT max(id) FROM {table}"))?
            .query_row([], |r| r.get::<_, Option<i64>>(0))
            .map(Option::unwrap_or_default)
    };
    Ok((last("outbox")?, last("events")?))
}

fn replayed(
    conn: &Connection,
    config: &Config,
    index: usize,
    msg: Option<&crate::message::parse::Inbound>,
    outcome: &Outcome,
    (outbox, events): (i64, i64),
) -> anyhow::Result<Replayed> {
    let (name, detail, ticket) = match outcome {
        Outcome::Ticket { id, created, kind, .. } => {
            (if *created { "new-ticket" } else { "existing-ticket" }, kind.to_string(), Some(*id))
        }
        Outcome::Duplicate => ("duplicate", "already recorded: the desk has this message".into(), None),
        Outcome::Quarantined { reason } => ("quarantined", reason.clone(), None),
        Outcome::Query { answered } => ("query", if *answered { "answered" } else { "not answered" }.into(), None),
        Outcome::Approval { ticket, counted, .. } => {
            ("approval", if *counted { "counted" } else { "not counted" }.into(), *ticket)
        }
    };
    let ticket = match ticket {
        Some(id) => conn
            .query_row(
                "SELECT status, priority, queue, service, type, assignee FROM tickets WHERE id = ?1",
                [id],
                |r| {
                    Ok(TicketAfter {
                        id,
                        status: r.get(0)?,
                        priority: r.get(1)?,
                        queue: config.queue(r.get::<_, Option<String>>(2)?.as_deref()).1.name.clone(),
                        service: r.get(3)?,
                        ticket_type: r.get(4)?,
                        assignee: r.get(5)?,
                    })
                },
            )
            .optional()?,
        None => None,
    };
    let mails: Vec<MailOut> = conn
        .prepare(
            "SELECT m.kind, o.recipient FROM outbox o JOIN messages m ON m.id = o.message_id
             WHERE o.id > ?1 ORDER BY o.id",
        )?
        .query_map([outbox], |r| Ok(MailOut { kind: r.get(0)?, to: r.get(1)? }))?
        .collect::<rusqlite::Result<_>>()?;
    let events: Vec<String> = conn
        .prepare("SELECT kind, detail FROM events WHERE id > ?1 ORDER BY id")?
        .query_map([events], |r| Ok(format!("{}: {}", r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Replayed {
        index,
        message_id: msg.map(|m| m.message_id.clone()),
        from: msg.and_then(|m| m.from.as_ref().map(|f| f.address.clone())),
        subject: msg.map(|m| m.subject.clone()),
        outcome: name.into(),
        detail,
        acknowledged: mails.iter().any(|m| m.kind == "acknowledgement"),
        ticket,
        mails,
        events,
    })
}

fn human(config: &Config, r: &Replayed, out: &mut dyn Write) -> anyhow::Result<()> {
    let safe = |s: &Option<String>| super::terminal_safe(s.as_deref().unwrap_or("-"));
    writeln!(out, "#{} from {}: {}", r.index, safe(&r.from), safe(&r.subject))?;
    match &r.ticket {
        Some(t) => writeln!(
            out,
            "   {} {} ({}): status {}, priority {}, queue {}, service {}, type {}, assignee {}",
            r.outcome,
            crate::threading::format_tag(&config.helpdesk.tag, t.id),
            r.detail,
            t.status,
            t.priority,
            t.queue,
            t.service.as_deref().unwrap_or("-"),
            t.ticket_type.as_deref().unwrap_or("-"),
            t.assignee.as_deref().unwrap_or("-")
        )?,
        None => writeln!(out, "   {}: {}", r.outcome, super::terminal_safe(&r.detail))?,
    }
    writeln!(out, "   acknowledged: {}", if r.acknowledged { "yes" } else { "no" })?;
    for m in &r.mails {
        writeln!(out, "   mail {} -> {}", m.kind, m.to)?;
    }
    for e in &r.events {
        writeln!(out, "   event {}", super::terminal_safe(e))?;
    }
    writeln!(out)?;
    Ok(())
}
