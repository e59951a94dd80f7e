--
-- operator_api: the operator's SQL API on its good paths, and who may call it.
--
--   publish / unpublish (RLS guard, licdata_reader grant, partitions, the
--   table's earlier RLS state restored), register_licensee, grant_licence
--   (every parameter stored), suspend / resume / revoke (transitions and
--   refusals), set_mask / drop_mask (three precedence levels, upsert),
--   licdata.my_licences as a licensee, the roles licdata_operator and
--   licdata_auditor, what a licensee may not do, and the catalog tables
--   registered for pg_dump.
--
-- Bad input is in validation.sql.  Licence ids depend on the test files that
-- ran before, so they are captured with \gset and never printed.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set VERBOSITY default
\set SHOW_CONTEXT never

CREATE SCHEMA opapi;
CREATE TABLE opapi.people (
	id			integer PRIMARY KEY,
	name		text,
	id_number	varchar(18),
	region		text,
	born		date,
	salary		numeric(10,2)
);
INSERT INTO opapi.people VALUES
	(1, '张三', '110105194912310021', '110000', '1949-12-31', 12000),
	(2, '李四', '310105198001010011', '310000', '1980-01-01', 8000);
-- a partitioned table: publishing it covers its partitions
CREATE TABLE opapi.firms (id integer, region text) PARTITION BY LIST (region);
CREATE TABLE opapi.firms_bj PARTITION OF opapi.firms FOR VALUES IN ('110000');
CREATE TABLE opapi.firms_sh PARTITION OF opapi.firms FOR VALUES IN ('310000');
-- a table that had row-level security of its own before it was published
CREATE TABLE opapi.own_rls (id integer);
ALTER TABLE opapi.own_rls ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_policy ON opapi.own_rls USING (id > 0);

CREATE ROLE opapi_op NOLOGIN IN ROLE licdata_operator;		-- an operator, not a superuser
CREATE ROLE opapi_auditor NOLOGIN IN ROLE licdata_auditor;
CREATE ROLE opapi_bank NOLOGIN;
CREATE ROLE opapi_analyst NOLOGIN IN ROLE opapi_bank;		-- acts for the bank
CREATE ROLE opapi_stats NOLOGIN;
CREATE ROLE opapi_nobody NOLOGIN;
-- an operator names tables with its own rights: it needs USAGE on their schema
-- (and nothing on the tables); the auditor and the bystander get it too, to
-- show that what stops them is licdata's privileges
GRANT USAGE ON SCHEMA opapi TO opapi_op, opapi_auditor, opapi_nobody;

-- Licence ids depend on the test files run before: refusals that name a
-- licence go through opapi.try(), which writes "licence <name>" for them.
CREATE TABLE opapi.ids (name text PRIMARY KEY, id bigint);
CREATE FUNCTION opapi.try(stmt text, OUT errcode text, OUT error text, OUT hint text)
	LANGUAGE plpgsql AS $$
DECLARE
	i record;
BEGIN
	EXECUTE stmt;
	errcode := '00000';
	error := '(no error)';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS errcode = RETURNED_SQLSTATE, error = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
	FOR i IN SELECT * FROM opapi.ids LOOP
		error := regexp_replace(error, '\mlicence ' || i.id || '\M', 'licence ' || i.name, 'g');
	END LOOP;
END
$$;
GRANT SELECT ON opapi.ids TO PUBLIC;

--
-- The catalog is kept by pg_dump: every catalog table and its sequence is an
-- extension configuration table (all rows dumped), and so are the records.
--
SELECT t.name AS config_table, x.c IS NOT NULL AS registered, x.cond AS dump_condition
  FROM (VALUES ('licdata.datasets'), ('licdata.licensees'), ('licdata.licensee_key_id_seq'),
			   ('licdata.licences'), ('licdata.licences_id_seq'), ('licdata.masks'),
			   ('licdata.masks_id_seq'), ('licdata.authorities'),
			   ('licdata_internal.record_batches'), ('licdata_internal.journal_moved'),
			   ('licdata_internal.usage_rows'), ('licdata_internal.usage_id_seq'),
			   ('licdata_internal.audit_rows')) t(name)
  LEFT JOIN (SELECT c, cond FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, cond)
			  WHERE e.extname = 'licdata') x ON x.c = t.name::regclass
 ORDER BY t.name;

