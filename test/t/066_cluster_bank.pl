
# The bank test against a distx cluster: three distx nodes (n1..n3), each
# running transfers between accounts spread over two participant databases
# (p1, p2), while a loop kills (-9), pauses (SIGSTOP/SIGCONT) and restarts
# nodes, the leader and followers, and removes a member and adds it back,
# for DISTX_BANK_SECONDS (default 150).
# Half the transfers keep their ledger row on the coordinator that ran them
# (a conditional decision), half on p1 (an unconditional one).  Afterwards:
# nothing is left prepared, the total balance is unchanged, every transfer
# whose COMMIT was acknowledged to its client is there with both legs, and
# no leg exists without its ledger row.

use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;
use DistxCluster;

my $seconds = $ENV{DISTX_BANK_SECONDS} // 150;
my $naccounts = 20;
my $initial = 1000;
my @names = qw(n1 n2 n3);
my $t_start = time();

my $conf = q{
distx.raft_election_timeout = '500ms'
distx.raft_heartbeat_interval = '50ms'
};
my $nodes = new_cluster_nodes(\@names, conf => $conf);
my %n = %$nodes;
my $p1 = new_participant('p1');
my $p2 = new_participant('p2');
my @banks = ($p1, $p2);

foreach my $k (0 .. 1)
{
	$banks[$k]->safe_psql('postgres', qq{
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE history (tid bigint, account int, delta bigint NOT NULL,
                      PRIMARY KEY (tid, account));
CREATE TABLE ledger (tid bigint PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount int NOT NULL);
INSERT INTO accounts SELECT i, $initial FROM generate_series(0, $naccounts - 1) i WHERE i % 2 = $k;
});
}

