--
-- validation: every operator API function refuses bad input with a clear
-- error (message, SQLSTATE, hint) and changes nothing.
--
-- Each bad call runs through valid.try(), which reports the error; after
-- each group the catalog (the five catalog tables, the published tables'
-- row-security state, policies and privileges) is compared with a snapshot
-- taken before it: unchanged.  A call that unexpectedly succeeded would show
-- as "00000" and as a changed catalog.
--
-- A few errors are also shown as psql prints them (with DETAIL, and the
-- position inside a row filter).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE SCHEMA valid;
CREATE TABLE valid.people (
	id			integer PRIMARY KEY,
	name		text,
	region		text,
	born		date,
	joined		timestamptz,
	salary		numeric(10,2),
	age			smallint,
	big			bigint,
	score		real,
	code		varchar(10),
	initials	char(4),
	flag		boolean
);
CREATE TABLE valid.other (id integer, secret text);
CREATE VIEW valid.people_view AS SELECT id, name FROM valid.people;
CREATE MATERIALIZED VIEW valid.people_mv AS SELECT id FROM valid.people;
CREATE SEQUENCE valid.seq;
CREATE TABLE valid.parted (id integer, region text) PARTITION BY LIST (region);
CREATE TABLE valid.parted_bj PARTITION OF valid.parted FOR VALUES IN ('110000');
CREATE TABLE valid.parent (id integer);
CREATE TABLE valid.child () INHERITS (valid.parent);
CREATE TABLE valid.fresh (id integer);
CREATE TEMP TABLE valid_temp (id integer);
CREATE DOMAIN valid.positive AS integer CHECK (VALUE > 0);
CREATE FUNCTION valid.is_even(integer) RETURNS boolean
	LANGUAGE sql IMMUTABLE AS 'SELECT $1 % 2 = 0';
CREATE FUNCTION valid.upper_name(text) RETURNS text
	LANGUAGE sql IMMUTABLE AS 'SELECT upper($1)';
CREATE FUNCTION valid.volatile_name(text) RETURNS text
	LANGUAGE sql VOLATILE AS 'SELECT upper($1)';
CREATE FUNCTION valid.name_length(text) RETURNS integer
	LANGUAGE sql IMMUTABLE AS 'SELECT length($1)';
CREATE FUNCTION valid.two_args(text, text) RETURNS text
	LANGUAGE sql IMMUTABLE AS 'SELECT $1 || $2';
CREATE FUNCTION valid.name_set(text) RETURNS SETOF text
	LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE PROCEDURE valid.a_procedure(text) LANGUAGE sql AS 'SELECT 1';

CREATE ROLE valid_op NOLOGIN IN ROLE licdata_operator;
CREATE ROLE valid_bank NOLOGIN;
CREATE ROLE valid_analyst NOLOGIN IN ROLE valid_bank;
CREATE ROLE valid_shop NOLOGIN;
CREATE ROLE valid_both NOLOGIN IN ROLE valid_bank, valid_shop;
CREATE ROLE valid_free NOLOGIN;
CREATE ROLE valid_group NOLOGIN;
GRANT valid_group TO valid_bank;		-- the bank is a member of valid_group
CREATE ROLE valid_super NOLOGIN SUPERUSER;
CREATE ROLE valid_bypass NOLOGIN BYPASSRLS;
CREATE ROLE valid_owner NOLOGIN;
CREATE ROLE valid_owner_member NOLOGIN IN ROLE valid_owner;
CREATE ROLE valid_opm NOLOGIN IN ROLE licdata_operator;
CREATE ROLE valid_aud NOLOGIN IN ROLE licdata_auditor;
CREATE ROLE valid_licensee_owner NOLOGIN;
GRANT USAGE ON SCHEMA valid TO valid_op;
CREATE TABLE valid.owned (id integer);
ALTER TABLE valid.owned OWNER TO valid_owner;
CREATE TABLE valid.licensee_table (id integer);
ALTER TABLE valid.licensee_table OWNER TO valid_licensee_owner;

-- The good setup the bad calls are made against.
SELECT licdata.publish('valid.people', 'People (validation test)');
SELECT licdata.publish('valid.parent');
SELECT licdata.publish('valid.owned');
SELECT licdata.register_licensee('valid_bank', 'Valid Bank');
SELECT licdata.register_licensee('valid_shop', 'Valid Shop');
SELECT licdata.register_licensee('valid_licensee_owner', 'Owns a table');

-- ids of the licences made here (they depend on the test files run before)
CREATE TABLE valid.ids (name text PRIMARY KEY, id bigint NOT NULL);
INSERT INTO valid.ids
SELECT 'lic_bank', licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment,fraud_check}');
INSERT INTO valid.ids
SELECT 'lic_parent', licdata.grant_licence('valid_shop', 'valid.parent', '{marketing}');
INSERT INTO valid.ids
SELECT 'lic_revoked', licdata.grant_licence('valid_shop', 'valid.people', '{marketing}');
SELECT licdata.revoke_licence(id) FROM valid.ids WHERE name = 'lic_revoked';

