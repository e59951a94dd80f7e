-- test/bench/records_explain.sql -- the plans and times of the queries that
-- read licdata.usage and licdata.audit_log, over :n records (default
-- 1000000) of 20 licensees (2 licences each) spread over the 12 months up to
-- now.  Run as a superuser in a throwaway database where licdata 1.1 is
-- installed (records are written through the views as pg_restore writes
-- them, then packed into batches as the flusher stores them; audit rows get
-- no valid hash chain, so verify_audit() is false afterwards -- do not run it
-- on a database you keep):
--   psql -X -f test/bench/records_explain.sql [-v n=...]
-- Prints each plan (auto_explain, nested statements, at NOTICE) and times.
\set ON_ERROR_STOP on
\if :{?n}
\else
\set n 1000000
\endif
SET client_min_messages = warning;
CREATE SCHEMA bench_rec;
CREATE TABLE bench_rec.t (id integer PRIMARY KEY);
SELECT licdata.publish('bench_rec.t', 'records bench', 0.5, 0.1) \g /dev/null
SELECT format('CREATE ROLE bench_rec_%s NOLOGIN', g) FROM generate_series(1, 20) g \gexec
SELECT licdata.register_licensee(('bench_rec_' || g)::regrole, 'Bench ' || g) FROM generate_series(1, 20) g \g /dev/null
CREATE TEMP TABLE lics AS
	SELECT g AS k, ('bench_rec_' || ((g - 1) / 2 + 1))::regrole AS licensee,
		   licdata.grant_licence(('bench_rec_' || ((g - 1) / 2 + 1))::regrole, 'bench_rec.t',
								 ARRAY['p' || g], valid_from => now() - interval '400 days') AS id
	  FROM generate_series(1, 40) g;
BEGIN;
SELECT licdata_internal._set_records_writable(true) \g /dev/null
INSERT INTO licdata.usage (at, licence_id, licensee, dataset, purpose, consent_ref, statement, rows, rows_delivered,
						   rows_in_functions, rows_aggregated, outcome, amount, journal_ref)
SELECT now() - interval '365 days' + g * (interval '365 days' / :n), l.id, l.licensee, 'bench_rec.t',
	   'p' || l.k, 'app-' || (g % 500), 'SELECT * FROM bench_rec.t WHERE id = $1', g % 7, g % 7, 0, 0,
	   'ok', 0.5 + 0.1 * (g % 7), 'bench-rec-' || g
  FROM generate_series(1, :n) g JOIN lics l ON l.k = 1 + (g::bigint * 7919) % 40
 ORDER BY g;
INSERT INTO licdata.audit_log (seq, at, role_name, session_user_name, licensee, licensee_name, kind, purpose,
							   datasets, dataset_names, licence_ids, decision, statement, rows, journal_ref,
							   prev_hash, hash)
SELECT 1000000000 + u.id, u.at, u.licensee::text, u.licensee::text, u.licensee, u.licensee::text, 'licensee',
	   u.purpose, ARRAY['bench_rec.t'::regclass], ARRAY['bench_rec.t'], ARRAY[u.licence_id], 'allow',
	   u.statement, u.rows, u.journal_ref, '\x00', '\x00'
  FROM licdata.usage u WHERE u.journal_ref LIKE 'bench-rec-%' ORDER BY u.at;
-- packed as the flusher stores them: batches of 8,000 records (the rows
-- inserted through the views went into the row tables of before 1.1)
INSERT INTO licdata_internal.record_batches
	(first_seq, last_seq, last_hash, min_at, max_at, audit_rows, usage_rows, audit, usage, licensees)
SELECT min(a.seq), max(a.seq), '\x00', least(min(a.at), min(u.at)), greatest(max(a.at), max(u.at)),
	   count(*), count(*), licdata_internal._pack(array_agg(a ORDER BY a.seq)),
	   licdata_internal._pack(array_agg(u ORDER BY u.id)), array_agg(DISTINCT u.licensee::oid)
  FROM licdata_internal.audit_rows a JOIN licdata_internal.usage_rows u ON u.journal_ref = a.journal_ref
 WHERE a.journal_ref LIKE 'bench-rec-%'
 GROUP BY (a.seq - 1000000001) / 8000;
DELETE FROM licdata_internal.usage_rows WHERE journal_ref LIKE 'bench-rec-%';
DELETE FROM licdata_internal.audit_rows WHERE journal_ref LIKE 'bench-rec-%';
COMMIT;
VACUUM ANALYZE licdata_internal.record_batches, licdata_internal.usage_rows, licdata_internal.audit_rows;
SELECT count(*) AS batches, pg_size_pretty(pg_table_size('licdata_internal.record_batches')) AS batches_size,
	   pg_size_pretty(pg_indexes_size('licdata_internal.record_batches')) AS batches_indexes
  FROM licdata_internal.record_batches;
SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 months', 'YYYY-MM-DD') AS m \gset
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_timing = off;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
\timing on
\echo == invoice_lines of one licensee for a month
SELECT count(*) AS lines, sum(amount) AS total FROM licdata.invoice_lines('bench_rec_3', :'m');
\echo == invoice of one licensee for a period inside a month
SELECT sum(amount) AS total FROM licdata.invoice('bench_rec_3', (:'m')::timestamptz + interval '3 days', (:'m')::timestamptz + interval '10 days');
\echo == statement_html of one licensee for a month
SET auto_explain.log_min_duration = 20;
SELECT length(licdata.statement_html('bench_rec_3', :'m')) AS html_bytes;
SET auto_explain.log_min_duration = 0;
\echo == the own usage of a licensee (what licdata.my_usage reads: the batches that hold its records)
SET ROLE bench_rec_3;
SELECT count(*) FROM licdata.my_usage;
RESET ROLE;
\echo == the query of the quota rebuild (today, every licence: the batches of today only)
SELECT count(*) FROM (SELECT u.licence_id, sum(CASE WHEN u.mode = 'product' THEN u.calls ELSE 1 END)::int8, sum(u.rows)
  FROM licdata_internal._usage_since(date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') u
 WHERE u.licence_id IS NOT NULL
   AND u.at >= (date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') GROUP BY u.licence_id) q;
\echo == audit rows of one day, and of one licensee in a month
SELECT count(*) FROM licdata.audit_log a WHERE a.at >= now() - interval '20 days' AND a.at < now() - interval '19 days';
SELECT count(*) FROM licdata.audit_log a
 WHERE a.licensee = 'bench_rec_3'::regrole AND a.at >= (:'m')::timestamptz AND a.at < (:'m')::timestamptz + interval '1 month';
\echo == the duplicate probe of the flusher (2000 references; none moved)
SELECT count(*) FROM licdata_internal._moved(ARRAY(SELECT 'bench-rec@' || g FROM generate_series(500000, 501999) g));
\timing off
SET client_min_messages = warning;
LOAD 'auto_explain';
SET auto_explain.log_min_duration = -1;
BEGIN;
SELECT licdata_internal._set_records_writable(true) \g /dev/null
DELETE FROM licdata_internal.record_batches WHERE first_seq > 1000000000;
COMMIT;
SELECT licdata.revoke_licence(id) FROM lics \g /dev/null
SELECT licdata.unpublish('bench_rec.t') \g /dev/null
DROP SCHEMA bench_rec CASCADE;
