-- Metering: nothing lost, nothing doubled.  For every path by which a
-- licensee's query delivers rows, the rows recorded in licdata.usage equal
-- the rows the client received.  Each case runs under its own consent
-- reference (the tag); the client's count is kept in a temporary table
-- (psql's ROW_COUNT, or the count the query's WHERE / LIMIT guarantees).
-- Then quotas, amounts, invoice, who may read and write the records, and
-- the audit trail's hash chain.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
-- licence ids of their own: day quota counters are kept per licence id
SELECT setval('licdata.licences_id_seq', 5000, false);

CREATE SCHEMA meter_t;
CREATE TABLE meter_t.items (id integer PRIMARY KEY, grp integer, val numeric);
INSERT INTO meter_t.items SELECT g, g % 10, g * 1.5 FROM generate_series(1, 1000) g;
ANALYZE meter_t.items;
CREATE ROLE meter_bank NOLOGIN;
CREATE ROLE meter_analyst LOGIN IN ROLE meter_bank;
CREATE ROLE meter_other LOGIN;
CREATE SCHEMA meter_own AUTHORIZATION meter_analyst;
-- the dataset's own prices; the main licence has its own, which win
SELECT licdata.publish('meter_t.items', 'metering test items', 5, 1);
SELECT licdata.register_licensee('meter_bank', 'Meter Bank');
SELECT licdata.register_licensee('meter_other', 'Other Licensee');
SELECT licdata.grant_licence('meter_bank', 'meter_t.items', ARRAY['metering'],
							 price_per_query => 1, price_per_row => 0.01) AS lic_main \gset
SELECT licdata.grant_licence('meter_bank', 'meter_t.items', ARRAY['dataset_price']) AS lic_dsprice \gset
SELECT licdata.grant_licence('meter_bank', 'meter_t.items', ARRAY['quota_rpq'],
							 max_rows_per_query => 50, price_per_query => 1, price_per_row => 0.01) AS lic_rpq \gset
SELECT licdata.grant_licence('meter_bank', 'meter_t.items', ARRAY['quota_qpd'],
							 max_queries_per_day => 3, price_per_query => 1, price_per_row => 0.01) AS lic_qpd \gset
SELECT licdata.grant_licence('meter_bank', 'meter_t.items', ARRAY['quota_rpd'],
							 max_rows_per_day => 250, price_per_query => 1, price_per_row => 0.01) AS lic_rpd \gset
SELECT licdata.grant_licence('meter_other', 'meter_t.items', ARRAY['metering']) AS lic_other \gset

CREATE FUNCTION meter_t.rows_fn(n integer) RETURNS SETOF meter_t.items
	LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT * FROM meter_t.items WHERE id <= n; END $$;
CREATE FUNCTION meter_t.count_fn() RETURNS bigint
	LANGUAGE plpgsql AS $$ DECLARE c bigint; BEGIN SELECT count(*) INTO c FROM meter_t.items; RETURN c; END $$;
-- an error caught inside a function does not leave a licensed statement behind
CREATE FUNCTION meter_t.catching_fn() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint := 0;
	r record;
BEGIN
	FOR i IN 1..3 LOOP
		BEGIN
			SELECT count(*) INTO n FROM meter_t.items WHERE id <= 10;
			PERFORM 1 / 0;
		EXCEPTION WHEN division_by_zero THEN NULL;
		END;
	END LOOP;
	FOR r IN SELECT g FROM generate_series(1, 500) g LOOP n := n + 1; END LOOP;
	RETURN n;
END $$;
-- a function that opens a cursor and returns it (a refcursor), and one that fetches from it
CREATE FUNCTION meter_t.open_fn(c refcursor) RETURNS refcursor
	LANGUAGE plpgsql AS $$ BEGIN OPEN c FOR SELECT * FROM meter_t.items; RETURN c; END $$;
