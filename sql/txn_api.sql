--
-- distx 2PC: nodes, the session API, errors.  The participants are two
-- other databases of this test server, reached over its Unix socket.
--
CREATE EXTENSION IF NOT EXISTS distx;
\set VERBOSITY terse

CREATE DATABASE distx_regress_a;
CREATE DATABASE distx_regress_b;
\c distx_regress_a
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, note text);
INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 5) g;
\c distx_regress_b
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, note text);
INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 5) g;
\c contrib_regression
\set VERBOSITY terse

-- errors as "SQLSTATE: message", to check both
CREATE FUNCTION expect_error(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE sql;
	RETURN 'no error';
EXCEPTION WHEN OTHERS OR query_canceled THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

DO $$
BEGIN
	EXECUTE format('CREATE SERVER a FOREIGN DATA WRAPPER distx OPTIONS (host %L, port %L, dbname %L)',
				   current_setting('unix_socket_directories'), current_setting('port'), 'distx_regress_a');
	EXECUTE format('CREATE SERVER b FOREIGN DATA WRAPPER distx OPTIONS (host %L, port %L, dbname %L)',
				   current_setting('unix_socket_directories'), current_setting('port'), 'distx_regress_b');
END $$;
CREATE USER MAPPING FOR CURRENT_USER SERVER a;
CREATE USER MAPPING FOR CURRENT_USER SERVER b;

-- option validation
SELECT expect_error($$CREATE SERVER bad FOREIGN DATA WRAPPER distx OPTIONS (hots 'x')$$);
SELECT expect_error($$CREATE SERVER bad FOREIGN DATA WRAPPER distx OPTIONS (password 'secret')$$);
SELECT expect_error($$CREATE SERVER bad FOREIGN DATA WRAPPER distx OPTIONS (user 'bob')$$);
SELECT expect_error($$CREATE USER MAPPING FOR PUBLIC SERVER a OPTIONS (host 'x')$$);
SELECT expect_error($$ALTER FOREIGN DATA WRAPPER distx OPTIONS (host 'x')$$);

-- unknown node, a server that is not a distx node, no user mapping
SELECT expect_error($$SELECT distx.exec('nope', 'SELECT 1')$$);
CREATE FOREIGN DATA WRAPPER dummy_fdw;
CREATE SERVER not_distx FOREIGN DATA WRAPPER dummy_fdw;
SELECT expect_error($$SELECT distx.exec('not_distx', 'SELECT 1')$$);
CREATE SERVER unmapped FOREIGN DATA WRAPPER distx OPTIONS (dbname 'distx_regress_a');
SELECT expect_error($$SELECT distx.exec('unmapped', 'SELECT 1')$$);
DROP SERVER unmapped;
SELECT expect_error($$SELECT distx.exec(NULL, 'SELECT 1')$$);
SELECT expect_error($$SELECT distx.exec('a', NULL)$$);

-- a remote error comes back with its SQLSTATE, message and the remote SQL
SELECT expect_error($$SELECT distx.exec('a', 'SELECT 1/0')$$);
SELECT expect_error($$SELECT distx.exec('a', 'UPDATE nosuchtable SET x = 1')$$);
\set VERBOSITY default
SELECT distx.exec('a', 'INSERT INTO accounts VALUES ($1, $2)', '1', '5');
\set VERBOSITY terse

-- COPY to or from the client is refused, the node's transaction is failed,
-- and the connection goes on (first statement of a transaction, and later)
SELECT expect_error($$SELECT distx.exec('a', 'COPY accounts FROM STDIN')$$);
SELECT expect_error($$SELECT distx.exec('a', 'COPY accounts TO STDOUT')$$);
BEGIN;
SELECT distx.exec('a', 'UPDATE accounts SET note = $1 WHERE id = 1', 'copy');
SELECT expect_error($$SELECT distx.exec('a', 'COPY accounts FROM STDIN')$$);
ROLLBACK;
SELECT * FROM distx.query('a', 'SELECT count(*), count(note) FROM accounts') AS t(n bigint, notes bigint);
-- one statement per call
SELECT expect_error($$SELECT distx.exec('a', 'SELECT 1; SELECT 2')$$);

-- atomic commit over two nodes and a local write
CREATE TABLE transfers (id serial, amount int);
BEGIN;
SELECT distx.exec('a', 'UPDATE accounts SET balance = balance - $1 WHERE id = $2', '10', '1');
SELECT distx.exec('b', 'UPDATE accounts SET balance = balance + $1 WHERE id = $2', '10', '1');
INSERT INTO transfers (amount) VALUES (10);
SELECT state, participants, participant_states FROM distx.transactions;
COMMIT;
SELECT * FROM distx.query('a', 'SELECT id, balance FROM accounts WHERE id = $1', '1') AS t(id int, balance int);
SELECT * FROM distx.query('b', 'SELECT id, balance FROM accounts WHERE id = $1', '1') AS t(id int, balance int);
-- the decision stays until recovery has seen every participant resolved
SELECT cardinality(participants) FROM distx.decisions;
SELECT state, participants FROM distx.transactions;
SELECT committed, rolled_back, in_doubt, unreachable, forgotten FROM distx.recover();
SELECT count(*) FROM distx.decisions;

-- ROLLBACK rolls back every node
BEGIN;
SELECT distx.exec('a', 'UPDATE accounts SET balance = 0');
SELECT distx.exec('b', 'UPDATE accounts SET balance = 0');
ROLLBACK;
SELECT sum(s) FROM (
	SELECT * FROM distx.query('a', 'SELECT sum(balance) FROM accounts') AS t(s bigint)
	UNION ALL
	SELECT * FROM distx.query('b', 'SELECT sum(balance) FROM accounts') AS t(s bigint)) x;

-- an error on one node rolls back the others
BEGIN;
SELECT distx.exec('a', 'UPDATE accounts SET balance = 0');
SELECT distx.exec('b', 'UPDATE accounts SET balance = NULL WHERE id = $1', '2');
ROLLBACK;
SELECT * FROM distx.query('a', 'SELECT sum(balance) FROM accounts') AS t(s bigint);

-- one remote writer and no local write: one-phase commit, no decision
BEGIN;
SELECT distx.exec('a', 'UPDATE accounts SET note = $1 WHERE id = $2', 'one phase', '3');
SELECT * FROM distx.query('b', 'SELECT note FROM accounts WHERE id = $1', '3') AS t(note text);
COMMIT;
SELECT count(*) FROM distx.decisions;
SELECT note FROM distx.query('a', 'SELECT note FROM accounts WHERE id = 3') AS t(note text);

-- two writers: the read-only participant is not prepared
BEGIN;
SELECT * FROM distx.query('b', 'SELECT count(*) FROM accounts') AS t(n bigint);
SELECT distx.exec('a', 'UPDATE accounts SET note = $1 WHERE id = $2', 'two phase', '4');
INSERT INTO transfers (amount) VALUES (0);
COMMIT;
SELECT d.participants = ARRAY[s.oid] AS only_a_prepared
FROM distx.decisions d, pg_foreign_server s WHERE s.srvname = 'a';
SELECT forgotten FROM distx.recover();

-- a SELECT that writes (a function with side effects) is detected
\c distx_regress_b
CREATE FUNCTION bump(i int) RETURNS int LANGUAGE sql AS
  'UPDATE accounts SET balance = balance + 1 WHERE id = i RETURNING balance';
\c contrib_regression
\set VERBOSITY terse
BEGIN;
SELECT distx.exec('a', 'UPDATE accounts SET note = $1 WHERE id = $2', 'x', '5');
SELECT * FROM distx.query('b', 'SELECT bump($1)', '5') AS t(b int);
COMMIT;
SELECT cardinality(participants) FROM distx.decisions;
SELECT forgotten FROM distx.recover();

-- parameters: bound, never spliced; NULL is NULL; types inferred remotely
SELECT distx.exec('a', 'UPDATE accounts SET note = $1 WHERE id = $2',
				  $$x'); DROP TABLE accounts; --$$, '2');
SELECT distx.exec('a', 'UPDATE accounts SET note = $1 WHERE id = $2', NULL, '3');
SELECT * FROM distx.query('a', 'SELECT id, note, note IS NULL FROM accounts WHERE id IN ($1, $2) ORDER BY id', '2', '3')
	AS t(id int, note text, is_null bool);
SELECT distx.exec('a', 'SELECT 1');
SELECT distx.exec('a', 'UPDATE accounts SET note = note');

-- query needs a column definition list that matches
SELECT expect_error($$SELECT distx.query('a', 'SELECT 1')$$);
SELECT expect_error($$SELECT * FROM distx.query('a', 'SELECT 1, 2') AS t(x int)$$);
SELECT * FROM distx.query('a', 'SELECT 1 WHERE false') AS t(x int);
SELECT * FROM distx.query('a', 'SELECT $1::numeric * 2, now() IS NOT NULL, ARRAY[1,2]', '1.5')
	AS t(n numeric, b bool, arr int[]);

-- savepoints are mirrored on the nodes
BEGIN;
SELECT distx.exec('a', 'UPDATE accounts SET balance = 1000 WHERE id = 5');
SAVEPOINT s1;
SELECT distx.exec('a', 'UPDATE accounts SET balance = 2000 WHERE id = 5');
SELECT distx.exec('b', 'UPDATE accounts SET balance = 2000 WHERE id = 5');
ROLLBACK TO SAVEPOINT s1;
SELECT * FROM distx.query('a', 'SELECT balance FROM accounts WHERE id = 5') AS t(b int);
SAVEPOINT s2;
SELECT expect_error($$SELECT distx.exec('b', 'SELECT 1/0')$$);
SELECT distx.exec('b', 'UPDATE accounts SET balance = 3000 WHERE id = 5');
RELEASE SAVEPOINT s2;
COMMIT;
SELECT * FROM distx.query('a', 'SELECT balance FROM accounts WHERE id = 5') AS t(b int);
SELECT * FROM distx.query('b', 'SELECT balance FROM accounts WHERE id = 5') AS t(b int);
SELECT forgotten FROM distx.recover();

-- the remote isolation level follows the local one
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM distx.query('a', 'SHOW transaction_isolation') AS t(level text);
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT * FROM distx.query('a', 'SHOW transaction_isolation') AS t(level text);
COMMIT;
SELECT * FROM distx.query('a', 'SHOW transaction_isolation') AS t(level text);

-- a local PREPARE TRANSACTION cannot coordinate distx work
BEGIN;
SELECT distx.exec('a', 'UPDATE accounts SET note = $1 WHERE id = 1', 'prepared');
PREPARE TRANSACTION 'local_gid';
SELECT note FROM distx.query('a', 'SELECT note FROM accounts WHERE id = 1') AS t(note text);

-- a cancel (here statement_timeout) reaches the remote statement
SET statement_timeout = '300ms';
SELECT expect_error($$SELECT distx.exec('a', 'SELECT pg_sleep(30)')$$);
RESET statement_timeout;
SELECT * FROM distx.query('a', $$SELECT count(*) FROM pg_stat_activity
	WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'$$) AS t(n bigint);

-- synchronous_commit = off does not weaken the decision (forced sync commit)
SET synchronous_commit = off;
BEGIN;
SELECT distx.exec('a', 'UPDATE accounts SET balance = balance + 1 WHERE id = 1');
SELECT distx.exec('b', 'UPDATE accounts SET balance = balance - 1 WHERE id = 1');
COMMIT;
RESET synchronous_commit;
SELECT forgotten FROM distx.recover();

-- changing a server drops its cached connection
ALTER SERVER a OPTIONS (ADD application_name 'distx_regress');
SELECT * FROM distx.query('a', 'SHOW application_name') AS t(app text);

-- USAGE on the server decides who may use a node; non-superusers need a password
CREATE ROLE distx_alice;
SET ROLE distx_alice;
SELECT expect_error($$SELECT distx.exec('a', 'SELECT 1')$$);
RESET ROLE;
GRANT USAGE ON FOREIGN SERVER a TO distx_alice;
CREATE USER MAPPING FOR distx_alice SERVER a OPTIONS (user 'distx_alice');
SET ROLE distx_alice;
SELECT expect_error($$SELECT distx.exec('a', 'SELECT 1')$$);
SELECT expect_error($$ALTER USER MAPPING FOR distx_alice SERVER a OPTIONS (ADD password_required 'false')$$);
SELECT expect_error($$SELECT distx.recover()$$);
SELECT node FROM distx.node_health ORDER BY node;
SELECT count(*) FROM distx.decisions;
RESET ROLE;

-- connection refused, then the circuit opens (threshold 3 in test/regress.conf)
CREATE SERVER dead FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '1', dbname 'x', connect_timeout '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER dead;
SELECT left(expect_error($$SELECT distx.exec('dead', 'SELECT 1')$$), 44);
SELECT left(expect_error($$SELECT distx.exec('dead', 'SELECT 1')$$), 44);
SELECT left(expect_error($$SELECT distx.exec('dead', 'SELECT 1')$$), 44);
SELECT expect_error($$SELECT distx.exec('dead', 'SELECT 1')$$);
SELECT node, circuit, consecutive_failures, retry_after > '0' AS must_wait, last_error IS NOT NULL AS has_error
FROM distx.node_health ORDER BY node;
-- after the cool-down one trial goes through (and fails again here)
SELECT pg_sleep(2.1);
SELECT left(expect_error($$SELECT distx.exec('dead', 'SELECT 1')$$), 44);
SELECT node, circuit, consecutive_failures FROM distx.node_health WHERE node = 'dead';
-- recovery reports the unreachable node and goes on
SELECT committed, rolled_back, in_doubt, unreachable FROM distx.recover();

-- nothing of distx is left prepared
SELECT * FROM distx.query('a', $$SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'distx%'$$) AS t(n bigint);
SELECT * FROM distx.query('b', $$SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'distx%'$$) AS t(n bigint);

DROP SERVER dead CASCADE;
DROP SERVER a CASCADE;
DROP SERVER b CASCADE;
DROP ROLE distx_alice;
DROP SERVER not_distx;
DROP FOREIGN DATA WRAPPER dummy_fdw;
\c postgres
DROP DATABASE distx_regress_a;
DROP DATABASE distx_regress_b;
