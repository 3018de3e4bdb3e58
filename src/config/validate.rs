//! Validation: the file's values checked and turned into a [`Config`], every problem collected
//! and reported at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::file::FileConfig;
use super::file::parse_duration;
use super::locate::Located;
use super::problems::Problems;
use super::secrets::{PasswordSource, expand_credentials};
use super::types::*;
use super::{ConfigError, parse_address};

/// Reads `text` (from `path`) into a validated [`Config`], noting every problem on the way.
pub(super) fn parse(path: &Path, text: &str, secrets: bool) -> Result<Config, ConfigError> {
    let doc = Located { file: path, text, secrets };
    let raw: FileConfig = toml::from_str(text).map_err(|e| doc.parse_error(&e))?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
    let mut problems = Problems::default();

    let h = raw.helpdesk;
    let name =
        problems.required(&doc, "helpdesk.name", h.name, "the desk's name, as mails show it").unwrap_or_default();
    let tag_rule = "letters, digits, '-' or '_' (it goes into subjects as \"[TAG #123]\")";
    let tag = match problems.required(&doc, "helpdesk.tag", h.tag, tag_rule) {
        Some(written) => {
            let tag = written.trim().to_string();
            if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                problems.push(doc.key_error("helpdesk.tag", format!("expected {tag_rule}, got {written:?}")));
            }
            tag
        }
        None => String::new(),
    };
    let address_rule = "a mail address like support@example.com";
    let address = match problems.required(&doc, "helpdesk.address", h.address, address_rule) {
        Some(a) => problems.take(
            parse_address(&a)
                .ok_or_else(|| doc.key_error("helpdesk.address", format!("expected {address_rule}, got {a:?}"))),
        ),
        None => String::new(),
    };
    let timezone = problems.or(
        jiff::tz::TimeZone::get(&h.timezone).map_err(|e| {
            doc.key_error("helpdesk.timezone", format!("expected an IANA time zone like \"Europe/Berlin\": {e}"))
        }),
        jiff::tz::TimeZone::UTC,
    );
    let mut technicians = Vec::new();
    for (key, list) in [
        ("helpdesk.technicians", &h.technicians),
        ("technicians", &raw.technicians),
        ("smtp.technicians", &raw.smtp.technicians),
    ] {
        for t in list {
            let Some(a) = parse_address(t) else {
                problems.push(doc.key_error(key, format!("expected mail addresses, got {t:?}")));
                continue;
            };
            if !technicians.contains(&a) {
                technicians.push(a);
            }
        }
    }
    let mut admins = Vec::new();
    for a in &h.admins {
        match parse_address(a) {
            Some(a) if !admins.contains(&a) => admins.push(a),
            Some(_) => {}
            None => problems.push(doc.key_error("helpdesk.admins", format!("expected mail addresses, got {a:?}"))),
        }
    }
    if h.alert_after.0 < Duration::from_secs(5) {
        problems.push(doc.key_error("helpdesk.alert_after", "expected at least 5s (10m is a good value)".into()));
    }
    let mut helpdesk = Helpdesk {
        admins,
        alert_after: h.alert_after.0,
        name,
        tag,
        address: address.clone(),
        database: resolve(h.database),
        templates: resolve(h.templates),
        timezone,
        timezone_name: h.timezone,
        technicians,
        reopen_window: h.reopen_window.0,
        cc_watchers: h.cc_watchers,
        comment_address: h.comment_address.as_ref().map(|a| {
            problems.take(parse_address(a).ok_or_else(|| {
                doc.key_error("helpdesk.comment_address", format!("expected a mail address, got {a:?}"))
            }))
        }),
    };

    let oauth = raw.oauth.as_ref().and_then(|f| super::oauth::validate(&doc, &mut problems, "oauth", f, &base));
    let smtp_oauth =
        raw.smtp.oauth.as_ref().and_then(|f| super::oauth::validate(&doc, &mut problems, "smtp.oauth", f, &base));
    if raw.smtp.auth == AuthMethod::Xoauth2 && raw.oauth.is_none() && raw.smtp.oauth.is_none() {
        problems.push(
            doc.key_error("smtp.auth", "\"xoauth2\" needs an [oauth] table saying where tokens come from".into()),
        );
    }
    let imap = super::imap::imap_settings(&doc, &mut problems, "imap", raw.imap, raw.oauth.is_some(), &base);

    let s = raw.smtp;
    let smtp_host =
        problems.required(&doc, "smtp.host", s.host, "the SMTP server's name or address").unwrap_or_default();
    let smtp_port = problems.take(doc.port("smtp.port", s.port, s.security, (465, 587, 25)));
    problems.take(doc.check_security("smtp", &smtp_host, s.security));
    let smtp_password = problems.take(doc.secret(
        "smtp",
        PasswordSource {
            password: &s.password,
            password_file: &s.password_file,
            password_command: &s.password_command,
        },
        &base,
    ));
    if smtp_password.is_some() && s.username.is_none() {
        problems.push(doc.key_error("smtp.username", "a password is set, so a username is needed too".into()));
    }
    if !(1..=16).contains(&s.connections) {
        problems.push(doc.key_error("smtp.connections", format!("expected 1..16, got {}", s.connections)));
    }
    let domain = address.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
    let smtp = Smtp {
        host: smtp_host,
        port: smtp_port,
        security: s.security,
        username: s.username,
        password: smtp_password,
        auth: s.auth,
        oauth: smtp_oauth,
        ca_file: s.ca_file.map(resolve),
        hello_name: s.hello_name.unwrap_or(domain),
        retry_for: s.retry_for.0,
        connections: s.connections as usize,
        timeout: s.timeout.0,
    };
    if let Some(ca) = &smtp.ca_file
        && let Err(e) = std::fs::metadata(ca)
    {
        problems.push(doc.key_error("smtp.ca_file", format!("cannot read {}: {e}", ca.display())));
    }
    let sec = raw.security;
    let mut technician_proof = Vec::new();
    for proof in &sec.technician_proof {
        technician_proof.push(match proof.as_str() {
            "token" => crate::domain::Proof::Token,
            "dmarc" => crate::domain::Proof::Dmarc,
            _ => {
                problems.push(doc.key_error(
                    "security.technician_proof",
                    format!("expected \"token\" and/or \"dmarc\", got {proof:?}"),
                ));
                continue;
            }
        });
    }
    if sec.technician_proof.is_empty() {
        problems.push(doc.key_error(
            "security.technician_proof",
            "expected at least one of \"token\" and \"dmarc\" (otherwise nobody is a technician)".into(),
        ));
    }
    let security = SecurityPolicy {
        technician_proof,
        authserv_id: sec.authserv_id,
        authserv_internal_hops: sec.authserv_internal_hops,
        reply_secret_file: match sec.reply_secret_file {
            Some(f) => match expand_credentials(&f) {
                Ok(f) => Some(resolve(f)),
                Err(e) => {
                    problems.push(doc.key_error("security.reply_secret_file", e));
                    None
                }
            },
            None => None,
        },
    };
    if let (true, Some(f)) = (secrets, &security.reply_secret_file) {
        let len = std::fs::read(f)
            .map(|b| b.len())
            .map_err(|e| doc.key_error("security.reply_secret_file", format!("cannot read {}: {e}", f.display())));
        let len = problems.or(len, 16);
        if len < 16 {
            return Err(doc.key_error(
                "security.reply_secret_file",
                format!("{} holds {len} bytes; use at least 16 random bytes", f.display()),
            ));
        }
    }
    let limit = |key: &str, v: i64| -> Result<u32, ConfigError> {
        u32::try_from(v)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or_else(|| doc.key_error(key, format!("expected a number of at least 1, got {v}")))
    };
    let limits = Limits {
        auto_replies_per_recipient_per_hour: problems
            .take(limit("limits.auto_replies_per_recipient_per_hour", raw.limits.auto_replies_per_recipient_per_hour)),
        auto_replies_per_ticket_per_hour: problems
            .take(limit("limits.auto_replies_per_ticket_per_hour", raw.limits.auto_replies_per_ticket_per_hour)),
        max_message_bytes: problems.take(limit("limits.max_message_mb", raw.limits.max_message_mb)) as usize
            * 1024
            * 1024,
        max_attachments: problems.take(limit("limits.max_attachments", raw.limits.max_attachments)) as usize,
        max_attachment_bytes: problems.take(limit("limits.max_attachment_mb", raw.limits.max_attachment_mb)) as usize
            * 1024
            * 1024,
        max_forward_bytes: problems.take(limit("limits.forward_attachments_mb", raw.limits.forward_attachments_mb))
            as usize
            * 1024
            * 1024,
        max_watchers_per_message: problems
            .take(limit("limits.max_watchers_per_message", raw.limits.max_watchers_per_message))
            as usize,
        max_watchers_per_ticket: problems
            .take(limit("limits.max_watchers_per_ticket", raw.limits.max_watchers_per_ticket))
            as usize,
    };
    let retention = Retention {
        drop_raw_after: raw.retention.drop_raw_after.map(|d| d.0),
        delete_after: raw.retention.delete_after.map(|d| d.0),
    };
    for (key, after) in
        [("retention.drop_raw_after", retention.drop_raw_after), ("retention.delete_after", retention.delete_after)]
    {
        if after.is_some_and(|d| d < Duration::from_secs(86_400)) {
            problems.push(
                doc.key_error(key, "expected at least 1d: retention counts days since a ticket was closed".into()),
            );
        }
    }
    if let (Some(drop), Some(delete)) = (retention.drop_raw_after, retention.delete_after)
        && delete <= drop
    {
        problems.push(doc.key_error(
            "retention.delete_after",
            "expected longer than retention.drop_raw_after (a ticket is deleted whole after its raw bytes went)".into(),
        ));
    }
    let metrics_listen = match raw.metrics.listen.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => problems.take(l.parse::<std::net::SocketAddr>().map(Some).map_err(|_| {
            doc.key_error("metrics.listen", format!("expected an address and port like \"127.0.0.1:9464\", got {l:?}"))
        })),
    };
    // Files the SLA policy names (holiday calendars), relative to the config's folder.
    let read_file = |f: &Path| {
        let path = resolve(f.to_path_buf());
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let sla = crate::sla::policy::build(
        raw.calendars,
        raw.sla,
        raw.priority,
        &helpdesk.timezone,
        &read_file,
        &parse_duration,
    )
    .map_err(|(key, message)| doc.key_error(&key, message));
    // The SLA policy has no stand-in: it is the last check, and every problem found so far
    // is reported with its own.
    let sla = problems.or(sla.map(Some), None);
    let service_names: Vec<String> = raw.services.iter().map(|s| s.name.clone().unwrap_or_default()).collect();
    let template_names: Vec<String> = raw.request_templates.keys().cloned().collect();
    let (queues, routing) = super::queues::validate(
        &doc,
        &mut problems,
        raw.queues,
        raw.routing,
        &mut helpdesk,
        super::queues::Desk {
            imap: &imap,
            oauth: oauth.as_ref(),
            sla: sla.as_ref(),
            base: &base,
            services: &service_names,
            request_templates: &template_names,
        },
    );
    let services = super::itsm::services(&doc, &mut problems, raw.services, &queues, sla.as_ref());
    let changes = raw.changes.and_then(|c| super::itsm::approvals(&doc, &mut problems, "changes", c));
    let types = super::itsm::types(&doc, &mut problems, raw.types, sla.as_ref(), &base);
    let request_templates = super::itsm::request_templates(&doc, &mut problems, raw.request_templates, &queues);
    let macros = super::queues::macros(&doc, &mut problems, raw.macros);
    let digests = digests(&doc, &mut problems, raw.digests);
    problems.finish()?;
    let Some(sla) = sla else { return Err(doc.key_error("sla", "invalid".into())) };
    Ok(Config {
        source: path.to_path_buf(),
        helpdesk,
        imap,
        smtp,
        security,
        sla,
        limits,
        retention,
        metrics_listen,
        oauth,
        queues,
        routing,
        macros,
        digests,
        services,
        changes,
        types,
        resolve_linked_incidents: raw.problems.resolve_incidents,
        request_templates,
    })
}

