-- A member the origin removed (除名, ADR 20) is recorded with the origin status 'removed'
-- in movements.origin_status (the group keeps its v1 status and the decision; registry and
-- sync write the column with yixian.contracts.recorded_status): every open-movement rule
-- (the one open movement per member, queues, schedules, present lists) leaves it out.
UPDATE movements SET origin_status = 'removed'
 WHERE origin_group -> 'decision' ->> 'standing' = 'removed';

-- Present: a removed member is not present at the origin (no longer a member) nor visiting
-- at the host (its movement is no longer open).
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
               OR mv.origin_status = 'transferred' OR mv.origin_status = 'removed'))
UNION ALL
SELECT mv.member_id, mv.origin_group -> 'member' ->> 'name',
       mv.origin_group -> 'contact' ->> 'phone', mv.origin_group -> 'contact' ->> 'email',
       mv.host_org_id, o.path, 'visiting', mv.movement_id, mv.origin::text
  FROM movements mv
  JOIN organizations o ON o.org_id = mv.host_org_id
 WHERE mv.host_status = 'checked_in'
   AND mv.origin_status IN ('registered', 'transfer_requested');

-- How a member of this node is reached: not a member transferred out, nor one removed.
CREATE OR REPLACE VIEW member_contacts AS
SELECT mb.member_id, mb.org_id, o.path AS org_path, mb.name, mb.phone, mb.email, mb.joined_on
  FROM members mb
  JOIN organizations o USING (org_id)
 WHERE NOT EXISTS (
       SELECT 1 FROM movements mv
        WHERE mv.member_id = mb.member_id
          AND mv.origin_org_id IS NOT NULL
          AND (mv.origin_status = 'transferred' OR mv.origin_status = 'removed'));
