-- The statements of yixian.bench.county, each after its "-- statement:" line; run in one
-- session, in this order. The functions are the session's own (pg_temp).

-- statement: functions
CREATE FUNCTION pg_temp.bench_name(k bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    -- a member's name from its number: 50 surnames x 56 x 56 given names
    SELECT substr('王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈', (k % 50)::int + 1, 1)
        || substr('建国华明军平志红伟秀英芳丽强磊洋勇艳杰娟涛超霞刚桂兰玉梅文辉敏静春丹健波宁斌俊海燕云峰亮林鹏', (k / 50 % 56)::int + 1, 1)
        || substr('建国华明军平志红伟秀英芳丽强磊洋勇艳杰娟涛超霞刚桂兰玉梅文辉敏静春丹健波宁斌俊海燕云峰亮林鹏', (k / 2800 % 56)::int + 1, 1)
$$;
CREATE FUNCTION pg_temp.bench_time(at timestamp) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    -- a time as the contracts write it (UTC, RFC 3339)
    SELECT to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;
CREATE FUNCTION pg_temp.bench_months(first timestamp, count integer) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$
    -- `count` months (YYYY-MM) from the month of `first`
    SELECT coalesce(jsonb_agg(to_char(m, 'YYYY-MM') ORDER BY m), '[]'::jsonb)
      FROM generate_series(date_trunc('month', first),
                           date_trunc('month', first) + make_interval(months => count - 1),
                           interval '1 month') m
$$;

-- statement: members
-- $1 the branches, $2 how many members
INSERT INTO members (member_id, org_id, name, joined_on, phone, created_at)
SELECT md5('member' || k)::uuid, branches[(k % array_length(branches, 1)) + 1],
       pg_temp.bench_name(k), date '1975-07-01' + (k * 13 % 15000)::int,
       '+86 139 ' || lpad((k % 100000000)::text, 8, '0'),
       now() - make_interval(secs => k)
  FROM generate_series(1, $2) AS k, (SELECT $1::uuid[] AS branches) s;

-- statement: origin side
-- Movement k of member ((k - 1) % members) + 1; the first `members` are each member's
-- latest movement (open or closed), the rest earlier closed ones. `a` picks the origin's
-- status, `b` the host's, both spread evenly and independently.
-- $1 the branches, $2 their names, $3 how many movements, $4 how many members, $5 the
-- partners, $6 the node
WITH base AS (
    SELECT k,
           abs(hashtext('a' || k)) % 100 AS a,
           abs(hashtext('b' || k)) % 100 AS b,
           ((k - 1) % $4) + 1 AS mk,
           md5('origin' || k)::uuid AS movement_id,
           current_date - CASE WHEN k > $4 THEN 1000 + k % 1000 WHEN k % 10 = 0 THEN k % 60
                               ELSE k * 37 % 1000 END AS departed_on,
           $5::text[] AS partners
      FROM generate_series(1, $3) AS k
), shaped AS (
    SELECT base.*,
           md5('member' || mk)::uuid AS member_id,
           (SELECT branches[(mk % array_length(branches, 1)) + 1]
              FROM (SELECT $1::uuid[] AS branches) s) AS org_id,
           (SELECT names[(mk % array_length(names, 1)) + 1]
              FROM (SELECT $2::text[] AS names) s) AS org_name,
           partners[(k % array_length(partners, 1)) + 1] AS host,
           CASE WHEN k > $4 THEN CASE WHEN a < 80 THEN 'returned' ELSE 'cancelled' END
                WHEN a < 38 OR a >= 85 THEN 'registered'
                WHEN a < 42 THEN 'transfer_requested'
                WHEN a < 44 THEN 'lost'
                WHEN a < 45 THEN 'removed'
                WHEN a < 70 THEN 'returned'
                WHEN a < 75 THEN 'relocated'
                WHEN a < 80 THEN 'cancelled'
                ELSE 'transferred' END AS kind,
           departed_on::timestamp + interval '9 hours' AS departed_at
      FROM base
), grouped AS (
    SELECT shaped.*,
           jsonb_strip_nulls(jsonb_build_object(
               'movement_id', movement_id,
               'version', CASE WHEN kind = 'registered' THEN 1 ELSE 3 END,
               'status', CASE kind WHEN 'lost' THEN 'registered' WHEN 'removed' THEN 'registered'
                                   ELSE kind END,
               'origin', $6::text,
               'origin_org', jsonb_build_object('org_id', org_id, 'name', org_name),
               'member', jsonb_build_object('member_id', member_id,
                                            'name', pg_temp.bench_name(mk),
                                            'joined_on', date '1975-07-01' + (mk * 13 % 15000)::int),
               'destination', jsonb_build_object('jurisdiction', host, 'place', '务工地点' || (k % 500)),
               'period', jsonb_build_object(
                   'departed_on', departed_on,
                   'expected_return_on', CASE WHEN k % 2 = 0 THEN departed_on + 400 END),
               'contact', jsonb_build_object('phone', '+86 139 ' || lpad((mk % 100000000)::text, 8, '0')),
               'certificate', jsonb_build_object(
                   'number', $6::text || '-' || extract(year FROM departed_on) || '-' || lpad(k::text, 6, '0'),
                   'issued_on', departed_on - 2),
               'reason', jsonb_build_object('kind', (ARRAY['work', 'study', 'business'])[(k % 3) + 1]),
               'check_in_due_on', departed_on + 30,
               'next_movement_id', CASE WHEN kind = 'relocated' THEN md5('next' || k)::uuid END,
               'transfer', CASE WHEN kind IN ('transfer_requested', 'transferred') THEN jsonb_build_object(
                   'requested_at', pg_temp.bench_time(departed_at + interval '200 days'),
                   'reply_due_on', departed_on + 230,
                   'completed_at', CASE WHEN kind = 'transferred' THEN pg_temp.bench_time(departed_at + interval '220 days') END)
                   END,
               'lost_contact_since', CASE WHEN kind IN ('lost', 'removed') THEN departed_on + 60 END,
               'decision', CASE WHEN kind = 'removed' OR (kind = 'lost' AND a = 43) THEN jsonb_build_object(
                   'standing', CASE WHEN kind = 'removed' THEN 'removed' ELSE 'suspended' END,
                   'reason', '失联超过六个月',
                   'decided_at', pg_temp.bench_time(departed_at + interval '300 days'),
                   'lost_contact_since', departed_on + 60,
                   'suspended_at', pg_temp.bench_time(departed_at + interval '300 days')) END,
               'last_report_on', CASE WHEN k % 3 = 0 THEN departed_on + 200 END,
               'changed_at', pg_temp.bench_time(departed_at),
               'changed_by', 'key:bench')) AS origin_group,
           CASE WHEN b < 10 AND kind IN ('registered', 'lost') THEN NULL
                WHEN b < 30 AND kind IN ('registered', 'lost') THEN 'expected'
                WHEN b < 80 OR kind NOT IN ('registered', 'lost') THEN 'checked_in'
                WHEN b < 85 THEN 'not_found'
                WHEN b < 90 THEN 'forwarded'
                ELSE 'lost_contact' END AS host_status
      FROM shaped
)
INSERT INTO movements (movement_id, origin, host, member_id, origin_version, origin_status,
                       origin_group, origin_org_id, host_version, host_status, host_group,
                       created_at, updated_at)
SELECT movement_id, $6::text, host, member_id, (origin_group ->> 'version')::int,
       CASE kind WHEN 'lost' THEN 'registered' ELSE kind END, origin_group, org_id,
       CASE WHEN host_status IS NULL THEN 0 ELSE 2 END, host_status,
       CASE WHEN host_status IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
           'movement_id', movement_id,
           'version', 2,
           'status', host_status,
           'host', host,
           'host_org', CASE WHEN host_status <> 'expected' THEN jsonb_build_object(
               'org_id', md5('host-org' || host)::uuid, 'name', '流动党员服务站') END,
           'checked_in_at', CASE WHEN host_status = 'checked_in'
                                 THEN pg_temp.bench_time(departed_at + make_interval(days => (5 + k % 20)::int)) END,
           'reason', CASE WHEN host_status IN ('not_found', 'forwarded') THEN '查无此人' END,
           'forwarded_to', CASE WHEN host_status = 'forwarded' THEN
               partners[((k + 1) % array_length(partners, 1)) + 1] END,
           'lost_contact_since', CASE WHEN host_status = 'lost_contact' THEN departed_on + 90 END,
           'participation', jsonb_build_object('attended', k % 12),
           'transfer_reply', CASE WHEN kind IN ('transfer_requested', 'transferred') AND b % 3 <> 0
               THEN jsonb_build_object(
                   'decision', CASE WHEN kind = 'transferred' OR b % 3 = 1 THEN 'accepted' ELSE 'rejected' END,
                   'request_at', pg_temp.bench_time(departed_at + interval '200 days'),
                   'replied_at', pg_temp.bench_time(departed_at + interval '210 days'),
                   'reason', '组织关系材料不全') END,
           'dues_paid', CASE WHEN host_status = 'checked_in' THEN
               pg_temp.bench_months(departed_at + make_interval(days => (5 + k % 20)::int), 1 + k % 40) END,
           'transfer_reply_days', 30,
           'changed_at', pg_temp.bench_time(departed_at + interval '10 days'),
           'changed_by', 'node:' || host)) END,
       departed_at - interval '1 day' + k * interval '1 millisecond',
       departed_at + interval '10 days'
  FROM grouped;

