/*
 * 40_records.sql -- usage (billing) and audit records, and what reads them.
 *
 * The tables made here hold the records of before 1.1; 85_packed.sql moves
 * them to licdata_internal (usage_rows, audit_rows) and makes licdata.usage
 * and licdata.audit_log views over them and the record batches the
 * background worker (src/worker.c) stores since.  A trigger refuses every
 * other write, even an operator's.  Each journal record has a unique
 * reference, and licdata_internal.journal_moved (85_packed.sql) keeps a
 * replay after a crash from moving anything twice.  audit_log is a SHA-256
 * hash chain: each row's hash covers its content and the previous row's
 * hash (licdata_internal._audit_bytes; the worker computes the same bytes in
 * C).  A record the worker cannot move goes to licdata.quarantine, with an
 * audit row (decision 'quarantined') in its place in the chain.
 */

CREATE TABLE licdata.usage (
	id					bigserial PRIMARY KEY,
	at					timestamptz NOT NULL,
	ended_at			timestamptz,
	licence_id			bigint,
	licensee			regrole,
	dataset				regclass,
	session_user_name	name,
	role_name			name,
	purpose				text,
	consent_ref			text,
	query_id			bigint,
	statement			text,
	statement_is_hash	boolean NOT NULL DEFAULT false,
	rows				bigint NOT NULL,
	rows_delivered		bigint NOT NULL,
	rows_in_functions	bigint NOT NULL,
	rows_aggregated		bigint NOT NULL,
	duration_ms			double precision,
	outcome				text NOT NULL CHECK (outcome IN ('ok', 'error', 'cancelled')),
	sqlstate			text,
	mode				text NOT NULL DEFAULT 'rows',
	amount				numeric NOT NULL,
	journal_ref			text NOT NULL,
	-- data products (70_products.sql): calls of the product in the statement
	calls				bigint NOT NULL DEFAULT 0,
	-- read replicas (45_replicas.sql): the node the statement ran on
	node				text
);
-- A licensee's records of a period (invoices, statements, my_usage); every
-- record of a period (quota rebuild: today; closing a month): rows come in
-- roughly in time order, so a BRIN index on at is small and cheap to keep.
CREATE INDEX usage_licensee_at ON licdata.usage (licensee, at);
CREATE INDEX usage_at ON licdata.usage USING brin (at);
COMMENT ON TABLE licdata.usage IS 'Billing: one row per licence used by each licensee statement';
COMMENT ON COLUMN licdata.usage.rows IS 'Rows billed: the larger of rows_delivered and rows_in_functions';

CREATE TABLE licdata.audit_log (
	seq					bigint PRIMARY KEY,
	at					timestamptz NOT NULL,
	role_name			name,
	session_user_name	name,
	licensee			regrole,
	licensee_name		text,
	kind				text NOT NULL CHECK (kind IN ('licensee', 'operator')),
	purpose				text,
	consent_ref			text,
	datasets			regclass[],
	dataset_names		text[],
	licence_ids			bigint[],
	decision			text NOT NULL CHECK (decision IN ('allow', 'deny', 'quarantined')),
	sqlstate			text,
	statement			text,
	rows				bigint,
	journal_ref			text NOT NULL UNIQUE,
	prev_hash			bytea NOT NULL,
	hash				bytea NOT NULL,
	node				text
);
CREATE INDEX audit_log_at ON licdata.audit_log USING brin (at);
COMMENT ON TABLE licdata.audit_log IS 'Audit trail: one row per statement that reached a dataset, allowed or denied; SHA-256 hash chain';

