//! Values of the help desk's own vocabulary, shared by the pure core and the edges alike: ticket
//! statuses, priorities, and the normal form of addresses and Message-IDs. This module imports
//! nothing of the crate, so every layer may use it without an import running back up.

/// Every mail maildesk makes, each with the template of the same name. Plans call for all but
/// [`MailKind::Escalation`], which the SLA sweep sends. Stored as the outbound message's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// To the requester of a new ticket.
    Acknowledgement,
    /// To each technician (or the assignee): a new ticket.
    NewTicket,
    /// A technician's reply, to the requester and watchers.
    Reply,
    /// A copy of a relayed reply to the other technicians.
    TeamCopy,
    /// The requester's reply, to the assignee or all technicians.
    RequesterReply,
    /// An internal note, to the other technicians.
    NoteCopy,
    /// To a technician whose commands were rejected.
    CommandError,
    /// To the people an SLA level names: a target is near or past.
    Escalation,
    /// To the assignee or technicians: mail maildesk sent bounced.
    DeliveryFailure,
    /// To the requester when a technician resolves the ticket, with one-click ratings.
    Resolution,
    /// To each approver of a change: the change, and a signed `Reply-To` that decides it.
    ApprovalRequest,
    /// To the requester (and the team): the change was approved or rejected.
    ChangeDecision,
    /// To the requester of an incident linked to a problem: the problem is solved.
    ProblemResolved,
}

impl MailKind {
    pub const ALL: [MailKind; 13] = [
        MailKind::Acknowledgement,
        MailKind::NewTicket,
        MailKind::Reply,
        MailKind::TeamCopy,
        MailKind::RequesterReply,
        MailKind::NoteCopy,
        MailKind::CommandError,
        MailKind::Escalation,
        MailKind::DeliveryFailure,
        MailKind::Resolution,
        MailKind::ApprovalRequest,
        MailKind::ChangeDecision,
        MailKind::ProblemResolved,
    ];

    /// The template's name (`templates/NAME.subject.tera`, …), also the stored message kind.
    pub fn template(self) -> &'static str {
        match self {
            MailKind::Acknowledgement => "acknowledgement",
            MailKind::NewTicket => "new-ticket",
            MailKind::Reply => "reply",
            MailKind::TeamCopy => "team-copy",
            MailKind::RequesterReply => "requester-reply",
            MailKind::NoteCopy => "note-copy",
            MailKind::CommandError => "command-error",
            MailKind::Escalation => "escalation",
            MailKind::DeliveryFailure => "delivery-failure",
            MailKind::Resolution => "resolution",
            MailKind::ApprovalRequest => "approval-request",
            MailKind::ChangeDecision => "change-decision",
            MailKind::ProblemResolved => "problem-resolved",
        }
    }

    /// Mails to technicians carry a per-technician reply address, so each gets a message of its own.
    /// (An escalation may also go to a configured address; each recipient gets a message anyway.)
    pub fn to_technicians(self) -> bool {
        !matches!(
            self,
            MailKind::Acknowledgement
                | MailKind::Reply
                | MailKind::Resolution
                | MailKind::ApprovalRequest
                | MailKind::ChangeDecision
                | MailKind::ProblemResolved
        )
    }

    /// Mail to people outside the team, built into maildesk when a templates folder has none (a
    /// folder copied before the kind existed keeps working).
    pub fn built_in(self) -> bool {
        matches!(
            self,
            MailKind::Resolution | MailKind::ApprovalRequest | MailKind::ChangeDecision | MailKind::ProblemResolved
        )
    }

    /// Automatic answers to a sender, counted against `[limits]`.
    pub fn is_automatic_answer(self) -> bool {
        matches!(self, MailKind::Acknowledgement | MailKind::CommandError)
    }
}

impl std::fmt::Display for MailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.template())
    }
}

/// A ticket's status. The names are part of the database, the JSON output and the `#status`
/// command, so they are written here once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    Open,
    /// Waiting on the requester; may pause the resolution clock.
    Pending,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 4] =
        [TicketStatus::Open, TicketStatus::Pending, TicketStatus::Resolved, TicketStatus::Closed];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }

    /// Resolved or closed: the work is done and the resolution clock stops.
    pub fn is_done(self) -> bool {
        matches!(self, TicketStatus::Resolved | TicketStatus::Closed)
    }

    /// The names, for messages that list them.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl std::fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A name that is not a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected one of {names}, got {0:?}", names = TicketStatus::names())]
