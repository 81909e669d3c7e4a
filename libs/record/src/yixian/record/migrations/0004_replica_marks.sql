-- The (link epoch, pair number) of the partner's event that last set the partner's group of
-- each movement here (written by sync with that group). A repair copy the owner numbered
-- before it is stale: a copy still in flight when the owner wrote a newer version never
-- rolls the replica back (ADR 16). NULL: set before marks were kept; epoch 0: an event
-- from before link epochs.
ALTER TABLE movements ADD COLUMN partner_epoch bigint;
ALTER TABLE movements ADD COLUMN partner_pairseq bigint;
