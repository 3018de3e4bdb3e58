//! Delivery reports about mail maildesk sent: attached to that mail's ticket and told to the
//! technicians once per failed message and recipient; never a ticket, never answered.

use rusqlite::Connection;

use super::apply::{Outcome, Received};
use crate::domain::{EventKind, MailKind};
use crate::message::bounce::Bounce;
use crate::message::parse::Mailbox;
use crate::outbound::composer::Composer;
use crate::outbound::mails;
use crate::store::StoreError;
use crate::store::write::{self, Lookup};
use crate::threading::TicketLookup;
use crate::tickets;

/// A delivery report: attached to the ticket of the mail it reports on, recorded as a delivery
/// failure, and reported to the technicians once per failed message and recipient. It never opens a
/// ticket and is never answered; one that matches nothing maildesk sent is quarantined with the reason.
pub(super) fn record(
    conn: &Connection,
    composer: &mut Composer<'_>,
    received: &Received<'_>,
    b: &Bounce,
    now: i64,
) -> Result<Outcome, StoreError> {
    let &Received { source, raw, msg, .. } = received;
    let desk = composer.desk();
    let candidates = b.message_ids.iter().chain(msg.in_reply_to.iter()).chain(msg.references.iter().rev());
    let mut original = None;
    for id in candidates {
        if let Some(found) = write::outbound_message(conn, id)? {
            original = Some((id.clone(), found));
            break;
        }
    }
    let what = format!(
        "{}{}{}",
        b.recipient.as_deref().map(|r| format!("to {r}")).unwrap_or_else(|| "to an unknown recipient".into()),
        b.status.as_deref().map(|s| format!(", status {s}")).unwrap_or_default(),
        b.diagnostic.as_deref().map(|d| format!(": {d}")).unwrap_or_default(),
    );
    let Some((original_id, (out_row, Some(ticket)))) = original else {
        let reason = format!("delivery report ({}) about mail maildesk did not send: {what}", b.action);
        write::insert_quarantine(conn, source, &reason, raw, now)?;
        return Ok(Outcome::Quarantined { reason });
    };
    let ticket = Lookup(conn).live_ticket(ticket)?.unwrap_or(ticket);
    let row = received.store(conn, Some(ticket), (tickets::MessageKind::Bounce.as_str(), true), &msg.text, now)?;
    // The report's parts (the status, the returned headers) go to the technicians with it.
    let kept = super::size::keep(raw, &msg.attachments, &desk.config.limits);
    for &i in &kept.attachments {
        write::insert_attachment(conn, row, i, &msg.attachments[i])?;
    }
    if !b.is_failure() {
        let detail = format!("delivery report ({}) for {original_id} {what}", b.action);
        write::insert_event(conn, Some(ticket), now, "maildesk", EventKind::DeliveryReport, &detail)?;
        return Ok(Outcome::Ticket {
            id: ticket,
            created: false,
            queued: 0,
            kind: tickets::MessageKind::Bounce.as_str(),
        });
    }
    let first_report = write::mark_bounced(conn, out_row, b.recipient.as_deref(), &what)?;
    let detail = format!("mail {original_id} bounced {what}");
    write::insert_event(conn, Some(ticket), now, "maildesk", EventKind::DeliveryFailed, &detail)?;
    let mut queued = 0;
    if first_report {
        let state = write::ticket_state(conn, ticket)?;
        let (_, queue) = desk.config.queue(state.as_ref().and_then(|t| t.queue.as_deref()));
        let to: Vec<String> = state.and_then(|t| t.assignee).map(|a| vec![a]).unwrap_or_else(|| queue.team.clone());
        let mut plan = tickets::Plan::existing(ticket, tickets::MessageKind::Bounce, &detail);
        plan.internal = true;
        plan.attachments_kept = Some(kept.attachments);
        plan.mails = to
            .iter()
            .map(|a| tickets::Mail {
                kind: MailKind::DeliveryFailure,
                to: vec![Mailbox { name: None, address: a.clone() }],
            })
            .collect();
        queued = mails::queue(conn, composer, msg, &plan, ticket, row, now)?;
    }
    Ok(Outcome::Ticket { id: ticket, created: false, queued, kind: tickets::MessageKind::Bounce.as_str() })
}
