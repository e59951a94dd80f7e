#!/usr/bin/env bash
# test/bench/flusher.sh -- the licdata flusher in isolation: how many journal
# records it moves into licdata.usage and licdata.audit_log per CPU-second of
# its own process, and per second of wall time.
#
# Usage (after `make && make install`, as root in the checkout):
#   test/bench/flusher.sh         as root (runs the server as postgres) or as
#                                 any user that may run initdb
# Settings: LICDATA_BENCH_RECORDS (records per round, 100000),
# LICDATA_BENCH_ROUNDS (3), LICDATA_BENCH_ROWS (rows in pd.people, 100000),
# LICDATA_BENCH_KEEP=1, LICDATA_BENCH_BUILD (see lib-bench.sh),
# LICDATA_BENCH_PAUSE=1 (before each drain, print the flusher's pid and wait
# for a file "go" in the scratch directory: time to attach perf to it),
# LICDATA_BENCH_WARMUP (records drained before the measured rounds, 0),
# LICDATA_BENCH_SHARED_BUFFERS (e.g. 128MB; default lib-bench.sh's 512MB),
# LICDATA_BENCH_SQL (SQL run as the superuser before the rounds, e.g. to try
# another set of indexes), LICDATA_BENCH_COLD=1 (do not touch every shared
# buffer first: see below).
#
# Each round:
#   1. with the flusher idle (licdata.flush_interval = 3600s), licensee bank_a
#      (purpose bench_mask: 2 masks) makes RECORDS statements:
#        pgbench -n -M prepared -c 2 -j 2 -t RECORDS/2, a primary-key lookup;
#      each statement is one journal record (one audit row, one usage row);
#   2. licdata.flush() wakes the flusher and waits until every record is in
#      the tables: the flusher's CPU time (utime + stime in /proc/PID/stat)
#      and the wall time of the drain, the WAL it wrote.
# Output per round and the median: records per CPU-second of the flusher,
# records per wall second, CPU microseconds and WAL bytes per record.  At
# the end: verify_audit(), the rows in the tables, the batches' size per record,
# and how long reading every record through the views takes.
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
LICDATA_BENCH_ROWS=${LICDATA_BENCH_ROWS:-100000}
export LICDATA_BENCH_ROWS
# shellcheck source=test/lib/common.sh
. "$TOP/test/lib/common.sh"
# shellcheck source=test/bench/lib-bench.sh
. "$TOP/test/bench/lib-bench.sh"
bench_enter "$SELF" "$@"

# ---------------------------------------------------------------------------
# Inner part: the test user, in BENCH_DIR.
# ---------------------------------------------------------------------------
START=$(date +%s)
RECORDS=${LICDATA_BENCH_RECORDS:-100000}
PER_CLIENT=$((RECORDS / 2))
RECORDS=$((PER_CLIENT * 2))
TCK=$(getconf CLK_TCK)

echo "== flusher: $RECORDS records per round, $BENCH_ROUNDS rounds, pd.people $BENCH_ROWS rows"
echo "== machine: $(bench_machine)"
bench_cluster_start "licdata.flush_interval = '3600s'${LICDATA_BENCH_SHARED_BUFFERS:+
shared_buffers = '$LICDATA_BENCH_SHARED_BUFFERS'}"
echo "== loading pd.people and licences"
bench_load_people
bench_setup_licdata
bench_prewarm
if [ "${LICDATA_BENCH_COLD:-0}" != 1 ]; then
	# A server that has run a while has touched all of its shared buffers; a
	# new one takes a page fault the first time each buffer is used, and the
	# flusher's new pages would pay for them.  Touch them all first.
	echo "== touching the shared buffers (LICDATA_BENCH_COLD=1 skips this)"
	psql -X -q -v ON_ERROR_STOP=1 <<-'SQL'
		CREATE UNLOGGED TABLE bench_fill AS
			SELECT g, repeat('x', 2000) AS pad
			  FROM generate_series(1, (SELECT setting::bigint * 3 FROM pg_settings WHERE name = 'shared_buffers')) g;
		SELECT pg_prewarm('bench_fill') > 0 AS prewarmed \gset
		DROP TABLE bench_fill;
	SQL
	bench_prewarm
fi
if [ -n "${LICDATA_BENCH_SQL:-}" ]; then
	echo "== running LICDATA_BENCH_SQL"
	psql -X -q -v ON_ERROR_STOP=1 -c "$LICDATA_BENCH_SQL" || ld_die "LICDATA_BENCH_SQL failed"
fi

cat >"$BENCH_DIR/point.sql" <<EOF
\\set id random(1, $BENCH_ROWS)
SELECT * FROM pd.people WHERE person_id = :id;
EOF

