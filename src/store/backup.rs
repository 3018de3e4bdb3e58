//! An online backup: a consistent copy of the database taken while the daemon runs.
//!
//! `VACUUM INTO` copies the database as of one read transaction. In WAL mode a reader blocks no
//! writer, so intake and sending go on meanwhile; the copy holds whole commits only (a message
//! and every mail it caused, or none of them). The copy is compacted, has no `-wal` file to go
//! with it, is created readable by its owner only, and is checked with `PRAGMA integrity_check`
//! before it is reported good.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use super::{StoreError, open_existing};

/// What a backup wrote, as `maildesk backup --json` prints it.
#[derive(Debug, Serialize)]
pub struct Backup {
    pub path: PathBuf,
    pub bytes: u64,
    pub tickets: i64,
    pub messages: i64,
    /// SQLite's `integrity_check` of the copy: always "ok" when the backup succeeded.
    pub integrity: String,
    pub seconds: f64,
}

/// Copies `database` to `to`, which must not exist yet (a backup never overwrites anything). On
/// any failure the partial copy is removed.
pub fn backup(database: &Path, to: &Path) -> Result<Backup, StoreError> {
    let err = |detail: String| StoreError::Backup { path: to.into(), detail };
    let start = Instant::now();
    let source = open_existing(database)?;
    {
        use std::os::unix::fs::OpenOptionsExt;
        // VACUUM INTO accepts an empty file: made here first so that it is the owner's alone.
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                err("already exists; a backup never overwrites a file".into())
            } else {
                err(format!("cannot create it: {e}"))
            }
        })?;
    }
    let made = (|| {
        let target = to.to_str().ok_or_else(|| err("the path is not UTF-8".into()))?;
        source.execute("VACUUM INTO ?1", [target]).map_err(|e| err(format!("copying failed: {e}")))?;
        check(to)
    })();
    match made {
        Ok((integrity, tickets, messages)) => Ok(Backup {
            path: to.into(),
            bytes: std::fs::metadata(to).map(|m| m.len()).unwrap_or(0),
            tickets,
            messages,
            integrity,
            seconds: start.elapsed().as_secs_f64(),
        }),
        Err(e) => {
            let _ = std::fs::remove_file(to);
            Err(e)
        }
    }
}

/// Checks a copy: SQLite's integrity check, and what it holds.
fn check(path: &Path) -> Result<(String, i64, i64), StoreError> {
    let err = |detail: String| StoreError::Backup { path: path.into(), detail };
    let copy = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| err(format!("cannot open the copy: {e}")))?;
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| err(format!("integrity check failed to run: {e}")))?;
    if integrity != "ok" {
        return Err(err(format!("the copy fails SQLite's integrity check: {integrity}")));
    }
    let count = |table: &str| -> Result<i64, StoreError> {
        copy.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| err(format!("cannot read the copy: {e}")))
    };
    Ok((integrity, count("tickets")?, count("messages")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_a_checked_private_copy_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("m.db");
        let conn = super::super::open(&db).unwrap();
        conn.execute("INSERT INTO tickets(subject, created_at, updated_at) VALUES ('s', 0, 0)", []).unwrap();
        let to = dir.path().join("copy.db");
        let b = backup(&db, &to).unwrap();
        assert_eq!((b.tickets, b.messages, b.integrity.as_str()), (1, 0, "ok"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&to).unwrap().permissions().mode() & 0o777, 0o600);
        // The copy is a database of this schema that the CLI opens.
        assert!(super::super::open_existing(&to).is_ok());
        let again = backup(&db, &to).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
        assert_eq!(check(&to).unwrap().1, 1, "the first copy is untouched");
        let missing = backup(&dir.path().join("none.db"), &dir.path().join("c2.db")).unwrap_err().to_string();
        assert!(missing.contains("no database at"), "{missing}");
        assert!(!dir.path().join("c2.db").exists());
    }
}
