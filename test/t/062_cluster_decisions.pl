
# Decisions of distributed transactions in the replicated state of the
# cluster (distx._cluster_decide / _cluster_forget, the layer the 2PC apply
# path will use): proposed from any member and visible there when the call
# returns, replicated everywhere, the first decision for a transaction wins
# (also when a commit and an abort race from two nodes), forgetting
# removes it everywhere, and a node that was down gets the decisions back
# through a snapshot.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;
use DistxCluster;

my $conf = q{
distx.raft_snapshot_threshold = 10
};
my $nodes = new_cluster_nodes([qw(n1 n2 n3)], conf => $conf);
my %n = %$nodes;

like(psql_error($n{n1}, 'postgres',
	q{SELECT distx._cluster_decide('o', '1', true, false, '{p1}')}),
	qr/not a member of a distx cluster/, 'deciding needs a cluster');

q1($n{n1}, q{SELECT distx.cluster_init()});
q1($n{n1}, q{SELECT distx.cluster_add_node('n2')});
q1($n{n1}, q{SELECT distx.cluster_add_node('n3')});
ok(defined converged($nodes, qw(n1 n2 n3)), 'three nodes agree');

my $dec = q{SELECT coalesce(string_agg(origin || '/' || xid || '=' || outcome || (CASE WHEN conditional THEN '?' ELSE '' END)
	|| ':' || array_to_string(participants, '+') || ':' || array_to_string(participant_oids, '+'),
	',' ORDER BY origin, xid), '') FROM distx.cluster_decisions};

# --- from a follower, visible there at once -----------------------------

my $leader = wait_leader($nodes, undef, qw(n1 n2 n3));
my ($f1, $f2) = grep { $_ ne $leader } qw(n1 n2 n3);
is(q1($n{$f1}, q{SELECT distx._cluster_decide('distx_1_5_', '100', true, false, '{p1,p2}', '{16400,16401}')}),
	'commit', "a commit decided on follower $f1");
is(q1($n{$f1}, $dec), 'distx_1_5_/100=commit:p1+p2:16400+16401',
	'it is in the table of that follower when the call returns');
is(q1($n{$f2}, q{SELECT distx._cluster_decide('distx_1_5_', '100', false, false, '{p1,p2}')}),
	'commit', 'an abort for the same transaction loses to the first decision');
is(q1($n{$leader}, q{SELECT distx._cluster_decide('distx_1_5_', '101', false, false, '{p2}')}),
	'abort', 'an abort decided on the leader');
is(q1($n{$f2}, q{SELECT distx._cluster_decide('distx_1_5_', '101', true, true, '{p2}')}),
	'abort', 'a commit after it loses');
is(q1($n{$leader}, q{SELECT distx._cluster_decide('distx_2_5_', '100', true, true, '{p1}')}),
	'commit', 'another origin, same xid: its own decision (conditional)');
ok(defined converged($nodes, qw(n1 n2 n3)), 'replicated');
my $want = 'distx_1_5_/100=commit:p1+p2:16400+16401,distx_1_5_/101=abort:p2:0,distx_2_5_/100=commit?:p1:0';
is(q1($n{$_}, $dec), $want, "the same decisions on $_") foreach qw(n1 n2 n3);
ok(q1($n{$f2}, q{SELECT bool_and(term > 0) FROM distx.cluster_decisions}) eq 't',
	'each decision carries the term of its entry');

# --- a commit and an abort race from two nodes ---------------------------

my $race = sub {
	my ($commit) = @_;
	return qq{SELECT x || '=' || distx._cluster_decide('race_', x::text::xid8, $commit, false, '{p1}')
		FROM generate_series(1, 40) x ORDER BY x;};
};
my $h1 = start_psql($n{$f1}, $race->('true'));
my $h2 = start_psql($n{$f2}, $race->('false'));
my ($rc1, $out1, $err1) = finish_psql($h1);
my ($rc2, $out2, $err2) = finish_psql($h2);
is($rc1 + $rc2, 0, 'both racers finish') or diag("$err1 $err2");
is($out1, $out2, 'both sides see the same winner for each of the 40 transactions');
my $table = q1($n{$leader}, q{SELECT string_agg(xid || '=' || outcome, E'\n' ORDER BY xid::text::bigint)
	FROM distx.cluster_decisions WHERE origin = 'race_'});
