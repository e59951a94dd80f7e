
-- ---- hide, first half: schema licdata_internal and the 1.0 internals ----
--
-- A licensee's \df licdata.* lists the API only (schema/10_catalog.sql).
-- Everything else -- functions named _*, the row-security guard, and the
-- mask functions the rewrite puts into licensed plans (the operator's keyed
-- mask_pseudonym/mask_fpe(..., licensee regrole) stay) -- moves with ALTER
-- ROUTINE ... SET SCHEMA: the same OIDs, so the row-security policies,
-- triggers, event triggers, CHECK constraints and views that reference them
-- keep working, with the grants they had.  This runs before the other steps,
-- which name the internals in licdata_internal as schema/*.sql does; 90_hide
-- rewrites the bodies of the 1.0 functions no step replaces.

CREATE SCHEMA licdata_internal;	-- no USAGE for PUBLIC, see schema/10_catalog.sql
COMMENT ON SCHEMA licdata_internal IS 'licdata: internal functions, not an API';

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

