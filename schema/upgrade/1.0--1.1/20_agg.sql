/*
 * 20_agg.sql -- aggregate-only licences and row counting (helper "agg").
 *
 * The 1.0 group gate licdata_internal._agg_gate(bigint, integer) was callable by any
 * licensee; the 1.1 gate takes the distinct and total row counts and an
 * internal argument only the rewrite can supply.  New: the row counters
 * the rewrite puts where a statement folds dataset rows into one value.
 */
DROP FUNCTION licdata_internal._agg_gate(bigint, integer);

CREATE FUNCTION licdata_internal._agg_gate(distinct_rows bigint, rows bigint, min_group_size integer,
								  internal) RETURNS boolean
	LANGUAGE C VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'licdata_agg_gate_internal';

CREATE FUNCTION licdata_internal._count_row(boolean, internal) RETURNS boolean
	LANGUAGE C VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'licdata_count_row';
CREATE FUNCTION licdata_internal._count_value(anyelement, internal) RETURNS anyelement
	LANGUAGE C VOLATILE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'licdata_count_value';
