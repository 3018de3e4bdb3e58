//! The TOML configuration: what the admin writes, checked once at start so that the daemon never
//! discovers a bad setting at 3 a.m.
//!
//! Every error names the file, the line and the key, and says what was expected, because the person
//! reading it is at a terminal with the file open. Secrets are loaded here (from `password`,
//! `password_file` or `password_command`) into [`Secret`], whose `Debug` never shows the value.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::domain::parse_address;

use serde::Deserialize;

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

/// The problems found so far. A check that fails is noted and the check goes on with a stand-in
/// value, which is never used: a config with any problem is not returned.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    fn push(&mut self, e: ConfigError) {
        self.0.push(e);
    }

    /// The value, or a stand-in after noting the problem.
    fn or<T>(&mut self, r: Result<T, ConfigError>, stand_in: T) -> T {
        r.unwrap_or_else(|e| {
            self.0.push(e);
            stand_in
        })
    }

    fn take<T: Default>(&mut self, r: Result<T, ConfigError>) -> T {
        self.or(r, T::default())
    }

    /// All problems as one error (the first, with the rest in `more`), if there were any.
    fn finish(self) -> Result<(), ConfigError> {
        let mut all = self.0.into_iter();
        match all.next() {
            None => Ok(()),
            Some(mut first) => {
                first.more = all.collect();
                Err(first)
            }
        }
    }
}

/// A password or other secret. Its `Debug` and `Display` are redacted so it cannot leak into logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which must succeed.
    Starttls,
    /// No encryption: accepted only for loopback hosts.
    None,
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; relative paths in it were resolved against its folder.
    pub source: PathBuf,
    pub helpdesk: Helpdesk,
    pub imap: Imap,
    pub smtp: Smtp,
    pub security: SecurityPolicy,
    pub sla: crate::sla::policy::SlaConfig,
    pub limits: Limits,
}

/// Brakes against mail loops that get past every header check (a dumb autoresponder that strips
/// everything and writes a fresh subject each time).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Automatic mails (acknowledgements) to one address within an hour.
    pub auto_replies_per_recipient_per_hour: u32,
    /// Automatic mails (acknowledgements, command errors) on one ticket within an hour.
    pub auto_replies_per_ticket_per_hour: u32,
    /// A bigger message still opens or joins its ticket, but only its headers and text are kept
    /// (the original stays in the mailbox), no attachment is stored, and the requester is told.
    pub max_message_bytes: usize,
    /// At most this many attachments are stored per message ...
    pub max_attachments: usize,
    /// ... and at most this many bytes of them in all.
    pub max_attachment_bytes: usize,
    /// At most this many watchers are added from one message's Cc ...
    pub max_watchers_per_message: usize,
    /// ... and a ticket has at most this many; the rest are reported on the ticket.
    pub max_watchers_per_ticket: usize,
}

