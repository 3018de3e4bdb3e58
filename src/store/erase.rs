//! Erasure on request (`maildesk erase --requester ADDRESS`): a person's data leaves the database.
//!
//! Removed: every message they sent (row, original bytes, attachments), every mail sent to them
//! alone, every mail the desk made from theirs (notices quoting them), every outbox row addressed
//! to them (queued ones are not sent), their watcher entries,
//! and their address wherever it is written (address lists and text of the remaining messages,
//! event details and actors). Their tickets stay, as placeholders: no requester, subject
//! "(erased)", the technicians' work and the events. Other people's messages on those tickets whose
//! original bytes name them lose those bytes (their text stays, with the address replaced); a
//! queued mail that would carry their words or files is withdrawn. Each touched ticket gets an
//! `erased` event that names nobody.
//!
//! Deleted content is overwritten in the database file (`secure_delete`), and the write-ahead log is
//! checkpointed and emptied afterwards. Not covered: the mail server's mailbox (maildesk leaves the
//! originals there, marked read), backups, and logs.
//!
//! One transaction: safe while the daemon runs (it waits for the commit), and all or nothing. A dry
//! run does the same work and rolls it back, so it reports exactly what a real run would do.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use serde::Serialize;

use super::{StoreError, write};
use crate::domain::EventKind;

const PLACEHOLDER: &str = "(erased)";

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Erasure {
    pub dry_run: bool,
    /// Messages they sent, and mail sent to them alone, removed.
    pub messages_removed: i64,
    /// Outbox rows to them removed (those still queued are not sent).
    pub outbox_rows_removed: i64,
    /// Queued mail to others withdrawn because it carried their words or files.
    pub queued_mail_withdrawn: i64,
    /// Tickets they asked for, kept as placeholders.
    pub tickets_anonymised: Vec<i64>,
    /// Every ticket that held something of theirs.
    pub tickets_touched: Vec<i64>,
    pub watcher_entries_removed: i64,
    /// Other people's messages whose original bytes named them, kept as text only.
    pub originals_dropped: i64,
    /// Quarantined mail (never a ticket) that names them.
    pub quarantined_removed: i64,
}

/// Erases `address` (any case) as of `now`; with `dry_run`, only reports.
pub fn erase_requester(conn: &Connection, address: &str, now: i64, dry_run: bool) -> Result<Erasure, StoreError> {
    let address = address.trim().to_ascii_lowercase();
    if address.is_empty() || !address.contains('@') {
        return Err(StoreError::Internal("erase needs a mail address"));
    }
    // Deleted content is overwritten with zeros, not left in free pages of the file.
    conn.pragma_update(None, "secure_delete", true)?;
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let report = erase_in(&tx, &address, now, dry_run)?;
    if dry_run {
        tx.rollback()?;
        return Ok(report);
    }
    tx.commit()?;
    // The write-ahead log still holds the pages as they were: fold it into the file and empty it
    // (if the daemon is reading just then, its next checkpoint does it).
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    Ok(report)
}

fn ids(conn: &Connection, sql: &str, address: &str) -> rusqlite::Result<Vec<i64>> {
    conn.prepare_cached(sql)?.query_map([address], |r| r.get(0))?.collect()
}

