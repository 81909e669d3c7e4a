-- Request fingerprints written before they were keyed with the node's own secret (ADR 14)
-- are a plain SHA-256 of the request: next to the masked national ID of a stored
-- response, a copy of this table was enough to find the number. The key is not in the
-- database, so they cannot be keyed here; they become a value no fingerprint equals. A
-- retry of such a request is refused as a reuse of its key (422), never run twice.
-- (A streamed import's fingerprint, all zeros, was never derived from its body.)
UPDATE idempotency_keys SET request_hash = repeat('-', 64)
    WHERE request_hash <> repeat('0', 64);
