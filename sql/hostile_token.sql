-- hostile_token: licdata.token() as a guessing oracle.  Each call is one
-- looked-up row of its statement -- billed, and counted against
-- max_rows_per_query and max_rows_per_day -- and one call against the
-- licence's max_lookups_per_day (exact across sessions).  A guess list
-- joined on the masked column is stopped by those quotas.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SET timezone = 'UTC';
SELECT setval('licdata.licences_id_seq', 8000, false);
SELECT current_user AS opuser \gset
CREATE SCHEMA htk;
CREATE TABLE htk.people (id integer PRIMARY KEY, id_number text, region text);
INSERT INTO htk.people
SELECT g, '1101051980' || lpad(g::text, 8, '0'), 'bj' FROM generate_series(1, 50) g;
CREATE ROLE htk_bank NOLOGIN;
CREATE ROLE htk_user LOGIN IN ROLE htk_bank;
CREATE SCHEMA htk_own AUTHORIZATION htk_user;
SELECT licdata.publish('htk.people');
SELECT licdata.register_licensee('htk_bank', 'Guessing Bank');
\set VERBOSITY default
-- 1-3: the lookup quota is a positive number
SELECT licdata.grant_licence('htk_bank', 'htk.people', ARRAY['credit'], max_lookups_per_day => 0);
SELECT licdata.grant_licence('htk_bank', 'htk.people', ARRAY['credit'], max_lookups_per_day => -5);
SELECT licdata.grant_licence('htk_bank', 'htk.people', ARRAY['credit'],
							 price_per_query => 1, price_per_row => 0.01);
SELECT licdata.set_mask('htk.people', 'id_number', 'pseudonym', '{"length": 16}');

SET SESSION AUTHORIZATION htk_user;
SET licdata.purpose = 'credit';
CREATE TABLE htk_own.guesses AS
	SELECT '1101051980' || lpad(g::text, 8, '0') AS v FROM generate_series(1, 1000) g;
-- 4: 5,000 lookups in one statement that returns one row
SELECT count(*) FROM generate_series(1, 5000) g
 WHERE licdata.token('htk.people', 'id_number', g::text) IS NOT NULL;
-- 5: lookups returned as rows
SELECT count(t) FROM (SELECT licdata.token('htk.people', 'id_number', g::text) AS t
						FROM generate_series(1, 300) g) s;
-- 6: a guess list joined on the masked column: 1,000 lookups, 50 rows found
SELECT count(*) FROM htk_own.guesses g
  JOIN htk.people p ON p.id_number = licdata.token('htk.people', 'id_number', g.v);
RESET SESSION AUTHORIZATION;
SELECT licdata.flush();
-- each lookup is a row: billed rows and amount (1 + 0.01 per row)
SELECT rows, rows_delivered, rows_in_functions, amount
  FROM licdata.usage WHERE licence_id = 8000 ORDER BY id;

-- 7: a rows-per-query quota stops the guess list at its limit
UPDATE licdata.licences SET max_rows_per_query = 100 WHERE id = 8000;
SET SESSION AUTHORIZATION htk_user;
SET licdata.purpose = 'credit';
SELECT count(*) FROM htk_own.guesses g
  JOIN htk.people p ON p.id_number = licdata.token('htk.people', 'id_number', g.v);
SELECT count(*) FROM generate_series(1, 101) g
 WHERE licdata.token('htk.people', 'id_number', g::text) IS NOT NULL;
SELECT count(*) FROM generate_series(1, 100) g
 WHERE licdata.token('htk.people', 'id_number', g::text) IS NOT NULL;
RESET SESSION AUTHORIZATION;

-- 8: a rows-per-day quota counts lookups too (a second dataset, licensed
-- with 250 rows a day)
CREATE TABLE htk.more (id integer PRIMARY KEY, id_number text);
INSERT INTO htk.more SELECT id, id_number FROM htk.people;
SELECT licdata.publish('htk.more');
SELECT licdata.grant_licence('htk_bank', 'htk.more', ARRAY['credit'], max_rows_per_day => 250);
SELECT licdata.set_mask('htk.more', 'id_number', 'pseudonym', '{"length": 16}');
SET SESSION AUTHORIZATION htk_user;
SET licdata.purpose = 'credit';
SELECT count(*) FROM generate_series(1, 200) g
 WHERE licdata.token('htk.more', 'id_number', g::text) IS NOT NULL;
SELECT count(*) FROM htk_own.guesses g
  JOIN htk.more p ON p.id_number = licdata.token('htk.more', 'id_number', g.v);
SELECT count(*) FROM generate_series(1, 50) g
 WHERE licdata.token('htk.more', 'id_number', g::text) IS NOT NULL;
SELECT rows_left_today FROM licdata.my_licences WHERE dataset = 'htk.more'::regclass;
RESET SESSION AUTHORIZATION;

