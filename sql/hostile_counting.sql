-- A hostile licensee against metering: rows that leave in any form are
-- counted (SPEC, "Rows that leave in any form are counted").  Before this,
-- every statement below was billed one row (or none) and passed a
-- 10-rows-per-query quota.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 40500, false);
CREATE SCHEMA hcnt;
CREATE TABLE hcnt.people (id integer PRIMARY KEY, name text, city text);
INSERT INTO hcnt.people SELECT g, 'person ' || g, 'c' || (g % 4) FROM generate_series(1, 100) g;
CREATE ROLE hcnt_bank NOLOGIN;
CREATE ROLE hcnt_analyst LOGIN IN ROLE hcnt_bank;
CREATE SCHEMA hcnt_own AUTHORIZATION hcnt_analyst;
SELECT licdata.publish('hcnt.people', 'people', 0, 0.01);
SELECT licdata.register_licensee('hcnt_bank', 'Hostile Bank');
SELECT licdata.grant_licence('hcnt_bank', 'hcnt.people', ARRAY['count']);
SELECT licdata.grant_licence('hcnt_bank', 'hcnt.people', ARRAY['rpq'], max_rows_per_query => 10);
SELECT licdata.grant_licence('hcnt_bank', 'hcnt.people', ARRAY['rpd'], max_rows_per_day => 150);

SET SESSION AUTHORIZATION hcnt_analyst;
CREATE TABLE hcnt_own.copy (id integer, name text);
CREATE AGGREGATE hcnt_own.cat(text) (sfunc = textcat, stype = text, initcond = '');
CREATE FUNCTION hcnt_own.shout(text) RETURNS boolean LANGUAGE plpgsql
	AS $$BEGIN RAISE NOTICE 'row: %', $1; RETURN true; END$$;
CREATE FUNCTION hcnt_own.shout_par(text) RETURNS boolean LANGUAGE plpgsql PARALLEL SAFE
	AS $$BEGIN RAISE NOTICE 'row: %', $1; RETURN true; END$$;
CREATE FUNCTION hcnt_own.opener() RETURNS refcursor LANGUAGE plpgsql AS $$
DECLARE c refcursor := 'opened';
BEGIN OPEN c FOR SELECT name FROM hcnt.people; RETURN c; END$$;
CREATE FUNCTION hcnt_own.drain(c refcursor) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE r record; n integer := 0;
BEGIN LOOP FETCH c INTO r; EXIT WHEN NOT FOUND; n := n + 1; END LOOP; RETURN n; END$$;

SET licdata.purpose = 'count';
-- scalar summaries stay one row
SELECT count(*), sum(id), max(name), bool_and(id > 0), round(stddev(id), 2) FROM hcnt.people;
-- collection aggregates count each row they fold in (100 each)
SELECT length(string_agg(name, ',')) FROM hcnt.people;
SELECT cardinality(array_agg(id)) FROM hcnt.people;
SELECT json_array_length(json_agg(p)) FROM hcnt.people p;
SELECT jsonb_array_length(jsonb_agg(name)) FROM hcnt.people;
SELECT length(json_object_agg(id, name)::text) > 0 FROM hcnt.people;
SELECT length(jsonb_object_agg(id, name)::text) > 0 FROM hcnt.people;
SELECT length(xmlagg(xmlelement(name n, name))::text) > 0 FROM hcnt.people;
SELECT length(hcnt_own.cat(name)) FROM hcnt.people;
SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id), mode() WITHIN GROUP (ORDER BY city) FROM hcnt.people;
SELECT city, length(string_agg(name, ',' ORDER BY id)) FROM hcnt.people GROUP BY city ORDER BY city;
SELECT length(string_agg(name, ',') FILTER (WHERE id <= 30)) FROM hcnt.people;
-- ... reached through a view, SQL and PL/pgSQL functions, COPY, a prepared statement
CREATE VIEW hcnt_own.all_names_v AS SELECT string_agg(name, ',') AS s FROM hcnt.people;
SELECT length(s) FROM hcnt_own.all_names_v;
CREATE FUNCTION hcnt_own.all_names_sql() RETURNS text LANGUAGE sql
	AS $$SELECT string_agg(name, ',') FROM hcnt.people$$;
SELECT length(hcnt_own.all_names_sql());
CREATE FUNCTION hcnt_own.all_names_pl() RETURNS text LANGUAGE plpgsql
	AS $$DECLARE v text; BEGIN SELECT string_agg(name, ',') INTO v FROM hcnt.people; RETURN v; END$$;
SELECT length(hcnt_own.all_names_pl());
COPY (SELECT length(string_agg(name, ',' ORDER BY id)) FROM hcnt.people) TO STDOUT;
PREPARE folded AS SELECT length(string_agg(name, ',')) FROM hcnt.people;
EXECUTE folded;
EXECUTE folded;
DEALLOCATE folded;
-- rows folded by subqueries, window functions, recursive CTEs and self-joins
SELECT cardinality(ARRAY(SELECT name FROM hcnt.people));
SELECT length((SELECT string_agg(name, ',') FROM hcnt.people));
SELECT length(string_agg(name, ',') OVER ()) FROM hcnt.people LIMIT 1;
WITH RECURSIVE r(i, s) AS (SELECT 0, ''::text
  UNION ALL SELECT r.i + 1, r.s || p.name FROM r JOIN hcnt.people p ON p.id = r.i + 1)