CREATE FUNCTION meter_t.fetch_fn(c refcursor, n integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	FOR i IN 1..n LOOP FETCH c INTO r; END LOOP;
	RETURN n;
END $$;

SET SESSION AUTHORIZATION meter_analyst;
CREATE TEMP TABLE got (tag text, n bigint);
SET licdata.purpose = 'metering';

-- plain SELECT
SET licdata.consent_ref = 'm01 select';
SELECT * FROM meter_t.items WHERE id <= 7 \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
-- prepared statements, executed twice
SET licdata.consent_ref = 'm02 prepared';
PREPARE p(integer) AS SELECT * FROM meter_t.items WHERE id <= $1;
EXECUTE p(3) \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
EXECUTE p(4) \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
DEALLOCATE p;
-- a cursor fetched in pieces, then closed: 30 of 1000 rows
SET licdata.consent_ref = 'm03 cursor';
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM meter_t.items;
FETCH 10 FROM c \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
FETCH 10 FROM c \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
FETCH 10 FROM c \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
CLOSE c;
COMMIT;
-- a cursor WITH HOLD: materialised at commit, but only the rows fetched count
SET licdata.consent_ref = 'm04 cursor with hold';
DECLARE h CURSOR WITH HOLD FOR SELECT * FROM meter_t.items WHERE id <= 100;
FETCH 20 FROM h \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
FETCH 5 FROM h \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
CLOSE h;
-- fetched before and after the commit that holds it, scrolled back, moved
SET licdata.consent_ref = 'm05 scroll cursor with hold';
BEGIN;
DECLARE s SCROLL CURSOR WITH HOLD FOR SELECT * FROM meter_t.items WHERE id <= 100;
FETCH 10 FROM s \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
COMMIT;
FETCH 5 FROM s \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
FETCH BACKWARD 3 FROM s \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
MOVE 20 FROM s;
FETCH ALL FROM s \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
CLOSE s;
-- COPY (query) TO STDOUT, and COPY table TO STDOUT (rewritten into a query)
SET licdata.consent_ref = 'm06 copy query';
COPY (SELECT * FROM meter_t.items WHERE id <= 11) TO STDOUT \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
SET licdata.consent_ref = 'm07 copy table';
COPY meter_t.items TO STDOUT \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
-- rows written into the licensee's own tables count as delivered
SET licdata.consent_ref = 'm08 create table as';
CREATE TABLE meter_own.copy AS SELECT * FROM meter_t.items WHERE id <= 13;
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
SET licdata.consent_ref = 'm09 insert select';
INSERT INTO meter_own.copy SELECT * FROM meter_t.items WHERE id <= 31;
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
-- a function returning rows: counted once, for the top-level statement
SET licdata.consent_ref = 'm10 set-returning function';
SELECT * FROM meter_t.rows_fn(17) \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
-- a function that reads the dataset and returns one number: one row
SET licdata.consent_ref = 'm11 scalar function';
SELECT meter_t.count_fn();
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
SET licdata.consent_ref = 'm12 caught errors in a function';
SELECT meter_t.catching_fn();
-- billed: the larger of the 1 row sent and the 3 count(*) rows the function read
INSERT INTO got SELECT current_setting('licdata.consent_ref'), 3;
-- a cursor a function opened and returned: the rows fetched from it later
-- are metered (with the statement that fetches them)
SET licdata.consent_ref = 'm21 refcursor';
BEGIN;
SELECT meter_t.open_fn('rc');
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
FETCH 40 FROM rc \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
FETCH 2 FROM rc \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
COMMIT;
SET licdata.consent_ref = 'm22 refcursor fetched in a function';
BEGIN;
SELECT meter_t.open_fn('rc');
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
SELECT meter_t.fetch_fn('rc', 6);
-- one row returned; the 6 rows the function fetched are billed
INSERT INTO got SELECT current_setting('licdata.consent_ref'), 6;
COMMIT;
-- a DO block sends no row: the rows its statements read are billed
SET licdata.consent_ref = 'm13 do block';
DO $$ DECLARE r record; BEGIN FOR r IN SELECT * FROM meter_t.items WHERE id <= 19 LOOP END LOOP; END $$;
INSERT INTO got SELECT current_setting('licdata.consent_ref'), 19;
-- usage survives the ROLLBACK of the transaction that read (the counts
-- the client saw are kept in psql variables across rollbacks)
SET licdata.consent_ref = 'm14 rollback';
BEGIN;
SELECT * FROM meter_t.items WHERE id <= 23 \g /dev/null
\set n1 :ROW_COUNT
ROLLBACK;
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :n1;
-- a cursor rolled back while open: cancelled, with the rows fetched
SET licdata.consent_ref = 'm15 rollback open cursor';
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM meter_t.items;
FETCH 7 FROM c \g /dev/null
\set n1 :ROW_COUNT
ROLLBACK;
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :n1;
-- a cursor opened in a savepoint that is rolled back (cancelled), another kept
SET licdata.consent_ref = 'm16 savepoint';
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM meter_t.items;
FETCH 8 FROM c \g /dev/null
\set n1 :ROW_COUNT
SAVEPOINT s1;
DECLARE d CURSOR FOR SELECT * FROM meter_t.items;
FETCH 9 FROM d \g /dev/null
\set n2 :ROW_COUNT
ROLLBACK TO s1;
FETCH 2 FROM c \g /dev/null
\set n3 :ROW_COUNT
COMMIT;
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :n1 + :n2 + :n3;
-- an error after 499 rows were sent: the client received rows 1..499
SET licdata.consent_ref = 'm17 error mid-stream';
SELECT id, 1 / (id - 500) FROM meter_t.items \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), 499;
-- EXPLAIN and EXPLAIN ANALYZE of a statement that reads a dataset are
-- refused for licensees (LD012, see hostile_explain): no usage, a denial
SET licdata.consent_ref = 'm18 explain';
EXPLAIN (COSTS OFF) SELECT * FROM meter_t.items WHERE id <= 29 \g /dev/null
SET licdata.consent_ref = 'm19 explain analyze';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM meter_t.items WHERE id <= 29 \g /dev/null
-- a licence without prices: the dataset's prices
SET licdata.purpose = 'dataset_price';
SET licdata.consent_ref = 'm20 dataset price';
SELECT * FROM meter_t.items WHERE id <= 4 \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;

