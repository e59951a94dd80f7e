#!/usr/bin/env bash
# test/bench/journal_sync.sh -- licdata's licensee statement rate with
# licdata.journal_sync = on against PostgreSQL's own rate for one
# synchronous-commit INSERT per statement, at the same concurrency, side by
# side in alternating rounds of one invocation.
#
# Usage (after `make && make install`, as root in the checkout):
#   test/bench/journal_sync.sh    as root (runs the server as postgres) or as
#                                 any user that may run initdb
# Settings: LICDATA_BENCH_CLIENTS ("1 2 4 8"), LICDATA_BENCH_ROUNDS (3),
# LICDATA_BENCH_SECONDS (5 per run), LICDATA_BENCH_ROWS (100000 here),
# LICDATA_BENCH_KEEP=1, LICDATA_BENCH_BUILD (see lib-bench.sh),
# LICDATA_BENCH_SYNC_METHODS ("wal fdatasync": the licdata.journal_sync_method
# values measured, each against the same INSERT runs),
# LICDATA_BENCH_SLOW_FLUSH_US (unset: the disk as it is; N: every fdatasync
# and fsync of the server first waits N microseconds, one flush at a time
# across all processes -- test/bench/slowflush.c, an LD_PRELOAD shim: a
# model of a slow disk that stays the same for the whole run).
#
# Workloads, pgbench -n -M prepared -c C -j min(C,2) -T SECONDS:
#   insert    PostgreSQL without licdata (shared_preload_libraries = ''), the
#             superuser, synchronous_commit = on (the default), one INSERT
#             per statement (and per transaction: a WAL flush each):
#                 \set id random(1, ROWS)
#                 INSERT INTO bench_t VALUES (:id, now(), 'x');
#             PostgreSQL groups the WAL flushes of concurrent commits.
#   licdata   licdata preloaded with licdata.journal_sync = on, licensee
#             bank_a, purpose bench_sync: a licence with a row filter
#             (salary >= 0, every row passes) and 2 masks (id_number
#             pseudonym, name cn_name); the flusher live at its default
#             interval (1 s):
#                 \set id random(1, ROWS)
#                 SELECT * FROM pd.people WHERE person_id = :id;
#             Every statement's journal record is durable before its result
#             is sent (the point of journal_sync = on): with
#             journal_sync_method = wal through a WAL flush that concurrent
#             statements share, with fdatasync by one fdatasync of the
#             backend's own journal file per statement.
# Both run on the same file system (the cluster's data directory holds the
# WAL and pg_licdata/journal).
#
# Output: per round and concurrency both rates and licdata/insert, and the
# median ratio per concurrency (goal >= 1.0); per run, the block device's
# cache flushes per statement (/proc/diskstats, machine-wide): below 1 when
# concurrent statements share a flush.
set -euo pipefail

: "${LICDATA_BENCH_ROWS:=100000}"
: "${LICDATA_BENCH_SECONDS:=5}"
export LICDATA_BENCH_ROWS LICDATA_BENCH_SECONDS
SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
# shellcheck source=test/lib/common.sh
. "$TOP/test/lib/common.sh"
# shellcheck source=test/bench/lib-bench.sh
. "$TOP/test/bench/lib-bench.sh"
bench_enter "$SELF" "$@"

# ---------------------------------------------------------------------------
# Inner part: the test user, in BENCH_DIR.
# ---------------------------------------------------------------------------
START=$(date +%s)
SU=$(id -un)
CLIENTS=${LICDATA_BENCH_CLIENTS:-1 2 4 8}
METHODS=${LICDATA_BENCH_SYNC_METHODS:-wal fdatasync}

echo "== journal_sync: pgbench -n -M prepared -c {$CLIENTS} -T $BENCH_SECONDS, $BENCH_ROUNDS rounds, pd.people $BENCH_ROWS rows"
echo "== machine: $(bench_machine)"
echo "== file system of the cluster: $(df -T /tmp | awk 'NR == 2 { print $2 }')"
if [ -n "${LICDATA_BENCH_SLOW_FLUSH_US:-}" ]; then
	cc -shared -fPIC -O2 -o "$BENCH_DIR/slowflush.so" "$TOP/test/bench/slowflush.c" -ldl
	export LICDATA_BENCH_SLOW_FLUSH_LOCK="$BENCH_DIR/slowflush.lock"
	export LD_PRELOAD="$BENCH_DIR/slowflush.so${LD_PRELOAD:+ $LD_PRELOAD}"
	echo "== flushes made slow: each fdatasync/fsync waits ${LICDATA_BENCH_SLOW_FLUSH_US} us first, one at a time (test/bench/slowflush.c)"
fi
bench_cluster_start
echo "== loading pd.people and licences"
bench_load_people
bench_setup_licdata
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-'SQL'
	SELECT licdata.grant_licence('bank_a', 'pd.people', ARRAY['bench_sync'],
								 row_filter => 'salary >= 0') AS l_sync \gset
	SELECT licdata.set_mask('pd.people', 'id_number', 'pseudonym', '{}', licence_id => :l_sync);
	SELECT licdata.set_mask('pd.people', 'name', 'cn_name', '{}', licence_id => :l_sync);
	CREATE TABLE bench_t (id bigint, at timestamptz, v text);
	ALTER SYSTEM SET licdata.journal_sync = on;
