//! Business time: when a desk is open, how much open time lies between two instants, and which
//! instant is a given amount of open time after another.
//!
//! Instants are Unix seconds; durations are seconds. Opening hours are local wall-clock ranges per
//! weekday in an IANA zone (jiff reads the zone rules; nothing here knows about DST). A range like
//! "22:00-06:00" crosses midnight and belongs to the day it starts on. A holiday closes the ranges
//! that start on it. Local times that do not exist (the spring-forward gap) move forward, ambiguous
//! ones (the autumn fold) take the earlier instant, as RFC 5545 and most calendars do.
//!
//! Pauses (a ticket waiting on its requester) are subtracted the same way as closed hours, so one
//! walk over "open and not paused" intervals answers both `add` and `elapsed`.

use std::collections::BTreeSet;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;

/// A paused interval `[start, end)`; `end == i64::MAX` for a pause still running.
pub type Pause = (i64, i64);

/// How far ahead `add` looks for open time before it gives up (a calendar with no open hours left).
const HORIZON_DAYS: i64 = 3660;

#[derive(Debug, Clone)]
pub enum Calendar {
    /// Always open.
    Always,
    Hours(Hours),
}

#[derive(Debug, Clone)]
pub struct Hours {
    pub tz: TimeZone,
    /// Monday first; each range is (start, end) in minutes after local midnight, end > start
    /// (end beyond 1440 crosses midnight).
    pub week: [Vec<(u32, u32)>; 7],
    pub holidays: BTreeSet<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("{0:?} is not a range like \"08:00-12:00\"")]
    Range(String),
    #[error("{0:?} is not a date like \"2026-12-24\"")]
    Date(String),
    #[error("the calendar has no opening hours at all")]
    NeverOpen,
}

/// Parses "08:00-12:00" (or "22:00-06:00", crossing midnight) into minutes.
pub fn parse_range(s: &str) -> Result<(u32, u32), CalendarError> {
    let err = || CalendarError::Range(s.to_string());
    let (a, b) = s.trim().split_once('-').ok_or_else(err)?;
    let minutes = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
    };
    let (start, end) = (minutes(a).ok_or_else(err)?, minutes(b).ok_or_else(err)?);
    match end.cmp(&start) {
        std::cmp::Ordering::Greater => Ok((start, end)),
        std::cmp::Ordering::Less => Ok((start, end + 1440)),
        std::cmp::Ordering::Equal => Err(err()),
    }
}

pub fn parse_date(s: &str) -> Result<Date, CalendarError> {
    s.trim().parse().map_err(|_| CalendarError::Date(s.to_string()))
}

impl Hours {
    pub fn new(tz: TimeZone, week: [Vec<(u32, u32)>; 7], holidays: BTreeSet<Date>) -> Result<Hours, CalendarError> {
        if week.iter().all(|d| d.is_empty()) {
            return Err(CalendarError::NeverOpen);
        }
        Ok(Hours { tz, week, holidays })
    }

    fn instant(&self, date: Date, minutes: u32) -> Option<i64> {
        let (date, minutes) = if minutes >= 1440 { (date.tomorrow().ok()?, minutes - 1440) } else { (date, minutes) };
        let time = Time::new((minutes / 60) as i8, (minutes % 60) as i8, 0, 0).ok()?;
        let ts = self.tz.to_ambiguous_timestamp(date.to_datetime(time)).compatible().ok()?;
        Some(ts.as_second())
    }

    /// The open intervals of ranges starting on `date`, in order.
    fn day(&self, date: Date) -> Vec<(i64, i64)> {
        if self.holidays.contains(&date) {
            return Vec::new();
        }
        let wd = date.weekday().to_monday_zero_offset() as usize;
        self.week[wd]
            .iter()
            .filter_map(|&(s, e)| Some((self.instant(date, s)?, self.instant(date, e)?)))
            .filter(|(s, e)| e > s)
            .collect()
    }
}

