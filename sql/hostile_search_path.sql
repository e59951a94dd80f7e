-- hostile_search_path: a licensee shadows functions, operators and types
-- in schemas it puts first in search_path (SET, SET LOCAL, the connection
-- option -c search_path, pg_temp named first), hoping licdata's privileged
-- SQL (the policy loader runs as superuser), a row filter or an operator's
-- masking function resolves them.  Every shadow object records that it ran
-- in hsp_evil.marker; the marker must stay empty, the licensee must stay
-- an ordinary role, and the query results must be the licensed, masked ones.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 6000, false);
SELECT current_user AS opuser \gset
CREATE SCHEMA hsp;
CREATE TABLE hsp.people (id integer PRIMARY KEY, region text, note text);
INSERT INTO hsp.people VALUES (1, 'bj', 'alpha-secret'), (2, 'sh', 'bravo-secret'),
	(3, 'bj', 'charlie-secret'), (4, 'sh', 'delta-secret');
CREATE ROLE hsp_bank NOLOGIN;
CREATE ROLE hsp_user LOGIN IN ROLE hsp_bank;
CREATE SCHEMA hsp_evil AUTHORIZATION hsp_user;
CREATE SCHEMA hsp_user AUTHORIZATION hsp_user;	-- "$user" for the licensee
GRANT USAGE ON SCHEMA hsp TO PUBLIC;
-- the operator's masking function, calling left() unqualified
CREATE FUNCTION hsp.first3(text) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT left($1, 3)';
SELECT licdata.publish('hsp.people');
SELECT licdata.register_licensee('hsp_bank', 'Hostile Bank');
SELECT licdata.grant_licence('hsp_bank', 'hsp.people', ARRAY['credit'],
							 row_filter => $$region = 'bj'::text$$);

-- 1-4: a masking function must pin its own search_path, ending with pg_temp
-- and without "$user" (the licensee's own schema in its session)
\set VERBOSITY default
SELECT licdata.set_mask('hsp.people', 'note', 'function', '{"name": "hsp.first3"}');
ALTER FUNCTION hsp.first3(text) SET search_path = "$user", pg_catalog, pg_temp;
SELECT licdata.set_mask('hsp.people', 'note', 'function', '{"name": "hsp.first3"}');
ALTER FUNCTION hsp.first3(text) SET search_path = pg_temp, pg_catalog;
SELECT licdata.set_mask('hsp.people', 'note', 'function', '{"name": "hsp.first3"}');
ALTER FUNCTION hsp.first3(text) SET search_path = pg_catalog, pg_temp;
SELECT licdata.set_mask('hsp.people', 'note', 'function', '{"name": "hsp.first3"}');
\set VERBOSITY terse

-- the licensee prepares its shadows
SET SESSION AUTHORIZATION hsp_user;
CREATE TABLE hsp_evil.marker (what text, who name, super boolean, val text);
GRANT ALL ON hsp_evil.marker TO PUBLIC;
GRANT USAGE ON SCHEMA hsp_evil TO PUBLIC;
CREATE FUNCTION hsp_evil.note(what text, val text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO hsp_evil.marker
	SELECT what, current_user, (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), val;
	BEGIN
		EXECUTE 'ALTER ROLE hsp_user SUPERUSER';
	EXCEPTION WHEN OTHERS THEN NULL;
	END;
END $$;
-- the policy loader's joins: oid = regclass, oid = regrole, oid = oid
CREATE FUNCTION hsp_evil.eq_oid_regclass(oid, regclass) RETURNS boolean LANGUAGE plpgsql AS
	$$BEGIN PERFORM hsp_evil.note('=(oid,regclass)', NULL); RETURN $1 OPERATOR(pg_catalog.=) $2::oid; END$$;
CREATE OPERATOR hsp_evil.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = hsp_evil.eq_oid_regclass);
CREATE FUNCTION hsp_evil.eq_oid_regrole(oid, regrole) RETURNS boolean LANGUAGE plpgsql AS
	$$BEGIN PERFORM hsp_evil.note('=(oid,regrole)', NULL); RETURN $1 OPERATOR(pg_catalog.=) $2::oid; END$$;
CREATE OPERATOR hsp_evil.= (LEFTARG = oid, RIGHTARG = regrole, FUNCTION = hsp_evil.eq_oid_regrole);
CREATE FUNCTION hsp_evil.eq_oid(oid, oid) RETURNS boolean LANGUAGE plpgsql AS
	$$BEGIN PERFORM hsp_evil.note('=(oid,oid)', NULL); RETURN $1 OPERATOR(pg_catalog.=) $2; END$$;
CREATE OPERATOR hsp_evil.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = hsp_evil.eq_oid);
-- the row filter's text = text: "always true" would widen the licence
CREATE FUNCTION hsp_evil.eq_text(text, text) RETURNS boolean LANGUAGE plpgsql AS
	$$BEGIN PERFORM hsp_evil.note('=(text,text)', $1); RETURN true; END$$;
