--
-- Sagas: definitions, versions and validation
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS distx;
CREATE SERVER saga_node_a FOREIGN DATA WRAPPER distx
  OPTIONS (host '127.0.0.1', port '1', dbname 'shop');
CREATE SERVER saga_node_b FOREIGN DATA WRAPPER distx
  OPTIONS (host '127.0.0.1', port '1', dbname 'shop');
CREATE USER MAPPING FOR CURRENT_USER SERVER saga_node_a OPTIONS (user 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER saga_node_b OPTIONS (user 'postgres');
CREATE FOREIGN DATA WRAPPER saga_other_fdw;
CREATE SERVER saga_not_distx FOREIGN DATA WRAPPER saga_other_fdw;
RESET client_min_messages;

-- a step as jsonb, defaults filled in by distx.saga_step()
SELECT distx.saga_step('reserve', 'saga_node_a',
	'UPDATE stock SET qty = qty - $2 WHERE item = $1 RETURNING qty',
	'UPDATE stock SET qty = qty + $2 WHERE item = $1',
	params => '{$input.item,$input.qty}', max_attempts => 5,
	base_delay => '50ms', max_delay => '2s', timeout => '10s',
	non_retryable => '{23505,22}');

-- a four-step saga over two nodes and the local database
SELECT distx.saga_define('order',
	distx.saga_step('create', 'local',
		'INSERT INTO orders (id, state) VALUES ($1, ''new'') RETURNING id AS order_id',
		'DELETE FROM orders WHERE id = $1', params => '{$input.order_id}'),
	distx.saga_step('reserve', 'saga_node_a',
		'UPDATE stock SET qty = qty - $2 WHERE item = $1 RETURNING qty AS left',
		'UPDATE stock SET qty = qty + $2 WHERE item = $1',
		params => '{$input.item,$input.qty}'),
	distx.saga_step('charge', 'saga_node_b',
		'INSERT INTO payments (order_id, amount, key) VALUES ($1, $2, $3) RETURNING id AS payment_id',
		'DELETE FROM payments WHERE id = $1',
		params => '{$steps.create.order_id,$input.amount,$idempotency_key}',
		compensate_params => '{$steps.charge.payment_id}'),
	distx.saga_step('confirm', NULL,
		'UPDATE orders SET state = ''confirmed'' WHERE id = $1',
		params => '{$steps.create.order_id}'));

-- the same definition again: the same version
SELECT distx.saga_define('order',
	distx.saga_step('create', 'local',
		'INSERT INTO orders (id, state) VALUES ($1, ''new'') RETURNING id AS order_id',
		'DELETE FROM orders WHERE id = $1', params => '{$input.order_id}'),
	distx.saga_step('reserve', 'saga_node_a',
		'UPDATE stock SET qty = qty - $2 WHERE item = $1 RETURNING qty AS left',
		'UPDATE stock SET qty = qty + $2 WHERE item = $1',
		params => '{$input.item,$input.qty}'),
	distx.saga_step('charge', 'saga_node_b',
		'INSERT INTO payments (order_id, amount, key) VALUES ($1, $2, $3) RETURNING id AS payment_id',
		'DELETE FROM payments WHERE id = $1',
		params => '{$steps.create.order_id,$input.amount,$idempotency_key}',
		compensate_params => '{$steps.charge.payment_id}'),
	distx.saga_step('confirm', NULL,
		'UPDATE orders SET state = ''confirmed'' WHERE id = $1',
		params => '{$steps.create.order_id}'));

-- a changed definition (plain jsonb works too): a new version
SELECT distx.saga_define('order', '[
	{"name": "create", "forward": "INSERT INTO orders (id, state) VALUES ($1, ''new'') RETURNING id AS order_id",
	 "compensate": "DELETE FROM orders WHERE id = $1", "params": ["$input.order_id"]},
	{"name": "reserve", "node": "saga_node_a", "max_attempts": 10,
	 "forward": "UPDATE stock SET qty = qty - $2 WHERE item = $1",
	 "compensate": "UPDATE stock SET qty = qty + $2 WHERE item = $1",
	 "params": ["$input.item", "$input.qty"]}
]'::jsonb);

-- a single step object is a one-step saga
SELECT distx.saga_define('ping', distx.saga_step('ping', NULL, 'SELECT 1 AS one'));

SELECT saga, version, owner, latest, steps FROM distx.sagas ORDER BY saga, version;
SELECT d.version, d.step_no, d.step_name, d.node_name, d.forward_params,
	   d.compensate_sql IS NOT NULL AS compensates, d.compensate_params,
	   d.max_attempts, d.base_delay_ms, d.multiplier, d.max_delay_ms, d.timeout_ms,
	   d.non_retryable
FROM distx.saga_def_step d WHERE saga = 'order' ORDER BY version, step_no;

--
-- bad input: a clear error, and nothing is created
--
SELECT count(*) AS definitions_before FROM distx.saga_def \gset
\set VERBOSITY default
-- names
SELECT distx.saga_define(NULL, distx.saga_step('a', NULL, 'SELECT 1'));
SELECT distx.saga_define('', distx.saga_step('a', NULL, 'SELECT 1'));
-- no steps
SELECT distx.saga_define('empty', '[]'::jsonb);
SELECT distx.saga_define('empty', NULL::jsonb);
SELECT distx.saga_define('empty', '"a string"'::jsonb);
SELECT distx.saga_define('bad', '[1]'::jsonb);
-- step fields
SELECT distx.saga_define('bad', '[{"forward": "SELECT 1"}]'::jsonb);
SELECT distx.saga_define('bad', '[{"name": "1st", "forward": "SELECT 1"}]'::jsonb);
SELECT distx.saga_define('bad', '[{"name": "a"}]'::jsonb);
SELECT distx.saga_define('bad', '[{"name": "a", "forward": "   "}]'::jsonb);
SELECT distx.saga_define('bad', '[{"name": "a", "forward": "SELECT 1", "retries": 3}]'::jsonb);
SELECT distx.saga_define('bad', '[{"name": "a", "forward": 42}]'::jsonb);
SELECT distx.saga_define('bad',
	distx.saga_step('a', NULL, 'SELECT 1'), distx.saga_step('a', NULL, 'SELECT 2'));
-- unknown node, and a server that is not a distx node
SELECT distx.saga_define('bad', distx.saga_step('a', 'no_such_node', 'SELECT 1'));
SELECT distx.saga_define('bad', distx.saga_step('a', 'saga_not_distx', 'SELECT 1'));
-- malformed retry policies
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT 1', max_attempts => 0));
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT 1', multiplier => 0.5));
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT 1',
	base_delay => '10s', max_delay => '1s'));
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT 1', timeout => '0s'));
SELECT distx.saga_define('bad', '[{"name": "a", "forward": "SELECT 1", "max_attempts": 2.5}]'::jsonb);
SELECT distx.saga_define('bad', '[{"name": "a", "forward": "SELECT 1", "base_delay_ms": -1}]'::jsonb);
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT 1', non_retryable => '{2350}'));
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT 1', non_retryable => '{23505,abcde}'));
-- value references
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT $1', params => '{order_id}'));
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT $1', params => '{$inputs.x}'));
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT $1', params => '{$input..x}'));
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT $1', params => '{$steps}'));
-- an output that no earlier step produces: a later step, itself, no such step
SELECT distx.saga_define('bad',
	distx.saga_step('a', NULL, 'SELECT $1', params => '{$steps.b.x}'),
	distx.saga_step('b', NULL, 'SELECT 1 AS x'));
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT $1 AS x', params => '{$steps.a.x}'));
SELECT distx.saga_define('bad',
	distx.saga_step('a', NULL, 'SELECT 1 AS x'),
	distx.saga_step('b', NULL, 'SELECT 1', 'SELECT $1', compensate_params => '{$steps.c.x}'));
