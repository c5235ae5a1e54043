
# 2PC in a distx cluster: three distx nodes (n1..n3) and two participant
# databases (p1, p2).  The commit decision of a distributed transaction is
# committed in Raft before any COMMIT PREPARED; only the acting coordinator
# (the leader) runs recovery; when a coordinator dies with transactions in
# doubt, the new leader resolves them without waiting for it, except for a
# transaction that also wrote on the dead server, whose outcome follows that
# server's local commit and is settled when it returns.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;
use DistxCluster;

my $conf = q{
distx.raft_election_timeout = '500ms'
distx.raft_heartbeat_interval = '50ms'
};
my $nodes = new_cluster_nodes([qw(n1 n2 n3)], conf => $conf);
my %n = %$nodes;
my $p1 = new_participant('p1');
my $p2 = new_participant('p2');
my %parts = (p1 => $p1, p2 => $p2);
foreach my $name (qw(n1 n2 n3))
{
	add_node($n{$name}, 'p1', $p1);
	add_node($n{$name}, 'p2', $p2);
	q1($n{$name}, 'CREATE TABLE ledger (id int PRIMARY KEY)');
}
$_->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY)') foreach ($p1, $p2);

# A server founds a cluster only with none of its own transactions in
# doubt: T0, decided on n1 as a single server, cannot reach p2 (down) for
# its COMMIT PREPARED; cluster_init() is refused until p2 is back, and then
# finishes T0 first, by n1's own decision.
my $tx0 = -1;
my ($h0) = start_stopped('n1', 'after_decision', $tx0, 0, 2000);
$p2->stop('immediate');
finish_psql($h0);
like(psql_error($n{n1}, 'postgres', 'SELECT distx.cluster_init()'),
	qr/55000: this server cannot tell whether its distributed transactions are finished/,
	'a server with a decided transaction in doubt cannot found a cluster');
is(q1($n{n1}, 'SELECT count(*) FROM distx.raft_status'), '0', 'it stays a single server');
$p2->start;
wait_accepting($p2);
ok(retry_sql($n{n1}, 'SELECT distx.cluster_init()'), 'once p2 is back, n1 founds the cluster');
is(remote_outcome($tx0), '1 1', 'once p2 is back, founding the cluster finished T0 first: committed on both nodes');
q1($n{n1}, q{SELECT distx.cluster_add_node('n2')});
q1($n{n1}, q{SELECT distx.cluster_add_node('n3')});
ok(defined converged($nodes, qw(n1 n2 n3)), 'three nodes agree');

my $id = 0;

