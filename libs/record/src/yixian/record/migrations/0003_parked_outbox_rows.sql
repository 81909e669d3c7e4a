-- A row the relay cannot publish for a reason of its own (too large, its topic not
-- writable by the node's principal, no such topic) is parked with the reason instead of
-- stopping the relay; the operator retries (parked_at back to NULL) or discards it
-- (discarded_at; it is never sent). Waiting rows: published_at and parked_at both NULL.
ALTER TABLE outbox ADD COLUMN parked_at timestamptz;
ALTER TABLE outbox ADD COLUMN park_reason text;
ALTER TABLE outbox ADD COLUMN discarded_at timestamptz;
ALTER TABLE outbox ADD CONSTRAINT outbox_discarded_when_parked
    CHECK (discarded_at IS NULL OR (parked_at IS NOT NULL AND published_at IS NULL));

DROP INDEX outbox_pending;
CREATE INDEX outbox_waiting ON outbox (id) WHERE published_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_parked ON outbox (id)
    WHERE parked_at IS NOT NULL AND published_at IS NULL AND discarded_at IS NULL;

-- The rows waiting for an operator (``yixian outbox parked|retry|discard``).
CREATE VIEW parked_outbox AS
    SELECT * FROM outbox
    WHERE parked_at IS NOT NULL AND published_at IS NULL AND discarded_at IS NULL;
