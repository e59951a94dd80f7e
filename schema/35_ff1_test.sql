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
CREATE FUNCTION licdata_internal._ff1_test(key bytea, tweak bytea, radix integer, input text,
								  decrypt boolean DEFAULT false)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_ff1_test';
COMMENT ON FUNCTION licdata_internal._ff1_test(bytea, bytea, integer, text, boolean) IS
	'licdata internal: FF1 (NIST SP 800-38G) with a given key, for the sample-vector tests';
REVOKE ALL ON FUNCTION licdata_internal._ff1_test(bytea, bytea, integer, text, boolean) FROM PUBLIC;
