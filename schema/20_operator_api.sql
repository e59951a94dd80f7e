/*
 * 20_operator_api.sql -- the operator's SQL API: publish datasets, register
 * licensees, grant and manage licences, set masks.
 *
 * Every function here is SECURITY DEFINER with a pinned search_path, is
 * revoked from PUBLIC and granted to licdata_operator (superusers may always
 * call it).  Each validates all of its input before it changes anything, and
 * reports bad input with an error that says what to do.
 */

-- C helpers (src/sqlfuncs.c).
CREATE FUNCTION licdata_internal.guard() RETURNS boolean
	LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF AS 'MODULE_PATHNAME', 'licdata_guard';
COMMENT ON FUNCTION licdata_internal.guard() IS
	'Row-security guard on published tables: errors out when licdata is not preloaded, so nobody reads published data without it';

CREATE FUNCTION licdata_internal._check_row_filter(dataset regclass, row_filter text) RETURNS text
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_check_row_filter';
CREATE FUNCTION licdata_internal._check_mask(dataset regclass, column_name name, method text, params text) RETURNS text
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_check_mask';
CREATE FUNCTION licdata_internal._is_licensee_member(role oid) RETURNS regrole
	LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'licdata_is_licensee_member';
REVOKE ALL ON FUNCTION licdata_internal._check_row_filter(regclass, text),
	licdata_internal._check_mask(regclass, name, text, text),
	licdata_internal._is_licensee_member(oid) FROM PUBLIC;

-- A purpose is a lower-case identifier.
CREATE FUNCTION licdata_internal._check_purposes(purposes text[]) RETURNS void
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	p text;
BEGIN
	IF purposes IS NULL OR cardinality(purposes) = 0 THEN
		RAISE EXCEPTION 'purposes must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A licence is granted for one or more declared purposes.',
				  HINT = 'Pass an array such as ARRAY[''credit_assessment''].';
	END IF;
	IF array_ndims(purposes) <> 1 THEN
		RAISE EXCEPTION 'purposes must be a one-dimensional array'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an array such as ARRAY[''credit_assessment''].';
	END IF;
	FOREACH p IN ARRAY purposes LOOP
		IF p IS NULL OR p !~ '^[a-z][a-z0-9_]*$' OR length(p) > 63 THEN
			RAISE EXCEPTION 'invalid purpose %', coalesce(quote_literal(p), 'NULL')
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'A purpose is a lower-case identifier: a letter followed by letters, digits or underscores, at most 63 characters.',
					  HINT = 'Use a name such as credit_assessment or statistics.';
		END IF;
	END LOOP;
	IF (SELECT count(DISTINCT x) FROM unnest(purposes) x) <> cardinality(purposes) THEN
		RAISE EXCEPTION 'purposes must not repeat a purpose'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Name each purpose once.';
	END IF;
END
$$;

CREATE FUNCTION licdata_internal._not_null(val anyelement, argname text, has_default boolean DEFAULT false)
	RETURNS void
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF val IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be null', argname
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a value for "' || argname || '"'
						 || CASE WHEN has_default THEN ', or leave it out to use its default.' ELSE '.' END;
	END IF;
END
$$;

-- A reg* argument that names nothing: 0 (written '-'), or the OID of a role
-- or relation that was dropped.  The input functions accept both.
CREATE FUNCTION licdata_internal._role_exists(r regrole, argname text) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF r IS NOT NULL AND NOT EXISTS (SELECT FROM pg_roles a WHERE a.oid = r::oid) THEN
		RAISE EXCEPTION 'role with OID % does not exist', r::oid
			USING ERRCODE = 'undefined_object',
				  DETAIL = format('Argument "%s" names no role (0, or a role that was dropped).', argname),
				  HINT = format('Pass an existing role by name, e.g. %s => ''bank''.', argname);
	END IF;
