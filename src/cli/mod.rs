//! The `maildesk` command line: the daemon and the admin's read-only views of its database.
//!
//! Every view opens the same database the daemon writes (WAL mode makes that safe while it runs)
//! and has `--json` for scripts. Human output shows times in the desk's time zone; JSON always uses
//! RFC 3339 UTC.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod attachment;
mod backup;
mod check;
mod connect;
mod digest;
mod erase;
mod oauth;
mod promote;
mod quarantine;
mod replay;
mod retention;
mod search;

pub use quarantine::Args as QuarantineArgs;
mod report;
mod show;
mod sla;
mod status;
mod tickets;

use crate::config::{self, Config};

#[derive(Parser, Debug)]
#[command(name = "maildesk", version, about = "An email-driven IT help desk", propagate_version = true)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, default_value = config::DEFAULT_PATH, env = "MAILDESK_CONFIG")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the help desk: watch the mailbox, open tickets, send acknowledgements.
    Run,
    /// Validate the config and render every template with sample data (--connect: log in to both servers).
    Check(check::Args),
    /// List tickets.
    Tickets(tickets::Args),
    /// Find messages by their words (subjects and texts), best match first.
    Search(search::Args),
    /// Queue a digest now: the current period's to everyone due one, or (--to) a try to one address.
    Digest(digest::Args),
    /// Make an automatic ticket a request: its SLA clock starts now (safe while the daemon runs).
    Promote(promote::Args),
    /// Show one ticket: its messages in order, deliveries and events.
    Show(show::Args),
    /// List messages that could not become tickets, with the reason.
    Quarantine(quarantine::Args),
    /// Health at a glance: counts, outbox, last UIDs, last successful server contact.
    Status(status::Args),
    /// A ticket's SLA: policy, targets, elapsed business time, pauses, due times, escalations fired.
    Sla(sla::Args),
    /// Service-level report per priority and per technician, over tickets opened in a period.
    Report(report::Args),
    /// Copy the database to PATH while the daemon runs (consistent, checked); see README "Backup".
    Backup(backup::Args),
    /// Save a stored attachment (MESSAGE and PART as `show` prints them), checked against its digest.
    Attachment(attachment::Args),
    /// Apply [retention] now (the daemon does daily), or --dry-run to see what would go.
    Retention(retention::Args),
    /// Erase a person's data on request; their tickets stay as placeholders (--dry-run first).
    Erase(erase::Args),
    /// OAuth2 for the mail servers: `oauth login` signs in with the device code flow.
    Oauth(oauth::Args),
    /// What the current config would do with past mail (an mbox): tickets, queues, services, types,
    /// priorities, who is told; --dry-run: nothing is written or sent.
    Replay(replay::Args),
}

/// "2026-11-01" (midnight in the desk's zone) or an RFC 3339 instant, as Unix seconds.
fn parse_when(config: &Config, flag: &str, s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_second());
    }
    let date: jiff::civil::Date = s
        .parse()
        .map_err(|_| anyhow::anyhow!("{flag}: expected a date like 2026-11-01 or an RFC 3339 time, got {s:?}"))?;
    Ok(date.to_zoned(config.helpdesk.timezone.clone())?.timestamp().as_second())
}

fn duration(secs: i64) -> String {
    crate::outbound::mails::human_duration(secs)
}

/// `text` with every control character but newline and tab (C0, DEL, C1, which start terminal
/// escape sequences) and every bidirectional override (which can disguise what a line says)
/// replaced by U+FFFD.
pub fn terminal_safe(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\n' | '\t' => Some(c),
            // Line ends written as CRLF: the CR carries nothing.
            '\r' => None,
            c if c.is_control() => Some('\u{fffd}'),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => Some('\u{fffd}'),
            c => Some(c),
        })
        .collect()
}

pub fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(Config::load(&cli.config)?)
}

/// Runs a non-daemon command, writing to `out`.
pub fn run_view(cli: &Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    // Only `check` reads the secrets (it checks them); the views read the database alone, so an
    // admin's shell runs no password_command and needs no systemd credential.
    let config = match cli.command {
        Command::Check(_) | Command::Oauth(_) | Command::Digest(_) => load_config(cli)?,
        _ => Config::load_for_view(&cli.config)?,
    };
    match &cli.command {
        Command::Run => unreachable!("the daemon is started by main"),
        Command::Check(args) => check::execute(args, &config, out),
        Command::Oauth(args) => oauth::execute(args, &config, out),
        Command::Promote(args) => promote::execute(args, &config, out),
        Command::Tickets(args) => tickets::execute(args, &config, out),
        Command::Search(args) => search::execute(args, &config, out),
        Command::Digest(args) => digest::execute(args, &config, out),
        Command::Show(args) => show::execute(args, &config, out),
        Command::Quarantine(args) => quarantine::execute(args, &config, out),
        Command::Sla(args) => sla::execute(args, &config, out),
        Command::Report(args) => report::execute(args, &config, out),
        Command::Status(args) => status::execute(args, &config, out),
        Command::Backup(args) => backup::execute(args, &config, out),
        Command::Retention(args) => retention::execute(args, &config, out),
        Command::Attachment(args) => attachment::execute(args, &config, out),
        Command::Erase(args) => erase::execute(args, &config, out),
        Command::Replay(args) => replay::execute(args, &config, out),
    }
}

/// An RFC 3339 UTC time shown in the desk's zone, to the minute.
fn local(config: &Config, rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .map(|t| t.to_zoned(config.helpdesk.timezone.clone()).strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

fn json_out<T: serde::Serialize>(out: &mut dyn Write, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
