#!/usr/bin/env bash
# test/bench/mask_throughput.sh -- calls per second of each masking function on one core.
#
# Usage: PGHOST=... PGPORT=... PGDATABASE=... PGUSER=... test/bench/mask_throughput.sh
#
#   MASK_BENCH_ROWS    rows per measurement (default 500000)
#   MASK_BENCH_ROUNDS  rounds per query; the fastest counts (default 3)
#
# Needs a superuser (it registers a throwaway licensee, mask_bench_bank, whose
# key the keyed methods use, and removes it at the end) and a server with
# licdata preloaded and licdata.database naming PGDATABASE.
#
# Method: one session, no parallel workers, no JIT.  The inputs are
# materialised in a temporary table first.  For each function,
#     SELECT count(<mask>(col)) FROM inputs
# is timed against the baseline SELECT count(col) FROM inputs; the difference
# divided by the row count is the cost of one call (executor overhead of
# calling a function included, scanning excluded).  The machine is noisy:
# compare runs made back to back.
set -euo pipefail

ROWS=${MASK_BENCH_ROWS:-500000}
ROUNDS=${MASK_BENCH_ROUNDS:-3}
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

cleanup()
{
	"${PSQL[@]}" -c "DELETE FROM licdata.licensees WHERE licensee::text = 'mask_bench_bank';" \
		-c "DROP ROLE IF EXISTS mask_bench_bank;" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"${PSQL[@]}" <<'SQL' >/dev/null
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mask_bench_bank') THEN
		CREATE ROLE mask_bench_bank NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM licdata.licensees WHERE licensee::text = 'mask_bench_bank') THEN
		PERFORM licdata.register_licensee('mask_bench_bank', 'Mask benchmark licensee');
	END IF;
END
$$;
SQL

"${PSQL[@]}" -v rows="$ROWS" -v rounds="$ROUNDS" <<'SQL'
SET max_parallel_workers_per_gather = 0;
SET jit = off;
\pset footer off

-- best-of-rounds wall time of one query, in milliseconds
CREATE FUNCTION pg_temp.bench_ms(q text, rounds int) RETURNS float8
	LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	best float8 := 'Infinity';
	dummy bigint;
BEGIN
	FOR i IN 1..rounds LOOP
		t0 := clock_timestamp();
		EXECUTE q INTO dummy;
		best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1000);
	END LOOP;
	RETURN best;
END
$$;

-- keyed methods use the key of the licensee the session acts for
SET ROLE mask_bench_bank;

CREATE TEMP TABLE inputs AS
SELECT lpad((110105194900000000 + g::bigint * 7919)::text, 18, '0') AS id,
	   '138' || lpad((g * 7 % 100000000)::text, 8, '0') AS mobile,
	   'user' || g || '@example.cn' AS email,
	   (ARRAY['张', '王', '李', '欧阳', '司马'])[1 + g % 5] || (ARRAY['三', '小明', '娜娜'])[1 + g % 3] AS name,
	   date '2000-01-01' + g % 10000 AS d,
	   timestamptz '2000-01-01 00:00+08' + g * interval '17 minutes' AS ts,
	   g AS amount,
	   (g * 1.25)::numeric(12, 2) AS money,
	   g * 1.25::float8 AS measure
  FROM generate_series(1, :rows) g;
ANALYZE inputs;

CREATE TEMP TABLE cases (ord int, method text, col text, expr text);
INSERT INTO cases VALUES
	(1,  'redact',     'id',      'licdata_internal.mask_redact(id)'),
	(2,  'partial',    'id',      'licdata_internal.mask_partial(id, 3, 4, ''*'')'),
	(3,  'email',      'email',   'licdata_internal.mask_email(email)'),
	(4,  'cn_mobile',  'mobile',  'licdata_internal.mask_cn_mobile(mobile)'),
	(5,  'cn_id',      'id',      'licdata_internal.mask_cn_id(id)'),
	(6,  'cn_name',    'name',    'licdata_internal.mask_cn_name(name)'),
	(7,  'pseudonym',  'id',      'licdata_internal.mask_pseudonym(id, 16)'),
	(8,  'fpe',        'id',      'licdata_internal.mask_fpe(id, ''0123456789'')'),
	(9,  'fpe',        'mobile',  'licdata_internal.mask_fpe(mobile, ''0123456789'')'),
	(10, 'date_trunc', 'd',       'licdata_internal.mask_date_trunc(d, ''month'')'),
	(11, 'date_trunc', 'ts',      'licdata_internal.mask_date_trunc(ts, ''day'')'),
	(12, 'bucket',     'amount',  'licdata_internal.mask_bucket(amount, 1000)'),
	(13, 'bucket',     'money',   'licdata_internal.mask_bucket(money, 100::numeric)'),
	(14, 'noise',      'amount',  'licdata_internal.mask_noise(amount, relative => 0.05)'),
	(15, 'noise',      'money',   'licdata_internal.mask_noise(money, relative => 0.05)'),
	(16, 'noise',      'measure', 'licdata_internal.mask_noise(measure, absolute => 10)'),
	(17, 'function',   'email',   'licdata_internal.mask_function(email, ''pg_catalog.upper(text)''::regprocedure::regproc)');

-- warm up (loads keys, caches, the table in shared buffers)
SELECT count(licdata_internal.mask_pseudonym(id)) + count(licdata_internal.mask_fpe(mobile)) AS warmed FROM inputs \gset

CREATE TEMP TABLE baseline AS
SELECT col, pg_temp.bench_ms(format('SELECT count(%s) FROM inputs', col), :rounds) AS ms
  FROM (SELECT DISTINCT col FROM cases) c;

\echo
\echo 'licdata masking functions: calls per second on one core (' :rows 'rows, best of' :rounds 'rounds)'
SELECT c.method,
	   c.expr AS call,
	   round((t.ms - b.ms)::numeric * 1e6 / :rows, 0) AS ns_per_call,
	   CASE WHEN (t.ms - b.ms) * 1e6 / :rows < 10 THEN 'below noise'
			ELSE to_char(:rows / ((t.ms - b.ms) / 1000), 'FM999,999,999') END AS calls_per_sec
  FROM cases c
	   CROSS JOIN LATERAL (SELECT pg_temp.bench_ms(format('SELECT count(%s) FROM inputs', c.expr), :rounds) AS ms) t
	   JOIN baseline b USING (col)
 ORDER BY c.ord;
RESET ROLE;
SQL