--
-- publish, as an operator that is not a superuser
--
SET ROLE opapi_op;
SELECT licdata.publish('opapi.people', 'Residents (test)', 0.50, 0.01);
SELECT licdata.publish('opapi.firms');
SELECT licdata.publish('opapi.own_rls', price_per_row => 2);
RESET ROLE;
SELECT dataset, description, price_per_query, price_per_row,
	   now() - published_at < interval '1 minute' AS published_recently, unpublished_at, rls_was_enabled, rls_was_forced
  FROM licdata.datasets WHERE dataset::text LIKE 'opapi.%' ORDER BY dataset::text;
-- every member of the family: RLS enabled and forced, the guard policy,
-- SELECT for licdata_reader (and for nobody else)
SELECT c.oid::regclass AS rel, c.relrowsecurity, c.relforcerowsecurity,
	   (SELECT string_agg(polname || ': ' || pg_get_expr(polqual, polrelid), ', ' ORDER BY polname)
		  FROM pg_policy WHERE polrelid = c.oid) AS policies,
	   has_table_privilege('licdata_reader', c.oid, 'SELECT') AS reader_selects,
	   has_table_privilege('opapi_bank', c.oid, 'SELECT') AS licensee_selects
  FROM pg_class c WHERE c.relnamespace = 'opapi'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'ids'
 ORDER BY c.oid::regclass::text;

--
-- unpublish restores the table as it was; the catalog row stays (licences
-- and usage keep naming the dataset); publishing again reuses it
--
SET ROLE opapi_op;
SELECT licdata.unpublish('opapi.own_rls');
SELECT licdata.unpublish('opapi.firms');
RESET ROLE;
SELECT dataset, unpublished_at IS NOT NULL AS unpublished
  FROM licdata.datasets WHERE dataset::text LIKE 'opapi.%' ORDER BY dataset::text;
SELECT c.oid::regclass AS rel, c.relrowsecurity, c.relforcerowsecurity,
	   (SELECT string_agg(polname, ', ' ORDER BY polname) FROM pg_policy WHERE polrelid = c.oid) AS policies,
	   has_table_privilege('licdata_reader', c.oid, 'SELECT') AS reader_selects
  FROM pg_class c WHERE c.relnamespace = 'opapi'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'ids'
 ORDER BY c.oid::regclass::text;
SET ROLE opapi_op;
SELECT licdata.publish('opapi.firms', 'Firms, again', 1, 0);
RESET ROLE;
SELECT dataset, description, price_per_query, unpublished_at, rls_was_enabled
  FROM licdata.datasets WHERE dataset = 'opapi.firms'::regclass;
SELECT count(*) AS firms_guard_policies FROM pg_policy
 WHERE polname = 'licdata_guard' AND polrelid IN ('opapi.firms'::regclass, 'opapi.firms_bj'::regclass,
												  'opapi.firms_sh'::regclass);

--
-- register_licensee: names are trimmed, an empty org_code is NULL, each
-- licensee gets its own key id
--
SET ROLE opapi_op;
SELECT licdata.register_licensee('opapi_bank', '  Opapi Bank Ltd.  ', ' 91110000ABC ');
SELECT licdata.register_licensee('opapi_stats', 'Opapi Statistics Bureau', '   ');
RESET ROLE;
SELECT licensee, org_name, org_code, key_id IS NOT NULL AS has_key_id,
	   now() - registered_at < interval '1 minute' AS registered_recently
  FROM licdata.licensees WHERE licensee::text LIKE 'opapi%' ORDER BY licensee::text;
SELECT count(DISTINCT key_id) AS distinct_key_ids
  FROM licdata.licensees WHERE licensee::text LIKE 'opapi%';

--
-- grant_licence with all fifteen parameters; the stored row holds each
--
SET ROLE opapi_op;
SELECT licdata.grant_licence(
	licensee => 'opapi_bank', dataset => 'opapi.people',
	purposes => ARRAY['credit_assessment', 'fraud_check'],
	columns => ARRAY['id', 'name', 'id_number', 'region']::name[],
	row_filter => 'region = ''110000'' AND born < DATE ''2000-01-01''',
	valid_from => '2025-01-01 00:00:00+00', valid_until => '2099-12-31 23:59:59+00',
	max_rows_per_query => 100, max_rows_per_day => 1000, max_queries_per_day => 50,
	require_consent_ref => true, price_per_query => 1.25, price_per_row => 0.002,
	mode => 'rows', min_group_size => 5) AS lic_full \gset
RESET ROLE;
INSERT INTO opapi.ids VALUES ('lic_full', :lic_full);
SELECT licensee, dataset, purposes, columns, row_filter, valid_from, valid_until,
	   max_rows_per_query, max_rows_per_day, max_queries_per_day, require_consent_ref,
	   price_per_query, price_per_row, mode, min_group_size, status,
	   now() - granted_at < interval '1 minute' AS granted_recently, status_changed_at, authority, document, signature
  FROM licdata.licences WHERE id = :lic_full \gx

