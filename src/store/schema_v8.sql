-- v8: IT service management. A ticket's service; problems and the incidents linked to them;
-- request templates' child tickets; changes and their approvals.
ALTER TABLE tickets ADD COLUMN service TEXT;
-- The problem this incident is linked to (`#problem N`).
ALTER TABLE tickets ADD COLUMN problem_id INTEGER REFERENCES tickets(id);
-- The request whose template spawned this task.
ALTER TABLE tickets ADD COLUMN parent_id INTEGER REFERENCES tickets(id);
-- A change: its version (0: never submitted; each submission is a new version, and approvals are
-- of one version), where it stands, when the version was submitted, the version last reminded.
ALTER TABLE tickets ADD COLUMN change_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN approval TEXT CHECK (approval IN ('pending', 'approved', 'rejected'));
ALTER TABLE tickets ADD COLUMN approval_asked_at INTEGER;
ALTER TABLE tickets ADD COLUMN approval_reminded INTEGER NOT NULL DEFAULT 0;
CREATE INDEX tickets_problem ON tickets(problem_id) WHERE problem_id IS NOT NULL;
CREATE INDEX tickets_parent ON tickets(parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX tickets_service ON tickets(service, status) WHERE service IS NOT NULL;
CREATE INDEX tickets_approval_pending ON tickets(approval_asked_at) WHERE approval = 'pending';

-- Each approver's decision on one version of a change; the first decision of an approver on a
-- version stands.
CREATE TABLE approvals (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    version   INTEGER NOT NULL,
    approver  TEXT NOT NULL,
    decision  TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    reason    TEXT NOT NULL DEFAULT '',
    proof     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, version, approver)
);