SQL
psql -X -q -c "SELECT pg_reload_conf()" >/dev/null

cat >"$BENCH_DIR/point.sql" <<EOF
\\set id random(1, $BENCH_ROWS)
SELECT * FROM pd.people WHERE person_id = :id;
EOF
cat >"$BENCH_DIR/insert.sql" <<EOF
\\set id random(1, $BENCH_ROWS)
INSERT INTO bench_t VALUES (:id, now(), 'x');
EOF

# The data directory's block device and its count of completed cache
# flushes (/proc/diskstats field 15, Linux >= 5.5; machine-wide: other
# processes' flushes count too).
DEV=$(basename "$(df --output=source "$LD_CLUSTER_DIR/data" | tail -n 1)")
flushes()
{
	awk -v d="$DEV" '$3 == d { print ($19 == "" ? 0 : $19) }' /proc/diskstats 2>/dev/null | head -n 1
}

# pgb CLIENTS ROLE PURPOSE SCRIPT: one run; prints "<statements per second>
# <device flushes per statement>" (pgbench's tps, connections excluded) or
# "failed -".
pgb()
{
	local c=$1 role=$2 purpose=$3 script=$4 out=$BENCH_DIR/pgbench.out j=$1 f0 f1 n
	[ "$j" -le 2 ] || j=2
	f0=$(flushes)
	if ! PGOPTIONS="${purpose:+-c licdata.purpose=$purpose}" pgbench -n -M prepared -c "$c" -j "$j" \
		-T "$BENCH_SECONDS" -U "$role" -f "$script" "$BENCH_DB" >"$out" 2>&1 ||
		grep -q aborted "$out"; then
		tail -n 3 "$out" >&2
		echo "failed -"
		return 0
	fi
	f1=$(flushes)
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" |
		awk -v f=$((${f1:-0} - ${f0:-0})) -v n="${n:-0}" '{ printf "%.0f %.2f\n", $1, (n > 0 ? f / n : 0) }'
}

declare -A R F
# one_run MODE CLIENTS ROUND: restart in MODE, warm up, measure.
one_run()
{
	local mode=$1 c=$2 r=$3 m
	if [ "${mode%%:*}" = licdata ]; then
		m=${mode#licdata:}
		bench_restart licdata
		psql -X -q -c "ALTER SYSTEM SET licdata.journal_sync_method = '$m'" -c "SELECT pg_reload_conf()" >/dev/null
		bench_prewarm
		pgb 1 bank_a bench_sync "$BENCH_DIR/point.sql" >/dev/null # warm-up
		read -r R["$m,$c,$r"] F["$m,$c,$r"] <<<"$(pgb "$c" bank_a bench_sync "$BENCH_DIR/point.sql")"
		echo "   round $r -c $c licdata (journal_sync = on, method $m): ${R[$m,$c,$r]} statements/s, ${F[$m,$c,$r]} device flushes per statement"
	else
		bench_restart plain
		psql -X -q -c "TRUNCATE bench_t" >/dev/null
		pgb 1 "$SU" "" "$BENCH_DIR/insert.sql" >/dev/null
		read -r R["insert,$c,$r"] F["insert,$c,$r"] <<<"$(pgb "$c" "$SU" "" "$BENCH_DIR/insert.sql")"
		echo "   round $r -c $c insert (synchronous_commit = on): ${R[insert,$c,$r]} statements/s, ${F[insert,$c,$r]} device flushes per statement"
	fi
}

# The disk's latency drifts within seconds on a shared machine: the two
# modes run back to back for each concurrency, the order alternating.
k=0
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
	echo "== round $r"
	for c in $CLIENTS; do
		k=$((k + 1))
		if [ $((k % 2)) -eq 1 ]; then
			for m in $METHODS; do one_run "licdata:$m" "$c" "$r"; done
			one_run insert "$c" "$r"
		else
			one_run insert "$c" "$r"
			for m in $METHODS; do one_run "licdata:$m" "$c" "$r"; done
		fi
	done
done
bench_restart licdata

echo
for m in $METHODS; do
echo
echo "Statements per second: licdata licensee lookups (journal_sync = on, journal_sync_method = $m) vs PostgreSQL sync-commit INSERTs"
printf '%-8s %-7s %12s %12s %8s\n' clients round "licdata/s" "insert/s" ratio
for c in $CLIENTS; do
	ratios=()
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		l=${R[$m,$c,$r]}
		p=${R[insert,$c,$r]}
		if [ "$l" = failed ] || [ "$p" = failed ]; then
			printf '%-8s %-7s %12s\n' "$c" "$r" failed
			continue
		fi
		x=$(bench_ratio "$l" "$p")
		ratios+=("$x")
		printf '%-8s %-7s %12s %12s %8s\n' "$c" "$r" "$l" "$p" "$x"
	done
	if [ "${#ratios[@]}" -gt 0 ]; then
		printf '%-8s %-7s %12s %12s %8s\n' "$c" median "" "" "$(bench_median "${ratios[@]}")"
	fi
done
done
echo "goal: ratio >= 1.0 at every concurrency"
echo "device flushes per statement (machine-wide, from /proc/diskstats): see the per-run lines above"
echo "== done in $(ld_fmt_secs $(($(date +%s) - START)))"
