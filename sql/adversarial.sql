-- A clever licensee tries to read rows outside its row filter, columns
-- outside its licence, or raw values of masked columns.  Every attempt
-- below must fail or show only licensed, masked data.  The out-of-scope
-- markers: region 'sh' rows, the salary column, raw id numbers '1101...'.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 2000, false);
CREATE SCHEMA adv;
CREATE TABLE adv.people (id integer PRIMARY KEY, id_number varchar(18), name text, region text, salary numeric(10,2));
INSERT INTO adv.people
SELECT g, '11010519800101' || lpad(g::text, 4, '0'), 'name' || g,
	   CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END, 10000 + g
  FROM generate_series(1, 20) g;
CREATE TABLE adv.part (id integer, region text, v integer) PARTITION BY LIST (region);
CREATE TABLE adv.part_bj PARTITION OF adv.part FOR VALUES IN ('bj');
CREATE TABLE adv.part_sh PARTITION OF adv.part FOR VALUES IN ('sh');
INSERT INTO adv.part SELECT g, CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END, g FROM generate_series(1, 10) g;
ANALYZE adv.people, adv.part;
CREATE ROLE adv_bank NOLOGIN;
CREATE ROLE adv_user LOGIN IN ROLE adv_bank;
CREATE ROLE adv_side NOLOGIN;
GRANT adv_side TO adv_user;
CREATE ROLE adv_other NOLOGIN;
-- an operator's mistake: a side role of the licensee's user holds a plain GRANT
GRANT USAGE ON SCHEMA adv TO adv_side;
GRANT SELECT ON adv.people TO adv_side;
CREATE SCHEMA adv_own AUTHORIZATION adv_user;
SELECT licdata.publish('adv.people');
SELECT licdata.publish('adv.part');
SELECT licdata.register_licensee('adv_bank', 'Adversary Bank');
SELECT licdata.register_licensee('adv_other', 'Other Licensee');
SELECT licdata.grant_licence('adv_bank', 'adv.people', ARRAY['credit_assessment'],
							 columns => ARRAY['id', 'id_number', 'name', 'region'],
							 row_filter => 'region = ''bj''');
SELECT licdata.grant_licence('adv_bank', 'adv.part', ARRAY['credit_assessment'], row_filter => 'region = ''bj''');
SELECT licdata.set_mask('adv.people', 'id_number', 'pseudonym', '{"length": 16}');
SELECT licdata.set_mask('adv.people', 'name', 'partial', '{"keep_first": 1, "keep_last": 0}');
-- the operator computes the licensee's pseudonym of a value (for 35)
SELECT licdata.mask_pseudonym('110105198001010002', 16, 'adv_bank') AS adv_bank_token \gset

-- the licensee's user logs in (the session user is what licdata keys on)
SET SESSION AUTHORIZATION adv_user;
SET licdata.purpose = 'credit_assessment';
CREATE TABLE adv_own.raw_ids AS
	SELECT '11010519800101' || lpad(g::text, 4, '0') AS idn FROM generate_series(1, 20) g;
CREATE FUNCTION adv_own.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001
	AS $$BEGIN RAISE NOTICE 'leaked %', $1; RETURN true; END$$;

-- 1-3: leaky functions see only licensed rows, whatever their cost
SELECT count(*) FROM adv.people WHERE adv_own.leak(region);
SELECT count(*) FROM adv.people WHERE adv_own.leak(region) OR id < 0;
SELECT count(*) FROM (SELECT id FROM adv.people WHERE adv_own.leak(id::text)) s;
-- 4: an error that would fire only on an out-of-scope row does not fire
SELECT count(*) FROM adv.people WHERE 1 / (CASE WHEN region = 'sh' THEN 0 ELSE 1 END) = 1;
-- 5-6: out-of-scope rows by key or by value
SELECT count(*) FROM adv.people WHERE id = 3;
SELECT count(*) FROM adv.people WHERE region = 'sh';
-- 7-9: a raw id number never matches; prefixes of raw values do not either
SELECT count(*) FROM adv.people WHERE id_number = '110105198001010002';
SELECT count(*) FROM adv.people WHERE id_number LIKE '110105%';
SELECT count(*) FROM adv.people WHERE id_number BETWEEN '110105198001010000' AND '110105198001019999';
-- 10: joining the licensee's own table of raw values finds nothing
SELECT count(*) FROM adv_own.raw_ids r JOIN adv.people p ON p.id_number = r.idn;
-- 11: ... except through licdata.token, one value at a time
SELECT count(*) FROM adv_own.raw_ids r JOIN adv.people p
	ON p.id_number = licdata.token('adv.people', 'id_number', r.idn);
