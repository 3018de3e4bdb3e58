-- v5: every byte stored once. An outbound mail that passes on a requester's files no longer holds
-- its own copy of them: its stored bytes have a hole where each file's base64 text goes, and the
-- sender fills the holes from the inbound message, which keeps the files anyway. Before, a 236 MB
-- mailbox made a 756 MB database with two technicians (every notification a full copy).
CREATE TABLE outbound_files (
    message_id     INTEGER NOT NULL REFERENCES messages(id),
    position       INTEGER NOT NULL,
    -- Byte offset in the outbound message's stored bytes.
    hole           INTEGER NOT NULL,
    source_message INTEGER NOT NULL REFERENCES messages(id),
    -- The file's position among the source message's attachments (as `attachments.part`).
    part           INTEGER NOT NULL,
    PRIMARY KEY (message_id, position)
) WITHOUT ROWID;
CREATE INDEX outbound_files_source ON outbound_files(source_message);
-- "Is a copy of this mail still waiting?", asked after every send.
CREATE INDEX outbox_message ON outbox(message_id);
-- The sender settles rows a crash left `sending` at start, inside a write transaction: without this
-- it scans the whole outbox (millions of rows after years) while every other writer waits.
CREATE INDEX outbox_sending ON outbox(id) WHERE status = 'sending';

-- Retention (store::retention) finds tickets by when they were closed, and deleting one must clear
-- the references of tickets merged into it or following it up without scanning every ticket.
CREATE INDEX tickets_closed ON tickets(closed_at) WHERE status = 'closed';
CREATE INDEX tickets_merged_into ON tickets(merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX tickets_follow_up_of ON tickets(follow_up_of) WHERE follow_up_of IS NOT NULL;
-- Erasure (rare, by hand) scans for a person's mail and tickets instead of indexes by address:
-- each index with random keys costs every ingested message a page write, and in a database of
-- millions of messages those writes made ingest measurably slower (benches/scale.rs).

-- Once every copy of an outbound mail is sent (or given up), only its header block is kept; its
-- text stays in `messages`. Retention also trims inbound messages to their header block. NULL: whole.
ALTER TABLE message_raw ADD COLUMN trimmed_at INTEGER;

UPDATE message_raw SET raw = substr(raw, 1, instr(raw, x'0d0a0d0a') + 3), trimmed_at = CAST(strftime('%s', 'now') AS INTEGER)
WHERE instr(raw, x'0d0a0d0a') > 0
  AND message_id IN (SELECT id FROM messages WHERE direction = 'out')
  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = message_raw.message_id AND o.status IN ('pending', 'sending'));

-- The counts `maildesk status` and the metrics show, kept by triggers in the same transactions as
-- the rows they count: counting millions of messages and outbox rows on every call does not scale.
CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO counters(name, n) SELECT 'messages_in', count(*) FROM messages WHERE direction = 'in';
INSERT INTO counters(name, n) SELECT 'outbox_pending', count(*) FROM outbox WHERE status = 'pending';
INSERT INTO counters(name, n) SELECT 'outbox_sending', count(*) FROM outbox WHERE status = 'sending';
INSERT INTO counters(name, n) SELECT 'outbox_sent', count(*) FROM outbox WHERE status = 'sent';
INSERT INTO counters(name, n) SELECT 'outbox_failed', count(*) FROM outbox WHERE status = 'failed';
INSERT INTO counters(name, n) SELECT 'tickets_open', count(*) FROM tickets WHERE status = 'open';
INSERT INTO counters(name, n) SELECT 'tickets_pending', count(*) FROM tickets WHERE status = 'pending';
INSERT INTO counters(name, n) SELECT 'tickets_resolved', count(*) FROM tickets WHERE status = 'resolved';
INSERT INTO counters(name, n) SELECT 'tickets_closed', count(*) FROM tickets WHERE status = 'closed';
INSERT INTO counters(name, n) SELECT 'tickets_automatic', count(*) FROM tickets WHERE automatic = 1;

