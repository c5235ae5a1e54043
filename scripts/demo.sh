#!/usr/bin/env bash
# scripts/demo.sh: see distx work on throwaway local servers.
#
#   sudo bash scripts/demo.sh            (or: make demo)
#
# Builds and installs distx, starts three PostgreSQL 15 servers on loopback
# ports under a temporary directory (a coordinator "shop" and two shards),
# runs scripts/demo.sql on the coordinator, and removes everything again.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_packages
build_and_install
make_tmpdir

P_SHOP=$(free_port)
P_A=$(free_port)
P_B=$(free_port)
say "== starting servers: shop (coordinator) on $P_SHOP, shard_a on $P_A, shard_b on $P_B"
start_node shop "$P_SHOP" "distx.recovery_interval = '1s'" "distx.node_name = 'shop'"
# participants need no distx, only max_prepared_transactions > 0
start_node shard_a "$P_A"
start_node shard_b "$P_B"

for p in $P_A $P_B; do
	psql_node "$p" -q <<'SQL'
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL CHECK (balance >= 0));
INSERT INTO accounts VALUES (7, 'alice', 500), (9, 'bob', 500);
CREATE TABLE stock (sku text PRIMARY KEY, available int NOT NULL CHECK (available >= 0));
INSERT INTO stock VALUES ('book', 3);
SQL
done

cp "$DISTX_SRC/scripts/demo.sql" "$DISTX_TMP/demo.sql"
chmod 644 "$DISTX_TMP/demo.sql"
psql_node "$P_SHOP" -v port_a="$P_A" -v port_b="$P_B" -e -f "$DISTX_TMP/demo.sql" 2>&1 |
	sed -e 's/^psql:[^:]*:[0-9]*: //'
say ""
say "== done; the servers are stopped and $DISTX_TMP is removed"
