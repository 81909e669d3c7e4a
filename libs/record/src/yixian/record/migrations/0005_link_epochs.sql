-- The link epoch of each partner's numbering (ADR 16): microseconds since 1970 when its
-- row was created, so a rebuilt database, which has no row, numbers in a new, later epoch
-- and no (epoch, number) ever names two events. Rows from before epochs keep epoch 0.
ALTER TABLE pair_sequences ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE pair_sequences ALTER COLUMN epoch
    SET DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;

-- The epoch of a numbered row's pairseq, given with it: a row sent again carries both.
-- A number is unique within its epoch.
ALTER TABLE outbox ADD COLUMN pairepoch bigint;
UPDATE outbox SET pairepoch = 0 WHERE pairseq IS NOT NULL;
ALTER TABLE outbox DROP CONSTRAINT outbox_destination_pairseq_key;
ALTER TABLE outbox ADD CONSTRAINT outbox_destination_pairepoch_pairseq_key
    UNIQUE (destination, pairepoch, pairseq);
