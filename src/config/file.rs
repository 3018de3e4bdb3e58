//! The file as written: a serde mirror of the TOML, with its defaults, and the list of keys each
//! table takes (for telling an admin where a misplaced key belongs).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Security;

/// The whole file. Every table and key may be missing here: a missing required key is one of the
/// problems validation collects (all reported at once), and every other key has its default in the
/// `Default` of its table, written once. `deny_unknown_fields` turns a typo into an error instead of
/// a silent default.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileConfig {
    pub(super) helpdesk: FileHelpdesk,
    pub(super) imap: FileImap,
    pub(super) smtp: FileSmtp,
    pub(super) security: FileSecurity,
    pub(super) calendars: std::collections::BTreeMap<String, crate::sla::policy::FileCalendar>,
    pub(super) sla: crate::sla::policy::FileSla,
    pub(super) priority: crate::sla::policy::FilePriority,
    pub(super) limits: FileLimits,
    pub(super) retention: FileRetention,
    pub(super) metrics: FileMetrics,
    pub(super) digests: FileDigests,
    pub(super) oauth: Option<FileOAuth>,
    /// Accepted at the top level too, for configs that put it before the first table.
    pub(super) technicians: Vec<String>,
    pub(super) queues: Vec<FileQueue>,
    pub(super) routing: Vec<FileRoute>,
    pub(super) macros: std::collections::BTreeMap<String, FileMacro>,
    pub(super) services: Vec<FileService>,
    /// Approvals of a change whose service has none of its own.
    pub(super) changes: Option<FileApprovals>,
    /// `[types.change]`: a ticket type's templates and SLA policy.
    pub(super) types: std::collections::BTreeMap<String, FileTypeSettings>,
    pub(super) problems: FileProblems,
    pub(super) request_templates: std::collections::BTreeMap<String, FileRequestTemplate>,
}

/// One `[[services]]` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileService {
    /// Required.
    pub(super) name: Option<String>,
    pub(super) owner: Option<String>,
    pub(super) queue: Option<String>,
    pub(super) addresses: Vec<String>,
    pub(super) keywords: Vec<String>,
    pub(super) sla: Option<crate::sla::policy::FileQueueSla>,
    pub(super) approvals: Option<FileApprovals>,
}

/// `[services.approvals]` or `[changes]`: who approves a change, how many must.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileApprovals {
    pub(super) approvers: Vec<String>,
    pub(super) required: Option<FileRequired>,
    pub(super) remind_after: Option<FileDuration>,
}

/// `"any"`, `"all"` or a number.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum FileRequired {
    Count(i64),
    Name(String),
}

/// `[types.NAME]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileTypeSettings {
    /// Mail sent to one of these is of this type.
    pub(super) addresses: Vec<String>,
    pub(super) templates: Option<PathBuf>,
    pub(super) sla: Option<crate::sla::policy::FileQueueSla>,
}

/// `[problems]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileProblems {
    pub(super) resolve_incidents: bool,
}

impl Default for FileProblems {
    fn default() -> Self {
        FileProblems { resolve_incidents: true }
    }
}

/// `[request_templates.NAME]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileRequestTemplate {
    pub(super) subject_matches: Option<String>,
    pub(super) tasks: Vec<FileTask>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileTask {
    pub(super) queue: Option<String>,
    pub(super) title: Option<String>,
}

/// One `[macros.NAME]`: technician commands applied together, and a canned reply.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileMacro {
    pub(super) commands: Vec<String>,
    pub(super) reply: Option<String>,
}

/// One `[[queues]]` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileQueue {
    /// Required.
    pub(super) name: Option<String>,
    pub(super) addresses: Vec<String>,
    /// Another folder of the `[imap]` account ...
    pub(super) folder: Option<String>,
    /// ... or a mailbox of its own.
    pub(super) imap: Option<FileImap>,
    pub(super) oauth: Option<FileOAuth>,
    pub(super) team: Vec<String>,
    pub(super) lead: Option<String>,
    pub(super) templates: Option<PathBuf>,
    pub(super) sla: Option<crate::sla::policy::FileQueueSla>,
    pub(super) default_priority: Option<String>,
    pub(super) assign: Option<String>,
}

