#!/usr/bin/env bash
# test/bench/masked_scan.sh -- a licensee's full scan of pd.people with 5
# masked columns vs the operator's unmasked scan of the same columns.
#
# Usage (after `make && make install`, as root in the checkout):
#   test/bench/masked_scan.sh      as root (runs the server as postgres) or
#                                  as any user that may run initdb
# Settings: LICDATA_BENCH_ROUNDS (default 5 here), LICDATA_BENCH_ROWS
# (1000000), LICDATA_BENCH_KEEP=1.
#
# The licensee bank_a reads under purpose bench_scan, whose licence masks
#   id_number   pseudonym (keyed, 16 characters)
#   name        cn_name   (surname kept)
#   mobile      cn_mobile (138****1234)
#   birth_date  date_trunc, unit month
#   salary      bucket, width 1000
# The operator (the cluster's superuser) reads the raw columns.  Both
# sessions: max_parallel_workers_per_gather = 0 (one core each, no parallel
# plans), jit = off.  Two statements, each of which evaluates every masked
# column of every row (a bare count(*) would not evaluate the masks):
#   aggregate  SELECT sum(length(id_number)), sum(length(name)),
#                     sum(length(mobile)), max(birth_date), sum(salary)
#                FROM pd.people
#   copy       COPY (SELECT id_number, name, mobile, birth_date, salary
#                      FROM pd.people) TO STDOUT     -- 1M rows to the client
#                                                     (psql, to /dev/null)
# timed with psql's \timing (server round trip, not connection set-up),
# operator and licensee alternating, ROUNDS times each; then each column
# alone (aggregate form), 5 rounds, to show which mask costs what (a rough
# split: single-column scans are short, so noise shows more).
# Prints times per round and the median ratio licensee / operator.
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
ROUNDS=${LICDATA_BENCH_ROUNDS:-5}
SU=$(id -un)
SESSION_OPTS="-c max_parallel_workers_per_gather=0 -c jit=off"

echo "== masked_scan: full scan of pd.people ($BENCH_ROWS rows), 5 masked columns, $ROUNDS rounds"
echo "== machine: $(bench_machine)"
bench_cluster_start
echo "== loading pd.people and licences"
bench_load_people
bench_setup_licdata
bench_prewarm

AGG="SELECT sum(length(id_number)), sum(length(name)), sum(length(mobile)), max(birth_date), sum(salary) FROM pd.people"
COPYQ="COPY (SELECT id_number, name, mobile, birth_date, salary FROM pd.people) TO STDOUT"

# as ROLE [PURPOSE] -- psql ARGS...: psql as ROLE with the session options.
as()
{
	local role=$1 purpose=$2
	shift 3
	PGOPTIONS="$SESSION_OPTS${purpose:+ -c licdata.purpose=$purpose}" psql -X -q -v ON_ERROR_STOP=1 -U "$role" "$@"
}

# Sanity: the licensee sees masked values, the operator raw ones.
LIC_ROW=$(as bank_a bench_scan -- -At -F' | ' -c "SELECT id_number, name, mobile, birth_date, salary FROM pd.people WHERE person_id = 12345")
OP_ROW=$(as "$SU" "" -- -At -F' | ' -c "SELECT id_number, name, mobile, birth_date, salary FROM pd.people WHERE person_id = 12345")
echo "   operator sees: $OP_ROW"
echo "   licensee sees: $LIC_ROW"
case $LIC_ROW in
*'*'*) ;;
*) ld_die "the licensee's row shows no masked value: the benchmark would measure nothing" ;;
esac
[ "$LIC_ROW" != "$OP_ROW" ] || ld_die "the licensee sees the operator's values"

# timed ROLE PURPOSE SQL: server time of one statement in ms (\timing); its
# output is discarded.
timed()
{
	local role=$1 purpose=$2 sql=$3 out
	out=$(as "$role" "$purpose" -- -c '\timing on' -c '\o /dev/null' -c "$sql" 2>&1) || {
		echo "ERROR: statement failed as $role: $out" >&2
		exit 1
	}
	echo "$out" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n 1
}

