//! The desk as every task sees it: its configuration, templates, the instance token in every
//! Message-ID it makes, and the key of its technicians' reply addresses. Defined apart from the
//! inbound and outbound paths so that both (and the SLA sweep) depend on it, not on each other.
//! It also opens the database for the tasks that write, with the keys the desk keeps there.

use std::path::Path;

use rusqlite::Connection;

use crate::config::Config;
use crate::store::{self, StoreError};
use crate::templates::Templates;

/// What the database holds for the desk itself: read once by each task that writes, when it opens
/// its connection.
pub struct Keys {
    /// Part of every Message-ID maildesk creates.
    pub instance: String,
    /// The key of the per-ticket technician reply addresses.
    pub reply_secret: Vec<u8>,
}

/// Opens `database` for a task that writes (creating and migrating it if need be) and reads the
/// desk's keys: the one way the watcher, the SLA sweeper and the daemon's start-up check open it.
pub fn open(database: &Path, config: &Config) -> Result<(Connection, Keys), StoreError> {
    let conn = store::open(database)?;
    let instance = store::instance_token(&conn)?;
    let reply_secret = store::reply_secret(&conn, config.security.reply_secret_file.as_deref())?;
    Ok((conn, Keys { instance, reply_secret }))
}

impl Keys {
    /// The desk as a task sees it, with these keys.
    pub fn desk<'a>(&'a self, config: &'a Config, templates: &'a Templates) -> Desk<'a> {
        Desk { config, templates, instance: &self.instance, reply_secret: &self.reply_secret, home_queue: 0 }
    }
}

/// What recording, composing and escalating need to know about the desk.
pub struct Desk<'a> {
    pub config: &'a Config,
    pub templates: &'a Templates,
    /// The database's instance token, part of every Message-ID maildesk creates.
    pub instance: &'a str,
    /// The key of the per-ticket technician reply addresses.
    pub reply_secret: &'a [u8],
    /// The queue whose mailbox this task reads (an index into `config.queues`): where mail that
    /// neither its addresses nor a routing rule place lands.
    pub home_queue: usize,
}

impl Desk<'_> {
    /// The desk's own addresses: the support address, the comment address if set, every queue's
    /// addresses and own mailbox, and every service's and type's addresses. Never acknowledged,
    /// never watchers: mail between them would loop.
    pub fn addresses(&self) -> Vec<String> {
        let h = &self.config.helpdesk;
        let mut all: Vec<String> = std::iter::once(h.address.clone()).chain(h.comment_address.clone()).collect();
        for q in &self.config.queues {
            let own = match &q.mailbox {
                crate::config::QueueMailbox::Own { imap, .. } => crate::domain::parse_address(&imap.username),
                _ => None,
            };
            for a in q.addresses.iter().cloned().chain(own) {
                if !all.contains(&a) {
                    all.push(a);
                }
            }
        }
        // Services' and types' addresses are the desk's too: never acknowledged, never watchers.
        let c = self.config;
        for a in c.services.iter().flat_map(|s| &s.addresses).chain(c.types.iter().flat_map(|t| &t.addresses)) {
            if !all.contains(a) {
                all.push(a.clone());
            }
        }
        all
    }

    /// The support address with `detail` after a plus: `support+status@acme.example`.
    pub fn plus_address(&self, detail: &str) -> String {
        let a = &self.config.helpdesk.address;
        let (local, domain) = a.rsplit_once('@').unwrap_or((a, ""));
        format!("{local}+{detail}@{domain}")
    }

    pub fn domain(&self) -> &str {
        self.config.helpdesk.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost")
    }
}
