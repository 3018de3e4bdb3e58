//! Statements run inside the ingest transaction. Each takes a `&Connection` (a transaction or
//! savepoint derefs to one) so the caller decides what commits together.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{Direction, EventKind, Priority, TicketStatus};
use crate::message::parse::{Attachment, Mailbox};
use crate::threading::TicketLookup;
use crate::tickets::{TicketState, Update};

/// Threading's view of the database.
pub struct Lookup<'a>(pub &'a Connection);

impl TicketLookup for Lookup<'_> {
    type Error = rusqlite::Error;

    fn live_ticket(&self, id: i64) -> rusqlite::Result<Option<i64>> {
        live_ticket(self.0, id)
    }

    fn ticket_of_message(&self, message_id: &str) -> rusqlite::Result<Option<i64>> {
        let found: Option<Option<i64>> = self
            .0
            .prepare_cached("SELECT ticket_id FROM messages WHERE message_id = ?1")?
            .query_row([message_id], |r| r.get(0))
            .optional()?;
        Ok(found.flatten())
    }
}

/// Makes an automatic ticket a request: its SLA clocks count from now. Returns whether it was one.
pub fn promote(conn: &Connection, ticket: i64, now: i64) -> rusqlite::Result<bool> {
    let n = conn
        .prepare_cached(
            "UPDATE tickets SET automatic = 0, promoted_at = ?2, updated_at = ?2 WHERE id = ?1 AND automatic = 1",
        )?
        .execute(params![ticket, now])?;
    Ok(n > 0)
}

/// The content digest recorded with a message of this Message-ID: `None` when there is none,
/// `Some(None)` for a message recorded before digests were kept.
pub fn message_digest(conn: &Connection, message_id: &str) -> rusqlite::Result<Option<Option<String>>> {
    conn.prepare_cached("SELECT content_sha256 FROM messages WHERE message_id = ?1")?
        .query_row([message_id], |r| r.get(0))
        .optional()
}