CREATE OPERATOR hsp_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hsp_evil.eq_text);
-- the masking function's left(text, integer): would receive the raw value
CREATE FUNCTION hsp_evil.left(text, integer) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hsp_evil.note('left', $1); RETURN $1; END$$;
CREATE FUNCTION hsp_user.left(text, integer) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hsp_evil.note('$user.left', $1); RETURN $1; END$$;
-- a function licdata's views and catalog SQL call
CREATE FUNCTION hsp_evil.now() RETURNS timestamptz LANGUAGE plpgsql AS
	$$BEGIN PERFORM hsp_evil.note('now', NULL); RETURN pg_catalog.now(); END$$;
-- 5: a cast between built-in types needs their ownership: refused
CREATE CAST (text AS integer) WITH INOUT;
RESET SESSION AUTHORIZATION;

-- 6-9: a fresh session with -c search_path (the policy cache loads as
-- superuser under it at the first statement)
\c -reuse-previous=on "user=hsp_user options='-c search_path=hsp_evil,pg_catalog -c licdata.purpose=credit'"
SHOW search_path;
SELECT id, region, note FROM hsp.people ORDER BY id;
-- the licensee's own operator in its own WHERE runs as the licensee, on masked values
SELECT pg_catalog.count(*) FROM hsp.people WHERE note = 'alpha-secret';
SELECT id, usable_now, row_filter FROM licdata.my_licences;
SELECT * FROM hsp_evil.marker;
SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = 'hsp_user';

-- 10: "$user" first (the licensee's schema of its own name)
\c -reuse-previous=on "user=hsp_user options='-c search_path=$user,hsp_evil,pg_catalog -c licdata.purpose=credit'"
SELECT id, region, note FROM hsp.people ORDER BY id;

-- 11-13: pg_temp named first: operators in pg_temp are found when it is
-- listed (functions never are, unless qualified)
\c -reuse-previous=on "user=hsp_user options='-c licdata.purpose=credit'"
SET search_path = pg_temp, pg_catalog;
CREATE FUNCTION pg_temp.eq_text(text, text) RETURNS boolean LANGUAGE plpgsql AS
	$$BEGIN PERFORM hsp_evil.note('pg_temp =(text,text)', $1); RETURN true; END$$;
CREATE OPERATOR pg_temp.= (LEFTARG = text, RIGHTARG = text, FUNCTION = pg_temp.eq_text);
CREATE OPERATOR pg_temp.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = hsp_evil.eq_oid_regclass);
CREATE FUNCTION pg_temp.left(text, integer) RETURNS text LANGUAGE plpgsql AS
	$$BEGIN PERFORM hsp_evil.note('pg_temp.left', $1); RETURN $1; END$$;
SELECT 'x'::text = 'y'::text AS pg_temp_operator_is_found;
SELECT id, region, note FROM hsp.people ORDER BY id;
SELECT count(*) FROM hsp.people WHERE region = 'sh';

-- 14: a temporary type named like the type the row filter casts to (when
-- pg_temp is not named, PostgreSQL looks for types there first)
\c -reuse-previous=on "user=hsp_user options='-c licdata.purpose=credit'"
CREATE TYPE pg_temp.text AS ENUM ('bj', 'sh', 'gz');
SELECT id, region, note FROM hsp.people ORDER BY id;

-- 15: SET LOCAL search_path in a transaction in which the catalog changes
-- (the cache reloads inside the transaction, as superuser)
\c - :opuser
BEGIN;
SELECT licdata.suspend_licence(6000);
SELECT licdata.resume_licence(6000);
SET LOCAL search_path = hsp_evil, pg_catalog;
SET LOCAL SESSION AUTHORIZATION hsp_user;
SET LOCAL licdata.purpose = 'credit';
SELECT id, region, note FROM hsp.people ORDER BY id;
COMMIT;

-- 16: the operator's function, its setting removed after set_mask: the
-- licensee's query is refused, never run under the licensee's path
ALTER FUNCTION hsp.first3(text) RESET search_path;
\c -reuse-previous=on "user=hsp_user options='-c search_path=hsp_evil,pg_catalog -c licdata.purpose=credit'"
SELECT id, region, note FROM hsp.people ORDER BY id;
\c - :opuser
ALTER FUNCTION hsp.first3(text) SET search_path = pg_catalog, pg_temp;

-- only the licensee's own WHERE ran its operator: as the licensee, on
-- masked values; nothing ran in licdata's SQL, and it is no superuser
SELECT * FROM hsp_evil.marker;
SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = 'hsp_user';
