/*
 * 70_bi.sql -- 1.0 -> 1.1: clients, BI tools and poolers.
 *
 *	- licdata.licensees.purpose_scope, register_licensee(..., purpose_scope)
 *	  and alter_licensee: purpose and consent reference counted only when set
 *	  for the transaction (connection poolers);
 *	- licdata.licences.unlicensed_columns, grant_licence(..., unlicensed_columns)
 *	  (also a key of signed licence documents), my_licences shows it;
 *	- licensees' SELECT privileges follow their licences (schema/70_clients.sql),
 *	  brought in step here for the licences a 1.0 installation holds;
 *	- publish grants licdata_operator USAGE on the dataset's schema, granted
 *	  here for the datasets already published.
 * Function texts are those of schema/NN_*.sql, so an updated installation and
 * a fresh 1.1 install have the same objects.
 */


CREATE OR REPLACE FUNCTION licdata.publish(dataset regclass, description text DEFAULT NULL,
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

CREATE OR REPLACE FUNCTION licdata.unpublish(dataset regclass) RETURNS void
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

-- new signatures: drop the 1.0 functions, create the 1.1 ones
DROP FUNCTION licdata.register_licensee(regrole, text, text);
CREATE OR REPLACE FUNCTION licdata.register_licensee(licensee regrole, org_name text, org_code text DEFAULT NULL,
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

-- (licdata.grant_licence: the 1.0 signature was dropped and the final form made by 10_sec.sql)

REVOKE ALL ON FUNCTION licdata.register_licensee(regrole, text, text, text),
	licdata.grant_licence(regrole, regclass, text[], name[], text, timestamptz, timestamptz,
						  bigint, bigint, bigint, boolean, numeric, numeric, text, integer, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.register_licensee(regrole, text, text, text),
	licdata.grant_licence(regrole, regclass, text[], name[], text, timestamptz, timestamptz,
						  bigint, bigint, bigint, boolean, numeric, numeric, text, integer, text, bigint) TO licdata_operator;

CREATE OR REPLACE FUNCTION licdata.install_licence(document jsonb, signature text) RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	auth record;
	k text;
	allowed text[] := ARRAY['authority', 'licensee', 'dataset', 'purposes', 'columns', 'row_filter',
							'valid_from', 'valid_until', 'max_rows_per_query', 'max_rows_per_day',
							'max_queries_per_day', 'require_consent_ref', 'price_per_query',
							'price_per_row', 'mode', 'min_group_size', 'unlicensed_columns'];
	lic regrole;
	ds regclass;
	new_id bigint;
BEGIN
	PERFORM licdata_internal._not_null(document, 'document');
	PERFORM licdata_internal._not_null(signature, 'signature');
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
	IF NOT licdata_internal._verify_document(document, signature, auth.public_key) THEN
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
		min_group_size => coalesce((document->>'min_group_size')::integer, 10),
		unlicensed_columns => coalesce(document->>'unlicensed_columns', 'refuse'));
	UPDATE licdata.licences SET authority = auth.name, document = install_licence.document,
		   signature = install_licence.signature
	 WHERE id = new_id;
	RETURN new_id;
END
$$;

-- (my_licences: its final form is made by 51_prod_products.sql)

-- (the privilege objects: 71_bi_clients.sql, the same file as schema/70_clients.sql)
