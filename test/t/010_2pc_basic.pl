
# distx 2PC, the behaviour a session relies on: atomic commit and rollback
# over several nodes plus a local write, one-phase shortcuts, clear errors,
# cancel forwarding, isolation level, credentials and the circuit breaker.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;

my $coord = new_coordinator('coord', conf => qq(
distx.circuit_failure_threshold = 3
distx.circuit_reset_timeout = '3s'
));
my $p1 = new_participant('p1');
my $p2 = new_participant('p2');
my $p3 = new_participant('p3');
my $p0 = new_participant('p0', max_prepared_transactions => 0);

foreach my $p ($p1, $p2, $p3, $p0)
{
	$p->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY, v text)');
}
add_node($coord, 'p1', $p1);
add_node($coord, 'p2', $p2);
add_node($coord, 'p3', $p3);
add_node($coord, 'p0', $p0);
$coord->safe_psql('postgres', 'CREATE TABLE local_t (id int PRIMARY KEY, v text)');

# where row $id exists: "p1 p2 local" flags, e.g. "1 1 1"
sub where_is
{
	my ($id, @nodes) = @_;
	@nodes = ($p1, $p2, $coord) unless @nodes;
	return join(' ',
		map {
			$_->safe_psql('postgres',
				$_ == $coord
				  ? "SELECT count(*) FROM local_t WHERE id = $id"
				  : "SELECT count(*) FROM t WHERE id = $id")
		} @nodes);
}

sub log_since
{
	my ($node, $offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# ---------------------------------------------------------------------------
# atomic commit on two nodes plus a local write
# ---------------------------------------------------------------------------
my $off1 = log_size($p1);
my $off2 = log_size($p2);
my $out = $coord->safe_psql('postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES ($1, $2)', '1', 'a');
SELECT distx.exec('p2', 'INSERT INTO t VALUES ($1, $2)', '1', 'a');
INSERT INTO local_t VALUES (1, 'a');
COMMIT;
});
is($out, "1\n1", 'distx.exec returns the rows affected');
is(where_is(1), '1 1 1', 'commit: row on both nodes and locally');
like(log_since($p1, $off1), qr/PREPARE TRANSACTION 'distx_\d+_\d+_\d+_\d+'/,
	'commit: p1 was prepared');
like(log_since($p1, $off1), qr/COMMIT PREPARED 'distx_/, 'commit: p1 got COMMIT PREPARED');
like(log_since($p2, $off2), qr/PREPARE TRANSACTION 'distx_/, 'commit: p2 was prepared');
is(distx_prepared_count($p1) + distx_prepared_count($p2), 0,
	'commit: nothing left prepared');
ok(wait_decisions_empty($coord), 'commit: the decision row is forgotten by recovery');

# parameters are bind parameters: an injection attempt is just a value
$coord->safe_psql('postgres', q{
SELECT distx.exec('p1', 'UPDATE t SET v = $1 WHERE id = $2', 'x''); DROP TABLE t; --', '1');
});
is($p1->safe_psql('postgres', 'SELECT v FROM t WHERE id = 1'),
	q{x'); DROP TABLE t; --}, 'parameters travel as values, not SQL');

# ---------------------------------------------------------------------------
# ROLLBACK, and an error on one node, roll back everything
# ---------------------------------------------------------------------------
$coord->safe_psql('postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (2, ''r'')');
SELECT distx.exec('p2', 'INSERT INTO t VALUES (2, ''r'')');
INSERT INTO local_t VALUES (2, 'r');
ROLLBACK;
});
is(where_is(2), '0 0 0', 'rollback: nothing anywhere');

my $err = psql_error($coord, 'postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (3, ''e'')');
INSERT INTO local_t VALUES (3, 'e');
SELECT distx.exec('p2', 'INSERT INTO t VALUES (1, ''dup'')');
COMMIT;
});
like($err, qr/ERROR:  23505: duplicate key value violates unique constraint "t_pkey"/,
	'remote error: remote SQLSTATE and message passed through');
