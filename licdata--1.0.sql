\echo Use "CREATE EXTENSION licdata" to load this file. \quit

-- schema/10_catalog.sql
/*
 * 10_catalog.sql -- roles, catalog tables and the triggers that keep every
 * backend's licence cache and cached plans in step with them.
 *
 * The catalog is what the operator maintains: datasets, licensees, licences,
 * masks, authorities.  Every table is registered with
 * pg_extension_config_dump so that pg_dump keeps its rows.  Licensees have no
 * privilege on any of them; they read their own licences through the view
 * licdata.my_licences.
 */

-- Refuse to install unless the library was preloaded: without its hooks the
-- licences below would not be enforced.  The C function raises the error
-- with the exact setting to add.
CREATE FUNCTION licdata._assert_preloaded() RETURNS void
	LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'licdata_assert_preloaded';
SELECT licdata._assert_preloaded();

-- Roles are cluster-wide: create them once, keep them across DROP/CREATE.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'licdata_operator') THEN
		CREATE ROLE licdata_operator NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'licdata_auditor') THEN
		CREATE ROLE licdata_auditor NOLOGIN;
	END IF;
	-- The role licdata reads published tables as, on a licensee's behalf.
	-- Nobody logs in as it and nobody should be granted it.
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'licdata_reader') THEN
		CREATE ROLE licdata_reader NOLOGIN NOINHERIT;
	END IF;
END
$roles$;
COMMENT ON ROLE licdata_operator IS 'licdata: publishes datasets, grants licences, sets masks, reads usage and audit';
COMMENT ON ROLE licdata_auditor IS 'licdata: reads usage and audit records and verifies the audit trail';
COMMENT ON ROLE licdata_reader IS 'licdata: internal; published tables are read as this role on behalf of licensees';

GRANT USAGE ON SCHEMA licdata TO PUBLIC;