impl Calendar {
    /// Open intervals overlapping `[from, ∞)`, clipped to start at `from`, merged, in order,
    /// for at most `HORIZON_DAYS` days.
    fn open_from(&self, from: i64) -> Box<dyn Iterator<Item = (i64, i64)> + '_> {
        match self {
            Calendar::Always => Box::new(std::iter::once((from, i64::MAX))),
            Calendar::Hours(h) => {
                let Ok(start) = jiff::Timestamp::from_second(from) else { return Box::new(std::iter::empty()) };
                // Start a day early: a range crossing midnight may still be running.
                let first =
                    start.to_zoned(h.tz.clone()).date().yesterday().unwrap_or(start.to_zoned(h.tz.clone()).date());
                let days = (0..HORIZON_DAYS).scan(Some(first), |d, _| {
                    let today = (*d)?;
                    *d = today.tomorrow().ok();
                    Some(today)
                });
                let intervals = days
                    .flat_map(move |d| h.day(d))
                    .filter(move |&(_, e)| e > from)
                    .map(move |(s, e)| (s.max(from), e));
                Box::new(Merged { inner: Box::new(intervals), pending: None })
            }
        }
    }

    /// Open, unpaused intervals from `from` on.
    fn effective_from<'a>(&'a self, from: i64, pauses: &'a [Pause]) -> impl Iterator<Item = (i64, i64)> + 'a {
        let mut pauses: Vec<Pause> = pauses.iter().copied().filter(|&(s, e)| e > s && e > from).collect();
        pauses.sort_unstable();
        self.open_from(from).flat_map(move |(s, e)| subtract((s, e), &pauses))
    }

    /// Open, unpaused seconds in `[a, b)`.
    pub fn elapsed(&self, a: i64, b: i64, pauses: &[Pause]) -> i64 {
        if b <= a {
            return 0;
        }
        let mut total = 0i64;
        for (s, e) in self.effective_from(a, pauses) {
            if s >= b {
                break;
            }
            total += e.min(b) - s;
        }
        total
    }

    /// The instant at which `secs` of open, unpaused time have passed after `start`; `None` if that
    /// never happens (a pause without end, or no opening hours within the horizon).
    pub fn add(&self, start: i64, secs: i64, pauses: &[Pause]) -> Option<i64> {
        let mut left = secs.max(0);
        for (s, e) in self.effective_from(start, pauses) {
            if e == i64::MAX || e - s >= left {
                return if e == i64::MAX && s == i64::MAX { None } else { Some(s + left) };
            }
            left -= e - s;
        }
        None
    }
}

/// `interval` minus the sorted `pauses`.
fn subtract(interval: (i64, i64), pauses: &[Pause]) -> Vec<(i64, i64)> {
    let (mut s, e) = interval;
    let mut out = Vec::new();
    for &(ps, pe) in pauses {
        if pe <= s || ps >= e {
            continue;
        }
        if ps > s {
            out.push((s, ps));
        }
        s = s.max(pe);
        if s >= e {
            return out;
        }
    }
    if s < e {
        out.push((s, e));
    }
    out
}

/// Merges touching or overlapping intervals of an ordered stream (ranges that meet at midnight).
struct Merged<'a> {
    inner: Box<dyn Iterator<Item = (i64, i64)> + 'a>,
    pending: Option<(i64, i64)>,
}

