-- Link epochs (ADR 16): each link follows one numbering space of its partner. `epoch` is
-- the partner's epoch the link's numbers (contiguous, partner_sent, link_received) are
-- of; 0: numbers from before epochs, or nothing received yet. A later epoch starts the
-- link afresh; numbers of an older one count for nothing. `older_highest`: the highest
-- number seen in the older epochs, the reach of a straggler's number.
ALTER TABLE links ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE links ADD COLUMN older_highest bigint NOT NULL DEFAULT 0;

ALTER TABLE link_received ADD COLUMN epoch bigint NOT NULL DEFAULT 0;
ALTER TABLE link_received DROP CONSTRAINT link_received_pkey;
ALTER TABLE link_received ADD PRIMARY KEY (partner, epoch, seq);
