#!/bin/sh
#-------------------------------------------------------------------------
#
# run_check.sh -- run every Raft test and print numbered TAP to stdout.
#
# Called by "make check" after the programs are built.  Each program
# prints unnumbered lines ("ok - ...", "not ok - ...", "# ..."); this
# script numbers them, prints the plan last, and exits non-zero if any
# test failed or a program crashed.  The long random batches run two at a
# time (the CI machine has two cores); their output is collected in out/
# and printed in a fixed order, so the TAP stream is deterministic.
#
#-------------------------------------------------------------------------
set -u
cd "$(dirname "$0")" || exit 2
mkdir -p out
rm -f out/*.tap

# name | command; every command prints TAP lines without numbers
JOBS='codec|./codec_test
api|./api_test
storage|./storage_test
scen|./raft_sim --scenarios
determinism|./raft_sim --nodes 5 --seeds 1-300 --determinism
n3a|./raft_sim --nodes 3 --seeds 1-10000
n3b|./raft_sim --nodes 3 --seeds 10001-20000
n5a|./raft_sim --nodes 5 --seeds 1-10000
n5b|./raft_sim --nodes 5 --seeds 10001-20000
bugvote_scen|./raft_sim_bug_vote --scenarios
bugvote_3|./raft_sim_bug_vote --nodes 3 --seeds 1-5000 --expect-violation
bugvote_5|./raft_sim_bug_vote --nodes 5 --seeds 1-5000 --expect-violation
bugcommit_scen|./raft_sim_bug_commit --scenarios
bugcommit_3|./raft_sim_bug_commit --nodes 3 --seeds 1-60000 --expect-violation'

# Sanitizer builds, if the toolchain made them.  LeakSanitizer cannot run
# under some sandboxes (it needs ptrace); then run without leak checks.
if [ -x ./codec_test_asan ] && [ -x ./api_test_asan ] && [ -x ./storage_test_asan ] && [ -x ./raft_sim_asan ]; then
	if ASAN_OPTIONS=detect_leaks=1 ./codec_test_asan > /dev/null 2>&1; then
		ASAN_OPTIONS=detect_leaks=1
	else
		ASAN_OPTIONS=detect_leaks=0
	fi
	export ASAN_OPTIONS
	JOBS="$JOBS
asan_codec|./codec_test_asan
asan_api|./api_test_asan
asan_storage|./storage_test_asan
asan_scen|./raft_sim_asan --scenarios
asan_3|./raft_sim_asan --nodes 3 --seeds 1-1500
asan_5|./raft_sim_asan --nodes 5 --seeds 1-1000"
else
	JOBS="$JOBS
asan_skip|echo 'ok - sanitizer runs # SKIP compiler cannot build -fsanitize=address,undefined'"
fi

run_one() {
	# $1 = name, $2 = command; a crash or missing "ok" line is a failure
	sh -c "$2" > "out/$1.tap" 2> "out/$1.err"
	rc=$?
	if [ $rc -ne 0 ] && ! grep -q '^not ok' "out/$1.tap"; then
		echo "not ok - $1: '$2' exited with status $rc" >> "out/$1.tap"
		sed 's/^/# /' "out/$1.err" >> "out/$1.tap"
	fi
	if ! grep -q '^ok\|^not ok' "out/$1.tap"; then
		echo "not ok - $1: '$2' printed no result" >> "out/$1.tap"
	fi
}

# two at a time
pids=""
n=0
echo "$JOBS" | {
	while IFS='|' read -r name cmd; do
		run_one "$name" "$cmd" &
		pids="$pids $!"
		n=$((n + 1))
		if [ $((n % 2)) -eq 0 ]; then
			wait
		fi
	done
	wait
}

num=0
failed=0
for name in $(echo "$JOBS" | cut -d'|' -f1); do
	case "$name" in
		asan_skip) pfx="" ;;
		asan_*) pfx="under ASan+UBSan: " ;;
		*) pfx="" ;;
	esac
	while IFS= read -r line; do
		case "$line" in
			"ok - "*)
				num=$((num + 1))
				echo "ok $num - $pfx${line#ok - }"
				;;
			"not ok - "*)
				num=$((num + 1))
				failed=$((failed + 1))
				echo "not ok $num - $pfx${line#not ok - }"
				;;
			*)
				echo "$line"
				;;
		esac
	done < "out/$name.tap"
done
echo "1..$num"
if [ $failed -ne 0 ]; then
	echo "# $failed of $num raft tests failed"
	exit 1
fi
exit 0
