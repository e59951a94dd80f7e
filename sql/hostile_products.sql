-- Data products under attack: a licensee holding a product licence tries to
-- get more out of the product than its result.  Each attempt below must
-- fail, or return the product's result and nothing else.  The dataset:
-- hostile_t.people (a secret salary and name per ID); the products: an
-- eligibility yes/no (SQL), a months lookup that builds its SQL (PL/pgSQL,
-- EXECUTE with %L), a product whose body fails on a data value, one that
-- calls an operator's helper, one that calls code its author let the
-- licensee own.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 7500, false);

CREATE SCHEMA hostile_t;
CREATE TABLE hostile_t.people (id_number text PRIMARY KEY, name text, salary numeric, months integer);
INSERT INTO hostile_t.people
SELECT 'H' || lpad(g::text, 3, '0'), 'secret-name-' || g, 1000 * g, g % 25 FROM generate_series(1, 50) g;
SELECT licdata.publish('hostile_t.people', 'hostile test people');
CREATE ROLE hostile_bank NOLOGIN;
CREATE ROLE hostile_analyst LOGIN IN ROLE hostile_bank;
SELECT licdata.register_licensee('hostile_bank', 'Hostile Bank');
CREATE SCHEMA hostile_own AUTHORIZATION hostile_analyst;

CREATE FUNCTION hostile_t.eligible(idn text) RETURNS boolean
	LANGUAGE sql AS $$ SELECT p.salary > 20000 FROM hostile_t.people p WHERE lower(p.id_number) = lower(idn) $$;
CREATE FUNCTION hostile_t.months(idn text) RETURNS integer
	LANGUAGE plpgsql AS $$
DECLARE
	m integer;
BEGIN
	EXECUTE format('SELECT months FROM hostile_t.people WHERE id_number = %L', idn) INTO m;
	RETURN m;
END $$;
-- fails on a data value: the cast error would carry the name; it also
-- raises a notice with the salary
CREATE FUNCTION hostile_t.fragile(idn text) RETURNS integer
	LANGUAGE plpgsql AS $$
DECLARE
	n text;
	s numeric;
BEGIN
	SELECT name, salary INTO n, s FROM hostile_t.people WHERE id_number = idn;
	RAISE NOTICE 'debug: salary %', s;
	RETURN n::integer;
END $$;
CREATE FUNCTION hostile_t.fragile_open(idn text) RETURNS integer
	LANGUAGE plpgsql AS $$
DECLARE
	n text;
BEGIN
	SELECT name INTO n FROM hostile_t.people WHERE id_number = idn;
	RETURN n::integer;
END $$;
-- an operator's helper (not a product) the product calls; PUBLIC may execute it
CREATE FUNCTION hostile_t.helper(idn text) RETURNS numeric
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	s numeric;
BEGIN
	SELECT salary INTO s FROM hostile_t.people WHERE id_number = idn;
	RETURN s;
END $$;
CREATE FUNCTION hostile_t.band(idn text) RETURNS text
	LANGUAGE plpgsql AS $$ BEGIN RETURN CASE WHEN hostile_t.helper(idn) > 25000 THEN 'high' ELSE 'low' END; END $$;
-- a product whose author calls a function in the licensee's schema (a
-- mistake): the licensee writes that function
CREATE FUNCTION hostile_t.with_callback(idn text) RETURNS text
	LANGUAGE plpgsql AS $$ BEGIN RETURN hostile_own.callback(idn); END $$;
CREATE FUNCTION hostile_t.with_callback_definer(idn text) RETURNS text
	LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN RETURN hostile_own.callback(idn); END $$;
