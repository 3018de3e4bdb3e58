-- maildesk schema, version 1. Times are Unix seconds (UTC).

-- The truth about what was processed: the highest UID applied per mailbox and UIDVALIDITY.
CREATE TABLE mailbox_state (
    mailbox      TEXT PRIMARY KEY,
    uid_validity INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL
);

CREATE TABLE tickets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    subject    TEXT NOT NULL,
    requester  TEXT,               -- lower-cased address; NULL when the first mail had no usable sender
    requester_name TEXT,
    status     TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    priority   TEXT NOT NULL DEFAULT 'P3',
    assignee   TEXT,               -- a technician's address
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    first_response_at INTEGER,     -- the first technician reply relayed to the requester
    resolved_at INTEGER,
    closed_at  INTEGER,
    merged_into INTEGER REFERENCES tickets(id),  -- mail to this number lands in that ticket
    follow_up_of INTEGER REFERENCES tickets(id), -- opened by a reply to a ticket closed long ago
    first_responder TEXT,          -- the technician whose reply was the first response
    -- SLA, kept current by store::sla::refresh whenever the ticket changes (see sla::clock):
    sla_next_at INTEGER,           -- when the next escalation level is reached; the sweep's index
    first_response_secs INTEGER,   -- business seconds to the first response, once met
    resolution_secs INTEGER,       -- business seconds to resolution, while resolved or closed
    first_response_breached INTEGER NOT NULL DEFAULT 0,
    resolution_breached INTEGER NOT NULL DEFAULT 0,
    first_response_due_at INTEGER, -- while the target runs: a breach is due_at <= now
    resolution_due_at INTEGER
);
CREATE INDEX tickets_status ON tickets(status, id);
CREATE INDEX tickets_sla_due ON tickets(sla_next_at) WHERE sla_next_at IS NOT NULL;
CREATE INDEX tickets_created ON tickets(created_at);

-- Every status a ticket took, and when: the SLA clocks' pauses come from here.
CREATE TABLE status_log (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    at        INTEGER NOT NULL,
    status    TEXT NOT NULL
);
CREATE INDEX status_log_ticket ON status_log(ticket_id, at);

-- Escalation levels that fired, once each per ticket, target and percentage.
CREATE TABLE sla_fired (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    target    TEXT NOT NULL CHECK (target IN ('first_response', 'resolution')),
    percent   INTEGER NOT NULL,
    fired_at  INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, target, percent)
);

-- Every mail in or out. Inbound rows keep the raw bytes; message_id is unique so a message seen
-- twice (another UID, a new UIDVALIDITY) is applied once.
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    INTEGER REFERENCES tickets(id),
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    message_id   TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL,    -- in: request | reply | automatic;  out: acknowledgement | ...
    mailbox      TEXT,
    uid_validity INTEGER,
    uid          INTEGER,
    from_addr    TEXT,
    from_name    TEXT,
    to_addrs     TEXT NOT NULL DEFAULT '',
    cc_addrs     TEXT NOT NULL DEFAULT '',
    subject      TEXT NOT NULL DEFAULT '',
    sent_at      INTEGER,          -- the Date header, when it parsed
    received_at  INTEGER NOT NULL, -- when maildesk recorded it
    body_text    TEXT NOT NULL DEFAULT '',  -- the new part only (quotes and signature stripped)
    internal     INTEGER NOT NULL DEFAULT 0, -- 1: technicians only (notes, commands, team copies)
    raw          BLOB,
    UNIQUE (mailbox, uid_validity, uid)
);
CREATE INDEX messages_ticket ON messages(ticket_id, id);
-- Rate limits count recent automatic mail per recipient.
CREATE INDEX messages_out_to ON messages(to_addrs, sent_at) WHERE direction = 'out';

-- People who get technicians' replies besides the requester (the requester's Cc, #cc).
CREATE TABLE watchers (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    address   TEXT NOT NULL,
    added_at  INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, address)
);

-- Attachment bytes, stored once per distinct content.
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    size   INTEGER NOT NULL,
    data   BLOB NOT NULL
);

-- The original file name is data shown to people, never used as a path.
CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES messages(id),
    name         TEXT,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL REFERENCES blobs(sha256)
);
CREATE INDEX attachments_message ON attachments(message_id);

-- One row per recipient: one refused RCPT must not block the others.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id      INTEGER NOT NULL REFERENCES messages(id),
    ticket_id       INTEGER REFERENCES tickets(id),
    envelope_from   TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    -- pending -> sending (just before the final "." of DATA) -> sent | failed; see outbound::sender
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    unconfirmed     INTEGER NOT NULL DEFAULT 0,  -- 1: sent when a crash hid the server's reply
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    sent_at         INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE status = 'pending';

-- What happened to a ticket that is not a message: suppressed acknowledgements, delivery failures, ...
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER REFERENCES tickets(id),
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL
);
CREATE INDEX events_ticket ON events(ticket_id, id);

-- Messages that could not become a ticket at all, with the raw bytes and the reason.
CREATE TABLE quarantine (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox      TEXT NOT NULL,
    uid_validity INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    raw          BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (mailbox, uid_validity, uid)
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
