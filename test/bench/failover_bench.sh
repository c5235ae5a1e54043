#!/usr/bin/env bash
# test/bench/failover_bench.sh: how long a 3-node distx cluster is without
# a coordinator after kill -9 of the leader's postmaster, how long until the
# new leader has resolved the transactions the dead one left in doubt, and
# what the Raft round costs in the commit path.
#
# For each election timeout in BENCH_ELECTION (ms; the heartbeat is a tenth
# of it), BENCH_TRIALS times: two distributed transactions (one row on each
# of two participant servers, p1 and p2) are stopped on the leader by the
# test-only fault points, one decided and committed locally but not yet on
# the nodes (after_decision), one prepared on both nodes without a decision
# (after_prepares).  Then kill -9 of the leader, and the two survivors are
# polled every 10 ms until both name the same new leader ("elected"), that
# leader reports raft_status.coordinator ("acting": it has applied an entry
# of its term and heard from a majority), and no distx prepared transaction
# is left on p1 and p2 ("resolved": the decided one committed, the other
# rolled back, both checked).  The killed node is restarted and follows
# before the next trial.  Times are from the kill to the first poll that saw
# it (psql start-up makes the resolution about 10-20 ms).
#
# Then, with the first election setting only and fsync on, pgbench runs a
# transfer (one UPDATE on p1, one on p2: 2PC), 3 runs of BENCH_SECONDS at
# each of BENCH_CLIENTS clients, round robin: from a distx server
# that is no cluster member (single-node mode: the decision is a row of the
# local commit), from the cluster's leader and from a follower (the
# decision is a Raft entry, committed by a majority, before COMMIT
# PREPARED).  And distx._cluster_decide() alone (one Raft entry: append,
# fsync, replicate, apply).
#
#   sudo bash test/bench/failover_bench.sh   (BENCH_TRIALS=20 BENCH_ELECTION="1000 300"
#                                              BENCH_SECONDS=10 BENCH_CLIENTS="1 4")
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

TRIALS=${BENCH_TRIALS:-20}
ELECTIONS=${BENCH_ELECTION:-"1000 300"}
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-"1 4"}

ensure_packages
build_and_install
make_tmpdir

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

q() {	# q PORT SQL: one value, empty on failure
	psql_node "$1" -Atq -c "$2" 2>/dev/null
}

# stats LIST...: median p90 worst best of integers
stats() {
	printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
		m = (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2);
		p = a[int(NR * 0.9 + 0.999)]; if (p == "") p = a[NR];
		printf "median %5d ms  p90 %5d ms  worst %5d ms  best %5d ms  (n=%d)\n", m, p, a[NR], a[1], NR }'
}

declare -A PORT

