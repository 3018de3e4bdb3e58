//! `maildesk oauth login`: the device login for `flow = "device_code"` (delegated access). Prints
//! where to sign in and the code, waits, and stores the refresh token in the database, where the
//! daemon finds it (safe while it runs: it reads the stored token on its next renewal).

use std::io::Write;

use anyhow::Context as _;

use crate::config::{AuthMethod, Config};
use crate::oauth::{DeviceLogin, Sources, TokenSource};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Sign in with the device code flow and store the refresh token.
    Login {
        /// Sign in for `[smtp.oauth]` instead of `[oauth]`.
        #[arg(long)]
        smtp: bool,
        /// Sign in for the mailbox of its own of this queue (`[queues.imap]`).
        #[arg(long, conflicts_with = "smtp")]
        queue: Option<String>,
    },
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Action::Login { smtp, queue } = &args.action;
    let smtp = *smtp;
    let sources = Sources::of(config)?;
    if let Some(name) = queue {
        let found = config.mailboxes().iter().position(|m| m.own_account.as_deref() == Some(name.as_str()));
        let Some(source) = found.and_then(|i| sources.mailboxes.get(i).cloned().flatten()) else {
            anyhow::bail!(
                "{}: queue {name:?} has no mailbox of its own logging in with OAuth ([queues.imap] auth = \"xoauth2\")",
                config.source.display()
            );
        };
        return signed_in(config, &source, out);
    }
    let source = match (smtp, sources.imap, sources.smtp) {
        (false, Some(s), _) | (true, _, Some(s)) => s,
        (false, None, Some(s)) if config.imap.auth == AuthMethod::Password => s,
        _ => anyhow::bail!(
            "{}: no OAuth login is configured there (set {}.auth = \"xoauth2\" and an [oauth] table)",
            config.source.display(),
            if smtp { "smtp" } else { "imap" }
        ),
    };
    signed_in(config, &source, out)
}

/// Runs the device login for `source` and says where its token is kept.
fn signed_in(config: &Config, source: &TokenSource, out: &mut dyn Write) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let token = runtime.block_on(login(source, out))?;
    writeln!(
        out,
        "Signed in: the refresh token is stored in {}; the access token is good until {}.",
        config.helpdesk.database.display(),
        crate::templates::local_time(&config.helpdesk.timezone, Some(token.expires_at))
    )?;
    Ok(())
}

async fn login(source: &TokenSource, out: &mut dyn Write) -> anyhow::Result<crate::oauth::AccessToken> {
    let mut shown = Ok(());
    let token = source
        .device_login(|d: &DeviceLogin| {
            // From the identity provider: shown as text, never as terminal controls.
            shown = writeln!(
                out,
                "To let maildesk use {} , open\n\n    {}\n\nand enter the code\n\n    {}\n\nwithin {} minutes. Waiting...",
                source.user,
                super::terminal_safe(&d.verification_uri),
                super::terminal_safe(&d.user_code),
                d.expires_in_secs / 60
            )
            .and_then(|()| out.flush());
        })
        .await
        .context("the device login")?;
    shown?;
    Ok(token)
}