like($err, qr/DETAIL:  Key \(id\)=\(1\) already exists/, 'remote error: remote detail passed through');
like($err, qr/remote SQL command on node "p2": INSERT INTO t VALUES \(1, 'dup'\)/,
	'remote error: remote SQL as context');
is(where_is(3), '0 0 0', 'error on one node: nothing anywhere');

# an error raised by PREPARE itself (deferred constraint) aborts everything
$p2->safe_psql('postgres', q{
CREATE TABLE d (x int UNIQUE DEFERRABLE INITIALLY DEFERRED);
INSERT INTO d VALUES (1);
});
$err = psql_error($coord, 'postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (4, ''p'')');
SELECT distx.exec('p2', 'INSERT INTO t VALUES (4, ''p'')');
SELECT distx.exec('p2', 'INSERT INTO d VALUES (1)');
INSERT INTO local_t VALUES (4, 'p');
COMMIT;
});
like($err, qr/ERROR:  23505: .*"d_x_key"/, 'failed PREPARE: its error is reported');
like($err, qr/PREPARE TRANSACTION 'distx_/, 'failed PREPARE: the command is named');
is(where_is(4), '0 0 0', 'failed PREPARE: nothing anywhere');
ok(wait_no_distx_prepared($p1, $p2), 'failed PREPARE: the other node was rolled back');

# a savepoint rolled back locally is rolled back remotely, also after a
# remote error
$coord->safe_psql('postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (12, ''s'')');
SAVEPOINT a;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (13, ''s'')');
SELECT distx.exec('p2', 'INSERT INTO t VALUES (13, ''s'')');
ROLLBACK TO SAVEPOINT a;
SELECT distx.exec('p2', 'INSERT INTO t VALUES (14, ''s'')');
SAVEPOINT b;
\set ON_ERROR_STOP 0
SELECT distx.exec('p2', 'INSERT INTO t VALUES (1, ''dup'')');
\set ON_ERROR_STOP 1
ROLLBACK TO SAVEPOINT b;
SELECT distx.exec('p2', 'INSERT INTO t VALUES (15, ''s'')');
COMMIT;
});
is(where_is(12, $p1, $p2) . ' ' . where_is(13, $p1, $p2) . ' '
	  . where_is(14, $p1, $p2) . ' ' . where_is(15, $p1, $p2),
	'1 0 0 0 0 1 0 1', 'savepoints: ROLLBACK TO SAVEPOINT is mirrored on the nodes');

# ---------------------------------------------------------------------------
# one-phase shortcuts
# ---------------------------------------------------------------------------

# one remote writer and no local write: no PREPARE at all.  The fault point
# before_prepare raises an error if the protocol ever gets there.
$off1 = log_size($p1);
$coord->safe_psql('postgres', q{
SET distx.fault_point = 'before_prepare';
SET distx.fault_action = 'error';
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (5, ''one'')');
SELECT * FROM distx.query('p2', 'SELECT count(*) FROM t') AS q(n bigint);
COMMIT;
});
is(where_is(5, $p1), '1', 'single remote writer: committed');
my $log = log_since($p1, $off1);
like($log, qr/INSERT INTO t VALUES \(5, 'one'\)/, 'single remote writer: statement seen on p1');
unlike($log, qr/PREPARE TRANSACTION/, 'single remote writer: no PREPARE TRANSACTION on p1');

# ... while two writers, or one writer plus a local write, do reach it
$err = psql_error($coord, 'postgres', q{
SET distx.fault_point = 'before_prepare';
SET distx.fault_action = 'error';
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (16, ''two'')');
INSERT INTO local_t VALUES (16, 'two');
COMMIT;
});
like($err, qr/distx fault injected at "before_prepare"/,
	'one remote writer plus a local write goes through 2PC');
is(where_is(16), '0 0 0', 'error before prepare: nothing anywhere');

