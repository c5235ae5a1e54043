
# distx 2PC through crashes: at every step of the protocol (the fault points
# before_prepare, between_prepares, after_prepares, after_decision,
# between_commit_prepared) kill -9 the coordinator backend, the coordinator
# postmaster, or a participant postmaster; after restart and recovery every
# participant and the coordinator's local write are all committed or all
# rolled back, no distx prepared transaction remains, and prepared
# transactions that are not this coordinator's are never touched.

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
my %parts = (p1 => $p1, p2 => $p2);

foreach my $p ($p1, $p2)
{
	$p->safe_psql('postgres', 'CREATE TABLE t (id int PRIMARY KEY)');
}
add_node($coord, 'p1', $p1);
add_node($coord, 'p2', $p2);
$coord->safe_psql('postgres', 'CREATE TABLE ledger (id int PRIMARY KEY)');

# Prepared transactions recovery must leave alone: a plain one, one that
# looks like distx's but comes from another origin, and one of this origin's
# system but another coordinator database.
my $prefix = $coord->safe_psql('postgres', 'SELECT distx.gid_prefix()');
my ($sysid, $dboid) = $prefix =~ /^distx_(\d+)_(\d+)_$/
  or die "unexpected gid prefix $prefix";
my $p1oid = $coord->safe_psql('postgres', q{SELECT oid FROM pg_foreign_server WHERE srvname = 'p1'});
my @foreign_gids = ('manual_keep', "distx_1_${dboid}_5_$p1oid",
	"distx_${sysid}_" . ($dboid + 1000) . "_5_$p1oid");
$p1->safe_psql('postgres', 'CREATE TABLE keep (x text)');
foreach my $g (@foreign_gids)
{
	$p1->safe_psql('postgres', qq{
BEGIN; INSERT INTO keep VALUES ('$g'); PREPARE TRANSACTION '$g';});
}
$DistxTest::gid_cond = gid_prefix_cond($coord);

# outcome of transfer $id: "p1 p2 ledger" row counts
sub outcome
{
	my ($id) = @_;
	return join(' ',
		$p1->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id"),
		$p2->safe_psql('postgres', "SELECT count(*) FROM t WHERE id = $id"),
		$coord->safe_psql('postgres', "SELECT count(*) FROM ledger WHERE id = $id"));
}

# Who holds a prepared gid of this coordinator now: "p1", "p2", "p1 p2", "".
sub holders
{
	return join(' ', grep { distx_prepared_count($parts{$_}) > 0 } sort keys %parts);
}

my $id = 0;

# The node the protocol acts on first: PREPARE and COMMIT PREPARED go out in
# the same order in every transaction over the same nodes (the order of the
# session's connection cache).  Learnt at the first between_prepares stop,
# where it is the only node prepared (recovery leaves a running transaction
# alone, whereas past the commit point it may finish the second node
# itself).
my $first_node;

# Run one transfer that stops at $point, crash $what there, restart, and
# check the outcome.
sub crash_case
{
	my ($point, $what, %opts) = @_;
	my $name = "$point/$what";
	my $sleep = $what =~ /^participant/ ? 1500 : 30000;
	my $action = $opts{action} // 'sleep';
	my $extra = $opts{extra} // '';

	$id++;
	my $off = log_size($coord);
	my $h = start_psql($coord, qq{
SET distx.fault_point = '$point';
SET distx.fault_action = '$action';
SET distx.fault_sleep = $sleep;
$extra
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES ($id)');
SELECT distx.exec('p2', 'INSERT INTO t VALUES ($id)');
INSERT INTO ledger VALUES ($id);
COMMIT;
\\echo committed
});
	my $pid = wait_for_fault($coord, $point, $off, $h);

	# which participant the protocol has already acted on
	my $held = holders();
	$first_node //= $held if $point eq 'between_prepares';
	my $victim;
	my $expected;
	if ($what eq 'backend')
	{
		kill9_backend_and_wait($coord, $pid);
	}
	elsif ($what eq 'exit')
	{
		# the backend left with _exit(1) by itself
		wait_crash_restart($coord, $off);
	}
	elsif ($what eq 'postmaster')
	{
		kill9_postmaster_and_restart($coord);
	}
	else
	{
		# participant, participant_first or participant_second: the first
		# is the node that was already prepared (between_prepares) or
		# already committed (between_commit_prepared)
		my $first = $first_node;
		$victim = 'p1';
		$victim = $first if $what eq 'participant_first';
		($victim) = grep { $_ ne $first } sort keys %parts
		  if $what eq 'participant_second';
		# the session goes on while the node is down
		kill9_postmaster_and_restart($parts{$victim}, no_restart => 1);
	}

	my ($rc, $stdout, $stderr) = finish_psql($h);
	$parts{$victim}->start if defined $victim;

	ok(wait_no_distx_prepared($p1, $p2), "$name: no distx prepared transaction remains");
	my $out = outcome($id);
	ok($out eq '0 0 0' || $out eq '1 1 1', "$name: all or nothing (p1 p2 local: $out)");

	# the outcome the protocol dictates
	if ($point =~ /^(after_decision|between_commit_prepared)$/)
	{
		$expected = '1 1 1';
	}
	elsif ($what =~ /^(backend|postmaster|exit)$/ || $point eq 'before_prepare')
	{
		$expected = '0 0 0';
	}
	elsif ($point eq 'after_prepares')
	{
		$expected = '1 1 1';
	}
	elsif ($point eq 'between_prepares')
	{
		# committed iff the node that went down had already prepared
		$expected = $victim eq $held ? '1 1 1' : '0 0 0';
	}
	is($out, $expected, "$name: outcome is the one the protocol dictates");

	# what the session was told agrees with what happened
	if ($stdout =~ /committed/)
	{
		is($out, '1 1 1', "$name: COMMIT succeeded and the transfer is committed");
	}
	elsif ($stderr =~ /ERROR:/)
	{
		is($out, '0 0 0', "$name: COMMIT failed and the transfer is rolled back");
	}
	else
	{
		like($stderr, qr/server closed the connection|connection to server was lost|terminat/,
			"$name: the session lost its connection");
	}
	ok(wait_decisions_empty($coord), "$name: the decision is forgotten");
	# a node that was down is tried again by recovery, which closes its
	# circuit once it answers
	ok($coord->poll_query_until('postgres',
		q{SELECT bool_and(circuit = 'closed') FROM distx.node_health}),
		"$name: every circuit is closed again");
	note "$name: stdout: $stdout; stderr: $stderr";
	return;
}

