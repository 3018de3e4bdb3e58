-- v3: raw messages leave `messages` for a table of their own. A raw message of tens of KB filled
-- a whole 16 KiB table page, so each lookup of a message's metadata (threading, rate limits, the
-- SLA refresh, listings) read a page of someone's attachment from disk: in a 10,000-message
-- backlog, a fifth of the recording time went to the two rate-limit counts alone. Now `messages`
-- holds only metadata, many rows a page, and stays in SQLite's cache.
CREATE TABLE message_raw (
    message_id INTEGER PRIMARY KEY REFERENCES messages(id),
    raw        BLOB NOT NULL
);
INSERT INTO message_raw(message_id, raw) SELECT id, raw FROM messages WHERE raw IS NOT NULL;
ALTER TABLE messages DROP COLUMN raw;

-- The two rate-limit counts run for every automatic mail; with `kind` in their indexes they are
-- answered from the index alone, without reading a row of `messages` (`direction` is there only
-- so that SQLite's planner sees the index covers the query).
DROP INDEX messages_out_to;
CREATE INDEX messages_out_to ON messages(to_addrs, kind, sent_at, direction) WHERE direction = 'out';
CREATE INDEX messages_out_ticket ON messages(ticket_id, kind, sent_at, direction) WHERE direction = 'out';