# read-only participants commit in one phase; a participant that only ran a
# SELECT of a writing function is detected as a writer
$p3->safe_psql('postgres', q{
CREATE FUNCTION bump(int) RETURNS int LANGUAGE sql
  AS 'INSERT INTO t VALUES ($1, ''f'') RETURNING id';
});
$off1 = log_size($p1);
my $off3 = log_size($p3);
$coord->safe_psql('postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (6, ''ro'')');
SELECT distx.exec('p2', 'INSERT INTO t VALUES (6, ''ro'')');
SELECT * FROM distx.query('p3', 'SELECT count(*) FROM t') AS q(n bigint);
INSERT INTO local_t VALUES (6, 'ro');
COMMIT;
});
is(where_is(6), '1 1 1', 'read-only participant: writers committed');
like(log_since($p1, $off1), qr/PREPARE TRANSACTION/, 'read-only participant: writers prepared');
$log = log_since($p3, $off3);
like($log, qr/statement: COMMIT/, 'read-only participant: committed');
unlike($log, qr/PREPARE TRANSACTION/, 'read-only participant: not prepared');

$off3 = log_size($p3);
$coord->safe_psql('postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (7, ''fn'')');
SELECT * FROM distx.query('p3', 'SELECT bump(7)') AS q(n int);
COMMIT;
});
like(log_since($p3, $off3), qr/PREPARE TRANSACTION 'distx_/,
	'SELECT of a writing function: the node is prepared');
is(where_is(7, $p1, $p3), '1 1', 'SELECT of a writing function: committed on both');
$coord->safe_psql('postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (17, ''fn'')');
SELECT * FROM distx.query('p3', 'SELECT bump(17)') AS q(n int);
ROLLBACK;
});
is(where_is(17, $p1, $p3), '0 0', 'SELECT of a writing function: rolled back on both');

# ---------------------------------------------------------------------------
# a participant with max_prepared_transactions = 0
# ---------------------------------------------------------------------------
$err = psql_error($coord, 'postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (8, ''m'')');
SELECT distx.exec('p0', 'INSERT INTO t VALUES (8, ''m'')');
INSERT INTO local_t VALUES (8, 'm');
COMMIT;
});
like($err, qr/ERROR:  55000: distx node "p0" cannot take part in a distributed transaction/,
	'max_prepared_transactions = 0: clear error with SQLSTATE 55000');
like($err, qr/HINT:  Set max_prepared_transactions to a value greater than zero/,
	'max_prepared_transactions = 0: the hint says how to fix it');
is(where_is(8, $p1, $p0, $coord), '0 0 0', 'max_prepared_transactions = 0: nothing committed anywhere');
is($p0->safe_psql('postgres', 'SHOW max_prepared_transactions'), '0',
	'max_prepared_transactions was not changed behind the user\'s back');
is(distx_prepared_count($p1), 0, 'max_prepared_transactions = 0: nothing left prepared on p1');

# it can still be the single writer of a transaction
$coord->safe_psql('postgres', q{
BEGIN;
SELECT distx.exec('p0', 'INSERT INTO t VALUES (9, ''m'')');
SELECT * FROM distx.query('p1', 'SELECT count(*) FROM t') AS q(n bigint);
COMMIT;
});
is(where_is(9, $p0), '1', 'max_prepared_transactions = 0: single writer works');

# ---------------------------------------------------------------------------
# cancel and statement_timeout reach the remote statement
# ---------------------------------------------------------------------------
sub remote_sleepers
{
	my ($p, $tag) = @_;
	return $p->safe_psql('postgres', qq{
SELECT count(*) FROM pg_stat_activity
WHERE state = 'active' AND query LIKE '%pg_sleep%$tag%' AND pid <> pg_backend_pid()});
}

