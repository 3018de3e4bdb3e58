//! The queries behind the CLI. The structs are the CLI's JSON output (documented in the README):
//! add fields freely, never rename or remove one.

use crate::domain::{Direction, Priority, TicketStatus, rfc3339};
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::store::StoreError;

/// What the CLI's queries return: a database error says it is one, once.
type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Serialize)]
pub struct TicketSummary {
    pub id: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub priority: Priority,
    pub requester: Option<String>,
    pub requester_name: Option<String>,
    pub assignee: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub first_response_at: Option<String>,
    pub resolved_at: Option<String>,
    pub closed_at: Option<String>,
    /// The ticket this one was merged into (its mail lands there).
    pub merged_into: Option<i64>,
    /// The closed ticket this one follows up.
    pub follow_up_of: Option<i64>,
    pub messages: i64,
    /// Opened by machine mail: no SLA clock, nobody notified (listed by `tickets --automatic`).
    pub automatic: bool,
    /// Its queue (the CLI names the first queue for tickets from before queues).
    pub queue: Option<String>,
    /// incident, request, change or problem; null until set.
    #[serde(rename = "type")]
    pub ticket_type: Option<crate::domain::TicketType>,
    /// Its service; null without one.
    pub service: Option<String>,
    /// The problem this incident is linked to.
    pub problem: Option<i64>,
    /// The request whose template spawned this task.
    pub parent: Option<i64>,
    /// A change's approval: pending, approved or rejected; null when never submitted.
    pub approval: Option<crate::domain::ApprovalState>,
    /// A change's version (0: never submitted).
    pub change_version: i64,
}

/// Which tickets a list shows. Every filter given must hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketFilter<'a> {
    pub status: Option<TicketStatus>,
    /// The tickets machine mail opened instead of requests.
    pub automatic: bool,
    pub queue: Option<&'a str>,
    /// The first queue's name: it holds tickets stored without one.
    pub first_queue: &'a str,
    pub assignee: Option<&'a str>,
    pub priority: Option<Priority>,
    /// Tickets whose first response or resolution was due before this time and is not met.
    pub overdue_at: Option<i64>,
    /// Opened at or after this time.
    pub since: Option<i64>,
    pub ticket_type: Option<crate::domain::TicketType>,
    pub service: Option<&'a str>,
}

/// Tickets in `status` (any when `None`): requests, or with `automatic` the tickets machine mail
/// opened, which are kept out of the ordinary list.
/// Which part of a list: `limit` rows (all when `None`) after skipping `offset`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Page {
    pub limit: Option<u32>,
    pub offset: u32,
}

pub fn tickets(conn: &Connection, f: TicketFilter<'_>, page: Page) -> Result<Vec<TicketSummary>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TICKET_COLUMNS} FROM tickets t WHERE (?1 IS NULL OR t.status = ?1) AND t.automatic = ?2
         AND (?5 IS NULL OR coalesce(t.queue, ?6) = ?5) AND (?7 IS NULL OR t.assignee = ?7)
         AND (?8 IS NULL OR t.priority = ?8) AND (?9 IS NULL OR t.created_at >= ?9)
         AND (?11 IS NULL OR t.type = ?11) AND (?12 IS NULL OR t.service = ?12)
         AND (?10 IS NULL OR (t.status IN ('open', 'pending') AND t.merged_into IS NULL
              AND ((t.first_response_at IS NULL AND t.first_response_due_at < ?10)
                   OR t.resolution_due_at < ?10 OR t.first_response_breached OR t.resolution_breached)))
         ORDER BY t.id LIMIT ?3 OFFSET ?4"
    ))?;
    let limit = page.limit.map(i64::from).unwrap_or(-1);
    Ok(stmt
        .query_map(
            rusqlite::params![
                f.status,
                f.automatic,
                limit,
                page.offset,
                f.queue,
                f.first_queue,
                f.assignee,
                f.priority,
                f.since,
                f.overdue_at,
                f.ticket_type,
                f.service
            ],
            ticket_row,
        )?
        .collect::<rusqlite::Result<_>>()?)
}

