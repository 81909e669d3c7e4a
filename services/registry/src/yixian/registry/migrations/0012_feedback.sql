-- Feedback (issue #16, point 1): a member (or a secretary on the member's behalf) raises a
-- concern with the host organization of an open movement, or with the origin; the
-- organization answers; the thread, its state and the time to first answer are kept here,
-- at the node of the organization it is addressed to. One effect per request is held by
-- the constraints, not by checks: the same concern of the same member, still open or
-- answered, is one row (feedback_once), and the same answer to one concern is one row
-- (feedback_answers_once).
CREATE TABLE feedback (
    feedback_id       uuid PRIMARY KEY,
    org_id            uuid NOT NULL REFERENCES organizations (org_id),
    movement_id       uuid,
    member_id         uuid NOT NULL,
    member_name       text NOT NULL,
    addressed_to      text NOT NULL CHECK (addressed_to IN ('host', 'origin')),
    text              text NOT NULL,
    text_digest       text NOT NULL,
    share_with_origin boolean NOT NULL,
    state             text NOT NULL CHECK (state IN ('open', 'answered', 'closed')),
    raised_at         timestamptz NOT NULL,
    raised_by         text NOT NULL,
    first_answered_at timestamptz,
    closed_at         timestamptz,
    closed_by         text,
    CHECK (state <> 'open' OR first_answered_at IS NULL),
    CHECK (state <> 'answered' OR first_answered_at IS NOT NULL),
    CHECK ((state = 'closed') = (closed_at IS NOT NULL))
);
CREATE UNIQUE INDEX feedback_once ON feedback (member_id, addressed_to, text_digest)
    WHERE state <> 'closed';
CREATE INDEX feedback_movement ON feedback (movement_id) WHERE movement_id IS NOT NULL;
CREATE INDEX feedback_org_raised ON feedback (org_id, raised_at);

CREATE TABLE feedback_answers (
    answer_id   uuid PRIMARY KEY,
    feedback_id uuid NOT NULL REFERENCES feedback (feedback_id),
    text        text NOT NULL,
    text_digest text NOT NULL,
    answered_at timestamptz NOT NULL,
    answered_by text NOT NULL,
    CONSTRAINT feedback_answers_once UNIQUE (feedback_id, text_digest)
);
