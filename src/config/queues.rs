//! `[[queues]]` and `[[routing]]` checked: names, addresses, teams, mailboxes, SLA overrides, and
//! rules that cannot compile or can never match.

use std::path::{Path, PathBuf};

use regex::{Regex, RegexBuilder};

use super::file::{FileQueue, FileRoute};
use super::imap::imap_settings;
use super::locate::Located;
use super::problems::Problems;
use super::types::{DEFAULT_QUEUE, Helpdesk, Imap, OAuth, Queue, QueueMailbox};
use crate::routing::{Assign, Rule};
use crate::sla::policy::SlaConfig;

/// A compiled pattern may take at most this much memory: a rule's regex runs over every new
/// mail's text, and the `regex` crate keeps it linear in the text; this keeps it small too.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(super) fn regex(doc: &Located<'_>, problems: &mut Problems, key: &str, pattern: Option<&str>) -> Option<Regex> {
    let p = pattern?;
    match RegexBuilder::new(p).size_limit(REGEX_SIZE_LIMIT).build() {
        Ok(re) => Some(re),
        Err(e) => {
            problems.push(doc.key_error(key, format!("bad regular expression {p:?}: {e}")));
            None
        }
    }
}

pub(super) fn addresses(doc: &Located<'_>, problems: &mut Problems, key: &str, list: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in list {
        match super::parse_address(a) {
            Some(a) if !out.contains(&a) => out.push(a),
            Some(_) => {}
            None => problems.push(doc.key_error(key, format!("expected mail addresses, got {a:?}"))),
        }
    }
    out
}

/// Everything the queues need from the rest of the file.
pub(super) struct Desk<'a> {
    pub(super) imap: &'a Imap,
    pub(super) oauth: Option<&'a OAuth>,
    pub(super) sla: Option<&'a SlaConfig>,
    pub(super) base: &'a Path,
    /// The `[[services]]` and `[request_templates]` names a rule may set.
    pub(super) services: &'a [String],
    pub(super) request_templates: &'a [String],
}

