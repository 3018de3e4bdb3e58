//! The validated configuration as the rest of maildesk sees it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
    pub retention: Retention,
    /// Where the Prometheus metrics are served (`[metrics] listen`); `None`: not at all.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `[oauth]`: where access tokens come from when `imap.auth` (or `smtp.auth`) is "xoauth2".
    pub oauth: Option<OAuth>,
    /// `[[queues]]`, in the file's order; never empty: a desk without any has one implicit queue,
    /// [`DEFAULT_QUEUE`], holding every technician. The first queue takes mail nothing else routes.
    pub queues: Vec<Queue>,
    /// `[[routing]]`, in order: the first whose conditions all hold applies.
    pub routing: Vec<crate::routing::Rule>,
    /// `[macros.NAME]`: `#macro NAME` applies its commands and canned reply.
    pub macros: Vec<crate::commands::Macro>,
    pub digests: Digests,
    /// `[[services]]`, in the file's order.
    pub services: Vec<Service>,
    /// `[changes]`: the approvals of a change whose service has none of its own.
    pub changes: Option<Approvals>,
    /// `[types.NAME]`: a ticket type's own templates and SLA policy.
    pub types: Vec<TypeSettings>,
    /// `[problems] resolve_incidents`: resolving a problem resolves its open linked incidents (else
    /// their requesters are only told).
    pub resolve_linked_incidents: bool,
    /// `[request_templates.NAME]`.
    pub request_templates: Vec<RequestTemplate>,
}

/// One `[[services]]`: what the IT department runs, who owns it, how a mail names it.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// Told of every breach on the service's tickets (and `"owner"` in an escalation ladder).
    pub owner: Option<String>,
    /// Index into the desk's queues: where its tickets go when no address or rule names a queue.
    pub queue: Option<usize>,
    /// Lower-cased; mail sent to one of them is about this service.
    pub addresses: Vec<String>,
    /// Whole words, case-insensitive, in the subject (then the text).
    pub keywords: Option<regex::Regex>,
    /// Its `[services.sla]` over its queue's policy.
    pub policies: Option<[crate::sla::policy::Policy; 4]>,
    pub approvals: Option<Approvals>,
}

/// Who approves a change, and how many must.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approvals {
    /// Lower-cased.
    pub approvers: Vec<String>,
    pub required: crate::domain::Required,
    /// Approvers who have not decided are reminded once per version after this long.
    pub remind_after: Option<Duration>,
}

/// `[types.NAME]`.
#[derive(Debug, Clone)]
pub struct TypeSettings {
    pub ticket_type: crate::domain::TicketType,
    /// Lower-cased; a new ticket sent to one of them is of this type (unless a rule says otherwise).
    pub addresses: Vec<String>,
    pub templates: Option<PathBuf>,
    /// Its `[types.NAME.sla]` over the desk's `[sla]`.
    pub policies: Option<[crate::sla::policy::Policy; 4]>,
}

/// `[request_templates.NAME]`: a request that spawns a task ticket per checklist item.
#[derive(Debug, Clone)]
pub struct RequestTemplate {
    pub name: String,
    /// A new ticket whose subject matches follows the template (a routing rule's `template` too).
    pub subject_matches: Option<regex::Regex>,
    pub tasks: Vec<Task>,
}

/// One task of a request template: a ticket in `queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub queue: String,
    pub title: String,
}

/// `[digests]`: when the daily and weekly mails go, in `helpdesk.timezone`.
#[derive(Debug, Clone, Default)]
pub struct Digests {
    /// Minutes after local midnight.
    pub daily: Option<u32>,
    /// Day of the week and minutes after its midnight.
    pub weekly: Option<(jiff::civil::Weekday, u32)>,
    pub waiting_after: Duration,
    /// Lower-cased; besides the queues' leads and the admins.
    pub weekly_to: Vec<String>,
}

/// The name of the one queue of a desk without `[[queues]]`.
pub const DEFAULT_QUEUE: &str = "default";

/// One queue: the addresses that land in it, where its mail is read, who works it and how.
#[derive(Debug, Clone)]
pub struct Queue {
    pub name: String,
    /// Lower-cased; mail sent to one of them lands here.
    pub addresses: Vec<String>,
    pub mailbox: QueueMailbox,
    /// Lower-cased technicians who get the queue's mail: every technician when the file lists none.
    pub team: Vec<String>,
    pub lead: Option<String>,
    /// A folder whose templates replace the desk's, kind by kind.
    pub templates: Option<PathBuf>,
    /// Per priority (the order of `Priority::ALL`): the desk's `[sla]`, with `[queues.sla]` over it.
    pub policies: [crate::sla::policy::Policy; 4],
    /// A new ticket's priority when no `[priority]` rule or routing rule sets one.
    pub default_priority: Option<crate::domain::Priority>,
    pub assign: crate::routing::Assign,
}