/// How technicians are recognised (see `auth`).
#[derive(Debug, Clone)]
pub struct SecurityPolicy {
    /// Accepted proofs: "token" (per-ticket reply address) and/or "dmarc" (trusted Authentication-Results).
    pub technician_proof: Vec<crate::domain::Proof>,
    /// The receiving server whose Authentication-Results are trusted; DMARC is unused without it.
    pub authserv_id: Option<String>,
    /// How many `Received:` fields your own servers add above the authenticating server's
    /// Authentication-Results (0: it delivers to the mailbox itself).
    pub authserv_internal_hops: usize,
    /// Where the reply-token secret is read from; by default it is generated and kept in the database.
    pub reply_secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Helpdesk {
    pub name: String,
    pub tag: String,
    /// Lower-cased support address.
    pub address: String,
    pub database: PathBuf,
    pub templates: PathBuf,
    pub timezone: jiff::tz::TimeZone,
    pub timezone_name: String,
    /// Lower-cased technician addresses.
    pub technicians: Vec<String>,
    /// A reply to a ticket closed longer ago than this opens a new ticket that refers to it.
    pub reopen_window: Duration,
    /// Whether addresses in the requester's Cc become watchers of the ticket.
    pub cc_watchers: bool,
    /// Technician mail sent to this address is an internal note.
    pub comment_address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Imap {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: Secret,
    pub mailbox: String,
    pub idle: bool,
    pub poll_interval: Duration,
    pub ca_file: Option<PathBuf>,
    /// How many messages one UID FETCH asks for, and so the most one SQLite commit groups.
    pub batch_size: u32,
}

#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    /// Name given in EHLO; the support address's domain by default.
    pub hello_name: String,
    /// How long a transiently failing mail keeps being retried before it is recorded as failed.
    pub retry_for: Duration,
    /// How many SMTP connections the sender uses at once when the outbox has a backlog.
    pub connections: usize,
    /// How long to wait for any one reply of the SMTP server (and for the connection itself).
    pub timeout: Duration,
}

// ---------------------------------------------------------------------------------------------------
// The file as written. `deny_unknown_fields` turns a typo into an error instead of a silent default.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    helpdesk: FileHelpdesk,
    imap: FileImap,
    smtp: FileSmtp,
    #[serde(default)]
    security: FileSecurity,
    #[serde(default)]
    calendars: std::collections::BTreeMap<String, crate::sla::policy::FileCalendar>,
    #[serde(default)]
    sla: crate::sla::policy::FileSla,
    #[serde(default)]
    priority: crate::sla::policy::FilePriority,
    #[serde(default)]
    limits: FileLimits,
    /// Accepted at the top level too, for configs that put it before the first table.
    #[serde(default)]
    technicians: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHelpdesk {
    name: String,
    tag: String,
    address: String,
    #[serde(default = "default_database")]
    database: PathBuf,
    #[serde(default = "default_templates")]
    templates: PathBuf,
    #[serde(default = "default_timezone")]
    timezone: String,
    #[serde(default)]
    technicians: Vec<String>,
    #[serde(default = "default_reopen_window")]
    reopen_window: String,
    #[serde(default = "default_true")]
    cc_watchers: bool,
    comment_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    #[serde(default = "default_auto_limit")]
    auto_replies_per_recipient_per_hour: i64,
    #[serde(default = "default_auto_limit")]
    auto_replies_per_ticket_per_hour: i64,
    #[serde(default = "default_max_message_mb")]
    max_message_mb: i64,
    #[serde(default = "default_max_attachments")]
    max_attachments: i64,
    #[serde(default = "default_max_attachment_mb")]
    max_attachment_mb: i64,
    #[serde(default = "default_max_watchers_per_message")]
    max_watchers_per_message: i64,
    #[serde(default = "default_max_watchers_per_ticket")]
    max_watchers_per_ticket: i64,
}

fn default_max_watchers_per_message() -> i64 {
    10
}
fn default_max_watchers_per_ticket() -> i64 {
    50
}

fn default_max_message_mb() -> i64 {
    25
}
fn default_max_attachments() -> i64 {
    50
}
fn default_max_attachment_mb() -> i64 {
    20
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            auto_replies_per_recipient_per_hour: default_auto_limit(),
            auto_replies_per_ticket_per_hour: default_auto_limit(),
            max_message_mb: default_max_message_mb(),
            max_attachments: default_max_attachments(),
            max_attachment_mb: default_max_attachment_mb(),
            max_watchers_per_message: default_max_watchers_per_message(),
            max_watchers_per_ticket: default_max_watchers_per_ticket(),
        }
    }
}

