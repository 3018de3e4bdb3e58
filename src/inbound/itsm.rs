//! What IT service management adds once a message's updates are written, in the same
//! transaction: a change submitted asks its approvers; a request template spawns its tasks; a
//! task done moves its request on (and the last one resolves it, with one mail to the requester);
//! a problem resolved tells, and may resolve, its linked incidents.

use rusqlite::Connection;

use crate::domain::{EventKind, TicketStatus, TicketType};
use crate::outbound::composer::Composer;
use crate::outbound::itsm as mails;
use crate::store::itsm::{self, Linked};
use crate::store::{StoreError, write};
use crate::tickets::Update;

/// What happened to the ticket in this message, as far as the follow-ups care.
pub(super) struct Happened<'a> {
    pub(super) ticket: i64,
    pub(super) updates: &'a [Update],
    /// A new ticket's request template (by rule or subject).
    pub(super) template: Option<&'a str>,
    /// The status before the message.
    pub(super) was: Option<TicketStatus>,
    /// What the message said (a revision's notes, a problem's fix), relayed in the mails.
    pub(super) text: &'a str,
    pub(super) actor: &'a str,
}

/// Carries out the follow-ups; returns how many mails they queued.
pub(super) fn follow(
    conn: &Connection,
    composer: &mut Composer<'_>,
    h: &Happened<'_>,
    now: i64,
) -> Result<usize, StoreError> {
    let mut queued = 0;
    let ticket = h.ticket;
    if h.updates.contains(&Update::SubmitChange) {
        queued += ask_approvers(conn, composer, ticket, h.text, now)?;
    }
    let template = h.updates.iter().find_map(|u| match u {
        Update::Template(n) => Some(n.as_str()),
        _ => None,
    });
    if let Some(name) = template.or(h.template) {
        queued += spawn(conn, composer, ticket, name, h.text, now)?;
    }
    // A problem opened from this incident: its team hears of it (and gets its reply address).
    if h.updates.contains(&Update::LinkProblem(None))
        && let (Some(problem), _) = itsm::links_up(conn, ticket)?
    {
        crate::store::sla::refresh(conn, composer.desk().config, problem, now)?;
        queued += mails::queue_team_notifications(conn, composer, problem, h.text, now)?;
    }
    // Only a status update can finish a ticket: without one there is nothing to read.
    if !h.updates.iter().any(|u| matches!(u, Update::Status(_))) {
        return Ok(queued);
    }
    let status: TicketStatus =
        conn.prepare_cached("SELECT status FROM tickets WHERE id = ?1")?.query_row([ticket], |r| r.get(0))?;
    let done_now = status.is_done() && h.was.is_some_and(|w| !w.is_done());
    if done_now {
        queued += task_done(conn, composer, ticket, now)?;
        let ticket_type: Option<TicketType> =
            conn.prepare_cached("SELECT type FROM tickets WHERE id = ?1")?.query_row([ticket], |r| r.get(0))?;
        if ticket_type == Some(TicketType::Problem) && status == TicketStatus::Resolved {
            queued += problem_solved(conn, composer, ticket, h.text, h.actor, now)?;
        }
    }
    Ok(queued)
}

/// The approvers of the change's service are asked for its current version.
fn ask_approvers(
    conn: &Connection,
    composer: &mut Composer<'_>,
    ticket: i64,
    text: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let desk = composer.desk();
    let service = itsm::change(conn, ticket)?.and_then(|c| c.service);
    let Some(approvals) = desk.config.approvals_for(service.as_deref()) else { return Ok(0) };
    let approvers = approvals.approvers.clone();
    write::insert_event(
        conn,
        Some(ticket),
        now,
        "maildesk",
        EventKind::ChangeSubmitted,
        &format!("approval asked of {} ({} required)", approvers.join(", "), approvals.required),
    )?;
    mails::queue_approval_requests(conn, composer, ticket, &approvers, text, false, now)
}

