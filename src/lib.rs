//! maildesk: an email-driven IT help desk.
//!
//! Every mail to the support address becomes a ticket; every requester gets an acknowledgement;
//! the SQLite database is the single source of truth. See `ARCHITECTURE.md` for the map.
//!
//! The pure core (`message::parse`, `message::classify`, `threading`, `tickets`, `templates`,
//! `outbound::compose`) takes data and returns data. The edges (`inbound::imap`, `store`,
//! `outbound::sender`, `daemon`) do the I/O.

pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod desk;
pub mod domain;
pub mod escalation;
pub mod inbound;
pub mod message;
pub mod outbound;
pub mod reply_text;
pub mod report;
pub mod shutdown;
pub mod sla;
pub mod store;
pub mod templates;
pub mod threading;
pub mod tickets;
pub mod tls;
