//! SLA settings from the config file: calendars, per-priority targets and escalation ladders, and the
//! rules that give a new ticket its priority.
//!
//! Defaults (used for any priority without its own `[sla.Pn]` table):
//!
//! | priority | first response | resolution | calendar |
//! |---|---|---|---|
//! | P1 | 30m | 4h | 24x7 |
//! | P2 | 2h | 1d | business |
//! | P3 | 8h | 3d | business |
//! | P4 | 2d | 10d | business |
//!
//! with the ladder 75% → assignee, 100% → technicians, and pending pausing the resolution clock.
//! `24x7` and `business` (Monday to Friday, 09:00-17:00 in `helpdesk.timezone`) are built in.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::Deserialize;

use super::calendar::{Calendar, CalendarError, Hours, parse_date, parse_range};
use crate::message::parse::Inbound;

use crate::domain::Priority;

/// Who an escalation level mails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notify {
    /// The assignee, or every technician while unassigned.
    Assignee,
    Technicians,
    /// The lead of the ticket's queue (its team, when the queue has no lead).
    Lead,
    /// The owner of the ticket's service (nobody without one); owners are also told of every
    /// level at or past 100%.
    Owner,
    Address(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// Percent of the target, e.g. 75, 100, 150.
    pub percent: u32,
    pub notify: Vec<Notify>,
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub first_response: i64,
    pub resolution: i64,
    pub calendar: String,
    pub pause_when_pending: bool,
    /// Sorted by percent.
    pub escalate: Vec<Level>,
}

#[derive(Debug, Clone)]
pub struct PriorityRule {
    pub priority: Priority,
    pub subject_matches: Option<Regex>,
    pub body_matches: Option<Regex>,
    pub from: Vec<String>,
    pub from_domain: Vec<String>,
    /// "high" or "low": matched against Importance, X-Priority and Priority headers.
    pub importance: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SlaConfig {
    pub calendars: BTreeMap<String, Calendar>,
    /// One per priority, in the order of [`Priority::ALL`].
    pub policies: [Policy; 4],
    pub default_priority: Priority,
    pub rules: Vec<PriorityRule>,
    /// How often the daemon looks for due escalations.
    pub sweep_interval: std::time::Duration,
}

impl SlaConfig {
    pub fn policy(&self, priority: Priority) -> &Policy {
        &self.policies[priority as usize]
    }

    pub fn calendar(&self, name: &str) -> &Calendar {
        self.calendars.get(name).unwrap_or(&Calendar::Always)
    }

    /// The priority of a new ticket: the first matching rule, else the default.
    pub fn priority_for(&self, msg: &Inbound) -> Priority {
        self.rule_priority(msg).unwrap_or(self.default_priority)
    }