-- Run a statement; report its error (SQLSTATE, message, hint), with
-- "licence <id>" for the licences above written "licence <name>".
CREATE FUNCTION valid.try(stmt text, OUT code text, OUT error text, OUT hint text)
	LANGUAGE plpgsql AS $$
DECLARE
	i record;
BEGIN
	BEGIN
		EXECUTE stmt;
		code := '00000';
		error := '(no error)';
	EXCEPTION WHEN OTHERS THEN
		GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, error = MESSAGE_TEXT,
			hint = PG_EXCEPTION_HINT;
	END;
	FOR i IN SELECT * FROM valid.ids LOOP
		error := regexp_replace(error, '\mlicence ' || i.id || '\M', 'licence ' || i.name, 'g');
		hint := regexp_replace(hint, '\mlicence ' || i.id || '\M', 'licence ' || i.name, 'g');
	END LOOP;
END
$$;

-- Everything the API could change: the catalog tables, and the row
-- security, policies and privileges of the tables and schemas here.
CREATE FUNCTION valid.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.datasets x),
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.licensees x),
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.licences x),
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.masks x),
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.authorities x),
		(SELECT string_agg(concat_ws(':', c.oid, c.relrowsecurity, c.relforcerowsecurity, c.relacl::text),
						   ',' ORDER BY c.oid)
		   FROM pg_class c WHERE c.relnamespace IN ('valid'::regnamespace, pg_my_temp_schema())),
		(SELECT string_agg(concat_ws(':', p.polrelid, p.polname), ',' ORDER BY p.polrelid, p.polname)
		   FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
		  WHERE c.relnamespace = 'valid'::regnamespace),
		(SELECT nspacl::text FROM pg_namespace WHERE nspname = 'valid'),
		(SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'valid\_%')))
$$;

-- The cases of a group; valid.run() reports each and whether the catalog is
-- the same after the group as before it.
CREATE TABLE valid.cases (n serial PRIMARY KEY, label text NOT NULL, stmt text NOT NULL);
CREATE TABLE valid.snapshot (state text);
CREATE FUNCTION valid.run() RETURNS TABLE (label text, sqlstate text, error text, hint text)
	LANGUAGE plpgsql AS $$
BEGIN
	TRUNCATE valid.snapshot;
	INSERT INTO valid.snapshot SELECT valid.state();
	RETURN QUERY SELECT c.label, r.code, r.error, r.hint
				   FROM valid.cases c, LATERAL valid.try(c.stmt) r ORDER BY c.n;
	RETURN QUERY SELECT '== catalog unchanged'::text,
						CASE WHEN (SELECT state FROM valid.snapshot) = valid.state()
							 THEN 'yes' ELSE 'NO: CHANGED' END, NULL::text, NULL::text;
	TRUNCATE valid.cases;
END
$$;

-- the non-superuser operator below reads the cases
GRANT SELECT ON valid.cases, valid.ids TO valid_op;

SELECT valid.state() AS initial_state \gset
\pset format unaligned
\pset fieldsep ' | '

--
-- publish
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('unknown table',            $$SELECT licdata.publish('valid.no_such_table')$$),
 ('a view',                   $$SELECT licdata.publish('valid.people_view')$$),
 ('a materialized view',      $$SELECT licdata.publish('valid.people_mv')$$),
 ('a sequence',               $$SELECT licdata.publish('valid.seq')$$),
 ('an index',                 $$SELECT licdata.publish('valid.people_pkey')$$),
 ('a temporary table',        $$SELECT licdata.publish('valid_temp')$$),
 ('a system table',           $$SELECT licdata.publish('pg_catalog.pg_authid')$$),
 ('information_schema',       $$SELECT licdata.publish('information_schema.sql_features')$$),
 ('a licdata table',          $$SELECT licdata.publish('licdata.licences')$$),
 ('a partition',              $$SELECT licdata.publish('valid.parted_bj')$$),
 ('child of a published table', $$SELECT licdata.publish('valid.child')$$),
 ('already published',        $$SELECT licdata.publish('valid.people')$$),
 ('owned by a licensee',      $$SELECT licdata.publish('valid.licensee_table')$$),
 ('negative price_per_query', $$SELECT licdata.publish('valid.fresh', price_per_query => -1)$$),
 ('negative price_per_row',   $$SELECT licdata.publish('valid.fresh', price_per_row => -0.001)$$),
 ('NaN price',                $$SELECT licdata.publish('valid.fresh', price_per_query => 'NaN')$$),
 ('NULL dataset',             $$SELECT licdata.publish(NULL)$$),
 ('NULL price_per_query',     $$SELECT licdata.publish('valid.fresh', price_per_query => NULL)$$),
 ('NULL price_per_row',       $$SELECT licdata.publish('valid.fresh', price_per_row => NULL)$$);
