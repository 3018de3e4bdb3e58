-- v7: time spent on tickets (`#time 30m`), summed per ticket in `show` and per technician and
-- queue in `report`.
CREATE TABLE time_entries (
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    technician TEXT NOT NULL,
    minutes    INTEGER NOT NULL CHECK (minutes > 0),
    at         INTEGER NOT NULL
);
CREATE INDEX time_entries_ticket ON time_entries(ticket_id);
CREATE INDEX time_entries_at ON time_entries(at);

-- Full-text search over what people wrote (`maildesk search`): the subject and new text of every
-- inbound message, indexed by FTS5 as external content of `messages` (nothing stored twice).
-- Outbound mail is the desk's own templates around those texts, and queries by mail ask rather than
-- tell, so neither is indexed.
-- `secure-delete`: a message erased on request leaves no trace in the index either.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    subject, body_text, content = 'messages', content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO messages_fts(messages_fts, rank) VALUES ('secure-delete', 1);
INSERT INTO messages_fts(rowid, subject, body_text)
    SELECT id, subject, body_text FROM messages WHERE direction = 'in' AND kind NOT LIKE 'query%';
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN NEW.direction = 'in' AND NEW.kind NOT LIKE 'query%'
BEGIN
    INSERT INTO messages_fts(rowid, subject, body_text) VALUES (NEW.id, NEW.subject, NEW.body_text);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages WHEN OLD.direction = 'in' AND OLD.kind NOT LIKE 'query%'
BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, subject, body_text)
        VALUES ('delete', OLD.id, OLD.subject, OLD.body_text);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF subject, body_text ON messages
    WHEN OLD.direction = 'in' AND OLD.kind NOT LIKE 'query%'
BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, subject, body_text)
        VALUES ('delete', OLD.id, OLD.subject, OLD.body_text);
    INSERT INTO messages_fts(rowid, subject, body_text) VALUES (NEW.id, NEW.subject, NEW.body_text);
END;

-- Digests dealt with, once per kind, period and recipient (`sent` 0: there was nothing to report).
CREATE TABLE digests_sent (
    kind      TEXT NOT NULL,
    period    TEXT NOT NULL,
    recipient TEXT NOT NULL,
    sent      INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    PRIMARY KEY (kind, period, recipient)
) WITHOUT ROWID;

-- Satisfaction: the requester's rating of a resolved ticket (1-5; the last one counts) and comment.
CREATE TABLE ratings (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    score     INTEGER NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment   TEXT NOT NULL DEFAULT '',
    rater     TEXT,
    at        INTEGER NOT NULL
);
CREATE INDEX ratings_at ON ratings(at);

-- A ticket's type (incident, request, change, problem); NULL until a routing rule or `#type` sets it.
ALTER TABLE tickets ADD COLUMN type TEXT;