/// Whether the desk has mailed `address` on `ticket` (an acknowledgement, a relayed reply, ...).
pub fn desk_mailed(conn: &Connection, ticket: i64, address: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM outbox WHERE ticket_id = ?1 AND recipient = ?2 LIMIT 1")?
        .query_row(params![ticket, address], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

/// Follows `merged_into` from ticket `id` to the ticket its mail now lands in.
pub fn live_ticket(conn: &Connection, id: i64) -> rusqlite::Result<Option<i64>> {
    let mut current = id;
    // Merges form a chain; the bound guards against a cycle someone made by hand in the database.
    for _ in 0..64 {
        let next: Option<Option<i64>> = conn
            .prepare_cached("SELECT merged_into FROM tickets WHERE id = ?1")?
            .query_row([current], |r| r.get(0))
            .optional()?;
        match next {
            None => return Ok(None),
            Some(None) => return Ok(Some(current)),
            Some(Some(n)) => current = n,
        }
    }
    Ok(None)
}

/// A message row, in or out.
pub struct NewMessage<'a> {
    pub ticket_id: Option<i64>,
    pub direction: Direction,
    pub message_id: &'a str,
    pub kind: &'a str,
    /// Technicians only.
    pub internal: bool,
    /// `(mailbox, uid_validity, uid)` for inbound mail.
    pub source: Option<(&'a str, u32, u32)>,
    pub from: Option<&'a Mailbox>,
    pub to: &'a [Mailbox],
    pub cc: &'a [Mailbox],
    pub subject: &'a str,
    pub sent_at: Option<i64>,
    pub received_at: i64,
    pub body_text: &'a str,
    /// `None` for an outbound message still being made: [`fill_outbound`] adds it.
    pub raw: Option<&'a [u8]>,
    /// Inbound: the digest that tells two different messages with one Message-ID apart.
    pub content_sha256: Option<&'a str>,
}

fn join(list: &[Mailbox]) -> String {
    list.iter().map(|m| m.address.as_str()).collect::<Vec<_>>().join(", ")
}

pub fn message_id_known(conn: &Connection, message_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM messages WHERE message_id = ?1")?
        .query_row([message_id], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

/// Whether this exact UID was already recorded (as a message or in quarantine).
pub fn uid_known(conn: &Connection, mailbox: &str, uid_validity: u32, uid: u32) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM messages WHERE mailbox = ?1 AND uid_validity = ?2 AND uid = ?3
         UNION ALL SELECT 1 FROM quarantine WHERE mailbox = ?1 AND uid_validity = ?2 AND uid = ?3",
    )?
    .query_row(params![mailbox, uid_validity, uid], |_| Ok(()))
    .optional()
    .map(|r| r.is_some())
}

/// Notes that `ticket` entered `status` at `now` (what the SLA clocks are computed from).
pub fn log_status(conn: &Connection, ticket: i64, status: TicketStatus, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO status_log(ticket_id, at, status) VALUES (?1, ?2, ?3)")?
        .execute(params![ticket, now, status])?;
    Ok(())
}

pub fn insert_ticket(
    conn: &Connection,
    subject: &str,
    requester: Option<&Mailbox>,
    (priority, queue): (Priority, Option<&str>),
    follow_up_of: Option<i64>,
    automatic: bool,
    now: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO tickets(subject, requester, requester_name, priority, follow_up_of, created_at, updated_at, automatic, queue)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
    )?
    .execute(params![
        subject,
        requester.map(|r| &r.address),
        requester.and_then(|r| r.name.as_ref()),
        priority,
        follow_up_of,
        now,
        automatic,
        queue
    ])?;
    let id = conn.last_insert_rowid();
    log_status(conn, id, TicketStatus::Open, now)?;
    Ok(id)
}

pub fn touch_ticket(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE tickets SET updated_at = ?2 WHERE id = ?1")?.execute(params![id, now])?;
    Ok(())
}

pub fn insert_message(conn: &Connection, m: &NewMessage<'_>) -> rusqlite::Result<i64> {
    let (mailbox, uid_validity, uid) = match m.source {
        Some((b, v, u)) => (Some(b), Some(v), Some(u)),
        None => (None, None, None),
    };
    conn.prepare_cached(
        "INSERT INTO messages(ticket_id, direction, message_id, kind, mailbox, uid_validity, uid, from_addr,
             from_name, to_addrs, cc_addrs, subject, sent_at, received_at, body_text, internal, content_sha256)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        m.ticket_id,
        m.direction,
        m.message_id,
        m.kind,
        mailbox,
        uid_validity,
        uid,
        m.from.map(|f| &f.address),
        m.from.and_then(|f| f.name.as_ref()),
        join(m.to),
        join(m.cc),
        m.subject,
        m.sent_at,
        m.received_at,
        m.body_text,
        m.internal,
        m.content_sha256,
    ])?;
    let id = conn.last_insert_rowid();
    if let Some(raw) = m.raw {
        insert_raw(conn, id, raw)?;
    }
    Ok(id)
}

/// Above this size a raw message goes into its row through SQLite's incremental blob I/O, page by
/// page: binding it as a parameter makes SQLite take a whole copy first (a 65 MB message, 65 MB
/// more memory while it is written).
const STREAMED_BYTES: usize = 1 << 20;

fn insert_raw(conn: &Connection, message_row: i64, raw: &[u8]) -> rusqlite::Result<()> {
    if raw.len() <= STREAMED_BYTES {
        conn.prepare_cached("INSERT INTO message_raw(message_id, raw) VALUES (?1, ?2)")?
            .execute(params![message_row, raw])?;
        return Ok(());
    }
    conn.prepare_cached("INSERT INTO message_raw(message_id, raw) VALUES (?1, zeroblob(?2))")?
        .execute(params![message_row, raw.len() as i64])?;
    // `message_id` is the table's rowid.
    conn.blob_open(rusqlite::MAIN_DB, "message_raw", "raw", message_row, false)?.write_at(raw, 0)
}

/// The stored raw bytes of message `message_row`, read through the incremental blob I/O (one copy,
/// where a query's result would be two); `None` if none are stored.
pub fn raw_message(conn: &Connection, message_row: i64) -> rusqlite::Result<Option<Vec<u8>>> {
    let stored = conn
        .prepare_cached("SELECT 1 FROM message_raw WHERE message_id = ?1")?
        .query_row([message_row], |_| Ok(()))
        .optional()?;
    if stored.is_none() {
        return Ok(None);
    }
    let blob = conn.blob_open(rusqlite::MAIN_DB, "message_raw", "raw", message_row, true)?;
    let mut raw = vec![0; blob.len()];
    blob.read_at_exact(&mut raw, 0)?;
    Ok(Some(raw))
}

