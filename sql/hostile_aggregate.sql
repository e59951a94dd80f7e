-- A hostile licensee against an aggregate-only licence: every attack here
-- recovered one enterprise's value (or a suppressed group's size) before
-- the checks walked every query level; each must now be refused (LD008) or
-- learn nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 40400, false);
CREATE SCHEMA hagg;
CREATE TABLE hagg.tax (eid integer PRIMARY KEY, industry text, district text, revenue numeric(14,2));
INSERT INTO hagg.tax
SELECT g, (ARRAY['mfg', 'retail', 'it'])[g % 3 + 1], 'd' || (g % 7), g * 1000
  FROM generate_series(1, 210) g;
-- the target: one enterprise, alone in its district, revenue 1055433.00
INSERT INTO hagg.tax VALUES (999, 'mfg', 'lonely', 1055433);
CREATE ROLE hagg_bureau NOLOGIN;
CREATE ROLE hagg_analyst LOGIN IN ROLE hagg_bureau;
CREATE SCHEMA hagg_own AUTHORIZATION hagg_analyst;
SELECT licdata.publish('hagg.tax', 'tax revenue', 0, 0);
SELECT licdata.register_licensee('hagg_bureau', 'Hostile Bureau');
SELECT licdata.grant_licence('hagg_bureau', 'hagg.tax', ARRAY['statistics'],
							 mode => 'aggregate', min_group_size => 10);

SET SESSION AUTHORIZATION hagg_analyst;
SET licdata.purpose = 'statistics';
-- the licensee's own register: 999 listed 1000 times, nine others once
CREATE TABLE hagg_own.reg (eid integer, tag integer);
INSERT INTO hagg_own.reg SELECT 999, NULL FROM generate_series(1, 1000);
INSERT INTO hagg_own.reg SELECT g, NULL FROM generate_series(3, 27, 3) g;
CREATE TABLE hagg_own.tagged (eid integer, is_target integer);
INSERT INTO hagg_own.tagged SELECT g, CASE WHEN g = 999 THEN 1 END FROM generate_series(1, 210) g;

-- still allowed
SELECT industry, count(*), sum(revenue) FROM hagg.tax GROUP BY industry ORDER BY 1;
SELECT count(*), count(DISTINCT district) FROM hagg.tax;
SELECT industry, count(*) FROM hagg.tax GROUP BY industry HAVING count(*) > (SELECT 1) ORDER BY 1;
SELECT industry, (SELECT count(*) FROM hagg_own.tagged), count(*) FROM hagg.tax GROUP BY industry ORDER BY 1;
SELECT max(n) FROM (SELECT industry, count(*) AS n FROM hagg.tax GROUP BY industry) s;

-- 1. an aggregate of the dataset's level written inside a subquery
--    (agglevelsup > 0): string_agg, max, sum(CASE), FILTER, ordered-set,
--    mode(), jsonb_object_agg
SELECT industry, (SELECT string_agg(t.revenue::text, ',')) FROM hagg.tax t GROUP BY industry;
SELECT (SELECT max(t.revenue)) FROM hagg.tax t;
SELECT (SELECT sum(CASE WHEN t.eid = 999 THEN t.revenue END)) FROM hagg.tax t;
SELECT (SELECT sum(t.revenue) FILTER (WHERE t.eid = 999)) FROM hagg.tax t;
SELECT (SELECT percentile_disc(1) WITHIN GROUP (ORDER BY t.revenue)) FROM hagg.tax t;
SELECT (SELECT mode() WITHIN GROUP (ORDER BY t.district)) FROM hagg.tax t WHERE t.industry = 'mfg';
SELECT (SELECT jsonb_object_agg(t.eid, t.revenue)) FROM hagg.tax t;
SELECT (SELECT sum(t.revenue)) FROM hagg.tax t;
SELECT (SELECT x FROM (SELECT max(t.revenue) AS x) s) FROM hagg.tax t;
SELECT industry, (SELECT count(*) FROM hagg_own.tagged g WHERE g.eid = max(t.eid)) FROM hagg.tax t GROUP BY industry;
-- 2. a HAVING oracle: the group passes the threshold, the subquery reads the max
SELECT industry, count(*) FROM hagg.tax t GROUP BY industry
HAVING (SELECT max(t.revenue)) >= 1055433 ORDER BY 1;
SELECT industry, count(*) FROM hagg.tax t GROUP BY industry
HAVING EXISTS (SELECT 1 WHERE max(t.revenue) >= 1055433) ORDER BY 1;
-- 3. aggregates over the licensee's own columns tag one entity inside a large group
SELECT sum(g.is_target), count(*) FROM hagg.tax t JOIN hagg_own.tagged g USING (eid)
 WHERE t.revenue >= 1055433 OR t.eid <= 20;
