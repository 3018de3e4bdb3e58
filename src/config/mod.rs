//! The TOML configuration: what the admin writes, checked once at start so that the daemon never
//! discovers a bad setting at 3 a.m.
//!
//! Every error names the file, the line and the key, and says what was expected, because the person
//! reading it is at a terminal with the file open. Secrets are loaded here (from `password`,
//! `password_file` or `password_command`) into [`Secret`], whose `Debug` never shows the value.

mod file;
mod imap;
mod itsm;
mod locate;
mod oauth;
mod problems;
mod queues;
mod secrets;
#[cfg(test)]
mod tests;
mod types;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::domain::parse_address;
pub use file::parse_duration;
pub use oauth::certificate_thumbprint;
pub use types::{
    Approvals, AuthMethod, Config, DEFAULT_QUEUE, Helpdesk, Imap, Limits, OAuth, OAuthGrant, OAuthProvider, Queue,
    QueueMailbox, RequestTemplate, Retention, Secret, Security, SecurityPolicy, Service, Smtp, Task, TypeSettings,
    WatchedMailbox,
};

use locate::read_config_file;

/// Runs a secret or token command (`/bin/sh -c`), stopped after `timeout`; its standard output.
pub fn run_command(cmd: &str, timeout: std::time::Duration) -> Result<Vec<u8>, String> {
    secrets::run_with_timeout(cmd, timeout)
}

pub use secrets::SECRET_COMMAND_TIMEOUT;

/// The default config path, used when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/maildesk/maildesk.toml";

/// A config problem, located as precisely as the file allows, and any further problems the same
/// check found: the admin fixes them all in one round instead of one per run.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// Dotted key path, e.g. `imap.port`; empty when the problem is the file itself.
    pub key: String,
    pub message: String,
    /// The other problems found, in the order of the file's tables; each on a line of its own.
    pub more: Vec<ConfigError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = self.line.map(|l| format!(":{l}")).unwrap_or_default();
        write!(f, "{}{line}: {}: {}", self.file.display(), self.key, self.message)?;
        for m in &self.more {
            write!(f, "\n{m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads, parses and validates the config file, and loads the secrets it points at.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        validate::parse(path, &read_config_file(path)?, true)
    }

    /// Like [`Config::load`], without reading any secret: for commands that only read the
    /// database (a password is then empty, and never used).
    pub fn load_for_view(path: &Path) -> Result<Config, ConfigError> {
        validate::parse(path, &read_config_file(path)?, false)
    }

    /// Parses `text` as if read from `path` (which locates relative paths and names the file in errors).
    pub fn from_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
        validate::parse(path, text, true)
    }
}