-- quotas: rows per query -- the 51st row is refused, the 50 before are metered
SET licdata.purpose = 'quota_rpq';
SET licdata.consent_ref = 'q1 rows per query';
SELECT * FROM meter_t.items WHERE id <= 50 \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
\set VERBOSITY sqlstate
SELECT * FROM meter_t.items WHERE id <= 60 \g /dev/null
\set VERBOSITY default
INSERT INTO got SELECT current_setting('licdata.consent_ref'), 50;
SET licdata.consent_ref = 'q2 rows per query, cursor';
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM meter_t.items;
FETCH 30 FROM c \g /dev/null
\set VERBOSITY sqlstate
FETCH 30 FROM c \g /dev/null
\set VERBOSITY default
ROLLBACK;
INSERT INTO got SELECT current_setting('licdata.consent_ref'), 50;
-- written rows are refused at the quota too, as they reach the insert:
-- nothing is written, the 50 rows before the refused one are billed
SET licdata.consent_ref = 'q3 rows per query, insert';
\set VERBOSITY sqlstate
INSERT INTO meter_own.copy SELECT * FROM meter_t.items WHERE id <= 70;
\set VERBOSITY default
SELECT count(*) FROM meter_own.copy;
INSERT INTO got SELECT current_setting('licdata.consent_ref'), 50;
-- queries per day: the 4th is refused before it reads
SET licdata.purpose = 'quota_qpd';
SET licdata.consent_ref = 'q4 queries per day';
SELECT id FROM meter_t.items WHERE id = 1;
SELECT id FROM meter_t.items WHERE id = 2;
SELECT id FROM meter_t.items WHERE id = 3;
INSERT INTO got SELECT current_setting('licdata.consent_ref'), 3;
\set VERBOSITY sqlstate
SELECT id FROM meter_t.items WHERE id = 4;
\set VERBOSITY default
-- rows per day, exact: 100 + 100 + 50, then refused at the start
SET licdata.purpose = 'quota_rpd';
SET licdata.consent_ref = 'q5 rows per day';
SELECT * FROM meter_t.items WHERE id <= 100 \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
SELECT * FROM meter_t.items WHERE id <= 100 \g /dev/null
INSERT INTO got SELECT current_setting('licdata.consent_ref'), :ROW_COUNT;
\set VERBOSITY sqlstate
SELECT * FROM meter_t.items WHERE id <= 100 \g /dev/null
SELECT * FROM meter_t.items WHERE id <= 100 \g /dev/null
\set VERBOSITY default
INSERT INTO got SELECT current_setting('licdata.consent_ref'), 50;
SELECT purposes, rows_left_today, queries_left_today FROM licdata.my_licences
 WHERE purposes && ARRAY['quota_qpd', 'quota_rpd'] ORDER BY purposes;

-- a denial is audited although its transaction aborts
SET licdata.consent_ref = 'd1 denied';
BEGIN;
SET LOCAL licdata.purpose = 'marketing';
\set VERBOSITY sqlstate
SELECT * FROM meter_t.items WHERE id <= 3;
\set VERBOSITY default
ROLLBACK;
RESET licdata.consent_ref;
RESET licdata.purpose;

