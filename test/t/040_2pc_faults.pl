
# distx 2PC faults that are not crashes of a whole server: an error or a
# sudden exit of the session at every protocol step, a participant that does
# not answer COMMIT PREPARED, COMMIT without waiting for the second phase,
# read-only participants at the fault points, PREPARE TRANSACTION of a
# transaction that used distx, and the bulkhead.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;

my $coord = new_coordinator('coord');
my $p1 = new_participant('p1');
my $p2 = new_participant('p2');
my $p3 = new_participant('p3');
my %parts = (p1 => $p1, p2 => $p2, p3 => $p3);

foreach my $n (sort keys %parts)
{
	$parts{$n}->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY)');
	add_node($coord, $n, $parts{$n});
}
$coord->safe_psql('postgres', 'CREATE TABLE ledger (id int PRIMARY KEY)');

my @points = qw(before_prepare between_prepares after_prepares
  after_decision between_commit_prepared);
my %commits = (after_decision => 1, between_commit_prepared => 1);

sub outcome
{
	my ($id, @nodes) = @_;
	@nodes = ('p1', 'p2') unless @nodes;
	return join(' ',
		(map { $parts{$_}->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id") } @nodes),
		$coord->safe_psql('postgres', "SELECT count(*) FROM ledger WHERE id = $id"));
}

sub transfer_sql
{
	my ($id, $settings, @nodes) = @_;
	@nodes = ('p1', 'p2') unless @nodes;
	my $sql = "$settings\nBEGIN;\n";
	$sql .= "SELECT distx.exec('$_', 'INSERT INTO t VALUES ($id)');\n" foreach @nodes;
	$sql .= "INSERT INTO ledger VALUES ($id);\nCOMMIT;\n";
	return $sql;
}

my $id = 0;

# ---------------------------------------------------------------------------
# fault action "error": before the commit point everything is rolled back
# (by the session itself, not left to recovery); after it, no error may be
# raised and the transaction commits
# ---------------------------------------------------------------------------
foreach my $point (@points)
{
	$id++;
	my ($ret, $stdout, $stderr) = $coord->psql('postgres',
		transfer_sql($id, "SET distx.fault_point = '$point'; SET distx.fault_action = 'error'; SET distx.fault_sleep = 0;"),
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	if ($commits{$point})
	{
		is($ret, 0, "error at $point: no error after the commit point");
		is(outcome($id), '1 1 1', "error at $point: committed everywhere");
	}
	else
	{
		like($stderr, qr/ERROR:  XX000: distx fault injected at "$point"/,
			"error at $point: COMMIT fails");
		is(outcome($id), '0 0 0', "error at $point: nothing committed");
		# the session rolled back what it prepared (recovery would take
		# at least one pass)
		is(distx_prepared_count($p1) + distx_prepared_count($p2), 0,
			"error at $point: nothing left prepared");
		is($coord->safe_psql('postgres', 'SELECT count(*) FROM distx.decisions'), '0',
			"error at $point: no decision row (it aborted with the transaction)");
	}
}
ok(wait_decisions_empty($coord), 'error: every decision forgotten');

# ---------------------------------------------------------------------------
# fault action "exit": the session dies at once (as in a crash) at every step
# ---------------------------------------------------------------------------
foreach my $point (@points)
{
	$id++;
	my $off = log_size($coord);
	my ($ret, $stdout, $stderr) = $coord->psql('postgres',
		transfer_sql($id, "SET distx.fault_point = '$point'; SET distx.fault_action = 'exit';"));
	like($stderr, qr/server closed the connection unexpectedly|connection to server was lost/,
		"exit at $point: the session is gone");
	wait_crash_restart($coord, $off);
	ok(wait_no_distx_prepared($p1, $p2), "exit at $point: nothing left prepared");
	is(outcome($id), $commits{$point} ? '1 1 1' : '0 0 0',
		"exit at $point: all or nothing as the protocol dictates");
}

# ---------------------------------------------------------------------------
# read-only participants next to the writers: the fault points are still
# reached (whichever node happens to be first), and the reader is never
# prepared
# ---------------------------------------------------------------------------
foreach my $reader (qw(p1 p2 p3))
{
	my @writers = grep { $_ ne $reader } qw(p1 p2 p3);
	foreach my $point (qw(between_prepares between_commit_prepared))
	{
		$id++;
		my $off = log_size($coord);
		my $roff = log_size($parts{$reader});
		my $sql = transfer_sql($id,
			"SET distx.fault_point = '$point'; SET distx.fault_sleep = 0;\n"
			  . "BEGIN; SELECT * FROM distx.query('$reader', 'SELECT count(*) FROM t') AS q(n bigint); COMMIT;",
			@writers);
		# the reader joins the transaction first
		$sql =~ s/BEGIN;\nSELECT distx.exec/BEGIN;\nSELECT * FROM distx.query('$reader', 'SELECT 1') AS r(n int);\nSELECT distx.exec/;
		$coord->safe_psql('postgres', $sql);
		like(slurp_file($coord->logfile, $off), qr/distx fault point "$point" reached/,
			"reader $reader, writers @writers: $point reached");
		is(outcome($id, @writers), '1 1 1', "reader $reader, writers @writers ($point): committed");
		unlike(slurp_file($parts{$reader}->logfile, $roff), qr/PREPARE TRANSACTION/,
			"reader $reader ($point): not prepared");
	}
}

# ---------------------------------------------------------------------------
# PREPARE TRANSACTION of a local transaction that used distx
# ---------------------------------------------------------------------------
$id++;
my $err = psql_error($coord, 'postgres', qq{
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES ($id)');
INSERT INTO ledger VALUES ($id);
PREPARE TRANSACTION 'local_gid';
});
like($err, qr/ERROR:  0A000: cannot PREPARE a transaction that used distx nodes/,
	'PREPARE TRANSACTION after distx: clear error');
is(outcome($id, 'p1'), '0 0', 'PREPARE TRANSACTION after distx: nothing committed');
is($coord->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0',
	'PREPARE TRANSACTION after distx: nothing prepared locally');

# ---------------------------------------------------------------------------
# a participant that does not answer COMMIT PREPARED (its backend is
# stopped): COMMIT returns after distx.cleanup_timeout with a WARNING naming
# the gid, and recovery commits it there meanwhile
# ---------------------------------------------------------------------------
sub stop_session_backend
{
	my ($p) = @_;
	my $pid = $p->safe_psql('postgres', q{
SELECT pid FROM pg_stat_activity
WHERE application_name = 'distx' AND query LIKE 'PREPARE TRANSACTION%'});
	kill('STOP', $pid) if $pid ne '';
	return $pid;
}

{
	$id++;
	my $off = log_size($coord);
	my $h = start_psql($coord, transfer_sql($id,
		"SET distx.fault_point = 'after_prepares'; SET distx.fault_sleep = 1500; SET distx.cleanup_timeout = '3s';")
		  . "\\echo committed\n");
	my $pid = wait_for_fault($coord, 'after_prepares', $off, $h);
	my $stopped = stop_session_backend($p2);
	isnt($stopped, '', 'slow second phase: p2 backend stopped');
	my $t0 = time();
	# a cancel (Ctrl-C) past the commit point must not turn the committed
	# COMMIT into an error
	ok($coord->poll_query_until('postgres',
		"SELECT wait_event = 'Extension' FROM pg_stat_activity WHERE pid = $pid"),
		'slow second phase: the session waits for p2');
	$coord->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	my ($rc, $stdout, $stderr) = finish_psql($h);
	my $elapsed = time() - $t0;
	like($stdout, qr/committed$/, 'slow second phase: COMMIT succeeds');
	unlike($stderr, qr/ERROR/, 'slow second phase: no error although cancelled past the commit point');
	like($stderr, qr/WARNING:  08006: distx transaction "distx_\d+_\d+_\d+_\d+" is committed but not yet on node "p2"/,
		'slow second phase: the WARNING names the gid and the node');
	ok($elapsed >= 1 && $elapsed < 20, 'slow second phase: COMMIT waited for the cleanup timeout');
	is($p1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id"), '1',
		'slow second phase: p1 committed');
	ok(wait_no_distx_prepared($p2), 'slow second phase: recovery commits it on p2');
	is(outcome($id), '1 1 1', 'slow second phase: committed everywhere');
	kill('CONT', $stopped);
}

# ---------------------------------------------------------------------------
# a cancel while PREPARE runs on a node (a deferred trigger there sleeps):
# the cancel reaches the node, everything is rolled back.  (statement_timeout
# does not apply to COMMIT: PostgreSQL disarms it before committing.)
# ---------------------------------------------------------------------------
{
	$p2->safe_psql('postgres', q{
CREATE TABLE slow (x int);
CREATE FUNCTION slow_trigger() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON slow
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_trigger();
});
	$id++;
	my $h = start_psql($coord, qq{
SET application_name = 'cancel_prepare';
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES ($id)');
SELECT distx.exec('p2', 'INSERT INTO t VALUES ($id)');
SELECT distx.exec('p2', 'INSERT INTO slow VALUES (1)');
INSERT INTO ledger VALUES ($id);
COMMIT;
});
	ok($p2->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'PREPARE TRANSACTION%'}),
		'cancel during PREPARE: PREPARE runs on the node');
	my $t0 = time();
	$coord->safe_psql('postgres',
		q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'cancel_prepare'});
	my ($rc, $stdout, $stderr) = finish_psql($h);
	like($stderr, qr/ERROR:  57014: canceling statement due to user request/,
		'cancel during PREPARE: COMMIT fails with 57014');
	ok(time() - $t0 < 20, 'cancel during PREPARE: without waiting for the node');
	is(outcome($id), '0 0 0', 'cancel during PREPARE: nothing committed');
	ok(wait_no_distx_prepared($p1, $p2), 'cancel during PREPARE: nothing left prepared');
	ok($p2->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'PREPARE%'}),
		'cancel during PREPARE: the PREPARE was cancelled on the node');
	is($p2->safe_psql('postgres', 'SELECT count(*) FROM slow'), '0',
		'cancel during PREPARE: the node rolled back');
}