-- opens a cursor named by its caller and leaves it open (the author's mistake)
CREATE FUNCTION hostile_t.opens(c text) RETURNS integer
	LANGUAGE plpgsql AS $$
DECLARE
	r refcursor := c;
BEGIN
	OPEN r FOR SELECT name, salary FROM hostile_t.people ORDER BY id_number;
	RETURN 1;
END $$;
CREATE FUNCTION hostile_t.returns_cursor() RETURNS refcursor
	LANGUAGE plpgsql AS $$ DECLARE r refcursor; BEGIN OPEN r FOR SELECT salary FROM hostile_t.people; RETURN r; END $$;
GRANT USAGE ON SCHEMA hostile_t TO hostile_analyst;

SET client_min_messages = warning;
SELECT licdata.publish_product('hostile_t.eligible(text)', price_per_call => 1);
SELECT licdata.publish_product('hostile_t.months(text)', price_per_call => 1);
SELECT licdata.publish_product('hostile_t.fragile(text)');
SELECT licdata.publish_product('hostile_t.fragile_open(text)', hide_errors => false);
SELECT licdata.publish_product('hostile_t.band(text)');
SELECT licdata.publish_product('hostile_t.with_callback(text)');
SELECT licdata.publish_product('hostile_t.with_callback_definer(text)');
SELECT licdata.publish_product('hostile_t.opens(text)');
RESET client_min_messages;
-- a product may not return a cursor
SELECT licdata.publish_product('hostile_t.returns_cursor()');
SELECT licdata.grant_product_licence('hostile_bank', p, ARRAY['credit_assessment'], max_calls_per_day => 40)
  FROM unnest(ARRAY['hostile_t.eligible(text)', 'hostile_t.months(text)', 'hostile_t.fragile(text)',
					'hostile_t.fragile_open(text)', 'hostile_t.band(text)',
					'hostile_t.with_callback(text)', 'hostile_t.opens(text)',
					'hostile_t.with_callback_definer(text)']::regprocedure[]) p;

SET SESSION AUTHORIZATION hostile_analyst;
SET licdata.purpose = 'credit_assessment';
SET licdata.consent_ref = 'H';
-- the product's result, for reference
SELECT hostile_t.eligible('H030') AS eligible, hostile_t.months('H030') AS months;

-- 1: the dataset itself, outside the product
SELECT salary FROM hostile_t.people WHERE id_number = 'H030';
-- 2: SQL injection through the argument of the product that builds SQL
SELECT hostile_t.months($$H030' OR true --$$) AS injected;
SELECT hostile_t.months($$x' UNION SELECT salary::int FROM hostile_t.people LIMIT 1 --$$) AS injected;
-- 3: shadowing a function the body calls (lower) through search_path
CREATE TABLE hostile_own.captured (v text);
CREATE FUNCTION hostile_own.lower(text) RETURNS text
	LANGUAGE plpgsql AS $$ BEGIN INSERT INTO hostile_own.captured VALUES ($1); RETURN pg_catalog.lower($1); END $$;
SET search_path = hostile_own, pg_catalog;
SELECT hostile_t.eligible('H030') AS eligible;
-- 4: shadowing the operator the body uses (text = text), search_path first
CREATE FUNCTION hostile_own.eq(text, text) RETURNS boolean
	LANGUAGE plpgsql AS $$ BEGIN INSERT INTO hostile_own.captured VALUES ($1 || '=' || $2); RETURN true; END $$;
CREATE OPERATOR hostile_own.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile_own.eq);
SELECT hostile_t.months('H030') AS months, hostile_t.eligible('H030') AS eligible;
-- nothing of the body reached the licensee's functions
SELECT count(*) AS captured FROM hostile_own.captured;
RESET search_path;
-- 5: a temporary table named like the dataset, and pg_temp first in the path
CREATE TEMP TABLE people (id_number text, name text, salary numeric, months integer);
INSERT INTO people VALUES ('H030', 'fake', 99999999, 99);
SET search_path = pg_temp, hostile_own, pg_catalog;
SELECT hostile_t.months('H030') AS months, hostile_t.eligible('H030') AS eligible;
RESET search_path;
-- 6: the body under another name: the licensee's own copy runs as the licensee
CREATE FUNCTION hostile_own.my_eligible(idn text) RETURNS boolean
	LANGUAGE sql AS $$ SELECT p.salary > 20000 FROM hostile_t.people p WHERE p.id_number = idn $$;
SELECT hostile_own.my_eligible('H030');
-- 7: renaming, redefining, re-owning or re-pathing the product: not the owner
ALTER FUNCTION hostile_t.eligible(text) RENAME TO eligible2;
CREATE OR REPLACE FUNCTION hostile_t.eligible(idn text) RETURNS boolean
	LANGUAGE sql AS $$ SELECT true $$;
ALTER FUNCTION hostile_t.eligible(text) OWNER TO hostile_analyst;
ALTER FUNCTION hostile_t.eligible(text) SET search_path = hostile_own, pg_catalog;
-- 8: a cursor over the product returns the product's rows only, metered
BEGIN;
DECLARE c CURSOR FOR SELECT hostile_t.months('H030') AS months;
FETCH ALL FROM c;
COMMIT;
-- 9: a cursor WITH HOLD over it: materialised at commit, still one call
DECLARE h CURSOR WITH HOLD FOR SELECT hostile_t.months('H031') AS months;
FETCH ALL FROM h;
CLOSE h;
-- 10: an error raised inside the product on a data value: a generic error
SELECT hostile_t.fragile('H030');
-- 11: the product's notices do not reach the client, whatever the licensee sets
SET client_min_messages = log;
SELECT hostile_t.fragile('H030');
RESET client_min_messages;
-- 12: the error, caught in the licensee's own function: still the generic one
CREATE FUNCTION hostile_own.catch_it(idn text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM hostile_t.fragile(idn);
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
SELECT hostile_own.catch_it('H030');
-- (with hide_errors => false the operator chose to show the product's errors)
SELECT hostile_t.fragile_open('H030');
-- 13: EXPLAIN VERBOSE shows the call, nothing of the body
EXPLAIN (VERBOSE, COSTS OFF) SELECT hostile_t.months('H030');
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM hostile_t.band('H030');
-- 14: EXPLAIN ANALYZE would time the body and count its buffers: refused
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT hostile_t.months('H030');
-- 15: ... also from inside the licensee's function
DO $$ BEGIN EXECUTE 'EXPLAIN ANALYZE SELECT hostile_t.months(''H030'')'; END $$;
-- 16: the operator's helper the product calls: its plan cached inside the
-- product (raw) is not reused outside it
SELECT hostile_t.band('H030') AS band;
SELECT hostile_t.helper('H030');
SELECT hostile_t.band('H030') AS band;
-- 17: the licensee's code reached from inside a product: it runs as the
-- licensee (not the product's owner), without raw access
CREATE FUNCTION hostile_own.callback(idn text) RETURNS text
	LANGUAGE sql AS $$ SELECT name FROM hostile_t.people WHERE id_number = idn $$;
SELECT hostile_t.with_callback('H030');
CREATE OR REPLACE FUNCTION hostile_own.callback(idn text) RETURNS text
	LANGUAGE plpgsql AS $$ BEGIN RETURN 'runs as ' || current_user; END $$;
SELECT hostile_t.with_callback('H030');
-- ... also when the product is SECURITY DEFINER
SELECT hostile_t.with_callback_definer('H030');
-- 18: the product next to the dataset in one statement: the dataset is still refused
SELECT hostile_t.eligible(p.id_number) FROM hostile_t.people p;
-- 19: a prepared statement: each execution is a call, metered
PREPARE q(text) AS SELECT hostile_t.eligible($1) AS eligible;
EXECUTE q('H001');
EXECUTE q('H049');
DEALLOCATE q;
-- 20: a parallel plan cannot carry the product to a worker (PARALLEL UNSAFE)
CREATE TABLE hostile_own.ids AS SELECT 'H' || lpad(g::text, 3, '0') AS idn FROM generate_series(1, 5) g;
SET force_parallel_mode = on;
SELECT count(*) FILTER (WHERE hostile_t.eligible(idn)) AS eligible FROM hostile_own.ids;
RESET force_parallel_mode;
-- 21: enumerating by brute force stops at the day quota of calls (40)
SELECT count(*) FROM generate_series(1, 50) g WHERE hostile_t.eligible('H' || lpad(g::text, 3, '0'));
-- 22: the product inside the licensee's SECURITY DEFINER function: still the licensee's call
CREATE FUNCTION hostile_own.wrapped(idn text) RETURNS integer LANGUAGE sql SECURITY DEFINER
	AS $$ SELECT hostile_t.months(idn) $$;
SELECT hostile_own.wrapped('H030');
-- 23: SET ROLE to the product's owner, or SESSION AUTHORIZATION: not a member
SET ROLE postgres;
-- 24: reading the catalog of products and the records: refused
SELECT count(*) FROM licdata.products;
SELECT count(*) FROM licdata.usage;
-- 25: a cursor the product's body opened and left open: not readable after the call
BEGIN;
SELECT hostile_t.opens('leak');
FETCH ALL FROM leak;
ROLLBACK;
RESET SESSION AUTHORIZATION;

SELECT licdata.flush();
-- every call metered: one usage row per statement and product licence
SELECT split_part(u.statement, E'\n', 2) AS call, p.product, u.calls, u.rows, u.amount, u.outcome
  FROM licdata.usage u JOIN licdata.licences p ON p.id = u.licence_id
 WHERE u.licensee = 'hostile_bank'::regrole ORDER BY u.id;
-- the operator's log has the product's own error (server log only); the audit
-- of the denials
SELECT decision, sqlstate, dataset_names
  FROM licdata.audit_log WHERE licensee = 'hostile_bank'::regrole AND decision = 'deny' ORDER BY seq;