/// `[digests]`: "HH:MM" and "DAY HH:MM" read into minutes and weekdays.
fn digests(doc: &Located<'_>, problems: &mut Problems, d: super::file::FileDigests) -> Digests {
    let clock = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let daily = d.daily.as_deref().and_then(|t| {
        let c = clock(t);
        if c.is_none() {
            problems.push(doc.key_error("digests.daily", format!("expected a time like \"08:00\", got {t:?}")));
        }
        c
    });
    let weekly = d.weekly.as_deref().and_then(|t| {
        use jiff::civil::Weekday::*;
        let parsed = t.trim().split_once(' ').and_then(|(day, time)| {
            let day = match day.to_ascii_lowercase().as_str() {
                "mon" | "monday" => Monday,
                "tue" | "tuesday" => Tuesday,
                "wed" | "wednesday" => Wednesday,
                "thu" | "thursday" => Thursday,
                "fri" | "friday" => Friday,
                "sat" | "saturday" => Saturday,
                "sun" | "sunday" => Sunday,
                _ => return None,
            };
            Some((day, clock(time)?))
        });
        if parsed.is_none() {
            problems.push(
                doc.key_error("digests.weekly", format!("expected a day and time like \"mon 08:00\", got {t:?}")),
            );
        }
        parsed
    });
    let mut weekly_to = Vec::new();
    for a in &d.weekly_to {
        match parse_address(a) {
            Some(a) => weekly_to.push(a),
            None => problems.push(doc.key_error("digests.weekly_to", format!("expected mail addresses, got {a:?}"))),
        }
    }
    Digests { daily, weekly, waiting_after: d.waiting_after.0, weekly_to }
}
