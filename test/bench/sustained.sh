#!/usr/bin/env bash
# test/bench/sustained.sh -- sustained licensee throughput with the flusher
# live, against plain PostgreSQL on the same table, in alternating rounds of
# one invocation.
#
# Usage (after `make && make install`, as root in the checkout):
#   test/bench/sustained.sh       as root (runs the server as postgres) or as
#                                 any user that may run initdb
# Settings: LICDATA_BENCH_ROUNDS (3), LICDATA_BENCH_SECONDS (10 per run),
# LICDATA_BENCH_ROWS (1000000), LICDATA_BENCH_KEEP=1, LICDATA_BENCH_BUILD
# (see lib-bench.sh).
#
# Workload: pd.people point lookups, pgbench -n -M prepared -c 2 -j 2 -T SECONDS:
#     \set id random(1, ROWS)
#     SELECT * FROM pd.people WHERE person_id = :id;
#   licdata   licensee bank_a, purpose bench_sustained: a licence with a row
#             filter (salary >= 0, every row passes) and 2 masks (id_number
#             pseudonym, name cn_name); the flusher at its default interval
#             (1 s), competing for the cores.  Then licdata.flush() until it
#             reports every record moved (licdata.journal_status empty): the
#             drain time.
#   plain     shared_preload_libraries = '' (no licdata), the superuser, the
#             same table and script.
#   pgaudit   shared_preload_libraries = pgaudit, pgaudit.log = 'read' (every
#             read logged to the server log), the superuser, the same script;
#             skipped when pgaudit is not installed.
# Each round runs all of them (order reversed every other round).  The sustained
# rate is statements / (run time + drain time): what the system can keep up
# with, metering included.
#
# Output: per round the statements, run and drain times, the rates, licdata's
# ratio to plain PostgreSQL (goal >= 0.80) and to pgaudit, and the drain time
# (goal < 1 s); medians.
set -euo pipefail

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

echo "== sustained: pgbench -n -M prepared -c 2 -j 2 -T $BENCH_SECONDS, $BENCH_ROUNDS rounds, pd.people $BENCH_ROWS rows"
echo "== machine: $(bench_machine)"
bench_cluster_start
echo "== loading pd.people and licences"
bench_load_people
bench_setup_licdata
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-'SQL'
	SELECT licdata.grant_licence('bank_a', 'pd.people', ARRAY['bench_sustained'],
								 row_filter => 'salary >= 0') AS l_sus \gset
	SELECT licdata.set_mask('pd.people', 'id_number', 'pseudonym', '{}', licence_id => :l_sus);
	SELECT licdata.set_mask('pd.people', 'name', 'cn_name', '{}', licence_id => :l_sus);
SQL
bench_prewarm

cat >"$BENCH_DIR/point.sql" <<EOF
\\set id random(1, $BENCH_ROWS)
SELECT * FROM pd.people WHERE person_id = :id;
EOF

# pgb SECONDS ROLE PURPOSE: one run; prints "<statements> <seconds>" (wall
# time of the run, connections included) or "failed -".
pgb()
{
	local secs=$1 role=$2 purpose=$3 out=$BENCH_DIR/pgbench.out t0 t1 n
	t0=$(date +%s%N)
	if ! PGOPTIONS="${purpose:+-c licdata.purpose=$purpose}" pgbench -n -M prepared -c 2 -j 2 \
		-T "$secs" -U "$role" -f "$BENCH_DIR/point.sql" "$BENCH_DB" >"$out" 2>&1 ||
		grep -q aborted "$out"; then
		tail -n 3 "$out" >&2
		echo "failed -"
		return 0
	fi
	t1=$(date +%s%N)
	n=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
	awk -v n="$n" -v ns=$((t1 - t0)) 'BEGIN { printf "%d %.3f\n", n, ns / 1e9 }'
}

# drain: licdata.flush() until the journal holds no record; prints seconds.
drain()
{
	local t0 t1 pending
	t0=$(date +%s%N)
	for _ in $(seq 1 100); do
		psql -X -q -At -c "SELECT licdata.flush(300)" >/dev/null
		pending=$(psql -X -At -c "SELECT coalesce(sum(records_pending), 0) FROM licdata.journal_status")
		[ "$pending" = 0 ] && break
	done
	t1=$(date +%s%N)
	awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.3f", ns / 1e9 }'
}

