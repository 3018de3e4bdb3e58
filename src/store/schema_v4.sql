-- v4: who is a participant of a ticket includes everyone the desk mailed on it; a mail that threads
-- by subject tag alone from anyone else is held (see inbound::record). This index answers
-- "did the desk mail this address on this ticket?" without a scan of the outbox.
CREATE INDEX outbox_ticket_recipient ON outbox(ticket_id, recipient);
-- Two different messages may share a Message-ID (scanners, printers, broken mailers); only the same
-- message is a duplicate. The digest of a message's content tells them apart (see message::parse).
ALTER TABLE messages ADD COLUMN content_sha256 TEXT;
-- Machine mail that threads to no ticket opens an automatic ticket: recorded, no SLA clock, nobody
-- notified (tickets --automatic lists them). A promoted one counts its clock from promotion.
ALTER TABLE tickets ADD COLUMN automatic INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN promoted_at INTEGER;
