-- test/demo/operator_report.sql -- part 3 of the demo: the operator bills and audits.
\set ON_ERROR_STOP on
\echo '--- 3.1  licdata.flush(): wait until the background worker has moved every usage and audit'
\echo '         record of the statements above from the crash-safe journal into the tables'
SELECT licdata.flush() AS flushed;

\echo
\echo '--- 3.2  Invoices for the period (licdata.invoice): one line per licence and purpose;'
\echo '         a statement that used two licences (a join) counts once on each'
\echo 'bank_a:'
SELECT licence_id, dataset, purpose, queries, rows, amount
  FROM licdata.invoice('bank_a', now() - interval '1 day', now() + interval '1 day');
SELECT count(*) AS lines, sum(queries) AS queries, sum(rows) AS rows, sum(amount) AS total
  FROM licdata.invoice('bank_a', now() - interval '1 day', now() + interval '1 day');
\echo 'stats_bureau:'
SELECT licence_id, dataset, purpose, queries, rows, amount
  FROM licdata.invoice('stats_bureau', now() - interval '1 day', now() + interval '1 day');
SELECT count(*) AS lines, sum(queries) AS queries, sum(rows) AS rows, sum(amount) AS total
  FROM licdata.invoice('stats_bureau', now() - interval '1 day', now() + interval '1 day');

\echo
\echo '--- 3.3  Usage per licensee (licdata.usage: one row per statement and licence used; a statement'
\echo '         refused before it ran is not billed, it is in the audit trail below)'
SELECT licensee, count(DISTINCT journal_ref) AS statements,
       count(DISTINCT journal_ref) FILTER (WHERE outcome = 'ok') AS ok,
       count(DISTINCT journal_ref) FILTER (WHERE outcome = 'error') AS error,
       count(DISTINCT journal_ref) FILTER (WHERE outcome = 'cancelled') AS cancelled,
       count(*) AS usage_rows, sum(rows) AS rows_billed, sum(rows_aggregated) AS rows_aggregated,
       sum(amount) AS amount, count(DISTINCT consent_ref) AS consent_refs
  FROM licdata.usage GROUP BY licensee ORDER BY 1;
\echo 'bank_a, per consent reference (each lookup is tied to an application):'
SELECT coalesce(consent_ref, '(none)') AS consent_ref, count(DISTINCT journal_ref) AS statements,
       sum(rows) AS rows, sum(amount) AS amount
  FROM licdata.usage WHERE licensee = 'bank_a'::regrole
 GROUP BY 1 ORDER BY 1;

\echo
\echo '--- 3.4  The audit trail of denials (licdata.audit_log, decision = deny)'
SELECT seq, role_name, purpose, sqlstate, left(regexp_replace(statement, '\s+', ' ', 'g'), 60) AS statement
  FROM licdata.audit_log WHERE decision = 'deny' ORDER BY seq;
SELECT kind, decision, count(*) AS audit_rows
  FROM licdata.audit_log GROUP BY kind, decision ORDER BY 1, 2;

\echo
\echo '--- 3.5  licdata.verify_audit(): the SHA-256 hash chain over every audit row is intact'
SELECT * FROM licdata.verify_audit();
SELECT ok AS demo_audit_ok FROM licdata.verify_audit() \gset
\if :demo_audit_ok
\else
DO $$ BEGIN RAISE EXCEPTION 'demo: licdata.verify_audit() reports a broken audit chain'; END $$;
\endif
SELECT coalesce(array_agg(DISTINCT sqlstate ORDER BY sqlstate), '{}') AS demo_denied_states,
       coalesce(array_agg(DISTINCT sqlstate) @> ARRAY['LD001', 'LD002', 'LD003', 'LD005', 'LD006', 'LD007', 'LD008'], false)
         AS demo_denials_audited
  FROM licdata.audit_log WHERE decision = 'deny' \gset
\if :demo_denials_audited
\else
\echo 'Denials in the audit trail:' :demo_denied_states '- expected LD001 LD002 LD003 LD005 LD006 LD007 LD008'
DO $$ BEGIN RAISE EXCEPTION 'demo: a denial of the demo is missing from the audit trail'; END $$;
\endif
