//! `maildesk promote N`: makes an automatic ticket a request, in one transaction (safe while
//! the daemon runs); its SLA clock starts now.

use std::io::Write;

use anyhow::bail;

use crate::config::Config;
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: i64,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Args { id } = args;
    let mut conn = store::open_existing(&config.helpdesk.database)?;
    let now = store::now();
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
    crate::store::sla::refresh(&tx, config, *id, now)?;
    tx.commit()?;
    writeln!(out, "ticket {id} is a request now; its SLA clock started")?;
    Ok(())
}
