
# The distx Raft cluster, first layer: three distx servers form a cluster
# (cluster_init on one, cluster_add_node for the others, from the leader and
# from a follower), a leader is elected and distx.raft_status shows it
# everywhere; kill -9 of the leader gives a new leader; the old leader
# restarts from its persisted log and catches up (through a snapshot: the
# log was compacted meanwhile); a copy of a member's data directory is
# refused; a leader that shuts down cleanly hands over its leadership.  A
# server that never joined runs no Raft worker.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::RecursiveCopy;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;
use DistxCluster;

my $conf = q{
distx.raft_snapshot_threshold = 20
};
my $nodes = new_cluster_nodes([qw(n1 n2 n3)], conf => $conf);
my %nodes = %$nodes;

sub converged_all
{
	return converged(\%nodes, @_);
}

# --- single node: nothing changes --------------------------------------

is(q1($nodes{n1}, q{SELECT count(*) FROM distx.raft_status}), '0',
	'before cluster_init: raft_status is empty');
is(q1($nodes{n1}, q{SELECT distx.leader() IS NULL}), 't', 'and there is no leader');
is(q1($nodes{n1}, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'distx raft'}),
	'0', 'and no Raft worker runs');
like(psql_error($nodes{n1}, 'postgres', q{SELECT distx.cluster_add_node('n2')}),
	qr/not a member of a distx cluster/, 'cluster_add_node needs a cluster');

# --- init, add two nodes -----------------------------------------------

my $cid = q1($nodes{n1}, q{SELECT distx.cluster_init()});
like($cid, qr/^\d+$/, 'cluster_init returns the cluster id');
is(self_status($nodes{n1}) =~ /^leader n1 \d+$/ ? 1 : 0, 1,
	'the first node leads its one-node cluster');
is(q1($nodes{n1}, q{SELECT distx.leader()}), 'n1', 'distx.leader() names it');
like(psql_error($nodes{n1}, 'postgres', q{SELECT distx.cluster_init()}),
	qr/already a member/, 'cluster_init twice is refused');
like(psql_error($nodes{n1}, 'postgres', q{SELECT distx.cluster_add_node('nope')}),
	qr/distx node "nope" does not exist/, 'an unknown server is refused');

is(q1($nodes{n1}, q{SELECT distx.cluster_add_node('n2')}), '2', 'n2 joins as node 2');
ok($nodes{n2}->poll_query_until('postgres',
	q{SELECT leader = 'n1' AND role = 'follower' FROM distx.raft_status WHERE is_self}),
	'n2 follows n1');
# from a follower: forwarded to the leader
is(q1($nodes{n2}, q{SELECT distx.cluster_add_node('n3')}), '3',
	'n3 joins as node 3 through a follower');
is(q1($nodes{n1}, q{SELECT distx.cluster_add_node('n3')}), '3',
	'adding a member again is a no-op with the same id');


my $c = converged_all(qw(n1 n2 n3));
ok(defined $c, 'all three nodes agree on leader, term, applied index and members');
like($c // '', qr/^n1 \d+ \d+ 3 1:n1,2:n2,3:n3$/, 'three voters, n1 leads')
  or diag($c);
is(q1($nodes{n1}, q{SELECT count(*) FROM distx.raft_status WHERE NOT is_self AND connected AND match_index > 0}),
	'2', 'the leader replicates to both followers');
is(q1($nodes{n3}, q{SELECT last_heard < interval '2 s' FROM distx.raft_status WHERE node = 'n1'}),
	't', 'a follower shows when it last heard from the leader');
is(q1($nodes{n3}, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'distx raft'}),
	'1', 'a member runs one Raft worker');
is(q1($nodes{n3}, qq{SELECT cluster_id = $cid FROM distx.raft_status WHERE is_self}), 't',
	'the same cluster id everywhere');

# --- kill -9 of the leader -----------------------------------------------

