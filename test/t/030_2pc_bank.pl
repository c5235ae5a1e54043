
# The bank test: accounts spread over three participant databases, transfers
# from several concurrent sessions of the coordinator (each a distributed
# transaction: a ledger row on the coordinator plus a debit and a credit on
# the nodes), while participants and the coordinator are killed with -9 and
# restarted.  Transfers may fail; money must never be created or destroyed:
# after recovery the total balance is unchanged, every ledger row has exactly
# its debit and credit on the nodes and no debit or credit exists without
# its ledger row, and nothing is left prepared.

use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;

my $naccounts = 30;
my $initial = 1000;
my $nsessions = 4;
my $t_start = time();

my $coord = new_coordinator('coord');
my @banks = map { new_participant("bank$_") } 0 .. 2;

foreach my $k (0 .. 2)
{
	my $b = $banks[$k];
	$b->safe_psql('postgres', qq{
CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL);
CREATE TABLE history (tid bigint, account int, delta bigint NOT NULL,
                      PRIMARY KEY (tid, account));
INSERT INTO accounts SELECT i, $initial FROM generate_series(0, $naccounts - 1) i WHERE i % 3 = $k;
});
	add_node($coord, "bank$k", $b);
}

# A transfer moves amt from a to b; account i lives on node bank(i % 3).
# The lower account is updated first, so that concurrent transfers never
# wait for each other in a cycle across nodes.
$coord->safe_psql('postgres', q{
CREATE TABLE ledger (tid bigserial PRIMARY KEY, src int NOT NULL, dst int NOT NULL,
                     amount int NOT NULL);
CREATE FUNCTION transfer(a int, b int, amt int) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	t bigint;
	acct int[];
	delta int[];
	sql text := 'WITH u AS (UPDATE accounts SET balance = balance + $1::bigint WHERE id = $2::int RETURNING id) '
	            'INSERT INTO history SELECT $3::bigint, id, $1::bigint FROM u';
BEGIN
	IF a = b THEN
		RETURN;
	END IF;
	INSERT INTO ledger (src, dst, amount) VALUES (a, b, amt) RETURNING tid INTO t;
	IF a < b THEN
		acct := ARRAY[a, b]; delta := ARRAY[-amt, amt];
	ELSE
		acct := ARRAY[b, a]; delta := ARRAY[amt, -amt];
	END IF;
	FOR i IN 1 .. 2 LOOP
		IF distx.exec('bank' || acct[i] % 3, sql,
		              delta[i]::text, acct[i]::text, t::text) <> 1 THEN
			RAISE EXCEPTION 'account % not found', acct[i];
		END IF;
	END LOOP;
END $$;
});

# sanity: a transfer works and is atomic
$coord->safe_psql('postgres', 'SELECT transfer(1, 2, 10)');
is($banks[1]->safe_psql('postgres', 'SELECT balance FROM accounts WHERE id = 1') . ' '
	  . $banks[2]->safe_psql('postgres', 'SELECT balance FROM accounts WHERE id = 2'),
	($initial - 10) . ' ' . ($initial + 10), 'a single transfer moves the money');

# ---------------------------------------------------------------------------
# the load: $nsessions loops of pgbench, each restarted whenever it stops
# (a crash of the coordinator ends every session); some sessions stretch a
# step of the protocol so that crashes often find transactions in doubt, one
# does not wait for the answers to COMMIT PREPARED
# ---------------------------------------------------------------------------
my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $script = "$dir/transfer.sql";
open(my $fh, '>', $script) or die;
print $fh qq{\\set a random(0, $naccounts - 1)
\\set b random(0, $naccounts - 1)
\\set amt random(1, 100)
SELECT transfer(:a, :b, :amt);
};
close $fh;

my $stopfile = "$dir/stop_load";
unlink $stopfile;
my @faults = (
	'-c distx.second_phase_wait=off',
	'-c distx.fault_point=after_prepares -c distx.fault_sleep=50',
	'-c distx.fault_point=between_commit_prepared -c distx.fault_sleep=50',
	'-c distx.fault_point=between_prepares -c distx.fault_sleep=50');
my @loops;
for my $i (0 .. $nsessions - 1)
{
	my $opts = "-c statement_timeout=10s " . $faults[$i % @faults];
	my $log = "$dir/pgbench_$i.log";
	my $cmd = qq{
while [ ! -e '$stopfile' ]; do
	PGAPPNAME=bank_load PGOPTIONS='$opts' pgbench -n -c 1 -T 2 -f '$script' -h '@{[$coord->host]}' -p @{[$coord->port]} postgres >> '$log' 2>&1
	sleep 0.1
done};
	push @loops, IPC::Run::start([ 'bash', '-c', $cmd ], '<', '/dev/null');
}