pub struct UnknownStatus(pub String);

impl std::str::FromStr for TicketStatus {
    type Err = UnknownStatus;

    /// Case-insensitive: `#status Pending` is `pending`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| UnknownStatus(s.into()))
    }
}

/// Which way a stored message went. Stored as `in` / `out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Fetched from the mailbox.
    In,
    /// Made by maildesk and queued in the outbox.
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// How a technician may prove a mail is theirs (`security.technician_proof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proof {
    /// The per-ticket signed reply address in To/Cc.
    Token,
    /// A trusted `Authentication-Results: dmarc=pass` for the sender's domain.
    Dmarc,
}

/// A ticket's priority, most urgent first. The names (`P1` … `P4`) are part of the config, the
/// database, the JSON output and the `#priority` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum Priority {
    P1,
    P2,
    /// The default of a new ticket when no `[priority]` rule says otherwise.
    #[default]
    P3,
    P4,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a ticket is, in ITSM terms: each may be handled (and reported) differently. Unset until a
/// routing rule or a technician's `#type` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketType {
    /// Something broke.
    Incident,
    /// Something is wanted (access, equipment, information).
    Request,
    /// Something is to be changed.
    Change,
    /// The cause behind incidents.
    Problem,
}

impl TicketType {
    pub const ALL: [TicketType; 4] =
        [TicketType::Incident, TicketType::Request, TicketType::Change, TicketType::Problem];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketType::Incident => "incident",
            TicketType::Request => "request",
            TicketType::Change => "change",
            TicketType::Problem => "problem",
        }
    }
}

impl std::fmt::Display for TicketType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A name that is not a ticket type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected incident, request, change or problem, got {0:?}")]
pub struct UnknownTicketType(pub String);

impl std::str::FromStr for TicketType {
    type Err = UnknownTicketType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownTicketType(s.into()))
    }
}

/// Where a change stands with its approvers. Stored by name on the ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    /// Submitted: waiting for approvers.
    Pending,
    Approved,
    Rejected,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for ApprovalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for ApprovalState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [ApprovalState::Pending, ApprovalState::Approved, ApprovalState::Rejected]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("expected pending, approved or rejected, got {s:?}"))
    }
}

/// An approver's answer to one version of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Reject => "reject",
        }
    }
}

/// How many of a change's approvers must approve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    Any,
    All,
    AtLeast(usize),
}

impl Required {
    /// How many approvals of `approvers` that is.
    pub fn count(self, approvers: usize) -> usize {
        match self {
            Required::Any => 1.min(approvers),
            Required::All => approvers,
            Required::AtLeast(n) => n.min(approvers),
        }
    }

    /// Where a version stands after these decisions: approved once enough approve, rejected once
    /// too many reject for enough approvals to remain possible, pending otherwise.
    pub fn outcome(self, approvers: usize, approvals: usize, rejections: usize) -> ApprovalState {
        let needed = self.count(approvers);
        if approvals >= needed {
            ApprovalState::Approved
        } else if approvers.saturating_sub(rejections) < needed {
            ApprovalState::Rejected
        } else {
            ApprovalState::Pending
        }
    }
}

impl std::fmt::Display for Required {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Required::Any => f.write_str("any"),
            Required::All => f.write_str("all"),
            Required::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

/// A name that is not a priority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected P1, P2, P3 or P4, got {0:?}")]
pub struct UnknownPriority(pub String);

impl std::str::FromStr for Priority {
    type Err = UnknownPriority;

    /// Case-insensitive: `#priority p1` is `P1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPriority(s.into()))
    }
}

/// Lower-cases and sanity-checks a bare mail address (`local@domain`).
pub fn parse_address(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.rsplit_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c));
    ok.then(|| s.to_ascii_lowercase())
}

/// `<abc@host>` and `abc@host` are the same id; stored without brackets.
pub fn clean_id(id: &str) -> String {
    id.trim().trim_start_matches('<').trim_end_matches('>').trim().to_string()
}

