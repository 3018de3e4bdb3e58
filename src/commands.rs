//! Technician commands: `#`-lines at the very top of a technician's mail.
//!
//! Commands are all-or-nothing: one unknown or malformed line rejects the whole message, because a
//! technician who typed `#asign bob` and `#close` meant both, and applying half of that is worse
//! than applying none and saying which line was wrong.

use crate::domain::{Priority, TicketStatus, TicketType, parse_address};

/// The help text listed in error replies and technician notifications.
pub const HELP: &str = "\
#status open|pending|resolved|closed   set the status
#resolve                                mark resolved (the requester's reply reopens it)
#close                                  close the ticket
#reopen                                 reopen it
#priority P1|P2|P3|P4                   set the priority
#assign ADDRESS                         assign to a technician
#take                                   assign to yourself
#note                                   the rest of the message is internal: never sent to the requester
#cc ADDRESS                             add a watcher (gets technicians' replies)
#uncc ADDRESS                           remove a watcher
#merge N                                merge this ticket into ticket N (Cc your reply address for N)
#accept                                 accept held mail from non-participants: they become watchers
#queue NAME                             move the ticket to another queue (its team and SLA policy)
#away [until YYYY-MM-DD]                you are away (through that day): no tickets are assigned to you
#back                                   you are back: tickets are assigned to you again
#time 30m|1h15m                         log time you spent on this ticket
#type incident|request|change|problem   set the ticket's type
#service NAME                           set the ticket's service (its owner, SLA and approvers)
#submit                                 submit this change (again) for approval: a new version
#problem [N]                            link this incident to problem N (without N: open one from it)
#template NAME                          spawn the request template NAME's tasks as tickets
#reply NAME                             put the canned reply NAME before your text
#macro NAME                             apply the configured macro NAME (commands and a canned reply)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status(TicketStatus),
    Priority(Priority),
    Assign(String),
    Take,
    Note,
    Cc(String),
    Uncc(String),
    Merge(i64),
    /// Mail held because its sender is not a participant: accept it (its senders become watchers).
    Accept,
    /// Move the ticket to the queue of this name.
    Queue(String),
    /// The sender is away, through the given day (in the desk's time zone) or until `#back`.
    Away(Option<jiff::civil::Date>),
    /// The sender is back.
    Back,
    /// Time the sender spent on the ticket, in minutes.
    Time(u32),
    /// Set the ticket's type.
    Type(TicketType),
    /// Put the canned reply of this name (`templates/canned/NAME.txt.tera`) before the text.
    Reply(String),
    /// Apply the configured macro of this name.
    Macro(String),
    /// Set the ticket's service.
    Service(String),
    /// Submit the change for approval: a new version, earlier approvals void.
    Submit,
    /// Link the ticket to problem N, or (`None`) open a problem from it.
    Problem(Option<i64>),
    /// Spawn the tasks of this request template.
    Template(String),
}

/// A configured `[macros.NAME]`: commands applied together, and a canned reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macro {
    pub name: String,
    pub commands: Vec<Command>,
    pub reply: Option<String>,
}

/// The name of a canned reply or macro: what a file name and a TOML key can safely be.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Command {
    /// How the command reads in events and the CLI.
    pub fn describe(&self) -> String {
        match self {
            Command::Status(s) => format!("status {s}"),
            Command::Priority(p) => format!("priority {p}"),
            Command::Assign(a) => format!("assign {a}"),
            Command::Take => "take".into(),
            Command::Note => "note".into(),
            Command::Cc(a) => format!("cc {a}"),
            Command::Uncc(a) => format!("uncc {a}"),
            Command::Merge(n) => format!("merge into {n}"),
            Command::Accept => "accept".into(),
            Command::Queue(q) => format!("queue {q}"),
            Command::Away(Some(d)) => format!("away until {d}"),
            Command::Away(None) => "away".into(),
            Command::Back => "back".into(),
            Command::Time(m) => format!("time {}", minutes_text(*m)),
            Command::Type(t) => format!("type {t}"),
            Command::Reply(n) => format!("reply {n}"),
            Command::Macro(n) => format!("macro {n}"),
            Command::Service(n) => format!("service {n}"),
            Command::Submit => "submit".into(),
            Command::Problem(Some(n)) => format!("problem {n}"),
            Command::Problem(None) => "problem".into(),
            Command::Template(n) => format!("template {n}"),
        }
    }
}

