//! Queues, pure: which queue a new ticket lands in, and who in that queue's team it is given to.
//!
//! A queue is found from the address the mail was sent to (To and Cc first, which every copy of a
//! mail carries alike, then Delivered-To and X-Original-To, which say which copy this is), then by
//! the `[[routing]]` rules in order (the first whose conditions all hold wins, and may also set
//! the priority and the assignee), then from the mailbox the mail was read from, then the first
//! queue. Every choice comes with its reason, recorded on the ticket.
//!
//! Auto-assignment ([`choose_assignee`]) is fair across restarts because its inputs (the last
//! technician given a ticket in the queue, each one's open tickets, who is away) are all stored.

use regex::Regex;

use crate::domain::Priority;
use crate::message::parse::Inbound;

/// How a queue gives out its new tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Assign {
    /// Nobody is assigned: the team sees the ticket and someone takes it.
    #[default]
    None,
    /// Each team member in turn (the order of `team`), skipping anyone away.
    RoundRobin,
    /// The team member with the fewest open tickets; ties go to whoever was given one least recently.
    LeastOpen,
}

impl Assign {
    pub fn as_str(self) -> &'static str {
        match self {
            Assign::None => "none",
            Assign::RoundRobin => "round-robin",
            Assign::LeastOpen => "least-open",
        }
    }
}

impl std::str::FromStr for Assign {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Assign::None),
            "round-robin" => Ok(Assign::RoundRobin),
            "least-open" => Ok(Assign::LeastOpen),
            other => Err(format!("expected \"none\", \"round-robin\" or \"least-open\", got {other:?}")),
        }
    }
}

/// One `[[routing]]` rule: conditions (all must hold; an empty list holds) and what it sets.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    /// Sender addresses (lower-cased), any of which matches.
    pub from: Vec<String>,
    /// Sender domains (lower-cased), any of which matches.
    pub from_domain: Vec<String>,
    pub subject_matches: Option<Regex>,
    pub body_matches: Option<Regex>,
    /// A header's name (lower-cased) and a pattern its value must match.
    pub header: Option<(String, Regex)>,
    /// Index into the desk's queues.
    pub queue: Option<usize>,
    pub priority: Option<Priority>,
    pub assign: Option<String>,
    pub ticket_type: Option<crate::domain::TicketType>,
    /// Index into the desk's services.
    pub service: Option<usize>,
    /// Index into the desk's request templates (sorted by name).
    pub template: Option<usize>,
}

impl Rule {
    fn matches(&self, msg: &Inbound) -> bool {
        let from = msg.from.as_ref().map(|f| f.address.as_str()).unwrap_or("");
        let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        (self.from.is_empty() || self.from.iter().any(|f| f == from))
            && (self.from_domain.is_empty() || self.from_domain.iter().any(|d| d == domain))
            && self.subject_matches.as_ref().is_none_or(|re| re.is_match(&msg.subject))
            && self.body_matches.as_ref().is_none_or(|re| re.is_match(&msg.text))
            && self.header.as_ref().is_none_or(|(name, re)| {
                msg.headers.iter().any(|(h, v)| h.eq_ignore_ascii_case(name) && re.is_match(v))
            })
    }

    /// Whether every condition of this rule is also a condition of `later`, so that whenever
    /// `later` matches, this rule matched first (and `later` never applies).
    pub fn shadows(&self, later: &Rule) -> bool {
        let re_eq = |a: &Option<Regex>, b: &Option<Regex>| match (a, b) {
            (None, _) => true,
            (Some(a), Some(b)) => a.as_str() == b.as_str(),
            (Some(_), None) => false,
        };
        let list = |a: &[String], b: &[String]| a.is_empty() || (!b.is_empty() && b.iter().all(|x| a.contains(x)));
        list(&self.from, &later.from)
            && list(&self.from_domain, &later.from_domain)
            && re_eq(&self.subject_matches, &later.subject_matches)
            && re_eq(&self.body_matches, &later.body_matches)
            && match (&self.header, &later.header) {
                (None, _) => true,
                (Some((a, ra)), Some((b, rb))) => a == b && ra.as_str() == rb.as_str(),
                (Some(_), None) => false,
            }
    }

