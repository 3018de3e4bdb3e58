//! The `maildesk` command line: the daemon and the admin's read-only views of its database.
//!
//! Every view opens the same database the daemon writes (WAL mode makes that safe while it runs)
//! and has `--json` for scripts. Human output shows times in the desk's time zone; JSON always uses
//! RFC 3339 UTC.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

use crate::config::{self, Config};
use crate::domain::TicketStatus;
use crate::store::{self, read};
use crate::templates::{DeskContext, Templates};

#[derive(Parser, Debug)]
#[command(name = "maildesk", version, about = "An email-driven IT help desk", propagate_version = true)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = config::DEFAULT_PATH, env = "MAILDESK_CONFIG")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the help desk: watch the mailbox, open tickets, send acknowledgements.
    Run,
    /// Validate the config and render every template with sample data.
    Check,
    /// List tickets.
    Tickets {
        /// Only tickets in this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// List the tickets machine mail opened (out-of-office, lists, reports) instead of requests.
        #[arg(long)]
        automatic: bool,
        #[arg(long)]
        json: bool,
    },
    /// Make an automatic ticket a request: its SLA clock starts now (safe while the daemon runs).
    Promote { id: i64 },
    /// Show one ticket: its messages in order, deliveries and events.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// List messages that could not become tickets, with the reason.
    Quarantine {
        /// Write the raw bytes of quarantined message ID to standard output.
        #[arg(long, value_name = "ID")]
        raw: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Health at a glance: counts, outbox, last UIDs, last successful server contact.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// A ticket's SLA: policy, targets, elapsed business time, pauses, due times, escalations fired.
    Sla {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Service-level report per priority and per technician, over tickets opened in a period.
    Report {
        /// First day (YYYY-MM-DD, in the desk's time zone) or RFC 3339 instant; default: all time.
        #[arg(long)]
        since: Option<String>,
        /// Day after the last (exclusive), same forms.
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// `--status`: the ticket statuses, as clap lists and completes them.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum StatusArg {
    Open,
    Pending,
    Resolved,
    Closed,
}

impl From<StatusArg> for TicketStatus {
    fn from(s: StatusArg) -> TicketStatus {
        match s {
            StatusArg::Open => TicketStatus::Open,
            StatusArg::Pending => TicketStatus::Pending,
            StatusArg::Resolved => TicketStatus::Resolved,
            StatusArg::Closed => TicketStatus::Closed,
        }
    }
}

/// "2026-11-01" (midnight in the desk's zone) or an RFC 3339 instant, as Unix seconds.
fn parse_when(config: &Config, flag: &str, s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_second());
    }
    let date: jiff::civil::Date = s
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag}: expected a date like 2026-11-01 or an RFC 3339 time, got {s:?}"))?;
    Ok(date.to_zoned(config.helpdesk.timezone.clone())?.timestamp().as_second())
}

fn duration(secs: i64) -> String {
    crate::outbound::mails::human_duration(secs)
}

/// `text` with every control character but newline and tab (C0, DEL, C1, which start terminal
/// escape sequences) and every bidirectional override (which can disguise what a line says)
/// replaced by U+FFFD.
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\n' | '\t' => Some(c),
            // Line ends written as CRLF: the CR carries nothing.
            '\r' => None,
            c if c.is_control() => Some('\u{fffd}'),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => Some('\u{fffd}'),
            c => Some(c),
        })
        .collect()
}

pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(Config::load(&cli.config)?)
}

