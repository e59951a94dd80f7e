-- Prices that follow the public-data pricing rules: price plans (validated,
-- with history), the authority's ceilings and role, the public price list,
-- monthly invoice lines computed in order (free purposes, free allowances,
-- tiers, monthly fee, monthly cap), invoice() agreeing with invoice_lines(),
-- closed months and late records, and the billing of quota stops, empty
-- results and joins.  Every expected amount is computed by hand in the
-- comments.  Usage records with chosen times are written as pg_restore would
-- (the records guard lifted for a superuser); the quota stop, the empty
-- result and the join are real licensee statements.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 8500, false);

CREATE SCHEMA pricing_t;
CREATE TABLE pricing_t.items (id integer PRIMARY KEY, grp integer);
INSERT INTO pricing_t.items SELECT g, g % 3 FROM generate_series(1, 100) g;
CREATE TABLE pricing_t.other (id integer PRIMARY KEY, note text);
INSERT INTO pricing_t.other SELECT g, 'n' || g FROM generate_series(1, 10) g;
SELECT licdata.publish('pricing_t.items', 'pricing items', 0.50, 0.10);
SELECT licdata.publish('pricing_t.other', 'pricing other', 0.20, 0.01);
CREATE ROLE pr_bank NOLOGIN;
CREATE ROLE pr_analyst LOGIN IN ROLE pr_bank;
CREATE ROLE pr_authority LOGIN IN ROLE licdata_authority;
CREATE ROLE pr_op LOGIN IN ROLE licdata_operator;
CREATE ROLE pr_both LOGIN IN ROLE licdata_operator, licdata_authority;
SELECT licdata.register_licensee('pr_bank', 'Pricing <Bank> & Co');
SELECT licdata.grant_licence('pr_bank', 'pricing_t.items', ARRAY['credit', 'public_interest']) AS l1 \gset
SELECT licdata.grant_licence('pr_bank', 'pricing_t.items', ARRAY['research']) AS l2 \gset
SELECT licdata.grant_licence('pr_bank', 'pricing_t.items', ARRAY['flat']) AS l3 \gset
SELECT licdata.grant_licence('pr_bank', 'pricing_t.other', ARRAY['calls_test']) AS l4 \gset

-- usage records at chosen times (as pg_restore writes them)
CREATE SEQUENCE pricing_t.refs;
CREATE FUNCTION pricing_t.rec(lic bigint, t timestamptz, purpose text, nrows bigint,
							  ncalls bigint DEFAULT 0, state text DEFAULT NULL, ref text DEFAULT NULL)
	RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM licdata_internal._set_records_writable(true);
	INSERT INTO licdata.usage (at, licence_id, licensee, dataset, purpose, consent_ref, rows, rows_delivered,
							   rows_in_functions, rows_aggregated, outcome, sqlstate, amount, journal_ref, calls)
	SELECT t, l.id, l.licensee, l.dataset, purpose, ref, nrows, nrows, 0, 0,
		   CASE WHEN state IS NULL THEN 'ok' ELSE 'error' END, state, 0,
		   'pricing-' || nextval('pricing_t.refs'), ncalls
	  FROM licdata.licences l WHERE l.id = lic;
	PERFORM licdata_internal._set_records_writable(false);
END $$;