# Account i lives on p(i % 2 + 1).  The lower account is updated first, so
# that transfers never wait for each other in a cycle across nodes.
foreach my $name (@names)
{
	add_node($n{$name}, 'p1', $p1);
	add_node($n{$name}, 'p2', $p2);
	q1($n{$name}, q{
CREATE TABLE ledger (tid bigint PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount int NOT NULL);
CREATE FUNCTION transfer(t bigint, a int, b int, amt int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	acct int[];
	delta int[];
	sql text := 'WITH u AS (UPDATE accounts SET balance = balance + $1::bigint WHERE id = $2::int RETURNING id) '
	            'INSERT INTO history SELECT $3::bigint, id, $1::bigint FROM u';
BEGIN
	IF t % 2 = 0 THEN
		INSERT INTO ledger VALUES (t, a, b, amt);
	ELSE
		PERFORM distx.exec('p1', 'INSERT INTO ledger VALUES ($1::bigint, $2::int, $3::int, $4::int)',
		                   t::text, a::text, b::text, amt::text);
	END IF;
	IF a < b THEN
		acct := ARRAY[a, b]; delta := ARRAY[-amt, amt];
	ELSE
		acct := ARRAY[b, a]; delta := ARRAY[amt, -amt];
	END IF;
	FOR i IN 1 .. 2 LOOP
		IF distx.exec('p' || (acct[i] % 2 + 1), sql,
		              delta[i]::text, acct[i]::text, t::text) <> 1 THEN
			RAISE EXCEPTION 'account % not found', acct[i];
		END IF;
	END LOOP;
END $$;
});
}

q1($n{n1}, q{SELECT distx.cluster_init()});
q1($n{n1}, q{SELECT distx.cluster_add_node('n2')});
q1($n{n1}, q{SELECT distx.cluster_add_node('n3')});
ok(defined converged($nodes, @names), 'three nodes agree');

q1($n{n2}, 'SELECT transfer(1, 0, 1, 10)');
is($p1->safe_psql('postgres', 'SELECT balance FROM accounts WHERE id = 0') . ' '
	  . $p2->safe_psql('postgres', 'SELECT balance FROM accounts WHERE id = 1'),
	($initial - 10) . ' ' . ($initial + 10), 'a transfer through a follower moves the money');

# ---------------------------------------------------------------------------
# the load: per distx node, a loop of psql sessions running numbered
# transfers, one per transaction; a transfer is acknowledged (written to the
# loop's log) only when its COMMIT succeeded
# ---------------------------------------------------------------------------
my $dir = $PostgreSQL::Test::Utils::tmp_check;
# tmp_check is shared by the TAP files of one run (030 leaves a stop_load)
my $stopfile = "$dir/stop_cluster_bank_load";
unlink $stopfile;
my @loops;
srand(42);
foreach my $i (0 .. $#names)
{
	my $node = $n{ $names[$i] };
	my $chunks = "$dir/chunks_$i";
	mkdir $chunks;
	foreach my $c (0 .. 599)
	{
		open(my $fh, '>', "$chunks/$c.sql") or die;
		print $fh "SET statement_timeout = '10s';\n";
		foreach my $k (0 .. 49)
		{
			my $tid = ($i + 1) * 1_000_000 + $c * 100 + $k;
			my $a = int(rand($naccounts));
			my $b = ($a + 1 + int(rand($naccounts - 1))) % $naccounts;
			my $amt = 1 + int(rand(100));
			print $fh "SELECT transfer($tid, $a, $b, $amt);\n\\if :ERROR\n\\else\n\\echo $tid\n\\endif\n";
		}
		close $fh;
	}
	my $log = "$dir/acked_$i.log";
	my $cmd = qq{
for c in \$(seq 0 599); do
	[ -e '$stopfile' ] && break
	PGAPPNAME=bank_load psql -X -q -h '@{[$node->host]}' -p @{[$node->port]} -d postgres -f '$chunks/'\$c.sql >> '$log' 2>> '$dir/errors_$i.log'
	sleep 0.05
done};
	push @loops, IPC::Run::start([ 'bash', '-c', $cmd ], '<', '/dev/null');
}

# ---------------------------------------------------------------------------
# the faults, until the time is up
# ---------------------------------------------------------------------------
sub pause { usleep(int($_[0] * 1_000_000)); }

sub current_leader
{
	my $l = wait_leader($nodes, undef, @names);
	return $l // $names[0];
}

my @actions = (
	sub {
		my $l = current_leader();
		note "kill -9 of the leader $l, down 2 s";
		kill9_postmaster_and_restart($n{$l}, no_restart => 1);
		pause(2);
		$n{$l}->start;
	},
	sub {
		my $l = current_leader();
		my @f = grep { $_ ne $l } @names;
		my $v = $f[ int(rand(@f)) ];
		note "SIGSTOP of follower $v for 2 s";
		signal_tree($n{$v}, 'STOP');
		pause(2);
		signal_tree($n{$v}, 'CONT');
	},
	sub {
		my $l = current_leader();
		note "SIGSTOP of the leader $l for 2 s";
		signal_tree($n{$l}, 'STOP');
		pause(2);
		signal_tree($n{$l}, 'CONT');
	},
	sub {
		my $l = current_leader();
		my @f = grep { $_ ne $l } @names;
		my $v = $f[ int(rand(@f)) ];
		note "kill -9 of follower $v, restarted at once";
		kill9_postmaster_and_restart($n{$v});
	},
	sub {
		my $v = $names[ int(rand(@names)) ];
		my $pid = q1($n{$v}, q{SELECT pid FROM pg_stat_activity WHERE application_name = 'bank_load'
			ORDER BY random() LIMIT 1});
		return if $pid eq '';
		note "kill -9 of a transfer's backend on $v";
		kill9_backend_and_wait($n{$v}, $pid);
	},
	sub {
		# a member leaves and comes back while transfers run through all
		# three, itself included: the change waits for its transactions in
		# flight and pauses its new ones; in between it runs them as a
		# single server, and joins only once none of those is in doubt
		my $l = current_leader();
		my @f = grep { $_ ne $l } @names;
		my $k = int(rand(@f));
		my $v = $f[$k];
		note "removing member $v, then adding it back";
		ok(retry_sql($n{$l}, "SELECT distx.cluster_remove_node('$v')"), "$v is removed");
		my $deadline = time() + 30;
		usleep(100_000) until q1($n{$v}, 'SELECT count(*) FROM distx.raft_status') eq '0' || time() > $deadline;
		ok(retry_sql($n{ $f[1 - $k] }, "SELECT distx.cluster_add_node('$v')"), "$v is added back");
	},
	sub {
		note "kill -9 of participant p2, down 1 s";
		kill9_postmaster_and_restart($p2, no_restart => 1);
		pause(1);
		$p2->start;
	});

my $faults = 0;
pause(3);
while (time() - $t_start < $seconds)
{
	$actions[ $faults % @actions ]->();
	$faults++;
	pause(1.5 + rand(2));
}

open(my $sfh, '>', $stopfile) or die;
close $sfh;
$_->finish foreach @loops;
note "$faults faults injected";

# ---------------------------------------------------------------------------
# afterwards
# ---------------------------------------------------------------------------
ok(defined converged($nodes, @names), 'the three nodes agree again');
ok(wait_no_distx_prepared(@banks), 'the coordinator resolved every prepared transaction');
is(join(' ', map { $_->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts') } @banks),
	'0 0', 'nothing is left prepared on the participants');

# resolved decisions older than the forget age (60 s) are forgotten by the
# leader's recovery, many to a Raft entry, on every member (the transfers
# ran for longer than that, so without forgetting the first ones would stay)
my $old = q{SELECT count(*) FROM distx.cluster_decisions WHERE decided_at < now() - interval '75 s'};
my $forgot = 0;
foreach my $try (1 .. 20)
{
	my $l = current_leader();
	my ($rc) = $n{$l}->psql('postgres', 'SELECT distx.recover()');
	if ($rc == 0 && q1($n{$l}, $old) eq '0')
	{
		$forgot = 1;
		last;
	}
	pause(0.5);
}
ok($forgot, 'after a recovery pass on the leader none is left');
ok(defined converged($nodes, @names), 'the members agree after forgetting');
is(join(' ', map { q1($n{$_}, $old) } @names), '0 0 0', 'and none is left on any member');

my $total = 0;
$total += $_->safe_psql('postgres', 'SELECT sum(balance) FROM accounts') foreach @banks;
is($total, $naccounts * $initial, 'the total balance is unchanged');

my %ledger;
foreach my $src ((map { $n{$_} } @names), $p1)
{
	foreach my $row (split /\n/, $src->safe_psql('postgres', 'SELECT tid, src, dst, amount FROM ledger'))
	{
		my ($tid, $s, $d, $amt) = split /\|/, $row;
		$ledger{$tid} = { $s => -$amt, $d => $amt };
	}
}
my %history;
my %from_history;
foreach my $b (@banks)
{
	foreach my $row (split /\n/, $b->safe_psql('postgres', 'SELECT tid, account, delta FROM history'))
	{
		my ($tid, $acct, $delta) = split /\|/, $row;
		$history{$tid}{$acct} = $delta;
		$from_history{$acct} += $delta;
	}
}
my $fmt = sub { my $h = shift; join(',', map { "$_=$h->{$_}" } sort keys %$h) };
my @half = grep { !exists $history{$_} || $fmt->($ledger{$_}) ne $fmt->($history{$_}) } keys %ledger;
is(scalar(@half), 0, 'every ledger row has its debit and credit on the nodes (' . scalar(keys %ledger) . ' transfers)')
  or diag "incomplete: @half[0 .. ($#half < 9 ? $#half : 9)]";
my @orphans = grep { !exists $ledger{$_} } keys %history;
is(scalar(@orphans), 0, 'no debit or credit without its ledger row')
  or diag "orphans: @orphans[0 .. ($#orphans < 9 ? $#orphans : 9)]";

my @acked;
foreach my $i (0 .. $#names)
{
	my $log = -e "$dir/acked_$i.log" ? slurp_file("$dir/acked_$i.log") : '';
	push @acked, grep { /^\d+$/ } split /\n/, $log;
}
if (@acked < 100)
{
	foreach my $i (0 .. $#names)
	{
		my $err = -e "$dir/errors_$i.log" ? slurp_file("$dir/errors_$i.log") : '(no error log)';
		diag("loop $i errors, first lines:\n" . join("\n", (split /\n/, $err)[0 .. 9]));
	}
}
my @lost = grep { !exists $ledger{$_} } @acked;
is(scalar(@lost), 0, 'every acknowledged transfer is there (' . scalar(@acked) . ' acknowledged)')
  or diag "lost: @lost[0 .. ($#lost < 9 ? $#lost : 9)]";
my %kinds;
$kinds{ $_ % 2 ? 'remote ledger' : 'local ledger' }++ foreach @acked;
cmp_ok($kinds{'local ledger'} // 0, '>', 50, 'transfers with a local ledger row (conditional decisions) committed');
cmp_ok($kinds{'remote ledger'} // 0, '>', 50, 'transfers with the ledger row on p1 (unconditional decisions) committed');

my @wrong;
foreach my $b (@banks)
{
	foreach my $row (split /\n/, $b->safe_psql('postgres', 'SELECT id, balance FROM accounts'))
	{
		my ($acct, $bal) = split /\|/, $row;
		push @wrong, $acct if $bal != $initial + ($from_history{$acct} // 0);
	}
}
is(scalar(@wrong), 0, 'every balance is its initial balance plus its history');

note sprintf('cluster bank test: %d acknowledged, %d in the ledgers, %d faults, %.0f s',
	scalar(@acked), scalar(keys %ledger), $faults, time() - $t_start);

done_testing();
