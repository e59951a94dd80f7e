/*
 * 45_repl.sql -- read replicas (1.0 -> 1.1): usage.node and audit_log.node,
 * the licdata_replica role, licdata.replica_inbox, licdata.replica_nodes,
 * licdata.nodes, licdata_internal._receive_records, licdata.quota_leases,
 * licdata_internal._lease_quota and _return_quota.  The same objects as
 * schema/45_replicas.sql (whose statements follow the column additions).
 */
-- (usage.node and audit_log.node: added by 05_columns.sql)

COMMENT ON COLUMN licdata.usage.node IS 'Where the statement ran (licdata.node_name); NULL for records made before 1.1';
COMMENT ON COLUMN licdata.audit_log.node IS 'Where the statement ran (licdata.node_name); NULL for records made before 1.1; not covered by the hash';

DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'licdata_replica') THEN
		CREATE ROLE licdata_replica NOLOGIN;
	END IF;
END
$roles$;
COMMENT ON ROLE licdata_replica IS 'licdata: a standby hands its metering records to the primary (grant it to the LOGIN role of licdata.primary_conninfo)';

CREATE TABLE licdata.replica_inbox (
	id					bigserial PRIMARY KEY,
	received_at			timestamptz NOT NULL DEFAULT now(),
	journal_ref			text NOT NULL UNIQUE,
	node				text NOT NULL,
	dead				boolean NOT NULL,
	use_size			integer NOT NULL,
	record				bytea NOT NULL
);
COMMENT ON TABLE licdata.replica_inbox IS 'Journal records standbys handed over, until the background worker moves them into usage and audit_log';
SELECT pg_catalog.pg_extension_config_dump('licdata.replica_inbox', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.replica_inbox_id_seq', '');

CREATE TABLE licdata.replica_nodes (
	node				text PRIMARY KEY,
	first_contact		timestamptz NOT NULL,
	last_contact		timestamptz NOT NULL,
	records_pending		bigint NOT NULL DEFAULT 0,
	records_handed_over	bigint NOT NULL DEFAULT 0,
	batches				bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE licdata.replica_nodes IS 'Each standby that handed records to this primary (see licdata.nodes)';

CREATE VIEW licdata.nodes AS
	SELECT n.node, n.first_contact, n.last_contact,
		n.records_pending OPERATOR(pg_catalog.+)
			(SELECT pg_catalog.count(*) FROM licdata.replica_inbox i
			 WHERE i.node OPERATOR(pg_catalog.=) n.node) AS records_pending,
		n.records_handed_over, n.batches
	FROM licdata.replica_nodes n;
COMMENT ON VIEW licdata.nodes IS 'Each standby: last contact, records pending (held by the standby or waiting in the inbox), records handed over';
GRANT SELECT ON licdata.nodes, licdata.replica_nodes TO licdata_operator, licdata_auditor;

CREATE FUNCTION licdata_internal._receive_records(node text, records bytea, pending bigint)
	RETURNS bigint
	LANGUAGE C SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'licdata_receive_records';
REVOKE ALL ON FUNCTION licdata_internal._receive_records(text, bytea, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata_internal._receive_records(text, bytea, bigint) TO licdata_replica;
-- the one internal a standby's role calls: it needs the schema to name it
GRANT USAGE ON SCHEMA licdata_internal TO licdata_replica;

-- Day-quota leases (src/lease.c): a standby serves licences with day quotas
-- from chunks of quota it leases from the primary.  The primary counts a
-- chunk as used when it grants it; this table keeps what each standby was
-- granted and gave back, per UTC day and licence, so that a restarted
-- primary rebuilds its counters without granting the same quota twice.
CREATE TABLE licdata.quota_leases (
	day					date NOT NULL,
	node				text NOT NULL,
	licence_id			bigint NOT NULL,
	queries_granted		bigint NOT NULL DEFAULT 0,
	rows_granted		bigint NOT NULL DEFAULT 0,
	lookups_granted		bigint NOT NULL DEFAULT 0,
	queries_returned	bigint NOT NULL DEFAULT 0,
	rows_returned		bigint NOT NULL DEFAULT 0,
	lookups_returned	bigint NOT NULL DEFAULT 0,
	grants				integer NOT NULL DEFAULT 0,
	first_grant_at		timestamptz NOT NULL,
	last_grant_at		timestamptz NOT NULL,
	last_return_at		timestamptz,
	PRIMARY KEY (day, node, licence_id)
);
COMMENT ON TABLE licdata.quota_leases IS 'Day quota leased to each standby (queries are a product licence''s calls), and given back, per UTC day and licence; kept 31 days';
GRANT SELECT ON licdata.quota_leases TO licdata_operator, licdata_auditor;

CREATE FUNCTION licdata_internal._lease_quota(node text, licence_id bigint, want_queries bigint,
		want_rows bigint, want_lookups bigint,
		OUT day date, OUT queries bigint, OUT rows bigint, OUT lookups bigint, OUT exhausted text)
	RETURNS record
	LANGUAGE C SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'licdata_lease_quota';
REVOKE ALL ON FUNCTION licdata_internal._lease_quota(text, bigint, bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata_internal._lease_quota(text, bigint, bigint, bigint, bigint) TO licdata_replica;

CREATE FUNCTION licdata_internal._return_quota(node text, day date, licence_id bigint,
		queries bigint, rows bigint, lookups bigint)
	RETURNS bigint
	LANGUAGE C SECURITY DEFINER
	SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'licdata_return_quota';
REVOKE ALL ON FUNCTION licdata_internal._return_quota(text, date, bigint, bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata_internal._return_quota(text, date, bigint, bigint, bigint, bigint) TO licdata_replica;
