-- The functions the generated columns and indexes of movements call (0008, 0015), with the
-- same results, in PL/pgSQL. PostgreSQL cannot inline these four into the expressions
-- that call them (a stable cast inside an immutable function, a subquery, an aggregate),
-- so as SQL functions each call parsed and planned its body again for every statement:
-- a third of the CPU of writing one movement. A PL/pgSQL function is compiled once per
-- connection and keeps its plans. The two inlined ones (yixian_beijing_month,
-- yixian_day_of_next_month) stay SQL.
CREATE OR REPLACE FUNCTION yixian_date(value text) RETURNS date
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$ BEGIN RETURN value::date; END $$;

CREATE OR REPLACE FUNCTION yixian_instant(value text) RETURNS timestamptz
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$ BEGIN RETURN value::timestamptz; END $$;

CREATE OR REPLACE FUNCTION yixian_first_missing_month(start integer, months jsonb) RETURNS integer
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    -- the answer is `start` or the month after one of the months listed
    RETURN (
        SELECT min(c.month)
          FROM (SELECT start AS month
                UNION ALL
                SELECT substr(p, 1, 4)::integer * 12 + substr(p, 6, 2)::integer
                  FROM jsonb_array_elements_text(months) p) c
         WHERE c.month >= start
           AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements_text(months) q
                            WHERE substr(q, 1, 4)::integer * 12 + substr(q, 6, 2)::integer - 1
                                  = c.month));
END
$$;

CREATE OR REPLACE FUNCTION member_name_grams(name text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
BEGIN
    RETURN (
        SELECT coalesce(array_agg(DISTINCT substr(lower(name), i, n)), '{}')
          FROM generate_series(1, length(name)) AS i, generate_series(1, 2) AS n
         WHERE i + n - 1 <= length(name));
END
$$;
