#!/usr/bin/env bash
# test/demo/run-demo.sh -- `make demo`: both licensed-access cases on a private,
# throwaway cluster.
#
#   run-demo.sh           build, install, start a demo cluster, run the scenario, stop
#   run-demo.sh --stop    stop a demo cluster kept by LICDATA_DEMO_KEEP=1 (make demo-stop)
#
# Steps: Debian packages (test/lib/deps.sh demo), make, make install (as root;
# another user is told the exact command if it cannot install), quietly: the
# build's output is shown only when it fails.  Then, as an unprivileged user
# (postgres when run as root, else the caller), in a fresh mktemp -d
# directory: initdb, licdata preloaded, licdata.database = 'licdata_demo', the
# first free port from 55432 up, Unix socket in that directory, no TCP; start;
# createdb licdata_demo; run test/demo/scenario.sh with PGHOST PGPORT
# PGDATABASE PGUSER (and LICDATA_TOP, LICDATA_DEMO_DIR) exported, from the top
# of the tree.  The cluster is stopped and the directory deleted on exit; the
# exit status is the scenario's.
#
# Environment: PG_CONFIG; LICDATA_DEMO_KEEP=1 (make demo KEEP=1) leaves the
# cluster running after the scenario and prints psql command lines for the
# operator, the bank and the bureau; the directory is remembered in
# /tmp/licdata-demo-$USER.state until `make demo-stop` stops the cluster and
# deletes it.  LICDATA_KEEP_DEMO_DIR=1 keeps the directory of a stopped demo.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=test/lib/common.sh
. "$TOP/test/lib/common.sh"
cd "$TOP"

# ---------------------------------------------------------------------------
# Inner part, as the unprivileged user: run-demo.sh --inner DIR
# ---------------------------------------------------------------------------
if [ "${1:-}" = --inner ]; then
	DIR=$2
	ld_pg_paths
	export PATH=$LD_PATH
	if [ "${LICDATA_DEMO_KEEP:-0}" != 1 ]; then
		trap ld_cluster_stop EXIT
	fi
	ld_cluster_start "$DIR" licdata_demo
	export LICDATA_TOP=$TOP LICDATA_DEMO_DIR=$DIR
	echo "== demo cluster: $DIR/data, socket $PGHOST, port $PGPORT, database $PGDATABASE, user $PGUSER"
	if [ "${LICDATA_DEMO_KEEP:-0}" = 1 ]; then
		echo "==   it keeps running after the demo (KEEP=1); connection lines are printed at the end"
	else
		echo "==   it is stopped when the demo ends; run 'make demo KEEP=1' to keep it and explore"
	fi
	rc=0
	if [ -f "$TOP/test/demo/scenario.sh" ]; then
		bash "$TOP/test/demo/scenario.sh" || rc=$?
	elif [ -f "$TOP/test/data/generate.sql" ]; then
		psql -X -q -v ON_ERROR_STOP=1 -f "$TOP/test/data/generate.sql" || rc=$?
		echo "Demo scenarios are not written yet (test/demo/scenario.sh is missing): loaded test/data/generate.sql only."
	else
		echo "Demo scenarios are not written yet: neither test/demo/scenario.sh nor test/data/generate.sql exists."
		rc=1
	fi
	if [ "$rc" -ne 0 ]; then
		echo "== scenario failed (exit status $rc); server log, last 30 lines:"
		tail -n 30 "$DIR/postgresql.log" || true
	fi
	if [ "${LICDATA_DEMO_KEEP:-0}" = 1 ]; then
		c="psql -h $PGHOST -p $PGPORT"
		cat <<-EOF

			== The demo server keeps running (make demo KEEP=1).  Connect as
			   the operator (superuser; sees raw data, reads usage and audit):
			     $c -U $PGUSER $PGDATABASE
			   the bank (licensee bank_a; try licdata.my_licences, then pd.people and
			   WHERE id_number = licdata.token('pd.people', 'id_number', '110101198410220086')):
			     PGOPTIONS='-c licdata.purpose=credit_assessment -c licdata.consent_ref=BA2025-00002' $c -U bank_a_analyst $PGDATABASE
			   the statistics bureau (aggregate-only licences on pd.tax_annual, pd.enterprises):
			     PGOPTIONS='-c licdata.purpose=statistics' $c -U stats_bureau $PGDATABASE
			   Stop it and delete its directory with: make demo-stop
		EOF
	fi
	exit "$rc"