-- statement: host side
-- Visitors from the partners. `c` picks the host's status; an unplaced arrival (no host
-- group yet, or expected without an organization) is the intake's; a few carry the
-- origin's hint of one of this node's branches.
-- $1 the branches, $2 their names, $3 how many movements, $4 the node, $5 the partners
WITH base AS (
    SELECT k,
           abs(hashtext('c' || k)) % 100 AS c,
           abs(hashtext('d' || k)) % 100 AS d,
           md5('host' || k)::uuid AS movement_id,
           md5('visitor' || k)::uuid AS member_id,
           $5::text[] AS partners,
           current_date - CASE WHEN k % 8 = 0 THEN k % 50 ELSE k * 41 % 1000 END AS departed_on
      FROM generate_series(1, $3) AS k
), shaped AS (
    SELECT base.*,
           partners[(k % array_length(partners, 1)) + 1] AS origin,
           (SELECT branches[(k % array_length(branches, 1)) + 1]
              FROM (SELECT $1::uuid[] AS branches) s) AS branch_id,
           (SELECT names[(k % array_length(names, 1)) + 1]
              FROM (SELECT $2::text[] AS names) s) AS branch_name,
           CASE WHEN d < 80 THEN 'registered' WHEN d < 85 THEN 'transfer_requested'
                WHEN d < 95 THEN 'returned' ELSE 'cancelled' END AS origin_status,
           CASE WHEN c < 15 THEN NULL WHEN c < 25 THEN 'expected' WHEN c < 85 THEN 'checked_in'
                WHEN c < 90 THEN 'not_found' WHEN c < 93 THEN 'forwarded'
                ELSE 'lost_contact' END AS host_status,
           departed_on::timestamp + interval '9 hours' AS departed_at
      FROM base
)
INSERT INTO movements (movement_id, origin, host, member_id, origin_version, origin_status,
                       origin_group, host_version, host_status, host_group, host_org_id,
                       created_at, updated_at)
