-- "Present in an area", defined once. The registry's present list and notify's activity
-- invitations both read this view; neither writes it or repeats its rule.
--
-- Present at this node, in the organization org_id (whose path is org_path):
--   local:    a member of this node with no open movement (not away);
--   visiting: a member of another node whose open movement is hosted here and whom the
--             host has checked in, in the organization that checked the member in.
-- A visiting member marked lost contact is not present: the host does not know where the
-- member is. The movement stays in both sides' queues until contact is restored.
--
-- Only the origin's registry sets origin_org_id, so the local test covers this node's own
-- members (and uses movements_one_open_per_member). The open statuses are OriginStatus's
-- (yixian.contracts OPEN_ORIGIN_STATUSES); tests/contract/test_rules_once.py checks them.
CREATE VIEW people_present AS
SELECT mb.member_id, mb.name, mb.phone, mb.email, mb.org_id, o.path AS org_path,
       'local'::text AS presence, NULL::uuid AS movement_id, NULL::text AS origin
  FROM members mb
  JOIN organizations o USING (org_id)
 WHERE NOT EXISTS (
       SELECT 1 FROM movements mv
        WHERE mv.member_id = mb.member_id
          AND mv.origin_org_id IS NOT NULL
          AND mv.origin_status IN ('registered', 'transfer_requested'))
UNION ALL
SELECT mv.member_id, mv.origin_group -> 'member' ->> 'name',
       mv.origin_group -> 'contact' ->> 'phone', mv.origin_group -> 'contact' ->> 'email',
       mv.host_org_id, o.path, 'visiting', mv.movement_id, mv.origin::text
  FROM movements mv
  JOIN organizations o ON o.org_id = mv.host_org_id
 WHERE mv.host_status = 'checked_in'
   AND mv.origin_status IN ('registered', 'transfer_requested');
