//! Mail going out: queued inside the ingest transaction ([`mails`]), rendered and composed into
//! bytes beside the writer before the commit ([`composer`], [`compose`]), delivered from the outbox
//! afterwards ([`sender`]), with forwarded files filled in from the inbound message as each mail
//! goes out ([`outgoing`]). The admins' mail about failing logins is queued the same way
//! ([`login_alerts`]), like the other mail of no ticket ([`deskmail`]: digests, answers to queries).

pub mod compose;
pub mod composer;
pub mod deskmail;
pub mod itsm;
pub mod login_alerts;
pub mod mails;
pub mod outgoing;
pub mod sender;
pub mod smtp;
pub mod status_answer;
