//! When a digest is due, pure: the period it belongs to, in the desk's time zone.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;

/// Which digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Each technician's mail: their tickets, what is due today, breached, waiting, unassigned.
    Daily,
    /// To leads and admins: the week's volumes, service levels, backlog and problem candidates.
    Weekly,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Daily => "digest-daily",
            Kind::Weekly => "digest-weekly",
        }
    }
}

/// The period whose digest is due at `now`: `"2026-12-05"` once that day's `minute` (after local
/// midnight) has come, `"2026-W49"` once that ISO week's `weekday` at `minute` has. `None` before
/// it: the previous period's digest, if it was missed while the desk was down, is not sent late
/// (a stale list helps nobody; the next one comes on time).
pub fn due(kind: Kind, schedule: (Option<Weekday>, u32), tz: &TimeZone, now: i64) -> Option<String> {
    let local = jiff::Timestamp::from_second(now).ok()?.to_zoned(tz.clone());
    let minute = u32::from(local.hour() as u8) * 60 + u32::from(local.minute() as u8);
    let (weekday, at) = schedule;
    match kind {
        Kind::Daily => (minute >= at).then(|| local.date().to_string()),
        Kind::Weekly => {
            let day = weekday?;
            let today = local.weekday().to_monday_zero_offset();
            let wanted = day.to_monday_zero_offset();
            let passed = today > wanted || (today == wanted && minute >= at);
            let week = local.date().iso_week_date();
            passed.then(|| format!("{}-W{:02}", week.year(), week.week()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(TimeZone::get("Europe/Berlin").unwrap())
            .unwrap()
            .timestamp()
            .as_second()
    }

    #[test]
    fn a_daily_digest_is_due_from_its_time_until_midnight_in_the_desks_zone() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let eight = (None, 8 * 60);
        assert_eq!(due(Kind::Daily, eight, &tz, at("2026-12-05T07:59")), None);
        assert_eq!(due(Kind::Daily, eight, &tz, at("2026-12-05T08:00")).as_deref(), Some("2026-12-05"));
        assert_eq!(due(Kind::Daily, eight, &tz, at("2026-12-05T23:59")).as_deref(), Some("2026-12-05"));
        assert_eq!(due(Kind::Daily, eight, &tz, at("2026-12-06T00:30")), None, "not yesterday's, late");
        // Across the DST change the local time still decides.
        assert_eq!(due(Kind::Daily, eight, &tz, at("2026-03-29T08:00")).as_deref(), Some("2026-03-29"));
    }

    #[test]
    fn a_weekly_digest_is_due_from_its_day_and_time_until_the_week_ends() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let monday = (Some(Weekday::Monday), 8 * 60);
        assert_eq!(due(Kind::Weekly, monday, &tz, at("2026-11-30T07:00")), None);
        assert_eq!(due(Kind::Weekly, monday, &tz, at("2026-11-30T08:00")).as_deref(), Some("2026-W49"));
        assert_eq!(due(Kind::Weekly, monday, &tz, at("2026-12-06T23:00")).as_deref(), Some("2026-W49"));
        assert_eq!(due(Kind::Weekly, monday, &tz, at("2026-12-07T07:00")), None);
        let friday = (Some(Weekday::Friday), 16 * 60);
        assert_eq!(due(Kind::Weekly, friday, &tz, at("2026-12-03T17:00")), None);
        assert_eq!(due(Kind::Weekly, friday, &tz, at("2026-12-04T16:00")).as_deref(), Some("2026-W49"));
    }
}
