//! Mail coming in: fetched over IMAP ([`imap`]), parsed ([`parse`]), judged for automatic replies
//! ([`classify`]) and recorded atomically with everything it causes ([`record`]).

pub mod bounce;
pub mod classify;
pub mod html;
pub mod imap;
pub mod parse;
pub mod record;
pub mod senders;
