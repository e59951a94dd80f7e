#!/usr/bin/env bash
# test/bench/product_call.sh -- the cost of a data product call: a licensee
# calling a published product (decided, metered, audited, body run as the
# owner with the product depth raised) vs the operator calling the same
# function without licdata loaded, and with licdata loaded, measured back to
# back in alternating rounds.
#
# Usage (after `make && make install`, as root in the checkout):
#   test/bench/product_call.sh
# Settings: LICDATA_BENCH_ROUNDS (3), LICDATA_BENCH_SECONDS (5 per run),
# LICDATA_BENCH_ROWS (100000), LICDATA_BENCH_KEEP=1 (keep the directory).
#
# Workload: a point verification product over pd.people (person_id primary
# key), fully in shared buffers:
#     CREATE FUNCTION pd.check_salary(p bigint) RETURNS boolean LANGUAGE sql
#       AS $$ SELECT salary > 20000 FROM pd.people WHERE person_id = p $$;
# published with licdata.publish_product (which pins its search_path, so the
# plain case runs the very same function, SET clause included); each
# transaction is
#     \set id random(1, ROWS)
#     SELECT pd.check_salary(:id);
# run with pgbench -n -M prepared -c 2 -j 2 -T SECONDS.
#
# Cases (one cluster; restarts switch the preloaded libraries):
#   plain      shared_preload_libraries = '' (no licdata), the superuser
#   operator   licdata preloaded, the superuser (its reads of the dataset
#              inside the function are audited: one journal record each)
#   product    licensee bank_a under a product licence (purpose bench):
#              every call decided, counted (calls, rows) and journalled
# The flusher is paused during the runs and the journal thrown away after
# each (as in point_lookup.sh): the TPS is the cost of the call itself.
# The machine is noisy: only ratios of runs made back to back mean anything.
#
# Then (when valgrind is installed) the same three cases counted with
# callgrind, which is repeatable: one `postgres --single` session per case
# runs a prologue (the licensee case: SET SESSION AUTHORIZATION bank_a,
# purpose bench; 5 warm-up calls) and N = 200 calls as simple statements
# SELECT pd.check_salary(<id>); the prologue alone is subtracted:
#     instructions per call = (Ir(prologue + N) - Ir(prologue)) / N
set -euo pipefail

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
TOP=$(cd "$(dirname "$SELF")/../.." && pwd)
# shellcheck source=test/lib/common.sh
. "$TOP/test/lib/common.sh"
# shellcheck source=test/bench/lib-bench.sh
. "$TOP/test/bench/lib-bench.sh"
bench_enter "$SELF" "$@"

ROUNDS=${LICDATA_BENCH_ROUNDS:-3}
SECS=${LICDATA_BENCH_SECONDS:-5}
BENCH_ROWS=${LICDATA_BENCH_ROWS:-100000}
SU=$(id -un)

echo "== product_call: pgbench -n -M prepared -c 2 -j 2 -T $SECS, $ROUNDS rounds, pd.people $BENCH_ROWS rows"
echo "== machine: $(bench_machine)"
bench_cluster_start
bench_load_people
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-'SQL'
	SET client_min_messages = warning;
	CREATE EXTENSION licdata;
	SELECT licdata.publish('pd.people', 'benchmark people');
	CREATE FUNCTION pd.check_salary(p bigint) RETURNS boolean LANGUAGE sql
		AS $$ SELECT salary > 20000 FROM pd.people WHERE person_id = p $$;
	SELECT licdata.publish_product('pd.check_salary(bigint)', 'point verification', 0.1, 0);
	CREATE ROLE bank_a LOGIN;
	SELECT licdata.register_licensee('bank_a', 'Bank A (benchmark)');
	SELECT licdata.grant_product_licence('bank_a', 'pd.check_salary(bigint)', ARRAY['bench']);
SQL
bench_prewarm
cat >"$BENCH_DIR/call.sql" <<EOF
\\set id random(1, $BENCH_ROWS)
SELECT pd.check_salary(:id);
EOF