/// Completes an outbound message stored while it was being made (see `outbound::composer`).
pub fn fill_outbound(conn: &Connection, id: i64, subject: &str, body_text: &str, raw: &[u8]) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE messages SET subject = ?2, body_text = ?3 WHERE id = ?1 AND direction = 'out'")?
        .execute(params![id, subject, body_text])?;
    insert_raw(conn, id, raw)
}

/// Notes that forwarded file `position` of outbound message `id` is attachment `part` of stored
/// message `source`, and goes at byte `hole` of the stored bytes when sent.
pub fn insert_outbound_file(
    conn: &Connection,
    id: i64,
    position: usize,
    hole: usize,
    source: i64,
    part: usize,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbound_files(message_id, position, hole, source_message, part) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, position as i64, hole as i64, source, part as i64])?;
    Ok(())
}

/// Keeps only the header block of outbound message `id` once no copy of it waits to be sent: its
/// text, headers and Message-ID stay, its body (forwarded files included) need not.
pub fn trim_sent(conn: &Connection, id: i64, now: i64) -> rusqlite::Result<bool> {
    let trimmed = conn
        .prepare_cached(
            "UPDATE message_raw SET raw = substr(raw, 1, instr(raw, x'0d0a0d0a') + 3), trimmed_at = ?2
             WHERE message_id = ?1 AND trimmed_at IS NULL AND instr(raw, x'0d0a0d0a') > 0
               AND NOT EXISTS (SELECT 1 FROM outbox WHERE message_id = ?1 AND status IN ('pending', 'sending'))",
        )?
        .execute(params![id, now])?;
    if trimmed > 0 {
        conn.prepare_cached("DELETE FROM outbound_files WHERE message_id = ?1")?.execute([id])?;
    }
    Ok(trimmed > 0)
}

/// Removes an outbound message that could not be made, with its outbox rows: it is not sent.
pub fn withdraw_outbound(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM outbound_files WHERE message_id = ?1")?.execute([id])?;
    conn.prepare_cached("DELETE FROM outbox WHERE message_id = ?1")?.execute([id])?;
    conn.prepare_cached("DELETE FROM message_raw WHERE message_id = ?1")?.execute([id])?;
    conn.prepare_cached("DELETE FROM messages WHERE id = ?1 AND direction = 'out'")?.execute([id])?;
    Ok(())
}

/// Describes attachment number `part` of the message; its bytes stay in the message's raw form.
pub fn insert_attachment(conn: &Connection, message_row: i64, part: usize, a: &Attachment) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO attachments(message_id, part, name, content_type, size, sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![message_row, part as i64, a.name, a.content_type, a.size as i64, a.sha256])?;
    Ok(())
}

pub fn insert_event(
    conn: &Connection,
    ticket: Option<i64>,
    at: i64,
    actor: &str,
    kind: EventKind,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO events(ticket_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![ticket, at, actor, kind.as_str(), detail])?;
    Ok(())
}

/// Queues one outbound message for one recipient. Nothing is sent until the surrounding
/// transaction commits, because the sender only reads committed rows.
pub fn insert_outbox(
    conn: &Connection,
    message_row: i64,
    ticket: Option<i64>,
    envelope_from: &str,
    recipient: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbox(message_id, ticket_id, envelope_from, recipient, created_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![message_row, ticket, envelope_from, recipient, now])?;
    Ok(())
}

pub fn insert_quarantine(
    conn: &Connection,
    source: (&str, u32, u32),
    reason: &str,
    raw: &[u8],
    now: i64,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO quarantine(mailbox, uid_validity, uid, reason, raw, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![source.0, source.1, source.2, reason, raw, now])?;
    Ok(conn.last_insert_rowid())
}

/// The ticket as the planner sees it.
pub fn ticket_state(conn: &Connection, id: i64) -> rusqlite::Result<Option<TicketState>> {
    let Some(mut t) = conn
        .prepare_cached(
            "SELECT id, status, requester, assignee, closed_at, first_response_at, automatic, queue,
                    type, service, approval
             FROM tickets WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(TicketState {
                id: r.get(0)?,
                status: r.get(1)?,
                requester: r.get(2)?,
                assignee: r.get(3)?,
                watchers: Vec::new(),
                closed_at: r.get(4)?,
                first_response_at: r.get(5)?,
                automatic: r.get(6)?,
                queue: r.get(7)?,
                itsm: crate::tickets::Itsm { ticket_type: r.get(8)?, service: r.get(9)?, approval: r.get(10)? },
            })
        })
        .optional()?
    else {
        return Ok(None);
    };
    t.watchers = watchers(conn, id)?;
    Ok(Some(t))
}

