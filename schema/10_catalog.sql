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

-- licdata's internals: the functions the rewrite puts into licensed plans
-- (masks, the aggregate gate, the counters), the row-security guard, trigger
-- and event-trigger functions and the helpers of the operator API.  They live
-- outside schema licdata so that \df licdata.* shows the API only.  No
-- USAGE for PUBLIC: nobody but a superuser calls them by name.  A licensee's
-- plan calls them by OID (the library finds them without a privilege check)
-- and PostgreSQL checks only EXECUTE there, which each function keeps as it
-- needs; the API's bodies that name them run as their owner (SECURITY
-- DEFINER).
CREATE SCHEMA licdata_internal;
COMMENT ON SCHEMA licdata_internal IS 'licdata: internal functions, not an API';

-- Refuse to install unless the library was preloaded: without its hooks the
-- licences below would not be enforced.  The C function raises the error
-- with the exact setting to add.
CREATE FUNCTION licdata_internal._assert_preloaded() RETURNS void
	LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'licdata_assert_preloaded';
SELECT licdata_internal._assert_preloaded();

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
	registered_by	name NOT NULL DEFAULT session_user,
	-- 'transaction': licdata.purpose and licdata.consent_ref count only when
	-- set with SET LOCAL in the current transaction (behind poolers).
	purpose_scope	text NOT NULL DEFAULT 'session' CHECK (purpose_scope IN ('session', 'transaction'))
);
CREATE SEQUENCE licdata.licensee_key_id_seq OWNED BY licdata.licensees.key_id;
ALTER TABLE licdata.licensees ALTER COLUMN key_id SET DEFAULT nextval('licdata.licensee_key_id_seq');
COMMENT ON TABLE licdata.licensees IS 'Roles that act as licensees; members of such a role act for it';

CREATE TABLE licdata.licences (
	id					bigserial PRIMARY KEY,
	licensee			regrole NOT NULL REFERENCES licdata.licensees (licensee),
	-- NULL for a data product's licence (then 'product' is set, see 70_products.sql)
	dataset				regclass REFERENCES licdata.datasets (dataset),
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
	signature			text,
	-- licdata.token() calls per UTC day (each is also one row of the statement)
	max_lookups_per_day	bigint CHECK (max_lookups_per_day > 0),
	-- data products (70_products.sql): the product a product licence is for,
	-- and its day quota of calls; price_per_query is then the price per call
	product				regprocedure,
	max_calls_per_day	bigint CHECK (max_calls_per_day > 0),
	-- 'null': columns outside the licence are served as NULL of their type
	-- instead of refusing the query (LD003), so SELECT * and BI previews work.
	unlicensed_columns	text NOT NULL DEFAULT 'refuse' CHECK (unlicensed_columns IN ('refuse', 'null'))
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
CREATE FUNCTION licdata_internal._catalog_changed() RETURNS trigger
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_catalog_changed';

DO $trg$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['datasets', 'licensees', 'licences', 'masks', 'authorities'] LOOP
		EXECUTE format('CREATE TRIGGER catalog_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
						ON licdata.%I FOR EACH STATEMENT EXECUTE FUNCTION licdata_internal._catalog_changed()', t);
	END LOOP;
END
$trg$;