SELECT pg_catalog.pg_extension_config_dump('licdata.usage', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.usage_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.audit_log', '');

CREATE FUNCTION licdata_internal._records_guard() RETURNS trigger
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_records_guard';
CREATE TRIGGER records_guard BEFORE INSERT OR UPDATE OR DELETE ON licdata.usage
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._records_guard();
CREATE TRIGGER records_guard_truncate BEFORE TRUNCATE ON licdata.usage
	FOR EACH STATEMENT EXECUTE FUNCTION licdata_internal._records_guard();
CREATE TRIGGER records_guard BEFORE INSERT OR UPDATE OR DELETE ON licdata.audit_log
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._records_guard();
CREATE TRIGGER records_guard_truncate BEFORE TRUNCATE ON licdata.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION licdata_internal._records_guard();

GRANT SELECT ON licdata.usage, licdata.audit_log TO licdata_operator, licdata_auditor;

-- licdata_internal._audit_bytes, the bytes an audit row's hash covers, is
-- made in 85_packed.sql, for the row type of the view licdata.audit_log.

CREATE FUNCTION licdata.flush(timeout_seconds double precision DEFAULT 30) RETURNS boolean
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_flush';
COMMENT ON FUNCTION licdata.flush(double precision) IS
	'Wakes the background worker and waits until every record closed before the call is in licdata.usage and licdata.audit_log';

-- licdata.verify_audit() is defined with the signed checkpoints, in 60_authority.sql.

/*
 * The invoice of a licensee for a period, per licence and purpose, priced by
 * the plans (schema/80_pricing.sql): for each calendar month (UTC) the period
 * covers whole, the month's invoice lines (licdata.invoice_lines) summed per
 * licence and purpose, the monthly fee, cap and adjustments on a line with
 * purpose NULL; for a month it covers in part, the charges of the records in
 * that part (volumes counted from the start of the month), without the
 * monthly items.
 */
CREATE FUNCTION licdata.invoice(licensee regrole, period_start timestamptz, period_end timestamptz)
	RETURNS TABLE (licence_id bigint, dataset regclass, purpose text, queries bigint, rows bigint, amount numeric)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	lic regrole := licensee;
	ps timestamptz := period_start;
	pe timestamptz := period_end;
BEGIN
	PERFORM licdata_internal._not_null(lic, 'licensee');
	-- a dropped role's OID is allowed (its usage stays); 0 names no role
	IF lic::oid = 0 THEN
		RAISE EXCEPTION 'role with OID 0 does not exist'
			USING ERRCODE = 'undefined_object',
				  HINT = 'Pass the licensee by name, e.g. licensee => ''bank''.';
	END IF;
	PERFORM licdata_internal._not_null(ps, 'period_start');
	PERFORM licdata_internal._not_null(pe, 'period_end');
	IF pe <= ps THEN
		RAISE EXCEPTION 'period_end must be after period_start'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a period such as now() - interval ''1 month'' to now().';
	END IF;
	IF NOT isfinite(ps) OR NOT isfinite(pe) THEN
		RAISE EXCEPTION 'the period must be finite'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a period such as ''2025-03-01'' to ''2025-04-01''.';
	END IF;
	RETURN QUERY
		WITH months AS (
			SELECT g::date AS m, licdata_internal._month_start(g::date) AS ms, licdata_internal._month_end(g::date) AS me
			  FROM generate_series(licdata_internal._month_of(ps)::timestamp,
								   licdata_internal._month_of(pe - interval '1 microsecond')::timestamp,
								   interval '1 month') g
		), lines AS (
			SELECT b.licence_id, b.dataset, b.purpose, b.queries, b.rows, b.amount
			  FROM (SELECT * FROM months WHERE ps <= months.ms AND pe >= months.me) w,
				   LATERAL licdata_internal._bill_lines(lic, w.m) b
			UNION ALL
			SELECT b.licence_id, b.dataset, b.purpose, b.queries, b.rows, b.amount
			  FROM (SELECT * FROM months WHERE NOT (ps <= months.ms AND pe >= months.me)) p,
				   LATERAL licdata_internal._bill_compute(lic, p.m, greatest(ps, p.ms), least(pe, p.me), false) b
		)
		SELECT l.licence_id, l.dataset, l.purpose, sum(l.queries)::bigint, sum(l.rows)::bigint, sum(l.amount)
		  FROM lines l
		 GROUP BY l.licence_id, l.dataset, l.purpose
		 ORDER BY l.licence_id, l.purpose;
END
$$;
REVOKE ALL ON FUNCTION licdata.invoice(regrole, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.invoice(regrole, timestamptz, timestamptz) TO licdata_operator, licdata_auditor;

CREATE FUNCTION licdata_internal._set_records_writable(boolean) RETURNS boolean
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_set_records_writable';
REVOKE ALL ON FUNCTION licdata_internal._set_records_writable(boolean) FROM PUBLIC;

-- licdata.purge_records (retention) is made in 85_packed.sql.

/*
 * Records the flusher could not move (the tables refused them): the record's
 * bytes as they were in the journal and its fields as JSON, the error.  Its
 * audit row (decision 'quarantined') keeps the chain's place.
 */
CREATE TABLE licdata.quarantine (
	id					bigserial PRIMARY KEY,
	at					timestamptz NOT NULL DEFAULT now(),
	journal_ref			text NOT NULL UNIQUE,
	reason				text NOT NULL,
	sqlstate			text,
	record				jsonb,
	raw					bytea NOT NULL
);
COMMENT ON TABLE licdata.quarantine IS 'Journal records the background worker could not move into usage and audit_log, with the reason';
SELECT pg_catalog.pg_extension_config_dump('licdata.quarantine', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.quarantine_id_seq', '');
CREATE TRIGGER records_guard BEFORE INSERT OR UPDATE OR DELETE ON licdata.quarantine
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._records_guard();
CREATE TRIGGER records_guard_truncate BEFORE TRUNCATE ON licdata.quarantine
	FOR EACH STATEMENT EXECUTE FUNCTION licdata_internal._records_guard();
GRANT SELECT ON licdata.quarantine TO licdata_operator, licdata_auditor;

/*
 * The journal: per node and file, its bytes, the records not yet moved and
 * the oldest one's start; the flusher's records per second (its last pass
 * that moved records) and records moved since the server started.
 */
CREATE FUNCTION licdata_internal._journal_status(
	OUT node text, OUT file text, OUT bytes bigint, OUT records_pending bigint,
	OUT oldest_pending_at timestamptz, OUT flusher_records_per_second double precision,
	OUT records_moved bigint, OUT writer_done boolean)
	RETURNS SETOF record
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_journal_status';
REVOKE ALL ON FUNCTION licdata_internal._journal_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata_internal._journal_status() TO licdata_operator, licdata_auditor;
CREATE VIEW licdata.journal_status AS
	SELECT s.node, s.file, s.bytes, s.records_pending, s.oldest_pending_at,
		   s.flusher_records_per_second, s.records_moved, s.writer_done
	  FROM licdata_internal._journal_status() s;
REVOKE ALL ON licdata.journal_status FROM PUBLIC;
GRANT SELECT ON licdata.journal_status TO licdata_operator, licdata_auditor;