    /// Why this rule can never match, whatever the mail: its sender addresses and domains disagree.
    pub fn contradiction(&self) -> Option<String> {
        if self.from.is_empty() || self.from_domain.is_empty() {
            return None;
        }
        let fits = self.from.iter().any(|a| {
            let d = a.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
            self.from_domain.iter().any(|x| x == d)
        });
        (!fits).then(|| "no address in `from` is in a domain of `from_domain`, so it can never match".to_string())
    }
}

/// Where a new ticket goes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Index into the desk's queues.
    pub queue: usize,
    pub priority: Option<Priority>,
    pub assign: Option<String>,
    pub ticket_type: Option<crate::domain::TicketType>,
    /// The matching rule's service and request template.
    pub service: Option<usize>,
    pub template: Option<usize>,
    /// Neither an address nor a rule chose the queue (the mailbox read from, or the first queue):
    /// a service with a queue of its own may.
    pub fallback: bool,
    /// Recorded on the ticket: "sent to security@acme.test", "routing rule 2", ...
    pub reason: String,
}

/// Routes a new ticket. `queue_addresses[i]`: the addresses of queue `i` (lower-cased; a
/// plus-address matches its exact form only). `home`: the queue whose mailbox the mail was read from.
pub fn route(queue_addresses: &[&[String]], rules: &[Rule], msg: &Inbound, home: usize) -> Route {
    let named = |list: &mut dyn Iterator<Item = &str>| -> Option<(usize, String)> {
        for a in list {
            if let Some(q) = queue_addresses.iter().position(|qa| qa.iter().any(|x| x == a)) {
                return Some((q, a.to_string()));
            }
        }
        None
    };
    let header_level = msg.to.iter().chain(&msg.cc).map(|m| m.address.as_str());
    let envelope = msg.recipients.iter().map(String::as_str);
    let by_address = named(&mut header_level.into_iter()).or_else(|| named(&mut envelope.into_iter()));
    let rule = rules.iter().enumerate().find(|(_, r)| r.matches(msg));
    let (queue, reason) = match (&by_address, rule) {
        (Some((q, a)), _) => (*q, format!("sent to {a}")),
        (None, Some((i, r))) if r.queue.is_some() => (r.queue.unwrap_or(home), format!("routing rule {}", i + 1)),
        (None, _) if home > 0 => (home, "read from the queue's mailbox".to_string()),
        (None, _) => (home, "the default queue".to_string()),
    };
    let fallback = by_address.is_none() && rule.is_none_or(|(_, r)| r.queue.is_none());
    let (priority, assign, reason) = match rule {
        Some((i, r)) if by_address.is_some() || r.queue.is_none() => {
            let sets = r.priority.is_some()
                || r.assign.is_some()
                || r.ticket_type.is_some()
                || r.service.is_some()
                || r.template.is_some();
            let reason = if sets { format!("{reason}; routing rule {}", i + 1) } else { reason };
            (r.priority, r.assign.clone(), reason)
        }
        Some((_, r)) => (r.priority, r.assign.clone(), reason),
        None => (None, None, reason),
    };
    let ticket_type = rule.and_then(|(_, r)| r.ticket_type);
    let service = rule.and_then(|(_, r)| r.service);
    let template = rule.and_then(|(_, r)| r.template);
    Route { queue, priority, assign, ticket_type, service, template, fallback, reason }
}

/// How a mail names a service: the addresses it is sent to (lower-cased), keywords in its text.
pub struct ServiceMatch<'a> {
    pub addresses: &'a [String],
    pub keywords: Option<&'a Regex>,
}

