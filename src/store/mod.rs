//! The SQLite database: the single source of truth about tickets, messages and what was processed.
//!
//! Opened in WAL mode so the CLI can read while the daemon writes, with `synchronous = FULL` so that
//! a commit that returned is on disk: the IMAP `\Seen` flag and every outbound mail come after a
//! commit, and a power cut must not make maildesk forget a message it already answered.
//! Ingest groups several messages into one transaction to pay for that fsync once per batch.
//!
//! `write` holds the statements the ingest transaction runs; `read` the queries behind the CLI.

pub mod backup;
pub mod digest;
pub mod erase;
pub mod itsm;
pub mod read;
pub mod retention;
pub mod sla;
mod values;
pub mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use rusqlite_migration::{M, Migrations};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {}: {cause}", path.display())]
    Open { path: PathBuf, cause: rusqlite::Error },
    #[error("no database at {} yet: `maildesk run` creates it", path.display())]
    Missing { path: PathBuf },
    #[error("the database at {} has no maildesk tables yet: `maildesk run` creates them", path.display())]
    Empty { path: PathBuf },
    #[error("the database at {} has schema version {found}, this maildesk reads {expected}: {hint}", path.display())]
    Version { path: PathBuf, found: i64, expected: i64, hint: &'static str },
    #[error("backup {}: {detail}", path.display())]
    Backup { path: PathBuf, detail: String },
    #[error("database {}: cannot create its folder: {cause}", path.display())]
    Folder { path: PathBuf, cause: std::io::Error },
    #[error("database {}: cannot create it: {cause}", path.display())]
    Create { path: PathBuf, cause: std::io::Error },
    #[error("security.reply_secret_file {}: cannot read it: {cause}", path.display())]
    ReplySecret { path: PathBuf, cause: std::io::Error },
    #[error("database {}: schema upgrade failed: {cause}", path.display())]
    Migrate { path: PathBuf, cause: rusqlite_migration::Error },
    #[error("database: {0}")]
    Sql(rusqlite::Error),
    /// A bug in maildesk, caught before it could commit anything.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

// Each variant shows its cause in its message and returns no source, so a chain printed with
// `{:#}` says it once. Not `#[from]`, which would make SQLite's error the source as well.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e)
    }
}

/// The schema version this maildesk writes and reads (SQLite's `user_version`).
const SCHEMA_VERSION: i64 = 8;

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("schema_v1.sql")),
        M::up(include_str!("schema_v2.sql")),
        M::up(include_str!("schema_v3.sql")),
        M::up(include_str!("schema_v4.sql")),
        M::up(include_str!("schema_v5.sql")),
        M::up(include_str!("schema_v6.sql")),
        M::up(include_str!("schema_v7.sql")),
        M::up(include_str!("schema_v8.sql")),
    ])
}

/// Opens (creating if needed) the daemon's database and brings its schema up to date.
pub fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|cause| StoreError::Folder { path: path.into(), cause })?;
    }
    // The database holds every mail and the reply-token secret: readable by its owner only. SQLite
    // gives its -wal and -shm files the same mode.
    if !path.exists() {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|cause| StoreError::Create { path: path.into(), cause })?;
    }
    let mut conn = Connection::open(path).map_err(|cause| StoreError::Open { path: path.into(), cause })?;
    configure(&conn).map_err(|cause| StoreError::Open { path: path.into(), cause })?;
    migrations().to_latest(&mut conn).map_err(|cause| StoreError::Migrate { path: path.into(), cause })?;
    Ok(conn)
}

