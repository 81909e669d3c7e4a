-- Secretaries find and look after their members (GET /v1/members, GET and PATCH
-- /v1/members/{id}): a member's address joins phone and email as a way to reach them, and
-- every key the search takes has an index.

ALTER TABLE members ADD COLUMN address text;

-- Name: a case-insensitive substring. pg_trgm finds no trigrams in Chinese characters under
-- the C ctype (show_trgm('张建国') is empty), so the index holds each name's characters and
-- pairs of characters, lower-cased: a substring's grams are among its name's, and the query
-- rechecks the substring itself (strpos). Names are short: a handful of entries a member.
CREATE FUNCTION member_name_grams(name text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT coalesce(array_agg(DISTINCT substr(lower(name), i, n)), '{}')
      FROM generate_series(1, length(name)) AS i, generate_series(1, 2) AS n
     WHERE i + n - 1 <= length(name)
$$;
CREATE INDEX members_name_grams ON members USING gin (member_name_grams(name));

-- Phone: its digits, matched from the end (with or without a country code), so the digits
-- are indexed reversed and a search is a range of them (a prefix, as bounds that a generic
-- plan can use too). The same digits as domain.member.phone_digits.
CREATE INDEX members_phone_digits
    ON members ((reverse(regexp_replace(phone, '[^0-9]', '', 'g')) COLLATE "C"))
    WHERE phone IS NOT NULL;

-- National ID: the unique index on national_id_hash (0001) already serves the search.
-- Organization: members_org (0001), with organizations_path for a subtree.
-- The order of a page (name in code-point order, then id) is sorted after the filters:
-- the planner estimates a subtree's members by the path prefix and sorts them.
