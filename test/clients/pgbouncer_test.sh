#!/usr/bin/env bash
# test/clients/pgbouncer_test.sh -- licdata behind a real pgbouncer (Debian
# package pgbouncer) in transaction pooling mode, with one server connection
# (default_pool_size = 1), so every client runs on the same server backend.
#
#   1. pgbouncer refuses the startup option that carries a purpose
#      (options=-c licdata.purpose=...): "unsupported startup parameter".
#   2. purpose_scope 'session' (the default): client A runs a plain SET of
#      purpose and consent reference and goes; client B, which set nothing, is
#      served under A's purpose and its usage row carries A's consent
#      reference -- the leak the README warns about.
#   3. after licdata.alter_licensee(bank_a, 'transaction'), the same sequence:
#      client B is refused (LD001); with SET LOCAL of the purpose only, B is
#      refused for the consent reference (LD007), A's leaked one does not count.
#   4. the safe pattern: BEGIN; SET LOCAL purpose, consent_ref; SELECT; COMMIT
#      is served, metered with B's own reference, and leaves nothing behind for
#      client C.
# Usage rows are read after licdata.flush() directly from the server.
#
# Run by test/run-tests.sh (suite "clients") with LICDATA_TOP and LICDATA_TMP set.
# Exit 0 pass, 1 fail, 77 skip (pgbouncer not installed).
set -uo pipefail

: "${LICDATA_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${LICDATA_TMP:=$(mktemp -d /tmp/licdata-bouncer.XXXXXX)}"
# shellcheck source=test/lib/common.sh
. "$LICDATA_TOP/test/lib/common.sh"
ld_pg_paths
export PATH="$LD_PG_BINDIR:$PATH"

DB=licdata_bouncer
PGBOUNCER=
for f in /usr/sbin/pgbouncer "$(command -v pgbouncer 2>/dev/null)"; do
	if [ -n "$f" ] && [ -x "$f" ]; then
		PGBOUNCER=$f
		break
	fi
done
echo "== pgbouncer_test: licdata behind pgbouncer, transaction pooling"
if [ -z "$PGBOUNCER" ]; then
	echo "SKIP: pgbouncer not found (Debian package pgbouncer)"
	exit 77
fi
echo "-- $("$PGBOUNCER" --version 2>&1 | head -n1)"

BOUNCER_PID=
cleanup()
{
	if [ -n "$BOUNCER_PID" ] && kill -0 "$BOUNCER_PID" 2>/dev/null; then
		kill "$BOUNCER_PID" 2>/dev/null
		wait "$BOUNCER_PID" 2>/dev/null
	fi
	ld_cluster_stop
}
trap cleanup EXIT

echo "-- start a cluster and load test/clients/fixture.sql"
ld_cluster_start "$LICDATA_TMP/pg" "$DB" "licdata.flush_interval = '100ms'"
if ! psql -X -q -v ON_ERROR_STOP=1 -f "$LICDATA_TOP/test/clients/fixture.sql" \
	>"$LICDATA_TMP/fixture.log" 2>&1; then
	cat "$LICDATA_TMP/fixture.log"
	echo "FAIL: test/clients/fixture.sql"
	exit 1
fi