fn erase_in(tx: &Connection, address: &str, now: i64, dry_run: bool) -> Result<Erasure, StoreError> {
    let mut report = Erasure { dry_run, ..Erasure::default() };
    // Theirs: mail they sent, and mail to them alone.
    let mut theirs = ids(
        tx,
        "SELECT id FROM messages WHERE from_addr = ?1
         UNION SELECT id FROM messages WHERE direction = 'out' AND to_addrs = ?1",
        address,
    )?;
    // Mail the desk made from theirs (a technician's notice quoting their request, a relay of
    // their reply): its Message-ID names the ticket and the message that caused it (see
    // `outbound::mails`). It goes too; a copy still queued is not sent.
    let sent_by_them: Vec<(i64, i64)> = tx
        .prepare_cached(
            "SELECT id, ticket_id FROM messages WHERE from_addr = ?1 AND direction = 'in' AND ticket_id IS NOT NULL",
        )?
        .query_map([address], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (m, ticket) in sent_by_them {
        let caused: Vec<i64> = tx
            .prepare_cached(
                "SELECT id FROM messages WHERE ticket_id = ?1 AND direction = 'out'
                   AND message_id LIKE '%.' || ?1 || '.' || ?2 || '.%'",
            )?
            .query_map(params![ticket, m], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for c in caused {
            report.queued_mail_withdrawn += tx
                .prepare_cached(
                    "SELECT count(*) FROM outbox WHERE message_id = ?1 AND status = 'pending' AND recipient <> ?2",
                )?
                .query_row(params![c, address], |r| r.get::<_, i64>(0))?;
            theirs.push(c);
        }
    }
    theirs.sort_unstable();
    theirs.dedup();
    let mut touched = ids(
        tx,
        "SELECT DISTINCT ticket_id FROM messages WHERE ticket_id IS NOT NULL AND (from_addr = ?1
             OR (direction = 'out' AND to_addrs = ?1))
         UNION SELECT id FROM tickets WHERE requester = ?1
         UNION SELECT ticket_id FROM watchers WHERE address = ?1
         UNION SELECT DISTINCT ticket_id FROM outbox WHERE recipient = ?1 AND ticket_id IS NOT NULL",
        address,
    )?;
    touched.sort_unstable();
    touched.dedup();
    report.tickets_anonymised = ids(tx, "SELECT id FROM tickets WHERE requester = ?1 ORDER BY id", address)?;

    // Queued mail carrying their files, or to them: withdrawn before anything it needs goes.
    for &m in &theirs {
        report.queued_mail_withdrawn += tx
            .prepare_cached(
                "UPDATE outbox SET status = 'failed', last_error = 'withdrawn: data erased on request'
                 WHERE status = 'pending' AND recipient <> ?2
                   AND message_id IN (SELECT message_id FROM outbound_files WHERE source_message = ?1)",
            )?
            .execute(params![m, address])? as i64;
        tx.prepare_cached("DELETE FROM outbound_files WHERE source_message = ?1 OR message_id = ?1")?.execute([m])?;
    }
    report.outbox_rows_removed =
        tx.prepare_cached("DELETE FROM outbox WHERE recipient = ?1")?.execute([address])? as i64;
    for &m in &theirs {
        tx.prepare_cached("DELETE FROM outbox WHERE message_id = ?1")?.execute([m])?;
        tx.prepare_cached("DELETE FROM attachments WHERE message_id = ?1")?.execute([m])?;
        tx.prepare_cached("DELETE FROM message_raw WHERE message_id = ?1")?.execute([m])?;
        report.messages_removed += tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?.execute([m])? as i64;
    }
    report.watcher_entries_removed =
        tx.prepare_cached("DELETE FROM watchers WHERE address = ?1")?.execute([address])? as i64;
    // A (former) technician's availability and assignment turns name them too.
    tx.prepare_cached("DELETE FROM away WHERE technician = ?1")?.execute([address])?;
    // Their ratings: the comment is their words.
    tx.prepare_cached("DELETE FROM ratings WHERE rater = ?1")?.execute([address])?;
    tx.prepare_cached("DELETE FROM auto_assigned WHERE technician = ?1")?.execute([address])?;
    // Their approvals stay counted (the change's record), without their name or words.
    tx.prepare_cached("UPDATE approvals SET approver = 'erased-' || rowid, reason = '' WHERE approver = ?1")?
        .execute([address])?;
    tx.prepare_cached("UPDATE tickets SET requester = NULL, requester_name = NULL, subject = ?2 WHERE requester = ?1")?
        .execute(params![address, PLACEHOLDER])?;

    // What others wrote on the touched tickets: the address replaced in what is kept as text, and
    // the original bytes dropped where they name it (they cannot be edited and stay valid mail).
    for &ticket in &touched {
        let others: Vec<i64> = tx
            .prepare_cached("SELECT id FROM messages WHERE ticket_id = ?1")?
            .query_map([ticket], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for m in others {
            tx.prepare_cached(
                "UPDATE messages SET to_addrs = replace(lower(to_addrs), ?2, ?3), cc_addrs = replace(lower(cc_addrs), ?2, ?3),
                        body_text = replace(body_text, ?2, ?3), subject = replace(subject, ?2, ?3)
                 WHERE id = ?1 AND (instr(lower(to_addrs), ?2) OR instr(lower(cc_addrs), ?2) OR instr(lower(body_text), ?2)
                                    OR instr(lower(subject), ?2))",
            )?
            .execute(params![m, address, PLACEHOLDER])?;
            let names = write::raw_message(tx, m)?.is_some_and(|raw| contains_ignoring_case(&raw, address.as_bytes()));
            if names {
                report.queued_mail_withdrawn += tx
                    .prepare_cached(
                        "UPDATE outbox SET status = 'failed', last_error = 'withdrawn: data erased on request'
                         WHERE message_id = ?1 AND status = 'pending'",
                    )?
                    .execute([m])? as i64;
                tx.prepare_cached("DELETE FROM outbound_files WHERE message_id = ?1 OR source_message = ?1")?
                    .execute([m])?;
                tx.prepare_cached("DELETE FROM message_raw WHERE message_id = ?1")?.execute([m])?;
                report.originals_dropped += 1;
            }
        }
        let detail = "a person's data was erased on request; this ticket keeps what others wrote";
        write::insert_event(tx, Some(ticket), now, "maildesk", EventKind::Erased, detail)?;
    }
    // Mail of theirs that never became a ticket.
    let quarantined: Vec<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT id, raw FROM quarantine")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, raw) in quarantined {
        if contains_ignoring_case(&raw, address.as_bytes()) {
            report.quarantined_removed +=
                tx.prepare_cached("DELETE FROM quarantine WHERE id = ?1")?.execute([id])? as i64;
        }
    }
    tx.prepare_cached("UPDATE events SET actor = ?2 WHERE lower(actor) = ?1")?
        .execute(params![address, PLACEHOLDER])?;
    tx.prepare_cached("UPDATE events SET detail = replace(detail, ?1, ?2) WHERE instr(lower(detail), ?1)")?
        .execute(params![address, PLACEHOLDER])?;
    tx.prepare_cached("UPDATE messages SET from_name = NULL, from_addr = ?2 WHERE from_addr = ?1")?
        .execute(params![address, PLACEHOLDER])?;
    if !dry_run {
        let detail = format!(
            "erasure on request: {} messages removed, {} tickets kept as placeholders, {} tickets touched",
            report.messages_removed,
            report.tickets_anonymised.len(),
            touched.len()
        );
        write::insert_event(tx, None, now, "maildesk", EventKind::Erased, &detail)?;
    }
    report.tickets_touched = touched;
    Ok(report)
}

/// Whether `needle` (lower-case ASCII) occurs in `haystack` in any case. Linear: a lower-cased
/// copy searched with `memchr`'s two-way search.
fn contains_ignoring_case(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(&haystack.to_ascii_lowercase(), needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_address_in_any_case() {
        assert!(contains_ignoring_case(b"To: Alice@Example.TEST\r\n", b"alice@example.test"));
        assert!(!contains_ignoring_case(b"To: alic@example.test", b"alice@example.test"));
        assert!(!contains_ignoring_case(b"", b"a@b"));
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;

    fn seed(conn: &Connection) {
        conn.execute_batch(
            "INSERT INTO tickets(id, subject, requester, requester_name, created_at, updated_at) VALUES
                 (1, 'Alice''s laptop', 'alice@x.test', 'Alice', 0, 0), (2, 'Bob''s printer', 'bob@x.test', 'Bob', 0, 0);
             INSERT INTO messages(id, ticket_id, direction, message_id, kind, received_at, from_addr, from_name, to_addrs, cc_addrs, body_text) VALUES
                 (10, 1, 'in', 'a1@x', 'request', 0, 'alice@x.test', 'Alice', 'support@d.test', '', 'my laptop'),
                 (11, 1, 'out', 'k1@d', 'acknowledgement', 0, 'support@d.test', NULL, 'alice@x.test', '', 'we got it'),
                 (12, 1, 'out', 'new-ticket.1.10.1.abc@d.test', 'new-ticket', 0, 'support@d.test', NULL, 'tech@d.test', '', 'Alice wrote: my laptop'),
                 (20, 2, 'in', 'b1@x', 'request', 0, 'bob@x.test', 'Bob', 'support@d.test', 'Alice@x.test', 'cc alice@x.test'),
                 (21, 2, 'out', 'k2@d', 'new-ticket', 0, 'support@d.test', NULL, 'tech@d.test', '', 'bob wrote');
             INSERT INTO message_raw(message_id, raw) VALUES (10, CAST('From: alice@x.test' AS BLOB)), (11, x'00'), (12, x'00'),
                 (20, CAST('Cc: ALICE@x.test' AS BLOB)), (21, CAST('From: support@d.test, bob wrote: cc Alice@x.test' AS BLOB));
             INSERT INTO attachments(message_id, part, name, content_type, size, sha256) VALUES (10, 0, 'cv.pdf', 'application/pdf', 1, 'x');
             INSERT INTO watchers(ticket_id, address, added_at) VALUES (2, 'alice@x.test', 0);
             INSERT INTO outbox(message_id, ticket_id, envelope_from, recipient, status, created_at, next_attempt_at) VALUES
                 (11, 1, 'support@d.test', 'alice@x.test', 'pending', 0, 0), (21, 2, 'support@d.test', 'tech@d.test', 'pending', 0, 0),
                 (12, 1, 'support@d.test', 'tech@d.test', 'pending', 0, 0);
             INSERT INTO events(ticket_id, at, actor, kind, detail) VALUES (2, 0, 'maildesk', 'watcher-added', 'alice@x.test added');",
        )
        .unwrap();
    }

    #[test]
    fn a_person_leaves_no_trace_and_their_tickets_stay_as_placeholders() {
        let conn = crate::store::open_in_memory();
        seed(&conn);
        let dry = erase_requester(&conn, "Alice@X.test", 5, true).unwrap();
        assert_eq!(dry.messages_removed, 3, "her request, the acknowledgement to her, the notice quoting her");
        assert_eq!(conn.query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0)).unwrap(), 5, "dry run");
        let done = erase_requester(&conn, "alice@x.test", 5, false).unwrap();
        assert_eq!(done, Erasure { dry_run: false, ..dry.clone() });
        assert_eq!(done.tickets_anonymised, vec![1]);
        assert_eq!(done.tickets_touched, vec![1, 2]);
        assert_eq!(done.outbox_rows_removed, 1);
        assert_eq!(done.watcher_entries_removed, 1);
        assert_eq!(done.originals_dropped, 2, "bob's mail named her in its Cc, the notification quotes it");
        assert_eq!(done.queued_mail_withdrawn, 2, "the notices quoting her and bob's mail that names her");
        let left: Vec<String> = conn
            .prepare("SELECT body_text FROM messages ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(left.iter().all(|t| !t.contains("my laptop")), "her words are gone: {left:?}");
        // Nowhere in any text column of any table.
        let tables = ["tickets", "messages", "events", "watchers", "outbox", "attachments"];
        for t in tables {
            let rows: Vec<String> = conn
                .prepare(&format!("SELECT * FROM {t}"))
                .unwrap()
                .query_map([], |r| {
                    let n = r.as_ref().column_count();
                    Ok((0..n)
                        .map(|i| match r.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Text(s) => String::from_utf8_lossy(s).to_lowercase(),
                            _ => String::new(),
                        })
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(rows.iter().all(|r| !r.contains("alice@x.test")), "{t}: {rows:?}");
        }
        let raw_left: i64 = conn
            .query_row("SELECT count(*) FROM message_raw WHERE instr(lower(CAST(raw AS TEXT)), 'alice')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(raw_left, 0);
        let placeholder: (String, Option<String>) = conn
            .query_row("SELECT subject, requester FROM tickets WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(placeholder, ("(erased)".to_string(), None));
        let bob: String = conn.query_row("SELECT subject FROM tickets WHERE id = 2", [], |r| r.get(0)).unwrap();
        assert_eq!(bob, "Bob's printer");
        let audit: Vec<String> = conn
            .prepare("SELECT detail FROM events WHERE kind = 'erased'")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(audit.len(), 3, "one per touched ticket and one of no ticket: {audit:?}");
    }
}
