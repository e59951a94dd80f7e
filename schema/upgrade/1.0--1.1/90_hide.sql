
-- ---- hide: licdata's internals move to schema licdata_internal ----
--
-- A licensee's \df licdata.* lists the API only (the licensee's functions
-- and the operator API).  Everything else -- functions named _*, the
-- row-security guard, and the mask functions the rewrite puts into licensed
-- plans (the operator's keyed mask_pseudonym/mask_fpe(..., licensee regrole)
-- stay) -- moves with ALTER ROUTINE ... SET SCHEMA: the same OIDs, so the
-- row-security policies, triggers, event triggers, CHECK constraints and views
-- that reference them keep working, with the grants they had.  This step
-- runs last, so the functions the earlier steps created move as well.

CREATE SCHEMA licdata_internal;
COMMENT ON SCHEMA licdata_internal IS 'licdata: internal functions, not an API';
GRANT USAGE ON SCHEMA licdata_internal TO PUBLIC;

DO $hide$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN
		SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
		WHERE p.pronamespace OPERATOR(pg_catalog.=) 'licdata'::regnamespace
		  AND (p.proname OPERATOR(pg_catalog.~) '^_'
			   OR p.proname OPERATOR(pg_catalog.=) 'guard'
			   OR (p.proname OPERATOR(pg_catalog.~)
				   '^mask_(fpe|date_trunc|bucket|noise|function|redact|partial|email|cn_mobile|cn_id|cn_name|pseudonym)$'
				   AND p.proargtypes[p.pronargs - 1] OPERATOR(pg_catalog.<>) 'pg_catalog.regrole'::pg_catalog.regtype))
		ORDER BY p.oid
	LOOP
		EXECUTE pg_catalog.format('ALTER ROUTINE %s SET SCHEMA licdata_internal', f);
	END LOOP;
END
$hide$;

-- The SQL and PL/pgSQL bodies name the moved functions: the same rewrite of
-- their text as schema/*.sql had for the fresh install (bodies are text;
-- CREATE OR REPLACE keeps each function's OID, grants and comment).
DO $hide$
DECLARE
	f oid;
	def text;
BEGIN
	FOR f IN
		SELECT p.oid FROM pg_catalog.pg_proc p
		JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang
		WHERE p.pronamespace OPERATOR(pg_catalog.=) ANY (ARRAY['licdata'::regnamespace, 'licdata_internal'::regnamespace])
		  AND l.lanname OPERATOR(pg_catalog.=) ANY (ARRAY['sql', 'plpgsql'])
		  AND p.prosrc OPERATOR(pg_catalog.~)
			  'licdata\.(_|guard\M|mask_(fpe|date_trunc|bucket|noise|function|redact|partial|email|cn_mobile|cn_id|cn_name|pseudonym)\M)'
		ORDER BY p.oid
	LOOP
		def := pg_catalog.pg_get_functiondef(f);
		def := pg_catalog.regexp_replace(def, 'licdata\._', 'licdata_internal._', 'g');
		def := pg_catalog.regexp_replace(def, 'licdata\.guard\M', 'licdata_internal.guard', 'g');
		def := pg_catalog.regexp_replace(def,
			'licdata\.mask_(fpe|date_trunc|bucket|noise|function|redact|partial|email|cn_mobile|cn_id|cn_name|pseudonym)\M',
			'licdata_internal.mask_\1', 'g');
		EXECUTE def;
	END LOOP;
END
$hide$;
