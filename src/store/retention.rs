//! Retention (`[retention]`): what the database lets go of once tickets have been closed a while.
//!
//! Two steps, both off unless configured, both counted from a ticket's `closed_at`:
//! - `drop_raw_after`: each message of the ticket keeps its header block only. Its text, its
//!   metadata, the names and digests of its attachments and the ticket's events stay, so `show`,
//!   `report` and search still work; the original bytes (and so the attachments) are gone.
//! - `delete_after`: the ticket goes with everything about it; one event of no ticket says how
//!   many went, without their contents.
//!
//! The daemon runs this once a day, `maildesk retention` on demand, `--dry-run` to see what would
//! go. Tickets are handled a few hundred per transaction, so the daemon's intake waits at most one
//! short transaction. Dropping raw bytes is idempotent; a run that stops half-way is finished by
//! the next. A file still to be forwarded by a queued mail is never dropped.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::{StoreError, get_meta, set_meta, write};
use crate::domain::{EventKind, Retention};

/// How many tickets one transaction handles.
const CHUNK: usize = 200;

/// What one run did, or (dry run) would do.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RetentionRun {
    pub at: i64,
    pub dry_run: bool,
    /// Tickets whose messages lost (would lose) their original bytes.
    pub raw_dropped_tickets: Vec<i64>,
    pub raw_dropped_messages: i64,
    /// Bytes of original messages dropped (or that would be), besides their header blocks.
    pub raw_dropped_bytes: i64,
    /// Tickets deleted (or that would be).
    pub deleted_tickets: Vec<i64>,
    pub deleted_messages: i64,
}

/// Applies `policy` as of `now`, or only counts what it would do.
pub fn run(conn: &Connection, policy: &Retention, now: i64, dry_run: bool) -> Result<RetentionRun, StoreError> {
    let mut report = RetentionRun { at: now, dry_run, ..RetentionRun::default() };
    if let Some(after) = policy.delete_after {
        let cutoff = now - after.as_secs() as i64;
        let doomed: Vec<i64> = closed_before(conn, cutoff, None)?.into_iter().map(|(t, _)| t).collect();
        for chunk in doomed.chunks(CHUNK) {
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            for &ticket in chunk {
                report.deleted_messages += count(&tx, "SELECT count(*) FROM messages WHERE ticket_id = ?1", ticket)?;
                if !dry_run {
                    delete_ticket(&tx, ticket)?;
                }
            }
            if !dry_run {
                let detail = format!(
                    "retention: {} tickets closed more than {} days ago deleted, with their messages",
                    chunk.len(),
                    after.as_secs() / 86_400
                );
                write::insert_event(&tx, None, now, "maildesk", EventKind::TicketsDeleted, &detail)?;
            }
            tx.commit()?;
        }
        report.deleted_tickets = doomed;
    }
    if let Some(after) = policy.drop_raw_after {
        let cutoff = now - after.as_secs() as i64;
        // Tickets closed before the last run's cutoff were done then (a ticket reopened and
        // closed again has a newer `closed_at`).
        let done_until: Option<i64> = get_meta(conn, "retention_raw_done_until")?.and_then(|v| v.parse().ok());
        let deleted: std::collections::HashSet<i64> = report.deleted_tickets.iter().copied().collect();
        let mut candidates = closed_before(conn, cutoff, done_until)?;
        // A dry run still sees the tickets it would delete.
        candidates.retain(|(t, _)| !deleted.contains(t));
        // The next run starts after the tickets done now, but not after one whose bytes a queued
        // mail still needs: that one is looked at again.
        let mut done_now = cutoff;
        for chunk in candidates.chunks(CHUNK) {
            let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            for &(ticket, closed_at) in chunk {
                let (messages, bytes) = droppable(&tx, ticket)?;
                let untrimmed = count(
                    &tx,
                    "SELECT count(*) FROM message_raw r JOIN messages m ON m.id = r.message_id
                     WHERE m.ticket_id = ?1 AND r.trimmed_at IS NULL",
                    ticket,
                )?;
                if untrimmed > messages {
                    done_now = done_now.min(closed_at - 1);
                }
                if messages == 0 {
                    continue;
                }
                report.raw_dropped_tickets.push(ticket);
                report.raw_dropped_messages += messages;
                report.raw_dropped_bytes += bytes;
                if !dry_run {
                    drop_raw(&tx, ticket, now)?;
                    let detail = format!(
                        "retention: the original bytes of {messages} messages ({bytes} bytes) were dropped, the ticket \
                         closed more than {} days ago; text, attachment names and events stay",
                        after.as_secs() / 86_400
                    );
                    write::insert_event(&tx, Some(ticket), now, "maildesk", EventKind::RawDropped, &detail)?;
                }
            }
            tx.commit()?;
        }
        if !dry_run {
            set_meta(conn, "retention_raw_done_until", &done_now.max(done_until.unwrap_or(i64::MIN)).to_string())?;
        }
    }
    if !dry_run {
        let summary = serde_json::json!({
            "at": now,
            "raw_dropped_tickets": report.raw_dropped_tickets.len(),
            "raw_dropped_messages": report.raw_dropped_messages,
            "raw_dropped_bytes": report.raw_dropped_bytes,
            "deleted_tickets": report.deleted_tickets.len(),
            "deleted_messages": report.deleted_messages,
        });
        set_meta(conn, "retention_last_run", &summary.to_string())?;
    }
    Ok(report)
}

