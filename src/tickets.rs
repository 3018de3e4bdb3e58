//! What a message does to the tickets: the pure decision, before anything is written.
//!
//! [`plan`] takes the parsed message, its visible text, the threading decision, the ticket as it
//! stands, who sent it and the auto-reply verdict, and returns a [`Plan`]: open a ticket or add to one,
//! the changes to make, the mails to send (as intents, rendered later) and the events to record. The
//! store carries the plan out in one transaction, so what is decided here and what is written there
//! can never disagree halfway.
//!
//! Rules worth knowing (also in the README):
//! * a requester's reply to a `resolved` or `pending` ticket reopens it; so does a reply to a `closed`
//!   ticket within `reopen_window`; after that window it opens a new ticket that refers to the old;
//! * automatic mail (out-of-office, bulk) is attached to its ticket but reopens nothing and notifies
//!   nobody;
//! * a technician's commands apply only to an existing ticket and only all together;
//! * the first technician reply relayed to the requester sets the first-response time.

use crate::commands::{self, Command, CommandError};
use crate::domain::EventKind;
use crate::message::classify::Suppression;
use crate::message::parse::{Inbound, Mailbox};
use crate::threading::{Thread, ThreadedBy};

use crate::domain::{Priority, TicketStatus};

/// An existing ticket as the planner needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketState {
    pub id: i64,
    pub status: TicketStatus,
    pub requester: Option<String>,
    pub assignee: Option<String>,
    pub watchers: Vec<String>,
    pub closed_at: Option<i64>,
    pub first_response_at: Option<i64>,
    /// Opened by machine mail (see [`Target::Open`]): no SLA clock, nobody notified, until a person
    /// writes on it or a technician promotes it.
    pub automatic: bool,
    /// Its queue as stored (`None`: from before queues, the first queue).
    pub queue: Option<String>,
    pub itsm: Itsm,
}

/// What IT service management adds to a ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Itsm {
    pub ticket_type: Option<crate::domain::TicketType>,
    pub service: Option<String>,
    /// A change's approval state (`None`: never submitted).
    pub approval: Option<crate::domain::ApprovalState>,
}

/// Who sent the message, as established by `auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Requester,
    /// A verified technician; `note` when the mail went to a note address.
    Technician {
        address: String,
        proof: &'static str,
        note: bool,
    },
    /// On the technicians list but without proof: treated exactly like a requester.
    Unverified {
        address: String,
        reason: String,
    },
}

/// The desk's settings the planner follows.
#[derive(Debug, Clone)]
pub struct Policy<'a> {
    pub desk_addresses: &'a [String],
    /// Every technician: who may be assigned, and who never becomes a watcher.
    pub technicians: &'a [String],
    /// The team of the ticket's queue: who is told.
    pub team: &'a [String],
    /// The team of the queue a new ticket would be routed to.
    pub new_team: &'a [String],
    /// The queues' names, for `#queue`.
    pub queues: &'a [String],
    /// Where `#away until DATE` ends its day.
    pub timezone: &'a jiff::tz::TimeZone,
    /// The canned replies there are (`#reply NAME`).
    pub canned: &'a [String],
    /// The configured macros (`#macro NAME`).
    pub macros: &'a [commands::Macro],
    /// The services' names (`#service NAME`).
    pub services: &'a [String],
    /// Services whose changes need approval; `default_approvals`: every change does (`[changes]`).
    pub approval_services: &'a [String],
    pub default_approvals: bool,
    /// The request templates' names (`#template NAME`).
    pub templates: &'a [String],
    pub reopen_window_secs: i64,
    pub cc_watchers: bool,
    /// Watchers added from one message's Cc, and on one ticket in all.
    pub max_watchers_per_message: usize,
    pub max_watchers_per_ticket: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A new ticket, numbered by the store.
    Open {
        subject: String,
        requester: Option<Mailbox>,
        follow_up_of: Option<i64>,
        /// Machine mail that threads nowhere (an out-of-office, a list post, a report): recorded,
        /// nothing lost, but not a request: no acknowledgement, no technician notification, no SLA
        /// clock. Listed by `maildesk tickets --automatic`; `maildesk promote N` makes it a request.
        automatic: bool,
    },
    Existing(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Status(TicketStatus),
    Priority(Priority),
    Assign(String),
    AddWatcher(String),
    RemoveWatcher(String),
    MergeInto(i64),
    FirstResponse,
    /// The requester's rating of the resolution (the last one counts).
    Rate {
        score: u8,
        comment: String,
        rater: String,
    },
    /// Held mail on the ticket is accepted: its senders become watchers, except these addresses
    /// (technicians and the desk's own, which never become watchers).
    AcceptHeld {
        never: Vec<String>,
    },
    /// An automatic ticket becomes a request: its SLA clock starts now.
    Promote,
    /// The ticket moves to this queue.
    Queue(String),
    /// The technician is away until this time (`None`: until `#back`).
    Away {
        technician: String,
        until: Option<i64>,
    },
    Back {
        technician: String,
    },
    /// The ticket's type.
    Type(crate::domain::TicketType),
    /// The technician spent this many minutes on the ticket.
    Time {
        technician: String,
        minutes: u32,
    },
    /// The ticket's service.
    Service(String),
    /// The change is submitted for approval: a new version, its approvers asked.
    SubmitChange,
    /// Linked to problem N, or (`None`) to a problem opened from this ticket.
    LinkProblem(Option<i64>),
    /// The request template's tasks are spawned as child tickets.
    Template(String),
}

/// How a stored message is labelled in `maildesk show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Reply,
    Automatic,
    TechnicianReply,
    Note,
    Commands,
    RejectedCommands,
    /// A delivery report about mail maildesk sent.
    Bounce,
    /// From someone who is not a participant, threaded by subject tag alone: kept for technicians,
    /// reopening, relaying and subscribing nothing until a technician sends `#accept`.
    Held,
    /// The requester's rating of a resolved ticket.
    Rating,
    /// "status" alone: the requester asks for the state of their tickets (answered, nothing reopened).
    StatusRequest,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Request => "request",
            MessageKind::Reply => "reply",
            MessageKind::Automatic => "automatic",
            MessageKind::TechnicianReply => "technician-reply",
            MessageKind::Note => "note",
            MessageKind::Commands => "commands",
            MessageKind::RejectedCommands => "rejected-commands",
            MessageKind::Bounce => "bounce",
            MessageKind::Held => "held",
            MessageKind::Rating => "rating",
            MessageKind::StatusRequest => "status-request",
        }
    }
}

use crate::domain::MailKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    pub kind: MailKind,
    /// The first is `To`, the rest `Cc` (one message, one envelope per recipient).
    pub to: Vec<Mailbox>,
}

