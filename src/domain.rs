//! Values of the help desk's own vocabulary, shared by the pure core and the edges alike: ticket
//! statuses, priorities, and the normal form of addresses and Message-IDs. This module imports
//! nothing of the crate, so every layer may use it without an import running back up.

/// Ticket states.
pub const STATUSES: [&str; 4] = ["open", "pending", "resolved", "closed"];

/// Ticket priorities, most urgent first.
pub const PRIORITIES: [&str; 4] = ["P1", "P2", "P3", "P4"];

/// Lower-cases and sanity-checks a bare mail address (`local@domain`).
pub fn parse_address(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    ok.then(|| s.to_ascii_lowercase())
}

/// `<abc@host>` and `abc@host` are the same id; stored without brackets.
pub fn clean_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string()
}
