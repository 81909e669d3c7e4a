-- How an organization's secretary is reached (read by the notify service).
ALTER TABLE organizations
    ADD COLUMN secretary_name text,
    ADD COLUMN contact_email  text,
    ADD COLUMN contact_phone  text,
    ADD COLUMN webhook_url    text;
