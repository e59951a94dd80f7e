/*
 * 70_products.sql -- data products: an operator's SQL or PL/pgSQL function
 * licensed, decided, metered and audited per call (src/product.c).  Inside
 * its body the datasets it reads are read as published; outside it the
 * licensee's own licences apply.
 *
 * A product licence is a row of licdata.licences with 'product' set and
 * 'dataset' NULL; its price_per_query column is the price per call.  So
 * suspend_licence, resume_licence, revoke_licence, invoice, usage and audit
 * work on it as on a dataset licence.
 *
 * This file is also the upgrade step's second half
 * (schema/upgrade/1.0--1.1/51_prod_products.sql links to it): it runs after
 * the columns licdata.licences.product, .max_calls_per_day and
 * licdata.usage.calls exist.
 */

CREATE TABLE licdata.products (
	product			regprocedure PRIMARY KEY,
	description		text,
	price_per_call	numeric NOT NULL DEFAULT 0 CHECK (price_per_call >= 0),
	price_per_row	numeric NOT NULL DEFAULT 0 CHECK (price_per_row >= 0),
	-- replace errors raised inside the product by a generic one (data values
	-- can be in an error message), and send no notices from inside it
	hide_errors		boolean NOT NULL DEFAULT true,
	-- the function's search_path setting as publish_product pinned it
	-- (an element of pg_proc.proconfig); a call is refused if it changed
	search_path		text NOT NULL,
	published_at	timestamptz NOT NULL DEFAULT now(),
	published_by	name NOT NULL DEFAULT session_user,
	-- set by licdata.unpublish_product; the row stays so that licences and
	-- usage keep naming the product
	unpublished_at	timestamptz
);
COMMENT ON TABLE licdata.products IS 'Functions published as data products: licensed, metered and audited per call';
SELECT pg_catalog.pg_extension_config_dump('licdata.products', '');
GRANT SELECT ON licdata.products TO licdata_operator, licdata_auditor;
CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON licdata.products
	FOR EACH STATEMENT EXECUTE FUNCTION licdata_internal._catalog_changed();

ALTER TABLE licdata.licences
	ADD CONSTRAINT licences_product_fkey FOREIGN KEY (product) REFERENCES licdata.products (product),
	ADD CONSTRAINT licences_dataset_or_product CHECK ((dataset IS NULL) <> (product IS NULL));
CREATE INDEX licences_licensee_product ON licdata.licences (licensee, product);

-- Is the role an operator (a superuser or a member of licdata_operator)?
CREATE FUNCTION licdata_internal._is_operator(r oid) RETURNS boolean
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT EXISTS (SELECT FROM pg_roles x WHERE x.oid = r AND x.rolsuper)
		OR pg_has_role(r, 'licdata_operator', 'USAGE')
$$;
REVOKE ALL ON FUNCTION licdata_internal._is_operator(oid) FROM PUBLIC;

/*
 * Check a product's search_path setting ('search_path=a, b, pg_temp' as in
 * pg_proc.proconfig): every schema in it must be pg_catalog or a schema an
 * operator owns and only operators may create objects in, and pg_temp must
 * be named, last (else the session's temporary tables come first).
 */
CREATE FUNCTION licdata_internal._check_product_path(fn regprocedure, setting text) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	entries text[] := regexp_split_to_array(substr(setting, length('search_path=') + 1), '\s*,\s*');
	e text;
	i int := 0;
	nsp oid;