# ---------------------------------------------------------------------------
# distx.second_phase_wait = off: COMMIT returns once COMMIT PREPARED is sent;
# until a node has done it, other sessions see the old data there (the
# visibility gap), the session's own next use of the node sees the new data
# ---------------------------------------------------------------------------
# (the recovery worker is held off meanwhile: it would commit p2 itself)
$coord->safe_psql('postgres', q{ALTER SYSTEM SET distx.recovery_interval = '1h'; SELECT pg_reload_conf();});
usleep(1_500_000);
{
	$id++;
	my $off = log_size($coord);
	my $h = start_psql($coord, transfer_sql($id,
		"SET distx.second_phase_wait = off; SET distx.fault_point = 'after_prepares'; SET distx.fault_sleep = 1500;")
		  . "\\echo committed\n"
		  . "SELECT * FROM distx.query('p2', 'SELECT count(*) FROM t WHERE id = $id') AS q(n bigint);\n");
	wait_for_fault($coord, 'after_prepares', $off, $h);
	my $stopped = stop_session_backend($p2);
	# the session commits at once although p2 does not answer, then waits
	# for p2 when it uses it again
	ok($coord->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
WHERE query LIKE 'SELECT * FROM distx.query(''p2''%' AND wait_event = 'Extension'}),
		'second_phase_wait = off: COMMIT returned without p2');
	is(outcome($id), '1 0 1', 'second_phase_wait = off: p2 not committed yet (visibility gap)');
	is(distx_prepared_count($p2), 1, 'second_phase_wait = off: the gid is still prepared on p2');
	kill('CONT', $stopped);
	my ($rc, $stdout, $stderr) = finish_psql($h);
	like($stdout, qr/committed\n1$/, 'second_phase_wait = off: the session then sees its write on p2');
	is(outcome($id), '1 1 1', 'second_phase_wait = off: committed everywhere');
	ok(wait_no_distx_prepared($p1, $p2), 'second_phase_wait = off: nothing left prepared');
}
$coord->safe_psql('postgres', q{ALTER SYSTEM RESET distx.recovery_interval; SELECT pg_reload_conf();});