SELECT movement_id, origin, $4::text, member_id, 2, origin_status,
       jsonb_strip_nulls(jsonb_build_object(
           'movement_id', movement_id,
           'version', 2,
           'status', origin_status,
           'origin', origin,
           'origin_org', jsonb_build_object('org_id', md5('origin-org' || origin || k % 30)::uuid,
                                            'name', '外出党员支部' || k % 30),
           'member', jsonb_build_object('member_id', member_id, 'name', pg_temp.bench_name(k),
                                        'joined_on', date '1978-07-01' + (k * 17 % 14000)::int),
           'destination', jsonb_build_object(
               'jurisdiction', $4::text, 'place', '工作地点' || (k % 300),
               'host_org_hint', CASE WHEN c < 5 THEN jsonb_build_object(
                   'org_id', branch_id, 'name', branch_name) END),
           'period', jsonb_build_object('departed_on', departed_on,
               'expected_return_on', CASE WHEN k % 3 = 0 THEN departed_on + 380 END),
           'contact', jsonb_build_object('phone', '+86 137 ' || lpad((k % 100000000)::text, 8, '0')),
           'reason', jsonb_build_object('kind', (ARRAY['work', 'business', 'study'])[(k % 3) + 1]),
           'check_in_due_on', departed_on + 30,
           'transfer', CASE WHEN origin_status = 'transfer_requested' THEN jsonb_build_object(
               'requested_at', pg_temp.bench_time(departed_at + interval '150 days'),
               'reply_due_on', departed_on + 180) END,
           'last_report_on', CASE WHEN k % 4 = 0 THEN departed_on + 100 END,
           'changed_at', pg_temp.bench_time(departed_at),
           'changed_by', 'node:' || origin)),
       CASE WHEN host_status IS NULL THEN 0 ELSE 2 END, host_status,
       CASE WHEN host_status IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object(
           'movement_id', movement_id,
           'version', 2,
           'status', host_status,
           'host', $4::text,
           'host_org', CASE WHEN host_status <> 'expected' OR c >= 20 THEN jsonb_build_object(
               'org_id', branch_id, 'name', branch_name) END,
           'branch', CASE WHEN host_status = 'checked_in' THEN jsonb_build_object(
               'org_id', branch_id, 'name', branch_name) END,
           'checked_in_at', CASE WHEN host_status = 'checked_in'
                                 THEN pg_temp.bench_time(departed_at + make_interval(days => (3 + k % 25)::int)) END,
           'reason', CASE WHEN host_status IN ('not_found', 'forwarded') THEN '本辖区无此人' END,
           'forwarded_to', CASE WHEN host_status = 'forwarded' THEN
               partners[((k + 1) % array_length(partners, 1)) + 1] END,
           'lost_contact_since', CASE WHEN host_status = 'lost_contact' THEN departed_on + 120 END,
           'participation', jsonb_build_object('attended', k % 9),
           'transfer_reply', CASE WHEN origin_status = 'transfer_requested' AND d % 2 = 0
               THEN jsonb_build_object(
                   'decision', 'accepted',
                   'request_at', pg_temp.bench_time(departed_at + interval '150 days'),
                   'replied_at', pg_temp.bench_time(departed_at + interval '160 days')) END,
           'dues_paid', CASE WHEN host_status = 'checked_in' THEN
               pg_temp.bench_months(departed_at + make_interval(days => (3 + k % 25)::int), 1 + k % 36) END,
           'report_received_on', CASE WHEN k % 5 = 0 AND host_status = 'checked_in'
                                      THEN departed_on + 300 END,
           'transfer_reply_days', 30,
           'changed_at', pg_temp.bench_time(departed_at + interval '5 days'),
           'changed_by', 'key:bench')) END,
       CASE WHEN host_status IS NOT NULL AND (host_status <> 'expected' OR c >= 20)
            THEN branch_id END,
       departed_at + k * interval '1 millisecond',
       departed_at + interval '5 days'
  FROM shaped;

