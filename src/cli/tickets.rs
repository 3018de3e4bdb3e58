//! `maildesk tickets`: the list of tickets, requests or (with `--automatic`) the ones machine
//! mail opened.

use std::io::Write;

use super::{json_out, local};
use crate::config::Config;
use crate::domain::TicketStatus;
use crate::store::{self, read};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only tickets in this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// List the tickets machine mail opened (out-of-office, lists, reports) instead of requests.
    #[arg(long)]
    pub automatic: bool,
    /// Only tickets in this queue (`[[queues]] name`).
    #[arg(long)]
    pub queue: Option<String>,
    /// Only tickets assigned to this address.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Only tickets of this priority.
    #[arg(long, value_parser = ["P1", "P2", "P3", "P4"], ignore_case = true)]
    pub priority: Option<String>,
    /// Only tickets of this type.
    #[arg(long = "type", value_parser = ["incident", "request", "change", "problem"], ignore_case = true)]
    pub ticket_type: Option<String>,
    /// Only tickets of this service (`[[services]] name`).
    #[arg(long)]
    pub service: Option<String>,
    /// Only open and pending tickets past a due time (first response or resolution).
    #[arg(long)]
    pub overdue: bool,
    /// Only tickets opened at or after this date (YYYY-MM-DD, in helpdesk.timezone) or time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many tickets (a page), in ticket order.
    #[arg(long)]
    pub limit: Option<u32>,
    /// Skip this many first (the next page: --offset 50 --limit 50).
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Args {
        status,
        automatic,
        queue,
        assignee,
        priority,
        ticket_type,
        service,
        overdue,
        since,
        limit,
        offset,
        json,
    } = args;
    if let Some(s) = service
        && config.service(Some(s)).is_none()
    {
        let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        anyhow::bail!("there is no service {s:?}; the services are: {}", names.join(", "));
    }
    if let Some(q) = queue
        && !config.queues.iter().any(|c| &c.name == q)
    {
        let names: Vec<&str> = config.queues.iter().map(|q| q.name.as_str()).collect();
        anyhow::bail!("there is no queue {q:?}; the queues are: {}", names.join(", "));
    }
    let conn = store::open_existing(&config.helpdesk.database)?;
    let page = read::Page { limit: *limit, offset: *offset };
    let assignee =
        assignee.as_deref().map(|a| crate::domain::parse_address(a).unwrap_or_else(|| a.to_ascii_lowercase()));
    let since = since.as_deref().map(|s| super::parse_when(config, "--since", s)).transpose()?;
    let filter = read::TicketFilter {
        status: status.map(TicketStatus::from),
        automatic: *automatic,
        queue: queue.as_deref(),
        first_queue: &config.queues[0].name,
        assignee: assignee.as_deref(),
        priority: priority.as_deref().map(|p| p.to_ascii_uppercase().parse()).transpose()?,
        overdue_at: overdue.then(store::now),
        since,
        ticket_type: ticket_type.as_deref().map(str::parse).transpose()?,
        service: service.as_deref(),
    };
    let mut list = read::tickets(&conn, filter, page)?;
    for t in &mut list {
        t.queue = Some(config.queue(t.queue.as_deref()).1.name.clone());
    }
    if *json {
        return json_out(out, &list);
    }
    let queues = config.queues.len() > 1;
    let queue_head = if queues { format!("{:<12}  ", "QUEUE") } else { String::new() };
    let services = !config.services.is_empty();
    let service_head = if services { format!("{:<12}  ", "SERVICE") } else { String::new() };
    writeln!(
        out,
        "{:>6}  {:<8}  {:<3}  {queue_head}{service_head}{:<16}  {:<28}  SUBJECT",
        "ID", "STATUS", "PRI", "UPDATED", "REQUESTER"
    )?;
    for t in list {
        let queue = if queues { format!("{:<12}  ", t.queue.as_deref().unwrap_or("")) } else { String::new() };
        let service = if services { format!("{:<12}  ", t.service.as_deref().unwrap_or("-")) } else { String::new() };
        writeln!(
            out,
            "{:>6}  {:<8}  {:<3}  {queue}{service}{:<16}  {:<28}  {}",
            t.id,
            t.status,
            t.priority,
            local(config, &t.updated_at),
            t.requester.as_deref().unwrap_or("-"),
            super::terminal_safe(&t.subject)
        )?;
    }
    Ok(())
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
