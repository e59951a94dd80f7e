-- test/bench/price_invoice.sql -- cost of pricing a month (schema/80_pricing.sql).
-- Run as a superuser in the database where licdata is installed (records are
-- written as pg_restore writes them, for a month far in the future):
--   psql -X -f test/bench/price_invoice.sql
-- :n records (default 100000) of one licence in May 2099, a plan with
-- allowances, 3 tiers, a fee, a free purpose; times invoice_lines (twice),
-- invoice() for the month, statement_html.  Cleans up after itself.
\set ON_ERROR_STOP on
\if :{?n}
\else
\set n 100000
\endif
SET client_min_messages = warning;
CREATE SCHEMA bench_price;
CREATE TABLE bench_price.t (id integer PRIMARY KEY);
SELECT licdata.publish('bench_price.t', 'price bench', 0.5, 0.1) \g /dev/null
CREATE ROLE bench_price_bank NOLOGIN;
SELECT licdata.register_licensee('bench_price_bank', 'Bench Bank') \g /dev/null
SELECT licdata.grant_licence('bench_price_bank', 'bench_price.t', ARRAY['credit', 'public_interest']) AS lic \gset
SELECT licdata.set_price_plan(:lic, '{"per_query": 1, "free_queries_per_month": 2, "free_rows_per_month": 100,
	"tiers": [{"up_to": 1000, "per_row": 0.1}, {"up_to": 5000, "per_row": 0.05}, {"up_to": null, "per_row": 0.01}],
	"monthly_fee": 31, "free_purposes": ["public_interest"], "bill_empty_results": false}', '2099-05-01 UTC') \g /dev/null
BEGIN;
SELECT licdata_internal._set_records_writable(true) \g /dev/null
INSERT INTO licdata.usage (at, licence_id, licensee, dataset, purpose, consent_ref, rows, rows_delivered,
						   rows_in_functions, rows_aggregated, outcome, amount, journal_ref)
SELECT '2099-05-01 UTC'::timestamptz + g * (interval '31 days' / :n), :lic, 'bench_price_bank', 'bench_price.t',
	   CASE WHEN g % 10 = 0 THEN 'public_interest' ELSE 'credit' END, 'app-' || (g % 500), g % 7, g % 7, 0, 0,
	   'ok', 0, 'bench-price-' || g
  FROM generate_series(1, :n) g;
COMMIT;
ANALYZE licdata.usage;
\timing on
SELECT count(*) AS lines, sum(amount) AS total FROM licdata.invoice_lines('bench_price_bank', '2099-05-01');
SELECT count(*) AS lines, sum(amount) AS total FROM licdata.invoice_lines('bench_price_bank', '2099-05-01');
SELECT sum(amount) AS total FROM licdata.invoice('bench_price_bank', '2099-05-01 UTC', '2099-06-01 UTC');
SELECT length(licdata.statement_html('bench_price_bank', '2099-05-01')) AS html_bytes;
\timing off
BEGIN;
SELECT licdata_internal._set_records_writable(true) \g /dev/null
DELETE FROM licdata.usage WHERE licence_id = :lic;
COMMIT;
SELECT licdata.revoke_licence(:lic) \g /dev/null
SELECT licdata.unpublish('bench_price.t') \g /dev/null
DROP SCHEMA bench_price CASCADE;
DELETE FROM licdata.price_plans WHERE licence_id = :lic;
