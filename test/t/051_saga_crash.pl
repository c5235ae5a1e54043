
# distx sagas survive kill -9 of the coordinator postmaster at every point
# of a step: while a remote forward step runs, after its PREPARE and before
# its record, after its record and before COMMIT PREPARED, while a local
# step runs, and the same during compensations.  After the restart every run
# ends as it should, and no step effect is applied twice (or undone twice):
# each effect writes a row to a log on its node, and the logs are checked.

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
add_node($coord, 'p1', $p1);
add_node($coord, 'p2', $p2);

# on every database: a counter per run and a log of every effect
my $schema = q{
CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO counters (id) SELECT generate_series(1, 20);
CREATE TABLE effects (id int, what text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION bump(i int, secs float8) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int;
BEGIN
	UPDATE counters SET n = n + 1 WHERE id = i RETURNING n INTO r;
	INSERT INTO effects (id, what) VALUES (i, 'bump');
	PERFORM pg_sleep(secs);
	RETURN r;
END $$;
CREATE FUNCTION unbump(i int, secs float8) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int;
BEGIN
	UPDATE counters SET n = n - 1 WHERE id = i RETURNING n INTO r;
	INSERT INTO effects (id, what) VALUES (i, 'unbump');
	PERFORM pg_sleep(secs);
	RETURN r;
END $$;
CREATE FUNCTION bump_or_fail(i int, fail bool) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	IF fail THEN
		RAISE EXCEPTION 'step 3 fails for run %', i USING ERRCODE = 'P0001';
	END IF;
	RETURN bump(i, 0);
END $$;
};
$_->safe_psql('postgres', $schema) foreach ($coord, $p1, $p2);

$coord->safe_psql('postgres', q{
SELECT distx.saga_define('crashy',
	distx.saga_step('one', NULL, 'SELECT bump($1, $2) AS n', 'SELECT unbump($1, 0)',
		params => '{$input.id,$input.lsleep}'),
	distx.saga_step('two', 'p1', 'SELECT bump($1, $2) AS n', 'SELECT unbump($1, $2)',
		params => '{$input.id,$input.sleep}', compensate_params => '{$input.id,$input.csleep}',
		base_delay => '20ms', max_attempts => 2),
	distx.saga_step('three', 'p2', 'SELECT bump_or_fail($1, $2) AS n', 'SELECT unbump($1, 0)',
		params => '{$input.id,$input.fail}', max_attempts => 1));
});

sub q1
{
	my ($node, $sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

sub start_run
{
	my ($id, %o) = @_;
	my $input = sprintf('{"id": %d, "lsleep": %s, "sleep": %s, "csleep": %s, "fail": %s}',
		$id, $o{lsleep} // 0, $o{sleep} // 0, $o{csleep} // 0, $o{fail} ? 'true' : 'false');
	return q1($coord, "SELECT distx.saga_start('crashy', '$input')");
}

# "bump" / "bump unbump": the effects of run $id on a node, in order
sub effects
{
	my ($node, $id) = @_;
	return q1($node, "SELECT coalesce(string_agg(what, ' ' ORDER BY at), '') FROM effects WHERE id = $id");
}

sub counter
{
	my ($node, $id) = @_;
	return q1($node, "SELECT n FROM counters WHERE id = $id");
}

sub set_fault
{
	my ($point) = @_;
	$coord->append_conf('postgresql.conf', qq(
distx.fault_point = '$point'
distx.fault_action = 'sleep'
distx.fault_sleep = '120s'
));
	$coord->reload;
	# the worker reads the new settings at its next loop
	usleep(300_000);
	return;
}

# kill -9 of the postmaster; clear any fault point; start again
sub crash_and_restart
{
	kill9_postmaster_and_restart($coord, no_restart => 1);
	$coord->append_conf('postgresql.conf', "distx.fault_point = ''\n");
	$coord->start;
	return;
}

sub wait_run
{
	my ($run) = @_;
	return q1($coord, "SELECT distx.saga_wait($run, '90s')");
}

sub attempts
{
	my ($run, $step, $phase) = @_;
	return q1($coord,
		"SELECT string_agg(state, ',' ORDER BY attempt_no) FROM distx.saga_attempts WHERE run_id = $run AND step_no = $step AND phase = '$phase'");
}

sub no_saga_prepared
{
	return distx_prepared_count($p1) + distx_prepared_count($p2) == 0;
}

# ---------------------------------------------------------------------------
# 1. kill -9 while a remote forward step runs
# ---------------------------------------------------------------------------
my $run = start_run(1, sleep => 3);
ok($p1->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name LIKE 'distx\\_saga\\_%' AND query LIKE '%bump%'"),
	'1: the remote step is running');
crash_and_restart();
is(wait_run($run), 'completed', '1: the run completes after the restart');
is(effects($p1, 1), 'bump', '1: the remote step took effect once');
is(counter($p1, 1), '1', '1: p1 counter is 1');
is(effects($coord, 1) . ' / ' . effects($p2, 1), 'bump / bump', '1: the other steps once each');
like(attempts($run, 2, 'forward'), qr/^aborted,succeeded$/, '1: the interrupted attempt was reconciled, then retried');
ok(no_saga_prepared(), '1: nothing left prepared');

# ---------------------------------------------------------------------------
# 2. kill -9 after the remote PREPARE, before the record of the step
# ---------------------------------------------------------------------------
set_fault('saga_forward_prepared');
my $off = log_size($coord);
$run = start_run(2);
$coord->wait_for_log(qr/distx fault point "saga_forward_prepared" reached/, $off);
is(distx_prepared_count($p1), '1', '2: the step is prepared on p1');
crash_and_restart();
is(wait_run($run), 'completed', '2: the run completes after the restart');
is(effects($p1, 2), 'bump', '2: the prepared attempt was rolled back, the retry took effect: once');
is(counter($p1, 2), '1', '2: p1 counter is 1');
is(effects($coord, 2) . ' / ' . effects($p2, 2), 'bump / bump', '2: the other steps once each');
is(attempts($run, 2, 'forward'), 'aborted,succeeded', '2: attempts: aborted, succeeded');
ok(no_saga_prepared(), '2: nothing left prepared');

# ---------------------------------------------------------------------------
# 3. kill -9 after the record of the step, before COMMIT PREPARED
# ---------------------------------------------------------------------------
set_fault('saga_forward_recorded');
$off = log_size($coord);
$run = start_run(3);
$coord->wait_for_log(qr/distx fault point "saga_forward_recorded" reached/, $off);
is(q1($coord, "SELECT state || ' ' || commit_pending FROM distx.saga_attempts WHERE run_id = $run AND step_no = 2"),
	'succeeded true', '3: the step is recorded as done, its commit pending');
crash_and_restart();
is(wait_run($run), 'completed', '3: the run completes after the restart');
is(effects($p1, 3), 'bump', '3: the prepared step was committed, not run again');
is(attempts($run, 2, 'forward'), 'succeeded', '3: a single attempt');
is(effects($coord, 3) . ' / ' . effects($p2, 3), 'bump / bump', '3: the other steps once each');
ok(no_saga_prepared(), '3: nothing left prepared');

# ---------------------------------------------------------------------------
# 4. kill -9 while a local step runs
# ---------------------------------------------------------------------------
$run = start_run(4, lsleep => 3);
ok($coord->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM distx.saga_attempts WHERE run_id = $run AND step_no = 1 AND state = 'running'"),
	'4: the local step is running');
usleep(500_000);
crash_and_restart();
is(wait_run($run), 'completed', '4: the run completes after the restart');
is(effects($coord, 4), 'bump', '4: the local step took effect once');
is(counter($coord, 4), '1', '4: local counter is 1');
is(attempts($run, 1, 'forward'), 'aborted,succeeded', '4: attempts: aborted, succeeded');

# ---------------------------------------------------------------------------
# 5. kill -9 while a remote compensation runs
# ---------------------------------------------------------------------------
$run = start_run(5, fail => 1, csleep => 3);
ok($p1->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name LIKE 'distx\\_saga\\_%' AND query LIKE '%unbump%'"),
	'5: the compensation is running');
crash_and_restart();
is(wait_run($run), 'compensated', '5: the run is compensated after the restart');
is(effects($p1, 5), 'bump unbump', '5: step 2 done once, undone once');
is(counter($p1, 5), '0', '5: p1 counter is back to 0');
is(effects($coord, 5), 'bump unbump', '5: step 1 done once, undone once');
is(effects($p2, 5), '', '5: step 3 never took effect');
is(attempts($run, 2, 'compensate'), 'aborted,succeeded', '5: the compensation was reconciled, then retried');
ok(no_saga_prepared(), '5: nothing left prepared');

# ---------------------------------------------------------------------------
# 6. kill -9 after a compensation's PREPARE, before its record
# ---------------------------------------------------------------------------
set_fault('saga_compensate_prepared');
$off = log_size($coord);
$run = start_run(6, fail => 1);
$coord->wait_for_log(qr/distx fault point "saga_compensate_prepared" reached/, $off);
crash_and_restart();
is(wait_run($run), 'compensated', '6: the run is compensated after the restart');
is(effects($p1, 6), 'bump unbump', '6: step 2 done once, undone once');
is(counter($p1, 6), '0', '6: p1 counter is back to 0');
is(effects($coord, 6), 'bump unbump', '6: step 1 done once, undone once');
ok(no_saga_prepared(), '6: nothing left prepared');

# ---------------------------------------------------------------------------
# 7. kill -9 after a compensation's record, before its COMMIT PREPARED
# ---------------------------------------------------------------------------
set_fault('saga_compensate_recorded');
$off = log_size($coord);
$run = start_run(7, fail => 1);
$coord->wait_for_log(qr/distx fault point "saga_compensate_recorded" reached/, $off);
is(q1($coord, "SELECT state || ' ' || commit_pending FROM distx.saga_attempts WHERE run_id = $run AND step_no = 2 AND phase = 'compensate'"),
	'succeeded true', '7: the compensation is recorded as done, its commit pending');
crash_and_restart();
is(wait_run($run), 'compensated', '7: the run is compensated after the restart');
is(effects($p1, 7), 'bump unbump', '7: step 2 done once, undone once');
is(effects($coord, 7), 'bump unbump', '7: step 1 done once, undone once');
is(counter($p1, 7) . counter($coord, 7) . counter($p2, 7), '000', '7: every counter back to 0');
ok(no_saga_prepared(), '7: nothing left prepared');

# every run of this test ended, and the worker is still there
is(q1($coord, "SELECT count(*) FROM distx.saga_runs WHERE state NOT IN ('completed', 'compensated')"),
	'0', 'every run ended');
is(q1($coord, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'distx coordinator'"),
	'1', 'the worker runs');

done_testing();
