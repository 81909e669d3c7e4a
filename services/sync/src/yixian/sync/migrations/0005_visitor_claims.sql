-- The unregistered visitor (ADR 21). sync keeps what partners asked and answered about
-- visitors; the registry reads it through the two views, never the tables (ADR 17).
--
-- Claims asked of this node (this node is the claimed origin): the name and the last
-- four characters of the national ID, nothing else (no number, no hash of it).
CREATE TABLE visitor_claims_received (
    claim_id    uuid PRIMARY KEY,
    host        char(6) NOT NULL,
    name        text NOT NULL,
    id_ending   char(4) NOT NULL,
    asked_at    timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Answers to this node's claims (this node is the host): the latest answer per claim.
CREATE TABLE visitor_answers_received (
    claim_id    uuid PRIMARY KEY,
    origin      char(6) NOT NULL,
    result      text NOT NULL CHECK (result IN ('match', 'no_match', 'ambiguous')),
    movement_id uuid,
    answered_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE VIEW visitor_claims_asked AS
    SELECT claim_id, host, name, id_ending, asked_at, received_at
      FROM visitor_claims_received;

CREATE VIEW visitor_claim_answers AS
    SELECT claim_id, origin, result, movement_id, answered_at, received_at
      FROM visitor_answers_received;
