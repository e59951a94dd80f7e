/*
 * 70_clients.sql -- what licensees' tools need from the catalog: licences
 * visible as privileges (information_schema, has_table_privilege,
 * has_column_privilege), and the purpose scope of licensees behind
 * connection poolers.
 *
 * Privileges follow licences, they do not grant access: a licensee's query
 * on a dataset is always read through its licence (as licdata_reader, by
 * the planner-hook rewrite), the executor hook refuses any other path, and
 * without the library the forced row-security guard policy fails every
 * read.  What the privileges give is the catalog view a BI tool expects:
 * a licensee holds SELECT on a dataset (every column licensed) or on its
 * licensed columns, for as long as one of its licences for it is active and
 * valid, and nothing otherwise.
 *
 * Kept in step by:
 *	- the licence_privileges trigger on licdata.licences (grant_licence,
 *	  install_licence, suspend, resume, revoke, a dropped table's licences);
 *	- the licdata_table_altered event trigger (columns added or dropped);
 *	- unpublish;
 *	- the background worker, which calls _sync_privileges_due every few
 *	  seconds for licences that became valid or expired since its last call
 *	  (time passing is no event), and for every dataset every ten minutes.
 * The licence decision itself never looks at these privileges: an expired
 * licence is refused (LD004) at once, the privilege goes at the next sweep.
 */

-- The privileges of every registered licensee on dataset ds, made to match
-- its active and valid licences: SELECT on the table when a licence covers
-- every column, else SELECT on the union of the licensed columns, else
-- nothing.  Privileges of licensees beyond that (granted by hand) are
-- revoked.  Only changes what differs; a table that no longer exists is
-- skipped.
CREATE FUNCTION licdata_internal._sync_privileges(ds regclass) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	want_table text[];
	want_cols text[];
BEGIN
	IF ds IS NULL OR NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = ds AND c.relkind IN ('r', 'p')) THEN
		RETURN;
	END IF;
	FOR r IN
		WITH lic AS (
			SELECT l.licensee, l.columns
			  FROM licdata.licences l
			 WHERE l.dataset = ds AND l.status = 'active' AND l.valid_from <= now()
			   AND (l.valid_until IS NULL OR l.valid_until > now())
		)
		SELECT lr.rolname,
			   EXISTS (SELECT FROM lic WHERE lic.licensee = le.licensee AND lic.columns IS NULL) AS want_all,
			   ARRAY(SELECT a.attname::text FROM pg_attribute a
					  WHERE a.attrelid = ds AND a.attnum > 0 AND NOT a.attisdropped
						AND EXISTS (SELECT FROM lic WHERE lic.licensee = le.licensee
									   AND a.attname = ANY (lic.columns))
					  ORDER BY a.attnum) AS licensed_cols,
			   ARRAY(SELECT p.privilege_type FROM pg_class c, aclexplode(c.relacl) p
					  WHERE c.oid = ds AND p.grantee = lr.oid) AS have_table,
			   ARRAY(SELECT a.attname || ':' || p.privilege_type
					   FROM pg_attribute a, aclexplode(a.attacl) p
					  WHERE a.attrelid = ds AND a.attnum > 0 AND NOT a.attisdropped
						AND p.grantee = lr.oid) AS have_cols
		  FROM licdata.licensees le JOIN pg_roles lr ON lr.oid = le.licensee
	LOOP
		IF r.want_all THEN
			want_table := ARRAY['SELECT'];
			want_cols := '{}';
		ELSE
			want_table := '{}';
			want_cols := ARRAY(SELECT c || ':SELECT' FROM unnest(r.licensed_cols) c);
		END IF;
		-- (as sets: no order, no collation to agree on)
		CONTINUE WHEN r.have_table @> want_table AND want_table @> r.have_table
				  AND r.have_cols @> want_cols AND want_cols @> r.have_cols;
		EXECUTE format('REVOKE ALL ON TABLE %s FROM %I', ds, r.rolname);
		IF r.want_all THEN
			EXECUTE format('GRANT SELECT ON TABLE %s TO %I', ds, r.rolname);
		ELSIF cardinality(r.licensed_cols) > 0 THEN
			EXECUTE format('GRANT SELECT (%s) ON TABLE %s TO %I',
						   (SELECT string_agg(quote_ident(c), ', ') FROM unnest(r.licensed_cols) c),
						   ds, r.rolname);
		END IF;
	END LOOP;
