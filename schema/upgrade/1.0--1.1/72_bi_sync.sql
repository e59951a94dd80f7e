/*
 * 1.0 -> 1.1, BI visibility (after 71_bi_clients.sql, the same file as
 * schema/70_clients.sql): bring a 1.0 installation's privileges in step.
 */
-- Bring a 1.0 installation's privileges in step: operators may name every
-- published dataset, licensees hold SELECT on what their licences cover.
DO $usage$
DECLARE
	s name;
BEGIN
	FOR s IN SELECT DISTINCT n.nspname FROM licdata.datasets d
				JOIN pg_catalog.pg_class c ON c.oid = d.dataset
				JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			  WHERE d.unpublished_at IS NULL
	LOOP
		EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO licdata_operator', s);
	END LOOP;
END
$usage$;
SELECT licdata_internal._sync_privileges_due(NULL);
