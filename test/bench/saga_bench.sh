#!/usr/bin/env bash
# test/bench/saga_bench.sh: saga throughput and the worker's overhead per
# step.
#
# A 3-step saga against two remote nodes (debit on a, credit on b, a note on
# a; every step with its compensation):
#
#   throughput   BENCH_SAGAS runs started in one transaction, run by the
#                background worker with distx.saga_max_concurrency = C, for
#                each C in BENCH_CONCURRENCY: steps per second, from the
#                first run's creation to the last run's end (timestamps of
#                the runs themselves)
#   latency      BENCH_SEQ runs one after the other (start, wait): time from
#                the start of a run to its end, per run and per step
#   direct       the same three statements sent directly to the nodes with
#                pgbench, one autocommit transaction each, 1 client and C
#                clients: latency per statement and statements per second
#
# The overhead per step is the saga latency per step minus the direct
# latency per statement.  Each measurement runs BENCH_REPS times; medians are
# reported.  fsync stays on (BENCH_FSYNC=off measures without the disk).
#
#   sudo bash test/bench/saga_bench.sh    (BENCH_SAGAS=1000 BENCH_SEQ=200 BENCH_REPS=3 BENCH_CONCURRENCY="1 16")
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

SAGAS=${BENCH_SAGAS:-1000}
SEQ=${BENCH_SEQ:-200}
REPS=${BENCH_REPS:-3}
CONCURRENCY=${BENCH_CONCURRENCY:-"1 16"}
ROWS=100000

ensure_packages
[ -n "${BENCH_NO_BUILD:-}" ] || build_and_install
make_tmpdir

P0=$(free_port); P1=$(free_port); P2=$(free_port)
COMMON=("fsync = ${BENCH_FSYNC:-on}" "synchronous_commit = on" "shared_buffers = '256MB'" "max_connections = 60")
start_node coord "$P0" "${COMMON[@]}"
start_node node_a "$P1" "${COMMON[@]}"
start_node node_b "$P2" "${COMMON[@]}"

for p in $P1 $P2; do
	psql_node "$p" -q <<SQL
CREATE TABLE acc (id int PRIMARY KEY, balance bigint NOT NULL);
INSERT INTO acc SELECT g, 1000000 FROM generate_series(1, $ROWS) g;
CREATE TABLE notes (id bigserial PRIMARY KEY, acc int, note text);
VACUUM ANALYZE acc;
SQL
	[ $? = 0 ] || die "setting up node on port $p failed"
done
psql_node "$P0" -q <<SQL
CREATE EXTENSION distx;
CREATE SERVER a FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '$P1', dbname 'postgres');
CREATE SERVER b FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '$P2', dbname 'postgres');
CREATE USER MAPPING FOR postgres SERVER a OPTIONS (user 'postgres');
CREATE USER MAPPING FOR postgres SERVER b OPTIONS (user 'postgres');
SELECT distx.saga_define('transfer',
	distx.saga_step('debit', 'a',
		'UPDATE acc SET balance = balance - \$2 WHERE id = \$1 RETURNING balance',
		'UPDATE acc SET balance = balance + \$2 WHERE id = \$1',
		params => '{\$input.from,\$input.amount}'),
	distx.saga_step('credit', 'b',
		'UPDATE acc SET balance = balance + \$2 WHERE id = \$1 RETURNING balance',
		'UPDATE acc SET balance = balance - \$2 WHERE id = \$1',
		params => '{\$input.to,\$input.amount}'),
	distx.saga_step('note', 'a',
		'INSERT INTO notes (acc, note) VALUES (\$1, \$2) RETURNING id',
		'DELETE FROM notes WHERE id = \$1',
		params => '{\$input.from,\$idempotency_key}',
		compensate_params => '{\$steps.note.id}'));
SQL
[ $? = 0 ] || die "setting up the coordinator failed"

# the statements of the steps, for pgbench (one autocommit transaction each)
cat > "$DISTX_TMP/direct_a.sql" <<'SQL'
\set id random(1, 100000)
UPDATE acc SET balance = balance - 1 WHERE id = :id RETURNING balance;
INSERT INTO notes (acc, note) VALUES (:id, 'direct') RETURNING id;
SQL
cat > "$DISTX_TMP/direct_b.sql" <<'SQL'
\set id random(1, 100000)
UPDATE acc SET balance = balance + 1 WHERE id = :id RETURNING balance;
SQL
chmod 644 "$DISTX_TMP"/direct_*.sql

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