BEGIN
	FOREACH e IN ARRAY entries LOOP
		i := i + 1;
		e := btrim(e, ' "');
		IF e = 'pg_temp' THEN
			IF i <> cardinality(entries) THEN
				RAISE EXCEPTION 'the search_path of product % names pg_temp before other schemas', fn
					USING ERRCODE = 'invalid_parameter_value',
						  DETAIL = 'A licensee''s temporary objects would then come before the product''s own.',
						  HINT = format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp; qualify other names with their schema.', fn);
			END IF;
			CONTINUE;
		END IF;
		IF e = 'pg_catalog' THEN
			CONTINUE;
		END IF;
		SELECT n.oid INTO nsp FROM pg_namespace n WHERE n.nspname = e;
		IF nsp IS NULL OR NOT licdata_internal._is_operator((SELECT n.nspowner FROM pg_namespace n WHERE n.oid = nsp))
		   OR EXISTS (SELECT FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
					   WHERE n.oid = nsp AND a.privilege_type = 'CREATE'
						 AND (a.grantee = 0 OR NOT licdata_internal._is_operator(a.grantee))) THEN
			RAISE EXCEPTION 'the search_path of product % names %, which is not a schema only operators can create objects in', fn, quote_ident(e)
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'A name in the product''s body could then be redirected by someone else''s object.',
					  HINT = format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp; qualify other names with their schema.', fn);
		END IF;
	END LOOP;
	IF entries[cardinality(entries)] IS DISTINCT FROM 'pg_temp' THEN
		RAISE EXCEPTION 'the search_path of product % does not end with pg_temp', fn
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Without it, a licensee''s temporary tables are searched first.',
				  HINT = format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp; qualify other names with their schema.', fn);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION licdata_internal._check_product_path(regprocedure, text) FROM PUBLIC;

CREATE FUNCTION licdata.publish_product(product regprocedure, description text DEFAULT NULL,
										price_per_call numeric DEFAULT 0, price_per_row numeric DEFAULT 0,
										hide_errors boolean DEFAULT true)
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	fn regprocedure := product;
	f record;
	t oid;
	setting text;
