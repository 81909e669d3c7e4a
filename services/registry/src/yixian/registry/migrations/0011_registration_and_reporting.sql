-- Registration (issue #15, point 7): the origin node issues the mobile member certificate
-- (流动党员活动证). Its number is <node>-<year>-<sequence> (domain/certificate.py); the
-- sequence of a year is this node's counter, taken under the row's lock in the
-- registration's transaction, so a registration that fails gives its number back and a
-- year's numbers have no gaps. Each number is kept once, with the movement it was issued
-- for (a relocation's successor carries the same certificate and issues none).
CREATE TABLE certificate_counters (
    year          integer PRIMARY KEY CHECK (year BETWEEN 1000 AND 9999),
    last_sequence integer NOT NULL CHECK (last_sequence > 0)
);

CREATE TABLE certificates (
    number      text PRIMARY KEY,
    year        integer NOT NULL,
    sequence    integer NOT NULL CHECK (sequence > 0),
    movement_id uuid NOT NULL UNIQUE,
    member_id   uuid NOT NULL REFERENCES members (member_id),
    issued_on   date NOT NULL,
    issued_by   text NOT NULL,
    CONSTRAINT certificates_year_sequence UNIQUE (year, sequence)
);
CREATE INDEX certificates_member ON certificates (member_id);

-- Reporting (point 8): the audit log is filtered by actor and by time.
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_at ON audit_log (at);
