//! What a digest reports, read from the database: a technician's tickets for the daily mail, the
//! problem candidates for the weekly one, and which digests went out (each once per period).

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::domain::{Priority, TicketStatus, rfc3339};

/// One ticket as a digest lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Line {
    pub id: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub requester: String,
    pub queue: Option<String>,
    /// The next due time (first response while unmet, else resolution), RFC 3339.
    pub due_at: Option<String>,
    pub due_at_secs: Option<i64>,
    pub breached: bool,
    /// When its status last changed (for a pending ticket: since when it waits on the requester).
    pub status_since: Option<i64>,
}

const LINE: &str = "SELECT id, subject, status, priority, coalesce(requester, ''), queue,
    CASE WHEN first_response_at IS NULL THEN coalesce(first_response_due_at, resolution_due_at) ELSE resolution_due_at END,
    first_response_breached OR resolution_breached,
    (SELECT max(at) FROM status_log s WHERE s.ticket_id = tickets.id) FROM tickets";

fn line(r: &rusqlite::Row<'_>) -> rusqlite::Result<Line> {
    let due: Option<i64> = r.get(6)?;
    Ok(Line {
        id: r.get(0)?,
        subject: r.get(1)?,
        status: r.get(2)?,
        priority: r.get(3)?,
        requester: r.get(4)?,
        queue: r.get(5)?,
        due_at: due.map(rfc3339),
        due_at_secs: due,
        breached: r.get(7)?,
        status_since: r.get(8)?,
    })
}

/// Open and pending tickets assigned to `technician`, oldest first.
pub fn assigned(conn: &Connection, technician: &str) -> rusqlite::Result<Vec<Line>> {
    conn.prepare_cached(&format!(
        "{LINE} WHERE assignee = ?1 AND status IN ('open', 'pending') AND merged_into IS NULL AND automatic = 0 ORDER BY id"
    ))?
    .query_map([technician], line)?
    .collect()
}

/// Open tickets nobody is assigned, in `queues` (the first queue also holds tickets stored without
/// one), oldest first, at most `limit`.
pub fn unassigned(conn: &Connection, queues: &[String], first: &str, limit: u32) -> rusqlite::Result<Vec<Line>> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare_cached(&format!(
        "{LINE} WHERE assignee IS NULL AND status = 'open' AND merged_into IS NULL AND automatic = 0
         AND coalesce(queue, ?2) = ?1 ORDER BY id LIMIT ?3"
    ))?;
    for q in queues {
        out.extend(stmt.query_map(params![q, first, limit], line)?.collect::<rusqlite::Result<Vec<_>>>()?);
    }
    out.sort_by_key(|l| l.id);
    out.truncate(limit as usize);
    Ok(out)
}

/// A name and how often it came up.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Count {
    pub name: String,
    pub tickets: i64,
}

/// The senders who opened the most tickets in `[since, until)`, and the most frequent subjects
/// (lower-cased, reply prefixes and ticket tags left aside): problem candidates.
pub fn frequent(conn: &Connection, since: i64, until: i64, limit: usize) -> rusqlite::Result<(Vec<Count>, Vec<Count>)> {
    let senders = conn
        .prepare_cached(
            "SELECT requester, count(*) AS n FROM tickets WHERE created_at >= ?1 AND created_at < ?2
             AND requester IS NOT NULL AND automatic = 0 GROUP BY requester HAVING n > 1 ORDER BY n DESC, requester LIMIT ?3",
        )?
        .query_map(params![since, until, limit as i64], |r| Ok(Count { name: r.get(0)?, tickets: r.get(1)? }))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut subjects: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut stmt = conn
        .prepare_cached("SELECT subject FROM tickets WHERE created_at >= ?1 AND created_at < ?2 AND automatic = 0")?;
    for s in stmt.query_map(params![since, until], |r| r.get::<_, String>(0))? {
        *subjects.entry(normal_subject(&s?)).or_default() += 1;
    }
    let mut subjects: Vec<Count> =
        subjects.into_iter().filter(|(_, n)| *n > 1).map(|(name, tickets)| Count { name, tickets }).collect();
    subjects.sort_by(|a, b| b.tickets.cmp(&a.tickets).then_with(|| a.name.cmp(&b.name)));
    subjects.truncate(limit);
    Ok((senders, subjects))
}

/// "Re: AW: [ACME #12] Printer  jammed" → "printer jammed": what makes two subjects the same problem.
pub fn normal_subject(s: &str) -> String {
    let mut rest = s.trim();
    loop {
        let lower = rest.to_ascii_lowercase();
        let prefix = ["re:", "aw:", "fw:", "fwd:", "wg:", "sv:", "tr:", "rv:"].iter().find(|p| lower.starts_with(*p));
        match prefix {
            Some(p) => rest = rest[p.len()..].trim_start(),
            None if rest.starts_with('[') => match rest.find(']') {
                Some(end) => rest = rest[end + 1..].trim_start(),
                None => break,
            },
            None => break,
        }
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// Notes that the `kind` digest of `period` was dealt with for `recipient` (sent, or nothing to
/// report); false when it already was: each goes once per period, across restarts too.
pub fn claim(
    conn: &Connection,
    kind: &str,
    period: &str,
    recipient: &str,
    sent: bool,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT OR IGNORE INTO digests_sent(kind, period, recipient, sent, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![kind, period, recipient, sent, now])?
        == 1)
}

/// Whether the `kind` digest of `period` was dealt with for `recipient`.
pub fn claimed(conn: &Connection, kind: &str, period: &str, recipient: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM digests_sent WHERE kind = ?1 AND period = ?2 AND recipient = ?3")?
        .exists(params![kind, period, recipient])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_of_one_problem_read_the_same() {
        assert_eq!(normal_subject("Re: AW: [ACME #12] Printer  Jammed"), "printer jammed");
        assert_eq!(normal_subject("printer jammed"), "printer jammed");
        assert_eq!(normal_subject("[unclosed tag"), "[unclosed tag");
        assert_eq!(normal_subject(""), "");
    }
}