BEGIN
	PERFORM licdata_internal._not_null(fn, 'product');
	PERFORM licdata_internal._not_null(price_per_call, 'price_per_call', true);
	PERFORM licdata_internal._not_null(price_per_row, 'price_per_row', true);
	PERFORM licdata_internal._not_null(hide_errors, 'hide_errors', true);
	SELECT p.prokind, p.proowner, p.provolatile, p.proparallel, p.proconfig, p.proargtypes,
		   p.prorettype, l.lanname INTO f
	  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = fn;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'function % does not exist', fn
			USING ERRCODE = 'undefined_function', HINT = 'Create the function first.';
	END IF;
	IF f.prokind <> 'f' THEN
		RAISE EXCEPTION 'cannot publish % as a product: it is not a plain function', fn
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Publish a function (not a procedure, aggregate or window function).';
	END IF;
	IF f.lanname NOT IN ('sql', 'plpgsql') THEN
		RAISE EXCEPTION 'cannot publish % as a product: it is written in %', fn, f.lanname
			USING ERRCODE = 'feature_not_supported',
				  DETAIL = 'licdata serves products written in SQL or PL/pgSQL only.',
				  HINT = 'Write the product in SQL or PL/pgSQL.';
	END IF;
	IF NOT licdata_internal._is_operator(f.proowner) THEN
		RAISE EXCEPTION 'cannot publish % as a product: its owner % is not an operator', fn, f.proowner::regrole
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A product''s body reads datasets as published, as its owner.',
				  HINT = format('ALTER FUNCTION %s OWNER TO an operator (a superuser or a member of licdata_operator).', fn);
	END IF;
	FOREACH t IN ARRAY f.proargtypes::oid[] LOOP
		IF (SELECT typtype FROM pg_type WHERE oid = t) = 'p' THEN
			RAISE EXCEPTION 'cannot publish % as a product: it takes an argument of pseudo-type %', fn, t::regtype
				USING ERRCODE = 'invalid_function_definition',
					  DETAIL = 'A polymorphic or pseudo-type argument would run the caller''s types'' functions inside the product.',
					  HINT = 'Declare every argument with a concrete type.';
		END IF;
		IF NOT licdata_internal._is_operator((SELECT typowner FROM pg_type WHERE oid = t)) THEN
			RAISE EXCEPTION 'cannot publish % as a product: argument type % is not owned by an operator', fn, t::regtype
				USING ERRCODE = 'invalid_function_definition',
					  DETAIL = 'The type''s functions (a domain''s checks) would run inside the product.',
					  HINT = 'Use built-in types or types an operator owns.';
		END IF;
	END LOOP;
	IF f.prorettype = 'refcursor'::regtype THEN
		RAISE EXCEPTION 'cannot publish % as a product: it returns a cursor', fn
			USING ERRCODE = 'invalid_function_definition',
				  DETAIL = 'Rows fetched from a cursor after the call would be neither the product''s result nor metered.',
				  HINT = 'Return the rows (RETURNS TABLE or SETOF) instead.';
	END IF;
	IF NOT (price_per_call >= 0 AND price_per_call < 'Infinity' AND price_per_row >= 0 AND price_per_row < 'Infinity') THEN
		RAISE EXCEPTION 'prices must be zero or a positive amount'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('price_per_call is %s and price_per_row is %s.', price_per_call, price_per_row),
				  HINT = 'Pass zero or a positive amount.';
	END IF;
	IF EXISTS (SELECT FROM licdata.products p WHERE p.product = fn AND p.unpublished_at IS NULL) THEN
		RAISE EXCEPTION 'product % is already published', fn
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Unpublish it first with licdata.unpublish_product to publish it anew.';
	END IF;

	-- the body runs with a pinned search_path; licdata pins one if it has none
	SELECT c INTO setting FROM unnest(f.proconfig) c WHERE c LIKE 'search\_path=%';
	IF setting IS NULL THEN
		EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', fn);
		RAISE NOTICE 'licdata: product % now runs with search_path = pg_catalog, pg_temp', fn;
	ELSE
		PERFORM licdata_internal._check_product_path(fn, setting);
	END IF;
	-- never evaluated at plan time, nor in a parallel worker (unmetered)
	IF f.provolatile <> 'v' OR f.proparallel <> 'u' THEN
		EXECUTE format('ALTER FUNCTION %s VOLATILE PARALLEL UNSAFE', fn);
		RAISE NOTICE 'licdata: product % is now VOLATILE PARALLEL UNSAFE', fn;
	END IF;
	SELECT c INTO setting FROM pg_proc p, unnest(p.proconfig) c WHERE p.oid = fn AND c LIKE 'search\_path=%';

	INSERT INTO licdata.products AS p (product, description, price_per_call, price_per_row, hide_errors, search_path)
	VALUES (fn, description, price_per_call, price_per_row, hide_errors, setting)
	ON CONFLICT ON CONSTRAINT products_pkey DO UPDATE
	   SET description = excluded.description, price_per_call = excluded.price_per_call,
		   price_per_row = excluded.price_per_row, hide_errors = excluded.hide_errors,
		   search_path = excluded.search_path, published_at = now(), published_by = session_user,
		   unpublished_at = NULL;
END
$$;

CREATE FUNCTION licdata.unpublish_product(product regprocedure) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	fn regprocedure := product;
	live bigint;
BEGIN
	PERFORM licdata_internal._not_null(fn, 'product');
	IF NOT EXISTS (SELECT FROM licdata.products p WHERE p.product = fn AND p.unpublished_at IS NULL) THEN
		RAISE EXCEPTION 'function % is not a published product', fn
			USING ERRCODE = 'undefined_object',
				  HINT = 'See licdata.products for the published products.';
	END IF;
	SELECT count(*) INTO live FROM licdata.licences l WHERE l.product = fn AND l.status <> 'revoked';
	IF live > 0 THEN
		RAISE EXCEPTION 'product % has % licence(s) that are not revoked', fn, live
			USING ERRCODE = 'dependent_objects_still_exist',
				  HINT = 'Revoke its licences with licdata.revoke_licence first.';
	END IF;
	UPDATE licdata.products p SET unpublished_at = now() WHERE p.product = fn;
END
$$;