/// The request template's tasks become tickets in their queues, each told to its team.
fn spawn(
    conn: &Connection,
    composer: &mut Composer<'_>,
    parent: i64,
    name: &str,
    text: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let desk = composer.desk();
    let Some(template) = desk.config.request_template(name) else { return Ok(0) };
    // A template is followed once: a second #template adds nothing already there.
    if !itsm::tasks_of(conn, parent)?.is_empty() {
        write::insert_event(
            conn,
            Some(parent),
            now,
            "maildesk",
            EventKind::Task,
            &format!("template {name}: tasks exist already; none added"),
        )?;
        return Ok(0);
    }
    let mut queued = 0;
    let mut made = Vec::new();
    for task in &template.tasks {
        let id = itsm::open_task(conn, parent, &task.queue, &task.title, now)?;
        write::insert_event(
            conn,
            Some(id),
            now,
            "maildesk",
            EventKind::Opened,
            &format!("task of request {parent} (template {name})"),
        )?;
        crate::store::sla::refresh(conn, desk.config, id, now)?;
        queued += mails::queue_team_notifications(conn, composer, id, text, now)?;
        made.push(format!("{id} {} (queue {})", task.title, task.queue));
    }
    write::insert_event(
        conn,
        Some(parent),
        now,
        "maildesk",
        EventKind::Task,
        &format!("template {name}: {} task(s) opened: {}", made.len(), made.join("; ")),
    )?;
    Ok(queued)
}

/// A task is done: its request's progress, and the request resolved once every task is.
fn task_done(conn: &Connection, composer: &mut Composer<'_>, task: i64, now: i64) -> Result<usize, StoreError> {
    let (_, parent) = itsm::links_up(conn, task)?;
    let Some(parent) = parent else { return Ok(0) };
    let tasks = itsm::tasks_of(conn, parent)?;
    let done = tasks.iter().filter(|t| t.status.is_done()).count();
    write::insert_event(
        conn,
        Some(parent),
        now,
        "maildesk",
        EventKind::Task,
        &format!("task {task} done: {done} of {} done", tasks.len()),
    )?;
    let parent_status: TicketStatus =
        conn.prepare_cached("SELECT status FROM tickets WHERE id = ?1")?.query_row([parent], |r| r.get(0))?;
    if done < tasks.len() || parent_status.is_done() {
        return Ok(0);
    }
    write::apply_updates(conn, parent, &[Update::Status(TicketStatus::Resolved)], "maildesk", now)?;
    write::insert_event(
        conn,
        Some(parent),
        now,
        "maildesk",
        EventKind::LinkedResolved,
        "every task is done: the request is resolved",
    )?;
    crate::store::sla::refresh(conn, composer.desk().config, parent, now)?;
    mails::queue_request_done(conn, composer, parent, &tasks, now)
}

/// A problem is resolved: each open linked incident's requester is told (and the incident
/// resolved, unless `[problems] resolve_incidents = false`).
fn problem_solved(
    conn: &Connection,
    composer: &mut Composer<'_>,
    problem: i64,
    text: &str,
    actor: &str,
    now: i64,
) -> Result<usize, StoreError> {
    let config = composer.desk().config;
    let subject: String =
        conn.prepare_cached("SELECT subject FROM tickets WHERE id = ?1")?.query_row([problem], |r| r.get(0))?;
    let this = Linked { id: problem, subject, status: TicketStatus::Resolved, requester: None };
    let mut queued = 0;
    let mut resolved = Vec::new();
    for incident in itsm::incidents_of(conn, problem)?.into_iter().filter(|i| !i.status.is_done()) {
        if config.resolve_linked_incidents {
            write::apply_updates(conn, incident.id, &[Update::Status(TicketStatus::Resolved)], actor, now)?;
            write::insert_event(
                conn,
                Some(incident.id),
                now,
                "maildesk",
                EventKind::LinkedResolved,
                &format!("resolved with problem {problem}"),
            )?;
            crate::store::sla::refresh(conn, config, incident.id, now)?;
        }
        queued += mails::queue_problem_resolved(conn, composer, &incident, &this, text, now)?;
        resolved.push(incident.id.to_string());
    }
    if !resolved.is_empty() {
        let what =
            if config.resolve_linked_incidents { "resolved and their requesters told" } else { "requesters told" };
        write::insert_event(
            conn,
            Some(problem),
            now,
            "maildesk",
            EventKind::LinkedResolved,
            &format!("linked incidents {}: {what}", resolved.join(", ")),
        )?;
    }
    Ok(queued)
}
