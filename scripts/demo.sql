\set ON_ERROR_STOP 0
\pset footer off
\echo
\echo '#### 1. Setup: two shards as distx nodes (foreign servers + user mappings)'
\echo
CREATE EXTENSION distx;
CREATE SERVER shard_a FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port :'port_a', dbname 'postgres');
CREATE SERVER shard_b FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port :'port_b', dbname 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard_a OPTIONS (user 'postgres');
CREATE USER MAPPING FOR CURRENT_USER SERVER shard_b OPTIONS (user 'postgres');
CREATE TABLE transfers_log (id serial PRIMARY KEY, amount numeric, at timestamptz DEFAULT now());

\echo
\echo '#### 2. An atomic transfer across two databases and a local table'
\echo
BEGIN;
SELECT distx.exec('shard_a', 'UPDATE accounts SET balance = balance - $1 WHERE id = $2', '100', '7');
SELECT distx.exec('shard_b', 'UPDATE accounts SET balance = balance + $1 WHERE id = $2', '100', '9');
INSERT INTO transfers_log (amount) VALUES (100);
SELECT state, participants, participant_states FROM distx.transactions;
COMMIT;
SELECT 'shard_a' AS node, * FROM distx.query('shard_a', 'SELECT id, owner, balance FROM accounts ORDER BY id') AS t(id int, owner text, balance numeric)
UNION ALL
SELECT 'shard_b', * FROM distx.query('shard_b', 'SELECT id, owner, balance FROM accounts ORDER BY id') AS t(id int, owner text, balance numeric);

\echo
\echo '#### 3. A transfer that fails on one node rolls back everywhere (CHECK balance >= 0 on shard_b)'
\echo
BEGIN;
SELECT distx.exec('shard_a', 'UPDATE accounts SET balance = balance + $1 WHERE id = $2', '1000', '7');
SELECT distx.exec('shard_b', 'UPDATE accounts SET balance = balance - $1 WHERE id = $2', '1000', '9');
COMMIT;
SELECT 'shard_a' AS node, * FROM distx.query('shard_a', 'SELECT id, balance FROM accounts WHERE id = 7') AS t(id int, balance numeric)
UNION ALL
SELECT 'shard_b', * FROM distx.query('shard_b', 'SELECT id, balance FROM accounts WHERE id = 9') AS t(id int, balance numeric);

