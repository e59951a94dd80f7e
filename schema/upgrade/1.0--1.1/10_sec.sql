/*
 * 10_sec.sql -- enforcement against a hostile licensee (issue 10, classes
 * 1, 2, 3 and 8).
 */

-- Class 1: every plpgsql/SQL function resolves names under a pinned
-- search_path, whoever calls it.
ALTER FUNCTION licdata_internal._not_null(anyelement, text, boolean) SET search_path = pg_catalog, pg_temp;

-- Class 2: the keyed masks are no oracles.  The rewrite calls the variants
-- with a trailing internal argument (SQL cannot supply one); the variants
-- keyed by the session's licensee are no longer granted to PUBLIC.
CREATE FUNCTION licdata_internal.mask_pseudonym(value text, length integer, internal)
	RETURNS text LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_pseudonym';
CREATE FUNCTION licdata_internal.mask_fpe(value text, alphabet text, internal)
	RETURNS text LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_fpe';
CREATE FUNCTION licdata_internal.mask_noise(value integer, relative double precision,
								   absolute double precision, internal)
	RETURNS integer LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_int4';
CREATE FUNCTION licdata_internal.mask_noise(value bigint, relative double precision,
								   absolute double precision, internal)
	RETURNS bigint LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_int8';
CREATE FUNCTION licdata_internal.mask_noise(value numeric, relative double precision,
								   absolute double precision, internal)
	RETURNS numeric LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_numeric';
CREATE FUNCTION licdata_internal.mask_noise(value double precision, relative double precision,
								   absolute double precision, internal)
	RETURNS double precision LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_float8';
REVOKE ALL ON FUNCTION licdata_internal.mask_pseudonym(text, integer),
	licdata_internal.mask_fpe(text, text),
	licdata_internal.mask_noise(integer, double precision, double precision),
	licdata_internal.mask_noise(bigint, double precision, double precision),
	licdata_internal.mask_noise(numeric, double precision, double precision),
	licdata_internal.mask_noise(double precision, double precision, double precision) FROM PUBLIC;

-- Class 3: each licdata.token() call is one row of its statement; a
-- per-licence lookup quota.  The new grant_licence parameter comes last.
DROP FUNCTION licdata.grant_licence(regrole, regclass, text[], name[], text, timestamptz, timestamptz,
									bigint, bigint, bigint, boolean, numeric, numeric, text, integer);
CREATE OR REPLACE FUNCTION licdata.grant_licence(licensee regrole, dataset regclass, purposes text[],
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
REVOKE ALL ON FUNCTION licdata.grant_licence(regrole, regclass, text[], name[], text, timestamptz,
	timestamptz, bigint, bigint, bigint, boolean, numeric, numeric, text, integer, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.grant_licence(regrole, regclass, text[], name[], text, timestamptz,
	timestamptz, bigint, bigint, bigint, boolean, numeric, numeric, text, integer, text, bigint) TO licdata_operator;

CREATE FUNCTION licdata_internal._lookups_used(licence_id bigint) RETURNS bigint
	LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', 'licdata_lookups_used';
CREATE OR REPLACE VIEW licdata.my_licences WITH (security_barrier) AS
	SELECT l.id, l.dataset, d.description, l.purposes, l.columns, l.row_filter, l.mode,
		   l.min_group_size, l.valid_from, l.valid_until, l.status,
		   (l.status = 'active' AND l.valid_from <= now()
			AND (l.valid_until IS NULL OR l.valid_until > now())) AS usable_now,
		   l.require_consent_ref, l.max_rows_per_query,
		   l.max_rows_per_day, l.max_rows_per_day - q.rows AS rows_left_today,
		   l.max_queries_per_day, l.max_queries_per_day - q.queries AS queries_left_today,
		   coalesce(l.price_per_query, d.price_per_query) AS price_per_query,
		   coalesce(l.price_per_row, d.price_per_row) AS price_per_row,
		   l.unlicensed_columns,
		   l.max_lookups_per_day, l.max_lookups_per_day - licdata_internal._lookups_used(l.id) AS lookups_left_today
	  FROM licdata.licences l
	  JOIN licdata.datasets d ON d.dataset = l.dataset
	  CROSS JOIN LATERAL licdata_internal._quota_used(l.id) q
	 WHERE l.licensee = licdata_internal._my_licensee();

-- Class 8: arguments that name nothing (regrole/regclass 0, the OID of a
-- dropped role or table) are refused with a clear error.
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
CREATE OR REPLACE FUNCTION licdata_internal._published(ds regclass) RETURNS void
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
-- (licdata.publish: its final form is made by 70_bi.sql)
-- (licdata.register_licensee: its final form is made by 70_bi.sql)
-- (licdata.invoice: its final form is made by 60_price.sql)
ALTER FUNCTION licdata_internal._quota_used(bigint) STRICT;

-- Class 3 (continued): token() is volatile (it meters), so the planner never
-- evaluates it while estimating.
ALTER FUNCTION licdata.token(regclass, name, text) VOLATILE;
