//! A ticket's SLA rows: its history as stored ([`load`]) and the SLA fields kept current on the
//! ticket ([`refresh`]).
//!
//! Every change to a ticket calls [`refresh`], which stores `sla_next_at` (when the next escalation
//! level is reached). The escalation sweep reads only tickets whose `sla_next_at` has passed, through
//! an index, so its cost follows what is due, not how many tickets are open.

use rusqlite::{Connection, OptionalExtension, params};

use crate::config::Config;
use crate::domain::{Priority, TicketStatus};
use crate::sla::clock::{self, Clock, ClockState, History, Target};

/// A ticket's history as stored.
pub struct Stored {
    pub created_at: i64,
    pub priority: Priority,
    pub assignee: Option<String>,
    pub statuses: Vec<(i64, TicketStatus)>,
    pub first_response_at: Option<i64>,
    pub fired: Vec<(Target, u32, i64)>,
    /// Its queue as stored: the queue's policy applies (`None`: the first queue's).
    pub queue: Option<String>,
    /// Its service and type: their policies, when configured, apply before the queue's.
    pub service: Option<String>,
    pub ticket_type: Option<crate::domain::TicketType>,
}

impl Stored {
    /// The policy that measures the ticket (see [`Config::policy_of`]).
    pub fn policy<'c>(&self, config: &'c Config) -> &'c crate::sla::policy::Policy {
        config.policy_of(self.queue.as_deref(), self.service.as_deref(), self.ticket_type, self.priority)
    }
}

impl Stored {
    pub fn history(&self) -> History<'_> {
        History {
            created_at: self.created_at,
            statuses: &self.statuses,
            first_response_at: self.first_response_at,
            fired: &self.fired,
        }
    }
}

pub fn load(conn: &Connection, ticket: i64) -> rusqlite::Result<Option<Stored>> {
    let Some((created_at, priority, assignee, first_response_at, queue, service, ticket_type)) = conn
        // A promoted automatic ticket's clocks start at its promotion.
        .prepare_cached(
            "SELECT coalesce(promoted_at, created_at), priority, assignee, first_response_at, queue, service, type
             FROM tickets WHERE id = ?1",
        )?
        .query_row([ticket], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .optional()?
    else {
        return Ok(None);
    };
    let statuses = conn
        .prepare_cached("SELECT at, status FROM status_log WHERE ticket_id = ?1 ORDER BY at, rowid")?
        .query_map([ticket], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let fired = conn
        .prepare_cached("SELECT target, percent, fired_at FROM sla_fired WHERE ticket_id = ?1")?
        .query_map([ticket], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(Some(Stored { created_at, priority, assignee, statuses, first_response_at, fired, queue, service, ticket_type }))
}

/// The ticket's clocks at `now`, under its queue's policy for its priority (a ticket moved to
/// another queue is measured by that queue's targets from the move on).
pub fn clock_of(config: &Config, s: &Stored, now: i64) -> Clock {
    let policy = s.policy(config);
    clock::clock(&s.history(), policy, config.sla.calendar(&policy.calendar), now)
}

/// Recomputes and stores the ticket's SLA fields. Call after every change to the ticket.
pub fn refresh(conn: &Connection, config: &Config, ticket: i64, now: i64) -> rusqlite::Result<Option<Clock>> {
    let Some(stored) = load(conn, ticket)? else { return Ok(None) };
    let c = clock_of(config, &stored, now);
    let (merged, automatic): (Option<i64>, bool) = conn
        .prepare_cached("SELECT merged_into, automatic FROM tickets WHERE id = ?1")?
        .query_row([ticket], |r| Ok((r.get(0)?, r.get(1)?)))?;
    // Automatic tickets are not requests: nothing escalates until one is promoted.
    let next = if merged.is_some() || automatic { None } else { c.next_level_at };
    let fr = &c.first_response;
    let res = &c.resolution;
    conn.prepare_cached(
        "UPDATE tickets SET sla_next_at = ?2,
             first_response_secs = ?3, first_response_breached = ?4,
             resolution_secs = ?5, resolution_breached = ?6,
             first_response_due_at = ?7, resolution_due_at = ?8
         WHERE id = ?1",
    )?
    .execute(params![
        ticket,
        next,
        (fr.state == ClockState::Met).then_some(fr.elapsed_secs),
        fr.breached,
        (res.state == ClockState::Stopped).then_some(res.elapsed_secs),
        res.breached,
        fr.due_at,
        res.due_at,
    ])?;
    Ok(Some(c))
}
