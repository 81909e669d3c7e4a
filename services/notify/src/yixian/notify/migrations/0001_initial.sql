-- The notify service's own tables; it is their only writer.

-- The last status of each group notify has seen, to tell transitions apart.
CREATE TABLE notify_seen (
    movement_id uuid NOT NULL,
    group_name  text NOT NULL,
    version     integer NOT NULL,
    status      text NOT NULL,
    transfer    text,
    PRIMARY KEY (movement_id, group_name)
);

-- One row per (recipient, reason, occurrence): the key makes a notice happen once.
CREATE TABLE notices (
    notice_key      char(64) PRIMARY KEY,
    reason          text NOT NULL,
    recipient       text NOT NULL,
    channel         text NOT NULL,
    address         text,
    member_id       uuid,
    movement_id     uuid,
    language        text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    urgent          boolean NOT NULL DEFAULT false,
    mandatory       boolean NOT NULL DEFAULT false,
    trace_id        char(32),
    status          text NOT NULL CHECK (status IN ('pending', 'sent', 'suppressed', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at         timestamptz
);
CREATE INDEX notices_due ON notices (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notices_member ON notices (member_id);
CREATE INDEX notices_movement ON notices (movement_id);

CREATE TABLE opt_outs (
    member_id  uuid NOT NULL,
    channel    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (member_id, channel)
);
