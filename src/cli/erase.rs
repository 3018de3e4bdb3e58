//! `maildesk erase --requester ADDRESS [--dry-run]`: removes a person's data on request (see
//! `store::erase`). Safe while the daemon runs.

use std::io::Write;

use super::json_out;
use crate::config::Config;
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The person's mail address (any case).
    #[arg(long)]
    pub requester: String,
    /// Show what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let address = crate::config::parse_address(&args.requester)
        .ok_or_else(|| anyhow::anyhow!("--requester: expected a mail address, got {:?}", args.requester))?;
    let conn = store::open_existing(&config.helpdesk.database)?;
    let e = store::erase::erase_requester(&conn, &address, store::now(), args.dry_run)?;
    if args.json {
        return json_out(out, &e);
    }
    let tickets = |t: &[i64]| t.iter().map(|n| format!("#{n}")).collect::<Vec<_>>().join(", ");
    writeln!(
        out,
        "{}{} messages removed, {} outbox rows to them removed, {} queued mails withdrawn, {} watcher entries removed, \
         {} other originals dropped",
        if e.dry_run { "dry run, nothing changed: " } else { "" },
        e.messages_removed,
        e.outbox_rows_removed,
        e.queued_mail_withdrawn,
        e.watcher_entries_removed,
        e.originals_dropped
    )?;
    writeln!(out, "tickets kept as placeholders: {}", tickets(&e.tickets_anonymised))?;
    writeln!(out, "tickets touched: {}", tickets(&e.tickets_touched))?;
    Ok(())
}
