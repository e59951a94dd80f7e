/*
 * 10_sec.sql -- enforcement against a hostile licensee (issue 10, classes
 * 1, 2, 3 and 8).
 */

-- Class 1: every plpgsql/SQL function resolves names under a pinned
-- search_path, whoever calls it.
ALTER FUNCTION licdata._not_null(anyelement, text, boolean) SET search_path = pg_catalog, pg_temp;

-- Class 2: the keyed masks are no oracles.  The rewrite calls the variants
-- with a trailing internal argument (SQL cannot supply one); the variants
-- keyed by the session's licensee are no longer granted to PUBLIC.
CREATE FUNCTION licdata.mask_pseudonym(value text, length integer, internal)
	RETURNS text LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_pseudonym';
CREATE FUNCTION licdata.mask_fpe(value text, alphabet text, internal)
	RETURNS text LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_fpe';
CREATE FUNCTION licdata.mask_noise(value integer, relative double precision,
								   absolute double precision, internal)
	RETURNS integer LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_int4';
CREATE FUNCTION licdata.mask_noise(value bigint, relative double precision,
								   absolute double precision, internal)
	RETURNS bigint LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_int8';
CREATE FUNCTION licdata.mask_noise(value numeric, relative double precision,
								   absolute double precision, internal)
	RETURNS numeric LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_numeric';
CREATE FUNCTION licdata.mask_noise(value double precision, relative double precision,
								   absolute double precision, internal)
	RETURNS double precision LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_float8';
REVOKE ALL ON FUNCTION licdata.mask_pseudonym(text, integer),
	licdata.mask_fpe(text, text),
	licdata.mask_noise(integer, double precision, double precision),
	licdata.mask_noise(bigint, double precision, double precision),
	licdata.mask_noise(numeric, double precision, double precision),
	licdata.mask_noise(double precision, double precision, double precision) FROM PUBLIC;