CREATE FUNCTION licdata.grant_product_licence(licensee regrole, product regprocedure, purposes text[],
											  valid_from timestamptz DEFAULT now(),
											  valid_until timestamptz DEFAULT NULL,
											  max_calls_per_day bigint DEFAULT NULL,
											  require_consent_ref boolean DEFAULT false,
											  price_per_call numeric DEFAULT NULL,
											  price_per_row numeric DEFAULT NULL)
	RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	fn regprocedure := product;
	lic regrole := licensee;
	acts_for text;
	new_id bigint;
BEGIN
	PERFORM licdata_internal._not_null(lic, 'licensee');
	PERFORM licdata_internal._not_null(fn, 'product');
	IF NOT EXISTS (SELECT FROM licdata.products p WHERE p.product = fn AND p.unpublished_at IS NULL) THEN
		RAISE EXCEPTION 'function % is not a published product', fn
			USING ERRCODE = 'undefined_object',
				  HINT = format('Publish it first with licdata.publish_product(%L).', fn::text);
	END IF;
	IF NOT EXISTS (SELECT FROM licdata.licensees l WHERE l.licensee = lic) THEN
		SELECT string_agg(l.licensee::text, ', ' ORDER BY l.licensee::text) INTO acts_for
		  FROM licdata.licensees l JOIN pg_roles lr ON lr.oid = l.licensee
		 WHERE pg_has_role(lic, l.licensee, 'MEMBER');
		RAISE EXCEPTION 'role % is not a registered licensee', lic
			USING ERRCODE = 'undefined_object',
				  DETAIL = CASE WHEN acts_for IS NOT NULL THEN format('It acts for licensee %s.', acts_for) END,
				  HINT = CASE WHEN acts_for IS NOT NULL THEN 'Grant the licence to the licensee its members act for.'
							  ELSE 'Register it first with licdata.register_licensee.' END;
	END IF;
	PERFORM licdata_internal._check_purposes(purposes);
	PERFORM licdata_internal._not_null(valid_from, 'valid_from', true);
	IF valid_until IS NOT NULL AND valid_until <= valid_from THEN
		RAISE EXCEPTION 'valid_until must be after valid_from'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('valid_from is %s and valid_until is %s.', valid_from, valid_until),
				  HINT = 'Pass a valid_until later than valid_from, or NULL for no end.';
	END IF;
	IF max_calls_per_day <= 0 THEN
		RAISE EXCEPTION 'quotas must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a positive limit, or NULL for no limit.';
	END IF;
	PERFORM licdata_internal._not_null(require_consent_ref, 'require_consent_ref', true);
	IF NOT (coalesce(price_per_call, 0) >= 0 AND coalesce(price_per_call, 0) < 'Infinity')
	   OR NOT (coalesce(price_per_row, 0) >= 0 AND coalesce(price_per_row, 0) < 'Infinity') THEN
		RAISE EXCEPTION 'prices must be zero or a positive amount'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('price_per_call is %s and price_per_row is %s.',
								  coalesce(price_per_call::text, 'NULL'), coalesce(price_per_row::text, 'NULL')),
				  HINT = 'Pass zero or a positive amount, or NULL to use the product''s price.';
	END IF;
	INSERT INTO licdata.licences AS l (licensee, dataset, product, purposes, valid_from, valid_until,
				max_calls_per_day, require_consent_ref, price_per_query, price_per_row)
	VALUES (lic, NULL, fn, purposes, valid_from, valid_until, max_calls_per_day,
			require_consent_ref, price_per_call, price_per_row)
	RETURNING l.id INTO new_id;
	-- The licensee must be able to name and call the function; the licence
	-- is what lets the call run.
	EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I',
				   (SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.oid = fn),
				   (SELECT rolname FROM pg_roles WHERE oid = lic));
	EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', fn, (SELECT rolname FROM pg_roles WHERE oid = lic));
	RETURN new_id;
END
$$;

