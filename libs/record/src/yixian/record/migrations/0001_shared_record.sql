-- The node's shared record. Each column group has one writer: a movement's own group
-- (origin_* where this node is the origin, host_* where it is the host) is written by the
-- registry, the partner's group by the sync service. Participations are written where
-- they are recorded (registry, at the host) or received (sync, at the origin).

CREATE TABLE movements (
    movement_id    uuid PRIMARY KEY,
    origin         char(6) NOT NULL,
    host           char(6) NOT NULL,
    member_id      uuid NOT NULL,
    origin_version integer NOT NULL DEFAULT 0,
    origin_status  text,
    origin_group   jsonb,
    origin_org_id  uuid,
    host_version   integer NOT NULL DEFAULT 0,
    host_status    text,
    host_group     jsonb,
    host_org_id    uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (origin <> host)
);
CREATE INDEX movements_member ON movements (member_id);
CREATE INDEX movements_origin_org ON movements (origin_org_id);
CREATE INDEX movements_host_org ON movements (host_org_id);
CREATE INDEX movements_partner ON movements (origin, host);

CREATE TABLE movement_history (
    id          bigserial PRIMARY KEY,
    movement_id uuid NOT NULL,
    group_name  text NOT NULL CHECK (group_name IN ('origin', 'host')),
    version     integer NOT NULL,
    snapshot    jsonb NOT NULL,
    event_id    uuid,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (movement_id, group_name, version)
);

CREATE TABLE participations (
    participation_id uuid PRIMARY KEY,
    movement_id      uuid NOT NULL REFERENCES movements (movement_id),
    host_org_id      uuid NOT NULL,
    host_org_name    text NOT NULL,
    activity_id      uuid,
    kind             text NOT NULL,
    title            text NOT NULL,
    attended_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL,
    recorded_by      text NOT NULL
);
CREATE INDEX participations_movement ON participations (movement_id);

-- Transactional outbox: a change commits with its events; the relay publishes them.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid NOT NULL,
    event_type   text NOT NULL,
    topic        text NOT NULL,
    destination  char(6),
    pairseq      bigint,
    record_key   bytea NOT NULL,
    value        bytea NOT NULL,
    movement_id  uuid,
    trace_id     char(32) NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at timestamptz,
    UNIQUE (event_id, topic),
    UNIQUE (destination, pairseq)
);
CREATE INDEX outbox_pending ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_movement ON outbox (movement_id);

CREATE TABLE pair_sequences (
    destination   char(6) PRIMARY KEY,
    last_sequence bigint NOT NULL
);

CREATE FUNCTION outbox_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('yixian_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_wake AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake();

