#!/usr/bin/env bash
# test/demo/run-demo.sh -- `make demo`: both licensed-access cases on a private,
# throwaway cluster.
#
# Steps: Debian packages (test/lib/deps.sh demo), make, make install (as root;
# another user is told the exact command if it cannot install).  Then, as an
# unprivileged user (postgres when run as root, else the caller), in a fresh
# mktemp -d directory: initdb, licdata preloaded, licdata.database =
# 'licdata_demo', the first free port from 55432 up, Unix socket in that
# directory, no TCP; start; createdb licdata_demo; run test/demo/scenario.sh
# with PGHOST PGPORT PGDATABASE PGUSER (and LICDATA_TOP, LICDATA_DEMO_DIR)
# exported, from the top of the tree.  The cluster is stopped and the directory
# deleted on exit; the exit status is the scenario's.
#
# Environment: PG_CONFIG; LICDATA_KEEP_DEMO_DIR=1 keeps the directory (the
# cluster is still stopped).
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
	trap ld_cluster_stop EXIT
	ld_cluster_start "$DIR" licdata_demo
	export LICDATA_TOP=$TOP LICDATA_DEMO_DIR=$DIR
	echo "== demo cluster: $DIR/data, socket $PGHOST, port $PGPORT, database $PGDATABASE, user $PGUSER"
	echo "==   connect while it runs: psql -h $PGHOST -p $PGPORT -U $PGUSER $PGDATABASE"
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
	exit "$rc"
fi

# ---------------------------------------------------------------------------
# Outer part: packages, build, install; the cluster as the test user.
# ---------------------------------------------------------------------------
START=$(date +%s)
bash "$TOP/test/lib/deps.sh" demo || exit 1
ld_pg_paths
brc=0
ld_build_install "$TOP" || brc=$?
[ "$brc" -eq 0 ] || exit 1

DEMO_DIR=$(mktemp -d /tmp/licdata-demo.XXXXXX)
rc=1
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup()
{
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
