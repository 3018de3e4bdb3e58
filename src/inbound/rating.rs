//! Ratings sent with the one-click links of a resolution mail: a mail to `support+r42-5-<token>@`
//! rates ticket 42 with 5 (the token binds both), its text is the comment. Recorded on the ticket,
//! the last rating counting; it reopens, relays and answers nothing.

use rusqlite::Connection;

use super::apply::{Outcome, Received};
use crate::desk::Desk;
use crate::domain::EventKind;
use crate::message::parse::Inbound;
use crate::store::StoreError;
use crate::store::write::{self, Lookup};
use crate::threading::TicketLookup;

/// The ticket and score `msg` rates, when it was sent to a valid rating address of a live ticket.
pub(super) fn rates(conn: &Connection, desk: &Desk<'_>, msg: &Inbound) -> Result<Option<(i64, u8)>, StoreError> {
    let h = &desk.config.helpdesk;
    let Some((ticket, score)) = crate::auth::verify_rating_address(desk.reply_secret, &h.address, &msg.recipients)
    else {
        return Ok(None);
    };
    Ok(Lookup(conn).live_ticket(ticket)?.map(|live| (live, score)))
}

/// Records the rating `(ticket, score)` that `m` gives.
pub(super) fn record(
    conn: &Connection,
    desk: &Desk<'_>,
    m: &Received<'_>,
    (ticket, score): (i64, u8),
    now: i64,
) -> Result<Outcome, StoreError> {
    let &Received { msg, visible, .. } = m;
    // A one-click mail's subject is "Rating N"; whatever the person wrote is the comment.
    let comment = visible.trim();
    let automatic = crate::message::classify::suppress_auto_reply(msg, &desk.addresses()).is_some_and(|s| s.automatic);
    let kind = if automatic { "automatic" } else { "rating" };
    m.store(conn, Some(ticket), (kind, false), comment, now)?;
    write::touch_ticket(conn, ticket, now)?;
    if !automatic {
        let rater = msg.from.as_ref().map(|f| f.address.clone()).unwrap_or_else(|| "(no sender)".into());
        write::apply_updates(
            conn,
            ticket,
            &[crate::tickets::Update::Rate { score, comment: comment.to_string(), rater: rater.clone() }],
            &rater,
            now,
        )?;
    } else {
        write::insert_event(
            conn,
            Some(ticket),
            now,
            "maildesk",
            EventKind::Automatic,
            "an automatic mail to a rating address: not counted",
        )?;
    }
    Ok(Outcome::Ticket { id: ticket, created: false, queued: 0, kind })
}
