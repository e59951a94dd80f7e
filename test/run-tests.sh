#!/usr/bin/env bash
# test/run-tests.sh [suite...] -- every licdata test suite, each reported (`make test`).
#
# Suites (all by default, in this order; name some to run only those):
#   regress     pg_regress over every sql/*.sql (expected/*.out), temporary instance
#   isolation   pg_isolation_regress over every test/isolation/specs/*.spec
#   tap         prove over every test/t/*.pl (PostgreSQL::Test::Cluster)
#   clients     every executable test/clients/*.sh   (exit 0 pass, 1 fail, 77 skip)
#   sh          every executable test/sh/*.sh        (same convention)
#
# Steps: Debian packages (test/lib/deps.sh test), make, make install; then the
# suites, as an unprivileged user.  As root (CI) the suites run as postgres in a
# copy of the tree under /tmp (servers refuse to run as root), deleted after a
# passing run and kept after a failing one (or always with LICDATA_KEEP_TEST_DIR=1).
# As another user they run in place, after checking that the extension is installed.
#
# Each suite runs even if an earlier one failed.  The last line of output is
# "N passed, N failed" (", N skipped" appended when some were skipped), counting
# regression tests, isolation specs, TAP files and scripts.  Exit 0 only when
# nothing failed and something passed.
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config),
# LICDATA_TEST_TIMEOUT (seconds per TAP file or script, default 900),
# LICDATA_KEEP_TEST_DIR=1, LICDATA_TAP_ONLY="NNN_name ..." (only those TAP files).
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=test/lib/common.sh
. "$TOP/test/lib/common.sh"
cd "$TOP"

ALL_SUITES=(regress isolation tap clients sh)

inner=0
if [ "${1:-}" = --inner ]; then
	inner=1
	shift
fi
SUITES=("$@")
[ "${#SUITES[@]}" -gt 0 ] || SUITES=("${ALL_SUITES[@]}")
for s in "${SUITES[@]}"; do
	case " ${ALL_SUITES[*]} " in
	*" $s "*) ;;
	*)
		echo "usage: $0 [${ALL_SUITES[*]}]..." >&2
		exit 2
		;;
	esac
done

START=$(date +%s)
TIMEOUT=${LICDATA_TEST_TIMEOUT:-900}

# ---------------------------------------------------------------------------
# Result bookkeeping
# ---------------------------------------------------------------------------
R_NAME=() R_RESULT=() R_PASS=() R_FAIL=() R_SKIP=() R_TIME=() R_NOTE=()
FAILED_TESTS=()
TOTAL_PASS=0 TOTAL_FAIL=0 TOTAL_SKIP=0

# record NAME PASSED FAILED SKIPPED SECONDS NOTE
record()
{
	local result
	if [ "$3" -gt 0 ]; then
		result=FAIL
	elif [ "$2" -gt 0 ]; then
		result=PASS
	else
		result=SKIP
	fi
	R_NAME+=("$1") R_RESULT+=("$result") R_PASS+=("$2") R_FAIL+=("$3") R_SKIP+=("$4")
	R_TIME+=("$5") R_NOTE+=("$6")
	TOTAL_PASS=$((TOTAL_PASS + $2)) TOTAL_FAIL=$((TOTAL_FAIL + $3)) TOTAL_SKIP=$((TOTAL_SKIP + $4))
	echo "== $1: $result ($2 passed, $3 failed, $4 skipped, $(ld_fmt_secs "$5"))${6:+ -- $6}"
}

banner()
{
	echo
	echo "=================================================================="
	echo "== $*"
	echo "=================================================================="
}

# Sorted basenames (without SUFFIX) of DIR/*SUFFIX, one a line.
list_files()
{
	local dir=$1 suffix=$2
	[ -d "$dir" ] || return 0
	find "$dir" -maxdepth 1 -type f -name "*$suffix" -printf '%f\n' | LC_ALL=C sort |
		sed "s/${suffix//./\\.}\$//"
}

# Reads pg_regress output on stdin; prints "name status" for each test line
# ("test foo  ... ok  12 ms", "     foo  ... FAILED", "... failed (ignored)").
regress_statuses()
{
	awk '{ for (i = 2; i < NF; i++) if ($i == "...") { print $(i-1), $(i+1); break } }'
}

