--
-- lww: last-write-wins registers
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

-- text form and parts
SELECT '{"value": {"qty": 3}, "hlc": "2026-11-21T05:42:33.123456Z/0@17", "clock": {"b": 1, "a": 2}}'::lww;
SELECT '{"clock": {}, "hlc": "2026-01-01T00:00:00Z/0@1", "value": 1.50}'::lww;
SELECT lww('[1, "two", null]'::jsonb, '2026-01-01T00:00:00Z/0@1', '{"n1": 1}');
SELECT lww_value(r), lww_value_text(r), lww_hlc(r), lww_clock(r)
FROM (SELECT '{"value": {"qty": 3}, "hlc": "2026-01-01T00:00:00Z/0@17", "clock": {"a": 2}}'::lww AS r) s;
SELECT v, lww_value_text(lww(v, '2026-01-01T00:00:00Z/0@1', '{}')) AS as_text
FROM (VALUES ('"plain string"'::jsonb), ('42'), ('true'), ('null'), ('{"a": [1]}')) s(v);

SELECT input, pg_temp.check(format('SELECT %L::distx.lww', input)) AS result
FROM (VALUES
	('[1]'),
	('"x"'),
	('{"value": 1'),
	('{"value": 1, "hlc": "2026-01-01T00:00:00Z/0@1"}'),
	('{"value": 1, "hlc": "2026-01-01T00:00:00Z/0@1", "clock": {}, "extra": 0}'),
	('{"value": 1, "hlc": "2026-01-01T00:00:00Z/0@1", "clok": {}}'),
	('{"value": 1, "hlc": 5, "clock": {}}'),
	('{"value": 1, "hlc": "2026-01-01/0@1", "clock": {}}'),
	('{"value": 1, "hlc": "2026-01-01T00:00:00Z/0@1", "clock": []}'),
	('{"value": 1, "hlc": "2026-01-01T00:00:00Z/0@1", "clock": {"a": -1}}'),
	('{"value": 1, "hlc": "2026-01-01T00:00:00Z/0@1", "clock": {"a": 1.5}}')
) v(input);

-- binary input (lww_recv, through COPY BINARY of bytea fields): the hlc,
-- then the vclock and the jsonb value in their binary forms, each after its
-- int32 length
\getenv abs_builddir PG_ABS_BUILDDIR
\set binfile :abs_builddir '/results/types_lww_recv.bin'
SELECT set_config('regress.binfile', :'binfile', false) IS NOT NULL AS set;
CREATE TEMP TABLE recv_target (v lww);
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
CREATE FUNCTION pg_temp.part(b bytea) RETURNS bytea LANGUAGE sql AS
	$$ SELECT int4send(octet_length(b)) || b $$;
SELECT what, pg_temp.recv(b) AS result
FROM (VALUES
	('send output', distx.lww_send('{"value": [1, "x"], "hlc": "2026-01-01T00:00:00Z/0@1", "clock": {"a": 1}}')),
	('parts', distx.hlc_send('2026-01-01T00:00:00Z/0@1') || pg_temp.part(distx.vclock_send('{"b": 2}'))
	          || pg_temp.part(jsonb_send('{"k": 1}'))),
	('bad clock', distx.hlc_send('2026-01-01T00:00:00Z/0@1') || pg_temp.part(int4send(1) || int4send(1) || convert_to('a', 'UTF8') || int8send(-5))
	          || pg_temp.part(jsonb_send('1'))),
	('clock length beyond the data', distx.hlc_send('2026-01-01T00:00:00Z/0@1') || int4send(1000)),
	('clock with trailing bytes', distx.hlc_send('2026-01-01T00:00:00Z/0@1') || pg_temp.part(int4send(0) || '\x00'::bytea)
	          || pg_temp.part(jsonb_send('1'))),
	('bad jsonb version', distx.hlc_send('2026-01-01T00:00:00Z/0@1') || pg_temp.part(int4send(0)) || pg_temp.part('\x0231'::bytea)),
	('missing value', distx.hlc_send('2026-01-01T00:00:00Z/0@1') || pg_temp.part(int4send(0)))
) v(what, b);

-- writes on this node: lww_new() for a new register, lww_set() to replace one
SELECT lww_value(lww_new(42)) AS int, lww_value(lww_new('text literal')) AS text,
       lww_value(lww_new('v'::varchar)) AS varchar, lww_value(lww_new(3.50)) AS numeric,
       lww_value(lww_new(ARRAY[1, 2])) AS array, lww_value(lww_new(ROW(1, 'a'))) AS record,
       lww_value(lww_new('{"a": 1}'::jsonb)) AS jsonb, lww_value(lww_new(NULL::int)) AS null;
SELECT lww_clock(r) = vclock_increment('{}', node_name()) AS clock_is_this_node,
       hlc_node(lww_hlc(r)) = node_id() AS hlc_is_this_node
