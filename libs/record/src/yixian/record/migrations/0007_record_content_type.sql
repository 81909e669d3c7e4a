-- The content type of each record's value, which the relay sends as its `content-type`
-- header: an event is a CloudEvent in structured mode; a dead letter is plain JSON, not a
-- CloudEvent (ADR 23). Whoever writes the row knows which.
ALTER TABLE outbox ADD COLUMN content_type text NOT NULL
    DEFAULT 'application/cloudevents+json; charset=utf-8';
UPDATE outbox SET content_type = 'application/json' WHERE event_type = 'yixian.dead_letter';