/// Something worth recording on the ticket that is not itself a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub target: Target,
    pub kind: MessageKind,
    /// Technicians only: never relayed to the requester or shown as the requester's conversation.
    pub internal: bool,
    /// The text stored and relayed: the new part, without command lines.
    pub text: String,
    pub updates: Vec<Update>,
    pub mails: Vec<Mail>,
    pub events: Vec<Event>,
    pub rejected: Option<CommandError>,
    /// Something the people mailed about this message should be told (set by the recorder, e.g.
    /// when size limits kept attachments from being stored).
    pub notice: Option<String>,
    /// Which of the message's attachments were stored, by position (set by the recorder; `None`:
    /// none). Only those are forwarded, read back from the stored message when the mail is sent:
    /// limits that stop storage stop forwarding too.
    pub attachments_kept: Option<Vec<usize>>,
    /// A canned reply to render (with the ticket's variables) and put before `text`.
    pub canned: Option<String>,
}

impl Plan {
    /// A plan that adds a message to an existing ticket and, so far, changes and sends nothing.
    pub fn existing(ticket: i64, kind: MessageKind, text: &str) -> Plan {
        Plan {
            target: Target::Existing(ticket),
            kind,
            internal: false,
            text: text.to_string(),
            updates: Vec::new(),
            mails: Vec::new(),
            events: Vec::new(),
            rejected: None,
            notice: None,
            attachments_kept: None,
            canned: None,
        }
    }
}

fn mailbox(address: &str) -> Mailbox {
    Mailbox { name: None, address: address.to_string() }
}

fn event(kind: EventKind, detail: impl Into<String>) -> Event {
    Event { kind, detail: detail.into() }
}

/// What the phases before the plan found out about one inbound message.
#[derive(Clone, Copy)]
pub struct Facts<'a> {
    pub msg: &'a Inbound,
    /// The message's new text (quotes and signatures stripped).
    pub visible: &'a str,
    pub thread: &'a Thread,
    /// Who the sender is, with the proof that decided it.
    pub role: &'a Role,
    /// Why the message must not be answered automatically, if it must not.
    pub suppression: Option<&'a Suppression>,
    /// Whether the sender takes part in the ticket it threads to (requester, watcher, technician,
    /// someone the desk mailed on it).
    pub participant: bool,
}

/// What the planner may ask about tickets a command names (the store answers).
#[derive(Clone, Copy)]
pub struct OtherTickets<'a> {
    /// Whether this message may merge its ticket into ticket N: it exists and the message proves
    /// the right to act on it.
    pub merge: &'a dyn Fn(i64) -> Result<(), String>,
    /// Whether ticket N can be the problem of this ticket: it exists, and is a problem or may become one.
    pub problem: &'a dyn Fn(i64) -> Result<(), String>,
}

/// Decides what one inbound message does. `others` answers for the tickets commands name.
pub fn plan(
    policy: &Policy<'_>,
    facts: &Facts<'_>,
    ticket: Option<&TicketState>,
    others: OtherTickets<'_>,
    now: i64,
) -> Plan {
    let Facts { msg, visible, thread, role, suppression, participant } = *facts;
    let mut events: Vec<Event> = msg.defects.iter().map(|d| event(EventKind::Defect, d.clone())).collect();
    if let Role::Unverified { address, reason } = role {
        events.push(event(
            EventKind::NotVerified,
            format!("{address} is a technician, but this message {reason}; handled as a requester's message"),
        ));
    }
    match (thread, ticket) {
        (Thread::Existing { by, .. }, Some(t)) => {
            let how = match by {
                ThreadedBy::SubjectTag => "subject tag",
                ThreadedBy::InReplyTo => "In-Reply-To",
                ThreadedBy::References => "References",
                ThreadedBy::ReplyAddress => "reply address",
            };
            let stale = t.status == TicketStatus::Closed
                && t.closed_at.is_some_and(|c| now - c > policy.reopen_window_secs)
                && !matches!(role, Role::Technician { .. });
            let machine = suppression.is_some_and(|s| s.automatic);
            if stale && !machine {
                events.push(event(
                    EventKind::FollowUp,
                    format!("reply to ticket {} closed more than the reopen window ago", t.id),
                ));
                return open(msg, visible, Some(t.id), suppression, policy, events);
            }
            events.push(event(EventKind::Threaded, format!("message {} joined by {how}", msg.message_id)));
            if !participant && !matches!(role, Role::Technician { .. }) {
                return held(msg, visible, t, suppression, policy, events);
            }
            match role {
                // A technician's out-of-office answering a notification is automatic mail, not a reply.
                Role::Technician { address, note, .. } if !machine => {
                    technician(policy, facts, t, address, *note, others, events)
                }
                _ => requester_reply(msg, visible, t, suppression, policy, now, events),
            }
        }
        (thread, _) => {
            if let Thread::New { note: Some(note) } = thread {
                events.push(event(EventKind::Threading, note.clone()));
            }
            open(msg, visible, None, suppression, policy, events)
        }
    }
}

fn watchers_from_cc(
    msg: &Inbound,
    policy: &Policy<'_>,
    requester: Option<&str>,
    existing: &[String],
    events: &mut Vec<Event>,
) -> Vec<Update> {
    if !policy.cc_watchers {
        return Vec::new();
    }
    let room = policy.max_watchers_per_ticket.saturating_sub(existing.len()).min(policy.max_watchers_per_message);
    let mut out: Vec<Update> = Vec::new();
    let mut left_out = 0usize;
    let mut seen = std::collections::HashSet::new();
    for cc in &msg.cc {
        let a = &cc.address;
        let excluded = policy.desk_addresses.iter().any(|d| same_mailbox(d, a))
            || policy.technicians.contains(a)
            || requester == Some(a.as_str())
            || existing.contains(a)
            || !seen.insert(a.as_str());
        if excluded {
            continue;
        }
        if out.len() < room {
            out.push(Update::AddWatcher(a.clone()));
        } else {
            left_out += 1;
        }
    }
    if left_out > 0 {
        events.push(event(
            EventKind::WatchersCapped,
            format!(
                "{left_out} Cc address(es) not added as watchers (limits: {} per message, {} per ticket)",
                policy.max_watchers_per_message, policy.max_watchers_per_ticket
            ),
        ));
    }
    out
}

/// `support+t42-x@acme.test` is the support mailbox too.
fn same_mailbox(desk: &str, address: &str) -> bool {
    let strip = |a: &str| match a.rsplit_once('@') {
        Some((l, d)) => format!("{}@{d}", l.split('+').next().unwrap_or(l)),
        None => a.to_string(),
    };
    strip(desk) == strip(address)
}

