-- test/demo/operator_stats_check.sql -- part 2, continued: the operator (who sees raw
-- data) recomputes the bureau's figures from the raw rows, for the groups that were
-- released, and checks that every suppressed group really was smaller than 10.
\set ON_ERROR_STOP on
\echo '--- 2.6  The operator''s raw computation of the same counts, next to what the bureau received'
CREATE TEMP TABLE raw_counts AS
SELECT r.industry, r.district, count(*) AS enterprises
  FROM stats_own.enterprise_register r
  JOIN pd.tax_annual t ON t.credit_code = r.credit_code
  JOIN pd.reporting_thresholds th ON th.industry = r.industry
 WHERE t.annual_revenue >= th.annual_revenue_threshold
 GROUP BY r.industry, r.district;
SELECT x.industry, g.city, g.district, x.enterprises AS operator_raw,
       b.enterprises AS released_to_bureau,
       CASE WHEN x.enterprises = b.enterprises THEN 'yes' ELSE 'NO' END AS same
  FROM raw_counts x
  JOIN stats_own.above_threshold_2025 b USING (industry, district)
  JOIN pd.regions g ON g.code = x.district
 ORDER BY x.industry, x.enterprises DESC, x.district;
SELECT count(b.*) AS groups_released,
       count(*) FILTER (WHERE b.enterprises = x.enterprises) AS released_and_equal,
       count(*) FILTER (WHERE b.industry IS NULL) AS groups_suppressed,
       coalesce(max(x.enterprises) FILTER (WHERE b.industry IS NULL), 0) AS largest_suppressed_group,
       count(*) FILTER (WHERE b.industry IS NULL AND x.enterprises >= 10)
         + (SELECT count(*) FROM stats_own.above_threshold_2025 b2
             WHERE NOT EXISTS (SELECT FROM raw_counts x2
                                WHERE x2.industry = b2.industry AND x2.district = b2.district)) AS discrepancies
  FROM raw_counts x LEFT JOIN stats_own.above_threshold_2025 b USING (industry, district)
\gset demo_
\echo
SELECT :demo_groups_released AS groups_released, :demo_released_and_equal AS equal_to_raw,
       :demo_groups_suppressed AS groups_suppressed,
       :demo_largest_suppressed_group AS largest_suppressed_group;
SELECT :demo_groups_released > 0 AND :demo_released_and_equal = :demo_groups_released
       AND :demo_largest_suppressed_group < 10 AND :demo_discrepancies = 0 AS demo_stats_ok \gset
\if :demo_stats_ok
\echo 'Every released figure equals the raw count; every suppressed group had fewer than 10 enterprises.'
\else
\echo 'MISMATCH between the released figures and the raw computation; stopping the demo'
DO $$ BEGIN RAISE EXCEPTION 'demo: statistics check failed'; END $$;
\endif