my $t0 = time();
foreach my $point (qw(before_prepare between_prepares after_prepares
	after_decision between_commit_prepared))
{
	my @modes = ('backend', 'postmaster');
	if ($point =~ /^between_/)
	{
		push @modes, 'participant_first', 'participant_second';
	}
	else
	{
		push @modes, 'participant';
	}
	foreach my $what (@modes)
	{
		crash_case($point, $what);
	}
}

# the decision survives synchronous_commit = off: the backend exits right
# after the local commit
crash_case('after_decision', 'exit', action => 'exit',
	extra => 'SET synchronous_commit = off;');
crash_case('after_prepares', 'exit', action => 'exit');

note sprintf('crash cases took %.1f s', time() - $t0);

# a distx transaction prepared while its coordinator transaction still runs
# is left alone by recovery (it may be committing right now)
{
	$id++;
	my $off = log_size($coord);
	my $h = start_psql($coord, qq{
SET distx.fault_point = 'after_prepares';
SET distx.fault_sleep = 3000;
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES ($id)');
SELECT distx.exec('p2', 'INSERT INTO t VALUES ($id)');
INSERT INTO ledger VALUES ($id);
COMMIT;
\\echo committed
});
	$coord->wait_for_log(qr/distx fault point "after_prepares" reached/, $off);
	my $r = $coord->safe_psql('postgres', 'SELECT * FROM distx.recover()');
	my ($committed, $rolled_back, $in_doubt) = split /\|/, $r;
	is("$committed $rolled_back", '0 0', 'recover() does not resolve a running transaction');
	is($in_doubt, 2, 'recover() reports its gids as in doubt');
	is($coord->safe_psql('postgres',
		q{SELECT string_agg(node || ':' || in_doubt, ',' ORDER BY node) FROM distx.node_health}),
		'p1:1,p2:1', 'distx.node_health counts the in-doubt gids per node');
	is($coord->safe_psql('postgres',
		q{SELECT participants, participant_states FROM distx.transactions WHERE pid IS NOT NULL}),
		'{p1,p2}|{prepared,prepared}', 'distx.transactions shows the prepared participants');
	my ($rc, $stdout) = finish_psql($h);
	like($stdout, qr/committed$/, 'the transaction commits');
	is(outcome($id), '1 1 1', 'and is committed everywhere');
}

# the coordinator postmaster dies while a session waits for a COMMIT
# PREPARED (its participant backend is stopped): the session must not try to
# abort its committed transaction (a PANIC), and recovery finishes the job
{
	$id++;
	my $off = log_size($coord);
	my $h = start_psql($coord, qq{
SET distx.fault_point = 'between_commit_prepared';
SET distx.fault_sleep = 1000;
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES ($id)');
SELECT distx.exec('p2', 'INSERT INTO t VALUES ($id)');
INSERT INTO ledger VALUES ($id);
COMMIT;
\\echo committed
});
	my $pid = wait_for_fault($coord, 'between_commit_prepared', $off, $h);
	# the session's backend on the second node has not had its COMMIT
	# PREPARED yet (recovery may have committed the gid there meanwhile, on
	# a connection of its own)
	my ($second) = grep { $_ ne $first_node } sort keys %parts;
	my $stopped = $parts{$second}->safe_psql('postgres', q{
SELECT pid FROM pg_stat_activity
WHERE application_name = 'distx' AND query LIKE 'PREPARE TRANSACTION%'});
	isnt($stopped, '', 'postmaster death while waiting for COMMIT PREPARED: the participant backend is found');
	kill('STOP', $stopped);
	ok($coord->poll_query_until('postgres',
		"SELECT wait_event = 'Extension' FROM pg_stat_activity WHERE pid = $pid"),
		'postmaster death while waiting for COMMIT PREPARED: the session waits');
	kill9_postmaster_and_restart($coord);
	finish_psql($h);
	kill('CONT', $stopped);
	my $log = slurp_file($coord->logfile, $off);
	unlike($log, qr/PANIC/, 'postmaster death while waiting for COMMIT PREPARED: no PANIC');
	ok(wait_no_distx_prepared($p1, $p2),
		'postmaster death while waiting for COMMIT PREPARED: recovery resolves it');
	is(outcome($id), '1 1 1',
		'postmaster death while waiting for COMMIT PREPARED: committed everywhere');
}

# the prepared transactions that are not this coordinator's are untouched
is($p1->safe_psql('postgres',
	q{SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts}),
	join(',', sort @foreign_gids), 'foreign prepared transactions are never touched');
foreach my $g (@foreign_gids)
{
	$p1->safe_psql('postgres', "ROLLBACK PREPARED '$g'");
}

done_testing();
