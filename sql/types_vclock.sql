--
-- vclock: a vector clock as a column type
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS distx;
RESET client_min_messages;
SET search_path = distx, public;

-- errors are shown as SQLSTATE, message and detail, one row per input
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

-- text form: canonical output sorted by node name, zero entries dropped,
-- any JSON whitespace accepted
SELECT '{"node-b": 1, "node-a": 3}'::vclock;
SELECT E' \t\n{ "b" :2 ,\r\n"a":1,"c":0 } \n'::vclock;
SELECT '{}'::vclock, '{"a": 0}'::vclock, '  {  }  '::vclock;
SELECT '{"a": 9223372036854775807}'::vclock;
SELECT '{"é": 1, "e": 2, "E": 3, "ü": 4}'::vclock;   -- byte order
SELECT '{"q\"uote": 1, "back\\slash": 2, "tab\t": 3, "\u00e9\u0041": 4, "\ud83d\ude00": 5, "\/": 6}'::vclock;
SELECT ('{"' || repeat('x', 63) || '": 1}')::vclock = ('{"' || repeat('x', 63) || '": 1}')::vclock AS longest_name_ok;

-- bad input: SQLSTATE and where
SELECT replace(input, E'\t', '<TAB>') AS input,
       pg_temp.check(format('SELECT %L::distx.vclock', input)) AS result
FROM (VALUES
	('{"a": -1}'),
	('{"a": 1, "b": -7}'),
	('{"a": 1.5}'),
	('{"a": 1e3}'),
	('{"a": "1"}'),
	('{"a": null}'),
	('{"a": }'),
	('{"a": 1, "a": 2}'),
	('{"b": 1, "a": 2, "b": 0}'),
	('{"": 1}'),
	('{"' || repeat('x', 64) || '": 1}'),
	('{"a": 1} x'),
	('{"a": 1}}'),
	('{"a": 1'),
	('{"a": 1,}'),
	('{"a" 1}'),
	('{a: 1}'),
	('{"a: 1}'),
	('{"a\q": 1}'),
	('{"\u12": 1}'),
	('{"\ud83d": 1}'),
	('{"\u0000": 1}'),
	(E'{"a\tb": 1}'),
	('[]'),
	(''),
	('{"é": 1, "x": -1}'),
	('{"a": 9223372036854775808}'),
	('{"a": 99999999999999999999999}')
) v(input);

-- increment, get, size, entries
SELECT vclock_increment('{}', 'a');
SELECT vclock_increment('{"a": 1, "c": 1}', 'b'),
       vclock_increment('{"a": 1, "c": 1}', 'a'),
       vclock_increment('{"a": 1, "c": 1}', 'c'),
       vclock_increment('{"a": 1, "c": 1}', 'd'),
       vclock_increment('{"b": 1}', 'a');
SELECT vclock_increment('{"a": 127}', 'a'), vclock_increment('{"a": 9223372036854775806}', 'a');
SELECT vclock_get('{"a": 5, "b": 7}', 'b'), vclock_get('{"a": 5}', 'zz'), vclock_get('{}', 'a');
SELECT vclock_size('{}'), vclock_size('{"a": 1, "b": 0, "c": 2}');
SELECT * FROM vclock_entries('{"n2": 5, "n1": 9223372036854775807, "n3": 0}');
SELECT * FROM vclock_entries('{}');
SELECT pg_temp.check($$SELECT distx.vclock_increment('{"a": 9223372036854775807}', 'a')$$);
SELECT pg_temp.check($$SELECT distx.vclock_increment('{}', '')$$);
SELECT pg_temp.check($$SELECT distx.vclock_increment('{}', repeat('n', 64))$$);

-- merge: pointwise maximum
SELECT vclock_merge('{"a": 3, "b": 1}', '{"b": 5, "c": 2}'),
       vclock_merge('{}', '{"a": 1}'),
       vclock_merge('{"a": 1}', '{}'),
       vclock_merge('{"a": 2}', '{"a": 1}'),
       vclock_merge('{"a": 1, "z": 1}', '{"m": 1}');