my $t0 = time();
$err = psql_error($coord, 'postgres', q{
SET statement_timeout = '300ms';
SELECT distx.exec('p1', 'SELECT pg_sleep(30) /* st1 */');
});
like($err, qr/ERROR:  57014: canceling statement due to statement timeout/,
	'statement_timeout: local error 57014');
ok(time() - $t0 < 15, 'statement_timeout: returned without waiting for the remote sleep');
ok($p1->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity
WHERE state = 'active' AND query LIKE '%st1%' AND pid <> pg_backend_pid()}),
	'statement_timeout: no remote query left running');

$err = psql_error($coord, 'postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (10, ''c'')');
SET LOCAL statement_timeout = '300ms';
SELECT distx.exec('p2', 'SELECT pg_sleep(30) /* st2 */');
COMMIT;
});
like($err, qr/ERROR:  57014/, 'statement_timeout in a transaction: 57014');
is(where_is(10, $p1), '0', 'statement_timeout in a transaction: rolled back');
ok($p2->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity
WHERE state = 'active' AND query LIKE '%st2%' AND pid <> pg_backend_pid()}),
	'statement_timeout in a transaction: no remote query left running');

# a cancel from another session (pg_cancel_backend, like Ctrl-C)
my $h = start_psql($coord, q{
SET application_name = 'cancel_me';
SELECT distx.exec('p1', 'SELECT pg_sleep(60) /* st3 */');
});
ok($p1->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%st3%' AND pid <> pg_backend_pid()}),
	'cancel: remote statement is running');
$coord->safe_psql('postgres',
	q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'cancel_me'});
my ($rc, $stdout, $stderr) = finish_psql($h);
like($stderr, qr/ERROR:  57014: canceling statement due to user request/,
	'cancel: local error 57014');
ok($p1->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity
WHERE state = 'active' AND query LIKE '%st3%' AND pid <> pg_backend_pid()}),
	'cancel: no remote query left running');

# the connection is usable after a cancel
is($coord->safe_psql('postgres', q{
SET statement_timeout = '300ms';
DO $$ BEGIN PERFORM distx.exec('p1', 'SELECT pg_sleep(30) /* st5 */');
  EXCEPTION WHEN query_canceled THEN NULL; END $$;
SELECT * FROM distx.query('p1', 'SELECT 42') AS q(n int);
}), '42', 'after a cancelled remote statement the session goes on');

# a statement cancelled while it is the first of a savepoint level (it went
# out in one round trip with its SAVEPOINT): ROLLBACK TO SAVEPOINT undoes it
# on the node, and the transaction goes on and commits
$coord->safe_psql('postgres', q{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (46, ''s'')');
SAVEPOINT c;
SET LOCAL statement_timeout = '300ms';
\set ON_ERROR_STOP 0
SELECT distx.exec('p1', 'INSERT INTO t SELECT 47, ''s'' FROM pg_sleep(30) /* st6 */');
\set ON_ERROR_STOP 1
ROLLBACK TO SAVEPOINT c;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (48, ''s'')');
COMMIT;
});
is(where_is(46, $p1) . ' ' . where_is(47, $p1) . ' ' . where_is(48, $p1), '1 0 1',
	'cancel in a new savepoint level: rolled back to the savepoint, the rest committed');
is(remote_sleepers($p1, 'st6'), '0', 'cancel in a new savepoint level: no remote query left running');

# ---------------------------------------------------------------------------
# the remote isolation level follows the local one
# ---------------------------------------------------------------------------
foreach my $level ('read committed', 'repeatable read', 'serializable')
{
	is($coord->safe_psql('postgres', qq{
BEGIN ISOLATION LEVEL $level;
SELECT * FROM distx.query('p1', 'SHOW transaction_isolation') AS q(x text);
COMMIT;
}), $level, "remote isolation level: $level");
}
is($coord->safe_psql('postgres', q{
SET default_transaction_isolation = 'repeatable read';
SELECT * FROM distx.query('p1', 'SHOW transaction_isolation') AS q(x text);
}), 'repeatable read', 'remote isolation level: default_transaction_isolation');
is($coord->safe_psql('postgres', q{
BEGIN READ ONLY;
SELECT * FROM distx.query('p1', 'SHOW transaction_read_only') AS q(x text);
COMMIT;
}), 'on', 'remote transaction is read only when the local one is');

