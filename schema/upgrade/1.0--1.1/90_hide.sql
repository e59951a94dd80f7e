
-- ---- hide, second half (06_hide has the first) ----
--
-- Anything an earlier step still created in schema licdata under an
-- internal name moves as in 06_hide (nothing, when every step follows
-- schema/*.sql).

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
