#!/usr/bin/env bash
# test/bench/callgrind.sh -- CPU instructions of one primary-key SELECT,
# counted with valgrind --tool=callgrind: plain PostgreSQL, licdata loaded
# (operator, audited and not), licdata licensee (enforcement + metering,
# with a row filter, with 2 masks), pgaudit log = read.
#
# Usage (after `make && make install`, as root in the checkout):
#   test/bench/callgrind.sh            as root (runs the servers as postgres)
#                                      or as any user that may run initdb
#
# Method: a throwaway cluster with pd.people (LICDATA_BENCH_ROWS rows,
# default 1M) and the licences of lib-bench.sh bench_setup_licdata; the
# server is then stopped and every measurement is one `postgres --single`
# session under callgrind.  A session runs a fixed prologue (SET ROLE and
# licdata.purpose for the licensee cases, warm-up queries that load caches,
# licdata's policy and open the journal file) and then N statements
# (LICDATA_CALLGRIND_N, default 200, each a different person_id); the same
# session with 0 statements after the prologue is subtracted, so start-up,
# shutdown and warm-up cancel out:
#     instructions per query = (Ir(prologue + N) - Ir(prologue)) / N
# Two protocols: "simple" (each statement parsed, planned and executed:
# SELECT ... WHERE person_id = 42) and "prepared" (PREPARE once, EXECUTE
# q(42) N times: the generic plan is reused; what pgbench -M prepared does).
# Instruction counts do not include time in system calls (msync, fsync) or
# the background flusher (not running in single-user mode): see
# point_lookup.sh for wall-clock numbers.
#
# Prints instructions per query and the ratio to plain PostgreSQL, then the
# functions where the licensee's extra instructions go (self cost, per
# query, licensee with masks minus plain) and the licdata functions'
# inclusive cost.  LICDATA_BENCH_KEEP=1 keeps the callgrind files.
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
# shellcheck source=test/lib/common.sh
. "$TOP/test/lib/common.sh"
# shellcheck source=test/bench/lib-bench.sh
. "$TOP/test/bench/lib-bench.sh"

if [ "${1:-}" != --inner ]; then
	command -v valgrind >/dev/null 2>&1 || {
		echo "SKIP: valgrind is not installed (apt-get install valgrind)"
		exit 77
	}
fi
bench_enter "$SELF" "$@"

# ---------------------------------------------------------------------------
# Inner part: the test user, in BENCH_DIR.
# ---------------------------------------------------------------------------
N=${LICDATA_CALLGRIND_N:-200}
OUT=$BENCH_DIR/callgrind
mkdir -p "$OUT"
START=$(date +%s)

echo "== callgrind: instructions per primary-key SELECT ($N statements per session, minus an empty session)"
echo "== machine: $(bench_machine)"
bench_cluster_start
echo "== loading pd.people ($BENCH_ROWS rows) and licences"
bench_load_people
bench_setup_licdata
ld_cluster_stop
# Two copies of the data directory: the empty and the N-statement session of
# a configuration run at the same time (instruction counts do not depend on
# what else the machine does).
DATA=$LD_CLUSTER_DIR/data
DATA2=$LD_CLUSTER_DIR/data2
cp -a "$DATA" "$DATA2"

# Configurations: name | postgres -c options | prologue SQL (one line each,
# separated by "\n").  "plain, ordinary role" is plain PostgreSQL read by a
# role that is not a superuser (bench_reader: SELECT on the table, BYPASSRLS
# past licdata's guard policy): the permission checks every execution makes
# for such a role (table and function ACLs) are PostgreSQL's own cost,
# which a licensee (never a superuser) pays too.
CONFIGS=(
	"plain|-c shared_preload_libraries=|"
	"licdata operator|-c licdata.audit_operators=on|"
	"licdata operator, audit_operators off|-c licdata.audit_operators=off|"
	"licdata licensee|-c licdata.audit_operators=on|SET ROLE bank_a;\nSET licdata.purpose = bench_plain;"
	"licdata licensee, row filter|-c licdata.audit_operators=on|SET ROLE bank_a;\nSET licdata.purpose = bench_filter;"
	"licdata licensee, 2 masks|-c licdata.audit_operators=on|SET ROLE bank_a;\nSET licdata.purpose = bench_mask;"
	"pgaudit log=read|-c shared_preload_libraries=pgaudit -c pgaudit.log=read|"
	"plain, ordinary role|-c shared_preload_libraries=|SET ROLE bench_reader;"
)
if [ ! -f "$LD_PG_PKGLIBDIR/pgaudit.so" ]; then
	echo "== pgaudit is not installed (package postgresql-$LD_PG_MAJOR-pgaudit): skipping its row"
	unset 'CONFIGS[6]'
