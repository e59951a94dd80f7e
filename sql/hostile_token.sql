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
-- another licence's lookups are not the licensee's to read
SET ROLE htk_user;
SELECT licdata._lookups_used(1);
RESET ROLE;
SELECT licdata._lookups_used(8000) AS lookups_today;
