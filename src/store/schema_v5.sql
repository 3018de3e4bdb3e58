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

-- Retention (store::retention) finds tickets by when they were closed, and deleting one must clear
-- the references of tickets merged into it or following it up without scanning every ticket.
CREATE INDEX tickets_closed ON tickets(closed_at) WHERE status = 'closed';
CREATE INDEX tickets_merged_into ON tickets(merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX tickets_follow_up_of ON tickets(follow_up_of) WHERE follow_up_of IS NOT NULL;
-- Erasure finds a person's mail and the tickets they asked for.
CREATE INDEX messages_from ON messages(from_addr);
CREATE INDEX tickets_requester ON tickets(requester);
CREATE INDEX watchers_address ON watchers(address);

-- Once every copy of an outbound mail is sent (or given up), only its header block is kept; its
-- text stays in `messages`. Retention also trims inbound messages to their header block. NULL: whole.
ALTER TABLE message_raw ADD COLUMN trimmed_at INTEGER;

UPDATE message_raw SET raw = substr(raw, 1, instr(raw, x'0d0a0d0a') + 3), trimmed_at = CAST(strftime('%s', 'now') AS INTEGER)
WHERE instr(raw, x'0d0a0d0a') > 0
  AND message_id IN (SELECT id FROM messages WHERE direction = 'out')
  AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = message_raw.message_id AND o.status IN ('pending', 'sending'));
