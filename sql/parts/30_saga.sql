--
-- Sagas (src/saga, src/cluster/saga_state.c)
--
-- A saga is an ordered list of steps; each step is a forward statement on a
-- node (or on this database) and, optionally, the statement that undoes it.
-- The background worker runs the steps of a run one after another and, when
-- a step fails for good, runs the compensations of the completed steps in
-- reverse order.  Definitions and runs live in the tables below; they are
-- only ever changed through the functions of the extension (the apply path,
-- src/cluster/saga_state.c), and read through the views.
--
-- States of a run and of its steps:
--   pending              not started yet
--   running              forward attempts in progress (or waiting for a retry)
--   completed            forward statement applied
--   failed               (steps only) forward statement failed for good;
--                        nothing of it was applied
--   compensating         compensations in progress (or waiting for a retry)
--   compensated          undone
--   compensation_failed  a compensation kept failing: the run stopped;
--                        fix the cause and call distx.saga_retry(run)
--   cancelled            runs: cancelled and compensated; steps: never run
--                        because the run was cancelled or failed before them

-- Definitions: one row per (saga, version); versions are immutable.
CREATE TABLE distx.saga_def (
	saga text NOT NULL,
	version int NOT NULL,
	owner oid NOT NULL,
	definition jsonb NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (saga, version)
);

CREATE TABLE distx.saga_def_step (
	saga text NOT NULL,
	version int NOT NULL,
	step_no int NOT NULL,
	step_name text NOT NULL,
	node_id oid,				-- NULL: the local database
	node_name text,
	forward_sql text NOT NULL,
	forward_params text[] NOT NULL,
	compensate_sql text,		-- NULL: nothing to undo
	compensate_params text[] NOT NULL,
	max_attempts int NOT NULL,
	base_delay_ms int NOT NULL,
	multiplier float8 NOT NULL,
	max_delay_ms int NOT NULL,
	timeout_ms int NOT NULL,
	non_retryable text[] NOT NULL,
	PRIMARY KEY (saga, version, step_no),
	UNIQUE (saga, version, step_name),
	FOREIGN KEY (saga, version) REFERENCES distx.saga_def
);

CREATE SEQUENCE distx.saga_run_id_seq;

CREATE TABLE distx.saga_run (
	run_id bigint PRIMARY KEY,
	saga text NOT NULL,
	version int NOT NULL,
	run_key text UNIQUE,
	input jsonb NOT NULL,
	state text NOT NULL CHECK (state IN ('pending', 'running', 'completed',
		'compensating', 'compensated', 'compensation_failed', 'cancelled')),
	started_by oid NOT NULL,
	cancel_requested bool NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	finished_at timestamptz,
	next_at timestamptz,		-- when the worker looks at it next
	last_error text,
	last_sqlstate text,
	request_id text UNIQUE,		-- in a cluster: the proposal that created it
	FOREIGN KEY (saga, version) REFERENCES distx.saga_def
);
CREATE INDEX saga_run_due ON distx.saga_run (next_at)
	WHERE state IN ('pending', 'running', 'compensating');

CREATE TABLE distx.saga_run_step (
	run_id bigint NOT NULL REFERENCES distx.saga_run ON DELETE CASCADE,
	step_no int NOT NULL,
	state text NOT NULL CHECK (state IN ('pending', 'running', 'completed',
		'failed', 'compensating', 'compensated', 'compensation_failed',
		'cancelled')),
	output jsonb,				-- the first row the forward statement returned
	failures int NOT NULL DEFAULT 0,		-- counted forward failures
	comp_failures int NOT NULL DEFAULT 0,	-- counted compensation failures (this round)
	next_at timestamptz,
	last_error text,
	last_sqlstate text,
	started_at timestamptz,
	completed_at timestamptz,
	compensated_at timestamptz,
	PRIMARY KEY (run_id, step_no)
);

