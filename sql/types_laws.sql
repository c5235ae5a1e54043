--
-- Randomized law tests for vclock and lww (fixed seed: the cases are the
-- same on every run).  Each law is checked on thousands of generated cases
-- and reported as (cases, failures).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS distx;
RESET client_min_messages;
SET search_path = distx, public;
SET max_parallel_workers_per_gather = 0;	-- one random() sequence

-- a random clock over six nodes (some absent, some zero, some near 2^63-1)
CREATE FUNCTION pg_temp.random_vclock() RETURNS vclock LANGUAGE sql VOLATILE AS $$
	SELECT ('{' || coalesce(string_agg(format('%s: %s', to_json(node), c), ', '), '') || '}')::distx.vclock
	FROM (SELECT node,
	             CASE WHEN r < 0.05 THEN 9223372036854775807 - floor(random() * 3)::bigint
	                  WHEN r < 0.15 THEN 0
	                  WHEN r < 0.25 THEN floor(random() * 100000)::bigint
	                  ELSE floor(random() * 5)::bigint + 1 END AS c
	      FROM (SELECT node, random() AS r
	            FROM unnest(ARRAY['a', 'b', 'node-c', 'é', 'a-rather-long-node-name-42', 'n"q']) node
	            WHERE random() < 0.5) s) t
$$;

-- merge and compare computed independently, from the entries
CREATE FUNCTION pg_temp.oracle_merge(a vclock, b vclock) RETURNS vclock LANGUAGE sql AS $$
	SELECT coalesce(jsonb_object_agg(node, m), '{}')::distx.vclock
	FROM (SELECT node, max(counter) AS m
	      FROM (SELECT * FROM distx.vclock_entries(a) UNION ALL SELECT * FROM distx.vclock_entries(b)) e
	      GROUP BY node) s
$$;
CREATE FUNCTION pg_temp.oracle_compare(a vclock, b vclock) RETURNS text LANGUAGE sql AS $$
	SELECT CASE WHEN lt AND gt THEN 'concurrent' WHEN lt THEN 'before' WHEN gt THEN 'after' ELSE 'equal' END
	FROM (SELECT coalesce(bool_or(coalesce(x.counter, 0) < coalesce(y.counter, 0)), false) AS lt,
	             coalesce(bool_or(coalesce(x.counter, 0) > coalesce(y.counter, 0)), false) AS gt
	      FROM distx.vclock_entries(a) x FULL JOIN distx.vclock_entries(b) y USING (node)) s
$$;

SELECT setseed(0.20261121);
CREATE TABLE law_vc AS
	SELECT i, a, b, c, node
	FROM (SELECT i, pg_temp.random_vclock() AS a, random() AS rb, random() AS rc,
	             pg_temp.random_vclock() AS b0, pg_temp.random_vclock() AS c0,
	             (ARRAY['a', 'b', 'node-c', 'é', 'new-node'])[1 + floor(random() * 5)::int] AS node
	      FROM generate_series(1, 3000) i) g,
	-- b and c often descend from a, so that ordered and equal pairs are common
	LATERAL (SELECT CASE WHEN rb < 0.3 THEN vclock_merge(a, b0) WHEN rb < 0.35 THEN a ELSE b0 END AS b) x,
	LATERAL (SELECT CASE WHEN rc < 0.3 THEN vclock_merge(b, c0) ELSE c0 END AS c) y;
-- the generator covers the interesting cases
SELECT count(*) AS cases,
       count(*) FILTER (WHERE vclock_compare(a, b) = 'concurrent') AS concurrent,
       count(*) FILTER (WHERE vclock_compare(a, b) IN ('before', 'after')) AS ordered,
       count(*) FILTER (WHERE a = b) AS equal,
       count(*) FILTER (WHERE a = '{}') AS empty,
       count(*) FILTER (WHERE vclock_get(a, 'a') > 1000000) AS huge
FROM law_vc;

-- increments of counters at the maximum are expected to fail
CREATE FUNCTION pg_temp.try_increment(v vclock, node text) RETURNS vclock LANGUAGE plpgsql AS $$
BEGIN
	RETURN distx.vclock_increment(v, node);
EXCEPTION WHEN numeric_value_out_of_range THEN
	RETURN NULL;