fn open(
    msg: &Inbound,
    visible: &str,
    follow_up_of: Option<i64>,
    suppression: Option<&Suppression>,
    policy: &Policy<'_>,
    mut events: Vec<Event>,
) -> Plan {
    // The From address only: acknowledging a Reply-To the sender chose would let anyone make the
    // genuine support address mail a third party a subject of their choosing.
    let recipient = msg.from.clone();
    let mut mails = Vec::new();
    match (suppression, recipient) {
        (Some(s), _) => events.push(event(EventKind::AckSuppressed, s.reason.clone())),
        (None, Some(r)) if policy.desk_addresses.iter().any(|d| same_mailbox(d, &r.address)) => {
            events.push(event(EventKind::AckSuppressed, format!("reply address {} is the desk's own", r.address)))
        }
        (None, Some(r)) => mails.push(Mail { kind: MailKind::Acknowledgement, to: vec![r] }),
        (None, None) => events.push(event(EventKind::AckSuppressed, "no sender address to answer")),
    }
    let automatic = suppression.is_some_and(|s| s.automatic);
    if automatic {
        events.push(event(
            EventKind::Automatic,
            "machine mail that threads to no ticket: recorded without notifying anyone or starting an SLA clock \
             (maildesk tickets --automatic; maildesk promote N makes it a request)",
        ));
    } else {
        for t in policy.new_team {
            mails.push(Mail { kind: MailKind::NewTicket, to: vec![mailbox(t)] });
        }
    }
    let subject = if msg.subject.is_empty() { "(no subject)".to_string() } else { msg.subject.clone() };
    let requester = msg.from.as_ref().map(|f| f.address.as_str());
    Plan {
        target: Target::Open { subject, requester: msg.from.clone(), follow_up_of, automatic },
        kind: if automatic { MessageKind::Automatic } else { MessageKind::Request },
        internal: false,
        text: visible.to_string(),
        updates: watchers_from_cc(msg, policy, requester, &[], &mut events),
        mails,
        events,
        rejected: None,
        notice: None,
        attachments_kept: None,
        canned: None,
    }
}

fn requester_reply(
    msg: &Inbound,
    visible: &str,
    t: &TicketState,
    suppression: Option<&Suppression>,
    policy: &Policy<'_>,
    now: i64,
    mut events: Vec<Event>,
) -> Plan {
    let mut plan = Plan::existing(t.id, MessageKind::Reply, visible);
    if let Some(s) = suppression.filter(|s| s.automatic) {
        events.push(event(
            EventKind::Automatic,
            format!("automatic message ({}): no reopening, nobody notified", s.reason),
        ));
        plan.kind = MessageKind::Automatic;
        plan.events = events;
        return plan;
    }
    // The requester answering the resolution with a score alone on the first line rates it, and
    // reopens nothing. ("2 printers still jam" is a sentence, not a rating: it reopens.)
    let from_requester = msg.from.as_ref().is_some_and(|f| t.requester.as_deref() == Some(f.address.as_str()));
    if let (true, true, Some((score, comment))) =
        (from_requester, matches!(t.status, TicketStatus::Resolved | TicketStatus::Closed), rating_of(visible))
    {
        plan.kind = MessageKind::Rating;
        plan.text = comment.clone();
        let rater = msg.from.as_ref().map(|f| f.address.clone()).unwrap_or_default();
        plan.updates.push(Update::Rate { score, comment, rater });
        plan.events = events;
        return plan;
    }
    // "status" alone asks; it reopens and relays nothing (the recorder answers it).
    if from_requester && is_status_request(visible) {
        plan.kind = MessageKind::StatusRequest;
        plan.events = events;
        return plan;
    }
    // A person wrote on a ticket that machine mail opened: now it is a request.
    if t.automatic {
        plan.updates.push(Update::Promote);
    }
    let within_window = t.closed_at.is_none_or(|c| now - c <= policy.reopen_window_secs);
    let reopens = match t.status {
        TicketStatus::Open => false,
        TicketStatus::Pending | TicketStatus::Resolved => true,
        TicketStatus::Closed => within_window,
    };
    if reopens {
        plan.updates.push(Update::Status(TicketStatus::Open));
    }
    plan.updates.extend(watchers_from_cc(msg, policy, t.requester.as_deref(), &t.watchers, &mut events));
    plan.mails.extend(to_assignee_or_team(t, policy));
    plan.events = events;
    plan
}

/// A requester's (or held) mail goes to the assignee, or to every technician while nobody is.
fn to_assignee_or_team(t: &TicketState, policy: &Policy<'_>) -> Vec<Mail> {
    let to: Vec<&String> = match &t.assignee {
        Some(a) => vec![a],
        None => policy.team.iter().collect(),
    };
    to.into_iter().map(|a| Mail { kind: MailKind::RequesterReply, to: vec![mailbox(a)] }).collect()
}

fn technician(
    policy: &Policy<'_>,
    facts: &Facts<'_>,
    t: &TicketState,
    sender: &str,
    note_address: bool,
    others: OtherTickets<'_>,
    mut events: Vec<Event>,
) -> Plan {
    let Facts { msg, visible, .. } = *facts;
    let mut plan = Plan::existing(t.id, MessageKind::TechnicianReply, visible);
    let parsed = commands::parse(visible).and_then(|p| check(p, t, policy, others));
    let parsed = match parsed {
        Ok(p) => p,
        Err(e) => {
            events.push(event(EventKind::CommandsRejected, format!("{sender}: {e}; nothing applied, nothing relayed")));
            plan.kind = MessageKind::RejectedCommands;
            plan.internal = true;
            plan.mails.push(Mail { kind: MailKind::CommandError, to: vec![mailbox(sender)] });
            plan.rejected = Some(e);
            plan.events = events;
            return plan;
        }
    };
    // The team, and an assignee from outside it, but not the sender.
    let others: Vec<Mailbox> = policy
        .team
        .iter()
        .chain(t.assignee.iter().filter(|a| !policy.team.contains(a)))
        .filter(|a| *a != sender)
        .map(|a| mailbox(a))
        .collect();
    let note = note_address || parsed.commands.contains(&Command::Note);
    for c in &parsed.commands {
        match c {
            Command::Status(s) => plan.updates.push(Update::Status(*s)),
            Command::Priority(p) => plan.updates.push(Update::Priority(*p)),
            Command::Assign(a) => plan.updates.push(Update::Assign(a.clone())),
            Command::Take => plan.updates.push(Update::Assign(sender.to_string())),
            Command::Cc(a) => plan.updates.push(Update::AddWatcher(a.clone())),
            Command::Uncc(a) => plan.updates.push(Update::RemoveWatcher(a.clone())),
            Command::Merge(n) => plan.updates.push(Update::MergeInto(*n)),
            Command::Accept => plan.updates.push(Update::AcceptHeld {
                never: policy.technicians.iter().chain(policy.desk_addresses).cloned().collect(),
            }),
            Command::Note => {}
            Command::Queue(q) => plan.updates.push(Update::Queue(q.clone())),
            Command::Away(until) => plan.updates.push(Update::Away {
                technician: sender.to_string(),
                // Through the day named: away until the next day begins, in the desk's time zone.
                until: until
                    .and_then(|d| d.tomorrow().ok())
                    .and_then(|d| d.to_zoned(policy.timezone.clone()).ok().map(|z| z.timestamp().as_second())),
            }),
            Command::Back => plan.updates.push(Update::Back { technician: sender.to_string() }),
            Command::Time(m) => plan.updates.push(Update::Time { technician: sender.to_string(), minutes: *m }),
            Command::Type(t) => plan.updates.push(Update::Type(*t)),
            Command::Reply(n) => plan.canned = Some(n.clone()),
            // Expanded by `check`.
            Command::Macro(_) => {}
            Command::Service(n) => plan.updates.push(Update::Service(n.clone())),
            Command::Submit => plan.updates.push(Update::SubmitChange),
            Command::Problem(n) => plan.updates.push(Update::LinkProblem(*n)),
            Command::Template(n) => plan.updates.push(Update::Template(n.clone())),
        }
    }
    // A ticket that becomes a change needing approval (by its type or its service) is submitted
    // at once; a pending change moved to another service goes to that service's approvers.
    let (final_type, final_service) = after(&parsed.commands, t);
    let changed = final_type != t.itsm.ticket_type || final_service != t.itsm.service;
    let unsubmitted_or_moved = t.itsm.approval.is_none()
        || (final_service != t.itsm.service && t.itsm.approval == Some(crate::domain::ApprovalState::Pending));
    if final_type == Some(crate::domain::TicketType::Change)
        && needs_approval(policy, final_service.as_deref())
        && changed
        && unsubmitted_or_moved
        && !parsed.commands.contains(&Command::Submit)
    {
        plan.updates.push(Update::SubmitChange);
    }
    plan.text = parsed.rest.clone();
    if note {
        plan.kind = MessageKind::Note;
        plan.internal = true;
        for o in others {
            plan.mails.push(Mail { kind: MailKind::NoteCopy, to: vec![o] });
        }
    } else if !parsed.rest.is_empty() || plan.canned.is_some() {
        match &t.requester {
            Some(r) => {
                let mut to = vec![mailbox(r)];
                to.extend(t.watchers.iter().map(|w| mailbox(w)));
                plan.mails.push(Mail { kind: MailKind::Reply, to });
                for o in others {
                    plan.mails.push(Mail { kind: MailKind::TeamCopy, to: vec![o] });
                }
                if t.first_response_at.is_none() {
                    plan.updates.push(Update::FirstResponse);
                }
            }
            None => events.push(event(EventKind::NotRelayed, "the ticket has no requester address to relay to")),
        }
    } else {
        plan.kind = MessageKind::Commands;
        plan.internal = true;
    }
    // Resolving tells the requester, with the ratings: in place of the relayed reply when there is
    // one (one mail, not two), else on its own.
    let resolves = parsed.commands.contains(&Command::Status(TicketStatus::Resolved))
        && !matches!(t.status, TicketStatus::Resolved | TicketStatus::Closed);
    if let (true, Some(r)) = (resolves, &t.requester) {
        match plan.mails.iter_mut().find(|m| m.kind == MailKind::Reply) {
            Some(reply) => reply.kind = MailKind::Resolution,
            None => plan.mails.push(Mail { kind: MailKind::Resolution, to: vec![mailbox(r)] }),
        }
    }
    let _ = msg;
    plan.events = events;
    plan
}