fn default_auto_limit() -> i64 {
    10
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSecurity {
    #[serde(default = "default_technician_proof")]
    technician_proof: Vec<String>,
    authserv_id: Option<String>,
    #[serde(default)]
    authserv_internal_hops: usize,
    reply_secret_file: Option<PathBuf>,
}

impl Default for FileSecurity {
    fn default() -> Self {
        FileSecurity {
            technician_proof: default_technician_proof(),
            authserv_id: None,
            authserv_internal_hops: 0,
            reply_secret_file: None,
        }
    }
}

/// `token` only: a DMARC pass proves the sender's domain, not the mailbox (see `auth::dmarc_pass`).
fn default_technician_proof() -> Vec<String> {
    vec!["token".into()]
}
fn default_reopen_window() -> String {
    "14d".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileImap {
    host: String,
    port: Option<i64>,
    #[serde(default = "default_imap_security")]
    security: Security,
    username: String,
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_command: Option<String>,
    #[serde(default = "default_mailbox")]
    mailbox: String,
    #[serde(default = "default_true")]
    idle: bool,
    #[serde(default = "default_poll_interval")]
    poll_interval: String,
    ca_file: Option<PathBuf>,
    #[serde(default = "default_batch_size")]
    batch_size: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSmtp {
    host: String,
    port: Option<i64>,
    #[serde(default = "default_smtp_security")]
    security: Security,
    username: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_command: Option<String>,
    ca_file: Option<PathBuf>,
    hello_name: Option<String>,
    #[serde(default = "default_retry_for")]
    retry_for: String,
    #[serde(default = "default_connections")]
    connections: i64,
    #[serde(default = "default_smtp_timeout")]
    timeout: String,
    /// Accepted here as well: a config written straight after `[smtp]` lands in this table.
    #[serde(default)]
    technicians: Vec<String>,
}

/// Where a secret comes from: at most one of the three may be set.
struct PasswordSource<'a> {
    password: &'a Option<String>,
    password_file: &'a Option<PathBuf>,
    password_command: &'a Option<String>,
}

fn default_database() -> PathBuf {
    PathBuf::from("/var/lib/maildesk/maildesk.db")
}
fn default_templates() -> PathBuf {
    PathBuf::from("templates")
}
fn default_timezone() -> String {
    "UTC".into()
}
fn default_imap_security() -> Security {
    Security::Tls
}
fn default_smtp_security() -> Security {
    Security::Starttls
}
fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_true() -> bool {
    true
}
fn default_poll_interval() -> String {
    "60s".into()
}
fn default_batch_size() -> i64 {
    200
}
fn default_retry_for() -> String {
    "2d".into()
}
fn default_connections() -> i64 {
    2
}
fn default_smtp_timeout() -> String {
    "60s".into()
}

impl Config {
    /// Reads, parses and validates the config file, and loads the secrets it points at.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(path, &read_config_file(path)?, true)
    }

    /// Like [`Config::load`], without reading any secret: for commands that only read the
    /// database (a password is then empty, and never used).
    pub fn load_for_view(path: &Path) -> Result<Config, ConfigError> {
        Config::parse(path, &read_config_file(path)?, false)
    }

    /// Parses `text` as if read from `path` (which locates relative paths and names the file in errors).
    pub fn from_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse(path, text, true)
    }

    fn parse(path: &Path, text: &str, secrets: bool) -> Result<Config, ConfigError> {
        let doc = Located { file: path, text, secrets };
        let raw: FileConfig = toml::from_str(text).map_err(|e| doc.parse_error(&e))?;
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut problems = Problems::default();

        let h = raw.helpdesk;
        let tag = h.tag.trim().to_string();
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            problems.push(doc.key_error(
                "helpdesk.tag",
                format!(
                    "expected letters, digits, '-' or '_' (it goes into subjects as \"[TAG #123]\"), got {:?}",
                    h.tag
                ),
            ));
        }
        let address = problems.take(parse_address(&h.address).ok_or_else(|| {
            doc.key_error(
                "helpdesk.address",
                format!("expected a mail address like support@example.com, got {:?}", h.address),
            )
        }));
        let timezone = problems.or(
            jiff::tz::TimeZone::get(&h.timezone).map_err(|e| {
                doc.key_error("helpdesk.timezone", format!("expected an IANA time zone like \"Europe/Berlin\": {e}"))
            }),
            jiff::tz::TimeZone::UTC,
        );
        let mut technicians = Vec::new();
        for (key, list) in [
            ("helpdesk.technicians", &h.technicians),
            ("technicians", &raw.technicians),
            ("smtp.technicians", &raw.smtp.technicians),
        ] {
            for t in list {
                let Some(a) = parse_address(t) else {
                    problems.push(doc.key_error(key, format!("expected mail addresses, got {t:?}")));
                    continue;
                };
                if !technicians.contains(&a) {
                    technicians.push(a);
                }
            }
        }
        let helpdesk = Helpdesk {
            name: h.name,
            tag,
            address: address.clone(),
            database: resolve(h.database),
            templates: resolve(h.templates),
            timezone,
            timezone_name: h.timezone,
            technicians,
            reopen_window: problems.take(doc.duration("helpdesk.reopen_window", &h.reopen_window)),
            cc_watchers: h.cc_watchers,
            comment_address: match &h.comment_address {
                Some(a) => Some(problems.take(parse_address(a).ok_or_else(|| {
                    doc.key_error("helpdesk.comment_address", format!("expected a mail address, got {a:?}"))
                }))),
                None => None,
            },
        };

        let i = raw.imap;
        let imap_port = problems.take(doc.port("imap.port", i.port, i.security, (993, 143, 143)));
        problems.take(doc.check_security("imap", &i.host, i.security));
        let imap_password = problems.or(
            doc.secret(
                "imap",
                PasswordSource {
                    password: &i.password,
                    password_file: &i.password_file,
                    password_command: &i.password_command,
                },
                &base,
            )
            .and_then(|p| {
                p.ok_or_else(|| {
                    doc.key_error(
                        "imap.password_file",
                        "the IMAP login needs one of password, password_file or password_command".into(),
                    )
                })
            }),
            Secret::default(),
        );
        let poll_interval = problems.or(doc.duration("imap.poll_interval", &i.poll_interval), Duration::from_secs(1));
        if poll_interval < Duration::from_secs(1) {
            problems.push(doc.key_error("imap.poll_interval", "expected at least 1s".into()));
        }
        if !(1..=1000).contains(&i.batch_size) {
            problems.push(doc.key_error("imap.batch_size", format!("expected 1..1000, got {}", i.batch_size)));
        }
        let imap = Imap {
            host: i.host,
            port: imap_port,
            security: i.security,
            username: i.username,
            password: imap_password,
            mailbox: i.mailbox,
            idle: i.idle,
            poll_interval,
            ca_file: i.ca_file.map(resolve),
            batch_size: i.batch_size as u32,
        };

        let s = raw.smtp;
        let smtp_port = problems.take(doc.port("smtp.port", s.port, s.security, (465, 587, 25)));
        problems.take(doc.check_security("smtp", &s.host, s.security));
        let smtp_password = problems.take(doc.secret(
            "smtp",
            PasswordSource {
                password: &s.password,
                password_file: &s.password_file,
                password_command: &s.password_command,
            },
            &base,
        ));
        if smtp_password.is_some() && s.username.is_none() {
            problems.push(doc.key_error("smtp.username", "a password is set, so a username is needed too".into()));
        }
        if !(1..=16).contains(&s.connections) {
            problems.push(doc.key_error("smtp.connections", format!("expected 1..16, got {}", s.connections)));
        }
        let domain = address.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
        let smtp = Smtp {
            host: s.host,
            port: smtp_port,
            security: s.security,
            username: s.username,
            password: smtp_password,
            ca_file: s.ca_file.map(resolve),
            hello_name: s.hello_name.unwrap_or(domain),
            retry_for: problems.take(doc.duration("smtp.retry_for", &s.retry_for)),
            connections: s.connections as usize,
            timeout: problems.take(doc.duration("smtp.timeout", &s.timeout)),
        };
        for (key, ca) in [("imap.ca_file", &imap.ca_file), ("smtp.ca_file", &smtp.ca_file)] {
            if let Some(ca) = ca
                && let Err(e) = std::fs::metadata(ca)
            {
                problems.push(doc.key_error(key, format!("cannot read {}: {e}", ca.display())));
            }
        }
        let sec = raw.security;
        let mut technician_proof = Vec::new();
        for proof in &sec.technician_proof {
            technician_proof.push(match proof.as_str() {
                "token" => crate::domain::Proof::Token,
                "dmarc" => crate::domain::Proof::Dmarc,
                _ => {
                    problems.push(doc.key_error(
                        "security.technician_proof",
                        format!("expected \"token\" and/or \"dmarc\", got {proof:?}"),
                    ));
                    continue;
                }
            });
        }
        if sec.technician_proof.is_empty() {
            problems.push(doc.key_error(
                "security.technician_proof",
                "expected at least one of \"token\" and \"dmarc\" (otherwise nobody is a technician)".into(),
            ));
        }
        let security = SecurityPolicy {
            technician_proof,
            authserv_id: sec.authserv_id,
            authserv_internal_hops: sec.authserv_internal_hops,
            reply_secret_file: match sec.reply_secret_file {
                Some(f) => match expand_credentials(&f) {
                    Ok(f) => Some(resolve(f)),
                    Err(e) => {
                        problems.push(doc.key_error("security.reply_secret_file", e));
                        None
                    }
                },
                None => None,
            },
        };
        if let (true, Some(f)) = (secrets, &security.reply_secret_file) {
            let len = std::fs::read(f)
                .map(|b| b.len())
                .map_err(|e| doc.key_error("security.reply_secret_file", format!("cannot read {}: {e}", f.display())));
            let len = problems.or(len, 16);
            if len < 16 {
                return Err(doc.key_error(
                    "security.reply_secret_file",
                    format!("{} holds {len} bytes; use at least 16 random bytes", f.display()),
                ));
            }
        }
        let limit = |key: &str, v: i64| -> Result<u32, ConfigError> {
            u32::try_from(v)
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| doc.key_error(key, format!("expected a number of at least 1, got {v}")))
        };
        let limits = Limits {
            auto_replies_per_recipient_per_hour: problems.take(limit(
                "limits.auto_replies_per_recipient_per_hour",
                raw.limits.auto_replies_per_recipient_per_hour,
            )),
            auto_replies_per_ticket_per_hour: problems
                .take(limit("limits.auto_replies_per_ticket_per_hour", raw.limits.auto_replies_per_ticket_per_hour)),
            max_message_bytes: problems.take(limit("limits.max_message_mb", raw.limits.max_message_mb)) as usize
                * 1024
                * 1024,
            max_attachments: problems.take(limit("limits.max_attachments", raw.limits.max_attachments)) as usize,
            max_attachment_bytes: problems.take(limit("limits.max_attachment_mb", raw.limits.max_attachment_mb))
                as usize
                * 1024
                * 1024,
            max_watchers_per_message: problems
                .take(limit("limits.max_watchers_per_message", raw.limits.max_watchers_per_message))
                as usize,
            max_watchers_per_ticket: problems
                .take(limit("limits.max_watchers_per_ticket", raw.limits.max_watchers_per_ticket))
                as usize,
        };
        let sla =
            crate::sla::policy::build(raw.calendars, raw.sla, raw.priority, &helpdesk.timezone, &base, &parse_duration)
                .map_err(|(key, message)| doc.key_error(&key, message));
        // The SLA policy has no stand-in: it is the last check, and every problem found so far
        // is reported with its own.
        let sla = problems.or(sla.map(Some), None);
        problems.finish()?;
        let Some(sla) = sla else { return Err(doc.key_error("sla", "invalid".into())) };
        Ok(Config { source: path.to_path_buf(), helpdesk, imap, smtp, security, sla, limits })
    }
}

