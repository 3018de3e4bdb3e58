//! Service levels: business-time arithmetic ([`calendar`]), per-ticket clocks and escalation
//! ladders ([`clock`]), and the periodic sweep that sends escalations ([`sweep`]).

pub mod calendar;
pub mod clock;
pub mod policy;
pub mod report;
pub mod sweep;
