-- Licence enforcement: every path by which a licensee's query can reach a
-- published table is served through the licence for the declared purpose:
-- only licensed rows, only licensed columns, masked values.  Errors of
-- class LD before any row is read.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 1000, false);
CREATE SCHEMA enf;
CREATE TABLE enf.people (
	id integer PRIMARY KEY,
	id_number varchar(18) NOT NULL,
	name text,
	region text,
	salary numeric(10,2)
);
INSERT INTO enf.people
SELECT g, '11010519800101' || lpad(g::text, 4, '0'), (ARRAY['张三','李四','王五','欧阳娜娜'])[g % 4 + 1],
	   CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END, 10000 + g
  FROM generate_series(1, 20) g;
CREATE TABLE enf.base (id int, region text);
CREATE TABLE enf.base_child (extra text) INHERITS (enf.base);
INSERT INTO enf.base VALUES (1, 'bj'), (2, 'sh');
INSERT INTO enf.base_child VALUES (3, 'bj', 'x'), (4, 'sh', 'y');
CREATE TABLE enf.unlicensed (id int);
INSERT INTO enf.unlicensed VALUES (1);
CREATE ROLE enf_bank NOLOGIN;
CREATE ROLE enf_analyst LOGIN IN ROLE enf_bank;
CREATE ROLE enf_other LOGIN;
CREATE SCHEMA enf_own AUTHORIZATION enf_analyst;
SELECT licdata.publish('enf.people', 'people', 1, 0.01);
SELECT licdata.publish('enf.unlicensed');
SELECT licdata.publish('enf.base');
SELECT licdata.register_licensee('enf_bank', 'Bank');
SELECT licdata.grant_licence('enf_bank', 'enf.people', ARRAY['credit_assessment', 'risk'],
							 columns => ARRAY['id', 'id_number', 'name', 'region'],
							 row_filter => 'region = ''bj''');
SELECT licdata.set_mask('enf.people', 'name', 'cn_name');
SELECT licdata.set_mask('enf.people', 'id_number', 'partial', '{"keep_first": 6, "keep_last": 4}');
SELECT licdata.grant_licence('enf_bank', 'enf.base', ARRAY['credit_assessment'], row_filter => 'region = ''bj''');
-- a licence-specific mask for one purpose only
SELECT licdata.set_mask('enf.people', 'id_number', 'redact', '{"with": "hidden"}', 1000, 'risk');

SET ROLE enf_analyst;
-- LD001: no purpose
SELECT id FROM enf.people;
SET licdata.purpose = 'marketing';
-- LD002: purpose not licensed (lists the licensed ones)
SELECT id FROM enf.people;
SET licdata.purpose = 'credit_assessment';
-- LD005: no licence for this dataset
SELECT * FROM enf.unlicensed;
-- LD003: column outside the licence
SELECT salary FROM enf.people;
SELECT id FROM enf.people WHERE salary > 0;
SELECT id FROM enf.people ORDER BY salary;
SELECT p FROM enf.people p;

-- served: only rows with region = 'bj', masked
SELECT id, id_number, name, region FROM enf.people ORDER BY id LIMIT 3;
SELECT count(*) FROM enf.people;
-- the purpose-specific mask
SET licdata.purpose = 'risk';
SELECT id, id_number FROM enf.people ORDER BY id LIMIT 2;
SET licdata.purpose = 'credit_assessment';