CREATE TABLE distx.saga_attempt (
	run_id bigint NOT NULL,
	step_no int NOT NULL,
	attempt_no int NOT NULL,
	phase text NOT NULL CHECK (phase IN ('forward', 'compensate')),
	state text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'aborted')),
	gid text,					-- remote steps: the prepared transaction
	commit_pending bool NOT NULL DEFAULT false,	-- COMMIT PREPARED not confirmed
	counted bool NOT NULL DEFAULT true,	-- counts against max_attempts
	term bigint NOT NULL DEFAULT 0,		-- coordinator term that claimed it (0: single node)
	started_at timestamptz NOT NULL,
	finished_at timestamptz,
	error text,
	sqlstate text,
	PRIMARY KEY (run_id, step_no, attempt_no),
	FOREIGN KEY (run_id, step_no) REFERENCES distx.saga_run_step ON DELETE CASCADE
);
CREATE INDEX saga_attempt_open ON distx.saga_attempt (run_id)
	WHERE state = 'running' OR commit_pending;

REVOKE ALL ON distx.saga_def, distx.saga_def_step, distx.saga_run,
	distx.saga_run_step, distx.saga_attempt, distx.saga_run_id_seq FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('distx.saga_def', '');
SELECT pg_catalog.pg_extension_config_dump('distx.saga_def_step', '');
SELECT pg_catalog.pg_extension_config_dump('distx.saga_run', '');
SELECT pg_catalog.pg_extension_config_dump('distx.saga_run_step', '');
SELECT pg_catalog.pg_extension_config_dump('distx.saga_attempt', '');
SELECT pg_catalog.pg_extension_config_dump('distx.saga_run_id_seq', '');

-- One step of a definition, as the jsonb object distx.saga_define() takes.
CREATE FUNCTION distx.saga_step(
	name text,
	node text,
	forward text,
	compensate text DEFAULT NULL,
	params text[] DEFAULT '{}',
	compensate_params text[] DEFAULT NULL,
	max_attempts int DEFAULT 3,
	base_delay interval DEFAULT '100ms',
	multiplier float8 DEFAULT 2.0,
	max_delay interval DEFAULT '30s',
	timeout interval DEFAULT '1min',
	non_retryable text[] DEFAULT '{}')
RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
	SELECT pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(
		'name', name,
		'node', node,
		'forward', forward,
		'compensate', compensate,
		'params', pg_catalog.to_jsonb(params),
		'compensate_params', pg_catalog.to_jsonb(compensate_params),
		'max_attempts', max_attempts,
		'base_delay_ms', (pg_catalog.date_part('epoch', base_delay) * 1000)::bigint,
		'multiplier', multiplier,
		'max_delay_ms', (pg_catalog.date_part('epoch', max_delay) * 1000)::bigint,
		'timeout_ms', (pg_catalog.date_part('epoch', timeout) * 1000)::bigint,
		'non_retryable', pg_catalog.to_jsonb(non_retryable)));
END;
COMMENT ON FUNCTION distx.saga_step(text, text, text, text, text[], text[], int,
	interval, float8, interval, interval, text[]) IS
'one saga step as jsonb, for distx.saga_define(); node NULL or ''local'' is this database';

CREATE FUNCTION distx.saga_define(name text, steps jsonb)
RETURNS int
AS 'MODULE_PATHNAME', 'distx_saga_define'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION distx.saga_define(text, jsonb) IS
'define a saga from a jsonb array of steps; returns its version (a new one only when the definition changed)';

CREATE FUNCTION distx.saga_define(name text, VARIADIC steps jsonb[])
RETURNS int
LANGUAGE sql VOLATILE PARALLEL UNSAFE
RETURN distx.saga_define(name, pg_catalog.to_jsonb(steps));
COMMENT ON FUNCTION distx.saga_define(text, jsonb[]) IS
'define a saga from steps built with distx.saga_step(); returns its version';

