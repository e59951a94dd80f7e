# shellcheck shell=bash disable=SC2034  # settings and BENCH_MODE are read by the scripts
# test/bench/lib-bench.sh -- shell functions shared by the benchmark scripts
# (point_lookup.sh, callgrind.sh, masked_scan.sh, run-all.sh).  Not a
# benchmark itself: source it from bash after test/lib/common.sh.
#
# Every benchmark runs in two parts:
#   outer  (whoever calls it; root or a normal user): checks that licdata is
#          installed, makes a scratch directory /tmp/ldbench.XXXXXX, copies
#          test/lib and test/bench into it and runs the inner part as the test
#          user (postgres when root, see ld_as_test_user); removes the
#          directory afterwards (LICDATA_BENCH_KEEP=1 keeps it).
#   inner  (script --inner DIR): starts its own throwaway cluster under DIR
#          (ld_cluster_start), loads data, measures, stops the cluster.
#
# Settings (environment; LICDATA_* passes through ld_as_test_user):
#   LICDATA_BENCH_ROWS     rows in pd.people (default 1000000)
#   LICDATA_BENCH_ROUNDS   rounds of each A/B comparison (default 3)
#   LICDATA_BENCH_SECONDS  seconds per pgbench run (default 10)
#   LICDATA_BENCH_KEEP     1 = keep the scratch directory (cluster stopped)
#   LICDATA_BENCH_BUILD    a licdata tree where `make` has run: measure its
#                          licdata.so (and .control / --1.0.sql) instead of the
#                          installed one, without installing it -- the
#                          PostgreSQL binaries are copied into the scratch
#                          directory with a library and share directory that
#                          point at the system's, except for licdata's files
#                          (PostgreSQL finds them relative to its binary).
#                          For comparing builds, or measuring on a machine
#                          whose installed copy others keep replacing.
#
# Nothing here prints pass/fail by time: benchmarks print measurements and
# ratios measured back to back in the same invocation.

BENCH_ROWS=${LICDATA_BENCH_ROWS:-1000000}
BENCH_ROUNDS=${LICDATA_BENCH_ROUNDS:-3}
BENCH_SECONDS=${LICDATA_BENCH_SECONDS:-10}
BENCH_DB=licdata_bench

# bench_enter SCRIPT ARGS...: in the outer part, runs SCRIPT --inner DIR as the
# test user and exits with its status; in the inner part (--inner DIR) sets
# BENCH_DIR and PATH and returns.
bench_enter()
{
	local script=$1
	shift
	if [ "${1:-}" = --inner ]; then
		BENCH_DIR=$2
		ld_pg_paths
		export PATH=$LD_PATH
		if [ -d "$BENCH_DIR/pgroot" ]; then
			LD_PG_BINDIR=$BENCH_DIR/pgroot/usr/lib/postgresql/$LD_PG_MAJOR/bin
			LD_PG_PKGLIBDIR=$BENCH_DIR/pgroot/usr/lib/postgresql/$LD_PG_MAJOR/lib
			export PATH=$LD_PG_BINDIR:$PATH
		fi
		cd "$BENCH_DIR" || exit 1
		return 0
	fi

	ld_pg_paths
	local top
	top=$(cd "$(dirname "$script")/../.." && pwd)
	if [ -n "${LICDATA_BENCH_BUILD:-}" ]; then
		echo "== measuring the licdata built in $LICDATA_BENCH_BUILD (not the installed one)"
	else
		if [ ! -f "$LD_PG_PKGLIBDIR/licdata.so" ] || [ ! -f "$LD_PG_SHAREDIR/extension/licdata.control" ]; then
			ld_die "licdata is not installed in $LD_PG_PKGLIBDIR: run 'make && make install' (as root) in $top first"
		fi
		if [ -f "$top/licdata.so" ] && ! cmp -s "$top/licdata.so" "$LD_PG_PKGLIBDIR/licdata.so"; then
			ld_warn "the installed licdata.so differs from $top/licdata.so: measuring the installed one (run 'make install' to measure this tree)"
		fi
	fi
	command -v pgbench >/dev/null 2>&1 || [ -x "$LD_PG_BINDIR/pgbench" ] ||
		ld_die "pgbench not found (package postgresql-client-$LD_PG_MAJOR)"

	BENCH_OUTER_DIR=$(mktemp -d /tmp/ldbench.XXXXXX)
	if [ -n "${LICDATA_BENCH_BUILD:-}" ]; then
		bench_overlay "$LICDATA_BENCH_BUILD" "$BENCH_OUTER_DIR/pgroot"
	fi
	# shellcheck disable=SC2317  # called from the EXIT trap
	bench_outer_cleanup()
	{
		ld_kill_postmasters "$BENCH_OUTER_DIR" 2>/dev/null || true
		if [ "${LICDATA_BENCH_KEEP:-0}" = 1 ]; then
			echo "== kept $BENCH_OUTER_DIR"
		else
			rm -rf "$BENCH_OUTER_DIR"
		fi
	}
	trap bench_outer_cleanup EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$BENCH_OUTER_DIR/tree/test"
	cp -r "$top/test/lib" "$top/test/bench" "$BENCH_OUTER_DIR/tree/test/"
	if [ "$(id -u)" -eq 0 ]; then
		getent passwd postgres >/dev/null || ld_die "no postgres OS user (is postgresql-$LD_PG_MAJOR installed?)"
		chown -R postgres: "$BENCH_OUTER_DIR"
	fi
	local rc=0
	ld_as_test_user bash "$BENCH_OUTER_DIR/tree/test/bench/$(basename "$script")" --inner "$BENCH_OUTER_DIR" ||
		rc=$?
	exit "$rc"
}

