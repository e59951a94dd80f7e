-- test/demo/stats_products.sql -- part 4.3 of the demo: the statistics bureau
-- (purpose statistics) finds, in one call of the above_threshold product, which
-- of the credit codes of its register belong to enterprises above the reporting
-- threshold of their industry: names, not aggregates, and no revenue figure.
\set ON_ERROR_STOP on
\echo '--- 4.3  stats_bureau: one batch call over its register; what it learns per industry'
\set ECHO queries
CREATE TEMP TABLE above AS
SELECT code FROM pd.above_threshold((SELECT array_agg(credit_code::text) FROM stats_own.enterprise_register)) AS code;
SELECT r.industry, count(*) AS in_register, count(a.code) AS above_threshold
  FROM stats_own.enterprise_register r LEFT JOIN above a ON a.code = r.credit_code::text
 GROUP BY r.industry ORDER BY r.industry;
\set ECHO none
SELECT count(*) AS codes_above_threshold FROM above \gset
\echo 'codes above their industry''s threshold: ':codes_above_threshold