FROM (SELECT lww_new('x') AS r) s;
SELECT lww_value(w) AS value,
       lww_hlc(w) > lww_hlc(r) AS later,
       lww_compare(r, w) AS causality,
       vclock_get(lww_clock(w), node_name()) AS my_counter,
       vclock_get(lww_clock(w), 'other') AS kept_other
FROM (SELECT lww('"old"'::jsonb, hlc_now(), vclock_increment('{"other": 5}', node_name())) AS r) s,
     LATERAL (SELECT lww_set(r, 'new') AS w) t;
SELECT lww_value(lww_set(NULL, 7)) AS from_null, vclock_size(lww_clock(lww_set(NULL, 7))) AS nodes;

-- a slow wall clock never loses to the value it overwrote: the old value
-- was written by a node whose clock is 1.5 s ahead of ours
SET distx.hlc_max_offset = '2s';
SELECT lww_hlc(w) > lww_hlc(r) AS new_write_is_later,
       lww_value_text(lww_merge(r, w)) AS merged, lww_value_text(lww_merge(w, r)) AS merged_other_way,
       lww_concurrent(r, w) AS concurrent
FROM (SELECT lww('"old"'::jsonb, hlc(clock_timestamp() + interval '1500 ms', 0, 99), '{"fast-node": 1}') AS r) s,
     LATERAL (SELECT lww_set(r, 'new') AS w) t;
-- but a timestamp beyond distx.hlc_max_offset is refused
SET distx.hlc_max_offset = '100ms';
DO $$
BEGIN
	PERFORM distx.lww_set(distx.lww('1'::jsonb, distx.hlc(clock_timestamp() + interval '1 hour'), '{}'), 2);
EXCEPTION WHEN others THEN
	RAISE NOTICE 'lww_set: % %', SQLSTATE, SQLERRM;
END $$;
RESET distx.hlc_max_offset;

-- merge: the larger hlc wins, the clocks merge
WITH w(name, r) AS (VALUES
	('a', lww('"A"'::jsonb, '2026-01-01T00:00:01Z/0@1', '{"n1": 2}')),
	('b', lww('"B"'::jsonb, '2026-01-01T00:00:02Z/0@2', '{"n1": 1, "n2": 1}')),
	('c', lww('"C"'::jsonb, '2026-01-01T00:00:02Z/0@1', '{"n1": 3}')),
	('d', lww('"D"'::jsonb, '2026-01-01T00:00:02Z/1@0', '{"n1": 2, "n2": 1}')))
SELECT x.name || ' + ' || y.name AS merge, lww_merge(x.r, y.r), lww_concurrent(x.r, y.r) AS concurrent,
       lww_compare(x.r, y.r) AS causality
FROM w x, w y WHERE x.name < y.name ORDER BY 1;
-- equal hlcs (a misconfigured pair of nodes with the same id): the value
-- breaks the tie, and values equal in jsonb order (1.0 and 1.00) by their bytes
SELECT lww_merge(a, b) = lww_merge(b, a) AS commutative, lww_value(lww_merge(a, b))
FROM (VALUES
	(lww('1.0'::jsonb, '2026-01-01T00:00:00Z/0@1', '{}'), lww('1.00'::jsonb, '2026-01-01T00:00:00Z/0@1', '{}')),
	(lww('"x"'::jsonb, '2026-01-01T00:00:00Z/0@1', '{}'), lww('"y"'::jsonb, '2026-01-01T00:00:00Z/0@1', '{}')),
	(lww('[2]'::jsonb, '2026-01-01T00:00:00Z/0@1', '{"a": 1}'), lww('{"k": 1}'::jsonb, '2026-01-01T00:00:00Z/0@1', '{"b": 1}'))
) v(a, b);

-- The textbook shortcut "if the clocks are concurrent the larger wall time
-- wins, else the causally later write" is not associative with skewed
-- clocks.  x is written at wall time 10 on a fast node n1; y at wall time 8
-- on n3, concurrent with x; z overwrites x on a slow node n2 at wall time 9
-- (causally later than x, concurrent with y).
CREATE TEMP TABLE naive_write (v text, wall int, clock vclock);
CREATE FUNCTION pg_temp.naive_merge(a naive_write, b naive_write) RETURNS naive_write
LANGUAGE sql AS $$
	SELECT ROW((s.w).v, (s.w).wall, distx.vclock_merge(a.clock, b.clock))::naive_write
	FROM (SELECT CASE
		WHEN distx.vclock_concurrent(a.clock, b.clock) THEN
			CASE WHEN a.wall >= b.wall THEN a ELSE b END
		WHEN a.clock OPERATOR(distx.>>=) b.clock THEN a ELSE b END AS w) s
$$;
WITH r AS (SELECT ROW('x', 10, '{"n1": 1}')::naive_write AS x,
                  ROW('y', 8, '{"n3": 1}')::naive_write AS y,
                  ROW('z', 9, '{"n1": 1, "n2": 1}')::naive_write AS z)
SELECT (pg_temp.naive_merge(pg_temp.naive_merge(x, y), z)).v AS "naive (x+y)+z",
       (pg_temp.naive_merge(x, pg_temp.naive_merge(y, z))).v AS "naive x+(y+z)"