\echo
\echo '#### 4. Values are bind parameters: an injection attempt is just a string'
\echo
SELECT distx.exec('shard_a', 'UPDATE accounts SET owner = $1 WHERE id = $2', $$alice'); DROP TABLE accounts; --$$, '7');
SELECT * FROM distx.query('shard_a', 'SELECT id, owner FROM accounts WHERE id = $1', '7') AS t(id int, owner text);

\echo
\echo '#### 5. Node health: circuit breaker state, connections, in-doubt transactions'
\echo
SELECT node, circuit, consecutive_failures, open_connections, in_doubt FROM distx.node_health ORDER BY node;


\echo
\echo '#### 6. A saga: order -> reserve stock (shard_a) -> charge (shard_b) -> confirm (local)'
\echo
CREATE TABLE orders (id int PRIMARY KEY, state text NOT NULL);
SELECT distx.saga_define('order',
  distx.saga_step('create', 'local',
    'INSERT INTO orders VALUES ($1, ''new'') RETURNING id AS order_id',
    'UPDATE orders SET state = ''cancelled'' WHERE id = $1',
    params => '{$input.order_id}'),
  distx.saga_step('reserve', 'shard_a',
    'UPDATE stock SET available = available - $2 WHERE sku = $1 RETURNING available',
    'UPDATE stock SET available = available + $2 WHERE sku = $1',
    params => '{$input.sku,$input.qty}'),
  distx.saga_step('charge', 'shard_b',
    'UPDATE accounts SET balance = balance - $2 WHERE id = $1 RETURNING balance',
    'UPDATE accounts SET balance = balance + $2 WHERE id = $1',
    params => '{$input.customer,$input.amount}', non_retryable => '{23}'),
  distx.saga_step('confirm', 'local',
    'UPDATE orders SET state = ''confirmed'' WHERE id = $1',
    params => '{$steps.create.order_id}')) AS version;
-- bob (9 on shard_b) can pay 50, not 5000 (CHECK balance >= 0)
SELECT distx.saga_start('order', '{"order_id": 1, "sku": "book", "qty": 1, "customer": 9, "amount": 50}', run_key => 'order-1') AS run_ok,
	   distx.saga_start('order', '{"order_id": 2, "sku": "book", "qty": 1, "customer": 9, "amount": 5000}', run_key => 'order-2') AS run_fails;
SELECT distx.saga_wait(1, '60s') AS run_1, distx.saga_wait(2, '60s') AS run_2;
SELECT run_id, step_no, step_name, node, state, output FROM distx.saga_run_steps ORDER BY run_id, step_no;
SELECT run_id, state, last_sqlstate, last_error FROM distx.saga_runs ORDER BY run_id;
\echo 'the failed order left nothing behind: stock and balance are as after order 1'
SELECT * FROM orders ORDER BY id;
SELECT * FROM distx.query('shard_a', 'SELECT sku, available FROM stock') AS t(sku text, available int);
SELECT * FROM distx.query('shard_b', 'SELECT id, balance FROM accounts WHERE id = 9') AS t(id int, balance numeric);
\echo
\echo '#### 7. vclock: who has seen what'
\echo
-- the types' operators live in schema distx
SET search_path = public, distx;
SELECT distx.vclock_increment(distx.vclock_increment('{}', 'eu'), 'eu') AS eu_after_two_writes,
	   distx.vclock_increment('{"eu": 1}', 'us') AS us_after_seeing_eu_once;
SELECT a, b, distx.vclock_compare(a, b) AS a_vs_b, distx.vclock_merge(a, b) AS merged
FROM (VALUES ('{"eu": 1}'::distx.vclock, '{"eu": 2}'::distx.vclock),
			 ('{"eu": 2}', '{"eu": 1, "us": 1}'),
			 ('{"eu": 2, "us": 1}', '{"eu": 2, "us": 1}')) v(a, b);

\echo
\echo '#### 8. lww: a customer profile edited in two regions, merged with INSERT ... ON CONFLICT'
\echo
CREATE TABLE profiles (id int PRIMARY KEY, email distx.lww NOT NULL);
CREATE TABLE conflicts (id int, kept jsonb, lost jsonb, at timestamptz DEFAULT now());
-- the replica in "eu" wrote first; "us" then saw it and changed it; meanwhile
-- "eu" changed it again without having seen the "us" write (concurrent).
-- The "us" wall clock is a minute behind: its write still orders after the
-- one it saw, because it observed that hlc before ticking.
CREATE TEMP TABLE incoming AS
SELECT * FROM (VALUES
	(1, distx.lww('"ann@old.example"', distx.hlc(now() - interval '10 min', 0, 1), '{"eu": 1}')),
	(1, distx.lww('"ann@new.example"', distx.hlc(now() - interval '10 min', 1, 2), '{"eu": 1, "us": 1}')),
	(1, distx.lww('"ann@eu.example"', distx.hlc(now() - interval '9 min', 0, 1), '{"eu": 2}'))) v(id, email);
SELECT id, distx.lww_value(email) AS value, distx.lww_hlc(email) AS hlc, distx.lww_clock(email) AS clock FROM incoming;
-- writes arrive out of order (newest first); each arrival is an upsert
-- that merges, and a write concurrent with the stored one is logged
DO $$
DECLARE r record;
BEGIN
	FOR r IN SELECT * FROM incoming ORDER BY distx.lww_hlc(email) DESC LOOP
		INSERT INTO conflicts (id, kept, lost)
		SELECT p.id, distx.lww_value(distx.lww_merge(p.email, r.email)),
			   distx.lww_value(CASE WHEN distx.lww_hlc(p.email) > distx.lww_hlc(r.email)
									THEN r.email ELSE p.email END)
		FROM profiles p
		WHERE p.id = r.id AND distx.lww_concurrent(p.email, r.email);

		INSERT INTO profiles VALUES (r.id, r.email)
		ON CONFLICT (id) DO UPDATE SET email = distx.lww_merge(profiles.email, excluded.email);
	END LOOP;
END $$;
SELECT id, distx.lww_value_text(email) AS email, distx.lww_hlc(email) AS hlc, distx.lww_clock(email) AS merged_clock FROM profiles;
SELECT id, kept, lost FROM conflicts;
\echo
\echo 'A local overwrite takes an hlc above the value it replaces (observe, then tick),'
\echo 'so a server with a slow clock never loses to the value it overwrote:'
UPDATE profiles SET email = distx.lww_set(email, 'ann@shop.example'::text) WHERE id = 1;
SELECT id, distx.lww_value_text(email) AS email,
	   distx.lww_hlc(email) > distx.hlc(now() - interval '9 min', 0, 1) AS newer_than_replaced,
	   distx.lww_clock(email) AS clock FROM profiles;
