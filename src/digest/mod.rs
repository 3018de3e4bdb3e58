//! Digests: each technician's daily mail about their work and each lead's and admin's weekly mail
//! about the desk, scheduled in the desk's time zone (`[digests]`), each sent once per period, across
//! restarts and downtime too: the mail and its `digests_sent` row are one transaction. Nobody with
//! nothing to report gets one (until they have something, in the same period). Their `Reply-To` is the recipient's query address (`auth`), so a
//! reply with `#mine` or `#find WORDS` asks the desk.

mod period;

use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;
use tracing::info;

pub use period::{Kind, due};

use crate::desk::Desk;
use crate::outbound::deskmail::{self, DeskMail};
use crate::store::StoreError;
use crate::store::digest::{self as facts, Count, Line};
use crate::templates::{DeskContext, local_time};

/// A ticket as a digest's template sees it.
#[derive(Debug, Serialize)]
pub struct TicketLine {
    pub id: i64,
    /// `[ACME #12]`.
    pub tag: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub requester: String,
    pub queue: String,
    /// Local time, or empty.
    pub due: String,
    pub assigned: bool,
    /// How long it has waited on the requester (pending tickets).
    pub waiting: String,
}

#[derive(Debug, Serialize)]
pub struct DailyContext {
    pub desk: DeskContext,
    pub technician: String,
    pub date: String,
    pub assigned: Vec<TicketLine>,
    pub due_today: Vec<TicketLine>,
    pub breached: Vec<TicketLine>,
    pub waiting: Vec<TicketLine>,
    pub waiting_days: i64,
    pub unassigned: Vec<TicketLine>,
    /// How many each list holds in all: a list shows at most [`MAX_LINES`].
    pub totals: Totals,
    pub max_lines: usize,
}

/// At most this many tickets per list of a digest: past that, a count says how many more.
pub const MAX_LINES: usize = 50;

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub assigned: usize,
    pub due_today: usize,
    pub breached: usize,
    pub waiting: usize,
    pub unassigned: usize,
}

impl DailyContext {
    fn is_empty(&self) -> bool {
        self.totals.assigned == 0 && self.totals.unassigned == 0
    }
}

/// One row of the weekly tables, every figure ready to print.
#[derive(Debug, Serialize)]
pub struct WeeklyRow {
    pub name: String,
    pub opened: u64,
    pub resolved: u64,
    pub first_response_ok: String,
    pub first_response_median: String,
    pub first_response_p90: String,
    pub resolution_ok: String,
    pub resolution_median: String,
    pub resolution_p90: String,
    pub breaches: u64,
    pub backlog: String,
    /// "4.5 of 5 (12 ratings)", or empty.
    pub satisfaction: String,
}

#[derive(Debug, Serialize)]
pub struct TechnicianLoad {
    pub technician: String,
    pub assigned_open: u64,
    pub handled: u64,
    pub first_responses: u64,
    pub time: String,
}

#[derive(Debug, Serialize)]
pub struct WeeklyContext {
    pub desk: DeskContext,
    pub since: String,
    pub until: String,
    pub opened: u64,
    pub resolved: u64,
    pub queues: Vec<WeeklyRow>,
    /// Per `[[services]]`, named with its owner.
    pub services: Vec<WeeklyRow>,
    pub priorities: Vec<WeeklyRow>,
    pub technicians: Vec<TechnicianLoad>,
    pub senders: Vec<Count>,
    pub subjects: Vec<Count>,
}

fn desk_context(desk: &Desk<'_>) -> DeskContext {
    let h = &desk.config.helpdesk;
    DeskContext { name: h.name.clone(), tag: h.tag.clone(), address: h.address.clone() }
}

fn ticket_line(desk: &Desk<'_>, l: &Line, assigned: bool, waiting: String) -> TicketLine {
    let h = &desk.config.helpdesk;
    TicketLine {
        id: l.id,
        tag: crate::threading::format_tag(&h.tag, l.id),
        subject: l.subject.clone(),
        status: l.status.to_string(),
        priority: l.priority.to_string(),
        requester: l.requester.clone(),
        queue: desk.config.queue(l.queue.as_deref()).1.name.clone(),
        due: l.due_at_secs.map(|d| local_time(&h.timezone, Some(d))).unwrap_or_default(),
        assigned,
        waiting,
    }
}

