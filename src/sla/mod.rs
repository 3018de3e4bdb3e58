//! Service levels, pure: business-time arithmetic ([`calendar`]), the configured policies
//! ([`policy`]) and per-ticket clocks and escalation ladders ([`clock`]). The rows they are kept in
//! live in [`crate::store::sla`]; the sweep that sends escalations is [`crate::escalation`].

pub mod calendar;
pub mod clock;
pub mod policy;
