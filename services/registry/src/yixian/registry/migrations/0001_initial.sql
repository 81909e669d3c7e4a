-- The registry's own tables; the registry is their only writer. The shared record
-- (movements, history, participations, outbox) is the node schema of yixian.runtime.

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
