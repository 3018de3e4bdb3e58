//! `maildesk check`: the config validated (its secrets read), every template rendered with sample
//! data, the CA files read.

use std::io::Write;

use anyhow::Context as _;

use crate::config::Config;
use crate::templates::{DeskContext, Templates};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also log in to the IMAP and SMTP servers (fetching OAuth tokens first), reporting each step.
    #[arg(long)]
    pub connect: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let templates = Templates::load_desk(config)?;
    let h = &config.helpdesk;
    let rendered =
        templates.check(DeskContext { name: h.name.clone(), tag: h.tag.clone(), address: h.address.clone() })?;
    crate::tls::install_provider();
    for (section, ca) in [("imap", &config.imap.ca_file), ("smtp", &config.smtp.ca_file)] {
        if let Some(ca) = ca {
            crate::tls::read_pem(ca).with_context(|| format!("{}: {section}.ca_file", config.source.display()))?;
        }
    }
    writeln!(out, "{}: ok", config.source.display())?;
    writeln!(out, "  desk      {} <{}>, tag [{} #n], time zone {}", h.name, h.address, h.tag, h.timezone_name)?;
    writeln!(out, "  database  {}", h.database.display())?;
    writeln!(
        out,
        "  imap      {}:{} ({:?}) as {}, mailbox {}",
        config.imap.host, config.imap.port, config.imap.security, config.imap.username, config.imap.mailbox
    )?;
    writeln!(out, "  smtp      {}:{} ({:?})", config.smtp.host, config.smtp.port, config.smtp.security)?;
    for (server, auth, oauth) in
        [("imap", config.imap.auth, config.oauth.as_ref()), ("smtp", config.smtp.auth, config.smtp_oauth())]
    {
        if let (crate::config::AuthMethod::Xoauth2, Some(o)) = (auth, oauth) {
            writeln!(
                out,
                "  {server} login XOAUTH2, tokens from [{}] ({:?}, {}) at {}",
                o.table,
                o.provider,
                o.grant.flow(),
                o.token_url
            )?;
        }
    }
    if !h.admins.is_empty() {
        writeln!(
            out,
            "  admins    {} (told after {} of failing logins)",
            h.admins.join(", "),
            super::duration(h.alert_after.as_secs() as i64)
        )?;
    }
    writeln!(
        out,
        "  technicians {}",
        if h.technicians.is_empty() { "(none)".into() } else { h.technicians.join(", ") }
    )?;
    if config.queues.len() > 1 || config.queues[0].assign != crate::routing::Assign::None {
        for (m, q) in config.mailboxes().iter().map(|m| (m, &config.queues[m.home])) {
            writeln!(out, "  mailbox   {} -> queue {}", m.label, q.name)?;
        }
        for q in &config.queues {
            let addresses = if q.addresses.is_empty() { "-".into() } else { q.addresses.join(", ") };
            writeln!(
                out,
                "  queue     {}: addresses {addresses}; team of {}{}; assign {}",
                q.name,
                q.team.len(),
                q.lead.as_ref().map(|l| format!(", lead {l}")).unwrap_or_default(),
                q.assign.as_str()
            )?;
        }
        writeln!(out, "  routing   {} rule(s), every one can match", config.routing.len())?;
    }
    let approvals = |a: &crate::config::Approvals| {
        let remind = a.remind_after.map(|d| format!(", reminded after {}", super::duration(d.as_secs() as i64)));
        format!("{} of {} ({}){}", a.required, a.approvers.len(), a.approvers.join(", "), remind.unwrap_or_default())
    };
    for s in &config.services {
        writeln!(
            out,
            "  service   {}: owner {}; queue {}; {} address(es); keywords {}; SLA {}; changes approved by {}",
            s.name,
            s.owner.as_deref().unwrap_or("-"),
            s.queue.map(|q| config.queues[q].name.as_str()).unwrap_or("(routing decides)"),
            s.addresses.len(),
            if s.keywords.is_some() { "yes" } else { "none" },
            if s.policies.is_some() { "its own" } else { "its queue's" },
            s.approvals
                .as_ref()
                .or(config.changes.as_ref())
                .map(approvals)
                .unwrap_or_else(|| "nobody (no approval)".into())
        )?;
    }
    if let Some(a) = &config.changes {
        writeln!(out, "  changes   approved by {}", approvals(a))?;
    }
    for t in &config.types {
        writeln!(
            out,
            "  type      {}: addresses {}; templates {}; SLA {}",
            t.ticket_type,
            if t.addresses.is_empty() { "-".into() } else { t.addresses.join(", ") },
            t.templates.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "the desk's".into()),
            if t.policies.is_some() { "its own" } else { "its queue's" }
        )?;
    }
    for t in &config.request_templates {
        let tasks: Vec<String> = t.tasks.iter().map(|k| format!("{} ({})", k.title, k.queue)).collect();
        writeln!(out, "  request template {}: {}", t.name, tasks.join("; "))?;
    }
    for (kind, r) in rendered {
        writeln!(
            out,
            "  template  {kind}: subject {:?}, {} text lines{}",
            r.subject,
            r.text.lines().count(),
            if r.html.is_some() { ", with HTML part" } else { "" }
        )?;
    }
    if args.connect && !super::connect::execute(config, out)? {
        anyhow::bail!("a login step failed (see above)");
    }
    Ok(())
}