# cpu_ticks PID: utime + stime of the process, in clock ticks
cpu_ticks()
{
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# flusher_pid: the flusher's pid (it restarts within 5 s if it started
# before the database existed)
flusher_pid()
{
	local p
	for _ in $(seq 1 100); do
		p=$(psql -X -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'licdata flusher'")
		[ -n "$p" ] && break
		sleep 0.2
	done
	echo "$p"
}

if [ "${LICDATA_BENCH_WARMUP:-0}" -gt 0 ]; then
	# records drained before the measured rounds: the flusher process maps
	# shared buffers (a page fault the first time it touches each), as a
	# long-running one has
	echo "== warm-up: ${LICDATA_BENCH_WARMUP} records drained, not counted"
	PGOPTIONS="-c licdata.purpose=bench_mask" pgbench -n -M prepared -c 2 -j 2 -t $((LICDATA_BENCH_WARMUP / 2)) \
		-U bank_a -f "$BENCH_DIR/point.sql" "$BENCH_DB" >"$BENCH_DIR/pgbench.out" 2>&1 || ld_die "pgbench failed"
	psql -X -q -At -c "SELECT licdata.flush(600)" >/dev/null
fi

cpu=()
wall=()
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
	pid=$(flusher_pid)
	[ -n "$pid" ] || ld_die "no licdata flusher running"
	if ! PGOPTIONS="-c licdata.purpose=bench_mask" pgbench -n -M prepared -c 2 -j 2 -t "$PER_CLIENT" \
		-U bank_a -f "$BENCH_DIR/point.sql" "$BENCH_DB" >"$BENCH_DIR/pgbench.out" 2>&1; then
		tail -n 5 "$BENCH_DIR/pgbench.out" >&2
		ld_die "pgbench failed"
	fi
	pending=$(psql -X -At -c "SELECT coalesce(sum(records_pending), 0) FROM licdata.journal_status")
	files=$(bench_journal_files)
	if [ "${LICDATA_BENCH_PAUSE:-0}" = 1 ]; then
		rm -f "$BENCH_DIR/go"
		echo "   flusher pid $pid: waiting for $BENCH_DIR/go"
		while [ ! -f "$BENCH_DIR/go" ]; do sleep 0.2; done
	fi
	[ "$(flusher_pid)" = "$pid" ] || ld_die "the flusher restarted"
	lsn0=$(psql -X -At -c "SELECT pg_current_wal_lsn()")
	c0=$(cpu_ticks "$pid")
	t0=$(date +%s%N)
	ok=$(psql -X -At -c "SELECT licdata.flush(600)")
	t1=$(date +%s%N)
	c1=$(cpu_ticks "$pid")
	wal=$(psql -X -At -c "SELECT pg_current_wal_lsn() - '$lsn0'::pg_lsn")
	left=$(psql -X -At -c "SELECT coalesce(sum(records_pending), 0) FROM licdata.journal_status")
	[ "$ok" = t ] && [ "$left" = 0 ] || ld_die "the drain did not finish (flush: $ok, pending: $left)"
	line=$(awk -v n="$RECORDS" -v ticks=$((c1 - c0)) -v tck="$TCK" -v ns=$((t1 - t0)) -v wal="$wal" \
		'BEGIN { cs = ticks / tck; ws = ns / 1e9;
			printf "%d %.2f %.2f %.0f %.0f %.1f %.0f", n, cs, ws, (cs > 0 ? n / cs : 0), n / ws, cs * 1e6 / n, wal / n }')
	read -r n cs ws rc rw us wb <<<"$line"
	cpu+=("$rc")
	wall+=("$rw")
	printf '   round %d: %d records (%s pending in %s files) drained in %s s wall, %s s flusher CPU: %s records/CPU-s, %s records/wall-s, %s µs CPU and %s WAL bytes per record; load %s\n' \
		"$r" "$n" "$pending" "$files" "$ws" "$cs" "$rc" "$rw" "$us" "$wb" "$(cut -d' ' -f1 /proc/loadavg)"
done

echo
echo "median records per CPU-second of the flusher: $(bench_median "${cpu[@]}")"
echo "median records per wall second of the drain:  $(bench_median "${wall[@]}")"
psql -X -At -F ' ' <<-'SQL' | sed 's/^/   /'
	SELECT 'verify_audit ok:', ok, 'records checked:', records_checked FROM licdata.verify_audit();
	SELECT 'usage rows:', count(*) FROM licdata.usage;
	SELECT 'audit rows:', count(*) FROM licdata.audit_log;
	SELECT 'record batches:', count(*), 'bytes per record (table and TOAST, indexes):',
		   pg_table_size('licdata_internal.record_batches') / greatest(sum(audit_rows), 1),
		   pg_indexes_size('licdata_internal.record_batches') / greatest(sum(audit_rows), 1)
	  FROM licdata_internal.record_batches;
	\timing on
	-- readers go through the views, which unpack every batch
	SELECT 'reading every usage row (count):', count(*) FROM licdata.usage;
	SELECT 'reading every audit row (count):', count(*) FROM licdata.audit_log;
	SELECT 'one licensee, one day (sum of amount):', sum(amount) FROM licdata.usage
	 WHERE licensee = 'bank_a'::regrole AND at >= now() - interval '1 day';
SQL
echo "== done in $(ld_fmt_secs $(($(date +%s) - START)))"
