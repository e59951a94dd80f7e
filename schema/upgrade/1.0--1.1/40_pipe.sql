/*
 * 40_pipe.sql -- the records pipeline (1.0 -> 1.1).
 *
 * The background worker moves journal records in C (batches, prepared
 * inserts, the audit hash chain computed in C): the plpgsql movers and the
 * checkpoint helper they called are gone.  New: licdata.usage.calls,
 * the 'quarantined' audit decision, licdata.quarantine,
 * licdata.journal_status.  Cheaper records: usage loses its unique index
 * on (journal_ref, licence_id, dataset) (audit_log's UNIQUE journal_ref,
 * written in the same transaction, is the one idempotency check) and
 * usage_licence_at; the time indexes of both tables become BRIN.
 */
DROP FUNCTION licdata_internal._flush_records(jsonb);
DROP FUNCTION licdata_internal._flush_record(jsonb);
DROP FUNCTION licdata_internal._checkpoint_if_due(integer);

ALTER TABLE licdata.usage DROP CONSTRAINT usage_journal_ref_licence_id_dataset_key;
DROP INDEX licdata.usage_licence_at;
CREATE INDEX usage_at ON licdata.usage USING brin (at);
DROP INDEX licdata.audit_log_at;
CREATE INDEX audit_log_at ON licdata.audit_log USING brin (at);

-- product calls (data products, 70_products.sql)

ALTER TABLE licdata.audit_log DROP CONSTRAINT audit_log_decision_check;
ALTER TABLE licdata.audit_log ADD CONSTRAINT audit_log_decision_check
	CHECK (decision IN ('allow', 'deny', 'quarantined'));

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
