#!/usr/bin/env bash
# test/bench/point_lookup.sh -- pgbench primary-key lookups: the operator vs
# a licensee (enforcement + metering; with a row filter; with 2 masks; with
# licdata.journal_sync = on), and plain PostgreSQL and pgaudit (log = read)
# on the same data, measured back to back in alternating rounds.
#
# Usage (after `make && make install`, as root in the checkout):
#   test/bench/point_lookup.sh     as root (runs the server as postgres) or
#                                  as any user that may run initdb
# Settings: LICDATA_BENCH_ROUNDS (3), LICDATA_BENCH_SECONDS (10 per run),
# LICDATA_BENCH_ROWS (1000000), LICDATA_BENCH_KEEP=1 (keep the directory).
#
# Workload: pd.people (person_id bigint primary key + 6 columns), fully in
# shared buffers; each transaction is
#     \set id random(1, ROWS)
#     SELECT * FROM pd.people WHERE person_id = :id;
# run with pgbench -n -M prepared -c 2 -j 2 -T SECONDS.
#
# Cases (one cluster; restarts switch the preloaded libraries):
#   operator        licdata preloaded, the cluster's superuser (operators'
#                   reads of datasets are audited: licdata.audit_operators on)
#   operator/noaudit the same with licdata.audit_operators = off (no journal record)
#   lic             licensee bank_a, purpose bench_plain: licence over all
#                   columns, no row filter, no masks (enforcement + metering)
#   lic+filter      purpose bench_filter: a row filter every row passes
#   lic+2masks      purpose bench_mask: pseudonym(id_number), cn_name(name)
#   lic/live        lic with the flusher running (see below)
#   operator/sync, lic+2masks/sync   licdata.journal_sync = on (reload);
#                   these runs last SECONDS/2 (they are slow and steady)
#   plain           shared_preload_libraries = '' (no licdata), superuser
#   pgaudit         shared_preload_libraries = 'pgaudit', pgaudit.log = 'read'
# Each round runs every case once; the order is reversed every other round.
#
# The flusher: every licensee statement (and every operator statement that
# reads a dataset, with audit_operators on) leaves a journal record
# that the licdata flusher (one background worker) later moves into
# licdata.usage / licdata.audit_log.  It moves fewer records per second than
# the backends make here, so a run with it active leaves a backlog that
# would slow the next run.  So in every case but lic/live the flusher is
# paused (licdata.flush_interval = 1h) while the run is measured -- the TPS is
# the cost of the statement itself: rewrite, enforcement, masking, writing
# the journal record -- and after every licdata run its records are thrown
# away (this is a throwaway cluster).  lic/live is the same as lic with the
# flusher at its default interval, competing for the 2 cores.  The flusher's
# own rate is measured once: the records of a licensee run, drained with
# licdata.flush_interval = 10ms, divided by the time it took.
#
# Output: TPS per round, ratios per round, median ratio per comparison; and
# for each case the server backends' CPU time and minor page faults per
# statement (from /proc/PID/stat, sampled mid-run).
# The machine is noisy: only ratios of runs made back to back mean anything.
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
HAVE_PGAUDIT=1
[ -f "$LD_PG_PKGLIBDIR/pgaudit.so" ] || HAVE_PGAUDIT=0

echo "== point_lookup: pgbench -n -M prepared -c 2 -j 2 -T $BENCH_SECONDS, $BENCH_ROUNDS rounds, pd.people $BENCH_ROWS rows"
echo "== machine: $(bench_machine)"
bench_cluster_start
echo "== loading pd.people and licences"
bench_load_people
bench_setup_licdata
bench_prewarm

cat >"$BENCH_DIR/point.sql" <<EOF
\\set id random(1, $BENCH_ROWS)
SELECT * FROM pd.people WHERE person_id = :id;
EOF

LOG=$LD_CLUSTER_DIR/postgresql.log
declare -A TPS CPU FLT

crashes()
{
	grep -c -E 'terminated by signal|was terminated by exception' "$LOG" 2>/dev/null || true
}

# backend_stats PIDS...: "<cpu ticks> <minor faults>" summed over the pids.
backend_stats()
{
	local p t=0 f=0 st
	for p in "$@"; do
		st=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		# fields after the command name: 10 = minflt, 14 = utime, 15 = stime
		read -r -a a <<<"${st##*) }"
		f=$((f + a[7]))
		t=$((t + a[11] + a[12]))
	done
	echo "$t $f"
}

