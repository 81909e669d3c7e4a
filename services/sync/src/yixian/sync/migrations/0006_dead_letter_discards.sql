-- A dead letter the operator gave up on (``yixian dlq discard``): kept, never applied again,
-- with when and why (who: the registry's audit log).
ALTER TABLE dead_letters ADD COLUMN discarded_at timestamptz, ADD COLUMN discard_reason text;
