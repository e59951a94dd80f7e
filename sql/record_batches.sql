-- Records stored per batch (schema/85_packed.sql, src/packed.c): the views
-- licdata.usage and licdata.audit_log show every record moved, once; the
-- exactly-once ranges cover every record; the unpacker refuses bytes that
-- are not a batch (it is callable by the views' readers) and never reads
-- out of bounds; a batch packed again from its own rows reads back the same;
-- retention keeps the records of a batch from its point in time on.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 15000, false);
CREATE SCHEMA rb;
CREATE TABLE rb.items (id integer PRIMARY KEY, name text, region text);
INSERT INTO rb.items SELECT g, 'item ' || g, CASE WHEN g % 2 = 0 THEN 'north' ELSE 'south' END
  FROM generate_series(1, 50) g;
CREATE ROLE rb_bank NOLOGIN;
CREATE ROLE rb_user LOGIN IN ROLE rb_bank;
GRANT USAGE ON SCHEMA rb TO PUBLIC;
SELECT licdata.publish('rb.items');
SELECT licdata.register_licensee('rb_bank', 'Batch Bank');
SELECT licdata.grant_licence('rb_bank', 'rb.items', ARRAY['stats'], row_filter => 'region = ''north''',
							 price_per_query => 0.5, price_per_row => 0.01);
SELECT licdata.flush();
SELECT count(*) AS usage_before FROM licdata.usage \gset
SELECT count(*) AS audit_before FROM licdata.audit_log \gset
SELECT count(*) AS batches_before FROM licdata_internal.record_batches \gset

SET SESSION AUTHORIZATION rb_user;
SET licdata.purpose = 'stats';
SELECT count(*) FROM rb.items;
SELECT id, name FROM rb.items WHERE id <= 6 ORDER BY id;
SELECT count(*) FROM rb.items WHERE id = 7;
RESET licdata.purpose;
RESET SESSION AUTHORIZATION;
SELECT licdata.flush();

-- three statements: three audit rows and three usage rows more, in batches
SELECT count(*) - :usage_before AS new_usage FROM licdata.usage;
SELECT count(*) - :audit_before AS new_audit FROM licdata.audit_log;
SELECT count(*) > :batches_before AS new_batches FROM licdata_internal.record_batches;
SELECT rows, rows_delivered, amount, outcome, mode, node IS NOT NULL AS has_node
  FROM licdata.usage WHERE licensee = 'rb_bank'::regrole ORDER BY id;
SELECT decision, kind, dataset_names, rows, licensee_name
  FROM licdata.audit_log WHERE licensee = 'rb_bank'::regrole ORDER BY seq;
-- each record once, and its audit row and usage row name the same reference
SELECT count(*) AS refs, count(DISTINCT journal_ref) AS distinct_refs
  FROM licdata.audit_log WHERE licensee = 'rb_bank'::regrole;
SELECT count(*) AS usage_without_audit FROM licdata.usage u
 WHERE u.licensee = 'rb_bank'::regrole
   AND NOT EXISTS (SELECT FROM licdata.audit_log a WHERE a.journal_ref = u.journal_ref);
