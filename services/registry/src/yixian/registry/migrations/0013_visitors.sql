-- The unregistered visitor (口袋党员, ADR 21).
--
-- Host side: a person who turned up claiming membership of another node. The national ID
-- is kept as this node's keyed hash and masked form only (ADR 14), as members' are; one
-- claim per person and claimed origin (the unique key makes 20 identical requests one).
CREATE TABLE visitors (
    claim_id           uuid PRIMARY KEY,
    origin             char(6) NOT NULL,
    org_id             uuid NOT NULL REFERENCES organizations (org_id),
    name               text NOT NULL,
    national_id_hash   char(64) NOT NULL,
    national_id_masked text NOT NULL,
    contact            jsonb NOT NULL,
    asked_at           timestamptz NOT NULL,
    asked_by           text NOT NULL,
    due_on             date NOT NULL,
    UNIQUE (origin, national_id_hash)
);

-- Origin side: what this node found and decided for each claim a host asked of it (the
-- claims themselves are sync's, read through its view `visitor_claims_asked`).
-- `answered`: the answer with this result was put in the outbox.
CREATE TABLE visitor_claim_decisions (
    claim_id     uuid PRIMARY KEY,
    host         char(6) NOT NULL,
    result       text NOT NULL CHECK (result IN ('match', 'no_match', 'ambiguous')),
    candidates   integer NOT NULL,
    member_id    uuid REFERENCES members (member_id),
    movement_id  uuid,
    answered     boolean NOT NULL,
    decided_at   timestamptz NOT NULL,
    decided_by   text NOT NULL,
    CHECK ((result = 'match') = (member_id IS NOT NULL))
);
