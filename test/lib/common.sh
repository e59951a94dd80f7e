# test/lib/common.sh -- shell functions shared by the licdata test harness
# (test/run-tests.sh), the demo runner (test/demo/run-demo.sh) and test scripts
# (test/clients/*.sh, test/sh/*.sh).
#
# Source it from bash:   . "$LICDATA_TOP/test/lib/common.sh"
# It defines functions and LD_* variables only; it does not change shell
# options of the caller.
#
# What a test script can rely on (the harness runs it from the top of the tree,
# as an unprivileged user, with these set):
#   LICDATA_TOP   top of the tree the suites run in (a copy owned by postgres when
#                 `make test` runs as root)
#   LICDATA_TMP   a fresh scratch directory for this script (under tmp_check/);
#                 anything started in it is killed after the script
#   PG_CONFIG     the pg_config of the PostgreSQL the extension is installed in
#   PATH          that PostgreSQL's bindir first
# and the extension is already built and installed.  A script that needs a
# server starts its own:
#   ld_cluster_start "$LICDATA_TMP/pg" mydb     # initdb, preload licdata, start,
#                                              # createdb; exports PGHOST PGPORT
#                                              # PGDATABASE PGUSER
#   trap ld_cluster_stop EXIT
# The server listens on a Unix socket only; a client that needs TCP (JDBC)
# passes extra postgresql.conf lines as the third argument:
#   ld_cluster_start "$LICDATA_TMP/pg" mydb "listen_addresses = 'localhost'"
# Exit 0 = pass, 1 = fail, 77 = skip (say why on stdout first).

LD_PG_MAJOR=15
: "${PG_CONFIG:=/usr/lib/postgresql/${LD_PG_MAJOR}/bin/pg_config}"
export PG_CONFIG

# Top of the tree this copy of common.sh belongs to.
LD_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

ld_say()
{
	printf '%s\n' "$*"
}

ld_warn()
{
	printf 'WARNING: %s\n' "$*" >&2
}

ld_die()
{
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}

# Seconds as "1m05s".
ld_fmt_secs()
{
	local s=$1
	if [ "$s" -ge 60 ]; then
		printf '%dm%02ds' $((s / 60)) $((s % 60))
	else
		printf '%ds' "$s"
	fi
}