END
$$;
CREATE FUNCTION licdata_internal._relation_exists(r regclass, argname text) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF r IS NOT NULL AND NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = r::oid) THEN
		RAISE EXCEPTION 'relation with OID % does not exist', r::oid
			USING ERRCODE = 'undefined_table',
				  DETAIL = format('Argument "%s" names no relation (0, or a table that was dropped).', argname),
				  HINT = format('Pass an existing table by name, e.g. %s => ''schema.table''.', argname);
	END IF;
END
$$;

CREATE FUNCTION licdata_internal._published(ds regclass) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	parent regclass;
BEGIN
	PERFORM licdata_internal._not_null(ds, 'dataset');
	PERFORM licdata_internal._relation_exists(ds, 'dataset');
	IF NOT EXISTS (SELECT FROM licdata.datasets d WHERE d.dataset = ds AND d.unpublished_at IS NULL) THEN
		-- a partition or child table: name the dataset it is served under
		SELECT d.dataset INTO parent FROM licdata.datasets d, licdata_internal._family(d.dataset) f
		 WHERE d.unpublished_at IS NULL AND f = ds;
		IF parent IS NOT NULL THEN
			RAISE EXCEPTION 'table % is not a published dataset', ds
				USING ERRCODE = 'undefined_object',
					  DETAIL = format('It is served as part of dataset %s.', parent),
					  HINT = format('Name the dataset %s.', parent);
		END IF;
		RAISE EXCEPTION 'table % is not a published dataset', ds
			USING ERRCODE = 'undefined_object',
				  HINT = 'Publish it first with licdata.publish(''' || ds::text || ''').';
	END IF;
END
$$;

-- Every table that inherits from ds (partitions included), ds first.
CREATE FUNCTION licdata_internal._family(ds regclass) RETURNS SETOF regclass
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	WITH RECURSIVE f(rel) AS (
		SELECT ds::oid
		UNION
		SELECT i.inhrelid FROM pg_inherits i JOIN f ON i.inhparent = f.rel
	)
	SELECT rel::regclass FROM f
$$;

CREATE FUNCTION licdata.publish(dataset regclass, description text DEFAULT NULL,
								price_per_query numeric DEFAULT 0, price_per_row numeric DEFAULT 0)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ds regclass := dataset;
	c record;
	owner_licensee regrole;
	prev record;
	member regclass;
BEGIN
	PERFORM licdata_internal._not_null(ds, 'dataset');
	PERFORM licdata_internal._relation_exists(ds, 'dataset');
	PERFORM licdata_internal._not_null(price_per_query, 'price_per_query', true);
	PERFORM licdata_internal._not_null(price_per_row, 'price_per_row', true);
	-- NaN passes "< 0" and the table's CHECK (>= 0): test for a finite amount.
	IF NOT (price_per_query >= 0 AND price_per_query < 'Infinity')
	   OR NOT (price_per_row >= 0 AND price_per_row < 'Infinity') THEN
		RAISE EXCEPTION 'prices must be zero or a positive amount'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('price_per_query is %s and price_per_row is %s.', price_per_query, price_per_row),
				  HINT = 'Pass zero or a positive amount.';
	END IF;
	SELECT cl.relkind, cl.relpersistence, cl.relowner, n.nspname, cl.relispartition
	  INTO c
	  FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace
	 WHERE cl.oid = ds;
	IF c.relkind NOT IN ('r', 'p') THEN
		RAISE EXCEPTION 'cannot publish % because it is not a table', ds
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = 'Only ordinary and partitioned tables can be published.',
				  HINT = 'Publish the table the view or object reads from.';
	END IF;
	IF c.relpersistence = 't' OR c.nspname IN ('pg_catalog', 'information_schema', 'licdata', 'pg_toast')
	   OR c.nspname LIKE 'pg\_temp%' THEN
		RAISE EXCEPTION 'cannot publish % because it is a system, temporary or licdata table', ds
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Publish a permanent table in a schema of your own.';
	END IF;
	IF c.relispartition THEN
		RAISE EXCEPTION 'cannot publish partition % on its own', ds
			USING ERRCODE = 'wrong_object_type',
				  DETAIL = 'Partitions are served under the licences of their partitioned table.',
				  HINT = 'Publish the partitioned table.';
	END IF;
	IF EXISTS (SELECT FROM licdata.datasets d WHERE d.dataset = ds AND d.unpublished_at IS NULL) THEN
		RAISE EXCEPTION 'table % is already published', ds
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Use licdata.unpublish first to publish it again with other settings.';
	END IF;
	IF EXISTS (SELECT FROM licdata.datasets d, licdata_internal._family(d.dataset) f
				WHERE d.unpublished_at IS NULL AND f = ds) THEN
		RAISE EXCEPTION 'table % inherits from a published dataset', ds
			USING ERRCODE = 'duplicate_object',
				  DETAIL = 'It is already served under the licences of its parent.',
				  HINT = 'Publish only the parent table.';
	END IF;
	owner_licensee := licdata_internal._is_licensee_member(c.relowner);
	IF owner_licensee IS NOT NULL THEN
		RAISE EXCEPTION 'cannot publish % because its owner acts for licensee %', ds, owner_licensee
			USING ERRCODE = 'invalid_grant_operation',
				  DETAIL = 'A licensee that owns a published table would read it without its licence.',
				  HINT = 'Change the table''s owner to an operator role first.';
	END IF;

	SELECT cl.relrowsecurity, cl.relforcerowsecurity INTO prev FROM pg_class cl WHERE cl.oid = ds;
	INSERT INTO licdata.datasets AS d (dataset, description, price_per_query, price_per_row,
									   rls_was_enabled, rls_was_forced)
	VALUES (ds, description, price_per_query, price_per_row, prev.relrowsecurity, prev.relforcerowsecurity)
	ON CONFLICT ON CONSTRAINT datasets_pkey DO UPDATE
	   SET description = EXCLUDED.description, price_per_query = EXCLUDED.price_per_query,
		   price_per_row = EXCLUDED.price_per_row, published_at = now(), published_by = session_user,
		   unpublished_at = NULL, rls_was_enabled = EXCLUDED.rls_was_enabled,
		   rls_was_forced = EXCLUDED.rls_was_forced;

	-- Operators read every dataset (their reads are audited): they must be
	-- able to name it.  (Not revoked by unpublish: the schema may hold other
	-- datasets, and a schema's USAGE shows names only.)
	EXECUTE format('GRANT USAGE ON SCHEMA %I TO licdata_operator', c.nspname);
	FOR member IN SELECT licdata_internal._family(ds) LOOP
		-- licdata reads the table as licdata_reader on a licensee's behalf;
		-- operators read every dataset (their reads are audited).
		EXECUTE format('GRANT SELECT ON TABLE %s TO licdata_reader, licdata_operator', member);
		-- With row security forced and this guard policy, nobody but a
		-- superuser reads the table unless licdata is preloaded, and
		-- pg_stats shows non-owners nothing of it.
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', member);
		EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', member);
		IF NOT EXISTS (SELECT FROM pg_policy WHERE polrelid = member AND polname = 'licdata_guard') THEN
			EXECUTE format('CREATE POLICY licdata_guard ON %s USING (licdata_internal.guard())', member);
		END IF;
	END LOOP;
END
$$;

CREATE FUNCTION licdata.unpublish(dataset regclass) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ds regclass := dataset;
	d record;
	live bigint;
	member regclass;
BEGIN
	PERFORM licdata_internal._published(ds);
	SELECT count(*) INTO live FROM licdata.licences l WHERE l.dataset = ds AND l.status <> 'revoked';
	IF live > 0 THEN
		RAISE EXCEPTION 'dataset % has % licence(s) that are not revoked', ds, live
			USING ERRCODE = 'object_in_use',
				  DETAIL = 'Unpublishing would cut licensees off without a record of why.',
				  HINT = 'Revoke its licences with licdata.revoke_licence first.';
	END IF;
	SELECT * INTO d FROM licdata.datasets x WHERE x.dataset = ds;
	FOR member IN SELECT licdata_internal._family(ds) LOOP
		EXECUTE format('REVOKE SELECT ON TABLE %s FROM licdata_reader, licdata_operator', member);
		EXECUTE format('DROP POLICY IF EXISTS licdata_guard ON %s', member);
		IF NOT d.rls_was_forced THEN
			EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', member);
		END IF;
		IF NOT d.rls_was_enabled THEN
			EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', member);
		END IF;
	END LOOP;
	DELETE FROM licdata.masks m WHERE m.dataset = ds;
	UPDATE licdata.datasets x SET unpublished_at = now() WHERE x.dataset = ds;
	-- every licence is revoked: licensees keep no privilege on the table
	PERFORM licdata_internal._sync_privileges(ds);
END
$$;

CREATE FUNCTION licdata.register_licensee(licensee regrole, org_name text, org_code text DEFAULT NULL,
										  purpose_scope text DEFAULT 'session')
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	owned text;
	other regrole;
	others text;
BEGIN
	PERFORM licdata_internal._not_null(licensee, 'licensee');
	PERFORM licdata_internal._role_exists(licensee, 'licensee');
	PERFORM licdata_internal._not_null(org_name, 'org_name');
	PERFORM licdata_internal._check_purpose_scope(purpose_scope);
	IF btrim(org_name) = '' THEN
		RAISE EXCEPTION 'org_name must not be empty'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the organisation''s legal name.';
	END IF;
	SELECT * INTO r FROM pg_roles WHERE oid = licensee;
	IF r.rolname LIKE 'pg\_%' OR r.rolname LIKE 'licdata\_%' THEN
		RAISE EXCEPTION 'cannot register reserved role % as a licensee', licensee
			USING ERRCODE = 'reserved_name',
				  HINT = 'Create a role of its own for the licensee.';
	END IF;
	IF r.rolsuper THEN
		RAISE EXCEPTION 'cannot register role % as a licensee because it is a superuser', licensee
			USING ERRCODE = 'invalid_grant_operation',
				  DETAIL = 'A superuser bypasses every licence.',
				  HINT = 'Register a role without SUPERUSER.';
	END IF;
	IF r.rolbypassrls THEN
		RAISE EXCEPTION 'cannot register role % as a licensee because it has BYPASSRLS', licensee
			USING ERRCODE = 'invalid_grant_operation',
				  DETAIL = 'A role with BYPASSRLS is not subject to row-level security.',
				  HINT = format('Run ALTER ROLE %s NOBYPASSRLS first.', licensee);
	END IF;
	IF pg_has_role(licensee, 'licdata_operator', 'MEMBER') OR pg_has_role(licensee, 'licdata_auditor', 'MEMBER') THEN
		RAISE EXCEPTION 'cannot register role % as a licensee because it is an operator or auditor', licensee
			USING ERRCODE = 'invalid_grant_operation',
				  DETAIL = 'Operators see raw data; auditors read every licensee''s usage.',
				  HINT = 'Use a separate role for the licensee.';
	END IF;
	SELECT string_agg(d.dataset::text, ', ') INTO owned
	  FROM licdata.datasets d, licdata_internal._family(d.dataset) f, pg_class c
	 WHERE d.unpublished_at IS NULL AND c.oid = f AND pg_has_role(licensee, c.relowner, 'MEMBER');
	IF owned IS NOT NULL THEN
		RAISE EXCEPTION 'cannot register role % as a licensee because it owns published table(s)', licensee
			USING ERRCODE = 'invalid_grant_operation',
				  DETAIL = 'It owns ' || owned || '.',
				  HINT = 'Give the tables to an operator role with ALTER TABLE ... OWNER TO first.';
	END IF;
	IF EXISTS (SELECT FROM licdata.licensees l WHERE l.licensee = register_licensee.licensee) THEN
		RAISE EXCEPTION 'role % is already a registered licensee', licensee
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Grant it licences with licdata.grant_licence.';
	END IF;
	-- The other way round: a licensee that is a member of this role would
	-- make the licensee's own members act for two licensees.
	-- (the join skips rows of dropped roles, which pg_has_role would reject)
	SELECT l.licensee INTO other FROM licdata.licensees l JOIN pg_roles lr ON lr.oid = l.licensee
	 WHERE pg_has_role(l.licensee, register_licensee.licensee, 'MEMBER')
	 ORDER BY l.licensee::text LIMIT 1;
	IF other IS NOT NULL THEN
		RAISE EXCEPTION 'cannot register role % as a licensee because licensee % is a member of it', licensee, other
			USING ERRCODE = 'invalid_grant_operation',
				  DETAIL = format('The members of %s would act for two licensees.', other),
				  HINT = format('Revoke %s''s membership in %s first, or register another role.', other, licensee);
	END IF;
	-- (in SQL rather than through the licence cache, which raises its own
	-- error for a role that already acts for two licensees)
	SELECT string_agg(l.licensee::text, ', ' ORDER BY l.licensee::text) INTO others
	  FROM licdata.licensees l JOIN pg_roles lr ON lr.oid = l.licensee
	 WHERE pg_has_role(register_licensee.licensee, l.licensee, 'MEMBER');
	IF others IS NOT NULL THEN
		RAISE EXCEPTION 'role % already acts for licensee %', licensee, others
			USING ERRCODE = 'duplicate_object',
				  DETAIL = 'A role acts for at most one licensee.',
				  HINT = format('Revoke its membership in %s first, or register another role.', others);
	END IF;
	INSERT INTO licdata.licensees AS l (licensee, org_name, org_code, purpose_scope)
	VALUES (licensee, btrim(org_name), nullif(btrim(org_code), ''), register_licensee.purpose_scope);
END
$$;

CREATE FUNCTION licdata.grant_licence(licensee regrole, dataset regclass, purposes text[],
									  columns name[] DEFAULT NULL,
									  row_filter text DEFAULT NULL,
									  valid_from timestamptz DEFAULT now(),
									  valid_until timestamptz DEFAULT NULL,
									  max_rows_per_query bigint DEFAULT NULL,
									  max_rows_per_day bigint DEFAULT NULL,
									  max_queries_per_day bigint DEFAULT NULL,
									  require_consent_ref boolean DEFAULT false,
									  price_per_query numeric DEFAULT NULL,
									  price_per_row numeric DEFAULT NULL,
									  mode text DEFAULT 'rows',
									  min_group_size integer DEFAULT 10,
									  unlicensed_columns text DEFAULT 'refuse',
									  max_lookups_per_day bigint DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ds regclass := dataset;
	lic regrole := licensee;
	col name;
	normalised_filter text;
	new_id bigint;
	acts_for text;
BEGIN
	PERFORM licdata_internal._not_null(lic, 'licensee');
	PERFORM licdata_internal._role_exists(lic, 'licensee');
	PERFORM licdata_internal._published(ds);
	IF NOT EXISTS (SELECT FROM licdata.licensees l WHERE l.licensee = lic) THEN
		-- a member of a licensee: licences are granted to the licensee
		SELECT string_agg(l.licensee::text, ', ' ORDER BY l.licensee::text) INTO acts_for
		  FROM licdata.licensees l JOIN pg_roles lr ON lr.oid = l.licensee
		 WHERE pg_has_role(lic, l.licensee, 'MEMBER');
		IF acts_for IS NOT NULL THEN
			RAISE EXCEPTION 'role % is not a registered licensee', lic
				USING ERRCODE = 'undefined_object',
					  DETAIL = format('It acts for licensee %s.', acts_for),
					  HINT = 'Grant the licence to the licensee its members act for.';
		END IF;
		RAISE EXCEPTION 'role % is not a registered licensee', lic
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it first with licdata.register_licensee.';
	END IF;
	PERFORM licdata_internal._check_purposes(purposes);
	IF columns IS NOT NULL THEN
		IF cardinality(columns) = 0 OR array_ndims(columns) <> 1 THEN
			RAISE EXCEPTION 'columns must be NULL or a non-empty list of column names'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Pass NULL to license every column.';
		END IF;
		FOREACH col IN ARRAY columns LOOP
			IF col IS NULL THEN
				RAISE EXCEPTION 'columns must not contain NULL'
					USING ERRCODE = 'null_value_not_allowed',
						  HINT = 'Name each licensed column.';
			END IF;
			IF NOT EXISTS (SELECT FROM pg_attribute a
							WHERE a.attrelid = ds AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped) THEN
				RAISE EXCEPTION 'column "%" of dataset % does not exist', col, ds
					USING ERRCODE = 'undefined_column',
						  HINT = 'Name only columns of the dataset.';
			END IF;
		END LOOP;
		IF (SELECT count(DISTINCT x) FROM unnest(columns) x) <> cardinality(columns) THEN
			RAISE EXCEPTION 'columns must not name a column twice'
				USING ERRCODE = 'duplicate_column',
					  HINT = 'Name each licensed column once.';
		END IF;
	END IF;
	IF row_filter IS NOT NULL THEN
		normalised_filter := licdata_internal._check_row_filter(ds, row_filter);
	END IF;
	PERFORM licdata_internal._not_null(valid_from, 'valid_from', true);
	IF NOT isfinite(valid_from) THEN
		RAISE EXCEPTION 'valid_from must be a finite time'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the time the licence starts, e.g. now().';
	END IF;
	IF valid_until IS NOT NULL AND valid_until <= valid_from THEN
		RAISE EXCEPTION 'valid_until must be after valid_from'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('valid_from is %s and valid_until is %s.', valid_from, valid_until),
				  HINT = 'Pass a valid_until later than valid_from, or NULL for no end.';
	END IF;
	IF max_rows_per_query <= 0 OR max_rows_per_day <= 0 OR max_queries_per_day <= 0
	   OR max_lookups_per_day <= 0 THEN
		RAISE EXCEPTION 'quotas must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a positive limit, or NULL for no limit.';
	END IF;
	PERFORM licdata_internal._not_null(require_consent_ref, 'require_consent_ref', true);
	IF NOT (coalesce(price_per_query, 0) >= 0 AND coalesce(price_per_query, 0) < 'Infinity')
	   OR NOT (coalesce(price_per_row, 0) >= 0 AND coalesce(price_per_row, 0) < 'Infinity') THEN
		RAISE EXCEPTION 'prices must be zero or a positive amount'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('price_per_query is %s and price_per_row is %s.',
								  coalesce(price_per_query::text, 'NULL'), coalesce(price_per_row::text, 'NULL')),
				  HINT = 'Pass zero or a positive amount, or NULL to use the dataset''s price.';
	END IF;
	PERFORM licdata_internal._not_null(mode, 'mode', true);
	IF mode NOT IN ('rows', 'aggregate') THEN
		RAISE EXCEPTION 'invalid licence mode %', quote_literal(mode)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use ''rows'' or ''aggregate''.';
	END IF;
	PERFORM licdata_internal._not_null(min_group_size, 'min_group_size', true);
	IF min_group_size < 2 THEN
		RAISE EXCEPTION 'min_group_size must be at least 2'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use the smallest group size whose aggregates may be released, 10 by default.';
	END IF;
	PERFORM licdata_internal._not_null(unlicensed_columns, 'unlicensed_columns', true);
	IF unlicensed_columns NOT IN ('refuse', 'null') THEN
		RAISE EXCEPTION 'invalid value % for unlicensed_columns', quote_literal(unlicensed_columns)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'It says what a query that reads a column outside the licence gets.',
				  HINT = 'Use ''refuse'' (the query is refused, LD003) or ''null'' (the column reads as NULL).';
	END IF;
	-- (the licence_privileges trigger gives the licensee SELECT on the
	-- licensed columns, for catalogs and BI tools)
	INSERT INTO licdata.licences AS l (licensee, dataset, purposes, columns, row_filter, valid_from,
				valid_until, max_rows_per_query, max_rows_per_day, max_queries_per_day,
				require_consent_ref, price_per_query, price_per_row, mode, min_group_size,
				unlicensed_columns, max_lookups_per_day)
	VALUES (lic, ds, purposes, columns, row_filter, valid_from, valid_until,
			max_rows_per_query, max_rows_per_day, max_queries_per_day, require_consent_ref,
			price_per_query, price_per_row, mode, min_group_size, unlicensed_columns,
			max_lookups_per_day)
	RETURNING l.id INTO new_id;
	-- The licensee must be able to name the dataset; the licence, not a
	-- GRANT on the table, is what lets it read.
	EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I',
				   (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ds),
				   (SELECT rolname FROM pg_roles WHERE oid = lic));
	RETURN new_id;
END
$$;

CREATE FUNCTION licdata_internal._set_licence_status(licence_id bigint, new_status text) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cur text;
BEGIN
	PERFORM licdata_internal._not_null(licence_id, 'id');
	SELECT status INTO cur FROM licdata.licences WHERE id = licence_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'licence % does not exist', licence_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'See licdata.licences for the licence ids.';
	END IF;
	IF cur = 'revoked' THEN
		RAISE EXCEPTION 'licence % is revoked', licence_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'A revoked licence cannot be changed.',
				  HINT = 'Grant a new licence.';
	END IF;
	IF cur = new_status THEN
		RAISE EXCEPTION 'licence % is already %', licence_id, cur
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = CASE new_status WHEN 'active' THEN 'Nothing to resume.' ELSE 'Nothing to suspend.' END;
	END IF;
	UPDATE licdata.licences SET status = new_status, status_changed_at = now() WHERE id = licence_id;
END
$$;

CREATE FUNCTION licdata.suspend_licence(id bigint) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT licdata_internal._set_licence_status(id, 'suspended') $$;
CREATE FUNCTION licdata.resume_licence(id bigint) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT licdata_internal._set_licence_status(id, 'active') $$;
CREATE FUNCTION licdata.revoke_licence(id bigint) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT licdata_internal._set_licence_status(id, 'revoked') $$;

CREATE FUNCTION licdata_internal._check_mask_target(ds regclass, column_name name, licence_id bigint, purpose text)
	RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	l record;
BEGIN
	PERFORM licdata_internal._published(ds);
	PERFORM licdata_internal._not_null(column_name, 'column_name');
	IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = ds AND a.attname = column_name
					AND a.attnum > 0 AND NOT a.attisdropped) THEN
		RAISE EXCEPTION 'column "%" of dataset % does not exist', column_name, ds
			USING ERRCODE = 'undefined_column',
				  HINT = 'Name a column of the dataset.';
	END IF;
	IF licence_id IS NOT NULL THEN
		SELECT * INTO l FROM licdata.licences x WHERE x.id = licence_id;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'licence % does not exist', licence_id
				USING ERRCODE = 'undefined_object',
					  HINT = 'See licdata.licences for the licence ids.';
		END IF;
		IF l.dataset <> ds THEN
			RAISE EXCEPTION 'licence % is for dataset %, not %', licence_id, l.dataset, ds
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Pass the licence''s own dataset.';
		END IF;
	END IF;
	IF purpose IS NOT NULL THEN
		IF licence_id IS NULL THEN
			RAISE EXCEPTION 'a mask for a purpose must name its licence'
				USING ERRCODE = 'invalid_parameter_value',
					  HINT = 'Pass licence_id together with purpose.';
		END IF;
		PERFORM licdata_internal._check_purposes(ARRAY[purpose]);
		IF NOT purpose = ANY (l.purposes) THEN
			RAISE EXCEPTION 'purpose % is not among the purposes of licence %', purpose, licence_id
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'The licence is for: ' || array_to_string(l.purposes, ', ') || '.',
					  HINT = 'Name one of the licence''s purposes.';
		END IF;
	END IF;
END
$$;

CREATE FUNCTION licdata.set_mask(dataset regclass, column_name name, method text, params jsonb DEFAULT '{}',
								 licence_id bigint DEFAULT NULL, purpose text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
BEGIN
	PERFORM licdata_internal._check_mask_target(dataset, column_name, licence_id, purpose);
	PERFORM licdata_internal._not_null(method, 'method');
	PERFORM licdata_internal._not_null(params, 'params', true);
	-- Builds the masking expression the way queries will, so any method,
	-- parameter or type mismatch is reported here and not at query time.
	PERFORM licdata_internal._check_mask(dataset, column_name, method, params::text);
	INSERT INTO licdata.masks AS m (dataset, column_name, method, params, licence_id, purpose)
	VALUES (dataset, column_name, method, params, licence_id, purpose)
	ON CONFLICT ON CONSTRAINT masks_dataset_column_name_licence_id_purpose_key DO UPDATE
	   SET method = EXCLUDED.method, params = EXCLUDED.params,
		   created_at = now(), created_by = session_user;
END
$$;

CREATE FUNCTION licdata.drop_mask(dataset regclass, column_name name,
								  licence_id bigint DEFAULT NULL, purpose text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM licdata_internal._check_mask_target(dataset, column_name, licence_id, purpose);
	DELETE FROM licdata.masks m
	 WHERE m.dataset = drop_mask.dataset AND m.column_name = drop_mask.column_name
	   AND m.licence_id IS NOT DISTINCT FROM drop_mask.licence_id
	   AND m.purpose IS NOT DISTINCT FROM drop_mask.purpose;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no mask on column "%" of dataset % for that licence and purpose', column_name, dataset
			USING ERRCODE = 'undefined_object',
				  HINT = 'See licdata.masks for the masks that are set.';
	END IF;
END
$$;

DO $grants$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_proc p
			  WHERE p.pronamespace = 'licdata'::regnamespace
				AND p.proname IN ('publish', 'unpublish', 'register_licensee', 'grant_licence',
								  'suspend_licence', 'resume_licence', 'revoke_licence',
								  'set_mask', 'drop_mask')
	LOOP
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO licdata_operator', f);
	END LOOP;
END
$grants$;

/*
 * A published table that is dropped (DROP TABLE, DROP SCHEMA ... CASCADE) is
 * unpublished and its licences revoked, so that a table created later with
 * the same OID is never taken for the dataset.
 */
CREATE FUNCTION licdata_internal._table_dropped() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	obj record;
BEGIN
	FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE object_type = 'table' LOOP
		IF EXISTS (SELECT FROM licdata.datasets d WHERE d.dataset::oid = obj.objid AND d.unpublished_at IS NULL) THEN
			UPDATE licdata.licences SET status = 'revoked', status_changed_at = now()
			 WHERE dataset::oid = obj.objid AND status <> 'revoked';
			DELETE FROM licdata.masks WHERE dataset::oid = obj.objid;
			UPDATE licdata.datasets SET unpublished_at = now() WHERE dataset::oid = obj.objid;
			RAISE NOTICE 'licdata: dataset % was dropped; it is unpublished and its licences are revoked',
				obj.object_identity;
		END IF;
	END LOOP;
END
$$;
CREATE EVENT TRIGGER licdata_table_dropped ON sql_drop
	EXECUTE FUNCTION licdata_internal._table_dropped();
