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
    },
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Action::Login { smtp } = args.action;
    let sources = Sources::of(config)?;
    let source = match (smtp, sources.imap, sources.smtp) {
        (false, Some(s), _) | (true, _, Some(s)) => s,
        (false, None, Some(s)) if config.imap.auth == AuthMethod::Password => s,
        _ => anyhow::bail!(
            "{}: no OAuth login is configured there (set {}.auth = \"xoauth2\" and an [oauth] table)",
            config.source.display(),
            if smtp { "smtp" } else { "imap" }
        ),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let token = runtime.block_on(login(&source, out))?;
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