BPORT=$(ld_free_port 56432) || ld_die "no free port for pgbouncer"
mkdir -p "$LICDATA_TMP/bouncer"
printf '"bank_a" ""\n' >"$LICDATA_TMP/bouncer/users.txt"
cat >"$LICDATA_TMP/bouncer/pgbouncer.ini" <<EOF
[databases]
$DB = host=$PGHOST port=$PGPORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BPORT
unix_socket_dir =
auth_type = trust
auth_file = $LICDATA_TMP/bouncer/users.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 20
logfile = $LICDATA_TMP/bouncer/pgbouncer.log
pidfile = $LICDATA_TMP/bouncer/pgbouncer.pid
EOF
"$PGBOUNCER" "$LICDATA_TMP/bouncer/pgbouncer.ini" >"$LICDATA_TMP/bouncer/stdout.log" 2>&1 &
BOUNCER_PID=$!
for _ in $(seq 1 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$BPORT") 2>/dev/null && break
	sleep 0.1
done

failures=0
ok()
{
	echo "ok: $*"
}
not_ok()
{
	echo "NOT OK: $*"
	failures=$((failures + 1))
}

# client SQL: one psql connection through pgbouncer as the licensee
client()
{
	PGOPTIONS= psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$BPORT" -U bank_a -d "$DB" "$@" 2>&1
}
# operator SQL: directly on the server
server()
{
	psql -X -At -v ON_ERROR_STOP=1 "$@" 2>&1
}
# usage rows of bank_a after the given id: "consent_ref|outcome|rows" lines
usage_after()
{
	server -q -c "SELECT licdata.flush()" >/dev/null
	server -c "SELECT consent_ref || '|' || outcome || '|' || rows FROM licdata.usage
		WHERE licensee = 'bank_a'::regrole AND id > $1 ORDER BY id"
}
last_usage_id()
{
	server -q -c "SELECT licdata.flush()" >/dev/null
	server -c "SELECT coalesce(max(id), 0) FROM licdata.usage"
}
QUERY="SELECT count(*) FROM pd.people WHERE region = 'bj'"

# 0. the pool works, and it is one server connection for everyone
out=$(client -c "SELECT 1")
if [ "$out" = 1 ]; then ok "a client connects through pgbouncer"; else
	not_ok "cannot connect through pgbouncer: $out"
	tail -n 20 "$LICDATA_TMP/bouncer/pgbouncer.log"
	exit 1
fi
pids=$( (client -c "SELECT pg_backend_pid()"; client -c "SELECT pg_backend_pid()") | sort -u | wc -l)
if [ "$pids" -eq 1 ]; then ok "two clients ran on one server connection"; else
	not_ok "clients ran on $pids server connections"
fi

# 1. options=-c is refused by pgbouncer
out=$(PGOPTIONS='-c licdata.purpose=credit_assessment' psql -X -At -h 127.0.0.1 -p "$BPORT" -U bank_a \
	-d "$DB" -c "SELECT 1" 2>&1)
if grep -q "unsupported startup parameter" <<<"$out"; then
	ok "pgbouncer refuses options=-c licdata.purpose=... ($out)"
else
	not_ok "options startup parameter was not refused: $out"
fi

# 2. session scope: client A's plain SET serves client B
start=$(last_usage_id)
out=$(client -c "SET licdata.purpose = 'credit_assessment'" -c "SET licdata.consent_ref = 'CLIENT-A'" \
	-c "$QUERY")
if [ "$out" = "$(printf 'SET\nSET\n12500')" ] || [ "$out" = 12500 ]; then ok "client A is served"; else
	not_ok "client A: $out"
fi
out=$(client -c "$QUERY")
if [ "$out" = 12500 ]; then
	ok "session scope: client B, which set nothing, is served under client A's purpose (the leak)"
else
	not_ok "session scope: expected client B to inherit A's purpose, got: $out"
fi
rows=$(usage_after "$start")
if [ "$rows" = "$(printf 'CLIENT-A|ok|1\nCLIENT-A|ok|1')" ]; then
	ok "session scope: B's usage row carries A's consent reference (the leak)"
else
	not_ok "session scope usage rows: $rows"
fi

# 3. transaction scope: the same sequence is refused
server -q -c "SELECT licdata.alter_licensee('bank_a', 'transaction')" >/dev/null
start=$(last_usage_id)
client -c "SET licdata.purpose = 'credit_assessment'" -c "SET licdata.consent_ref = 'CLIENT-A'" >/dev/null
out=$(client -c "$QUERY")
if grep -q "no purpose declared .* in this transaction" <<<"$out"; then
	ok "transaction scope: client B without SET LOCAL is refused: $(echo "$out" | head -n1)"
else
	not_ok "transaction scope: client B was not refused: $out"
fi
out=$(client -c "SHOW licdata.consent_ref")
if [ "$out" = CLIENT-A ]; then ok "(client A's plain SET is still on the server connection)"; else
	not_ok "expected A's consent reference still set on the server connection, got: $out"
fi
out=$(client -c "BEGIN" -c "SET LOCAL licdata.purpose = 'credit_assessment'" -c "$QUERY" -c "COMMIT")
if grep -q "requires a consent reference" <<<"$out"; then
	ok "transaction scope: SET LOCAL purpose alone is refused; A's leaked consent reference does not count"
else
	not_ok "transaction scope: expected LD007, got: $out"
fi

# 4. the safe pattern
out=$(client -c "BEGIN" -c "SET LOCAL licdata.purpose = 'credit_assessment'" \
	-c "SET LOCAL licdata.consent_ref = 'CLIENT-B'" -c "$QUERY" -c "COMMIT")
if grep -qx 12500 <<<"$out"; then ok "transaction scope: BEGIN; SET LOCAL ...; query; COMMIT is served"; else
	not_ok "transaction scope: SET LOCAL pattern: $out"
fi
out=$(client -c "$QUERY")
if grep -q "no purpose declared" <<<"$out"; then ok "client C after B's transaction gets nothing of it"; else
	not_ok "client C: $out"
fi
rows=$(usage_after "$start")
if [ "$rows" = "CLIENT-B|ok|1" ]; then
	ok "transaction scope: the only usage row is B's, with B's own consent reference"
else
	not_ok "transaction scope usage rows: $rows"
fi
denied=$(server -c "SELECT count(*) FROM licdata.audit_log
	WHERE licensee = 'bank_a'::regrole AND decision = 'deny' AND consent_ref = 'CLIENT-A'")
if [ "$denied" = 0 ]; then ok "no refused statement is recorded under A's consent reference"; else
	not_ok "$denied refusals recorded under A's consent reference"
fi

if [ "$failures" -gt 0 ]; then
	echo "---- pgbouncer log (last 20 lines) ----"
	tail -n 20 "$LICDATA_TMP/bouncer/pgbouncer.log"
	echo "pgbouncer_test: FAIL ($failures)"
	exit 1
fi
echo "pgbouncer_test: PASS"
exit 0
