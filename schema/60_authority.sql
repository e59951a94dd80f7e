/*
 * 60_authority.sql -- signed licences: licensing authorities and
 * licdata.install_licence.  The authority signs a licence document offline
 * with tools/licdata-sign; the operator installs it; licdata verifies the
 * Ed25519 signature (libsodium) before granting the licence.
 */

CREATE FUNCTION licdata_internal._check_public_key(public_key text) RETURNS text
	LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'licdata_check_public_key';
CREATE FUNCTION licdata_internal._verify_document(document jsonb, signature text, public_key text) RETURNS boolean
	LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'licdata_verify_document';

CREATE UNIQUE INDEX licences_signature ON licdata.licences (signature) WHERE signature IS NOT NULL;

CREATE FUNCTION licdata.add_authority(name text, public_key text) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	pk text;
BEGIN
	PERFORM licdata_internal._not_null(name, 'name');
	PERFORM licdata_internal._not_null(public_key, 'public_key');
	IF btrim(name) = '' OR length(name) > 200 THEN
		RAISE EXCEPTION 'authority name must be 1 to 200 characters'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Use the authority''s official short name.';
	END IF;
	pk := licdata_internal._check_public_key(public_key);
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
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._records_guard();
CREATE TRIGGER records_guard_truncate BEFORE TRUNCATE ON licdata.audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION licdata_internal._records_guard();
GRANT SELECT ON licdata.audit_checkpoints TO licdata_operator, licdata_auditor;

CREATE FUNCTION licdata.audit_public_key() RETURNS text
	LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'licdata_audit_public_key';
CREATE FUNCTION licdata_internal._audit_sign(seq bigint, hash bytea) RETURNS text
	LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'licdata_audit_sign';
CREATE FUNCTION licdata_internal._audit_verify(seq bigint, hash bytea, signature text, public_key text) RETURNS boolean
	LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'licdata_audit_verify';
REVOKE ALL ON FUNCTION licdata_internal._audit_sign(bigint, bytea) FROM PUBLIC;

-- The background worker signs every checkpoint that falls due (at each
-- multiple of licdata.checkpoint_interval rows) in the batch that reaches it.


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
		   OR a.hash <> sha256(licdata_internal._audit_bytes(a)) THEN
			RETURN QUERY SELECT false, n, a.seq;
			RETURN;
		END IF;
		prev := a.hash;
		expect := a.seq + 1;
	END LOOP;
	FOR cp IN SELECT c.*, l.hash AS chain_hash FROM licdata.audit_checkpoints c
				LEFT JOIN licdata.audit_log l ON l.seq = c.seq ORDER BY c.seq LOOP
		IF cp.chain_hash IS DISTINCT FROM cp.hash
		   OR NOT licdata_internal._audit_verify(cp.seq, cp.hash, cp.signature, cp.public_key) THEN
			RETURN QUERY SELECT false, n, cp.seq;
			RETURN;
		END IF;
	END LOOP;
	RETURN QUERY SELECT true, n, NULL::bigint;
END
$$;
REVOKE ALL ON FUNCTION licdata.verify_audit() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.verify_audit() TO licdata_operator, licdata_auditor;
