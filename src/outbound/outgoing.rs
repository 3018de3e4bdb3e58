//! The bytes of one outbound mail as it goes on the wire: its stored bytes with each forwarded file
//! filled in from the inbound message that brought it (see [`super::compose`] for the holes).
//!
//! Read just before the mail is sent, one mail at a time, so the sender holds at most one mail
//! per connection, and its files only as the base64 text being written (the parser lends their
//! decoded bytes). Each file is checked against the digest recorded when it arrived: a file
//! that is gone (erased, or trimmed by retention) or changed is never sent in its place.

use data_encoding::HEXLOWER;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::compose::push_base64;
use crate::message::parse::{attachment_contents, visit_attachments};
use crate::store::write;

#[derive(Debug, thiserror::Error)]
pub enum OutgoingError {
    #[error("its stored bytes are gone")]
    Missing,
    #[error("message {source_message} has no stored attachment {part}")]
    NotStored { source_message: i64, part: usize },
    #[error("attachment {part} of stored message {source_message} is no longer stored")]
    FileGone { source_message: i64, part: usize },
    #[error("attachment {part} of stored message {source_message} no longer matches the digest it arrived with")]
    FileChanged { source_message: i64, part: usize },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
}

struct Hole {
    at: usize,
    source_message: i64,
    part: usize,
    sha256: Option<String>,
    size: usize,
}

/// The wire bytes of outbound message `message_row`.
pub fn bytes(conn: &Connection, message_row: i64) -> Result<Vec<u8>, OutgoingError> {
    let stored = write::raw_message(conn, message_row)?.ok_or(OutgoingError::Missing)?;
    let holes: Vec<Hole> = conn
        .prepare_cached(
            "SELECT f.hole, f.source_message, f.part,
                    a.sha256, coalesce(a.size, 0)
             FROM outbound_files f
             LEFT JOIN attachments a ON a.message_id = f.source_message AND a.part = f.part
             WHERE f.message_id = ?1 ORDER BY f.position",
        )?
        .query_map([message_row], |r| {
            Ok(Hole {
                at: r.get::<_, i64>(0)? as usize,
                source_message: r.get(1)?,
                part: r.get::<_, i64>(2)? as usize,
                sha256: r.get(3)?,
                size: r.get::<_, i64>(4)? as usize,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    if holes.is_empty() {
        return Ok(stored);
    }
    if holes.windows(2).any(|w| w[0].at > w[1].at) || holes.last().is_some_and(|h| h.at > stored.len()) {
        return Err(OutgoingError::Missing);
    }
    let encoded: usize = holes.iter().map(|h| h.size / 57 * 78 + 80).sum();
    let mut out = Vec::with_capacity(stored.len() + encoded);
    let mut from = 0;
    // A run of holes from one source message: it is read and parsed once for the run (a mail's
    // files all come from the message it is about), and each file's bytes, lent by the parser,
    // are checked and written out as base64 without a copy.
    for run in holes.chunk_by(|a, b| a.source_message == b.source_message) {
        let source = run[0].source_message;
        // A message trimmed to its header block (by retention) has no files left: they are gone.
        let raw = write::raw_message(conn, source)?.unwrap_or_default();
        let parts: Vec<usize> = run.iter().map(|h| h.part).collect();
        let mut failure = None;
        let mut k = 0;
        visit_attachments(&raw, &parts, |part, contents| {
            let hole = &run[k];
            k += 1;
            if failure.is_some() {
                return;
            }
            let Some(data) = contents else {
                failure = Some(OutgoingError::FileGone { source_message: source, part });
                return;
            };
            if let Err(e) = check(data, hole.sha256.as_deref(), source, part) {
                failure = Some(e);
                return;
            }
            out.extend_from_slice(&stored[from..hole.at]);
            push_base64(&mut out, data);
            from = hole.at;
        });
        if let Some(e) = failure {
            return Err(e);
        }
        if k != run.len() {
            return Err(OutgoingError::FileGone { source_message: source, part: run[k].part });
        }
    }
    out.extend_from_slice(&stored[from..]);
    Ok(out)
}

/// One stored file, read again from its message and checked as the sender checks it: what
/// `maildesk attachment` saves. Its recorded name, and its bytes.
pub fn stored_file(conn: &Connection, message: i64, part: usize) -> Result<(Option<String>, Vec<u8>), OutgoingError> {
    let (name, sha256): (Option<String>, String) = conn
        .prepare_cached("SELECT name, sha256 FROM attachments WHERE message_id = ?1 AND part = ?2")?
        .query_row(rusqlite::params![message, part as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(OutgoingError::NotStored { source_message: message, part })?;
    // A message trimmed to its header block (by retention) has no files left: they are gone.
    let raw = write::raw_message(conn, message)?.unwrap_or_default();
    let data = attachment_contents(&raw, &[part])
        .pop()
        .flatten()
        .ok_or(OutgoingError::FileGone { source_message: message, part })?;
    check(&data, Some(&sha256), message, part)?;
    Ok((name, data))
}

/// Whether `data` is the file whose digest was recorded as `sha256` when it arrived.
fn check(data: &[u8], sha256: Option<&str>, source_message: i64, part: usize) -> Result<(), OutgoingError> {
    match sha256 == Some(HEXLOWER.encode(&Sha256::digest(data)).as_str()) {
        true => Ok(()),
        false => Err(OutgoingError::FileChanged { source_message, part }),
    }
}
