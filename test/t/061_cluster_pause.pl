
# A paused leader: SIGSTOP of the leader's whole server for longer than the
# election timeout, then SIGCONT.  The others elect a new leader; the old
# one, once resumed, never again claims to act as the coordinator in its old
# term (distx.raft_status.coordinator, which recovery and sagas will obey)
# and follows the new leader.  Also: only the leader acts as coordinator,
# and a lone member acts as the coordinator of its one-node cluster.

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

q1($n{n1}, q{SELECT distx.cluster_init()});
ok($n{n1}->poll_query_until('postgres',
	q{SELECT coordinator FROM distx.raft_status WHERE is_self}),
	'the only member of a one-node cluster acts as the coordinator');
q1($n{n1}, q{SELECT distx.cluster_add_node('n2')});
q1($n{n1}, q{SELECT distx.cluster_add_node('n3')});
my $c = converged($nodes, qw(n1 n2 n3));
ok(defined $c, 'three nodes agree');

my $leader = wait_leader($nodes, undef, qw(n1 n2 n3));
my @followers = grep { $_ ne $leader } qw(n1 n2 n3);
ok($n{$leader}->poll_query_until('postgres',
	q{SELECT coordinator FROM distx.raft_status WHERE is_self}),
	"the leader $leader acts as the coordinator");
is(q1($n{$_}, q{SELECT coordinator FROM distx.raft_status WHERE is_self}), 'f',
	"follower $_ does not") foreach @followers;
my $old_term = q1($n{$leader}, q{SELECT term FROM distx.raft_status WHERE is_self});

# --- SIGSTOP of the whole leader ---------------------------------------------

my $t0 = time();
ok(signal_tree($n{$leader}, 'STOP') > 1, "SIGSTOP to every process of $leader");
my $new = wait_leader($nodes, $leader, @followers);
ok(defined $new, 'the others elect a new leader');
note(sprintf('new leader %s after %.2f s', $new // '-', time() - $t0));
my $new_term = q1($n{$new}, q{SELECT term FROM distx.raft_status WHERE is_self});
ok($new_term > $old_term, 'in a higher term');
ok($n{$new}->poll_query_until('postgres',
	q{SELECT coordinator FROM distx.raft_status WHERE is_self}),
	'the new leader acts as the coordinator');
# stay stopped well past the election timeout
usleep(1_500_000);
signal_tree($n{$leader}, 'CONT');

# from the moment it resumes: never the coordinator in its old term
my $claims = 0;
my $polls = 0;
my $deadline = time() + 5;
while (time() < $deadline)
{
	my ($ret, $out) = $n{$leader}->psql('postgres',
		q{SELECT coordinator || ' ' || term || ' ' || role FROM distx.raft_status WHERE is_self});
	next if $ret != 0;
	$polls++;
	$claims++ if $out =~ /^true $old_term / || $out =~ /^t $old_term /;
	last if $out =~ /^(f|false) \d+ follower$/ && $polls > 5;
}
ok($polls > 0, "the resumed $leader answers");
is($claims, 0, 'and never claims to be the coordinator in its old term');
ok($n{$leader}->poll_query_until('postgres',
	qq{SELECT role = 'follower' AND leader = '$new' AND term >= $new_term AND NOT coordinator
	   FROM distx.raft_status WHERE is_self}),
	'it follows the new leader');
$c = converged($nodes, qw(n1 n2 n3));
ok(defined $c, 'and the three agree again');
is(q1($n{$_}, q{SELECT count(*) FROM distx.raft_status WHERE coordinator}),
	$_ eq $new ? '1' : '0', "exactly the leader acts as coordinator (seen from $_)")
  foreach qw(n1 n2 n3);

# --- a hung member can be removed ------------------------------------------

# A member stopped with SIGSTOP accepts connections (the kernel does) but
# never answers: removing it does not wait for it (a NOTICE and a WARNING
# say so), and it can be added back once it runs again.
my $hung = (grep { $_ ne $new } qw(n1 n2 n3))[0];
signal_tree($n{$hung}, 'STOP');
my $t1 = time();
my ($ret, $out, $err) = $n{$new}->psql('postgres', "SELECT distx.cluster_remove_node('$hung')");
is($ret, 0, "a hung member ($hung) is removed") or diag($err);
like($err, qr/distx node "$hung" cannot be reached: it is removed without waiting/,
	'without waiting for its transactions, with a NOTICE');
note(sprintf('removed in %.2f s', time() - $t1));
signal_tree($n{$hung}, 'CONT');
my @rest = grep { $_ ne $hung } qw(n1 n2 n3);
ok(defined converged($nodes, @rest), 'the other two agree');
q1($n{$new}, "SELECT distx.cluster_add_node('$hung')");
ok(defined converged($nodes, qw(n1 n2 n3)), 'added back, the three agree again');

$n{$_}->stop foreach qw(n1 n2 n3);
done_testing();