/// Checks what the parser cannot: that assignees are technicians, that watchers are outsiders (the
/// desk's own address or a technician would loop mail back in), and that a merge target exists and
/// the sender proved they work on it (see `inbound::record`).
fn check(
    p: commands::Parsed,
    t: &TicketState,
    policy: &Policy<'_>,
    others: OtherTickets<'_>,
) -> Result<commands::Parsed, CommandError> {
    // A macro stands for its commands and its canned reply, in its place.
    let mut p = p;
    let mut expanded = Vec::with_capacity(p.commands.len());
    for c in std::mem::take(&mut p.commands) {
        let Command::Macro(name) = &c else {
            expanded.push(c);
            continue;
        };
        let Some(m) = policy.macros.iter().find(|m| &m.name == name) else {
            let known: Vec<&str> = policy.macros.iter().map(|m| m.name.as_str()).collect();
            return Err(CommandError {
                line_no: 0,
                line: format!("#{}", c.describe()),
                reason: format!("there is no macro {name:?}; the macros are: {}", list_or_none(&known)),
            });
        };
        expanded.extend(m.commands.iter().cloned());
        expanded.extend(m.reply.clone().map(Command::Reply));
    }
    p.commands = expanded;
    if p.commands.iter().filter(|c| matches!(c, Command::Reply(_))).count() > 1 {
        return Err(CommandError {
            line_no: 0,
            line: "#reply".into(),
            reason: "one canned reply per mail (a macro may bring one too)".into(),
        });
    }
    for c in &p.commands {
        let fail = |reason: String| CommandError { line_no: 0, line: format!("#{}", c.describe()), reason };
        match c {
            Command::Assign(a) if !policy.technicians.contains(a) => {
                return Err(fail(format!("{a} is not on the technicians list")));
            }
            Command::Cc(a) if policy.desk_addresses.iter().any(|d| same_mailbox(d, a)) => {
                return Err(fail(format!("{a} is the help desk's own address")));
            }
            Command::Cc(a) if policy.technicians.contains(a) => {
                return Err(fail(format!("{a} is a technician; technicians get the ticket's mail already")));
            }
            Command::Merge(n) if *n == t.id => return Err(fail("a ticket cannot be merged into itself".into())),
            Command::Reply(n) if !policy.canned.contains(n) => {
                let known: Vec<&str> = policy.canned.iter().map(String::as_str).collect();
                return Err(fail(format!(
                    "there is no canned reply {n:?} (templates/canned/{n}.txt.tera); the canned replies are: {}",
                    list_or_none(&known)
                )));
            }
            Command::Queue(q) if !policy.queues.contains(q) => {
                return Err(fail(format!("there is no queue {q:?}; the queues are: {}", policy.queues.join(", "))));
            }
            Command::Merge(n) => (others.merge)(*n).map_err(fail)?,
            Command::Service(n) if !policy.services.contains(n) => {
                return Err(fail(format!(
                    "there is no service {n:?}; the services are: {}",
                    list_or_none(&policy.services.iter().map(String::as_str).collect::<Vec<_>>())
                )));
            }
            Command::Template(n) if !policy.templates.contains(n) => {
                return Err(fail(format!(
                    "there is no request template {n:?}; the templates are: {}",
                    list_or_none(&policy.templates.iter().map(String::as_str).collect::<Vec<_>>())
                )));
            }
            Command::Problem(Some(n)) if *n == t.id => {
                return Err(fail("a ticket cannot be its own problem".into()));
            }
            Command::Problem(_) if t.itsm.ticket_type == Some(crate::domain::TicketType::Problem) => {
                return Err(fail("this ticket is a problem; link incidents to it from the incidents".into()));
            }
            Command::Problem(Some(n)) => (others.problem)(*n).map_err(fail)?,
            _ => {}
        }
    }
    let (final_type, final_service) = after(&p.commands, t);
    let is_change = final_type == Some(crate::domain::TicketType::Change);
    let needs = is_change && needs_approval(policy, final_service.as_deref());
    for c in &p.commands {
        let fail = |reason: String| CommandError { line_no: 0, line: format!("#{}", c.describe()), reason };
        match c {
            Command::Submit if !is_change => {
                return Err(fail("only a change is submitted for approval (#type change first)".into()));
            }
            Command::Submit if !needs => {
                return Err(fail(format!(
                    "no approvals are configured for changes of {}",
                    final_service.as_deref().map(|s| format!("service {s}")).unwrap_or_else(|| "no service".into())
                )));
            }
            // A change is done only once approved (closing one that will not be done stays possible).
            Command::Status(TicketStatus::Resolved)
                if needs
                    && t.itsm.approval != Some(crate::domain::ApprovalState::Approved)
                    && !p.commands.contains(&Command::Submit) =>
            {
                let stands = match t.itsm.approval {
                    Some(a) => a.as_str().to_string(),
                    None => "not submitted: #submit asks its approvers".into(),
                };
                return Err(fail(format!(
                    "this change is not approved ({stands}); it can be resolved once approved, or closed"
                )));
            }
            Command::Status(TicketStatus::Resolved) if needs && p.commands.contains(&Command::Submit) => {
                return Err(fail("a change submitted in this mail is not approved yet".into()));
            }
            _ => {}
        }
    }
    Ok(p)
}