# pgb SECONDS ROLE PURPOSE [OPTIONS]: one pgbench run.  Prints
#   "<tps> <backend CPU us per statement> <page faults per statement>"
# (TPS excluding connection time; CPU and faults of the 2 server backends,
# sampled from /proc from 1.5 s after the start to 1.5 s before the end,
# per statement at the run's TPS), or "failed - -".
pgb()
{
	local secs=$1 role=$2 purpose=$3 extra=${4:-} out opts="" pid pids=() s0 s1 t0 t1
	[ -n "$purpose" ] && opts="-c licdata.purpose=$purpose"
	[ -n "$extra" ] && opts="$opts $extra"
	out=$BENCH_DIR/pgbench.out
	PGOPTIONS="$opts" pgbench -n -M prepared -c 2 -j 2 -T "$secs" -U "$role" \
		-f "$BENCH_DIR/point.sql" "$BENCH_DB" >"$out" 2>&1 &
	pid=$!
	s0=""
	if [ "$secs" -ge 4 ]; then
		sleep 1.5
		mapfile -t pids < <(PGOPTIONS="" psql -X -At -c \
			"SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' AND pid <> pg_backend_pid()")
		t0=$(date +%s%N)
		s0=$(backend_stats "${pids[@]}")
		sleep $((secs - 3))
		s1=$(backend_stats "${pids[@]}")
		t1=$(date +%s%N)
	fi
	if ! wait "$pid" || grep -q 'aborted' "$out"; then
		echo "failed - -"
		return 0
	fi
	tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out" | awk 'NR == 1')
	if [ -n "$s0" ] && [ "${#pids[@]}" -eq 2 ]; then
		awk -v tps="$tps" -v a="$s0" -v b="$s1" -v ns=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
			split(a, x, " "); split(b, y, " "); n = tps * ns / 1e9
			printf "%s %.1f %.2f\n", tps, (y[1] - x[1]) / hz * 1e6 / n, (y[2] - x[2]) / n }'
	else
		echo "$tps - -"
	fi
}

# run LABEL ROUND ROLE PURPOSE [SECONDS [OPTIONS]]: measures one case,
# stores its TPS, CPU and faults, prints a progress line.
run()
{
	local label=$1 r=$2 role=$3 purpose=$4 secs=${5:-$BENCH_SECONDS} extra=${6:-} c0 c1 tps cpu flt
	c0=$(crashes)
	read -r tps cpu flt <<<"$(pgb "$secs" "$role" "$purpose" "$extra")"
	c1=$(crashes)
	if [ "$c1" != "$c0" ]; then
		echo "WARNING: a server process crashed during '$label' (round $r); from the server log:" >&2
		grep -E 'terminated by signal|was terminated by exception' "$LOG" | tail -n 2 >&2
		tps=crash
		# the postmaster restarts; wait for it
		pg_isready -t 60 -q || true
		sleep 2
	elif [ "$tps" = failed ]; then
		echo "WARNING: pgbench failed in '$label' (round $r):" >&2
		tail -n 3 "$BENCH_DIR/pgbench.out" >&2
	fi
	[ "$BENCH_MODE" = licdata ] && bench_discard_journal
	TPS["$label,$r"]=$tps
	CPU["$label,$r"]=$cpu
	FLT["$label,$r"]=$flt
	printf '   round %d  %-16s %10.0f tps  %7s us CPU/stmt  %5s faults/stmt  (%s)\n' "$r" "$label" \
		"$([[ $tps =~ ^[0-9.]+$ ]] && echo "$tps" || echo 0)" "$cpu" "$flt" "$(date +%T)"
}

switch_mode()
{
	local mode=$1
	[ "$BENCH_MODE" = "$mode" ] && return 0
	bench_restart "$mode"
	bench_prewarm
	# warm-up: connections, catalog caches, plan cache
	pgb 1 "$SU" "" >/dev/null
	if [ "$mode" = licdata ]; then
		bench_discard_journal
	fi
	if [ "$mode" = pgaudit ]; then
		: >"$LOG"
	fi
	return 0
}

set_journal_sync()
{
	psql -X -q -c "ALTER SYSTEM SET licdata.journal_sync = $1" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	[ "$(psql -X -At -c 'SHOW licdata.journal_sync')" = "$1" ] || ld_die "licdata.journal_sync did not become $1"
}