-- 12-16: the unlicensed column, by every route
SELECT salary FROM adv.people;
SELECT count(*) FROM adv.people WHERE salary > 10010;
TABLE adv.people;
SELECT * FROM ONLY adv.people;
SELECT row_to_json(p) FROM adv.people p;
-- 17-19: system columns
SELECT ctid FROM adv.people;
SELECT xmin FROM adv.people;
SELECT tableoid FROM adv.people;
-- 20: search_path games: the table is the table
SET search_path = adv, public;
SELECT salary FROM people;
RESET search_path;
-- 21: SET ROLE to a role with a plain GRANT does not leave the licence
SET ROLE adv_side;
SELECT count(*) FROM adv.people WHERE region = 'sh';
SELECT salary FROM adv.people;
SET ROLE adv_user;
-- 22: a SECURITY DEFINER function of the licensee's own is still the licensee
CREATE FUNCTION adv_own.definer() RETURNS bigint LANGUAGE sql SECURITY DEFINER
	AS 'SELECT count(*) FROM adv.people WHERE region = ''sh''';
SELECT adv_own.definer();
-- 23: a DO block sees licensed rows only
DO $$DECLARE r record; BEGIN
	FOR r IN SELECT id, region FROM adv.people WHERE id <= 4 LOOP RAISE NOTICE 'row % %', r.id, r.region; END LOOP;
END$$;
-- 24: partitions queried directly are served through the parent's licence
SELECT count(*) FROM adv.part_sh;
SELECT count(*) FROM adv.part_bj;
SELECT count(*) FROM adv.part WHERE region = 'sh';
-- 25: statistics
SELECT count(*) FROM pg_stats WHERE schemaname = 'adv';
SELECT count(*) FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid WHERE c.relname = 'people';
-- 26: EXPLAIN ANALYZE of a dataset is refused (its counts are not the licence's; see hostile_explain)
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM adv.part WHERE v > 0;
-- 27-28: writes, locks, DDL on the dataset
BEGIN;
LOCK TABLE adv.people;
ROLLBACK;
ALTER TABLE adv.people DISABLE ROW LEVEL SECURITY;
-- 29: inheriting from the dataset to read it
CREATE TABLE adv_own.child () INHERITS (adv.people);
-- 30: row security off does not turn licences off
SET row_security = off;
SELECT count(*) FROM adv.people;
RESET row_security;
-- 31-33: licdata's own records and catalog
SELECT count(*) FROM licdata.licences;
SELECT count(*) FROM licdata.usage;
SELECT count(*) FROM licdata.audit_log;
INSERT INTO licdata.licences (licensee, dataset, purposes) VALUES ('adv_bank', 'adv.people', '{x}');
-- 34: another licensee's pseudonyms cannot be computed
SELECT licdata.mask_pseudonym('110105198001010002', 16, 'adv_other');
-- 35: the licensee's own pseudonym of a value it holds is what its queries see
SELECT licdata.token('adv.people', 'id_number', '110105198001010002') = :'adv_bank_token' AS same;
-- 36: a cursor scrolled backwards sees the same licensed rows
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT id FROM adv.people ORDER BY id;
FETCH LAST FROM c;
FETCH BACKWARD 2 FROM c;
COMMIT;
-- 37: my_licences shows my licences only; my_usage my usage only
SELECT dataset, purposes, columns, row_filter FROM licdata.my_licences ORDER BY dataset::text;
RESET SESSION AUTHORIZATION;

-- an operator sees every row, raw
SELECT count(*), min(id_number) FROM adv.people;

DROP SCHEMA adv_own CASCADE;
SELECT licdata.revoke_licence(id) FROM licdata.licences WHERE dataset IN ('adv.people'::regclass, 'adv.part'::regclass);
SELECT licdata.unpublish('adv.people');
SELECT licdata.unpublish('adv.part');
REVOKE ALL ON SCHEMA adv FROM adv_side;
DROP SCHEMA adv CASCADE;
DROP ROLE adv_user, adv_side, adv_bank, adv_other;