range() { sort -g | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%s–%s\n", lo, hi}'; }

q0() { psql_node "$P0" -Atq -c "$1"; }

set_concurrency() {
	q0 "ALTER SYSTEM SET distx.saga_max_concurrency = $1" >/dev/null
	q0 "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
}

# throughput: N runs started at once; prints steps/s
throughput_once() {
	local first last
	first=$(q0 "SELECT coalesce(max(run_id), 0) FROM distx.saga_run")
	q0 "SELECT count(distx.saga_start('transfer', jsonb_build_object('from', 1 + g % $ROWS, 'to', 1 + (g * 7) % $ROWS, 'amount', 1))) FROM generate_series(1, $SAGAS) g" >/dev/null
	psql_node "$P0" -Atq <<SQL >/dev/null
DO \$\$
BEGIN
	LOOP
		EXIT WHEN NOT EXISTS (SELECT 1 FROM distx.saga_run WHERE run_id > $first
							  AND state IN ('pending', 'running', 'compensating'));
		PERFORM pg_sleep(0.05);
	END LOOP;
END \$\$;
SQL
	q0 "SELECT CASE WHEN count(*) FILTER (WHERE state <> 'completed') > 0 THEN 'nan'
	              ELSE round(3 * count(*) / extract(epoch FROM max(finished_at) - min(created_at)), 1)::text END
	    FROM distx.saga_run WHERE run_id > $first"
}

# latency: runs one after the other; prints ms per run
latency_once() {
	local first script i
	first=$(q0 "SELECT coalesce(max(run_id), 0) FROM distx.saga_run")
	script="$DISTX_TMP/seq.sql"
	: > "$script"
	for ((i = 1; i <= SEQ; i++)); do
		echo "SELECT distx.saga_start('transfer', '{\"from\": $i, \"to\": $((i + 1)), \"amount\": 1}') AS r \\gset" >> "$script"
		echo "SELECT distx.saga_wait(:r, '60s') \\g /dev/null" >> "$script"
	done
	chmod 644 "$script"
	psql_node "$P0" -Atq -f "$script" >/dev/null
	q0 "SELECT round(avg(extract(epoch FROM finished_at - created_at)) * 1000, 2)
	    FROM distx.saga_run WHERE run_id > $first AND state = 'completed'"
}

# direct: pgbench on both nodes at once for 10 s with C clients; prints
# "statements/s ms/statement"
direct_once() {
	local c=$1 outa outb
	as_pg pgbench -n -h 127.0.0.1 -p "$P1" -U postgres -c "$c" -T ${BENCH_DIRECT_SECONDS:-10} -f "$DISTX_TMP/direct_a.sql" postgres > "$DISTX_TMP/pga.out" 2>&1 &
	as_pg pgbench -n -h 127.0.0.1 -p "$P2" -U postgres -c "$c" -T ${BENCH_DIRECT_SECONDS:-10} -f "$DISTX_TMP/direct_b.sql" postgres > "$DISTX_TMP/pgb.out" 2>&1
	wait
	outa=$(awk '/^tps = / {print $3}' "$DISTX_TMP/pga.out")
	outb=$(awk '/^tps = / {print $3}' "$DISTX_TMP/pgb.out")
	# a: 2 statements per pgbench transaction, b: 1
	awk -v a="$outa" -v b="$outb" -v c="$c" 'BEGIN {
		s = 2 * a + b;
		# each client runs its statements one after the other
		printf "%.1f %.3f\n", s, 2 * c * 1000 / s }'
}

declare -A TP DIRECT_S DIRECT_MS
LAT=()
say "== saga bench: $SAGAS sagas per throughput run, $SEQ sequential, $REPS reps"
for ((r = 1; r <= REPS; r++)); do
	for c in $CONCURRENCY; do
		set_concurrency "$c"
		v=$(throughput_once); TP[$c]+="$v "
		say "rep $r: throughput at concurrency $c: $v steps/s"
		read -r s ms < <(direct_once "$c")
		DIRECT_S[$c]+="$s "; DIRECT_MS[$c]+="$ms "
		say "rep $r: direct with $c clients per node: $s statements/s, $ms ms/statement"
	done
	set_concurrency 16
	v=$(latency_once); LAT+=("$v")
	say "rep $r: sequential saga latency: $v ms"
done

lat=$(printf '%s\n' "${LAT[@]}" | median)
d1=$(printf '%s\n' ${DIRECT_MS[1]:-} | median)
say ""
say "| measurement | median | min–max |"
say "|---|---:|---|"
for c in $CONCURRENCY; do
	say "| saga steps/s, saga_max_concurrency = $c | $(printf '%s\n' ${TP[$c]} | median) | $(printf '%s\n' ${TP[$c]} | range) |"
	say "| direct statements/s, $c client(s) per node | $(printf '%s\n' ${DIRECT_S[$c]} | median) | $(printf '%s\n' ${DIRECT_S[$c]} | range) |"
done
say "| saga latency, one run at a time (ms per 3-step run) | $lat | $(printf '%s\n' "${LAT[@]}" | range) |"
say "| saga latency per step (ms) | $(awk -v l="$lat" 'BEGIN {printf "%.2f", l / 3}') | |"
say "| direct latency, 1 client (ms per statement) | $d1 | $(printf '%s\n' ${DIRECT_MS[1]:-} | range) |"
say "| worker overhead per step (ms) | $(awk -v l="$lat" -v d="$d1" 'BEGIN {printf "%.2f", l / 3 - d}') | |"