# warm-up in licdata mode, and the flusher's rate
echo "== warm-up, and the flusher's rate"
bench_discard_journal
pgb 2 "$SU" "" >/dev/null
bench_discard_journal
pgb 2 bank_a bench_plain >/dev/null
bench_discard_journal
pgb 4 bank_a bench_mask >/dev/null
NREC=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$BENCH_DIR/pgbench.out")
bench_flusher fast
DRAIN=$(bench_wait_drain 120)
bench_flusher paused
if [ "$DRAIN" = timeout ]; then
	FLUSH_RATE="< $(awk -v n="$NREC" 'BEGIN { printf "%.0f", n / 120 }') (not drained in 120 s)"
	bench_discard_journal
else
	FLUSH_RATE=$(awk -v n="$NREC" -v s="$DRAIN" 'BEGIN { printf "%.0f", n / (s > 0 ? s : 0.1) }')
fi
echo "   the flusher moved $NREC licensee records in ${DRAIN} s: $FLUSH_RATE records/s"
[ "$(psql -X -At -c 'SELECT count(*) FROM licdata.usage')" -ge "$NREC" ] ||
	echo "WARNING: fewer usage rows than licensee statements after the drain" >&2

PGAUDIT_LOG_MB=()
HALF=$(((BENCH_SECONDS + 1) / 2))
for ((r = 1; r <= BENCH_ROUNDS; r++)); do
	echo "== round $r"
	switch_mode licdata
	cases=("operator|$SU|" "operator/noaudit|$SU|" "lic|bank_a|bench_plain" "lic+filter|bank_a|bench_filter"
		"lic+2masks|bank_a|bench_mask" "lic/live|bank_a|bench_plain")
	if [ $((r % 2)) -eq 0 ]; then
		cases=("lic/live|bank_a|bench_plain" "lic+2masks|bank_a|bench_mask" "lic+filter|bank_a|bench_filter"
			"lic|bank_a|bench_plain" "operator/noaudit|$SU|" "operator|$SU|")
	fi
	for c in "${cases[@]}"; do
		IFS='|' read -r label role purpose <<<"$c"
		case $label in
		lic/live)
			bench_flusher live
			run "$label" "$r" "$role" "$purpose"
			bench_flusher paused
			;;
		operator/noaudit)
			run "$label" "$r" "$role" "$purpose" "$BENCH_SECONDS" "-c licdata.audit_operators=off"
			;;
		*)
			run "$label" "$r" "$role" "$purpose"
			;;
		esac
	done

	set_journal_sync on
	cases=("operator/sync|$SU|" "lic+2masks/sync|bank_a|bench_mask")
	if [ $((r % 2)) -eq 0 ]; then
		cases=("lic+2masks/sync|bank_a|bench_mask" "operator/sync|$SU|")
	fi
	for c in "${cases[@]}"; do
		IFS='|' read -r label role purpose <<<"$c"
		run "$label" "$r" "$role" "$purpose" "$HALF"
	done
	set_journal_sync off

	others=(plain)
	[ "$HAVE_PGAUDIT" = 1 ] && others=(plain pgaudit)
	if [ $((r % 2)) -eq 0 ] && [ "$HAVE_PGAUDIT" = 1 ]; then
		others=(pgaudit plain)
	fi
	for m in "${others[@]}"; do
		switch_mode "$m"
		run "$m" "$r" "$SU" ""
		if [ "$m" = pgaudit ]; then
			PGAUDIT_LOG_MB+=("$(awk -v b="$(stat -c %s "$LOG")" 'BEGIN { printf "%.1f", b / 1048576 }')")
			grep -q 'AUDIT: SESSION,.*READ,SELECT' "$LOG" ||
				echo "WARNING: pgaudit logged no READ entries; check its settings" >&2
			: >"$LOG"
		fi
	done
done
switch_mode licdata

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
LABELS=(operator operator/noaudit lic lic+filter lic+2masks lic/live operator/sync lic+2masks/sync plain)
[ "$HAVE_PGAUDIT" = 1 ] && LABELS+=(pgaudit)

