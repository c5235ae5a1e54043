# The foundation: loading with and without shared_preload_libraries, and the
# background worker's life cycle (starts, exits cleanly on SIGTERM and
# postmaster death, restarts after a crash).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# Without preloading: the types work, features that need the preload say so.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION distx');
is($plain->safe_psql('postgres',
	q{SELECT distx.vclock_merge('{"a": 1}', '{"b": 2}')::text}),
	'{"a": 1, "b": 2}', 'types work without preloading');
my ($ret, $out, $err) = $plain->psql('postgres',
	q{SELECT distx.exec('x', 'SELECT 1')});
isnt($ret, 0, 'distx.exec fails without preloading');
like($err, qr/requires distx to be loaded via shared_preload_libraries/,
	'the error says what is missing');
like($err, qr/HINT:.*shared_preload_libraries/, 'and gives a hint');
($ret, $out, $err) = $plain->psql('postgres', q{SELECT distx.hlc_now()},
	on_error_stop => 0);
like($err, qr/shared_preload_libraries/, 'hlc_now() needs the preload too');
$plain->stop;

# With preloading: the worker starts, and stops cleanly.
my $node = PostgreSQL::Test::Cluster->new('preloaded');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'distx'
distx.database = 'postgres'
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION distx');
ok($node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'distx coordinator'}),
	'the worker runs');

# SIGTERM: the worker exits cleanly (and the postmaster restarts it later)
my $pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'distx coordinator'});
my $log_offset = -s $node->logfile;
kill 'TERM', $pid;
ok($node->wait_for_log(qr/distx coordinator shutting down/, $log_offset),
	'SIGTERM stops the worker cleanly');
ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'distx coordinator' AND pid <> $pid}),
	'the worker is started again');

# a crash of the worker: the postmaster resets and the worker comes back
$pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'distx coordinator'});
kill 'KILL', $pid;
ok($node->poll_query_until('postgres',
	qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'distx coordinator' AND pid <> $pid}),
	'the worker is back after kill -9');

# postmaster death: the worker exits on its own
$pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'distx coordinator'});
kill 'KILL', $node->{_pid};
my $gone = 0;
for (1 .. 100)
{
	if (!kill(0, $pid)) { $gone = 1; last; }
	select(undef, undef, undef, 0.1);
}
ok($gone, 'the worker exits when the postmaster dies');
$node->{_pid} = undef;
# let the other backends go before the directory is removed
sleep 1;

done_testing();