CREATE TABLE licdata.datasets (
	dataset			regclass PRIMARY KEY,
	description		text,
	price_per_query	numeric NOT NULL DEFAULT 0 CHECK (price_per_query >= 0),
	price_per_row	numeric NOT NULL DEFAULT 0 CHECK (price_per_row >= 0),
	published_at	timestamptz NOT NULL DEFAULT now(),
	published_by	name NOT NULL DEFAULT session_user,
	-- Set by licdata.unpublish; the row stays so that licences and usage
	-- keep naming the dataset.  A dataset is published while this is NULL.
	unpublished_at	timestamptz,
	-- Row-level security state of the table before publish, restored by unpublish.
	rls_was_enabled	boolean NOT NULL DEFAULT false,
	rls_was_forced	boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE licdata.datasets IS 'Tables published as datasets; only licensed roles read them, through their licence';

CREATE TABLE licdata.licensees (
	licensee		regrole PRIMARY KEY,
	org_name		text NOT NULL CHECK (btrim(org_name) <> ''),
	org_code		text,
	-- Stable id from which the licensee's keys are derived: survives
	-- pg_dump/restore even though role OIDs do not.
	key_id			bigint NOT NULL UNIQUE,
	registered_at	timestamptz NOT NULL DEFAULT now(),
	registered_by	name NOT NULL DEFAULT session_user
);
CREATE SEQUENCE licdata.licensee_key_id_seq OWNED BY licdata.licensees.key_id;
ALTER TABLE licdata.licensees ALTER COLUMN key_id SET DEFAULT nextval('licdata.licensee_key_id_seq');
COMMENT ON TABLE licdata.licensees IS 'Roles that act as licensees; members of such a role act for it';

CREATE TABLE licdata.licences (
	id					bigserial PRIMARY KEY,
	licensee			regrole NOT NULL REFERENCES licdata.licensees (licensee),
	dataset				regclass NOT NULL REFERENCES licdata.datasets (dataset),
	purposes			text[] NOT NULL CHECK (cardinality(purposes) > 0),
	columns				name[],
	row_filter			text,
	valid_from			timestamptz NOT NULL DEFAULT now(),
	valid_until			timestamptz CHECK (valid_until > valid_from),
	max_rows_per_query	bigint CHECK (max_rows_per_query > 0),
	max_rows_per_day	bigint CHECK (max_rows_per_day > 0),
	max_queries_per_day	bigint CHECK (max_queries_per_day > 0),
	require_consent_ref	boolean NOT NULL DEFAULT false,
	price_per_query		numeric CHECK (price_per_query >= 0),
	price_per_row		numeric CHECK (price_per_row >= 0),
	mode				text NOT NULL DEFAULT 'rows' CHECK (mode IN ('rows', 'aggregate')),
	min_group_size		integer NOT NULL DEFAULT 10 CHECK (min_group_size >= 2),
	status				text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked')),
	granted_at			timestamptz NOT NULL DEFAULT now(),
	granted_by			name NOT NULL DEFAULT session_user,
	status_changed_at	timestamptz,
	authority			text,
	document			jsonb,
	signature			text
);
CREATE INDEX licences_licensee_dataset ON licdata.licences (licensee, dataset);
COMMENT ON TABLE licdata.licences IS 'Licences: which licensee may use which dataset, for which purposes, how, until when';

CREATE TABLE licdata.masks (
	id				bigserial PRIMARY KEY,
	dataset			regclass NOT NULL REFERENCES licdata.datasets (dataset) ON DELETE CASCADE,
	column_name		name NOT NULL,
	method			text NOT NULL,
	params			jsonb NOT NULL DEFAULT '{}',
	licence_id		bigint REFERENCES licdata.licences (id) ON DELETE CASCADE,
	purpose			text,
	created_at		timestamptz NOT NULL DEFAULT now(),
	created_by		name NOT NULL DEFAULT session_user,
	UNIQUE NULLS NOT DISTINCT (dataset, column_name, licence_id, purpose)
);
COMMENT ON TABLE licdata.masks IS 'Column masks: dataset default, per licence, per licence and purpose';

CREATE TABLE licdata.authorities (
	name			text PRIMARY KEY CHECK (btrim(name) <> ''),
	public_key		text NOT NULL,
	added_at		timestamptz NOT NULL DEFAULT now(),
	added_by		name NOT NULL DEFAULT session_user
);
COMMENT ON TABLE licdata.authorities IS 'Licensing authorities whose Ed25519 signatures licdata.install_licence accepts';

SELECT pg_catalog.pg_extension_config_dump('licdata.datasets', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.licensees', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.licensee_key_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.licences', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.licences_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.masks', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.masks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.authorities', '');

-- Operators maintain the catalog through the API functions; they may also
-- read it directly.  Auditors read it.  Licensees get nothing here.
GRANT SELECT ON licdata.datasets, licdata.licensees, licdata.licences,
	licdata.masks, licdata.authorities TO licdata_operator, licdata_auditor;

/*
 * Any change to the catalog tells every backend to drop its licence cache
 * and every cached plan that was built under the old terms (through a
 * relcache invalidation of the changed catalog table, which each licensed
 * plan lists among its dependencies).
 */
CREATE FUNCTION licdata._catalog_changed() RETURNS trigger
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_catalog_changed';

DO $trg$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['datasets', 'licensees', 'licences', 'masks', 'authorities'] LOOP
		EXECUTE format('CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
						ON licdata.%I FOR EACH STATEMENT EXECUTE FUNCTION licdata._catalog_changed()', t);
	END LOOP;
END
$trg$;

-- schema/20_operator_api.sql
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
CREATE FUNCTION licdata.guard() RETURNS boolean
	LANGUAGE C STABLE PARALLEL SAFE LEAKPROOF AS 'MODULE_PATHNAME', 'licdata_guard';
COMMENT ON FUNCTION licdata.guard() IS
	'Row-security guard on published tables: errors out when licdata is not preloaded, so nobody reads published data without it';

CREATE FUNCTION licdata._check_row_filter(dataset regclass, row_filter text) RETURNS text
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_check_row_filter';
CREATE FUNCTION licdata._check_mask(dataset regclass, column_name name, method text, params text) RETURNS text
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_check_mask';
CREATE FUNCTION licdata._is_licensee_member(role oid) RETURNS regrole
	LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'licdata_is_licensee_member';
REVOKE ALL ON FUNCTION licdata._check_row_filter(regclass, text),
	licdata._check_mask(regclass, name, text, text),
	licdata._is_licensee_member(oid) FROM PUBLIC;

-- A purpose is a lower-case identifier.
CREATE FUNCTION licdata._check_purposes(purposes text[]) RETURNS void
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

CREATE FUNCTION licdata._not_null(val anyelement, argname text, has_default boolean DEFAULT false)
	RETURNS void
	LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	IF val IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be null', argname
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a value for "' || argname || '"'
						 || CASE WHEN has_default THEN ', or leave it out to use its default.' ELSE '.' END;
	END IF;
END
$$;

CREATE FUNCTION licdata._published(ds regclass) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	parent regclass;
BEGIN
	PERFORM licdata._not_null(ds, 'dataset');
	IF NOT EXISTS (SELECT FROM licdata.datasets d WHERE d.dataset = ds AND d.unpublished_at IS NULL) THEN
		-- a partition or child table: name the dataset it is served under
		SELECT d.dataset INTO parent FROM licdata.datasets d, licdata._family(d.dataset) f
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
CREATE FUNCTION licdata._family(ds regclass) RETURNS SETOF regclass
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
	PERFORM licdata._not_null(ds, 'dataset');
	PERFORM licdata._not_null(price_per_query, 'price_per_query', true);
	PERFORM licdata._not_null(price_per_row, 'price_per_row', true);
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
	IF EXISTS (SELECT FROM licdata.datasets d, licdata._family(d.dataset) f
				WHERE d.unpublished_at IS NULL AND f = ds) THEN
		RAISE EXCEPTION 'table % inherits from a published dataset', ds
			USING ERRCODE = 'duplicate_object',
				  DETAIL = 'It is already served under the licences of its parent.',
				  HINT = 'Publish only the parent table.';
	END IF;
	owner_licensee := licdata._is_licensee_member(c.relowner);
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

	FOR member IN SELECT licdata._family(ds) LOOP
		-- licdata reads the table as licdata_reader on a licensee's behalf;
		-- operators read every dataset (their reads are audited).
		EXECUTE format('GRANT SELECT ON TABLE %s TO licdata_reader, licdata_operator', member);
		-- With row security forced and this guard policy, nobody but a
		-- superuser reads the table unless licdata is preloaded, and
		-- pg_stats shows non-owners nothing of it.
		EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', member);
		EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', member);
		IF NOT EXISTS (SELECT FROM pg_policy WHERE polrelid = member AND polname = 'licdata_guard') THEN
			EXECUTE format('CREATE POLICY licdata_guard ON %s USING (licdata.guard())', member);
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
	PERFORM licdata._published(ds);
	SELECT count(*) INTO live FROM licdata.licences l WHERE l.dataset = ds AND l.status <> 'revoked';
	IF live > 0 THEN
		RAISE EXCEPTION 'dataset % has % licence(s) that are not revoked', ds, live
			USING ERRCODE = 'object_in_use',
				  DETAIL = 'Unpublishing would cut licensees off without a record of why.',
				  HINT = 'Revoke its licences with licdata.revoke_licence first.';
	END IF;
	SELECT * INTO d FROM licdata.datasets x WHERE x.dataset = ds;
	FOR member IN SELECT licdata._family(ds) LOOP
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
END
$$;

CREATE FUNCTION licdata.register_licensee(licensee regrole, org_name text, org_code text DEFAULT NULL)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r record;
	owned text;
	other regrole;
	others text;
BEGIN
	PERFORM licdata._not_null(licensee, 'licensee');
	PERFORM licdata._not_null(org_name, 'org_name');
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
	  FROM licdata.datasets d, licdata._family(d.dataset) f, pg_class c
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
	INSERT INTO licdata.licensees (licensee, org_name, org_code)
	VALUES (licensee, btrim(org_name), nullif(btrim(org_code), ''));
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
									  min_group_size integer DEFAULT 10)
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
	PERFORM licdata._not_null(lic, 'licensee');
	PERFORM licdata._published(ds);
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
	PERFORM licdata._check_purposes(purposes);
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
		normalised_filter := licdata._check_row_filter(ds, row_filter);
	END IF;
	PERFORM licdata._not_null(valid_from, 'valid_from', true);
	IF valid_until IS NOT NULL AND valid_until <= valid_from THEN
		RAISE EXCEPTION 'valid_until must be after valid_from'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('valid_from is %s and valid_until is %s.', valid_from, valid_until),
				  HINT = 'Pass a valid_until later than valid_from, or NULL for no end.';
	END IF;
	IF max_rows_per_query <= 0 OR max_rows_per_day <= 0 OR max_queries_per_day <= 0 THEN
		RAISE EXCEPTION 'quotas must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a positive limit, or NULL for no limit.';
	END IF;
	PERFORM licdata._not_null(require_consent_ref, 'require_consent_ref', true);
	IF NOT (coalesce(price_per_query, 0) >= 0 AND coalesce(price_per_query, 0) < 'Infinity')
	   OR NOT (coalesce(price_per_row, 0) >= 0 AND coalesce(price_per_row, 0) < 'Infinity') THEN
		RAISE EXCEPTION 'prices must be zero or a positive amount'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('price_per_query is %s and price_per_row is %s.',
								  coalesce(price_per_query::text, 'NULL'), coalesce(price_per_row::text, 'NULL')),
				  HINT = 'Pass zero or a positive amount, or NULL to use the dataset''s price.';
	END IF;
	PERFORM licdata._not_null(mode, 'mode', true);
	IF mode NOT IN ('rows', 'aggregate') THEN
		RAISE EXCEPTION 'invalid licence mode %', quote_literal(mode)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use ''rows'' or ''aggregate''.';
	END IF;
	PERFORM licdata._not_null(min_group_size, 'min_group_size', true);
	IF min_group_size < 2 THEN
		RAISE EXCEPTION 'min_group_size must be at least 2'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use the smallest group size whose aggregates may be released, 10 by default.';
	END IF;
	INSERT INTO licdata.licences AS l (licensee, dataset, purposes, columns, row_filter, valid_from,
				valid_until, max_rows_per_query, max_rows_per_day, max_queries_per_day,
				require_consent_ref, price_per_query, price_per_row, mode, min_group_size)
	VALUES (lic, ds, purposes, columns, row_filter, valid_from, valid_until,
			max_rows_per_query, max_rows_per_day, max_queries_per_day, require_consent_ref,
			price_per_query, price_per_row, mode, min_group_size)
	RETURNING l.id INTO new_id;
	-- The licensee must be able to name the dataset; the licence, not a
	-- GRANT on the table, is what lets it read.
	EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I',
				   (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ds),
				   (SELECT rolname FROM pg_roles WHERE oid = lic));
	RETURN new_id;
