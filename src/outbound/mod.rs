//! Mail going out: composed into bytes inside the ingest transaction ([`compose`]), delivered from
//! the outbox afterwards ([`sender`]).

pub mod compose;
pub mod composer;
pub mod mails;
pub mod sender;
pub mod smtp;