-- the defaults: from now, no end, no quotas, dataset prices, rows mode
SET ROLE opapi_op;
SELECT licdata.grant_licence('opapi_bank', 'opapi.firms', '{statistics}') AS lic_default \gset
SELECT licdata.grant_licence('opapi_stats', 'opapi.people', '{statistics}',
							 mode => 'aggregate', min_group_size => 20) AS lic_stats \gset
RESET ROLE;
INSERT INTO opapi.ids VALUES ('lic_default', :lic_default), ('lic_stats', :lic_stats);
SELECT id = :lic_default AS is_default, licensee, dataset, purposes, columns, row_filter,
	   now() - valid_from < interval '1 minute' AS from_recently, valid_until, max_rows_per_query, max_rows_per_day,
	   max_queries_per_day, require_consent_ref, price_per_query, price_per_row, mode,
	   min_group_size, status
  FROM licdata.licences WHERE id IN (:lic_default, :lic_stats) ORDER BY id;
-- the licensee may name the dataset's schema; its privileges on the table mirror
-- its licences, for catalogs (bank: some columns of people; stats: all of them)
SELECT has_schema_privilege('opapi_bank', 'opapi', 'USAGE') AS bank_uses_schema,
	   has_schema_privilege('opapi_stats', 'opapi', 'USAGE') AS stats_uses_schema,
	   has_table_privilege('opapi_bank', 'opapi.people', 'SELECT') AS bank_selects_table,
	   has_table_privilege('opapi_stats', 'opapi.people', 'SELECT') AS stats_selects_table;

--
-- suspend / resume / revoke: the transitions, and what is refused
--
SET ROLE opapi_op;
SELECT licdata.suspend_licence(:lic_default);
SELECT status, now() - status_changed_at < interval '1 minute' AS changed_recently FROM licdata.licences WHERE id = :lic_default;
SELECT * FROM opapi.try('SELECT licdata.suspend_licence(' || :lic_default || ')');	-- already suspended
SELECT licdata.resume_licence(:lic_default);
SELECT status FROM licdata.licences WHERE id = :lic_default;
SELECT * FROM opapi.try('SELECT licdata.resume_licence(' || :lic_default || ')');	-- already active
SELECT licdata.revoke_licence(:lic_default);
SELECT status FROM licdata.licences WHERE id = :lic_default;
-- a revoked licence is final
SELECT * FROM opapi.try('SELECT licdata.revoke_licence(' || :lic_default || ')');
SELECT * FROM opapi.try('SELECT licdata.resume_licence(' || :lic_default || ')');
SELECT * FROM opapi.try('SELECT licdata.suspend_licence(' || :lic_default || ')');
SELECT status FROM licdata.licences WHERE id = :lic_default;
-- a suspended licence can be revoked directly
SELECT licdata.grant_licence('opapi_bank', 'opapi.firms', '{statistics}') AS lic_tmp \gset
SELECT licdata.suspend_licence(:lic_tmp);
SELECT licdata.revoke_licence(:lic_tmp);
SELECT status FROM licdata.licences WHERE id = :lic_tmp;
RESET ROLE;

--
-- set_mask / drop_mask: dataset default, per licence, per licence and purpose
--
SET ROLE opapi_op;
SELECT licdata.set_mask('opapi.people', 'name', 'cn_name');
SELECT licdata.set_mask('opapi.people', 'name', 'partial', '{"keep_first": 1, "keep_last": 0, "pad": "某"}',
						licence_id => :lic_full);
SELECT licdata.set_mask('opapi.people', 'name', 'redact', '{"with": "***"}',
						licence_id => :lic_full, purpose => 'fraud_check');
SELECT licdata.set_mask('opapi.people', 'id_number', 'cn_id');
SELECT licdata.set_mask('opapi.people', 'id_number', 'pseudonym', '{"length": 18}', :lic_full, 'credit_assessment');
SELECT licdata.set_mask('opapi.people', 'born', 'date_trunc', '{"unit": "year"}');
SELECT licdata.set_mask('opapi.people', 'salary', 'bucket', '{"width": 1000}', :lic_stats);
RESET ROLE;
SELECT column_name, method, params,
	   CASE WHEN licence_id IS NULL THEN 'dataset' WHEN licence_id = :lic_full THEN 'lic_full'
			WHEN licence_id = :lic_stats THEN 'lic_stats' END AS licence, purpose
  FROM licdata.masks WHERE dataset = 'opapi.people'::regclass
 ORDER BY column_name, licence_id NULLS FIRST, purpose NULLS FIRST;