END
$$;

CREATE FUNCTION licdata._set_licence_status(licence_id bigint, new_status text) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	cur text;
BEGIN
	PERFORM licdata._not_null(licence_id, 'id');
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
	AS $$ SELECT licdata._set_licence_status(id, 'suspended') $$;
CREATE FUNCTION licdata.resume_licence(id bigint) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT licdata._set_licence_status(id, 'active') $$;
CREATE FUNCTION licdata.revoke_licence(id bigint) RETURNS void
	LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
	AS $$ SELECT licdata._set_licence_status(id, 'revoked') $$;

CREATE FUNCTION licdata._check_mask_target(ds regclass, column_name name, licence_id bigint, purpose text)
	RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	l record;
BEGIN
	PERFORM licdata._published(ds);
	PERFORM licdata._not_null(column_name, 'column_name');
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
		PERFORM licdata._check_purposes(ARRAY[purpose]);
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
	PERFORM licdata._check_mask_target(dataset, column_name, licence_id, purpose);
	PERFORM licdata._not_null(method, 'method');
	PERFORM licdata._not_null(params, 'params', true);
	-- Builds the masking expression the way queries will, so any method,
	-- parameter or type mismatch is reported here and not at query time.
	PERFORM licdata._check_mask(dataset, column_name, method, params::text);
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
	PERFORM licdata._check_mask_target(dataset, column_name, licence_id, purpose);
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
CREATE FUNCTION licdata._table_dropped() RETURNS event_trigger
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
	EXECUTE FUNCTION licdata._table_dropped();

-- schema/30_masks.sql
/*
 * 30_masks.sql -- the masking functions (C, src/mask.c) and key management.
 *
 * The rewrite (src/expr.c) builds every mask as a call to one of these
 * functions over the column, cast back to the column's type, so a masked
 * column keeps its type.  Each is also callable directly.  Keyed methods
 * (pseudonym, fpe, noise) use the key of the licensee the session acts for;
 * operators pass the licensee explicitly to the variants that take one.
 */

CREATE FUNCTION licdata.mask_redact(value anyelement, "with" anyelement DEFAULT NULL)
	RETURNS anyelement LANGUAGE C IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_redact';

CREATE FUNCTION licdata.mask_partial(value text, keep_first integer DEFAULT 1,
									 keep_last integer DEFAULT 1, pad text DEFAULT '*')
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_partial';

CREATE FUNCTION licdata.mask_email(value text)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_email';

CREATE FUNCTION licdata.mask_cn_mobile(value text)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_cn_mobile';

CREATE FUNCTION licdata.mask_cn_id(value text)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_cn_id';

CREATE FUNCTION licdata.mask_cn_name(value text)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_cn_name';

-- Keyed with the acting licensee's key: the same value gives the same token
-- for the same licensee, and different tokens for different licensees.
CREATE FUNCTION licdata.mask_pseudonym(value text, length integer DEFAULT 16)
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_pseudonym';
CREATE FUNCTION licdata.mask_pseudonym(value text, length integer, licensee regrole)
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_pseudonym_for';

