#!/usr/bin/env bash
# test/clients/psycopg2_test.sh -- licdata through psycopg2 (Debian package
# python3-psycopg2): named server-side cursors, copy_expert COPY ... TO STDOUT,
# LD SQLSTATEs, and rows received compared with licdata.usage; see
# test/clients/psycopg2_test.py.
#
# Run by test/run-tests.sh (suite "clients") with LICDATA_TOP and LICDATA_TMP set.
# Exit 0 pass, 1 fail, 77 skip (no python3 with psycopg2).
set -uo pipefail

: "${LICDATA_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${LICDATA_TMP:=$(mktemp -d /tmp/licdata-psycopg2.XXXXXX)}"
# shellcheck source=test/lib/common.sh
. "$LICDATA_TOP/test/lib/common.sh"
ld_pg_paths
export PATH="$LD_PG_BINDIR:$PATH"

DB=licdata_psycopg2
echo "== psycopg2_test: licdata through psycopg2"
PY=
for p in /usr/bin/python3 "$(command -v python3 2>/dev/null)"; do
	if [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import psycopg2' 2>/dev/null; then
		PY=$p
		break
	fi
done
if [ -z "$PY" ]; then
	echo "SKIP: no python3 with psycopg2 (Debian package python3-psycopg2)"
	exit 77
fi
echo "-- $PY, psycopg2 $("$PY" -c 'import psycopg2; print(psycopg2.__version__)')"

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
timeout -k 5 120 "$PY" "$LICDATA_TOP/test/clients/psycopg2_test.py" "$PGHOST" "$PGPORT" "$DB" bank_a "$PGUSER" ||
	rc=$?
if [ "$rc" -ne 0 ]; then
	echo "---- server log (last 30 lines) ----"
	tail -n 30 "$LD_CLUSTER_DIR/postgresql.log"
	echo "psycopg2_test: FAIL"
	exit 1
fi
echo "psycopg2_test: PASS"
exit 0
