-- A completed transfer moves the member (ADR 19).
--
-- At the host, a member enrolled after a transfer keeps a link back to the movement and
-- its origin; one member per movement, decided by the unique index (twenty identical
-- enrolments at once make one member).
ALTER TABLE members ADD COLUMN transferred_from char(6);
ALTER TABLE members ADD COLUMN transfer_movement_id uuid;
ALTER TABLE members ADD CONSTRAINT members_transferred_in_once UNIQUE (transfer_movement_id);

-- At the origin, a member whose transfer completed ('transferred') and who has no open
-- movement is transferred out (domain.member_status): kept for history, present nowhere
-- here and reached by none of this node's notices. A member away (an open movement) is
-- not present either, as before. The open statuses are OriginStatus's (yixian.contracts
-- OPEN_ORIGIN_STATUSES; tests/contract/test_rules_once.py checks them).
CREATE OR REPLACE VIEW people_present AS
SELECT mb.member_id, mb.name, mb.phone, mb.email, mb.org_id, o.path AS org_path,
       'local'::text AS presence, NULL::uuid AS movement_id, NULL::text AS origin
  FROM members mb
  JOIN organizations o USING (org_id)
 WHERE NOT EXISTS (
       SELECT 1 FROM movements mv
        WHERE mv.member_id = mb.member_id
          AND mv.origin_org_id IS NOT NULL
          AND (mv.origin_status IN ('registered', 'transfer_requested')
               OR mv.origin_status = 'transferred'))
UNION ALL
SELECT mv.member_id, mv.origin_group -> 'member' ->> 'name',
       mv.origin_group -> 'contact' ->> 'phone', mv.origin_group -> 'contact' ->> 'email',
       mv.host_org_id, o.path, 'visiting', mv.movement_id, mv.origin::text
  FROM movements mv
  JOIN organizations o ON o.org_id = mv.host_org_id
 WHERE mv.host_status = 'checked_in'
   AND mv.origin_status IN ('registered', 'transfer_requested');

-- How a member of this node is reached: not a member transferred out (the host, the
-- member's organization now, sends the political birthday and every other notice; no
-- outflow can be registered for a member transferred out, so none is also away).
CREATE OR REPLACE VIEW member_contacts AS
SELECT mb.member_id, mb.org_id, o.path AS org_path, mb.name, mb.phone, mb.email, mb.joined_on
  FROM members mb
  JOIN organizations o USING (org_id)
 WHERE NOT EXISTS (
       SELECT 1 FROM movements mv
        WHERE mv.member_id = mb.member_id
          AND mv.origin_org_id IS NOT NULL
          AND mv.origin_status = 'transferred');

-- The origin's registry follows a host's forward (ADR 19): the movements it has to follow.
CREATE INDEX movements_forwarded_to_follow ON movements (movement_id)
    WHERE origin_org_id IS NOT NULL AND origin_status = 'registered'
      AND host_status = 'forwarded';