CREATE TRIGGER count_message_in AFTER INSERT ON messages WHEN NEW.direction = 'in'
BEGIN UPDATE counters SET n = n + 1 WHERE name = 'messages_in'; END;
CREATE TRIGGER count_message_in_gone AFTER DELETE ON messages WHEN OLD.direction = 'in'
BEGIN UPDATE counters SET n = n - 1 WHERE name = 'messages_in'; END;

CREATE TRIGGER count_outbox AFTER INSERT ON outbox
BEGIN UPDATE counters SET n = n + 1 WHERE name = 'outbox_' || NEW.status; END;
CREATE TRIGGER count_outbox_status AFTER UPDATE OF status ON outbox WHEN OLD.status <> NEW.status
BEGIN
    UPDATE counters SET n = n - 1 WHERE name = 'outbox_' || OLD.status;
    UPDATE counters SET n = n + 1 WHERE name = 'outbox_' || NEW.status;
END;
CREATE TRIGGER count_outbox_gone AFTER DELETE ON outbox
BEGIN UPDATE counters SET n = n - 1 WHERE name = 'outbox_' || OLD.status; END;

CREATE TRIGGER count_ticket AFTER INSERT ON tickets
BEGIN
    UPDATE counters SET n = n + 1 WHERE name = 'tickets_' || NEW.status;
    UPDATE counters SET n = n + NEW.automatic WHERE name = 'tickets_automatic';
END;
CREATE TRIGGER count_ticket_change AFTER UPDATE OF status, automatic ON tickets
WHEN OLD.status <> NEW.status OR OLD.automatic <> NEW.automatic
BEGIN
    UPDATE counters SET n = n - 1 WHERE name = 'tickets_' || OLD.status;
    UPDATE counters SET n = n + 1 WHERE name = 'tickets_' || NEW.status;
    UPDATE counters SET n = n - OLD.automatic + NEW.automatic WHERE name = 'tickets_automatic';
END;
CREATE TRIGGER count_ticket_gone AFTER DELETE ON tickets
BEGIN
    UPDATE counters SET n = n - 1 WHERE name = 'tickets_' || OLD.status;
    UPDATE counters SET n = n - OLD.automatic WHERE name = 'tickets_automatic';
END;

INSERT INTO counters(name, n) SELECT 'breached_first_response', count(*) FROM tickets WHERE first_response_breached = 1;
INSERT INTO counters(name, n) SELECT 'breached_resolution', count(*) FROM tickets WHERE resolution_breached = 1;
INSERT INTO counters(name, n) SELECT 'escalations_fired', count(*) FROM sla_fired;
CREATE TRIGGER count_breach AFTER UPDATE OF first_response_breached, resolution_breached ON tickets
WHEN OLD.first_response_breached <> NEW.first_response_breached OR OLD.resolution_breached <> NEW.resolution_breached
BEGIN
    UPDATE counters SET n = n - OLD.first_response_breached + NEW.first_response_breached
        WHERE name = 'breached_first_response';
    UPDATE counters SET n = n - OLD.resolution_breached + NEW.resolution_breached WHERE name = 'breached_resolution';
END;
CREATE TRIGGER count_breach_new AFTER INSERT ON tickets WHEN NEW.first_response_breached + NEW.resolution_breached > 0
BEGIN
    UPDATE counters SET n = n + NEW.first_response_breached WHERE name = 'breached_first_response';
    UPDATE counters SET n = n + NEW.resolution_breached WHERE name = 'breached_resolution';
END;
CREATE TRIGGER count_breach_gone AFTER DELETE ON tickets WHEN OLD.first_response_breached + OLD.resolution_breached > 0
BEGIN
    UPDATE counters SET n = n - OLD.first_response_breached WHERE name = 'breached_first_response';
    UPDATE counters SET n = n - OLD.resolution_breached WHERE name = 'breached_resolution';
END;
CREATE TRIGGER count_escalation AFTER INSERT ON sla_fired
BEGIN UPDATE counters SET n = n + 1 WHERE name = 'escalations_fired'; END;
CREATE TRIGGER count_escalation_gone AFTER DELETE ON sla_fired
BEGIN UPDATE counters SET n = n - 1 WHERE name = 'escalations_fired'; END;
