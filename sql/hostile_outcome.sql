-- Statement outcomes do not depend on the server's log settings: with
-- log_min_messages = fatal no ERROR reaches emit_log_hook, and licdata used
-- to take the SQLSTATE from there (a cancel was then recorded as an error,
-- and errors lost their SQLSTATE).  Each case runs under its own consent
-- reference and is checked in licdata.usage and licdata.audit_log.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
CREATE SCHEMA hout;
CREATE TABLE hout.t (id integer, v integer);
INSERT INTO hout.t SELECT g, g FROM generate_series(1, 1000) g;
CREATE ROLE hout_bank NOLOGIN;
CREATE ROLE hout_user LOGIN IN ROLE hout_bank;
SELECT licdata.publish('hout.t') IS NOT NULL AS published;
SELECT licdata.register_licensee('hout_bank', 'Outcome Bank') IS NOT NULL AS registered;
SELECT licdata.grant_licence('hout_bank', 'hout.t', ARRAY['outcome']) > 0 AS granted;
CREATE FUNCTION hout.slow_count() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
	SELECT count(*) INTO n FROM hout.t;
	PERFORM pg_sleep(5);
	RETURN n;
END $$;
CREATE FUNCTION hout.caught_then_raise() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
	BEGIN
		SELECT count(*) INTO n FROM hout.t WHERE 1 / (id - 5) > 0;
	EXCEPTION WHEN division_by_zero THEN n := -1;
	END;
	RAISE EXCEPTION 'after the caught error' USING ERRCODE = 'data_exception';
END $$;

-- the server logs nothing below FATAL
SET log_min_messages = fatal;
SET SESSION AUTHORIZATION hout_user;
SET licdata.purpose = 'outcome';
-- o1: a statement cancelled by statement_timeout while it reads the dataset
SET licdata.consent_ref = 'o1 timeout in scan';
SET statement_timeout = '300ms';
SELECT count(*) FROM hout.t WHERE pg_sleep(0.01) IS NOT NULL;
-- o2: cancelled in a function after its licensed statement ended
SET licdata.consent_ref = 'o2 timeout in function';
SELECT hout.slow_count();
RESET statement_timeout;
-- o3: an error while rows stream
SET licdata.consent_ref = 'o3 division by zero';
SELECT 1 / (id - 5) FROM hout.t ORDER BY id \g /dev/null
-- o4: an error in a FETCH of a cursor; the transaction is rolled back
SET licdata.consent_ref = 'o4 error in fetch';
BEGIN;
DECLARE c CURSOR FOR SELECT 1 / (id - 500) FROM hout.t ORDER BY id;
FETCH 10 FROM c \g /dev/null
FETCH 1000 FROM c \g /dev/null
ROLLBACK;
-- o5: an error caught inside the function, then one that is not: the
-- statement's outcome is the last one
SET licdata.consent_ref = 'o5 caught then raised';
SELECT hout.caught_then_raise();
-- o6: a DO block cancelled
SET licdata.consent_ref = 'o6 do block timeout';
SET statement_timeout = '300ms';
DO $$BEGIN PERFORM count(*) FROM hout.t; PERFORM pg_sleep(5); END$$;
RESET statement_timeout;
-- o7: ok
SET licdata.consent_ref = 'o7 ok';
SELECT count(*) FROM hout.t;
-- o8: the client rolls back with the statement's cursor still open
SET licdata.consent_ref = 'o8 client rollback';
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM hout.t;
FETCH 1 FROM c;
ROLLBACK;
RESET SESSION AUTHORIZATION;
RESET log_min_messages;

SELECT licdata.flush();
SELECT consent_ref, outcome, sqlstate FROM licdata.usage
 WHERE licensee = 'hout_bank'::regrole ORDER BY consent_ref, id;
SELECT consent_ref, decision, sqlstate FROM licdata.audit_log
 WHERE licensee = 'hout_bank'::regrole ORDER BY consent_ref, seq;