const TICKET_COLUMNS: &str = "t.id, t.subject, t.status, t.priority, t.requester, t.requester_name, t.assignee,
    t.created_at, t.updated_at, t.first_response_at, t.resolved_at, t.closed_at, t.merged_into, t.follow_up_of,
    (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id), t.automatic, t.queue, t.type,
    t.service, t.problem_id, t.parent_id, t.approval, t.change_version";

fn ticket_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TicketSummary> {
    let time = |i: usize| -> rusqlite::Result<Option<String>> { Ok(r.get::<_, Option<i64>>(i)?.map(rfc3339)) };
    Ok(TicketSummary {
        id: r.get(0)?,
        subject: r.get(1)?,
        status: r.get(2)?,
        priority: r.get(3)?,
        requester: r.get(4)?,
        requester_name: r.get(5)?,
        assignee: r.get(6)?,
        created_at: rfc3339(r.get(7)?),
        updated_at: rfc3339(r.get(8)?),
        first_response_at: time(9)?,
        resolved_at: time(10)?,
        closed_at: time(11)?,
        merged_into: r.get(12)?,
        follow_up_of: r.get(13)?,
        messages: r.get(14)?,
        automatic: r.get(15)?,
        queue: r.get(16)?,
        ticket_type: r.get(17)?,
        service: r.get(18)?,
        problem: r.get(19)?,
        parent: r.get(20)?,
        approval: r.get(21)?,
        change_version: r.get(22)?,
    })
}

#[derive(Debug, Serialize)]
pub struct AttachmentInfo {
    /// Its position among the message's attachments: `maildesk attachment MESSAGE PART` saves it.
    pub part: i64,
    pub name: Option<String>,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
}

#[derive(Debug, Serialize)]
pub struct MessageView {
    pub id: i64,
    /// "in" or "out".
    pub direction: Direction,
    /// in: request | reply | automatic | technician-reply | note | commands | rejected-commands;
    /// out: the template kind (acknowledgement, new-ticket, reply, team-copy, requester-reply,
    /// note-copy, command-error)
    pub kind: String,
    /// Technicians only: never shown to or sent to the requester.
    pub internal: bool,
    pub message_id: String,
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub to: String,
    pub cc: String,
    pub subject: String,
    /// The Date header (sent) when it parsed, else when maildesk recorded the message.
    pub date: String,
    pub recorded_at: String,
    pub text: String,
    pub attachments: Vec<AttachmentInfo>,
    /// Outbound only: one entry per recipient.
    pub delivery: Vec<Delivery>,
}