# run_regress NAME TOOL INPUTDIR OUTPUTDIR INSTANCE TESTS...
# pg_regress and pg_isolation_regress share options and output.
run_regress()
{
	local name=$1 tool=$2 inputdir=$3 outputdir=$4 instance=$5
	shift 5
	local tests=("$@") t0 rc=0 passed=0 failed=0 t st log
	t0=$(date +%s)
	log=$RUN_DIR/tmp_check/$name.out
	mkdir -p "$outputdir"
	local cmd=("$tool"
		"--temp-instance=$instance"
		"--temp-config=$RUN_DIR/test/licdata.conf"
		"--inputdir=$inputdir"
		"--outputdir=$outputdir"
		"--bindir=$LD_PG_BINDIR"
		--dbname=contrib_regression
		--encoding=UTF8 --no-locale
		"${tests[@]}")
	echo "${cmd[*]}"
	# pipefail: rc is pg_regress's status
	"${cmd[@]}" 2>&1 | tee "$log" || rc=$?

	declare -A status=()
	while read -r t st; do
		status[$t]=$st
	done < <(regress_statuses <"$log")
	for t in "${tests[@]}"; do
		case ${status[$t]:-} in
		ok) passed=$((passed + 1)) ;;
		FAILED) failed=$((failed + 1)) FAILED_TESTS+=("$name/$t (output differs)") ;;
		'') failed=$((failed + 1)) FAILED_TESTS+=("$name/$t (did not run)") ;;
		diff:) failed=$((failed + 1)) FAILED_TESTS+=("$name/$t (no expected output? run aborted)") ;;
		*) failed=$((failed + 1)) FAILED_TESTS+=("$name/$t (${status[$t]})") ;;
		esac
	done
	# A non-zero exit with every test "ok" (e.g. the server failed to stop) still fails.
	if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
		failed=1
		FAILED_TESTS+=("$name (pg_regress exit status $rc)")
	fi
	if [ "$failed" -gt 0 ]; then
		if [ -s "$outputdir/regression.diffs" ]; then
			echo "---- $outputdir/regression.diffs (first 200 lines) ----"
			head -n 200 "$outputdir/regression.diffs"
		fi
		# The server log; initdb's only if the server never got to start.
		local f=$outputdir/log/postmaster.log
		[ -s "$f" ] || f=$outputdir/log/initdb.log
		if [ -s "$f" ]; then
			echo "---- $f (last 40 lines) ----"
			tail -n 40 "$f"
		fi
	fi
	record "$name" "$passed" "$failed" 0 $(($(date +%s) - t0)) ""
}

suite_regress()
{
	banner "suite regress: pg_regress, sql/*.sql"
	local tests
	mapfile -t tests < <(list_files "$RUN_DIR/sql" .sql)
	if [ "${#tests[@]}" -eq 0 ]; then
		echo "no sql/*.sql: nothing to run"
		record regress 0 0 0 0 "no sql/*.sql"
		return
	fi
	run_regress regress "$LD_PG_REGRESS" "$RUN_DIR" "$RUN_DIR" \
		"$RUN_DIR/tmp_check/regress_instance" "${tests[@]}"
}

suite_isolation()
{
	banner "suite isolation: pg_isolation_regress, test/isolation/specs/*.spec"
	local specs
	mapfile -t specs < <(list_files "$RUN_DIR/test/isolation/specs" .spec)
	if [ "${#specs[@]}" -eq 0 ]; then
		echo "no test/isolation/specs/*.spec yet: isolation suite skipped"
		record isolation 0 0 0 0 "no specs yet"
		return
	fi
	run_regress isolation "$LD_PG_ISOLATION_REGRESS" "$RUN_DIR/test/isolation" \
		"$RUN_DIR/output_iso" "$RUN_DIR/tmp_check/isolation_instance" "${specs[@]}"
}