-- setting a mask again at the same level replaces it (one row per level)
SET ROLE opapi_op;
SELECT licdata.set_mask('opapi.people', 'name', 'partial', '{"keep_first": 0, "keep_last": 1}');
SELECT licdata.set_mask('opapi.people', 'name', 'email', '{}', :lic_full, 'fraud_check');
RESET ROLE;
SELECT column_name, method, params,
	   CASE WHEN licence_id IS NULL THEN 'dataset' ELSE 'lic_full' END AS licence, purpose
  FROM licdata.masks WHERE dataset = 'opapi.people'::regclass AND column_name = 'name'
 ORDER BY licence_id NULLS FIRST, purpose NULLS FIRST;
-- drop_mask removes exactly the level it names
SET ROLE opapi_op;
SELECT licdata.drop_mask('opapi.people', 'name', :lic_full);
SELECT licdata.drop_mask('opapi.people', 'name', :lic_full);		-- gone already
SELECT licdata.drop_mask('opapi.people', 'id_number', :lic_full);	-- only the purpose level exists
SELECT licdata.drop_mask('opapi.people', 'id_number', :lic_full, 'credit_assessment');
RESET ROLE;
SELECT column_name, method,
	   CASE WHEN licence_id IS NULL THEN 'dataset' WHEN licence_id = :lic_full THEN 'lic_full'
			ELSE 'lic_stats' END AS licence, purpose
  FROM licdata.masks WHERE dataset = 'opapi.people'::regclass
 ORDER BY column_name, licence_id NULLS FIRST, purpose NULLS FIRST;

--
-- licdata.my_licences: each licensee sees its own licences only, with the
-- quotas left today; a member of a licensee sees the licensee's
--
SET ROLE opapi_bank;
SELECT dataset, description, purposes, columns, row_filter, mode, min_group_size, valid_from,
	   valid_until, status, usable_now, require_consent_ref, max_rows_per_query, max_rows_per_day,
	   rows_left_today, max_queries_per_day, queries_left_today, price_per_query, price_per_row
  FROM licdata.my_licences WHERE id = :lic_full \gx
-- its other licences: the default one and the temporary one, both revoked,
-- with the dataset's prices
SELECT CASE id WHEN :lic_default THEN 'lic_default' WHEN :lic_tmp THEN 'lic_tmp' END AS licence,
	   dataset, purposes, status, usable_now, rows_left_today, price_per_query, price_per_row
  FROM licdata.my_licences WHERE id <> :lic_full ORDER BY id;
SET ROLE opapi_analyst;
SELECT count(*) AS analyst_sees, count(*) FILTER (WHERE id = :lic_full) AS of_which_lic_full
  FROM licdata.my_licences;
SET ROLE opapi_stats;
SELECT id = :lic_stats AS is_lic_stats, dataset, purposes, mode, min_group_size, usable_now,
	   rows_left_today, queries_left_today, price_per_query, price_per_row
  FROM licdata.my_licences;
SET ROLE opapi_nobody;
SELECT count(*) AS nobody_sees FROM licdata.my_licences;
SET ROLE opapi_op;
SELECT count(*) AS operator_sees FROM licdata.my_licences;
RESET ROLE;
-- suspended: still listed, not usable now
SELECT licdata.suspend_licence(:lic_full);
SET ROLE opapi_bank;
SELECT status, usable_now FROM licdata.my_licences WHERE id = :lic_full;
RESET ROLE;
SELECT licdata.resume_licence(:lic_full);

--
-- a licensee (or a member of one) cannot run the operator API, read the
-- catalog or the records, or write the catalog
--
SET ROLE opapi_analyst;
SELECT licdata.publish('opapi.own_rls');
SELECT licdata.unpublish('opapi.people');
SELECT licdata.register_licensee('opapi_nobody', 'X');
SELECT licdata.grant_licence('opapi_bank', 'opapi.people', '{credit_assessment}');
SELECT licdata.suspend_licence(:lic_full);
SELECT licdata.resume_licence(:lic_full);
SELECT licdata.revoke_licence(:lic_full);
SELECT licdata.set_mask('opapi.people', 'name', 'redact');
SELECT licdata.drop_mask('opapi.people', 'born');
SELECT * FROM licdata.datasets;
SELECT * FROM licdata.licensees;
SELECT * FROM licdata.licences;
SELECT * FROM licdata.masks;
SELECT * FROM licdata.authorities;
SELECT * FROM licdata.usage;
SELECT * FROM licdata.audit_log;
UPDATE licdata.licences SET max_rows_per_day = NULL WHERE id = :lic_full;
INSERT INTO licdata.licensees (licensee, org_name) VALUES ('opapi_nobody', 'X');
-- the internal helpers run with the caller's rights, so they are no way round
SELECT licdata_internal._set_licence_status(:lic_full, 'active');
SELECT licdata_internal._published('opapi.people');
RESET ROLE;
SELECT status, max_rows_per_day FROM licdata.licences WHERE id = :lic_full;

