//! `maildesk search WORDS`: what people wrote, found with SQLite FTS5, best match first.

use std::io::Write;

use super::{json_out, local, terminal_safe};
use crate::config::Config;
use crate::store::{self, read};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Words that must all occur (in a subject or a message's text); case and accents do not matter.
    #[arg(required = true)]
    pub words: Vec<String>,
    /// At most this many messages.
    #[arg(long, default_value_t = 20)]
    pub limit: u32,
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let conn = store::open_existing(&config.helpdesk.database)?;
    let (hits, ranked) = read::search(&conn, &args.words.join(" "), args.limit)?;
    if args.json {
        return json_out(out, &hits);
    }
    if hits.is_empty() {
        writeln!(out, "nothing found")?;
    } else if !ranked {
        writeln!(out, "(too many matches to rank by relevance: the newest first; add words to narrow it)")?;
    }
    for h in hits {
        let ticket = h.ticket.map(|t| crate::threading::format_tag(&config.helpdesk.tag, t)).unwrap_or_default();
        writeln!(
            out,
            "{ticket} {}  {}  {}  (message {}, {})",
            terminal_safe(&h.subject),
            local(config, &h.date),
            h.from.as_deref().unwrap_or("-"),
            h.message,
            h.kind
        )?;
        writeln!(out, "    {}", terminal_safe(&h.snippet.replace('\n', " ")))?;
    }
    Ok(())
}
