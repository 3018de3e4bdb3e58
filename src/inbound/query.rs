//! Queries by mail: a technician writes `#mine`, `#open [queue]`, `#overdue`, `#find WORDS` or
//! `#show N` to their query address (the `Reply-To` of their digests, `support+q-<token>@`) or, with
//! a trusted DMARC pass, to `support+ask@`, and gets the answer by mail. Only a verified technician
//! is answered; anyone else's mail to those addresses is recorded and answered by nobody (an answer
//! would show tickets to whoever forged the sender). Never a ticket.

use rusqlite::Connection;

use super::apply::{Outcome, Received};
use crate::desk::Desk;
use crate::domain::{Proof, TicketStatus};
use crate::message::parse::Inbound;
use crate::outbound::deskmail::{self, DeskMail};
use crate::store::{StoreError, read};
use crate::templates::Rendered;

/// Whether `msg` was sent to a query address of this desk (anyone's) or to `support+ask@`.
pub(super) fn is_query(desk: &Desk<'_>, msg: &Inbound) -> bool {
    let ask = desk.plus_address("ask");
    // Anyone's query address: `support+q-<token>@domain`.
    let (prefix, suffix) =
        desk.plus_address("q-").split_once('@').map(|(l, d)| (l.to_string(), format!("@{d}"))).unwrap_or_default();
    msg.recipients.iter().any(|r| {
        let r = r.to_ascii_lowercase();
        r == ask || (r.starts_with(&prefix) && r.ends_with(&suffix))
    })
}

/// Whether the sender is a technician who proved it for a query.
fn verified(desk: &Desk<'_>, msg: &Inbound) -> Option<String> {
    let from = msg.from.as_ref()?.address.clone();
    let c = desk.config;
    if !c.helpdesk.technicians.contains(&from) {
        return None;
    }
    let accepts = |p: Proof| c.security.technician_proof.contains(&p);
    if accepts(Proof::Token)
        && crate::auth::verify_query_address(desk.reply_secret, &c.helpdesk.address, &msg.recipients, &from)
    {
        return Some(from);
    }
    if let (true, Some(id)) = (accepts(Proof::Dmarc), &c.security.authserv_id) {
        let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if crate::auth::dmarc_pass(&msg.authentication_results, id, c.security.authserv_internal_hops, domain) {
            return Some(from);
        }
    }
    None
}

/// Records a query and, for a verified technician, queues the answer in the same transaction.
pub(super) fn record(
    conn: &Connection,
    desk: &Desk<'_>,
    received: &Received<'_>,
    now: i64,
) -> Result<Outcome, StoreError> {
    let &Received { msg, visible, digest, .. } = received;
    let technician = verified(desk, msg);
    // An out-of-office answering a digest asks nothing.
    let automatic = crate::message::classify::suppress_auto_reply(msg, &desk.addresses()).is_some();
    let kind = match (&technician, automatic) {
        (Some(_), false) => "query",
        _ => "query-refused",
    };
    received.store(conn, None, (kind, true), visible, now)?;
    let Some(technician) = technician.filter(|_| !automatic) else {
        tracing::warn!(from = ?msg.from.as_ref().map(|f| &f.address), "a query from someone not verified as a technician: recorded, not answered");
        return Ok(Outcome::Query { answered: false });
    };
    let (title, text) = answer(conn, desk, &technician, visible, now)?;
    let h = &desk.config.helpdesk;
    let rendered = Rendered { subject: format!("[{}] {title}", h.tag), text, html: None };
    let reply_to = crate::auth::query_address(desk.reply_secret, &h.address, &technician);
    let key = digest.get(..16).unwrap_or(digest).to_string();
    let mail = DeskMail {
        kind: "query-answer",
        to: std::slice::from_ref(&technician),
        reply_to: Some(&reply_to),
        key: &key,
        in_reply_to: Some(&msg.message_id),
        rendered: &rendered,
        auto_submitted: "auto-replied",
    };
    let answered = deskmail::queue(conn, desk.config, &mail, now)?;
    Ok(Outcome::Query { answered })
}

/// What `#show` adds for IT service management: type, service, a change's approval, the links.
fn itsm_lines(v: &read::TicketView, tag: &dyn Fn(i64) -> String) -> String {
    let t = &v.ticket;
    let mut out = String::new();
    if let Some(ty) = t.ticket_type {
        out.push_str(&format!("type {ty}"));
    }
    if let Some(s) = &t.service {
        out.push_str(&format!("{}service {s}", if out.is_empty() { "" } else { ", " }));
    }
    if let Some(a) = t.approval {
        out.push_str(&format!("{}change version {}: {a}", if out.is_empty() { "" } else { ", " }, t.change_version));
    }
    if let Some(p) = t.problem {
        out.push_str(&format!("{}linked to problem {}", if out.is_empty() { "" } else { ", " }, tag(p)));
    }
    if let Some(p) = t.parent {
        out.push_str(&format!("{}task of request {}", if out.is_empty() { "" } else { ", " }, tag(p)));
    }
    let progress = |what: &str, items: &[crate::store::itsm::Linked]| {
        let done = items.iter().filter(|i| i.status.is_done()).count();
        format!(
            "\n{what}: {done} of {} done ({})",
            items.len(),
            items.iter().map(|i| tag(i.id)).collect::<Vec<_>>().join(", ")
        )
    };
    if !v.incidents.is_empty() {
        out.push_str(&progress("linked incidents", &v.incidents));
    }
    if !v.tasks.is_empty() {
        out.push_str(&progress("tasks", &v.tasks));
    }
    if out.is_empty() { out } else { format!("{}\n", out.trim_start_matches('\n')) }
}