my $t0 = time();
kill9_postmaster_and_restart($nodes{n1}, no_restart => 1);
my $new;
my $deadline = time() + 60;
while (time() < $deadline)
{
	my $l2 = q1($nodes{n2}, q{SELECT coalesce(distx.leader(), '-')});
	my $l3 = q1($nodes{n3}, q{SELECT coalesce(distx.leader(), '-')});
	if ($l2 eq $l3 && $l2 ne '-' && $l2 ne 'n1')
	{
		$new = $l2;
		last;
	}
	usleep(50_000);
}
ok(defined $new, 'after kill -9 of the leader, a new leader is elected');
note(sprintf('new leader %s after %.2f s', $new // '-', time() - $t0));

# entries while n1 is down, enough for the others to compact their logs
foreach my $i (1 .. 25)
{
	q1($nodes{n2}, q{SELECT distx.cluster_add_node('n3')});
}
my $leader_node = $nodes{$new // 'n2'};
ok(-f $leader_node->data_dir . '/pg_distx/snapshot', 'the leader compacted its log into a snapshot');

# --- the old leader restarts and catches up ------------------------------

my $off = log_size($nodes{n1});
$nodes{n1}->start;
$c = converged_all(qw(n1 n2 n3));
ok(defined $c, 'the restarted node catches up with the others');
like($c // '', qr/^(n2|n3) \d+ \d+ 3 1:n1,2:n2,3:n3$/, 'and follows the new leader')
  or diag($c);
like(slurp_file($nodes{n1}->logfile, $off), qr/installed a snapshot at index \d+ from the leader/,
	'it caught up through a snapshot');
like(slurp_file($nodes{n1}->logfile, $off), qr/node 1 \("n1"\) of cluster \d+ started: term [1-9]/,
	'it restarted from its persisted state');

# --- a copy of a member's data directory is refused ----------------------

$nodes{n3}->stop('fast');
my $n4 = PostgreSQL::Test::Cluster->new('n4');
PostgreSQL::Test::RecursiveCopy::copypath($nodes{n3}->data_dir, $n4->data_dir);
chmod 0700, $n4->data_dir;
$n4->append_conf('postgresql.conf', 'port = ' . $n4->port);
$nodes{n3}->start;
$n4->start;
ok($n4->wait_for_log(qr/refusing to run: server "n3" \(the name of node 3\) leads to another server/),
	'the copy refuses to run as node 3');
ok($n4->poll_query_until('postgres',
	q{SELECT role = 'refused' FROM distx.raft_status WHERE is_self}),
	'raft_status of the copy says so');
$c = converged_all(qw(n1 n2 n3));
ok(defined $c, 'the cluster is unaffected by the copy');
$n4->stop('immediate');

# --- a clean shutdown of the leader hands over ---------------------------

my $lname = q1($nodes{n2}, q{SELECT distx.leader()});
my $lnode = $nodes{$lname};
$off = log_size($lnode);
$t0 = time();
$lnode->stop('fast');
my @others = grep { $_ ne $lname } qw(n1 n2 n3);
my $handed;
$deadline = time() + 30;
while (time() < $deadline)
{
	my $l = q1($nodes{$others[0]}, q{SELECT coalesce(distx.leader(), '-')});
	if ($l ne '-' && $l ne $lname)
	{
		$handed = time() - $t0;
		last;
	}
	usleep(20_000);
}
ok(defined $handed, 'a new leader after a clean shutdown of the leader');
like(slurp_file($lnode->logfile, $off), qr/handing the leadership to node \d+/,
	'the leader handed over before stopping');
note(sprintf('handover took %.2f s', $handed // -1));
$lnode->start;
ok(defined converged_all(qw(n1 n2 n3)), 'and it rejoins');

# --- remove a node and add it again --------------------------------------

my %ids = (n1 => 1, n2 => 2, n3 => 3);
sub members_line
{
	return join(',', map { "$ids{$_}:$_" } sort { $ids{$a} <=> $ids{$b} } keys %ids);
}
my $next_id = 4;

my $follower = (grep { $_ ne q1($nodes{n1}, q{SELECT distx.leader()}) } qw(n1 n2 n3))[0];
my $victim = (grep { $_ ne $follower && $_ ne q1($nodes{n1}, q{SELECT distx.leader()}) } qw(n1 n2 n3))[0];
# the recovery pass of $follower may have opened its circuit breaker for
# $victim while that one restarted (the handover above), and the removal
# tells $victim through that circuit: let it close first
ok($nodes{$follower}->poll_query_until('postgres',
	qq{SELECT circuit <> 'open' OR retry_after = interval '0' FROM distx.node_health WHERE node = '$victim'}),
	"$follower may call $victim");
q1($nodes{$follower}, qq{SELECT distx.cluster_remove_node('$victim')});
my @rest = grep { $_ ne $victim } qw(n1 n2 n3);
$c = converged_all(@rest);
like($c // '', qr/^n\d \d+ \d+ 2 /, "after removing $victim two voters remain") or diag($c);
is(q1($nodes{$victim}, q{SELECT count(*) FROM distx.raft_status}), '0',
	'the removed node was told: it is no member any more');
is(q1($nodes{$victim}, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'distx raft'}),
	'0', 'and its Raft worker is gone');
ok(scalar(glob($nodes{$victim}->data_dir . '/pg_distx.removed.*')), 'its Raft files are kept aside');
like(psql_error($nodes{$follower}, 'postgres', qq{SELECT distx.cluster_remove_node('$victim')}),
	qr/is not a member of the cluster/, 'removing it twice is refused');
is(q1($nodes{$rest[0]}, q{SELECT distx.cluster_add_node('n1')}), '1',
	'the two remaining voters commit changes');
my $vid = q1($nodes{$follower}, qq{SELECT distx.cluster_add_node('$victim')});
is($vid, $next_id, "$victim is added again under a new id (it has no Raft state any more)");
$ids{$victim} = $next_id++;
$c = converged_all(qw(n1 n2 n3));
my $ml = members_line();
like($c // '', qr/^n\d \d+ \d+ 3 \Q$ml\E$/, 'three voters again') or diag($c);

# --- a removed server stays out after a restart ---------------------------

my $leader_now = q1($nodes{n1}, q{SELECT distx.leader()});
my $gone = (grep { $_ ne $leader_now } qw(n1 n2 n3))[0];
q1($nodes{$leader_now}, qq{SELECT distx.cluster_remove_node('$gone')});
$nodes{$gone}->restart;
is(q1($nodes{$gone}, q{SELECT count(*) FROM distx.raft_status}), '0',
	"$gone is no member after a restart");
is(q1($nodes{$gone}, q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'distx raft'}),
	'0', 'and runs no Raft worker');
is(q1($nodes{$leader_now}, qq{SELECT distx.cluster_add_node('$gone')}), $next_id,
	"added again, $gone gets a new id");
$ids{$gone} = $next_id++;
$c = converged_all(qw(n1 n2 n3));
$ml = members_line();
like($c // '', qr/^n\d \d+ \d+ 3 \Q$ml\E$/, 'three voters again') or diag($c);

# --- a peer that cannot take messages says why, and recovers ------------
# Messages go to a peer as calls of a statement prepared once per
# connection.  Point a follower's link to the leader (its answers go there)
# at a database without distx: the preparation fails, raft_status names the
# cause; point it back and the link works again.

my $to = q1($nodes{n1}, q{SELECT distx.leader()});
my $from = (grep { $_ ne $to } qw(n1 n2 n3))[0];
q1($nodes{$from}, qq{ALTER SERVER $to OPTIONS (SET dbname 'template1')});
q1($nodes{$to}, q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE query LIKE '%distx._raft_deliver%' AND pid <> pg_backend_pid()});
ok($nodes{$from}->poll_query_until('postgres', qq{
SELECT last_error LIKE '%distx%does not exist%' FROM distx.raft_status WHERE node = '$to'}),
	"a link to a database without distx: raft_status on $from names the cause");
q1($nodes{$from}, qq{ALTER SERVER $to OPTIONS (SET dbname 'postgres')});
ok($nodes{$from}->poll_query_until('postgres', qq{
SELECT connected AND last_error IS NULL FROM distx.raft_status WHERE node = '$to'}),
	'pointed back, the link works again');
$c = converged_all(qw(n1 n2 n3));
like($c // '', qr/^n\d \d+ \d+ 3 /, 'and the three members agree') or diag($c);

$nodes{$_}->stop foreach qw(n1 n2 n3);
done_testing();