END
$$;

-- The worker's sweep: datasets with a licence that became valid or expired
-- after "since" (and up to now); every dataset when since is NULL.
CREATE FUNCTION licdata_internal._sync_privileges_due(since timestamptz) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ds regclass;
BEGIN
	FOR ds IN
		SELECT d.dataset FROM licdata.datasets d
		 WHERE since IS NULL
			OR EXISTS (SELECT FROM licdata.licences l
						WHERE l.dataset = d.dataset AND l.status = 'active'
						  AND ((l.valid_from > since AND l.valid_from <= now())
							   OR (l.valid_until > since AND l.valid_until <= now())))
		 ORDER BY d.dataset::oid
	LOOP
		PERFORM licdata_internal._sync_privileges(ds);
	END LOOP;
END
$$;

CREATE FUNCTION licdata_internal._licence_privileges() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		PERFORM licdata_internal._sync_privileges(OLD.dataset);
	END IF;
	IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.dataset IS DISTINCT FROM OLD.dataset) THEN
		PERFORM licdata_internal._sync_privileges(NEW.dataset);
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER licence_privileges AFTER INSERT OR UPDATE OR DELETE ON licdata.licences
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._licence_privileges();

-- A column added to or dropped from a published table: licences name
-- columns, so the column privileges are made to match again.
CREATE FUNCTION licdata_internal._table_altered() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	obj record;
BEGIN
	FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE object_type = 'table' LOOP
		IF EXISTS (SELECT FROM licdata.datasets d
					WHERE d.dataset::oid = obj.objid AND d.unpublished_at IS NULL) THEN
			PERFORM licdata_internal._sync_privileges(obj.objid::regclass);
		END IF;
	END LOOP;
END
$$;
CREATE EVENT TRIGGER licdata_table_altered ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION licdata_internal._table_altered();

REVOKE ALL ON FUNCTION licdata_internal._sync_privileges(regclass), licdata_internal._sync_privileges_due(timestamptz)
	FROM PUBLIC;

/*
 * Purpose scope.  'session' (the default): licdata.purpose and
 * licdata.consent_ref count however they were set.  'transaction': they
 * count only when set for the current transaction (SET LOCAL, set_config(...,
 * true), a function's SET clause); a value set for the session -- plain SET,
 * a connection option, ALTER ROLE ... SET -- is ignored, so behind a
 * transaction-pooling pooler one client's purpose never serves the next.
 */
CREATE FUNCTION licdata_internal._check_purpose_scope(purpose_scope text) RETURNS void
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM licdata_internal._not_null(purpose_scope, 'purpose_scope', true);
	IF purpose_scope NOT IN ('session', 'transaction') THEN
		RAISE EXCEPTION 'invalid purpose scope %', quote_literal(purpose_scope)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'It says whether licdata.purpose and licdata.consent_ref set for the session count.',
				  HINT = 'Use ''session'' or ''transaction'' (only SET LOCAL counts; for connection poolers).';
	END IF;
END
$$;

CREATE FUNCTION licdata.alter_licensee(licensee regrole, purpose_scope text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM licdata_internal._not_null(licensee, 'licensee');
	PERFORM licdata_internal._not_null(purpose_scope, 'purpose_scope');
	PERFORM licdata_internal._check_purpose_scope(purpose_scope);
	UPDATE licdata.licensees l SET purpose_scope = alter_licensee.purpose_scope
	 WHERE l.licensee = alter_licensee.licensee;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'role % is not a registered licensee', licensee
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it first with licdata.register_licensee.';
	END IF;
END
$$;
REVOKE ALL ON FUNCTION licdata.alter_licensee(regrole, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.alter_licensee(regrole, text) TO licdata_operator;
