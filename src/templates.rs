//! Tera templates for everything maildesk writes to people.
//!
//! Each outbound mail kind `K` has `K.subject.tera` and `K.txt.tera`, and may have `K.html.tera`
//! (then the mail is multipart/alternative). HTML templates are auto-escaped: a requester's subject
//! is data, never markup. The context is built by pure functions from ticket and message data, so
//! `maildesk check` can render every template with sample data before the daemon ever needs it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::domain::MailKind;
use crate::message::parse::one_line;

/// The mail kinds that have templates, and whether each part is required.

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("templates folder {}: {cause}", path.display())]
    Folder { path: PathBuf, cause: std::io::Error },
    #[error("template {}: missing (every mail kind needs .subject.tera and .txt.tera)", path.display())]
    Missing { path: PathBuf },
    #[error("macro {name}: its canned reply {} does not exist", path.display())]
    CannedMissing { name: String, path: PathBuf },
    #[error("template {}: {detail}", path.display())]
    Load { path: PathBuf, detail: String },
    #[error("template {name}: {detail}")]
    Render { name: String, detail: String },
}

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    tera: tera::Tera,
    folder: PathBuf,
    /// Per queue with a templates folder of its own: the desk's templates with the queue's over
    /// them, and the kinds the queue replaces (whole: subject, text and HTML part come from one
    /// folder, never a mix).
    queues: std::collections::BTreeMap<String, (tera::Tera, Vec<MailKind>)>,
    /// The same per ticket type (`[types.NAME] templates`); a type's kind wins over a queue's.
    types: std::collections::BTreeMap<String, (tera::Tera, Vec<MailKind>)>,
    /// The canned replies' names (`canned/NAME.txt.tera`), sorted.
    canned: Vec<String>,
}

/// A rendered mail: one-line subject, text body, optional HTML body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeskContext {
    pub name: String,
    pub tag: String,
    pub address: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketContext {
    pub id: i64,
    /// `[ACME #12]`, ready to put in a subject.
    pub tag: String,
    pub subject: String,
    pub status: crate::domain::TicketStatus,
    pub priority: crate::domain::Priority,
    pub requester: String,
    pub requester_name: String,
    /// Empty when unassigned.
    pub assignee: String,
    /// The queue's name: its templates (if it has its own) render this mail.
    pub queue: String,
    /// incident, request, change or problem; empty until set.
    #[serde(rename = "type")]
    pub ticket_type: String,
    /// Its service's name; empty without one.
    pub service: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MessageContext {
    pub subject: String,
    pub from: String,
    pub from_name: String,
    pub text: String,
}

/// What only some kinds use; always present (empty when unused) so templates never hit a missing
/// variable.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExtraContext {
    /// For technicians: the per-ticket address their reply should go to (also the Reply-To).
    pub reply_address: String,
    /// For technicians: the per-ticket address for internal notes.
    pub note_address: String,
    /// The technician commands, one per line.
    pub commands_help: String,
    /// command-error: the rejected line and why.
    pub error_line: String,
    pub error_reason: String,
    /// Attachment names passed on with the mail.
    pub attachments: Vec<String>,
    /// Attachments kept on the ticket but not passed on (over `limits.forward_attachments_mb`),
    /// as "name (N bytes)".
    pub attachments_not_forwarded: Vec<String>,
    /// Something to tell about the message, e.g. attachments not kept because of size limits.
    pub notice: String,
    /// escalation: each target whose level was reached.
    pub escalations: Vec<EscalationContext>,
    /// resolution: the five one-click ratings, 1 (poor) to 5 (excellent).
    pub ratings: Vec<RatingLink>,
    /// approval-request, change-decision: the change and its approvals.
    pub change: ChangeContext,
    /// problem-resolved: the problem.
    pub problem: LinkContext,
    /// resolution of a request with a template: its tasks.
    pub tasks: Vec<LinkContext>,
}

/// A change as its approvers and requester see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangeContext {
    pub version: i64,
    /// pending, approved or rejected.
    pub state: String,
    /// "any", "all" or a number.
    pub required: String,
    pub approvers: Vec<String>,
    /// This version's decisions so far.
    pub decisions: Vec<DecisionContext>,
    /// approval-request: a reminder, not the first request.
    pub reminder: bool,
    /// The request that opened the change (its first message's text).
    pub description: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DecisionContext {
    pub approver: String,
    /// approve or reject.
    pub decision: String,
    pub reason: String,
}

/// Another ticket named in a mail.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkContext {
    pub id: i64,
    pub tag: String,
    pub subject: String,
    pub status: String,
}