/// One `[[routing]]` rule: conditions, then what it sets.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileRoute {
    pub(super) from: Vec<String>,
    pub(super) from_domain: Vec<String>,
    pub(super) subject_matches: Option<String>,
    pub(super) body_matches: Option<String>,
    /// "Name: pattern".
    pub(super) header: Option<String>,
    pub(super) queue: Option<String>,
    pub(super) priority: Option<String>,
    pub(super) assign: Option<String>,
    #[serde(rename = "type")]
    pub(super) ticket_type: Option<String>,
    pub(super) service: Option<String>,
    /// A request template the new ticket follows.
    pub(super) template: Option<String>,
}

/// A duration as written (`90s`, `15m`, `4h`, `2d`, `1h30m`), read by serde so that a bad one is
/// reported at its line like any other wrong value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileDuration(pub(super) Duration);

impl<'de> Deserialize<'de> for FileDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map(FileDuration).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected a duration like \"90s\", \"15m\", \"4h\" or \"2d\", got {text:?}"
            ))
        })
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileHelpdesk {
    /// Required.
    pub(super) name: Option<String>,
    /// Required.
    pub(super) tag: Option<String>,
    /// Required.
    pub(super) address: Option<String>,
    pub(super) database: PathBuf,
    pub(super) templates: PathBuf,
    pub(super) timezone: String,
    pub(super) technicians: Vec<String>,
    pub(super) reopen_window: FileDuration,
    pub(super) cc_watchers: bool,
    pub(super) comment_address: Option<String>,
    pub(super) admins: Vec<String>,
    pub(super) alert_after: FileDuration,
}

impl Default for FileHelpdesk {
    fn default() -> Self {
        FileHelpdesk {
            name: None,
            tag: None,
            address: None,
            database: PathBuf::from("/var/lib/maildesk/maildesk.db"),
            templates: PathBuf::from("templates"),
            timezone: "UTC".into(),
            technicians: Vec::new(),
            reopen_window: FileDuration(Duration::from_secs(14 * 86_400)),
            cc_watchers: true,
            comment_address: None,
            admins: Vec::new(),
            alert_after: FileDuration(Duration::from_secs(600)),
        }
    }
}

/// Digests are off unless scheduled.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileDigests {
    /// "08:00": each technician's daily digest, in `helpdesk.timezone`.
    pub(super) daily: Option<String>,
    /// "mon 08:00": the weekly digest to leads and admins.
    pub(super) weekly: Option<String>,
    /// A pending ticket counts as waiting on its requester after this long.
    pub(super) waiting_after: FileDuration,
    /// More recipients of the weekly digest.
    pub(super) weekly_to: Vec<String>,
}

impl Default for FileDigests {
    fn default() -> Self {
        FileDigests {
            daily: None,
            weekly: None,
            waiting_after: FileDuration(Duration::from_secs(3 * 86_400)),
            weekly_to: Vec::new(),
        }
    }
}

/// Off unless `listen` is set.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileMetrics {
    pub(super) listen: Option<String>,
}