SELECT i, length(s) FROM r ORDER BY i DESC LIMIT 1;
WITH RECURSIVE r(i, s) AS (SELECT 1, ''::text
  UNION ALL SELECT i + 1, s || (SELECT name FROM hcnt.people WHERE id = i) FROM r WHERE i <= 50)
SELECT i, length(s) FROM r ORDER BY i DESC LIMIT 1;
SELECT count(*) FROM (SELECT a.name, b.name FROM hcnt.people a JOIN hcnt.people b ON b.id = a.id + 50) s;
-- rows written into the licensee's own tables (100 each)
WITH x AS (INSERT INTO hcnt_own.copy SELECT id, name FROM hcnt.people RETURNING 1) SELECT count(*) FROM x;
INSERT INTO hcnt_own.copy SELECT id, name FROM hcnt.people;
CREATE TABLE hcnt_own.c2 AS SELECT id, name FROM hcnt.people;
SELECT id, name INTO hcnt_own.c3 FROM hcnt.people;
-- rows a function raises in notices (100)
SET client_min_messages = warning;
SELECT count(hcnt_own.shout(name)) FROM hcnt.people;
SELECT count(*) FROM hcnt.people WHERE hcnt_own.shout(name);
-- ... also when the function says it is parallel safe (no worker runs it)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT count(*) FROM hcnt.people WHERE hcnt_own.shout_par(name);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
RESET client_min_messages;
-- rows kept by built-in side effects: a setting, notifications, a sequence (100 each)
SELECT count(set_config('hcnt.acc', current_setting('hcnt.acc', true) || name, false)) FROM hcnt.people;
SELECT length(current_setting('hcnt.acc'));
SELECT count(pg_notify('hcnt', name)) FROM hcnt.people;
CREATE SEQUENCE hcnt_own.s;
SELECT max(setval('hcnt_own.s', id)) FROM hcnt.people;
-- cursors drained by PL/pgSQL (100 each)
BEGIN;
DECLARE held CURSOR WITH HOLD FOR SELECT name FROM hcnt.people;
COMMIT;
DO $$DECLARE r record; c refcursor := 'held'; n integer := 0;
BEGIN LOOP FETCH c INTO r; EXIT WHEN NOT FOUND; n := n + 1; END LOOP; RAISE NOTICE 'drained %', n; END$$;
CLOSE held;
-- (a cursor WITH HOLD is read only by FETCH and MOVE statements, which count)
BEGIN;
DECLARE held2 CURSOR WITH HOLD FOR SELECT name FROM hcnt.people ORDER BY id;
COMMIT;
FETCH 3 FROM held2;
MOVE 10 FROM held2;
SELECT hcnt_own.drain('held2');
FETCH 2 FROM held2;
CLOSE held2;
BEGIN;
DECLARE plain CURSOR FOR SELECT name FROM hcnt.people;
SELECT hcnt_own.drain('plain');
COMMIT;
BEGIN;
SELECT hcnt_own.opener();
SELECT hcnt_own.drain('opened');
COMMIT;
BEGIN;
DECLARE plain2 CURSOR FOR SELECT name FROM hcnt.people;
DO $$DECLARE r record; c refcursor := 'plain2'; n integer := 0;
BEGIN LOOP FETCH c INTO r; EXIT WHEN NOT FOUND; n := n + 1; END LOOP; RAISE NOTICE 'drained %', n; END$$;
COMMIT;
DO $$DECLARE r record; n integer := 0; c CURSOR FOR SELECT name FROM hcnt.people;
BEGIN FOR r IN c LOOP n := n + 1; END LOOP; RAISE NOTICE 'looped %', n; END$$;
DO $$DECLARE r record; n integer := 0; c refcursor;
BEGIN c := hcnt_own.opener(); LOOP FETCH c INTO r; EXIT WHEN NOT FOUND; n := n + 1; END LOOP;
RAISE NOTICE 'drained %', n; END$$;
SELECT licdata.flush() IS NOT NULL AS flushed;
SELECT rows, statement FROM licdata.my_usage WHERE purpose = 'count' ORDER BY id;

-- the quotas stop the statement on the same count
SET licdata.purpose = 'rpq';
SELECT count(*), max(name) FROM hcnt.people;
SELECT length(string_agg(name, ',')) FROM hcnt.people WHERE id <= 10;
SELECT length(string_agg(name, ',')) FROM hcnt.people WHERE id <= 11;
SELECT jsonb_agg(name) FROM hcnt.people;
SELECT hcnt_own.cat(name) FROM hcnt.people;
SELECT ARRAY(SELECT name FROM hcnt.people);
SELECT (SELECT string_agg(name, ',') FROM hcnt.people);
SELECT count(set_config('hcnt.acc2', name, false)) FROM hcnt.people;
SELECT count(hcnt_own.shout(name)) FROM hcnt.people WHERE id <= 20;
WITH x AS (INSERT INTO hcnt_own.copy SELECT id, name FROM hcnt.people RETURNING 1) SELECT count(*) FROM x;
CREATE TABLE hcnt_own.c4 AS SELECT id, name FROM hcnt.people;
SELECT count(*) FROM hcnt_own.copy;
SET licdata.purpose = 'rpd';
SELECT length(string_agg(name, ',')) FROM hcnt.people;
SELECT length(string_agg(name, ',')) FROM hcnt.people;
SELECT count(*) FROM hcnt.people;
RESET SESSION AUTHORIZATION;
