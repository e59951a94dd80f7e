#!/usr/bin/env bash
# test/clients/jdbc_test.sh -- licdata through JDBC (pgjdbc, Debian package
# libpostgresql-jdbc-java; JDK: default-jdk-headless).
#
# Starts a throwaway cluster listening on 127.0.0.1 (pg_hba from initdb -A trust),
# loads test/clients/fixture.sql, compiles test/clients/LicdataJdbcTest.java into
# $LICDATA_TMP and runs it: the licensee bank_a connects with
#   jdbc:postgresql://127.0.0.1:PORT/DB?options=-c%20licdata.purpose%3Dcredit_assessment%20-c%20licdata.consent_ref%3DAPP-1
# and checks masked prepared lookups across pgjdbc's switch to a named server-side
# statement, purpose changes under a prepared statement, cursor streaming
# (setFetchSize) against the usage rows, the LD00x SQLSTATEs, DatabaseMetaData and
# ResultSetMetaData types.
#
# Run by test/run-tests.sh (suite "clients") with LICDATA_TOP and LICDATA_TMP set;
# by hand, as a non-root user with the extension installed:
#   LICDATA_TOP=$PWD LICDATA_TMP=$(mktemp -d) test/clients/jdbc_test.sh
# Exit 0 pass, 1 fail, 77 skip (no JDK or no pgjdbc jar).
set -uo pipefail

: "${LICDATA_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${LICDATA_TMP:=$(mktemp -d /tmp/licdata-jdbc.XXXXXX)}"
# shellcheck source=test/lib/common.sh
. "$LICDATA_TOP/test/lib/common.sh"
ld_pg_paths
export PATH="$LD_PG_BINDIR:$PATH"

JAR=${LICDATA_JDBC_JAR:-/usr/share/java/postgresql.jar}
DB=licdata_jdbc
LICENSEE=bank_a

echo "== jdbc_test: licdata through pgjdbc"
if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
	echo "SKIP: no javac/java (Debian package default-jdk-headless)"
	exit 77
fi
if [ ! -r "$JAR" ]; then
	echo "SKIP: no pgjdbc jar at $JAR (Debian package libpostgresql-jdbc-java)"
	exit 77
fi

echo "-- compile LicdataJdbcTest.java ($(javac -version 2>&1))"
mkdir -p "$LICDATA_TMP/classes"
if ! javac -nowarn -encoding UTF-8 -cp "$JAR" -d "$LICDATA_TMP/classes" \
	"$LICDATA_TOP/test/clients/LicdataJdbcTest.java"; then
	echo "FAIL: LicdataJdbcTest.java does not compile"
	exit 1
fi

trap ld_cluster_stop EXIT
echo "-- start a cluster (TCP on localhost) and load test/clients/fixture.sql"
ld_cluster_start "$LICDATA_TMP/pg" "$DB" "listen_addresses = 'localhost'
licdata.flush_interval = '100ms'"
if ! psql -X -q -v ON_ERROR_STOP=1 -f "$LICDATA_TOP/test/clients/fixture.sql" \
	>"$LICDATA_TMP/fixture.log" 2>&1; then
	cat "$LICDATA_TMP/fixture.log"
	echo "FAIL: test/clients/fixture.sql"
	exit 1
fi

echo "-- run LicdataJdbcTest (server 127.0.0.1:$PGPORT, database $DB, licensee $LICENSEE)"
rc=0
timeout -k 5 100 java -Duser.timezone=UTC -cp "$LICDATA_TMP/classes:$JAR" LicdataJdbcTest \
	127.0.0.1 "$PGPORT" "$DB" "$LICENSEE" "$PGUSER" || rc=$?
if [ "$rc" -ne 0 ]; then
	[ "$rc" -eq 124 ] && echo "FAIL: LicdataJdbcTest timed out"
	echo "---- the licensee's usage and audit rows (after licdata.flush()) ----"
	psql -X -q -c "SELECT licdata.flush()" >/dev/null 2>&1
	psql -X -P pager=off -c "SELECT id, outcome, sqlstate, rows_delivered AS delivered, rows,
		left(regexp_replace(statement, '\\s+', ' ', 'g'), 90) AS statement
		FROM licdata.usage ORDER BY id" 2>&1 | tail -n 60
	psql -X -P pager=off -c "SELECT seq, decision, sqlstate, rows,
		left(regexp_replace(statement, '\\s+', ' ', 'g'), 90) AS statement
		FROM licdata.audit_log WHERE decision = 'deny' ORDER BY seq" 2>&1 | tail -n 30
	echo "---- server log (last 30 lines) ----"
	tail -n 30 "$LD_CLUSTER_DIR/postgresql.log"
	echo "jdbc_test: FAIL"
	exit 1
fi
echo "jdbc_test: PASS"
exit 0