# bench_overlay TREE ROOT: a private PostgreSQL under ROOT (same layout as
# Debian's) whose licdata files come from TREE (see LICDATA_BENCH_BUILD).
bench_overlay()
{
	local tree=$1 root=$2 bin lib share f
	tree=$(cd "$tree" && pwd)
	for f in licdata.so licdata.control licdata--1.0.sql; do
		[ -f "$tree/$f" ] || ld_die "LICDATA_BENCH_BUILD: $tree/$f is missing (run make there)"
	done
	bin=$root/usr/lib/postgresql/$LD_PG_MAJOR/bin
	lib=$root/usr/lib/postgresql/$LD_PG_MAJOR/lib
	share=$root/usr/share/postgresql/$LD_PG_MAJOR
	mkdir -p "$bin" "$lib" "$(dirname "$share")"
	cp -p "$LD_PG_BINDIR"/* "$bin/"
	for f in "$LD_PG_PKGLIBDIR"/*; do
		ln -s "$f" "$lib/$(basename "$f")"
	done
	cp -rp "$LD_PG_SHAREDIR" "$share"
	rm -f "$lib/licdata.so" "$share"/extension/licdata*
	cp "$tree/licdata.so" "$lib/"
	cp "$tree/licdata.control" "$tree"/licdata--*.sql "$share/extension/"
	[ "$("$bin/pg_config" --pkglibdir)" = "$lib" ] ||
		ld_die "bench_overlay: the copied PostgreSQL does not find its library directory in $lib"
}

# Cluster settings for every benchmark: the 1M-row table and its index fit in
# shared buffers; checkpoints stay out of the way.
BENCH_CONF="shared_buffers = '512MB'
max_wal_size = '8GB'
checkpoint_timeout = '30min'
max_connections = 20"

# bench_cluster_start [EXTRA CONF]: a licdata cluster in BENCH_DIR/pg, database licdata_bench.
# shellcheck disable=SC2120  # the extra configuration is optional
bench_cluster_start()
{
	ld_cluster_start "$BENCH_DIR/pg" "$BENCH_DB" "$BENCH_CONF${1:+
$1}"
	trap ld_cluster_stop EXIT
	BENCH_MODE=licdata
}

# bench_restart MODE: restart the cluster as
#   licdata   licdata preloaded (as configured)
#   plain     no library preloaded (plain PostgreSQL)
#   pgaudit   pgaudit preloaded with pgaudit.log = 'read' (log_relation default, off)
bench_restart()
{
	local mode=$1 opts
	case $mode in
	licdata) opts="" ;;
	plain) opts="-c shared_preload_libraries=''" ;;
	pgaudit) opts="-c shared_preload_libraries=pgaudit -c pgaudit.log=read" ;;
	*) ld_die "bench_restart: unknown mode $mode" ;;
	esac
	pg_ctl -D "$LD_CLUSTER_DIR/data" -m fast -w -t 60 stop >/dev/null ||
		ld_die "could not stop the server"
	if ! pg_ctl -D "$LD_CLUSTER_DIR/data" -l "$LD_CLUSTER_DIR/postgresql.log" -w -t 60 \
		${opts:+-o "$opts"} start >/dev/null; then
		tail -n 20 "$LD_CLUSTER_DIR/postgresql.log" >&2
		ld_die "could not start the server in mode $mode"
	fi
	BENCH_MODE=$mode
}

# bench_load_people: pd.people with BENCH_ROWS rows (deterministic), its
# primary key, analysed and vacuumed.  Also creates pg_prewarm.
bench_load_people()
{
	psql -X -q -v ON_ERROR_STOP=1 -v rows="$BENCH_ROWS" <<-'SQL'
		SET client_min_messages = warning;
		CREATE EXTENSION IF NOT EXISTS pg_prewarm;
		CREATE SCHEMA pd;
		CREATE TABLE pd.people (
			person_id  bigint NOT NULL,
			id_number  varchar(18) NOT NULL,
			name       text NOT NULL,
			mobile     varchar(11) NOT NULL,
			birth_date date NOT NULL,
			region     text NOT NULL,
			salary     numeric(12,2) NOT NULL
		);
		INSERT INTO pd.people
		SELECT g,
			   r.code || to_char(b.d, 'YYYYMMDD') || lpad((g % 1000)::text, 3, '0') || (g % 10)::text,
			   (ARRAY['张','王','李','赵','刘','陈','杨','黄','欧阳','司马'])[1 + g % 10]
				 || (ARRAY['伟','芳','娜','秀英','敏','静','丽','强','磊','军','洋','勇'])[1 + (g / 10) % 12],
			   '13' || lpad(((g * 104729) % 1000000000)::text, 9, '0'),
			   b.d,
			   r.code,
			   round((3000 + (g * 7919) % 47000)::numeric + (g % 100) / 100.0, 2)
		  FROM generate_series(1::bigint, :rows) g
			   CROSS JOIN LATERAL (SELECT date '1950-01-01' + ((g * 7919) % 20000)::int AS d) b
			   CROSS JOIN LATERAL (SELECT (ARRAY['110101','310104','440305','330106','320102',
											  '510107','420106','370202'])[1 + g % 8] AS code) r;
		ALTER TABLE pd.people ADD PRIMARY KEY (person_id);
		VACUUM (ANALYZE) pd.people;
	SQL
}

# bench_prewarm: table and index into shared buffers (after every restart).
bench_prewarm()
{
	psql -X -q -At -c "SELECT pg_prewarm('pd.people') + pg_prewarm('pd.people_pkey')" >/dev/null
}

# bench_journal_files: number of metering journal files not yet moved into
# tables by the licdata flusher.
bench_journal_files()
{
	local d="$LD_CLUSTER_DIR/data/pg_licdata/journal"
	[ -d "$d" ] || {
		echo 0
		return
	}
	find "$d" -maxdepth 1 -type f -name '*.jnl' | wc -l
}

# bench_flusher paused|live|fast: the licdata flusher's interval (reload):
# 1 hour (it moves nothing while a run is measured), the default (1 s), or
# 10 ms (to drain a backlog as fast as it can).
bench_flusher()
{
	local v
	case $1 in
	paused) v="'1h'" ;;
	live) v="DEFAULT" ;;
	fast) v="'10ms'" ;;
	*) ld_die "bench_flusher: unknown mode $1" ;;
	esac
	psql -X -q -c "ALTER SYSTEM SET licdata.flush_interval = $v" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.3
}

# bench_discard_journal: throws away the journal records of the runs so far
# (a throwaway cluster: their usage and audit rows are not needed): pauses
# the flusher, stops a pass it may be in (the postmaster restarts it), and
# removes the journal files.  Call it with no client session open.
bench_discard_journal()
{
	local pid
	bench_flusher paused
	pid=$(psql -X -At -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'licdata flusher'")
	if [ -n "$pid" ]; then
		psql -X -q -At -c "SELECT pg_terminate_backend($pid, 10000)" >/dev/null || true
	fi
	for _ in $(seq 1 50); do
		[ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null && break
		sleep 0.1
	done
	rm -f "$LD_CLUSTER_DIR/data/pg_licdata/journal/"*.jnl
}

# bench_wait_drain [TIMEOUT]: waits until the flusher has moved every journal
# file (all client sessions must have ended).  Prints the seconds waited
# (with one decimal); "timeout" after TIMEOUT seconds (default 300).
bench_wait_drain()
{
	local timeout=${1:-300} t0 now
	t0=$(date +%s%N)
	while [ "$(bench_journal_files)" -gt 0 ]; do
		now=$(date +%s%N)
		if [ $(((now - t0) / 1000000000)) -ge "$timeout" ]; then
			echo timeout
			return 0
		fi
		sleep 0.2
	done
	now=$(date +%s%N)
	awk -v ns=$((now - t0)) 'BEGIN { printf "%.1f", ns / 1e9 }'
}

# bench_median NUMBERS...: the median (mean of the middle two for an even count).
bench_median()
{
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_ratio A B: A / B with 3 decimals.
bench_ratio()
{
	awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.3f", a / b }'
}

# bench_min NUMBERS... / bench_max NUMBERS...
bench_min()
{
	printf '%s\n' "$@" | sort -g | awk 'NR == 1'
}
bench_max()
{
	printf '%s\n' "$@" | sort -g | tail -n1
}

# bench_machine: one line describing this machine and its load.
bench_machine()
{
	local cpu
	cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')
	printf '%s cores (%s), %s MB RAM, load average %s, PostgreSQL %s\n' \
		"$(nproc 2>/dev/null || echo '?')" "${cpu:-unknown CPU}" \
		"$(awk '/MemTotal/ { printf "%d", $2 / 1024 }' /proc/meminfo 2>/dev/null)" \
		"$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" \
		"$(postgres --version | sed 's/^[^0-9]*\([0-9][0-9.]*\).*/\1/')"
}