/// A new ticket's service, and why: the routing rule's (`by_rule`), else the first service an
/// address in To/Cc (then Delivered-To, X-Original-To) belongs to, else the first whose keywords
/// are in the subject, else in the text. Each keyword pattern is one linear pass.
pub fn service(services: &[ServiceMatch<'_>], by_rule: Option<usize>, msg: &Inbound) -> Option<(usize, String)> {
    if let Some(i) = by_rule.filter(|i| *i < services.len()) {
        return Some((i, "a routing rule".into()));
    }
    let header_level = msg.to.iter().chain(&msg.cc).map(|m| m.address.as_str());
    for a in header_level.chain(msg.recipients.iter().map(String::as_str)) {
        if let Some(i) = services.iter().position(|s| s.addresses.iter().any(|x| x == a)) {
            return Some((i, format!("sent to {a}")));
        }
    }
    for (text, place) in [(&msg.subject, "subject"), (&msg.text, "text")] {
        for (i, s) in services.iter().enumerate() {
            if let Some(m) = s.keywords.and_then(|k| k.find(text)) {
                return Some((i, format!("{:?} in the {place}", m.as_str())));
            }
        }
    }
    None
}

/// The request template a new ticket follows: the routing rule's, else the first whose
/// `subject_matches` matches its subject.
pub fn request_template(templates: &[Option<&Regex>], by_rule: Option<usize>, subject: &str) -> Option<usize> {
    by_rule
        .filter(|i| *i < templates.len())
        .or_else(|| templates.iter().position(|re| re.is_some_and(|re| re.is_match(subject))))
}

/// What auto-assignment knows about one team member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<'a> {
    pub address: &'a str,
    pub away: bool,
    /// Open (and pending) tickets assigned to them, in every queue.
    pub open: u64,
    /// When they were last given a ticket of this queue by auto-assignment (0: never).
    pub last_assigned: i64,
}

