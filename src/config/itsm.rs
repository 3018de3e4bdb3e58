//! IT service management settings checked: `[[services]]` (owner, queue, how a mail names the
//! service, SLA overrides, change approvals), `[changes]` (the approvals of a change whose service
//! has none), `[types.NAME]` (a ticket type's templates and SLA policy), `[problems]` and
//! `[request_templates.NAME]` (a request's checklist of tasks, each a ticket in a team's queue).

use std::path::Path;

use regex::{Regex, RegexBuilder};

use super::file::{FileApprovals, FileRequestTemplate, FileRequired, FileService, FileTypeSettings};
use super::locate::Located;
use super::problems::Problems;
use super::types::{Approvals, Queue, RequestTemplate, Service, Task, TypeSettings};
use crate::domain::{Required, TicketType};
use crate::sla::policy::{Policy, SlaConfig};

/// A short name an admin writes and a technician types: lower-case letters, digits, '-' or '_'.
fn valid_name(name: &str) -> bool {
    crate::commands::valid_name(name)
}

/// SLA overrides over `base`, or `None` without a table.
fn policies(
    doc: &Located<'_>,
    problems: &mut Problems,
    key: &str,
    file: Option<crate::sla::policy::FileQueueSla>,
    base: &[Policy; 4],
    sla: &SlaConfig,
) -> Option<[Policy; 4]> {
    let s = file?;
    let mut out = base.clone();
    if let Some(c) = &s.calendar {
        if sla.calendars.contains_key(c) {
            out.iter_mut().for_each(|p| p.calendar = c.clone());
        } else {
            let known: Vec<&String> = sla.calendars.keys().collect();
            problems.push(doc.key_error(&format!("{key}.calendar"), format!("no calendar {c:?}; known: {known:?}")));
        }
    }
    if let Err((k, message)) = crate::sla::policy::override_policies(
        &mut out,
        [s.p1, s.p2, s.p3, s.p4],
        key,
        &sla.calendars,
        &super::parse_duration,
    ) {
        problems.push(doc.key_error(&k, message));
    }
    Some(out)
}

/// `[services.approvals]` or `[changes]`.
pub(super) fn approvals(doc: &Located<'_>, problems: &mut Problems, key: &str, f: FileApprovals) -> Option<Approvals> {
    let approvers = super::queues::addresses(doc, problems, &format!("{key}.approvers"), &f.approvers);
    let required = match f.required {
        None => Required::Any,
        Some(FileRequired::Name(n)) if n == "any" => Required::Any,
        Some(FileRequired::Name(n)) if n == "all" => Required::All,
        Some(FileRequired::Count(n)) if n >= 1 && (n as usize) <= approvers.len().max(1) => {
            Required::AtLeast(n as usize)
        }
        Some(FileRequired::Count(n)) => {
            problems.push(doc.key_error(
                &format!("{key}.required"),
                format!("expected 1 to {} (the number of approvers), got {n}", approvers.len().max(1)),
            ));
            Required::All
        }
        Some(FileRequired::Name(n)) => {
            problems.push(doc.key_error(
                &format!("{key}.required"),
                format!("expected \"any\", \"all\" or a number of approvers, got {n:?}"),
            ));
            Required::All
        }
    };
    if approvers.is_empty() {
        problems.push(doc.key_error(&format!("{key}.approvers"), "a change needs at least one approver".into()));
        return None;
    }
    Some(Approvals { approvers, required, remind_after: f.remind_after.map(|d| d.0) })
}

/// Keywords as one case-insensitive pattern of whole words (a keyword may be several words:
/// "vpn client" matches "VPN  client"): one linear pass over a mail's text per service.
fn keywords(doc: &Located<'_>, problems: &mut Problems, key: &str, words: &[String]) -> Option<Regex> {
    let parts: Vec<String> = words
        .iter()
        .map(|w| w.split_whitespace().map(regex::escape).collect::<Vec<_>>().join(r"\s+"))
        .filter(|w| !w.is_empty())
        .collect();
    if parts.is_empty() {
        return None;
    }
    match RegexBuilder::new(&format!(r"\b(?:{})\b", parts.join("|"))).case_insensitive(true).size_limit(1 << 20).build()
    {
        Ok(re) => Some(re),
        Err(e) => {
            problems.push(doc.key_error(key, format!("the keywords do not make a pattern: {e}")));
            None
        }
    }
}