/// The queues `technician` works (is in the team or leads).
fn queues_of(desk: &Desk<'_>, technician: &str) -> Vec<String> {
    let t = technician.to_string();
    desk.config
        .queues
        .iter()
        .filter(|q| q.team.contains(&t) || q.lead.as_ref() == Some(&t))
        .map(|q| q.name.clone())
        .collect()
}

/// The unassigned open tickets of each queue (at most 50 each): read once per digest run, not once
/// per technician.
pub fn unassigned_by_queue(conn: &Connection, desk: &Desk<'_>) -> Result<Vec<(String, Vec<Line>)>, StoreError> {
    let first = &desk.config.queues[0].name;
    let mut out = Vec::new();
    for q in &desk.config.queues {
        out.push((q.name.clone(), facts::unassigned(conn, std::slice::from_ref(&q.name), first, 50)?));
    }
    Ok(out)
}

/// What `technician`'s daily digest says at `now`; `unassigned` from [`unassigned_by_queue`].
pub fn daily(
    conn: &Connection,
    desk: &Desk<'_>,
    technician: &str,
    unassigned: &[(String, Vec<Line>)],
    now: i64,
) -> Result<DailyContext, StoreError> {
    let h = &desk.config.helpdesk;
    let local = jiff::Timestamp::from_second(now).map(|t| t.to_zoned(h.timezone.clone())).ok();
    let date = local.as_ref().map(|z| z.date().to_string()).unwrap_or_default();
    let day_end = local
        .and_then(|z| z.date().tomorrow().ok()?.to_zoned(h.timezone.clone()).ok())
        .map(|z| z.timestamp().as_second())
        .unwrap_or(now + 86_400);
    let waiting_secs = desk.config.digests.waiting_after.as_secs() as i64;
    let mine = facts::assigned(conn, technician)?;
    let queues = queues_of(desk, technician);
    let mut unassigned: Vec<Line> =
        unassigned.iter().filter(|(q, _)| queues.contains(q)).flat_map(|(_, l)| l.iter().cloned()).collect();
    unassigned.sort_by_key(|l| l.id);
    unassigned.truncate(50);
    let overdue = |l: &Line| l.breached || l.due_at_secs.is_some_and(|d| d <= now);
    let mut ctx = DailyContext {
        desk: desk_context(desk),
        technician: technician.to_string(),
        date,
        assigned: Vec::new(),
        due_today: Vec::new(),
        breached: Vec::new(),
        waiting: Vec::new(),
        waiting_days: waiting_secs / 86_400,
        unassigned: Vec::new(),
        totals: Totals::default(),
        max_lines: MAX_LINES,
    };
    // Each list keeps its first MAX_LINES and counts the rest.
    let push = |list: &mut Vec<TicketLine>, total: &mut usize, line: TicketLine| {
        *total += 1;
        if list.len() < MAX_LINES {
            list.push(line);
        }
    };
    for (l, assigned) in mine.iter().map(|l| (l, true)).chain(unassigned.iter().map(|l| (l, false))) {
        if overdue(l) && assigned {
            push(&mut ctx.breached, &mut ctx.totals.breached, ticket_line(desk, l, assigned, String::new()));
        } else if l.due_at_secs.is_some_and(|d| d > now && d < day_end) {
            push(&mut ctx.due_today, &mut ctx.totals.due_today, ticket_line(desk, l, assigned, String::new()));
        }
    }
    for l in &mine {
        if l.status == crate::domain::TicketStatus::Pending
            && let Some(since) = l.status_since
            && now - since >= waiting_secs
        {
            let waited = crate::outbound::mails::human_duration(now - since);
            push(&mut ctx.waiting, &mut ctx.totals.waiting, ticket_line(desk, l, true, waited));
        }
        push(&mut ctx.assigned, &mut ctx.totals.assigned, ticket_line(desk, l, true, String::new()));
    }
    for l in &unassigned {
        push(&mut ctx.unassigned, &mut ctx.totals.unassigned, ticket_line(desk, l, false, String::new()));
    }
    Ok(ctx)
}