/// The keys of each plain table, for telling an admin where a key they put in the wrong table
/// belongs. (A test checks every one is accepted where it is listed.)
const TABLE_KEYS: [(&str, &[&str]); 5] = [
    (
        "helpdesk",
        &[
            "name",
            "tag",
            "address",
            "database",
            "templates",
            "timezone",
            "technicians",
            "reopen_window",
            "cc_watchers",
            "comment_address",
        ],
    ),
    (
        "imap",
        &[
            "host",
            "port",
            "security",
            "username",
            "password",
            "password_file",
            "password_command",
            "mailbox",
            "idle",
            "poll_interval",
            "ca_file",
            "batch_size",
        ],
    ),
    (
        "smtp",
        &[
            "host",
            "port",
            "security",
            "username",
            "password",
            "password_file",
            "password_command",
            "ca_file",
            "hello_name",
            "retry_for",
            "connections",
            "timeout",
        ],
    ),
    ("security", &["technician_proof", "authserv_id", "authserv_internal_hops", "reply_secret_file"]),
    (
        "limits",
        &[
            "auto_replies_per_recipient_per_hour",
            "auto_replies_per_ticket_per_hour",
            "max_message_mb",
            "max_attachments",
            "max_attachment_mb",
            "max_watchers_per_message",
            "max_watchers_per_ticket",
        ],
    ),
];

