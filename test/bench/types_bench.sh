#!/usr/bin/env bash
# test/bench/types_bench.sh: vclock_merge against the same merge over jsonb
# written in PL/pgSQL and in plain SQL, on the same rows, in one run.
#
# Two measurements, each repeated BENCH_REPS times with the methods
# interleaved, reported as medians and as ratios against vclock_merge:
#
#   merge    SELECT count(merge(a, b)) FROM pairs        (the merge alone)
#   update   UPDATE pairs SET m = merge(a, b)            (a committed write:
#            WAL, fsync on; the table is vacuumed between runs, untimed)
#
# Then the on-disk size of the same clocks as vclock and as jsonb, for
# clocks of 1 to 1000 entries (pg_column_size, compression included, and
# the size of the whole table).
#
#   sudo bash test/bench/types_bench.sh
#   (BENCH_ROWS=100000 BENCH_NODES=16 BENCH_PER=8 BENCH_REPS=5)
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

ROWS=${BENCH_ROWS:-100000}
NODES=${BENCH_NODES:-16}
PER=${BENCH_PER:-8}
REPS=${BENCH_REPS:-5}
HERE=$DISTX_SRC/test/bench

ensure_packages
build_and_install
make_tmpdir

PORT=$(free_port)
start_node bench "$PORT" "fsync = on" "synchronous_commit = on" "shared_buffers = '256MB'" \
	"max_parallel_workers_per_gather = 0" "jit = off"

say "== setup: $ROWS pairs of clocks, about $PER of $NODES nodes each"
psql_node "$PORT" -q -v rows="$ROWS" -v nodes="$NODES" -v per="$PER" < "$HERE/types_bench.sql" ||
	die "setup failed"

# the statements to time, by kind and method
declare -A Q
Q[merge,vclock]="SELECT count(distx.vclock_merge(a, b)) FROM pairs_vclock"
Q[merge,plpgsql]="SELECT count(jsonb_vclock_merge_plpgsql(a, b)) FROM pairs_jsonb"
Q[merge,sql]="SELECT count(jsonb_vclock_merge_sql(a, b)) FROM pairs_jsonb"
Q[update,vclock]="UPDATE pairs_vclock SET m = distx.vclock_merge(a, b)"
Q[update,plpgsql]="UPDATE pairs_jsonb SET m = jsonb_vclock_merge_plpgsql(a, b)"
Q[update,sql]="UPDATE pairs_jsonb SET m = jsonb_vclock_merge_sql(a, b)"
declare -A T
T[vclock]=pairs_vclock
T[plpgsql]=pairs_jsonb
T[sql]=pairs_jsonb

# One psql session runs everything: each statement commits on its own
# (autocommit), and its time is taken around it, commit included.
{
	for rep in $(seq 1 "$REPS"); do
		for kind in merge update; do
			for method in vclock plpgsql sql; do
				echo "SELECT clock_timestamp() AS t0 \\gset"
				echo "${Q[$kind,$method]};"
				echo "INSERT INTO bench_times SELECT '$kind', '$method', $rep, extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000;"
				# every update run does the same work; reclaim the dead
				# rows between runs, untimed
				[ "$kind" = update ] && echo "VACUUM ${T[$method]};"
			done
		done
	done
} > "$DISTX_TMP/bench.sql"
chmod 644 "$DISTX_TMP/bench.sql"

say "== timing: $REPS repetitions, methods interleaved"
psql_node "$PORT" -q -o /dev/null -f "$DISTX_TMP/bench.sql" || die "benchmark failed"

psql_node "$PORT" <<'SQL'
\pset footer off
\echo == medians (ms) and ratios against vclock_merge
SELECT kind, method, count(*) AS reps,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS median_ms,
       round(min(ms)::numeric, 1) AS min_ms, round(max(ms)::numeric, 1) AS max_ms,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) /
              (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM bench_times v
               WHERE v.kind = t.kind AND v.method = 'vclock'))::numeric, 1) AS times_slower_than_vclock
FROM bench_times t GROUP BY kind, method
ORDER BY kind, array_position(ARRAY['vclock', 'plpgsql', 'sql'], method);

\echo == on-disk size of the same clocks: vclock against jsonb
CREATE TEMP TABLE sizes (entries int, v distx.vclock, j jsonb);
INSERT INTO sizes
	SELECT e, c::distx.vclock, c
	FROM unnest(ARRAY[1, 2, 8, 32, 100, 1000]) e,
	     LATERAL (SELECT i FROM generate_series(1, CASE WHEN e >= 100 THEN 50 ELSE 1000 END) i) r,
	     LATERAL (SELECT jsonb_object_agg(format('node-%s', lpad(n::text, 3, '0')),
	                                      1 + floor(random() * 1000000)::bigint + r.i * 0) AS c
	              FROM generate_series(1, e) n) g;
SELECT entries,
       round(avg(pg_column_size(v)), 1) AS vclock_bytes,
       round(avg(pg_column_size(j)), 1) AS jsonb_bytes,
       round(avg(pg_column_size(v))::numeric / avg(pg_column_size(j)), 2) AS ratio
FROM sizes GROUP BY entries ORDER BY entries;
\echo == the benchmark tables (two clocks and their merge per row)
VACUUM FULL pairs_vclock;
VACUUM FULL pairs_jsonb;
SELECT pg_size_pretty(pg_table_size('pairs_vclock')) AS table_vclock,
       pg_size_pretty(pg_table_size('pairs_jsonb')) AS table_jsonb,
       round(pg_table_size('pairs_vclock')::numeric / pg_table_size('pairs_jsonb'), 2) AS ratio;
SQL
