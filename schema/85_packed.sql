/*
 * 85_packed.sql -- usage and audit records stored per batch.
 *
 * The flusher (src/worker.c) stores each batch of records it moves as one
 * row of licdata_internal.record_batches: the batch's audit rows packed into
 * one bytea and its usage rows into another (src/packed.c), TOAST-compressed
 * (lz4 where the server has it).  A row per record cost PostgreSQL a heap
 * tuple, its WAL and six index entries -- more CPU than the licensee's
 * statement itself; a batch of thousands of records is one heap tuple and
 * one index entry (BENCHMARKS.md, "Records stored per batch").
 *
 * licdata.usage and licdata.audit_log are views with the same columns as
 * before: the rows of before 1.1 (the tables, renamed
 * licdata_internal.usage_rows and audit_rows, which also give the views
 * their row types) and the unpacked batches.  Writes to the views, and to
 * the tables behind them, are refused as before (records_guard).
 *
 * Exactly once: licdata_internal.journal_moved keeps, per journal file, the
 * byte ranges of its records already moved, written in the same
 * transaction as their batch; a range written twice fails the batch (the
 * check audit_log's unique journal_ref made before).
 *
 * This file runs last in a fresh install and, unchanged, as the last step
 * of the update from 1.0 (schema/upgrade/1.0--1.1/95_packed.sql), so both
 * end with the same objects.
 */

-- The row tables: the records of before 1.1, and the views' row types.
ALTER TABLE licdata.usage SET SCHEMA licdata_internal;
ALTER TABLE licdata_internal.usage RENAME TO usage_rows;
ALTER TABLE licdata.audit_log SET SCHEMA licdata_internal;
ALTER TABLE licdata_internal.audit_log RENAME TO audit_rows;
COMMENT ON TABLE licdata_internal.usage_rows IS 'Usage rows moved before 1.1, one per row; the row type of licdata.usage';
COMMENT ON TABLE licdata_internal.audit_rows IS 'Audit rows moved before 1.1, one per row; the row type of licdata.audit_log';
-- usage ids are taken by the flusher, a batch at a time: kept in its
-- process (a restart of the flusher leaves a gap, as a rollback does)
ALTER SEQUENCE licdata_internal.usage_id_seq CACHE 1000;

CREATE TABLE licdata_internal.record_batches (
	first_seq			bigint PRIMARY KEY,	-- the audit seq of its first record
	last_seq			bigint NOT NULL,
	last_hash			bytea NOT NULL,		-- the chain's head after it
	min_at				timestamptz NOT NULL,
	max_at				timestamptz NOT NULL,
	audit_rows			integer NOT NULL,
	usage_rows			integer NOT NULL,
	audit				bytea NOT NULL,		-- packed licdata.audit_log rows
	usage				bytea,				-- packed licdata.usage rows
	licensees			oid[],				-- of the usage rows (NULL: not known)
	CHECK (last_seq >= first_seq)
);
CREATE INDEX record_batches_max_at ON licdata_internal.record_batches (max_at);
-- a licensee's own usage (my_usage) skips the batches of others
CREATE INDEX record_batches_licensees ON licdata_internal.record_batches USING gin (licensees);
COMMENT ON TABLE licdata_internal.record_batches IS 'Usage and audit records, a batch of the background worker per row, packed; read them through licdata.usage and licdata.audit_log';
DO $lz4$
BEGIN
	ALTER TABLE licdata_internal.record_batches
		ALTER COLUMN audit SET COMPRESSION lz4, ALTER COLUMN usage SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	NULL;						-- a server built without lz4: pglz
END
$lz4$;

CREATE TABLE licdata_internal.journal_moved (
	file				text PRIMARY KEY,	-- a journal file's name
	moved				int8multirange NOT NULL	-- byte ranges of its records moved
);
COMMENT ON TABLE licdata_internal.journal_moved IS 'Per journal file, the records the background worker has moved: the exactly-once check';

