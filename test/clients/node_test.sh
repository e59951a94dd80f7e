#!/usr/bin/env bash
# test/clients/node_test.sh -- licdata through node-postgres: npm's pg,
# pg-cursor and pg-query-stream, installed with npm into this test's scratch
# directory at test time; see test/clients/node_test.js.
#
# Run by test/run-tests.sh (suite "clients") with LICDATA_TOP and LICDATA_TMP set.
# Exit 0 pass, 1 fail, 77 skip (no node/npm, or npm cannot install the packages,
# e.g. no network: the reason is printed).
set -uo pipefail

: "${LICDATA_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${LICDATA_TMP:=$(mktemp -d /tmp/licdata-node.XXXXXX)}"
# shellcheck source=test/lib/common.sh
. "$LICDATA_TOP/test/lib/common.sh"
ld_pg_paths
export PATH="$LD_PG_BINDIR:$PATH"

DB=licdata_node
echo "== node_test: licdata through node-postgres (pg, pg-cursor, pg-query-stream)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "SKIP: node and npm are needed (e.g. Debian packages nodejs npm)"
	exit 77
fi
echo "-- node $(node --version), npm $(npm --version)"

MOD=$LICDATA_TMP/npm
mkdir -p "$MOD"
echo "-- npm install pg pg-cursor pg-query-stream (into $MOD)"
if ! (cd "$MOD" && timeout -k 5 180 env npm_config_cache="$MOD/.cache" npm_config_update_notifier=false \
	npm install --no-audit --no-fund --silent pg pg-cursor pg-query-stream >"$MOD/npm.log" 2>&1); then
	tail -n 5 "$MOD/npm.log"
	echo "SKIP: npm could not install pg, pg-cursor, pg-query-stream (no registry access?)"
	exit 77
fi
echo "-- installed: $(cd "$MOD" && npm ls --depth=0 2>/dev/null | sed -n 's/^[^a-z]*\(pg[^ ]*@[^ ]*\).*/\1/p' | tr '\n' ' ')"

trap ld_cluster_stop EXIT
echo "-- start a cluster and load test/clients/fixture.sql"
ld_cluster_start "$LICDATA_TMP/pg" "$DB" "licdata.flush_interval = '100ms'"
if ! psql -X -q -v ON_ERROR_STOP=1 -f "$LICDATA_TOP/test/clients/fixture.sql" \
	>"$LICDATA_TMP/fixture.log" 2>&1; then
	cat "$LICDATA_TMP/fixture.log"
	echo "FAIL: test/clients/fixture.sql"
	exit 1
fi

rc=0
NODE_PATH=$MOD/node_modules timeout -k 5 120 node "$LICDATA_TOP/test/clients/node_test.js" \
	"$PGHOST" "$PGPORT" "$DB" bank_a "$PGUSER" || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "---- server log (last 30 lines) ----"
	tail -n 30 "$LD_CLUSTER_DIR/postgresql.log"
	echo "node_test: FAIL"
	exit 1
fi
echo "node_test: PASS"
exit 0