# run CASE: one pgbench run in the cluster's current mode; prints the TPS.
run()
{
	local role=$SU opts="" out=$BENCH_DIR/pgbench.out
	if [ "$1" = product ]; then
		role=bank_a
		opts="-c licdata.purpose=bench"
	fi
	if ! PGOPTIONS="$opts" pgbench -n -M prepared -c 2 -j 2 -T "$SECS" -U "$role" \
		-f "$BENCH_DIR/call.sql" "$BENCH_DB" >"$out" 2>&1 || grep -q aborted "$out"; then
		cat "$out" >&2
		echo 0
		return
	fi
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out" | awk 'NR == 1'
}

declare -A TPS
R_PROD=() R_OPER=()
for r in $(seq 1 "$ROUNDS"); do
	order="plain licdata"
	[ $((r % 2)) -eq 0 ] && order="licdata plain"
	for mode in $order; do
		bench_restart "$mode"
		bench_prewarm
		if [ "$mode" = plain ]; then
			TPS[plain,$r]=$(run plain)
		else
			bench_flusher paused
			TPS[operator,$r]=$(run operator)
			TPS[product,$r]=$(run product)
			bench_discard_journal
		fi
	done
	R_PROD+=("$(bench_ratio "${TPS[product,$r]}" "${TPS[plain,$r]}")")
	R_OPER+=("$(bench_ratio "${TPS[operator,$r]}" "${TPS[plain,$r]}")")
	printf 'round %d: plain %8.0f  operator %8.0f  product %8.0f TPS   product/plain %s  operator/plain %s\n' \
		"$r" "${TPS[plain,$r]}" "${TPS[operator,$r]}" "${TPS[product,$r]}" "${R_PROD[-1]}" "${R_OPER[-1]}"
done
echo "== median product/plain $(bench_median "${R_PROD[@]}") (range $(bench_min "${R_PROD[@]}")-$(bench_max "${R_PROD[@]}")),"
echo "   median operator/plain $(bench_median "${R_OPER[@]}") (range $(bench_min "${R_OPER[@]}")-$(bench_max "${R_OPER[@]}"))"
echo "== machine after: $(bench_machine)"

if command -v valgrind >/dev/null 2>&1; then
	pg_ctl -D "$LD_CLUSTER_DIR/data" -m fast -w -t 60 stop >/dev/null
	# cg_input CASE N: the statements of one session
	cg_input()
	{
		if [ "$1" = product ]; then
			echo "SET SESSION AUTHORIZATION bank_a;"
			echo "SET licdata.purpose = 'bench';"
		fi
		for i in $(seq 1 5); do echo "SELECT pd.check_salary($i);"; done
		for i in $(seq 1 "$2"); do echo "SELECT pd.check_salary($((i * 37 % BENCH_ROWS + 1)));"; done
	}
	# cg CASE N: instructions of one single-user session
	cg()
	{
		local opts=() f=$BENCH_DIR/cg_$1_$2
		[ "$1" = plain ] && opts=(-c "shared_preload_libraries=")
		cg_input "$1" "$2" >"$f.sql"
		valgrind --tool=callgrind --callgrind-out-file="$f.out" --dump-instr=no \
			postgres --single -D "$LD_CLUSTER_DIR/data" "${opts[@]}" -c log_min_messages=warning \
			"$BENCH_DB" <"$f.sql" >"$f.log" 2>&1 || { tail -n 5 "$f.log" >&2; echo 0; return; }
		sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$f.log" | tail -n1
	}
	declare -A IR
	for c in plain operator product; do
		IR[$c]=$((($(cg "$c" 200) - $(cg "$c" 0)) / 200))
	done
	echo "== callgrind, instructions per call (simple protocol, 200 calls):"
	echo "   plain ${IR[plain]}  operator ${IR[operator]} ($(bench_ratio "${IR[operator]}" "${IR[plain]}") x plain)  product ${IR[product]} ($(bench_ratio "${IR[product]}" "${IR[plain]}") x plain)"
fi