/// The five ratings of a resolution mail; `address(score)` is the signed address of each.
pub fn rating_links(address: impl Fn(u8) -> String) -> Vec<RatingLink> {
    [(1, "poor"), (2, "fair"), (3, "good"), (4, "very good"), (5, "excellent")]
        .into_iter()
        .map(|(score, label)| {
            let a = address(score);
            // The subject is the only thing a one-click mail needs; the address carries the rest.
            let mailto = format!("mailto:{a}?subject=Rating%20{score}");
            RatingLink { score, label, address: a, mailto }
        })
        .collect()
}

/// One rating in a resolution mail: a `mailto:` link to the signed address that records it.
#[derive(Debug, Clone, Serialize)]
pub struct RatingLink {
    pub score: u8,
    pub label: &'static str,
    pub address: String,
    pub mailto: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EscalationContext {
    /// "first response" or "resolution".
    pub target: String,
    /// The level reached, in percent of the target.
    pub percent: u32,
    pub target_time: String,
    pub elapsed: String,
    /// When the target is (or was) due, in the desk's time zone.
    pub due: String,
    pub overdue: bool,
    /// "25m", or "overdue by 1h 10m".
    pub remaining: String,
}

/// An instant as the desk's people read it: "2026-11-23 09:55 CET".
pub fn local_time(tz: &jiff::tz::TimeZone, t: Option<i64>) -> String {
    t.and_then(|t| jiff::Timestamp::from_second(t).ok())
        .map(|t| t.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_else(|| "-".into())
}

#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub desk: DeskContext,
    pub ticket: TicketContext,
    /// The message that caused this mail: its new text only.
    pub message: MessageContext,
    pub extra: ExtraContext,
}

impl Context {
    /// Sample data for `maildesk check`: exercises every field a template may use.
    pub fn sample(desk: DeskContext) -> Context {
        let tag = crate::threading::format_tag(&desk.tag, 123);
        Context {
            ticket: TicketContext {
                id: 123,
                tag,
                subject: "Printer on floor 3 is jammed".into(),
                status: crate::domain::TicketStatus::Open,
                priority: crate::domain::Priority::P3,
                requester: "alice@example.com".into(),
                requester_name: "Alice Example".into(),
                assignee: "tech1@example.com".into(),
                queue: "default".into(),
                ticket_type: "incident".into(),
                service: "printing".into(),
            },
            message: MessageContext {
                subject: "Printer on floor 3 is jammed".into(),
                from: "alice@example.com".into(),
                from_name: "Alice Example".into(),
                text: "The printer shows error E42 <b>again</b>.".into(),
            },
            extra: ExtraContext {
                reply_address: "support+t123-abcdefghijklmnop@example.com".into(),
                note_address: "support+n123-abcdefghijklmnop@example.com".into(),
                commands_help: crate::commands::HELP.into(),
                error_line: "#asign bob@example.com".into(),
                error_reason: "unknown command #asign".into(),
                attachments: vec!["photo.jpg".into()],
                attachments_not_forwarded: vec!["backup.zip (41943040 bytes)".into()],
                notice: "These attachments were over the size limits and were not kept: scan.tiff (31457280 bytes)."
                    .into(),
                escalations: vec![EscalationContext {
                    target: "first response".into(),
                    percent: 75,
                    target_time: "30m".into(),
                    elapsed: "23m".into(),
                    due: "2026-11-23 09:55 CET".into(),
                    overdue: false,
                    remaining: "7m".into(),
                }],
                ratings: rating_links(|score| format!("support+r123-{score}-abcdefghijklmnop@example.com")),
                change: ChangeContext {
                    version: 2,
                    state: "approved".into(),
                    required: "2".into(),
                    approvers: vec!["cab1@example.com".into(), "cab2@example.com".into(), "cab3@example.com".into()],
                    decisions: vec![DecisionContext {
                        approver: "cab1@example.com".into(),
                        decision: "approve".into(),
                        reason: String::new(),
                    }],
                    reminder: false,
                    description: "Replace the floor 3 printer with the new model.".into(),
                },
                problem: LinkContext {
                    id: 120,
                    tag: crate::threading::format_tag(&desk.tag, 120),
                    subject: "Print server drops jobs".into(),
                    status: "resolved".into(),
                },
                tasks: vec![LinkContext {
                    id: 124,
                    tag: crate::threading::format_tag(&desk.tag, 124),
                    subject: "Laptop".into(),
                    status: "resolved".into(),
                }],
            },
            desk,
        }
    }
}

impl Templates {
    /// Loads every `*.tera` file in `folder` and checks that each mail kind has its required parts.
    pub fn load(folder: &Path) -> Result<Templates, TemplateError> {
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".html.tera"]);
        add_folder(&mut tera, folder, "")?;
        // Kinds newer than a templates folder an admin copied: maildesk's own, so it keeps working.
        for (name, text) in [
            ("resolution.subject.tera", include_str!("../templates/resolution.subject.tera")),
            ("resolution.txt.tera", include_str!("../templates/resolution.txt.tera")),
            ("approval-request.subject.tera", include_str!("../templates/approval-request.subject.tera")),
            ("approval-request.txt.tera", include_str!("../templates/approval-request.txt.tera")),
            ("change-decision.subject.tera", include_str!("../templates/change-decision.subject.tera")),
            ("change-decision.txt.tera", include_str!("../templates/change-decision.txt.tera")),
            ("problem-resolved.subject.tera", include_str!("../templates/problem-resolved.subject.tera")),
            ("problem-resolved.txt.tera", include_str!("../templates/problem-resolved.txt.tera")),
        ] {
            if !tera.get_template_names().any(|n| n == name) {
                tera.add_raw_template(name, text)
                    .map_err(|e| TemplateError::Load { path: folder.join(name), detail: error_chain(&e) })?;
            }
        }
        for kind in MailKind::ALL.map(MailKind::template) {
            for part in ["subject", "txt"] {
                let name = format!("{kind}.{part}.tera");
                if !tera.get_template_names().any(|n| n == name) {
                    return Err(TemplateError::Missing { path: folder.join(name) });
                }
            }
        }
        let canned_folder = folder.join("canned");
        let canned = if canned_folder.is_dir() {
            add_folder(&mut tera, &canned_folder, "canned/")?
                .iter()
                .filter_map(|n| n.strip_prefix("canned/")?.strip_suffix(".txt.tera"))
                .filter(|n| crate::commands::valid_name(n))
                .map(String::from)
                .collect()
        } else {
            Vec::new()
        };
        Ok(Templates {
            tera,
            folder: folder.to_path_buf(),
            queues: Default::default(),
            types: Default::default(),
            canned,
        })
    }

    /// Renders a digest (`digest-daily`, `digest-weekly`) from the desk's folder, or from the
    /// templates built into maildesk when the folder has none (an older install keeps working).
    pub fn render_digest(&self, name: &str, ctx: &impl Serialize) -> Result<Rendered, TemplateError> {
        let context = tera::Context::from_serialize(ctx)
            .map_err(|e| TemplateError::Render { name: name.into(), detail: error_chain(&e) })?;
        let builtin = |part: &str| match (name, part) {
            ("digest-daily", "subject") => include_str!("../templates/digest-daily.subject.tera"),
            ("digest-daily", _) => include_str!("../templates/digest-daily.txt.tera"),
            ("digest-weekly", "subject") => include_str!("../templates/digest-weekly.subject.tera"),
            _ => include_str!("../templates/digest-weekly.txt.tera"),
        };
        let render = |part: &str| -> Result<String, TemplateError> {
            let file = format!("{name}.{part}.tera");
            let err = |e: tera::Error| TemplateError::Render { name: file.clone(), detail: error_chain(&e) };
            if self.tera.get_template_names().any(|n| n == file) {
                self.tera.render(&file, &context).map_err(err)
            } else {
                tera::Tera::one_off(builtin(part), &context, false).map_err(err)
            }
        };
        Ok(Rendered { subject: one_line(&render("subject")?), text: render("txt")?, html: None })
    }

    /// The canned replies there are.
    pub fn canned(&self) -> &[String] {
        &self.canned
    }

    /// Renders the canned reply `name` with the ticket's variables.
    pub fn render_canned(&self, name: &str, ctx: &Context) -> Result<String, TemplateError> {
        let file = format!("canned/{name}.txt.tera");
        let context = tera::Context::from_serialize(ctx)
            .map_err(|e| TemplateError::Render { name: file.clone(), detail: error_chain(&e) })?;
        self.tera.render(&file, &context).map_err(|e| TemplateError::Render { name: file, detail: error_chain(&e) })
    }

    /// The desk's templates and every queue's own folder (`[[queues]] templates`) over them.
    pub fn load_desk(config: &crate::config::Config) -> Result<Templates, TemplateError> {
        let mut t = Templates::load(&config.helpdesk.templates)?;
        for m in &config.macros {
            if let Some(r) = m.reply.as_ref().filter(|r| !t.canned.contains(r)) {
                return Err(TemplateError::CannedMissing {
                    name: m.name.clone(),
                    path: config.helpdesk.templates.join("canned").join(format!("{r}.txt.tera")),
                });
            }
        }
        for q in &config.queues {
            let Some(folder) = &q.templates else { continue };
            let overlay = t.overlay(folder)?;
            t.queues.insert(q.name.clone(), overlay);
        }
        for ty in &config.types {
            let Some(folder) = &ty.templates else { continue };
            let overlay = t.overlay(folder)?;
            t.types.insert(ty.ticket_type.as_str().to_string(), overlay);
        }
        Ok(t)
    }

    /// The desk's templates with `folder`'s over them, and the kinds it replaces.
    fn overlay(&self, folder: &Path) -> Result<(tera::Tera, Vec<MailKind>), TemplateError> {
        let mut tera = self.tera.clone();
        let names = add_folder(&mut tera, folder, "")?;
        let mut kinds = Vec::new();
        for kind in MailKind::ALL {
            let k = kind.template();
            if !names.iter().any(|n| n.starts_with(&format!("{k}."))) {
                continue;
            }
            for part in ["subject", "txt"] {
                let name = format!("{k}.{part}.tera");
                if !names.contains(&name) {
                    return Err(TemplateError::Missing { path: folder.join(name) });
                }
            }
            if !names.contains(&format!("{k}.html.tera")) {
                // The folder's kind has no HTML part: the desk's must not fill in for it.
                tera.templates.remove(&format!("{k}.html.tera"));
            }
            kinds.push(kind);
        }
        Ok((tera, kinds))
    }

    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// Renders the mail kind `kind` (e.g. "acknowledgement") with `ctx`.
    pub fn render(&self, kind: MailKind, ctx: &Context) -> Result<Rendered, TemplateError> {
        let tera = match (self.types.get(&ctx.ticket.ticket_type), self.queues.get(&ctx.ticket.queue)) {
            (Some((tera, kinds)), _) if kinds.contains(&kind) => tera,
            (_, Some((tera, kinds))) if kinds.contains(&kind) => tera,
            _ => &self.tera,
        };
        let context = tera::Context::from_serialize(ctx)
            .map_err(|e| TemplateError::Render { name: kind.template().into(), detail: error_chain(&e) })?;
        let render = |name: String| {
            tera.render(&name, &context)
                .map_err(|e| TemplateError::Render { name: name.clone(), detail: error_chain(&e) })
        };
        let subject = one_line(&render(format!("{kind}.subject.tera"))?);
        let subject = if subject.is_empty() { format!("{} {}", ctx.ticket.tag, ctx.ticket.subject) } else { subject };
        let text = render(format!("{kind}.txt.tera"))?;
        let html_name = format!("{kind}.html.tera");
        let html = if tera.get_template_names().any(|n| n == html_name) { Some(render(html_name)?) } else { None };
        Ok(Rendered { subject, text, html })
    }

    /// Renders every kind with sample data, for the desk and for each queue with templates of its
    /// own: what `maildesk check` runs.
    pub fn check(&self, desk: DeskContext) -> Result<Vec<(String, Rendered)>, TemplateError> {
        let mut ctx = Context::sample(desk);
        let mut out = Vec::new();
        for k in MailKind::ALL {
            out.push((k.template().to_string(), self.render(k, &ctx)?));
        }
        for name in &self.canned {
            let text = self.render_canned(name, &ctx)?;
            out.push((format!("canned/{name}"), Rendered { subject: String::new(), text, html: None }));
        }
        for (queue, (_, kinds)) in &self.queues {
            ctx.ticket.queue = queue.clone();
            for k in kinds {
                out.push((format!("{queue}/{}", k.template()), self.render(*k, &ctx)?));
            }
        }
        ctx.ticket.queue = "default".into();
        for (ty, (_, kinds)) in &self.types {
            ctx.ticket.ticket_type = ty.clone();
            for k in kinds {
                out.push((format!("type {ty}/{}", k.template()), self.render(*k, &ctx)?));
            }
        }
        Ok(out)
    }
}