/// Where a queue's mail is read.
#[derive(Debug, Clone)]
pub enum QueueMailbox {
    /// Only by address, from the desk's `[imap]` mailbox.
    Shared,
    /// Another folder of the `[imap]` account.
    Folder(String),
    /// A mailbox of its own (`[queues.imap]`), with its own `[queues.oauth]` or the desk's `[oauth]`.
    Own { imap: Box<Imap>, oauth: Option<OAuth> },
}

/// One mailbox a watcher reads: the `[imap]` one, a queue's folder, or a queue's own account.
#[derive(Debug, Clone)]
pub struct WatchedMailbox {
    /// Identifies it in the database (UIDs seen, messages): the folder's name for the `[imap]`
    /// account (as before queues), "QUEUE:FOLDER" for a queue's own account.
    pub key: String,
    /// For logs and `status`: "INBOX", "queue security (imap.security.example:993/INBOX)".
    pub label: String,
    pub imap: Imap,
    pub oauth: Option<OAuth>,
    /// The queue its mail lands in when neither its addresses nor a rule say otherwise.
    pub home: usize,
    /// For a queue's own account: that queue's name (its login is reported as its own).
    pub own_account: Option<String>,
    /// The `[imap]` mailbox itself: the one whose login makes the daemon ready for systemd.
    pub primary: bool,
}

impl Config {
    /// The queue called `name`; the first queue for a name no longer configured (or none: tickets
    /// from before queues), so no ticket is ever left without a team.
    pub fn queue(&self, name: Option<&str>) -> (usize, &Queue) {
        let i = name.and_then(|n| self.queues.iter().position(|q| q.name == n)).unwrap_or(0);
        (i, &self.queues[i])
    }

    /// The SLA policy of a ticket in queue `queue` with `priority`.
    pub fn policy(&self, queue: Option<&str>, priority: crate::domain::Priority) -> &crate::sla::policy::Policy {
        &self.queue(queue).1.policies[priority as usize]
    }

    /// The SLA policy of a ticket: its service's `[services.sla]`, else its type's `[types.X.sla]`,
    /// else its queue's.
    pub fn policy_of(
        &self,
        queue: Option<&str>,
        service: Option<&str>,
        ticket_type: Option<crate::domain::TicketType>,
        priority: crate::domain::Priority,
    ) -> &crate::sla::policy::Policy {
        let of_service = self.service(service).and_then(|s| s.policies.as_ref());
        let of_type = || self.type_settings(ticket_type).and_then(|t| t.policies.as_ref());
        match of_service.or_else(of_type) {
            Some(p) => &p[priority as usize],
            None => self.policy(queue, priority),
        }
    }

    /// The service called `name`, if it is still configured.
    pub fn service(&self, name: Option<&str>) -> Option<&Service> {
        name.and_then(|n| self.services.iter().find(|s| s.name == n))
    }

    /// The type whose `addresses` the mail was sent to: To and Cc first, then Delivered-To and
    /// X-Original-To.
    pub fn type_by_address(&self, msg: &crate::message::parse::Inbound) -> Option<(crate::domain::TicketType, String)> {
        let header_level = msg.to.iter().chain(&msg.cc).map(|m| m.address.as_str());
        header_level.chain(msg.recipients.iter().map(String::as_str)).find_map(|a| {
            self.types.iter().find(|t| t.addresses.iter().any(|x| x == a)).map(|t| (t.ticket_type, a.to_string()))
        })
    }

    pub fn type_settings(&self, t: Option<crate::domain::TicketType>) -> Option<&TypeSettings> {
        t.and_then(|t| self.types.iter().find(|s| s.ticket_type == t))
    }

    /// The approvals a change of `service` needs: its own, else `[changes]`; none: no approval.
    pub fn approvals_for(&self, service: Option<&str>) -> Option<&Approvals> {
        self.service(service).and_then(|s| s.approvals.as_ref()).or(self.changes.as_ref())
    }

    pub fn request_template(&self, name: &str) -> Option<&RequestTemplate> {
        self.request_templates.iter().find(|t| t.name == name)
    }

