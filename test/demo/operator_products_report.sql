-- test/demo/operator_products_report.sql -- part 4.4 of the demo, as the
-- operator: the usage rows and invoice lines the product calls produced, and a
-- check of the bureau's answer against the raw data.
\set ON_ERROR_STOP on
\echo '--- 4.4  Operator: one usage row per statement and product licence (calls, rows returned, amount'
\echo '         = price per call x calls + price per row x rows); the audit names the product and its arguments'
SELECT licdata.flush() AS flushed \gset
SELECT u.licensee, u.consent_ref, l.product, u.calls, u.rows, u.amount, u.outcome
  FROM licdata.usage u JOIN licdata.licences l ON l.id = u.licence_id
 WHERE u.mode = 'product' ORDER BY u.id;
SELECT a.licensee, a.decision, a.dataset_names,
       left(substring(a.statement from 'licdata product call: (.*) \*/$'), 70) AS product_call
  FROM licdata.audit_log a
 WHERE a.licence_ids && (SELECT array_agg(id) FROM licdata.licences WHERE product IS NOT NULL)
 ORDER BY a.seq;
\echo
\echo '         Invoice lines of the product licences (licdata.invoice, this month):'
SELECT i.licensee, i.licence_id, l.product, i.purpose, i.queries AS statements, i.rows, i.amount
  FROM (SELECT 'bank_a'::regrole AS licensee, * FROM licdata.invoice('bank_a', date_trunc('month', now()), now() + interval '1 day')
        UNION ALL
        SELECT 'stats_bureau'::regrole, * FROM licdata.invoice('stats_bureau', date_trunc('month', now()), now() + interval '1 day')) i
  JOIN licdata.licences l ON l.id = i.licence_id
 WHERE l.product IS NOT NULL ORDER BY i.licence_id;
\echo
\echo '         The bureau''s answer equals the raw computation (the operator reads the raw data):'
SELECT (SELECT sum(calls) FROM licdata.usage WHERE licensee = 'stats_bureau'::regrole AND mode = 'product') AS bureau_calls,
       (SELECT sum(rows) FROM licdata.usage WHERE licensee = 'stats_bureau'::regrole AND mode = 'product') AS codes_returned,
       (SELECT count(*) FROM stats_own.enterprise_register r
          JOIN pd.tax_annual t ON t.credit_code = r.credit_code
          JOIN pd.reporting_thresholds th ON th.industry = t.industry
         WHERE t.annual_revenue >= th.annual_revenue_threshold) AS raw_count
\gset
SELECT :bureau_calls AS bureau_calls, :codes_returned AS codes_returned, :raw_count AS raw_count,
       :codes_returned = :raw_count AS equal;
SELECT :codes_returned = :raw_count AND :bureau_calls = 1 AS ok \gset
\if :ok
\else
\echo 'MISMATCH between the product''s answer and the raw computation'
SELECT 1/0;
\endif
