-- The registry's read interface for the people and organizations other services reach:
-- notify reads these views, never the organizations and members tables (ADR 17; the
-- matrix in the registry's canvas, held against the SQL by tests/contract/test_ownership.py).
-- Nothing derived from a national ID is in them.

-- How an organization's secretary is reached; root: the node's root organization, the
-- last resort of every notice to a secretary.
CREATE VIEW organization_contacts AS
SELECT org_id, path, name, parent_id IS NULL AS root,
       secretary_name, contact_email, contact_phone, webhook_url
  FROM organizations;

-- How a member of this node is reached, in which organization (and its path, for a key's
-- subtree), and the joining date the political birthday counts from.
CREATE VIEW member_contacts AS
SELECT mb.member_id, mb.org_id, o.path AS org_path, mb.name, mb.phone, mb.email, mb.joined_on
  FROM members mb
  JOIN organizations o USING (org_id);