    /// The priority the first matching `[priority]` rule gives, if one matches.
    pub fn rule_priority(&self, msg: &Inbound) -> Option<Priority> {
        let importance = msg.importance;
        let from = msg.from.as_ref().map(|f| f.address.as_str()).unwrap_or("");
        let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        for r in &self.rules {
            let matches = r.subject_matches.as_ref().is_none_or(|re| re.is_match(&msg.subject))
                && r.body_matches.as_ref().is_none_or(|re| re.is_match(&msg.text))
                && (r.from.is_empty() || r.from.iter().any(|f| f == from))
                && (r.from_domain.is_empty() || r.from_domain.iter().any(|d| d == domain))
                && r.importance.as_deref().is_none_or(|want| importance == Some(want));
            if matches {
                return Some(r.priority);
            }
        }
        None
    }
}

// --- the file ---------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileCalendar {
    timezone: Option<String>,
    #[serde(default)]
    hours: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    holidays: Vec<String>,
    /// An iCalendar file whose all-day events are holidays.
    holidays_file: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePolicy {
    first_response: Option<String>,
    resolution: Option<String>,
    calendar: Option<String>,
    pause_when_pending: Option<bool>,
    escalate: Option<Vec<FileLevel>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLevel {
    at: String,
    notify: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileSla {
    #[serde(rename = "P1")]
    p1: Option<FilePolicy>,
    #[serde(rename = "P2")]
    p2: Option<FilePolicy>,
    #[serde(rename = "P3")]
    p3: Option<FilePolicy>,
    #[serde(rename = "P4")]
    p4: Option<FilePolicy>,
    sweep_interval: Option<String>,
}

/// A queue's `[queues.sla]`: per-priority targets over the desk's, and a calendar for all of them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileQueueSla {
    #[serde(rename = "P1")]
    pub p1: Option<FilePolicy>,
    #[serde(rename = "P2")]
    pub p2: Option<FilePolicy>,
    #[serde(rename = "P3")]
    pub p3: Option<FilePolicy>,
    #[serde(rename = "P4")]
    pub p4: Option<FilePolicy>,
    /// The calendar of every priority this table does not give one.
    pub calendar: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FilePriority {
    default: Option<String>,
    #[serde(default)]
    rules: Vec<FileRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    priority: String,
    subject_matches: Option<String>,
    body_matches: Option<String>,
    #[serde(default)]
    from: Vec<String>,
    #[serde(default)]
    from_domain: Vec<String>,
    importance: Option<String>,
}

/// A config problem: the dotted key and what is wrong. The config loader adds file and line.
pub type Problem = (String, String);

fn default_policy(p: Priority) -> Policy {
    let (fr, res, cal) = match p {
        Priority::P1 => (30 * 60, 4 * 3600, "24x7"),
        Priority::P2 => (2 * 3600, 86_400, "business"),
        Priority::P3 => (8 * 3600, 3 * 86_400, "business"),
        Priority::P4 => (2 * 86_400, 10 * 86_400, "business"),
    };
    Policy {
        first_response: fr,
        resolution: res,
        calendar: cal.into(),
        pause_when_pending: true,
        escalate: vec![
            Level { percent: 75, notify: vec![Notify::Assignee] },
            Level { percent: 100, notify: vec![Notify::Technicians] },
        ],
    }
}

fn business(tz: &jiff::tz::TimeZone) -> Calendar {
    let r = (9 * 60, 17 * 60);
    let week = [vec![r], vec![r], vec![r], vec![r], vec![r], vec![], vec![]];
    Calendar::Hours(Hours { tz: tz.clone(), week, holidays: BTreeSet::new() })
}

/// Reads the all-day `DTSTART;VALUE=DATE:20261224` lines of an iCalendar file.
fn ics_holidays(text: &str) -> Vec<jiff::civil::Date> {
    text.lines()
        .filter(|l| l.starts_with("DTSTART"))
        .filter_map(|l| l.rsplit(':').next())
        .filter_map(|v| {
            let v = v.trim();
            (v.len() >= 8).then(|| format!("{}-{}-{}", &v[0..4], &v[4..6], &v[6..8]))
        })
        .filter_map(|d| d.parse().ok())
        .collect()
}

pub fn build(
    calendars: BTreeMap<String, FileCalendar>,
    sla: FileSla,
    priority: FilePriority,
    desk_tz: &jiff::tz::TimeZone,
    read_file: &dyn Fn(&std::path::Path) -> Result<String, String>,
    parse_duration: &dyn Fn(&str) -> Option<std::time::Duration>,
) -> Result<SlaConfig, Problem> {
    let mut cals =
        BTreeMap::from([("24x7".to_string(), Calendar::Always), ("business".to_string(), business(desk_tz))]);
    for (name, c) in calendars {
        let key = |k: &str| format!("calendars.{name}.{k}");
        let tz = match &c.timezone {
            Some(t) => {
                jiff::tz::TimeZone::get(t).map_err(|e| (key("timezone"), format!("expected an IANA time zone: {e}")))?
            }
            None => desk_tz.clone(),
        };
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for (day, ranges) in &c.hours {
            let i = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .position(|d| d == &day.to_ascii_lowercase())
                .ok_or_else(|| {
                    (key("hours"), format!("{day:?} is not a weekday; use mon, tue, wed, thu, fri, sat, sun"))
                })?;
            for r in ranges {
                week[i].push(parse_range(r).map_err(|e| (key("hours"), e.to_string()))?);
            }
            week[i].sort_unstable();
        }
        let mut holidays = BTreeSet::new();
        for d in &c.holidays {
            holidays.insert(parse_date(d).map_err(|e| (key("holidays"), e.to_string()))?);
        }
        if let Some(f) = &c.holidays_file {
            // Read by the config, which owns file access: this module stays pure.
            let text = read_file(f).map_err(|e| (key("holidays_file"), e))?;
            holidays.extend(ics_holidays(&text));
        }
        let hours = Hours::new(tz, week, holidays).map_err(|e: CalendarError| (key("hours"), e.to_string()))?;
        cals.insert(name, Calendar::Hours(hours));
    }

    let mut policies = Priority::ALL.map(default_policy);
    override_policies(&mut policies, [sla.p1, sla.p2, sla.p3, sla.p4], "sla", &cals, parse_duration)?;

    let check_priority =
        |k: String, p: &str| -> Result<Priority, Problem> { p.parse().map_err(|e| (k, format!("{e}"))) };
    let default_priority = check_priority("priority.default".into(), priority.default.as_deref().unwrap_or("P3"))?;
    let mut rules = Vec::new();
    for (i, r) in priority.rules.into_iter().enumerate() {
        let key = format!("priority.rules[{i}]");
        let re = |v: Option<String>| -> Result<Option<Regex>, Problem> {
            v.map(|v| Regex::new(&v).map_err(|e| (key.clone(), format!("bad regular expression {v:?}: {e}"))))
                .transpose()
        };
        let importance = match r.importance.as_deref().map(str::to_ascii_lowercase) {
            None => None,
            Some(i) if i == "high" || i == "low" => Some(i),
            Some(other) => {
                return Err((key.clone(), format!("importance: expected \"high\" or \"low\", got {other:?}")));
            }
        };
        rules.push(PriorityRule {
            priority: check_priority(key.clone(), &r.priority)?,
            subject_matches: re(r.subject_matches)?,
            body_matches: re(r.body_matches)?,
            from: r.from.iter().map(|a| a.to_ascii_lowercase()).collect(),
            from_domain: r.from_domain.iter().map(|a| a.to_ascii_lowercase()).collect(),
            importance,
        });
    }
    let sweep_interval = match &sla.sweep_interval {
        None => std::time::Duration::from_secs(30),
        Some(v) => parse_duration(v).filter(|d| d.as_secs() >= 1).ok_or_else(|| {
            ("sla.sweep_interval".to_string(), format!("expected a duration of at least 1s, got {v:?}"))
        })?,
    };
    Ok(SlaConfig { calendars: cals, policies, default_priority, rules, sweep_interval })
}

/// Applies `[TABLE.P1]` .. `[TABLE.P4]` over `policies`, key by key: `[sla]` over the defaults, and a
/// queue's `[queues.sla]` over the desk's.
pub fn override_policies(
    policies: &mut [Policy; 4],
    files: [Option<FilePolicy>; 4],
    table: &str,
    cals: &BTreeMap<String, Calendar>,
    parse_duration: &dyn Fn(&str) -> Option<std::time::Duration>,
) -> Result<(), Problem> {
    for (priority, file) in Priority::ALL.into_iter().zip(files) {
        let p = priority.as_str();
        let policy = &mut policies[priority as usize];
        if let Some(f) = file {
            let key = |k: &str| format!("{table}.{p}.{k}");
            let dur = |k: &str, v: &Option<String>, d: i64| -> Result<i64, Problem> {
                match v {
                    None => Ok(d),
                    Some(v) => parse_duration(v)
                        .filter(|d| d.as_secs() > 0)
                        .map(|d| d.as_secs() as i64)
                        .ok_or_else(|| (key(k), format!("expected a duration like \"30m\" or \"4h\", got {v:?}"))),
                }
            };
            policy.first_response = dur("first_response", &f.first_response, policy.first_response)?;
            policy.resolution = dur("resolution", &f.resolution, policy.resolution)?;
            if let Some(c) = f.calendar {
                if !cals.contains_key(&c) {
                    let known: Vec<&String> = cals.keys().collect();
                    return Err((key("calendar"), format!("no calendar {c:?}; known: {known:?}")));
                }
                policy.calendar = c;
            }
            policy.pause_when_pending = f.pause_when_pending.unwrap_or(policy.pause_when_pending);
            if let Some(levels) = f.escalate {
                policy.escalate = Vec::new();
                for l in levels {
                    let pct =
                        l.at.trim()
                            .strip_suffix('%')
                            .and_then(|n| n.trim().parse::<u32>().ok())
                            .filter(|n| (1..=1000).contains(n))
                            .ok_or_else(|| {
                                (key("escalate"), format!("at: expected a percentage like \"75%\", got {:?}", l.at))
                            })?;
                    let mut notify = Vec::new();
                    for n in &l.notify {
                        notify.push(match n.as_str() {
                            "assignee" => Notify::Assignee,
                            "technicians" => Notify::Technicians,
                            "lead" => Notify::Lead,
                            "owner" => Notify::Owner,
                            a => Notify::Address(crate::domain::parse_address(a).ok_or_else(|| {
                                (
                                    key("escalate"),
                                    format!(
                                        "notify: expected \"assignee\", \"technicians\", \"lead\", \"owner\" or an address, got {a:?}"
                                    ),
                                )
                            })?),
                        });
                    }
                    if notify.is_empty() {
                        return Err((key("escalate"), format!("the {pct}% level notifies nobody")));
                    }
                    if policy.escalate.iter().any(|x: &Level| x.percent == pct) {
                        return Err((key("escalate"), format!("two levels at {pct}%")));
                    }
                    policy.escalate.push(Level { percent: pct, notify });
                }
                policy.escalate.sort_by_key(|l| l.percent);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::domain::Priority;
    use crate::message::parse::parse;

    const BASE: &str = "[helpdesk]\nname = \"A\"\ntag = \"A\"\naddress = \"s@a.test\"\ntimezone = \"Europe/Berlin\"\n\
        [imap]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"u\"\npassword = \"p\"\n\
        [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\n";

    fn config(extra: &str) -> Result<Config, crate::config::ConfigError> {
        Config::from_str(Path::new("/etc/maildesk/maildesk.toml"), &format!("{BASE}{extra}"))
    }

    #[test]
    fn the_issue_example_parses_and_friday_1755_plus_1h_is_monday_0955() {
        let c = config(
            r#"
[calendars.office]
timezone = "Europe/Berlin"
hours = { mon = ["09:00-18:00"], tue = ["09:00-18:00"], wed = ["09:00-18:00"], thu = ["09:00-18:00"], fri = ["09:00-18:00"] }
holidays = ["2026-12-24", "2026-12-25", "2026-12-26"]

[sla.P1]
first_response = "30m"
resolution = "4h"
calendar = "24x7"
pause_when_pending = true
escalate = [ { at = "75%", notify = ["assignee"] },
             { at = "100%", notify = ["lead@acme.example"] },
             { at = "150%", notify = ["it-manager@acme.example"] } ]

[sla.P2]
first_response = "1h"
calendar = "office"

[priority]
default = "P3"
rules = [ { priority = "P1", subject_matches = "(?i)\\b(down|outage)\\b" },
          { priority = "P2", from_domain = ["vip.acme.example"] },
          { priority = "P4", importance = "low" } ]
"#,
        )
        .unwrap();
        let sla = &c.sla;
        assert_eq!(sla.policy(Priority::P1).escalate.len(), 3);
        let p2 = sla.policy(Priority::P2);
        let cal = sla.calendar(&p2.calendar);
        let fri =
            "2026-11-20T17:55".parse::<jiff::civil::DateTime>().unwrap().to_zoned(c.helpdesk.timezone.clone()).unwrap();
        let due = cal.add(fri.timestamp().as_second(), p2.first_response, &[]).unwrap();
        let due = jiff::Timestamp::from_second(due).unwrap().to_zoned(c.helpdesk.timezone.clone());
        assert_eq!(due.strftime("%a %H:%M").to_string(), "Mon 09:55");

        let msg = |h: &str| parse(format!("{h}\r\nMessage-ID: <x@y>\r\n\r\nbody").as_bytes()).unwrap();
        assert_eq!(sla.priority_for(&msg("From: a@x.test\r\nSubject: VPN is DOWN")), Priority::P1);
        assert_eq!(sla.priority_for(&msg("From: boss@vip.acme.example\r\nSubject: hello")), Priority::P2);
        assert_eq!(sla.priority_for(&msg("From: a@x.test\r\nX-Priority: 5 (Lowest)\r\nSubject: hello")), Priority::P4);
        assert_eq!(sla.priority_for(&msg("From: a@x.test\r\nSubject: downstairs printer")), Priority::P3);
    }

    #[test]
    fn bad_sla_settings_name_their_key() {
        let cases = [
            ("[sla.P1]\nfirst_response = \"soon\"\n", "sla.P1.first_response"),
            ("[sla.P1]\ncalendar = \"nope\"\n", "sla.P1.calendar"),
            ("[sla.P2]\nescalate = [ { at = \"75\", notify = [\"assignee\"] } ]\n", "sla.P2.escalate"),
            ("[sla.P2]\nescalate = [ { at = \"75%\", notify = [\"bob\"] } ]\n", "sla.P2.escalate"),
            ("[calendars.x]\nhours = { mon = [\"9-17\"] }\n", "calendars.x.hours"),
            ("[calendars.x]\nhours = { someday = [\"09:00-17:00\"] }\n", "calendars.x.hours"),
            ("[calendars.x]\nhours = { mon = [] }\n", "calendars.x.hours"),
            ("[priority]\ndefault = \"P7\"\n", "priority.default"),
            ("[priority]\nrules = [ { priority = \"P1\", subject_matches = \"(\" } ]\n", "priority.rules[0]"),
        ];
        for (extra, key) in cases {
            let e = config(extra).unwrap_err();
            assert_eq!(e.key, key, "{extra}: {e}");
            assert!(e.line.is_some(), "{extra}: {e}");
        }
    }
}

#[cfg(test)]
mod ics_tests {
    #[test]
    fn all_day_events_of_an_icalendar_file_are_holidays() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261224\r\nSUMMARY:Heiligabend\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261231\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let days: Vec<String> = super::ics_holidays(ics).iter().map(|d| d.to_string()).collect();
        assert_eq!(days, vec!["2026-12-24", "2026-12-31"]);
    }
}