/// What an event on a ticket records. The names are part of the stable JSON output
/// (`show --json`, `events[].kind`) and of the database, so they are written here once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Opened,
    Threaded,
    Threading,
    FollowUp,
    AckSuppressed,
    MailFailed,
    Defect,
    Automatic,
    Technician,
    NotVerified,
    NotRelayed,
    CommandsRejected,
    Status,
    Priority,
    Assigned,
    WatcherAdded,
    WatcherRemoved,
    FirstResponse,
    Merged,
    MergeRefused,
    Escalation,
    RateLimited,
    Oversized,
    AttachmentsSkipped,
    DeliveryReport,
    DeliveryFailed,
    DeliveryUnconfirmed,
    DeliveryUncertain,
    Held,
    Accepted,
    Promoted,
    DuplicateMessageId,
    AddressRedacted,
    WatchersCapped,
    /// Retention dropped the original bytes of a closed ticket's messages.
    RawDropped,
    /// Retention deleted closed tickets (an event of no ticket: they are gone).
    TicketsDeleted,
    /// A person's data was erased on request (no personal data in the event).
    Erased,
    /// Which queue a new ticket landed in, and why.
    Routed,
    /// The requester rated the resolution (1-5, the last rating counts).
    Rated,
    /// `#queue`: the ticket moved to another queue (its team and SLA policy change from then).
    QueueChanged,
    /// `#away` / `#back`: a technician's availability for auto-assignment.
    Away,
    /// `#time`: time a technician spent on the ticket.
    Time,
    /// The ticket's type was set (`#type`, a routing rule).
    Type,
    /// The ticket's service was set (`#service`, a routing rule, the service's addresses or keywords).
    Service,
    /// A change was submitted for approval (a new version: earlier approvals no longer count).
    ChangeSubmitted,
    /// An approver approved or rejected a version of a change, with their proof and reason.
    Approval,
    /// A decision that did not count: not an approver's proof, or for an older version.
    ApprovalRefused,
    /// The change has the approvals its service requires.
    ChangeApproved,
    /// The change can no longer get the approvals it requires.
    ChangeRejected,
    /// Approvers who had not decided were reminded.
    ApprovalReminder,
    /// An incident was linked to a problem (on both tickets).
    ProblemLinked,
    /// Resolving a problem resolved this linked incident, or a request's last task its parent.
    LinkedResolved,
    /// A request template's task: a child ticket spawned, or one of them done.
    Task,
}

