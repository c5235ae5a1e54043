#!/usr/bin/env bash
# scripts/test.sh: run every distx test suite and print "N passed, N failed".
#
#   sudo bash scripts/test.sh            (or: make test)
#
# Suites: plain-C unit tests and the Raft simulator (test/raft), pg_regress
# (sql/, expected/), pg_isolation_regress (test/isolation) and TAP
# (test/t/*.pl, PostgreSQL::Test::Cluster).  Select some with
# DISTX_SUITES="unit regress isolation tap" and TAP files with
# DISTX_TAP="test/t/010_foo.pl ...".
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUITES=${DISTX_SUITES:-"unit regress isolation tap"}
PASSED=0
FAILED=0
FAILED_NAMES=""

ensure_packages
build_and_install
make_tmpdir

# The suites run as the unprivileged user on a private copy of the tree, so
# that the checkout may be anywhere (even under /root) and stays clean.
WORK=$DISTX_TMP/src
mkdir -p "$WORK"
tar -C "$DISTX_SRC" --exclude=.git --exclude='*.o' --exclude='*.so' -cf - . | tar -C "$WORK" -xf -
[ "$(id -u)" = 0 ] && chown -R "$PGUSER_OS" "$WORK"
LOGDIR=$DISTX_TMP/logs
mkdir -p "$LOGDIR"
[ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$LOGDIR"

record() {	# record NAME passed failed
	PASSED=$((PASSED + $2))
	FAILED=$((FAILED + $3))
	[ "$3" -gt 0 ] && FAILED_NAMES="$FAILED_NAMES $1"
	say "-- $1: $2 passed, $3 failed"
}

# count TAP lines of a log: prints "passed failed"
count_tap() {
	local p f
	p=$(grep -cE '^ok [0-9]+' "$1")
	f=$(grep -cE '^not ok [0-9]+' "$1")
	echo "$p $f"
}

run_unit() {
	local log=$LOGDIR/unit.log rc p f
	say "== unit tests and Raft simulation (test/raft)"
	if [ ! -f "$WORK/test/raft/Makefile" ]; then
		say "-- no test/raft"
		return
	fi
	as_pg make -C "$WORK/test/raft" -s check > "$log" 2>&1
	rc=$?
	read -r p f < <(count_tap "$log")
	grep -E '^not ok' "$log"
	if [ $rc != 0 ] && [ "$f" = 0 ]; then
		tail -20 "$log"
		f=1
	fi
	record unit "$p" "$f"
}

# run_pg_regress NAME BINARY INPUTDIR TESTS...: pg_regress or
# pg_isolation_regress against a temporary instance configured by
# test/regress.conf
run_pg_regress() {
	local name=$1 binary=$2 inputdir=$3 log=$LOGDIR/$1.log rc p f
	shift 3
	(cd "$WORK" && as_pg timeout 900 "$binary" \
		--temp-instance="$DISTX_TMP/$name-instance" \
		--temp-config="$WORK/test/regress.conf" \
		--bindir="$PGBIN" \
		--inputdir="$inputdir" --outputdir="$DISTX_TMP/$name" \
		--port="$(free_port)" \
		--dbname=contrib_regression \
		"$@") > "$log" 2>&1
	rc=$?
	p=$(grep -cE '\.\.\. ok' "$log")
	f=$(grep -cE '\.\.\. FAILED' "$log")
	grep -E '\.\.\. FAILED' "$log"
	if [ $rc != 0 ]; then
		[ -f "$DISTX_TMP/$name/regression.diffs" ] && head -200 "$DISTX_TMP/$name/regression.diffs"
		[ "$f" = 0 ] && { tail -20 "$log"; f=1; }
	fi
	record "$name" "$p" "$f"
}

run_regress() {
	local tests
	say "== pg_regress (sql/, expected/)"
	tests=$(cd "$WORK/sql" && ls *.sql 2>/dev/null | grep -v '^distx--' | sed 's/\.sql$//' | sort)
	[ -n "$tests" ] || { say "-- no regression tests"; return; }
	run_pg_regress regress "$PG_REGRESS" "$WORK" $tests
}

run_isolation() {
	local tests
	say "== pg_isolation_regress (test/isolation)"
	tests=$(cd "$WORK/test/isolation/specs" 2>/dev/null && ls *.spec 2>/dev/null | sed 's/\.spec$//' | sort)
	[ -n "$tests" ] || { say "-- no isolation tests"; return; }
	run_pg_regress isolation "$PG_ISOLATION_REGRESS" "$WORK/test/isolation" $tests
}

run_tap() {
	local files t log rc p f tp=0 tf=0
	say "== TAP (test/t)"
	files=${DISTX_TAP:-$(cd "$WORK" && ls test/t/*.pl 2>/dev/null | sort)}
	[ -n "$files" ] || { say "-- no TAP tests"; return; }
	mkdir -p "$DISTX_TMP/tap"
	[ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$DISTX_TMP/tap"
	for t in $files; do
		log=$LOGDIR/tap-$(basename "$t" .pl).log
		(cd "$WORK" && as_pg env TESTDIR="$DISTX_TMP/tap" PG_REGRESS="$PG_REGRESS" \
			PERL5LIB="$PG_PERL_LIB:$WORK/test/perl" \
			timeout 1200 prove -v "$t") > "$log" 2>&1
		rc=$?
		read -r p f < <(count_tap "$log")
		if [ $rc != 0 ] && [ "$f" = 0 ]; then f=1; fi
		if [ "$f" != 0 ]; then
			grep -E '^not ok|^#' "$log" | head -60
			tail -5 "$log"
			FAILED_NAMES="$FAILED_NAMES $t"
		fi
		say "   $t: $p passed, $f failed"
		tp=$((tp + p))
		tf=$((tf + f))
	done
	record tap "$tp" "$tf"
}

for s in $SUITES; do
	case $s in
		unit) run_unit ;;
		regress) run_regress ;;
		isolation) run_isolation ;;
		tap) run_tap ;;
		*) die "unknown suite $s" ;;
	esac
done

if [ "$FAILED" != 0 ]; then
	say "failed:$FAILED_NAMES (logs of servers and suites are kept only with DISTX_KEEP_TMP=1)"
fi
say "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
