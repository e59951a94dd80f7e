-- test/demo/stats_bureau.sql -- part 2 of the demo: the statistics bureau, connected
-- with PGOPTIONS='-c licdata.purpose=statistics', counts the enterprises above the
-- reporting thresholds ("四上企业") by matching its own register with the tax data.
\set ON_ERROR_STOP on
\set SHOW_CONTEXT never
\echo '--- 2.1  licdata.my_licences'
SELECT session_user AS connected_as, current_setting('licdata.purpose') AS declared_purpose;
SELECT id, dataset, purposes, mode, min_group_size, columns, price_per_query AS per_query,
       price_per_row AS per_row
  FROM licdata.my_licences ORDER BY id;

\echo
\echo '--- 2.2  Coverage of the bureau''s register (stats_own.enterprise_register, its own data):'
\echo '         enterprises known to the market regulator but missing from the register, by industry'
\set ECHO queries
SELECT e.industry, count(*) AS missing_from_register
  FROM pd.enterprises e
  LEFT JOIN stats_own.enterprise_register r ON r.credit_code = e.credit_code
 WHERE r.credit_code IS NULL
 GROUP BY e.industry
 ORDER BY 2 DESC, 1;
\set ECHO none

\echo
\echo '--- 2.3  Share of matched enterprises above the reporting threshold of their industry'
\set ECHO queries
SELECT m.industry, th.annual_revenue_threshold AS threshold_yuan, m.matched, a.above_threshold,
       round(100.0 * a.above_threshold / m.matched, 1) AS pct
  FROM (SELECT r.industry, count(*) AS matched
          FROM stats_own.enterprise_register r
          JOIN pd.tax_annual t ON t.credit_code = r.credit_code
         GROUP BY r.industry) m
  JOIN (SELECT r.industry, count(*) AS above_threshold
          FROM stats_own.enterprise_register r
          JOIN pd.tax_annual t ON t.credit_code = r.credit_code
          JOIN pd.reporting_thresholds th ON th.industry = r.industry
         WHERE t.annual_revenue >= th.annual_revenue_threshold
         GROUP BY r.industry) a USING (industry)
  JOIN pd.reporting_thresholds th USING (industry)
 ORDER BY m.industry;
\set ECHO none

\echo
\echo '--- 2.4  Enterprises above the threshold by industry and district, kept in the bureau''s own'
\echo '         schema.  Groups of fewer than 10 enterprises are not released (they are absent, silently):'
\set ECHO queries
CREATE TABLE stats_own.above_threshold_2025 AS
SELECT r.industry, r.district, count(*) AS enterprises
  FROM stats_own.enterprise_register r
  JOIN pd.tax_annual t ON t.credit_code = r.credit_code
  JOIN pd.reporting_thresholds th ON th.industry = r.industry
 WHERE t.annual_revenue >= th.annual_revenue_threshold
 GROUP BY r.industry, r.district;
SELECT a.industry, g.city, g.district, a.district AS code, a.enterprises
  FROM stats_own.above_threshold_2025 a JOIN pd.regions g ON g.code = a.district
 ORDER BY a.industry, a.enterprises DESC, a.district;
\set ECHO none

\echo
\echo '--- 2.5  Raw rows never leave the database under an aggregate licence:'
\echo '[LD008] The revenue of the enterprises above 20 million yuan, row by row:'
\set ON_ERROR_STOP off
\set ECHO queries
SELECT credit_code, annual_revenue FROM pd.tax_annual WHERE annual_revenue >= 20000000;
\set ECHO none
\set expect LD008
\i :demo/expect_error.sql
\i :demo/expect_error_end.sql
