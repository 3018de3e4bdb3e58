//! Mail coming in: fetched over IMAP ([`imap`]) and recorded atomically with everything it causes
//! ([`record`]). What a message says is read by the pure [`crate::message`] modules.

pub mod imap;
pub mod record;
