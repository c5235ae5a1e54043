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