-- compare and the operators
SELECT a, b, vclock_compare(a, b) AS cmp, a = b AS eq, a <> b AS ne,
       a << b AS before, a >> b AS after, a <<= b AS before_eq,
       a >>= b AS after_eq, a ?|| b AS concurrent
FROM (VALUES
	('{}'::vclock, '{}'::vclock),
	('{"a": 1}', '{"a": 1}'),
	('{"a": 1}', '{"a": 2}'),
	('{"a": 2}', '{"a": 1}'),
	('{}', '{"a": 1}'),
	('{"a": 1}', '{"a": 1, "b": 1}'),
	('{"a": 1, "b": 1}', '{"a": 1}'),
	('{"a": 1}', '{"b": 1}'),
	('{"a": 2, "b": 1}', '{"a": 1, "b": 2}'),
	('{"a": 1, "c": 1}', '{"b": 1}')
) v(a, b);

-- equality is exact and hashes: DISTINCT, GROUP BY, hash joins
CREATE TABLE vc (id int, v vclock);
INSERT INTO vc VALUES (1, '{"a": 1, "b": 2}'), (2, '{"b": 2, "a": 1}'),
	(3, '{"a": 1, "b": 2, "c": 0}'), (4, '{"a": 1}'), (5, '{}'), (6, '{"a": 0}');
SELECT v, count(*) FROM vc GROUP BY v ORDER BY 2 DESC, 1::text;
-- (DISTINCT uses hashing; count(DISTINCT v) would need a sort order)
SELECT count(*) FROM (SELECT DISTINCT v FROM vc) s;
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT x.id, y.id FROM vc x JOIN vc y ON x.v = y.v;
SELECT x.id, y.id FROM vc x JOIN vc y ON x.v = y.v WHERE x.id < y.id ORDER BY 1, 2;
RESET enable_mergejoin;
RESET enable_nestloop;
SELECT vclock_hash('{"a": 1, "b": 2}') = vclock_hash('{"b": 2, "a": 1, "c": 0}') AS same_hash,
       vclock_hash_extended('{"a": 1}', 0) = vclock_hash_extended('{"a": 1}', 0) AS same_ext,
       vclock_hash_extended('{"a": 1}', 0) <> vclock_hash_extended('{"a": 1}', 1) AS seed_matters;
-- no btree operator class: a partial order cannot be sorted
SELECT pg_temp.check('SELECT v FROM vc ORDER BY v');

-- aggregate
SELECT vclock_merge_agg(v) FROM vc;
SELECT vclock_merge_agg(v) FROM vc WHERE false;
SELECT vclock_merge_agg(v) FROM (VALUES (NULL::vclock), ('{"x": 1}')) s(v);
SELECT id % 2 AS k, vclock_merge_agg(v) FROM vc GROUP BY 1 ORDER BY 1;

-- parallel aggregate (combine function) gives the same result as serial
CREATE TABLE vc_big AS
	SELECT i, ('{"n' || (i % 37) || '": ' || i || ', "m' || (i % 11) || '": ' || (i % 5) || '}')::vclock AS v
	FROM generate_series(1, 20000) i;
ANALYZE vc_big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT vclock_merge_agg(v) FROM vc_big;
CREATE TEMP TABLE par AS SELECT vclock_merge_agg(v) AS v FROM vc_big;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SET max_parallel_workers_per_gather = 0;
SELECT (SELECT v FROM par) = vclock_merge_agg(v) AS parallel_equals_serial,
       vclock_size(vclock_merge_agg(v)) AS nodes,
       vclock_get(vclock_merge_agg(v), 'n0') AS n0
FROM vc_big;
RESET max_parallel_workers_per_gather;

-- jsonb casts
SELECT '{"b": 2, "a": 1, "z": 0}'::vclock::jsonb;
SELECT '{"b": 2, "a": 1, "z": 0}'::jsonb::vclock;
SELECT '{"a": 9223372036854775807, "b": -0}'::jsonb::vclock;
SELECT input, pg_temp.check(format('SELECT %L::jsonb::distx.vclock', input)) AS result
FROM (VALUES
	('[1, 2]'),
	('3'),
	('null'),
	('{"a": -1}'),
	('{"a": 1.5}'),
	('{"a": 1.0}'),
	('{"a": "1"}'),
	('{"a": {"b": 1}}'),
	('{"": 1}'),
	('{"' || repeat('y', 64) || '": 1}'),
	('{"a": 9223372036854775808}')
) v(input);