-- paths: CTE, subquery, set operation, LATERAL, sublink
WITH c AS (SELECT id, name FROM enf.people) SELECT count(*), min(id) FROM c;
SELECT count(*) FROM (SELECT id FROM enf.people WHERE id < 10) s;
SELECT id FROM enf.people WHERE id < 5 UNION SELECT id FROM enf.people WHERE id > 18 ORDER BY 1;
SELECT x.id, y.name FROM enf.people x, LATERAL (SELECT name FROM enf.people z WHERE z.id = x.id) y ORDER BY 1 LIMIT 2;
SELECT (SELECT count(*) FROM enf.people) AS n, EXISTS (SELECT 1 FROM enf.people WHERE id = 3) AS odd_row_seen;
-- the licensee's own view
CREATE VIEW enf_own.v AS SELECT id, name FROM enf.people;
SELECT * FROM enf_own.v ORDER BY id LIMIT 2;
-- SQL function (not inlined in a licensee session), plpgsql function
CREATE FUNCTION enf_own.names_sql() RETURNS SETOF text LANGUAGE sql AS 'SELECT name FROM enf.people ORDER BY id';
SELECT * FROM enf_own.names_sql() LIMIT 2;
CREATE FUNCTION enf_own.names_plpgsql() RETURNS SETOF text LANGUAGE plpgsql
	AS 'BEGIN RETURN QUERY SELECT name FROM enf.people ORDER BY id; END';
SELECT count(*) FROM enf_own.names_plpgsql();
CREATE FUNCTION enf_own.n_inline() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM enf.people';
SELECT enf_own.n_inline();
-- prepared statements and cursors
PREPARE p1(int) AS SELECT id, name FROM enf.people WHERE id = $1;
EXECUTE p1(2);
EXECUTE p1(3);
BEGIN;
DECLARE c1 CURSOR FOR SELECT id, name FROM enf.people ORDER BY id;
FETCH 2 FROM c1;
FETCH 1 FROM c1;
CLOSE c1;
COMMIT;
-- COPY (query) TO and COPY table TO
COPY (SELECT id, name FROM enf.people ORDER BY id LIMIT 2) TO STDOUT;
COPY enf.people (id, region) TO STDOUT;
COPY enf.people TO STDOUT;
-- CREATE TABLE AS, materialized view
CREATE TABLE enf_own.copy AS SELECT id, id_number FROM enf.people;
SELECT count(*), min(id_number) FROM enf_own.copy;
CREATE MATERIALIZED VIEW enf_own.mv AS SELECT id, name FROM enf.people;
SELECT count(*) FROM enf_own.mv;
-- TABLESAMPLE
SELECT count(*) FROM enf.people TABLESAMPLE SYSTEM (100);
-- inheritance: the parent includes its child's rows, the child queried
-- directly is served under the parent's licence
SELECT id, region FROM enf.base ORDER BY id;
SELECT id, region, extra FROM enf.base_child ORDER BY id;
-- parallel query: workers read through the same licence
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT count(*), min(id_number), max(name) FROM enf.people;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
-- masked values everywhere: WHERE, GROUP BY, ORDER BY, window, DISTINCT
SELECT count(*) FROM enf.people WHERE id_number = '110105198001010002';
SELECT count(*) FROM enf.people WHERE id_number = '110105********0002';
SELECT name, count(*) FROM enf.people GROUP BY name ORDER BY name;
SELECT DISTINCT left(id_number, 8) FROM enf.people;
SELECT id, row_number() OVER (ORDER BY id_number DESC) FROM enf.people ORDER BY id LIMIT 2;
-- casts in error messages show the masked value
SELECT id_number::bigint FROM enf.people WHERE id = 2;
-- writes and locks are refused
UPDATE enf.people SET name = 'x';
DELETE FROM enf.people;
INSERT INTO enf.people (id, id_number) VALUES (99, 'x');
SELECT id FROM enf.people FOR UPDATE;
-- system columns are never licensed
SELECT ctid FROM enf.people;
-- statistics of a published table show the licensee nothing
SELECT count(*) FROM pg_stats WHERE schemaname = 'enf';
SELECT count(*) FROM pg_stats_ext WHERE schemaname = 'enf';
RESET ROLE;

-- an operator's view granted to the licensee is served through the licence too
CREATE VIEW enf.op_view AS SELECT id, name, region FROM enf.people;
CREATE VIEW enf.op_view_salary AS SELECT id, salary FROM enf.people;
GRANT SELECT ON enf.op_view, enf.op_view_salary TO enf_bank;
SET ROLE enf_analyst;
SELECT * FROM enf.op_view ORDER BY id LIMIT 2;
SELECT * FROM enf.op_view_salary;
RESET ROLE;

