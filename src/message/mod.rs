//! What a mail says, read without any I/O: its fields and texts ([`parse`], with HTML rendered as
//! text by [`html`]), whether a machine sent it ([`classify`], [`bounce`], [`senders`]).
//!
//! Pure: these modules take bytes and return values. They import nothing that touches the network,
//! the database or the clock, so the inbound and outbound paths, the planner and the store can all
//! depend on them.

pub mod bounce;
pub mod classify;
pub mod html;
pub mod mbox;
pub mod parse;
pub mod senders;