/// The ticket's type and service once these commands apply.
fn after(commands: &[Command], t: &TicketState) -> (Option<crate::domain::TicketType>, Option<String>) {
    let mut ty = t.itsm.ticket_type;
    let mut service = t.itsm.service.clone();
    for c in commands {
        match c {
            Command::Type(x) => ty = Some(*x),
            Command::Service(n) => service = Some(n.clone()),
            _ => {}
        }
    }
    (ty, service)
}

/// Whether a change of `service` needs approval.
pub fn needs_approval(policy: &Policy<'_>, service: Option<&str>) -> bool {
    policy.default_approvals || service.is_some_and(|s| policy.approval_services.iter().any(|a| a == s))
}

/// Whether a reply's new text asks for the status: "status" alone (a "?" or "." allowed).
pub fn is_status_request(visible: &str) -> bool {
    visible.trim().trim_end_matches(['?', '.', '!']).trim().eq_ignore_ascii_case("status")
}

/// A rating at the top of a reply: a score from 1 to 5 alone on the first line ("4", "5/5",
/// "4 stars", "5!"), and the comment: the lines below it.
pub fn rating_of(text: &str) -> Option<(u8, String)> {
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    let first = lines.next()?.trim().to_ascii_lowercase();
    let mut chars = first.chars();
    let score = chars.next()?.to_digit(10).filter(|d| (1..=5).contains(d))? as u8;
    let rest = chars.as_str().trim().trim_end_matches(['!', '.']);
    let rest = rest.trim();
    if !matches!(rest, "" | "/5" | "/ 5" | "of 5" | "star" | "stars" | "*" | "**" | "***" | "****" | "*****") {
        return None;
    }
    let comment = lines.collect::<Vec<_>>().join("\n").trim().to_string();
    Some((score, comment))
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() { "(none)".into() } else { names.join(", ") }
}

