//! `maildesk quarantine`: messages that could not become tickets, and their raw bytes.

use std::io::Write;

use anyhow::bail;

use super::{json_out, local};
use crate::config::Config;
use crate::store::{self, read};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Write the raw bytes of quarantined message ID to standard output.
    #[arg(long, value_name = "ID")]
    pub raw: Option<i64>,
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Args { raw, json } = args;
    let conn = store::open_existing(&config.helpdesk.database)?;
    if let Some(id) = raw {
        let Some(bytes) = read::quarantined_raw(&conn, *id)? else { bail!("quarantine entry {id} does not exist") };
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
            local(config, &q.created_at),
            q.mailbox,
            q.uid,
            q.uid_validity,
            q.size,
            q.reason
        )?;
    }
    Ok(())
}
