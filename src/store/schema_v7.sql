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
