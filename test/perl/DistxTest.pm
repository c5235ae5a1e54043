
# DistxTest: helpers shared by the distx TAP tests (test/t/*.pl).
#
# A coordinator is a PostgreSQL::Test::Cluster with distx preloaded and the
# extension created in "postgres"; a participant is a plain server (no distx)
# listening on 127.0.0.1 with max_prepared_transactions > 0.  Nodes are
# declared on the coordinator as servers of the distx wrapper with a user
# mapping for PUBLIC.

package DistxTest;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(
  new_coordinator new_participant add_node
  gid_prefix_cond distx_prepared distx_prepared_count wait_no_distx_prepared
  wait_decisions_empty wait_accepting log_size
  start_psql finish_psql wait_for_fault kill9_postmaster_and_restart
  kill9_backend_and_wait wait_crash_restart psql_error retry_sql
);

# A coordinator: distx preloaded, the extension created in "postgres".
# Extra postgresql.conf lines may be passed in conf => '...'.
sub new_coordinator
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);

	$node->init(allows_streaming => 0);
	$node->append_conf('postgresql.conf', qq(
shared_preload_libraries = 'distx'
max_prepared_transactions = 10
distx.database = 'postgres'
distx.recovery_interval = '500ms'
distx.retry_base_delay = '20ms'
distx.retry_max_delay = '500ms'
distx.circuit_reset_timeout = '500ms'
distx.cleanup_timeout = '5s'
restart_after_crash = on
));
	$node->append_conf('postgresql.conf', $opts{conf}) if defined $opts{conf};
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION distx');
	return $node;
}

# A participant: a plain server on 127.0.0.1, without distx.
sub new_participant
{
	my ($name, %opts) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	my $mpx = defined $opts{max_prepared_transactions}
	  ? $opts{max_prepared_transactions} : 10;

	$node->init(allows_streaming => 0);
	$node->append_conf('postgresql.conf', qq(
listen_addresses = '127.0.0.1'
max_prepared_transactions = $mpx
));
	$node->append_conf('postgresql.conf', $opts{conf}) if defined $opts{conf};
	$node->start;
	return $node;
}

# Declare participant $part as node $name on the coordinator.
sub add_node
{
	my ($coord, $name, $part, %opts) = @_;
	my $db = $opts{dbname} // 'postgres';
	my $on = $opts{coord_db} // 'postgres';
	my $port = $part->port;

	$coord->safe_psql($on, qq(
CREATE SERVER $name FOREIGN DATA WRAPPER distx
  OPTIONS (host '127.0.0.1', port '$port', dbname '$db');
CREATE USER MAPPING FOR PUBLIC SERVER $name OPTIONS (user 'postgres');
));
	return;
}

# Which prepared transactions the helpers count as distx's: tests that keep
# look-alike gids of other origins on a node narrow this to the
# coordinator's prefix (see gid_prefix_cond).
our $gid_cond = q{gid LIKE 'distx\_%'};

sub gid_prefix_cond
{
	my ($coord) = @_;
	my $prefix = $coord->safe_psql('postgres', 'SELECT distx.gid_prefix()');
	return "starts_with(gid, '$prefix')";
}

# The distx gids prepared on a participant (all databases), sorted.
sub distx_prepared
{
	my ($part) = @_;
	my $out = $part->safe_psql('postgres',
		qq{SELECT string_agg(gid, ',' ORDER BY gid) FROM pg_prepared_xacts WHERE $gid_cond});
	return $out;
}

sub distx_prepared_count
{
	my ($part) = @_;
	return $part->safe_psql('postgres',
		qq{SELECT count(*) FROM pg_prepared_xacts WHERE $gid_cond});
}

# Wait until no distx gid is prepared on any of the participants.
sub wait_no_distx_prepared
{
	my (@parts) = @_;
	my $ok = 1;

	foreach my $p (@parts)
	{
		$ok &&= $p->poll_query_until('postgres',
			qq{SELECT count(*) = 0 FROM pg_prepared_xacts WHERE $gid_cond});
	}
	return $ok;
}

# Wait until recovery has forgotten every decision of the coordinator.
sub wait_decisions_empty
{
	my ($coord, $db) = @_;
	return $coord->poll_query_until($db // 'postgres',
		'SELECT count(*) = 0 FROM distx.decisions');
}

# Wait until a server accepts connections again (after a crash restart).
sub wait_accepting
{
	my ($node) = @_;
	return $node->poll_query_until('postgres', 'SELECT 1', '1');
}

sub log_size
{
	my ($node) = @_;
	return -s $node->logfile;
}

my $psql_count = 0;

