-- v2: attachment bytes are no longer copied out of the message. `messages.raw` holds them already,
-- and the copy doubled what a backlog of attachments wrote. `part` is the attachment's position
-- among the message's attachments (as mail-parser lists them), so its bytes can be decoded from
-- the raw message again; `sha256` and `size` describe the decoded bytes.
CREATE TABLE attachments_v2 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES messages(id),
    part         INTEGER NOT NULL,
    name         TEXT,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL
);
INSERT INTO attachments_v2 (id, message_id, part, name, content_type, size, sha256)
    SELECT a.id, a.message_id,
           (SELECT count(*) FROM attachments b WHERE b.message_id = a.message_id AND b.id < a.id),
           a.name, a.content_type, a.size, a.sha256
    FROM attachments a;
DROP TABLE attachments;
ALTER TABLE attachments_v2 RENAME TO attachments;
CREATE INDEX attachments_message ON attachments(message_id);
DROP TABLE blobs;