fi

# ---------------------------------------------------------------------------
# --stop: stop the cluster a KEEP=1 demo left running
# ---------------------------------------------------------------------------
STATE=/tmp/licdata-demo-$(id -un).state
if [ "${1:-}" = --stop ]; then
	if [ ! -f "$STATE" ]; then
		echo "No kept demo cluster to stop ($STATE does not exist)."
		exit 0
	fi
	DEMO_DIR=$(cat "$STATE")
	case $DEMO_DIR in /tmp/licdata-demo.*) ;; *) ld_die "unexpected directory in $STATE: $DEMO_DIR" ;; esac
	ld_pg_paths
	if [ -f "$DEMO_DIR/data/postmaster.pid" ]; then
		ld_as_test_user "$LD_PG_BINDIR/pg_ctl" -D "$DEMO_DIR/data" -m fast -w -t 60 stop ||
			ld_kill_postmasters "$DEMO_DIR"
	fi
	rm -rf "$DEMO_DIR" "$STATE"
	echo "== stopped the demo cluster and deleted $DEMO_DIR"
	exit 0
fi

# ---------------------------------------------------------------------------
# Outer part: packages, build, install; the cluster as the test user.
# ---------------------------------------------------------------------------
START=$(date +%s)
case ${LICDATA_DEMO_KEEP:-0} in
1 | yes | true | on) LICDATA_DEMO_KEEP=1 ;;
*) LICDATA_DEMO_KEEP=0 ;;
esac
export LICDATA_DEMO_KEEP
if [ "$LICDATA_DEMO_KEEP" = 1 ] && [ -f "$STATE" ] && [ -d "$(cat "$STATE")" ]; then
	echo "A demo cluster kept by an earlier 'make demo KEEP=1' is still there ($(cat "$STATE"))."
	echo "Stop it first with: make demo-stop"
	exit 1
fi
bash "$TOP/test/lib/deps.sh" demo || exit 1
ld_pg_paths
# Build and install quietly; the output is shown only when something fails.
BUILD_LOG=$(mktemp /tmp/licdata-demo-build.XXXXXX)
printf '== build and install licdata into %s ... ' "$LD_PG_PKGLIBDIR"
brc=0
ld_build_install "$TOP" >"$BUILD_LOG" 2>&1 || brc=$?
if [ "$brc" -ne 0 ]; then
	echo "FAILED"
	cat "$BUILD_LOG"
	rm -f "$BUILD_LOG"
	exit 1
fi
echo "done"
rm -f "$BUILD_LOG"

DEMO_DIR=$(mktemp -d /tmp/licdata-demo.XXXXXX)
rc=1
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup()
{
	if [ "$LICDATA_DEMO_KEEP" = 1 ] && [ -f "$DEMO_DIR/data/postmaster.pid" ]; then
		echo "$DEMO_DIR" >"$STATE"
		echo "== demo finished in $(ld_fmt_secs $(($(date +%s) - START))), exit status $rc; the server is still running (make demo-stop)"
		return
	fi
	ld_kill_postmasters "$DEMO_DIR" 2>/dev/null || true
	if [ "${LICDATA_KEEP_DEMO_DIR:-0}" = 1 ]; then
		echo "== kept $DEMO_DIR"
	else
		rm -rf "$DEMO_DIR"
	fi
	echo "== demo finished in $(ld_fmt_secs $(($(date +%s) - START))), exit status $rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -eq 0 ]; then
	# initdb refuses root: hand postgres a copy of the tree and the directory.
	getent passwd postgres >/dev/null || ld_die "no postgres OS user (is postgresql-$LD_PG_MAJOR installed?)"
	ld_copy_tree "$TOP" "$DEMO_DIR/tree"
	chown postgres: "$DEMO_DIR"
	cd "$DEMO_DIR"
	ld_as_test_user bash "$DEMO_DIR/tree/test/demo/run-demo.sh" --inner "$DEMO_DIR" && rc=0 || rc=$?
else
	ld_as_test_user bash "$TOP/test/demo/run-demo.sh" --inner "$DEMO_DIR" && rc=0 || rc=$?
fi
exit "$rc"