/// Mail from someone who is not a participant, threaded only by a subject tag: stored on the
/// ticket, shown to its technicians, and nothing else until one of them accepts it.
fn held(
    msg: &Inbound,
    visible: &str,
    t: &TicketState,
    suppression: Option<&Suppression>,
    policy: &Policy<'_>,
    mut events: Vec<Event>,
) -> Plan {
    let sender = msg.from.as_ref().map(|f| f.address.as_str()).unwrap_or("(no sender)");
    let mut plan = Plan::existing(t.id, MessageKind::Held, visible);
    plan.internal = true;
    events.push(event(
        EventKind::Held,
        format!(
            "{sender} is not a participant of ticket {} and the mail names it only by subject tag: \
             nothing reopened, relayed or subscribed; #accept makes the sender a watcher",
            t.id
        ),
    ));
    if suppression.is_none() {
        plan.notice = Some(format!(
            "This mail is held: {sender} is not the requester, a watcher or anyone this ticket was mailed to, \
             and the mail names the ticket only by its subject tag. It was not sent on and changed nothing. \
             Reply #accept to make the sender a watcher of this ticket."
        ));
        plan.mails.extend(to_assignee_or_team(t, policy));
    }
    plan.events = events;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse::parse;

    const DESK: &[&str] = &["support@acme.test"];
    const TECHS: &[&str] = &["tech1@acme.test", "tech2@acme.test"];

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn msg(headers: &str, body: &str) -> Inbound {
        parse(format!("{headers}\r\nMessage-ID: <m1@x.test>\r\n\r\n{body}").as_bytes()).unwrap()
    }

    fn ticket(status: &str) -> TicketState {
        let status: TicketStatus = status.parse().unwrap();
        TicketState {
            id: 7,
            status,
            requester: Some("alice@x.test".into()),
            assignee: None,
            watchers: vec!["carol@x.test".into()],
            closed_at: if status == TicketStatus::Closed { Some(1_000) } else { None },
            first_response_at: None,
            automatic: false,
            queue: None,
            itsm: Itsm::default(),
        }
    }

    fn run(
        m: &Inbound,
        thread: Thread,
        t: Option<&TicketState>,
        role: Role,
        suppression: Option<&Suppression>,
        now: i64,
    ) -> Plan {
        run_as(m, thread, t, role, suppression, true, now)
    }

    /// `run`, for a sender who is (or is not) a participant of the ticket.
    fn run_as(
        m: &Inbound,
        thread: Thread,
        t: Option<&TicketState>,
        role: Role,
        suppression: Option<&Suppression>,
        participant: bool,
        now: i64,
    ) -> Plan {
        let desk = strings(DESK);
        let techs = strings(TECHS);
        let queues = strings(&["default", "security"]);
        let policy = Policy {
            desk_addresses: &desk,
            technicians: &techs,
            team: &techs,
            new_team: &techs,
            queues: &queues,
            timezone: &jiff::tz::TimeZone::UTC,
            canned: &[],
            macros: &[],
            services: &strings(&["email", "network"]),
            approval_services: &strings(&["network"]),
            default_approvals: false,
            templates: &strings(&["onboarding"]),
            reopen_window_secs: 14 * 86_400,
            cc_watchers: true,
            max_watchers_per_message: 3,
            max_watchers_per_ticket: 4,
        };
        let merge = |n: i64| if n == 9 { Ok(()) } else { Err(format!("ticket {n} does not exist")) };
        let visible = crate::reply_text::visible_text(&m.text);
        let facts = Facts { msg: m, visible: &visible, thread: &thread, role: &role, suppression, participant };
        plan(&policy, &facts, t, OtherTickets { merge: &merge, problem: &merge }, now)
    }

    fn kinds(p: &Plan) -> Vec<(MailKind, Vec<&str>)> {
        p.mails.iter().map(|m| (m.kind, m.to.iter().map(|t| t.address.as_str()).collect())).collect()
    }

    const EXISTING: Thread = Thread::Existing { ticket: 7, by: ThreadedBy::SubjectTag };

    fn tech(note: bool) -> Role {
        Role::Technician { address: "tech1@acme.test".into(), proof: "reply token", note }
    }

    #[test]
    fn a_change_is_submitted_when_it_becomes_one_and_resolved_only_once_approved() {
        use crate::domain::{ApprovalState, TicketType};
        let tech_mail =
            |body: &str| msg("From: tech1@acme.test\r\nTo: support@acme.test\r\nSubject: Re: [ACME #7] x", body);
        let open = ticket("open");
        let updates = |body: &str, t: &TicketState| {
            let p = run(&tech_mail(body), EXISTING, Some(t), tech(false), None, 0);
            (p.updates, p.rejected.map(|e| e.reason))
        };
        // Becoming a change of a service with approvers submits it at once; without approvers not.
        let (u, rejected) = updates("#service network\n#type change", &open);
        assert_eq!(rejected, None);
        assert!(u.contains(&Update::SubmitChange), "{u:?}");
        let (u, _) = updates("#service email\n#type change", &open);
        assert!(!u.contains(&Update::SubmitChange), "{u:?}");
        // A change of a service without approvers is submitted once moved to one with them.
        let mut unsubmitted = ticket("open");
        unsubmitted.itsm =
            Itsm { ticket_type: Some(TicketType::Change), service: Some("email".into()), approval: None };
        assert!(updates("#resolve", &unsubmitted).1.is_none(), "no approval needed");
        assert_eq!(
            updates("#service network", &unsubmitted).0,
            vec![Update::Service("network".into()), Update::SubmitChange]
        );
        assert!(!updates("Thanks", &unsubmitted).0.contains(&Update::SubmitChange), "a mere reply submits nothing");
        // #submit needs a change with approvers.
        let (_, rejected) = updates("#submit", &open);
        assert!(rejected.unwrap().contains("only a change"));
        let mut change = ticket("open");
        change.itsm = Itsm {
            ticket_type: Some(TicketType::Change),
            service: Some("network".into()),
            approval: Some(ApprovalState::Pending),
        };
        // The revision's notes stay internal with #note (they go to the approvers either way).
        let (u, rejected) = updates("#submit\n#note Now with a rollback plan.", &change);
        assert_eq!((u, rejected), (vec![Update::SubmitChange], None));
        // Not resolved before it is approved; closing stays possible.
        let (u, rejected) = updates("#resolve", &change);
        assert!(u.is_empty());
        assert!(rejected.unwrap().contains("not approved (pending)"));
        assert_eq!(updates("#close", &change).1, None);
        // Moving a pending change to a service without approvers asks nobody new.
        assert_eq!(updates("#service email", &change).0, vec![Update::Service("email".into())]);
        change.itsm.approval = Some(ApprovalState::Approved);
        assert_eq!(updates("#resolve", &change).1, None);
        // Unknown names, and a ticket as its own problem, are refused with the names there are.
        assert!(updates("#service nope", &open).1.unwrap().contains("email, network"));
        assert!(updates("#template nope", &open).1.unwrap().contains("onboarding"));
        assert!(updates("#problem 7", &open).1.unwrap().contains("its own problem"));
        assert_eq!(
            updates("#problem 9\n#template onboarding", &open).0,
            vec![Update::LinkProblem(Some(9)), Update::Template("onboarding".into())]
        );
    }

    #[test]
    fn new_request_acknowledges_notifies_and_adds_cc_watchers() {
        let m = msg(
            "From: Alice <alice@x.test>\r\nCc: carol@x.test, tech2@acme.test, support@acme.test\r\nSubject: Printer",
            "Jammed",
        );
        let p = run(&m, Thread::New { note: None }, None, Role::Requester, None, 0);
        assert_eq!(
            p.target,
            Target::Open { subject: "Printer".into(), requester: m.from.clone(), follow_up_of: None, automatic: false }
        );
        assert_eq!(
            kinds(&p),
            vec![
                (MailKind::Acknowledgement, vec!["alice@x.test"]),
                (MailKind::NewTicket, vec!["tech1@acme.test"]),
                (MailKind::NewTicket, vec!["tech2@acme.test"]),
            ]
        );
        assert_eq!(
            p.updates,
            vec![Update::AddWatcher("carol@x.test".into())],
            "technicians and the desk never become watchers"
        );
    }

    #[test]
    fn suppressed_new_mail_is_recorded_not_acknowledged() {
        let m = msg("From: alice@x.test\r\nSubject: Out of office", "away");
        let s = Suppression { reason: "Auto-Submitted: auto-replied".into(), automatic: true };
        let p = run(&m, Thread::New { note: None }, None, Role::Requester, Some(&s), 0);
        assert!(!p.mails.iter().any(|m| m.kind == MailKind::Acknowledgement));
        assert_eq!(p.kind, MessageKind::Automatic);
        assert!(p.events.iter().any(|e| e.kind == EventKind::AckSuppressed));
        assert!(p.mails.is_empty(), "machine mail notifies nobody: {:?}", p.mails);
        assert!(matches!(p.target, Target::Open { automatic: true, .. }));
        // Mail that must not be answered but may come from a person still reaches technicians.
        let form = Suppression { reason: "sender no-reply@x.test accepts no replies".into(), automatic: false };
        let p = run(&m, Thread::New { note: None }, None, Role::Requester, Some(&form), 0);
        assert_eq!(p.kind, MessageKind::Request);
        assert_eq!(kinds(&p).len(), 2);
        assert!(matches!(p.target, Target::Open { automatic: false, .. }));
    }

    #[test]
    fn the_acknowledgement_goes_to_from_never_to_a_chosen_reply_to() {
        let m = msg("From: alice@x.test\r\nReply-To: victim@elsewhere.test\r\nSubject: Buy now", "spam");
        let p = run(&m, Thread::New { note: None }, None, Role::Requester, None, 0);
        assert_eq!(kinds(&p)[0], (MailKind::Acknowledgement, vec!["alice@x.test"]));
    }

    #[test]
    fn cc_watchers_are_capped_per_message_and_per_ticket() {
        let cc: Vec<String> = (0..8).map(|i| format!("w{i}@x.test")).collect();
        let m = msg(&format!("From: alice@x.test\r\nCc: {}\r\nSubject: s", cc.join(", ")), "x");
        let p = run(&m, Thread::New { note: None }, None, Role::Requester, None, 0);
        assert_eq!(p.updates.len(), 3, "per message");
        assert!(
            p.events.iter().any(|e| e.kind == EventKind::WatchersCapped && e.detail.starts_with("5 ")),
            "{:?}",
            p.events
        );
        // Ticket 7 has one watcher already; the ticket limit is 4.
        let p = run(&m, EXISTING, Some(&ticket("open")), Role::Requester, None, 0);
        assert_eq!(p.updates.iter().filter(|u| matches!(u, Update::AddWatcher(_))).count(), 3);
    }

    #[test]
    fn a_non_participant_threading_by_tag_alone_is_held() {
        let m = msg("From: mallory@evil.test\r\nCc: mallory2@evil.test\r\nSubject: Re: [ACME #7] x", "Reopen please");
        let p = run_as(&m, EXISTING, Some(&ticket("resolved")), Role::Requester, None, false, 0);
        assert_eq!(p.kind, MessageKind::Held);
        assert!(p.internal && p.updates.is_empty(), "{:?}", p.updates);
        assert!(p.mails.iter().all(|m| m.kind == MailKind::RequesterReply), "only technicians hear of it");
        assert!(p.notice.as_deref().is_some_and(|n| n.contains("#accept")));
        assert!(p.events.iter().any(|e| e.kind == EventKind::Held));
    }

    #[test]
    fn cc_of_the_desk_or_a_technician_is_refused() {
        for body in ["#cc support+x@acme.test", "#cc tech2@acme.test"] {
            let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", body);
            let p = run(&m, EXISTING, Some(&ticket("open")), tech(false), None, 0);
            assert!(p.rejected.is_some() && p.updates.is_empty(), "{body}");
        }
    }

    #[test]
    fn requester_reply_reopens_and_goes_to_assignee_or_all() {
        let m = msg(
            "From: alice@x.test\r\nSubject: Re: [ACME #7] Printer",
            "Still broken\n\nOn Mon, Bob <b@x.test> wrote:\n> fixed",
        );
        let p = run(&m, EXISTING, Some(&ticket("resolved")), Role::Requester, None, 2_000);
        assert_eq!(p.updates, vec![Update::Status(TicketStatus::Open)]);
        assert_eq!(p.text, "Still broken");
        assert_eq!(kinds(&p).len(), 2);
        let mut assigned = ticket("open");
        assigned.assignee = Some("tech2@acme.test".into());
        let p = run(&m, EXISTING, Some(&assigned), Role::Requester, None, 2_000);
        assert!(p.updates.is_empty());
        assert_eq!(kinds(&p), vec![(MailKind::RequesterReply, vec!["tech2@acme.test"])]);
    }

    #[test]
    fn reply_to_long_closed_ticket_opens_a_follow_up() {
        let m = msg("From: alice@x.test\r\nSubject: Re: [ACME #7] Printer", "Again!");
        let within = run(&m, EXISTING, Some(&ticket("closed")), Role::Requester, None, 1_000 + 86_400);
        assert_eq!(within.updates, vec![Update::Status(TicketStatus::Open)]);
        let after = run(&m, EXISTING, Some(&ticket("closed")), Role::Requester, None, 1_000 + 15 * 86_400);
        assert!(matches!(after.target, Target::Open { follow_up_of: Some(7), .. }), "{:?}", after.target);
    }

    #[test]
    fn automatic_reply_reopens_nothing_and_notifies_nobody() {
        let m = msg("From: alice@x.test\r\nSubject: Re: [ACME #7]", "I am away");
        let s = Suppression { reason: "Auto-Submitted: auto-replied".into(), automatic: true };
        let p = run(&m, EXISTING, Some(&ticket("resolved")), Role::Requester, Some(&s), 2_000);
        assert!(p.updates.is_empty() && p.mails.is_empty());
        assert_eq!(p.kind, MessageKind::Automatic);
    }

    #[test]
    fn technician_reply_is_relayed_to_requester_and_watchers_and_copied_to_the_team() {
        let m =
            msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", "#priority P2\nToner replaced.\n\n-- \nTech One");
        let p = run(&m, EXISTING, Some(&ticket("open")), tech(false), None, 0);
        assert_eq!(p.text, "Toner replaced.");
        assert_eq!(p.updates, vec![Update::Priority(Priority::P2), Update::FirstResponse]);
        assert_eq!(
            kinds(&p),
            vec![
                (MailKind::Reply, vec!["alice@x.test", "carol@x.test"]),
                (MailKind::TeamCopy, vec!["tech2@acme.test"])
            ]
        );
        assert!(!p.internal);
    }

    #[test]
    fn notes_never_reach_the_requester() {
        for (body, note_address) in [("#note\nVendor called back.", false), ("Vendor called back.", true)] {
            let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", body);
            let p = run(&m, EXISTING, Some(&ticket("open")), tech(note_address), None, 0);
            assert!(p.internal);
            assert_eq!(p.kind, MessageKind::Note);
            assert_eq!(kinds(&p), vec![(MailKind::NoteCopy, vec!["tech2@acme.test"])]);
            assert_eq!(p.text, "Vendor called back.");
        }
    }

    #[test]
    fn bad_commands_change_nothing_and_answer_the_sender() {
        for body in ["#close\n#asign tech2@acme.test\nDone", "#assign mallory@evil.test", "#merge 7", "#merge 8"] {
            let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", body);
            let p = run(&m, EXISTING, Some(&ticket("open")), tech(false), None, 0);
            assert!(p.updates.is_empty(), "{body}");
            assert_eq!(kinds(&p), vec![(MailKind::CommandError, vec!["tech1@acme.test"])], "{body}");
            assert!(p.rejected.is_some() && p.internal, "{body}");
        }
        let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", "#merge 9\n#take\n#close");
        let p = run(&m, EXISTING, Some(&ticket("open")), tech(false), None, 0);
        assert_eq!(
            p.updates,
            vec![Update::MergeInto(9), Update::Assign("tech1@acme.test".into()), Update::Status(TicketStatus::Closed)]
        );
        assert!(p.mails.is_empty() && p.kind == MessageKind::Commands);
    }

    #[test]
    fn a_technicians_auto_reply_is_neither_relayed_nor_obeyed() {
        let m = msg(
            "From: tech1@acme.test\r\nAuto-Submitted: auto-replied\r\nSubject: Re: [ACME #7]",
            "#close\nI am on leave.",
        );
        let s = Suppression { reason: "Auto-Submitted: auto-replied".into(), automatic: true };
        let p = run(&m, EXISTING, Some(&ticket("open")), tech(false), Some(&s), 0);
        assert!(p.updates.is_empty() && p.mails.is_empty());
        assert_eq!(p.kind, MessageKind::Automatic);
    }

    #[test]
    fn unverified_technician_is_a_requester() {
        let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", "#close\nClosing.");
        let role =
            Role::Unverified { address: "tech1@acme.test".into(), reason: "was not sent to a reply address".into() };
        let p = run(&m, EXISTING, Some(&ticket("open")), role, None, 0);
        assert!(p.updates.is_empty());
        assert!(p.mails.iter().all(|m| m.kind == MailKind::RequesterReply));
        assert!(p.events.iter().any(|e| e.kind == EventKind::NotVerified));
    }

    /// The plan with the ticket's team `team` and a new ticket's team `new_team`.
    fn run_teams(
        m: &Inbound,
        thread: Thread,
        t: Option<&TicketState>,
        role: Role,
        team: &[&str],
        new_team: &[&str],
    ) -> Plan {
        run_with_macros(m, thread, t, role, (team, new_team), &[])
    }

    fn run_with_macros(
        m: &Inbound,
        thread: Thread,
        t: Option<&TicketState>,
        role: Role,
        (team, new_team): (&[&str], &[&str]),
        macros: &[commands::Macro],
    ) -> Plan {
        let desk = strings(DESK);
        let techs = strings(&["tech1@acme.test", "tech2@acme.test", "sec@acme.test"]);
        let (team, new_team) = (strings(team), strings(new_team));
        let queues = strings(&["default", "security"]);
        let policy = Policy {
            desk_addresses: &desk,
            technicians: &techs,
            team: &team,
            new_team: &new_team,
            queues: &queues,
            timezone: &jiff::tz::TimeZone::get("Europe/Berlin").unwrap(),
            canned: &strings(&["printer-fixed", "need-info"]),
            macros,
            services: &[],
            approval_services: &[],
            default_approvals: false,
            templates: &[],
            reopen_window_secs: 14 * 86_400,
            cc_watchers: true,
            max_watchers_per_message: 3,
            max_watchers_per_ticket: 4,
        };
        let merge = |_: i64| Err("no".to_string());
        let visible = crate::reply_text::visible_text(&m.text);
        let facts =
            Facts { msg: m, visible: &visible, thread: &thread, role: &role, suppression: None, participant: true };
        plan(&policy, &facts, t, OtherTickets { merge: &merge, problem: &merge }, 0)
    }

    #[test]
    fn only_the_queues_team_is_told() {
        let m = msg("From: alice@x.test\r\nSubject: Phish", "Look.");
        let p =
            run_teams(&m, Thread::New { note: None }, None, Role::Requester, &["tech1@acme.test"], &["sec@acme.test"]);
        assert_eq!(
            kinds(&p)[1..],
            [(MailKind::NewTicket, vec!["sec@acme.test"])],
            "a new ticket: its routed queue's team"
        );
        let m = msg("From: alice@x.test\r\nSubject: Re: [ACME #7]", "More.");
        let p =
            run_teams(&m, EXISTING, Some(&ticket("open")), Role::Requester, &["sec@acme.test"], &["tech1@acme.test"]);
        assert_eq!(kinds(&p), [(MailKind::RequesterReply, vec!["sec@acme.test"])]);
        let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", "Done.");
        let mut t = ticket("open");
        t.assignee = Some("tech1@acme.test".into());
        let p = run_teams(&m, EXISTING, Some(&t), tech(false), &["sec@acme.test", "tech1@acme.test"], &[]);
        assert_eq!(kinds(&p)[1..], [(MailKind::TeamCopy, vec!["sec@acme.test"])], "the team, not the sender");
    }

    #[test]
    fn queue_and_away_commands() {
        let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", "#queue security\n#away until 2026-12-24");
        let p = run_teams(&m, EXISTING, Some(&ticket("open")), tech(false), &[], &[]);
        // The 24th is a day away in Berlin: back at midnight there, 23:00 UTC.
        let back = "2026-12-24T23:00:00Z".parse::<jiff::Timestamp>().unwrap().as_second();
        assert_eq!(
            p.updates,
            [
                Update::Queue("security".into()),
                Update::Away { technician: "tech1@acme.test".into(), until: Some(back) }
            ]
        );
        let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", "#queue nowhere\n#close");
        let p = run_teams(&m, EXISTING, Some(&ticket("open")), tech(false), &[], &[]);
        let e = p.rejected.expect("an unknown queue rejects the mail");
        assert!(e.reason.contains("no queue \"nowhere\"") && e.reason.contains("default, security"), "{e}");
        assert!(p.updates.is_empty());
    }

    #[test]
    fn canned_replies_and_macros() {
        let waiting = commands::Macro {
            name: "wait".into(),
            commands: vec![Command::Status(TicketStatus::Pending), Command::Priority(Priority::P4)],
            reply: Some("need-info".into()),
        };
        let plan = |body: &str| {
            let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", body);
            run_with_macros(
                &m,
                EXISTING,
                Some(&ticket("open")),
                tech(false),
                (&[], &[]),
                std::slice::from_ref(&waiting),
            )
        };
        // A canned reply alone is a reply: relayed, and the first response.
        let p = plan("#reply printer-fixed");
        assert_eq!(p.canned.as_deref(), Some("printer-fixed"));
        assert_eq!(p.kind, MessageKind::TechnicianReply);
        assert!(p.mails.iter().any(|m| m.kind == MailKind::Reply) && p.updates.contains(&Update::FirstResponse));
        // A macro: its commands in its place, and its canned reply.
        let p = plan("#macro wait\nCould you send a photo?");
        assert_eq!(p.updates[..2], [Update::Status(TicketStatus::Pending), Update::Priority(Priority::P4)]);
        assert_eq!((p.canned.as_deref(), p.text.as_str()), (Some("need-info"), "Could you send a photo?"));
        for (body, why) in [
            ("#reply nope", "no canned reply \"nope\""),
            ("#macro nope", "no macro \"nope\""),
            ("#macro wait\n#reply printer-fixed", "one canned reply per mail"),
        ] {
            let p = plan(body);
            let e = p.rejected.unwrap_or_else(|| panic!("{body}"));
            assert!(e.reason.contains(why), "{body}: {e}");
            assert!(p.updates.is_empty() && p.canned.is_none(), "{body}");
        }
    }

    #[test]
    fn a_score_alone_on_the_first_line_is_a_rating() {
        assert_eq!(rating_of("5"), Some((5, String::new())));
        assert_eq!(rating_of("\n 4 stars \nQuick and friendly."), Some((4, "Quick and friendly.".into())));
        assert_eq!(rating_of("3/5\nok"), Some((3, "ok".into())));
        for not in ["2 printers still jam", "6", "0", "10", "Thanks!", "", "5 because"] {
            assert_eq!(rating_of(not), None, "{not:?}");
        }
    }

    #[test]
    fn resolving_sends_the_resolution_and_a_rating_reopens_nothing() {
        let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", "#resolve\nToner replaced.");
        let p = run(&m, EXISTING, Some(&ticket("open")), tech(false), None, 0);
        assert!(p.mails.iter().any(|m| m.kind == MailKind::Resolution), "{:?}", kinds(&p));
        assert!(!p.mails.iter().any(|m| m.kind == MailKind::Reply), "one mail, not two");
        let m = msg("From: tech1@acme.test\r\nSubject: Re: [ACME #7]", "#resolve");
        let p = run(&m, EXISTING, Some(&ticket("open")), tech(false), None, 0);
        assert_eq!(kinds(&p), [(MailKind::Resolution, vec!["alice@x.test"])]);
        let m = msg("From: alice@x.test\r\nSubject: Re: [ACME #7]", "5\nGreat, thanks");
        let p = run(&m, EXISTING, Some(&ticket("resolved")), Role::Requester, None, 0);
        assert_eq!(p.kind, MessageKind::Rating);
        assert_eq!(
            p.updates,
            [Update::Rate { score: 5, comment: "Great, thanks".into(), rater: "alice@x.test".into() }]
        );
        assert!(p.mails.is_empty());
        // Someone else's "5" is an ordinary reply; so is a sentence.
        let m = msg("From: carol@x.test\r\nSubject: Re: [ACME #7]", "5");
        let p = run(&m, EXISTING, Some(&ticket("resolved")), Role::Requester, None, 0);
        assert!(p.updates.contains(&Update::Status(TicketStatus::Open)));
        let m = msg("From: alice@x.test\r\nSubject: Re: [ACME #7]", "2 printers still jam");
        let p = run(&m, EXISTING, Some(&ticket("resolved")), Role::Requester, None, 0);
        assert!(p.updates.contains(&Update::Status(TicketStatus::Open)));
    }
}
