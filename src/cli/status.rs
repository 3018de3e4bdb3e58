//! `maildesk status`: health at a glance.

use std::io::Write;

use super::{json_out, local};
use crate::config::Config;
use crate::store::{self, read};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    pub json: bool,
}

pub fn execute(args: &Args, config: &Config, out: &mut dyn Write) -> anyhow::Result<()> {
    let Args { json } = args;
    let conn = store::open_existing(&config.helpdesk.database)?;
    let s = read::status(&conn)?;
    let logins = logins(&conn, config)?;
    let watched = watched(&conn, config)?;
    let queues = queues(&conn, config, &s)?;
    // Changes waiting for approvers (through the partial index of pending approvals).
    let (waiting, oldest): (i64, Option<i64>) = conn.query_row(
        "SELECT count(*), min(approval_asked_at) FROM tickets WHERE approval = 'pending' AND approval_asked_at IS NOT NULL",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if *json {
        let mut v = serde_json::to_value(&s)?;
        v["logins"] = serde_json::to_value(&logins)?;
        v["watched"] = serde_json::to_value(&watched)?;
        v["queues"] = serde_json::to_value(&queues)?;
        v["changes_awaiting_approval"] =
            serde_json::json!({ "count": waiting, "oldest_asked_at": oldest.map(crate::domain::rfc3339) });
        return json_out(out, &v);
    }
    let t = &s.tickets;
    writeln!(out, "messages ingested  {}", s.messages_ingested)?;
    writeln!(
        out,
        "tickets            open {}  pending {}  resolved {}  closed {}",
        t.open, t.pending, t.resolved, t.closed
    )?;
    writeln!(out, "automatic tickets  {} (maildesk tickets --automatic)", s.automatic_tickets)?;
    writeln!(
        out,
        "outbox             pending {}  sent {}  failed {}",
        s.outbox.pending, s.outbox.sent, s.outbox.failed
    )?;
    writeln!(out, "quarantined        {}", s.quarantined)?;
    if let Some(o) = oldest {
        writeln!(
            out,
            "awaiting approval  {waiting} change(s), the oldest asked {}",
            local(config, &crate::domain::rfc3339(o))
        )?;
    }
    for m in &s.mailboxes {
        writeln!(out, "mailbox            {}  uidvalidity {}  last uid {}", m.mailbox, m.uid_validity, m.last_uid)?;
    }
    let when = |t: &Option<String>| t.as_deref().map(|t| local(config, t)).unwrap_or_else(|| "never".into());
    writeln!(out, "last IMAP contact  {}", when(&s.last_imap_ok))?;
    if watched.len() > 1 {
        for w in &watched {
            writeln!(out, "watching           {} (queue {}): last sync {}", w.mailbox, w.queue, when(&w.last_ok))?;
            if let Some(e) = &w.error {
                writeln!(out, "  FAILING          {}", super::terminal_safe(e))?;
            }
        }
    }
    if queues.len() > 1 || queues.iter().any(|q| q.assign != "none") {
        for q in &queues {
            let away = if q.away.is_empty() { String::new() } else { format!("  away: {}", q.away.join(", ")) };
            writeln!(
                out,
                "queue {:<12} open {}  pending {}  team {}  assign {}{away}",
                q.name,
                q.open,
                q.pending,
                q.team.len(),
                q.assign
            )?;
        }
    }
    writeln!(out, "last SMTP success  {}", when(&s.last_smtp_ok))?;
    for l in &logins {
        let state = match (&l.failing_since, l.last_ok.as_ref()) {
            (Some(since), _) => format!("FAILING since {}", local(config, since)),
            (None, Some(ok)) => format!("ok (last {})", local(config, ok)),
            (None, None) => "not tried yet".into(),
        };
        writeln!(out, "{:<18} {state}", format!("{} login", l.server))?;
        if let Some(t) = &l.token_expires_at {
            writeln!(out, "  token expires    {}", local(config, t))?;
        }
        if let Some(e) = l.last_error.as_deref().filter(|_| l.failing_since.is_some()) {
            writeln!(out, "  last error       {e}")?;
        }
        if l.admins_told {
            let waiting = if l.alert_waiting { " (the mail waits in the outbox: SMTP is not working)" } else { "" };
            writeln!(out, "  admins told      yes{waiting}")?;
        }
        if let Some(hint) = &l.sign_in {
            writeln!(out, "  sign-in          {hint}")?;
        }
    }
    if let Some(r) = &s.retention_last_run {
        let n = |k: &str| r[k].as_i64().unwrap_or(0);
        writeln!(
            out,
            "last retention     {}: {} tickets lost their originals ({:.1} MB), {} tickets deleted",
            when(&r["at"].as_str().map(String::from)),
            n("raw_dropped_tickets"),
            n("raw_dropped_bytes") as f64 / 1e6,
            n("deleted_tickets")
        )?;
    }
    Ok(())
}

/// One watched mailbox, as `status` shows it.
#[derive(serde::Serialize)]
struct Watched {
    mailbox: String,
    queue: String,
    last_ok: Option<String>,
    /// The error that ended its last session, when that came after its last sync.
    error: Option<String>,
}

fn watched(conn: &rusqlite::Connection, config: &Config) -> anyhow::Result<Vec<Watched>> {
    let mut all = Vec::new();
    for m in config.mailboxes() {
        let last_ok =
            store::get_meta(conn, &crate::inbound::imap::last_ok_key(&m))?.and_then(|t| t.parse::<i64>().ok());
        let error: Option<serde_json::Value> =
            store::get_meta(conn, &crate::inbound::imap::error_key(&m))?.and_then(|v| serde_json::from_str(&v).ok());
        let error = error
            .filter(|e| e["at"].as_i64().unwrap_or(0) >= last_ok.unwrap_or(0))
            .and_then(|e| e["error"].as_str().map(String::from));
        all.push(Watched {
            mailbox: m.label.clone(),
            queue: config.queues[m.home].name.clone(),
            last_ok: last_ok.map(crate::domain::rfc3339),
            error,
        });
    }
    Ok(all)
}

/// One queue, as `status` shows it.
#[derive(serde::Serialize)]
struct QueueStatus {
    name: String,
    open: i64,
    pending: i64,
    team: Vec<String>,
    lead: Option<String>,
    assign: &'static str,
    /// Team members away now.
    away: Vec<String>,
}

fn queues(conn: &rusqlite::Connection, config: &Config, s: &read::Status) -> anyhow::Result<Vec<QueueStatus>> {
    let now = store::now();
    // Per queue, open and pending. One queue holds every ticket: the counters say it at once
    // (grouping a million tickets is what `status` must not do on every call).
    let mut counts = vec![(0i64, 0i64); config.queues.len()];
    if config.queues.len() == 1 {
        counts[0] = (s.tickets.open, s.tickets.pending);
    } else {
        let mut stmt = conn.prepare(
            "SELECT queue, status, count(*) FROM tickets WHERE status IN ('open', 'pending') GROUP BY queue, status",
        )?;
        let rows =
            stmt.query_map([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
        for row in rows {
            let (queue, status, n) = row?;
            // Tickets from before queues, and of queues since removed, are the first queue's.
            let (i, _) = config.queue(queue.as_deref());
            if status == "open" { counts[i].0 += n } else { counts[i].1 += n }
        }
    }
    let mut all = Vec::new();
    for (q, (open, pending)) in config.queues.iter().zip(counts) {
        all.push(QueueStatus {
            name: q.name.clone(),
            open,
            pending,
            team: q.team.clone(),
            lead: q.lead.clone(),
            assign: q.assign.as_str(),
            away: crate::store::write::away(conn, &q.team, now)?,
        });
    }
    Ok(all)
}

/// One server's login, as `status` shows it.
#[derive(serde::Serialize)]
struct LoginStatus {
    server: String,
    method: &'static str,
    failing_since: Option<String>,
    last_ok: Option<String>,
    last_error: Option<String>,
    token_expires_at: Option<String>,
    admins_told: bool,
    /// The admins' alert is queued but not sent (SMTP itself fails).
    alert_waiting: bool,
    /// For a device login: whether a sign-in is stored.
    sign_in: Option<String>,
}

fn logins(conn: &rusqlite::Connection, config: &Config) -> anyhow::Result<Vec<LoginStatus>> {
    use crate::outbound::login_alerts::{Server, load};
    let rfc = |t: Option<i64>| t.and_then(|t| jiff::Timestamp::from_second(t).ok()).map(|t| t.to_string());
    let waiting: i64 = conn.query_row(
        "SELECT count(*) FROM outbox o JOIN messages m ON m.id = o.message_id
         WHERE o.status = 'pending' AND m.kind = 'login-failing'",
        [],
        |r| r.get(0),
    )?;
    let mut all = Vec::new();
    for server in Server::all(config) {
        let l = load(conn, &server)?;
        let own = |queue: &str| {
            config.queues.iter().find(|q| q.name == queue).and_then(|q| match &q.mailbox {
                crate::config::QueueMailbox::Own { imap, oauth } => {
                    Some((imap.auth, oauth.as_ref().or(config.oauth.as_ref())))
                }
                _ => None,
            })
        };
        let (auth, oauth) = match &server {
            Server::Imap => (config.imap.auth, config.oauth.as_ref()),
            Server::Smtp => (config.smtp.auth, config.smtp_oauth()),
            Server::QueueImap { queue } => own(queue).unwrap_or((crate::config::AuthMethod::Password, None)),
        };
        let xoauth2 = auth == crate::config::AuthMethod::Xoauth2;
        let sign_in = match oauth.filter(|_| xoauth2) {
            Some(o) if o.grant.flow() == "device_code" => {
                let key = |k: &str| format!("oauth:{}:{k}", o.table);
                Some(match store::get_meta(conn, &key("refreshed_at"))?.and_then(|t| t.parse::<i64>().ok()) {
                    Some(at) => format!("stored, last renewed {}", local(config, &rfc(Some(at)).unwrap_or_default())),
                    None => "none stored: run `maildesk oauth login`".into(),
                })
            }
            _ => None,
        };
        all.push(LoginStatus {
            server: server.name(),
            method: if xoauth2 { "xoauth2" } else { "password" },
            failing_since: rfc(l.failing_since),
            last_ok: rfc(l.last_ok),
            last_error: l.last_error.clone(),
            token_expires_at: rfc(l.token_expires_at.filter(|_| xoauth2)),
            admins_told: l.alerted,
            alert_waiting: l.alerted && waiting > 0,
            sign_in,
        });
    }
    Ok(all)
}