fi

# The statement for person id $2 in protocol $1.
stmt()
{
	case $1 in
	simple) echo "SELECT * FROM pd.people WHERE person_id = $2;" ;;
	prepared) echo "EXECUTE q($2);" ;;
	esac
}

# make_input PROTOCOL PROLOGUE COUNT > file
make_input()
{
	local proto=$1 prologue=$2 count=$3 i
	[ -n "$prologue" ] && printf '%b\n' "$prologue"
	if [ "$proto" = prepared ]; then
		echo "PREPARE q(bigint) AS SELECT * FROM pd.people WHERE person_id = \$1;"
	fi
	# warm-up: 8 statements (past the plan cache's 5 custom plans)
	for i in 1 2 3 4 5 6 7 8; do
		stmt "$proto" $((i * 104729 % BENCH_ROWS + 1))
	done
	for ((i = 1; i <= count; i++)); do
		stmt "$proto" $(((i * 7919 + 13) % BENCH_ROWS + 1))
	done
}

# run_cg TAG OPTIONS INPUTFILE DATADIR: runs one single-user session under
# callgrind; prints its total instruction count.
run_cg()
{
	local tag=$1 opts=$2 input=$3 data=$4 f
	f=$OUT/$tag.cg
	# shellcheck disable=SC2086  # opts is a list of -c options
	if ! valgrind --tool=callgrind --callgrind-out-file="$f" --dump-instr=no \
		--trace-children=no postgres --single -D "$data" $opts -c log_min_messages=warning \
		-c client_min_messages=warning "$BENCH_DB" <"$input" >"$OUT/$tag.out" 2>"$OUT/$tag.err"; then
		echo "ERROR: postgres --single failed for $tag; last lines:" >&2
		tail -n 20 "$OUT/$tag.err" >&2
		exit 1
	fi
	if grep -q -E '^(ERROR|FATAL|PANIC)|[[:space:]](ERROR|FATAL|PANIC):' "$OUT/$tag.out" "$OUT/$tag.err"; then
		echo "ERROR: a statement failed in $tag:" >&2
		grep -h -E 'ERROR|FATAL|PANIC' "$OUT/$tag.out" "$OUT/$tag.err" | awk 'NR <= 5' >&2
		exit 1
	fi
	awk '/^(summary|totals):/ { print $2; exit }' "$f"
}

declare -A PERQ
printf '\n%-40s %-9s %14s %14s %10s\n' "configuration" protocol "instr/query" "vs plain" "delta"
for proto in simple prepared; do
	for i in "${!CONFIGS[@]}"; do
		IFS='|' read -r name opts prologue <<<"${CONFIGS[$i]}"
		tag="c${i}-$proto"
		make_input "$proto" "$prologue" 0 >"$OUT/$tag-0.sql"
		make_input "$proto" "$prologue" "$N" >"$OUT/$tag-n.sql"
		run_cg "$tag-0" "$opts" "$OUT/$tag-0.sql" "$DATA" >"$OUT/$tag-0.ir" &
		pid=$!
		irn=$(run_cg "$tag-n" "$opts" "$OUT/$tag-n.sql" "$DATA2")
		wait "$pid" || exit 1
		ir0=$(cat "$OUT/$tag-0.ir")
		per=$(awk -v a="$irn" -v b="$ir0" -v n="$N" 'BEGIN { printf "%.0f", (a - b) / n }')
		PERQ["$i/$proto"]=$per
		base=${PERQ["0/$proto"]}
		printf '%-40s %-9s %14s %14s %10s\n' "$name" "$proto" "$per" \
			"$(bench_ratio "$per" "$base")x" \
			"$(awk -v a="$per" -v b="$base" 'BEGIN { printf "%+.1f%%", (a - b) * 100 / b }')"
	done
