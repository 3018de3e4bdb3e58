-- v6: queues. A ticket belongs to one queue (NULL: the first queue, as every ticket from before
-- queues); auto-assignment keeps what makes it fair across restarts; technicians mark themselves away.
ALTER TABLE tickets ADD COLUMN queue TEXT;
-- "How many open tickets has each team member?", asked for each ticket least-open assigns, and
-- `tickets --assignee`: without it, a scan of every open ticket.
CREATE INDEX tickets_assignee ON tickets(assignee, status) WHERE assignee IS NOT NULL;
CREATE INDEX tickets_queue ON tickets(queue, status);

-- The last ticket auto-assignment gave each technician in each queue: round-robin goes on after
-- the newest, least-open breaks ties by the oldest.
CREATE TABLE auto_assigned (
    queue      TEXT NOT NULL,
    technician TEXT NOT NULL,
    ticket_id  INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (queue, technician)
) WITHOUT ROWID;

-- Technicians away (`#away [until DATE]`): nobody away is auto-assigned. `until` NULL: until `#back`.
CREATE TABLE away (
    technician TEXT PRIMARY KEY,
    since      INTEGER NOT NULL,
    until      INTEGER
) WITHOUT ROWID;
