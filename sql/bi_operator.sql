-- A non-superuser member of licdata_operator does an operator's whole job on
-- datasets published in schemas it was given no privilege on: reads them
-- (1.0 failed here: "permission denied for schema"), registers and licenses
-- a licensee, masks, reads usage and audit, bills, verifies, unpublishes.
-- (Publishing names the table, so whoever publishes must be able to name it:
-- the schema's owner, a superuser, or an operator given USAGE on it.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 9000, false);
CREATE SCHEMA biop;
CREATE TABLE biop.people (id integer PRIMARY KEY, name text, region text);
INSERT INTO biop.people SELECT g, '张三' || g, CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END
  FROM generate_series(1, 6) g;
CREATE SCHEMA biop2;
CREATE TABLE biop2.parted (id integer, region text) PARTITION BY LIST (region);
CREATE TABLE biop2.parted_bj PARTITION OF biop2.parted FOR VALUES IN ('bj');
INSERT INTO biop2.parted VALUES (1, 'bj'), (2, 'bj');
CREATE ROLE biop_op LOGIN IN ROLE licdata_operator;
CREATE ROLE biop_bank LOGIN;

SELECT has_schema_privilege('biop_op', 'biop', 'USAGE') AS op_uses_schema_before;
SELECT licdata.publish('biop.people', 'people', 0.5, 0.01);
SELECT licdata.publish('biop2.parted');
SELECT has_schema_privilege('biop_op', 'biop', 'USAGE') AS op_uses_schema,
	   has_schema_privilege('biop_op', 'biop2', 'USAGE') AS op_uses_schema2,
	   has_schema_privilege('biop_op', 'biop', 'CREATE') AS op_creates_in_schema;

SET ROLE biop_op;
-- the operator reads the datasets it publishes (raw; its reads are audited)
SELECT id, name, region FROM biop.people ORDER BY id LIMIT 2;
SELECT count(*) FROM biop2.parted;
COPY (SELECT count(*) FROM biop.people) TO STDOUT;
SELECT licdata.register_licensee('biop_bank', 'Bank', purpose_scope => 'transaction');
SELECT licdata.alter_licensee('biop_bank', 'session');
SELECT licdata.grant_licence('biop_bank', 'biop.people', ARRAY['credit_assessment'],
							 columns => ARRAY['id', 'name'], row_filter => 'region = ''bj''') AS lic \gset
SELECT licdata.set_mask('biop.people', 'name', 'cn_name');
RESET ROLE;

SET ROLE biop_bank;
SET licdata.purpose = 'credit_assessment';
SELECT id, name FROM biop.people ORDER BY id;
RESET licdata.purpose;
RESET ROLE;

SET ROLE biop_op;
SELECT licdata.flush();
SELECT licensee, rows, outcome, amount FROM licdata.usage WHERE licence_id = :lic;
SELECT count(*) > 0 AS audited_own_reads FROM licdata.audit_log
 WHERE role_name = 'biop_op' AND 'biop.people'::regclass = ANY (datasets);
SELECT licence_id, queries, rows, amount
  FROM licdata.invoice('biop_bank', now() - interval '1 day', now() + interval '1 day');
SELECT ok FROM licdata.verify_audit();
SELECT licdata.suspend_licence(:lic);
SELECT licdata.revoke_licence(:lic);
SELECT licdata.unpublish('biop2.parted');
RESET ROLE;