done

# Sanity: the masked licensee really read masked values (cn_name keeps only
# the surname), and the plain one did not.
if ! grep -q 'name = "[^"]*\*' "$OUT/c5-simple-n.out"; then
	echo "WARNING: the masked licensee's output shows no masked name; check $OUT/c5-simple-n.out" >&2
fi

# ---------------------------------------------------------------------------
# Where the instructions go: self cost per function, per query,
# (masked licensee - plain), prepared protocol and simple protocol.
# ---------------------------------------------------------------------------
# fn_costs FILE [--inclusive=yes]: "<Ir>\t<file:function [object]>" per function.
fn_costs()
{
	callgrind_annotate --auto=no --threshold=100 ${2:+"$2"} "$1" 2>/dev/null | awk '
		/^ *[0-9,]+ +\( *[0-9.]+%\) +/ && !/PROGRAM TOTALS/ {
			ir = $1; gsub(",", "", ir)
			line = $0
			sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", line)
			print ir "\t" line
		}'
}

# fn_delta A_N A_0 B_N B_0 TOP: functions with the largest
# ((A_N - A_0) - (B_N - B_0)) / N, i.e. extra self instructions per query
# of configuration A over B.
fn_delta()
{
	local top=$5
	{
		fn_costs "$1" | sed 's/^/an\t/'
		fn_costs "$2" | sed 's/^/a0\t/'
		fn_costs "$3" | sed 's/^/bn\t/'
		fn_costs "$4" | sed 's/^/b0\t/'
	} | awk -F'\t' -v n="$N" '
		{ s = ($1 == "an" || $1 == "b0") ? 1 : -1; d[$3] += s * $2 }
		END { for (f in d) if (d[f] / n >= 50 || d[f] / n <= -50) printf "%12.0f  %s\n", d[f] / n, f }' |
		sort -k1,1 -g -r | awk -v n="$top" 'NR <= n'
}

for proto in prepared simple; do
	echo
	echo "== extra self instructions per query, licensee with 2 masks minus plain ($proto protocol; top 25)"
	fn_delta "$OUT/c5-$proto-n.cg" "$OUT/c5-$proto-0.cg" "$OUT/c0-$proto-n.cg" "$OUT/c0-$proto-0.cg" 25
done

for proto in prepared simple; do
	echo
	echo "== licdata functions, inclusive instructions per query (licensee with 2 masks, $proto protocol;"
	echo "   hook and DestReceiver wrappers, which include PostgreSQL's own planner / executor / output, left out)"
	{
		fn_costs "$OUT/c5-$proto-n.cg" --inclusive=yes | sed 's/^/n\t/'
		fn_costs "$OUT/c5-$proto-0.cg" --inclusive=yes | sed 's/^/z\t/'
	} | awk -F'\t' -v n="$N" '
		$3 ~ /licdata\.so/ && $3 !~ /:(licdata_ProcessUtility|meter_ProcessUtility|licdata_Executor(Start|Run|Finish|End)|licdata_planner|counting_(receive|startup|shutdown))(\x27[0-9]+)? / {
			d[$3] += ($1 == "n" ? 1 : -1) * $2 }
		END { for (f in d) if (d[f] / n >= 50) printf "%12.0f  %s\n", d[f] / n, f }' |
		sort -k1,1 -g -r | awk 'NR <= 20'
done

echo
echo "== done in $(ld_fmt_secs $(($(date +%s) - START)))"
if [ "${LICDATA_BENCH_KEEP:-0}" = 1 ]; then
	echo "== callgrind files: $OUT (callgrind_annotate --inclusive=yes FILE)"
fi