FROM r;
-- With hlcs, z observed x before writing (lww_set), so its hlc is above x's
-- although its wall clock is behind: the order extends causality, the merge
-- is associative and z, which overwrote x, wins.
WITH r AS (SELECT
	lww('"x"'::jsonb, '2026-01-01T00:00:10Z/0@1', '{"n1": 1}') AS x,
	lww('"y"'::jsonb, '2026-01-01T00:00:08Z/0@3', '{"n3": 1}') AS y,
	lww('"z"'::jsonb, '2026-01-01T00:00:10Z/1@2', '{"n1": 1, "n2": 1}') AS z)
SELECT lww_value_text(lww_merge(lww_merge(x, y), z)) AS "(x+y)+z",
       lww_value_text(lww_merge(x, lww_merge(y, z))) AS "x+(y+z)",
       lww_merge(lww_merge(x, y), z) = lww_merge(x, lww_merge(y, z)) AS associative,
       lww_clock(lww_merge(lww_merge(x, y), z)) AS clock
FROM r;

-- aggregate
SELECT lww_merge_agg(r) FROM (VALUES
	(lww('1'::jsonb, '2026-01-01T00:00:01Z/0@1', '{"a": 1}')),
	(NULL),
	(lww('2'::jsonb, '2026-01-01T00:00:03Z/0@2', '{"b": 1}')),
	(lww('3'::jsonb, '2026-01-01T00:00:02Z/0@3', '{"c": 4}'))) v(r);
SELECT lww_merge_agg(r) FROM (SELECT NULL::lww WHERE false) s(r);

-- equality and hashing
SELECT a = b AS eq, a <> b AS ne, lww_hash(a) = lww_hash(b) AS same_hash, a ?|| b AS concurrent
FROM (VALUES
	('{"value": 1, "hlc": "2026-01-01T00:00:00Z/0@1", "clock": {"a": 1, "b": 0}}'::lww,
	 '{"clock": {"a": 1}, "value": 1, "hlc": "2026-01-01T00:00:00.000000Z/0@1"}'::lww),
	(lww('1'::jsonb, '2026-01-01T00:00:00Z/0@1', '{"a": 1}'), lww('1'::jsonb, '2026-01-01T00:00:00Z/0@1', '{"b": 1}'))
) v(a, b);

-- the intended use: an upsert that merges a replicated write
CREATE TABLE inventory (id int PRIMARY KEY, v lww);
CREATE TABLE conflicts (id int, mine lww, theirs lww);
CREATE FUNCTION pg_temp.apply(p_id int, incoming lww) RETURNS void LANGUAGE sql AS $$
	INSERT INTO conflicts SELECT p_id, t.v, incoming FROM inventory t
		WHERE t.id = p_id AND distx.lww_concurrent(t.v, incoming);
	INSERT INTO inventory VALUES (p_id, incoming)
		ON CONFLICT (id) DO UPDATE SET v = distx.lww_merge(inventory.v, excluded.v);
$$;
SELECT pg_temp.apply(1, lww('{"qty": 10}'::jsonb, '2026-01-01T00:00:01Z/0@1', '{"a": 1}'));
-- b saw a's write and changed it: causally later
SELECT pg_temp.apply(1, lww('{"qty": 7}'::jsonb, '2026-01-01T00:00:02Z/0@2', '{"a": 1, "b": 1}'));
-- a late duplicate of a's write changes nothing
SELECT pg_temp.apply(1, lww('{"qty": 10}'::jsonb, '2026-01-01T00:00:01Z/0@1', '{"a": 1}'));
-- c wrote without seeing b: concurrent, logged; the later hlc wins
SELECT pg_temp.apply(1, lww('{"qty": 5}'::jsonb, '2026-01-01T00:00:03Z/0@3', '{"a": 1, "c": 1}'));
SELECT id, v FROM inventory;
SELECT id, lww_value(mine) AS mine, lww_value(theirs) AS theirs FROM conflicts;
-- a local write replaces the register: lww_set
UPDATE inventory SET v = lww_set(v, '{"qty": 4}'::jsonb) WHERE id = 1;
SELECT lww_value(v), vclock_get(lww_clock(v), node_name()) AS mine, lww_clock(v) >> '{"a": 1, "b": 1, "c": 1}' AS after_all
FROM inventory;
DROP TABLE inventory, conflicts;

-- a large value is TOASTed and intact
CREATE TABLE lt (r lww);
INSERT INTO lt SELECT lww(jsonb_build_object('blob', repeat('x', 100000)), '2026-01-01T00:00:00Z/0@1',
	('{' || string_agg(format('"n%s": %s', i, i), ', ') || '}')::vclock)
	FROM generate_series(1, 2000) i;
SELECT length(lww_value(r)->>'blob'), vclock_size(lww_clock(r)), r::text::lww = r AS text_round_trip,
       pg_column_size(r) < 50000 AS compressed
FROM lt;
DROP TABLE lt;
