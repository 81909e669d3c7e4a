-- What the operator's last retry of a dead letter (``yixian dlq retry``) came to.
ALTER TABLE dead_letters ADD COLUMN retry_outcome text;