# ---------------------------------------------------------------------------
# a frozen node (it accepts connections but never answers, like a paused VM)
# does not hold up the recovery of the others: recovery gives up on it after
# distx.cleanup_timeout and goes on
# ---------------------------------------------------------------------------
{
	my $frozen = $p2->{_pid};
	kill('STOP', $frozen);
	$id++;
	my $off = log_size($coord);
	$coord->psql('postgres', transfer_sql($id,
		"SET distx.fault_point = 'after_prepares'; SET distx.fault_action = 'exit';",
		'p1', 'p3'));
	wait_crash_restart($coord, $off);
	my $t0 = time();
	ok(wait_no_distx_prepared($p1, $p3), 'frozen node: the other nodes are recovered');
	ok(time() - $t0 < 30, 'frozen node: within about distx.cleanup_timeout');
	like(slurp_file($coord->logfile, $off),
		qr/distx recovery could not reach node "p2": no answer within distx.cleanup_timeout/,
		'frozen node: recovery says why it skipped it');
	kill('CONT', $frozen);
	is(outcome($id, 'p1', 'p3'), '0 0 0', 'frozen node: all or nothing');
}

# ---------------------------------------------------------------------------
# the bulkhead: at most distx.max_connections_per_node sessions use a node
# ---------------------------------------------------------------------------
$coord->append_conf('postgresql.conf', qq(
distx.max_connections_per_node = 1
));
$coord->reload;
{
	my $h = start_psql($coord, qq{
BEGIN;
SELECT distx.exec('p3', 'SELECT 1');
SELECT pg_sleep(2);
COMMIT;
});
	ok($coord->poll_query_until('postgres',
		q{SELECT in_use = 1 FROM distx.node_health WHERE node = 'p3'}),
		'bulkhead: node_health shows the slot in use');
	$err = psql_error($coord, 'postgres', q{
SET distx.bulkhead_timeout = '200ms';
SELECT distx.exec('p3', 'SELECT 1');
});
	like($err, qr/ERROR:  53300: all 1 connection slots to node "p3" are in use/,
		'bulkhead: a session finding the slots taken gets a clear error after the timeout');
	is($coord->safe_psql('postgres', q{
SET distx.bulkhead_timeout = '20s';
SELECT distx.exec('p3', 'SELECT 1');
}), '1', 'bulkhead: a session waits for a slot to free up');
	finish_psql($h);
	is($coord->safe_psql('postgres', q{SELECT in_use FROM distx.node_health WHERE node = 'p3'}),
		'0', 'bulkhead: slots are given back');
}

ok(wait_no_distx_prepared($p1, $p2, $p3), 'nothing left prepared at the end');
ok(wait_decisions_empty($coord), 'no decision left at the end');

done_testing();