/// Opens an existing database for the CLI. Never creates one: a typo in `database` should say so,
/// not show an empty help desk.
pub fn open_existing(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing { path: path.into() });
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|cause| StoreError::Open { path: path.into(), cause })?;
    configure(&conn).map_err(|cause| StoreError::Open { path: path.into(), cause })?;
    // Reading an older or newer schema would fail on the first missing column; say why instead.
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|cause| StoreError::Open { path: path.into(), cause })?;
    match found {
        SCHEMA_VERSION => Ok(conn),
        0 => Err(StoreError::Empty { path: path.into() }),
        found if found < SCHEMA_VERSION => Err(StoreError::Version {
            path: path.into(),
            found,
            expected: SCHEMA_VERSION,
            hint: "`maildesk run` upgrades it",
        }),
        found => Err(StoreError::Version {
            path: path.into(),
            found,
            expected: SCHEMA_VERSION,
            hint: "a newer maildesk wrote it; use that version",
        }),
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // Only takes effect on a new database. 16 KiB pages cut the write cost of raw messages and
    // attachment blobs by about an eighth here compared with 4 KiB (measured; 64 KiB was slower).
    conn.pragma_update(None, "page_size", 16384)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Statement journals stay in memory instead of a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Recording a message runs about 25 distinct statements; with rusqlite's default of 16 cached,
    // each was compiled again for every message (measured: a sixth of the recording time).
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

pub fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

/// A random token made once per database. It goes into every Message-ID maildesk creates, so two
/// desks (or a desk and its restored backup) never issue the same id.
pub fn instance_token(conn: &Connection) -> rusqlite::Result<String> {
    if let Some(t) = get_meta(conn, "instance")? {
        return Ok(t);
    }
    let token: String = conn.prepare_cached("SELECT lower(hex(randomblob(8)))")?.query_row([], |r| r.get(0))?;
    conn.prepare_cached("INSERT OR IGNORE INTO meta(key, value) VALUES ('instance', ?1)")?.execute([&token])?;
    get_meta(conn, "instance").map(|t| t.unwrap_or(token))
}

/// The key of the technicians' per-ticket reply addresses: from `reply_secret_file` when configured,
/// else 32 random bytes made on first start and kept in the database (so addresses stay valid
/// across restarts, and a copied database keeps working).
pub fn reply_secret(conn: &Connection, file: Option<&Path>) -> Result<Vec<u8>, StoreError> {
    if let Some(f) = file {
        return std::fs::read(f).map_err(|cause| StoreError::ReplySecret { path: f.into(), cause });
    }
    if get_meta(conn, "reply_secret")?.is_none() {
        let secret: String = conn.prepare_cached("SELECT lower(hex(randomblob(32)))")?.query_row([], |r| r.get(0))?;
        conn.prepare_cached("INSERT OR IGNORE INTO meta(key, value) VALUES ('reply_secret', ?1)")?
            .execute([&secret])?;
    }
    let hex = get_meta(conn, "reply_secret")?.unwrap_or_default();
    Ok(data_encoding::HEXLOWER_PERMISSIVE.decode(hex.as_bytes()).unwrap_or_else(|_| hex.into_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxState {
    pub uid_validity: u32,
    pub last_uid: u32,
}

pub fn mailbox_state(conn: &Connection, mailbox: &str) -> rusqlite::Result<Option<MailboxState>> {
    conn.prepare_cached("SELECT uid_validity, last_uid FROM mailbox_state WHERE mailbox = ?1")?
        .query_row([mailbox], |r| Ok(MailboxState { uid_validity: r.get(0)?, last_uid: r.get(1)? }))
        .optional()
}

/// Records that every UID up to `last_uid` under `uid_validity` has been dealt with. Called inside
/// the transaction that recorded those messages, so the mark and the messages commit together.
pub fn set_mailbox_state(conn: &Connection, mailbox: &str, state: MailboxState) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO mailbox_state(mailbox, uid_validity, last_uid) VALUES (?1, ?2, ?3)
         ON CONFLICT(mailbox) DO UPDATE SET uid_validity = excluded.uid_validity,
             last_uid = CASE WHEN mailbox_state.uid_validity = excluded.uid_validity
                             THEN max(mailbox_state.last_uid, excluded.last_uid) ELSE excluded.last_uid END",
    )?
    .execute(params![mailbox, state.uid_validity, state.last_uid])?;
    Ok(())
}

/// Seconds since the Unix epoch. The only wall clock read in the store; callers pass it down.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A new database in memory with the current schema: `replay --dry-run` on a desk not yet started.
pub fn open_scratch() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    migrations().to_latest(&mut conn).map_err(|_| StoreError::Internal("the schema could not be made in memory"))?;
    Ok(conn)
}

/// A new database in memory with the current schema, for unit tests of the statements.
#[cfg(test)]
pub(crate) fn open_in_memory() -> Connection {
    let mut conn = Connection::open_in_memory().expect("an in-memory database");
    conn.pragma_update(None, "foreign_keys", "ON").expect("foreign keys");
    migrations().to_latest(&mut conn).expect("the schema");
    conn
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn a_version_7_desk_with_tickets_upgrades_to_itsm() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrations().to_version(&mut conn, 7).unwrap();
        let id = write::insert_ticket(
            &conn,
            "Printer",
            None,
            (crate::domain::Priority::P3, Some("helpdesk")),
            None,
            false,
            1_700_000_000,
        )
        .unwrap();
        conn.execute("UPDATE tickets SET type = 'change' WHERE id = ?1", [id]).unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let (version, approval, service, problem): (i64, Option<String>, Option<String>, Option<i64>) = conn
            .query_row("SELECT change_version, approval, service, problem_id FROM tickets WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(
            (version, approval, service, problem),
            (0, None, None, None),
            "a change from before v8 was never submitted"
        );
        let broken: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0)).unwrap();
        assert_eq!(broken, 0);
        // The new statements work on it.
        assert_eq!(itsm::change(&conn, id).unwrap().map(|c| c.version), Some(0));
        let bad = conn.execute("UPDATE tickets SET approval = 'maybe' WHERE id = ?1", [id]);
        assert!(bad.is_err(), "an approval state the code does not know is refused");
    }

    #[test]
    fn schema_version_is_the_number_of_migrations() {
        let conn = open_in_memory();
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn the_cli_opens_only_a_database_of_its_own_schema_and_creates_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        assert!(matches!(open_existing(&path), Err(StoreError::Missing { .. })));
        assert!(!path.exists(), "a view must not create the database");
        Connection::open(&path).unwrap().execute_batch("CREATE TABLE x(a)").unwrap();
        let e = open_existing(&path).unwrap_err();
        assert!(matches!(e, StoreError::Empty { .. }) && e.to_string().contains("`maildesk run` creates them"), "{e}");
        let mut conn = Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE x").unwrap();
        migrations().to_version(&mut conn, 2).unwrap();
        let e = open_existing(&path).unwrap_err();
        let expected = format!("schema version 2, this maildesk reads {SCHEMA_VERSION}: `maildesk run` upgrades it");
        assert!(e.to_string().contains(&expected), "{e}");
        drop(conn);
        open(&path).unwrap();
        assert!(open_existing(&path).is_ok());
    }

    /// Every counter the triggers keep equals the count it stands for.
    fn assert_counters_agree(conn: &Connection) {
        let pairs = [
            ("messages_in", "SELECT count(*) FROM messages WHERE direction = 'in'"),
            ("outbox_pending", "SELECT count(*) FROM outbox WHERE status = 'pending'"),
            ("outbox_sending", "SELECT count(*) FROM outbox WHERE status = 'sending'"),
            ("outbox_sent", "SELECT count(*) FROM outbox WHERE status = 'sent'"),
            ("outbox_failed", "SELECT count(*) FROM outbox WHERE status = 'failed'"),
            ("tickets_open", "SELECT count(*) FROM tickets WHERE status = 'open'"),
            ("tickets_pending", "SELECT count(*) FROM tickets WHERE status = 'pending'"),
            ("tickets_resolved", "SELECT count(*) FROM tickets WHERE status = 'resolved'"),
            ("tickets_closed", "SELECT count(*) FROM tickets WHERE status = 'closed'"),
            ("tickets_automatic", "SELECT count(*) FROM tickets WHERE automatic = 1"),
            ("breached_first_response", "SELECT count(*) FROM tickets WHERE first_response_breached = 1"),
            ("breached_resolution", "SELECT count(*) FROM tickets WHERE resolution_breached = 1"),
            ("escalations_fired", "SELECT count(*) FROM sla_fired"),
        ];
        for (name, sql) in pairs {
            let kept: i64 = conn.query_row("SELECT n FROM counters WHERE name = ?1", [name], |r| r.get(0)).unwrap();
            let counted: i64 = conn.query_row(sql, [], |r| r.get(0)).unwrap();
            assert_eq!(kept, counted, "{name}");
        }
    }

    #[test]
    fn the_counters_follow_every_insert_update_and_delete() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 4).unwrap();
        // Rows from before v5 are counted by the migration.
        conn.execute_batch(
            "INSERT INTO tickets(id, subject, status, created_at, updated_at, automatic, resolution_breached) VALUES
                 (1, 's', 'open', 0, 0, 0, 1), (2, 's', 'closed', 0, 0, 1, 0);
             INSERT INTO messages(id, ticket_id, direction, message_id, kind, received_at) VALUES
                 (1, 1, 'in', 'a', 'request', 0), (2, 1, 'out', 'b', 'acknowledgement', 0);
             INSERT INTO outbox(message_id, ticket_id, envelope_from, recipient, status, created_at, next_attempt_at)
                 VALUES (2, 1, 'd', 'r', 'sent', 0, 0);",
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        assert_counters_agree(&conn);
        conn.execute_batch(
            "INSERT INTO tickets(id, subject, status, created_at, updated_at, first_response_breached) VALUES (3, 's', 'open', 0, 0, 1);
             INSERT INTO messages(id, ticket_id, direction, message_id, kind, received_at) VALUES
                 (3, 3, 'in', 'c', 'request', 0), (4, 3, 'out', 'd', 'acknowledgement', 0);
             INSERT INTO outbox(message_id, ticket_id, envelope_from, recipient, created_at, next_attempt_at)
                 VALUES (4, 3, 'd', 'r', 0, 0), (4, 3, 'd', 's', 0, 0);
             UPDATE outbox SET status = 'sending' WHERE recipient = 'r' AND message_id = 4;
             UPDATE outbox SET status = 'failed' WHERE recipient = 's';
             UPDATE tickets SET status = 'resolved', resolution_breached = 1 WHERE id = 3;
             UPDATE tickets SET automatic = 0, status = 'open' WHERE id = 2;
             UPDATE tickets SET status = 'open' WHERE id = 1;
             INSERT INTO sla_fired(ticket_id, target, percent, fired_at) VALUES (1, 'resolution', 75, 0), (3, 'first_response', 50, 0);",
        )
        .unwrap();
        assert_counters_agree(&conn);
        retention::delete_ticket(&conn, 3).unwrap();
        assert_counters_agree(&conn);
        conn.execute("UPDATE tickets SET requester = 'x@y.test' WHERE id = 1", []).unwrap();
        erase::erase_requester(&conn, "x@y.test", 5, false).unwrap();
        assert_counters_agree(&conn);
    }

    #[test]
    fn v5_keeps_only_the_header_block_of_outbound_mail_already_sent() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 4).unwrap();
        conn.execute_batch(
            "INSERT INTO tickets(id, subject, created_at, updated_at) VALUES (1, 's', 0, 0);
             INSERT INTO messages(id, ticket_id, direction, message_id, kind, received_at)
                 VALUES (1, 1, 'in', 'a@x', 'request', 0), (2, 1, 'out', 'b@x', 'acknowledgement', 0),
                        (3, 1, 'out', 'c@x', 'new-ticket', 0);
             INSERT INTO message_raw(message_id, raw) VALUES
                 (1, CAST('From: a' || char(13,10,13,10) || 'files' AS BLOB)),
                 (2, CAST('From: d' || char(13,10,13,10) || 'sent body' AS BLOB)),
                 (3, CAST('From: d' || char(13,10,13,10) || 'waiting body' AS BLOB));
             INSERT INTO outbox(message_id, ticket_id, envelope_from, recipient, status, created_at, next_attempt_at)
                 VALUES (2, 1, 'd', 'r', 'sent', 0, 0), (3, 1, 'd', 'r', 'sent', 0, 0), (3, 1, 'd', 't', 'pending', 0, 0);",
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let raw = |id: i64| -> String {
            conn.query_row("SELECT CAST(raw AS TEXT) FROM message_raw WHERE message_id = ?1", [id], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(raw(1), "From: a\r\n\r\nfiles", "inbound mail is kept whole");
        assert_eq!(raw(2), "From: d\r\n\r\n", "sent: the header block only");
        assert_eq!(raw(3), "From: d\r\n\r\nwaiting body", "a copy still waits");
        // Once the last copy is sent, it is trimmed too.
        conn.execute("UPDATE outbox SET status = 'sent' WHERE message_id = 3", []).unwrap();
        assert!(write::trim_sent(&conn, 3, 5).unwrap());
        assert_eq!(raw(3), "From: d\r\n\r\n");
        assert!(!write::trim_sent(&conn, 3, 6).unwrap(), "once");
    }

    #[test]
    fn v2_keeps_attachment_descriptions_numbers_their_parts_and_drops_the_copies() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 1).unwrap();
        conn.execute_batch(
            "INSERT INTO tickets(id, subject, created_at, updated_at) VALUES (1, 's', 0, 0);
             INSERT INTO messages(id, ticket_id, direction, message_id, kind, received_at)
                 VALUES (7, 1, 'in', 'm@x', 'request', 0);
             INSERT INTO blobs VALUES ('aa', 1, x'00'), ('bb', 1, x'01');
             INSERT INTO attachments(id, message_id, name, content_type, size, sha256)
                 VALUES (3, 7, 'a.txt', 'text/plain', 1, 'aa'), (5, 7, 'b.txt', 'text/plain', 1, 'bb');",
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let parts: Vec<(i64, i64, String)> = conn
            .prepare("SELECT id, part, name FROM attachments ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(parts, vec![(3, 0, "a.txt".to_string()), (5, 1, "b.txt".to_string())]);
        let blobs: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'blobs'", [], |r| r.get(0)).unwrap();
        assert_eq!(blobs, 0);
    }

    #[test]
    fn v3_moves_raw_messages_to_their_own_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_version(&mut conn, 2).unwrap();
        conn.execute_batch(
            "INSERT INTO tickets(id, subject, created_at, updated_at) VALUES (1, 's', 0, 0);
             INSERT INTO messages(id, ticket_id, direction, message_id, kind, received_at, raw)
                 VALUES (7, 1, 'in', 'a@x', 'request', 0, x'0102'), (8, 1, 'in', 'b@x', 'request', 0, NULL);",
        )
        .unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let raw: Vec<(i64, Vec<u8>)> = conn
            .prepare("SELECT message_id, raw FROM message_raw ORDER BY message_id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(raw, vec![(7, vec![1, 2])]);
        let columns: i64 = conn
            .query_row("SELECT count(*) FROM pragma_table_info('messages') WHERE name = 'raw'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(columns, 0);
        assert_eq!(conn.query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0)).unwrap(), 2);
    }

    #[test]
    fn mailbox_state_only_moves_forward_within_a_uidvalidity() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("db/m.db")).unwrap();
        let s = |v, l| MailboxState { uid_validity: v, last_uid: l };
        set_mailbox_state(&conn, "INBOX", s(7, 10)).unwrap();
        set_mailbox_state(&conn, "INBOX", s(7, 4)).unwrap();
        assert_eq!(mailbox_state(&conn, "INBOX").unwrap(), Some(s(7, 10)));
        set_mailbox_state(&conn, "INBOX", s(8, 2)).unwrap();
        assert_eq!(mailbox_state(&conn, "INBOX").unwrap(), Some(s(8, 2)));
        let t = instance_token(&conn).unwrap();
        assert_eq!(t.len(), 16);
        assert_eq!(instance_token(&conn).unwrap(), t);
    }
}
