/*
 * 50_licensee.sql -- what a licensee sees of licdata: its own licences and
 * usage, the group gate of aggregate licences, and licdata.token.
 */

CREATE FUNCTION licdata_internal._my_licensee() RETURNS regrole
	LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'licdata_my_licensee';

CREATE FUNCTION licdata_internal._quota_used(licence_id bigint, OUT queries bigint, OUT rows bigint)
	LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', 'licdata_quota_used';

-- licdata.token() calls of a licence today (the caller's own licences only)
CREATE FUNCTION licdata_internal._lookups_used(licence_id bigint) RETURNS bigint
	LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', 'licdata_lookups_used';

-- The group threshold of aggregate-only licences (inserted by the rewrite;
-- the internal argument keeps SQL from calling it).
CREATE FUNCTION licdata_internal._agg_gate(distinct_rows bigint, rows bigint, min_group_size integer,
								  internal) RETURNS boolean
	LANGUAGE C VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'licdata_agg_gate_internal';

-- Row counters the rewrite puts where a licensee statement folds dataset
-- rows into one value (collection aggregates, ARRAY and scalar subqueries,
-- window functions): each evaluation counts one row into the running
-- statement, against its quotas.  SQL cannot call them: no SQL expression
-- has type internal (not even NULL::internal).
CREATE FUNCTION licdata_internal._count_row(boolean, internal) RETURNS boolean
	LANGUAGE C VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'licdata_count_row';
CREATE FUNCTION licdata_internal._count_value(anyelement, internal) RETURNS anyelement
	LANGUAGE C VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'licdata_count_value';

CREATE VIEW licdata.my_licences WITH (security_barrier) AS
	SELECT l.id, l.dataset, d.description, l.purposes, l.columns, l.row_filter, l.mode,
		   l.min_group_size, l.valid_from, l.valid_until, l.status,
		   (l.status = 'active' AND l.valid_from <= now()
			AND (l.valid_until IS NULL OR l.valid_until > now())) AS usable_now,
		   l.require_consent_ref, l.max_rows_per_query,
		   l.max_rows_per_day, l.max_rows_per_day - q.rows AS rows_left_today,
		   l.max_queries_per_day, l.max_queries_per_day - q.queries AS queries_left_today,
		   coalesce(l.price_per_query, d.price_per_query) AS price_per_query,
		   coalesce(l.price_per_row, d.price_per_row) AS price_per_row,
		   l.unlicensed_columns,
		   l.max_lookups_per_day, l.max_lookups_per_day - licdata_internal._lookups_used(l.id) AS lookups_left_today
	  FROM licdata.licences l
	  JOIN licdata.datasets d ON d.dataset = l.dataset
	  CROSS JOIN LATERAL licdata_internal._quota_used(l.id) q
	 WHERE l.licensee = licdata_internal._my_licensee();
COMMENT ON VIEW licdata.my_licences IS 'The caller''s licences: datasets, purposes, columns, validity, quotas left today';

CREATE VIEW licdata.my_usage WITH (security_barrier) AS
	SELECT u.id, u.at, u.licence_id, u.dataset, u.session_user_name, u.purpose, u.consent_ref,
		   u.query_id, u.statement, u.rows, u.rows_delivered, u.rows_aggregated, u.duration_ms,
		   u.outcome, u.sqlstate, u.amount
	  FROM licdata.usage u
	 WHERE u.licensee = licdata_internal._my_licensee();
COMMENT ON VIEW licdata.my_usage IS 'The caller''s own usage rows';

GRANT SELECT ON licdata.my_licences, licdata.my_usage TO PUBLIC;

-- Volatile: each call is metered (a side effect), and the planner must not
-- evaluate it while estimating.
CREATE FUNCTION licdata.token(dataset regclass, column_name name, value text) RETURNS text
	LANGUAGE C VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'licdata_token';
COMMENT ON FUNCTION licdata.token(regclass, name, text) IS
	'This licensee''s masked form of a value it already holds, to look it up in a masked column';