/// The queues (one implicit queue when the file has none) and the routing rules. Adds every team
/// member and lead to `helpdesk.technicians`: someone who works a queue is a technician.
pub(super) fn validate(
    doc: &Located<'_>,
    problems: &mut Problems,
    files: Vec<FileQueue>,
    routes: Vec<FileRoute>,
    helpdesk: &mut Helpdesk,
    desk: Desk<'_>,
) -> (Vec<Queue>, Vec<Rule>) {
    let desk_policies = desk.sla.map(|s| s.policies.clone());
    let Some(desk_policies) = desk_policies else { return (Vec::new(), Vec::new()) };
    if files.is_empty() {
        if let Some((i, _)) = routes.iter().enumerate().find(|(_, r)| r.queue.is_some()) {
            problems.push(doc.key_error(
                &format!("routing[{i}].queue"),
                "there are no [[queues]] to route to; a rule without queues may set priority and assign only".into(),
            ));
        }
        let queue = Queue {
            name: DEFAULT_QUEUE.into(),
            addresses: Vec::new(),
            mailbox: QueueMailbox::Shared,
            team: helpdesk.technicians.clone(),
            lead: None,
            templates: None,
            policies: desk_policies,
            default_priority: None,
            assign: Assign::None,
        };
        let names = Names {
            queues: std::slice::from_ref(&queue.name),
            services: desk.services,
            templates: desk.request_templates,
        };
        let rules = rules(doc, problems, routes, &names, &helpdesk.technicians);
        return (vec![queue], rules);
    }
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { desk.base.join(p) };
    let mut queues: Vec<Queue> = Vec::new();
    let mut folders: Vec<String> = vec![desk.imap.mailbox.clone()];
    for (i, f) in files.into_iter().enumerate() {
        let key = |k: &str| format!("queues[{i}].{k}");
        let name_rule = "a short name of lower-case letters, digits, '-' or '_' (technicians write #queue NAME)";
        let name = problems.required(doc, &key("name"), f.name, name_rule).unwrap_or_default();
        if !name.is_empty()
            && !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            problems.push(doc.key_error(&key("name"), format!("expected {name_rule}, got {name:?}")));
        }
        if queues.iter().any(|q| q.name == name) {
            problems.push(doc.key_error(&key("name"), format!("two queues are called {name:?}")));
        }
        let queue_addresses = addresses(doc, problems, &key("addresses"), &f.addresses);
        for a in &queue_addresses {
            if let Some(other) = queues.iter().find(|q| q.addresses.contains(a)) {
                problems.push(doc.key_error(
                    &key("addresses"),
                    format!("{a} is already an address of queue {:?}; an address lands in one queue", other.name),
                ));
            }
        }
        let mailbox = match (f.folder, f.imap) {
            (Some(_), Some(_)) => {
                problems.push(doc.key_error(
                    &key("folder"),
                    "a queue reads either a folder of the [imap] account or its own [queues.imap], not both".into(),
                ));
                QueueMailbox::Shared
            }
            (Some(folder), None) => {
                if folders.contains(&folder) {
                    problems.push(doc.key_error(
                        &key("folder"),
                        format!("{folder:?} is already watched (by [imap] or another queue)"),
                    ));
                }
                folders.push(folder.clone());
                QueueMailbox::Folder(folder)
            }
            (None, Some(imap)) => {
                // Its tokens are stored under the queue's name, not its position in the file.
                let oauth = f.oauth.as_ref().and_then(|o| {
                    super::oauth::validate(doc, problems, &key("oauth"), o, desk.base)
                        .map(|o| OAuth { table: format!("queues.{name}.oauth"), ..o })
                });
                let has_oauth = oauth.is_some() || desk.oauth.is_some();
                let imap = imap_settings(doc, problems, &key("imap"), imap, has_oauth, desk.base);
                QueueMailbox::Own { imap: Box::new(imap), oauth }
            }
            (None, None) => QueueMailbox::Shared,
        };
        if f.oauth.is_some() && !matches!(mailbox, QueueMailbox::Own { .. }) {
            problems.push(doc.key_error(&key("oauth"), "only a queue with its own [queues.imap] logs in".into()));
        }
        let team = addresses(doc, problems, &key("team"), &f.team);
        let lead = f.lead.as_deref().and_then(|l| {
            let a = super::parse_address(l);
            if a.is_none() {
                problems.push(doc.key_error(&key("lead"), format!("expected a mail address, got {l:?}")));
            }
            a
        });
        let templates = f.templates.map(resolve);
        if let Some(t) = &templates
            && !t.is_dir()
        {
            problems.push(doc.key_error(&key("templates"), format!("{} is not a folder", t.display())));
        }
        let mut policies = desk_policies.clone();
        if let (Some(s), Some(sla)) = (f.sla, desk.sla) {
            if let Some(c) = &s.calendar {
                if sla.calendars.contains_key(c) {
                    policies.iter_mut().for_each(|p| p.calendar = c.clone());
                } else {
                    let known: Vec<&String> = sla.calendars.keys().collect();
                    problems.push(doc.key_error(&key("sla.calendar"), format!("no calendar {c:?}; known: {known:?}")));
                }
            }
            let table = key("sla");
            if let Err((k, message)) = crate::sla::policy::override_policies(
                &mut policies,
                [s.p1, s.p2, s.p3, s.p4],
                &table,
                &sla.calendars,
                &super::parse_duration,
            ) {
                problems.push(doc.key_error(&k, message));
            }
        }
        let default_priority = f.default_priority.as_deref().and_then(|p| match p.parse() {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(doc.key_error(&key("default_priority"), format!("{e}")));
                None
            }
        });
        let assign = match f.assign.as_deref().map(str::parse::<Assign>) {
            None => Assign::None,
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                problems.push(doc.key_error(&key("assign"), e));
                Assign::None
            }
        };
        if assign != Assign::None && team.is_empty() {
            problems.push(doc.key_error(&key("assign"), "a queue that assigns needs a team to assign to".into()));
        }
        queues.push(Queue {
            name,
            addresses: queue_addresses,
            mailbox,
            team,
            lead,
            templates,
            policies,
            default_priority,
            assign,
        });
    }
    // Team members and leads are technicians; a queue without a team is worked by all of them.
    for q in &queues {
        for a in q.team.iter().chain(&q.lead) {
            if !helpdesk.technicians.contains(a) {
                helpdesk.technicians.push(a.clone());
            }
        }
    }
    for q in &mut queues {
        if q.team.is_empty() {
            q.team = helpdesk.technicians.clone();
        }
    }
    let queue_names: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
    let names = Names { queues: &queue_names, services: desk.services, templates: desk.request_templates };
    let rules = rules(doc, problems, routes, &names, &helpdesk.technicians);
    (queues, rules)
}

/// What a rule may name.
struct Names<'a> {
    queues: &'a [String],
    services: &'a [String],
    templates: &'a [String],
}

