-- Replay requests back off: how many this node sent for the gap now open on a link.
ALTER TABLE links ADD COLUMN replay_attempts integer NOT NULL DEFAULT 0;

-- The runs of numbers this node replayed to a partner lately: each is answered once per
-- interval, however often it is asked for.
CREATE TABLE replays_answered (
    partner     char(6) NOT NULL,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL,
    answered_at timestamptz NOT NULL
);
CREATE INDEX replays_answered_partner ON replays_answered (partner, answered_at);