/// Runs a non-daemon command, writing to `out`.
pub fn run_view(cli: &Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    // Only `check` reads the secrets (it checks them); the views read the database alone, so an
    // admin's shell runs no password_command and needs no systemd credential.
    let config = match cli.command {
        Command::Check => load_config(cli)?,
        _ => Config::load_for_view(&cli.config)?,
    };
    match &cli.command {
        Command::Run => unreachable!("the daemon is started by main"),
        Command::Check => check(&config, out),
        Command::Promote { id } => {
            let mut conn = store::open_existing(&config.helpdesk.database)?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if crate::store::write::live_ticket(&tx, *id)?.is_none() {
                bail!("ticket {id} does not exist");
            }
            if !crate::store::write::promote(&tx, *id, now)? {
                bail!("ticket {id} is not an automatic ticket");
            }
            let actor = format!("maildesk promote (user {})", std::env::var("USER").unwrap_or_else(|_| "?".into()));
            crate::store::write::insert_event(
                &tx,
                Some(*id),
                now,
                &actor,
                crate::domain::EventKind::Promoted,
                "made a request: its SLA clock starts now",
            )?;
            crate::store::sla::refresh(&tx, &config.sla, *id, now)?;
            tx.commit()?;
            writeln!(out, "ticket {id} is a request now; its SLA clock started")?;
            Ok(())
        }
        Command::Tickets { status, automatic, json } => {
            let conn = store::open_existing(&config.helpdesk.database)?;
            let list = read::tickets(&conn, status.map(TicketStatus::from), *automatic)?;
            if *json {
                return json_out(out, &list);
            }
            writeln!(
                out,
                "{:>6}  {:<8}  {:<3}  {:<16}  {:<28}  SUBJECT",
                "ID", "STATUS", "PRI", "UPDATED", "REQUESTER"
            )?;
            for t in list {
                writeln!(
                    out,
                    "{:>6}  {:<8}  {:<3}  {:<16}  {:<28}  {}",
                    t.id,
                    t.status,
                    t.priority,
                    local(&config, &t.updated_at),
                    t.requester.as_deref().unwrap_or("-"),
                    t.subject
                )?;
            }
            Ok(())
        }
        Command::Show { id, json } => {
            let conn = store::open_existing(&config.helpdesk.database)?;
            let Some(view) = read::ticket(&conn, *id)? else { bail!("ticket {id} does not exist") };
            if *json {
                return json_out(out, &view);
            }
            show_human(&config, &view, out)
        }
        Command::Quarantine { raw, json } => {
            let conn = store::open_existing(&config.helpdesk.database)?;
            if let Some(id) = raw {
                let Some(bytes) = read::quarantined_raw(&conn, *id)? else {
                    bail!("quarantine entry {id} does not exist")
                };
                out.write_all(&bytes)?;
                return Ok(());
            }
            let list = read::quarantine(&conn)?;
            if *json {
                return json_out(out, &list);
            }
            if list.is_empty() {
                writeln!(out, "quarantine is empty")?;
            }
            for q in list {
                writeln!(
                    out,
                    "#{}  {}  {} uid {} (uidvalidity {}), {} bytes\n    {}",
                    q.id,
                    local(&config, &q.created_at),
                    q.mailbox,
                    q.uid,
                    q.uid_validity,
                    q.size,
                    q.reason
                )?;
            }
            Ok(())
        }
        Command::Sla { id, json } => {
            let conn = store::open_existing(&config.helpdesk.database)?;
            let Some(v) = crate::report::sla_view(&conn, &config.sla, *id, store::now())? else {
                bail!("ticket {id} does not exist")
            };
            if *json {
                return json_out(out, &v);
            }
            let when = |t: Option<i64>| crate::templates::local_time(&config.helpdesk.timezone, t);
            let p = &v.policy;
            writeln!(
                out,
                "{} priority {}, calendar {}",
                crate::threading::format_tag(&config.helpdesk.tag, *id),
                p.priority,
                p.calendar
            )?;
            if v.automatic {
                writeln!(out, "automatic ticket (machine mail): no SLA clock runs until `maildesk promote {id}`")?;
            }
            let ladder: Vec<String> =
                p.escalate.iter().map(|l| format!("{} -> {}", l.at, l.notify.join(", "))).collect();
            writeln!(out, "escalation ladder: {}", ladder.join("; "))?;
            for t in [&v.clock.first_response, &v.clock.resolution] {
                writeln!(
                    out,
                    "{:<15} {:<8} elapsed {} of {}{}  due {}",
                    t.target.replace('_', " "),
                    t.state,
                    duration(t.elapsed_secs),
                    duration(t.target_secs),
                    if t.breached { " BREACHED" } else { "" },
                    when(t.due_at)
                )?;
                for l in &t.levels {
                    let fired =
                        l.fired_at.map(|f| format!("fired {}", when(Some(f)))).unwrap_or_else(|| "not fired".into());
                    writeln!(out, "    {:>4}%  reached {}  {fired}", l.percent, when(l.reached_at))?;
                }
            }
            for (from, until) in &v.clock.pauses {
                writeln!(
                    out,
                    "paused {} - {}",
                    when(Some(*from)),
                    until.map(|u| when(Some(u))).unwrap_or_else(|| "now".into())
                )?;
            }
            Ok(())
        }
        Command::Report { since, until, json } => {
            let conn = store::open_existing(&config.helpdesk.database)?;
            let since = since.as_deref().map(|s| parse_when(&config, "--since", s)).transpose()?;
            let until = until.as_deref().map(|s| parse_when(&config, "--until", s)).transpose()?;
            let r = crate::report::report(&conn, since, until, store::now())?;
            if *json {
                return json_out(out, &r);
            }
            let opt = |s: Option<i64>| s.map(duration).unwrap_or_else(|| "-".into());
            let pct = |p: Option<f64>| p.map(|p| format!("{p:.1}%")).unwrap_or_else(|| "-".into());
            writeln!(
                out,
                "{:<4} {:>7} {:>8} | {:>7} {:>8} {:>8} | {:>7} {:>8} {:>8} | {:>8} | backlog <1d 1-7d 7-30d >30d",
                "PRI", "OPENED", "RESOLVED", "1ST OK", "MEDIAN", "P90", "RES OK", "MEDIAN", "P90", "BREACHES"
            )?;
            for p in &r.priorities {
                let b = &p.backlog;
                writeln!(
                    out,
                    "{:<4} {:>7} {:>8} | {:>7} {:>8} {:>8} | {:>7} {:>8} {:>8} | {:>8} | {:>4} {:>4} {:>5} {:>4}",
                    p.priority,
                    p.opened,
                    p.resolved,
                    pct(p.first_response.attainment_pct),
                    opt(p.first_response.median_secs),
                    opt(p.first_response.p90_secs),
                    pct(p.resolution.attainment_pct),
                    opt(p.resolution.median_secs),
                    opt(p.resolution.p90_secs),
                    p.breaches,
                    b.under_1d,
                    b.from_1d_to_7d,
                    b.from_7d_to_30d,
                    b.over_30d
                )?;
            }
            if !r.technicians.is_empty() {
                writeln!(
                    out,
                    "\n{:<40} {:>8} {:>15} {:>22} {:>13}",
                    "TECHNICIAN", "HANDLED", "FIRST RESPONSES", "MEDIAN FIRST RESPONSE", "ASSIGNED OPEN"
                )?;
                for t in &r.technicians {
                    writeln!(
                        out,
                        "{:<40} {:>8} {:>15} {:>22} {:>13}",
                        t.technician,
                        t.tickets_handled,
                        t.first_responses,
                        opt(t.median_first_response_secs),
                        t.assigned_open
                    )?;
                }
            }
            writeln!(out, "\n(times are business time in each priority's calendar; OK = within target)")?;
            Ok(())
        }
        Command::Status { json } => {
            let conn = store::open_existing(&config.helpdesk.database)?;
            let s = read::status(&conn)?;
            if *json {
                return json_out(out, &s);
            }
            let t = &s.tickets;
            writeln!(out, "messages ingested  {}", s.messages_ingested)?;
            writeln!(
                out,
                "tickets            open {}  pending {}  resolved {}  closed {}",
                t.open, t.pending, t.resolved, t.closed
            )?;
            writeln!(out, "automatic tickets  {} (maildesk tickets --automatic)", s.automatic_tickets)?;
            writeln!(
                out,
                "outbox             pending {}  sent {}  failed {}",
                s.outbox.pending, s.outbox.sent, s.outbox.failed
            )?;
            writeln!(out, "quarantined        {}", s.quarantined)?;
            for m in &s.mailboxes {
                writeln!(
                    out,
                    "mailbox            {}  uidvalidity {}  last uid {}",
                    m.mailbox, m.uid_validity, m.last_uid
                )?;
            }
            let when = |t: &Option<String>| t.as_deref().map(|t| local(&config, t)).unwrap_or_else(|| "never".into());
            writeln!(out, "last IMAP contact  {}", when(&s.last_imap_ok))?;
            writeln!(out, "last SMTP success  {}", when(&s.last_smtp_ok))?;
            Ok(())
        }
    }
}