suite_tap()
{
	banner "suite tap: prove, test/t/*.pl"
	local files f t0 rc passed=0 failed=0
	t0=$(date +%s)
	mapfile -t files < <(list_files "$RUN_DIR/test/t" .pl)
	# LICDATA_TAP_ONLY="100_upgrade 101_keys_dump_restore": only these files
	if [ -n "${LICDATA_TAP_ONLY:-}" ]; then
		local only=()
		for f in "${files[@]}"; do
			case " $LICDATA_TAP_ONLY " in *" $f "*) only+=("$f") ;; esac
		done
		files=("${only[@]}")
	fi
	if [ "${#files[@]}" -eq 0 ]; then
		echo "no test/t/*.pl: nothing to run"
		record tap 0 0 0 0 "no test/t/*.pl"
		return
	fi
	if ! perl -MIPC::Run -e 1 2>/dev/null; then
		echo "IPC::Run is missing (Debian package libipc-run-perl): every TAP test fails"
	fi
	# prove only collects *.t from a directory, so each file is named; one prove
	# per file gives each file its own verdict and time limit.  Tests run from the
	# top of the tree; PostgreSQL::Test::Utils keeps nodes and logs in
	# $TESTDIR/tmp_check.
	for f in "${files[@]}"; do
		echo "---- test/t/$f.pl ----"
		rc=0
		(
			cd "$RUN_DIR"
			export PG_REGRESS=$LD_PG_REGRESS TESTDIR=$RUN_DIR PG_CONFIG
			export PG_TEST_TIMEOUT_DEFAULT=${PG_TEST_TIMEOUT_DEFAULT:-180}
			unset TEMP_CONFIG
			timeout -k 10 "$TIMEOUT" prove -v -I "$LD_TAP_PERL" -I "$RUN_DIR/test/t" "test/t/$f.pl"
		) || rc=$?
		ld_kill_postmasters "$RUN_DIR/tmp_check"
		if [ "$rc" -eq 0 ]; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			if [ "$rc" -eq 124 ]; then
				echo "test/t/$f.pl: timed out after ${TIMEOUT}s"
				FAILED_TESTS+=("tap/$f.pl (timed out)")
			else
				FAILED_TESTS+=("tap/$f.pl")
			fi
			local log=$RUN_DIR/tmp_check/log/regress_log_$f
			if [ -s "$log" ]; then
				echo "---- $log (last 60 lines) ----"
				tail -n 60 "$log"
			fi
		fi
	done
	record tap "$passed" "$failed" 0 $(($(date +%s) - t0)) ""
}

# suite_scripts NAME DIR -- every executable DIR/*.sh; 0 pass, 77 skip, else fail.
suite_scripts()
{
	local name=$1 dir=$2
	banner "suite $name: ${dir#"$RUN_DIR"/}/*.sh"
	local files f t0 rc passed=0 failed=0 skipped=0 ignored=() scratch
	t0=$(date +%s)
	mapfile -t files < <(list_files "$dir" .sh)
	for f in "${files[@]}"; do
		if [ ! -x "$dir/$f.sh" ]; then
			ignored+=("$f.sh")
			echo "${dir#"$RUN_DIR"/}/$f.sh: not executable, not a test (chmod +x it if it is one)"
			continue
		fi
		echo "---- ${dir#"$RUN_DIR"/}/$f.sh ----"
		scratch=$RUN_DIR/tmp_check/$name/$f
		rm -rf "$scratch"
		mkdir -p "$scratch"
		rc=0
		(
			cd "$RUN_DIR"
			export LICDATA_TOP=$RUN_DIR LICDATA_TMP=$scratch PG_CONFIG
			timeout -k 10 "$TIMEOUT" "$dir/$f.sh"
		) || rc=$?
		ld_kill_postmasters "$scratch"
		case $rc in
		0)
			passed=$((passed + 1))
			echo "---- $f.sh: PASS"
			;;
		77)
			skipped=$((skipped + 1))
			echo "---- $f.sh: SKIP"
			;;
		*)
			failed=$((failed + 1))
			local why="exit $rc"
			if [ "$rc" -eq 124 ]; then
				why="timed out after ${TIMEOUT}s"
			fi
			FAILED_TESTS+=("$name/$f.sh ($why)")
			echo "---- $f.sh: FAIL ($why)"
			;;
		esac
	done
	local note=""
	if [ "${#files[@]}" -eq 0 ]; then
		echo "no ${dir#"$RUN_DIR"/}/*.sh yet: $name suite skipped"
		note="none yet"
	elif [ "${#ignored[@]}" -gt 0 ]; then
		note="not executable, ignored: ${ignored[*]}"
	fi
	record "$name" "$passed" "$failed" "$skipped" $(($(date +%s) - t0)) "$note"
}