/// What the weekly digest says at `now`: the seven days before it.
pub fn weekly(conn: &Connection, desk: &Desk<'_>, now: i64) -> Result<WeeklyContext, StoreError> {
    let h = &desk.config.helpdesk;
    let since = now - 7 * 86_400;
    let names: Vec<String> = desk.config.queues.iter().map(|q| q.name.clone()).collect();
    let services: Vec<String> = desk.config.services.iter().map(|s| s.name.clone()).collect();
    let r = crate::report::report(conn, Some(since), Some(now), (&names, &services), now)?;
    let dur = |s: Option<i64>| s.map(crate::outbound::mails::human_duration).unwrap_or_else(|| "-".into());
    let pct = |p: Option<f64>| p.map(|p| format!("{p:.0}%")).unwrap_or_else(|| "-".into());
    let row = |name: String,
               opened: u64,
               resolved: u64,
               fr: &crate::report::TargetStats,
               res: &crate::report::TargetStats,
               breaches: u64,
               b: &crate::report::Backlog| WeeklyRow {
        name,
        opened,
        resolved,
        first_response_ok: pct(fr.attainment_pct),
        first_response_median: dur(fr.median_secs),
        first_response_p90: dur(fr.p90_secs),
        resolution_ok: pct(res.attainment_pct),
        resolution_median: dur(res.median_secs),
        resolution_p90: dur(res.p90_secs),
        breaches,
        backlog: format!("{} {} {} {}", b.under_1d, b.from_1d_to_7d, b.from_7d_to_30d, b.over_30d),
        satisfaction: String::new(),
    };
    let queues = r
        .queues
        .iter()
        .map(|q| WeeklyRow {
            satisfaction: q
                .rating_average
                .map(|a| format!("{a:.1} of 5 ({} rating{})", q.ratings, if q.ratings == 1 { "" } else { "s" }))
                .unwrap_or_default(),
            ..row(q.queue.clone(), q.opened, q.resolved, &q.first_response, &q.resolution, q.breaches, &q.backlog)
        })
        .collect();
    let services = r
        .services
        .iter()
        .map(|s| {
            let owner = desk.config.service(Some(&s.service)).and_then(|c| c.owner.clone());
            let name = match owner {
                Some(o) => format!("{} (owner {o})", s.service),
                None => s.service.clone(),
            };
            row(name, s.opened, s.resolved, &s.first_response, &s.resolution, s.breaches, &s.backlog)
        })
        .collect();
    let priorities: Vec<WeeklyRow> = r
        .priorities
        .iter()
        .map(|p| {
            row(p.priority.to_string(), p.opened, p.resolved, &p.first_response, &p.resolution, p.breaches, &p.backlog)
        })
        .collect();
    let technicians = r
        .technicians
        .iter()
        .map(|t| TechnicianLoad {
            technician: t.technician.clone(),
            assigned_open: t.assigned_open,
            handled: t.tickets_handled,
            first_responses: t.first_responses,
            time: if t.time_minutes == 0 {
                String::new()
            } else {
                crate::commands::minutes_text(t.time_minutes.min(u32::MAX as u64) as u32)
            },
        })
        .collect();
    let (senders, subjects) = facts::frequent(conn, since, now, 5)?;
    let day = |t: i64| {
        jiff::Timestamp::from_second(t).map(|t| t.to_zoned(h.timezone.clone()).date().to_string()).unwrap_or_default()
    };
    Ok(WeeklyContext {
        desk: desk_context(desk),
        since: day(since),
        until: day(now),
        opened: r.priorities.iter().map(|p| p.opened).sum(),
        resolved: r.priorities.iter().map(|p| p.resolved).sum(),
        queues,
        services,
        priorities,
        technicians,
        senders,
        subjects,
    })
}