SELECT pg_catalog.pg_extension_config_dump('licdata_internal.record_batches', '');
SELECT pg_catalog.pg_extension_config_dump('licdata_internal.journal_moved', '');
CREATE TRIGGER records_guard BEFORE INSERT OR UPDATE OR DELETE ON licdata_internal.record_batches
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._records_guard();
CREATE TRIGGER records_guard_truncate BEFORE TRUNCATE ON licdata_internal.record_batches
	FOR EACH STATEMENT EXECUTE FUNCTION licdata_internal._records_guard();
CREATE TRIGGER records_guard BEFORE INSERT OR UPDATE OR DELETE ON licdata_internal.journal_moved
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._records_guard();
CREATE TRIGGER records_guard_truncate BEFORE TRUNCATE ON licdata_internal.journal_moved
	FOR EACH STATEMENT EXECUTE FUNCTION licdata_internal._records_guard();

-- Unpacking trusts nothing in its argument (src/packed.c): callable by
-- anyone, as the views need (a view's function calls run as its reader).
CREATE FUNCTION licdata_internal._unpack_usage(batch bytea) RETURNS SETOF licdata_internal.usage_rows
	LANGUAGE C STRICT STABLE PARALLEL SAFE ROWS 4000 AS 'MODULE_PATHNAME', 'licdata_unpack';
CREATE FUNCTION licdata_internal._unpack_audit(batch bytea) RETURNS SETOF licdata_internal.audit_rows
	LANGUAGE C STRICT STABLE PARALLEL SAFE ROWS 4000 AS 'MODULE_PATHNAME', 'licdata_unpack';
GRANT EXECUTE ON FUNCTION licdata_internal._unpack_usage(bytea), licdata_internal._unpack_audit(bytea) TO PUBLIC;

CREATE VIEW licdata.usage AS
	SELECT r.* FROM licdata_internal.usage_rows r
	UNION ALL
	SELECT u.* FROM licdata_internal.record_batches b
	 CROSS JOIN LATERAL licdata_internal._unpack_usage(b.usage) u;
COMMENT ON VIEW licdata.usage IS 'Billing: one row per licence used by each licensee statement';
COMMENT ON COLUMN licdata.usage.rows IS 'Rows billed: the larger of rows_delivered and rows_in_functions';
COMMENT ON COLUMN licdata.usage.node IS 'Where the statement ran (licdata.node_name); NULL for records made before 1.1';

CREATE VIEW licdata.audit_log AS
	SELECT r.* FROM licdata_internal.audit_rows r
	UNION ALL
	SELECT a.* FROM licdata_internal.record_batches b
	 CROSS JOIN LATERAL licdata_internal._unpack_audit(b.audit) a;
COMMENT ON VIEW licdata.audit_log IS 'Audit trail: one row per statement that reached a dataset, allowed or denied; SHA-256 hash chain';
COMMENT ON COLUMN licdata.audit_log.node IS 'Where the statement ran (licdata.node_name); NULL for records made before 1.1; not covered by the hash';

GRANT SELECT ON licdata.usage, licdata.audit_log TO licdata_operator, licdata_auditor;
-- Writes through the views are refused (licdata_records_view_guard); a
-- writer the guard lets through (a restore) inserts into the row tables.
CREATE FUNCTION licdata_internal._records_view_guard() RETURNS trigger
	LANGUAGE C AS 'MODULE_PATHNAME', 'licdata_records_view_guard';
CREATE TRIGGER records_guard INSTEAD OF INSERT OR UPDATE OR DELETE ON licdata.usage
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._records_view_guard();
CREATE TRIGGER records_guard INSTEAD OF INSERT OR UPDATE OR DELETE ON licdata.audit_log
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._records_view_guard();
-- the row tables' defaults, for such an insert
ALTER VIEW licdata.usage ALTER COLUMN id SET DEFAULT nextval('licdata_internal.usage_id_seq'::regclass);
ALTER VIEW licdata.usage ALTER COLUMN statement_is_hash SET DEFAULT false;
ALTER VIEW licdata.usage ALTER COLUMN mode SET DEFAULT 'rows';
ALTER VIEW licdata.usage ALTER COLUMN calls SET DEFAULT 0;

-- A licensee's own usage: the rows of before 1.1 and the batches that hold
-- its records (record_batches.licensees), not every batch.
CREATE OR REPLACE VIEW licdata.my_usage WITH (security_barrier) AS
	SELECT u.id, u.at, u.licence_id, u.dataset, u.session_user_name, u.purpose, u.consent_ref,
		   u.query_id, u.statement, u.rows, u.rows_delivered, u.rows_aggregated, u.duration_ms,
		   u.outcome, u.sqlstate, u.amount, u.calls
	  FROM (SELECT r.* FROM licdata_internal.usage_rows r
			UNION ALL
			SELECT x.* FROM licdata_internal.record_batches b
			 CROSS JOIN LATERAL licdata_internal._unpack_usage(b.usage) x
			 WHERE b.licensees IS NULL
				OR b.licensees OPERATOR(pg_catalog.@>) ARRAY[licdata_internal._my_licensee()::pg_catalog.oid]) u
	 WHERE u.licensee = licdata_internal._my_licensee();

-- The bytes an audit row's hash covers (with the previous hash in front),
-- for a row of the view (1.0 had it for the table's row type).
DROP FUNCTION IF EXISTS licdata_internal._audit_bytes(licdata_internal.audit_rows);
CREATE FUNCTION licdata_internal._audit_bytes(a licdata.audit_log) RETURNS bytea
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT a.prev_hash || convert_to(concat_ws('|',
		a.seq::text,
		to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
		quote_nullable(a.role_name::text), quote_nullable(a.session_user_name::text),
		quote_nullable(a.licensee_name), a.kind, quote_nullable(a.purpose),
		quote_nullable(a.consent_ref), quote_nullable(a.dataset_names::text),
		quote_nullable(a.licence_ids::text), a.decision, quote_nullable(a.sqlstate),
		quote_nullable(a.statement), quote_nullable(a.rows::text), a.journal_ref), 'UTF8')
$$;

/*
 * The usage and audit records of a period [since, until): the batches that
 * overlap it (record_batches_max_at), unpacked, and the rows of before 1.1.
 * Billing (80_pricing.sql) and the quota rebuild after a restart (today's)
 * read these, not the views, which unpack every batch.  (Not inlined into
 * the caller on purpose: billing's plans with them inlined took 0.45 s
 * for a month of 1M records, 0.14 s planned apart.)
 */
CREATE FUNCTION licdata_internal._usage_between(since timestamptz, until timestamptz)
	RETURNS SETOF licdata.usage
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT r.* FROM licdata_internal.usage_rows r
	 WHERE r.at OPERATOR(pg_catalog.>=) since AND r.at OPERATOR(pg_catalog.<) until
	UNION ALL
	SELECT u.* FROM licdata_internal.record_batches b
	 CROSS JOIN LATERAL licdata_internal._unpack_usage(b.usage) u
	 WHERE b.max_at OPERATOR(pg_catalog.>=) since AND b.min_at OPERATOR(pg_catalog.<) until
	   AND u.at OPERATOR(pg_catalog.>=) since AND u.at OPERATOR(pg_catalog.<) until
$$;
REVOKE ALL ON FUNCTION licdata_internal._usage_between(timestamptz, timestamptz) FROM PUBLIC;
CREATE FUNCTION licdata_internal._usage_since(since timestamptz) RETURNS SETOF licdata.usage
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT * FROM licdata_internal._usage_between(since, 'infinity'::pg_catalog.timestamptz)
$$;
REVOKE ALL ON FUNCTION licdata_internal._usage_since(timestamptz) FROM PUBLIC;
CREATE FUNCTION licdata_internal._audit_between(since timestamptz, until timestamptz)
	RETURNS SETOF licdata.audit_log
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT r.* FROM licdata_internal.audit_rows r
	 WHERE r.at OPERATOR(pg_catalog.>=) since AND r.at OPERATOR(pg_catalog.<) until
	UNION ALL
	SELECT a.* FROM licdata_internal.record_batches b
	 CROSS JOIN LATERAL licdata_internal._unpack_audit(b.audit) a
	 WHERE b.max_at OPERATOR(pg_catalog.>=) since AND b.min_at OPERATOR(pg_catalog.<) until
	   AND a.at OPERATOR(pg_catalog.>=) since AND a.at OPERATOR(pg_catalog.<) until
$$;
REVOKE ALL ON FUNCTION licdata_internal._audit_between(timestamptz, timestamptz) FROM PUBLIC;

-- The hash of the audit record with this seq (for a checkpoint).
CREATE FUNCTION licdata_internal._audit_hash(s bigint) RETURNS bytea
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT h FROM (
		SELECT r.hash FROM licdata_internal.audit_rows r WHERE r.seq = s
		UNION ALL
		SELECT a.hash FROM licdata_internal.record_batches b
		 CROSS JOIN LATERAL licdata_internal._unpack_audit(b.audit) a
		 WHERE b.first_seq <= s AND b.last_seq >= s AND a.seq = s) x(h)
	LIMIT 1
$$;
REVOKE ALL ON FUNCTION licdata_internal._audit_hash(bigint) FROM PUBLIC;

-- Which of these journal references ('file@offset') were moved already.
CREATE FUNCTION licdata_internal._moved(refs text[]) RETURNS SETOF text
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT r.ref FROM unnest(refs) r(ref)
	 WHERE EXISTS (SELECT FROM licdata_internal.journal_moved m
				   WHERE m.file = split_part(r.ref, '@', 1)
					 AND m.moved @> split_part(r.ref, '@', 2)::bigint)
		OR EXISTS (SELECT FROM licdata_internal.audit_rows a WHERE a.journal_ref = r.ref)
$$;
REVOKE ALL ON FUNCTION licdata_internal._moved(text[]) FROM PUBLIC;

-- The records of the journal files still here that were moved before 1.1
-- (into the row tables) are noted as moved, so that replaying them finds
-- them (no-op in a fresh install).
INSERT INTO licdata_internal.journal_moved (file, moved)
SELECT split_part(a.journal_ref, '@', 1),
	   range_agg(int8range(split_part(a.journal_ref, '@', 2)::bigint,
						   split_part(a.journal_ref, '@', 2)::bigint + 1))
  FROM licdata_internal.audit_rows a
 WHERE split_part(a.journal_ref, '@', 1) IN (SELECT s.file FROM licdata_internal._journal_status() s)
 GROUP BY 1;

-- Rows packed as the flusher packs them (for _repack).
CREATE FUNCTION licdata_internal._pack(rows anyarray) RETURNS bytea
	LANGUAGE C STRICT IMMUTABLE AS 'MODULE_PATHNAME', 'licdata_pack';
REVOKE ALL ON FUNCTION licdata_internal._pack(anyarray) FROM PUBLIC;

-- One batch packed again with its records from a point in time on (or
-- deleted when none is left); the rows it dropped.  The caller lets writes
-- to the record tables through.
CREATE FUNCTION licdata_internal._repack(batch bigint, older_than timestamptz,
	OUT usage_deleted bigint, OUT audit_deleted bigint)
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	b licdata_internal.record_batches;
	ua licdata_internal.usage_rows[];
	aa licdata_internal.audit_rows[];
BEGIN
	SELECT * INTO STRICT b FROM licdata_internal.record_batches r WHERE r.first_seq = batch FOR UPDATE;
	SELECT array_agg(u ORDER BY u.id) INTO ua
	  FROM licdata_internal._unpack_usage(b.usage) u WHERE u.at >= older_than;
	SELECT array_agg(a ORDER BY a.seq) INTO aa
	  FROM licdata_internal._unpack_audit(b.audit) a WHERE a.at >= older_than;
	usage_deleted := b.usage_rows - coalesce(cardinality(ua), 0);
	audit_deleted := b.audit_rows - coalesce(cardinality(aa), 0);
	IF aa IS NULL THEN
		DELETE FROM licdata_internal.record_batches r WHERE r.first_seq = batch;
		usage_deleted := b.usage_rows;
		RETURN;
	END IF;
	UPDATE licdata_internal.record_batches r
	   SET first_seq = aa[1].seq,
		   min_at = (SELECT min(x.at) FROM (SELECT a.at FROM unnest(aa) a
											UNION ALL SELECT u.at FROM unnest(ua) u) x),
		   audit_rows = cardinality(aa),
		   usage_rows = coalesce(cardinality(ua), 0),
		   audit = licdata_internal._pack(aa),
		   usage = CASE WHEN ua IS NULL THEN NULL ELSE licdata_internal._pack(ua) END,
		   licensees = (SELECT array_agg(DISTINCT u.licensee::oid) FROM unnest(ua) u
						 WHERE u.licensee IS NOT NULL)
	 WHERE r.first_seq = batch;
END
$$;
REVOKE ALL ON FUNCTION licdata_internal._repack(bigint, timestamptz) FROM PUBLIC;

/*
 * Retention: delete usage and audit records older than a point in time.
 * The audit chain stays verifiable from its new first row (whose prev_hash
 * is then the anchor); say so when handing the trail to an auditor.  A
 * batch goes when its newest record is older; a batch across the point is
 * packed again with the records from the point on (licdata_internal._repack).
 * (CREATE OR REPLACE: 1.0 had it, deleting rows of the tables.)
 */
CREATE OR REPLACE FUNCTION licdata.purge_records(older_than timestamptz)
	RETURNS TABLE (usage_deleted bigint, audit_deleted bigint)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	u bigint;
	a bigint;
	n bigint;
	m bigint;
	b record;
BEGIN
	PERFORM licdata_internal._not_null(older_than, 'older_than');
	IF older_than > now() - interval '1 day' THEN
		RAISE EXCEPTION 'records younger than one day cannot be purged'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a point in time at least one day ago.';
	END IF;
	-- The write guard is off for this backend only while the deletes run:
	-- an error (a lock or statement timeout, a cancel) must not leave it off.
	PERFORM licdata_internal._set_records_writable(true);
	BEGIN
		DELETE FROM licdata_internal.usage_rows WHERE at < older_than;
		GET DIAGNOSTICS u = ROW_COUNT;
		DELETE FROM licdata_internal.audit_rows WHERE at < older_than;
		GET DIAGNOSTICS a = ROW_COUNT;
		SELECT coalesce(sum(r.usage_rows), 0), coalesce(sum(r.audit_rows), 0) INTO n, m
		  FROM licdata_internal.record_batches r WHERE r.max_at < older_than;
		DELETE FROM licdata_internal.record_batches r WHERE r.max_at < older_than;
		u := u + n;
		a := a + m;
		FOR b IN SELECT r.first_seq FROM licdata_internal.record_batches r
				  WHERE r.min_at < older_than ORDER BY r.first_seq LOOP
			SELECT p.usage_deleted, p.audit_deleted INTO n, m
			  FROM licdata_internal._repack(b.first_seq, older_than) p;
			u := u + n;
			a := a + m;
		END LOOP;
	EXCEPTION WHEN OTHERS OR query_canceled THEN
		PERFORM licdata_internal._set_records_writable(false);
		RAISE;
	END;
	PERFORM licdata_internal._set_records_writable(false);
	RETURN QUERY SELECT u, a;
END
$$;
REVOKE ALL ON FUNCTION licdata.purge_records(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.purge_records(timestamptz) TO licdata_operator;
