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