-- the privileges behind that, for a licensee, an auditor and a bystander
SELECT r.rolname, p.oid::regprocedure AS function
  FROM pg_proc p, (VALUES ('opapi_bank'), ('opapi_analyst'), ('opapi_auditor'), ('opapi_nobody')) r(rolname)
 WHERE p.pronamespace = 'licdata'::regnamespace
   AND p.proname IN ('publish', 'unpublish', 'register_licensee', 'grant_licence', 'suspend_licence',
					 'resume_licence', 'revoke_licence', 'set_mask', 'drop_mask', 'purge_records',
					 'rotate_master_key', 'unmask_fpe', '_check_row_filter', '_check_mask',
					 '_is_licensee_member', '_flush_record', '_set_records_writable')
   AND has_function_privilege(r.rolname, p.oid, 'EXECUTE')
 ORDER BY r.rolname, p.oid::regprocedure::text;
SELECT r.rolname, t.tbl::regclass AS catalog_table,
	   has_table_privilege(r.rolname, t.tbl::regclass, 'SELECT') AS can_select,
	   has_table_privilege(r.rolname, t.tbl::regclass, 'INSERT, UPDATE, DELETE, TRUNCATE') AS can_write
  FROM (VALUES ('opapi_bank'), ('opapi_op'), ('opapi_auditor')) r(rolname),
	   (VALUES ('licdata.datasets'), ('licdata.licensees'), ('licdata.licences'), ('licdata.masks'),
			   ('licdata.authorities'), ('licdata.usage'), ('licdata.audit_log')) t(tbl)
 ORDER BY r.rolname, t.tbl;

--
-- an auditor reads usage and audit records and verifies the trail, and
-- cannot run the operator API
--
SET ROLE opapi_auditor;
SELECT count(*) >= 0 AS reads_usage FROM licdata.usage;
SELECT count(*) >= 0 AS reads_audit_log FROM licdata.audit_log;
SELECT count(*) AS verify_audit_runs FROM licdata.verify_audit();
SELECT count(*) AS auditor_sees_opapi_datasets FROM licdata.datasets WHERE dataset::text LIKE 'opapi.%';
SELECT licdata.publish('opapi.own_rls');
SELECT licdata.register_licensee('opapi_nobody', 'X');
SELECT licdata.grant_licence('opapi_bank', 'opapi.people', '{credit_assessment}');
SELECT licdata.revoke_licence(:lic_full);
SELECT licdata.set_mask('opapi.people', 'name', 'redact');
UPDATE licdata.licences SET status = 'revoked' WHERE id = :lic_full;
RESET ROLE;
-- a role that is nobody in licdata
SET ROLE opapi_nobody;
SELECT licdata.publish('opapi.own_rls');
SELECT licdata.revoke_licence(:lic_full);
SELECT count(*) FROM licdata.usage;
RESET ROLE;
SELECT status FROM licdata.licences WHERE id = :lic_full;

--
-- clean up: revoke, unpublish, then remove the catalog rows (there is no
-- API to unregister a licensee or delete a licence) and the roles
--
SELECT licdata.revoke_licence(id) FROM licdata.licences
 WHERE dataset::text LIKE 'opapi.%' AND status <> 'revoked' ORDER BY id;
SELECT licdata.unpublish('opapi.people');
SELECT licdata.unpublish('opapi.firms');
SELECT count(*) AS masks_left FROM licdata.masks WHERE dataset::text LIKE 'opapi.%';
DELETE FROM licdata.licences WHERE licensee IN ('opapi_bank'::regrole, 'opapi_stats'::regrole);
DELETE FROM licdata.licensees WHERE licensee IN ('opapi_bank'::regrole, 'opapi_stats'::regrole);
DELETE FROM licdata.datasets WHERE dataset::text LIKE 'opapi.%';
DROP SCHEMA opapi CASCADE;
DROP ROLE opapi_op, opapi_auditor, opapi_analyst, opapi_bank, opapi_stats, opapi_nobody;