summary()
{
	echo
	echo "=================================================================="
	echo "== summary ($(ld_fmt_secs $(($(date +%s) - START))) in $RUN_DIR, as $(id -un))"
	echo "=================================================================="
	printf '%-10s %-6s %7s %7s %8s %8s  %s\n' suite result passed failed skipped time note
	local i
	for i in "${!R_NAME[@]}"; do
		printf '%-10s %-6s %7s %7s %8s %8s  %s\n' "${R_NAME[$i]}" "${R_RESULT[$i]}" \
			"${R_PASS[$i]}" "${R_FAIL[$i]}" "${R_SKIP[$i]}" "$(ld_fmt_secs "${R_TIME[$i]}")" "${R_NOTE[$i]}"
	done
	if [ "${#FAILED_TESTS[@]}" -gt 0 ]; then
		echo "failed:"
		printf '  %s\n' "${FAILED_TESTS[@]}"
	fi
	local last="$TOTAL_PASS passed, $TOTAL_FAIL failed"
	if [ "$TOTAL_SKIP" -gt 0 ]; then
		last="$last, $TOTAL_SKIP skipped"
	fi
	echo "$last"
}

# ---------------------------------------------------------------------------
# Inner part: run the suites in RUN_DIR (= this tree) as the unprivileged user.
# ---------------------------------------------------------------------------
run_suites()
{
	[ "$(id -u)" -ne 0 ] || ld_die "the suites must not run as root"
	export PATH=$LD_PATH LANG=C.UTF-8
	unset LC_ALL PGHOST PGPORT PGDATABASE PGUSER PGDATA TEMP_CONFIG
	cd "$RUN_DIR"
	rm -rf tmp_check output_iso results log regression.diffs regression.out
	mkdir -p tmp_check
	trap 'ld_kill_postmasters "$RUN_DIR/tmp_check"; ld_kill_postmasters "$RUN_DIR/output_iso"' EXIT

	local s
	for s in "${SUITES[@]}"; do
		case $s in
		regress) suite_regress ;;
		isolation) suite_isolation ;;
		tap) suite_tap ;;
		clients) suite_scripts clients "$RUN_DIR/test/clients" ;;
		sh) suite_scripts sh "$RUN_DIR/test/sh" ;;
		esac
		ld_kill_postmasters "$RUN_DIR/tmp_check"
	done

	summary
	[ "$TOTAL_FAIL" -eq 0 ] && [ "$TOTAL_PASS" -gt 0 ]
}

if [ "$inner" -eq 1 ]; then
	ld_pg_paths
	RUN_DIR=$TOP
	run_suites
	exit $?
fi

# ---------------------------------------------------------------------------
# Outer part: packages, build, install; then the suites as the test user.
# ---------------------------------------------------------------------------
echo "== licdata make test: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), user $(id -un), tree $TOP"
bash "$TOP/test/lib/deps.sh" test || exit 1
ld_pg_paths

brc=0
ld_build_install "$TOP" || brc=$?
if [ "$brc" -eq 2 ]; then
	exit 1
elif [ "$brc" -ne 0 ]; then
	echo "build or install failed: no suite ran"
	echo "0 passed, 1 failed"
	exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
	RUN_DIR=$TOP
	run_suites
	exit $?
fi

# Root: servers refuse to run as root, so hand a copy of the tree to postgres.
getent passwd postgres >/dev/null || ld_die "no postgres OS user (is postgresql-$LD_PG_MAJOR installed?)"
RUN_DIR=$(mktemp -d /tmp/licdata-test.XXXXXX)
ld_copy_tree "$TOP" "$RUN_DIR"
rc=1
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup()
{
	ld_kill_postmasters "$RUN_DIR" 2>/dev/null || true
	if [ "$rc" -eq 0 ] && [ "${LICDATA_KEEP_TEST_DIR:-0}" != 1 ]; then
		rm -rf "$RUN_DIR"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
echo "== running the suites as postgres in $RUN_DIR (deleted after a passing run, kept after a failing one)"
cd "$RUN_DIR"
ld_as_test_user bash "$RUN_DIR/test/run-tests.sh" --inner "${SUITES[@]}" && rc=0 || rc=$?
exit "$rc"