# Start psql in the background on $sql (fed through stdin).  Returns a
# handle for finish_psql.
sub start_psql
{
	my ($node, $sql, %opts) = @_;
	my $h = { stdout => '', stderr => '' };
	my $db = $opts{dbname} // 'postgres';

	# IPC::Run feeds a scalar to stdin only while pumped: use a file
	my $file = "$PostgreSQL::Test::Utils::tmp_check/bg_" . ($psql_count++) . '.sql';
	open(my $fh, '>', $file) or die "could not write $file: $!";
	print $fh $sql;
	close $fh;

	local %ENV = %ENV;
	$ENV{PGHOST} = $node->host;
	$ENV{PGPORT} = $node->port;
	$h->{run} = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose',
		  '-d', $db, '-f', $file ],
		'<', '/dev/null', '>', \$h->{stdout}, '2>', \$h->{stderr},
		IPC::Run::timeout($opts{timeout} // 120));
	return $h;
}

# Wait until the session of background psql $h reaches fault point $point
# (logged after $off); returns the pid of its backend.  Dies, showing what
# psql said, if psql ends first.
sub wait_for_fault
{
	my ($node, $point, $off, $h) = @_;
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;

	while (time() < $deadline)
	{
		my $log = slurp_file($node->logfile, $off);
		return $1 if $log =~ /distx fault point "$point" reached in process (\d+)/;
		if (!$h->{run}->pumpable)
		{
			my ($rc, $out, $err) = finish_psql($h);
			die "psql ended before fault point $point (rc $rc): $out $err";
		}
		$h->{run}->pump_nb;
		usleep(20_000);
	}
	die "timed out waiting for fault point $point";
}

# Wait for a background psql; returns ($exit_code, $stdout, $stderr).
sub finish_psql
{
	my ($h) = @_;
	eval { $h->{run}->finish; };
	my $rc = $@ ? -1 : $h->{run}->result(0);
	my $out = $h->{stdout};
	chomp $out;
	return ($rc, $out, $h->{stderr});
}

# The pids of the children of a process.
sub _children
{
	my ($pid) = @_;
	my @kids;

	opendir(my $dh, '/proc') or return ();
	foreach my $d (readdir $dh)
	{
		next unless $d =~ /^\d+$/;
		open(my $fh, '<', "/proc/$d/stat") or next;
		my $stat = <$fh>;
		close $fh;
		next unless defined $stat;
		# pid (comm) state ppid ...
		if ($stat =~ /\)\s+\S+\s+(\d+)/ && $1 == $pid)
		{
			push @kids, $d;
		}
	}
	closedir $dh;
	return @kids;
}

# kill -9 of a postmaster; once all its children are gone, start it again
# unless no_restart is given.
sub kill9_postmaster_and_restart
{
	my ($node, %opts) = @_;
	my $pid = $node->{_pid};
	my @kids = _children($pid);
	my $deadline = time() + 60;

	$node->kill9;
	# the children notice the death of the postmaster and exit
	foreach my $k (@kids)
	{
		while (kill(0, $k) && time() < $deadline)
		{
			usleep(20_000);
		}
	}
	while (kill(0, $pid) && time() < $deadline)
	{
		usleep(20_000);
	}
	return if $opts{no_restart};
	$node->start;
	return;
}

# kill -9 of one backend: the postmaster (restart_after_crash = on) resets
# every process and runs crash recovery; wait until it accepts connections.
# A backend that ended on its own just before the signal (a short session
# picked from pg_stat_activity) causes no crash: then returns 0 at once, or
# once the postmaster's log shows no kill of it within 15 s.
sub kill9_backend_and_wait
{
	my ($node, $pid) = @_;
	my $off = log_size($node);
	my $deadline = time() + 15;

	return 0 unless kill(9, $pid);
	until (slurp_file($node->logfile, $off) =~ /\(PID $pid\) was terminated by signal 9/)
	{
		return 0 if time() > $deadline;
		usleep(50_000);
	}
	return wait_crash_restart($node, $off);
}

# After a backend died abnormally, wait until the postmaster has reset
# everything (logged after $off) and accepts connections again.
sub wait_crash_restart
{
	my ($node, $off) = @_;

	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $off);
	return wait_accepting($node);
}

# Run $sql on $node until it succeeds, for 60 s at most (a membership
# change, say, may have to wait until the nodes it needs are back); returns
# whether it did, with the last error as a diag if not.
sub retry_sql
{
	my ($node, $sql) = @_;
	my $deadline = time() + 60;

	while (1)
	{
		my ($ret, $out, $err) = $node->psql('postgres', $sql);
		return 1 if $ret == 0;
		if (time() > $deadline)
		{
			diag("$sql: $err");
			return 0;
		}
		note("$sql failed, trying again: $err");
		usleep(300_000);
	}
}

# Run $sql expecting an error; returns the verbose error text (with its
# SQLSTATE: "ERROR:  57014: canceling ...").
sub psql_error
{
	my ($node, $db, $sql, %opts) = @_;
	my ($ret, $stdout, $stderr) = $node->psql(
		$db, $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose', @{ $opts{extra_params} // [] } ],
		%{ $opts{psql} // {} });
	return $ret == 0 ? '' : $stderr;
}

1;
