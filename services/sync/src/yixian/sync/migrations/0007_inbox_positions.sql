-- Where each received event lies on its topic, searchable: the operator's trace starts
-- reading what sync has not read yet one past the highest offset recorded per partition
-- (ADR 10), a look-up in this index rather than a scan of every event ever received.
CREATE INDEX inbox_position ON inbox (topic, partition, "offset");