CREATE FUNCTION distx.saga_start(name text, input jsonb DEFAULT '{}', run_key text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'distx_saga_start'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION distx.saga_start(text, jsonb, text) IS
'start a run of the latest version of a saga; idempotent on run_key; returns the run id';

CREATE FUNCTION distx.saga_cancel(run bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'distx_saga_cancel'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION distx.saga_cancel(bigint) IS
'cancel a run: its completed steps are compensated now; returns the new state';

CREATE FUNCTION distx.saga_retry(run bigint)
RETURNS text
AS 'MODULE_PATHNAME', 'distx_saga_retry'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION distx.saga_retry(bigint) IS
'resume a run that stopped in compensation_failed or waits for a retry; returns the new state';

CREATE FUNCTION distx.saga_wait(run bigint, timeout interval DEFAULT '1min')
RETURNS text
AS 'MODULE_PATHNAME', 'distx_saga_wait'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION distx.saga_wait(bigint, interval) IS
'wait until a run is completed, compensated, compensation_failed or cancelled, or the timeout passes; returns its state';

CREATE FUNCTION distx.saga_purge(older_than interval DEFAULT '7 days')
RETURNS bigint
AS 'MODULE_PATHNAME', 'distx_saga_purge'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION distx.saga_purge(interval) IS
'forget your completed, compensated and cancelled runs that ended longer ago than older_than; returns how many';

-- Runs are visible to the role that started them (and its members) and to
-- superusers; definitions to everybody.
CREATE VIEW distx.sagas AS
SELECT d.saga, d.version, pg_catalog.pg_get_userbyid(d.owner) AS owner,
	   d.version = max(d.version) OVER (PARTITION BY d.saga) AS latest,
	   pg_catalog.jsonb_array_length(d.definition) AS steps,
	   d.definition, d.created_at
FROM distx.saga_def d;
COMMENT ON VIEW distx.sagas IS 'saga definitions, one row per version';

CREATE VIEW distx.saga_runs AS
SELECT r.run_id, r.saga, r.version, r.run_key, r.state,
	   pg_catalog.pg_get_userbyid(r.started_by) AS started_by,
	   r.input,
	   (SELECT count(*) FROM distx.saga_run_step s
		WHERE s.run_id = r.run_id AND s.state = 'completed')::int AS steps_completed,
	   (SELECT count(*) FROM distx.saga_run_step s WHERE s.run_id = r.run_id)::int AS steps,
	   (SELECT count(*) FROM distx.saga_attempt a WHERE a.run_id = r.run_id)::int AS attempts,
	   r.cancel_requested, r.last_error, r.last_sqlstate,
	   r.created_at, r.updated_at, r.finished_at,
	   CASE WHEN r.state IN ('pending', 'running', 'compensating') THEN r.next_at END AS next_retry_at
FROM distx.saga_run r
WHERE pg_catalog.pg_has_role(r.started_by, 'USAGE');
COMMENT ON VIEW distx.saga_runs IS 'saga runs: state, progress, last error and when the worker looks at them next';

CREATE VIEW distx.saga_run_steps AS
SELECT s.run_id, s.step_no, d.step_name, coalesce(d.node_name, 'local') AS node,
	   s.state, s.output,
	   (SELECT count(*) FROM distx.saga_attempt a WHERE a.run_id = s.run_id
		AND a.step_no = s.step_no AND a.phase = 'forward')::int AS attempts,
	   (SELECT count(*) FROM distx.saga_attempt a WHERE a.run_id = s.run_id
		AND a.step_no = s.step_no AND a.phase = 'compensate')::int AS compensation_attempts,
	   s.last_error, s.last_sqlstate,
	   s.started_at, s.completed_at, s.compensated_at,
	   CASE WHEN s.state IN ('pending', 'running', 'compensating') THEN s.next_at END AS next_retry_at
FROM distx.saga_run_step s
JOIN distx.saga_run r ON r.run_id = s.run_id
JOIN distx.saga_def_step d ON d.saga = r.saga AND d.version = r.version AND d.step_no = s.step_no
WHERE pg_catalog.pg_has_role(r.started_by, 'USAGE');
COMMENT ON VIEW distx.saga_run_steps IS 'the steps of saga runs: state, output, attempts, last error';

CREATE VIEW distx.saga_attempts AS
SELECT a.run_id, a.step_no, d.step_name, coalesce(d.node_name, 'local') AS node,
	   a.attempt_no, a.phase, a.state, a.counted, a.commit_pending, a.gid,
	   a.error, a.sqlstate, a.started_at, a.finished_at,
	   a.finished_at - a.started_at AS duration
FROM distx.saga_attempt a
JOIN distx.saga_run r ON r.run_id = a.run_id
JOIN distx.saga_def_step d ON d.saga = r.saga AND d.version = r.version AND d.step_no = a.step_no
WHERE pg_catalog.pg_has_role(r.started_by, 'USAGE');
COMMENT ON VIEW distx.saga_attempts IS 'every attempt of every saga step, recorded before it runs';

GRANT SELECT ON distx.sagas, distx.saga_runs, distx.saga_run_steps,
	distx.saga_attempts TO PUBLIC;
