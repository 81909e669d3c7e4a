-- The console's screens on a node of 200,000 movements (ADR 29): the work queues, the
-- statistics, the lists of members away, visiting and present, the member search and the
-- audit log are each one indexed query that counts or pages in the database.
--
-- Casts of the groups' text the generated columns below may use (PostgreSQL calls the
-- casts of text to date and timestamptz stable because of DateStyle and TimeZone; the
-- contracts always write ISO 8601 with a time zone, which neither setting changes).
CREATE FUNCTION yixian_date(value text) RETURNS date
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT value::date $$;

CREATE FUNCTION yixian_instant(value text) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT value::timestamptz $$;

-- The operations of yixian.contracts.expressions that are more than an operator: the
-- Beijing month of an instant as year * 12 + month - 1 (none beyond the last day);
-- the first month from `start` on that is not among `months` (a JSON array of YYYY-MM);
-- the given day of the month after a month (the last day after 9999-12).
CREATE FUNCTION yixian_beijing_month(at timestamptz) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN at >= TIMESTAMPTZ '9999-12-31 16:00:00+00' THEN NULL
                ELSE extract(year FROM at AT TIME ZONE INTERVAL '+08:00')::integer * 12
                     + extract(month FROM at AT TIME ZONE INTERVAL '+08:00')::integer - 1 END
$$;

CREATE FUNCTION yixian_first_missing_month(start integer, months jsonb) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    -- the answer is `start` or the month after one of the months listed
    SELECT min(c.month)
      FROM (SELECT start AS month
            UNION ALL
            SELECT substr(p, 1, 4)::integer * 12 + substr(p, 6, 2)::integer
              FROM jsonb_array_elements_text(months) p) c
     WHERE c.month >= start
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(months) q
                        WHERE substr(q, 1, 4)::integer * 12 + substr(q, 6, 2)::integer - 1
                              = c.month)
$$;

CREATE FUNCTION yixian_day_of_next_month(month integer, day integer) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN (month + 1) / 12 > 9999 THEN DATE '9999-12-31'
                ELSE make_date((month + 1) / 12, (month + 1) % 12 + 1, day) END
$$;

