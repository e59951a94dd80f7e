#!/usr/bin/env bash
# test/bench/run-all.sh -- every licdata benchmark, one after the other, then
# a summary of their ratios.
#
# Usage (after `make && make install`, as root in the checkout):
#   test/bench/run-all.sh                      as root or as a normal user
#   LICDATA_BENCH_BUILD=/path/to/built/tree test/bench/run-all.sh
#                                              measure a build that is not installed
#
# Runs, each with its own throwaway cluster:
#   callgrind.sh        instructions per primary-key SELECT          (~1.5 min)
#   point_lookup.sh     pgbench TPS: operator / licensee / plain / pgaudit (~6 min)
#   masked_scan.sh      full scan with 5 masked columns vs unmasked  (~1 min)
#   mask_throughput.sh  calls per second of each masking function    (~1 min)
#                       (it needs a server: this script starts one)
# Full output of each goes to LICDATA_BENCH_LOGDIR (default a new
# /tmp/ldbench-logs.XXXXXX, kept) and to the terminal; the summary at the
# end repeats the ratios.  Exit status: 0 when every benchmark ran, 1 when
# one failed to run (never because of a measured time: there is no pass/fail
# by time).
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
BENCH=$(dirname "$SELF")
# shellcheck source=test/lib/common.sh
. "$TOP/test/lib/common.sh"
# shellcheck source=test/bench/lib-bench.sh
. "$TOP/test/bench/lib-bench.sh"

# ---------------------------------------------------------------------------
# Inner part (run-all.sh --inner DIR): a cluster for mask_throughput.sh.
# ---------------------------------------------------------------------------
if [ "${1:-}" = --inner ]; then
	bench_enter "$SELF" "$@"
	echo "== machine: $(bench_machine)"
	bench_cluster_start
	bash "$BENCH/mask_throughput.sh"
	exit $?
fi

# ---------------------------------------------------------------------------
# Outer part
# ---------------------------------------------------------------------------
LOGDIR=${LICDATA_BENCH_LOGDIR:-$(mktemp -d /tmp/ldbench-logs.XXXXXX)}
mkdir -p "$LOGDIR"
if [ "$(id -u)" -eq 0 ]; then
	chmod 755 "$LOGDIR"
fi
START=$(date +%s)
declare -A RC

run_one()
{
	local name=$1
	shift
	echo
	echo "################ $name ($(date +%T))"
	local rc=0
	"$@" 2>&1 | tee "$LOGDIR/$name.log" || rc=${PIPESTATUS[0]}
	RC[$name]=$rc
	[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || echo "!! $name exited with status $rc"
}

run_one callgrind bash "$BENCH/callgrind.sh"
run_one point_lookup bash "$BENCH/point_lookup.sh"
run_one masked_scan bash "$BENCH/masked_scan.sh"
if [ -f "$BENCH/mask_throughput.sh" ]; then
	# shellcheck disable=SC2016  # expanded by the inner bash
	run_one mask_throughput bash -c '( . "$1"/../lib/common.sh; . "$1"/lib-bench.sh; bench_enter "$2" )' _ "$BENCH" "$SELF"
else
	echo "(test/bench/mask_throughput.sh is not there: skipped)"
	RC[mask_throughput]=77
fi

# ---------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------
echo
echo "######################################################################"
echo "licdata benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(ld_fmt_secs $(($(date +%s) - START)))"
echo "machine: $(bench_machine)"
echo "logs: $LOGDIR"
for name in callgrind point_lookup masked_scan mask_throughput; do
	echo
	case ${RC[$name]:-1} in
	0) echo "== $name" ;;
	77) echo "== $name: skipped" ;;
	*) echo "== $name: FAILED to run (status ${RC[$name]:-?}); see $LOGDIR/$name.log" ;;
	esac
	[ -f "$LOGDIR/$name.log" ] || continue
	case $name in
	callgrind)
		sed -n '/^configuration /,/^$/p' "$LOGDIR/$name.log"
		;;
	point_lookup)
		sed -n '/^TPS per round/,/^$/p; /^Ratios of TPS/,/^$/p; /^licdata flusher:/,+2p' "$LOGDIR/$name.log"
		;;
	masked_scan)
		sed -n '/^Full scan of/,/^$/p; /^Each masked column alone/,/^$/p' "$LOGDIR/$name.log"
		;;
	mask_throughput)
		sed -n '/calls per second on one core/,$p' "$LOGDIR/$name.log" | awk 'NR <= 25'
		;;
	esac
done
echo
echo "Goals (from the issues): licensee point lookup >= 0.90 of operator TPS with enforcement,"
echo ">= 0.95 with enforcement + masking + metering (journal_sync off); pseudonym >= 1M calls/s/core;"
echo "masked scan <= 1.5x unmasked.  See BENCHMARKS.md for what each number means."

for name in callgrind point_lookup masked_scan mask_throughput; do
	case ${RC[$name]:-1} in
	0 | 77) ;;
	*) exit 1 ;;
	esac
done
exit 0