/// Records the rating of `ticket` (the last one counts).
pub fn set_rating(
    conn: &Connection,
    ticket: i64,
    score: u8,
    comment: &str,
    rater: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO ratings(ticket_id, score, comment, rater, at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(ticket_id) DO UPDATE SET score = excluded.score, comment = excluded.comment,
             rater = excluded.rater, at = excluded.at",
    )?
    .execute(params![ticket, score, comment, rater, now])?;
    Ok(())
}

/// At most `n` characters of `s`.
fn first_chars(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Marks `technician` away from `now` until `until` (`None`: until `#back`).
pub fn set_away(conn: &Connection, technician: &str, until: Option<i64>, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO away(technician, since, until) VALUES (?1, ?2, ?3)
         ON CONFLICT(technician) DO UPDATE SET since = excluded.since, until = excluded.until",
    )?
    .execute(params![technician, now, until])?;
    Ok(())
}

/// Who is away at `now`, of `among`.
pub fn away(conn: &Connection, among: &[String], now: i64) -> rusqlite::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare_cached("SELECT 1 FROM away WHERE technician = ?1 AND (until IS NULL OR until > ?2)")?;
    for a in among {
        if stmt.exists(params![a, now])? {
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// Each of `among`'s open and pending tickets, in every queue.
pub fn open_counts(conn: &Connection, among: &[String]) -> rusqlite::Result<Vec<u64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*) FROM tickets WHERE assignee = ?1 AND status IN ('open', 'pending') AND merged_into IS NULL",
    )?;
    among.iter().map(|a| stmt.query_row([a], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as u64)).collect()
}

/// The last ticket auto-assignment gave each of `among` in `queue` (0: none), and to whom it gave
/// the queue's newest one.
pub fn assigned_last(conn: &Connection, queue: &str, among: &[String]) -> rusqlite::Result<(Vec<i64>, Option<String>)> {
    let mut stmt = conn.prepare_cached("SELECT ticket_id FROM auto_assigned WHERE queue = ?1 AND technician = ?2")?;
    let each: Vec<i64> = among
        .iter()
        .map(|a| stmt.query_row(params![queue, a], |r| r.get(0)).optional().map(|t| t.unwrap_or(0)))
        .collect::<rusqlite::Result<_>>()?;
    let last = conn
        .prepare_cached("SELECT technician FROM auto_assigned WHERE queue = ?1 ORDER BY ticket_id DESC LIMIT 1")?
        .query_row([queue], |r| r.get(0))
        .optional()?;
    Ok((each, last))
}

/// Notes that auto-assignment gave `ticket` of `queue` to `technician`.
pub fn note_auto_assigned(
    conn: &Connection,
    queue: &str,
    technician: &str,
    ticket: i64,
    now: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO auto_assigned(queue, technician, ticket_id, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(queue, technician) DO UPDATE SET ticket_id = excluded.ticket_id, at = excluded.at",
    )?
    .execute(params![queue, technician, ticket, now])?;
    Ok(())
}

pub fn watchers(conn: &Connection, ticket: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT address FROM watchers WHERE ticket_id = ?1 ORDER BY added_at, address")?;
    stmt.query_map([ticket], |r| r.get(0))?.collect()
}

