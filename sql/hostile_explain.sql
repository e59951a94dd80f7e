-- EXPLAIN in a licensee's session (attack class 6).  A plan shows row
-- estimates drawn from the statistics of the whole table, whatever the
-- licence's row filter and masks: under predicates on unmasked columns they
-- give the distribution of rows the licence does not serve.  EXPLAIN
-- ANALYZE shows actual row counts per node (the sizes of aggregate groups
-- the licence suppresses) and runs the statement with its rows going
-- nowhere (DestNone), so a function raising a notice per row passed them
-- on unbilled.  A licensee's EXPLAIN must reveal nothing its query result
-- could not: EXPLAIN, with any options, of a statement that reads a
-- dataset is refused for licensees (LD012), and audited as a denial.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
CREATE SCHEMA hexp;
CREATE TABLE hexp.people (id integer PRIMARY KEY, region text, income integer);
-- 100 rows in bj (the licensed region), 900 elsewhere, incomes that differ by region
INSERT INTO hexp.people
SELECT g, CASE WHEN g % 10 = 0 THEN 'bj' WHEN g % 10 < 4 THEN 'sh' ELSE 'gz' END,
	   CASE WHEN g % 10 = 0 THEN 1000 + g ELSE 50000 + g END
  FROM generate_series(1, 1000) g;
ANALYZE hexp.people;
CREATE VIEW hexp.people_v AS SELECT id, region FROM hexp.people;
CREATE ROLE hexp_bank NOLOGIN;
CREATE ROLE hexp_user LOGIN IN ROLE hexp_bank;
CREATE SCHEMA hexp_own AUTHORIZATION hexp_user;
GRANT USAGE ON SCHEMA hexp TO hexp_user;
GRANT SELECT ON hexp.people_v TO hexp_user;
SELECT licdata.publish('hexp.people') IS NOT NULL AS published;
SELECT licdata.register_licensee('hexp_bank', 'Explain Bank') IS NOT NULL AS registered;
SELECT licdata.grant_licence('hexp_bank', 'hexp.people', ARRAY['rows'], row_filter => 'region = ''bj''') > 0 AS granted;
SELECT licdata.grant_licence('hexp_bank', 'hexp.people', ARRAY['agg'], mode => 'aggregate', min_group_size => 150) > 0 AS granted;

SET SESSION AUTHORIZATION hexp_user;
SET licdata.purpose = 'rows';
CREATE TABLE hexp_own.mine (id integer);
CREATE FUNCTION hexp_own.leak(i integer, r text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE NOTICE 'row % %', i, r; RETURN true; END $$;
-- what the licensee may see: 100 rows, all in bj
SELECT count(*), min(region), max(region) FROM hexp.people;
-- e1: estimates under a predicate outside the row filter (whole-table statistics)
EXPLAIN SELECT * FROM hexp.people WHERE region = 'sh';
EXPLAIN SELECT * FROM hexp.people WHERE region = 'gz';
-- e2: estimates on an unmasked column: how many rows have high incomes
EXPLAIN SELECT * FROM hexp.people WHERE income > 50000;
-- e3: any options, any format
EXPLAIN (COSTS OFF) SELECT * FROM hexp.people WHERE region = 'sh';
EXPLAIN (FORMAT JSON) SELECT id FROM hexp.people WHERE income < 2000;
-- e4: EXPLAIN ANALYZE with a function that raises a notice per row
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM hexp.people WHERE hexp_own.leak(id, region) AND id <= 30;
-- e5: through a view, a prepared statement, CREATE TABLE AS
EXPLAIN SELECT * FROM hexp.people_v WHERE region = 'sh';
PREPARE q(text) AS SELECT * FROM hexp.people WHERE region = $1;
EXPLAIN EXECUTE q('sh');
EXPLAIN CREATE TABLE hexp_own.copy AS SELECT * FROM hexp.people WHERE region = 'sh';
-- e6: from PL/pgSQL
DO $$DECLARE l text; BEGIN
	FOR l IN EXECUTE 'EXPLAIN SELECT * FROM hexp.people WHERE region = ''gz''' LOOP RAISE NOTICE '%', l; END LOOP;
END$$;
-- e7: EXPLAIN ANALYZE of a function that reads the dataset
CREATE FUNCTION hexp_own.n() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE c bigint; BEGIN SELECT count(*) INTO c FROM hexp.people; RETURN c; END $$;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT hexp_own.n();
-- e8: an aggregate-only licence: EXPLAIN ANALYZE shows the sizes of the
-- groups it suppresses (bj, 100 rows, is below the minimum of 150)
SET licdata.purpose = 'agg';
SELECT region, count(*) FROM hexp.people GROUP BY region ORDER BY region;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT region, count(*) FROM hexp.people GROUP BY region;
EXPLAIN SELECT region, count(*) FROM hexp.people WHERE region = 'bj' GROUP BY region;
-- EXPLAIN of a statement that reads no dataset is the licensee's own business
EXPLAIN (COSTS OFF) SELECT * FROM hexp_own.mine WHERE id = 1;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM hexp_own.mine;
-- the session goes on: the statement itself is served
SET licdata.purpose = 'rows';
SELECT count(*) FROM hexp.people WHERE region = 'sh';
RESET SESSION AUTHORIZATION;

-- the operator's EXPLAIN is not affected
EXPLAIN (COSTS OFF) SELECT * FROM hexp.people WHERE region = 'sh';
-- every refusal is audited as a denial
SELECT licdata.flush();
SELECT decision, sqlstate, count(*) FROM licdata.audit_log
 WHERE licensee = 'hexp_bank'::regrole AND decision = 'deny' GROUP BY 1, 2;