/// Closed tickets (and when) with `closed_at` in (`after`, `cutoff`], oldest first.
fn closed_before(conn: &Connection, cutoff: i64, after: Option<i64>) -> rusqlite::Result<Vec<(i64, i64)>> {
    conn.prepare_cached(
        "SELECT id, closed_at FROM tickets WHERE status = 'closed' AND closed_at <= ?1 AND closed_at > ?2
         ORDER BY closed_at, id",
    )?
    .query_map(params![cutoff, after.unwrap_or(i64::MIN)], |r| Ok((r.get(0)?, r.get(1)?)))?
    .collect()
}

fn count(conn: &Connection, sql: &str, ticket: i64) -> rusqlite::Result<i64> {
    conn.prepare_cached(sql)?.query_row([ticket], |r| r.get(0))
}

/// Where a raw message's body starts: after its header block (CRLF or bare LF line ends); 0 for
/// a message with no blank line, which keeps nothing.
const HEADER_END: &str = "CASE WHEN instr(raw, x'0d0a0d0a') > 0 THEN instr(raw, x'0d0a0d0a') + 3
                               WHEN instr(raw, x'0a0a') > 0 THEN instr(raw, x'0a0a') + 1 ELSE 0 END";

/// Messages of `ticket` not trimmed yet whose bytes no queued mail still needs: neither a mail
/// still to be sent nor the source of a file one forwards.
const DROPPABLE: &str = "FROM message_raw r JOIN messages m ON m.id = r.message_id
     WHERE m.ticket_id = ?1 AND r.trimmed_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = r.message_id AND o.status IN ('pending', 'sending'))
       AND NOT EXISTS (SELECT 1 FROM outbound_files f JOIN outbox o ON o.message_id = f.message_id
                       WHERE f.source_message = r.message_id AND o.status IN ('pending', 'sending'))";

/// How many messages of `ticket` would lose their bytes, and how many bytes.
fn droppable(conn: &Connection, ticket: i64) -> rusqlite::Result<(i64, i64)> {
    let sql = format!("SELECT count(*), coalesce(sum(length(r.raw) - ({HEADER_END})), 0) {DROPPABLE}");
    conn.prepare_cached(&sql)?.query_row([ticket], |r| Ok((r.get(0)?, r.get(1)?)))
}

fn drop_raw(conn: &Connection, ticket: i64, now: i64) -> rusqlite::Result<()> {
    let sql = format!(
        "UPDATE message_raw SET raw = substr(raw, 1, {HEADER_END}), trimmed_at = ?2
         WHERE message_id IN (SELECT r.message_id {DROPPABLE})"
    );
    conn.prepare_cached(&sql)?.execute(params![ticket, now])?;
    Ok(())
}