# and recovery passes on demand all the time, racing the transfers in
# flight: a pass must never roll back a transaction that is committing
my $recover_log = "$dir/recover.log";
push @loops, IPC::Run::start([ 'bash', '-c', qq{
while [ ! -e '$stopfile' ]; do
	psql -X -q -h '@{[$coord->host]}' -p @{[$coord->port]} -d postgres -c 'SELECT * FROM distx.recover()' >> '$recover_log' 2>&1
done} ], '<', '/dev/null');

sub pause { usleep(int($_[0] * 1_000_000)); }

# ---------------------------------------------------------------------------
# the crashes
# ---------------------------------------------------------------------------
sub kill_random_coord_backend
{
	my $pid = $coord->safe_psql('postgres', q{
SELECT pid FROM pg_stat_activity WHERE application_name = 'bank_load' ORDER BY random() LIMIT 1});
	if ($pid eq '')
	{
		note 'no pgbench backend to kill';
		return;
	}
	note "kill -9 of coordinator backend $pid";
	kill9_backend_and_wait($coord, $pid);
}

pause(3);
note 'kill -9 of bank0';
kill9_postmaster_and_restart($banks[0], no_restart => 1);
pause(1);
$banks[0]->start;
pause(2.5);
note 'kill -9 of the coordinator postmaster';
kill9_postmaster_and_restart($coord);
pause(2.5);
note 'kill -9 of bank1';
kill9_postmaster_and_restart($banks[1]);
pause(2.5);
kill_random_coord_backend();
pause(2.5);
note 'kill -9 of bank2 and of the coordinator postmaster';
kill9_postmaster_and_restart($banks[2], no_restart => 1);
kill9_postmaster_and_restart($coord, no_restart => 1);
$banks[2]->start;
$coord->start;
pause(2.5);
kill_random_coord_backend();
pause(2.5);
note 'kill -9 of bank0 again';
kill9_postmaster_and_restart($banks[0]);
pause(3);

# stop the load
open($fh, '>', $stopfile) or die;
close $fh;
$_->finish foreach @loops;

my $processed = 0;
for my $i (0 .. $nsessions - 1)
{
	my $log = slurp_file("$dir/pgbench_$i.log");
	$processed += $1 while $log =~ /number of transactions actually processed: (\d+)/g;
}
note "pgbench reported $processed transfers";

# ---------------------------------------------------------------------------
# after recovery: nothing prepared, money conserved, ledger and history agree
# ---------------------------------------------------------------------------
ok(wait_no_distx_prepared(@banks), 'recovery resolved every prepared transaction');
is(join(' ', map { $_->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts') } @banks),
	'0 0 0', 'nothing is left prepared on any node');
ok(wait_decisions_empty($coord), 'every decision is forgotten');

my $total = 0;
$total += $_->safe_psql('postgres', 'SELECT sum(balance) FROM accounts') foreach @banks;
is($total, $naccounts * $initial, 'the total balance is unchanged');

my %ledger;
foreach my $row (split /\n/,
	$coord->safe_psql('postgres', 'SELECT tid, src, dst, amount FROM ledger'))
{
	my ($tid, $src, $dst, $amt) = split /\|/, $row;
	$ledger{$tid} = { $src => -$amt, $dst => $amt };
}
my %history;
my %balance_from_history;
foreach my $b (@banks)
{
	foreach my $row (split /\n/,
		$b->safe_psql('postgres', 'SELECT tid, account, delta FROM history'))
	{
		my ($tid, $acct, $delta) = split /\|/, $row;
		$history{$tid}{$acct} = $delta;
		$balance_from_history{$acct} += $delta;
	}
}
my $ntransfers = scalar(keys %ledger);
my @half = grep {
	my $t = $_;
	!exists $history{$t}
	  || join(',', map { "$_=$ledger{$t}{$_}" } sort keys %{ $ledger{$t} })
	  ne join(',', map { "$_=$history{$t}{$_}" } sort keys %{ $history{$t} })
} keys %ledger;
is(scalar(@half), 0, "every committed ledger row has its debit and credit on the nodes ($ntransfers transfers)")
  or diag "incomplete transfers: @half[0 .. ($#half < 9 ? $#half : 9)]";
my @orphans = grep { !exists $ledger{$_} } keys %history;
is(scalar(@orphans), 0, 'no debit or credit on a node without its ledger row')
  or diag "orphan history: @orphans[0 .. ($#orphans < 9 ? $#orphans : 9)]";

my @wrong;
foreach my $k (0 .. 2)
{
	foreach my $row (split /\n/,
		$banks[$k]->safe_psql('postgres', 'SELECT id, balance FROM accounts'))
	{
		my ($acct, $bal) = split /\|/, $row;
		push @wrong, $acct
		  if $bal != $initial + ($balance_from_history{$acct} // 0);
	}
}
is(scalar(@wrong), 0, 'every balance is its initial balance plus its history');
cmp_ok($ntransfers, '>', 50, 'transfers did commit during the test');

note sprintf('bank test: %d transfers committed, %.1f s', $ntransfers, time() - $t_start);

done_testing();