# warm-up: both roles, both statements (caches, keys, buffers)
for q in "$AGG" "$COPYQ"; do
	timed "$SU" "" "$q" >/dev/null
	timed bank_a bench_scan "$q" >/dev/null
done

declare -A MS
for ((r = 1; r <= ROUNDS; r++)); do
	for q in aggregate copy; do
		sql=$AGG
		[ "$q" = copy ] && sql=$COPYQ
		if [ $((r % 2)) -eq 1 ]; then
			MS["$q,op,$r"]=$(timed "$SU" "" "$sql")
			MS["$q,lic,$r"]=$(timed bank_a bench_scan "$sql")
		else
			MS["$q,lic,$r"]=$(timed bank_a bench_scan "$sql")
			MS["$q,op,$r"]=$(timed "$SU" "" "$sql")
		fi
	done
	printf '   round %d  aggregate: operator %8.1f ms  licensee %8.1f ms   copy: operator %8.1f ms  licensee %8.1f ms\n' \
		"$r" "${MS[aggregate,op,$r]}" "${MS[aggregate,lic,$r]}" "${MS[copy,op,$r]}" "${MS[copy,lic,$r]}"
done

echo
echo "Full scan of $BENCH_ROWS rows, 5 columns (ms; ratio = licensee / operator in the same round; lower is better)"
printf '%-10s %-9s' statement who
for ((r = 1; r <= ROUNDS; r++)); do printf '%10s' "r$r"; done
printf '%10s\n' median
for q in aggregate copy; do
	for w in op lic; do
		vals=()
		printf '%-10s %-9s' "$q" "$([ $w = op ] && echo operator || echo licensee)"
		for ((r = 1; r <= ROUNDS; r++)); do
			printf '%10s' "${MS[$q,$w,$r]}"
			vals+=("${MS[$q,$w,$r]}")
		done
		printf '%10s\n' "$(bench_median "${vals[@]}")"
	done
	ratios=()
	printf '%-10s %-9s' "$q" ratio
	for ((r = 1; r <= ROUNDS; r++)); do
		x=$(bench_ratio "${MS[$q,lic,$r]}" "${MS[$q,op,$r]}")
		ratios+=("$x")
		printf '%10s' "$x"
	done
	printf '%10s   (goal <= 1.5; min %s, max %s)\n' "$(bench_median "${ratios[@]}")" \
		"$(bench_min "${ratios[@]}")" "$(bench_max "${ratios[@]}")"
done

# Per column: which mask costs what (aggregate form, 3 rounds).
echo
echo "Each masked column alone (aggregate over $BENCH_ROWS rows; ms, median of 5 alternating rounds)"
printf '%-12s %-26s %10s %10s %10s %14s\n' column "mask" operator licensee ratio "ns/row extra"
for spec in "id_number|pseudonym|sum(length(id_number))" "name|cn_name|sum(length(name))" \
	"mobile|cn_mobile|sum(length(mobile))" "birth_date|date_trunc month|max(birth_date)" \
	"salary|bucket 1000|sum(salary)"; do
	IFS='|' read -r col mask expr <<<"$spec"
	sql="SELECT $expr FROM pd.people"
	ops=()
	lics=()
	for r in 1 2 3 4 5; do
		if [ $((r % 2)) -eq 1 ]; then
			ops+=("$(timed "$SU" "" "$sql")")
			lics+=("$(timed bank_a bench_scan "$sql")")
		else
			lics+=("$(timed bank_a bench_scan "$sql")")
			ops+=("$(timed "$SU" "" "$sql")")
		fi
	done
	o=$(bench_median "${ops[@]}")
	l=$(bench_median "${lics[@]}")
	printf '%-12s %-26s %10.1f %10.1f %10s %14s\n' "$col" "$mask" "$o" "$l" "$(bench_ratio "$l" "$o")" \
		"$(awk -v l="$l" -v o="$o" -v n="$BENCH_ROWS" 'BEGIN { printf "%.0f", (l - o) * 1e6 / n }')"
done
echo
echo "== done in $(ld_fmt_secs $(($(date +%s) - START)))"