-- every moved record of a journal file still here is in the exactly-once
-- ranges (this session's file: its backend still runs)
SELECT count(*) AS noted FROM licdata.audit_log a
 WHERE a.licensee = 'rb_bank'::regrole
   AND EXISTS (SELECT FROM licdata_internal._moved(ARRAY[a.journal_ref]));
SELECT count(*) AS not_moved FROM licdata_internal._moved(ARRAY['no-such-file@0', 'x@1']);
SELECT ok FROM licdata.verify_audit();
-- each batch names the licensees of its usage rows (my_usage reads only those)
SELECT count(*) AS batches_naming_others FROM licdata_internal.record_batches b
 WHERE NOT (coalesce(b.licensees, '{}') @> coalesce((SELECT array_agg(DISTINCT u.licensee::oid)
													  FROM licdata_internal._unpack_usage(b.usage) u), '{}')
			AND coalesce((SELECT array_agg(DISTINCT u.licensee::oid)
						   FROM licdata_internal._unpack_usage(b.usage) u), '{}') @> coalesce(b.licensees, '{}'));
-- the batches' seq ranges do not overlap and follow each other
SELECT count(*) AS overlapping FROM licdata_internal.record_batches b1
  JOIN licdata_internal.record_batches b2 ON b1.first_seq < b2.first_seq AND b1.last_seq >= b2.first_seq;

-- a batch packed again from its own rows reads back as the same rows
SELECT bool_and(ARRAY(SELECT a FROM licdata_internal._unpack_audit(licdata_internal._pack(
						ARRAY(SELECT a FROM licdata_internal._unpack_audit(b.audit) a ORDER BY a.seq))) a)
				= ARRAY(SELECT a FROM licdata_internal._unpack_audit(b.audit) a ORDER BY a.seq)) AS audit_same,
	   bool_and(b.usage IS NULL OR
				ARRAY(SELECT u FROM licdata_internal._unpack_usage(licdata_internal._pack(
						ARRAY(SELECT u FROM licdata_internal._unpack_usage(b.usage) u ORDER BY u.id))) u)
				= ARRAY(SELECT u FROM licdata_internal._unpack_usage(b.usage) u ORDER BY u.id)) AS usage_same,
	   count(*) > 0 AS some_batches
  FROM licdata_internal.record_batches b;

-- bytes that are not a batch: an error, never a crash or a read past the end
\set VERBOSITY terse
SELECT * FROM licdata_internal._unpack_usage('\x');
SELECT * FROM licdata_internal._unpack_usage('\x4c44504b');
SELECT * FROM licdata_internal._unpack_usage('\x4c44504b02000000');
SELECT * FROM licdata_internal._unpack_audit('\x5858585801000000');
-- a real batch cut short at every length from 1 to 400 bytes, and with its
-- last byte gone: each refused
CREATE FUNCTION rb.try_unpack(b bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM count(*) FROM licdata_internal._unpack_audit(b);
	RETURN 'read';
EXCEPTION WHEN data_corrupted OR character_not_in_repertoire OR invalid_binary_representation
		  OR numeric_value_out_of_range THEN
	RETURN 'refused';
END $$;
SELECT b.audit AS real_batch FROM licdata_internal.record_batches b ORDER BY b.first_seq DESC LIMIT 1 \gset
SELECT rb.try_unpack(substr(:'real_batch'::bytea, 1, n)) AS cut, count(*)
  FROM generate_series(1, 400) n GROUP BY 1;
SELECT rb.try_unpack(substr(:'real_batch'::bytea, 1, length(:'real_batch'::bytea) - 1)) AS last_byte_gone;
-- every single byte of the header and the first rows changed: read or
-- refused, never anything else (the session stays up)
SELECT count(*) AS tried FROM generate_series(0, least(length(:'real_batch'::bytea) - 1, 600)) i,
	   LATERAL rb.try_unpack(set_byte(:'real_batch'::bytea, i, (get_byte(:'real_batch'::bytea, i) + 97) % 256)) r;
-- a length that claims 2 GB
SELECT rb.try_unpack(overlay(:'real_batch'::bytea PLACING '\xffffff7f'::bytea FROM 9)) AS huge_column_count;
\set VERBOSITY default

-- licensees cannot call the unpacker by name (no USAGE on the schema)
CREATE SCHEMA rb_own AUTHORIZATION rb_user;
SET SESSION AUTHORIZATION rb_user;
SELECT * FROM licdata_internal._unpack_usage('\x');
SELECT count(*) FROM licdata.usage;
SELECT count(*) AS my_rows FROM licdata.my_usage;
-- look-alikes of what my_usage runs, first on the licensee's search_path:
-- operators that would let every batch and every row through
CREATE FUNCTION rb_own.anyone(oid[], oid[]) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR rb_own.@> (LEFTARG = oid[], RIGHTARG = oid[], FUNCTION = rb_own.anyone);
CREATE FUNCTION rb_own.always(regrole, regrole) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR rb_own.= (LEFTARG = regrole, RIGHTARG = regrole, FUNCTION = rb_own.always);
CREATE FUNCTION rb_own.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE sql AS 'SELECT NULL';
SET search_path = rb_own, pg_catalog, public;
SELECT count(*) AS my_rows_with_lookalikes, count(DISTINCT id) AS distinct_ids FROM licdata.my_usage;
RESET search_path;
RESET SESSION AUTHORIZATION;
DROP SCHEMA rb_own CASCADE;

-- writes through the views are refused, a superuser's too
INSERT INTO licdata.audit_log (seq, at, kind, decision, journal_ref, prev_hash, hash)
VALUES (1, now(), 'operator', 'allow', 'forged', '\x', '\x');
DELETE FROM licdata.usage WHERE licensee = 'rb_bank'::regrole;
TRUNCATE licdata.usage;
DELETE FROM licdata_internal.record_batches;
TRUNCATE licdata_internal.journal_moved;

-- retention: a batch across the point in time keeps its records from the
-- point on (here a batch made by hand, in a transaction rolled back)
BEGIN;
SELECT licdata_internal._set_records_writable(true);
INSERT INTO licdata_internal.record_batches
	(first_seq, last_seq, last_hash, min_at, max_at, audit_rows, usage_rows, audit, usage)
SELECT 900000001, 900000003, '\x', '2000-01-01', '2000-03-01', 3, 0,
	   licdata_internal._pack(ARRAY(
		   SELECT jsonb_populate_record(a, jsonb_build_object('seq', 900000000 + g,
					'at', '2000-0' || g || '-01 00:00 UTC', 'journal_ref', 'rb-old-' || g))
			 FROM licdata_internal._unpack_audit(:'real_batch'::bytea) a, generate_series(1, 3) g
			WHERE a.seq = (SELECT min(x.seq) FROM licdata_internal._unpack_audit(:'real_batch'::bytea) x)
			ORDER BY g)), NULL;
SELECT licdata_internal._set_records_writable(false);
SELECT * FROM licdata.purge_records('2000-02-15 00:00 UTC');
SELECT first_seq, last_seq, min_at, max_at, audit_rows FROM licdata_internal.record_batches
 WHERE first_seq > 900000000;
SELECT seq, at, journal_ref FROM licdata.audit_log WHERE seq > 900000000 ORDER BY seq;
SELECT * FROM licdata.purge_records('2000-03-15 00:00 UTC');
SELECT count(*) AS left_over FROM licdata_internal.record_batches WHERE first_seq > 900000000;
ROLLBACK;

-- clean up
SELECT licdata.revoke_licence(id) FROM licdata.licences WHERE licensee = 'rb_bank'::regrole ORDER BY id;
SELECT licdata.unpublish('rb.items');
DROP SCHEMA rb CASCADE;
DROP ROLE rb_user, rb_bank;