/// At most a day per `#time`: more is a typo, not a shift.
pub const MAX_TIME_MINUTES: u32 = 24 * 60;

/// "30m", "2h", "1h15m", "90" (minutes) as minutes, 1 to [`MAX_TIME_MINUTES`].
fn minutes(t: &str) -> Option<u32> {
    let t = t.trim().to_ascii_lowercase();
    let total = match t.parse::<u32>() {
        Ok(m) => m,
        Err(_) => {
            let mut total: u32 = 0;
            let mut number = String::new();
            for c in t.chars() {
                match c {
                    '0'..='9' => number.push(c),
                    'h' | 'm' if !number.is_empty() => {
                        let n: u32 = number.parse().ok()?;
                        total = total.checked_add(if c == 'h' { n.checked_mul(60)? } else { n })?;
                        number.clear();
                    }
                    _ => return None,
                }
            }
            if !number.is_empty() {
                return None;
            }
            total
        }
    };
    (1..=MAX_TIME_MINUTES).contains(&total).then_some(total)
}

/// 105 → "1h45m", 30 → "30m".
pub fn minutes_text(m: u32) -> String {
    match (m / 60, m % 60) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m:02}m"),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub commands: Vec<Command>,
    /// The text after the command lines.
    pub rest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line_no}: {line:?}: {reason}")]
pub struct CommandError {
    pub line_no: usize,
    pub line: String,
    pub reason: String,
}

/// Splits the leading command lines from the text. Blank lines before and between commands are
/// allowed; the first other line ends the commands.
pub fn parse(text: &str) -> Result<Parsed, CommandError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() {
            i += 1;
            continue;
        }
        if !line.starts_with('#') {
            break;
        }
        let err = |reason: String| CommandError { line_no: i + 1, line: line.to_string(), reason };
        let mut words = line[1..].split_whitespace();
        let name = words.next().unwrap_or("").to_ascii_lowercase();
        let args: Vec<&str> = words.collect();
        let one_arg = |what: &str| -> Result<&str, CommandError> {
            match args.as_slice() {
                [a] => Ok(a),
                [] => Err(err(format!("#{name} needs {what}"))),
                _ => Err(err(format!("#{name} takes one {what}, not {}", args.len()))),
            }
        };
        let no_args = || if args.is_empty() { Ok(()) } else { Err(err(format!("#{name} takes no argument"))) };
        let address = |a: &str| {
            parse_address(a.trim_matches(['<', '>'])).ok_or_else(|| err(format!("{a:?} is not a mail address")))
        };
        let command = match name.as_str() {
            "status" => {
                let s = one_arg("a status")?;
                let status = s.parse().map_err(|_| {
                    err(format!("unknown status {:?}; use open, pending, resolved or closed", s.to_ascii_lowercase()))
                })?;
                Command::Status(status)
            }
            "resolve" => no_args().map(|_| Command::Status(TicketStatus::Resolved))?,
            "close" => no_args().map(|_| Command::Status(TicketStatus::Closed))?,
            "reopen" => no_args().map(|_| Command::Status(TicketStatus::Open))?,
            "priority" => {
                let p = one_arg("a priority")?;
                let priority = p
                    .parse()
                    .map_err(|_| err(format!("unknown priority {:?}; use P1, P2, P3 or P4", p.to_ascii_uppercase())))?;
                Command::Priority(priority)
            }
            "assign" => Command::Assign(address(one_arg("an address")?)?),
            "take" => no_args().map(|_| Command::Take)?,
            "cc" => Command::Cc(address(one_arg("an address")?)?),
            "uncc" => Command::Uncc(address(one_arg("an address")?)?),
            "merge" => {
                // After a merge the mail's ticket is gone: a second one would act on a ticket
                // nobody named.
                if commands.iter().any(|c| matches!(c, Command::Merge(_))) {
                    return Err(err("only one #merge per mail".into()));
                }
                let n = one_arg("a ticket number")?.trim_start_matches('#');
                Command::Merge(n.parse().map_err(|_| err(format!("{n:?} is not a ticket number")))?)
            }
            "accept" => no_args().map(|_| Command::Accept)?,
            "queue" => Command::Queue(one_arg("a queue name")?.to_ascii_lowercase()),
            "away" => {
                let date = match args.as_slice() {
                    [] => None,
                    [d] | [_, d] if args.len() == 1 || args[0].eq_ignore_ascii_case("until") => Some(d),
                    _ => return Err(err("#away takes nothing or \"until YYYY-MM-DD\"".into())),
                };
                Command::Away(
                    date.map(|d| {
                        d.parse::<jiff::civil::Date>().map_err(|_| err(format!("{d:?} is not a date like 2026-12-24")))
                    })
                    .transpose()?,
                )
            }
            "back" => no_args().map(|_| Command::Back)?,
            "type" => {
                let t = one_arg("a type")?;
                Command::Type(t.parse().map_err(|e| err(format!("{e}")))?)
            }
            "reply" | "macro" | "service" | "template" => {
                let n = one_arg("a name")?.to_ascii_lowercase();
                if !valid_name(&n) {
                    return Err(err(format!("{n:?} is not a name (lower-case letters, digits, '-', '_')")));
                }
                match name.as_str() {
                    "reply" => Command::Reply(n),
                    "macro" => Command::Macro(n),
                    "service" => Command::Service(n),
                    _ => Command::Template(n),
                }
            }
            "submit" => no_args().map(|_| Command::Submit)?,
            "problem" => match args.as_slice() {
                [] => Command::Problem(None),
                [n] => {
                    let n = n.trim_start_matches('#');
                    Command::Problem(Some(n.parse().map_err(|_| err(format!("{n:?} is not a ticket number")))?))
                }
                _ => return Err(err("#problem takes one ticket number, or none to open a problem".into())),
            },
            "time" => {
                let t = one_arg("a time like 30m or 1h15m")?;
                Command::Time(minutes(t).ok_or_else(|| {
                    err(format!("{t:?} is not a time like 30m, 2h or 1h15m (at most {MAX_TIME_MINUTES} minutes)"))
                })?)
            }
            "note" => {
                // "#note" ends the commands: everything after it, on its line and below, is the note.
                commands.push(Command::Note);
                let first = args.join(" ");
                let rest: Vec<&str> = std::iter::once(first.as_str()).chain(lines[i + 1..].iter().copied()).collect();
                return Ok(Parsed { commands, rest: rest.join("\n").trim().to_string() });
            }
            "" => return Err(err("a lone '#' is not a command".into())),
            other => return Err(err(format!("unknown command #{other}"))),
        };
        commands.push(command);
        i += 1;
    }
    Ok(Parsed { commands, rest: lines[i.min(lines.len())..].join("\n").trim().to_string() })
}

