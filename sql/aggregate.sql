-- Aggregate-only licences: only aggregates of groups of at least
-- min_group_size dataset rows leave the database; raw rows are refused
-- (LD008) and small groups are suppressed, silently (no signal depends on them).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 3000, false);
CREATE SCHEMA agg;
CREATE TABLE agg.tax (eid integer PRIMARY KEY, industry text, district text, revenue numeric(14,2), secret text);
INSERT INTO agg.tax
SELECT g, (ARRAY['mfg', 'retail', 'it'])[g % 3 + 1], 'd' || (g % 7), g * 1000, 's' || g
  FROM generate_series(1, 210) g;
-- one enterprise alone in its district
INSERT INTO agg.tax VALUES (999, 'mfg', 'lonely', 123456789, 'the secret');
CREATE ROLE agg_bureau NOLOGIN;
CREATE ROLE agg_analyst LOGIN IN ROLE agg_bureau;
CREATE SCHEMA agg_own AUTHORIZATION agg_analyst;
SELECT licdata.publish('agg.tax', 'tax revenue', 0, 0.5);
SELECT licdata.register_licensee('agg_bureau', 'Statistics Bureau');
SELECT licdata.grant_licence('agg_bureau', 'agg.tax', ARRAY['statistics'],
							 columns => ARRAY['eid', 'industry', 'district', 'revenue'],
							 mode => 'aggregate', min_group_size => 10);

SET SESSION AUTHORIZATION agg_analyst;
SET licdata.purpose = 'statistics';
CREATE TABLE agg_own.register (eid integer PRIMARY KEY, name text, size text);
INSERT INTO agg_own.register SELECT g, 'enterprise ' || g, CASE WHEN g % 2 = 0 THEN 'large' ELSE 'small' END
  FROM generate_series(1, 150) g;
INSERT INTO agg_own.register VALUES (999, 'lonely enterprise', 'large');
CREATE FUNCTION agg_own.leak(numeric) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
	AS $$BEGIN RAISE NOTICE 'leaked %', $1; RETURN true; END$$;

-- allowed shapes
SELECT industry, count(*), sum(revenue), round(avg(revenue), 2) FROM agg.tax GROUP BY industry ORDER BY industry;
SELECT count(*), count(DISTINCT industry), round(stddev(revenue), 2) FROM agg.tax;
SELECT industry FROM agg.tax GROUP BY industry HAVING sum(revenue) > 0 ORDER BY 1;
SELECT district, industry, count(*) FROM agg.tax GROUP BY district, industry ORDER BY 1, 2 LIMIT 4;
-- join with the licensee's own register, grouped by its own column
SELECT r.size, count(*), sum(t.revenue) FROM agg_own.register r JOIN agg.tax t ON t.eid = r.eid
 GROUP BY r.size ORDER BY r.size;
-- the operator's raw computation gives the same numbers
RESET SESSION AUTHORIZATION;
SELECT r.size, count(*), sum(t.revenue) FROM agg_own.register r JOIN agg.tax t ON t.eid = r.eid
 GROUP BY r.size ORDER BY r.size;
SET SESSION AUTHORIZATION agg_analyst;
SET licdata.purpose = 'statistics';
-- a threshold on amounts (numeric comparisons are allowed before aggregation)
SELECT industry, count(*) FROM agg.tax WHERE revenue >= 100000 GROUP BY industry ORDER BY 1;
-- aggregates feeding an outer query
SELECT max(n) FROM (SELECT industry, count(*) AS n FROM agg.tax GROUP BY industry) s;

-- suppressed: the lonely enterprise's district, a single key, small groups
SELECT district, count(*), sum(revenue) FROM agg.tax WHERE district = 'lonely' GROUP BY district;
SELECT count(*), sum(revenue) FROM agg.tax WHERE eid = 999;
SELECT eid, sum(revenue) FROM agg.tax GROUP BY eid ORDER BY 2 DESC LIMIT 3;
SELECT r.name, sum(t.revenue) FROM agg_own.register r JOIN agg.tax t ON t.eid = r.eid
 GROUP BY r.name ORDER BY 2 DESC LIMIT 3;
SELECT (eid = 999) AS lonely, count(*) FROM agg.tax GROUP BY 1 ORDER BY 1;

-- the licensee's HAVING never sees a suppressed group: no division by zero here
SELECT district, count(*) FROM agg.tax GROUP BY district
HAVING 1 / (sum(revenue) - 123456789) <> 0 ORDER BY 1 LIMIT 2;
-- refused (LD008): 20 more attempts to recover one entity's value
SELECT * FROM agg.tax LIMIT 1;
SELECT revenue FROM agg.tax WHERE eid = 999;
SELECT DISTINCT district FROM agg.tax;
SELECT max(revenue) FROM agg.tax;
SELECT min(revenue) FROM agg.tax WHERE district = 'd1';
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY revenue) FROM agg.tax;
SELECT array_agg(revenue) FROM agg.tax;
SELECT string_agg(district, ',') FROM agg.tax;
SELECT sum(CASE WHEN eid = 999 THEN revenue ELSE 0 END) FROM agg.tax;
SELECT sum(revenue) FILTER (WHERE eid = 999) FROM agg.tax;
SELECT sum(revenue * (eid = 999)::int) FROM agg.tax;
SELECT revenue, avg(revenue) OVER () FROM agg.tax;
SELECT count(*) FROM agg.tax WHERE 1 / (eid - 999) > 0;
SELECT count(*) FROM agg.tax WHERE agg_own.leak(revenue);
SELECT count(*) FROM agg.tax GROUP BY agg_own.leak(revenue);
SELECT count(*) FROM agg.tax t WHERE EXISTS (SELECT 1 FROM agg_own.register r WHERE r.eid = t.eid AND t.revenue > 1e8);
SELECT EXISTS (SELECT 1 FROM agg.tax WHERE eid = 999 AND revenue > 1e8);
SELECT r.name FROM agg_own.register r WHERE r.eid IN (SELECT eid FROM agg.tax WHERE revenue > 1e8);
SELECT sum(x) FROM (SELECT revenue AS x FROM agg.tax) s;
WITH raw AS (SELECT eid, revenue FROM agg.tax) SELECT count(*) FROM raw;
SELECT count(*) FROM agg.tax t, LATERAL (SELECT t.revenue AS r) l WHERE l.r > 0;
CREATE TABLE agg_own.copy AS SELECT eid, revenue FROM agg.tax;
COPY agg.tax (eid, revenue) TO STDOUT;
DELETE FROM agg_own.register r USING agg.tax t WHERE r.eid = t.eid AND t.revenue > 1e8;
-- the unlicensed column is refused even inside an aggregate
SELECT count(secret) FROM agg.tax;
RESET SESSION AUTHORIZATION;

-- metering: rows delivered are the result rows; dataset rows aggregated are recorded
SELECT licdata.flush();
SELECT statement, rows, rows_aggregated, amount FROM licdata.usage
 WHERE licensee = 'agg_bureau'::regrole AND statement LIKE 'SELECT industry, count(*)%';

DROP SCHEMA agg_own CASCADE;
SELECT licdata.revoke_licence(id) FROM licdata.licences WHERE dataset = 'agg.tax'::regclass;
SELECT licdata.unpublish('agg.tax');
DROP SCHEMA agg CASCADE;
DROP ROLE agg_analyst, agg_bureau;
