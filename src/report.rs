//! `maildesk report` and `maildesk sla`: service levels as numbers.
//!
//! The report reads the business times that [`crate::store::sla::refresh`] stores on each ticket when a
//! target is met, so it aggregates instead of replaying every ticket's calendar: one pass over the
//! tickets in the period, whatever their number.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use serde::Serialize;

use crate::store::StoreError;

/// What the CLI's queries return: a database error says it is one, once.
type Result<T, E = StoreError> = std::result::Result<T, E>;

use crate::domain::{Priority, TicketStatus, rfc3339};
use crate::sla::clock::{Clock, Target};
use crate::sla::policy::Notify;
use crate::store::sla::{clock_of, load};

#[derive(Debug, Default, Serialize)]
pub struct TargetStats {
    /// Tickets whose target was met, or is already breached without being met.
    pub measured: u64,
    pub within_target: u64,
    /// Percent of `measured` within target; null when nothing was measured.
    pub attainment_pct: Option<f64>,
    /// Business seconds, over the tickets whose target was met.
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

#[derive(Debug, Default, Serialize)]
pub struct Backlog {
    pub under_1d: u64,
    pub from_1d_to_7d: u64,
    pub from_7d_to_30d: u64,
    pub over_30d: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct PriorityReport {
    pub priority: Priority,
    pub opened: u64,
    pub resolved: u64,
    pub first_response: TargetStats,
    pub resolution: TargetStats,
    /// Tickets that breached either target.
    pub breaches: u64,
    /// Tickets open now (open or pending), by age.
    pub backlog: Backlog,
}

#[derive(Debug, Default, Serialize)]
pub struct TechnicianReport {
    pub technician: String,
    /// Tickets (opened in the period) this technician wrote on: replies, notes or commands.
    pub tickets_handled: u64,
    /// Tickets whose first response this technician gave.
    pub first_responses: u64,
    pub median_first_response_secs: Option<i64>,
    /// Tickets assigned to them now that are not resolved or closed.
    pub assigned_open: u64,
    /// Minutes they logged with `#time` in the period (on any ticket).
    pub time_minutes: u64,
    /// Ratings given in the period to tickets assigned to them, and their average (1-5).
    pub ratings: u64,
    pub rating_average: Option<f64>,
}

/// The same figures as [`PriorityReport`], per queue.
#[derive(Debug, Default, Serialize)]
pub struct QueueReport {
    pub queue: String,
    pub opened: u64,
    pub resolved: u64,
    pub first_response: TargetStats,
    pub resolution: TargetStats,
    pub breaches: u64,
    pub backlog: Backlog,
    /// Minutes logged with `#time` in the period on the queue's tickets.
    pub time_minutes: u64,
    /// Ratings given in the period to the queue's tickets, and their average (1-5).
    pub ratings: u64,
    pub rating_average: Option<f64>,
}

/// The SLA figures per service (`[[services]]`): tickets without one are in no service's row.
#[derive(Debug, Default, Serialize)]
pub struct ServiceReport {
    pub service: String,
    pub opened: u64,
    pub resolved: u64,
    pub first_response: TargetStats,
    pub resolution: TargetStats,
    pub breaches: u64,
    pub backlog: Backlog,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub since: Option<String>,
    pub until: Option<String>,
    pub priorities: Vec<PriorityReport>,
    pub technicians: Vec<TechnicianReport>,
    /// In the config's order; tickets from before queues count for the first queue.
    pub queues: Vec<QueueReport>,
    /// In the config's order.
    pub services: Vec<ServiceReport>,
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn stats(mut met: Vec<i64>, breached_unmet: u64, breached_met: u64) -> TargetStats {
    met.sort_unstable();
    let measured = met.len() as u64 + breached_unmet;
    let within = met.len() as u64 - breached_met.min(met.len() as u64);
    TargetStats {
        measured,
        within_target: within,
        attainment_pct: (measured > 0).then(|| (within as f64 * 1000.0 / measured as f64).round() / 10.0),
        median_secs: percentile(&met, 0.5),
        p90_secs: percentile(&met, 0.9),
    }
}

#[derive(Default)]
struct Acc {
    opened: u64,
    resolved: u64,
    fr: Vec<i64>,
    fr_breached_met: u64,
    fr_breached_unmet: u64,
    res: Vec<i64>,
    res_breached_met: u64,
    res_breached_unmet: u64,
    breaches: u64,
    backlog: Backlog,
}

impl Acc {
    /// One ticket counted.
    fn add(&mut self, t: &Row) {
        self.opened += 1;
        match t.fr {
            Some(s) => {
                self.fr.push(s);
                self.fr_breached_met += t.fr_b as u64;
            }
            None => self.fr_breached_unmet += t.fr_b as u64,
        }
        match (t.res, t.status.is_done()) {
            (Some(s), true) => {
                self.resolved += 1;
                self.res.push(s);
                self.res_breached_met += t.res_b as u64;
            }
            _ => self.res_breached_unmet += t.res_b as u64,
        }
        self.breaches += (t.fr_b || t.res_b) as u64;
        if !t.status.is_done() {
            let b = &mut self.backlog;
            match t.age {
                a if a < 86_400 => b.under_1d += 1,
                a if a < 7 * 86_400 => b.from_1d_to_7d += 1,
                a if a < 30 * 86_400 => b.from_7d_to_30d += 1,
                _ => b.over_30d += 1,
            }
        }
    }
}

/// What the report needs of one ticket.
struct Row {
    status: TicketStatus,
    age: i64,
    fr: Option<i64>,
    fr_b: bool,
    res: Option<i64>,
    res_b: bool,
}

/// The report over tickets opened in `[since, until)` (Unix seconds; open-ended when None).
/// `queues`: the configured queues' names, the first holding tickets stored without a known one.
pub fn report(
    conn: &Connection,
    since: Option<i64>,
    until: Option<i64>,
    (queues, services): (&[String], &[String]),
    now: i64,
) -> Result<Report> {
    let (lo, hi) = (since.unwrap_or(i64::MIN), until.unwrap_or(i64::MAX));
    let mut by_queue: Vec<Acc> = queues.iter().map(|_| Acc::default()).collect();
    let mut by_service: Vec<Acc> = services.iter().map(|_| Acc::default()).collect();
    let mut by_priority: BTreeMap<Priority, Acc> = Priority::ALL.iter().map(|p| (*p, Acc::default())).collect();
    let mut techs: BTreeMap<String, (Vec<i64>, u64, u64)> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT priority, status, created_at, first_response_secs, first_response_breached, resolution_secs,
                resolution_breached, first_responder, first_response_due_at, resolution_due_at, queue, service
         FROM tickets WHERE created_at >= ?1 AND created_at < ?2 AND merged_into IS NULL",
    )?;
    let mut rows = stmt.query(params![lo, hi])?;
    while let Some(r) = rows.next()? {
        let priority: Priority = r.get(0)?;
        let status: TicketStatus = r.get(1)?;
        let created: i64 = r.get(2)?;
        let fr: Option<i64> = r.get(3)?;
        let fr_b: bool = r.get(4)?;
        let res: Option<i64> = r.get(5)?;
        let res_b: bool = r.get(6)?;
        let responder: Option<String> = r.get(7)?;
        // A running target breaches when its due time passes, without any write: compare with now.
        let fr_b = fr_b || (fr.is_none() && r.get::<_, Option<i64>>(8)?.is_some_and(|d| d < now));
        let res_b = res_b || (res.is_none() && r.get::<_, Option<i64>>(9)?.is_some_and(|d| d < now));
        if let (Some(s), Some(t)) = (fr, &responder) {
            techs.entry(t.clone()).or_default().0.push(s);
        }
        let row = Row { status, age: now - created, fr, fr_b, res, res_b };
        by_priority.entry(priority).or_default().add(&row);
        let queue: Option<String> = r.get(10)?;
        let q = queue.and_then(|q| queues.iter().position(|n| *n == q)).unwrap_or(0);
        if let Some(acc) = by_queue.get_mut(q) {
            acc.add(&row);
        }
        let service: Option<String> = r.get(11)?;
        if let Some(acc) =
            service.and_then(|s| services.iter().position(|n| *n == s)).and_then(|i| by_service.get_mut(i))
        {
            acc.add(&row);
        }
    }
    let mut stmt = conn.prepare(
        "SELECT m.from_addr, count(DISTINCT m.ticket_id) FROM messages m JOIN tickets t ON t.id = m.ticket_id
         WHERE m.direction = 'in' AND m.kind IN ('technician-reply', 'note', 'commands')
           AND t.created_at >= ?1 AND t.created_at < ?2
         GROUP BY m.from_addr",
    )?;
    for row in stmt.query_map(params![lo, hi], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (t, n) = row?;
        techs.entry(t).or_default().2 = n as u64;
    }
    let mut stmt = conn.prepare(
        "SELECT assignee, count(*) FROM tickets WHERE assignee IS NOT NULL AND status IN ('open', 'pending')
         AND merged_into IS NULL GROUP BY assignee",
    )?;
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (t, n) = row?;
        techs.entry(t).or_default().1 = n as u64;
    }
    // Time logged in the period, whenever its ticket was opened.
    let mut time_by_queue = vec![0u64; queues.len()];
    let mut stmt = conn.prepare(
        "SELECT e.technician, t.queue, sum(e.minutes) FROM time_entries e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.at >= ?1 AND e.at < ?2 GROUP BY e.technician, t.queue",
    )?;
    let mut time_by_tech: BTreeMap<String, u64> = BTreeMap::new();
    for row in stmt.query_map(params![lo, hi], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?))
    })? {
        let (t, queue, m) = row?;
        let m = m.max(0) as u64;
        *time_by_tech.entry(t.clone()).or_default() += m;
        techs.entry(t).or_default();
        let q = queue.and_then(|q| queues.iter().position(|n| *n == q)).unwrap_or(0);
        if let Some(slot) = time_by_queue.get_mut(q) {
            *slot += m;
        }
    }
    // Satisfaction: ratings given in the period.
    let mut rated_by_queue = vec![(0u64, 0u64); queues.len()];
    let mut rated_by_tech: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut stmt = conn.prepare(
        "SELECT t.assignee, t.queue, r.score FROM ratings r JOIN tickets t ON t.id = r.ticket_id
         WHERE r.at >= ?1 AND r.at < ?2",
    )?;
    for row in stmt.query_map(params![lo, hi], |r| {
        Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?))
    })? {
        let (assignee, queue, score) = row?;
        let score = score.clamp(1, 5) as u64;
        let q = queue.and_then(|q| queues.iter().position(|n| *n == q)).unwrap_or(0);
        if let Some(slot) = rated_by_queue.get_mut(q) {
            *slot = (slot.0 + 1, slot.1 + score);
        }
        if let Some(a) = assignee {
            let e = rated_by_tech.entry(a.clone()).or_default();
            *e = (e.0 + 1, e.1 + score);
            techs.entry(a).or_default();
        }
    }
    let average = |(n, sum): (u64, u64)| (n > 0).then(|| (sum as f64 * 10.0 / n as f64).round() / 10.0);
    let priorities = by_priority
        .into_iter()
        .map(|(priority, a)| PriorityReport {
            priority,
            opened: a.opened,
            resolved: a.resolved,
            first_response: stats(a.fr, a.fr_breached_unmet, a.fr_breached_met),
            resolution: stats(a.res, a.res_breached_unmet, a.res_breached_met),
            breaches: a.breaches,
            backlog: a.backlog,
        })
        .collect();
    let technicians = techs
        .into_iter()
        .map(|(technician, (mut fr, open, handled))| {
            fr.sort_unstable();
            TechnicianReport {
                tickets_handled: handled,
                first_responses: fr.len() as u64,
                median_first_response_secs: percentile(&fr, 0.5),
                assigned_open: open,
                time_minutes: time_by_tech.get(&technician).copied().unwrap_or(0),
                ratings: rated_by_tech.get(&technician).map(|r| r.0).unwrap_or(0),
                rating_average: rated_by_tech.get(&technician).copied().and_then(average),
                technician,
            }
        })
        .collect();
    let queues = queues
        .iter()
        .zip(by_queue)
        .zip(time_by_queue)
        .zip(rated_by_queue)
        .map(|(((queue, a), time_minutes), rated)| QueueReport {
            queue: queue.clone(),
            opened: a.opened,
            resolved: a.resolved,
            first_response: stats(a.fr, a.fr_breached_unmet, a.fr_breached_met),
            resolution: stats(a.res, a.res_breached_unmet, a.res_breached_met),
            breaches: a.breaches,
            backlog: a.backlog,
            time_minutes,
            ratings: rated.0,
            rating_average: average(rated),
        })
        .collect();
    let services = services
        .iter()
        .zip(by_service)
        .map(|(service, a)| ServiceReport {
            service: service.clone(),
            opened: a.opened,
            resolved: a.resolved,
            first_response: stats(a.fr, a.fr_breached_unmet, a.fr_breached_met),
            resolution: stats(a.res, a.res_breached_unmet, a.res_breached_met),
            breaches: a.breaches,
            backlog: a.backlog,
        })
        .collect();
    Ok(Report { since: since.map(rfc3339), until: until.map(rfc3339), priorities, technicians, queues, services })
}