/// An approver's answer: `#approve` (anything after it is a comment) or `#reject REASON` on the
/// first line of the new text. `None`: the mail decides nothing; `Err`: a rejection without reason.
pub fn decision(text: &str) -> Option<Result<(crate::domain::Decision, String), String>> {
    use crate::domain::Decision;
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let rest_of = |word: &str| line[word.len()..].trim().trim_start_matches([':', '-']).trim().to_string();
    let lower = line.to_ascii_lowercase();
    let word_end =
        |w: &str| lower.starts_with(w) && lower[w.len()..].chars().next().is_none_or(|c| !c.is_alphanumeric());
    if word_end("#approve") || word_end("#approved") {
        let w = if word_end("#approved") { "#approved" } else { "#approve" };
        return Some(Ok((Decision::Approve, rest_of(w))));
    }
    if word_end("#reject") || word_end("#rejected") {
        let w = if word_end("#rejected") { "#rejected" } else { "#reject" };
        let mut reason = rest_of(w);
        if reason.is_empty() {
            // The reason may follow on the next lines.
            reason = text
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .skip(1)
                .take_while(|l| !l.is_empty() && !l.starts_with('>'))
                .collect::<Vec<_>>()
                .join(" ");
        }
        if reason.is_empty() {
            return Some(Err("#reject needs a reason: \"#reject REASON\"".into()));
        }
        return Some(Ok((Decision::Reject, reason)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approver_decides_with_the_first_line() {
        use crate::domain::Decision::*;
        assert_eq!(decision("#approve"), Some(Ok((Approve, String::new()))));
        assert_eq!(decision("\n  #APPROVE  looks fine\n> quoted"), Some(Ok((Approve, "looks fine".into()))));
        assert_eq!(decision("#reject: no rollback plan"), Some(Ok((Reject, "no rollback plan".into()))));
        assert_eq!(
            decision("#reject\nNot during month end.\n\n> old"),
            Some(Ok((Reject, "Not during month end.".into())))
        );
        assert!(matches!(decision("#reject"), Some(Err(_))));
        assert_eq!(decision("#approver list please"), None);
        assert_eq!(decision("I approve"), None);
        assert_eq!(decision("Thanks\n#approve"), None);
    }

    #[test]
    fn minutes_read_back_as_written() {
        for m in [1, 30, 60, 75, 600, MAX_TIME_MINUTES] {
            assert_eq!(minutes(&minutes_text(m)), Some(m), "{m}");
        }
    }

    #[test]
    fn table() {
        use Command::*;
        let ok: &[(&str, &[Command], &str)] = &[
            ("Hello there", &[], "Hello there"),
            ("#close\nFixed the toner.", &[Status(TicketStatus::Closed)], "Fixed the toner."),
            (
                "\n#PRIORITY p1\n#assign <Bob@ACME.test>\n\nOn it.",
                &[Command::Priority(crate::domain::Priority::P1), Assign("bob@acme.test".into())],
                "On it.",
            ),
            ("#status Pending\n#take", &[Status(TicketStatus::Pending), Take], ""),
            (
                "#resolve\n#reopen\n#cc carol@x.test\n#uncc dan@x.test\n#merge #12",
                &[
                    Status(TicketStatus::Resolved),
                    Status(TicketStatus::Open),
                    Cc("carol@x.test".into()),
                    Uncc("dan@x.test".into()),
                    Merge(12),
                ],
                "",
            ),
            (
                "#note\nCalled the vendor.\n#close is not a command here",
                &[Note],
                "Called the vendor.\n#close is not a command here",
            ),
            (
                "#priority P2\n#note vendor says Tuesday",
                &[Command::Priority(crate::domain::Priority::P2), Note],
                "vendor says Tuesday",
            ),
            ("Text first\n#close", &[], "Text first\n#close"),
            ("#queue Security", &[Queue("security".into())], ""),
            ("#away until 2026-12-24\nSee you", &[Away(Some("2026-12-24".parse().unwrap()))], "See you"),
            ("#away 2026-12-24", &[Away(Some("2026-12-24".parse().unwrap()))], ""),
            ("#away\n#back", &[Away(None), Back], ""),
            ("#time 1h15m\nDone", &[Time(75)], "Done"),
            ("#TIME 30M", &[Time(30)], ""),
            ("#time 45", &[Time(45)], ""),
            ("#reply Printer-Fixed\nAnd more", &[Reply("printer-fixed".into())], "And more"),
            ("#macro wait_vendor", &[Macro("wait_vendor".into())], ""),
            ("#type Change", &[Type(TicketType::Change)], ""),
            ("#service Email\n#submit", &[Service("email".into()), Submit], ""),
            ("#problem #7\n#problem", &[Problem(Some(7)), Problem(None)], ""),
            ("#template onboarding", &[Template("onboarding".into())], ""),
        ];
        for (input, commands, rest) in ok {
            let p = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(p.commands, *commands, "{input:?}");
            assert_eq!(p.rest, *rest, "{input:?}");
        }
        let bad: &[(&str, usize, &str)] = &[
            ("#clsoe", 1, "unknown command #clsoe"),
            ("#close\n#priority P9", 2, "unknown priority"),
            ("#assign", 1, "needs an address"),
            ("#assign bob", 1, "not a mail address"),
            ("#assign a@x.test b@x.test", 1, "takes one"),
            ("#merge twelve", 1, "not a ticket number"),
            ("#merge 5\n#merge 5", 2, "only one #merge"),
            ("#close now", 1, "takes no argument"),
            ("#status done", 1, "unknown status"),
            ("#\nclose", 1, "not a command"),
            ("#away tomorrow", 1, "not a date"),
            ("#away from 2026-12-24", 1, "until"),
            ("#queue", 1, "needs a queue name"),
            ("#time soon", 1, "not a time"),
            ("#time 0m", 1, "not a time"),
            ("#time 25h", 1, "at most 1440"),
            ("#time 1h 15m", 1, "takes one"),
            ("#reply ../etc/passwd", 1, "is not a name"),
            ("#type chore", 1, "expected incident, request, change or problem"),
            ("#problem seven", 1, "not a ticket number"),
            ("#problem 1 2", 1, "one ticket number"),
            ("#submit now", 1, "takes no argument"),
        ];
        for (input, line_no, reason) in bad {
            let e = parse(input).unwrap_err();
            assert_eq!(e.line_no, *line_no, "{input:?}");
            assert!(e.reason.contains(reason), "{input:?}: {e}");
        }
    }
}