-- the licensee reads neither the usage table nor the audit trail, and writes neither
SELECT count(*) FROM licdata.usage;
SELECT count(*) FROM licdata.audit_log;
INSERT INTO licdata.usage (at, rows, rows_delivered, rows_in_functions, rows_aggregated, outcome, amount, journal_ref)
VALUES (now(), 0, 0, 0, 0, 'ok', 0, 'forged');
RESET SESSION AUTHORIZATION;

-- another licensee's statement, to see that my_usage shows each only its own
SET SESSION AUTHORIZATION meter_other;
SET licdata.purpose = 'metering';
SET licdata.consent_ref = 'o1 other licensee';
SELECT count(*) FROM meter_t.items;
RESET SESSION AUTHORIZATION;
-- an operator's read is audited, as an operator's
SELECT count(*) FROM meter_t.items;

SELECT licdata.flush();

-- every case: what the client received = what was recorded; one usage row per statement
SELECT g.tag, g.expected, u.statements, u.recorded, u.outcomes, u.sqlstates,
	   g.expected IS NOT DISTINCT FROM u.recorded AS equal
  FROM (SELECT tag, sum(n) AS expected FROM pg_temp.got GROUP BY tag) g
  FULL JOIN (SELECT consent_ref AS tag, count(*) AS statements, sum(rows) AS recorded,
					string_agg(DISTINCT outcome, ',') AS outcomes, string_agg(DISTINCT sqlstate, ',') AS sqlstates
			   FROM licdata.usage WHERE licensee = 'meter_bank'::regrole GROUP BY consent_ref) u USING (tag)
 ORDER BY coalesce(g.tag, u.tag);
-- EXPLAIN and the denial left no usage row
SELECT count(*) FROM licdata.usage WHERE consent_ref IN ('m18 explain', 'm19 explain analyze', 'd1 denied');
-- rows delivered and rows produced in functions, billed as the larger
SELECT consent_ref, rows, rows_delivered, rows_in_functions FROM licdata.usage
 WHERE consent_ref IN ('m10 set-returning function', 'm11 scalar function', 'm12 caught errors in a function', 'm13 do block')
 ORDER BY consent_ref;
-- nothing twice
SELECT count(*) AS usage_rows, count(DISTINCT journal_ref) AS journal_refs FROM licdata.usage
 WHERE licensee IN ('meter_bank'::regrole, 'meter_other'::regrole);
SELECT count(*) AS audit_rows, count(DISTINCT journal_ref) AS journal_refs FROM licdata.audit_log
 WHERE licensee_name IN ('meter_bank', 'meter_other');
-- amount = price_per_query + rows * price_per_row, the licence's price over the dataset's
SELECT l.purposes, bool_and(u.amount = 1 + u.rows * 0.01) AS licence_price,
	   bool_and(u.amount = 5 + u.rows * 1) AS dataset_price, sum(u.rows) AS rows, sum(u.amount) AS amount
  FROM licdata.usage u JOIN licdata.licences l ON l.id = u.licence_id
 WHERE u.licensee = 'meter_bank'::regrole GROUP BY l.purposes ORDER BY l.purposes;
-- rows per day: exactly the quota
SELECT sum(rows) FROM licdata.usage WHERE licence_id = :lic_rpd;
-- the invoice sums the usage
SELECT i.purpose, i.queries, i.rows, i.amount,
	   (i.queries, i.rows, i.amount) = (SELECT count(*), sum(u.rows), sum(u.amount) FROM licdata.usage u
										 WHERE u.licence_id = i.licence_id) AS matches_usage
  FROM licdata.invoice('meter_bank', now() - interval '1 day', now() + interval '1 day') i
 ORDER BY i.purpose;

-- my_usage: each licensee sees its own rows only
SET SESSION AUTHORIZATION meter_analyst;
SELECT count(*) > 0 AS sees_own, count(*) FILTER (WHERE consent_ref = 'o1 other licensee') AS sees_other
  FROM licdata.my_usage;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION meter_other;
SELECT consent_ref, rows FROM licdata.my_usage;
RESET SESSION AUTHORIZATION;

-- audit: one row per statement, denials included (also the one whose transaction aborted)
SELECT consent_ref, kind, decision, sqlstate, count(*), sum(rows) AS rows
  FROM licdata.audit_log WHERE licensee_name IN ('meter_bank', 'meter_other')
 GROUP BY consent_ref, kind, decision, sqlstate ORDER BY consent_ref, decision, sqlstate;
