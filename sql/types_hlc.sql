--
-- hlc: hybrid logical clock timestamps and this server's clock
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS distx;
RESET client_min_messages;
SET search_path = distx, public;

CREATE FUNCTION pg_temp.check(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
BEGIN
	EXECUTE q;
	RETURN 'ok';
EXCEPTION WHEN others THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || msg || coalesce(nullif(' | ' || det, ' | '), '');
END $$;

-- text form: UTC time/logical@node, independent of DateStyle and TimeZone
SET TimeZone = 'America/New_York';
SET DateStyle = 'SQL, DMY';
SELECT '2026-11-21T05:42:33.123456Z/3@17'::hlc;
SELECT '2026-11-21 05:42:33Z/0@0'::hlc, ' 2026-11-21T05:42:33.5Z/1@2 '::hlc;
SELECT '0001-01-01T00:00:00Z/0@0'::hlc AS first,
       '9999-12-31T23:59:59.999999Z/4294967295@2147483647'::hlc AS last;
SELECT '2024-02-29T12:00:00.000001Z/0@1'::hlc;
RESET TimeZone;
RESET DateStyle;

SELECT input, pg_temp.check(format('SELECT %L::distx.hlc', input)) AS result
FROM (VALUES
	(''),
	('now'),
	('2026-11-21'),
	('26-11-21T05:42:33Z/0@1'),
	('2026-1-21T05:42:33Z/0@1'),
	('2026-11-21T05:42:33/0@1'),
	('2026-11-21T05:42:33+01/0@1'),
	('2026-11-21T05:42:33.Z/0@1'),
	('2026-11-21T05:42:33.1234567Z/0@1'),
	('2026-11-21T05:42:33Z'),
	('2026-11-21T05:42:33Z/0'),
	('2026-11-21T05:42:33Z/-1@1'),
	('2026-11-21T05:42:33Z/0@-1'),
	('2026-11-21T05:42:33Z/0@1 x'),
	('2026-11-21T05:42:33Z/4294967296@1'),
	('2026-11-21T05:42:33Z/0@2147483648'),
	('2026-02-29T00:00:00Z/0@1'),
	('2026-13-01T00:00:00Z/0@1'),
	('2026-11-21T24:00:00Z/0@1'),
	('2026-11-21T23:60:00Z/0@1'),
	('2026-11-21T23:59:60Z/0@1'),
	('0000-12-31T00:00:00Z/0@1')
) v(input);

-- binary input (hlc_recv, through COPY BINARY of bytea fields):
-- int64 microseconds since 2000-01-01, uint32 logical, uint32 node
\getenv abs_builddir PG_ABS_BUILDDIR
\set binfile :abs_builddir '/results/types_hlc_recv.bin'
SELECT set_config('regress.binfile', :'binfile', false) IS NOT NULL AS set;
CREATE TEMP TABLE recv_target (v hlc);
CREATE FUNCTION pg_temp.recv(b bytea) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	st text;
	msg text;
	det text;
	result text;
BEGIN
	EXECUTE format('COPY (SELECT %L::bytea) TO %L WITH (FORMAT binary)', b, current_setting('regress.binfile'));
	TRUNCATE recv_target;
	EXECUTE format('COPY recv_target FROM %L WITH (FORMAT binary)', current_setting('regress.binfile'));
	SELECT v::text INTO result FROM recv_target;
	RETURN result;
EXCEPTION WHEN others THEN
	GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
		det = PG_EXCEPTION_DETAIL;
	RETURN st || ': ' || msg || coalesce(nullif(' | ' || det, ' | '), '');
END $$;
SELECT what, pg_temp.recv(b) AS result
FROM (VALUES
	('send output', distx.hlc_send('2026-11-21T05:42:33.123456Z/3@17')),
	('parts', int8send(0) || int4send(1) || int4send(2)),
	('node id above 2^31-1', int8send(0) || int4send(0) || int4send(-1)),
	('first', int8send((extract(epoch FROM '0001-01-01 00:00+00'::timestamptz - '2000-01-01 00:00+00'::timestamptz) * 1000000)::bigint) || int4send(0) || int4send(0)),
	('before year 1', int8send((extract(epoch FROM '0001-01-01 00:00+00'::timestamptz - '2000-01-01 00:00+00'::timestamptz) * 1000000)::bigint - 1) || int4send(0) || int4send(0)),
	('last', int8send((extract(epoch FROM '9999-12-31 23:59:59.999999+00'::timestamptz - '2000-01-01 00:00+00'::timestamptz) * 1000000)::bigint) || int4send(0) || int4send(0)),
	('after year 9999', int8send((extract(epoch FROM '9999-12-31 23:59:59.999999+00'::timestamptz - '2000-01-01 00:00+00'::timestamptz) * 1000000)::bigint + 1) || int4send(0) || int4send(0)),
	('too short', int8send(0) || int4send(0)),
	('too long', int8send(0) || int4send(0) || int4send(0) || '\x00'::bytea)
) v(what, b);

-- parts and conversions
SELECT hlc('2026-11-21 05:42:33.25+00'::timestamptz, 3, 17);
SELECT hlc('2026-11-21 05:42:33.25+00'::timestamptz);
SELECT hlc('2026-11-21T05:42:33.25Z/3@17'::hlc::timestamptz, 3, 17) = '2026-11-21T05:42:33.25Z/3@17'::hlc AS parts_round_trip;
SELECT hlc_logical('2026-11-21T05:42:33Z/4294967295@5'), hlc_node('2026-11-21T05:42:33Z/4294967295@5');
SET TimeZone = 'UTC';
SET DateStyle = 'ISO';
SELECT '2026-11-21T05:42:33.25Z/3@17'::hlc::timestamptz, hlc_to_timestamptz('2026-11-21T05:42:33Z/0@1');
RESET TimeZone;
RESET DateStyle;
SELECT pg_temp.check($$SELECT distx.hlc('infinity'::timestamptz)$$);
SELECT pg_temp.check($$SELECT distx.hlc('10000-01-01 00:00+00'::timestamptz)$$);
SELECT pg_temp.check($$SELECT distx.hlc(now(), -1)$$);
SELECT pg_temp.check($$SELECT distx.hlc(now(), 4294967296)$$);
SELECT pg_temp.check($$SELECT distx.hlc(now(), 0, -1)$$);

-- total order: physical, then logical, then node
SELECT h FROM (VALUES ('2026-01-01T00:00:00Z/1@1'::hlc), ('2026-01-01T00:00:00Z/0@2'),
	('2025-12-31T23:59:59.999999Z/9@9'), ('2026-01-01T00:00:00Z/1@0'),
	('2026-01-01T00:00:00.000001Z/0@0'), ('2026-01-01T00:00:00Z/0@2')) v(h)
ORDER BY h;
SELECT a < b AS lt, a <= b AS le, a = b AS eq, a <> b AS ne, a >= b AS ge, a > b AS gt, hlc_cmp(a, b)
FROM (VALUES ('2026-01-01T00:00:00Z/0@1'::hlc, '2026-01-01T00:00:00Z/0@2'::hlc),
             ('2026-01-01T00:00:00Z/1@1', '2026-01-01T00:00:00Z/0@2'),
             ('2026-01-01T00:00:00Z/0@1', '2026-01-01T00:00:00Z/0@1')) v(a, b);
SELECT max(h), min(h) FROM (VALUES ('2026-01-01T00:00:00Z/1@1'::hlc), ('2026-01-01T00:00:00Z/1@3'), ('2025-01-01T00:00:00Z/7@7')) v(h);

-- btree index and hash operator class
CREATE TABLE ht (h hlc PRIMARY KEY, n int);
INSERT INTO ht SELECT hlc('2026-01-01 00:00+00'::timestamptz + i * interval '1 ms', i % 3, i % 5), i
	FROM generate_series(1, 1000) i;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT n FROM ht WHERE h > '2026-01-01T00:00:00.998Z/0@0' ORDER BY h;
SELECT n FROM ht WHERE h > '2026-01-01T00:00:00.998Z/0@0' ORDER BY h;
RESET enable_seqscan;
SELECT pg_temp.check($$INSERT INTO ht VALUES ('2026-01-01T00:00:00.001Z/1@1', 0)$$);
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM ht a JOIN ht b ON a.h = b.h;
SELECT count(*) FROM ht a JOIN ht b ON a.h = b.h;
RESET enable_mergejoin;
RESET enable_nestloop;
SELECT count(*) FROM (SELECT DISTINCT h FROM ht) s;
SELECT hlc_hash('2026-01-01T00:00:00Z/1@1') = hlc_hash('2026-01-01T00:00:00.000000Z/1@1') AS same_hash,
       hlc_hash_extended('2026-01-01T00:00:00Z/1@1', 1) = hlc_hash_extended('2026-01-01T00:00:00Z/1@1', 1) AS same_ext;
DROP TABLE ht;

-- this server's identity
SELECT node_name() = current_setting('distx.node_name') AS name_matches,
       node_name() ~ '^node-[0-9]+$' AS derived_from_system_identifier,
       node_id() = current_setting('distx.node_id')::int AS id_matches,
       node_id() > 0 AS id_positive;

-- hlc_now(): strictly increasing, carries this node's id, near the wall clock
SELECT bool_and(h > prev) AS increasing, count(*) AS n,
       bool_and(hlc_node(h) = node_id()) AS own_node
FROM (SELECT h, lag(h) OVER (ORDER BY i) AS prev
      FROM (SELECT i, hlc_now() AS h FROM generate_series(1, 10000) i) s) t
WHERE prev IS NOT NULL;
SELECT abs(extract(epoch FROM hlc_now()::timestamptz - clock_timestamp())) < 5 AS near_wall_clock;

-- ... and unique across concurrent backends (parallel workers)
CREATE TABLE hsrc AS SELECT i FROM generate_series(1, 30000) i;
ANALYZE hsrc;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = on;
EXPLAIN (COSTS OFF) SELECT hlc_now() FROM hsrc;
CREATE TEMP TABLE hout AS SELECT hlc_now() AS h FROM hsrc;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
SELECT count(*) AS n, count(DISTINCT h) AS distinct_timestamps FROM hout;
DROP TABLE hsrc;

-- hlc_observe(): the result is after the observed timestamp and after
-- everything issued before; so is every later hlc_now(), even while the
-- wall clock is still behind the observed time (as after a clock step back)
SET distx.hlc_max_offset = '2s';
SELECT o > r AS after_remote, n > o AS now_after_observe, hlc_node(o) = node_id() AS own_node,
       hlc_now()::timestamptz >= r::timestamptz AS clock_moved_ahead
FROM (SELECT hlc(clock_timestamp() + interval '1500 ms', 7, 12345) AS r) s,
     LATERAL (SELECT hlc_observe(r) AS o) o,
     LATERAL (SELECT hlc_now() AS n WHERE o IS NOT NULL) n;
-- an old timestamp only ticks the clock
SELECT hlc_observe('2001-01-01T00:00:00Z/5@1')::timestamptz > '2020-01-01' AS old_timestamp_ignored;
-- too far ahead: refused (the detail gives the offset, which varies)
SET distx.hlc_max_offset = '100ms';
DO $$
BEGIN
	PERFORM distx.hlc_observe(distx.hlc(clock_timestamp() + interval '1 hour'));
EXCEPTION WHEN others THEN
	RAISE NOTICE 'hlc_observe: % %', SQLSTATE, SQLERRM;
END $$;
RESET distx.hlc_max_offset;
SHOW distx.hlc_max_offset;