impl Iterator for Merged<'_> {
    type Item = (i64, i64);
    fn next(&mut self) -> Option<(i64, i64)> {
        loop {
            match (self.pending, self.inner.next()) {
                (None, None) => return None,
                (Some(p), None) => {
                    self.pending = None;
                    return Some(p);
                }
                (None, Some(n)) => self.pending = Some(n),
                (Some((ps, pe)), Some((ns, ne))) if ns <= pe => self.pending = Some((ps, pe.max(ne))),
                (Some(p), Some(n)) => {
                    self.pending = Some(n);
                    return Some(p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin_office() -> Calendar {
        let r = |s: &str| parse_range(s).unwrap();
        let day = vec![r("08:00-17:00")];
        let week = [
            vec![r("08:00-12:00"), r("13:00-17:00")],
            day.clone(),
            day.clone(),
            day.clone(),
            vec![r("08:00-15:00")],
            vec![],
            vec![],
        ];
        let holidays = ["2026-12-24", "2026-12-25"].iter().map(|d| parse_date(d).unwrap()).collect();
        Calendar::Hours(Hours::new(TimeZone::get("Europe/Berlin").unwrap(), week, holidays).unwrap())
    }

    fn at(s: &str) -> i64 {
        // Local Berlin wall-clock time.
        let dt: jiff::civil::DateTime = s.parse().unwrap();
        dt.to_zoned(TimeZone::get("Europe/Berlin").unwrap()).unwrap().timestamp().as_second()
    }

    fn show(ts: i64) -> String {
        jiff::Timestamp::from_second(ts)
            .unwrap()
            .to_zoned(TimeZone::get("Europe/Berlin").unwrap())
            .strftime("%a %Y-%m-%d %H:%M")
            .to_string()
    }

    fn nine_to_five(tz: &str) -> Calendar {
        let r = parse_range("09:00-17:00").unwrap();
        let week = [vec![r], vec![r], vec![r], vec![r], vec![r], vec![], vec![]];
        Calendar::Hours(Hours::new(TimeZone::get(tz).unwrap(), week, BTreeSet::new()).unwrap())
    }

    #[test]
    fn friday_evening_plus_one_hour_is_monday_morning() {
        let c = nine_to_five("Europe/Berlin");
        // 2026-11-20 is a Friday: 5 minutes left, then the weekend, then 55 minutes on Monday.
        let due = c.add(at("2026-11-20T16:55"), 3600, &[]).unwrap();
        assert_eq!(show(due), "Mon 2026-11-23 09:55");
    }

    #[test]
    fn table() {
        let c = berlin_office();
        let h = 3600;
        let cases: &[(&str, i64, &str)] = &[
            ("2026-11-23T07:00", h, "Mon 2026-11-23 09:00"),       // before opening
            ("2026-11-23T11:30", h, "Mon 2026-11-23 13:30"),       // across the lunch break
            ("2026-11-27T14:30", h, "Mon 2026-11-30 08:30"),       // Friday closes at 15:00
            ("2026-11-28T12:00", 30 * 60, "Mon 2026-11-30 08:30"), // from a Saturday
            ("2026-12-23T16:00", 2 * h, "Mon 2026-12-28 09:00"),   // Christmas holidays, then Sat/Sun
            ("2026-11-23T08:00", 0, "Mon 2026-11-23 08:00"),
        ];
        for (start, secs, want) in cases {
            assert_eq!(show(c.add(at(start), *secs, &[]).unwrap()), *want, "{start} + {secs}s");
        }
        assert_eq!(c.elapsed(at("2026-11-27T14:00"), at("2026-11-30T09:00"), &[]), 2 * h);
    }

    #[test]
    fn dst_changes_both_ways() {
        // 2026-03-29 (Sunday) Berlin springs forward at 02:00; 2026-10-25 (Sunday) falls back at 03:00.
        let r = parse_range("00:00-24:00").unwrap();
        let every = [vec![r], vec![r], vec![r], vec![r], vec![r], vec![r], vec![r]];
        let c = Calendar::Hours(Hours::new(TimeZone::get("Europe/Berlin").unwrap(), every, BTreeSet::new()).unwrap());
        // Open all day: business time equals real elapsed time, through both transitions.
        assert_eq!(c.elapsed(at("2026-03-29T00:00"), at("2026-03-30T00:00"), &[]), 23 * 3600);
        assert_eq!(c.elapsed(at("2026-10-25T00:00"), at("2026-10-26T00:00"), &[]), 25 * 3600);
        let c = nine_to_five("America/New_York");
        // Friday 16:00 + 2h across the US spring-forward weekend (2026-03-08) is Monday 10:00 local.
        let ny = |s: &str| {
            s.parse::<jiff::civil::DateTime>()
                .unwrap()
                .to_zoned(TimeZone::get("America/New_York").unwrap())
                .unwrap()
                .timestamp()
                .as_second()
        };
        assert_eq!(c.add(ny("2026-03-06T16:00"), 7200, &[]), Some(ny("2026-03-09T10:00")));
    }

    #[test]
    fn ranges_crossing_midnight() {
        let night = parse_range("22:00-06:00").unwrap();
        assert_eq!(night, (22 * 60, 30 * 60));
        let week = [vec![night], vec![night], vec![night], vec![night], vec![night], vec![], vec![]];
        let c = Calendar::Hours(Hours::new(TimeZone::get("Europe/Berlin").unwrap(), week, BTreeSet::new()).unwrap());
        assert_eq!(show(c.add(at("2026-11-23T12:00"), 3 * 3600, &[]).unwrap()), "Tue 2026-11-24 01:00");
        // Friday night's shift runs into Saturday morning.
        assert_eq!(show(c.add(at("2026-11-28T05:00"), 3600, &[]).unwrap()), "Sat 2026-11-28 06:00");
        // Then nothing until Monday night.
        assert_eq!(show(c.add(at("2026-11-28T05:30"), 3600, &[]).unwrap()), "Mon 2026-11-30 22:30");
    }

    #[test]
    fn pauses_subtract_exactly_and_open_pauses_never_end() {
        let c = Calendar::Always;
        let pauses = [(100, 200), (150, 300)];
        assert_eq!(c.elapsed(0, 1000, &pauses), 800);
        assert_eq!(c.add(0, 150, &pauses), Some(350));
        assert_eq!(c.add(0, 150, &[(100, i64::MAX)]), None);
        assert_eq!(c.elapsed(0, 1000, &[(100, i64::MAX)]), 100);
        assert!(
            parse_range("12:00-12:00").is_err() && parse_range("8-12").is_err() && parse_range("25:00-26:00").is_err()
        );
    }

    proptest::proptest! {
        /// elapsed(a, add(a, d)) == d, with or without pauses; add is monotonic in d.
        #[test]
        fn add_and_elapsed_agree(
            start in 1_790_000_000i64..1_830_000_000,
            d in 0i64..(40 * 3600),
            e in 0i64..(40 * 3600),
            pause_at in 0i64..(5 * 86_400),
            pause_len in 0i64..(3 * 86_400),
        ) {
            let c = berlin_office();
            let pauses = [(start + pause_at, start + pause_at + pause_len)];
            let t = c.add(start, d, &pauses).unwrap();
            proptest::prop_assert_eq!(c.elapsed(start, t, &pauses), d);
            let u = c.add(start, d + e, &pauses).unwrap();
            proptest::prop_assert!(u >= t);
            // Pauses subtract exactly: elapsed with the pause = without it - open time inside it.
            let full = c.elapsed(start, u, &[]);
            let inside = c.elapsed(pauses[0].0.max(start), pauses[0].1.min(u).max(pauses[0].0.max(start)), &[]);
            proptest::prop_assert_eq!(c.elapsed(start, u, &pauses), full - inside);
        }
    }
}