    /// Every mailbox the daemon watches, the `[imap]` one first.
    pub fn mailboxes(&self) -> Vec<WatchedMailbox> {
        let main = WatchedMailbox {
            key: self.imap.mailbox.clone(),
            label: self.imap.mailbox.clone(),
            imap: self.imap.clone(),
            oauth: self.oauth.clone(),
            home: 0,
            own_account: None,
            primary: true,
        };
        let mut all = vec![main];
        for (i, q) in self.queues.iter().enumerate() {
            match &q.mailbox {
                QueueMailbox::Shared => {}
                QueueMailbox::Folder(f) => all.push(WatchedMailbox {
                    key: f.clone(),
                    label: format!("{f} (queue {})", q.name),
                    imap: Imap { mailbox: f.clone(), ..self.imap.clone() },
                    oauth: self.oauth.clone(),
                    home: i,
                    own_account: None,
                    primary: false,
                }),
                QueueMailbox::Own { imap, oauth } => all.push(WatchedMailbox {
                    key: format!("{}:{}", q.name, imap.mailbox),
                    label: format!("{}:{}/{} (queue {})", imap.host, imap.port, imap.mailbox, q.name),
                    imap: (**imap).clone(),
                    oauth: oauth.clone().or_else(|| self.oauth.clone()),
                    home: i,
                    own_account: Some(q.name.clone()),
                    primary: false,
                }),
            }
        }
        all
    }

    /// The OAuth settings SMTP logs in with: `[smtp.oauth]` when written, else `[oauth]`.
    pub fn smtp_oauth(&self) -> Option<&OAuth> {
        self.smtp.oauth.as_ref().or(self.oauth.as_ref())
    }
}

pub use super::file::AuthMethod;

/// Whose identity platform issues the tokens: it decides the default URLs and scopes, and how its
/// error codes are explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthProvider {
    Microsoft,
    Google,
    Generic,
}

/// One `[oauth]` table, validated, with its secrets loaded.
#[derive(Debug, Clone)]
pub struct OAuth {
    /// "oauth" or "smtp.oauth": names it in messages, and keys its stored tokens.
    pub table: String,
    pub provider: OAuthProvider,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub token_url: String,
    pub grant: OAuthGrant,
}

impl OAuthGrant {
    /// The flow's name as the config writes it.
    pub fn flow(&self) -> &'static str {
        match self {
            OAuthGrant::ClientSecret(_) | OAuthGrant::ClientCertificate { .. } => "client_credentials",
            OAuthGrant::DeviceCode { .. } => "device_code",
            OAuthGrant::ServiceAccount { .. } => "service_account",
            OAuthGrant::Command(_) => "token_command",
        }
    }
}

/// How an access token is obtained.
#[derive(Debug, Clone)]
pub enum OAuthGrant {
    /// client_credentials with a client secret.
    ClientSecret(Secret),
    /// client_credentials with a client assertion (RS256 JWT) signed by the certificate's key;
    /// `thumbprint` is its `x5t`.
    ClientCertificate { thumbprint: String, private_key: Secret },
    /// Delegated access: `maildesk oauth login` stores a refresh token, rotated on every use.
    DeviceCode { device_url: String, client_secret: Option<Secret> },
    /// Google domain-wide delegation: a JWT-bearer grant for the mailbox, signed with the key.
    ServiceAccount { client_email: String, private_key: Secret },
    /// A program that prints an access token.
    Command(String),
}

pub use crate::domain::Retention;

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
    /// Stored attachments are passed on with each mail about them while their total stays within
    /// this; the rest stay on the ticket and the mail names them.
    pub max_forward_bytes: usize,
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
    /// Lower-cased addresses told when logins to the mail servers keep failing, and when they work again.
    pub admins: Vec<String>,
    /// How long authentication must keep failing before the admins are told.
    pub alert_after: Duration,
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
    /// Empty when `auth` is xoauth2.
    pub password: Secret,
    pub auth: AuthMethod,
    pub mailbox: String,
    pub idle: bool,
    pub poll_interval: Duration,
    /// How long any one command (SEARCH, a FETCH of one batch, STORE, NOOP, SELECT) may wait for
    /// the server's answer before the session is dropped and a new one made.
    pub timeout: Duration,
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
    pub auth: AuthMethod,
    /// `[smtp.oauth]`, when SMTP's tokens come from elsewhere than `[oauth]`.
    pub oauth: Option<OAuth>,
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