/// The team member a new ticket goes to, with the reason; `None` when nobody is, and why.
/// `last`: who auto-assignment gave this queue's previous ticket to.
pub fn choose_assignee(mode: Assign, team: &[Member<'_>], last: Option<&str>) -> Result<(String, String), String> {
    let present: Vec<&Member<'_>> = team.iter().filter(|m| !m.away).collect();
    let away: Vec<&str> = team.iter().filter(|m| m.away).map(|m| m.address).collect();
    let skipped = if away.is_empty() { String::new() } else { format!("; away: {}", away.join(", ")) };
    if mode == Assign::None {
        return Err("the queue assigns nobody".into());
    }
    if present.is_empty() {
        return Err(format!("everyone in the team is away{skipped}"));
    }
    match mode {
        Assign::None => Err("the queue assigns nobody".into()),
        Assign::RoundRobin => {
            // The next after `last` in team order, wrapping, skipping anyone away.
            let start = last.and_then(|l| team.iter().position(|m| m.address == l)).map(|p| p + 1).unwrap_or(0);
            let n = team.len();
            let next = (0..n).map(|k| &team[(start + k) % n]).find(|m| !m.away).unwrap_or(present[0]);
            let after = last.map(|l| format!(" after {l}")).unwrap_or_default();
            Ok((next.address.to_string(), format!("round-robin: next in the team{after}{skipped}")))
        }
        Assign::LeastOpen => {
            let best = present.iter().min_by_key(|m| (m.open, m.last_assigned)).copied().unwrap_or(present[0]);
            Ok((
                best.address.to_string(),
                format!("least-open: {} open ticket(s), the fewest in the team{skipped}", best.open),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse::parse;

    fn member(a: &str) -> Member<'_> {
        Member { address: a, away: false, open: 0, last_assigned: 0 }
    }

    #[test]
    fn round_robin_over_three_gives_four_three_three_and_skips_the_away() {
        let mut team = vec![member("a@x"), member("b@x"), member("c@x")];
        let mut last: Option<String> = None;
        let mut counts = std::collections::BTreeMap::new();
        for _ in 0..10 {
            let (who, _) = choose_assignee(Assign::RoundRobin, &team, last.as_deref()).unwrap();
            *counts.entry(who.clone()).or_insert(0) += 1;
            last = Some(who);
        }
        assert_eq!(counts.values().copied().collect::<Vec<_>>(), vec![4, 3, 3]);
        team[1].away = true;
        let (who, why) = choose_assignee(Assign::RoundRobin, &team, Some("a@x")).unwrap();
        assert_eq!(who, "c@x");
        assert!(why.contains("away: b@x"), "{why}");
        // A `last` no longer in the team starts from the top.
        assert_eq!(choose_assignee(Assign::RoundRobin, &team, Some("gone@x")).unwrap().0, "a@x");
        team.iter_mut().for_each(|m| m.away = true);
        assert!(choose_assignee(Assign::RoundRobin, &team, None).is_err());
    }

    #[test]
    fn least_open_takes_the_fewest_then_the_longest_waiting() {
        let team = vec![
            Member { address: "a@x", away: false, open: 3, last_assigned: 1 },
            Member { address: "b@x", away: false, open: 1, last_assigned: 9 },
            Member { address: "c@x", away: false, open: 1, last_assigned: 5 },
            Member { address: "d@x", away: true, open: 0, last_assigned: 0 },
        ];
        assert_eq!(choose_assignee(Assign::LeastOpen, &team, None).unwrap().0, "c@x");
        assert!(choose_assignee(Assign::None, &team, None).is_err());
    }

    fn mail(headers: &str) -> Inbound {
        parse(
            format!("From: Ann <ann@corp.example>\r\n{headers}\r\nMessage-ID: <m@x>\r\n\r\nThe VPN is down\r\n")
                .as_bytes(),
        )
        .unwrap()
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_address_decides_before_rules_and_rules_before_the_mailbox() {
        let main = strings(&[]);
        let sec = strings(&["security@acme.test"]);
        let fac = strings(&["support+facilities@acme.test"]);
        let queues: Vec<&[String]> = vec![&main, &sec, &fac];
        let rules = vec![
            Rule { subject_matches: Some(Regex::new("(?i)badge").unwrap()), queue: Some(2), ..Rule::default() },
            Rule { from_domain: strings(&["corp.example"]), priority: Some(Priority::P1), ..Rule::default() },
        ];
        let r = route(&queues, &rules, &mail("To: security@acme.test\r\nSubject: phish"), 0);
        assert_eq!((r.queue, r.priority), (1, Some(Priority::P1)));
        assert!(r.reason.starts_with("sent to security@acme.test"), "{}", r.reason);
        // Cc and the envelope count too; To and Cc first.
        let r = route(
            &queues,
            &[],
            &mail("To: support@acme.test\r\nDelivered-To: support+facilities@acme.test\r\nSubject: x"),
            0,
        );
        assert_eq!(r.queue, 2);
        let r = route(&queues, &rules, &mail("To: support@acme.test\r\nSubject: Badge lost"), 0);
        assert_eq!((r.queue, r.priority), (2, None));
        assert_eq!(r.reason, "routing rule 1");
        let r = route(&queues, &[], &mail("To: other@acme.test\r\nSubject: x"), 1);
        assert_eq!(r.queue, 1);
        let r = route(&queues, &[], &mail("To: other@acme.test\r\nSubject: x"), 0);
        assert_eq!((r.queue, r.reason.as_str()), (0, "the default queue"));
    }

    #[test]
    fn header_rules_match_any_field_of_that_name() {
        let rules = vec![Rule {
            header: Some(("x-source".into(), Regex::new("^monitoring$").unwrap())),
            assign: Some("bob@acme.test".into()),
            ..Rule::default()
        }];
        let r = route(&[&[]], &rules, &mail("Subject: x\r\nX-Source: monitoring"), 0);
        assert_eq!(r.assign.as_deref(), Some("bob@acme.test"));
        let r = route(&[&[]], &rules, &mail("Subject: x\r\nX-Source: people"), 0);
        assert_eq!(r.assign, None);
    }

    #[test]
    fn a_rule_whose_conditions_an_earlier_one_covers_is_shadowed() {
        let general = Rule { from_domain: strings(&["corp.example"]), ..Rule::default() };
        let narrower = Rule {
            from_domain: strings(&["corp.example"]),
            subject_matches: Some(Regex::new("x").unwrap()),
            ..Rule::default()
        };
        assert!(general.shadows(&narrower));
        assert!(!narrower.shadows(&general));
        assert!(Rule::default().shadows(&general), "a rule without conditions catches everything after it");
        let odd = Rule { from: strings(&["a@one.example"]), from_domain: strings(&["two.example"]), ..Rule::default() };
        assert!(odd.contradiction().is_some());
    }
}