#[derive(Debug, Serialize)]
pub struct LevelView {
    pub at: String,
    pub notify: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct PolicyView {
    pub priority: Priority,
    pub first_response_secs: i64,
    pub resolution_secs: i64,
    pub calendar: String,
    pub pause_when_pending: bool,
    pub escalate: Vec<LevelView>,
}

#[derive(Debug, Serialize)]
pub struct SlaView {
    pub ticket: i64,
    pub policy: PolicyView,
    /// Both targets, with times as Unix seconds (see `clock`).
    pub clock: Clock,
    /// The same instants as RFC 3339 UTC, for people and scripts that prefer them.
    pub due: BTreeMap<String, Option<String>>,
    /// Opened by machine mail and not promoted: no level is due and nothing escalates.
    pub automatic: bool,
}

/// The `maildesk sla N` view of a ticket.
pub fn sla_view(conn: &Connection, config: &crate::config::Config, ticket: i64, now: i64) -> Result<Option<SlaView>> {
    let Some(stored) = load(conn, ticket)? else { return Ok(None) };
    let mut c = clock_of(config, &stored, now);
    let automatic: bool = conn.query_row("SELECT automatic FROM tickets WHERE id = ?1", [ticket], |r| r.get(0))?;
    if automatic {
        c.next_level_at = None;
    }
    let p = stored.policy(config);
    let policy = PolicyView {
        priority: stored.priority,
        first_response_secs: p.first_response,
        resolution_secs: p.resolution,
        calendar: p.calendar.clone(),
        pause_when_pending: p.pause_when_pending,
        escalate: p
            .escalate
            .iter()
            .map(|l| LevelView {
                at: format!("{}%", l.percent),
                notify: l
                    .notify
                    .iter()
                    .map(|n| match n {
                        Notify::Assignee => "assignee".to_string(),
                        Notify::Technicians => "technicians".to_string(),
                        Notify::Lead => "lead".to_string(),
                        Notify::Owner => "owner".to_string(),
                        Notify::Address(a) => a.clone(),
                    })
                    .collect(),
            })
            .collect(),
    };
    let due = BTreeMap::from([
        (Target::FirstResponse.as_str().to_string(), c.first_response.due_at.map(rfc3339)),
        (Target::Resolution.as_str().to_string(), c.resolution.due_at.map(rfc3339)),
    ]);
    Ok(Some(SlaView { ticket, policy, clock: c, due, automatic }))
}
