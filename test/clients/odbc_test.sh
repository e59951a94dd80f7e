#!/usr/bin/env bash
# test/clients/odbc_test.sh -- licdata through ODBC (psqlODBC 13 + unixODBC;
# Debian packages odbc-postgresql and unixodbc).
#
# Starts a throwaway cluster, loads test/clients/fixture.sql, writes its own
# odbcinst.ini / odbc.ini into $LICDATA_TMP (ODBCSYSINI, ODBCINI: the system
# odbcinst.ini turns CommLog on), then
#   1. isql smoke checks (isql -b exits 0 on SQL errors, so its output is compared);
#   2. test/clients/odbc_test.c, compiled against libodbc.so.2 (no unixodbc-dev
#      needed): prepared lookups, purpose changes under a prepared statement,
#      cursor fetches (UseDeclareFetch=1 Fetch=100, SQL_ATTR_ROW_ARRAY_SIZE) against
#      the usage rows, the LD00x SQLSTATEs, SQLColumns / SQLDescribeCol types.
# The licensee's DSN passes purpose and consent reference as startup options:
#   Pqopt=options='-c licdata.purpose=credit_assessment -c licdata.consent_ref=APP-2'
#
# Run by test/run-tests.sh (suite "clients") with LICDATA_TOP and LICDATA_TMP set;
# by hand, as a non-root user with the extension installed:
#   LICDATA_TOP=$PWD LICDATA_TMP=$(mktemp -d) test/clients/odbc_test.sh
# Exit 0 pass, 1 fail, 77 skip (psqlODBC, unixODBC or a C compiler missing).
set -uo pipefail

: "${LICDATA_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${LICDATA_TMP:=$(mktemp -d /tmp/licdata-odbc.XXXXXX)}"
# shellcheck source=test/lib/common.sh
. "$LICDATA_TOP/test/lib/common.sh"
ld_pg_paths
export PATH="$LD_PG_BINDIR:$PATH"

DB=licdata_odbc
LICENSEE=bank_a
PQOPT="options='-c licdata.purpose=credit_assessment -c licdata.consent_ref=APP-2'"

echo "== odbc_test: licdata through psqlODBC + unixODBC"
DRIVER=
for f in /usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so /usr/lib/*/odbc/psqlodbcw.so; do
	if [ -r "$f" ]; then
		DRIVER=$f
		break
	fi
done
LIBODBC=
for f in /usr/lib/x86_64-linux-gnu/libodbc.so.2 /usr/lib/*/libodbc.so.2; do
	if [ -r "$f" ]; then
		LIBODBC=$f
		break
	fi
done
if [ -z "$DRIVER" ]; then
	echo "SKIP: psqlODBC driver psqlodbcw.so not found (Debian package odbc-postgresql)"
	exit 77
fi
if [ -z "$LIBODBC" ] || ! command -v isql >/dev/null 2>&1; then
	echo "SKIP: unixODBC (libodbc.so.2, isql) not found (Debian package unixodbc)"
	exit 77
fi
CC=${CC:-cc}
if ! command -v "$CC" >/dev/null 2>&1; then
	echo "SKIP: no C compiler ($CC)"
	exit 77
fi

echo "-- compile odbc_test.c against $LIBODBC"
if ! "$CC" -std=gnu99 -O1 -Wall -o "$LICDATA_TMP/odbc_test" "$LICDATA_TOP/test/clients/odbc_test.c" \
	"$LIBODBC"; then
	echo "FAIL: odbc_test.c does not compile"
	exit 1
fi

trap ld_cluster_stop EXIT
echo "-- start a cluster and load test/clients/fixture.sql"
ld_cluster_start "$LICDATA_TMP/pg" "$DB" "licdata.flush_interval = '100ms'"
if ! psql -X -q -v ON_ERROR_STOP=1 -f "$LICDATA_TOP/test/clients/fixture.sql" \
	>"$LICDATA_TMP/fixture.log" 2>&1; then
	cat "$LICDATA_TMP/fixture.log"
	echo "FAIL: test/clients/fixture.sql"
	exit 1
fi

