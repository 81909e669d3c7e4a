-- Arrivals reach a person: every organization can be reached by SMS too, and notify reads
-- the number through the registry's view organization_contacts (ADR 17). The columns the
-- view had stay as they were; the number is added at the end.
ALTER TABLE organizations ADD COLUMN contact_sms text;

CREATE OR REPLACE VIEW organization_contacts AS
SELECT org_id, path, name, parent_id IS NULL AS root,
       secretary_name, contact_email, contact_phone, webhook_url, contact_sms
  FROM organizations;