DO $grants$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_proc p
			  WHERE p.pronamespace = 'licdata'::regnamespace
				AND p.proname IN ('publish_product', 'unpublish_product', 'grant_product_licence')
	LOOP
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
		EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO licdata_operator', f);
	END LOOP;
END
$grants$;

/*
 * A published product whose function is dropped is unpublished and its
 * licences revoked, so that a function created later with the same OID is
 * never taken for the product.
 */
CREATE FUNCTION licdata_internal._product_dropped() RETURNS event_trigger
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	obj record;
BEGIN
	FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE object_type = 'function' LOOP
		IF EXISTS (SELECT FROM licdata.products p WHERE p.product::oid = obj.objid AND p.unpublished_at IS NULL) THEN
			UPDATE licdata.licences SET status = 'revoked', status_changed_at = now()
			 WHERE product::oid = obj.objid AND status <> 'revoked';
			UPDATE licdata.products SET unpublished_at = now() WHERE product::oid = obj.objid;
			RAISE NOTICE 'licdata: product % was dropped; it is unpublished and its licences are revoked',
				obj.object_identity;
		END IF;
	END LOOP;
END
$$;
CREATE EVENT TRIGGER licdata_product_dropped ON sql_drop
	EXECUTE FUNCTION licdata_internal._product_dropped();

-- What a licensee sees: its product licences next to its dataset licences.
CREATE OR REPLACE VIEW licdata.my_licences WITH (security_barrier) AS
	SELECT l.id, l.dataset, coalesce(d.description, p.description) AS description, l.purposes,
		   l.columns, l.row_filter, l.mode,
		   l.min_group_size, l.valid_from, l.valid_until, l.status,
		   (l.status = 'active' AND l.valid_from <= now()
			AND (l.valid_until IS NULL OR l.valid_until > now())) AS usable_now,
		   l.require_consent_ref, l.max_rows_per_query,
		   l.max_rows_per_day, l.max_rows_per_day - q.rows AS rows_left_today,
		   l.max_queries_per_day, l.max_queries_per_day - q.queries AS queries_left_today,
		   CASE WHEN l.product IS NULL THEN coalesce(l.price_per_query, d.price_per_query) END AS price_per_query,
		   coalesce(l.price_per_row, d.price_per_row, p.price_per_row) AS price_per_row,
		   l.unlicensed_columns,
		   l.max_lookups_per_day, l.max_lookups_per_day - licdata_internal._lookups_used(l.id) AS lookups_left_today,
		   l.product,
		   CASE WHEN l.product IS NULL THEN 'dataset' ELSE 'product' END AS kind,
		   l.max_calls_per_day,
		   l.max_calls_per_day - CASE WHEN l.product IS NOT NULL THEN q.queries END AS calls_left_today,
		   CASE WHEN l.product IS NOT NULL THEN coalesce(l.price_per_query, p.price_per_call) END AS price_per_call
	  FROM licdata.licences l
	  LEFT JOIN licdata.datasets d ON d.dataset = l.dataset
	  LEFT JOIN licdata.products p ON p.product = l.product
	  CROSS JOIN LATERAL licdata_internal._quota_used(l.id) q
	 WHERE l.licensee = licdata_internal._my_licensee();
COMMENT ON VIEW licdata.my_licences IS 'The caller''s licences: datasets and products, purposes, columns, validity, quotas left today';

CREATE OR REPLACE VIEW licdata.my_usage WITH (security_barrier) AS
	SELECT u.id, u.at, u.licence_id, u.dataset, u.session_user_name, u.purpose, u.consent_ref,
		   u.query_id, u.statement, u.rows, u.rows_delivered, u.rows_aggregated, u.duration_ms,
		   u.outcome, u.sqlstate, u.amount, u.calls
	  FROM licdata.usage u
	 WHERE u.licensee = licdata_internal._my_licensee();

/*
 * The flusher (worker.c) writes a product's use as one usage row per
 * statement and product licence, with its calls and the rows it returned;
 * the datasets read inside a product are named in the audit row and not
 * billed.
 */
