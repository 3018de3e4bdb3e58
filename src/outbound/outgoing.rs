//! The bytes of one outbound mail as it goes on the wire: its stored bytes with each forwarded file
//! filled in from the inbound message that brought it (see [`super::compose`] for the holes).
//!
//! Read just before the mail is sent, one mail at a time, so the sender holds at most one mail's
//! files per connection. Each file is checked against the digest recorded when it arrived: a file
//! that is gone (erased, or trimmed by retention) or changed is never sent in its place.

use std::collections::BTreeMap;

use data_encoding::HEXLOWER;
use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::compose::{Composed, fill_holes};
use crate::message::parse::attachment_contents;

#[derive(Debug, thiserror::Error)]
pub enum OutgoingError {
    #[error("its stored bytes are gone")]
    Missing,
    #[error("attachment {part} of stored message {source_message}, passed on with it, is no longer stored")]
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
}

/// The wire bytes of outbound message `message_row`.
pub fn bytes(conn: &Connection, message_row: i64) -> Result<Vec<u8>, OutgoingError> {
    let stored: Vec<u8> = conn
        .prepare_cached("SELECT raw FROM message_raw WHERE message_id = ?1")?
        .query_row([message_row], |r| r.get(0))
        .optional()?
        .ok_or(OutgoingError::Missing)?;
    let holes: Vec<Hole> = conn
        .prepare_cached(
            "SELECT f.hole, f.source_message, f.part,
                    (SELECT a.sha256 FROM attachments a WHERE a.message_id = f.source_message AND a.part = f.part)
             FROM outbound_files f WHERE f.message_id = ?1 ORDER BY f.position",
        )?
        .query_map([message_row], |r| {
            Ok(Hole {
                at: r.get::<_, i64>(0)? as usize,
                source_message: r.get(1)?,
                part: r.get::<_, i64>(2)? as usize,
                sha256: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    if holes.is_empty() {
        return Ok(stored);
    }
    // Each source message is read and parsed once, however many of its files the mail carries.
    let mut by_source: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, h) in holes.iter().enumerate() {
        by_source.entry(h.source_message).or_default().push(i);
    }
    let mut files: Vec<Vec<u8>> = vec![Vec::new(); holes.len()];
    for (source, positions) in by_source {
        let raw: Option<Vec<u8>> = conn
            .prepare_cached("SELECT raw FROM message_raw WHERE message_id = ?1 AND trimmed_at IS NULL")?
            .query_row([source], |r| r.get(0))
            .optional()?;
        let gone = |i: usize| OutgoingError::FileGone { source_message: source, part: holes[i].part };
        let raw = raw.ok_or_else(|| gone(positions[0]))?;
        let parts: Vec<usize> = positions.iter().map(|&i| holes[i].part).collect();
        for (&i, contents) in positions.iter().zip(attachment_contents(&raw, &parts)) {
            let data = contents.ok_or_else(|| gone(i))?;
            let digest = HEXLOWER.encode(&Sha256::digest(&data));
            if holes[i].sha256.as_deref() != Some(digest.as_str()) {
                return Err(OutgoingError::FileChanged { source_message: source, part: holes[i].part });
            }
            files[i] = data;
        }
    }
    let composed = Composed { bytes: stored, holes: holes.iter().map(|h| h.at).collect() };
    if composed.holes.iter().any(|&at| at > composed.bytes.len()) {
        return Err(OutgoingError::Missing);
    }
    Ok(fill_holes(&composed, &files))
}
