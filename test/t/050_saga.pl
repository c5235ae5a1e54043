
# distx sagas, run by the background worker: a 4-step saga over three
# databases that succeeds; one that fails at step 3 and compensates steps 2
# and 1 in that order; a compensation that fails twice and then succeeds;
# one that never succeeds (compensation_failed, then saga_retry once the
# cause is fixed); cancel, timeouts, a node that is down (delays, does not
# fail), concurrency, and the role steps run as.  Every check looks at the
# data, not only at the state tables.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);
use DistxTest;

my $coord = new_coordinator('coord', conf => qq(
distx.circuit_failure_threshold = 2
distx.circuit_reset_timeout = '1s'
));
my $p1 = new_participant('p1');
my $p2 = new_participant('p2');
add_node($coord, 'p1', $p1);
add_node($coord, 'p2', $p2);

# the coordinator's database: orders, and a log of what the steps did
$coord->safe_psql('postgres', q{
CREATE TABLE orders (id int PRIMARY KEY, state text NOT NULL, note text);
CREATE TABLE undo_log (at timestamptz NOT NULL DEFAULT clock_timestamp(), what text);
});
# p1: stock and reservations; p2: payments
$p1->safe_psql('postgres', q{
CREATE TABLE stock (item int PRIMARY KEY, qty int NOT NULL CHECK (qty >= 0));
INSERT INTO stock SELECT g, 100 FROM generate_series(1, 10) g;
CREATE TABLE reservations (key text PRIMARY KEY, order_id int, item int, qty int,
	at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE undo_log (at timestamptz NOT NULL DEFAULT clock_timestamp(), what text);
-- fails its first two calls (a sequence is not rolled back with them)
CREATE SEQUENCE flaky;
CREATE FUNCTION flaky_release(k text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('flaky') <= 2 THEN
		RAISE EXCEPTION 'release of % failed (flaky)', k USING ERRCODE = '40001';
	END IF;
	UPDATE stock s SET qty = s.qty + r.qty FROM reservations r
	 WHERE r.key = k AND s.item = r.item;
	DELETE FROM reservations WHERE key = k;
	INSERT INTO undo_log (what) VALUES ('release ' || k);
END $$;
CREATE TABLE switch (broken bool NOT NULL);
INSERT INTO switch VALUES (true);
CREATE FUNCTION broken_release(k text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT broken FROM switch) THEN
		RAISE EXCEPTION 'release of % is broken', k USING ERRCODE = 'P0001';
	END IF;
	UPDATE stock s SET qty = s.qty + r.qty FROM reservations r
	 WHERE r.key = k AND s.item = r.item;
	DELETE FROM reservations WHERE key = k;
	INSERT INTO undo_log (what) VALUES ('release ' || k);
END $$;
});
$p2->safe_psql('postgres', q{
CREATE TABLE payments (id serial PRIMARY KEY, order_id int NOT NULL,
	amount numeric NOT NULL CHECK (amount <= 1000), key text UNIQUE NOT NULL);
});

# the steps, shared by the sagas below
my $create = q{distx.saga_step('create', 'local',
	'INSERT INTO orders (id, state, note) VALUES ($1, ''new'', $2) RETURNING id AS order_id',
	'WITH d AS (DELETE FROM orders WHERE id = $1 RETURNING id)
	 INSERT INTO undo_log (what) SELECT ''delete order '' || id FROM d',
	params => '{$input.order_id,$input.note}')};
sub reserve_step
{
	my ($compensate, $extra) = @_;
	$extra //= '';
	return q{distx.saga_step('reserve', 'p1',
	'WITH s AS (UPDATE stock SET qty = qty - $2 WHERE item = $1 RETURNING item)
	 INSERT INTO reservations (key, order_id, item, qty) SELECT $3, $4, item, $2 FROM s
	 RETURNING key AS reservation, qty', '} . $compensate . q{',
	params => '{$input.item,$input.qty,$idempotency_key,$steps.create.order_id}',
	compensate_params => '{$steps.reserve.reservation}'} . $extra . ')';
}
my $reserve = reserve_step(q{WITH r AS (DELETE FROM reservations WHERE key = $1 RETURNING item, qty),
	      s AS (UPDATE stock SET qty = stock.qty + r.qty FROM r WHERE stock.item = r.item)
	 INSERT INTO undo_log (what) VALUES (''release '' || $1)});
my $charge = q{distx.saga_step('charge', 'p2',
	'INSERT INTO payments (order_id, amount, key) VALUES ($1, $2, $3) RETURNING id AS payment_id',
	'DELETE FROM payments WHERE id = $1',
	params => '{$steps.create.order_id,$input.amount,$idempotency_key}',
	compensate_params => '{$steps.charge.payment_id}',
	max_attempts => 2, base_delay => '10ms')};
my $confirm = q{distx.saga_step('confirm', NULL,
	'UPDATE orders SET state = ''confirmed'' WHERE id = $1 RETURNING state',
	params => '{$steps.create.order_id}')};

$coord->safe_psql('postgres', "SELECT distx.saga_define('order', $create, $reserve, $charge, $confirm)");

sub q1
{
	my ($node, $sql) = @_;
	return $node->safe_psql('postgres', $sql);
}

sub start_run
{
	my ($saga, $input, $key) = @_;
	my $k = defined $key ? "'$key'" : 'NULL';
	return q1($coord, "SELECT distx.saga_start('$saga', '$input', $k)");
}

sub wait_run
{
	my ($run, $timeout) = @_;
	$timeout //= '60s';
	return q1($coord, "SELECT distx.saga_wait($run, '$timeout')");
}

sub steps_of
{
	my ($run) = @_;
	return q1($coord,
		"SELECT string_agg(step_name || ':' || state, ' ' ORDER BY step_no) FROM distx.saga_run_steps WHERE run_id = $run");
}

sub stock_of
{
	my ($item) = @_;
	return q1($p1, "SELECT qty FROM stock WHERE item = $item");
}

sub no_saga_prepared
{
	return distx_prepared_count($p1) + distx_prepared_count($p2) == 0;
}

# ---------------------------------------------------------------------------
# success: four steps over three databases, values flowing as parameters
# ---------------------------------------------------------------------------
my $note = q{it's a 'note'); DROP TABLE orders; --};
(my $note_sql = $note) =~ s/'/''/g;
my $run = start_run('order',
	qq({"order_id": 1, "item": 1, "qty": 3, "amount": 50, "note": "$note_sql"}));
is(wait_run($run), 'completed', 'success: the run completes');
is(steps_of($run), 'create:completed reserve:completed charge:completed confirm:completed',
	'success: every step completed');
is(q1($coord, 'SELECT state || note FROM orders WHERE id = 1'), "confirmed$note",
	'success: the order is confirmed; the input reached the step as a value');
is(stock_of(1), '97', 'success: stock reserved once');
is(q1($p1, "SELECT key || ' ' || order_id FROM reservations"), "distx:$run:reserve 1",
	'success: the reservation carries the idempotency key and the output of step 1');
is(q1($p2, 'SELECT order_id || \' \' || amount || \' \' || key FROM payments'),
	"1 50 distx:$run:charge", 'success: one payment, with its idempotency key');
is(q1($coord, "SELECT string_agg(output::text, ' | ' ORDER BY step_no) FROM distx.saga_run_steps WHERE run_id = $run"),
	qq({"order_id": 1} | {"qty": 3, "reservation": "distx:$run:reserve"} | {"payment_id": 1} | {"state": "confirmed"}),
	'success: the outputs of the steps are recorded as jsonb');
is(q1($coord, "SELECT count(*) || ' ' || bool_and(state = 'succeeded' AND NOT commit_pending)::int FROM distx.saga_attempts WHERE run_id = $run"),
	'4 1', 'success: one attempt per step, all committed');
ok(no_saga_prepared(), 'success: no prepared transaction left behind');
is(q1($coord, "SELECT finished_at >= created_at AND last_error IS NULL FROM distx.saga_runs WHERE run_id = $run"),
	't', 'success: the run has its timings and no error');

# ---------------------------------------------------------------------------
# failure at step 3: compensate 2, then 1
# ---------------------------------------------------------------------------
$run = start_run('order', '{"order_id": 2, "item": 2, "qty": 5, "amount": 5000}');
is(wait_run($run), 'compensated', 'failure: the run is compensated');
is(steps_of($run), 'create:compensated reserve:compensated charge:failed confirm:cancelled',
	'failure: steps 1 and 2 compensated, 3 failed, 4 never ran');
is(q1($coord, "SELECT last_sqlstate || ' ' || (last_error LIKE '%payments_amount_check%')::int FROM distx.saga_runs WHERE run_id = $run"),
	'23514 1', 'failure: the run shows the error and its SQLSTATE');
is(q1($coord, "SELECT count(*) FROM distx.saga_attempts WHERE run_id = $run AND step_no = 3 AND state = 'failed'"),
	'2', 'failure: the failed step was tried max_attempts (2) times');
is(q1($coord, 'SELECT count(*) FROM orders WHERE id = 2'), '0', 'failure: the order is gone');
is(stock_of(2), '100', 'failure: the stock is back');
is(q1($p1, "SELECT count(*) FROM reservations WHERE order_id = 2"), '0', 'failure: no reservation left');
is(q1($p2, 'SELECT count(*) FROM payments WHERE order_id = 2'), '0', 'failure: no payment');
# order of the compensations, from the data: p1's undo before the coordinator's
my $t_release = q1($p1, "SELECT extract(epoch FROM at) FROM undo_log WHERE what = 'release distx:$run:reserve'");
my $t_delete = q1($coord, "SELECT extract(epoch FROM at) FROM undo_log WHERE what = 'delete order 2'");
ok($t_release ne '' && $t_delete ne '' && $t_release < $t_delete,
	"failure: step 2 was compensated ($t_release) before step 1 ($t_delete)");
is(q1($coord, "SELECT string_agg(step_no::text, ',' ORDER BY finished_at) FROM distx.saga_attempts WHERE run_id = $run AND phase = 'compensate'"),
	'2,1', 'failure: the attempts record the compensations in reverse order');
ok(no_saga_prepared(), 'failure: no prepared transaction left behind');

# a non-retryable SQLSTATE fails the step at once
$coord->safe_psql('postgres', "SELECT distx.saga_define('order_nr', $create, $reserve, "
	  . ($charge =~ s/max_attempts => 2/max_attempts => 5, non_retryable => '{23}'/r) . ')');
$run = start_run('order_nr', '{"order_id": 3, "item": 3, "qty": 1, "amount": 5000}');
is(wait_run($run), 'compensated', 'non-retryable: compensated');
is(q1($coord, "SELECT count(*) FROM distx.saga_attempts WHERE run_id = $run AND step_no = 3"),
	'1', 'non-retryable: a SQLSTATE of class 23 is not retried');
is(stock_of(3), '100', 'non-retryable: stock back');

# ---------------------------------------------------------------------------
# a compensation that fails twice, then succeeds
# ---------------------------------------------------------------------------
my $flaky_reserve = reserve_step('SELECT flaky_release($1)',
	", max_attempts => 5, base_delay => '10ms'");
$coord->safe_psql('postgres', "SELECT distx.saga_define('order_flaky', $create, $flaky_reserve, $charge)");
$run = start_run('order_flaky', '{"order_id": 4, "item": 4, "qty": 7, "amount": 5000}');
is(wait_run($run), 'compensated', 'flaky compensation: the run is compensated');
is(q1($coord, "SELECT string_agg(state, ',' ORDER BY attempt_no) FROM distx.saga_attempts WHERE run_id = $run AND step_no = 2 AND phase = 'compensate'"),
	'failed,failed,succeeded', 'flaky compensation: failed twice, then succeeded');
is(q1($coord, "SELECT string_agg(DISTINCT sqlstate, ',') FROM distx.saga_attempts WHERE run_id = $run AND step_no = 2 AND state = 'failed'"),
	'40001', 'flaky compensation: the failures are recorded with their SQLSTATE');
is(stock_of(4), '100', 'flaky compensation: the stock is back, once');
is(q1($p1, "SELECT count(*) FROM undo_log WHERE what = 'release distx:$run:reserve'"), '1',
	'flaky compensation: the release took effect exactly once');
is(q1($coord, 'SELECT count(*) FROM orders WHERE id = 4'), '0', 'flaky compensation: step 1 compensated too');

# ---------------------------------------------------------------------------
# a compensation that never succeeds: compensation_failed, then saga_retry
# ---------------------------------------------------------------------------
my $broken_reserve = reserve_step('SELECT broken_release($1)',
	", max_attempts => 3, base_delay => '10ms'");
$coord->safe_psql('postgres', "SELECT distx.saga_define('order_broken', $create, $broken_reserve, $charge)");
$run = start_run('order_broken', '{"order_id": 5, "item": 5, "qty": 9, "amount": 5000}');
is(wait_run($run), 'compensation_failed', 'broken compensation: the run stops in compensation_failed');
is(steps_of($run), 'create:completed reserve:compensation_failed charge:failed',
	'broken compensation: step 2 failed to compensate, step 1 is not compensated yet');
is(q1($coord, "SELECT count(*) FROM distx.saga_attempts WHERE run_id = $run AND step_no = 2 AND phase = 'compensate'"),
	'3', 'broken compensation: tried max_attempts times');
like(q1($coord, "SELECT last_sqlstate || ' ' || last_error FROM distx.saga_runs WHERE run_id = $run"),
	qr/^P0001 release of distx:\d+:reserve is broken$/, 'broken compensation: the error is visible');
is(stock_of(5), '91', 'broken compensation: the reservation is still there');
is(q1($coord, 'SELECT count(*) FROM orders WHERE id = 5'), '1', 'broken compensation: the order too');
usleep(300_000);
is(q1($coord, "SELECT distx.saga_wait($run, '10ms')"), 'compensation_failed',
	'broken compensation: it stays stopped');
# fix the cause, resume
q1($p1, 'UPDATE switch SET broken = false');
is(q1($coord, "SELECT distx.saga_retry($run)"), 'compensating', 'saga_retry resumes the compensation');
is(wait_run($run), 'compensated', 'broken compensation: compensated after the retry');
is(stock_of(5), '100', 'broken compensation: the stock is back');
is(q1($coord, 'SELECT count(*) FROM orders WHERE id = 5'), '0', 'broken compensation: step 1 compensated');
is(q1($coord, "SELECT string_agg(state, ',' ORDER BY attempt_no) FROM distx.saga_attempts WHERE run_id = $run AND step_no = 2 AND phase = 'compensate'"),
	'failed,failed,failed,succeeded', 'broken compensation: the whole history is kept');

# ---------------------------------------------------------------------------
# idempotent start, cancel, timeout
# ---------------------------------------------------------------------------
my $r1 = start_run('order', '{"order_id": 6, "item": 6, "qty": 1, "amount": 1}', 'order-6');
my $r2 = start_run('order', '{"order_id": 6, "item": 6, "qty": 1, "amount": 1}', 'order-6');
is($r1, $r2, 'run key: the same run');
is(wait_run($r1), 'completed', 'run key: completed');
is(stock_of(6), '99', 'run key: applied once');

$coord->safe_psql('postgres', "SELECT distx.saga_define('slow', $create,
	distx.saga_step('wait', 'p1', 'SELECT pg_sleep(\$1::float8)', params => '{\$input.sleep}'),
	$confirm)");
$run = start_run('slow', '{"order_id": 7, "sleep": 1.5}');
$coord->poll_query_until('postgres',
	"SELECT state = 'running' FROM distx.saga_run_steps WHERE run_id = $run AND step_no = 2")
  or die 'step 2 never started';
is(q1($coord, "SELECT distx.saga_cancel($run)"), 'compensating', 'cancel: the run turns compensating');
is(wait_run($run), 'cancelled', 'cancel: the run ends cancelled');
is(steps_of($run), 'create:compensated wait:compensated confirm:cancelled',
	'cancel: the step in flight finished and nothing was left undone');
is(q1($coord, 'SELECT count(*) FROM orders WHERE id = 7'), '0', 'cancel: the order is gone');

# a slow step does not hold up the other runs
$run = start_run('slow', '{"order_id": 10, "sleep": 4}');
$coord->poll_query_until('postgres',
	"SELECT state = 'running' FROM distx.saga_run_steps WHERE run_id = $run AND step_no = 2")
  or die 'the slow step never started';
my @fast = map { start_run('order', qq({"order_id": $_, "item": 9, "qty": 1, "amount": 1})) } (11 .. 15);
my $fast_done = $coord->poll_query_until('postgres',
	'SELECT count(*) = 5 FROM distx.saga_runs WHERE run_id IN (' . join(',', @fast) . ") AND state = 'completed'");
ok($fast_done && q1($coord, "SELECT state FROM distx.saga_run_steps WHERE run_id = $run AND step_no = 2") eq 'running',
	'concurrency: five runs completed while a slow step of another run was still running');
is(wait_run($run), 'completed', 'concurrency: the slow run completes too');

# a run row locked by an operator's open transaction holds up only that run
my $t0;
$run = start_run('slow', '{"order_id": 16, "sleep": 0.5}');
my $h = start_psql($coord, "BEGIN; SELECT distx.saga_retry($run); SELECT pg_sleep(4); ROLLBACK;");
usleep(500_000);
my $other = start_run('order', '{"order_id": 17, "item": 9, "qty": 1, "amount": 1}');
$t0 = time();
is(q1($coord, "SELECT distx.saga_wait($other, '20s')"), 'completed',
	'locked run: another run completes meanwhile');
ok(time() - $t0 < 3.5, 'locked run: ... without waiting for the lock');
finish_psql($h);
is(wait_run($run), 'completed', 'locked run: completes once the lock is gone');

$coord->safe_psql('postgres', "SELECT distx.saga_define('timeout', $create,
	distx.saga_step('wait', 'p1', 'SELECT pg_sleep(\$1::float8)', params => '{\$input.sleep}',
		timeout => '300ms', max_attempts => 1))");
$run = start_run('timeout', '{"order_id": 8, "sleep": 10}');
$t0 = time();
is(wait_run($run), 'compensated', 'timeout: the run is compensated');
ok(time() - $t0 < 8, 'timeout: the step was cancelled, not waited for');
is(q1($coord, "SELECT sqlstate FROM distx.saga_attempts WHERE run_id = $run AND step_no = 2"),
	'57014', 'timeout: the attempt failed with 57014');
is(q1($p1, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()"),
	'0', 'timeout: nothing runs on the node any more');

# ---------------------------------------------------------------------------
# a node that is down delays the run; it does not fail it
# ---------------------------------------------------------------------------
$p2->stop('immediate');
$run = start_run('order', '{"order_id": 9, "item": 7, "qty": 2, "amount": 10}');
$coord->poll_query_until('postgres',
	"SELECT last_sqlstate LIKE '08%' FROM distx.saga_runs WHERE run_id = $run")
  or die 'the run never met the stopped node';
usleep(1_500_000);
is(q1($coord, "SELECT state FROM distx.saga_runs WHERE run_id = $run"), 'running',
	'node down: the run is still running');
is(q1($coord, "SELECT state IN ('pending', 'running') AND next_retry_at IS NOT NULL FROM distx.saga_run_steps WHERE run_id = $run AND step_no = 3"),
	't', 'node down: the step waits, with a next retry time');
is(q1($coord, "SELECT count(*) FROM distx.saga_attempts WHERE run_id = $run AND step_no = 3 AND counted"),
	'0', 'node down: no attempt was spent');
$p2->start;
is(wait_run($run), 'completed', 'node down: completed once the node is back');
is(q1($p2, 'SELECT count(*) FROM payments WHERE order_id = 9'), '1', 'node down: one payment');

# ---------------------------------------------------------------------------
# concurrency: many runs at once
# ---------------------------------------------------------------------------
my @runs;
for my $i (100 .. 139)
{
	push @runs, start_run('order', qq({"order_id": $i, "item": 8, "qty": 1, "amount": 1}));
}
my $all = join(',', @runs);
ok($coord->poll_query_until('postgres',
	"SELECT count(*) = 40 FROM distx.saga_runs WHERE run_id IN ($all) AND state = 'completed'"),
	'concurrency: 40 runs completed');
is(stock_of(8), '60', 'concurrency: 40 reservations, each once');
is(q1($p2, 'SELECT count(*) FROM payments WHERE order_id BETWEEN 100 AND 139'), '40',
	'concurrency: 40 payments');
is(q1($coord, "SELECT count(*) FROM orders WHERE id BETWEEN 100 AND 139 AND state = 'confirmed'"),
	'40', 'concurrency: 40 orders confirmed');
ok(no_saga_prepared(), 'concurrency: nothing left prepared');

# ---------------------------------------------------------------------------
# steps run as the role that started the run
# ---------------------------------------------------------------------------
$coord->safe_psql('postgres', q{
CREATE ROLE clerk LOGIN;
GRANT INSERT, SELECT, DELETE ON orders TO clerk;
SELECT distx.saga_define('whoami',
	distx.saga_step('who', NULL, 'SELECT current_user AS who, session_user AS sess'),
	distx.saga_step('escalate', NULL, 'SET ROLE postgres'));
});
$run = $coord->safe_psql('postgres',
	"SET ROLE clerk; SELECT distx.saga_start('whoami', '{}');");
is(wait_run($run), 'compensated', 'role: the run ends (its second step fails)');
like(q1($coord, "SELECT output->>'who' FROM distx.saga_run_steps WHERE run_id = $run AND step_no = 1"),
	qr/^clerk$/, 'role: a local step runs as the role that started the run');
like(q1($coord, "SELECT error FROM distx.saga_attempts WHERE run_id = $run AND step_no = 2 LIMIT 1"),
	qr/cannot set parameter "role"/, 'role: a step cannot switch back to the superuser');
# remote steps go through the user mapping of the role that started the run
$p1->safe_psql('postgres', 'CREATE ROLE remote_clerk LOGIN');
$coord->safe_psql('postgres', q{
CREATE USER MAPPING FOR clerk SERVER p1 OPTIONS (user 'remote_clerk', password_required 'false');
GRANT USAGE ON FOREIGN SERVER p1 TO clerk;
SELECT distx.saga_define('whoami_remote',
	distx.saga_step('who', 'p1', 'SELECT current_user AS who'));
});
$run = $coord->safe_psql('postgres',
	"SET ROLE clerk; SELECT distx.saga_start('whoami_remote', '{}');");
is(wait_run($run), 'completed', 'role: the remote run completes');
is(q1($coord, "SELECT output->>'who' FROM distx.saga_run_steps WHERE run_id = $run"),
	'remote_clerk', 'role: a remote step runs as the remote user of the starter\'s user mapping');
$run = start_run('whoami_remote', '{}');
is(wait_run($run), 'completed', 'role: the same saga started by the superuser');
is(q1($coord, "SELECT output->>'who' FROM distx.saga_run_steps WHERE run_id = $run"),
	'postgres', 'role: ... runs through the superuser\'s (PUBLIC) mapping');

my $err = psql_error($coord, 'postgres',
	"SET ROLE clerk; SELECT distx.saga_cancel(1)");
like($err, qr/42501: permission denied for saga run 1/, 'role: another role cannot touch the run');

# the worker keeps no connection in a transaction and leaves nothing behind
ok(no_saga_prepared(), 'nothing left prepared at the end');
is(q1($p1, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'distx' AND state <> 'idle'"),
	'0', 'pooled connections of the worker are idle');

done_testing();
