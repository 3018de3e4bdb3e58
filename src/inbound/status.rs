//! Requesters ask for the state of their tickets by mail: writing to `support+status@…`, or
//! replying "status" alone on a ticket's thread, gets a list of their open tickets (status,
//! assignee, last update), sent to the sender's own `From` address only, and only to someone who has
//! tickets here: the desk never becomes a way to mail strangers, and the automatic-mail limits of
//! `[limits]` count these answers too.

use rusqlite::Connection;

use super::apply::{Outcome, Received};
use crate::desk::Desk;
use crate::message::parse::Inbound;
use crate::store::StoreError;

/// Whether `msg` was sent to `support+status@`.
pub(super) fn is_status_request(desk: &Desk<'_>, msg: &Inbound) -> bool {
    let wanted = desk.plus_address("status");
    msg.recipients.iter().any(|r| r.eq_ignore_ascii_case(&wanted))
}

/// Records a mail to `support+status@` (never a ticket) and answers it.
pub(super) fn record(
    conn: &Connection,
    desk: &Desk<'_>,
    received: &Received<'_>,
    now: i64,
) -> Result<Outcome, StoreError> {
    let &Received { msg, visible, .. } = received;
    received.store(conn, None, ("status-request", true), visible, now)?;
    let answered = crate::outbound::status_answer::queue(conn, desk, msg, now)?;
    Ok(Outcome::Query { answered })
}