/// Carries out the plan's updates, each recorded as an event by `actor`. Returns the ticket that
/// the message's mails belong to afterwards (the merge target, after a merge).
pub fn apply_updates(
    conn: &Connection,
    ticket: i64,
    updates: &[Update],
    actor: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    let mut live = ticket;
    for u in updates {
        let get = |col: &str| -> rusqlite::Result<Option<String>> {
            conn.prepare_cached(&format!("SELECT {col} FROM tickets WHERE id = ?1"))?.query_row([live], |r| r.get(0))
        };
        let (kind, detail) = match u {
            Update::Status(s) => {
                let old: TicketStatus =
                    conn.prepare_cached("SELECT status FROM tickets WHERE id = ?1")?.query_row([live], |r| r.get(0))?;
                if old != *s {
                    log_status(conn, live, *s, now)?;
                }
                // Resolving stamps resolved_at, closing keeps it (a closed ticket was resolved
                // when it was), anything else clears it; closed_at is set only while closed.
                let (resolved_at, keep_resolved) = match s {
                    TicketStatus::Resolved => (Some(now), false),
                    TicketStatus::Closed => (None, true),
                    TicketStatus::Open | TicketStatus::Pending => (None, false),
                };
                let closed_at = (*s == TicketStatus::Closed).then_some(now);
                conn.prepare_cached(
                    "UPDATE tickets SET status = ?2,
                         resolved_at = CASE WHEN ?4 THEN resolved_at ELSE ?3 END, closed_at = ?5
                     WHERE id = ?1",
                )?
                .execute(params![live, s, resolved_at, keep_resolved, closed_at])?;
                (EventKind::Status, format!("status {old} -> {s}"))
            }
            Update::Priority(p) => {
                let old = get("priority")?.unwrap_or_default();
                conn.prepare_cached("UPDATE tickets SET priority = ?2 WHERE id = ?1")?.execute(params![live, p])?;
                (EventKind::Priority, format!("priority {old} -> {p}"))
            }
            Update::Assign(a) => {
                let old = get("assignee")?.unwrap_or_else(|| "nobody".into());
                conn.prepare_cached("UPDATE tickets SET assignee = ?2 WHERE id = ?1")?.execute(params![live, a])?;
                (EventKind::Assigned, format!("assignee {old} -> {a}"))
            }
            Update::AddWatcher(a) => {
                conn.prepare_cached(
                    "INSERT OR IGNORE INTO watchers(ticket_id, address, added_at) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![live, a, now])?;
                (EventKind::WatcherAdded, format!("{a} now gets technicians' replies"))
            }
            Update::RemoveWatcher(a) => {
                conn.prepare_cached("DELETE FROM watchers WHERE ticket_id = ?1 AND address = ?2")?
                    .execute(params![live, a])?;
                (EventKind::WatcherRemoved, format!("{a} no longer gets technicians' replies"))
            }
            Update::FirstResponse => {
                conn.prepare_cached(
                    "UPDATE tickets SET first_response_at = coalesce(first_response_at, ?2),
                         first_responder = coalesce(first_responder, ?3) WHERE id = ?1",
                )?
                .execute(params![live, now, actor])?;
                (EventKind::FirstResponse, "first technician reply sent to the requester".to_string())
            }
            Update::Queue(q) => {
                let old = get("queue")?.unwrap_or_else(|| "the first queue".into());
                conn.prepare_cached("UPDATE tickets SET queue = ?2 WHERE id = ?1")?.execute(params![live, q])?;
                (EventKind::QueueChanged, format!("queue {old} -> {q}: its team and SLA policy from now on"))
            }
            Update::Away { technician, until } => {
                set_away(conn, technician, *until, now)?;
                let until = until.map(|u| format!(" until {}", crate::domain::rfc3339(u))).unwrap_or_default();
                (EventKind::Away, format!("{technician} is away{until}: no tickets are assigned to them"))
            }
            Update::Type(t) => {
                let old = get("type")?.unwrap_or_else(|| "none".into());
                conn.prepare_cached("UPDATE tickets SET type = ?2 WHERE id = ?1")?.execute(params![live, t])?;
                (EventKind::Type, format!("type {old} -> {t}"))
            }
            Update::Service(n) => {
                let old = get("service")?.unwrap_or_else(|| "none".into());
                conn.prepare_cached("UPDATE tickets SET service = ?2 WHERE id = ?1")?.execute(params![live, n])?;
                (EventKind::Service, format!("service {old} -> {n}"))
            }
            Update::SubmitChange => {
                let version: i64 = conn
                    .prepare_cached(
                        "UPDATE tickets SET change_version = change_version + 1, approval = 'pending',
                             approval_asked_at = ?2 WHERE id = ?1 RETURNING change_version",
                    )?
                    .query_row(params![live, now], |r| r.get(0))?;
                let earlier = if version > 1 { "; decisions on earlier versions no longer count" } else { "" };
                (EventKind::ChangeSubmitted, format!("version {version} submitted for approval{earlier}"))
            }
            Update::LinkProblem(n) => {
                let problem = match n {
                    Some(n) => *n,
                    None => open_problem(conn, live, actor, now)?,
                };
                link_problem(conn, live, problem, actor, now)?;
                (EventKind::ProblemLinked, format!("linked to problem {problem}"))
            }
            // Spawned with the template's tasks by `store::itsm::spawn_tasks` (it needs the config).
            Update::Template(_) => continue,
            Update::Rate { score, comment, rater } => {
                set_rating(conn, live, *score, comment, rater, now)?;
                let said = if comment.is_empty() { String::new() } else { format!(": {}", first_chars(comment, 200)) };
                (EventKind::Rated, format!("{rater} rated the resolution {score} of 5{said}"))
            }
            Update::Time { technician, minutes } => {
                conn.prepare_cached(
                    "INSERT INTO time_entries(ticket_id, technician, minutes, at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![live, technician, minutes, now])?;
                let total: i64 = conn
                    .prepare_cached("SELECT coalesce(sum(minutes), 0) FROM time_entries WHERE ticket_id = ?1")?
                    .query_row([live], |r| r.get(0))?;
                let text = |m: i64| crate::commands::minutes_text(m.clamp(0, u32::MAX as i64) as u32);
                (
                    EventKind::Time,
                    format!("{technician} spent {} (ticket total {})", text(*minutes as i64), text(total)),
                )
            }
            Update::Back { technician } => {
                conn.prepare_cached("DELETE FROM away WHERE technician = ?1")?.execute([technician])?;
                (EventKind::Away, format!("{technician} is back: tickets are assigned to them again"))
            }
            Update::Promote => {
                promote(conn, live, now)?;
                (
                    EventKind::Promoted,
                    "a person wrote on this automatic ticket: it is a request now, its SLA clock starts".into(),
                )
            }
            Update::AcceptHeld { never } => {
                let senders: Vec<String> = conn
                    .prepare_cached(
                        "SELECT DISTINCT from_addr FROM messages
                         WHERE ticket_id = ?1 AND direction = 'in' AND kind = 'held' AND from_addr IS NOT NULL
                           AND from_addr <> coalesce((SELECT requester FROM tickets WHERE id = ?1), '')",
                    )?
                    .query_map([live], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                // `support+x@` is the support mailbox too.
                let base = |a: &str| match a.rsplit_once('@') {
                    Some((l, d)) => format!("{}@{d}", l.split('+').next().unwrap_or(l)),
                    None => a.to_string(),
                };
                let mut added = 0;
                for a in senders.iter().filter(|a| !never.iter().any(|n| base(n) == base(a))) {
                    added += conn
                        .prepare_cached(
                            "INSERT OR IGNORE INTO watchers(ticket_id, address, added_at) VALUES (?1, ?2, ?3)",
                        )?
                        .execute(params![live, a, now])?;
                }
                conn.prepare_cached(
                    "UPDATE messages SET kind = 'reply', internal = 0 WHERE ticket_id = ?1 AND direction = 'in' AND kind = 'held'",
                )?
                .execute([live])?;
                (EventKind::Accepted, format!("held mail accepted: {added} sender(s) added as watchers"))
            }
            // The store's own guard: whatever the planner allowed, a ticket never merges into itself
            // (its mail would thread nowhere).
            Update::MergeInto(target) if *target == live => {
                (EventKind::MergeRefused, format!("ticket {live} cannot be merged into itself"))
            }
            Update::MergeInto(target) => {
                let from = live;
                conn.prepare_cached("UPDATE messages SET ticket_id = ?2 WHERE ticket_id = ?1")?
                    .execute(params![from, target])?;
                conn.prepare_cached("UPDATE outbox SET ticket_id = ?2 WHERE ticket_id = ?1")?
                    .execute(params![from, target])?;
                conn.prepare_cached("UPDATE events SET ticket_id = ?2 WHERE ticket_id = ?1")?
                    .execute(params![from, target])?;
                // Watchers stay behind: the other ticket's requester never agreed to share their
                // conversation with them. A technician adds them there with #cc if they should.
                conn.prepare_cached("UPDATE tickets SET merged_into = ?2, status = ?4, closed_at = ?3, sla_next_at = NULL WHERE id = ?1")?.execute(
                    params![from, target, now, TicketStatus::Closed],
                )?;
                log_status(conn, from, TicketStatus::Closed, now)?;
                conn.prepare_cached("UPDATE tickets SET updated_at = ?2 WHERE id = ?1")?
                    .execute(params![target, now])?;
                live = *target;
                (
                    EventKind::Merged,
                    format!(
                        "ticket {from} merged into {target}: messages and history moved here (watchers stay on {from})"
                    ),
                )
            }
        };
        insert_event(conn, Some(live), now, actor, kind, &detail)?;
        if matches!(u, Update::MergeInto(target) if *target != ticket) {
            // The merged ticket keeps a pointer event too, so `show` on the old number explains itself.
            insert_event(conn, Some(ticket), now, actor, EventKind::Merged, &detail)?;
        }
    }
    Ok(live)
}

/// An outbound message by Message-ID: its row and ticket.
pub fn outbound_message(conn: &Connection, message_id: &str) -> rusqlite::Result<Option<(i64, Option<i64>)>> {
    conn.prepare_cached("SELECT id, ticket_id FROM messages WHERE message_id = ?1 AND direction = 'out'")?
        .query_row([message_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Marks the outbox rows of a bounced message failed: the bounced recipient's row, or every row of
/// the message when the report names a recipient the outbox does not know (an alias expanded further
/// down the line). Returns true when some row changed, i.e. this is news: technicians hear of a
/// failure once, not once per report about it.
pub fn mark_bounced(
    conn: &Connection,
    message_row: i64,
    recipient: Option<&str>,
    error: &str,
) -> rusqlite::Result<bool> {
    let mark = |rcpt: Option<&str>| {
        conn.prepare_cached(
            "UPDATE outbox SET status = 'failed', last_error = ?3
             WHERE message_id = ?1 AND status != 'failed' AND (?2 IS NULL OR recipient = ?2)",
        )?
        .execute(params![message_row, rcpt, format!("bounced after delivery: {error}")])
    };
    let mut changed = mark(recipient)?;
    if changed == 0 && recipient.is_some() {
        let known: bool = conn
            .prepare_cached("SELECT count(*) > 0 FROM outbox WHERE message_id = ?1 AND recipient = ?2")?
            .query_row(params![message_row, recipient], |r| r.get(0))?;
        if !known {
            changed = mark(None)?;
        }
    }
    Ok(changed > 0)
}

/// Opens a problem from incident `incident` (its subject, priority, queue and service) and
/// returns its number.
pub fn open_problem(conn: &Connection, incident: i64, actor: &str, now: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO tickets(subject, priority, created_at, updated_at, queue, service, type)
         SELECT 'Problem: ' || subject, priority, ?2, ?2, queue, service, 'problem' FROM tickets WHERE id = ?1",
    )?
    .execute(params![incident, now])?;
    let id = conn.last_insert_rowid();
    log_status(conn, id, TicketStatus::Open, now)?;
    insert_event(conn, Some(id), now, actor, EventKind::Opened, &format!("problem opened from incident {incident}"))?;
    Ok(id)
}

/// Links incident `incident` to problem `problem` (which becomes a problem if it was not one).
pub fn link_problem(conn: &Connection, incident: i64, problem: i64, actor: &str, now: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE tickets SET problem_id = ?2 WHERE id = ?1")?.execute(params![incident, problem])?;
    let old: Option<crate::domain::TicketType> =
        conn.prepare_cached("SELECT type FROM tickets WHERE id = ?1")?.query_row([problem], |r| r.get(0))?;
    if old != Some(crate::domain::TicketType::Problem) {
        apply_updates(conn, problem, &[crate::tickets::Update::Type(crate::domain::TicketType::Problem)], actor, now)?;
    }
    insert_event(conn, Some(problem), now, actor, EventKind::ProblemLinked, &format!("incident {incident} linked"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse::Mailbox;

    fn mailbox(a: &str) -> Mailbox {
        Mailbox { name: None, address: a.into() }
    }

    /// A ticket with one inbound message, one outbound message with an outbox row, and a watcher.
    fn ticket(conn: &Connection, n: i64, requester: &str, watcher: &str) -> i64 {
        let id = insert_ticket(
            conn,
            &format!("ticket {n}"),
            Some(&mailbox(requester)),
            (Priority::P3, None),
            None,
            false,
            0,
        )
        .unwrap();
        let from = mailbox(requester);
        fn row<'a>(id: i64, from: &'a Mailbox, direction: Direction, id_text: &'a str) -> NewMessage<'a> {
            NewMessage {
                ticket_id: Some(id),
                direction,
                message_id: id_text,
                kind: "request",
                internal: false,
                source: None,
                from: Some(from),
                to: &[],
                cc: &[],
                subject: "s",
                sent_at: None,
                received_at: 0,
                body_text: "b",
                raw: None,
                content_sha256: None,
            }
        }
        insert_message(conn, &row(id, &from, Direction::In, &format!("in{n}@x.test"))).unwrap();
        let out = insert_message(conn, &row(id, &from, Direction::Out, &format!("out{n}@x.test"))).unwrap();
        insert_outbox(conn, out, Some(id), "support@x.test", requester, 0).unwrap();
        apply_updates(conn, id, &[Update::AddWatcher(watcher.into())], "t", 0).unwrap();
        id
    }

    fn count(conn: &Connection, sql: &str, id: i64) -> i64 {
        conn.query_row(sql, [id], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_merge_moves_messages_outbox_and_history_but_not_watchers_and_closes_the_old_ticket() {
        let conn = crate::store::open_in_memory();
        let old = ticket(&conn, 1, "alice@x.test", "carol@x.test");
        let target = ticket(&conn, 2, "bob@x.test", "dave@x.test");
        let live = apply_updates(&conn, old, &[Update::MergeInto(target)], "tech@x.test", 50).unwrap();
        assert_eq!(live, target, "the message's mails belong to the target now");
        assert_eq!(count(&conn, "SELECT count(*) FROM messages WHERE ticket_id = ?1", target), 4);
        assert_eq!(count(&conn, "SELECT count(*) FROM outbox WHERE ticket_id = ?1", target), 2);
        assert_eq!(count(&conn, "SELECT count(*) FROM messages WHERE ticket_id = ?1", old), 0);
        // Watchers stay: bob never agreed to share his conversation with carol.
        assert_eq!(watchers(&conn, target).unwrap(), vec!["dave@x.test"]);
        assert_eq!(watchers(&conn, old).unwrap(), vec!["carol@x.test"]);
        let state = ticket_state(&conn, old).unwrap().unwrap();
        assert_eq!((state.status, state.closed_at), (TicketStatus::Closed, Some(50)));
        assert_eq!(live_ticket(&conn, old).unwrap(), Some(target), "mail to the old number lands on the target");
        // Both tickets say what happened, the old one too, so `show` on its number explains itself.
        let merged = "SELECT count(*) FROM events WHERE ticket_id = ?1 AND kind = 'merged'";
        assert_eq!((count(&conn, merged, target), count(&conn, merged, old)), (1, 1));
    }

    #[test]
    fn a_ticket_never_merges_into_itself() {
        let conn = crate::store::open_in_memory();
        let t = ticket(&conn, 1, "alice@x.test", "carol@x.test");
        assert_eq!(apply_updates(&conn, t, &[Update::MergeInto(t)], "tech@x.test", 50).unwrap(), t);
        let state = ticket_state(&conn, t).unwrap().unwrap();
        assert_eq!(state.status, TicketStatus::Open);
        assert_eq!(count(&conn, "SELECT count(*) FROM events WHERE ticket_id = ?1 AND kind = 'merge-refused'", t), 1);
        assert_eq!(live_ticket(&conn, t).unwrap(), Some(t));
    }

    #[test]
    fn statuses_stamp_and_clear_their_times() {
        let conn = crate::store::open_in_memory();
        let t = ticket(&conn, 1, "alice@x.test", "carol@x.test");
        let times = |conn: &Connection| -> (Option<i64>, Option<i64>) {
            conn.query_row("SELECT resolved_at, closed_at FROM tickets WHERE id = ?1", [t], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap()
        };
        apply_updates(&conn, t, &[Update::Status(TicketStatus::Resolved)], "t", 10).unwrap();
        assert_eq!(times(&conn), (Some(10), None));
        apply_updates(&conn, t, &[Update::Status(TicketStatus::Closed)], "t", 20).unwrap();
        assert_eq!(times(&conn), (Some(10), Some(20)), "closing keeps when it was resolved");
        apply_updates(&conn, t, &[Update::Status(TicketStatus::Open)], "t", 30).unwrap();
        assert_eq!(times(&conn), (None, None));
        let log: Vec<TicketStatus> = conn
            .prepare("SELECT status FROM status_log WHERE ticket_id = ?1 ORDER BY at")
            .unwrap()
            .query_map([t], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        use TicketStatus::*;
        assert_eq!(log, vec![Open, Resolved, Closed, Open]);
    }
}