/// For an unknown `table.key` (or a top-level `key`): the tables where that key belongs, if any.
fn misplaced(dotted: &str) -> Option<String> {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let homes: Vec<String> = TABLE_KEYS
        .iter()
        .filter(|(t, keys)| *t != table && keys.contains(&key))
        .map(|(t, _)| format!("[{t}]"))
        .collect();
    (!homes.is_empty()).then(|| format!("`{key}` belongs in {}", homes.join(" or ")))
}

/// Parses durations written as `90s`, `15m`, `4h`, `2d` or combinations like `1h30m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            ' ' if number.is_empty() => continue,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    number.is_empty().then_some(Duration::from_secs(total))
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false)
}

/// The source text, for turning byte offsets and key paths into line numbers.
struct Located<'a> {
    file: &'a Path,
    text: &'a str,
    /// Read the secrets the config points at (the daemon and `check`); the read-only CLI views
    /// need none, so a vault command is not run and a systemd credential need not exist for them.
    secrets: bool,
}

fn read_config_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        key: String::new(),
        message: format!("cannot read the config file: {e}"),
        more: Vec::new(),
    })
}

/// `$CREDENTIALS_DIRECTORY/NAME` (or `${CREDENTIALS_DIRECTORY}/NAME`): a secret systemd passes with
/// `LoadCredential=`, readable by the service's dynamic user only.
fn expand_credentials(p: &Path) -> Result<PathBuf, String> {
    let text = p.to_string_lossy();
    let rest = text.strip_prefix("$CREDENTIALS_DIRECTORY/").or_else(|| text.strip_prefix("${CREDENTIALS_DIRECTORY}/"));
    match rest {
        None => Ok(p.to_path_buf()),
        Some(name) => match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(dir) => Ok(PathBuf::from(dir).join(name)),
            None => Err(format!(
                "{text}: CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with LoadCredential=; \
                 outside systemd use a plain path)"
            )),
        },
    }
}

