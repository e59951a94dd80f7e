/*
 * 10_sec.sql -- enforcement against a hostile licensee (issue 10, classes
 * 1, 2, 3 and 8).
 */

-- Class 1: every plpgsql/SQL function resolves names under a pinned
-- search_path, whoever calls it.
ALTER FUNCTION licdata._not_null(anyelement, text, boolean) SET search_path = pg_catalog, pg_temp;