-- the operator's read
SELECT kind, decision, licensee, rows FROM licdata.audit_log
 WHERE role_name = current_user AND 'meter_t.items' = ANY (dataset_names) ORDER BY seq;

-- the records are written only by licdata, not even by a superuser
UPDATE licdata.usage SET rows = 0 WHERE consent_ref = 'm01 select';
DELETE FROM licdata.usage WHERE consent_ref = 'm01 select';
INSERT INTO licdata.usage (at, rows, rows_delivered, rows_in_functions, rows_aggregated, outcome, amount, journal_ref)
VALUES (now(), 0, 0, 0, 0, 'ok', 0, 'forged');
TRUNCATE licdata.usage;
UPDATE licdata.audit_log SET rows = 0 WHERE consent_ref = 'm01 select';
DELETE FROM licdata.audit_log WHERE consent_ref = 'm01 select';
TRUNCATE licdata.audit_log;
-- ... except through the retention function (nothing here is old enough to go)
SELECT * FROM licdata.purge_records(now() - interval '2 days');
SELECT count(*) FROM licdata.usage WHERE licensee = 'meter_bank'::regrole;

-- the hash chain verifies; an altered, removed or inserted row is found
-- (a superuser tampering with the record batches behind the view)
SELECT ok FROM licdata.verify_audit();
SELECT seq AS victim FROM licdata.audit_log WHERE consent_ref = 'm03 cursor' \gset
BEGIN;
ALTER TABLE licdata_internal.record_batches DISABLE TRIGGER records_guard;
UPDATE licdata_internal.record_batches b
   SET audit = licdata_internal._pack(ARRAY(
		SELECT CASE WHEN a.seq = :victim THEN jsonb_populate_record(a, jsonb_build_object('rows', a.rows - 1))
					ELSE a END
		  FROM licdata_internal._unpack_audit(b.audit) a ORDER BY a.seq))
 WHERE :victim BETWEEN b.first_seq AND b.last_seq;
SELECT ok, first_bad_seq = :victim AS finds_altered FROM licdata.verify_audit();
ROLLBACK;
BEGIN;
ALTER TABLE licdata_internal.record_batches DISABLE TRIGGER records_guard;
UPDATE licdata_internal.record_batches b
   SET audit = licdata_internal._pack(ARRAY(
		SELECT a FROM licdata_internal._unpack_audit(b.audit) a WHERE a.seq <> :victim ORDER BY a.seq))
 WHERE :victim BETWEEN b.first_seq AND b.last_seq;
SELECT ok, first_bad_seq = :victim + 1 AS finds_removed FROM licdata.verify_audit();
ROLLBACK;
BEGIN;
ALTER TABLE licdata_internal.record_batches DISABLE TRIGGER records_guard;
-- (the lock ALTER TABLE takes keeps the worker from appending meanwhile)
SELECT max(seq) AS last FROM licdata.audit_log \gset
UPDATE licdata_internal.record_batches b
   SET audit = licdata_internal._pack(ARRAY(
		SELECT a FROM (SELECT a FROM licdata_internal._unpack_audit(b.audit) a
					   UNION ALL
					   SELECT jsonb_populate_record(v, jsonb_build_object('seq', :last + 1,
								'journal_ref', v.journal_ref || '-forged'))
						 FROM licdata_internal._unpack_audit(b.audit) v WHERE v.seq = :victim) x(a)
		 ORDER BY (x.a).seq))
 WHERE :victim BETWEEN b.first_seq AND b.last_seq;
SELECT ok, first_bad_seq = :last + 1 AS finds_inserted FROM licdata.verify_audit();
ROLLBACK;
-- restored
SELECT ok FROM licdata.verify_audit();
SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'licdata_internal.record_batches'::regclass AND tgname = 'records_guard';

-- clean up
DROP TABLE pg_temp.got;
DROP SCHEMA meter_own CASCADE;
SELECT licdata.revoke_licence(id) FROM licdata.licences
 WHERE dataset = 'meter_t.items'::regclass AND status <> 'revoked' ORDER BY id;
SELECT licdata.unpublish('meter_t.items');
DROP SCHEMA meter_t CASCADE;
DROP ROLE meter_analyst, meter_other;
DROP ROLE meter_bank;
