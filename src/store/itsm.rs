//! IT service management rows: problems and the incidents linked to them, a request template's
//! task tickets, a change's versions and its approvers' decisions.

use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{ApprovalState, Decision, TicketStatus};

/// A ticket linked to another: its number, subject, status and requester.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Linked {
    pub id: i64,
    pub subject: String,
    pub status: TicketStatus,
    pub requester: Option<String>,
}

fn linked(conn: &Connection, sql: &str, id: i64) -> rusqlite::Result<Vec<Linked>> {
    conn.prepare_cached(sql)?
        .query_map([id], |r| Ok(Linked { id: r.get(0)?, subject: r.get(1)?, status: r.get(2)?, requester: r.get(3)? }))?
        .collect()
}

/// The incidents linked to problem `problem`, oldest first.
pub fn incidents_of(conn: &Connection, problem: i64) -> rusqlite::Result<Vec<Linked>> {
    linked(
        conn,
        "SELECT id, subject, status, requester FROM tickets WHERE problem_id = ?1 AND merged_into IS NULL ORDER BY id",
        problem,
    )
}

/// The task tickets a request template spawned for `parent`, in checklist order.
pub fn tasks_of(conn: &Connection, parent: i64) -> rusqlite::Result<Vec<Linked>> {
    linked(
        conn,
        "SELECT id, subject, status, requester FROM tickets WHERE parent_id = ?1 AND merged_into IS NULL ORDER BY id",
        parent,
    )
}

/// A ticket's links upward: the problem it is linked to, the request it is a task of.
pub fn links_up(conn: &Connection, id: i64) -> rusqlite::Result<(Option<i64>, Option<i64>)> {
    conn.prepare_cached("SELECT problem_id, parent_id FROM tickets WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map(|o| o.unwrap_or((None, None)))
}

/// Opens a task ticket of request `parent`: no requester (the team's work, the parent's requester
/// hears once, when all is done), in `queue`, a request of the parent's service.
pub fn open_task(conn: &Connection, parent: i64, queue: &str, title: &str, now: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO tickets(subject, priority, created_at, updated_at, queue, service, type, parent_id)
         SELECT ?3 || ' (#' || id || ': ' || subject || ')', priority, ?2, ?2, ?4, service, 'request', id
         FROM tickets WHERE id = ?1",
    )?
    .execute(params![parent, now, title, queue])?;
    let id = conn.last_insert_rowid();
    super::write::log_status(conn, id, TicketStatus::Open, now)?;
    Ok(id)
}

/// A change as its approvals see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub version: i64,
    pub approval: Option<ApprovalState>,
    pub service: Option<String>,
    pub asked_at: Option<i64>,
    pub reminded: i64,
}

pub fn change(conn: &Connection, ticket: i64) -> rusqlite::Result<Option<Change>> {
    conn.prepare_cached(
        "SELECT change_version, approval, service, approval_asked_at, approval_reminded FROM tickets WHERE id = ?1",
    )?
    .query_row([ticket], |r| {
        Ok(Change {
            version: r.get(0)?,
            approval: r.get(1)?,
            service: r.get(2)?,
            asked_at: r.get(3)?,
            reminded: r.get(4)?,
        })
    })
    .optional()
}

/// One approver's decision on a version of a change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApprovalRow {
    pub version: i64,
    pub approver: String,
    pub decision: String,
    pub reason: String,
    pub proof: String,
    pub at: i64,
}

/// Records `approver`'s decision on `version`; false when they had decided it already (the first
/// decision stands).
pub fn record_decision(
    conn: &Connection,
    ticket: i64,
    version: i64,
    approver: &str,
    (decision, reason): (Decision, &str),
    proof: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(
            "INSERT OR IGNORE INTO approvals(ticket_id, version, approver, decision, reason, proof, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![ticket, version, approver, decision.as_str(), reason, proof, now])?
        == 1)
}

/// Every decision on the ticket, oldest first.
pub fn decisions(conn: &Connection, ticket: i64) -> rusqlite::Result<Vec<ApprovalRow>> {
    conn.prepare_cached(
        "SELECT version, approver, decision, reason, proof, at FROM approvals WHERE ticket_id = ?1 ORDER BY at, rowid",
    )?
    .query_map([ticket], |r| {
        Ok(ApprovalRow {
            version: r.get(0)?,
            approver: r.get(1)?,
            decision: r.get(2)?,
            reason: r.get(3)?,
            proof: r.get(4)?,
            at: r.get(5)?,
        })
    })?
    .collect()
}

pub fn set_approval(conn: &Connection, ticket: i64, state: ApprovalState) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE tickets SET approval = ?2 WHERE id = ?1")?.execute(params![ticket, state])?;
    Ok(())
}

/// Changes waiting for approvers whose current version has not been reminded: (ticket, asked at).
pub fn unreminded(conn: &Connection) -> rusqlite::Result<Vec<(i64, i64)>> {
    conn.prepare_cached(
        "SELECT id, approval_asked_at FROM tickets
         WHERE approval = 'pending' AND approval_asked_at IS NOT NULL AND approval_reminded < change_version",
    )?
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

pub fn mark_reminded(conn: &Connection, ticket: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE tickets SET approval_reminded = change_version WHERE id = ?1")?.execute([ticket])?;
    Ok(())
}
