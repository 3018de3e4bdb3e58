//! `maildesk status`: health at a glance.

use std::io::Write;

use super::{json_out, local};
use crate::config::Config;
use crate::store::{self, read};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Args { json } = args;
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
        writeln!(out, "mailbox            {}  uidvalidity {}  last uid {}", m.mailbox, m.uid_validity, m.last_uid)?;
    }
    let when = |t: &Option<String>| t.as_deref().map(|t| local(config, t)).unwrap_or_else(|| "never".into());
    writeln!(out, "last IMAP contact  {}", when(&s.last_imap_ok))?;
    writeln!(out, "last SMTP success  {}", when(&s.last_smtp_ok))?;
    if let Some(r) = &s.retention_last_run {
        let n = |k: &str| r[k].as_i64().unwrap_or(0);
        writeln!(
            out,
            "last retention     {}: {} tickets lost their originals ({:.1} MB), {} tickets deleted",
            when(&r["at"].as_str().map(String::from)),
            n("raw_dropped_tickets"),
            n("raw_dropped_bytes") as f64 / 1e6,
            n("deleted_tickets")
        )?;
    }
    Ok(())
}
