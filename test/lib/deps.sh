#!/usr/bin/env bash
# test/lib/deps.sh [build|test|demo|all] -- the Debian packages licdata needs.
#
#   build   compile and install the extension
#   test    build + what `make test` needs (TAP, isolation, clients, benchmarks)
#   demo    build + what `make demo` needs
#   all     everything (default; `make deps`)
#
# Checks each package with dpkg-query.  As root, installs the missing ones
# (apt-get update, retried; then apt-get install -y --no-install-recommends).
# As another user, prints the missing ones and the command to run, and exits 1.
# Exit 0 when nothing is missing (any more).
set -euo pipefail

PG_MAJOR=15
set_name=${1:-all}

build_pkgs=(make gcc "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
	"postgresql-client-$PG_MAJOR" libsodium-dev libssl-dev)
# perl: prove;  libipc-run-perl: PostgreSQL::Test::Cluster;  pgaudit: benchmarks;
# jdbc + JDK: the JDBC client test;  odbc-postgresql + unixodbc (isql): the ODBC client test;
# pgbouncer: the pooler test;  python3-psycopg2: the psycopg2 client test (the node-postgres
# test uses node and npm when present, and is skipped otherwise).
# chromium: test/sh/price_statement.sh renders the monthly statement in a real browser.
# pgbench and pg_isolation_regress come with postgresql-client-15.
test_pkgs=(perl libipc-run-perl "postgresql-$PG_MAJOR-pgaudit" libpostgresql-jdbc-java
	odbc-postgresql unixodbc pgbouncer python3-psycopg2 chromium)
demo_pkgs=()

if ! javac -version >/dev/null 2>&1; then
	test_pkgs+=(default-jdk-headless)
fi

case $set_name in
build) want=("${build_pkgs[@]}") ;;
test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
demo) want=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
all) want=("${build_pkgs[@]}" "${test_pkgs[@]}" "${demo_pkgs[@]}") ;;
-h | --help)
	sed -n '2,12p' "$0"
	exit 0
	;;
*)
	echo "usage: $0 [build|test|demo|all]" >&2
	exit 2
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps: dpkg-query not found (not Debian?); not checking packages: ${want[*]}" >&2
	exit 0
fi

installed()
{
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${want[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "deps ($set_name): all Debian packages present"
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "Missing Debian packages: ${missing[*]}"
	echo "sudo apt-get install -y ${missing[*]}"
	exit 1
fi

echo "deps ($set_name): installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# apt-get does not wait for the apt lock (another apt, unattended-upgrades):
# try three times, a little apart.
retry()
{
	local i
	for i in 1 2 3; do
		"$@" && return 0
		[ "$i" -lt 3 ] || break
		echo "deps: '$*' failed (attempt $i of 3); retrying in $((i * 10)) s" >&2
		sleep $((i * 10))
	done
	return 1
}

retry apt-get update ||
	{
		echo "deps: apt-get update failed 3 times" >&2
		exit 1
	}
retry apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=120 "${missing[@]}" ||
	{
		echo "deps: apt-get install failed 3 times: ${missing[*]}" >&2
		exit 1
	}

still=()
for p in "${missing[@]}"; do
	installed "$p" || still+=("$p")
done
if [ "${#still[@]}" -gt 0 ]; then
	echo "deps: still missing after apt-get install: ${still[*]}" >&2
	exit 1
fi
echo "deps ($set_name): installed ${missing[*]}"
