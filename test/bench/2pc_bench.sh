#!/usr/bin/env bash
# test/bench/2pc_bench.sh: a transfer that updates one row on each of two
# remote nodes, run with pgbench in one go against what users would use
# instead:
#
#   local        the same two updates in one local database
#   fdw          postgres_fdw foreign tables (not atomic), parallel_commit off
#   fdw_par      postgres_fdw with parallel_commit on (PostgreSQL 15)
#   dblink       dblink with hand-written PREPARE / COMMIT PREPARED
#   distx        distx.exec on both nodes, 2PC
#   distx_nowait the same with distx.second_phase_wait = off (COMMIT returns
#                once the decision is durable and COMMIT PREPARED is sent)
#
# fsync stays on.  Every variant runs BENCH_RUNS times for BENCH_SECONDS at
# each client count, interleaved, and the median tps and latency are
# reported, with ratios against postgres_fdw.
#
#   sudo bash test/bench/2pc_bench.sh          (BENCH_SECONDS=10 BENCH_RUNS=3 BENCH_CLIENTS="1 4")
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

SECONDS_PER_RUN=${BENCH_SECONDS:-10}
RUNS=${BENCH_RUNS:-3}
CLIENTS=${BENCH_CLIENTS:-"1 4"}
VARIANTS=${BENCH_VARIANTS:-"local fdw fdw_par dblink distx distx_nowait"}
ROWS=100000

ensure_packages
build_and_install
make_tmpdir

P0=$(free_port); P1=$(free_port); P2=$(free_port)
COMMON=("fsync = on" "synchronous_commit = on" "shared_buffers = '256MB'" "max_connections = 50")
start_node coord "$P0" "${COMMON[@]}"
start_node node_a "$P1" "${COMMON[@]}"
start_node node_b "$P2" "${COMMON[@]}"

for p in $P0 $P1 $P2; do
	psql_node "$p" -q <<SQL
CREATE TABLE acc (id int PRIMARY KEY, balance bigint NOT NULL);
INSERT INTO acc SELECT g, 1000 FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE acc;
SQL
done
psql_node "$P0" -q <<SQL
CREATE TABLE acc_b (id int PRIMARY KEY, balance bigint NOT NULL);
INSERT INTO acc_b SELECT g, 1000 FROM generate_series(1, $ROWS) g;
VACUUM ANALYZE acc_b;
CREATE EXTENSION distx;
CREATE EXTENSION postgres_fdw;
CREATE EXTENSION dblink;
CREATE SERVER a FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '$P1', dbname 'postgres');
CREATE SERVER b FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '$P2', dbname 'postgres');
CREATE USER MAPPING FOR postgres SERVER a OPTIONS (user 'postgres');
CREATE USER MAPPING FOR postgres SERVER b OPTIONS (user 'postgres');
CREATE SERVER fa FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '$P1', dbname 'postgres');
CREATE SERVER fb FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '$P2', dbname 'postgres');
CREATE USER MAPPING FOR postgres SERVER fa OPTIONS (user 'postgres');
CREATE USER MAPPING FOR postgres SERVER fb OPTIONS (user 'postgres');
CREATE SERVER pa FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '$P1', dbname 'postgres', parallel_commit 'true');
CREATE SERVER pb FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '$P2', dbname 'postgres', parallel_commit 'true');
CREATE USER MAPPING FOR postgres SERVER pa OPTIONS (user 'postgres');
CREATE USER MAPPING FOR postgres SERVER pb OPTIONS (user 'postgres');
CREATE FOREIGN TABLE fa_acc (id int, balance bigint) SERVER fa OPTIONS (table_name 'acc');
CREATE FOREIGN TABLE fb_acc (id int, balance bigint) SERVER fb OPTIONS (table_name 'acc');
CREATE FOREIGN TABLE pa_acc (id int, balance bigint) SERVER pa OPTIONS (table_name 'acc');
CREATE FOREIGN TABLE pb_acc (id int, balance bigint) SERVER pb OPTIONS (table_name 'acc');
SQL

