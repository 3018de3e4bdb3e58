//! An IMAP account's settings (`[imap]`, a queue's `[queues.imap]`) checked, and the checks every
//! server table shares: the port for its security, and no clear text beyond loopback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use super::locate::Located;
use super::problems::Problems;
use super::secrets::PasswordSource;
use super::types::{AuthMethod, Imap, Secret, Security};

/// One IMAP account's settings: `[imap]`, or a queue's `[queues.imap]` (`table` names it).
pub(super) fn imap_settings(
    doc: &Located<'_>,
    problems: &mut Problems,
    table: &str,
    i: super::file::FileImap,
    has_oauth: bool,
    base: &Path,
) -> Imap {
    let key = |k: &str| format!("{table}.{k}");
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let imap_host =
        problems.required(doc, &key("host"), i.host, "the IMAP server's name or address").unwrap_or_default();
    let imap_user =
        problems.required(doc, &key("username"), i.username, "the mailbox's login name").unwrap_or_default();
    let imap_port = problems.take(doc.port(&key("port"), i.port, i.security, (993, 143, 143)));
    problems.take(doc.check_security(table, &imap_host, i.security));
    if i.auth == AuthMethod::Xoauth2 && !has_oauth {
        problems.push(
            doc.key_error(&key("auth"), "\"xoauth2\" needs an [oauth] table saying where tokens come from".into()),
        );
    }
    let password_needed = i.auth == AuthMethod::Password;
    let imap_password = if !password_needed {
        Secret::default()
    } else {
        problems.or(
            doc.secret(
                table,
                PasswordSource {
                    password: &i.password,
                    password_file: &i.password_file,
                    password_command: &i.password_command,
                },
                base,
            )
            .and_then(|p| {
                p.ok_or_else(|| {
                    doc.key_error(
                        &key("password_file"),
                        "the IMAP login needs one of password, password_file or password_command".into(),
                    )
                })
            }),
            Secret::default(),
        )
    };
    let poll_interval = i.poll_interval.0;
    if i.timeout.0 < Duration::from_secs(1) {
        problems.push(doc.key_error(&key("timeout"), "expected at least 1s".into()));
    }
    if poll_interval < Duration::from_secs(1) {
        problems.push(doc.key_error(&key("poll_interval"), "expected at least 1s".into()));
    }
    if !(1..=1000).contains(&i.batch_size) {
        problems.push(doc.key_error(&key("batch_size"), format!("expected 1..1000, got {}", i.batch_size)));
    }
    let ca_file = i.ca_file.map(resolve);
    if let Some(ca) = &ca_file
        && let Err(e) = std::fs::metadata(ca)
    {
        problems.push(doc.key_error(&key("ca_file"), format!("cannot read {}: {e}", ca.display())));
    }
    Imap {
        host: imap_host,
        port: imap_port,
        security: i.security,
        username: imap_user,
        password: imap_password,
        auth: i.auth,
        mailbox: i.mailbox,
        idle: i.idle,
        poll_interval,
        ca_file,
        batch_size: i.batch_size as u32,
        timeout: i.timeout.0,
    }
}

impl Located<'_> {
    pub(super) fn port(
        &self,
        key: &str,
        port: Option<i64>,
        security: Security,
        defaults: (u16, u16, u16),
    ) -> Result<u16, ConfigError> {
        match port {
            None => Ok(match security {
                Security::Tls => defaults.0,
                Security::Starttls => defaults.1,
                Security::None => defaults.2,
            }),
            Some(p) if (1..=65535).contains(&p) => Ok(p as u16),
            Some(p) => Err(self.key_error(key, format!("expected 1..65535, got {p}"))),
        }
    }

    pub(super) fn check_security(&self, section: &str, host: &str, security: Security) -> Result<(), ConfigError> {
        if security == Security::None && !is_loopback(host) {
            return Err(self.key_error(
                &format!("{section}.security"),
                format!("\"none\" sends passwords and mail in clear text, so it is allowed only for loopback hosts (127.0.0.1, ::1, localhost), not {host:?}; use \"tls\" or \"starttls\""),
            ));
        }
        Ok(())
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}
