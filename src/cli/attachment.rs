//! `maildesk attachment MESSAGE PART --out FILE`: saves a stored attachment (the numbers `show`
//! prints), read again from the stored message and checked against the digest it arrived with, as
//! the sender does before it forwards one (`outbound::outgoing::stored_file`).
//! How a technician gets a file that was too large to forward by mail.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::outbound::outgoing;
use crate::store;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The message's number (`show` prints it; `id` in `show --json`).
    pub message: i64,
    /// The attachment's number within the message (`part` in `show --json`).
    pub part: usize,
    /// Where to write it; must not exist yet. Without it, the bytes go to standard output
    /// (refused when that is a terminal).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let conn = store::open_existing(&config.helpdesk.database)?;
    let (name, data) = outgoing::stored_file(&conn, args.message, args.part)?;
    match &args.out {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("{}: cannot create it (it must not exist yet)", path.display()))?;
            file.write_all(&data).with_context(|| format!("{}: cannot write it", path.display()))?;
            eprintln!(
                "{}: {} ({} bytes)",
                path.display(),
                super::terminal_safe(name.as_deref().unwrap_or("(unnamed)")),
                data.len()
            );
        }
        None => {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                bail!("standard output is a terminal: use --out FILE, or redirect it");
            }
            out.write_all(&data)?;
        }
    }
    Ok(())
}