S=$DISTX_TMP/scripts
mkdir -p "$S"
cat > "$S/local.sql" <<'SQL'
\set x random(1, 100000)
\set y random(1, 100000)
BEGIN;
UPDATE acc SET balance = balance - 1 WHERE id = :x;
UPDATE acc_b SET balance = balance + 1 WHERE id = :y;
COMMIT;
SQL
cat > "$S/fdw.sql" <<'SQL'
\set x random(1, 100000)
\set y random(1, 100000)
BEGIN;
UPDATE fa_acc SET balance = balance - 1 WHERE id = :x;
UPDATE fb_acc SET balance = balance + 1 WHERE id = :y;
COMMIT;
SQL
sed -e 's/fa_acc/pa_acc/; s/fb_acc/pb_acc/' "$S/fdw.sql" > "$S/fdw_par.sql"
cat > "$S/dblink.sql" <<SQL
\\set x random(1, 100000)
\\set y random(1, 100000)
SELECT dblink_connect('a', 'host=127.0.0.1 port=$P1 dbname=postgres user=postgres') WHERE dblink_get_connections() IS NULL;
SELECT dblink_connect('b', 'host=127.0.0.1 port=$P2 dbname=postgres user=postgres') WHERE NOT 'b' = ANY(dblink_get_connections());
SELECT dblink_exec('a', 'BEGIN');
SELECT dblink_exec('a', 'UPDATE acc SET balance = balance - 1 WHERE id = ' || :x);
SELECT dblink_exec('b', 'BEGIN');
SELECT dblink_exec('b', 'UPDATE acc SET balance = balance + 1 WHERE id = ' || :y);
SELECT dblink_exec('a', 'PREPARE TRANSACTION ''bench_a_' || :client_id || '''');
SELECT dblink_exec('b', 'PREPARE TRANSACTION ''bench_b_' || :client_id || '''');
SELECT dblink_exec('a', 'COMMIT PREPARED ''bench_a_' || :client_id || '''');
SELECT dblink_exec('b', 'COMMIT PREPARED ''bench_b_' || :client_id || '''');
SQL
cat > "$S/distx.sql" <<'SQL'
\set x random(1, 100000)
\set y random(1, 100000)
BEGIN;
SELECT distx.exec('a', 'UPDATE acc SET balance = balance - 1 WHERE id = $1', :x::text);
SELECT distx.exec('b', 'UPDATE acc SET balance = balance + 1 WHERE id = $1', :y::text);
COMMIT;
SQL
cp "$S/distx.sql" "$S/distx_nowait.sql"
chmod -R a+rX "$S"

# the WAL flushes of the three servers so far
wal_syncs() {
	local total=0 p n
	for p in $P0 $P1 $P2; do
		n=$(psql_node "$p" -Atc "SELECT wal_sync FROM pg_stat_wal")
		total=$((total + n))
	done
	echo "$total"
}

RESULTS=$DISTX_TMP/results.txt
: > "$RESULTS"
chmod 666 "$RESULTS"
say "== pgbench: ${SECONDS_PER_RUN}s per run, $RUNS runs per variant and client count (interleaved), fsync on"
for run in $(seq 1 "$RUNS"); do
	for c in $CLIENTS; do
		for v in $VARIANTS; do
			opts=""
			[ "$v" = distx_nowait ] && opts="-c distx.second_phase_wait=off"
			syncs0=$(wal_syncs)
			cpu0=$(cpu_busy)
			out=$(as_pg env PGOPTIONS="$opts" pgbench -n -h 127.0.0.1 -p "$P0" -U postgres -c "$c" -j "$c" \
				-T "$SECONDS_PER_RUN" -f "$S/$v.sql" postgres 2>&1)
			cpu1=$(cpu_busy)
			syncs1=$(wal_syncs)
			tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
			lat=$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' <<<"$out")
			fail=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
			xacts=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
			[ -n "$tps" ] && [ -n "$xacts" ] && [ "$xacts" -gt 0 ] || { say "$out"; die "pgbench $v failed"; }
			# CPU (all cores, kernel included) and WAL flushes (all three servers) per transaction
			cpu_ms=$(cpu_ms_per "$cpu0" "$cpu1" "$xacts")
			syncs=$(awk -v a="$syncs0" -v b="$syncs1" -v n="$xacts" 'BEGIN { printf "%.2f", (b - a) / n }')
			echo "$v $c $tps $lat ${fail:-0} $cpu_ms $syncs" >> "$RESULTS"
			say "   run $run: $v, $c clients: $tps tps, $lat ms, $cpu_ms ms CPU and $syncs WAL flushes per transaction"
		done
	done
done

# every distx transaction was resolved: nothing left prepared
for p in $P1 $P2; do
	left=$(psql_node "$p" -Atc "SELECT count(*) FROM pg_prepared_xacts")
	[ "$left" = 0 ] || say "WARNING: $left prepared transactions left on port $p"
done

say ""
say "== medians (tps, latency ms); ratios against postgres_fdw"
python3 - "$RESULTS" "$CLIENTS" "$VARIANTS" <<'PY'
import sys, statistics, collections
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
clients = sys.argv[2].split()
variants = sys.argv[3].split()
d = collections.defaultdict(lambda: ([], [], [], []))
for v, c, tps, lat, fail, cpu, syncs in rows:
    for i, x in enumerate((tps, lat, cpu, syncs)):
        d[(v, c)][i].append(float(x))
print("| variant | clients | tps (median) | latency ms (median) | tps / fdw | tps / fdw_par | latency / fdw | CPU ms / xact | WAL flushes / xact |")
print("|---|---|---|---|---|---|---|---|---|")
for c in clients:
    med = {v: [statistics.median(x) for x in d[(v, c)]] for v in variants if d[(v, c)][0]}
    for v in variants:
        if v not in med: continue
        t, l, cpu, syncs = med[v]
        r = lambda k, i: ("%.2f" % (med[v][i] / med[k][i])) if k in med else "-"
        print("| %s | %s | %.0f | %.2f | %s | %s | %s | %.3f | %.2f |" % (v, c, t, l, r("fdw", 0), r("fdw_par", 0), r("fdw", 1), cpu, syncs))
PY
