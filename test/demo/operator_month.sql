-- test/demo/operator_month.sql -- the last step of the demo: each party's month
-- in one screen (prices by plan, schema/80_pricing.sql).
\set ON_ERROR_STOP on
\echo '--- 5.1  The month so far (UTC), priced by the plans (licdata.invoice_lines):'
\echo '         each licensee''s statement total; the operator''s revenue by dataset and product'
SELECT org.org_name AS licensee, count(*) AS lines, sum(b.amount) AS statement_total
  FROM licdata.licensees org, licdata.invoice_lines(org.licensee, current_date) b
 WHERE org.licensee IN ('bank_a'::regrole, 'stats_bureau'::regrole)
 GROUP BY org.org_name ORDER BY 1;
SELECT CASE WHEN l.dataset IS NOT NULL THEN 'dataset' ELSE 'product' END AS kind,
       coalesce(l.dataset::text, to_jsonb(l)->>'product') AS name,
       count(DISTINCT l.licensee) AS licensees, sum(b.amount) AS revenue
  FROM licdata.licensees org
 CROSS JOIN LATERAL licdata.invoice_lines(org.licensee, current_date) b
  JOIN licdata.licences l ON l.id = b.licence_id
 GROUP BY 1, 2
 UNION ALL
SELECT 'total', '', NULL, sum(b.amount)
  FROM licdata.licensees org CROSS JOIN LATERAL licdata.invoice_lines(org.licensee, current_date) b
 ORDER BY 1 DESC, 2;
\echo 'bank_a''s statement for the month, line by line (licdata.statement_html renders the same as a page):'
SELECT licence_id, item, quantity, unit_price, amount FROM licdata.invoice_lines('bank_a', current_date);
SELECT length(licdata.statement_html('bank_a', current_date)) > 1000 AS bank_statement_html_ok;

-- the pricing authority's login (a member of licdata_authority, not an operator)
SET client_min_messages = warning;
DO $$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'price_office') THEN
		CREATE ROLE price_office LOGIN IN ROLE licdata_authority;
	END IF;
END $$;
