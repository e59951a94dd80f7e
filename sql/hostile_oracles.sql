-- hostile_oracles: a licensee tries to compute keyed masks (pseudonym, fpe,
-- noise) of values of its choosing -- by every signature, through its own
-- views and functions, with NULL or typed "internal" arguments -- to
-- tabulate pseudonyms of an enumerable domain or invert deterministic noise
-- over a range.  Every route is refused; its masked queries still work and
-- show the values the operator computes for it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 6500, false);
CREATE SCHEMA hor;
CREATE TABLE hor.people (id integer PRIMARY KEY, id_number text, phone text,
						 income integer, big bigint, salary numeric(10,2), score double precision);
INSERT INTO hor.people
SELECT g, '1101051980010100' || lpad(g::text, 2, '0'), '1380013' || lpad(g::text, 4, '0'),
	   100 + g, 1000000 + g, 5000.25 + g, 0.5 + g
  FROM generate_series(1, 20) g;
CREATE ROLE hor_bank NOLOGIN;
CREATE ROLE hor_user LOGIN IN ROLE hor_bank;
CREATE SCHEMA hor_own AUTHORIZATION hor_user;
SELECT licdata.publish('hor.people');
SELECT licdata.register_licensee('hor_bank', 'Oracle Bank');
SELECT licdata.grant_licence('hor_bank', 'hor.people', ARRAY['credit']);
SELECT licdata.set_mask('hor.people', 'id_number', 'pseudonym', '{"length": 16}');
SELECT licdata.set_mask('hor.people', 'phone', 'fpe');
SELECT licdata.set_mask('hor.people', 'income', 'noise', '{"absolute": 50}');
SELECT licdata.set_mask('hor.people', 'big', 'noise', '{"absolute": 50}');
SELECT licdata.set_mask('hor.people', 'salary', 'noise', '{"relative": 0.1}');
SELECT licdata.set_mask('hor.people', 'score', 'noise', '{"absolute": 5}');
-- what the operator computes for the bank (operator-only variants)
CREATE TABLE hor.expected AS
	SELECT id, licdata.mask_pseudonym(id_number, 16, 'hor_bank') AS id_token,
		   licdata.mask_fpe(phone, '0123456789', 'hor_bank') AS phone_fpe
	  FROM hor.people;
GRANT USAGE ON SCHEMA hor TO hor_user;
GRANT SELECT ON hor.expected TO hor_user;

-- which keyed functions a licensee may execute: only the rewrite's
-- variants, whose "internal" argument no SQL expression can supply
SELECT p.oid::regprocedure AS executable
  FROM pg_proc p
 WHERE p.pronamespace IN ('licdata'::regnamespace, 'licdata_internal'::regnamespace)
   AND p.proname IN ('mask_pseudonym', 'mask_fpe', 'mask_noise', 'unmask_fpe', '_ff1_test')
   AND has_function_privilege('hor_user', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;

SET SESSION AUTHORIZATION hor_user;
SET licdata.purpose = 'credit';
\set VERBOSITY terse
-- 1-3: its masked query, as the operator computed it; noise within bounds
SELECT p.id, p.id_number = e.id_token AS pseudonym_ok, p.phone = e.phone_fpe AS fpe_ok,
	   abs(p.income - (100 + p.id)) <= 50 AS income_bounded
  FROM hor.people p JOIN hor.expected e ON e.id = p.id WHERE p.id <= 3 ORDER BY p.id;
SELECT licdata.token('hor.people', 'id_number', '110105198001010001') = e.id_token AS token_ok
  FROM hor.expected e WHERE e.id = 1;
EXPLAIN (VERBOSE, COSTS OFF) SELECT id_number, income FROM hor.people;

-- 4-18: every signature, with positional and named arguments
SELECT licdata_internal.mask_pseudonym('110105198001010001');
SELECT licdata_internal.mask_pseudonym('110105198001010001', 16);
SELECT licdata_internal.mask_pseudonym(value => '110105198001010001', length => 16);
SELECT licdata.mask_pseudonym('110105198001010001', 16, 'hor_bank');
-- (a bare NULL resolves to the operator variant, regrole: strict, folded to NULL)
SELECT licdata.mask_pseudonym('110105198001010001', 16, NULL) IS NULL AS folded_to_null;
SELECT licdata.mask_pseudonym('110105198001010001', 16, NULL::regrole) IS NULL AS folded_to_null;
SELECT licdata_internal.mask_pseudonym('110105198001010001', 16, NULL::internal);
SELECT licdata_internal.mask_fpe('13800130001');
SELECT licdata_internal.mask_fpe('13800130001', '0123456789');
SELECT licdata.mask_fpe('13800130001', '0123456789', 'hor_bank');
SELECT licdata.unmask_fpe('13800130001', 'hor_bank');
SELECT licdata_internal.mask_noise(101, absolute => 50);
SELECT licdata_internal.mask_noise(1000001::bigint, absolute => 50);
SELECT licdata_internal.mask_noise(5001.25::numeric, relative => 0.1);
SELECT licdata_internal.mask_noise(1.5::float8, absolute => 5);
SELECT licdata_internal.mask_noise(101, NULL, 50, NULL);
SELECT licdata_internal.mask_noise(101, NULL, 50, CAST(NULL AS internal));

-- 19-23: through its own view, SQL function, plpgsql, and a function
-- that would produce an "internal" value
CREATE VIEW hor_own.tokens AS SELECT licdata_internal.mask_pseudonym('110105198001010001', 16) AS t;
SELECT * FROM hor_own.tokens;
CREATE FUNCTION hor_own.tok(text) RETURNS text LANGUAGE sql AS 'SELECT licdata_internal.mask_pseudonym($1, 16)';
SELECT hor_own.tok('110105198001010001');
CREATE FUNCTION hor_own.tok2(text) RETURNS text LANGUAGE plpgsql AS
	$$DECLARE r text; BEGIN EXECUTE 'SELECT licdata_internal.mask_fpe($1)' INTO r USING $1; RETURN r; END$$;
SELECT hor_own.tok2('13800130001');
CREATE FUNCTION hor_own.internal_value() RETURNS internal LANGUAGE sql AS 'SELECT NULL';
CREATE FUNCTION hor_own.internal_value(internal) RETURNS internal LANGUAGE sql AS 'SELECT $1';
CREATE FUNCTION hor_own.internal_value(internal) RETURNS internal LANGUAGE plpgsql AS 'BEGIN RETURN $1; END';

-- 24: the noise-inversion attack: tabulate the noise of every value in a
-- range and look the observed noisy income up in the table
SELECT g FROM generate_series(50, 250) g, hor.people p
 WHERE p.id = 1 AND licdata_internal.mask_noise(g, absolute => 50) = p.income;
-- 25: ... and through licdata.token, which refuses noisy columns
SELECT licdata.token('hor.people', 'income', '101');
SELECT licdata.token('hor.people', 'salary', '5001.25');
-- 26: tabulating pseudonyms of a domain in one statement
SELECT count(*) FROM generate_series(1, 20) g
 WHERE licdata_internal.mask_pseudonym('1101051980010100' || lpad(g::text, 2, '0'), 16) IS NOT NULL;
RESET SESSION AUTHORIZATION;