# Sets the paths of the PostgreSQL installation named by PG_CONFIG.  Call it after
# the dependencies are installed (pg_config comes with postgresql-server-dev-15).
# shellcheck disable=SC2034  # the LD_* paths are used by the scripts that source this file
ld_pg_paths()
{
	[ -x "$PG_CONFIG" ] || command -v "$PG_CONFIG" >/dev/null 2>&1 ||
		ld_die "pg_config not found at $PG_CONFIG (install postgresql-server-dev-${LD_PG_MAJOR}, or set PG_CONFIG)"
	LD_PG_BINDIR=$("$PG_CONFIG" --bindir)
	LD_PG_PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
	LD_PG_SHAREDIR=$("$PG_CONFIG" --sharedir)
	local pgxs_mk
	pgxs_mk=$("$PG_CONFIG" --pgxs)				# .../pgxs/src/makefiles/pgxs.mk
	LD_PGXS_DIR=$(cd "$(dirname "$pgxs_mk")/../.." && pwd)
	LD_PG_REGRESS=$LD_PGXS_DIR/src/test/regress/pg_regress
	LD_PG_ISOLATION_REGRESS=$LD_PGXS_DIR/src/test/isolation/pg_isolation_regress
	LD_TAP_PERL=$LD_PGXS_DIR/src/test/perl
	LD_PATH="$LD_PG_BINDIR:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

# The OS user that runs servers and suites: postgres when we are root (initdb,
# pg_ctl, pg_regress --temp-instance and TAP refuse to run as root), else ourselves.
ld_test_user()
{
	if [ "$(id -u)" -eq 0 ]; then
		echo postgres
	else
		id -un
	fi
}

# Runs a command as the test user with a clean, predictable environment:
# PG bindir first on PATH, UTF-8 C locale, no libpq connection variables.
ld_as_test_user()
{
	local envv=(
		"PATH=$LD_PATH"
		"LANG=C.UTF-8"
		"PG_CONFIG=$PG_CONFIG"
		"CI=${CI:-}"
		"TERM=${TERM:-dumb}"
	)
	local v
	# Let a caller tune the harness (timeouts, keeping directories).
	for v in $(compgen -e | grep -E '^(LICDATA_|PG_TEST_|ASAN_OPTIONS$|UBSAN_OPTIONS$|LD_PRELOAD$)' || true); do
		envv+=("$v=${!v}")
	done
	if [ "$(id -u)" -eq 0 ]; then
		local home
		home=$(getent passwd postgres | cut -d: -f6)
		runuser -u postgres -- env -u LC_ALL -u PGHOST -u PGPORT -u PGDATABASE -u PGUSER \
			-u PGDATA -u TEMP_CONFIG "HOME=${home:-/tmp}" "USER=postgres" "LOGNAME=postgres" \
			"${envv[@]}" "$@"
	else
		env -u LC_ALL -u PGHOST -u PGPORT -u PGDATABASE -u PGUSER -u PGDATA -u TEMP_CONFIG \
			"${envv[@]}" "$@"
	fi
}

# Copies the tree at $1 (without .git) to the new directory $2 and, as root,
# gives it to postgres.
ld_copy_tree()
{
	local src=$1 dst=$2
	mkdir -p "$dst"
	tar -C "$src" --exclude=./.git -cf - . | tar -C "$dst" -xf -
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres: "$dst"
	fi
}

# Builds the extension in $1 (default: LD_TOP) and installs it.  Root installs;
# another user installs if it may write the PostgreSQL directories, or goes on
# if the installed files are identical to the ones just built, or else prints
# the command to run as root and returns 2.  Returns 1 if the build fails.
ld_build_install()
{
	local top=${1:-$LD_TOP}
	local jobs
	jobs=$(nproc 2>/dev/null || echo 2)
	local mk=(make -C "$top" "PG_CONFIG=$PG_CONFIG" with_llvm=no)

	ld_say "== build: ${mk[*]} -j$jobs"
	if ! "${mk[@]}" -j"$jobs"; then
		ld_say "BUILD FAILED"
		return 1
	fi

	if [ "$(id -u)" -eq 0 ] ||
		{ [ -w "$LD_PG_PKGLIBDIR" ] && [ -w "$LD_PG_SHAREDIR/extension" ]; }; then
		ld_say "== install: ${mk[*]} install"
		if ! "${mk[@]}" install; then
			ld_say "INSTALL FAILED"
			return 1
		fi
		return 0
	fi

	# Not allowed to install: fine if what is installed is what we just built.
	local f stale=0 n=0
	for f in "$top"/*.so; do
		[ -e "$f" ] || continue
		n=$((n + 1))
		cmp -s "$f" "$LD_PG_PKGLIBDIR/$(basename "$f")" || stale=1
	done
	for f in "$top"/*.control "$top"/*--*.sql; do
		[ -e "$f" ] || continue
		n=$((n + 1))
		cmp -s "$f" "$LD_PG_SHAREDIR/extension/$(basename "$f")" || stale=1
	done
	if [ "$n" -gt 0 ] && [ "$stale" -eq 0 ]; then
		ld_say "== install: the installed extension is identical to this build; not reinstalling"
		return 0
	fi
	ld_say "Cannot install: user $(id -un) may not write $LD_PG_PKGLIBDIR and $LD_PG_SHAREDIR/extension."
	ld_say "Install this build as root, then run the command again:"
	ld_say "  sudo make -C $top install PG_CONFIG=$PG_CONFIG with_llvm=no"
	return 2
}

# Kills every postmaster whose data directory lies under $1 (left over by a
# crashed or timed-out test), found through its postmaster.pid: SIGQUIT
# (immediate shutdown), then SIGKILL after 10 s.  Only those pids are signalled.
ld_kill_postmasters()
{
	local dir=$1 pidfile pid datadir n
	[ -d "$dir" ] || return 0
	while IFS= read -r -d '' pidfile; do
		pid=$(head -n1 "$pidfile" 2>/dev/null || true)
		datadir=$(sed -n 2p "$pidfile" 2>/dev/null || true)
		case $pid in '' | *[!0-9]*) continue ;; esac
		[ -r "/proc/$pid/cmdline" ] || continue
		# The pid must still be a postgres process for this data directory.
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -e postgres -e postmaster || continue
		[ -n "$datadir" ] && [ "$(readlink -f "/proc/$pid/cwd" 2>/dev/null)" != "$(readlink -f "$datadir")" ] &&
			continue
		ld_warn "stopping a leftover postmaster (pid $pid, data directory $datadir)"
		kill -QUIT "$pid" 2>/dev/null || continue
		for n in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	done < <(find "$dir" -name postmaster.pid -type f -print0 2>/dev/null)
	return 0
}

# Is TCP port $1 free on this machine (nothing listening on it, no PostgreSQL
# socket lock file for it in the usual places)?
ld_port_free()
{
	local port=$1
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		return 1
	fi
	[ -e "/tmp/.s.PGSQL.$port.lock" ] && return 1
	[ -e "/var/run/postgresql/.s.PGSQL.$port.lock" ] && return 1
	return 0
}

# Prints the first free port from $1 (default 55432) upward.
ld_free_port()
{
	local port=${1:-55432}
	while [ "$port" -lt 65535 ]; do
		if ld_port_free "$port"; then
			echo "$port"
			return 0
		fi
		port=$((port + 1))
	done
	return 1
}

# Starts a throwaway cluster in directory $1 (created; must be short enough for
# a Unix socket path) with licdata preloaded and licdata.database = $2 (default
# postgres), creates that database, and exports PGHOST PGPORT PGDATABASE PGUSER
# and LD_CLUSTER_DIR (data directory $1/data, server log $1/postgresql.log).  Extra postgresql.conf lines may follow as $3.
# Run it as an unprivileged user.  Stop it with ld_cluster_stop.
ld_cluster_start()
{
	local dir=$1 db=${2:-postgres} extra=${3:-} port sockdir
	[ "$(id -u)" -ne 0 ] || ld_die "ld_cluster_start: initdb refuses to run as root"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	port=$(ld_free_port 55432) || ld_die "no free port from 55432 upward"
	# A Unix socket path is limited to 107 bytes: use a short directory if needed.
	sockdir=$dir
	LD_CLUSTER_SOCKTMP=
	if [ "${#dir}" -gt 80 ]; then
		sockdir=$(mktemp -d /tmp/ldsock.XXXXXX)
		LD_CLUSTER_SOCKTMP=$sockdir
	fi
	initdb -D "$dir/data" -A trust -U "$(id -un)" -E UTF8 --no-locale --no-sync \
		>"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log"
		ld_die "initdb failed in $dir/data"
	}
	cat >>"$dir/data/postgresql.conf" <<-EOF

		# added by test/lib/common.sh ld_cluster_start
		shared_preload_libraries = 'licdata'
		licdata.database = '$db'
		port = $port
		listen_addresses = ''
		unix_socket_directories = '$sockdir'
		logging_collector = off
		${extra}
	EOF
	LD_CLUSTER_DIR=$dir
	export LD_CLUSTER_DIR
	if ! pg_ctl -D "$dir/data" -l "$dir/postgresql.log" -w -t 60 start >/dev/null; then
		tail -n 40 "$dir/postgresql.log" >&2
		ld_die "the server in $dir/data did not start (log above)"
	fi
	PGHOST=$sockdir
	PGPORT=$port
	PGUSER=$(id -un)
	PGDATABASE=postgres
	export PGHOST PGPORT PGUSER PGDATABASE
	if [ "$db" != postgres ]; then
		createdb "$db" || ld_die "createdb $db failed"
	fi
	export PGDATABASE=$db
}

# Stops the cluster started by ld_cluster_start (fast, then immediate).
ld_cluster_stop()
{
	local dir=${LD_CLUSTER_DIR:-}
	if [ -n "$dir" ] && [ -f "$dir/data/postmaster.pid" ]; then
		pg_ctl -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			pg_ctl -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
			ld_kill_postmasters "$dir"
	fi
	if [ -n "${LD_CLUSTER_SOCKTMP:-}" ]; then
		rm -rf "$LD_CLUSTER_SOCKTMP"
	fi
	return 0
}
