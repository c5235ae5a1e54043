
# Sagas in a distx Raft cluster: three distx nodes, two participant
# databases.  Saga state (definitions, runs, steps, attempts) is a Raft
# entry applied on every node: a saga defined and started on a follower
# completes and is the same on all three nodes; a failing saga compensates;
# a run whose step is slow finishes exactly once across kill -9 of the
# leader's postmaster (checked on the participants' data), and its attempts
# carry the term of the leader that ran them; the old leader catches up;
# a node catches up with the saga tables through a snapshot.  Steps on the
# local database are refused in a cluster, and a server with saga state of
# its own cannot found one.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;
use DistxCluster;

my $conf = q{
distx.raft_snapshot_threshold = 40
};
my $nodes = new_cluster_nodes([qw(n1 n2 n3)], conf => $conf);
my %n = %$nodes;
my $p1 = new_participant('p1');
my $p2 = new_participant('p2');
foreach my $name (qw(n1 n2 n3))
{
	add_node($n{$name}, 'p1', $p1);
	add_node($n{$name}, 'p2', $p2);
}

# on the participants: a counter per run and a log of every effect
my $schema = q{
CREATE TABLE counters (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO counters (id) SELECT generate_series(1, 100);
CREATE TABLE effects (id int, what text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION bump(i int, secs float8) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int;
BEGIN
	UPDATE counters SET n = n + 1 WHERE id = i RETURNING n INTO r;
	INSERT INTO effects (id, what) VALUES (i, 'bump');
	PERFORM pg_sleep(secs);
	RETURN r;
END $$;
CREATE FUNCTION unbump(i int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r int;
BEGIN
	UPDATE counters SET n = n - 1 WHERE id = i RETURNING n INTO r;
	INSERT INTO effects (id, what) VALUES (i, 'unbump');
	RETURN r;
END $$;
CREATE TABLE switch (broken bool NOT NULL);
INSERT INTO switch VALUES (true);
CREATE FUNCTION unbump_or_fail(i int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT broken FROM switch) THEN
		RAISE EXCEPTION 'the compensation of run % is broken', i USING ERRCODE = 'P0001';
	END IF;
	RETURN unbump(i);
END $$;
CREATE FUNCTION bump_or_fail(i int, fail bool) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
	IF fail THEN
		RAISE EXCEPTION 'step two fails for run %', i USING ERRCODE = 'P0001';
	END IF;
	RETURN bump(i, 0);
END $$;
};
$_->safe_psql('postgres', $schema) foreach ($p1, $p2);

my $define = q{SELECT distx.saga_define('flow',
	distx.saga_step('one', 'p1', 'SELECT bump($1, $2) AS n', 'SELECT unbump($1)',
		params => '{$input.id,$input.sleep}', base_delay => '20ms'),
	distx.saga_step('two', 'p2', 'SELECT bump_or_fail($1, $2) AS n', 'SELECT unbump($1)',
		params => '{$input.id,$input.fail}', max_attempts => 1))};

# --- a server with saga state of its own cannot found a cluster -----------

q1($n{n1}, $define);
like(psql_error($n{n1}, 'postgres', q{SELECT distx.cluster_init()}),
	qr/55000: this server has saga definitions or runs of its own/,
	'cluster_init is refused on a server with saga state of its own');
q1($n{n1}, q{DELETE FROM distx.saga_def_step; DELETE FROM distx.saga_def});

q1($n{n1}, q{SELECT distx.cluster_init()});
q1($n{n1}, q{SELECT distx.cluster_add_node('n2')});
q1($n{n1}, q{SELECT distx.cluster_add_node('n3')});
ok(defined converged($nodes, qw(n1 n2 n3)), 'three nodes agree');

sub start_run
{
	my ($on, $id, %o) = @_;
	my $input = sprintf('{"id": %d, "sleep": %s, "fail": %s}',
		$id, $o{sleep} // 0, $o{fail} ? 'true' : 'false');
	my $key = defined $o{key} ? "'$o{key}'" : 'NULL';
	return q1($on, "SELECT distx.saga_start('flow', '$input', $key)");
}

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

# every saga table of a node, as one digest
my $digest = q{SELECT md5(
	(SELECT coalesce(string_agg(d::text, ',' ORDER BY saga, version), '') FROM distx.saga_def d) ||
	(SELECT coalesce(string_agg(s::text, ',' ORDER BY saga, version, step_no), '') FROM distx.saga_def_step s) ||
	(SELECT coalesce(string_agg(r::text, ',' ORDER BY run_id), '') FROM distx.saga_run r) ||
	(SELECT coalesce(string_agg(s::text, ',' ORDER BY run_id, step_no), '') FROM distx.saga_run_step s) ||
	(SELECT coalesce(string_agg(a::text, ',' ORDER BY run_id, step_no, attempt_no), '') FROM distx.saga_attempt a))};

sub same_everywhere
{
	my ($what, @names) = @_;
	ok(defined converged($nodes, @names), "$what: the nodes converge");
	my %seen;
	$seen{ q1($n{$_}, $digest) } = 1 foreach @names;
	is(scalar(keys %seen), 1, "$what: the saga tables are the same on " . join(', ', @names));
	return;
}

# --- local steps are refused in a cluster ---------------------------------

like(psql_error($n{n2}, 'postgres',
	q{SELECT distx.saga_define('loc', distx.saga_step('a', 'local', 'SELECT 1'))}),
	qr/0A000: step "a" of saga "loc" runs on the local database/,
	'a step on the local database is refused in a cluster');

# --- defined and started on a follower -------------------------------------

my $leader = wait_leader($nodes, undef, qw(n1 n2 n3));
my ($f1, $f2) = grep { $_ ne $leader } qw(n1 n2 n3);
is(q1($n{$f1}, $define), '1', "defined on follower $f1: version 1");
is(q1($n{$f2}, $define), '1', 'the same definition again elsewhere: still version 1');
is(q1($n{$leader}, q{SELECT count(*) FROM distx.sagas WHERE saga = 'flow'}), '1',
	'the leader has the definition');

my $run1 = start_run($n{$f1}, 1);
is(q1($n{$f1}, "SELECT count(*) FROM distx.saga_runs WHERE run_id = $run1"), '1',
	'the run is visible on the follower when saga_start returns');
is(q1($n{$f1}, "SELECT distx.saga_wait($run1, '60s')"), 'completed',
	'a run started on a follower completes');
is(effects($p1, 1) . ' / ' . effects($p2, 1), 'bump / bump', 'each step took effect once');
same_everywhere('after one run', qw(n1 n2 n3));
is(q1($n{$f2}, "SELECT state || ' ' || steps_completed FROM distx.saga_runs WHERE run_id = $run1"),
	'completed 2', 'the other follower shows the run completed');
is(q1($n{$f2}, "SELECT count(*) FROM distx.saga_attempt WHERE run_id = $run1 AND term > 0"),
	'2', 'its attempts carry a term');

my $k1 = start_run($n{$f2}, 10, key => 'k1');
is(start_run($n{$leader}, 10, key => 'k1'), $k1, 'a run key started again on another node gives the same run');
is(q1($n{$f2}, "SELECT distx.saga_wait($k1, '60s')"), 'completed', 'that run completes');
is(counter($p1, 10), '1', 'once');

# --- a failing saga compensates --------------------------------------------

my $run2 = start_run($n{$f2}, 2, fail => 1);
is(q1($n{$f2}, "SELECT distx.saga_wait($run2, '60s')"), 'compensated',
	'a failing run is compensated');
is(effects($p1, 2), 'bump unbump', 'step one done once and undone once');
is(effects($p2, 2), '', 'step two never took effect');
is(counter($p1, 2) . counter($p2, 2), '00', 'the counters are back to 0');
like(q1($n{$leader}, "SELECT last_error FROM distx.saga_runs WHERE run_id = $run2"),
	qr/step two fails for run 2/, 'the leader shows why');

# --- cancelled from a follower while its first step runs ---------------------

my $run5 = start_run($n{$f1}, 5, sleep => 2);
ok($p1->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name LIKE 'distx\\_saga\\_${run5}\\_%'"),
	'the run to cancel is in its first step');
is(q1($n{$f2}, "SELECT distx.saga_cancel($run5)"), 'compensating', 'cancelled on the other follower');
is(q1($n{$f1}, "SELECT distx.saga_wait($run5, '60s')"), 'cancelled', 'the run ends cancelled');
is(effects($p1, 5) . ' / ' . effects($p2, 5), 'bump unbump / ', 'its first step was undone, the second never ran');

# --- a compensation that fails for good, retried from a follower ------------

q1($n{$f2}, q{SELECT distx.saga_define('fragile',
	distx.saga_step('one', 'p1', 'SELECT bump($1, 0) AS n', 'SELECT unbump_or_fail($1)',
		params => '{$input.id}', max_attempts => 1),
	distx.saga_step('two', 'p2', 'SELECT bump_or_fail($1, true) AS n', NULL,
		params => '{$input.id}', max_attempts => 1))});
my $run9 = q1($n{$f1}, q{SELECT distx.saga_start('fragile', '{"id": 9}')});
is(q1($n{$f1}, "SELECT distx.saga_wait($run9, '60s')"), 'compensation_failed',
	'a run whose compensation keeps failing stops in compensation_failed');
is(effects($p1, 9), 'bump', 'its first step is not undone yet');
$p1->safe_psql('postgres', 'UPDATE switch SET broken = false');
is(q1($n{$f2}, "SELECT distx.saga_retry($run9)"), 'compensating', 'saga_retry on the other follower');
is(q1($n{$f1}, "SELECT distx.saga_wait($run9, '60s')"), 'compensated', 'the run is compensated');
is(effects($p1, 9), 'bump unbump', 'its first step was undone once');

# --- kill -9 of the leader while a step runs --------------------------------

my $old_term = q1($n{$leader}, q{SELECT term FROM distx.raft_status WHERE is_self});
my $run3 = start_run($n{$f1}, 3, sleep => 4);
ok($p1->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name LIKE 'distx\\_saga\\_${run3}\\_%' AND query LIKE '%bump%'"),
	'the slow step runs on p1');
ok($n{$f1}->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM distx.saga_attempt WHERE run_id = $run3 AND state = 'running' AND term = $old_term"),
	'its attempt, claimed in the leader\'s term, is replicated');
kill9_postmaster_and_restart($n{$leader}, no_restart => 1);
my $new_leader = wait_leader($nodes, $leader, $f1, $f2);
ok(defined $new_leader, "a new leader after kill -9 of $leader");
is(q1($n{$f1}, "SELECT distx.saga_wait($run3, '90s')"), 'completed',
	'the run finishes under the new leader');
is(effects($p1, 3), 'bump', 'the slow step took effect exactly once');
is(counter($p1, 3), '1', 'p1 counter is 1');
is(effects($p2, 3), 'bump', 'the next step exactly once');
is(distx_prepared_count($p1) + distx_prepared_count($p2), 0, 'nothing is left prepared');
my $new_term = q1($n{$new_leader}, q{SELECT term FROM distx.raft_status WHERE is_self});
ok($new_term > $old_term, 'the new leader has a newer term');
is(q1($n{$f1}, "SELECT string_agg(state || ':' || CASE WHEN term = $old_term THEN 'old' WHEN term > $old_term THEN 'new' ELSE term::text END, ',' ORDER BY attempt_no)
	FROM distx.saga_attempt WHERE run_id = $run3 AND step_no = 1"),
	'aborted:old,succeeded:new',
	'the old leader\'s attempt was reconciled, the new leader ran the step again');
is(q1($n{$f1}, "SELECT term FROM distx.saga_attempt WHERE run_id = $run3 AND step_no = 2"),
	$new_term, 'the next step carries the new term');
is(q1($n{$f1}, "SELECT count(*) FROM distx.saga_attempt WHERE term <= $old_term
	AND started_at > (SELECT min(started_at) FROM distx.saga_attempt WHERE term > $old_term)"),
	'0', 'no attempt of the old term or older after the new leader\'s first claim');

# a run started while the old leader is down
my $run4 = start_run($n{$f2}, 4);
is(q1($n{$f2}, "SELECT distx.saga_wait($run4, '60s')"), 'completed', 'new runs complete meanwhile');

# --- the old leader restarts and catches up ----------------------------------

$n{$leader}->start;
same_everywhere('after the old leader restarts', qw(n1 n2 n3));
is(q1($n{$leader}, "SELECT state FROM distx.saga_runs WHERE run_id = $run3"), 'completed',
	'the old leader shows the run completed');
is(effects($p1, 3), 'bump', 'and nothing ran again when it came back');

# --- kill -9 of the leader after a step's success is recorded, before its
# --- COMMIT PREPARED: the new leader commits it ----------------------------

$leader = wait_leader($nodes, undef, qw(n1 n2 n3));
($f1, $f2) = grep { $_ ne $leader } qw(n1 n2 n3);
$old_term = q1($n{$leader}, q{SELECT term FROM distx.raft_status WHERE is_self});
$n{$leader}->append_conf('postgresql.conf', q{
distx.fault_point = 'saga_forward_recorded'
distx.fault_action = 'sleep'
distx.fault_sleep = '120s'
});
$n{$leader}->reload;
usleep(300_000);
my $foff = log_size($n{$leader});
my $run8 = start_run($n{$f2}, 8);
$n{$leader}->wait_for_log(qr/distx fault point "saga_forward_recorded" reached/, $foff);
is(q1($n{$f2}, "SELECT state || ' ' || commit_pending FROM distx.saga_attempt WHERE run_id = $run8 AND step_no = 1"),
	'succeeded true', 'the success is replicated, its commit pending');
is(distx_prepared_count($p1), '1', 'the step is prepared on p1');
kill9_postmaster_and_restart($n{$leader}, no_restart => 1);
$new_leader = wait_leader($nodes, $leader, $f1, $f2);
ok(defined $new_leader, "a new leader after kill -9 of $leader");
is(q1($n{$f2}, "SELECT distx.saga_wait($run8, '90s')"), 'completed', 'the run completes');
is(effects($p1, 8) . ' / ' . effects($p2, 8), 'bump / bump',
	'the prepared step was committed by the new leader, not run again');
is(q1($n{$f2}, "SELECT string_agg(state || ' ' || commit_pending, ',' ORDER BY attempt_no) FROM distx.saga_attempt WHERE run_id = $run8 AND step_no = 1"),
	'succeeded false', 'a single attempt, resolved');
ok(wait_no_distx_prepared($p1, $p2), 'nothing is left prepared');
$n{$leader}->append_conf('postgresql.conf', "distx.fault_point = ''\n");
$n{$leader}->start;
same_everywhere('after the second kill', qw(n1 n2 n3));

# --- SIGSTOP of the leader while a step runs, SIGCONT after a new leader ----

$leader = wait_leader($nodes, undef, qw(n1 n2 n3));
($f1, $f2) = grep { $_ ne $leader } qw(n1 n2 n3);
$old_term = q1($n{$leader}, q{SELECT term FROM distx.raft_status WHERE is_self});
my $loff = log_size($n{$leader});
my $run7 = start_run($n{$f1}, 7, sleep => 2);
ok($p1->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name LIKE 'distx\\_saga\\_${run7}\\_%'"),
	'the step of the run runs on p1');
signal_tree($n{$leader}, 'STOP');
$new_leader = wait_leader($nodes, $leader, $f1, $f2);
ok(defined $new_leader, "a new leader while $leader is stopped");
# the stopped leader's session on p1 stays open (its step waits for
# PREPARE): the new leader waits for it
usleep(3_000_000);
is(effects($p1, 7), '', 'nothing of the step is committed while the old leader is stopped');
signal_tree($n{$leader}, 'CONT');
is(q1($n{$f1}, "SELECT distx.saga_wait($run7, '90s')"), 'completed',
	'the run completes under the new leader after the old one resumes');
is(effects($p1, 7) . ' / ' . effects($p2, 7), 'bump / bump', 'each step took effect exactly once');
is(counter($p1, 7), '1', 'p1 counter is 1');
ok(wait_no_distx_prepared($p1, $p2), 'nothing is left prepared');
$new_term = q1($n{$new_leader}, q{SELECT term FROM distx.raft_status WHERE is_self});
is(q1($n{$f1}, "SELECT string_agg(state || ':' || CASE WHEN term = $old_term THEN 'old' WHEN term > $old_term THEN 'new' ELSE term::text END, ',' ORDER BY attempt_no)
	FROM distx.saga_attempt WHERE run_id = $run7 AND step_no = 1"),
	'aborted:old,succeeded:new', 'the resumed leader\'s attempt was reconciled, the new leader ran the step');
is(q1($n{$f1}, "SELECT count(*) FROM distx.saga_attempt WHERE term <= $old_term
	AND started_at > (SELECT min(started_at) FROM distx.saga_attempt WHERE term > $old_term)"),
	'0', 'no attempt carries the old term after the new leader\'s first claim');
unlike(slurp_file($n{$leader}->logfile, $loff), qr/distx saga: acting as the coordinator in term/,
	'the resumed leader never acted again');
same_everywhere('after the paused leader resumed', qw(n1 n2 n3));

# an old leader that prepared its attempt after the new one reconciled it
# (the window the old leader cannot close itself) leaves a prepared
# transaction named after an aborted attempt: the acting coordinator rolls
# it back
my $ghost = q1($n{$f1}, "SELECT gid FROM distx.saga_attempt WHERE run_id = $run7 AND step_no = 1 AND state = 'aborted'");
like($ghost, qr/_saga_${run7}_1_1$/, 'the aborted attempt has a gid');
$p1->safe_psql('postgres', "BEGIN; INSERT INTO effects (id, what) VALUES (7, 'ghost'); PREPARE TRANSACTION '$ghost'");
ok($p1->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_prepared_xacts WHERE gid = '$ghost'"),
	'a prepared transaction of an aborted attempt is rolled back by the acting coordinator');
is(effects($p1, 7), 'bump', 'and nothing of it committed');

# --- a node catches up through a snapshot ------------------------------------

$leader = wait_leader($nodes, undef, qw(n1 n2 n3));
my $down = (grep { $_ ne $leader } qw(n1 n2 n3))[0];
my ($up) = grep { $_ ne $leader && $_ ne $down } qw(n1 n2 n3);
$n{$down}->stop('immediate');
my @later;
push @later, start_run($n{$up}, 20 + $_, fail => $_ % 2) foreach 1 .. 6;
my %want = map { $later[$_ - 1] => ($_ % 2 ? 'compensated' : 'completed') } 1 .. 6;
is(q1($n{$up}, "SELECT distx.saga_wait($_, '60s')"), $want{$_}, "run $_ ends as $want{$_}")
  foreach @later;
my $off = log_size($n{$down});
$n{$down}->start;
same_everywhere("after $down catches up", qw(n1 n2 n3));
like(slurp_file($n{$down}->logfile, $off), qr/installed a snapshot at index \d+ from the leader/,
	"$down caught up through a snapshot");
is(q1($n{$down}, "SELECT string_agg(state, ',' ORDER BY run_id) FROM distx.saga_runs WHERE run_id IN (" . join(',', @later) . ')'),
	'compensated,completed,compensated,completed,compensated,completed',
	"$down has the runs it missed");
is(q1($n{$down}, "SELECT count(*) FROM distx.saga_run_steps s JOIN distx.saga_runs r USING (run_id) WHERE r.run_id IN (" . join(',', @later) . ')'),
	'12', 'with their steps');

# --- purged from a follower, everywhere -------------------------------------

my $finished = q1($n{$up}, q{SELECT count(*) FROM distx.saga_run WHERE state IN ('completed', 'compensated', 'cancelled')});
is(q1($n{$down}, q{SELECT distx.saga_purge('0 s')}), $finished, "$down purges the $finished finished runs");
same_everywhere('after the purge', qw(n1 n2 n3));
is(q1($n{$_}, q{SELECT count(*) FROM distx.saga_run}), '0', "no run left on $_") foreach qw(n1 n2 n3);
my $run6 = start_run($n{$up}, 6);
ok($run6 > $later[-1], 'a new run after the purge gets a new id');
is(q1($n{$up}, "SELECT distx.saga_wait($run6, '60s')"), 'completed', 'and completes');

$n{$_}->stop foreach qw(n1 n2 n3);
done_testing();