--
-- 1. set_price_plan validates strictly: each bad plan is refused, nothing is stored
--
\set VERBOSITY default
\set SHOW_CONTEXT never
SELECT licdata.set_price_plan(:l1, '[]', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"per_querry": 1}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"per_row": -0.01}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"per_row": "NaN"}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"per_query": null}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"bill_empty_results": "no"}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"free_rows_per_month": 1.5}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"monthly_fee": 10.005}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"monthly_fee": 10, "monthly_cap": 5}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"tiers": [{"up_to": 1000, "per_row": 0.1}, {"up_to": 500, "per_row": 0.05}, {"up_to": null, "per_row": 0.01}]}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"tiers": [{"up_to": 1000, "per_row": 0.1}]}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"tiers": [{"up_to": null, "per_row": 0.1}, {"up_to": null, "per_row": 0.05}]}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"tiers": [{"up_to": 10, "price": 0.1}, {"up_to": null, "per_row": 0.05}]}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"tiers": []}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"per_row": 0.1, "tiers": [{"up_to": null, "per_row": 0.05}]}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"free_purposes": "public_interest"}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, '{"free_purposes": ["marketing"]}', '2099-01-01 UTC');
-- never retroactive: not in the past, not in a closed month
SELECT licdata.set_price_plan(:l1, '{"per_query": 1}', now() - interval '1 second');
SELECT licdata.set_price_plan(:l1, '{"per_query": 1}', '-infinity');
SELECT licdata.set_price_plan(99999999, '{"per_query": 1}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l1, NULL, '2099-01-01 UTC');
SELECT count(*) AS plans_stored FROM licdata.price_plans WHERE licence_id IN (:l1, :l2, :l3, :l4);

--
-- 2. the authority: its own role, its ceilings, enforced on every price
--
SET SESSION AUTHORIZATION pr_authority;
SELECT licdata.set_price_ceiling('pricing_t.items', '{"per_query": 2, "per_row": 0.5, "monthly_fee": 50}');
SELECT licdata.set_price_ceiling('pricing_t.items', '{"per_day": 2}');
SELECT licdata.set_price_ceiling('pricing_t.items', '{"per_row": -1}');
SELECT licdata.set_price_ceiling('pricing_t.nothing', '{"per_row": 1}');
-- the authority sets ceilings and nothing else
SELECT licdata.set_price_plan(:l1, '{"per_query": 0}', '2099-01-01 UTC');
SELECT licdata.publish('pricing_t.items');
SELECT count(*) FROM licdata.usage;
RESET SESSION AUTHORIZATION;
-- the operator does not set its own ceilings: no privilege, and an operator
-- that is also in licdata_authority (or a superuser) is refused
SET SESSION AUTHORIZATION pr_op;
SELECT licdata.set_price_ceiling('pricing_t.items', '{"per_row": 9}');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION pr_both;
SELECT licdata.set_price_ceiling('pricing_t.items', '{"per_row": 9}');
RESET SESSION AUTHORIZATION;
SELECT licdata.set_price_ceiling('pricing_t.items', '{"per_row": 9}');
SELECT dataset, ceiling FROM licdata.price_ceilings;

-- plans at or below the ceiling are taken (January 2099 has 31 days)
-- L1: per query 1 after 2 free queries; first 100 rows free, then progressive
-- tiers; a fee; public_interest free; empty results not billed
SELECT licdata.set_price_plan(:l1, '{"per_query": 1, "free_queries_per_month": 2, "free_rows_per_month": 100,
	"tiers": [{"up_to": 1000, "per_row": 0.1}, {"up_to": 5000, "per_row": 0.05}, {"up_to": null, "per_row": 0.01}],
	"monthly_fee": 31, "free_purposes": ["public_interest"], "bill_empty_results": false}', '2099-01-01 00:00 UTC');
-- L2: one plan from 1 January, another from 16 January 00:00 UTC, with a cap
SELECT licdata.set_price_plan(:l2, '{"per_query": 2, "per_row": 0.5, "monthly_fee": 10, "monthly_cap": 100}', '2099-01-01 00:00 UTC');
SELECT licdata.set_price_plan(:l2, '{"per_query": 1, "per_row": 0.25, "monthly_fee": 20, "monthly_cap": 30}', '2099-01-16 00:00 UTC');
-- L4: per call, 5 free calls a month; rows at the list price (0.01)
SELECT licdata.set_price_plan(:l4, '{"per_call": 0.2, "free_calls_per_month": 5, "per_query": 0}', '2099-01-01 00:00 UTC');
-- above the ceiling: refused (plan price, tier, fee, licence price, list price)
SELECT licdata.set_price_plan(:l3, '{"per_row": 0.6}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l3, '{"tiers": [{"up_to": 10, "per_row": 0.1}, {"up_to": null, "per_row": 0.51}]}', '2099-01-01 UTC');
SELECT licdata.set_price_plan(:l3, '{"monthly_fee": 60}', '2099-01-01 UTC');
SELECT licdata.grant_licence('pr_bank', 'pricing_t.items', ARRAY['other'], price_per_query => 3);
UPDATE licdata.datasets SET price_per_row = 0.6 WHERE dataset = 'pricing_t.items'::regclass;
-- a ceiling below a price in force is refused: the operator lowers first
SET SESSION AUTHORIZATION pr_authority;
SELECT licdata.set_price_ceiling('pricing_t.items', '{"per_query": 1.5, "per_row": 0.5}');
SELECT licdata.set_price_ceiling('pricing_t.other', '{"per_call": 0.25, "per_row": 0.01}');
RESET SESSION AUTHORIZATION;
SELECT dataset, ceiling FROM licdata.price_ceilings ORDER BY dataset::text;

-- the price list is public: a licensee reads it
SET SESSION AUTHORIZATION pr_analyst;
SELECT kind, name, ceiling_per_query, ceiling_per_row, ceiling_per_call, ceiling_monthly_fee,
	   list_per_query, list_per_row, licences, max_per_query, max_per_row, max_per_call, max_monthly_fee,
	   free_purposes
  FROM licdata.price_list WHERE name LIKE 'pricing_t.%' ORDER BY name;
SELECT count(*) FROM licdata.price_plans;
RESET SESSION AUTHORIZATION;

--
-- 3. a month computed by the plan, by hand (January 2099, UTC)
--
SET TIME ZONE 'Asia/Shanghai';	-- months are UTC whatever the session's zone
-- L1: the record just before the month and the one at its end are not in it
SELECT pricing_t.rec(:l1, '2098-12-31 23:59:59.999999 UTC', 'credit', 3);
SELECT pricing_t.rec(:l1, '2099-01-02 10:00 UTC', 'credit', 50);
SELECT pricing_t.rec(:l1, '2099-01-03 10:00 UTC', 'public_interest', 10000);
SELECT pricing_t.rec(:l1, '2099-01-04 10:00 UTC', 'credit', 0);
SELECT pricing_t.rec(:l1, '2099-01-05 10:00 UTC', 'credit', 1000);
SELECT pricing_t.rec(:l1, '2099-01-06 10:00 UTC', 'credit', 4000, state => 'LD006');
SELECT pricing_t.rec(:l1, '2099-01-31 23:59:59.999 UTC', 'credit', 1);
SELECT pricing_t.rec(:l1, '2099-02-01 00:00 UTC', 'credit', 7);
-- L2: 15 days of the first plan, 16 of the second
SELECT pricing_t.rec(:l2, '2099-01-10 12:00 UTC', 'research', 10);
SELECT pricing_t.rec(:l2, '2099-01-15 23:59:59 UTC', 'research', 4);
SELECT pricing_t.rec(:l2, '2099-01-16 00:00 UTC', 'research', 20);
-- L3: no plan: the list prices 0.50 a query, 0.10 a row
SELECT pricing_t.rec(:l3, '2099-01-20 00:00 UTC', 'flat', 3);
-- L4: calls, the first 5 of the month free
SELECT pricing_t.rec(:l4, '2099-01-07 00:00 UTC', 'calls_test', 0, ncalls => 3);
SELECT pricing_t.rec(:l4, '2099-01-08 00:00 UTC', 'calls_test', 2, ncalls => 4);

-- L1, by hand.  Billed statements: 2 Jan (50 rows), 5 Jan (1000), 6 Jan
-- (4000, stopped by the quota), 31 Jan (1) -- public_interest is free, the
-- empty result of 4 Jan is not billed.  Queries: 2 free, 2 x 1.00 = 2.00.
-- Rows by their position in the month: 1-100 free (50 + 50 of 5 Jan);
-- tier 1 (101-1000): 900 x 0.10 = 90.00; tier 2 (1001-5000): 50 of 5 Jan
-- x 0.05 = 2.50 and 3950 of 6 Jan (quota stop) x 0.05 = 197.50; tier 3
-- (5001-): 50 of 6 Jan x 0.01 = 0.50 and 1 of 31 Jan = 0.01.  Fee 31.00.
-- Total 2 + 90 + 2.50 + 197.50 + 0.50 + 0.01 + 31 = 323.51.
-- L2: plan A (to 16 Jan): queries 2 x 2.00 = 4.00, rows 14 x 0.50 = 7.00,
-- fee 10 x 15/31 = 4.8387 -> 4.84; plan B: 1 x 1.00, 20 x 0.25 = 5.00,
-- fee 20 x 16/31 = 10.3226 -> 10.32.  Sum 32.16; plan B's cap 30 applies:
-- -2.16, total 30.00.
-- L3: 0.50 + 3 x 0.10 = 0.80.
-- L4: calls 1-5 free, 6-7 x 0.20 = 0.40; 2 rows x 0.01 (list) = 0.02;
-- queries at 0: 0.42.
SELECT licence_id - :l1 AS lic, item, quantity, unit_price, amount
  FROM licdata.invoice_lines('pr_bank', '2099-01-01');
SELECT licence_id - :l1 AS lic, sum(amount) AS total
  FROM licdata.invoice_lines('pr_bank', '2099-01-01') GROUP BY 1 ORDER BY 1;
-- any day of the month names the month
SELECT sum(amount) AS total_jan FROM licdata.invoice_lines('pr_bank', '2099-01-17');
-- February: L1's record at 00:00 UTC of 1 February (free query, 7 free
-- rows) and its fee; L2's second plan for the whole month: fee 20.00
SELECT licence_id - :l1 AS lic, item, quantity, unit_price, amount
  FROM licdata.invoice_lines('pr_bank', '2099-02-01');

-- invoice() keeps its columns and agrees with invoice_lines to the cent
SELECT licence_id - :l1 AS lic, dataset, purpose, queries, rows, amount
  FROM licdata.invoice('pr_bank', '2099-01-01 00:00 UTC', '2099-02-01 00:00 UTC');
SELECT (SELECT sum(amount) FROM licdata.invoice('pr_bank', '2099-01-01 00:00 UTC', '2099-02-01 00:00 UTC'))
	 = (SELECT sum(amount) FROM licdata.invoice_lines('pr_bank', '2099-01-01')) AS agree,
	   (SELECT array_agg(l ORDER BY l) FROM (SELECT licence_id, sum(amount) FROM licdata.invoice('pr_bank', '2099-01-01 00:00 UTC', '2099-02-01 00:00 UTC') GROUP BY 1) l)
	 = (SELECT array_agg(l ORDER BY l) FROM (SELECT licence_id, sum(amount) FROM licdata.invoice_lines('pr_bank', '2099-01-01') GROUP BY 1) l) AS agree_per_licence;
-- a part of a month: the records in it, priced at their place in the month's
-- volume; no monthly fee or cap.  L1 from 5 Jan to 6 Jan: the query is the
-- month's 2nd billed one (free), rows 51-100 free, 900 x 0.10 + 50 x 0.05 = 92.50
SELECT licence_id - :l1 AS lic, purpose, queries, rows, amount
  FROM licdata.invoice('pr_bank', '2099-01-05 00:00 UTC', '2099-01-06 00:00 UTC');
-- rounding: to the cent per line, halves away from zero (round(numeric, 2)):
-- three statements of 1 row at 0.005 are one line of 3 x 0.005 = 0.015 -> 0.02
-- (rounding each statement would have made 0.03)
SELECT licdata.set_price_plan(:l3, '{"per_query": 0, "per_row": 0.005}', '2099-03-01 00:00 UTC');
SELECT pricing_t.rec(:l3, ('2099-03-0' || d || ' 00:00 UTC')::timestamptz, 'flat', 1) FROM generate_series(1, 3) d;
SELECT item, quantity, unit_price, amount FROM licdata.invoice_lines('pr_bank', '2099-03-01') WHERE licence_id = :l3;
-- reproducible
SELECT (SELECT array_agg(x) FROM licdata.invoice_lines('pr_bank', '2099-01-01') x)
	 = (SELECT array_agg(x) FROM licdata.invoice_lines('pr_bank', '2099-01-01') x) AS same_lines;
RESET TIME ZONE;

--
-- 4. real statements of the licensee: a quota stop, empty results, a join
--
-- (licences and plans from the same instant: one plan all along)
BEGIN;
SELECT licdata.grant_licence('pr_bank', 'pricing_t.items', ARRAY['live'], max_rows_per_query => 5) AS l5 \gset
SELECT licdata.grant_licence('pr_bank', 'pricing_t.other', ARRAY['live']) AS l6 \gset
SELECT licdata.set_price_plan(:l5, '{"per_query": 1, "per_row": 0.1, "bill_empty_results": false}');
SELECT licdata.set_price_plan(:l6, '{"per_query": 0.2, "per_row": 0.01}');
COMMIT;
SET SESSION AUTHORIZATION pr_analyst;
SET licdata.purpose = 'live';
-- 10 rows asked, 5 sent, then LD006
\set VERBOSITY sqlstate
SELECT * FROM pricing_t.items WHERE id <= 10 ORDER BY id;
\set VERBOSITY default
-- metadata probes: no row
SELECT * FROM pricing_t.items LIMIT 0;
SELECT * FROM pricing_t.items WHERE false;
-- a join of two licences: 3 result rows
SELECT i.id, o.note FROM pricing_t.items i JOIN pricing_t.other o USING (id) WHERE i.id <= 3 ORDER BY 1;
RESET licdata.purpose;
RESET SESSION AUTHORIZATION;
SELECT licdata.flush();
SELECT licence_id - :l5 AS lic, rows, outcome, sqlstate FROM licdata.usage
 WHERE licence_id IN (:l5, :l6) ORDER BY id;
-- L5: the stopped statement's query 1.00 and its 5 rows sent, shown as such,
-- 0.50; the two empty results not charged; the join's query 1.00 and its 3
-- rows 0.30.  L6: the join's query 0.20 and the same 3 rows, 0.03: each
-- licence a statement used bills the statement and the rows it delivered.
SELECT licence_id - :l5 AS lic, item, quantity, unit_price, amount
  FROM licdata.invoice_lines('pr_bank', current_date) WHERE licence_id IN (:l5, :l6);

--
-- 5. a closed month does not change; late records go to the next open month
--
-- March 2020, L3 at list prices: 0.50 + 10 x 0.10 = 1.50
SELECT pricing_t.rec(:l3, '2020-03-05 00:00 UTC', 'flat', 10);
SELECT licdata.close_month('2999-01-01');
SELECT licensee, lines, total FROM licdata.close_month('2020-03-01') WHERE licensee = 'pr_bank'::regrole;
SELECT licdata.close_month('2020-03-15');
-- a plan cannot reach back into it either
SELECT licdata.set_price_plan(:l3, '{"per_query": 0}', '2020-03-10 UTC');
-- a record for March arrives after it was closed (a replica, a recovery)
SELECT pricing_t.rec(:l3, '2020-03-20 00:00 UTC', 'flat', 5);
SELECT item, quantity, unit_price, amount FROM licdata.invoice_lines('pr_bank', '2020-03-01');
-- April, the next open month, carries it: 0.50 + 5 x 0.10 = 1.00
SELECT licence_id - :l1 AS lic, item, quantity, unit_price, amount FROM licdata.invoice_lines('pr_bank', '2020-04-01');
SELECT licence_id - :l1 AS lic, purpose, queries, rows, amount
  FROM licdata.invoice('pr_bank', '2020-04-01 00:00 UTC', '2020-05-01 00:00 UTC');
SELECT licensee, lines, total FROM licdata.close_month('2020-04-01') WHERE licensee = 'pr_bank'::regrole;
-- another late record for March: April is closed too, so May carries it (0.60)
SELECT pricing_t.rec(:l3, '2020-03-25 00:00 UTC', 'flat', 1);
SELECT sum(amount) AS march FROM licdata.invoice_lines('pr_bank', '2020-03-01');
SELECT sum(amount) AS april FROM licdata.invoice_lines('pr_bank', '2020-04-01');
SELECT item, quantity, amount FROM licdata.invoice_lines('pr_bank', '2020-05-01');
-- June is not next to a closed month: nothing there
SELECT count(*) FROM licdata.invoice_lines('pr_bank', '2020-06-01');
SELECT month, count(*) FROM licdata.invoiced_usage iu JOIN licdata.usage u ON u.id = iu.usage_id
 WHERE u.licence_id = :l3 GROUP BY month ORDER BY month;

--
-- 6. the statement: every value escaped (a consent reference is the licensee's own text)
--
SELECT pricing_t.rec(:l1, '2099-01-09 00:00 UTC', 'credit', 0, ref => '<script>alert(1)</script>');
SELECT pricing_t.rec(:l1, '2099-01-09 00:00 UTC', 'credit', 0, ref => '"><img src=x onerror=alert(2)>');
SELECT licdata.statement_html('pr_bank', '2099-01-01') AS html \gset
SELECT strpos(:'html', '<script') AS script_tags, strpos(:'html', '<img') AS img_tags,
	   strpos(:'html', '&lt;script&gt;alert(1)&lt;/script&gt;') > 0 AS escaped,
	   strpos(:'html', '&quot;&gt;&lt;img src=x onerror=alert(2)&gt;') > 0 AS escaped_attr,
	   strpos(:'html', 'Pricing &lt;Bank&gt; &amp; Co') > 0 AS org_escaped,
	   strpos(:'html', 'id="daily-usage-chart"') > 0 AS chart,
	   (regexp_match(:'html', '<span id="total">([0-9.]+)</span>'))[1] AS total,
	   strpos(:'html', 'Audit chain verified') > 0 AS audit_verified;
-- only the operator and the auditor produce statements and lines
SET SESSION AUTHORIZATION pr_analyst;
SELECT licdata.statement_html('pr_bank', '2099-01-01') IS NOT NULL;
SELECT count(*) FROM licdata.invoice_lines('pr_bank', '2099-01-01');
RESET SESSION AUTHORIZATION;

--
-- 7. an operator reads the pricing tables and writes them only through the API
--
SET SESSION AUTHORIZATION pr_op;
SELECT count(*) > 0 AS reads_frozen_lines FROM licdata.invoice_closed_lines;
DELETE FROM licdata.price_ceilings;
UPDATE licdata.price_plans SET plan = '{}';
UPDATE licdata.invoice_closed_lines SET amount = 0;
DELETE FROM licdata.invoiced_usage;
DELETE FROM licdata.closed_months;
RESET SESSION AUTHORIZATION;

-- clean up (closed months and their lines stay: they are records)
SELECT licdata.revoke_licence(id) FROM licdata.licences
 WHERE dataset::text LIKE 'pricing_t.%' AND status <> 'revoked' ORDER BY id;
SET SESSION AUTHORIZATION pr_authority;
SELECT licdata.set_price_ceiling('pricing_t.items', '{}');
SELECT licdata.set_price_ceiling('pricing_t.other', '{}');
RESET SESSION AUTHORIZATION;
SELECT count(*) AS ceilings_left FROM licdata.price_ceilings;
SELECT licdata.unpublish('pricing_t.items');
SELECT licdata.unpublish('pricing_t.other');
DROP SCHEMA pricing_t CASCADE;
DROP ROLE pr_analyst, pr_authority, pr_op, pr_both;
DROP ROLE pr_bank;