fn check(config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let templates = Templates::load(&config.helpdesk.templates)?;
    let h = &config.helpdesk;
    let rendered =
        templates.check(DeskContext { name: h.name.clone(), tag: h.tag.clone(), address: h.address.clone() })?;
    crate::tls::install_provider();
    for (section, ca) in [("imap", &config.imap.ca_file), ("smtp", &config.smtp.ca_file)] {
        if let Some(ca) = ca {
            crate::tls::read_pem(ca).with_context(|| format!("{}: {section}.ca_file", config.source.display()))?;
        }
    }
    writeln!(out, "{}: ok", config.source.display())?;
    writeln!(out, "  desk      {} <{}>, tag [{} #n], time zone {}", h.name, h.address, h.tag, h.timezone_name)?;
    writeln!(out, "  database  {}", h.database.display())?;
    writeln!(
        out,
        "  imap      {}:{} ({:?}) as {}, mailbox {}",
        config.imap.host, config.imap.port, config.imap.security, config.imap.username, config.imap.mailbox
    )?;
    writeln!(out, "  smtp      {}:{} ({:?})", config.smtp.host, config.smtp.port, config.smtp.security)?;
    writeln!(
        out,
        "  technicians {}",
        if h.technicians.is_empty() { "(none)".into() } else { h.technicians.join(", ") }
    )?;
    for (kind, r) in rendered {
        writeln!(
            out,
            "  template  {kind}: subject {:?}, {} text lines{}",
            r.subject,
            r.text.lines().count(),
            if r.html.is_some() { ", with HTML part" } else { "" }
        )?;
    }
    Ok(())
}

fn show_human(config: &Config, v: &read::TicketView, out: &mut dyn Write) -> anyhow::Result<()> {
    let t = &v.ticket;
    writeln!(out, "{} {}", crate::threading::format_tag(&config.helpdesk.tag, t.id), t.subject)?;
    writeln!(
        out,
        "status {}  priority {}  requester {}  assignee {}",
        t.status,
        t.priority,
        t.requester.as_deref().unwrap_or("-"),
        t.assignee.as_deref().unwrap_or("-")
    )?;
    if !v.watchers.is_empty() {
        writeln!(out, "watchers {}", v.watchers.join(", "))?;
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
            "\n{arrow} {} {} [{}]{internal}",
            m.direction.as_str().to_uppercase(),
            local(config, &m.date),
            m.kind
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
                "   Attachment: {} ({}, {} bytes)",
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

/// An RFC 3339 UTC time shown in the desk's zone, to the minute.
fn local(config: &Config, rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.to_zoned(config.helpdesk.timezone.clone()).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

fn json_out<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