impl Located<'_> {
    fn line_at(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].matches('\n').count() + 1
    }

    fn parse_error(&self, e: &toml::de::Error) -> ConfigError {
        let span = e.span();
        let key = span.clone().map(|s| self.key_at(&s)).unwrap_or_default();
        let mut message = e.message().trim().to_string();
        if let Some(hint) = misplaced(&key) {
            message.push_str(&format!("; {hint}"));
        }
        ConfigError {
            file: self.file.to_path_buf(),
            line: span.map(|s| self.line_at(s.start)),
            key: if key.is_empty() { "(file)".into() } else { key },
            message,
            more: Vec::new(),
        }
    }

    fn key_error(&self, key: &str, message: String) -> ConfigError {
        // "priority.rules[2]" is located at "priority.rules".
        let plain = key.split('[').next().unwrap_or(key);
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.line_of(plain),
            key: key.into(),
            message,
            more: Vec::new(),
        }
    }

    /// The line where a dotted key is written, if it is written at all (defaults have no line).
    fn line_of(&self, key: &str) -> Option<usize> {
        let table = toml::de::DeTable::parse(self.text).ok()?;
        let mut current = table.get_ref();
        let parts: Vec<&str> = key.split('.').collect();
        for (n, part) in parts.iter().enumerate() {
            let (k, v) = current.iter().find(|(k, _)| k.get_ref().as_ref() == *part)?;
            if n + 1 == parts.len() {
                return Some(self.line_at(k.span().start));
            }
            match v.get_ref() {
                toml::de::DeValue::Table(t) => current = t,
                _ => return Some(self.line_at(k.span().start)),
            }
        }
        None
    }

    /// The deepest key whose key or value contains the byte range: names the key a serde error is
    /// about. (A `[table]`'s own span covers only its header, so tables are always searched.)
    fn key_at(&self, span: &Range<usize>) -> String {
        fn search(table: &toml::de::DeTable<'_>, span: &Range<usize>) -> Option<Vec<String>> {
            for (k, v) in table.iter() {
                let name = k.get_ref().to_string();
                if let toml::de::DeValue::Table(t) = v.get_ref()
                    && let Some(mut rest) = search(t, span)
                {
                    rest.insert(0, name);
                    return Some(rest);
                }
                let within = |r: Range<usize>| r.start <= span.start && span.end <= r.end;
                if within(k.span()) || within(v.span()) {
                    return Some(vec![name]);
                }
            }
            None
        }
        toml::de::DeTable::parse(self.text)
            .ok()
            .and_then(|t| search(t.get_ref(), span))
            .map(|p| p.join("."))
            .unwrap_or_default()
    }

    fn port(
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

    fn check_security(&self, section: &str, host: &str, security: Security) -> Result<(), ConfigError> {
        if security == Security::None && !is_loopback(host) {
            return Err(self.key_error(
                &format!("{section}.security"),
                format!("\"none\" sends passwords and mail in clear text, so it is allowed only for loopback hosts (127.0.0.1, ::1, localhost), not {host:?}; use \"tls\" or \"starttls\""),
            ));
        }
        Ok(())
    }

    fn duration(&self, key: &str, value: &str) -> Result<Duration, ConfigError> {
        parse_duration(value).ok_or_else(|| {
            self.key_error(key, format!("expected a duration like \"90s\", \"15m\", \"4h\" or \"2d\", got {value:?}"))
        })
    }

    /// Loads the secret from whichever one source is set. The error never contains the secret itself.
    fn secret(&self, section: &str, src: PasswordSource<'_>, base: &Path) -> Result<Option<Secret>, ConfigError> {
        let set = [src.password.is_some(), src.password_file.is_some(), src.password_command.is_some()];
        if set.iter().filter(|s| **s).count() > 1 {
            return Err(self.key_error(
                &format!("{section}.password"),
                "set only one of password, password_file and password_command".into(),
            ));
        }
        if let Some(p) = &src.password {
            return Ok(Some(Secret::new(p.clone())));
        }
        if !self.secrets {
            return Ok(set.iter().any(|s| *s).then(|| Secret::new("")));
        }
        if let Some(file) = &src.password_file {
            let key = format!("{section}.password_file");
            let file = expand_credentials(file).map_err(|e| self.key_error(&key, e))?;
            let path = if file.is_absolute() { file.clone() } else { base.join(&file) };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| self.key_error(&key, format!("cannot read {}: {e}", path.display())))?;
            let secret = text.lines().next().unwrap_or("").to_string();
            if secret.is_empty() {
                return Err(self.key_error(&key, format!("{} is empty", path.display())));
            }
            return Ok(Some(Secret::new(secret)));
        }
        if let Some(cmd) = &src.password_command {
            let key = format!("{section}.password_command");
            let out = run_with_timeout(cmd, SECRET_COMMAND_TIMEOUT).map_err(|e| self.key_error(&key, e))?;
            let text = String::from_utf8_lossy(&out);
            let secret = text.lines().next().unwrap_or("").to_string();
            if secret.is_empty() {
                return Err(self.key_error(&key, "the command printed nothing".into()));
            }
            return Ok(Some(Secret::new(secret)));
        }
        Ok(None)
    }
}

