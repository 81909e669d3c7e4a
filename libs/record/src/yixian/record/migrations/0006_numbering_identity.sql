-- A restored database numbers in a new epoch too (ADR 16). Each partner's numbering keeps
-- the identity of the database that gave its numbers: the database's OID (a dump loaded
-- into a new database gets a new one) and, where the role may read it, the cluster's
-- timeline (a backup restored to a point in time continues on a new timeline). When the
-- relay finds another identity, the partner's numbering starts a new, later epoch, so
-- numbers given after the backup was taken are never given again.
CREATE FUNCTION yixian_numbering_identity() RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    timeline text := '-';
BEGIN
    BEGIN
        SELECT timeline_id::text INTO timeline FROM pg_control_checkpoint();
    EXCEPTION WHEN insufficient_privilege THEN
        timeline := '-';
    END;
    RETURN (SELECT oid::text FROM pg_database WHERE datname = current_database())
        || '/' || timeline;
END $$;

ALTER TABLE pair_sequences ADD COLUMN numbered_in text;
UPDATE pair_sequences SET numbered_in = yixian_numbering_identity();
ALTER TABLE pair_sequences ALTER COLUMN numbered_in SET NOT NULL;
