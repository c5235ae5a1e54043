
# The Raft worker stops loudly when its storage fails: a follower whose
# pg_distx directory cannot be written (chmod 0500) must persist a new term
# or vote when the leader dies, fails with FATAL instead of answering, and
# so the cluster elects nobody (the third node cannot win alone) until the
# directory is writable again; then a leader is elected and everything
# agrees.  Safety over liveness: no vote leaves a node before it is durable.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;
use DistxCluster;

my $conf = q{
distx.raft_election_timeout = '300ms'
distx.raft_heartbeat_interval = '30ms'
};
my $nodes = new_cluster_nodes([qw(n1 n2 n3)], conf => $conf);
my %n = %$nodes;

q1($n{n1}, q{SELECT distx.cluster_init()});
q1($n{n1}, q{SELECT distx.cluster_add_node('n2')});
q1($n{n1}, q{SELECT distx.cluster_add_node('n3')});
ok(defined converged($nodes, qw(n1 n2 n3)), 'three nodes agree');

my $leader = wait_leader($nodes, undef, qw(n1 n2 n3));
my ($broken, $healthy) = grep { $_ ne $leader } qw(n1 n2 n3);
my $dir = $n{$broken}->data_dir . '/pg_distx';
my $off = log_size($n{$broken});

chmod 0500, $dir or die "chmod: $!";
kill9_postmaster_and_restart($n{$leader}, no_restart => 1);

ok($n{$broken}->wait_for_log(qr/FATAL:  distx raft: could not (write the Raft hard state|append to the Raft log|fsync)/, $off),
	"$broken stops with FATAL when it cannot persist its term or vote");
usleep(2_000_000);
is(q1($n{$healthy}, q{SELECT coalesce(distx.leader(), '-')}), '-',
	"$healthy cannot win alone: no leader while $broken cannot persist");
like(slurp_file($n{$broken}->logfile, $off), qr/Raft worker stops rather than go on with state that is not durable/,
	'the error says why it stopped');
my $t0 = time();
like(psql_error($n{$healthy}, 'postgres',
	q{SET distx.raft_proposal_timeout = '1s'; SELECT distx._cluster_decide('o_', '7', true, false, '{p1}')}),
	qr/(has no leader|timed out waiting for the distx cluster)/,
	'a change proposed without a leader fails with a clear error');
ok(time() - $t0 < 5, 'after the proposal timeout');

chmod 0700, $dir or die "chmod: $!";
my $new = wait_leader($nodes, $leader, $broken, $healthy);
ok(defined $new, "once $broken can write again, a new leader is elected");

$n{$leader}->start;
ok(defined converged($nodes, qw(n1 n2 n3)), 'and all three agree again');

$n{$_}->stop foreach qw(n1 n2 n3);
done_testing();