# ---------------------------------------------------------------------------
# synchronous_commit = off
# ---------------------------------------------------------------------------
$coord->safe_psql('postgres', q{
SET synchronous_commit = off;
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (11, ''async'')');
SELECT distx.exec('p2', 'INSERT INTO t VALUES (11, ''async'')');
INSERT INTO local_t VALUES (11, 'async');
COMMIT;
});
is(where_is(11), '1 1 1', 'synchronous_commit = off: committed everywhere');

# ---------------------------------------------------------------------------
# a cached connection that broke while idle (the node restarted) is replaced
# at the next use, as postgres_fdw does, instead of failing the transaction
# ---------------------------------------------------------------------------
{
	my $s = $coord->background_psql('postgres', on_error_stop => 0);
	my $tx = q{BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES ($1)', '%d');
SELECT distx.exec('p2', 'INSERT INTO t VALUES ($1)', '%d');
COMMIT;};
	my ($o, $e) = $s->query(sprintf($tx, 30, 30));
	is($e, 0, 'cached connection: first transaction');
	$p1->restart;
	ok($coord->poll_query_until('postgres',
		q{SELECT bool_and(circuit = 'closed') FROM distx.node_health}),
		'cached connection: the node is back');
	($o, $e) = $s->query(sprintf($tx, 31, 31));
	is($e, 0, 'cached connection: the transaction after the node restarted succeeds')
	  or diag $s->{stderr};
	is(where_is(31, $p1, $p2), '1 1', 'cached connection: committed on both nodes');

	# the same, but the break is noticed only when the first statement's
	# pipeline fails (the liveness check is skipped): nothing ran there, so
	# it is sent again once on a new connection
	$p1->restart;
	ok($coord->poll_query_until('postgres',
		q{SELECT bool_and(circuit = 'closed') FROM distx.node_health}),
		'silently broken connection: the node is back');
	($o, $e) = $s->query("SET distx.fault_point = 'stale_connection'");
	($o, $e) = $s->query(sprintf($tx, 32, 32));
	is($e, 0, 'silently broken connection: the first statement is retried on a new connection')
	  or diag $s->{stderr};
	is(where_is(32, $p1, $p2), '1 1', 'silently broken connection: committed on both nodes');
	# inside a transaction nothing is retried: the break is an error there
	($o, $e) = $s->query(q{BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (33)');
SELECT distx.exec('p2', 'INSERT INTO t VALUES (33)');});
	is($e, 0, 'silently broken connection: a transaction runs on both nodes');
	$p2->restart;
	($o, $e) = $s->query(q{SELECT distx.exec('p2', 'INSERT INTO t VALUES (34)')});
	isnt($e, 0, 'silently broken connection: a break inside a transaction is an error');
	like($s->{stderr}, qr/node "p2"/, 'silently broken connection: the error names the node');
	$s->{stderr} = '';
	($o, $e) = $s->query(q{ROLLBACK; RESET distx.fault_point;});
	is($e, 0, 'silently broken connection: ROLLBACK');
	is(where_is(33, $p1, $p2), '0 0', 'silently broken connection: the transaction left nothing');

	# a changed server drops the cached connection: the next use goes to
	# the new address
	my $q = q{SELECT * FROM distx.query('p3', 'SELECT current_setting(''port'')') AS q(port int);};
	($o, $e) = $s->query($q);
	is($o, $p3->port, 'cached connection: p3 answers');
	$coord->safe_psql('postgres',
		"ALTER SERVER p3 OPTIONS (SET port '" . $p2->port . "')");
	($o, $e) = $s->query($q);
	is($o, $p2->port, 'ALTER SERVER: the cached connection is replaced');
	$coord->safe_psql('postgres',
		"ALTER SERVER p3 OPTIONS (SET port '" . $p3->port . "')");
	($o, $e) = $s->query($q);
	is($o, $p3->port, 'ALTER SERVER back: the cached connection is replaced again');
	$s->quit;
}


