-- Every read of a dataset by an operator or a superuser is audited (attack
-- class 7), COPY dataset TO included: COPY of a table reads it without the
-- executor (for a superuser, or any role row-level security does not
-- apply to), so it used to leave no audit row where SELECT did.  pg_dump
-- reads tables that way (COPY ... TO stdout); test/t/050_race_copy_audit.pl
-- dumps a published table.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
CREATE SCHEMA hcp;
CREATE TABLE hcp.t (id integer, region text, secret text);
INSERT INTO hcp.t SELECT g, CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END, 'secret ' || g
  FROM generate_series(1, 20) g;
CREATE TABLE hcp.part (id integer, region text) PARTITION BY LIST (region);
CREATE TABLE hcp.part_bj PARTITION OF hcp.part FOR VALUES IN ('bj');
CREATE TABLE hcp.part_sh PARTITION OF hcp.part FOR VALUES IN ('sh');
INSERT INTO hcp.part SELECT g, CASE WHEN g % 4 = 0 THEN 'bj' ELSE 'sh' END FROM generate_series(1, 12) g;
CREATE TABLE hcp.plain (id integer);
INSERT INTO hcp.plain VALUES (1), (2);
SELECT licdata.publish('hcp.t') IS NOT NULL AS published;
SELECT licdata.publish('hcp.part') IS NOT NULL AS published;
CREATE ROLE hcp_op LOGIN IN ROLE licdata_operator;
GRANT USAGE ON SCHEMA hcp TO hcp_op;

-- a superuser: each COPY TO of a published table (or of a partition of one)
COPY hcp.t TO stdout;
COPY hcp.t (id, secret) TO stdout WITH (FORMAT csv);
COPY hcp.part_bj TO stdout;
COPY (SELECT id FROM hcp.t WHERE id <= 3) TO stdout;
-- a COPY inside a function
DO $$BEGIN EXECUTE 'COPY hcp.t TO ''/dev/null'''; END$$;
-- a COPY of another dataset inside a function of an audited statement:
-- that statement's audit row names both datasets
CREATE FUNCTION hcp.copy_part() RETURNS integer LANGUAGE plpgsql AS
	$$BEGIN EXECUTE 'COPY hcp.part_sh TO ''/dev/null'''; RETURN 1; END$$;
SELECT hcp.copy_part(), count(*) FROM hcp.t;
-- an operator role (row-level security applies: its COPY runs a query)
SET SESSION AUTHORIZATION hcp_op;
COPY hcp.t (id) TO stdout;
RESET SESSION AUTHORIZATION;
-- a table that is not published: not audited
COPY hcp.plain TO stdout;

SELECT licdata.flush();
-- one audit row per COPY, with the rows it read
SELECT CASE WHEN role_name = current_user THEN 'superuser' ELSE role_name END AS who,
	   kind, decision, dataset_names, rows, statement
  FROM licdata.audit_log
 WHERE statement ~ 'hcp\.' AND kind = 'operator'
 ORDER BY seq;