-- 9-12: a lookup quota of 10 a day, exact across two sessions
UPDATE licdata.licences SET max_rows_per_query = NULL, max_lookups_per_day = 10 WHERE id = 8000;
\c -reuse-previous=on "user=htk_user options='-c licdata.purpose=credit'"
SELECT max_lookups_per_day, lookups_left_today FROM licdata.my_licences WHERE id = 8000;
SELECT count(licdata.token('htk.people', 'id_number', g::text)) FROM generate_series(1, 6) g;
\c -reuse-previous=on "user=htk_user options='-c licdata.purpose=credit'"
SELECT max_lookups_per_day, lookups_left_today FROM licdata.my_licences WHERE id = 8000;
SELECT count(licdata.token('htk.people', 'id_number', g::text)) FROM generate_series(1, 4) g;
SELECT licdata.token('htk.people', 'id_number', '1');
SELECT max_lookups_per_day, lookups_left_today FROM licdata.my_licences WHERE id = 8000;
-- queries that read the dataset without token() are not lookups
SELECT count(*) FROM htk.people;
\c - :opuser

-- 13-25: every route a lookup can take is counted once per value (and a
-- value looked up again on every row of a scan is one lookup)
UPDATE licdata.licences SET max_lookups_per_day = 1000000 WHERE id = 8000;
SELECT licdata_internal._lookups_used(8000) AS base \gset
SET SESSION AUTHORIZATION htk_user;
SET licdata.purpose = 'credit';
CREATE FUNCTION htk_own.tok_sql(text) RETURNS text LANGUAGE sql
	AS $$SELECT licdata.token('htk.people', 'id_number', $1)$$;
CREATE FUNCTION htk_own.tok_plpgsql(text) RETURNS text LANGUAGE plpgsql
	AS $$BEGIN RETURN licdata.token('htk.people', 'id_number', $1); END$$;
CREATE PROCEDURE htk_own.tok_proc(v text) LANGUAGE plpgsql
	AS $$BEGIN RAISE NOTICE 'got a token of length %', length(v); END$$;
CREATE TABLE htk_own.store (t text);
CREATE VIEW htk_own.tok_view AS
	SELECT licdata.token('htk.people', 'id_number', '110105198000000003') AS t;
CREATE TABLE htk_own.routes (n serial, route text, lookups bigint);
CREATE FUNCTION htk_own.note(route text) RETURNS void LANGUAGE sql AS $$
	INSERT INTO htk_own.routes (route, lookups)
	SELECT route, (SELECT lookups_left_today FROM licdata.my_licences WHERE id = 8000)$$;
SELECT htk_own.note('start');
SELECT count(*) FROM htk.people WHERE id_number = licdata.token('htk.people', 'id_number', '110105198000000001');
SELECT htk_own.note('a qual over 50 rows, one value');
\set VERBOSITY default
PREPARE q(text) AS SELECT count(*) FROM htk.people WHERE id_number = $1;
EXECUTE q(licdata.token('htk.people', 'id_number', '110105198000000002'));
\set VERBOSITY terse
SELECT htk_own.note('EXECUTE parameter: refused');
PREPARE q2(text) AS SELECT count(*) FROM htk.people WHERE id_number = licdata.token('htk.people', 'id_number', $1);
EXECUTE q2('110105198000000002');
SELECT htk_own.note('prepared statement, token inside');
SELECT t IS NOT NULL AS ok FROM htk_own.tok_view;
SELECT htk_own.note('a view');
SELECT htk_own.tok_sql('110105198000000004') IS NOT NULL AS ok;
SELECT htk_own.note('SQL function');
SELECT htk_own.tok_plpgsql('110105198000000005') IS NOT NULL AS ok;
SELECT htk_own.note('plpgsql function');
CALL htk_own.tok_proc(licdata.token('htk.people', 'id_number', '110105198000000006'));
SELECT htk_own.note('CALL argument');
DO $$BEGIN PERFORM licdata.token('htk.people', 'id_number', '110105198000000007'); END$$;
SELECT htk_own.note('DO block');
INSERT INTO htk_own.store VALUES (licdata.token('htk.people', 'id_number', '110105198000000008'));
SELECT htk_own.note('INSERT VALUES');
COPY (SELECT licdata.token('htk.people', 'id_number', '110105198000000009') IS NOT NULL) TO STDOUT;
SELECT htk_own.note('COPY (query) TO');
BEGIN;
DECLARE c CURSOR FOR SELECT length(licdata.token('htk.people', 'id_number', g::text)) FROM generate_series(1, 10) g;
FETCH 3 FROM c;
COMMIT;
SELECT htk_own.note('cursor, 3 of 10 fetched');
WITH t AS MATERIALIZED (SELECT licdata.token('htk.people', 'id_number', g::text) AS v FROM generate_series(1, 4) g)
SELECT count(v) FROM t;
SELECT htk_own.note('CTE, 4 values');
SELECT route, lag(lookups) OVER (ORDER BY n) - lookups AS lookups_taken FROM htk_own.routes ORDER BY n;
RESET SESSION AUTHORIZATION;

-- another licence's lookups are not the licensee's to read
SET ROLE htk_user;
SELECT licdata_internal._lookups_used(1);
RESET ROLE;
SELECT licdata_internal._lookups_used(8000) - :base AS lookups_since_base;
