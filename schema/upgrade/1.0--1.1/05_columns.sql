/*
 * 1.0 -> 1.1, columns: every column 1.1 adds to a 1.0 table, first and in
 * the order the fresh install has them (appended at the end of each table),
 * so that the later steps' functions and views find them.
 */
-- licences: the lookup quota (token()), data products, unlicensed columns
ALTER TABLE licdata.licences ALTER COLUMN dataset DROP NOT NULL;
ALTER TABLE licdata.licences ADD COLUMN max_lookups_per_day bigint CHECK (max_lookups_per_day > 0);
ALTER TABLE licdata.licences ADD COLUMN product regprocedure;
ALTER TABLE licdata.licences ADD COLUMN max_calls_per_day bigint CHECK (max_calls_per_day > 0);
ALTER TABLE licdata.licences
	ADD COLUMN unlicensed_columns text NOT NULL DEFAULT 'refuse' CHECK (unlicensed_columns IN ('refuse', 'null'));
-- licensees: purpose and consent reference per session or per transaction
ALTER TABLE licdata.licensees
	ADD COLUMN purpose_scope text NOT NULL DEFAULT 'session' CHECK (purpose_scope IN ('session', 'transaction'));
-- usage: a data product's calls in the statement
ALTER TABLE licdata.usage ADD COLUMN calls bigint NOT NULL DEFAULT 0;
-- usage, audit_log: the node a statement ran on (read replicas)
ALTER TABLE licdata.usage ADD COLUMN node text;
ALTER TABLE licdata.audit_log ADD COLUMN node text;