# "p1 p2" presence of a transfer's rows on the participants
sub remote_outcome
{
	my ($i) = @_;
	return join(' ', map { $parts{$_}->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $i") } qw(p1 p2));
}

sub transfer_sql
{
	my ($i, $local) = @_;
	my $l = $local ? "INSERT INTO ledger VALUES ($i);" : '';
	return qq{BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (\$1)', '$i');
SELECT distx.exec('p2', 'INSERT INTO t VALUES (\$1)', '$i');
$l
COMMIT;};
}

my $leader = wait_leader($nodes, undef, qw(n1 n2 n3));
my @followers = grep { $_ ne $leader } qw(n1 n2 n3);
ok($n{$leader}->poll_query_until('postgres',
	q{SELECT coordinator FROM distx.raft_status WHERE is_self}), "$leader acts as coordinator");

# --- commits from the leader and from a follower ----------------------------

foreach my $from ($leader, $followers[0])
{
	foreach my $local (0, 1)
	{
		$id++;
		q1($n{$from}, transfer_sql($id, $local));
		is(remote_outcome($id), '1 1', "from $from (local write: $local): committed on both nodes");
		is(q1($n{$from}, "SELECT count(*) FROM ledger WHERE id = $id"), $local, 'and locally as asked');
		my $cond = $local ? 't' : 'f';
		my $prefix = q1($n{$from}, 'SELECT distx.gid_prefix()');
		foreach my $name (qw(n1 n2 n3))
		{
			ok($n{$name}->poll_query_until('postgres', qq{SELECT outcome || ' ' || CASE WHEN conditional THEN 't' ELSE 'f' END || ' '
				|| (SELECT array_agg(p ORDER BY p) FROM unnest(participants) p)::text
				FROM distx.cluster_decisions WHERE origin = '$prefix' ORDER BY decided_at DESC, xid DESC LIMIT 1},
				"commit $cond {p1,p2}"),
				"the decision (commit, conditional $cond, p1+p2) is replicated to $name");
		}
		is(distx_prepared_count($p1) + distx_prepared_count($p2), 0, 'nothing left prepared');
	}
}
is(q1($n{$leader}, q{SELECT count(*) FROM distx.decisions}), '0',
	'no single-node decision rows in cluster mode');

# an error after the PREPAREs rolls back everything, with no decision
$id++;
like(psql_error($n{$followers[1]}, 'postgres',
	qq{SET distx.fault_point = 'after_prepares'; SET distx.fault_action = 'error';\n} . transfer_sql($id, 0)),
	qr/fault/, 'an error after the PREPAREs is reported');
is(remote_outcome($id), '0 0', 'and nothing committed');
is(distx_prepared_count($p1) + distx_prepared_count($p2), 0, 'nor left prepared');

# a transaction from another database of a cluster member is refused
q1($n{$leader}, 'CREATE DATABASE other');
$n{$leader}->safe_psql('other', 'CREATE EXTENSION distx');
add_node($n{$leader}, 'p1', $p1, coord_db => 'other');
add_node($n{$leader}, 'p2', $p2, coord_db => 'other');
$id++;
like(psql_error($n{$leader}, 'other', transfer_sql($id, 0)),
	qr/0A000: distributed transactions of a distx cluster must run in database "postgres"/,
	'2PC from a database other than distx.database is refused in a cluster');
is(remote_outcome($id), '0 0', 'and rolled back');

# --- recovery runs on the acting coordinator only ----------------------------

like(psql_error($n{$followers[0]}, 'postgres', 'SELECT * FROM distx.recover()'),
	qr/55000: this server does not act as the distx cluster's coordinator.*HINT:  Run distx.recover\(\) on the leader/s,
	'distx.recover() on a follower says to run it on the leader');
is(q1($n{$leader}, 'SELECT committed + rolled_back FROM distx.recover()'), '0',
	'on the leader it runs (nothing to do)');

# Start a transfer on $from that stops at $point, return (handle, pid).
sub start_stopped
{
	my ($from, $point, $i, $local, $sleep_ms) = @_;
	my $off = log_size($n{$from});
	$sleep_ms //= 60000;
	my $h = start_psql($n{$from}, qq{
SET distx.fault_point = '$point';
SET distx.fault_action = 'sleep';
SET distx.fault_sleep = $sleep_ms;
} . transfer_sql($i, $local));
	my $pid = wait_for_fault($n{$from}, $point, $off, $h);
	return ($h, $pid);
}

sub kill_node
{
	my ($name) = @_;
	kill9_postmaster_and_restart($n{$name}, no_restart => 1);
}

sub restart_node
{
	my ($name) = @_;
	$n{$name}->start;
	wait_accepting($n{$name});
}

# --- the leader dies with transactions in doubt ------------------------------

# T1: decided (unconditional) on the leader, not yet committed on the nodes;
# T2: prepared on the leader, no decision yet.  Then kill -9 of the leader.
my $t1 = ++$id;
my ($h1) = start_stopped($leader, 'after_decision', $t1, 0);
my $t2 = ++$id;
my ($h2) = start_stopped($leader, 'after_prepares', $t2, 0);
# T1 is decided, so the leader's recovery may already have committed it
is(distx_prepared_count($p1) + $p1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $t1"), 2,
	'two transactions in doubt on p1 (or T1, decided, already committed there)');
my $old = $leader;
my $t0 = time();
kill_node($old);
finish_psql($h1);
finish_psql($h2);
my $new = wait_leader($nodes, $old, @followers);
ok(defined $new, "a new leader ($new) is elected");
ok(wait_no_distx_prepared($p1, $p2), 'the new leader resolves both while the old one is down');
note(sprintf('in-doubt transactions resolved %.2f s after the kill', time() - $t0));
is(remote_outcome($t1), '1 1', 'the decided transaction is committed on both nodes');
is(remote_outcome($t2), '0 0', 'the undecided one is rolled back on both');
is(q1($n{$new}, qq{SELECT count(*) FROM distx.cluster_decisions WHERE outcome = 'abort'
	AND term = (SELECT term FROM distx.raft_status WHERE is_self)}), '1',
	'the roll-back is a decision of the new leader, in its term');

# the old leader comes back and follows
restart_node($old);
ok(defined converged($nodes, qw(n1 n2 n3)), 'the old leader catches up');
is(q1($n{$old}, q{SELECT count(*) FROM distx.cluster_decisions WHERE outcome = 'abort'}), '1',
	'and has the abort decision');
$leader = wait_leader($nodes, undef, qw(n1 n2 n3));
@followers = grep { $_ ne $leader } qw(n1 n2 n3);

# --- a coordinator that also wrote locally dies: settled when it returns -----

# T3: conditional decision in Raft and committed locally on follower F, then
# F dies before COMMIT PREPARED: in doubt until F is back, then committed.
my $f = $followers[0];
my $fprefix = q1($n{$f}, 'SELECT distx.gid_prefix()');
sub backend_xid
{
	my ($name, $pid) = @_;
	return q1($n{$name}, "SELECT backend_xid FROM pg_stat_activity WHERE pid = $pid");
}
# how many gids of transaction $xid of F are prepared on p1 and p2
sub prepared_of
{
	my ($xid) = @_;
	return distx_prepared_count_like($p1, "${fprefix}${xid}_") + distx_prepared_count_like($p2, "${fprefix}${xid}_");
}
sub distx_prepared_count_like
{
	my ($part, $pfx) = @_;
	return $part->safe_psql('postgres', "SELECT count(*) FROM pg_prepared_xacts WHERE starts_with(gid, '$pfx')");
}
my $t3 = ++$id;
my ($h3) = start_stopped($f, 'after_decision', $t3, 1);
# T4: conditional decision in Raft, F dies before its local commit: the
# decision never holds, rolled back when F is back.
my $t4 = ++$id;
my ($h4, $pid4) = start_stopped($f, 'after_raft_decision', $t4, 1);
my $xid4 = backend_xid($f, $pid4);
# T5: prepared on F, no decision: rolled back without waiting for F.
my $t5 = ++$id;
my ($h5, $pid5) = start_stopped($f, 'after_prepares', $t5, 1);
my $xid5 = backend_xid($f, $pid5);
is(prepared_of($xid4) . ' ' . prepared_of($xid5), '2 2', 'T4 and T5 are prepared on both nodes');
kill_node($f);
finish_psql($_) foreach ($h3, $h4, $h5);
my $deadline = time() + 60;
usleep(100_000) while prepared_of($xid5) > 0 && time() < $deadline;
is(prepared_of($xid5), 0, 'with F down, the undecided transaction is rolled back');
usleep(1_500_000);
is(prepared_of($xid4), 2, 'the conditional decision waits while F is down');
is(remote_outcome($t5), '0 0', 'the undecided one is rolled back');
restart_node($f);
ok(wait_no_distx_prepared($p1, $p2), 'once F is back, the conditional ones are settled');
is(remote_outcome($t3) . ' ' . q1($n{$f}, "SELECT count(*) FROM ledger WHERE id = $t3"), '1 1 1',
	'committed locally on F: committed on the nodes');
is(remote_outcome($t4) . ' ' . q1($n{$f}, "SELECT count(*) FROM ledger WHERE id = $t4"), '0 0 0',
	'not committed locally on F: rolled back on the nodes');

# --- the paused leader never acts in its old term ----------------------------

ok(defined converged($nodes, qw(n1 n2 n3)), 'agreed again');
$leader = wait_leader($nodes, undef, qw(n1 n2 n3));
@followers = grep { $_ ne $leader } qw(n1 n2 n3);
my $old_term = q1($n{$leader}, q{SELECT term FROM distx.raft_status WHERE is_self});
my $lprefix = q1($n{$leader}, 'SELECT distx.gid_prefix()');
# T6 prepares on the leader, then the whole leader is stopped before it
# proposes its decision; the new leader rolls it back (its coordinator
# does not answer); the old one, resumed, proposes commit, and loses
my $t6 = ++$id;
my $off = log_size($n{$leader});
my $h6 = start_psql($n{$leader}, qq{
SET distx.fault_point = 'after_prepares';
SET distx.fault_action = 'sleep';
SET distx.fault_sleep = 2000;
} . transfer_sql($t6, 0));
my $pid6 = wait_for_fault($n{$leader}, 'after_prepares', $off, $h6);
my $xid6 = q1($n{$leader}, "SELECT backend_xid FROM pg_stat_activity WHERE pid = $pid6");
signal_tree($n{$leader}, 'STOP');
$new = wait_leader($nodes, $leader, @followers);
ok(defined $new, "a new leader ($new) while $leader is stopped");
my $takeover = q1($n{$new}, 'SELECT now()');
ok(wait_no_distx_prepared($p1, $p2), 'the new leader rolls back the transaction of the stopped one');
signal_tree($n{$leader}, 'CONT');
my ($rc6, $out6, $err6) = finish_psql($h6);
isnt($rc6, 0, 'the resumed session does not report a commit');
like($err6, qr/rolled back by the distx cluster's recovery|could not commit the decision/,
	'it reports that its transaction was rolled back');
is(remote_outcome($t6), '0 0', 'nothing of it committed');
ok(defined converged($nodes, qw(n1 n2 n3)), 'the old leader follows the new one');
foreach my $name (qw(n1 n2 n3))
{
	is(q1($n{$name}, qq{SELECT string_agg(outcome || ' ' || CASE WHEN term > $old_term THEN 'later' ELSE 'old' END, ',')
		FROM distx.cluster_decisions WHERE origin = '$lprefix' AND xid = '$xid6'}), 'abort later',
		"on $name the one decision of T6 is the new leader's abort, in a later term");
	is(q1($n{$name}, qq{SELECT count(*) FROM distx.cluster_decisions
		WHERE term <= $old_term AND decided_at >= '$takeover'}), '0',
		"no decision on $name made after the takeover carries the old leader's term");
}

# --- membership changes wait for the member's own transactions -------------

ok(defined converged($nodes, qw(n1 n2 n3)), 'agreed before the membership changes');
$leader = wait_leader($nodes, undef, qw(n1 n2 n3));
@followers = grep { $_ ne $leader } qw(n1 n2 n3);
my $gone = $followers[0];

# while a membership change pauses them, a node's two-phase commits are
# refused before anything is prepared; one-phase ones go on
q1($n{$gone}, 'SELECT distx._cluster_quiesce(60000)');
$id++;
like(psql_error($n{$gone}, 'postgres', transfer_sql($id, 0)),
	qr/55000: distributed transactions are paused on this server while its distx cluster membership changes/,
	'a paused member refuses a new two-phase commit');
is(remote_outcome($id), '0 0', 'and nothing of it was committed or left prepared');
is(distx_prepared_count($p1) + distx_prepared_count($p2), 0, 'nothing prepared');
q1($n{$gone}, qq{SELECT distx.exec('p1', 'INSERT INTO t VALUES (\$1)', '$id')});
is(remote_outcome($id), '1 0', 'a transaction with one writer still commits (no PREPARE)');
q1($n{$gone}, 'SELECT distx._cluster_quiesce(0)');
$id++;
q1($n{$gone}, transfer_sql($id, 0));
is(remote_outcome($id), '1 1', 'once resumed, two-phase commits work again');

# T7 is decided in Raft on follower F and stopped for 3 s before its
# COMMIT PREPAREDs.  Removing F waits for it: when the removal returns, T7
# is committed on both nodes and nothing is left prepared.
my $t7 = ++$id;
my ($h7) = start_stopped($gone, 'after_decision', $t7, 0, 3000);
q1($n{$leader}, "SELECT distx.cluster_remove_node('$gone')");
is(remote_outcome($t7) . ' ' . (distx_prepared_count($p1) + distx_prepared_count($p2)), '1 1 0',
	'the removal of a member waits for its transaction in flight');
my ($rc7) = finish_psql($h7);
is($rc7, 0, 'whose session reports its commit');
ok($n{$gone}->poll_query_until('postgres', 'SELECT count(*) = 0 FROM distx.raft_status'),
	"$gone is no member any more");
$id++;
q1($n{$gone}, transfer_sql($id, 0));
is(remote_outcome($id), '1 1', 'the removed member runs two-phase commits as a single server');

# T8: as a single server, F decides a transaction whose COMMIT PREPARED
# cannot reach p2 (down).  F cannot join while that is in doubt; once p2 is
# back, joining finishes it first.
my $t8 = ++$id;
my ($h8) = start_stopped($gone, 'after_decision', $t8, 0, 2000);
$p2->stop('immediate');
my ($rc8, $out8, $err8) = finish_psql($h8);
is($rc8, 0, 'T8 commits while p2 is down');
like($err8, qr/committed but not yet on node "p2"|could not send COMMIT PREPARED/,
	'with a warning about p2');
like(psql_error($n{$leader}, 'postgres', "SELECT distx.cluster_add_node('$gone')"),
	qr/55000: distx node "$gone": this server cannot tell whether its distributed transactions are finished/,
	'a server with a decided transaction still in doubt cannot join');
is(q1($n{$gone}, 'SELECT count(*) FROM distx.raft_status'), '0', 'it stays a single server');
# T8 is the removed server's own: with its recovery (in its coordinator
# worker) stopped, the cluster's leader, which still lists it in
# distx.cluster_nodes and can ask it about T8's xid, must not decide T8,
# which has no decision in the cluster
my $gone_worker = q1($n{$gone},
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'distx coordinator'});
ok(kill('STOP', $gone_worker), "the coordinator worker of $gone is stopped");
$p2->start;
wait_accepting($p2);
usleep(2_000_000);
is($p2->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '1',
	'the cluster leaves the transaction of a removed member alone');
kill('CONT', $gone_worker);
ok(retry_sql($n{$leader}, "SELECT distx.cluster_add_node('$gone')"), 'once p2 is back, it joins');
is(remote_outcome($t8), '1 1', 'joining finished T8 by its own decision first: committed on both nodes');
ok(defined converged($nodes, qw(n1 n2 n3)), "$gone is a member again");

# T9 is decided in Raft on F; p2 is down, so it stays in doubt there.  F
# leaves (nothing in flight: the session is over) holding that decision;
# with the rest of the cluster stopped, F on its own finishes T9 by it.
$leader = wait_leader($nodes, undef, qw(n1 n2 n3));
@followers = grep { $_ ne $leader } qw(n1 n2 n3);
$gone = $followers[0];
my $t9 = ++$id;
my ($h9) = start_stopped($gone, 'after_decision', $t9, 0, 2000);
$p2->stop('immediate');
my ($rc9) = finish_psql($h9);
is($rc9, 0, 'T9 commits while p2 is down');
q1($n{$leader}, "SELECT distx.cluster_remove_node('$gone')");
ok($n{$gone}->poll_query_until('postgres', 'SELECT count(*) = 0 FROM distx.raft_status'),
	"$gone is no member any more");
signal_tree($n{$_}, 'STOP') foreach ($leader, $followers[1]);
$p2->start;
wait_accepting($p2);
ok(wait_no_distx_prepared($p1, $p2), "$gone, on its own, finishes the transaction it decided in the cluster");
is(remote_outcome($t9), '1 1', 'by that decision: committed on both nodes');
signal_tree($n{$_}, 'CONT') foreach ($leader, $followers[1]);
ok(retry_sql($n{$leader}, "SELECT distx.cluster_add_node('$gone')"), "$gone joins again");
ok(defined converged($nodes, qw(n1 n2 n3)), "$gone is a member again");

# --- after all this ----------------------------------------------------------

$id++;
q1($n{$_}, transfer_sql($id * 10 + $_ =~ s/n//r, 1)) foreach qw(n1 n2 n3);
is(q1($p1, 'SELECT count(*) FROM t WHERE id >= ' . ($id * 10)), '3',
	'every node still runs distributed transactions');
is(distx_prepared_count($p1) + distx_prepared_count($p2), 0, 'nothing left prepared');

done_testing();
