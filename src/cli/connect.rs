//! `maildesk check --connect`: both logins tried for real, step by step, so an admin sees which
//! step fails (the token, TLS, the login, the mailbox) before the daemon runs.

use std::io::Write;

use crate::config::Config;
use crate::inbound::imap::{self, Login};
use crate::oauth::{Sources, TokenSource};
use crate::outbound::smtp::{self, SmtpLogin};

/// Writes one line per step; `Ok(false)` when any step failed.
pub fn execute(config: &Config, out: &mut dyn Write) -> anyhow::Result<bool> {
    let sources = Sources::of(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(async {
        let mut all_ok = true;
        for (mailbox, source) in config.mailboxes().iter().zip(&sources.mailboxes) {
            all_ok &= imap_steps(config, mailbox, source.as_deref(), out).await?;
        }
        let smtp_ok = smtp_steps(config, sources.smtp.as_deref(), out).await?;
        Ok(all_ok && smtp_ok)
    })
}

fn step(out: &mut dyn Write, what: &str, result: Result<String, String>) -> anyhow::Result<()> {
    match result {
        Ok(detail) => {
            writeln!(out, "  ok      {what}{}", if detail.is_empty() { detail } else { format!(": {detail}") })?
        }
        Err(e) => writeln!(out, "  FAILED  {what}: {}", super::terminal_safe(&e))?,
    }
    out.flush()?;
    Ok(())
}

async fn token_step(
    config: &Config,
    source: &TokenSource,
    out: &mut dyn Write,
) -> anyhow::Result<Option<crate::oauth::AccessToken>> {
    let what = format!("token from [{}] for {}", source.oauth().table, source.user);
    match source.token().await {
        Ok(t) => {
            let until = crate::templates::local_time(&config.helpdesk.timezone, Some(t.expires_at));
            step(out, &what, Ok(format!("good until {until}")))?;
            Ok(Some(t))
        }
        Err(e) => {
            step(out, &what, Err(e.to_string()))?;
            Ok(None)
        }
    }
}

async fn imap_steps(
    config: &Config,
    mailbox: &crate::config::WatchedMailbox,
    source: Option<&TokenSource>,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let i = &mailbox.imap;
    let queue = if mailbox.home > 0 { format!(", queue {}", config.queues[mailbox.home].name) } else { String::new() };
    writeln!(out, "IMAP {}:{} ({:?}) as {}{queue}", i.host, i.port, i.security, i.username)?;
    let token = match source {
        Some(s) => match token_step(config, s, out).await? {
            Some(t) => Some(t),
            None => return Ok(false),
        },
        None => None,
    };
    let login = match (source, &token) {
        (Some(source), Some(token)) => Login::Token { user: &source.user, token, source },
        _ => Login::Password,
    };
    let how = if token.is_some() { "XOAUTH2" } else { "LOGIN" };
    let connected = tokio::time::timeout(i.timeout, imap::connect(i, login)).await;
    let mut session = match connected {
        Ok(Ok(s)) => {
            step(out, &format!("connect, TLS and {how} login"), Ok(String::new()))?;
            s
        }
        Ok(Err(e)) => {
            step(out, &format!("connect, TLS and {how} login"), Err(e.to_string()))?;
            return Ok(false);
        }
        Err(_) => {
            step(out, "connect, TLS and login", Err(format!("no answer within {:?} (imap.timeout)", i.timeout)))?;
            return Ok(false);
        }
    };
    let selected = session.select(&i.mailbox).await;
    let ok = selected.is_ok();
    step(
        out,
        &format!("SELECT {}", i.mailbox),
        selected.map(|m| format!("{} messages", m.exists)).map_err(|e| e.to_string()),
    )?;
    let _ = session.logout().await;
    Ok(ok)
}

async fn smtp_steps(config: &Config, source: Option<&TokenSource>, out: &mut dyn Write) -> anyhow::Result<bool> {
    let s = &config.smtp;
    writeln!(out, "SMTP {}:{} ({:?})", s.host, s.port, s.security)?;
    let token = match source {
        Some(src) => match token_step(config, src, out).await? {
            Some(t) => Some(t),
            None => return Ok(false),
        },
        None => None,
    };
    let login = match (source, &token) {
        (Some(source), Some(token)) => SmtpLogin::Token { user: &source.user, token, source },
        _ => SmtpLogin::Password,
    };
    let how = match (&token, &s.username) {
        (Some(_), _) => "AUTH XOAUTH2",
        (None, Some(_)) => "AUTH PLAIN/LOGIN",
        (None, None) => "no login",
    };
    match smtp::connect(config, login).await {
        Ok(mut conn) => {
            step(out, &format!("connect, EHLO, TLS and {how}"), Ok(String::new()))?;
            let _ = conn.quit().await;
            Ok(true)
        }
        Err(e) => {
            step(out, &format!("connect, EHLO, TLS and {how}"), Err(e.to_string()))?;
            Ok(false)
        }
    }
}