/// `[[services]]`, checked against the queues.
pub(super) fn services(
    doc: &Located<'_>,
    problems: &mut Problems,
    files: Vec<FileService>,
    queues: &[Queue],
    sla: Option<&SlaConfig>,
) -> Vec<Service> {
    let mut out: Vec<Service> = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let key = |k: &str| format!("services[{i}].{k}");
        let rule = "a short name of lower-case letters, digits, '-' or '_' (technicians write #service NAME)";
        let name = problems.required(doc, &key("name"), f.name, rule).unwrap_or_default();
        if !name.is_empty() && !valid_name(&name) {
            problems.push(doc.key_error(&key("name"), format!("expected {rule}, got {name:?}")));
        }
        if out.iter().any(|s| s.name == name) {
            problems.push(doc.key_error(&key("name"), format!("two services are called {name:?}")));
        }
        let owner = f.owner.as_deref().and_then(|o| {
            let a = super::parse_address(o);
            if a.is_none() {
                problems.push(doc.key_error(&key("owner"), format!("expected a mail address, got {o:?}")));
            }
            a
        });
        let queue = f.queue.as_deref().and_then(|q| {
            let found = queues.iter().position(|x| x.name == q);
            if found.is_none() {
                let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
                problems.push(doc.key_error(&key("queue"), format!("no queue {q:?}; known: {names:?}")));
            }
            found
        });
        let addresses = super::queues::addresses(doc, problems, &key("addresses"), &f.addresses);
        for a in &addresses {
            if let Some(other) = out.iter().find(|s| s.addresses.contains(a)) {
                problems.push(
                    doc.key_error(&key("addresses"), format!("{a} is already an address of service {:?}", other.name)),
                );
            }
        }
        let keywords = keywords(doc, problems, &key("keywords"), &f.keywords);
        let base = &queues[queue.unwrap_or(0)].policies;
        let policies = sla.and_then(|sla| policies(doc, problems, &key("sla"), f.sla, base, sla));
        let approvals = f.approvals.and_then(|a| approvals(doc, problems, &key("approvals"), a));
        out.push(Service { name, owner, queue, addresses, keywords, policies, approvals });
    }
    out
}

/// `[types.NAME]`: NAME is a ticket type.
pub(super) fn types(
    doc: &Located<'_>,
    problems: &mut Problems,
    files: std::collections::BTreeMap<String, FileTypeSettings>,
    sla: Option<&SlaConfig>,
    base: &Path,
) -> Vec<TypeSettings> {
    let mut out = Vec::new();
    for (name, f) in files {
        let key = |k: &str| format!("types.{name}.{k}");
        let ticket_type: TicketType = match name.parse() {
            Ok(t) => t,
            Err(e) => {
                problems.push(doc.key_error(&format!("types.{name}"), format!("{e}")));
                continue;
            }
        };
        let templates = f.templates.map(|p| if p.is_absolute() { p } else { base.join(p) });
        if let Some(t) = templates.as_ref().filter(|t| !t.is_dir()) {
            problems.push(doc.key_error(&key("templates"), format!("{} is not a folder", t.display())));
        }
        let policies = sla.and_then(|sla| policies(doc, problems, &key("sla"), f.sla, &sla.policies, sla));
        let addresses = super::queues::addresses(doc, problems, &key("addresses"), &f.addresses);
        for a in &addresses {
            if let Some(other) = out.iter().find(|t: &&TypeSettings| t.addresses.contains(a)) {
                problems.push(
                    doc.key_error(
                        &key("addresses"),
                        format!("{a} is already an address of type {}", other.ticket_type),
                    ),
                );
            }
        }
        out.push(TypeSettings { ticket_type, addresses, templates, policies });
    }
    out
}

/// `[request_templates.NAME]`: each task in a queue that exists.
pub(super) fn request_templates(
    doc: &Located<'_>,
    problems: &mut Problems,
    files: std::collections::BTreeMap<String, FileRequestTemplate>,
    queues: &[Queue],
) -> Vec<RequestTemplate> {
    let mut out = Vec::new();
    for (name, f) in files {
        let key = |k: &str| format!("request_templates.{name}.{k}");
        if !valid_name(&name) {
            problems.push(doc.key_error(
                &format!("request_templates.{name}"),
                "expected a name of lower-case letters, digits, '-' or '_' (technicians write #template NAME)".into(),
            ));
        }
        let subject_matches =
            f.subject_matches.as_deref().and_then(|p| match RegexBuilder::new(p).size_limit(1 << 20).build() {
                Ok(re) => Some(re),
                Err(e) => {
                    problems.push(doc.key_error(&key("subject_matches"), format!("bad regular expression {p:?}: {e}")));
                    None
                }
            });
        let mut tasks = Vec::new();
        for (j, t) in f.tasks.into_iter().enumerate() {
            let tkey = format!("request_templates.{name}.tasks[{j}]");
            let Some(title) = t.title.filter(|t| !t.trim().is_empty()) else {
                problems.push(doc.key_error(&format!("{tkey}.title"), "a task needs a title".into()));
                continue;
            };
            let queue = match t.queue {
                None => queues[0].name.clone(),
                Some(q) if queues.iter().any(|x| x.name == q) => q,
                Some(q) => {
                    let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
                    problems.push(doc.key_error(&format!("{tkey}.queue"), format!("no queue {q:?}; known: {names:?}")));
                    continue;
                }
            };
            tasks.push(Task { queue, title: crate::message::parse::one_line(title.trim()) });
        }
        if tasks.is_empty() {
            problems.push(doc.key_error(&key("tasks"), "a request template needs at least one task".into()));
        }
        out.push(RequestTemplate { name, subject_matches, tasks });
    }
    out
}
