//! `maildesk digest --kind daily|weekly [--to ADDRESS]`: a digest now. Without `--to`, the current
//! period's, to everyone who gets it and has not had it (so cron can run it, and the scheduled one
//! does not repeat it); with `--to`, to that address alone, as a try that counts for nothing.

use std::io::Write;

use crate::config::Config;
use crate::digest::{self, Kind};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long, value_enum)]
    pub kind: KindArg,
    /// Only to this address (a technician's own daily digest; the weekly as leads get it).
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KindArg {
    Daily,
    Weekly,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let kind = match args.kind {
        KindArg::Daily => Kind::Daily,
        KindArg::Weekly => Kind::Weekly,
    };
    // The database must exist (the daemon made it); the desk's keys sign the query addresses.
    crate::store::open_existing(&config.helpdesk.database)?;
    let templates = crate::templates::Templates::load_desk(config)?;
    let (mut conn, keys) = crate::desk::open(&config.helpdesk.database, config)?;
    let desk = keys.desk(config, &templates);
    let now = crate::store::now();
    let sent = match &args.to {
        Some(a) => {
            let a =
                crate::domain::parse_address(a).ok_or_else(|| anyhow::anyhow!("--to: {a:?} is not a mail address"))?;
            digest::send(&mut conn, &desk, kind, None, &[a], now)?
        }
        None => {
            // The current day or week, whatever the schedule says.
            let period = digest::due(kind, (Some(jiff::civil::Weekday::Monday), 0), &config.helpdesk.timezone, now)
                .ok_or_else(|| anyhow::anyhow!("no current period"))?;
            digest::send(&mut conn, &desk, kind, Some(&period), &digest::recipients(&desk, kind), now)?
        }
    };
    if sent.is_empty() {
        writeln!(out, "no {} digest queued (nobody has anything to report, or everyone had it)", kind.as_str())?;
    } else {
        writeln!(out, "{} queued for {} (the daemon sends it)", kind.as_str(), sent.join(", "))?;
    }
    Ok(())
}