/// Both off unless set: nothing is ever removed by default.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileRetention {
    pub(super) drop_raw_after: Option<FileDuration>,
    pub(super) delete_after: Option<FileDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileLimits {
    pub(super) auto_replies_per_recipient_per_hour: i64,
    pub(super) auto_replies_per_ticket_per_hour: i64,
    pub(super) max_message_mb: i64,
    pub(super) max_attachments: i64,
    pub(super) max_attachment_mb: i64,
    pub(super) forward_attachments_mb: i64,
    pub(super) max_watchers_per_message: i64,
    pub(super) max_watchers_per_ticket: i64,
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            auto_replies_per_recipient_per_hour: 10,
            auto_replies_per_ticket_per_hour: 10,
            max_message_mb: 25,
            max_attachments: 50,
            max_attachment_mb: 20,
            forward_attachments_mb: 15,
            max_watchers_per_message: 10,
            max_watchers_per_ticket: 50,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileSecurity {
    pub(super) technician_proof: Vec<String>,
    pub(super) authserv_id: Option<String>,
    pub(super) authserv_internal_hops: usize,
    pub(super) reply_secret_file: Option<PathBuf>,
}

impl Default for FileSecurity {
    fn default() -> Self {
        FileSecurity {
            // `token` only: a DMARC pass proves the sender's domain, not the mailbox (see
            // `auth::dmarc_pass`).
            technician_proof: vec!["token".into()],
            authserv_id: None,
            authserv_internal_hops: 0,
            reply_secret_file: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileImap {
    /// Required.
    pub(super) host: Option<String>,
    pub(super) port: Option<i64>,
    pub(super) security: Security,
    /// Required.
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) password_command: Option<String>,
    pub(super) auth: AuthMethod,
    pub(super) mailbox: String,
    pub(super) idle: bool,
    pub(super) poll_interval: FileDuration,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) batch_size: i64,
    pub(super) timeout: FileDuration,
}

impl Default for FileImap {
    fn default() -> Self {
        FileImap {
            host: None,
            port: None,
            security: Security::Tls,
            username: None,
            password: None,
            password_file: None,
            password_command: None,
            auth: AuthMethod::Password,
            mailbox: "INBOX".into(),
            idle: true,
            poll_interval: FileDuration(Duration::from_secs(60)),
            ca_file: None,
            batch_size: 200,
            timeout: FileDuration(Duration::from_secs(5 * 60)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileSmtp {
    /// Required.
    pub(super) host: Option<String>,
    pub(super) port: Option<i64>,
    pub(super) security: Security,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) password_command: Option<String>,
    pub(super) auth: AuthMethod,
    pub(super) oauth: Option<FileOAuth>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) hello_name: Option<String>,
    pub(super) retry_for: FileDuration,
    pub(super) connections: i64,
    pub(super) timeout: FileDuration,
    /// Accepted here as well: a config written straight after `[smtp]` lands in this table.
    pub(super) technicians: Vec<String>,
}

impl Default for FileSmtp {
    fn default() -> Self {
        FileSmtp {
            host: None,
            port: None,
            security: Security::Starttls,
            username: None,
            password: None,
            password_file: None,
            password_command: None,
            auth: AuthMethod::Password,
            oauth: None,
            ca_file: None,
            hello_name: None,
            retry_for: FileDuration(Duration::from_secs(2 * 86_400)),
            connections: 2,
            timeout: FileDuration(Duration::from_secs(60)),
            technicians: Vec::new(),
        }
    }
}

/// The keys of each plain table, for telling an admin where a key they put in the wrong table
/// belongs. (A test checks every one is accepted where it is listed.)
pub(super) const TABLE_KEYS: [(&str, &[&str]); 11] = [
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
            "admins",
            "alert_after",
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
            "auth",
            "mailbox",
            "idle",
            "poll_interval",
            "timeout",
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
            "auth",
            "ca_file",
            "hello_name",
            "retry_for",
            "connections",
            "timeout",
        ],
    ),
    ("security", &["technician_proof", "authserv_id", "authserv_internal_hops", "reply_secret_file"]),
    ("retention", &["drop_raw_after", "delete_after"]),
    ("metrics", &["listen"]),
    ("digests", &["daily", "weekly", "waiting_after", "weekly_to"]),
    ("changes", &["approvers", "required", "remind_after"]),
    ("problems", &["resolve_incidents"]),
    ("oauth", OAUTH_KEYS),
    (
        "limits",
        &[
            "auto_replies_per_recipient_per_hour",
            "auto_replies_per_ticket_per_hour",
            "max_message_mb",
            "max_attachments",
            "max_attachment_mb",
            "forward_attachments_mb",
            "max_watchers_per_message",
            "max_watchers_per_ticket",
        ],
    ),
];

/// For an unknown `table.key` (or a top-level `key`): the tables where that key belongs, if any.
pub(super) fn misplaced(dotted: &str) -> Option<String> {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let homes: Vec<String> = TABLE_KEYS
        .iter()
        .filter(|(t, keys)| *t != table && keys.contains(&key))
        .map(|(t, _)| format!("[{t}]"))
        .collect();
    (!homes.is_empty()).then(|| format!("`{key}` belongs in {}", homes.join(" or ")))
}

/// How maildesk proves who it is to a mail server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// LOGIN on IMAP, PLAIN or LOGIN on SMTP.
    #[default]
    Password,
    /// SASL XOAUTH2 with an access token from `[oauth]`.
    Xoauth2,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileOAuth {
    pub(super) provider: Option<String>,
    pub(super) flow: Option<String>,
    pub(super) tenant: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) scopes: Option<Vec<String>>,
    pub(super) token_url: Option<String>,
    pub(super) device_url: Option<String>,
    pub(super) client_secret_file: Option<PathBuf>,
    pub(super) client_secret_command: Option<String>,
    pub(super) certificate_file: Option<PathBuf>,
    pub(super) private_key_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) token_command: Option<String>,
}

pub(super) const OAUTH_KEYS: &[&str] = &[
    "provider",
    "flow",
    "tenant",
    "client_id",
    "scopes",
    "token_url",
    "device_url",
    "client_secret_file",
    "client_secret_command",
    "certificate_file",
    "private_key_file",
    "key_file",
    "token_command",
];
