-- The registry's tables. The registry is their only writer, except the partner's group of
-- a movement (origin_* at a host node, host_* at an origin node), which the sync service
-- writes.

CREATE TABLE organizations (
    org_id       uuid PRIMARY KEY,
    parent_id    uuid REFERENCES organizations (org_id),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind         text NOT NULL,
    jurisdiction char(6) NOT NULL,
    path         text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organizations_path ON organizations (path text_pattern_ops);
CREATE UNIQUE INDEX organizations_one_root ON organizations ((true)) WHERE parent_id IS NULL;

CREATE TABLE members (
    member_id          uuid PRIMARY KEY,
    org_id             uuid NOT NULL REFERENCES organizations (org_id),
    name               text NOT NULL,
    joined_on          date NOT NULL,
    phone              text,
    email              text,
    national_id_hash   char(64) UNIQUE,
    national_id_masked text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX members_org ON members (org_id);

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
    activity_id      uuid,
    kind             text NOT NULL,
    title            text NOT NULL,
    attended_at      timestamptz NOT NULL,
    recorded_at      timestamptz NOT NULL,
    recorded_by      text NOT NULL
);
CREATE INDEX participations_movement ON participations (movement_id);

CREATE TABLE activities (
    activity_id  uuid PRIMARY KEY,
    org_id       uuid NOT NULL REFERENCES organizations (org_id),
    kind         text NOT NULL,
    title        text NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz,
    location     text NOT NULL,
    scheduled_by text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

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

CREATE TABLE audit_log (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor    text NOT NULL,
    role     text,
    action   text NOT NULL,
    target   text,
    outcome  text NOT NULL CHECK (outcome IN ('ok', 'denied', 'refused')),
    detail   jsonb NOT NULL DEFAULT '{}',
    trace_id char(32)
);
CREATE INDEX audit_log_target ON audit_log (target);

CREATE TABLE api_keys (
    key_id      uuid PRIMARY KEY,
    secret_hash char(64) NOT NULL,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('operator', 'secretary', 'auditor')),
    org_id      uuid NOT NULL REFERENCES organizations (org_id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE idempotency_keys (
    actor        text NOT NULL,
    key          text NOT NULL,
    request_hash char(64) NOT NULL,
    status       integer,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, key)
);