/// Removes `ticket` and everything that refers to it. Tickets merged into it or following it up
/// lose the reference, not themselves.
pub(super) fn delete_ticket(conn: &Connection, ticket: i64) -> rusqlite::Result<()> {
    const MESSAGES: &str = "(SELECT id FROM messages WHERE ticket_id = ?1)";
    for sql in [
        format!("DELETE FROM outbound_files WHERE message_id IN {MESSAGES} OR source_message IN {MESSAGES}"),
        format!("DELETE FROM outbox WHERE ticket_id = ?1 OR message_id IN {MESSAGES}"),
        format!("DELETE FROM attachments WHERE message_id IN {MESSAGES}"),
        format!("DELETE FROM message_raw WHERE message_id IN {MESSAGES}"),
        "DELETE FROM messages WHERE ticket_id = ?1".to_string(),
        "DELETE FROM watchers WHERE ticket_id = ?1".to_string(),
        "DELETE FROM status_log WHERE ticket_id = ?1".to_string(),
        "DELETE FROM sla_fired WHERE ticket_id = ?1".to_string(),
        "DELETE FROM events WHERE ticket_id = ?1".to_string(),
        "UPDATE tickets SET merged_into = NULL WHERE merged_into = ?1".to_string(),
        "UPDATE tickets SET follow_up_of = NULL WHERE follow_up_of = ?1".to_string(),
        "DELETE FROM tickets WHERE id = ?1".to_string(),
    ] {
        conn.prepare_cached(&sql)?.execute([ticket])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    /// Ticket `id`, closed `closed_days_ago` (or open), with an inbound message carrying a file and
    /// an outbound one.
    fn ticket(conn: &Connection, id: i64, closed_days_ago: Option<i64>) {
        let (status, closed_at) = match closed_days_ago {
            Some(d) => ("closed", Some(NOW - d * DAY)),
            None => ("open", None),
        };
        conn.execute(
            "INSERT INTO tickets(id, subject, requester, status, created_at, updated_at, closed_at) VALUES (?1, 's', 'a@x.test', ?2, 0, 0, ?3)",
            params![id, status, closed_at],
        )
        .unwrap();
        for (n, direction) in [(0, "in"), (1, "out")] {
            let m = id * 10 + n;
            conn.execute(
                "INSERT INTO messages(id, ticket_id, direction, message_id, kind, received_at) VALUES (?1, ?2, ?3, ?4, 'request', 0)",
                params![m, id, direction, format!("m{m}@x")],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO message_raw(message_id, raw) VALUES (?1, CAST('Subject: s' || char(13,10,13,10) || 'a body of forty bytes, give or take ok' AS BLOB))",
                [m],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO attachments(message_id, part, name, content_type, size, sha256) VALUES (?1, 0, 'f.pdf', 'application/pdf', 3, 'x')",
            [id * 10],
        )
        .unwrap();
        conn.execute("INSERT INTO events(ticket_id, at, actor, kind, detail) VALUES (?1, 0, 'x', 'opened', 'd')", [id])
            .unwrap();
        conn.execute("INSERT INTO watchers(ticket_id, address, added_at) VALUES (?1, 'w@x.test', 0)", [id]).unwrap();
    }

    fn raw_len(conn: &Connection, m: i64) -> Option<i64> {
        conn.query_row("SELECT length(raw) FROM message_raw WHERE message_id = ?1", [m], |r| r.get(0)).ok()
    }

    fn policy(drop: Option<i64>, delete: Option<i64>) -> Retention {
        Retention {
            drop_raw_after: drop.map(|d| Duration::from_secs((d * DAY) as u64)),
            delete_after: delete.map(|d| Duration::from_secs((d * DAY) as u64)),
        }
    }

    #[test]
    fn drops_originals_of_old_closed_tickets_once_and_deletes_the_oldest() {
        let conn = crate::store::open_in_memory();
        ticket(&conn, 1, None); // open: kept whole
        ticket(&conn, 2, Some(10)); // closed recently: kept whole
        ticket(&conn, 3, Some(100)); // originals dropped
        ticket(&conn, 4, Some(400)); // deleted
        conn.execute("UPDATE tickets SET merged_into = 4 WHERE id = 3", []).unwrap();
        let p = policy(Some(90), Some(365));

        let dry = run(&conn, &p, NOW, true).unwrap();
        assert_eq!((dry.raw_dropped_tickets.clone(), dry.deleted_tickets.clone()), (vec![3], vec![4]));
        assert_eq!(dry.raw_dropped_messages, 2);
        assert_eq!(dry.deleted_messages, 2);
        assert_eq!(raw_len(&conn, 30), Some(52), "a dry run changes nothing");
        assert!(crate::store::get_meta(&conn, "retention_last_run").unwrap().is_none());

        let done = run(&conn, &p, NOW, false).unwrap();
        assert_eq!(done.raw_dropped_tickets, dry.raw_dropped_tickets);
        assert_eq!(done.deleted_tickets, dry.deleted_tickets);
        assert_eq!(done.raw_dropped_bytes, dry.raw_dropped_bytes);
        assert_eq!(done.raw_dropped_bytes, 2 * (52 - 14));
        assert_eq!(raw_len(&conn, 10), Some(52));
        assert_eq!(raw_len(&conn, 20), Some(52));
        assert_eq!(raw_len(&conn, 30), Some(14), "the header block stays");
        let kept: (String, i64) = conn
            .query_row("SELECT name, (SELECT count(*) FROM events WHERE ticket_id = 3 AND kind = 'raw-dropped') FROM attachments WHERE message_id = 30", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(kept, ("f.pdf".to_string(), 1), "attachment names and an event stay");
        let left = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(left("SELECT count(*) FROM tickets WHERE id = 4"), 0);
        assert_eq!(left("SELECT count(*) FROM messages WHERE ticket_id = 4"), 0);
        assert_eq!(left("SELECT count(*) FROM message_raw WHERE message_id IN (40, 41)"), 0);
        assert_eq!(left("SELECT count(*) FROM watchers WHERE ticket_id = 4"), 0);
        assert_eq!(left("SELECT count(*) FROM tickets WHERE merged_into IS NOT NULL"), 0, "references cleared");
        assert_eq!(left("SELECT count(*) FROM events WHERE ticket_id IS NULL AND kind = 'tickets-deleted'"), 1);
        assert!(
            crate::store::get_meta(&conn, "retention_last_run").unwrap().unwrap().contains("\"deleted_tickets\":1")
        );

        // The next day: nothing new is due, and nothing is done twice.
        let again = run(&conn, &p, NOW + DAY, false).unwrap();
        assert!(again.raw_dropped_tickets.is_empty() && again.deleted_tickets.is_empty(), "{again:?}");
        // A ticket closed again later is handled when it crosses the line again.
        conn.execute("UPDATE tickets SET closed_at = ?1 WHERE id = 2", [NOW - 10 * DAY]).unwrap();
        let later = run(&conn, &p, NOW + 85 * DAY, false).unwrap();
        assert_eq!(later.raw_dropped_tickets, vec![2]);
    }

    #[test]
    fn a_file_a_queued_mail_still_carries_is_kept() {
        let conn = crate::store::open_in_memory();
        ticket(&conn, 1, Some(100));
        conn.execute(
            "INSERT INTO outbox(message_id, ticket_id, envelope_from, recipient, status, created_at, next_attempt_at) VALUES (11, 1, 'd', 'r', 'pending', 0, 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO outbound_files(message_id, position, hole, source_message, part) VALUES (11, 0, 5, 10, 0)",
            [],
        )
        .unwrap();
        let done = run(&conn, &policy(Some(90), None), NOW, false).unwrap();
        assert_eq!(done.raw_dropped_messages, 0, "the queued mail and the file it carries");
        assert_eq!(raw_len(&conn, 10), Some(52));
        assert_eq!(raw_len(&conn, 11), Some(52));
        conn.execute("UPDATE outbox SET status = 'sent'", []).unwrap();
        let done = run(&conn, &policy(Some(90), None), NOW + 1, false).unwrap();
        assert_eq!(done.raw_dropped_messages, 2, "once it is sent");
    }
}
