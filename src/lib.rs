//! maildesk: an email-driven IT help desk.
//!
//! Every mail to the support address becomes a ticket; every requester gets an acknowledgement;
//! the SQLite database is the single source of truth. See `ARCHITECTURE.md` for the map.
//!
//! The pure core (`domain`, `message`, `reply_text`, `threading`, `auth`, `commands`, `tickets`,
//! `sla`, `templates`, `outbound::compose`) takes data and returns data. The edges (`inbound`,
//! `store`, `outbound::{sender, outgoing}`, `escalation`, `housekeeping`, `metrics`, `daemon`, `cli`) do
//! the I/O. Modules are layered
//! (ARCHITECTURE.md, "Layers"): each imports only modules below it. Modules only the crate uses
//! are `pub(crate)`; the rest are public for the binary, the tests, benches and the fuzz target.

pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod desk;
pub mod digest;
pub mod domain;
pub mod escalation;
pub mod health;
pub(crate) mod housekeeping;
pub mod inbound;
pub mod memory;
pub mod message;
pub mod metrics;
pub mod oauth;
pub(crate) mod outbound;
pub mod reply_text;
pub mod report;
pub mod routing;
pub mod shutdown;
pub mod sla;
pub mod store;
pub mod templates;
pub mod threading;
pub mod tickets;
pub mod tls;