SELECT * FROM valid.run();

--
-- unpublish
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('unknown table',            $$SELECT licdata.unpublish('valid.no_such_table')$$),
 ('never published',          $$SELECT licdata.unpublish('valid.fresh')$$),
 ('a partition',              $$SELECT licdata.unpublish('valid.parted_bj')$$),
 ('has live licences',        $$SELECT licdata.unpublish('valid.people')$$),
 ('NULL dataset',             $$SELECT licdata.unpublish(NULL)$$);
SELECT * FROM valid.run();

--
-- register_licensee
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('unknown role',             $$SELECT licdata.register_licensee('valid_no_such_role', 'X')$$),
 ('superuser',                $$SELECT licdata.register_licensee('valid_super', 'X')$$),
 ('BYPASSRLS',                $$SELECT licdata.register_licensee('valid_bypass', 'X')$$),
 ('owner of a published table', $$SELECT licdata.register_licensee('valid_owner', 'X')$$),
 ('member of that owner',     $$SELECT licdata.register_licensee('valid_owner_member', 'X')$$),
 ('member of licdata_operator', $$SELECT licdata.register_licensee('valid_opm', 'X')$$),
 ('member of licdata_auditor', $$SELECT licdata.register_licensee('valid_aud', 'X')$$),
 ('licdata_operator itself',  $$SELECT licdata.register_licensee('licdata_operator', 'X')$$),
 ('licdata_reader',           $$SELECT licdata.register_licensee('licdata_reader', 'X')$$),
 ('a pg_ role',               $$SELECT licdata.register_licensee('pg_read_all_data', 'X')$$),
 ('already registered',       $$SELECT licdata.register_licensee('valid_bank', 'X')$$),
 ('member of a licensee',     $$SELECT licdata.register_licensee('valid_analyst', 'X')$$),
 ('member of two licensees',  $$SELECT licdata.register_licensee('valid_both', 'X')$$),
 ('a licensee is its member', $$SELECT licdata.register_licensee('valid_group', 'X')$$),
 ('empty org_name',           $$SELECT licdata.register_licensee('valid_free', '')$$),
 ('blank org_name',           $$SELECT licdata.register_licensee('valid_free', '   ')$$),
 ('NULL licensee',            $$SELECT licdata.register_licensee(NULL, 'X')$$),
 ('NULL org_name',            $$SELECT licdata.register_licensee('valid_free', NULL)$$);
SELECT * FROM valid.run();

