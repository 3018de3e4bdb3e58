//! The SLA edge: loading a ticket's history, keeping its stored SLA fields current, and the periodic
//! sweep that sends escalations.
//!
//! Every change to a ticket calls [`refresh`], which stores `sla_next_at` (when the next escalation
//! level is reached). The sweep reads only tickets whose `sla_next_at` has passed, through an index,
//! so its cost follows what is due, not how many tickets are open. A level is recorded in `sla_fired`
//! in the same transaction as the escalation mail's outbox rows: it fires exactly once, across
//! restarts too.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use tracing::info;

use super::clock::{self, Clock, History};
use super::policy::{Notify, SlaConfig};
use crate::desk::Desk;
use crate::inbound::parse::Mailbox;
use crate::outbound::mails;
use crate::store::{StoreError, write};

/// A ticket's history as stored.
pub struct Stored {
    pub created_at: i64,
    pub priority: String,
    pub assignee: Option<String>,
    pub statuses: Vec<(i64, String)>,
    pub first_response_at: Option<i64>,
    pub fired: Vec<(String, u32, i64)>,
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
    let Some((created_at, priority, assignee, first_response_at)) = conn
        // A promoted automatic ticket's clocks start at its promotion.
        .prepare_cached(
            "SELECT coalesce(promoted_at, created_at), priority, assignee, first_response_at FROM tickets WHERE id = ?1",
        )?
        .query_row([ticket], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
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
    Ok(Some(Stored { created_at, priority, assignee, statuses, first_response_at, fired }))
}

/// The ticket's clocks at `now`.
pub fn clock_of(sla: &SlaConfig, s: &Stored, now: i64) -> Clock {
    let policy = sla.policy(&s.priority);
    clock::clock(&s.history(), policy, sla.calendar(&policy.calendar), now)
}

/// Recomputes and stores the ticket's SLA fields. Call after every change to the ticket.
pub fn refresh(conn: &Connection, sla: &SlaConfig, ticket: i64, now: i64) -> rusqlite::Result<Option<Clock>> {
    let Some(stored) = load(conn, ticket)? else { return Ok(None) };
    let c = clock_of(sla, &stored, now);
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
        (fr.state == "met").then_some(fr.elapsed_secs),
        fr.breached,
        (res.state == "stopped").then_some(res.elapsed_secs),
        res.breached,
        fr.due_at,
        res.due_at,
    ])?;
    Ok(Some(c))
}

/// Sends every escalation due at `now`, in one transaction. Returns how many outbox rows it queued.
pub fn sweep(conn: &mut Connection, desk: &Desk<'_>, now: i64) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let due: Vec<i64> = tx
        .prepare_cached("SELECT id FROM tickets WHERE sla_next_at <= ?1 ORDER BY sla_next_at LIMIT 1000")?
        .query_map([now], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut queued = 0;
    for ticket in due {
        queued += escalate(&tx, desk, ticket, now)?;
        refresh(&tx, &desk.config.sla, ticket, now)?;
    }
    tx.commit()?;
    Ok(queued)
}

fn escalate(conn: &Connection, desk: &Desk<'_>, ticket: i64, now: i64) -> Result<usize, StoreError> {
    let sla = &desk.config.sla;
    let Some(stored) = load(conn, ticket)? else { return Ok(0) };
    let c = clock_of(sla, &stored, now);
    let due = clock::due_now(&c, now);
    if due.is_empty() {
        return Ok(0);
    }
    let policy = sla.policy(&stored.priority);
    let technicians = &desk.config.helpdesk.technicians;
    let mut to: Vec<String> = Vec::new();
    let mut summary = Vec::new();
    for (target, top, reached) in &due {
        for pct in reached {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO sla_fired(ticket_id, target, percent, fired_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![ticket, target, pct, now])?;
        }
        let level = policy.escalate.iter().find(|l| l.percent == *top).expect("due levels come from the ladder");
        for n in &level.notify {
            let add: Vec<String> = match n {
                Notify::Assignee => stored.assignee.clone().map(|a| vec![a]).unwrap_or_else(|| technicians.clone()),
                Notify::Technicians => technicians.clone(),
                Notify::Address(a) => vec![a.clone()],
            };
            for a in add {
                if !to.contains(&a) {
                    to.push(a);
                }
            }
        }
        let superseded = if reached.len() > 1 {
            format!(" (also passed: {:?}%)", &reached[..reached.len() - 1])
        } else {
            String::new()
        };
        summary.push(format!("{} reached {top}%{superseded}", target.replace('_', " ")));
    }
    let detail = format!(
        "escalation: {}; mailed {}",
        summary.join("; "),
        if to.is_empty() { "nobody (no recipients)".into() } else { to.join(", ") }
    );
    write::insert_event(conn, Some(ticket), now, "maildesk", crate::domain::EventKind::Escalation, &detail)?;
    info!(ticket, %detail, "SLA escalation");
    let recipients: Vec<Mailbox> = to.iter().map(|a| Mailbox { name: None, address: a.clone() }).collect();
    // A sweep queues a few mails at most: they are made on this thread.
    let mut composer = crate::outbound::composer::Composer::Inline(desk);
    mails::queue_escalation(conn, &mut composer, ticket, &c, &due, &recipients, now)
}

/// The escalation task: sweeps every `sla.sweep_interval` with its own database connection.
pub struct Sweeper {
    pub config: std::sync::Arc<crate::config::Config>,
    pub templates: std::sync::Arc<crate::templates::Templates>,
    pub database: std::path::PathBuf,
    /// Woken after a sweep that queued mail.
    pub outbox: std::sync::Arc<tokio::sync::Notify>,
    pub shutdown: crate::shutdown::Shutdown,
}

impl Sweeper {
    pub async fn run(mut self) {
        let interval = self.config.sla.sweep_interval;
        let mut ready = None;
        loop {
            if ready.is_none() {
                ready =
                    self.open().map_err(|e| tracing::warn!(error = %e, "SLA sweeper cannot open the database")).ok();
            }
            if let Some((conn, instance, secret)) = ready.as_mut() {
                let desk = Desk { config: &self.config, templates: &self.templates, instance, reply_secret: secret };
                match tokio::task::block_in_place(|| sweep(conn, &desk, crate::store::now())) {
                    Ok(0) => {}
                    Ok(n) => {
                        info!(queued = n, "SLA sweep queued escalations");
                        self.outbox.notify_one();
                    }
                    Err(e) => tracing::warn!(error = %e, "SLA sweep failed; will retry"),
                }
            }
            if self.shutdown.sleep(interval).await {
                return;
            }
        }
    }

    fn open(&self) -> Result<(Connection, String, Vec<u8>), StoreError> {
        let conn = crate::store::open(&self.database)?;
        let instance = crate::store::instance_token(&conn)?;
        let secret = crate::store::reply_secret(&conn, self.config.security.reply_secret_file.as_deref())?;
        Ok((conn, instance, secret))
    }
}