-- What the queues and the reports read of each movement, kept by PostgreSQL beside the
-- groups: the facts of yixian.contracts.state and of the registry's domain that depend on
-- the groups alone, as yixian.registry.adapters.rules translates them (a test holds these
-- definitions to that translation). Generated columns have no writer: whoever writes a
-- group (the registry its own, sync the partner's) keeps them current without knowing.
ALTER TABLE movements
    ADD COLUMN fact_state text GENERATED ALWAYS AS (
        CASE
        WHEN (origin_group IS NULL) THEN 'unknown'
        WHEN ((origin_group #>> '{status}') IN ('returned')) THEN 'closed_returned'
        WHEN ((origin_group #>> '{status}') IN ('relocated')) THEN 'closed_relocated'
        WHEN ((origin_group #>> '{status}') IN ('transferred')) THEN 'closed_transferred'
        WHEN ((origin_group #>> '{status}') IN ('cancelled')) THEN 'cancelled'
        WHEN ((origin_group #>> '{decision,standing}') IN ('removed')) THEN 'closed_removed'
        WHEN (((origin_group #>> '{status}') IN ('transfer_requested')) AND (CASE
        WHEN ((((origin_group #>> '{transfer}') IS NOT NULL) AND ((host_group #>> '{transfer_reply}') IS NOT NULL)) AND (yixian_instant((host_group #>> '{transfer_reply,request_at}')) = yixian_instant((origin_group #>> '{transfer,requested_at}')))) THEN (host_group #>> '{transfer_reply,decision}')
        ELSE NULL::text END IN ('accepted'))) THEN 'transfer_accepted'
        WHEN (((origin_group #>> '{status}') IN ('transfer_requested')) AND (CASE
        WHEN ((((origin_group #>> '{transfer}') IS NOT NULL) AND ((host_group #>> '{transfer_reply}') IS NOT NULL)) AND (yixian_instant((host_group #>> '{transfer_reply,request_at}')) = yixian_instant((origin_group #>> '{transfer,requested_at}')))) THEN (host_group #>> '{transfer_reply,decision}')
        ELSE NULL::text END IN ('rejected'))) THEN 'transfer_rejected'
        WHEN ((origin_group #>> '{status}') IN ('transfer_requested')) THEN 'transfer_pending'
        WHEN (yixian_date((origin_group #>> '{lost_contact_since}')) IS NOT NULL) THEN 'lost_contact'
        WHEN ((host_group #>> '{status}') IN ('expected')) THEN 'awaiting_check_in'
        WHEN ((host_group #>> '{status}') IN ('checked_in')) THEN 'active'
        WHEN ((host_group #>> '{status}') IN ('not_found')) THEN 'not_found_by_host'
        WHEN ((host_group #>> '{status}') IN ('forwarded')) THEN 'forwarded'
        WHEN ((host_group #>> '{status}') IN ('lost_contact')) THEN 'lost_contact'
        ELSE 'awaiting_check_in'
        END) STORED,
    ADD COLUMN fact_check_in_due_on date GENERATED ALWAYS AS (yixian_date((origin_group #>> '{check_in_due_on}'))) STORED,
    ADD COLUMN fact_transfer_reply_due_on date GENERATED ALWAYS AS (
        CASE
        WHEN ((origin_group #>> '{transfer}') IS NULL) THEN NULL::date
        WHEN (((host_group #>> '{transfer_reply_days}'))::integer IS NOT NULL) THEN LEAST(LEAST((yixian_instant((origin_group #>> '{transfer,requested_at}')) AT TIME ZONE INTERVAL '+00:00')::date, DATE '9999-12-31') + ((host_group #>> '{transfer_reply_days}'))::integer, DATE '9999-12-31')
        ELSE yixian_date((origin_group #>> '{transfer,reply_due_on}'))
        END) STORED,
    ADD COLUMN fact_report_from date GENERATED ALWAYS AS (COALESCE(GREATEST(yixian_date((origin_group #>> '{last_report_on}')), yixian_date((host_group #>> '{report_received_on}'))), yixian_date((origin_group #>> '{period,departed_on}')))) STORED,
    ADD COLUMN fact_dues_unpaid_from integer GENERATED ALWAYS AS (yixian_first_missing_month(yixian_beijing_month(yixian_instant((host_group #>> '{checked_in_at}'))), (host_group #> '{dues_paid}'))) STORED,
    ADD COLUMN fact_lost_contact_since date GENERATED ALWAYS AS (LEAST(yixian_date((origin_group #>> '{lost_contact_since}')), CASE
        WHEN ((host_group #>> '{status}') IN ('lost_contact')) THEN yixian_date((host_group #>> '{lost_contact_since}'))
        ELSE NULL::date END)) STORED,
    ADD COLUMN fact_lost_contact_decided text GENERATED ALWAYS AS (
        CASE
        WHEN (yixian_date((origin_group #>> '{decision,lost_contact_since}')) = LEAST(yixian_date((origin_group #>> '{lost_contact_since}')), CASE
        WHEN ((host_group #>> '{status}') IN ('lost_contact')) THEN yixian_date((host_group #>> '{lost_contact_since}'))
        ELSE NULL::date END)) THEN (origin_group #>> '{decision,standing}')
        ELSE NULL::text
        END) STORED,
    ADD COLUMN fact_standing text GENERATED ALWAYS AS ((origin_group #>> '{decision,standing}')) STORED,
    ADD COLUMN fact_unplaced boolean GENERATED ALWAYS AS (((host_group #>> '{host_org}') IS NULL)) STORED,
    ADD COLUMN fact_to_enrol boolean GENERATED ALWAYS AS (((host_group IS NOT NULL) AND ((host_group #>> '{enrolment}') IS NULL))) STORED,
    ADD COLUMN fact_expected_return_on date GENERATED ALWAYS AS (yixian_date((origin_group #>> '{period,expected_return_on}'))) STORED,
    ADD COLUMN fact_departed_on date GENERATED ALWAYS AS (yixian_date((origin_group #>> '{period,departed_on}'))) STORED,
    ADD COLUMN fact_closed_on date GENERATED ALWAYS AS (
        CASE
        WHEN (origin_group IS NULL) THEN NULL::date
        WHEN (((origin_group #>> '{status}') IN ('registered', 'transfer_requested')) AND (NOT COALESCE(((origin_group #>> '{decision,standing}') IN ('removed')), false))) THEN NULL::date
        WHEN ((origin_group #>> '{decision,standing}') IN ('removed')) THEN LEAST((yixian_instant((origin_group #>> '{decision,decided_at}')) AT TIME ZONE INTERVAL '+08:00')::date, DATE '9999-12-31')
        WHEN (((origin_group #>> '{status}') IN ('returned')) AND (yixian_date((origin_group #>> '{period,expected_return_on}')) IS NOT NULL)) THEN yixian_date((origin_group #>> '{period,expected_return_on}'))
        ELSE LEAST((yixian_instant((origin_group #>> '{changed_at}')) AT TIME ZONE INTERVAL '+08:00')::date, DATE '9999-12-31')
        END) STORED,
    ADD COLUMN fact_host_org_hint uuid GENERATED ALWAYS AS (((origin_group #>> '{destination,host_org_hint,org_id}'))::uuid) STORED;

-- The work queues: the open movements, and at the host the completed transfers whose
-- member is to enrol, oldest first, with every column the queues' rules read, so that
-- counting and paging them reads this index alone. The open statuses are OriginStatus's
-- (yixian.contracts OPEN_ORIGIN_STATUSES; tests/contract/test_rules_once.py checks them).
CREATE INDEX movements_queues ON movements (created_at, movement_id)
    INCLUDE (origin, host, origin_org_id, host_org_id, fact_host_org_hint, fact_state,
             fact_check_in_due_on, fact_transfer_reply_due_on, fact_report_from,
             fact_dues_unpaid_from, fact_lost_contact_since, fact_lost_contact_decided,
             fact_standing, fact_unplaced, fact_to_enrol, fact_expected_return_on)
    WHERE origin_status IN ('registered', 'transfer_requested')
       OR (origin_status = 'transferred' AND fact_to_enrol);

-- Statistics: every movement in its member's order (a member counts once in a group,
-- however many of its movements the group holds), with what a report filters, groups and
-- counts by.
CREATE INDEX movements_reports ON movements (member_id)
    INCLUDE (origin, host, origin_org_id, host_org_id, fact_host_org_hint,
             fact_departed_on, fact_state, fact_closed_on);

-- Members away and visiting found by a part of the name: the name's characters and pairs
-- of characters (member_name_grams, migration 0008) of the open movements.
CREATE INDEX movements_open_name_grams
    ON movements USING gin (member_name_grams(origin_group #>> '{member,name}'))
    WHERE origin_status IN ('registered', 'transfer_requested');

-- Everyone present (the view people_present, which holds the rule) in its order: this
-- node's members and the movements, by name, each asked of the view until a page is full.
CREATE INDEX members_present_by_name ON members (name, member_id);
CREATE INDEX movements_by_member_name
    ON movements (((origin_group -> 'member') ->> 'name'), member_id);

-- A member's status (domain.member_status) from this node's movements of the member.
CREATE INDEX movements_member_status ON movements (origin_status, member_id)
    WHERE origin_org_id IS NOT NULL;

-- The member search and the present list page members by name (code-point order).
CREATE INDEX members_by_name ON members ((name COLLATE "C"), member_id);