# Our own driver and DSN files; CommLog off.  Servername is the socket directory.
export ODBCSYSINI=$LICDATA_TMP/odbc
export ODBCINI=$ODBCSYSINI/odbc.ini
mkdir -p "$ODBCSYSINI"
cat >"$ODBCSYSINI/odbcinst.ini" <<EOF
[licdata-psqlodbc]
Description = psqlODBC Unicode driver (licdata client test)
Driver = $DRIVER
Debug = 0
CommLog = 0
EOF
dsn()
{
	local name=$1 user=$2
	shift 2
	printf '[%s]\nDriver = licdata-psqlodbc\nServername = %s\nPort = %s\nDatabase = %s\nUsername = %s\nDebug = 0\nCommLog = 0\n' \
		"$name" "$PGHOST" "$PGPORT" "$DB" "$user"
	printf '%s\n' "$@"
	echo
}
{
	dsn licdata_bank "$LICENSEE" "Pqopt = $PQOPT" "UseDeclareFetch = 1" "Fetch = 100"
	dsn licdata_plain "$LICENSEE" "Pqopt = $PQOPT" "UseDeclareFetch = 0"
	dsn licdata_settings "$LICENSEE" \
		"ConnSettings = SET licdata.purpose = 'credit_assessment'; SET licdata.consent_ref = 'APP-3'"
	dsn licdata_nopurpose "$LICENSEE"
	dsn licdata_super "$PGUSER"
} >"$ODBCINI"
echo "-- DSNs in $ODBCINI:"
sed 's/^/   /' "$ODBCINI"

fails=0
pass() { echo "PASS: $*"; }
fail()
{
	echo "FAIL: $*"
	fails=$((fails + 1))
}

# isql: -b batch, -v verbose errors (with the SQLSTATE), -x0x09 tab-separated.
isql_run()
{
	local dsn=$1
	timeout 30 isql -b -v -x0x09 "$dsn" 2>&1
}

echo "-- isql smoke checks (isql -b exits 0 on SQL errors: its output is compared)"
out=$(printf '%s\n' "SELECT person_id, id_number, name, region, birth FROM pd.people WHERE person_id IN (1, 3) ORDER BY person_id" | isql_run licdata_bank)
want_line=$(psql -X -A -t -F $'\t' -c "SELECT person_id, licdata.mask_pseudonym(id_number, 16, '$LICENSEE'), licdata_internal.mask_cn_name(name), region, date_trunc('month', birth)::date FROM pd.people WHERE person_id = 1")
if [ "$out" = "$want_line" ]; then
	pass "isql: person 1 masked (id_number token, name, birth month), person 3 (region xj) filtered"
else
	fail "isql: masked row -- want '$want_line', got: $out"
fi
out=$(echo "SELECT salary FROM pd.people" | isql_run licdata_bank)
if grep -q '\[LD003\]' <<<"$out" && grep -q 'salary' <<<"$out"; then
	pass "isql: SELECT salary -> [LD003] naming the column"
else
	fail "isql: SELECT salary -> LD003 -- got: $out"
fi
out=$(echo "SELECT person_id FROM pd.people LIMIT 1" | isql_run licdata_nopurpose)
if grep -q '\[LD001\]' <<<"$out"; then
	pass "isql: DSN without Pqopt -> [LD001]"
else
	fail "isql: no purpose -> LD001 -- got: $out"
fi
out=$(echo "SELECT count(*) FROM pd.people" | isql_run licdata_plain)
if grep -q "^$(psql -X -A -t -c "SELECT count(*) FROM pd.people WHERE region <> 'xj'")\$" <<<"$out"; then
	pass "isql: count(*) over the dataset counts licensed rows only"
else
	fail "isql: count(*) -- got: $out"
fi

echo "-- odbc_test (C, libodbc)"
rc=0
timeout -k 5 100 "$LICDATA_TMP/odbc_test" "$LICENSEE" || rc=$?
if [ "$rc" -eq 124 ]; then
	fail "odbc_test timed out"
elif [ "$rc" -ne 0 ]; then
	fail "odbc_test reported failures (exit $rc)"
fi

if [ "$fails" -ne 0 ]; then
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
	echo "odbc_test: FAIL"
	exit 1
fi
echo "odbc_test: PASS"
exit 0