-- statements referencing parameters the step does not give
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT $2', params => '{$input.x}'));
SELECT distx.saga_define('bad', distx.saga_step('a', NULL, 'SELECT 1', 'SELECT $1'));
-- ... but $n inside strings and comments is not a parameter
SELECT distx.saga_define('dollar', distx.saga_step('a', NULL,
	'SELECT ''$1'' AS s, $$ $2 $$ AS t /* $3 */ -- $4'));
-- a compensation may use its own step's output
SELECT distx.saga_define('own_output',
	distx.saga_step('a', NULL, 'SELECT 1 AS x', 'SELECT $1', compensate_params => '{$steps.a.x}'));
\set VERBOSITY terse
SELECT count(*) - :definitions_before AS definitions_added FROM distx.saga_def;
SELECT saga FROM distx.saga_def WHERE saga IN ('bad', 'empty', '');

-- only the owner may define a new version
CREATE ROLE saga_alice LOGIN;
CREATE ROLE saga_bob LOGIN;
SET ROLE saga_alice;
SELECT distx.saga_define('alice_saga', distx.saga_step('a', NULL, 'SELECT 1'));
SET ROLE saga_bob;
\set VERBOSITY default
SELECT distx.saga_define('alice_saga', distx.saga_step('a', NULL, 'SELECT 2'));
\set VERBOSITY terse
-- not even unchanged
SELECT distx.saga_define('alice_saga', distx.saga_step('a', NULL, 'SELECT 1'));
RESET ROLE;
SELECT saga, version, owner FROM distx.sagas WHERE saga = 'alice_saga';
-- nobody but the extension reads or writes the tables directly
SET ROLE saga_bob;
SELECT count(*) FROM distx.saga_def;
INSERT INTO distx.saga_run (run_id, saga, version, input, state, started_by, created_at, updated_at)
VALUES (1, 'ping', 1, '{}', 'completed', 0, now(), now());
RESET ROLE;