-- statement: history
INSERT INTO movement_history (movement_id, group_name, version, snapshot, recorded_at)
SELECT movement_id, 'origin', origin_version, origin_group, created_at FROM movements
UNION ALL
SELECT movement_id, 'host', host_version, host_group, updated_at FROM movements
 WHERE host_group IS NOT NULL;

-- statement: audit
-- $1 how many rows, $2 how many origin movements, $3 the actors' key ids
INSERT INTO audit_log (at, actor, role, action, target, outcome, detail, trace_id)
SELECT now() - make_interval(secs => ($1 - k) * 30),
       'key:' || keys[(k % array_length(keys, 1)) + 1],
       CASE WHEN k % 8 = 0 THEN 'operator' ELSE 'secretary' END,
       (ARRAY['POST /v1/movements', 'POST /v1/movements/{id}/check-in', 'GET /v1/queues',
              'POST /v1/movements/{id}/return', 'PATCH /v1/members/{id}'])[(k % 5) + 1],
       md5('origin' || (k % $2 + 1))::uuid::text,
       CASE WHEN k % 50 = 0 THEN 'denied' ELSE 'ok' END,
       jsonb_build_object('status', 200, 'changes', jsonb_build_object('host_group.status',
           jsonb_build_object('before', 'expected', 'after', 'checked_in'))),
       md5('trace' || k)
  FROM generate_series(1, $1) AS k, (SELECT $3::text[] AS keys) s;