echo
echo "TPS per round (pgbench -M prepared -c 2 -j 2 -T $BENCH_SECONDS; /sync runs -T $HALF), and medians of the"
echo "server backends' CPU time and minor page faults per statement (from /proc, mid-run)"
printf '%-18s' case
for ((r = 1; r <= BENCH_ROUNDS; r++)); do printf '%12s' "round $r"; done
printf '%12s %14s %13s\n' median "us CPU/stmt" "faults/stmt"
for l in "${LABELS[@]}"; do
	printf '%-18s' "$l"
	vals=()
	cpus=()
	flts=()
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		printf '%12s' "$(awk -v v="${TPS[$l,$r]:-}" 'BEGIN { if (v ~ /^[0-9.]+$/) printf "%.0f", v; else print v }')"
		v=${TPS[$l,$r]:-}
		[[ $v =~ ^[0-9.]+$ ]] && vals+=("$v")
		v=${CPU[$l,$r]:-}
		[[ $v =~ ^[0-9.]+$ ]] && cpus+=("$v")
		v=${FLT[$l,$r]:-}
		[[ $v =~ ^[0-9.]+$ ]] && flts+=("$v")
	done
	printf '%12s %14s %13s\n' "$(awk -v v="$(bench_median "${vals[@]}")" 'BEGIN { if (v ~ /^[0-9.]+$/) printf "%.0f", v; else print v }')" \
		"$(bench_median "${cpus[@]}")" "$(bench_median "${flts[@]}")"
done

# ratio rows: name | numerator | denominator | goal
COMPARISONS=(
	"operator, audit_operators off / operator|operator/noaudit|operator|"
	"licensee (enforcement+metering) / operator|lic|operator|>= 0.90"
	"licensee with row filter / operator|lic+filter|operator|"
	"licensee with 2 masks / operator|lic+2masks|operator|>= 0.95"
	"licensee, flusher live / operator|lic/live|operator|"
	"licensee 2 masks, journal_sync=on / operator|lic+2masks/sync|operator|"
	"operator, journal_sync=on / operator|operator/sync|operator|"
	"plain PostgreSQL / operator|plain|operator|"
	"operator (licdata loaded) / plain|operator|plain|"
	"operator, audit_operators off / plain|operator/noaudit|plain|"
	"licensee / plain|lic|plain|"
	"licensee with 2 masks / plain|lic+2masks|plain|"
)
if [ "$HAVE_PGAUDIT" = 1 ]; then
	COMPARISONS+=(
		"pgaudit log=read / operator|pgaudit|operator|"
		"pgaudit log=read / plain|pgaudit|plain|"
		"licensee with 2 masks / pgaudit|lic+2masks|pgaudit|"
	)
fi

echo
echo "Ratios of TPS measured in the same round (higher = faster)"
printf '%-46s' comparison
for ((r = 1; r <= BENCH_ROUNDS; r++)); do printf '%9s' "r$r"; done
printf '%9s %9s %9s  %s\n' median min max goal
for c in "${COMPARISONS[@]}"; do
	IFS='|' read -r name a b goal <<<"$c"
	printf '%-46s' "$name"
	ratios=()
	for ((r = 1; r <= BENCH_ROUNDS; r++)); do
		va=${TPS[$a,$r]:-}
		vb=${TPS[$b,$r]:-}
		if [[ $va =~ ^[0-9.]+$ && $vb =~ ^[0-9.]+$ ]]; then
			x=$(bench_ratio "$va" "$vb")
			ratios+=("$x")
		else
			x="-"
		fi
		printf '%9s' "$x"
	done
	if [ "${#ratios[@]}" -gt 0 ]; then
		printf '%9s %9s %9s  %s\n' "$(bench_median "${ratios[@]}")" "$(bench_min "${ratios[@]}")" \
			"$(bench_max "${ratios[@]}")" "$goal"
	else
		printf '%9s %9s %9s  %s\n' - - - "$goal"
	fi
done
if [ "$HAVE_PGAUDIT" = 1 ] && [ "${#PGAUDIT_LOG_MB[@]}" -gt 0 ]; then
	echo
	echo "pgaudit wrote ${PGAUDIT_LOG_MB[*]} MB of server log per ${BENCH_SECONDS}-second run"
fi
echo
echo "licdata flusher: $FLUSH_RATE journal records moved per second (one background worker).  Every"
echo "licensee statement, and every operator statement with audit_operators on, is one record: a"
echo "sustained load above that rate builds a backlog of journal files (lic/live runs with it active)."
echo "== done in $(ld_fmt_secs $(($(date +%s) - START)))"