SELECT count(g.is_target) FROM hagg.tax t JOIN hagg_own.tagged g USING (eid)
 WHERE t.revenue >= 1055434 OR t.eid <= 20;
-- 4. duplicate join partners weight one entity: avg() ~ its revenue
SELECT round(avg(t.revenue)), count(*), count(DISTINCT t.eid) FROM hagg.tax t JOIN hagg_own.reg r USING (eid);
SELECT t.industry, sum(t.revenue) FROM hagg.tax t JOIN hagg_own.reg r USING (eid) GROUP BY t.industry ORDER BY 1;
SELECT round(avg(t.revenue)), count(DISTINCT t.eid) FROM hagg.tax t CROSS JOIN generate_series(1, 2) g
 WHERE t.eid = 999 OR t.eid <= 9;
SELECT count(*) FROM hagg_own.reg r LEFT JOIN hagg.tax t USING (eid) WHERE t.revenue > 0;
SELECT a.industry, count(*) FROM hagg.tax a JOIN hagg.tax b ON b.industry = a.industry GROUP BY a.industry;
-- ... an exact duplicate-free join still works
SELECT t.industry, count(*) FROM hagg.tax t JOIN hagg_own.tagged g USING (eid)
 WHERE g.eid <> 999 GROUP BY t.industry ORDER BY 1;
-- 5. grouping sets give a suppressed group's size by subtraction
SELECT district, count(*) FROM hagg.tax GROUP BY ROLLUP (district) ORDER BY 1;
SELECT industry, district, count(*) FROM hagg.tax GROUP BY CUBE (industry, district);
SELECT district, count(*) FROM hagg.tax GROUP BY GROUPING SETS ((district), ());
-- 6. the suppression signal as an oracle: binary search on 999's revenue.
--    Both sides must look the same: no rows, no notice, no rows_aggregated.
SELECT licdata.flush() IS NOT NULL AS flushed;
SELECT district, count(*) FROM hagg.tax WHERE eid = 999 AND revenue >= 1055433 GROUP BY district;
SELECT district, count(*) FROM hagg.tax WHERE eid = 999 AND revenue >= 1055434 GROUP BY district;
SELECT count(*) FROM hagg.tax WHERE eid = 999 AND revenue >= 1000000;
SELECT count(*) FROM hagg.tax WHERE eid = 999 AND revenue >= 2000000;
SELECT licdata.flush() IS NOT NULL AS flushed;
SELECT statement, rows, rows_aggregated FROM licdata.my_usage
 WHERE statement LIKE '%eid = 999 AND revenue >=%' ORDER BY id;
-- 7. the gate is not an oracle the licensee can call
--    (1.0's gate is gone; 1.1's takes an internal argument SQL cannot supply)
SELECT licdata_internal._agg_gate(5, 2);
SELECT licdata_internal._agg_gate(5, 5, 2, NULL::internal);
SELECT licdata_internal._agg_gate(5, 5, 2, NULL);
-- 8. the released groups' size counts: rows_aggregated of released groups only
SELECT district, count(*) FROM hagg.tax GROUP BY district ORDER BY 1;
SELECT licdata.flush() IS NOT NULL AS flushed;
SELECT rows, rows_aggregated FROM licdata.my_usage
 WHERE statement = 'SELECT district, count(*) FROM hagg.tax GROUP BY district ORDER BY 1;';
-- 9. a cursor WITH HOLD keeps its own counts (they were backend globals
--    that every later statement reset and the cursor's close recorded)
BEGIN;
DECLARE hc CURSOR WITH HOLD FOR SELECT industry, count(*) FROM hagg.tax WHERE revenue < 100000 GROUP BY industry ORDER BY 1;
COMMIT;
FETCH 1 FROM hc;
SELECT count(*) FROM hagg.tax;
SELECT district, count(*) FROM hagg.tax GROUP BY district ORDER BY 1 LIMIT 1;
FETCH ALL FROM hc;
CLOSE hc;
SELECT licdata.flush() IS NOT NULL AS flushed;
SELECT statement, rows, rows_aggregated FROM licdata.my_usage
 WHERE statement LIKE 'DECLARE hc%' OR statement = 'SELECT count(*) FROM hagg.tax;' ORDER BY id;
RESET SESSION AUTHORIZATION;
