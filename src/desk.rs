//! The desk as every task sees it: its configuration, templates, the instance token in every
//! Message-ID it makes, and the key of its technicians' reply addresses. Defined apart from the
//! inbound and outbound paths so that both (and the SLA sweep) depend on it, not on each other.

use crate::config::Config;
use crate::templates::Templates;

/// What recording, composing and escalating need to know about the desk.
pub struct Desk<'a> {
    pub config: &'a Config,
    pub templates: &'a Templates,
    /// The database's instance token, part of every Message-ID maildesk creates.
    pub instance: &'a str,
    /// The key of the per-ticket technician reply addresses.
    pub reply_secret: &'a [u8],
}

impl Desk<'_> {
    /// The desk's own addresses: the support address and, if set, the comment address.
    pub fn addresses(&self) -> Vec<String> {
        let h = &self.config.helpdesk;
        std::iter::once(h.address.clone()).chain(h.comment_address.clone()).collect()
    }

    pub fn domain(&self) -> &str {
        self.config.helpdesk.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost")
    }
}
