//! A ticket's SLA clocks, computed from its history: pure, so `maildesk sla`, the sweep and the
//! report all agree, and tests can put any instant in `now`.
//!
//! Rules (also in the README):
//! * Both targets start when the ticket is opened and count business time in the priority's calendar.
//! * **First response** stops at the first technician reply relayed to the requester.
//! * **Resolution** stops when the ticket is resolved or closed. Reopening restarts it from where it
//!   stood: the time spent resolved or closed does not count. While `pending` it is paused if the
//!   policy says `pause_when_pending` (the first-response clock is not paused by pending).
//! * A priority change applies the new priority's targets, calendar and ladder to the whole life
//!   of the ticket from that moment on; levels already fired stay fired (they are kept by percent).
//! * A level fires when the elapsed business time reaches its percentage of the target; a stopped
//!   or met clock fires nothing.

use serde::Serialize;

use super::calendar::{Calendar, Pause};
use super::policy::{Level, Policy};
use crate::domain::TicketStatus;

/// What the clock needs from the ticket's history.
#[derive(Debug, Clone)]
pub struct History<'a> {
    pub created_at: i64,
    /// Every status the ticket took, with when, oldest first (the first is "open" at creation).
    pub statuses: &'a [(i64, TicketStatus)],
    pub first_response_at: Option<i64>,
    /// Levels already fired: (target, percent, when).
    pub fired: &'a [(Target, u32, i64)],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelState {
    pub percent: u32,
    /// When the level is (or was) reached; None while the clock is stopped or met.
    pub reached_at: Option<i64>,
    pub fired_at: Option<i64>,
}

/// Where a target's clock stands. Serialised by these names in `maildesk sla --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockState {
    /// Counting business time.
    Running,
    /// Not counting for now (pending under `pause_when_pending`), will resume.
    Paused,
    /// The target was met (first response sent).
    Met,
    /// The ticket is resolved or closed: the clock counts no more.
    Stopped,
}

impl ClockState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockState::Running => "running",
            ClockState::Paused => "paused",
            ClockState::Met => "met",
            ClockState::Stopped => "stopped",
        }
    }

    /// Running or paused: its levels can still be reached.
    pub fn is_live(self) -> bool {
        matches!(self, ClockState::Running | ClockState::Paused)
    }
}

