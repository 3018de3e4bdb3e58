-- v4: who is a participant of a ticket includes everyone the desk mailed on it; a mail that threads
-- by subject tag alone from anyone else is held (see inbound::record). This index answers
-- "did the desk mail this address on this ticket?" without a scan of the outbox.
CREATE INDEX outbox_ticket_recipient ON outbox(ticket_id, recipient);
-- Two different messages may share a Message-ID (scanners, printers, broken mailers); only the same
-- message is a duplicate. The digest of a message's content tells them apart (see inbound::parse).
ALTER TABLE messages ADD COLUMN content_sha256 TEXT;
