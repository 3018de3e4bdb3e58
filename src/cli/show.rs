//! `maildesk show N`: one ticket, its messages in order, deliveries and events.

use std::io::Write;

use anyhow::bail;

use super::{json_out, local};
use crate::config::Config;
use crate::store::{self, read};

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: i64,
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Args { id, json } = args;
    let conn = store::open_existing(&config.helpdesk.database)?;
    let Some(mut view) = read::ticket(&conn, *id)? else { bail!("ticket {id} does not exist") };
    view.ticket.queue = Some(config.queue(view.ticket.queue.as_deref()).1.name.clone());
    if *json {
        return json_out(out, &view);
    }
    show_human(config, &view, out)
}

fn show_human(config: &Config, v: &read::TicketView, out: &mut dyn Write) -> anyhow::Result<()> {
    let t = &v.ticket;
    writeln!(out, "{} {}", crate::threading::format_tag(&config.helpdesk.tag, t.id), t.subject)?;
    writeln!(
        out,
        "status {}  priority {}  {}{}requester {}  assignee {}",
        t.status,
        t.priority,
        t.ticket_type.map(|t| format!("type {t}  ")).unwrap_or_default(),
        match t.queue.as_deref().filter(|_| config.queues.len() > 1) {
            Some(q) => format!("queue {q}  "),
            None => String::new(),
        },
        t.requester.as_deref().unwrap_or("-"),
        t.assignee.as_deref().unwrap_or("-")
    )?;
    if v.time.total_minutes > 0 {
        let text = |m: i64| crate::commands::minutes_text(m.clamp(0, u32::MAX as i64) as u32);
        let each: Vec<String> =
            v.time.by_technician.iter().map(|t| format!("{} {}", t.technician, text(t.minutes))).collect();
        writeln!(out, "time spent {} ({})", text(v.time.total_minutes), each.join(", "))?;
    }
    if !v.watchers.is_empty() {
        writeln!(out, "watchers {}", v.watchers.join(", "))?;
    }
    if let Some(s) = &t.service {
        let owner = config.service(Some(s)).and_then(|s| s.owner.as_deref()).map(|o| format!(" (owner {o})"));
        writeln!(out, "service {s}{}", owner.unwrap_or_default())?;
    }
    let tag = |id: i64| crate::threading::format_tag(&config.helpdesk.tag, id);
    if let Some(p) = t.problem {
        writeln!(out, "linked to problem {}", tag(p))?;
    }
    if let Some(p) = t.parent {
        writeln!(out, "task of request {}", tag(p))?;
    }
    let list = |title: &str, items: &[crate::store::itsm::Linked], out: &mut dyn Write| -> anyhow::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let done = items.iter().filter(|i| i.status.is_done()).count();
        writeln!(out, "{title} ({done} of {} done):", items.len())?;
        for i in items {
            writeln!(out, "  {} {}  [{}]", tag(i.id), i.subject, i.status)?;
        }
        Ok(())
    };
    list("linked incidents", &v.incidents, out)?;
    list("tasks", &v.tasks, out)?;
    if let Some(a) = t.approval {
        writeln!(out, "change version {}: {a}", t.change_version)?;
    }
    for d in &v.approvals {
        let reason = if d.reason.is_empty() { String::new() } else { format!(": {}", d.reason) };
        writeln!(
            out,
            "  version {} {} {} by {} at {}{reason}",
            d.version,
            d.decision,
            d.approver,
            d.proof,
            local(config, &crate::domain::rfc3339(d.at))
        )?;
    }
    if let Some(n) = t.merged_into {
        writeln!(out, "merged into ticket {n}")?;
    }
    if let Some(n) = t.follow_up_of {
        writeln!(out, "follow-up of ticket {n}")?;
    }
    if let Some(f) = &t.first_response_at {
        writeln!(out, "first response {}", local(config, f))?;
    }
    writeln!(out, "opened {}  updated {}", local(config, &t.created_at), local(config, &t.updated_at))?;
    for m in &v.messages {
        let arrow = if m.direction == crate::domain::Direction::In { "<-" } else { "->" };
        let internal = if m.internal { " (internal)" } else { "" };
        writeln!(
            out,
            "\n{arrow} {} {} [{}]{internal}  message {}",
            m.direction.as_str().to_uppercase(),
            local(config, &m.date),
            m.kind,
            m.id
        )?;
        writeln!(out, "   From: {}", m.from.as_deref().unwrap_or("-"))?;
        writeln!(out, "   To: {}", m.to)?;
        if !m.cc.is_empty() {
            writeln!(out, "   Cc: {}", m.cc)?;
        }
        writeln!(out, "   Subject: {}", m.subject)?;
        for a in &m.attachments {
            writeln!(
                out,
                "   Attachment {}: {} ({}, {} bytes)",
                a.part,
                a.name.as_deref().unwrap_or("(unnamed)"),
                a.content_type,
                a.size
            )?;
        }
        for d in &m.delivery {
            let err = d.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
            writeln!(out, "   Delivery to {}: {} after {} attempt(s){err}", d.recipient, d.status, d.attempts)?;
        }
        // Notifications to technicians repeat the ticket and the command list; their text is in --json.
        if m.direction == crate::domain::Direction::Out && m.internal {
            continue;
        }
        writeln!(out)?;
        for line in m.text.trim_end().lines() {
            writeln!(out, "   {line}")?;
        }
    }
    if !v.events.is_empty() {
        writeln!(out, "\nevents:")?;
        for e in &v.events {
            writeln!(out, "  {}  {:<16} {}  ({})", local(config, &e.at), e.kind, e.detail, e.actor)?;
        }
    }
    Ok(())
}