/// A `password_command` that hangs (a vault that does not answer) must not hang `maildesk check`,
/// every CLI view, or a reload.
const SECRET_COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `cmd` with `/bin/sh -c`, and returns what it printed; kills it after `timeout`.
fn run_with_timeout(cmd: &str, timeout: std::time::Duration) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run /bin/sh: {e}"))?;
    let stdout = child.stdout.take().ok_or("no output pipe")?;
    // Read beside the wait, so a command that prints a lot cannot block on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout.take(1 << 20).read_to_end(&mut out).map(|_| out)
    });
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(std::time::Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the command did not finish within {} s and was stopped", timeout.as_secs()));
            }
            Err(e) => return Err(format!("cannot wait for the command: {e}")),
        }
    };
    if !status.success() {
        return Err(format!("the command failed ({status})"));
    }
    reader
        .join()
        .map_err(|_| "the output reader failed".to_string())?
        .map_err(|e| format!("cannot read its output: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hanging_password_command_is_stopped() {
        let start = std::time::Instant::now();
        let e = run_with_timeout("sleep 30", std::time::Duration::from_millis(300)).unwrap_err();
        assert!(e.contains("did not finish"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(run_with_timeout("echo s3cret", std::time::Duration::from_secs(5)).unwrap(), b"s3cret\n");
    }

    const GOOD: &str = r#"
[helpdesk]
name = "ACME IT"
tag = "ACME"
address = "Support@Acme.example"
database = "state/maildesk.db"
timezone = "Europe/Berlin"
technicians = ["Tech1@acme.example"]

[imap]
host = "127.0.0.1"
port = 1143
security = "none"
username = "support@acme.example"
password = "hunter2"

[smtp]
host = "127.0.0.1"
port = 2525
security = "none"
"#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_str(Path::new("/etc/maildesk/maildesk.toml"), text)
    }

    #[test]
    fn good_config_resolves_paths_and_defaults() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.helpdesk.address, "support@acme.example");
        assert_eq!(c.helpdesk.database, PathBuf::from("/etc/maildesk/state/maildesk.db"));
        assert_eq!(c.helpdesk.templates, PathBuf::from("/etc/maildesk/templates"));
        assert_eq!(c.helpdesk.technicians, vec!["tech1@acme.example"]);
        assert_eq!(c.imap.mailbox, "INBOX");
        assert_eq!(c.imap.poll_interval, Duration::from_secs(60));
        assert!(c.imap.idle);
        assert_eq!(c.smtp.hello_name, "acme.example");
        assert!(!format!("{:?}", c).contains("hunter2"), "secrets must not appear in Debug output");
    }

    #[test]
    fn every_listed_key_is_accepted_in_its_table_and_a_misplaced_one_gets_a_hint() {
        for (table, keys) in TABLE_KEYS {
            for key in keys {
                let text = format!("[{table}]\n{key} = 0\n");
                let err = match toml::from_str::<FileConfig>(&text) {
                    Ok(_) => continue,
                    Err(e) => e.message().to_string(),
                };
                assert!(!err.contains("unknown field"), "[{table}] {key}: {err}");
            }
        }
        let text = GOOD.replace("[imap]\n", "[imap]\ntechnician_proof = [\"token\"]\n");
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains("`technician_proof` belongs in [security]"), "{err}");
        let err = load(&GOOD.replace("[helpdesk]\n", "[helpdesk]\nhost = \"x\"\n")).unwrap_err().to_string();
        assert!(err.contains("`host` belongs in [imap] or [smtp]"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = GOOD
            .replace("tag = \"ACME\"", "tag = \"A B\"")
            .replace("[imap]\n", "[imap]\nbatch_size = 0\n")
            .replace("[smtp]\n", "[smtp]\nconnections = 99\n");
        let err = load(&text).unwrap_err();
        let shown = err.to_string();
        assert_eq!(shown.lines().count(), 3, "{shown}");
        for key in ["helpdesk.tag", "imap.batch_size", "smtp.connections"] {
            assert!(shown.contains(key), "{key} missing from {shown}");
        }
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases: &[(&str, &str, usize, &str)] = &[
            ("port = 1143", "port = 0", 12, "imap.port"),
            ("port = 1143", "port = \"x\"", 12, "imap.port"),
            ("tag = \"ACME\"", "tag = \"AC ME\"", 4, "helpdesk.tag"),
            ("timezone = \"Europe/Berlin\"", "timezone = \"Mars/Olympus\"", 7, "helpdesk.timezone"),
            ("host = \"127.0.0.1\"\nport = 1143", "host = \"imap.acme.example\"\nport = 1143", 13, "imap.security"),
            ("password = \"hunter2\"", "pasword = \"hunter2\"", 15, "imap"),
        ];
        for (from, to, line, key) in cases {
            let text = GOOD.replacen(from, to, 1);
            let err = load(&text).unwrap_err();
            assert_eq!(err.line, Some(*line), "{to}: {err}");
            assert!(err.key.starts_with(key), "{to}: key {:?} in {err}", err.key);
            assert!(err.to_string().starts_with(&format!("/etc/maildesk/maildesk.toml:{line}: ")), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration(""), None);
    }
}