CREATE FUNCTION licdata.mask_fpe(value text, alphabet text DEFAULT '0123456789')
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_fpe';
CREATE FUNCTION licdata.mask_fpe(value text, alphabet text, licensee regrole)
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_fpe_for';
CREATE FUNCTION licdata.unmask_fpe(value text, licensee regrole, alphabet text DEFAULT '0123456789')
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_unmask_fpe';

CREATE FUNCTION licdata.mask_date_trunc(value date, unit text)
	RETURNS date LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_date_trunc_date';
CREATE FUNCTION licdata.mask_date_trunc(value timestamp, unit text)
	RETURNS timestamp LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_date_trunc_ts';
CREATE FUNCTION licdata.mask_date_trunc(value timestamptz, unit text)
	RETURNS timestamptz LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_date_trunc_tstz';

CREATE FUNCTION licdata.mask_bucket(value smallint, width smallint)
	RETURNS smallint LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_int2';
CREATE FUNCTION licdata.mask_bucket(value integer, width integer)
	RETURNS integer LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_int4';
CREATE FUNCTION licdata.mask_bucket(value bigint, width bigint)
	RETURNS bigint LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_int8';
CREATE FUNCTION licdata.mask_bucket(value numeric, width numeric)
	RETURNS numeric LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_numeric';
CREATE FUNCTION licdata.mask_bucket(value double precision, width double precision)
	RETURNS double precision LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_float8';
CREATE FUNCTION licdata.mask_bucket(value real, width real)
	RETURNS real LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_float4';

-- Deterministic noise keyed by the acting licensee and the value; relative
-- is a fraction of the value (0.05 = up to 5 %), absolute a fixed amount.
-- Exactly one of the two is given (the other NULL).
CREATE FUNCTION licdata.mask_noise(value integer, relative double precision DEFAULT NULL,
								   absolute double precision DEFAULT NULL)
	RETURNS integer LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_int4';
CREATE FUNCTION licdata.mask_noise(value bigint, relative double precision DEFAULT NULL,
								   absolute double precision DEFAULT NULL)
	RETURNS bigint LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_int8';
CREATE FUNCTION licdata.mask_noise(value numeric, relative double precision DEFAULT NULL,
								   absolute double precision DEFAULT NULL)
	RETURNS numeric LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_numeric';
CREATE FUNCTION licdata.mask_noise(value double precision, relative double precision DEFAULT NULL,
								   absolute double precision DEFAULT NULL)
	RETURNS double precision LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_float8';

-- Applies an operator's own function of one argument; the rewrite calls the
-- function directly, this wrapper is for trying it out.
CREATE FUNCTION licdata.mask_function(value anyelement, name regproc)
	RETURNS anyelement LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_function';

-- Operators only: replace the master key (old pseudonyms and FPE values stop
-- matching; see README).
CREATE FUNCTION licdata.rotate_master_key() RETURNS void
	LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'licdata_rotate_master_key';

REVOKE ALL ON FUNCTION licdata.mask_pseudonym(text, integer, regrole),
	licdata.mask_fpe(text, text, regrole),
	licdata.unmask_fpe(text, regrole, text),
	licdata.rotate_master_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.mask_pseudonym(text, integer, regrole),
	licdata.mask_fpe(text, text, regrole),
	licdata.unmask_fpe(text, regrole, text),
	licdata.rotate_master_key() TO licdata_operator;

-- schema/35_ff1_test.sql
/*
 * 35_ff1_test.sql -- an internal test entry point into the FF1
 * implementation (src/ff1.c), for checking it against the NIST SP 800-38G
 * sample vectors (sql/ff1_vectors.sql).
 *
 * It takes the AES key as an argument and never touches licdata's keys.
 * Superusers only: revoked from PUBLIC and granted to nobody.
 */

-- FF1 over the first radix characters of 0-9a-z with the given AES key
-- (16, 24 or 32 bytes) and tweak; decrypts when decrypt is true.
CREATE FUNCTION licdata._ff1_test(key bytea, tweak bytea, radix integer, input text,
								  decrypt boolean DEFAULT false)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_ff1_test';
COMMENT ON FUNCTION licdata._ff1_test(bytea, bytea, integer, text, boolean) IS
	'licdata internal: FF1 (NIST SP 800-38G) with a given key, for the sample-vector tests';
REVOKE ALL ON FUNCTION licdata._ff1_test(bytea, bytea, integer, text, boolean) FROM PUBLIC;

-- schema/40_records.sql
/*
 * 40_records.sql -- usage (billing) and audit records, and what reads them.
 *
 * Rows arrive only through licdata._flush_record, called by the background
 * worker for each journal record; a trigger refuses every other write, even
 * an operator's.  Each journal record has a unique reference, so a replay
 * after a crash inserts nothing twice.  audit_log is a SHA-256 hash chain:
 * each row's hash covers its content and the previous row's hash.
 */

CREATE TABLE licdata.usage (
	id					bigserial PRIMARY KEY,
	at					timestamptz NOT NULL,
	ended_at			timestamptz,
	licence_id			bigint,
	licensee			regrole,
	dataset				regclass,
	session_user_name	name,
	role_name			name,
	purpose				text,
	consent_ref			text,
	query_id			bigint,
	statement			text,
	statement_is_hash	boolean NOT NULL DEFAULT false,
	rows				bigint NOT NULL,
	rows_delivered		bigint NOT NULL,
	rows_in_functions	bigint NOT NULL,
	rows_aggregated		bigint NOT NULL,
	duration_ms			double precision,
	outcome				text NOT NULL CHECK (outcome IN ('ok', 'error', 'cancelled')),
	sqlstate			text,
	mode				text NOT NULL DEFAULT 'rows',
	amount				numeric NOT NULL,
	journal_ref			text NOT NULL,
	UNIQUE (journal_ref, licence_id, dataset)
);
CREATE INDEX usage_licensee_at ON licdata.usage (licensee, at);
CREATE INDEX usage_licence_at ON licdata.usage (licence_id, at);
COMMENT ON TABLE licdata.usage IS 'Billing: one row per licence used by each licensee statement';
COMMENT ON COLUMN licdata.usage.rows IS 'Rows billed: the larger of rows_delivered and rows_in_functions';

