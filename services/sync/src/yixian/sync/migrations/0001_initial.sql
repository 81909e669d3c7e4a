-- The sync service's own tables; it is their only writer.

-- Every event received from a partner, once: a redelivered event finds its row and is
-- not applied again.
CREATE TABLE inbox (
    source      char(6) NOT NULL,
    event_id    uuid NOT NULL,
    event_type  text NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    pairseq     bigint,
    movement_id uuid,
    outcome     text NOT NULL,
    trace_id    char(32),
    event_time  timestamptz,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (source, event_id)
);
CREATE INDEX inbox_received ON inbox (received_at);
CREATE INDEX inbox_movement ON inbox (movement_id);

-- The health of each link, as seen from this node: every number up to `contiguous` has
-- arrived; numbers beyond it wait in link_received until the gap before them closes.
CREATE TABLE links (
    partner                char(6) PRIMARY KEY,
    contiguous             bigint NOT NULL DEFAULT 0,
    partner_sent           bigint NOT NULL DEFAULT 0,
    missing_since          timestamptz,
    last_heartbeat_at      timestamptz,
    last_event_at          timestamptz,
    partner_view           jsonb,
    last_heartbeat_sent_at timestamptz,
    last_digest_sent_at    timestamptz,
    replay_requested_at    timestamptz,
    replay_requested_upto  bigint NOT NULL DEFAULT 0,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE link_received (
    partner     char(6) NOT NULL,
    seq         bigint NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (partner, seq)
);

-- What could not be accepted, with the reason and where it came from.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    record_key  bytea,
    value       bytea NOT NULL,
    reason      text NOT NULL,
    errors      jsonb NOT NULL DEFAULT '[]',
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    retried_at  timestamptz,
    UNIQUE (topic, partition, "offset")
);