# ---------------------------------------------------------------------------
# non-superusers: USAGE on the server and a password in the user mapping
# ---------------------------------------------------------------------------
foreach my $p ($p2, $p3)
{
	$p->safe_psql('postgres', q{
SET password_encryption = 'scram-sha-256';
CREATE ROLE app LOGIN PASSWORD 'secret';
GRANT ALL ON t TO app;
});
	# password authentication for app, first match wins
	my $hba = slurp_file($p->data_dir . '/pg_hba.conf');
	open(my $fh, '>', $p->data_dir . '/pg_hba.conf') or die;
	print $fh "host all app 127.0.0.1/32 scram-sha-256\n" . $hba;
	close $fh;
	$p->reload;
}
$p1->safe_psql('postgres', q{
CREATE ROLE app LOGIN PASSWORD 'secret';
GRANT ALL ON t TO app;
});
my ($port1, $port2, $port3) = ($p1->port, $p2->port, $p3->port);
$coord->safe_psql('postgres', qq{
CREATE ROLE app LOGIN;
CREATE ROLE app2 LOGIN;
GRANT USAGE ON SCHEMA distx TO app, app2;
GRANT ALL ON local_t TO app;
CREATE SERVER p2pw FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '$port2', dbname 'postgres');
CREATE SERVER p3pw FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '$port3', dbname 'postgres');
CREATE SERVER p1trust FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '$port1', dbname 'postgres');
CREATE USER MAPPING FOR app SERVER p2pw OPTIONS (user 'app', password 'secret');
CREATE USER MAPPING FOR app SERVER p3pw OPTIONS (user 'app', password 'secret');
CREATE USER MAPPING FOR app SERVER p1trust OPTIONS (user 'app', password 'secret');
CREATE USER MAPPING FOR app2 SERVER p2pw OPTIONS (user 'app');
CREATE USER MAPPING FOR postgres SERVER p2pw OPTIONS (user 'postgres');
CREATE USER MAPPING FOR postgres SERVER p3pw OPTIONS (user 'postgres');
GRANT USAGE ON FOREIGN SERVER p2pw TO app, app2;
GRANT USAGE ON FOREIGN SERVER p3pw TO app;
GRANT USAGE ON FOREIGN SERVER p1trust TO app;
});

$coord->safe_psql('postgres', q{
SET ROLE app;
BEGIN;
SELECT distx.exec('p2pw', 'INSERT INTO t VALUES (20, current_user)');
SELECT distx.exec('p3pw', 'INSERT INTO t VALUES (20, current_user)');
INSERT INTO local_t VALUES (20, current_user);
COMMIT;
});
is(where_is(20, $p2, $p3, $coord), '1 1 1', 'non-superuser with a password: 2PC commits');
is($p2->safe_psql('postgres', 'SELECT v FROM t WHERE id = 20'), 'app',
	'non-superuser: the remote work ran as the mapped role');

$err = psql_error($coord, 'postgres', q{
SET ROLE app2;
SELECT distx.exec('p2pw', 'SELECT 1');
});
like($err, qr/ERROR:  2F003: password is required/,
	'non-superuser without a password in the mapping: error');

$err = psql_error($coord, 'postgres', q{
SET ROLE app;
SELECT distx.exec('p1trust', 'SELECT 1');
});
like($err, qr/ERROR:  2F003: password is required.*\n.*does not request a password/,
	'non-superuser against a server that does not ask for the password: error');