impl std::fmt::Display for ClockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The two service-level targets. Stored by name in `sla_fired` and shown in `maildesk sla --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    FirstResponse,
    Resolution,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::FirstResponse => "first_response",
            Target::Resolution => "resolution",
        }
    }

    /// For people: "first response".
    pub fn label(self) -> &'static str {
        match self {
            Target::FirstResponse => "first response",
            Target::Resolution => "resolution",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        [Target::FirstResponse, Target::Resolution].into_iter().find(|t| t.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetClock {
    pub target: Target,
    pub target_secs: i64,
    pub elapsed_secs: i64,
    pub state: ClockState,
    /// When the target is due; None while paused or after it stopped.
    pub due_at: Option<i64>,
    pub breached: bool,
    pub levels: Vec<LevelState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clock {
    pub first_response: TargetClock,
    pub resolution: TargetClock,
    /// Intervals in which the resolution clock did not run (pending, resolved, closed).
    pub pauses: Vec<(i64, Option<i64>)>,
    /// The earliest instant at which an unfired level is reached; what the sweep's index stores.
    pub next_level_at: Option<i64>,
}

fn intervals(h: &History<'_>, statuses: &[TicketStatus]) -> Vec<Pause> {
    let mut out = Vec::new();
    for (i, (at, s)) in h.statuses.iter().enumerate() {
        if statuses.contains(s) {
            let end = h.statuses.get(i + 1).map(|(t, _)| *t).unwrap_or(i64::MAX);
            if end > *at {
                out.push((*at, end));
            }
        }
    }
    out
}

fn current_status(h: &History<'_>) -> TicketStatus {
    h.statuses.last().map(|(_, s)| *s).unwrap_or(TicketStatus::Open)
}

/// What every target of one ticket is measured against: its history, its calendar, its ladder, now.
struct Measure<'a> {
    history: &'a History<'a>,
    calendar: &'a Calendar,
    ladder: &'a [Level],
    now: i64,
}

impl Measure<'_> {
    /// One target's clock: `pauses` are the intervals it does not count, `met_at` when it was met.
    fn target(&self, name: Target, target_secs: i64, pauses: &[Pause], met_at: Option<i64>) -> TargetClock {
        let Measure { history: h, calendar, ladder, now } = *self;
        let stopped = current_status(h).is_done();
        let end = met_at.unwrap_or(now).min(now);
        let elapsed = calendar.elapsed(h.created_at, end, pauses);
        let paused_now = pauses.iter().any(|&(s, e)| s <= now && now < e);
        let state = match (met_at, stopped, paused_now) {
            (Some(_), _, _) => ClockState::Met,
            (None, true, _) => ClockState::Stopped,
            (None, false, true) => ClockState::Paused,
            (None, false, false) => ClockState::Running,
        };
        let live = state.is_live();
        let due_at = if live { calendar.add(h.created_at, target_secs, pauses) } else { None };
        let levels = ladder
            .iter()
            .map(|l| {
                let fired_at = h.fired.iter().find(|(t, p, _)| *t == name && *p == l.percent).map(|f| f.2);
                let secs = (target_secs as i128 * l.percent as i128 / 100) as i64;
                let reached_at = if live {
                    calendar.add(h.created_at, secs, pauses)
                } else if elapsed >= secs {
                    // A met or stopped clock shows when a level was passed, for the record.
                    calendar.add(h.created_at, secs, pauses).filter(|t| *t <= end)
                } else {
                    None
                };
                LevelState { percent: l.percent, reached_at, fired_at }
            })
            .collect();
        TargetClock {
            target: name,
            target_secs,
            elapsed_secs: elapsed,
            state,
            due_at,
            breached: elapsed > target_secs,
            levels,
        }
    }
}

/// The ticket's clocks at `now` under `policy` and its `calendar`.
pub fn clock(h: &History<'_>, policy: &Policy, calendar: &Calendar, now: i64) -> Clock {
    let stopped = intervals(h, &[TicketStatus::Resolved, TicketStatus::Closed]);
    let mut resolution_pauses = stopped.clone();
    if policy.pause_when_pending {
        resolution_pauses.extend(intervals(h, &[TicketStatus::Pending]));
    }
    resolution_pauses.sort_unstable();
    let measure = Measure { history: h, calendar, ladder: &policy.escalate, now };
    let first_response = measure.target(Target::FirstResponse, policy.first_response, &stopped, h.first_response_at);
    let resolution = measure.target(Target::Resolution, policy.resolution, &resolution_pauses, None);
    let next_level_at = [&first_response, &resolution]
        .iter()
        .filter(|t| t.state.is_live())
        .flat_map(|t| t.levels.iter())
        .filter(|l| l.fired_at.is_none())
        .filter_map(|l| l.reached_at)
        .min();
    let pauses = resolution_pauses.iter().map(|&(s, e)| (s, (e != i64::MAX).then_some(e))).collect();
    Clock { first_response, resolution, pauses, next_level_at }
}

/// What the sweep should send now: per running target, the highest level reached and not yet
/// fired, plus every reached level it supersedes (marked fired together, so a desk that was down
/// sends one escalation naming the highest level, not a burst).
pub fn due_now(c: &Clock, now: i64) -> Vec<(Target, u32, Vec<u32>)> {
    [&c.first_response, &c.resolution]
        .iter()
        .filter(|t| t.state.is_live())
        .filter_map(|t| {
            let reached: Vec<u32> = t
                .levels
                .iter()
                .filter(|l| l.fired_at.is_none() && l.reached_at.is_some_and(|r| r <= now))
                .map(|l| l.percent)
                .collect();
            reached.iter().max().map(|top| (t.target, *top, reached.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sla::policy::Notify;

    fn policy() -> Policy {
        Policy {
            first_response: 100,
            resolution: 1000,
            calendar: "24x7".into(),
            pause_when_pending: true,
            escalate: vec![
                Level { percent: 75, notify: vec![Notify::Assignee] },
                Level { percent: 100, notify: vec![Notify::Technicians] },
                Level { percent: 150, notify: vec![Notify::Address("boss@x.test".into())] },
            ],
        }
    }

    fn st(v: &[(i64, &str)]) -> Vec<(i64, TicketStatus)> {
        v.iter().map(|(t, s)| (*t, s.parse().unwrap())).collect()
    }

    #[test]
    fn levels_are_reached_at_their_percentages_and_fire_once() {
        let statuses = st(&[(0, "open")]);
        let h = History { created_at: 0, statuses: &statuses, first_response_at: None, fired: &[] };
        let c = clock(&h, &policy(), &Calendar::Always, 10);
        let at: Vec<Option<i64>> = c.first_response.levels.iter().map(|l| l.reached_at).collect();
        assert_eq!(at, vec![Some(75), Some(100), Some(150)]);
        assert_eq!(c.next_level_at, Some(75));
        assert!(due_now(&c, 10).is_empty());
        assert_eq!(due_now(&c, 80), vec![(Target::FirstResponse, 75, vec![75])]);
        // Down for a while: one escalation naming the highest level, the lower ones superseded.
        assert_eq!(due_now(&c, 160), vec![(Target::FirstResponse, 150, vec![75, 100, 150])]);
        let fired = vec![(Target::FirstResponse, 75, 80)];
        let h = History { fired: &fired, ..h };
        let c = clock(&h, &policy(), &Calendar::Always, 90);
        assert!(due_now(&c, 90).is_empty());
        assert_eq!(c.next_level_at, Some(100));
    }

    #[test]
    fn a_reply_stops_first_response_and_resolution_stops_everything() {
        let statuses = st(&[(0, "open")]);
        let h = History { created_at: 0, statuses: &statuses, first_response_at: Some(50), fired: &[] };
        let c = clock(&h, &policy(), &Calendar::Always, 500);
        assert_eq!(
            (c.first_response.state, c.first_response.elapsed_secs, c.first_response.breached),
            (ClockState::Met, 50, false)
        );
        assert!(due_now(&c, 500).is_empty(), "a reply before 75% prevents every first-response level");
        assert_eq!(c.resolution.state, ClockState::Running);

        let statuses = st(&[(0, "open"), (60, "resolved")]);
        let h = History { created_at: 0, statuses: &statuses, first_response_at: None, fired: &[] };
        let c = clock(&h, &policy(), &Calendar::Always, 5000);
        assert_eq!((c.resolution.state, c.resolution.elapsed_secs), (ClockState::Stopped, 60));
        assert!(due_now(&c, 5000).is_empty() && c.next_level_at.is_none());
    }

    #[test]
    fn pending_pauses_resolution_and_reopening_resumes_where_it_stood() {
        let statuses = st(&[(0, "open"), (100, "pending"), (400, "open"), (500, "resolved"), (700, "open")]);
        let h = History { created_at: 0, statuses: &statuses, first_response_at: Some(10), fired: &[] };
        let c = clock(&h, &policy(), &Calendar::Always, 800);
        // open 0-100, paused 100-400, open 400-500, resolved 500-700, open 700-800.
        assert_eq!(c.resolution.elapsed_secs, 300);
        assert_eq!(c.resolution.due_at, Some(1500));
        assert_eq!(c.pauses, vec![(100, Some(400)), (500, Some(700))]);
        let paused = st(&[(0, "open"), (100, "pending")]);
        let h = History { created_at: 0, statuses: &paused, first_response_at: Some(10), fired: &[] };
        let c = clock(&h, &policy(), &Calendar::Always, 5000);
        assert_eq!(
            (c.resolution.state, c.resolution.elapsed_secs, c.resolution.due_at),
            (ClockState::Paused, 100, None)
        );
        assert!(due_now(&c, 5000).is_empty() && c.next_level_at.is_none());
        let mut no_pause = policy();
        no_pause.pause_when_pending = false;
        assert_eq!(clock(&h, &no_pause, &Calendar::Always, 5000).resolution.elapsed_secs, 5000);
    }
}