-- a role that is neither licensee nor operator reads nothing without a GRANT
SET ROLE enf_other;
SET licdata.purpose = 'credit_assessment';
SELECT count(*) FROM enf.people;
RESET ROLE;

-- operators see raw data
SELECT id, id_number, name, salary FROM enf.people ORDER BY id LIMIT 2;

-- changes take effect at the next statement
SET ROLE enf_analyst;
PREPARE p2 AS SELECT count(*) FROM enf.people;
EXECUTE p2;
EXECUTE p2;
EXECUTE p2;
EXECUTE p2;
EXECUTE p2;
EXECUTE p2;
RESET ROLE;
SELECT licdata.suspend_licence(1000);
SET ROLE enf_analyst;
EXECUTE p2;
RESET ROLE;
SELECT licdata.resume_licence(1000);
SET ROLE enf_analyst;
EXECUTE p2;
SET licdata.purpose = 'marketing';
EXECUTE p2;
SET licdata.purpose = 'credit_assessment';
BEGIN;
SET LOCAL licdata.purpose = 'risk';
SELECT id, id_number FROM enf.people ORDER BY id LIMIT 1;
COMMIT;
SELECT id, id_number FROM enf.people ORDER BY id LIMIT 1;
RESET ROLE;
-- a changed row filter applies to the already prepared statement
UPDATE licdata.licences SET row_filter = 'id <= 4' WHERE id = 1000;
SET ROLE enf_analyst;
EXECUTE p2;
RESET ROLE;
-- validity: not yet valid, expired
UPDATE licdata.licences SET valid_from = '2999-01-01 00:00+00', valid_until = '2999-12-31 00:00+00' WHERE id = 1000;
SET ROLE enf_analyst;
EXECUTE p2;
RESET ROLE;
UPDATE licdata.licences SET valid_from = '2020-01-01 00:00+00', valid_until = '2021-01-01 00:00+00' WHERE id = 1000;
SET ROLE enf_analyst;
EXECUTE p2;
RESET ROLE;
-- consent reference required
UPDATE licdata.licences SET valid_until = NULL, require_consent_ref = true WHERE id = 1000;
SET ROLE enf_analyst;
EXECUTE p2;
SET licdata.consent_ref = 'LOAN-2026-0001';
EXECUTE p2;
RESET licdata.consent_ref;
RESET ROLE;
SELECT licdata.revoke_licence(1000);
SET ROLE enf_analyst;
EXECUTE p2;
DEALLOCATE ALL;
RESET ROLE;

-- every denial above is in the audit trail
SELECT licdata.flush();
SELECT sqlstate, count(*) FROM licdata.audit_log
 WHERE decision = 'deny' AND 'enf.people' = ANY (dataset_names) GROUP BY sqlstate ORDER BY sqlstate;

-- DDL that would change what licences serve is refused while published
ALTER TABLE enf.people RENAME COLUMN name TO full_name;
ALTER TABLE enf.people ALTER COLUMN region TYPE varchar(2);
-- a dropped published table is unpublished and its licences revoked
CREATE TABLE enf.doomed (id int);
SELECT licdata.publish('enf.doomed');
SELECT licdata.grant_licence('enf_bank', 'enf.doomed', ARRAY['credit_assessment']);
SELECT 'enf.doomed'::regclass::oid AS doomed \gset
DROP TABLE enf.doomed;
SELECT unpublished_at IS NOT NULL AS unpublished FROM licdata.datasets WHERE dataset::oid = :doomed;
SELECT status FROM licdata.licences WHERE dataset::oid = :doomed;

-- clean up
DROP SCHEMA enf_own CASCADE;
SELECT licdata.revoke_licence(id) FROM licdata.licences
 WHERE dataset IN ('enf.people'::regclass, 'enf.base'::regclass) AND status <> 'revoked';
SELECT licdata.unpublish('enf.people');
SELECT licdata.unpublish('enf.unlicensed');
SELECT licdata.unpublish('enf.base');
DROP SCHEMA enf CASCADE;
DROP ROLE enf_analyst, enf_other;
DROP ROLE enf_bank;
