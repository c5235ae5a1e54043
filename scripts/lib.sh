# scripts/lib.sh: shared by scripts/test.sh, scripts/demo.sh and test/bench.
#
# Installs what distx needs (when run as root; otherwise prints the apt
# command), builds and installs the extension, and starts throwaway
# PostgreSQL 15 servers as an unprivileged user, on loopback ports, under a
# temporary directory that is removed, servers and all, when the script
# exits or is interrupted.

set -u

PG_MAJOR=15
PGBIN=/usr/lib/postgresql/$PG_MAJOR/bin
PG_CONFIG=$PGBIN/pg_config
PGXS_DIR=/usr/lib/postgresql/$PG_MAJOR/lib/pgxs
PG_REGRESS=$PGXS_DIR/src/test/regress/pg_regress
PG_ISOLATION_REGRESS=$PGXS_DIR/src/test/isolation/pg_isolation_regress
PG_PERL_LIB=$PGXS_DIR/src/test/perl
DISTX_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APT_PACKAGES="build-essential postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-contrib-$PG_MAJOR libipc-run-perl"

# the unprivileged user the servers run as (PostgreSQL refuses root)
if [ "$(id -u)" = 0 ]; then
	PGUSER_OS=postgres
else
	PGUSER_OS=$(id -un)
fi

say() { printf '%s\n' "$*"; }

# Busy CPU time of the whole machine so far, in clock ticks (user, nice,
# system, irq, softirq, steal: all cores, kernel included), and the CPU
# milliseconds per transaction between two readings.
cpu_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
cpu_ms_per() {
	awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { if (n > 0) printf "%.3f", (b - a) * 1000 / hz / n; else print "-" }'
}
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run a command as the unprivileged user, with the PostgreSQL binaries first
# in PATH.
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$PGUSER_OS" -- env PATH="$PGBIN:$PATH" "$@"
	else
		env PATH="$PGBIN:$PATH" "$@"
	fi
}

ensure_packages() {
	local missing=0
	[ -x "$PG_CONFIG" ] || missing=1
	[ -x "$PGBIN/postgres" ] || missing=1
	[ -x "$PG_REGRESS" ] || missing=1
	[ -f "$PG_PERL_LIB/PostgreSQL/Test/Cluster.pm" ] || missing=1
	[ -f "/usr/share/postgresql/$PG_MAJOR/extension/postgres_fdw.control" ] || missing=1
	perl -MIPC::Run -e 1 2>/dev/null || missing=1
	command -v make >/dev/null && command -v gcc >/dev/null || missing=1
	[ $missing = 0 ] && return 0

	if [ "$(id -u)" != 0 ]; then
		die "missing packages; install them with:
  sudo apt-get update && sudo apt-get install -y $APT_PACKAGES"
	fi
	say "== installing packages: $APT_PACKAGES"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq || die "apt-get update failed"
	apt-get install -y -qq $APT_PACKAGES >/dev/null || die "apt-get install failed"
	# the Debian package may start a "main" cluster; nothing here uses it
	if command -v pg_ctlcluster >/dev/null; then
		pg_ctlcluster $PG_MAJOR main stop >/dev/null 2>&1 || true
	fi
}

build_and_install() {
	say "== building distx"
	make -C "$DISTX_SRC" -s PG_CONFIG="$PG_CONFIG" >/dev/null || die "build failed"
	if [ "$(id -u)" = 0 ]; then
		make -C "$DISTX_SRC" -s PG_CONFIG="$PG_CONFIG" install >/dev/null || die "make install failed"
	else
		sudo make -C "$DISTX_SRC" -s PG_CONFIG="$PG_CONFIG" install >/dev/null ||
			die "make install needs root: run this script as root or with sudo"
	fi
}

# A temporary directory owned by the unprivileged user; everything under it,
# servers included, is stopped and removed at exit or on interrupt.
DISTX_TMP=""
make_tmpdir() {
	DISTX_TMP=$(mktemp -d /tmp/distx.XXXXXX) || die "mktemp failed"
	chmod 755 "$DISTX_TMP"
	[ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$DISTX_TMP"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

stop_all_servers() {
	local pidfile pid
	[ -n "$DISTX_TMP" ] && [ -d "$DISTX_TMP" ] || return 0
	while IFS= read -r pidfile; do
		pid=$(head -1 "$pidfile" 2>/dev/null)
		[ -n "$pid" ] || continue
		# a test may have left the server stopped with SIGSTOP
		kill -CONT "$pid" 2>/dev/null
		as_pg pg_ctl -D "$(dirname "$pidfile")" stop -m immediate >/dev/null 2>&1 ||
			kill -9 "$pid" 2>/dev/null
	done < <(find "$DISTX_TMP" -name postmaster.pid 2>/dev/null)
	# anything of ours still running (stopped backends of a killed postmaster)
	pkill -CONT -f "$DISTX_TMP" 2>/dev/null
	pkill -KILL -f "$DISTX_TMP" 2>/dev/null
	return 0
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_all_servers
	if [ -n "${DISTX_KEEP_TMP:-}" ]; then
		say "kept $DISTX_TMP"
	else
		rm -rf "$DISTX_TMP"
	fi
	exit $rc
}

# A free TCP port on 127.0.0.1.
free_port() {
	python3 - <<'PY' 2>/dev/null || perl -MIO::Socket::INET -e 'my $s=IO::Socket::INET->new(Listen=>1,LocalAddr=>"127.0.0.1",LocalPort=>0) or die; print $s->sockport'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
PY
}

# start_node NAME PORT [extra postgresql.conf lines...]
# Starts a server with distx preloaded; its data directory is
# $DISTX_TMP/NAME and its socket directory $DISTX_TMP.
start_node() {
	local name=$1 port=$2 dir
	shift 2
	dir=$DISTX_TMP/$name
	as_pg initdb -D "$dir" -A trust -U postgres --no-sync >/dev/null 2>&1 || die "initdb $name failed"
	{
		echo "port = $port"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$DISTX_TMP'"
		echo "shared_preload_libraries = 'distx'"
		echo "max_prepared_transactions = 20"
		echo "distx.database = 'postgres'"
		for line in "$@"; do echo "$line"; done
	} >> "$dir/postgresql.conf"
	as_pg pg_ctl -D "$dir" -l "$DISTX_TMP/$name.log" -w start >/dev/null ||
		{ cat "$DISTX_TMP/$name.log" >&2; die "starting $name failed"; }
}

# psql_node PORT [psql args...]
psql_node() {
	local port=$1
	shift
	as_pg psql -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"
}

# One run at a time on this machine: every run installs distx system-wide,
# so two runs from different checkouts would test each other's build.  The
# script re-executes itself under flock (-o: servers it starts do not hold
# the lock).
if [ -z "${DISTX_RUN_LOCKED:-}" ] && command -v flock >/dev/null 2>&1; then
	export DISTX_RUN_LOCKED=1
	if ! flock -n /tmp/distx-run.lock true 2>/dev/null; then
		say "== waiting for another distx run to finish (/tmp/distx-run.lock)"
	fi
	exec flock -o /tmp/distx-run.lock bash "$0" "$@"
fi
