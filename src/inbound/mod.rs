//! Mail coming in, in phases: fetched over IMAP ([`imap`]), prepared ([`prepare`]: parsed by the
//! pure [`crate::message`] modules, new text, digest), decided ([`decide`]: thread, sender, plan),
//! applied ([`apply`], with the size limits of [`size`]) and recorded a batch per transaction with
//! everything it causes ([`record`]). Delivery reports take their own path ([`bounce_report`]), and so
//! do technicians' queries by mail ([`query`]), requesters' status requests ([`status`]) and
//! one-click ratings ([`rating`]).

mod apply;
mod approval;
mod bounce_report;
mod decide;
pub mod imap;
mod itsm;
mod prepare;
mod query;
mod rating;
pub mod record;
mod size;
mod status;