run_setting() {
	local el=$1 hb=$(( $1 / 10 )) n i
	local elected=() acting=() resolved=() id=0
	local tag="e$el"

	for n in n1 n2 n3 p1 p2 single; do PORT[$n]=$(free_port); done
	for n in p1 p2; do
		start_node "$tag$n" "${PORT[$n]}" "fsync = on" "max_connections = 200"
		psql_node "${PORT[$n]}" -q -c "CREATE TABLE t (id int PRIMARY KEY);
			CREATE TABLE acc (id int PRIMARY KEY, balance bigint NOT NULL);
			INSERT INTO acc SELECT i, 0 FROM generate_series(1, 10000) i"
	done
	for n in n1 n2 n3 single; do
		start_node "$tag$n" "${PORT[$n]}" "fsync = on" \
			"distx.raft_election_timeout = '${el}ms'" "distx.raft_heartbeat_interval = '${hb}ms'" \
			"distx.recovery_interval = '10s'" "distx.cleanup_timeout = '2s'"
		psql_node "${PORT[$n]}" -q -c "CREATE EXTENSION distx"
	done
	for n in n1 n2 n3 single; do
		for m in n1 n2 n3 p1 p2; do
			[ "$n" = single ] && [ "${m#n}" != "$m" ] && continue
			psql_node "${PORT[$n]}" -q -c "CREATE SERVER $m FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '${PORT[$m]}', dbname 'postgres');
				CREATE USER MAPPING FOR PUBLIC SERVER $m OPTIONS (user 'postgres');"
		done
	done
	psql_node "${PORT[n1]}" -q -c "SELECT distx.cluster_init()" >/dev/null
	psql_node "${PORT[n1]}" -q -c "SELECT distx.cluster_add_node('n2')" >/dev/null
	psql_node "${PORT[n1]}" -q -c "SELECT distx.cluster_add_node('n3')" >/dev/null

	local i=0 setup_failures=0
	while [ "${#resolved[@]}" -lt "$TRIALS" ]; do
		i=$((i + 1))
		local leader="" t0 t1="" t2="" others=() l a b deadline
		# a settled cluster: all three name the same leader
		deadline=$(( $(now_ms) + 60000 ))
		while [ "$(now_ms)" -lt "$deadline" ]; do
			a=$(q "${PORT[n1]}" "SELECT distx.leader()")
			b=$(q "${PORT[n2]}" "SELECT distx.leader()")
			l=$(q "${PORT[n3]}" "SELECT distx.leader()")
			if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$l" ]; then leader=$a; break; fi
			sleep 0.1
		done
		[ -n "$leader" ] || die "no settled leader before trial $i"
		sleep 0.5
		others=()
		for n in n1 n2 n3; do [ "$n" != "$leader" ] && others+=("$n"); done

		# two transactions in doubt on the leader
		local bgs=() point
		for point in after_decision after_prepares; do
			id=$((id + 1))
			as_pg psql -X -q -h 127.0.0.1 -p "${PORT[$leader]}" -U postgres -d postgres >/dev/null 2>&1 <<SQL &
SET distx.fault_point = '$point';
SET distx.fault_sleep = 15000;
BEGIN;
SELECT distx.exec('p1', 'INSERT INTO t VALUES (\$1)', '$id');
SELECT distx.exec('p2', 'INSERT INTO t VALUES (\$1)', '$id');
COMMIT;
SQL
			bgs+=($!)
		done
		deadline=$(( $(now_ms) + 10000 ))
		until [ "$(q "${PORT[p1]}" "SELECT count(*) FROM pg_prepared_xacts")" = 2 ] &&
			[ "$(q "${PORT[p2]}" "SELECT count(*) FROM pg_prepared_xacts")" = 2 ]; do
			[ "$(now_ms)" -lt "$deadline" ] || break
			sleep 0.02
		done
		if [ "$(now_ms)" -ge "$deadline" ]; then
			# a session failed before it was in doubt (a change of leader
			# while it started, say): let it end, and set up again
			setup_failures=$((setup_failures + 1))
			[ "$setup_failures" -le 5 ] || die "could not get two transactions in doubt (trial $i)"
			say "  trial $i: the two transactions did not get in doubt; again"
			wait "${bgs[@]}" 2>/dev/null
			deadline=$(( $(now_ms) + 60000 ))
			until [ "$(q "${PORT[p1]}" "SELECT count(*) FROM pg_prepared_xacts")" = 0 ] &&
				[ "$(q "${PORT[p2]}" "SELECT count(*) FROM pg_prepared_xacts")" = 0 ]; do
				[ "$(now_ms)" -lt "$deadline" ] || die "prepared transactions left after a failed set-up"
				sleep 0.1
			done
			continue
		fi
		sleep 0.2

		local pmpid kids t3=""
		pmpid=$(head -1 "$DISTX_TMP/$tag$leader/postmaster.pid")
		kids=$(pgrep -P "$pmpid" | tr '\n' ' ')
		t0=$(now_ms)
		kill -9 "$pmpid"
		deadline=$(( t0 + 60000 ))
		while [ "$(now_ms)" -lt "$deadline" ]; do
			a=$(q "${PORT[${others[0]}]}" "SELECT distx.leader()")
			b=$(q "${PORT[${others[1]}]}" "SELECT distx.leader()")
			if [ -z "$t1" ] && [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$leader" ]; then
				t1=$(now_ms)
			fi
			if [ -n "$t1" ] && [ -z "$t2" ] && [ "$(q "${PORT[$a]}" "SELECT coordinator FROM distx.raft_status WHERE is_self")" = "t" ]; then
				t2=$(now_ms)
			fi
			if [ -n "$t2" ] && [ "$(q "${PORT[p1]}" "SELECT count(*) FROM pg_prepared_xacts")" = 0 ] &&
				[ "$(q "${PORT[p2]}" "SELECT count(*) FROM pg_prepared_xacts")" = 0 ]; then
				t3=$(now_ms)
				break
			fi
			sleep 0.01
		done
		[ -n "$t3" ] || die "the in-doubt transactions of trial $i were not resolved"
		[ "$(q "${PORT[p1]}" "SELECT count(*) FROM t WHERE id IN ($((id - 1)), $id)")" = 1 ] &&
			[ "$(q "${PORT[p2]}" "SELECT count(*) FROM t WHERE id = $((id - 1))")" = 1 ] ||
			die "trial $i: the decided transaction must commit and the other roll back"
		wait "${bgs[@]}" 2>/dev/null
		elected+=($(( t1 - t0 )))
		acting+=($(( t2 - t0 )))
		resolved+=($(( t3 - t0 )))
		printf '  trial %2d: %s killed, %s elected after %d ms, acting after %d ms, in-doubt resolved after %d ms\n' \
			"$i" "$leader" "$a" $(( t1 - t0 )) $(( t2 - t0 )) $(( t3 - t0 ))
		# restart the killed node once its processes are gone
		for k in $pmpid $kids; do
			while kill -0 "$k" 2>/dev/null; do sleep 0.05; done
		done
		as_pg pg_ctl -D "$DISTX_TMP/$tag$leader" -l "$DISTX_TMP/$tag$leader.log" -w start >/dev/null 2>&1 ||
			die "restarting $leader failed"
	done
	say "election timeout ${el} ms, heartbeat ${hb} ms, kill -9 of the leader:"
	say "  new leader elected:        $(stats "${elected[@]}")"
	say "  new leader acting:         $(stats "${acting[@]}")"
	say "  in-doubt 2PC resolved:     $(stats "${resolved[@]}")"
	[ "$setup_failures" = 0 ] || say "  ($setup_failures set-ups discarded: a session failed before it was in doubt)"

	# the cost of one Raft entry
	local lp fp c
	sleep 1
	leader=$(q "${PORT[n1]}" "SELECT distx.leader()")
	lp=${PORT[$leader]}
	for n in n1 n2 n3; do [ "$n" != "$leader" ] && fp=${PORT[$n]}; done
	cat > "$DISTX_TMP/decide.sql" <<'SQL'
\set x random(1, 2000000000)
SELECT distx._cluster_decide('bench_', :x::text::xid8, true, false, '{p1,p2}');
SQL
	chmod 644 "$DISTX_TMP/decide.sql"
	THROUGHPUT_DONE=${THROUGHPUT_DONE:-}
	if [ -n "$THROUGHPUT_DONE" ]; then
		for n in n1 n2 n3 p1 p2 single; do
			as_pg pg_ctl -D "$DISTX_TMP/$tag$n" stop -m immediate >/dev/null 2>&1
		done
		return
	fi
	THROUGHPUT_DONE=1
	cat > "$DISTX_TMP/transfer.sql" <<'SQL'
\set x random(1, 10000)
\set y random(1, 10000)
BEGIN;
SELECT distx.exec('p1', 'UPDATE acc SET balance = balance - 1 WHERE id = $1', :x::text);
SELECT distx.exec('p2', 'UPDATE acc SET balance = balance + 1 WHERE id = $1', :y::text);
COMMIT;
SQL
	chmod 644 "$DISTX_TMP/transfer.sql"
	for c in $CLIENTS; do
		local r where
		for r in 1 2 3; do
			for where in single leader follower; do
				local port=${PORT[single]} out tps lat cpu0 cpu1 xacts
				[ "$where" = leader ] && port=$lp
				[ "$where" = follower ] && port=$fp
				cpu0=$(cpu_busy)
				out=$(as_pg pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c "$c" -j "$c" \
					-T "$SECONDS_PER_RUN" -f "$DISTX_TMP/transfer.sql" postgres 2>&1)
				cpu1=$(cpu_busy)
				tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
				lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
				xacts=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
				printf '  2PC transfer, run %d, %-8s %d clients: %8s tps, %6s ms, %s ms CPU per transaction\n' \
					"$r" "$where" "$c" "$tps" "$lat" "$(cpu_ms_per "$cpu0" "$cpu1" "${xacts:-0}")"
			done
		done
	done
	for c in $CLIENTS; do
		for where in leader follower; do
			local port=$lp
			[ "$where" = follower ] && port=$fp
			local out tps lat cpu0 cpu1 xacts
			cpu0=$(cpu_busy)
			out=$(as_pg pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c "$c" -j "$c" \
				-T "$SECONDS_PER_RUN" -f "$DISTX_TMP/decide.sql" postgres 2>&1)
			cpu1=$(cpu_busy)
			tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
			lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
			xacts=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
			printf '  decisions on the %-8s %d clients: %8s per second, %6s ms each, %s ms CPU each\n' \
				"$where" "$c" "$tps" "$lat" "$(cpu_ms_per "$cpu0" "$cpu1" "${xacts:-0}")"
		done
	done

	for n in n1 n2 n3 p1 p2 single; do
		as_pg pg_ctl -D "$DISTX_TMP/$tag$n" stop -m immediate >/dev/null 2>&1
	done
}

for el in $ELECTIONS; do
	run_setting "$el"
done
