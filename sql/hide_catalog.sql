-- hide_catalog: what a licensee's \df licdata.* shows.  Schema licdata holds
-- the API only: the licensee's functions (executable) and the operator API
-- (listed, not executable).  licdata's internals -- the mask functions the
-- rewrite puts into licensed plans, the aggregate gate, the counters, the
-- row-security guard, trigger functions, helpers -- are in licdata_internal;
-- licensed queries that use them keep working.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SET timezone = 'UTC';
SELECT setval('licdata.licences_id_seq', 12000, false);
CREATE SCHEMA hc;
CREATE TABLE hc.people (id integer PRIMARY KEY, id_number text, email text,
						region text, income numeric);
INSERT INTO hc.people
SELECT g, '1101051980' || lpad(g::text, 8, '0'), 'p' || g || '@example.com',
	   CASE WHEN g <= 30 THEN 'bj' ELSE 'sh' END, 1000 * g
  FROM generate_series(1, 50) g;
CREATE TABLE hc.regions (id integer PRIMARY KEY, region text, income numeric);
INSERT INTO hc.regions SELECT g, CASE WHEN g <= 30 THEN 'bj' ELSE 'sh' END, g FROM generate_series(1, 50) g;
CREATE ROLE hc_bank NOLOGIN;
CREATE ROLE hc_user LOGIN IN ROLE hc_bank;
SELECT licdata.publish('hc.people');
SELECT licdata.publish('hc.regions');
SELECT licdata.register_licensee('hc_bank', 'Catalog Bank');
SELECT licdata.grant_licence('hc_bank', 'hc.people', ARRAY['credit'],
							 ARRAY['id', 'id_number', 'email', 'region']::name[]) IS NOT NULL AS granted;
SELECT licdata.grant_licence('hc_bank', 'hc.regions', ARRAY['credit'],
							 mode => 'aggregate', min_group_size => 10) IS NOT NULL AS granted;
SELECT licdata.set_mask('hc.people', 'id_number', 'pseudonym', '{"length": 12}') IS NOT NULL AS masked;
SELECT licdata.set_mask('hc.people', 'email', 'email') IS NOT NULL AS masked;

SET SESSION AUTHORIZATION hc_user;
-- 1: \df licdata.* as the licensee: every function of schema licdata, and
-- whether it may execute it.  Executable: token, flush, audit_public_key;
-- the rest is the operator API.  No name starting with "_", no guard, no
-- mask implementation (only the operator's keyed mask_pseudonym/mask_fpe).
SELECT p.oid::regprocedure AS function,
	   has_function_privilege(p.oid, 'EXECUTE') AS executable
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'licdata'::regnamespace
 ORDER BY p.oid::regprocedure::text;
-- 2: the internals are elsewhere, all of them
SELECT count(*) > 80 AS internals_moved,
	   bool_and(p.proname ~ '^(_|guard$|mask_)') AS only_internal_names
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'licdata_internal'::regnamespace;
SELECT count(*) AS internal_left_in_licdata
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'licdata'::regnamespace
   AND (p.proname ~ '^_' OR p.proname = 'guard'
		OR (p.proname ~ '^mask_' AND p.proargtypes[p.pronargs - 1] <> 'regrole'::regtype));
-- 3: the old names are gone: a licensee's call of licdata._* or a mask
-- implementation finds nothing
SELECT licdata._my_licensee();
SELECT licdata.mask_email('a@b.c');
SELECT licdata.guard();
-- 4: nor by their new names: the licensee has no USAGE on licdata_internal.
-- EXECUTE is as 1.0 had it: what the plans the rewrite builds run (masks,
-- the gate, the counters, the guard), what licdata's views, triggers and
-- CHECK constraints run, and validators; each is refused by name below.
SELECT has_schema_privilege('licdata_internal', 'USAGE') AS internal_usage;
SELECT p.proname, count(*) AS overloads
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'licdata_internal'::regnamespace
   AND has_function_privilege(p.oid, 'EXECUTE')
 GROUP BY p.proname ORDER BY p.proname;
SELECT licdata_internal._set_licence_status(1, 'revoked');
SELECT licdata_internal._audit_sign(1, '\x00');
SELECT licdata_internal.mask_pseudonym('1101', 12);
SELECT licdata_internal._journal_status();
SELECT licdata_internal.mask_email('a@b.c');
SELECT licdata_internal._my_licensee();
SELECT licdata_internal._check_purposes(ARRAY['x']);
-- 5: licensed queries keep working: masks, token(), an aggregate licence
SET licdata.purpose = 'credit';
SELECT id, length(id_number) AS pseudonym_length, id_number <> '110105198000000001' AS masked,
	   email
  FROM hc.people WHERE id <= 2 ORDER BY id;
SELECT count(*) FROM hc.people
 WHERE id_number = licdata.token('hc.people', 'id_number', '110105198000000007');
SELECT region, count(*), sum(income) FROM hc.regions GROUP BY region ORDER BY region;
SELECT count(*) FROM hc.regions;
-- the aggregate gate still refuses a small group
SELECT region, count(*) FROM hc.regions WHERE id <= 35 GROUP BY region ORDER BY region;
RESET licdata.purpose;
RESET SESSION AUTHORIZATION;
-- 6: the policies published tables carry still call the guard (by OID)
SELECT polname, pg_get_expr(polqual, polrelid) AS qual
  FROM pg_catalog.pg_policy WHERE polrelid = 'hc.people'::regclass;
SELECT licdata.flush(10) IS NOT NULL AS flushed;
SELECT licence_id > 12000 - 1 AS ok, count(*) > 0 AS uses FROM licdata.usage
 WHERE licensee = 'hc_bank'::regrole GROUP BY 1;
