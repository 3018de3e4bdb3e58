//! The `maildesk` binary: parse the command line, set up logging, hand over to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use maildesk::cli::{self, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("MAILDESK_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::Run => cli::load_config(&cli).and_then(|config| {
            maildesk::memory::map_large_buffers_apart();
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            let result = runtime.block_on(maildesk::daemon::run(config));
            // A task stuck inside one message (on a blocking thread) must not keep the process
            // alive after the stop's grace period: the database only ever holds whole commits.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            result
        }),
        // The device login must show its code while it waits; it makes its output terminal-safe.
        Command::Oauth(_) => cli::run_view(&cli, &mut std::io::stdout().lock()),
        // `quarantine --raw` writes a message's bytes as they are, on purpose.
        Command::Quarantine(cli::QuarantineArgs { raw: Some(_), .. }) => {
            cli::run_view(&cli, &mut std::io::stdout().lock())
        }
        // Everything else is for a person's terminal: mail is written by strangers, and an escape
        // sequence in a subject must not retitle, clear or rewrite the admin's terminal.
        _ => {
            let mut buffer = Vec::new();
            let result = cli::run_view(&cli, &mut buffer);
            let shown = cli::terminal_safe(&String::from_utf8_lossy(&buffer));
            use std::io::Write;
            // What was written before a failure is shown too (`check --connect`: the steps that
            // passed, and the one that failed).
            let written = std::io::stdout().lock().write_all(shown.as_bytes());
            result.and_then(|()| Ok(written?))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The error and its causes on one line. Each of maildesk's errors shows its cause or
            // returns it as source, never both, so the chain says each thing once.
            eprintln!("maildesk: {e:#}");
            ExitCode::FAILURE
        }
    }
}