is($out1, $table, 'and it is the decision in the table');
my $commits = () = $out1 =~ /=commit/g;
note("commit won $commits of 40 races");

# --- forgetting -----------------------------------------------------------

q1($n{$f2}, q{SELECT distx._cluster_forget('distx_1_5_', '100')});
is(q1($n{$f2}, q{SELECT count(*) FROM distx.cluster_decisions WHERE origin = 'distx_1_5_' AND xid = '100'}),
	'0', 'a forgotten decision is gone at once where it was forgotten');
ok(defined converged($nodes, qw(n1 n2 n3)), 'and everywhere');
is(q1($n{$_}, q{SELECT count(*) FROM distx.cluster_decisions}), '42', "42 decisions left on $_")
  foreach qw(n1 n2 n3);

# --- a node that was down gets them through a snapshot --------------------

my $down = $f1;
my @up = grep { $_ ne $down } qw(n1 n2 n3);
$n{$down}->stop('immediate');
foreach my $i (1 .. 30)
{
	q1($n{$up[$i % 2]}, qq{SELECT distx._cluster_decide('later_', '$i', true, false, '{p1}')});
}
my $off = log_size($n{$down});
$n{$down}->start;
ok(defined converged($nodes, qw(n1 n2 n3)), "$down catches up");
like(slurp_file($n{$down}->logfile, $off), qr/installed a snapshot at index \d+ from the leader/,
	'through a snapshot');
my $all = q1($n{$up[0]}, $dec);
is(q1($n{$down}, $dec), $all, 'with every decision');
is(q1($n{$down}, q{SELECT count(*) FROM distx.cluster_decisions}), '72', '72 of them');

# --- a large snapshot (more than malloc's mmap threshold, and more than a
# --- message may take in the inbox: it goes through a file) ---------------

my $lname = wait_leader($nodes, undef, qw(n1 n2 n3));
my $behind = (grep { $_ ne $lname } qw(n1 n2 n3))[0];
$n{$behind}->stop('immediate');
my $wpid = q1($n{$lname}, q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'distx raft'});
# compact every 500 entries here, not every 10 (each snapshot is large)
q1($n{$lname}, q{ALTER SYSTEM SET distx.raft_snapshot_threshold = 500});
q1($n{$lname}, q{SELECT pg_reload_conf()});
my $long = join(',', map { 'participant_with_a_really_quite_long_name_for_a_node_number_' . $_ } 1 .. 8);
q1($n{$lname}, qq{SELECT count(distx._cluster_decide('big_snapshot_origin_', x::text::xid8, true, false, '{$long}'))
	FROM generate_series(1, 2500) x});
ok(q1($n{$lname}, q{SELECT sum(length(origin) + length(array_to_string(participants, '')))
	FROM distx.cluster_decisions}) > 900000, 'the state holds over 900 kB of names (its snapshot over 1 MB, more than the inbox takes)');
is(q1($n{$lname}, q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'distx raft'}), $wpid,
	'the Raft worker of the leader compacted it without restarting');
$off = log_size($n{$behind});
$n{$behind}->start;
ok(defined converged($nodes, qw(n1 n2 n3)), "$behind, down meanwhile, catches up");
like(slurp_file($n{$behind}->logfile, $off), qr/installed a snapshot at index \d+ from the leader/,
	'through the large snapshot');
is(q1($n{$behind}, q{SELECT count(*) FROM distx.cluster_decisions}), '2572', 'with every decision');
is(scalar(grep { !/^\./ } glob($n{$behind}->data_dir . '/pg_distx/inbox/*')), 0,
	'the file that carried it is gone');
$n{$lname}->restart;
ok(defined converged($nodes, qw(n1 n2 n3)), 'the leader restarts from its large snapshot');
is(q1($n{$lname}, q{SELECT count(*) FROM distx.cluster_decisions}), '2572', 'with every decision');

$n{$_}->stop foreach qw(n1 n2 n3);
done_testing();