impl EventKind {
    pub const ALL: [EventKind; 53] = [
        EventKind::Opened,
        EventKind::Threaded,
        EventKind::Threading,
        EventKind::FollowUp,
        EventKind::AckSuppressed,
        EventKind::MailFailed,
        EventKind::Defect,
        EventKind::Automatic,
        EventKind::Technician,
        EventKind::NotVerified,
        EventKind::NotRelayed,
        EventKind::CommandsRejected,
        EventKind::Status,
        EventKind::Priority,
        EventKind::Assigned,
        EventKind::WatcherAdded,
        EventKind::WatcherRemoved,
        EventKind::FirstResponse,
        EventKind::Merged,
        EventKind::MergeRefused,
        EventKind::Escalation,
        EventKind::RateLimited,
        EventKind::Oversized,
        EventKind::AttachmentsSkipped,
        EventKind::DeliveryReport,
        EventKind::DeliveryFailed,
        EventKind::DeliveryUnconfirmed,
        EventKind::DeliveryUncertain,
        EventKind::Held,
        EventKind::Accepted,
        EventKind::Promoted,
        EventKind::DuplicateMessageId,
        EventKind::AddressRedacted,
        EventKind::WatchersCapped,
        EventKind::RawDropped,
        EventKind::TicketsDeleted,
        EventKind::Erased,
        EventKind::Routed,
        EventKind::QueueChanged,
        EventKind::Away,
        EventKind::Time,
        EventKind::Rated,
        EventKind::Type,
        EventKind::Service,
        EventKind::ChangeSubmitted,
        EventKind::Approval,
        EventKind::ApprovalRefused,
        EventKind::ChangeApproved,
        EventKind::ChangeRejected,
        EventKind::ApprovalReminder,
        EventKind::ProblemLinked,
        EventKind::LinkedResolved,
        EventKind::Task,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Threaded => "threaded",
            EventKind::Threading => "threading",
            EventKind::FollowUp => "follow-up",
            EventKind::AckSuppressed => "ack-suppressed",
            EventKind::MailFailed => "mail-failed",
            EventKind::Defect => "defect",
            EventKind::Automatic => "automatic",
            EventKind::Technician => "technician",
            EventKind::NotVerified => "not-verified",
            EventKind::NotRelayed => "not-relayed",
            EventKind::CommandsRejected => "commands-rejected",
            EventKind::Status => "status",
            EventKind::Priority => "priority",
            EventKind::Assigned => "assigned",
            EventKind::WatcherAdded => "watcher-added",
            EventKind::WatcherRemoved => "watcher-removed",
            EventKind::FirstResponse => "first-response",
            EventKind::Merged => "merged",
            EventKind::MergeRefused => "merge-refused",
            EventKind::Escalation => "escalation",
            EventKind::RateLimited => "rate-limited",
            EventKind::Oversized => "oversized",
            EventKind::AttachmentsSkipped => "attachments-skipped",
            EventKind::DeliveryReport => "delivery-report",
            EventKind::DeliveryFailed => "delivery-failed",
            EventKind::DeliveryUnconfirmed => "delivery-unconfirmed",
            EventKind::DeliveryUncertain => "delivery-uncertain",
            EventKind::Held => "held",
            EventKind::Accepted => "accepted",
            EventKind::Promoted => "promoted",
            EventKind::DuplicateMessageId => "duplicate-message-id",
            EventKind::AddressRedacted => "address-redacted",
            EventKind::WatchersCapped => "watchers-capped",
            EventKind::RawDropped => "raw-dropped",
            EventKind::TicketsDeleted => "tickets-deleted",
            EventKind::Erased => "erased",
            EventKind::Routed => "routed",
            EventKind::QueueChanged => "queue",
            EventKind::Away => "away",
            EventKind::Time => "time",
            EventKind::Rated => "rated",
            EventKind::Type => "type",
            EventKind::Service => "service",
            EventKind::ChangeSubmitted => "change-submitted",
            EventKind::Approval => "approval",
            EventKind::ApprovalRefused => "approval-refused",
            EventKind::ChangeApproved => "change-approved",
            EventKind::ChangeRejected => "change-rejected",
            EventKind::ApprovalReminder => "approval-reminder",
            EventKind::ProblemLinked => "problem-linked",
            EventKind::LinkedResolved => "linked-resolved",
            EventKind::Task => "task",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Unix seconds as RFC 3339 in UTC, the form every JSON time takes.
pub fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map(|t| t.to_string()).unwrap_or_else(|_| secs.to_string())
}

/// What is removed from the database once tickets have been closed a while (see
/// `store::retention`). Both off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep only the header block of each message of a ticket closed this long (its text,
    /// metadata, attachment names and events stay).
    pub drop_raw_after: Option<std::time::Duration>,
    /// Delete tickets closed this long, with everything about them.
    pub delete_after: Option<std::time::Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_approved_by_enough_approvals_and_rejected_when_they_cannot_come() {
        use ApprovalState::*;
        // Two of three.
        let two = Required::AtLeast(2);
        assert_eq!(two.outcome(3, 1, 0), Pending);
        assert_eq!(two.outcome(3, 2, 0), Approved);
        assert_eq!(two.outcome(3, 1, 1), Pending);
        assert_eq!(two.outcome(3, 0, 2), Rejected);
        assert_eq!(two.outcome(3, 1, 2), Rejected);
        // Any: one approval; rejected only when everyone rejected.
        assert_eq!(Required::Any.outcome(3, 1, 2), Approved);
        assert_eq!(Required::Any.outcome(3, 0, 2), Pending);
        assert_eq!(Required::Any.outcome(3, 0, 3), Rejected);
        // All: one rejection is a veto.
        assert_eq!(Required::All.outcome(3, 2, 0), Pending);
        assert_eq!(Required::All.outcome(3, 2, 1), Rejected);
        assert_eq!(Required::All.outcome(3, 3, 0), Approved);
        // More required than there are approvers: all of them.
        assert_eq!(Required::AtLeast(5).outcome(2, 2, 0), Approved);
    }

    #[test]
    fn event_kind_names_are_distinct_and_every_kind_is_listed() {
        let names: std::collections::HashSet<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), EventKind::ALL.len());
        // `as_str` is an exhaustive match, so a kind missing from ALL would still have a name;
        // the README lists every name that ALL holds.
        let readme = include_str!("../README.md");
        for name in names {
            assert!(readme.contains(&format!("`{name}`")), "event kind {name} is not documented in the README");
        }
    }
}
