-- A key is identified by its id (audit actor and idempotency scope are 'key:<key id>');
-- its name is how people tell keys apart, so no two keys of the node share one, revoked
-- keys included (an audit row's key stays unambiguous by name too).
-- Keys issued earlier under a name already taken keep working: all but the oldest are
-- renamed '<name>-<key id without dashes>' (at most 100 characters, as the API allows).
-- Audit rows and idempotency keys written before stay as they were ('key:<name>').
UPDATE api_keys k
   SET name = left(k.name, 67) || '-' || replace(k.key_id::text, '-', '')
  FROM (SELECT key_id,
               row_number() OVER (PARTITION BY name ORDER BY created_at, key_id) AS n
          FROM api_keys) d
 WHERE d.key_id = k.key_id AND d.n > 1;

CREATE UNIQUE INDEX api_keys_name ON api_keys (name);

-- The registry's read interface for API keys: every service of the node authenticates
-- through it (yixian.runtime.apikeys) and none writes api_keys. Active keys only, with
-- their organization's path; node_wide: bound to the root organization.
CREATE VIEW api_key_principals AS
SELECT k.key_id, k.secret_hash, k.name, k.role, k.org_id,
       o.path AS org_path, o.parent_id IS NULL AS node_wide
  FROM api_keys k
  JOIN organizations o USING (org_id)
 WHERE k.revoked_at IS NULL;
