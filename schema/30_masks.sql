/*
 * 30_masks.sql -- the masking functions (C, src/mask.c) and key management.
 *
 * The rewrite (src/expr.c) builds every mask as a call to one of these
 * functions over the column, cast back to the column's type, so a masked
 * column keeps its type.  The unkeyed ones are also callable directly.
 *
 * Keyed methods (pseudonym, fpe, noise) use the key of the licensee the
 * session acts for.  A licensee must not be able to call them on values of
 * its choosing: that would be an undecided, unmetered oracle (tabulate the
 * pseudonyms of every ID number, invert deterministic noise over a range).
 * The rewrite calls the variants with a trailing "internal" argument, which
 * SQL cannot supply (no SQL expression has type internal, not even NULL);
 * the variants without it are not granted to PUBLIC.  Licensees reach keyed
 * values only through their queries and licdata.token(), decided and
 * metered.  Operators pass the licensee explicitly to the variants that
 * take one.
 */

CREATE FUNCTION licdata_internal.mask_redact(value anyelement, "with" anyelement DEFAULT NULL)
	RETURNS anyelement LANGUAGE C IMMUTABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_redact';

CREATE FUNCTION licdata_internal.mask_partial(value text, keep_first integer DEFAULT 1,
									 keep_last integer DEFAULT 1, pad text DEFAULT '*')
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_partial';

CREATE FUNCTION licdata_internal.mask_email(value text)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_email';

CREATE FUNCTION licdata_internal.mask_cn_mobile(value text)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_cn_mobile';

CREATE FUNCTION licdata_internal.mask_cn_id(value text)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_cn_id';

CREATE FUNCTION licdata_internal.mask_cn_name(value text)
	RETURNS text LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_cn_name';

-- Keyed with the acting licensee's key: the same value gives the same token
-- for the same licensee, and different tokens for different licensees.
CREATE FUNCTION licdata_internal.mask_pseudonym(value text, length integer DEFAULT 16)
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_pseudonym';
CREATE FUNCTION licdata.mask_pseudonym(value text, length integer, licensee regrole)
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_pseudonym_for';

CREATE FUNCTION licdata_internal.mask_pseudonym(value text, length integer, internal)
	RETURNS text LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_pseudonym';

CREATE FUNCTION licdata_internal.mask_fpe(value text, alphabet text DEFAULT '0123456789')
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_fpe';
CREATE FUNCTION licdata.mask_fpe(value text, alphabet text, licensee regrole)
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_fpe_for';
CREATE FUNCTION licdata_internal.mask_fpe(value text, alphabet text, internal)
	RETURNS text LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_fpe';
CREATE FUNCTION licdata.unmask_fpe(value text, licensee regrole, alphabet text DEFAULT '0123456789')
	RETURNS text LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_unmask_fpe';

CREATE FUNCTION licdata_internal.mask_date_trunc(value date, unit text)
	RETURNS date LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_date_trunc_date';
CREATE FUNCTION licdata_internal.mask_date_trunc(value timestamp, unit text)
	RETURNS timestamp LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_date_trunc_ts';
CREATE FUNCTION licdata_internal.mask_date_trunc(value timestamptz, unit text)
	RETURNS timestamptz LANGUAGE C STABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_date_trunc_tstz';

CREATE FUNCTION licdata_internal.mask_bucket(value smallint, width smallint)
	RETURNS smallint LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_int2';
CREATE FUNCTION licdata_internal.mask_bucket(value integer, width integer)
	RETURNS integer LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_int4';
CREATE FUNCTION licdata_internal.mask_bucket(value bigint, width bigint)
	RETURNS bigint LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_int8';
CREATE FUNCTION licdata_internal.mask_bucket(value numeric, width numeric)
	RETURNS numeric LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_numeric';
CREATE FUNCTION licdata_internal.mask_bucket(value double precision, width double precision)
	RETURNS double precision LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_float8';
CREATE FUNCTION licdata_internal.mask_bucket(value real, width real)
	RETURNS real LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_bucket_float4';

-- Deterministic noise keyed by the acting licensee and the value; relative
-- is a fraction of the value (0.05 = up to 5 %), absolute a fixed amount.
-- Exactly one of the two is given (the other NULL).
CREATE FUNCTION licdata_internal.mask_noise(value integer, relative double precision DEFAULT NULL,
								   absolute double precision DEFAULT NULL)
	RETURNS integer LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_int4';
CREATE FUNCTION licdata_internal.mask_noise(value bigint, relative double precision DEFAULT NULL,
								   absolute double precision DEFAULT NULL)
	RETURNS bigint LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_int8';
CREATE FUNCTION licdata_internal.mask_noise(value numeric, relative double precision DEFAULT NULL,
								   absolute double precision DEFAULT NULL)
	RETURNS numeric LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_numeric';
CREATE FUNCTION licdata_internal.mask_noise(value double precision, relative double precision DEFAULT NULL,
								   absolute double precision DEFAULT NULL)
	RETURNS double precision LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_noise_float8';

-- The rewrite's entry points of the keyed masks: the internal argument
-- (always NULL: no SQL expression has type internal) makes them uncallable
-- from SQL; they are not strict so that the NULL does not stop them.
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

-- Applies an operator's own function of one argument; the rewrite calls the
-- function directly, this wrapper is for trying it out.
CREATE FUNCTION licdata_internal.mask_function(value anyelement, name regproc)
	RETURNS anyelement LANGUAGE C STABLE PARALLEL SAFE
	AS 'MODULE_PATHNAME', 'licdata_mask_function';

-- Operators only: replace the master key (old pseudonyms and FPE values stop
-- matching; see README).
CREATE FUNCTION licdata.rotate_master_key() RETURNS void
	LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'licdata_rotate_master_key';

-- The keyed variants that take the acting licensee's key from the session
-- are not for licensees (see the top of this file).
REVOKE ALL ON FUNCTION licdata_internal.mask_pseudonym(text, integer),
	licdata_internal.mask_fpe(text, text),
	licdata_internal.mask_noise(integer, double precision, double precision),
	licdata_internal.mask_noise(bigint, double precision, double precision),
	licdata_internal.mask_noise(numeric, double precision, double precision),
	licdata_internal.mask_noise(double precision, double precision, double precision) FROM PUBLIC;

REVOKE ALL ON FUNCTION licdata.mask_pseudonym(text, integer, regrole),
	licdata.mask_fpe(text, text, regrole),
	licdata.unmask_fpe(text, regrole, text),
	licdata.rotate_master_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.mask_pseudonym(text, integer, regrole),
	licdata.mask_fpe(text, text, regrole),
	licdata.unmask_fpe(text, regrole, text),
	licdata.rotate_master_key() TO licdata_operator;