/// Who gets `kind`: every technician for the daily digest; leads, admins and `weekly_to` for the weekly.
pub fn recipients(desk: &Desk<'_>, kind: Kind) -> Vec<String> {
    let c = desk.config;
    let mut all: Vec<String> = match kind {
        Kind::Daily => c.helpdesk.technicians.clone(),
        Kind::Weekly => c
            .queues
            .iter()
            .filter_map(|q| q.lead.clone())
            .chain(c.helpdesk.admins.iter().cloned())
            .chain(c.digests.weekly_to.iter().cloned())
            // Each service's owner reads the week of their service.
            .chain(c.services.iter().filter_map(|s| s.owner.clone()))
            .collect(),
    };
    let mut seen = std::collections::HashSet::new();
    all.retain(|a| seen.insert(a.clone()));
    all
}

/// Sends the `kind` digest of `period` to each of `to` who has not had it (and has something to
/// report), in one transaction; with `period` None (`maildesk digest --to`), sends without noting
/// it, so the scheduled one still goes. Returns whom it was sent to.
pub fn send(
    conn: &mut Connection,
    desk: &Desk<'_>,
    kind: Kind,
    period: Option<&str>,
    to: &[String],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    // Most looks find everyone served: nothing is computed, no write lock taken.
    let mut waiting = Vec::new();
    for r in to {
        let served = match period {
            Some(p) => facts::claimed(conn, kind.as_str(), p, r)?,
            None => false,
        };
        if !served {
            waiting.push(r.clone());
        }
    }
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    let to = &waiting;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut sent = Vec::new();
    let weekly = match kind {
        Kind::Weekly => Some(weekly(&tx, desk, now)?),
        Kind::Daily => None,
    };
    let unassigned = match kind {
        Kind::Daily => unassigned_by_queue(&tx, desk)?,
        Kind::Weekly => Vec::new(),
    };
    for recipient in to {
        if let Some(p) = period
            && facts::claimed(&tx, kind.as_str(), p, recipient)?
        {
            continue;
        }
        let rendered = match (kind, &weekly) {
            (Kind::Weekly, Some(w)) => {
                (w.opened > 0 || !w.technicians.is_empty()).then(|| desk.templates.render_digest(kind.as_str(), w))
            }
            _ => {
                let d = daily(&tx, desk, recipient, &unassigned, now)?;
                (!d.is_empty()).then(|| desk.templates.render_digest(kind.as_str(), &d))
            }
        };
        let rendered = match rendered {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                tracing::error!(kind = kind.as_str(), error = %e, "cannot render the digest; not sent");
                continue;
            }
        };
        if let Some(r) = &rendered {
            let reply_to = crate::auth::query_address(desk.reply_secret, &desk.config.helpdesk.address, recipient);
            let key = format!("{}.{}", period.unwrap_or("now"), recipient.replace(['@', '.'], "-"));
            let mail = DeskMail {
                kind: kind.as_str(),
                to: std::slice::from_ref(recipient),
                reply_to: Some(&reply_to),
                key: &key,
                in_reply_to: None,
                rendered: r,
                auto_submitted: "auto-generated",
            };
            if deskmail::queue(&tx, desk.config, &mail, now)? {
                sent.push(recipient.clone());
            }
        }
        // Someone with nothing to report is not noted: their digest goes once there is something
        // (a first ticket at ten), still once in the period.
        if let (Some(p), Some(_)) = (period, &rendered) {
            facts::claim(&tx, kind.as_str(), p, recipient, true, now)?;
        }
    }
    tx.commit()?;
    Ok(sent)
}

/// Sends whatever digest is due at `now`. Returns how many went out.
pub fn send_due(conn: &mut Connection, desk: &Desk<'_>, now: i64) -> Result<usize, StoreError> {
    let d = &desk.config.digests;
    let tz = &desk.config.helpdesk.timezone;
    let mut n = 0;
    for (kind, schedule) in
        [(Kind::Daily, d.daily.map(|m| (None, m))), (Kind::Weekly, d.weekly.map(|(w, m)| (Some(w), m)))]
    {
        let Some(schedule) = schedule else { continue };
        let Some(period) = due(kind, schedule, tz, now) else { continue };
        let to = recipients(desk, kind);
        let sent = send(conn, desk, kind, Some(&period), &to, now)?;
        if !sent.is_empty() {
            info!(kind = kind.as_str(), %period, recipients = sent.len(), "digests queued");
        }
        n += sent.len();
    }
    Ok(n)
}

