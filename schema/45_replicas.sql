/*
 * 45_replicas.sql -- read replicas (hot standbys).
 *
 * A standby's licdata worker hands its journal records to the primary by
 * calling licdata_internal._receive_records as a member of licdata_replica: that
 * role may do nothing else (no table, no dataset).  The records wait in
 * licdata.replica_inbox until the primary's worker moves them into usage and
 * audit_log (one hash chain) and deletes them; licdata.nodes shows each
 * standby's last contact and its records pending and handed over.
 * usage.node and audit_log.node name where a statement ran.
 */
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
