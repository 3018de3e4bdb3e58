//! `maildesk backup PATH`: a consistent copy of the database, taken while the daemon runs, checked
//! with SQLite's integrity check (see `store::backup`).

use std::io::Write;
use std::path::PathBuf;

use super::json_out;
use crate::config::Config;
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write the copy; must not exist yet.
    pub path: PathBuf,
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let b = store::backup::backup(&config.helpdesk.database, &args.path)?;
    if args.json {
        return json_out(out, &b);
    }
    writeln!(
        out,
        "{}: {} tickets, {} messages, {:.1} MB, integrity {}, in {:.2} s",
        b.path.display(),
        b.tickets,
        b.messages,
        b.bytes as f64 / 1e6,
        b.integrity,
        b.seconds
    )?;
    Ok(())
}