/// The digest task: looks every 30 seconds whether a digest is due.
pub struct Scheduler {
    pub config: std::sync::Arc<crate::config::Config>,
    pub templates: std::sync::Arc<crate::templates::Templates>,
    pub database: std::path::PathBuf,
    pub outbox: std::sync::Arc<tokio::sync::Notify>,
    pub shutdown: crate::shutdown::Shutdown,
}

impl Scheduler {
    pub async fn run(mut self) {
        let mut ready = None;
        loop {
            if ready.is_none() {
                ready = crate::desk::open(&self.database, &self.config)
                    .map_err(|e| tracing::warn!(error = %e, "the digest task cannot open the database"))
                    .ok();
            }
            if let Some((conn, keys)) = ready.as_mut() {
                let desk = keys.desk(&self.config, &self.templates);
                match tokio::task::block_in_place(|| send_due(conn, &desk, crate::store::now())) {
                    Ok(0) => {}
                    Ok(_) => self.outbox.notify_one(),
                    Err(e) => tracing::warn!(error = %e, "sending digests failed; will retry"),
                }
            }
            if self.shutdown.sleep(std::time::Duration::from_secs(30)).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_digest_templates_render() {
        let t =
            crate::templates::Templates::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates")))
                .unwrap();
        let desk = DeskContext { name: "ACME IT".into(), tag: "ACME".into(), address: "s@a.test".into() };
        let line = TicketLine {
            id: 7,
            tag: "[ACME #7]".into(),
            subject: "Printer".into(),
            status: "open".into(),
            priority: "P2".into(),
            requester: "alice@a.test".into(),
            queue: "default".into(),
            due: "2026-12-05 10:00".into(),
            assigned: true,
            waiting: "4d 2h".into(),
        };
        let daily = DailyContext {
            desk: desk.clone(),
            technician: "t@a.test".into(),
            date: "2026-12-05".into(),
            assigned: vec![line],
            due_today: Vec::new(),
            breached: Vec::new(),
            waiting: Vec::new(),
            waiting_days: 3,
            unassigned: Vec::new(),
            totals: Totals { assigned: 1, ..Totals::default() },
            max_lines: MAX_LINES,
        };
        let r = t.render_digest("digest-daily", &daily).unwrap();
        assert!(r.subject.contains("1 open") && r.text.contains("[ACME #7] Printer"), "{r:?}");
        let row = || WeeklyRow {
            name: "helpdesk".into(),
            opened: 3,
            resolved: 1,
            first_response_ok: "100%".into(),
            first_response_median: "12m".into(),
            first_response_p90: "40m".into(),
            resolution_ok: "-".into(),
            resolution_median: "-".into(),
            resolution_p90: "-".into(),
            breaches: 0,
            backlog: "2 0 0 0".into(),
            satisfaction: "4.5 of 5 (2 ratings)".into(),
        };
        let weekly = WeeklyContext {
            desk,
            since: "2026-11-28".into(),
            until: "2026-12-05".into(),
            opened: 3,
            resolved: 1,
            queues: vec![row()],
            services: vec![WeeklyRow { name: "email (owner olivia@a.test)".into(), ..row() }],
            priorities: vec![row()],
            technicians: Vec::new(),
            senders: vec![Count { name: "alice@a.test".into(), tickets: 2 }],
            subjects: Vec::new(),
        };
        let r = t.render_digest("digest-weekly", &weekly).unwrap();
        assert!(r.subject.contains("3 opened") && r.text.contains("2 tickets from alice@a.test"), "{r:?}");
        assert!(r.text.contains("PER SERVICE\n  email (owner olivia@a.test): opened"), "{}", r.text);
        // Without the files in the desk's folder (an older install), the built-in ones render.
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/templates")).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_file() && !name.starts_with("digest-") {
                std::fs::copy(&path, dir.path().join(name)).unwrap();
            }
        }
        let older = crate::templates::Templates::load(dir.path()).unwrap();
        assert_eq!(older.render_digest("digest-weekly", &weekly).unwrap(), r);
    }
}