--
-- grant_licence: licensee, dataset, purposes
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('unregistered role',        $$SELECT licdata.grant_licence('valid_free', 'valid.people', '{credit_assessment}')$$),
 ('member of a licensee',     $$SELECT licdata.grant_licence('valid_analyst', 'valid.people', '{credit_assessment}')$$),
 ('unknown role',             $$SELECT licdata.grant_licence('valid_no_such_role', 'valid.people', '{credit_assessment}')$$),
 ('unknown table',            $$SELECT licdata.grant_licence('valid_bank', 'valid.no_such_table', '{credit_assessment}')$$),
 ('unpublished table',        $$SELECT licdata.grant_licence('valid_bank', 'valid.fresh', '{credit_assessment}')$$),
 ('a view',                   $$SELECT licdata.grant_licence('valid_bank', 'valid.people_view', '{credit_assessment}')$$),
 ('child of a dataset',       $$SELECT licdata.grant_licence('valid_bank', 'valid.child', '{credit_assessment}')$$),
 ('purposes NULL',            $$SELECT licdata.grant_licence('valid_bank', 'valid.people', NULL)$$),
 ('purposes empty',           $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{}')$$),
 ('purpose NULL element',     $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment,NULL}')$$),
 ('purpose empty string',     $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{""}')$$),
 ('purpose upper case',       $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{Credit_Assessment}')$$),
 ('purpose with a space',     $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{"credit assessment"}')$$),
 ('purpose leading space',    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', ARRAY[' credit'])$$),
 ('purpose leading digit',    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{1st_purpose}')$$),
 ('purpose leading _',        $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{_credit}')$$),
 ('purpose with a hyphen',    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit-check}')$$),
 ('purpose not ASCII',        $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{信用评估}')$$),
 ('purpose 64 characters',    format($$SELECT licdata.grant_licence('valid_bank', 'valid.people', ARRAY['%s'])$$, repeat('p', 64))),
 ('purposes repeated',        $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment,fraud_check,credit_assessment}')$$),
 ('purposes 2-D array',       $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{{credit_assessment},{fraud_check}}')$$),
 ('NULL licensee',            $$SELECT licdata.grant_licence(NULL, 'valid.people', '{credit_assessment}')$$),
 ('NULL dataset',             $$SELECT licdata.grant_licence('valid_bank', NULL, '{credit_assessment}')$$);
SELECT * FROM valid.run();

-- a purpose of exactly 63 characters is accepted (then revoked: only the
-- error cases are kept out of the catalog)
SELECT licdata.grant_licence('valid_bank', 'valid.people', ARRAY[repeat('p', 63)]) AS lic_63 \gset
SELECT purposes[1] = repeat('p', 63) AS stored_63 FROM licdata.licences WHERE id = :lic_63;
SELECT licdata.revoke_licence(:lic_63);
INSERT INTO valid.ids VALUES ('lic_63', :lic_63);
SELECT valid.state() AS initial_state \gset

--
-- grant_licence: columns
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('unknown column',           $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', columns => '{id,no_such_column}')$$),
 ('column of another table',  $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', columns => '{secret}')$$),
 ('wrong case',               $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', columns => '{ID}')$$),
 ('system column',            $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', columns => '{ctid}')$$),
 ('a column twice',           $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', columns => '{id,name,id}')$$),
 ('empty list',               $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', columns => '{}')$$),
 ('NULL element',             $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', columns => '{id,NULL}')$$),
 ('2-D array',                $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', columns => '{{id},{name}}')$$);
SELECT * FROM valid.run();

--
-- grant_licence: row_filter
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('empty',                    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => '')$$),
 ('blank',                    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => E' \n\t ')$$),
 ('not boolean (integer)',    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'id + 1')$$),
 ('not boolean (text)',       $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'region')$$),
 ('unknown column',           $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'province = ''110000''')$$),
 ('subquery',                 $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'id IN (SELECT id FROM valid.other)')$$),
 ('EXISTS',                   $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'EXISTS (SELECT 1)')$$),
 ('ARRAY subquery',           $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'id = ANY (ARRAY(SELECT 1))')$$),
 ('random()',                 $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'random() < 0.5')$$),
 ('nextval()',                $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'id < nextval(''valid.seq'')')$$),
 ('clock_timestamp()',        $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'joined < clock_timestamp()')$$),
 ('set_config()',             $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'set_config(''a.b'', region, false) IS NOT NULL')$$),
 ('another table',            $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'other.id = id')$$),
 ('another table, qualified', $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'valid.other.id = id')$$),
 ('a catalog table',          $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'pg_class.oid = 0')$$),
 ('table_to_xml',             $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'table_to_xml(''valid.other'', true, false, '''')::text LIKE ''%x%''')$$),
 ('aggregate',                $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'count(*) > 0')$$),
 ('window function',          $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'row_number() OVER () < 10')$$),
 ('set-returning function',   $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'generate_series(1, 2) = id')$$),
 ('GROUPING',                 $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'GROUPING(id) = 0')$$),
 ('two statements',           $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'true; DROP TABLE valid.other')$$),
 ('closes the parenthesis',   $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'true) OR (1=1')$$),
 ('trailing -- comment',      $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'id = 1 --')$$),
 ('-- comment hiding a clause', $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => E'region = ''110000'' -- AND id < 0\n AND true')$$),
 ('/* comment */',            $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'id = 1 /* only 1 */')$$),
 ('FROM clause',              $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'true FROM valid.other')$$),
 ('WHERE clause',             $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'true WHERE false')$$),
 ('two expressions',          $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'true, false')$$),
 ('AS alias',                 $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'true AS x')$$),
 ('UNION',                    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'true UNION SELECT false')$$),
 ('ORDER BY',                 $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'true ORDER BY 1')$$),
 ('a star',                   $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => '*')$$),
 ('parameter $1',             $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'id = $1')$$),
 ('user-defined function',    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'valid.is_even(id)')$$),
 ('unqualified user function', $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'is_even(id)')$$),
 ('cast to a user domain',    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'id::valid.positive > 0')$$),
 ('whole-row reference',      $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'people IS NOT NULL')$$),
 ('whole-row as record',      $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'row_to_json(people)::text <> ''''')$$),
 ('system column ctid',       $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'ctid <> ''(0,0)''')$$),
 ('system column xmin',       $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'xmin::text <> ''''')$$),
 ('system column tableoid',   $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'tableoid <> 0')$$);
SELECT * FROM valid.run();

--
-- grant_licence: validity, quotas, prices, mode, group size, NULLs
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('valid_until = valid_from', $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', valid_from => '2030-01-01', valid_until => '2030-01-01')$$),
 ('valid_until < valid_from', $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', valid_from => '2030-01-01', valid_until => '2029-12-31')$$),
 ('valid_until in the past',  $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', valid_until => '2000-01-01')$$),
 ('valid_until -infinity',    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', valid_until => '-infinity')$$),
 ('max_rows_per_query 0',     $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', max_rows_per_query => 0)$$),
 ('max_rows_per_day -1',      $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', max_rows_per_day => -1)$$),
 ('max_queries_per_day 0',    $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', max_queries_per_day => 0)$$),
 ('price_per_query < 0',      $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', price_per_query => -1)$$),
 ('price_per_row < 0',        $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', price_per_row => -0.0001)$$),
 ('price NaN',                $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', price_per_row => 'NaN')$$),
 ('mode unknown',             $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', mode => 'raw')$$),
 ('mode upper case',          $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', mode => 'ROWS')$$),
 ('min_group_size 1',         $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', mode => 'aggregate', min_group_size => 1)$$),
 ('min_group_size -5',        $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', min_group_size => -5)$$),
 ('NULL valid_from',          $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', valid_from => NULL)$$),
 ('NULL require_consent_ref', $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', require_consent_ref => NULL)$$),
 ('NULL mode',                $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', mode => NULL)$$),
 ('NULL min_group_size',      $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', min_group_size => NULL)$$);
SELECT * FROM valid.run();

-- NULL means "none" for the optional arguments: every column, every row, no
-- end, no quota, the dataset's prices
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', columns => NULL,
	row_filter => NULL, valid_until => NULL, max_rows_per_query => NULL, max_rows_per_day => NULL,
	max_queries_per_day => NULL, price_per_query => NULL, price_per_row => NULL) AS lic_nulls \gset
SELECT columns, row_filter, valid_until, max_rows_per_query, max_rows_per_day, max_queries_per_day,
	   price_per_query, price_per_row
  FROM licdata.licences WHERE id = :lic_nulls;
SELECT licdata.revoke_licence(:lic_nulls);
INSERT INTO valid.ids VALUES ('lic_nulls', :lic_nulls);
SELECT valid.state() AS initial_state \gset

--
-- suspend_licence / resume_licence / revoke_licence
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('suspend: no such licence', $$SELECT licdata.suspend_licence(-1)$$),
 ('resume: no such licence',  $$SELECT licdata.resume_licence(-1)$$),
 ('revoke: no such licence',  $$SELECT licdata.revoke_licence(-1)$$),
 ('resume an active licence', $$SELECT licdata.resume_licence(id) FROM valid.ids WHERE name = 'lic_bank'$$),
 ('suspend a revoked licence', $$SELECT licdata.suspend_licence(id) FROM valid.ids WHERE name = 'lic_revoked'$$),
 ('resume a revoked licence', $$SELECT licdata.resume_licence(id) FROM valid.ids WHERE name = 'lic_revoked'$$),
 ('revoke a revoked licence', $$SELECT licdata.revoke_licence(id) FROM valid.ids WHERE name = 'lic_revoked'$$),
 ('suspend NULL',             $$SELECT licdata.suspend_licence(NULL)$$),
 ('resume NULL',              $$SELECT licdata.resume_licence(NULL)$$),
 ('revoke NULL',              $$SELECT licdata.revoke_licence(NULL)$$);
SELECT * FROM valid.run();

--
-- set_mask: the target (dataset, column, licence, purpose)
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('unknown table',            $$SELECT licdata.set_mask('valid.no_such_table', 'name', 'redact')$$),
 ('unpublished table',        $$SELECT licdata.set_mask('valid.fresh', 'id', 'redact')$$),
 ('unknown column',           $$SELECT licdata.set_mask('valid.people', 'no_such_column', 'redact')$$),
 ('system column',            $$SELECT licdata.set_mask('valid.people', 'ctid', 'redact')$$),
 ('unknown licence',          $$SELECT licdata.set_mask('valid.people', 'name', 'redact', licence_id => -1)$$),
 ('licence of another dataset', $$SELECT licdata.set_mask('valid.people', 'name', 'redact', licence_id => (SELECT id FROM valid.ids WHERE name = 'lic_parent'))$$),
 ('purpose without licence',  $$SELECT licdata.set_mask('valid.people', 'name', 'redact', purpose => 'credit_assessment')$$),
 ('purpose not in licence',   $$SELECT licdata.set_mask('valid.people', 'name', 'redact', licence_id => (SELECT id FROM valid.ids WHERE name = 'lic_bank'), purpose => 'marketing')$$),
 ('purpose malformed',        $$SELECT licdata.set_mask('valid.people', 'name', 'redact', licence_id => (SELECT id FROM valid.ids WHERE name = 'lic_bank'), purpose => 'Credit Assessment')$$),
 ('purpose empty',            $$SELECT licdata.set_mask('valid.people', 'name', 'redact', licence_id => (SELECT id FROM valid.ids WHERE name = 'lic_bank'), purpose => '')$$),
 ('NULL dataset',             $$SELECT licdata.set_mask(NULL, 'name', 'redact')$$),
 ('NULL column_name',         $$SELECT licdata.set_mask('valid.people', NULL, 'redact')$$),
 ('NULL method',              $$SELECT licdata.set_mask('valid.people', 'name', NULL)$$),
 ('NULL params',              $$SELECT licdata.set_mask('valid.people', 'name', 'redact', NULL)$$);
SELECT * FROM valid.run();

--
-- set_mask: methods, the column's type, params
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('unknown method',           $$SELECT licdata.set_mask('valid.people', 'name', 'hash')$$),
 ('method upper case',        $$SELECT licdata.set_mask('valid.people', 'name', 'REDACT')$$),
 ('method empty',             $$SELECT licdata.set_mask('valid.people', 'name', '')$$),
 ('params an array',          $$SELECT licdata.set_mask('valid.people', 'name', 'redact', '[]')$$),
 ('params a string',          $$SELECT licdata.set_mask('valid.people', 'name', 'redact', '"x"')$$),
 ('params a number',          $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '3')$$),
 ('params JSON null',         $$SELECT licdata.set_mask('valid.people', 'name', 'redact', 'null')$$),
 ('unknown key',              $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '{"keep_frist": 1}')$$),
 ('key for another method',   $$SELECT licdata.set_mask('valid.people', 'name', 'email', '{"keep_first": 1}')$$),
 ('redact: with an object',   $$SELECT licdata.set_mask('valid.people', 'name', 'redact', '{"with": {"a": 1}}')$$),
 ('redact: with not the type', $$SELECT licdata.set_mask('valid.people', 'age', 'redact', '{"with": "old"}')$$),
 ('partial: keep_first text', $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '{"keep_first": "1"}')$$),
 ('partial: keep_first 1.5',  $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '{"keep_first": 1.5}')$$),
 ('partial: keep_last -1',    $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '{"keep_last": -1}')$$),
 ('partial: keep_first 1001', $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '{"keep_first": 1001}')$$),
 ('partial: keep_first 1e30', $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '{"keep_first": 1e30}')$$),
 ('partial: pad two chars',   $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '{"pad": "**"}')$$),
 ('partial: pad empty',       $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '{"pad": ""}')$$),
 ('partial: pad a number',    $$SELECT licdata.set_mask('valid.people', 'name', 'partial', '{"pad": 0}')$$),
 ('pseudonym: length 7',      $$SELECT licdata.set_mask('valid.people', 'name', 'pseudonym', '{"length": 7}')$$),
 ('pseudonym: length 65',     $$SELECT licdata.set_mask('valid.people', 'name', 'pseudonym', '{"length": 65}')$$),
 ('pseudonym: too long for varchar(10)', $$SELECT licdata.set_mask('valid.people', 'code', 'pseudonym', '{"length": 16}')$$),
 ('pseudonym: too long for char(4)', $$SELECT licdata.set_mask('valid.people', 'initials', 'pseudonym', '{"length": 8}')$$),
 ('pseudonym: length text',   $$SELECT licdata.set_mask('valid.people', 'name', 'pseudonym', '{"length": "16"}')$$),
 ('fpe: alphabet one char',   $$SELECT licdata.set_mask('valid.people', 'code', 'fpe', '{"alphabet": "0"}')$$),
 ('fpe: alphabet repeats',    $$SELECT licdata.set_mask('valid.people', 'code', 'fpe', '{"alphabet": "01234567890"}')$$),
 ('fpe: alphabet not ASCII',  $$SELECT licdata.set_mask('valid.people', 'code', 'fpe', '{"alphabet": "零一二"}')$$),
 ('date_trunc: unknown unit', $$SELECT licdata.set_mask('valid.people', 'born', 'date_trunc', '{"unit": "decade"}')$$),
 ('date_trunc: unit upper case', $$SELECT licdata.set_mask('valid.people', 'born', 'date_trunc', '{"unit": "Month"}')$$),
 ('bucket: no width',         $$SELECT licdata.set_mask('valid.people', 'salary', 'bucket')$$),
 ('bucket: width null',       $$SELECT licdata.set_mask('valid.people', 'salary', 'bucket', '{"width": null}')$$),
 ('bucket: width text',       $$SELECT licdata.set_mask('valid.people', 'salary', 'bucket', '{"width": "1000"}')$$),
 ('bucket: width 0',          $$SELECT licdata.set_mask('valid.people', 'salary', 'bucket', '{"width": 0}')$$),
 ('bucket: width -10',        $$SELECT licdata.set_mask('valid.people', 'salary', 'bucket', '{"width": -10}')$$),
 ('bucket: width 2.5 on integer', $$SELECT licdata.set_mask('valid.people', 'id', 'bucket', '{"width": 2.5}')$$),
 ('bucket: width 40000 on smallint', $$SELECT licdata.set_mask('valid.people', 'age', 'bucket', '{"width": 40000}')$$),
 ('noise: neither',           $$SELECT licdata.set_mask('valid.people', 'salary', 'noise')$$),
 ('noise: both',              $$SELECT licdata.set_mask('valid.people', 'salary', 'noise', '{"relative": 0.05, "absolute": 100}')$$),
 ('noise: relative 0',        $$SELECT licdata.set_mask('valid.people', 'salary', 'noise', '{"relative": 0}')$$),
 ('noise: absolute -1',       $$SELECT licdata.set_mask('valid.people', 'salary', 'noise', '{"absolute": -1}')$$),
 ('noise: relative 11',       $$SELECT licdata.set_mask('valid.people', 'salary', 'noise', '{"relative": 11}')$$),
 ('noise: relative text',     $$SELECT licdata.set_mask('valid.people', 'salary', 'noise', '{"relative": "0.05"}')$$),
 ('function: no name',        $$SELECT licdata.set_mask('valid.people', 'name', 'function')$$),
 ('function: not qualified',  $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "upper_name"}')$$),
 ('function: does not exist', $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "valid.no_such_function"}')$$),
 ('function: no such schema', $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "no_such_schema.upper_name"}')$$),
 ('function: two arguments',  $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "valid.two_args"}')$$),
 ('function: wrong return type', $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "valid.name_length"}')$$),
 ('function: wrong argument type', $$SELECT licdata.set_mask('valid.people', 'id', 'function', '{"name": "valid.upper_name"}')$$),
 ('function: volatile',       $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "valid.volatile_name"}')$$),
 ('function: set-returning',  $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "valid.name_set"}')$$),
 ('function: a procedure',    $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "valid.a_procedure"}')$$),
 ('function: SQL in the name', $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "valid.upper_name(name); DROP TABLE valid.other"}')$$),
 ('function: name a number',  $$SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": 1}')$$),
 ('partial on a date',        $$SELECT licdata.set_mask('valid.people', 'born', 'partial')$$),
 ('email on an integer',      $$SELECT licdata.set_mask('valid.people', 'id', 'email')$$),
 ('cn_id on a boolean',       $$SELECT licdata.set_mask('valid.people', 'flag', 'cn_id')$$),
 ('pseudonym on an integer',  $$SELECT licdata.set_mask('valid.people', 'id', 'pseudonym')$$),
 ('fpe on a date',            $$SELECT licdata.set_mask('valid.people', 'born', 'fpe')$$),
 ('date_trunc on text',       $$SELECT licdata.set_mask('valid.people', 'name', 'date_trunc', '{"unit": "month"}')$$),
 ('bucket on text',           $$SELECT licdata.set_mask('valid.people', 'name', 'bucket', '{"width": 10}')$$),
 ('bucket on a boolean',      $$SELECT licdata.set_mask('valid.people', 'flag', 'bucket', '{"width": 1}')$$),
 ('noise on smallint',        $$SELECT licdata.set_mask('valid.people', 'age', 'noise', '{"absolute": 1}')$$),
 ('noise on real',            $$SELECT licdata.set_mask('valid.people', 'score', 'noise', '{"relative": 0.1}')$$),
 ('noise on a date',          $$SELECT licdata.set_mask('valid.people', 'born', 'noise', '{"absolute": 1}')$$);
SELECT * FROM valid.run();

--
-- drop_mask
--
SELECT licdata.set_mask('valid.people', 'name', 'cn_name');
SELECT valid.state() AS initial_state \gset
INSERT INTO valid.cases (label, stmt) VALUES
 ('no mask at that level',    $$SELECT licdata.drop_mask('valid.people', 'name', (SELECT id FROM valid.ids WHERE name = 'lic_bank'))$$),
 ('no mask on the column',    $$SELECT licdata.drop_mask('valid.people', 'region')$$),
 ('unknown column',           $$SELECT licdata.drop_mask('valid.people', 'no_such_column')$$),
 ('unpublished table',        $$SELECT licdata.drop_mask('valid.fresh', 'id')$$),
 ('unknown licence',          $$SELECT licdata.drop_mask('valid.people', 'name', -1)$$),
 ('purpose without licence',  $$SELECT licdata.drop_mask('valid.people', 'name', NULL, 'credit_assessment')$$),
 ('NULL dataset',             $$SELECT licdata.drop_mask(NULL, 'name')$$),
 ('NULL column_name',         $$SELECT licdata.drop_mask('valid.people', NULL)$$);
SELECT * FROM valid.run();

--
-- invoice (reads usage; included for its NULL and period checks)
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('period_end = period_start', $$SELECT * FROM licdata.invoice('valid_bank', '2026-01-01', '2026-01-01')$$),
 ('NULL licensee',            $$SELECT * FROM licdata.invoice(NULL, '2026-01-01', '2026-02-01')$$),
 ('NULL period_start',        $$SELECT * FROM licdata.invoice('valid_bank', NULL, '2026-02-01')$$),
 ('NULL period_end',          $$SELECT * FROM licdata.invoice('valid_bank', '2026-01-01', NULL)$$);
SELECT * FROM valid.run();

--
-- The same refusals for a non-superuser operator
--
INSERT INTO valid.cases (label, stmt) VALUES
 ('publish a view',           $$SELECT licdata.publish('valid.people_view')$$),
 ('register a superuser',     $$SELECT licdata.register_licensee('valid_super', 'X')$$),
 ('register itself',          $$SELECT licdata.register_licensee('valid_op', 'X')$$),
 ('grant to unregistered',    $$SELECT licdata.grant_licence('valid_free', 'valid.people', '{credit_assessment}')$$),
 ('volatile row filter',      $$SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}', row_filter => 'random() > 0')$$),
 ('bad mask params',          $$SELECT licdata.set_mask('valid.people', 'salary', 'bucket', '{"width": 0}')$$);
-- (valid.run() reads the catalog to compare it: the superuser does that part)
SET ROLE valid_op;
SELECT c.label, r.code AS sqlstate, r.error FROM valid.cases c, LATERAL valid.try(c.stmt) r ORDER BY c.n;
RESET ROLE;
TRUNCATE valid.cases;
SELECT CASE WHEN valid.state() = :'initial_state' THEN 'yes' ELSE 'NO: CHANGED' END AS catalog_unchanged;

\pset format aligned
\pset fieldsep '|'

--
-- How psql shows some of these errors: DETAIL and HINT, and a position
-- inside the row filter rather than inside the calling statement.
--
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}',
							 row_filter => 'true; DROP TABLE valid.other');
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}',
							 row_filter => E'region = ''110000''\n   AND id');
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}',
							 row_filter => 'region = ''110000'' -- the Beijing office only');
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}',
							 row_filter => 'valid.is_even(id)');
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}',
							 row_filter => 'now() > joined AND random() < 1');
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit assessment}');
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}',
							 valid_from => '2030-01-01 00:00+00', valid_until => '2029-01-01 00:00+00');
SELECT licdata.register_licensee('valid_owner_member', 'X');
SELECT licdata.register_licensee('valid_analyst', 'X');
SELECT licdata.publish('valid.parted_bj');
SELECT licdata.set_mask('valid.people', 'code', 'pseudonym', '{"length": 16}');
SELECT licdata.set_mask('valid.people', 'born', 'partial');
SELECT licdata.set_mask('valid.people', 'name', 'function', '{"name": "valid.volatile_name"}');
SELECT CASE WHEN valid.state() = :'initial_state' THEN 'yes' ELSE 'NO: CHANGED' END AS catalog_unchanged;

-- Row filters that are accepted: strings, quoted names and dollar quotes may
-- contain "--" and "/*"; stable built-ins, CASE, IN lists, casts to
-- built-in types
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}',
	row_filter => $f$name <> '--' AND name <> E'it\'s /* not a comment' AND "name" <> $x$--$x$$f$) AS lic_ok1 \gset
SELECT licdata.grant_licence('valid_bank', 'valid.people', '{credit_assessment}',
	row_filter => 'region IN (''110000'', ''310000'') AND CASE WHEN age > 60 THEN false ELSE true END AND joined < now() AND lower(name)::varchar(20) IS NOT NULL AND people.id > 0') AS lic_ok2 \gset
SELECT row_filter FROM licdata.licences WHERE id IN (:lic_ok1, :lic_ok2) ORDER BY id;
SELECT licdata.revoke_licence(:lic_ok1), licdata.revoke_licence(:lic_ok2);

--
-- clean up
--
SELECT licdata.revoke_licence(id) FROM licdata.licences
 WHERE dataset::text LIKE 'valid.%' AND status <> 'revoked';
SELECT licdata.unpublish('valid.people');
SELECT licdata.unpublish('valid.parent');
SELECT licdata.unpublish('valid.owned');
DELETE FROM licdata.licences WHERE dataset::text LIKE 'valid.%';
DELETE FROM licdata.licensees
 WHERE licensee IN ('valid_bank'::regrole, 'valid_shop'::regrole, 'valid_licensee_owner'::regrole);
DELETE FROM licdata.datasets WHERE dataset::text LIKE 'valid.%';
DROP TABLE valid_temp;
DROP SCHEMA valid CASCADE;
DROP ROLE valid_op, valid_analyst, valid_both, valid_group, valid_bank, valid_shop,
	valid_free, valid_super, valid_bypass, valid_owner_member, valid_owner, valid_opm, valid_aud,
	valid_licensee_owner;