/// The routing rules, compiled and checked: a rule that can never match (its own conditions
/// disagree, or an earlier rule matches whenever it would) or that sets nothing is a problem.
fn rules(
    doc: &Located<'_>,
    problems: &mut Problems,
    routes: Vec<FileRoute>,
    names: &Names<'_>,
    technicians: &[String],
) -> Vec<Rule> {
    let queues = names.queues;
    let mut out: Vec<Rule> = Vec::new();
    for (i, r) in routes.into_iter().enumerate() {
        let key = |k: &str| format!("routing[{i}].{k}");
        let header = r.header.as_deref().and_then(|h| match h.split_once(':') {
            Some((name, pattern)) if !name.trim().is_empty() && !name.trim().contains(' ') => {
                regex(doc, problems, &key("header"), Some(pattern.trim()))
                    .map(|re| (name.trim().to_ascii_lowercase(), re))
            }
            _ => {
                problems.push(doc.key_error(&key("header"), format!("expected \"Header-Name: pattern\", got {h:?}")));
                None
            }
        });
        let queue = r.queue.as_deref().and_then(|q| {
            let found = queues.iter().position(|n| n == q);
            if found.is_none() {
                problems.push(doc.key_error(&key("queue"), format!("no queue {q:?}; known: {queues:?}")));
            }
            found
        });
        let priority = r.priority.as_deref().and_then(|p| match p.parse() {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(doc.key_error(&key("priority"), format!("{e}")));
                None
            }
        });
        let assign = r.assign.as_deref().and_then(|a| match super::parse_address(a) {
            Some(a) if technicians.contains(&a) => Some(a),
            Some(a) => {
                problems.push(doc.key_error(&key("assign"), format!("{a} is not a technician")));
                None
            }
            None => {
                problems.push(doc.key_error(&key("assign"), format!("expected a mail address, got {a:?}")));
                None
            }
        });
        let ticket_type = r.ticket_type.as_deref().and_then(|t| match t.parse() {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(doc.key_error(&key("type"), format!("{e}")));
                None
            }
        });
        let named = |k: &str, value: Option<&str>, list: &[String], what: &str, problems: &mut Problems| {
            value.and_then(|v| {
                let found = list.iter().position(|n| n == v);
                if found.is_none() {
                    problems.push(doc.key_error(&key(k), format!("no {what} {v:?}; known: {list:?}")));
                }
                found
            })
        };
        let service = named("service", r.service.as_deref(), names.services, "service", problems);
        let template = named("template", r.template.as_deref(), names.templates, "request template", problems);
        let rule = Rule {
            service,
            template,
            from: r.from.iter().map(|a| a.trim().to_ascii_lowercase()).collect(),
            from_domain: r.from_domain.iter().map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase()).collect(),
            subject_matches: regex(doc, problems, &key("subject_matches"), r.subject_matches.as_deref()),
            body_matches: regex(doc, problems, &key("body_matches"), r.body_matches.as_deref()),
            header,
            queue,
            priority,
            assign,
            ticket_type,
        };
        let at = format!("routing[{i}]");
        if r.queue.is_none()
            && r.priority.is_none()
            && r.assign.is_none()
            && r.ticket_type.is_none()
            && r.service.is_none()
            && r.template.is_none()
        {
            problems.push(doc.key_error(
                &at,
                "the rule sets nothing: give it a queue, priority, type, service, template or assign".into(),
            ));
        }
        if let Some(why) = rule.contradiction() {
            problems.push(doc.key_error(&at, why));
        } else if let Some(j) = out.iter().position(|earlier| earlier.shadows(&rule)) {
            problems.push(doc.key_error(
                &at,
                format!(
                    "can never match: routing rule {} comes first and matches every mail this one would (the first match wins)",
                    j + 1
                ),
            ));
        }
        out.push(rule);
    }
    out
}

/// `[macros.NAME]`: each command line parsed as a technician would write it (one command per
/// line, no macro inside a macro); whether the canned reply exists is checked with the templates.
pub(super) fn macros(
    doc: &Located<'_>,
    problems: &mut Problems,
    files: std::collections::BTreeMap<String, super::file::FileMacro>,
) -> Vec<crate::commands::Macro> {
    use crate::commands::{self, Command};
    let mut out = Vec::new();
    for (name, f) in files {
        let key = |k: &str| format!("macros.{name}.{k}");
        if !commands::valid_name(&name) {
            problems.push(doc.key_error(
                &format!("macros.{name}"),
                "expected a name of lower-case letters, digits, '-' or '_' (technicians write #macro NAME)".into(),
            ));
        }
        let mut list = Vec::new();
        for line in &f.commands {
            match commands::parse(line) {
                Ok(p) if p.commands.len() == 1 && p.rest.is_empty() => match &p.commands[0] {
                    Command::Macro(_) => problems
                        .push(doc.key_error(&key("commands"), format!("{line:?}: a macro cannot apply another"))),
                    c => list.push(c.clone()),
                },
                Ok(_) => problems.push(doc.key_error(
                    &key("commands"),
                    format!("{line:?}: expected one command per line, like \"#status pending\""),
                )),
                Err(e) => problems.push(doc.key_error(&key("commands"), format!("{line:?}: {}", e.reason))),
            }
        }
        let reply = f.reply.map(|r| r.trim().to_ascii_lowercase());
        if let Some(r) = reply.as_deref().filter(|r| !commands::valid_name(r)) {
            problems.push(doc.key_error(&key("reply"), format!("{r:?} is not a canned reply's name")));
        }
        if list.is_empty() && reply.is_none() {
            problems.push(
                doc.key_error(&format!("macros.{name}"), "the macro does nothing: give it commands or a reply".into()),
            );
        }
        out.push(commands::Macro { name, commands: list, reply });
    }
    out
}
