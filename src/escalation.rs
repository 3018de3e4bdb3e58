//! Escalations: the periodic sweep that mails the people an SLA level names.
//!
//! The sweep reads only tickets whose `sla_next_at` has passed (kept current by
//! [`crate::store::sla::refresh`]), through an index, so its cost follows what is due, not how many
//! tickets are open. A level is recorded in `sla_fired` in the same transaction as the escalation
//! mail's outbox rows: it fires exactly once, across restarts too.

use rusqlite::{Connection, TransactionBehavior, params};
use tracing::info;

use crate::desk::Desk;
use crate::message::parse::Mailbox;
use crate::outbound::mails;
use crate::sla::clock;
use crate::sla::policy::Notify;
use crate::store::sla::{clock_of, load, refresh};
use crate::store::{StoreError, write};

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
        refresh(&tx, desk.config, ticket, now)?;
    }
    queued += remind_approvers(&tx, desk, now)?;
    tx.commit()?;
    Ok(queued)
}

/// Reminds the approvers who have not decided a change's current version, once per version,
/// `remind_after` after it was submitted.
fn remind_approvers(conn: &Connection, desk: &Desk<'_>, now: i64) -> Result<usize, StoreError> {
    let mut queued = 0;
    for (ticket, asked_at) in crate::store::itsm::unreminded(conn)? {
        let Some(change) = crate::store::itsm::change(conn, ticket)? else { continue };
        let Some(approvals) = desk.config.approvals_for(change.service.as_deref()) else { continue };
        let Some(after) = approvals.remind_after else { continue };
        if asked_at + after.as_secs() as i64 > now {
            continue;
        }
        let decided: Vec<String> = crate::store::itsm::decisions(conn, ticket)?
            .into_iter()
            .filter(|d| d.version == change.version)
            .map(|d| d.approver)
            .collect();
        let waiting: Vec<String> = approvals.approvers.iter().filter(|a| !decided.contains(a)).cloned().collect();
        crate::store::itsm::mark_reminded(conn, ticket)?;
        if waiting.is_empty() {
            continue;
        }
        write::insert_event(
            conn,
            Some(ticket),
            now,
            "maildesk",
            crate::domain::EventKind::ApprovalReminder,
            &format!("version {} still waits for {}: reminded", change.version, waiting.join(", ")),
        )?;
        let mut composer = crate::outbound::composer::Composer::Inline(desk);
        queued += crate::outbound::itsm::queue_approval_requests(conn, &mut composer, ticket, &waiting, "", true, now)?;
        composer.finish(conn)?;
    }
    Ok(queued)
}

fn escalate(conn: &Connection, desk: &Desk<'_>, ticket: i64, now: i64) -> Result<usize, StoreError> {
    let Some(stored) = load(conn, ticket)? else { return Ok(0) };
    let c = clock_of(desk.config, &stored, now);
    let due = clock::due_now(&c, now);
    if due.is_empty() {
        return Ok(0);
    }
    let policy = stored.policy(desk.config);
    // The service's owner: named by "owner" in a ladder, and told of every breach.
    let owner = desk.config.service(stored.service.as_deref()).and_then(|s| s.owner.clone());
    // "technicians" are the team of the ticket's queue; "lead" its lead (the team, without one).
    let (_, queue) = desk.config.queue(stored.queue.as_deref());
    let technicians = &queue.team;
    let lead = queue.lead.clone().map(|l| vec![l]).unwrap_or_else(|| technicians.clone());
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
                Notify::Lead => lead.clone(),
                Notify::Owner => owner.clone().into_iter().collect(),
                Notify::Address(a) => vec![a.clone()],
            };
            for a in add {
                if !to.contains(&a) {
                    to.push(a);
                }
            }
        }
        if let (true, Some(o)) = (*top >= 100, &owner)
            && !to.contains(o)
        {
            to.push(o.clone());
        }
        let superseded = if reached.len() > 1 {
            format!(" (also passed: {:?}%)", &reached[..reached.len() - 1])
        } else {
            String::new()
        };
        summary.push(format!("{} reached {top}%{superseded}", target.label()));
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
            if let Some((conn, keys)) = ready.as_mut() {
                let desk = keys.desk(&self.config, &self.templates);
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

    fn open(&self) -> Result<(Connection, crate::desk::Keys), StoreError> {
        crate::desk::open(&self.database, &self.config)
    }
}
