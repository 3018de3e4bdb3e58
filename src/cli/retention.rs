//! `maildesk retention [--dry-run]`: applies `[retention]` now, as the daemon does once a day, or
//! shows what it would remove (see `store::retention`). Safe while the daemon runs.

use std::io::Write;

use super::json_out;
use crate::config::Config;
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let policy = &config.retention;
    if policy.drop_raw_after.is_none() && policy.delete_after.is_none() && !args.json {
        writeln!(out, "[retention] sets nothing: nothing is ever removed")?;
        return Ok(());
    }
    let conn = store::open_existing(&config.helpdesk.database)?;
    let run = store::retention::run(&conn, policy, store::now(), args.dry_run)?;
    if args.json {
        return json_out(out, &run);
    }
    let (verb_raw, verb_del) = if args.dry_run { ("would lose", "would be deleted") } else { ("lost", "deleted") };
    writeln!(
        out,
        "{} tickets {verb_raw} the original bytes of {} messages ({:.1} MB){}",
        run.raw_dropped_tickets.len(),
        run.raw_dropped_messages,
        run.raw_dropped_bytes as f64 / 1e6,
        list(&run.raw_dropped_tickets)
    )?;
    writeln!(
        out,
        "{} tickets {verb_del}, with {} messages{}",
        run.deleted_tickets.len(),
        run.deleted_messages,
        list(&run.deleted_tickets)
    )?;
    Ok(())
}

/// ": #1, #2, ..." for the first few ticket numbers.
fn list(tickets: &[i64]) -> String {
    if tickets.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = tickets.iter().take(20).map(|t| format!("#{t}")).collect();
    let more = if tickets.len() > 20 { format!(" and {} more", tickets.len() - 20) } else { String::new() };
    format!(": {}{more}", shown.join(", "))
}
