-- test/bench/types_bench.sql: setup for types_bench.sh.
-- psql variables: rows (pairs of clocks), nodes (node names to draw from),
-- per (average entries per clock).

CREATE EXTENSION IF NOT EXISTS distx;

-- The same merge over jsonb, as one would write it without distx.
-- PL/pgSQL: walk b's entries, keep the larger counter.
CREATE FUNCTION jsonb_vclock_merge_plpgsql(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
	result jsonb := a;
	k text;
	v jsonb;
BEGIN
	FOR k, v IN SELECT key, value FROM jsonb_each(b) LOOP
		IF NOT result ? k OR (result ->> k)::bigint < (v #>> '{}')::bigint THEN
			result := result || jsonb_build_object(k, v);
		END IF;
	END LOOP;
	RETURN result;
END $$;

-- plain SQL: group the entries of both by node, take the max
CREATE FUNCTION jsonb_vclock_merge_sql(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
	SELECT coalesce(jsonb_object_agg(key, m), '{}'::jsonb)
	FROM (SELECT key, max(value::bigint) AS m
	      FROM (SELECT * FROM jsonb_each_text(a) UNION ALL SELECT * FROM jsonb_each_text(b)) e
	      GROUP BY key) s
$$;

SELECT setseed(0.42);
-- a random clock: each of :nodes nodes present with probability :per/:nodes
CREATE FUNCTION random_clock(nodes int, per int) RETURNS jsonb LANGUAGE sql VOLATILE AS $$
	SELECT coalesce(jsonb_object_agg(format('node-%s', lpad(n::text, 3, '0')), 1 + floor(random() * 1000000)::bigint), '{}')
	FROM generate_series(1, nodes) n
	WHERE random() < per::float8 / nodes
$$;

-- the rows: each pair both as vclock and as jsonb (the same clocks)
CREATE TABLE pairs_vclock (id int PRIMARY KEY, a distx.vclock, b distx.vclock, m distx.vclock);
CREATE TABLE pairs_jsonb (id int PRIMARY KEY, a jsonb, b jsonb, m jsonb);
INSERT INTO pairs_jsonb
	SELECT i, random_clock(:nodes, :per), random_clock(:nodes, :per), NULL FROM generate_series(1, :rows) i;
INSERT INTO pairs_vclock SELECT id, a::distx.vclock, b::distx.vclock, NULL FROM pairs_jsonb;
VACUUM ANALYZE pairs_vclock;
VACUUM ANALYZE pairs_jsonb;

-- the three merges agree on every row
SELECT count(*) AS rows_checked,
       count(*) FILTER (WHERE distx.vclock_merge(v.a, v.b)::jsonb <> jsonb_vclock_merge_plpgsql(j.a, j.b)
                          OR distx.vclock_merge(v.a, v.b)::jsonb <> jsonb_vclock_merge_sql(j.a, j.b)) AS disagreements
FROM pairs_vclock v JOIN pairs_jsonb j USING (id);

CREATE TABLE bench_times (kind text, method text, rep int, ms float8);