/// The query on the first line of `text` and its answer: (a subject naming the query, the text).
fn answer(
    conn: &Connection,
    desk: &Desk<'_>,
    technician: &str,
    text: &str,
    now: i64,
) -> Result<(String, String), StoreError> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let mut words = line.split_whitespace();
    let command = words.next().unwrap_or("").to_ascii_lowercase();
    let rest: Vec<&str> = words.collect();
    let c = desk.config;
    let tag = |id: i64| crate::threading::format_tag(&c.helpdesk.tag, id);
    let tz = &c.helpdesk.timezone;
    let list = |lines: &[read::TicketSummary]| -> String {
        lines
            .iter()
            .map(|t| {
                format!(
                    "{} {}  [{}, {}, {}{}]\n",
                    tag(t.id),
                    t.subject,
                    t.status,
                    t.priority,
                    c.queue(t.queue.as_deref()).1.name,
                    t.assignee.as_deref().map(|a| format!(", {a}")).unwrap_or_default()
                )
            })
            .collect()
    };
    let first = &c.queues[0].name;
    let filter = |status: Option<TicketStatus>| read::TicketFilter { status, first_queue: first, ..Default::default() };
    let page = read::Page { limit: Some(50), offset: 0 };
    Ok(match command.as_str() {
        "#mine" => {
            let mine = crate::store::digest::assigned(conn, technician)?;
            let more = mine.len().saturating_sub(100);
            let mut body: String = mine
                .iter()
                .take(100)
                .map(|l| {
                    let due = l.due_at_secs.map(|d| format!(", due {}", crate::templates::local_time(tz, Some(d)))).unwrap_or_default();
                    format!("{} {}  [{}, {}{due}]\n", tag(l.id), l.subject, l.status, l.priority)
                })
                .collect();
            if more > 0 {
                body.push_str(&format!("... and {more} more (maildesk tickets --assignee lists them all)\n"));
            }
            (format!("#mine: {} open ticket(s)", mine.len()), if body.is_empty() { "Nothing is assigned to you.\n".into() } else { body })
        }
        "#open" => {
            let queue = rest.first().map(|q| q.to_ascii_lowercase());
            if let Some(q) = queue.as_ref().filter(|q| !c.queues.iter().any(|x| &x.name == *q)) {
                let names: Vec<&str> = c.queues.iter().map(|q| q.name.as_str()).collect();
                return Ok((format!("#open {q}: no such queue"), format!("The queues are: {}\n", names.join(", "))));
            }
            let mut open = read::tickets(conn, read::TicketFilter { queue: queue.as_deref(), ..filter(Some(TicketStatus::Open)) }, page)?;
            open.extend(read::tickets(conn, read::TicketFilter { queue: queue.as_deref(), ..filter(Some(TicketStatus::Pending)) }, page)?);
            open.sort_by_key(|t| t.id);
            let title = format!("#open{}: {} ticket(s)", queue.map(|q| format!(" {q}")).unwrap_or_default(), open.len());
            (title, if open.is_empty() { "No open tickets.\n".into() } else { list(&open) })
        }
        "#overdue" => {
            let late = read::tickets(conn, read::TicketFilter { overdue_at: Some(now), ..filter(None) }, page)?;
            (format!("#overdue: {} ticket(s)", late.len()), if late.is_empty() { "Nothing is overdue.\n".into() } else { list(&late) })
        }
        "#find" if !rest.is_empty() => {
            let words = rest.join(" ");
            let (hits, _) = read::search(conn, &words, 20)?;
            let body: String = hits
                .iter()
                .map(|h| {
                    format!(
                        "{} {}\n    {}\n",
                        h.ticket.map(tag).unwrap_or_default(),
                        h.subject,
                        h.snippet.replace('\n', " ")
                    )
                })
                .collect();
            (format!("#find {words}: {} message(s)", hits.len()), if body.is_empty() { "Nothing found.\n".into() } else { body })
        }
        "#show" => match rest.first().and_then(|n| n.trim_start_matches('#').parse::<i64>().ok()) {
            Some(n) => match read::ticket(conn, n)? {
                Some(v) => {
                    let t = &v.ticket;
                    let mut body = format!(
                        "{} {}\nstatus {}, priority {}, queue {}, requester {}, assignee {}\n\n",
                        tag(t.id),
                        t.subject,
                        t.status,
                        t.priority,
                        c.queue(t.queue.as_deref()).1.name,
                        t.requester.as_deref().unwrap_or("-"),
                        t.assignee.as_deref().unwrap_or("-")
                    );
                    body.insert_str(body.len() - 1, &itsm_lines(&v, &tag));
                    let inbound: Vec<_> =
                        v.messages.iter().filter(|m| m.direction == crate::domain::Direction::In).collect();
                    for m in &inbound[inbound.len().saturating_sub(5)..] {
                        body.push_str(&format!(
                            "--- {} {} ({})\n{}\n\n",
                            m.from.as_deref().unwrap_or("-"),
                            crate::templates::local_time(tz, m.date.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())),
                            m.kind,
                            m.text.trim()
                        ));
                    }
                    (format!("#show {n}: {}", t.subject), body)
                }
                None => (format!("#show {n}: no such ticket"), format!("There is no ticket {n}.\n")),
            },
            None => ("#show: which ticket?".into(), "Write #show and a ticket number, like #show 42.\n".into()),
        },
        _ => (
            "queries".into(),
            "Write one of these on the first line:\n\n  #mine             your open tickets\n  #open [queue]     open tickets (of one queue)\n  #overdue          tickets past a due time\n  #find WORDS       messages with these words\n  #show N           ticket N\n".into(),
        ),
    })
}
