//! Mail going out: queued inside the ingest transaction ([`mails`]), rendered and composed into
//! bytes beside the writer before the commit ([`composer`], [`compose`]), delivered from the outbox
//! afterwards ([`sender`]).

pub mod compose;
pub mod composer;
pub mod mails;
pub mod sender;
pub mod smtp;