-- binary input (vclock_recv, through COPY BINARY of bytea fields) is
-- validated as strictly as text: entries may come in any order, zero
-- counters are dropped, anything else wrong is 22P03
\getenv abs_builddir PG_ABS_BUILDDIR
\set binfile :abs_builddir '/results/types_vclock_recv.bin'
SELECT set_config('regress.binfile', :'binfile', false) IS NOT NULL AS set;
CREATE TEMP TABLE recv_target (v vclock);
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
CREATE FUNCTION pg_temp.entry(name text, counter bigint) RETURNS bytea LANGUAGE sql AS
	$$ SELECT int4send(octet_length(name)) || convert_to(name, 'UTF8') || int8send(counter) $$;
SELECT what, pg_temp.recv(b) AS result
FROM (VALUES
	('send output', distx.vclock_send('{"a": 1, "b": 9223372036854775807}')),
	('unsorted, with a zero', int4send(3) || pg_temp.entry('b', 1) || pg_temp.entry('c', 0) || pg_temp.entry('a', 2)),
	('empty', int4send(0)),
	('negative counter', int4send(1) || pg_temp.entry('a', -1)),
	('duplicate name', int4send(2) || pg_temp.entry('a', 1) || pg_temp.entry('a', 2)),
	('empty name', int4send(1) || pg_temp.entry('', 1)),
	('name too long', int4send(1) || pg_temp.entry(repeat('x', 64), 1)),
	('negative count', int4send(-1)),
	('count beyond the data', int4send(5) || pg_temp.entry('a', 1)),
	('truncated entry', int4send(1) || int4send(1) || convert_to('a', 'UTF8')),
	('trailing bytes', int4send(1) || pg_temp.entry('a', 1) || '\x00'::bytea)
) v(what, b);

-- thousands of entries: TOASTed (compressed or out of line) and intact
CREATE TABLE vc_toast (id int, v vclock);
INSERT INTO vc_toast
	SELECT 1, ('{' || string_agg(format('"node-%s": %s', i, i * 7919), ', ') || '}')::vclock
	FROM generate_series(1, 5000) i;
INSERT INTO vc_toast
	SELECT 2, vclock_increment(v, 'node-2500') FROM vc_toast WHERE id = 1;
SELECT id, vclock_size(v), vclock_get(v, 'node-2500'), vclock_get(v, 'node-5000'),
       pg_column_size(v) < octet_length(v::text) AS stored_smaller_than_text
FROM vc_toast ORDER BY id;
SELECT vclock_compare(a.v, b.v), a.v << b.v, vclock_merge(a.v, b.v) = b.v
FROM vc_toast a, vc_toast b WHERE a.id = 1 AND b.id = 2;
SELECT (SELECT v FROM vc_toast WHERE id = 1)::text::vclock = (SELECT v FROM vc_toast WHERE id = 1) AS text_round_trip,
       (SELECT v FROM vc_toast WHERE id = 1)::jsonb::vclock = (SELECT v FROM vc_toast WHERE id = 1) AS jsonb_round_trip;
SELECT count(*), sum(counter) FROM vc_toast, vclock_entries(v) WHERE id = 2;
-- the toast table holds them
SELECT pg_relation_size(c.reltoastrelid) > 0 AS toasted FROM pg_class c WHERE c.relname = 'vc_toast';

-- on-disk size against the jsonb form of the same clocks
SELECT pg_column_size(v) AS vclock_bytes, pg_column_size(v::jsonb) AS jsonb_bytes,
       pg_column_size(v) <= pg_column_size(v::jsonb) AS not_larger
FROM (VALUES ('{}'::vclock), ('{"node-a": 3, "node-b": 1}'),
             ('{"a": 9223372036854775807}'),
             ('{"shard-01": 120345, "shard-02": 99, "shard-03": 7}')) s(v);

DROP TABLE vc, vc_big, vc_toast;