HAVE_PGAUDIT=1
if [ ! -f "$LD_PG_PKGLIBDIR/pgaudit.so" ]; then
	HAVE_PGAUDIT=0
	echo "== pgaudit is not installed (package postgresql-$LD_PG_MAJOR-pgaudit): no pgaudit rounds"
fi

declare -A N T D
mode_run()
{
	local mode=$1 r=$2 n t d=0
	bench_restart "$mode"
	bench_prewarm
	if [ "$mode" = licdata ]; then
		bench_flusher live
		pgb 1 bank_a bench_sustained >/dev/null # warm-up: caches, plans
		drain >/dev/null
		read -r n t <<<"$(pgb "$BENCH_SECONDS" bank_a bench_sustained)"
		d=$(drain)
		moved=$(psql -X -At -c "SELECT count(*) FROM licdata.usage")
		echo "   round $r licdata: $n statements in $t s, drained in $d s ($moved usage rows in all)"
	else
		pgb 1 "$SU" "" >/dev/null
		read -r n t <<<"$(pgb "$BENCH_SECONDS" "$SU" "")"
		echo "   round $r $mode:$( [ "$mode" = plain ] && echo '  ') $n statements in $t s"
	fi
	N["$mode,$r"]=$n
	T["$mode,$r"]=$t
	D["$mode,$r"]=$d
}

for ((r = 1; r <= BENCH_ROUNDS; r++)); do
	echo "== round $r"
	if [ $((r % 2)) -eq 1 ]; then
		mode_run licdata "$r"
		mode_run plain "$r"
		[ "$HAVE_PGAUDIT" = 0 ] || mode_run pgaudit "$r"
	else
		[ "$HAVE_PGAUDIT" = 0 ] || mode_run pgaudit "$r"
		mode_run plain "$r"
		mode_run licdata "$r"
	fi
done
bench_restart licdata

echo
echo "Sustained statements per second = statements / (run time + drain time)"
printf '%-7s %12s %12s %12s %10s %12s %8s\n' round "licdata/s" "plain/s" "pgaudit/s" "vs plain" "vs pgaudit" drain_s
ratios=()
aratios=()
drains=()
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
	if [ "${N[licdata,$r]}" = failed ] || [ "${N[plain,$r]}" = failed ]; then
		printf '%-7s %12s\n' "$r" failed
		continue
	fi
	rl=$(awk -v n="${N[licdata,$r]}" -v t="${T[licdata,$r]}" -v d="${D[licdata,$r]}" 'BEGIN { printf "%.0f", n / (t + d) }')
	rp=$(awk -v n="${N[plain,$r]}" -v t="${T[plain,$r]}" 'BEGIN { printf "%.0f", n / t }')
	x=$(bench_ratio "$rl" "$rp")
	ratios+=("$x")
	ra=- xa=-
	if [ "$HAVE_PGAUDIT" = 1 ] && [ "${N[pgaudit,$r]}" != failed ]; then
		ra=$(awk -v n="${N[pgaudit,$r]}" -v t="${T[pgaudit,$r]}" 'BEGIN { printf "%.0f", n / t }')
		xa=$(bench_ratio "$rl" "$ra")
		aratios+=("$xa")
	fi
	drains+=("${D[licdata,$r]}")
	printf '%-7s %12s %12s %12s %10s %12s %8s\n' "$r" "$rl" "$rp" "$ra" "$x" "$xa" "${D[licdata,$r]}"
done
if [ "${#ratios[@]}" -gt 0 ]; then
	am=-
	[ "${#aratios[@]}" -eq 0 ] || am=$(bench_median "${aratios[@]}")
	printf '%-7s %12s %12s %12s %10s %12s %8s\n' median "" "" "" "$(bench_median "${ratios[@]}")" "$am" "$(bench_median "${drains[@]}")"
fi
echo "goals: ratio to plain >= 0.80, drain after a ${BENCH_SECONDS}-second run < 1 s"
echo "== done in $(ld_fmt_secs $(($(date +%s) - START)))"
