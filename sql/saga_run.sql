--
-- Sagas: starting runs, their states, cancel/retry/wait and permissions.
-- The background worker runs in database "postgres" (test/regress.conf),
-- not here: runs stay where the API puts them, so the states are stable.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS distx;
RESET client_min_messages;

-- start: a run id; the run and its steps are pending
SELECT distx.saga_start('order', '{"order_id": 1, "item": 3, "qty": 2}') AS run1 \gset
SELECT run_id = :run1 AS same, saga, version, run_key, state, started_by, input,
	   steps_completed, steps, attempts, last_error, next_retry_at IS NOT NULL AS due
FROM distx.saga_runs WHERE run_id = :run1;
SELECT step_no, step_name, node, state, output, attempts, compensation_attempts
FROM distx.saga_run_steps WHERE run_id = :run1 ORDER BY step_no;
SELECT count(*) AS attempts FROM distx.saga_attempts WHERE run_id = :run1;

-- the run is pinned to the version it started with
SELECT version FROM distx.saga_runs WHERE run_id = :run1;
SELECT distx.saga_define('order', distx.saga_step('only', NULL, 'SELECT 1'));
SELECT distx.saga_start('order', '{}') AS run_v4 \gset
SELECT run_id = :run_v4 AS v4, version, steps FROM distx.saga_runs
WHERE run_id IN (:run1, :run_v4) ORDER BY run_id;

-- idempotent on the run key
SELECT distx.saga_start('ping', '{}', 'key-1') AS key1 \gset
SELECT distx.saga_start('ping', '{"other": true}', 'key-1') = :key1 AS same_run;
SELECT count(*) FROM distx.saga_runs WHERE run_key = 'key-1';
\set VERBOSITY default
SELECT distx.saga_start('own_output', '{}', 'key-1');
SELECT distx.saga_start('ping', '{}', '');
-- bad input
SELECT distx.saga_start('no_such_saga', '{}');
SELECT distx.saga_start(NULL, '{}');
SELECT distx.saga_start('ping', '[1, 2]');
SELECT distx.saga_start('ping', '"text"');
SELECT distx.saga_start('ping', '42');
\set VERBOSITY terse
-- a NULL input is an empty object
SELECT distx.saga_start('ping', NULL) AS null_input \gset
SELECT input FROM distx.saga_runs WHERE run_id = :null_input;

-- wait: a run that does not move returns its current state at the timeout
SELECT distx.saga_wait(:run1, '50ms');
\set VERBOSITY default
SELECT distx.saga_wait(-1, '1s');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT distx.saga_wait(:run1, '1s');
ROLLBACK;
\set VERBOSITY terse

-- cancel a pending run: cancelled at once, its steps never run
SELECT distx.saga_cancel(:run1);
SELECT state, cancel_requested, finished_at IS NOT NULL AS finished, next_retry_at
FROM distx.saga_runs WHERE run_id = :run1;
SELECT step_no, state FROM distx.saga_run_steps WHERE run_id = :run1 ORDER BY step_no;
SELECT distx.saga_cancel(:run1);
SELECT distx.saga_wait(:run1, '10s');
\set VERBOSITY default
SELECT distx.saga_retry(:run1);
SELECT distx.saga_cancel(-1);
\set VERBOSITY terse

-- retry of a run in progress makes it due now
SELECT distx.saga_retry(:run_v4);

-- purge: finished runs go, the others stay
SELECT distx.saga_purge('1 hour');
SELECT count(*) AS cancelled FROM distx.saga_runs WHERE state = 'cancelled';
SELECT distx.saga_purge('0 seconds');
SELECT count(*) AS left_after_purge FROM distx.saga_runs;
SELECT count(*) AS attempts_left FROM distx.saga_attempts WHERE run_id = :run1;

-- the states a run and a step can be in
SELECT pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid IN ('distx.saga_run'::regclass, 'distx.saga_run_step'::regclass,
				   'distx.saga_attempt'::regclass) AND contype = 'c'
ORDER BY conrelid::regclass::text, conname;

-- permissions: steps run with the privileges of the role that starts the run
CREATE USER MAPPING FOR saga_alice SERVER saga_node_a OPTIONS (user 'alice', password 'secret');
SET ROLE saga_alice;
\set VERBOSITY default
-- no USAGE on the node of a step
SELECT distx.saga_define('alice_remote', distx.saga_step('a', 'saga_node_a', 'SELECT 1'));
SELECT distx.saga_start('alice_remote', '{}');
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER saga_node_a TO saga_alice, saga_bob;
SET ROLE saga_alice;
SELECT distx.saga_start('alice_remote', '{}') AS alice_run \gset
-- bob has USAGE but no user mapping
SET ROLE saga_bob;
SELECT distx.saga_start('alice_remote', '{}');
-- bob can neither see nor touch alice's run
SELECT count(*) FROM distx.saga_runs WHERE run_id = :alice_run;
SELECT distx.saga_cancel(:alice_run);
SELECT distx.saga_wait(:alice_run, '10ms');
\set VERBOSITY terse
SET ROLE saga_alice;
SELECT saga, state, started_by FROM distx.saga_runs WHERE run_id = :alice_run;
SELECT distx.saga_cancel(:alice_run);
RESET ROLE;

-- clean up: the roles, the servers, the extension
DROP USER MAPPING FOR saga_alice SERVER saga_node_a;
REVOKE USAGE ON FOREIGN SERVER saga_node_a FROM saga_alice, saga_bob;
DROP ROLE saga_alice;
DROP ROLE saga_bob;
SET client_min_messages = warning;
DROP SERVER saga_not_distx;
DROP FOREIGN DATA WRAPPER saga_other_fdw;
DROP EXTENSION distx CASCADE;