# bench_setup_licdata: as the operator (the cluster's superuser), after
# bench_load_people: CREATE EXTENSION licdata, publish pd.people, and one
# licensee, bank_a (LOGIN), with one licence per purpose over all columns,
# no quotas:
#   bench_plain   enforcement only: no row filter, no masks
#   bench_filter  a row filter that every row passes (salary >= 0), so the
#                 same rows are delivered and only the filter's cost shows
#   bench_mask    masks on 2 columns: id_number pseudonym, name cn_name
#   bench_scan    masks on 5 columns: id_number pseudonym, name cn_name,
#                 mobile cn_mobile, birth_date date_trunc(month),
#                 salary bucket(1000)
bench_setup_licdata()
{
	psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<-'SQL'
		\set ON_ERROR_STOP on
		SET client_min_messages = warning;
		CREATE EXTENSION licdata;
		SELECT licdata.publish('pd.people', 'benchmark people');
		CREATE ROLE bank_a LOGIN;
		SELECT licdata.register_licensee('bank_a', 'Bank A (benchmark)');

		SELECT licdata.grant_licence('bank_a', 'pd.people', ARRAY['bench_plain']) AS l_plain \gset
		SELECT licdata.grant_licence('bank_a', 'pd.people', ARRAY['bench_filter'],
									 row_filter => 'salary >= 0') AS l_filter \gset
		SELECT licdata.grant_licence('bank_a', 'pd.people', ARRAY['bench_mask']) AS l_mask \gset
		SELECT licdata.grant_licence('bank_a', 'pd.people', ARRAY['bench_scan']) AS l_scan \gset

		SELECT licdata.set_mask('pd.people', 'id_number', 'pseudonym', '{}', licence_id => :l_mask);
		SELECT licdata.set_mask('pd.people', 'name', 'cn_name', '{}', licence_id => :l_mask);

		SELECT licdata.set_mask('pd.people', 'id_number', 'pseudonym', '{}', licence_id => :l_scan);
		SELECT licdata.set_mask('pd.people', 'name', 'cn_name', '{}', licence_id => :l_scan);
		SELECT licdata.set_mask('pd.people', 'mobile', 'cn_mobile', '{}', licence_id => :l_scan);
		SELECT licdata.set_mask('pd.people', 'birth_date', 'date_trunc', '{"unit": "month"}', licence_id => :l_scan);
		SELECT licdata.set_mask('pd.people', 'salary', 'bucket', '{"width": 1000}', licence_id => :l_scan);

		-- an ordinary role reading the table without licdata (callgrind.sh)
		CREATE ROLE bench_reader BYPASSRLS;
		GRANT USAGE ON SCHEMA pd TO bench_reader;
		GRANT SELECT ON pd.people TO bench_reader;
	SQL
}