END $$;

SELECT law, count(*) AS cases, count(*) FILTER (WHERE ok IS NOT TRUE) AS failures
FROM law_vc,
LATERAL (SELECT vclock_merge(a, b) AS ab, vclock_merge(b, a) AS ba,
                pg_temp.try_increment(a, node) AS inc) m,
LATERAL (VALUES
	('merge commutative', ab = ba),
	('merge associative', vclock_merge(ab, c) = vclock_merge(a, vclock_merge(b, c))),
	('merge idempotent', vclock_merge(a, a) = a),
	('merge is the pointwise max', ab = pg_temp.oracle_merge(a, b)),
	('merge is an upper bound: a <<= merge(a,b), b <<= merge(a,b)', a <<= ab AND b <<= ab AND vclock_compare(a, ab) IN ('before', 'equal')),
	('a <<= b iff merge(a,b) = b', (a <<= b) = (ab = b)),
	('compare matches the entries', vclock_compare(a, b) = pg_temp.oracle_compare(a, b)),
	('compare antisymmetric', vclock_compare(b, a) = CASE vclock_compare(a, b) WHEN 'before' THEN 'after' WHEN 'after' THEN 'before' ELSE vclock_compare(a, b) END),
	('operators agree with compare', (a << b) = (vclock_compare(a, b) = 'before') AND (a >> b) = (vclock_compare(a, b) = 'after') AND (a ?|| b) = (vclock_compare(a, b) = 'concurrent') AND (a = b) = (vclock_compare(a, b) = 'equal')),
	('equal clocks hash equal', vclock_hash(ab) = vclock_hash(ba) AND vclock_hash_extended(ab, 7) = vclock_hash_extended(ba, 7)),
	('increment is monotonic', CASE WHEN vclock_get(a, node) = 9223372036854775807 THEN inc IS NULL
	                                ELSE a << inc AND vclock_get(inc, node) = vclock_get(a, node) + 1
	                                     AND vclock_merge(a, inc) = inc AND vclock_size(inc) >= vclock_size(a) END),
	('text round trip exact', a::text::vclock = a AND (a::text::vclock)::text = a::text),
	('jsonb round trip exact', a::jsonb::vclock = a),
	('merge_agg is the fold of merge', (SELECT vclock_merge_agg(v) FROM (VALUES (a), (b), (c)) s(v)) = vclock_merge(ab, c))
) l(law, ok)
GROUP BY law ORDER BY law;

-- binary round trip: COPY BINARY (vclock_send) and back (vclock_recv)
\getenv abs_builddir PG_ABS_BUILDDIR
\set vcfile :abs_builddir '/results/types_laws_vclock.bin'
COPY (SELECT i, a, b, c FROM law_vc) TO :'vcfile' WITH (FORMAT binary);
CREATE TABLE law_vc_copy (i int, a vclock, b vclock, c vclock);
COPY law_vc_copy FROM :'vcfile' WITH (FORMAT binary);
SELECT count(*) AS cases,
       count(*) FILTER (WHERE NOT (x.a = y.a AND x.b = y.b AND x.c = y.c AND x.a::text = y.a::text)) AS failures
FROM law_vc x JOIN law_vc_copy y USING (i);

-- lww: values that tie in jsonb order (1, 1.0, 1.00), hlcs from nodes with
-- skewed wall clocks (node k runs k*700 ms ahead) with frequent ties
CREATE FUNCTION pg_temp.random_lww() RETURNS lww LANGUAGE sql VOLATILE AS $$
	SELECT distx.lww(
		(ARRAY['1', '1.0', '1.00', '"s"', '"t"', 'null', '[1]', '{"k": 1}', 'true', '{"k": [1, 2]}'])[1 + floor(random() * 10)::int]::jsonb,
		distx.hlc('2026-01-01 00:00:00+00'::timestamptz + (node * 700 + floor(random() * 3) * 500) * interval '1 ms',
		          floor(random() * 3)::bigint, node),
		pg_temp.random_vclock())
	FROM (SELECT 1 + floor(random() * 3)::int AS node) s
$$;
SELECT setseed(0.5);
CREATE TABLE law_lww AS
	SELECT i, pg_temp.random_lww() AS a, pg_temp.random_lww() AS b, pg_temp.random_lww() AS c
	FROM generate_series(1, 3000) i;
