-- Twenty identical requests at once have one effect: the database decides, not a check
-- made before an insert.

-- At most one open movement per member of this node. Only the origin's registry sets
-- origin_org_id (the sync service never does), so the index covers this node's own
-- members and never a partner's replica, whose movements may arrive in any order.
-- The open statuses are OriginStatus's (yixian.contracts); test_one_effect checks them.
CREATE UNIQUE INDEX movements_one_open_per_member ON movements (member_id)
    WHERE origin_org_id IS NOT NULL
      AND origin_status IN ('registered', 'transfer_requested');

-- A member without a national ID is the same member when the same organization registers
-- the same name, joining date and phone again.
CREATE UNIQUE INDEX members_natural_key ON members (org_id, name, joined_on, coalesce(phone, ''))
    WHERE national_id_hash IS NULL;

-- Two sibling organizations never share a name.
CREATE UNIQUE INDEX organizations_sibling_name ON organizations (parent_id, name);

-- An organization schedules one activity of a kind and title at one start time.
CREATE UNIQUE INDEX activities_once ON activities (org_id, kind, title, starts_at);

-- An idempotency key's first request may still be running (a streamed import spans
-- several transactions): status stays NULL until it finishes; a lease lets a retry take
-- over a request whose process died.
ALTER TABLE idempotency_keys ADD COLUMN lease_until timestamptz;

-- An import cut off mid-stream is audited as partial, with what it committed.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_outcome_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_outcome_check
    CHECK (outcome IN ('ok', 'denied', 'refused', 'partial'));
