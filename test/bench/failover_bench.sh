#!/usr/bin/env bash
# test/bench/failover_bench.sh: how long a 3-node distx cluster is without
# a coordinator after kill -9 of the leader's postmaster, and what a commit
# through Raft costs.
#
# For each election timeout in BENCH_ELECTION (ms; the heartbeat is a tenth
# of it), BENCH_TRIALS times: kill -9 the leader, then poll the two
# survivors every 10 ms until both name the same new leader ("elected")
# and that leader reports raft_status.coordinator ("acting": it has
# applied an entry of its term and heard from a majority); restart the
# killed node and wait until it follows before the next trial.  Times are
# from the kill to the first poll that saw it (psql start-up makes the
# resolution about 10-20 ms).  Not yet measured: the resolution of
# in-doubt transactions (2PC does not use the cluster yet).
#
# Then pgbench runs distx._cluster_decide() (one Raft entry each: append,
# fsync, replicate to a majority, apply in a local transaction) on the
# leader and on a follower, BENCH_SECONDS each at BENCH_CLIENTS clients.
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
	local elected=() acting=()
	local tag="e$el"

	for n in n1 n2 n3; do PORT[$n]=$(free_port); done
	for n in n1 n2 n3; do
		start_node "$tag$n" "${PORT[$n]}" "fsync = on" \
			"distx.raft_election_timeout = '${el}ms'" "distx.raft_heartbeat_interval = '${hb}ms'"
		psql_node "${PORT[$n]}" -q -c "CREATE EXTENSION distx"
	done
	for n in n1 n2 n3; do
		for m in n1 n2 n3; do
			psql_node "${PORT[$n]}" -q -c "CREATE SERVER $m FOREIGN DATA WRAPPER distx OPTIONS (host '127.0.0.1', port '${PORT[$m]}', dbname 'postgres');
				CREATE USER MAPPING FOR PUBLIC SERVER $m OPTIONS (user 'postgres');"
		done
	done
	psql_node "${PORT[n1]}" -q -c "SELECT distx.cluster_init()" >/dev/null
	psql_node "${PORT[n1]}" -q -c "SELECT distx.cluster_add_node('n2')" >/dev/null
	psql_node "${PORT[n1]}" -q -c "SELECT distx.cluster_add_node('n3')" >/dev/null

	for i in $(seq 1 "$TRIALS"); do
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

		local pmpid kids
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
			if [ -n "$t1" ] && [ "$(q "${PORT[$a]}" "SELECT coordinator FROM distx.raft_status WHERE is_self")" = "t" ]; then
				t2=$(now_ms)
				break
			fi
			sleep 0.01
		done
		[ -n "$t2" ] || die "no new coordinator in trial $i"
		elected+=($(( t1 - t0 )))
		acting+=($(( t2 - t0 )))
		printf '  trial %2d: %s killed, %s elected after %d ms, acting after %d ms\n' \
			"$i" "$leader" "$a" $(( t1 - t0 )) $(( t2 - t0 ))
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
	for c in $CLIENTS; do
		for where in leader follower; do
			local port=$lp
			[ "$where" = follower ] && port=$fp
			local out tps lat
			out=$(as_pg pgbench -n -h 127.0.0.1 -p "$port" -U postgres -c "$c" -j "$c" \
				-T "$SECONDS_PER_RUN" -f "$DISTX_TMP/decide.sql" postgres 2>&1)
			tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
			lat=$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
			printf '  decisions on the %-8s %d clients: %8s per second, %6s ms each\n' "$where" "$c" "$tps" "$lat"
		done
	done

	for n in n1 n2 n3; do
		as_pg pg_ctl -D "$DISTX_TMP/$tag$n" stop -m immediate >/dev/null 2>&1
	done
}

for el in $ELECTIONS; do
	run_setting "$el"
done