$err = psql_error($coord, 'postgres', q{
SET ROLE app;
SELECT distx.exec('p1', 'SELECT 1');
});
like($err, qr/ERROR:  42501: permission denied for foreign server p1/,
	'non-superuser without USAGE: permission denied');

$err = psql_error($coord, 'postgres', q{
SET ROLE app;
SELECT distx.exec('p2pw', 'SELECT 1');
SET distx.fault_point = 'after_prepares';
});
like($err, qr/42501: permission denied to set parameter "distx.fault_point"/,
	'fault injection is superuser-only');
$err = psql_error($coord, 'postgres', q{
SET ROLE app;
SELECT * FROM distx.recover();
});
like($err, qr/42501: permission denied for function recover/,
	'distx.recover() is not for everybody');

# ---------------------------------------------------------------------------
# connection refused and the circuit breaker
# ---------------------------------------------------------------------------
# In a database of its own, so that the recovery worker (which runs in
# "postgres") does not touch the node's circuit.
my $pdead = new_participant('pdead');
$pdead->stop;
$coord->safe_psql('postgres', 'CREATE DATABASE circ');
$coord->safe_psql('circ', 'CREATE EXTENSION distx');
add_node($coord, 'dead', $pdead, coord_db => 'circ');

for my $i (1 .. 3)
{
	$err = psql_error($coord, 'circ', q{SELECT distx.exec('dead', 'SELECT 1')});
	like($err, qr/ERROR:  08001: could not connect to distx node "dead"/,
		"connection refused: 08001 (attempt $i)");
}
is($coord->safe_psql('circ', q{
SELECT circuit, consecutive_failures, retry_after > interval '0' AND retry_after <= interval '3s',
       last_error LIKE '%refused%' OR last_error LIKE '%connect%'
FROM distx.node_health WHERE node = 'dead'}),
	'open|3|t|t', 'circuit opens after the threshold, with a retry_after');
$t0 = time();
$err = psql_error($coord, 'circ', q{SELECT distx.exec('dead', 'SELECT 1')});
like($err, qr/ERROR:  08001: circuit breaker for node "dead" is open/,
	'open circuit: fails fast with a clear error');
like($err, qr/HINT:  Retry after \d+ ms/, 'open circuit: says when to retry');

# the node comes back but hangs (SIGSTOP): after the cool-down one trial goes
# through (half-open) while others still fail fast; its success closes the
# circuit
$pdead->start;
kill('STOP', $pdead->{_pid});
ok($coord->poll_query_until('circ',
	q{SELECT retry_after = interval '0' FROM distx.node_health WHERE node = 'dead'}),
	'cool-down passes');
$h = start_psql($coord, q{SELECT * FROM distx.query('dead', 'SELECT 7') AS q(n int);},
	dbname => 'circ');
ok($coord->poll_query_until('circ',
	q{SELECT circuit FROM distx.node_health WHERE node = 'dead'}, 'half_open'),
	'after the cool-down the circuit is half-open during the trial');
$err = psql_error($coord, 'circ', q{SELECT distx.exec('dead', 'SELECT 1')});
like($err, qr/circuit breaker for node "dead" is open/,
	'half-open: other sessions still fail fast');
kill('CONT', $pdead->{_pid});
($rc, $stdout, $stderr) = finish_psql($h);
is($stdout, '7', 'half-open: the trial succeeds');
is($coord->safe_psql('circ', q{
SELECT circuit, consecutive_failures, retry_after IS NULL FROM distx.node_health WHERE node = 'dead'}),
	'closed|0|t', 'a successful trial closes the circuit');
is($coord->safe_psql('circ', q{SELECT distx.exec('dead', 'SELECT 1')}), '1',
	'closed circuit: work goes through');

# ---------------------------------------------------------------------------
# the end: nothing left prepared, no decision left
# ---------------------------------------------------------------------------
ok(wait_no_distx_prepared($p1, $p2, $p3), 'nothing left prepared on any node');
ok(wait_decisions_empty($coord), 'no decision left');

done_testing();