#[derive(Debug, Serialize)]
pub struct Delivery {
    pub recipient: String,
    /// pending | sent | failed
    pub status: String,
    pub attempts: i64,
    pub sent_at: Option<String>,
    pub last_error: Option<String>,
    /// True when a crash hid the server's reply to a fully transmitted message (not sent again).
    pub unconfirmed: bool,
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct TicketView {
    pub ticket: TicketSummary,
    /// Who gets technicians' replies besides the requester.
    pub watchers: Vec<String>,
    /// Time technicians logged with `#time`.
    pub time: TimeSpent,
    /// A problem's linked incidents.
    pub incidents: Vec<crate::store::itsm::Linked>,
    /// A request's task tickets.
    pub tasks: Vec<crate::store::itsm::Linked>,
    /// A change's approvers' decisions, every version, oldest first.
    pub approvals: Vec<crate::store::itsm::ApprovalRow>,
    pub messages: Vec<MessageView>,
    pub events: Vec<EventView>,
}

/// Minutes logged on a ticket, in all and per technician.
#[derive(Debug, Default, Serialize)]
pub struct TimeSpent {
    pub total_minutes: i64,
    pub by_technician: Vec<TechnicianTime>,
}

#[derive(Debug, Serialize)]
pub struct TechnicianTime {
    pub technician: String,
    pub minutes: i64,
}

fn time_spent(conn: &Connection, ticket: i64) -> Result<TimeSpent> {
    let by_technician: Vec<TechnicianTime> = conn
        .prepare_cached(
            "SELECT technician, sum(minutes) FROM time_entries WHERE ticket_id = ?1 GROUP BY technician ORDER BY technician",
        )?
        .query_map([ticket], |r| Ok(TechnicianTime { technician: r.get(0)?, minutes: r.get(1)? }))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(TimeSpent { total_minutes: by_technician.iter().map(|t| t.minutes).sum(), by_technician })
}

pub fn ticket(conn: &Connection, id: i64) -> Result<Option<TicketView>> {
    let Some(ticket) = conn
        .query_row(&format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id = ?1"), [id], ticket_row)
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT id, direction, kind, message_id, from_addr, from_name, to_addrs, cc_addrs, subject,
                coalesce(sent_at, received_at), received_at, body_text, internal
         FROM messages WHERE ticket_id = ?1 ORDER BY id",
    )?;
    let mut messages = stmt
        .query_map([id], |r| {
            Ok(MessageView {
                id: r.get(0)?,
                direction: r.get(1)?,
                kind: r.get(2)?,
                message_id: r.get(3)?,
                from: r.get(4)?,
                from_name: r.get(5)?,
                to: r.get(6)?,
                cc: r.get(7)?,
                subject: r.get(8)?,
                date: rfc3339(r.get(9)?),
                recorded_at: rfc3339(r.get(10)?),
                text: r.get(11)?,
                internal: r.get(12)?,
                attachments: Vec::new(),
                delivery: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut att = conn
        .prepare("SELECT part, name, content_type, size, sha256 FROM attachments WHERE message_id = ?1 ORDER BY id")?;
    let mut out = conn.prepare(
        "SELECT recipient, status, attempts, sent_at, last_error, unconfirmed FROM outbox WHERE message_id = ?1 ORDER BY id",
    )?;
    for m in &mut messages {
        m.attachments = att
            .query_map([m.id], |r| {
                Ok(AttachmentInfo {
                    part: r.get(0)?,
                    name: r.get(1)?,
                    content_type: r.get(2)?,
                    size: r.get(3)?,
                    sha256: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        m.delivery = out
            .query_map([m.id], |r| {
                Ok(Delivery {
                    recipient: r.get(0)?,
                    status: r.get(1)?,
                    attempts: r.get(2)?,
                    sent_at: r.get::<_, Option<i64>>(3)?.map(rfc3339),
                    last_error: r.get(4)?,
                    unconfirmed: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    let mut ev = conn.prepare("SELECT at, actor, kind, detail FROM events WHERE ticket_id = ?1 ORDER BY id")?;
    let events = ev
        .query_map([id], |r| {
            Ok(EventView { at: rfc3339(r.get(0)?), actor: r.get(1)?, kind: r.get(2)?, detail: r.get(3)? })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let watchers = super::write::watchers(conn, id)?;
    let time = time_spent(conn, id)?;
    let incidents = crate::store::itsm::incidents_of(conn, id)?;
    let tasks = crate::store::itsm::tasks_of(conn, id)?;
    let approvals = crate::store::itsm::decisions(conn, id)?;
    Ok(Some(TicketView { ticket, watchers, time, incidents, tasks, approvals, messages, events }))
}

#[derive(Debug, Serialize)]
pub struct QuarantineEntry {
    pub id: i64,
    pub mailbox: String,
    pub uid_validity: i64,
    pub uid: i64,
    pub reason: String,
    pub size: i64,
    pub created_at: String,
}

pub fn quarantine(conn: &Connection) -> Result<Vec<QuarantineEntry>> {
    let mut stmt = conn.prepare(
        "SELECT id, mailbox, uid_validity, uid, reason, length(raw), created_at FROM quarantine ORDER BY id",
    )?;
    let entries = stmt.query_map([], |r| {
        Ok(QuarantineEntry {
            id: r.get(0)?,
            mailbox: r.get(1)?,
            uid_validity: r.get(2)?,
            uid: r.get(3)?,
            reason: r.get(4)?,
            size: r.get(5)?,
            created_at: rfc3339(r.get(6)?),
        })
    })?;
    Ok(entries.collect::<rusqlite::Result<_>>()?)
}

pub fn quarantined_raw(conn: &Connection, id: i64) -> Result<Option<Vec<u8>>> {
    Ok(conn.query_row("SELECT raw FROM quarantine WHERE id = ?1", [id], |r| r.get(0)).optional()?)
}

#[derive(Debug, Serialize)]
pub struct StatusCounts {
    pub open: i64,
    pub pending: i64,
    pub resolved: i64,
    pub closed: i64,
}

#[derive(Debug, Serialize)]
pub struct OutboxCounts {
    pub pending: i64,
    pub sent: i64,
    pub failed: i64,
}

#[derive(Debug, Serialize)]
pub struct MailboxView {
    pub mailbox: String,
    pub uid_validity: i64,
    pub last_uid: i64,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub messages_ingested: i64,
    /// Every ticket by status, automatic ones included.
    pub tickets: StatusCounts,
    /// Tickets machine mail opened and nobody has promoted (`tickets --automatic`).
    pub automatic_tickets: i64,
    pub outbox: OutboxCounts,
    pub quarantined: i64,
    pub mailboxes: Vec<MailboxView>,
    pub last_imap_ok: Option<String>,
    pub last_smtp_ok: Option<String>,
    /// The last run of `[retention]`: when (`at`), and how many tickets and messages lost their
    /// original bytes or were deleted. `null` until it first ran.
    pub retention_last_run: Option<serde_json::Value>,
}

/// A count the triggers of schema v5 keep (see `schema_v5.sql`): no scan of millions of rows.
fn counter(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce((SELECT n FROM counters WHERE name = ?1), 0)")?.query_row([name], |r| r.get(0))
}

pub fn status(conn: &Connection) -> Result<Status> {
    let tickets = |s: TicketStatus| counter(conn, &format!("tickets_{}", s.as_str()));
    // A row being sent right now is still pending from the outside.
    let outbox = |s: &str| -> rusqlite::Result<i64> {
        Ok(counter(conn, &format!("outbox_{s}"))? + if s == "pending" { counter(conn, "outbox_sending")? } else { 0 })
    };
    let meta_time = |k: &str| -> rusqlite::Result<Option<String>> {
        Ok(super::get_meta(conn, k)?.and_then(|v| v.parse::<i64>().ok()).map(rfc3339))
    };
    let mut stmt = conn.prepare("SELECT mailbox, uid_validity, last_uid FROM mailbox_state ORDER BY mailbox")?;
    let mailboxes = stmt
        .query_map([], |r| Ok(MailboxView { mailbox: r.get(0)?, uid_validity: r.get(1)?, last_uid: r.get(2)? }))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Status {
        messages_ingested: counter(conn, "messages_in")?,
        tickets: StatusCounts {
            open: tickets(TicketStatus::Open)?,
            pending: tickets(TicketStatus::Pending)?,
            resolved: tickets(TicketStatus::Resolved)?,
            closed: tickets(TicketStatus::Closed)?,
        },
        automatic_tickets: counter(conn, "tickets_automatic")?,
        outbox: OutboxCounts { pending: outbox("pending")?, sent: outbox("sent")?, failed: outbox("failed")? },
        quarantined: conn.query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0))?,
        mailboxes,
        last_imap_ok: meta_time("last_imap_ok")?,
        last_smtp_ok: meta_time("last_smtp_ok")?,
        retention_last_run: super::get_meta(conn, "retention_last_run")?
            .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
            .map(|mut v| {
                if let Some(at) = v.get("at").and_then(|a| a.as_i64()) {
                    v["at"] = serde_json::Value::String(rfc3339(at));
                }
                v
            }),
    })
}

/// What the database says for the metrics (see `metrics`): read once per scrape.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// (status, count) for every status.
    pub tickets: Vec<(TicketStatus, i64)>,
    pub outbox_pending: i64,
    pub outbox_sent: i64,
    pub outbox_failed: i64,
    /// Seconds since the oldest pending outbox row was queued; 0 when none is pending.
    pub outbox_oldest_pending_secs: i64,
    pub quarantined: i64,
    /// Tickets whose first response, or resolution, breached its target.
    pub first_response_breaches: i64,
    pub resolution_breaches: i64,
    pub escalations_fired: i64,
    /// Seconds since the last successful IMAP session and SMTP delivery, if there was one.
    pub imap_ok_secs_ago: Option<i64>,
    pub smtp_ok_secs_ago: Option<i64>,
}

pub fn metrics_snapshot(conn: &Connection, now: i64) -> Result<MetricsSnapshot> {
    let one = |sql: &str| -> rusqlite::Result<i64> { conn.prepare_cached(sql)?.query_row([], |r| r.get(0)) };
    let mut tickets = Vec::new();
    for s in TicketStatus::ALL {
        tickets.push((
            s,
            conn.prepare_cached("SELECT count(*) FROM tickets WHERE status = ?1")?.query_row([s], |r| r.get(0))?,
        ));
    }
    let since = |key: &str| -> rusqlite::Result<Option<i64>> {
        Ok(super::get_meta(conn, key)?.and_then(|v| v.parse::<i64>().ok()).map(|t| (now - t).max(0)))
    };
    Ok(MetricsSnapshot {
        tickets,
        outbox_pending: counter(conn, "outbox_pending")? + counter(conn, "outbox_sending")?,
        outbox_sent: counter(conn, "outbox_sent")?,
        outbox_failed: counter(conn, "outbox_failed")?,
        outbox_oldest_pending_secs: conn
            .prepare_cached("SELECT min(created_at) FROM outbox WHERE status = 'pending'")?
            .query_row([], |r| r.get::<_, Option<i64>>(0))?
            .map(|t| (now - t).max(0))
            .unwrap_or(0),
        quarantined: one("SELECT count(*) FROM quarantine")?,
        first_response_breaches: counter(conn, "breached_first_response")?,
        resolution_breaches: counter(conn, "breached_resolution")?,
        escalations_fired: counter(conn, "escalations_fired")?,
        imap_ok_secs_ago: since("last_imap_ok")?,
        smtp_ok_secs_ago: since("last_smtp_ok")?,
    })
}

/// One message found by `maildesk search`.
#[derive(Debug, Serialize)]
pub struct SearchHit {
    pub ticket: Option<i64>,
    pub message: i64,
    pub kind: String,
    pub from: Option<String>,
    pub date: String,
    pub subject: String,
    /// The best-matching words in context, matches in [brackets].
    pub snippet: String,
    /// FTS5's bm25 rank: lower is better.
    pub rank: f64,
}

/// The FTS5 query for what a person typed: each word a quoted term (so `AND`, `*`, quotes or
/// parentheses in it are words, never query syntax), all of them required. `None` when no word is left.
pub fn fts_query(words: &str) -> Option<String> {
    let terms: Vec<String> = words
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// How long ranking by relevance may take before the newest matches are shown instead: bm25
/// scores every match, so a word in most messages of a large desk costs seconds to rank.
pub const RANKING_BUDGET: std::time::Duration = std::time::Duration::from_millis(60);

/// Inbound messages matching every word of `words`, at most `limit`: best first (bm25), or, when
/// there are too many matches to rank within [`RANKING_BUDGET`], newest first. The flag says which.
pub fn search(conn: &Connection, words: &str, limit: u32) -> Result<(Vec<SearchHit>, bool)> {
    let Some(query) = fts_query(words) else { return Ok((Vec::new(), true)) };
    let run = |order: &str| -> rusqlite::Result<Vec<SearchHit>> {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT m.ticket_id, m.id, m.kind, m.from_addr, coalesce(m.sent_at, m.received_at), m.subject,
                    snippet(messages_fts, -1, '[', ']', '…', 16), f.rank
             FROM messages_fts f JOIN messages m ON m.id = f.rowid
             WHERE messages_fts MATCH ?1 ORDER BY {order} LIMIT ?2"
        ))?;
        stmt.query_map(rusqlite::params![query, limit], |r| {
            Ok(SearchHit {
                ticket: r.get(0)?,
                message: r.get(1)?,
                kind: r.get(2)?,
                from: r.get(3)?,
                date: rfc3339(r.get(4)?),
                subject: r.get(5)?,
                snippet: r.get(6)?,
                rank: r.get(7)?,
            })
        })?
        .collect()
    };
    let start = std::time::Instant::now();
    conn.progress_handler(1000, Some(move || start.elapsed() > RANKING_BUDGET))?;
    let ranked = run("f.rank");
    conn.progress_handler(0, None::<fn() -> bool>)?;
    match ranked {
        Ok(hits) => Ok((hits, true)),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::OperationInterrupted => {
            // FTS5 walks its matches in rowid order: the newest come first without scoring them all.
            Ok((run("f.rowid DESC")?, false))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_terms_never_query_syntax() {
        assert_eq!(fts_query("VPN down").as_deref(), Some("\"VPN\" \"down\""));
        assert_eq!(fts_query("a\"b OR (c* NEAR").as_deref(), Some("\"a\"\"b\" \"OR\" \"c\" \"NEAR\""));
        assert_eq!(fts_query("  -- ** "), None);
    }

    #[test]
    fn search_finds_inbound_text_ranked_and_forgets_what_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(&dir.path().join("s.db")).unwrap();
        let add = |id: i64, dir: &str, subject: &str, text: &str| {
            conn.execute(
                "INSERT INTO messages(id, ticket_id, direction, message_id, kind, subject, received_at, body_text)
                 VALUES (?1, NULL, ?2, ?3, 'request', ?4, 0, ?5)",
                rusqlite::params![id, dir, format!("m{id}@x"), subject, text],
            )
            .unwrap();
        };
        add(1, "in", "VPN down", "The VPN drops every ten minutes since Monday.");
        add(2, "in", "Printer", "Printer jammed; the VPN works.");
        add(3, "out", "Re: VPN down", "We are looking at the VPN.");
        add(4, "in", "Café", "Le réseau du café est lent.");
        let (hits, ranked) = search(&conn, "vpn", 10).unwrap();
        assert!(ranked);
        let ids: Vec<i64> = hits.iter().map(|h| h.message).collect();
        assert_eq!(ids, [1, 2], "inbound only, the better match first");
        assert!(hits[0].snippet.contains("[VPN]"), "{}", hits[0].snippet);
        assert_eq!(search(&conn, "reseau cafe", 10).unwrap().0.len(), 1, "accents do not matter");
        assert!(search(&conn, "vpn\" OR \"printer", 10).is_ok(), "a hostile query is just words");
        conn.execute("UPDATE messages SET body_text = 'redacted' WHERE id = 2", []).unwrap();
        conn.execute("DELETE FROM messages WHERE id = 1", []).unwrap();
        assert!(search(&conn, "vpn", 10).unwrap().0.is_empty(), "edited and deleted text is gone from the index");
    }

    #[test]
    fn ticket_filters_all_hold() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(&dir.path().join("f.db")).unwrap();
        let add = |id: i64,
                   status: &str,
                   priority: &str,
                   assignee: Option<&str>,
                   queue: Option<&str>,
                   created: i64,
                   due: Option<i64>| {
            conn.execute(
                "INSERT INTO tickets(id, subject, status, priority, assignee, queue, created_at, updated_at, resolution_due_at)
                 VALUES (?1, 's', ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
                rusqlite::params![id, status, priority, assignee, queue, created, due],
            )
            .unwrap();
        };
        add(1, "open", "P1", Some("ann@x"), None, 100, Some(500));
        add(2, "open", "P3", Some("bob@x"), Some("security"), 200, Some(5_000));
        add(3, "pending", "P1", Some("ann@x"), Some("security"), 300, None);
        add(4, "closed", "P1", Some("ann@x"), None, 400, Some(500));
        let ids = |f: TicketFilter<'_>| -> Vec<i64> {
            tickets(&conn, TicketFilter { first_queue: "helpdesk", ..f }, Page::default())
                .unwrap()
                .iter()
                .map(|t| t.id)
                .collect()
        };
        assert_eq!(ids(TicketFilter { assignee: Some("ann@x"), ..Default::default() }), [1, 3, 4]);
        assert_eq!(
            ids(TicketFilter { queue: Some("helpdesk"), ..Default::default() }),
            [1, 4],
            "no queue is the first"
        );
        assert_eq!(
            ids(TicketFilter { priority: Some(Priority::P1), queue: Some("security"), ..Default::default() }),
            [3]
        );
        assert_eq!(ids(TicketFilter { overdue_at: Some(1_000), ..Default::default() }), [1], "open and past due only");
        assert_eq!(ids(TicketFilter { since: Some(250), ..Default::default() }), [3, 4]);
        let page = tickets(
            &conn,
            TicketFilter { first_queue: "helpdesk", ..Default::default() },
            Page { limit: Some(2), offset: 1 },
        )
        .unwrap();
        assert_eq!(page.iter().map(|t| t.id).collect::<Vec<_>>(), [2, 3]);
    }
}