SELECT count(*) AS cases,
       count(*) FILTER (WHERE lww_hlc(a) = lww_hlc(b)) AS equal_hlc,
       count(*) FILTER (WHERE lww_hlc(a) = lww_hlc(b) AND lww_value(a) = lww_value(b) AND a <> b) AS equal_hlc_and_jsonb_value,
       count(*) FILTER (WHERE lww_concurrent(a, b)) AS concurrent
FROM law_lww;

-- the expected winner, from the parts: max under (hlc, value in jsonb order,
-- value text); lww_value(x)::text distinguishes 1.0 from 1.00
CREATE FUNCTION pg_temp.expected_winner(a lww, b lww) RETURNS lww LANGUAGE sql AS $$
	SELECT CASE WHEN (distx.lww_hlc(a), distx.lww_value(a)) > (distx.lww_hlc(b), distx.lww_value(b)) THEN a
	            WHEN (distx.lww_hlc(a), distx.lww_value(a)) < (distx.lww_hlc(b), distx.lww_value(b)) THEN b
	            ELSE NULL END
$$;

SELECT law, count(*) AS cases, count(*) FILTER (WHERE ok IS NOT TRUE) AS failures
FROM law_lww,
LATERAL (SELECT lww_merge(a, b) AS ab, lww_merge(b, a) AS ba, pg_temp.expected_winner(a, b) AS w) m,
LATERAL (VALUES
	('lww merge commutative', ab = ba),
	('lww merge associative', lww_merge(ab, c) = lww_merge(a, lww_merge(b, c))),
	('lww merge idempotent', lww_merge(a, a) = a AND lww_merge(ab, a) = ab),
	('lww merge clock is the merge of the clocks', lww_clock(ab) = vclock_merge(lww_clock(a), lww_clock(b))),
	('lww merge winner has the larger (hlc, value)', lww_hlc(ab) = lww_hlc(coalesce(w, ab)) AND lww_value(ab) = lww_value(coalesce(w, ab))
	                                                   AND lww_hlc(ab) >= lww_hlc(a) AND lww_hlc(ab) >= lww_hlc(b)),
	('lww merge keeps a written value exactly', lww_value(ab)::text IN (lww_value(a)::text, lww_value(b)::text)),
	('lww concurrent symmetric and from the clocks', lww_concurrent(a, b) = lww_concurrent(b, a)
	                                                 AND lww_concurrent(a, b) = (lww_clock(a) ?|| lww_clock(b))),
	('lww text round trip exact', a::text::lww = a AND (a::text::lww)::text = a::text),
	('lww merge_agg is the fold of merge', (SELECT lww_merge_agg(v) FROM (VALUES (a), (b), (c)) s(v)) = lww_merge(ab, c))
) l(law, ok)
GROUP BY law ORDER BY law;

-- a write that replaces a register (lww_set) is ordered after it and wins
SELECT count(*) AS cases,
       count(*) FILTER (WHERE NOT (lww_hlc(s) > lww_hlc(a) AND lww_compare(a, s) = 'before'
                                   AND lww_merge(a, s) = s AND lww_merge(s, a) = s)) AS failures
FROM law_lww, LATERAL (SELECT lww_set(a, i) AS s) t
WHERE vclock_get(lww_clock(a), node_name()) < 9223372036854775807 AND i <= 1000;

-- binary round trip of lww and hlc
\set lwwfile :abs_builddir '/results/types_laws_lww.bin'
COPY (SELECT i, a, b, lww_hlc(c) AS h FROM law_lww) TO :'lwwfile' WITH (FORMAT binary);
CREATE TABLE law_lww_copy (i int, a lww, b lww, h hlc);
COPY law_lww_copy FROM :'lwwfile' WITH (FORMAT binary);
SELECT count(*) AS cases,
       count(*) FILTER (WHERE NOT (x.a = y.a AND x.b = y.b AND lww_hlc(x.c) = y.h AND x.a::text = y.a::text)) AS failures
FROM law_lww x JOIN law_lww_copy y USING (i);

DROP TABLE law_vc, law_vc_copy, law_lww, law_lww_copy;