CREATE TABLE licdata.audit_log (
	seq					bigint PRIMARY KEY,
	at					timestamptz NOT NULL,
	role_name			name,
	session_user_name	name,
	licensee			regrole,
	licensee_name		text,
	kind				text NOT NULL CHECK (kind IN ('licensee', 'operator')),
	purpose				text,
	consent_ref			text,
	datasets			regclass[],
	dataset_names		text[],
	licence_ids			bigint[],
	decision			text NOT NULL CHECK (decision IN ('allow', 'deny')),
	sqlstate			text,
	statement			text,
	rows				bigint,
	journal_ref			text NOT NULL UNIQUE,
	prev_hash			bytea NOT NULL,
	hash				bytea NOT NULL
);
CREATE INDEX audit_log_at ON licdata.audit_log (at);
COMMENT ON TABLE licdata.audit_log IS 'Audit trail: one row per statement that reached a dataset, allowed or denied; SHA-256 hash chain';

SELECT pg_catalog.pg_extension_config_dump('licdata.usage', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.usage_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.audit_log', '');

CREATE FUNCTION licdata._records_guard() RETURNS trigger
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_records_guard';
CREATE TRIGGER records_guard BEFORE INSERT OR UPDATE OR DELETE ON licdata.usage
	FOR EACH ROW EXECUTE FUNCTION licdata._records_guard();
CREATE TRIGGER records_guard_truncate BEFORE TRUNCATE ON licdata.usage
	FOR EACH STATEMENT EXECUTE FUNCTION licdata._records_guard();
CREATE TRIGGER records_guard BEFORE INSERT OR UPDATE OR DELETE ON licdata.audit_log
	FOR EACH ROW EXECUTE FUNCTION licdata._records_guard();
CREATE TRIGGER records_guard_truncate BEFORE TRUNCATE ON licdata.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION licdata._records_guard();

GRANT SELECT ON licdata.usage, licdata.audit_log TO licdata_operator, licdata_auditor;

-- The bytes an audit row's hash covers (with the previous hash in front).
CREATE FUNCTION licdata._audit_bytes(a licdata.audit_log) RETURNS bytea
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT a.prev_hash || convert_to(concat_ws('|',
		a.seq::text,
		to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
		quote_nullable(a.role_name::text), quote_nullable(a.session_user_name::text),
		quote_nullable(a.licensee_name), a.kind, quote_nullable(a.purpose),
		quote_nullable(a.consent_ref), quote_nullable(a.dataset_names::text),
		quote_nullable(a.licence_ids::text), a.decision, quote_nullable(a.sqlstate),
		quote_nullable(a.statement), quote_nullable(a.rows::text), a.journal_ref), 'UTF8')
$$;

/*
 * Move one journal record (as jsonb, see src/worker.c) into the tables.
 * Does nothing when the record was moved before.
 */
CREATE FUNCTION licdata._flush_record(r jsonb) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	ref text := r->>'ref';
	kind int := (r->>'kind')::int;
	-- a statement a rows quota stopped after it began: its rows so far are
	-- billed, and its audit row is the denial
	denied boolean := coalesce((r->>'denied')::int, 0) = 1;
	billed bigint := greatest((r->>'rows')::bigint, (r->>'nested_rows')::bigint);
	u jsonb;
	last record;
	a licdata.audit_log;
	ds_oids regclass[] := '{}';
	ds_names text[] := '{}';
	lic_ids bigint[] := '{}';
	lic_name text;
BEGIN
	IF EXISTS (SELECT FROM licdata.audit_log x WHERE x.journal_ref = ref) THEN
		RETURN;
	END IF;
	IF (r->>'licensee')::oid <> 0 THEN
		SELECT rolname INTO lic_name FROM pg_roles WHERE oid = (r->>'licensee')::oid;
		lic_name := coalesce(lic_name, (r->>'licensee'));
	END IF;
	FOR u IN SELECT * FROM jsonb_array_elements(r->'uses') LOOP
		IF (u->>'dataset')::oid <> 0 THEN
			ds_oids := ds_oids || (u->>'dataset')::oid::regclass;
			ds_names := ds_names || coalesce((SELECT n.nspname || '.' || c.relname FROM pg_class c
												JOIN pg_namespace n ON n.oid = c.relnamespace
											   WHERE c.oid = (u->>'dataset')::oid), u->>'dataset');
		END IF;
		IF (u->>'licence_id')::bigint <> 0 THEN
			lic_ids := lic_ids || (u->>'licence_id')::bigint;
		END IF;
		IF kind = 1 THEN
			INSERT INTO licdata.usage (at, ended_at, licence_id, licensee, dataset, session_user_name,
					role_name, purpose, consent_ref, query_id, statement, statement_is_hash, rows,
					rows_delivered, rows_in_functions, rows_aggregated, duration_ms, outcome, sqlstate,
					mode, amount, journal_ref)
			VALUES ((r->>'started_at')::timestamptz, (r->>'ended_at')::timestamptz,
					(u->>'licence_id')::bigint, (r->>'licensee')::oid::regrole,
					(u->>'dataset')::oid::regclass, r->>'session_user_name', r->>'role_name',
					r->>'purpose', r->>'consent_ref', (r->>'query_id')::bigint, r->>'statement',
					(r->>'statement_is_hash')::int = 1, billed, (r->>'rows')::bigint,
					(r->>'nested_rows')::bigint, (r->>'rows_aggregated')::bigint,
					(r->>'duration_ms')::double precision, r->>'outcome', r->>'sqlstate',
					CASE WHEN (u->>'aggregate')::boolean THEN 'aggregate' ELSE 'rows' END,
					(u->>'price_per_query')::numeric + billed * (u->>'price_per_row')::numeric, ref)
			ON CONFLICT DO NOTHING;
		END IF;
	END LOOP;

	SELECT x.seq, x.hash INTO last FROM licdata.audit_log x ORDER BY x.seq DESC LIMIT 1;
	a.seq := coalesce(last.seq, 0) + 1;
	a.prev_hash := coalesce(last.hash, '\x'::bytea);
	a.at := (r->>'started_at')::timestamptz;
	a.role_name := r->>'role_name';
	a.session_user_name := r->>'session_user_name';
	a.licensee := CASE WHEN (r->>'licensee')::oid <> 0 THEN (r->>'licensee')::oid::regrole END;
	a.licensee_name := lic_name;
	a.kind := CASE WHEN kind = 3 THEN 'operator' ELSE 'licensee' END;
	a.purpose := r->>'purpose';
	a.consent_ref := r->>'consent_ref';
	a.datasets := ds_oids;
	a.dataset_names := ds_names;
	a.licence_ids := lic_ids;
	a.decision := CASE WHEN kind = 2 OR denied THEN 'deny' ELSE 'allow' END;
	a.sqlstate := r->>'sqlstate';
	a.statement := r->>'statement';
	a.rows := CASE WHEN kind = 2 THEN 0 ELSE billed END;
	a.journal_ref := ref;
	a.hash := sha256(licdata._audit_bytes(a));
	INSERT INTO licdata.audit_log SELECT a.*;
END
$$;
REVOKE ALL ON FUNCTION licdata._flush_record(jsonb) FROM PUBLIC;

CREATE FUNCTION licdata.flush(timeout_seconds double precision DEFAULT 30) RETURNS boolean
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_flush';
COMMENT ON FUNCTION licdata.flush(double precision) IS
	'Wakes the background worker and waits until every record closed before the call is in licdata.usage and licdata.audit_log';

-- licdata.verify_audit() is defined with the signed checkpoints, in 60_authority.sql.

CREATE FUNCTION licdata.invoice(licensee regrole, period_start timestamptz, period_end timestamptz)
	RETURNS TABLE (licence_id bigint, dataset regclass, purpose text, queries bigint, rows bigint, amount numeric)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM licdata._not_null(licensee, 'licensee');
	PERFORM licdata._not_null(period_start, 'period_start');
	PERFORM licdata._not_null(period_end, 'period_end');
	IF period_end <= period_start THEN
		RAISE EXCEPTION 'period_end must be after period_start'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a period such as now() - interval ''1 month'' to now().';
	END IF;
	RETURN QUERY
		SELECT u.licence_id, u.dataset, u.purpose, count(*)::bigint, sum(u.rows)::bigint, sum(u.amount)
		  FROM licdata.usage u
		 WHERE u.licensee = invoice.licensee AND u.at >= period_start AND u.at < period_end
		 GROUP BY u.licence_id, u.dataset, u.purpose
		 ORDER BY u.licence_id, u.purpose;
END
$$;
REVOKE ALL ON FUNCTION licdata.invoice(regrole, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.invoice(regrole, timestamptz, timestamptz) TO licdata_operator, licdata_auditor;

CREATE FUNCTION licdata._set_records_writable(boolean) RETURNS boolean
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_set_records_writable';
REVOKE ALL ON FUNCTION licdata._set_records_writable(boolean) FROM PUBLIC;

/*
 * Retention: delete usage and audit records older than a point in time.
 * The audit chain stays verifiable from its new first row (whose prev_hash
 * is then the anchor); say so when handing the trail to an auditor.
 */
CREATE FUNCTION licdata.purge_records(older_than timestamptz)
	RETURNS TABLE (usage_deleted bigint, audit_deleted bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	u bigint;
	a bigint;
BEGIN
	PERFORM licdata._not_null(older_than, 'older_than');
	IF older_than > now() - interval '1 day' THEN
		RAISE EXCEPTION 'records younger than one day cannot be purged'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a point in time at least one day ago.';
	END IF;
	-- The write guard is off for this backend only while the deletes run:
	-- an error (a lock or statement timeout, a cancel) must not leave it off.
	PERFORM licdata._set_records_writable(true);
	BEGIN
		DELETE FROM licdata.usage WHERE at < older_than;
		GET DIAGNOSTICS u = ROW_COUNT;
		DELETE FROM licdata.audit_log WHERE at < older_than;
		GET DIAGNOSTICS a = ROW_COUNT;
	EXCEPTION WHEN OTHERS OR query_canceled THEN
		PERFORM licdata._set_records_writable(false);
		RAISE;
	END;
	PERFORM licdata._set_records_writable(false);
	RETURN QUERY SELECT u, a;
END
$$;
REVOKE ALL ON FUNCTION licdata.purge_records(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.purge_records(timestamptz) TO licdata_operator;

/*
 * Move a batch of journal records (a JSON array, in journal order), then sign
 * the audit checkpoints that fell due.
 */
CREATE FUNCTION licdata._flush_records(recs jsonb) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r jsonb;
BEGIN
	FOR r IN SELECT * FROM jsonb_array_elements(recs) LOOP
		PERFORM licdata._flush_record(r);
	END LOOP;
	PERFORM licdata._checkpoint_if_due(current_setting('licdata.checkpoint_interval')::integer);
END
$$;
REVOKE ALL ON FUNCTION licdata._flush_records(jsonb) FROM PUBLIC;

-- schema/50_licensee.sql
/*
 * 50_licensee.sql -- what a licensee sees of licdata: its own licences and
 * usage, the group gate of aggregate licences, and licdata.token.
 */

CREATE FUNCTION licdata._my_licensee() RETURNS regrole
	LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'licdata_my_licensee';

CREATE FUNCTION licdata._quota_used(licence_id bigint, OUT queries bigint, OUT rows bigint)
	LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'licdata_quota_used';

-- The group threshold of aggregate-only licences (inserted by the rewrite).
CREATE FUNCTION licdata._agg_gate(rows bigint, min_group_size integer) RETURNS boolean
	LANGUAGE C VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'licdata_agg_gate';

CREATE VIEW licdata.my_licences WITH (security_barrier) AS
	SELECT l.id, l.dataset, d.description, l.purposes, l.columns, l.row_filter, l.mode,
		   l.min_group_size, l.valid_from, l.valid_until, l.status,
		   (l.status = 'active' AND l.valid_from <= now()
			AND (l.valid_until IS NULL OR l.valid_until > now())) AS usable_now,
		   l.require_consent_ref, l.max_rows_per_query,
		   l.max_rows_per_day, l.max_rows_per_day - q.rows AS rows_left_today,
		   l.max_queries_per_day, l.max_queries_per_day - q.queries AS queries_left_today,
		   coalesce(l.price_per_query, d.price_per_query) AS price_per_query,
		   coalesce(l.price_per_row, d.price_per_row) AS price_per_row
	  FROM licdata.licences l
	  JOIN licdata.datasets d ON d.dataset = l.dataset
	  CROSS JOIN LATERAL licdata._quota_used(l.id) q
	 WHERE l.licensee = licdata._my_licensee();
COMMENT ON VIEW licdata.my_licences IS 'The caller''s licences: datasets, purposes, columns, validity, quotas left today';

CREATE VIEW licdata.my_usage WITH (security_barrier) AS
	SELECT u.id, u.at, u.licence_id, u.dataset, u.session_user_name, u.purpose, u.consent_ref,
		   u.query_id, u.statement, u.rows, u.rows_delivered, u.rows_aggregated, u.duration_ms,
		   u.outcome, u.sqlstate, u.amount
	  FROM licdata.usage u
	 WHERE u.licensee = licdata._my_licensee();
COMMENT ON VIEW licdata.my_usage IS 'The caller''s own usage rows';

GRANT SELECT ON licdata.my_licences, licdata.my_usage TO PUBLIC;

CREATE FUNCTION licdata.token(dataset regclass, column_name name, value text) RETURNS text
	LANGUAGE C STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'licdata_token';
COMMENT ON FUNCTION licdata.token(regclass, name, text) IS
	'This licensee''s masked form of a value it already holds, to look it up in a masked column';

-- schema/60_authority.sql
/*
 * 60_authority.sql -- signed licences: licensing authorities and
 * licdata.install_licence.  The authority signs a licence document offline
 * with tools/licdata-sign; the operator installs it; licdata verifies the
 * Ed25519 signature (libsodium) before granting the licence.
 */

CREATE FUNCTION licdata._check_public_key(public_key text) RETURNS text
	LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'licdata_check_public_key';
CREATE FUNCTION licdata._verify_document(document jsonb, signature text, public_key text) RETURNS boolean
	LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'licdata_verify_document';

CREATE UNIQUE INDEX licences_signature ON licdata.licences (signature) WHERE signature IS NOT NULL;

CREATE FUNCTION licdata.add_authority(name text, public_key text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pk text;
BEGIN
	PERFORM licdata._not_null(name, 'name');
	PERFORM licdata._not_null(public_key, 'public_key');
	IF btrim(name) = '' OR length(name) > 200 THEN
		RAISE EXCEPTION 'authority name must be 1 to 200 characters'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use the authority''s official short name.';
	END IF;
	pk := licdata._check_public_key(public_key);
	IF EXISTS (SELECT FROM licdata.authorities a WHERE a.name = add_authority.name) THEN
		RAISE EXCEPTION 'authority "%" already exists', name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Choose another name; keys of an authority are not replaced in place.';
	END IF;
	INSERT INTO licdata.authorities (name, public_key) VALUES (name, pk);
END
$$;

/*
 * Install a licence the authority signed.  The document (see README) names
 * the authority, the licensee role, the dataset and every grant_licence
 * parameter by its name; unknown keys are refused, as is a document that was
 * installed before.
 */
CREATE FUNCTION licdata.install_licence(document jsonb, signature text) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	auth record;
	k text;
	allowed text[] := ARRAY['authority', 'licensee', 'dataset', 'purposes', 'columns', 'row_filter',
							'valid_from', 'valid_until', 'max_rows_per_query', 'max_rows_per_day',
							'max_queries_per_day', 'require_consent_ref', 'price_per_query',
							'price_per_row', 'mode', 'min_group_size'];
	lic regrole;
	ds regclass;
	new_id bigint;
BEGIN
	PERFORM licdata._not_null(document, 'document');
	PERFORM licdata._not_null(signature, 'signature');
	IF jsonb_typeof(document) <> 'object' THEN
		RAISE EXCEPTION 'licence document must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the document written by "licdata-sign sign".';
	END IF;
	FOR k IN SELECT jsonb_object_keys(document) LOOP
		IF NOT k = ANY (allowed) THEN
			RAISE EXCEPTION 'unknown key "%" in licence document', k
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Known keys: ' || array_to_string(allowed, ', ') || '.';
		END IF;
	END LOOP;
	IF document->>'authority' IS NULL OR document->>'licensee' IS NULL
	   OR document->>'dataset' IS NULL OR document->'purposes' IS NULL THEN
		RAISE EXCEPTION 'licence document lacks authority, licensee, dataset or purposes'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A document names at least its authority, licensee, dataset and purposes.';
	END IF;
	SELECT * INTO auth FROM licdata.authorities a WHERE a.name = document->>'authority';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'unknown licensing authority "%"', document->>'authority'
			USING ERRCODE = 'undefined_object',
				  HINT = 'Register it with licdata.add_authority(name, public_key) first.';
	END IF;
	IF NOT licdata._verify_document(document, signature, auth.public_key) THEN
		RAISE EXCEPTION 'signature of the licence document does not verify with the key of authority "%"', auth.name
			USING ERRCODE = 'invalid_authorization_specification',
				  DETAIL = 'The document was changed after signing, or signed with another key.',
				  HINT = 'Install the document exactly as the authority signed it.';
	END IF;
	IF EXISTS (SELECT FROM licdata.licences l WHERE l.signature = install_licence.signature) THEN
		RAISE EXCEPTION 'this signed licence is already installed'
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Each signed document grants one licence.';
	END IF;
	lic := to_regrole(document->>'licensee');
	IF lic IS NULL THEN
		RAISE EXCEPTION 'role "%" named by the licence document does not exist', document->>'licensee'
			USING ERRCODE = 'undefined_object';
	END IF;
	ds := to_regclass(document->>'dataset');
	IF ds IS NULL THEN
		RAISE EXCEPTION 'dataset "%" named by the licence document does not exist', document->>'dataset'
			USING ERRCODE = 'undefined_table';
	END IF;
	new_id := licdata.grant_licence(
		lic, ds,
		ARRAY(SELECT jsonb_array_elements_text(document->'purposes')),
		columns => CASE WHEN jsonb_typeof(document->'columns') = 'array'
						THEN ARRAY(SELECT jsonb_array_elements_text(document->'columns'))::name[] END,
		row_filter => document->>'row_filter',
		valid_from => coalesce((document->>'valid_from')::timestamptz, now()),
		valid_until => (document->>'valid_until')::timestamptz,
		max_rows_per_query => (document->>'max_rows_per_query')::bigint,
		max_rows_per_day => (document->>'max_rows_per_day')::bigint,
		max_queries_per_day => (document->>'max_queries_per_day')::bigint,
		require_consent_ref => coalesce((document->>'require_consent_ref')::boolean, false),
		price_per_query => (document->>'price_per_query')::numeric,
		price_per_row => (document->>'price_per_row')::numeric,
		mode => coalesce(document->>'mode', 'rows'),
		min_group_size => coalesce((document->>'min_group_size')::integer, 10));
	UPDATE licdata.licences SET authority = auth.name, document = install_licence.document,
		   signature = install_licence.signature
	 WHERE id = new_id;
	RETURN new_id;
END
$$;

REVOKE ALL ON FUNCTION licdata.add_authority(text, text), licdata.install_licence(jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.add_authority(text, text), licdata.install_licence(jsonb, text) TO licdata_operator;

/*
 * Signed audit checkpoints: every licdata.checkpoint_interval audit rows the
 * background worker signs (seq, hash) of the chain's last row with the
 * cluster's audit key (Ed25519, derived from the master key).  An auditor
 * who keeps licdata.audit_public_key() can tell that the chain up to each
 * checkpoint is the one licdata wrote, even after an operator recomputed the
 * hashes of altered rows.
 */
CREATE TABLE licdata.audit_checkpoints (
	seq			bigint PRIMARY KEY,
	at			timestamptz NOT NULL DEFAULT now(),
	hash		bytea NOT NULL,
	public_key	text NOT NULL,
	signature	text NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('licdata.audit_checkpoints', '');
CREATE TRIGGER records_guard BEFORE INSERT OR UPDATE OR DELETE ON licdata.audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION licdata._records_guard();
CREATE TRIGGER records_guard_truncate BEFORE TRUNCATE ON licdata.audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION licdata._records_guard();
GRANT SELECT ON licdata.audit_checkpoints TO licdata_operator, licdata_auditor;

CREATE FUNCTION licdata.audit_public_key() RETURNS text
	LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'licdata_audit_public_key';
CREATE FUNCTION licdata._audit_sign(seq bigint, hash bytea) RETURNS text
	LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'licdata_audit_sign';
CREATE FUNCTION licdata._audit_verify(seq bigint, hash bytea, signature text, public_key text) RETURNS boolean
	LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'licdata_audit_verify';
REVOKE ALL ON FUNCTION licdata._audit_sign(bigint, bytea) FROM PUBLIC;

-- Called by the worker after each batch: sign every checkpoint that fell due
-- (at each multiple of 'every' rows), whatever the batch size.
CREATE FUNCTION licdata._checkpoint_if_due(every integer) RETURNS void
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	last_cp bigint;
	max_seq bigint;
	row record;
BEGIN
	SELECT coalesce(max(seq), 0) INTO last_cp FROM licdata.audit_checkpoints;
	SELECT coalesce(max(seq), 0) INTO max_seq FROM licdata.audit_log;
	FOR row IN SELECT a.seq, a.hash FROM licdata.audit_log a
				WHERE a.seq > last_cp AND a.seq <= max_seq AND (a.seq - last_cp) % every = 0
				ORDER BY a.seq LOOP
		INSERT INTO licdata.audit_checkpoints (seq, hash, public_key, signature)
		VALUES (row.seq, row.hash, licdata.audit_public_key(), licdata._audit_sign(row.seq, row.hash));
	END LOOP;
END
$$;
REVOKE ALL ON FUNCTION licdata._checkpoint_if_due(integer) FROM PUBLIC;


/*
 * verify_audit, with checkpoints: the chain must link and hash, and every
 * checkpoint must carry a valid signature over the chain's hash at its seq,
 * by the public key it names.  An auditor compares those keys with the
 * licdata.audit_public_key() values it recorded (a master key rotation
 * starts a new audit key).
 */
CREATE FUNCTION licdata.verify_audit()
	RETURNS TABLE (ok boolean, records_checked bigint, first_bad_seq bigint)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	a licdata.audit_log;
	prev bytea := NULL;
	expect bigint := NULL;
	n bigint := 0;
	cp record;
BEGIN
	FOR a IN SELECT * FROM licdata.audit_log ORDER BY seq LOOP
		n := n + 1;
		IF (expect IS NOT NULL AND a.seq <> expect)
		   OR (prev IS NOT NULL AND a.prev_hash <> prev)
		   OR (prev IS NULL AND a.seq = 1 AND a.prev_hash <> '\x'::bytea)
		   OR a.hash <> sha256(licdata._audit_bytes(a)) THEN
			RETURN QUERY SELECT false, n, a.seq;
			RETURN;
		END IF;
		prev := a.hash;
		expect := a.seq + 1;
	END LOOP;
	FOR cp IN SELECT c.*, l.hash AS chain_hash FROM licdata.audit_checkpoints c
				LEFT JOIN licdata.audit_log l ON l.seq = c.seq ORDER BY c.seq LOOP
		IF cp.chain_hash IS DISTINCT FROM cp.hash
		   OR NOT licdata._audit_verify(cp.seq, cp.hash, cp.signature, cp.public_key) THEN
			RETURN QUERY SELECT false, n, cp.seq;
			RETURN;
		END IF;
	END LOOP;
	RETURN QUERY SELECT true, n, NULL::bigint;
END
$$;
REVOKE ALL ON FUNCTION licdata.verify_audit() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.verify_audit() TO licdata_operator, licdata_auditor;