/// Adds every `*.tera` file of `folder` as `PREFIX` + its name (in name order, replacing any of the
/// same name); their names.
fn add_folder(tera: &mut tera::Tera, folder: &Path, prefix: &str) -> Result<Vec<String>, TemplateError> {
    let entries = std::fs::read_dir(folder).map_err(|cause| TemplateError::Folder { path: folder.into(), cause })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|cause| TemplateError::Folder { path: folder.into(), cause })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tera") {
            files.push((entry.path(), format!("{prefix}{name}")));
        }
    }
    files.sort();
    let names = files.iter().map(|(_, n)| n.clone()).collect();
    for (path, name) in files {
        tera.add_template_file(&path, Some(&name))
            .map_err(|e| TemplateError::Load { path: path.clone(), detail: error_chain(&e) })?;
    }
    Ok(names)
}

/// Tera hides the useful part of an error (the line, the missing variable) in its source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk() -> DeskContext {
        DeskContext { name: "ACME IT".into(), tag: "ACME".into(), address: "support@acme.test".into() }
    }

    #[test]
    fn shipped_templates_render_and_escape_html() {
        let t = Templates::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))).unwrap();
        let out = t.check(desk()).unwrap();
        assert_eq!(out.iter().filter(|(k, _)| !k.starts_with("canned/")).count(), MailKind::ALL.len());
        assert!(out.iter().any(|(k, r)| k == "canned/check-fixed" && r.text.contains("[ACME #123]")), "{out:?}");
        let (_, ack) = &out[0];
        assert_eq!(ack.subject, "[ACME #123] Printer on floor 3 is jammed");
        assert!(ack.text.contains("123"));
        assert!(ack.html.is_some(), "the shipped acknowledgement has an HTML part");

        let mut hostile = Context::sample(desk());
        hostile.ticket.subject = "Printer <b>jammed</b>".into();
        let html = t.render(MailKind::Acknowledgement, &hostile).unwrap().html.unwrap();
        assert!(html.contains("Printer &lt;b&gt;jammed&lt;&#x2F;b&gt;"), "requester text must be escaped: {html}");
        assert!(!html.contains("<b>jammed"), "{html}");
    }

    #[test]
    fn a_types_templates_replace_the_desks_for_tickets_of_that_type() {
        let dir = tempfile::tempdir().unwrap();
        let change = dir.path().join("change");
        std::fs::create_dir(&change).unwrap();
        std::fs::write(change.join("acknowledgement.subject.tera"), "{{ ticket.tag }} Change request received")
            .unwrap();
        std::fs::write(change.join("acknowledgement.txt.tera"), "CAB meets on Tuesdays.").unwrap();
        let text = format!(
            "[helpdesk]\nname = \"ACME IT\"\ntag = \"ACME\"\naddress = \"support@acme.test\"\ntemplates = \"{}\"\n\
             [imap]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\nusername = \"s@acme.test\"\npassword = \"x\"\n\
             [smtp]\nhost = \"127.0.0.1\"\nsecurity = \"none\"\n[types.change]\ntemplates = \"change\"\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/templates")
        );
        let config = crate::config::Config::from_str(&dir.path().join("m.toml"), &text).unwrap();
        let t = Templates::load_desk(&config).unwrap();
        let mut ctx = Context::sample(desk());
        ctx.ticket.ticket_type = "change".into();
        let r = t.render(MailKind::Acknowledgement, &ctx).unwrap();
        assert_eq!(
            (r.subject.as_str(), r.text.as_str(), r.html),
            ("[ACME #123] Change request received", "CAB meets on Tuesdays.", None)
        );
        // Other kinds, and other types, stay the desk's.
        assert!(t.render(MailKind::NewTicket, &ctx).unwrap().subject.starts_with("[ACME #123] New"));
        ctx.ticket.ticket_type = "incident".into();
        assert_eq!(
            t.render(MailKind::Acknowledgement, &ctx).unwrap().subject,
            "[ACME #123] Printer on floor 3 is jammed"
        );
        assert!(t.check(desk()).unwrap().iter().any(|(k, _)| k == "type change/acknowledgement"));
    }

    #[test]
    fn broken_template_is_reported_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/templates")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        std::fs::write(dir.path().join("acknowledgement.subject.tera"), "{{ ticket.tag }}").unwrap();
        std::fs::write(dir.path().join("acknowledgement.txt.tera"), "{{ ticket.nosuchfield }}").unwrap();
        let t = Templates::load(dir.path()).unwrap();
        let err = t.check(desk()).unwrap_err().to_string();
        assert!(err.contains("acknowledgement.txt.tera"), "{err}");
        assert!(err.contains("nosuchfield"), "{err}");

        std::fs::remove_file(dir.path().join("acknowledgement.txt.tera")).unwrap();
        let err = Templates::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("acknowledgement.txt.tera") && err.contains("missing"), "{err}");

        std::fs::write(dir.path().join("acknowledgement.txt.tera"), "{% if %}").unwrap();
        let err = Templates::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("acknowledgement.txt.tera"), "{err}");
    }
}
