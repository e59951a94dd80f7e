-- Data products (issue 13): publish_product / unpublish_product /
-- grant_product_licence and their refusals; a licensee's calls decided
-- (LD001 LD002 LD004 LD005 LD006 LD007) and metered: one usage row per
-- statement and product licence with its calls and the rows returned,
-- amount = price per call x calls + price per row x rows; my_licences,
-- my_usage, invoice, audit.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
-- licence ids of their own: day quota counters are kept per licence id
SELECT setval('licdata.licences_id_seq', 7000, false);

CREATE SCHEMA prod_t;
CREATE TABLE prod_t.people (id integer PRIMARY KEY, id_number text NOT NULL, months integer, salary numeric);
INSERT INTO prod_t.people SELECT g, 'ID' || lpad(g::text, 4, '0'), g % 25, 1000 + g FROM generate_series(1, 100) g;
SELECT licdata.publish('prod_t.people', 'people behind the products', 1, 0.1);
CREATE ROLE prod_bank NOLOGIN;
CREATE ROLE prod_analyst LOGIN IN ROLE prod_bank;
CREATE ROLE prod_other LOGIN;
SELECT licdata.register_licensee('prod_bank', 'Product Bank');
SELECT licdata.register_licensee('prod_other', 'Other Licensee');

-- a point check (SQL, set-returning, one row), a batch (PL/pgSQL, set), a scalar
CREATE FUNCTION prod_t.check_person(idn text) RETURNS TABLE (months integer, eligible boolean)
	LANGUAGE sql STABLE AS $$ SELECT p.months, p.months >= 12 FROM prod_t.people p WHERE p.id_number = idn $$;
CREATE FUNCTION prod_t.above(min_salary numeric) RETURNS SETOF text
	LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT p.id_number FROM prod_t.people p WHERE p.salary >= min_salary ORDER BY p.id;
END $$;
CREATE FUNCTION prod_t.months_of(idn text) RETURNS integer
	LANGUAGE sql AS $$ SELECT p.months FROM prod_t.people p WHERE p.id_number = idn $$;

-- publish: licdata pins the search path and makes the function VOLATILE PARALLEL UNSAFE
SELECT licdata.publish_product('prod_t.check_person(text)', 'point check', price_per_call => 2, price_per_row => 0.5);
SELECT licdata.publish_product('prod_t.above(numeric)', 'batch', price_per_call => 10, price_per_row => 0.01);
SELECT licdata.publish_product('prod_t.months_of(text)');
SELECT p.oid::regprocedure, p.proconfig, p.provolatile, p.proparallel
  FROM pg_proc p WHERE p.pronamespace = 'prod_t'::regnamespace ORDER BY p.oid::regprocedure::text;
SELECT product, description, price_per_call, price_per_row, hide_errors, search_path
  FROM licdata.products WHERE product::text LIKE 'prod\_t.%' ORDER BY product::text;

-- refusals of publish_product
SELECT licdata.publish_product(NULL);
SELECT licdata.publish_product('prod_t.check_person(text)');
SELECT licdata.publish_product('pg_catalog.lower(text)');
CREATE PROCEDURE prod_t.proc() LANGUAGE sql AS $$ SELECT 1 $$;
SELECT licdata.publish_product('prod_t.proc()');
CREATE FUNCTION prod_t.poly(x anyelement) RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;
SELECT licdata.publish_product('prod_t.poly(anyelement)');
CREATE FUNCTION prod_t.theirs() RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;
ALTER FUNCTION prod_t.theirs() OWNER TO prod_analyst;
SELECT licdata.publish_product('prod_t.theirs()');
CREATE DOMAIN prod_t.their_domain AS text;
ALTER DOMAIN prod_t.their_domain OWNER TO prod_analyst;
CREATE FUNCTION prod_t.takes_domain(x prod_t.their_domain) RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;
SELECT licdata.publish_product('prod_t.takes_domain(prod_t.their_domain)');
CREATE SCHEMA prod_open;
GRANT CREATE ON SCHEMA prod_open TO prod_analyst;
CREATE FUNCTION prod_t.open_path() RETURNS integer LANGUAGE sql SET search_path = prod_open, pg_temp AS $$ SELECT 1 $$;
SELECT licdata.publish_product('prod_t.open_path()');
CREATE FUNCTION prod_t.temp_first() RETURNS integer LANGUAGE sql SET search_path = pg_temp, prod_t AS $$ SELECT 1 $$;
SELECT licdata.publish_product('prod_t.temp_first()');
CREATE FUNCTION prod_t.no_temp() RETURNS integer LANGUAGE sql SET search_path = prod_t AS $$ SELECT 1 $$;
SELECT licdata.publish_product('prod_t.no_temp()');
CREATE FUNCTION prod_t.user_path() RETURNS integer LANGUAGE sql SET search_path = "$user", pg_temp AS $$ SELECT 1 $$;
SELECT licdata.publish_product('prod_t.user_path()');
-- an operator's own schema in the path is fine
CREATE FUNCTION prod_t.own_path() RETURNS integer LANGUAGE sql SET search_path = prod_t, pg_catalog, pg_temp AS $$ SELECT 1 $$;
SELECT licdata.publish_product('prod_t.own_path()', price_per_call => -1);
SELECT licdata.publish_product('prod_t.own_path()');
SELECT licdata.unpublish_product('prod_t.own_path()');
SELECT licdata.unpublish_product('prod_t.own_path()');
-- licensees cannot publish or grant
SET SESSION AUTHORIZATION prod_analyst;
SELECT licdata.publish_product('pg_catalog.lower(text)');
SELECT licdata.grant_product_licence('prod_bank', 'pg_catalog.lower(text)', ARRAY['credit_assessment']);
SELECT licdata.unpublish_product('pg_catalog.lower(text)');
RESET SESSION AUTHORIZATION;

-- licences, and the refusals of grant_product_licence
SELECT licdata.grant_product_licence('prod_bank', 'prod_t.check_person(text)', ARRAY['credit_assessment'],
		max_calls_per_day => 5, require_consent_ref => true) AS lic_check \gset
SELECT licdata.grant_product_licence('prod_bank', 'prod_t.above(numeric)', ARRAY['verification'],
		price_per_call => 3) AS lic_above \gset
SELECT licdata.grant_product_licence('prod_bank', 'prod_t.months_of(text)', ARRAY['credit_assessment'],
		price_per_call => 0.25, price_per_row => 0) AS lic_months \gset
SELECT licdata.grant_product_licence('prod_other', 'prod_t.months_of(text)', ARRAY['other'],
		valid_from => '2999-01-01 00:00:00+00') AS lic_future \gset
SELECT licdata.grant_product_licence('prod_bank', 'prod_t.own_path()', ARRAY['x']);
SELECT licdata.grant_product_licence('prod_analyst', 'prod_t.months_of(text)', ARRAY['x']);
SELECT licdata.grant_product_licence('prod_bank', 'prod_t.months_of(text)', ARRAY['Bad Purpose']);
SELECT licdata.grant_product_licence('prod_bank', 'prod_t.months_of(text)', ARRAY['x'], max_calls_per_day => 0);
SELECT licdata.grant_product_licence('prod_bank', 'prod_t.months_of(text)', ARRAY['x'], price_per_row => -1);
SELECT licdata.grant_product_licence('prod_bank', 'prod_t.months_of(text)', ARRAY['x'],
		valid_from => '2026-01-02 00:00:00+00', valid_until => '2026-01-01 00:00:00+00');
SELECT licdata.unpublish_product('prod_t.months_of(text)');
-- the catalog: dataset NULL, product set; exactly one of the two
SELECT id - :lic_check AS n, dataset, product, purposes, max_calls_per_day, price_per_query AS per_call, price_per_row
  FROM licdata.licences WHERE product IS NOT NULL AND licensee::text LIKE 'prod\_%' ORDER BY id;
\set VERBOSITY terse
INSERT INTO licdata.licences (licensee, dataset, product, purposes)
VALUES ('prod_bank', 'prod_t.people', 'prod_t.months_of(text)', ARRAY['x']);
INSERT INTO licdata.licences (licensee, purposes) VALUES ('prod_bank', ARRAY['x']);
\set VERBOSITY default

SET SESSION AUTHORIZATION prod_analyst;
-- my_licences shows the product licences, with the quota of calls left
SELECT kind, product, description, purposes, max_calls_per_day, calls_left_today, price_per_call, price_per_row
  FROM licdata.my_licences ORDER BY id;
-- decided before the body runs
RESET licdata.purpose;
SELECT * FROM prod_t.check_person('ID0013');
SET licdata.purpose = 'marketing';
SELECT * FROM prod_t.check_person('ID0013');
SET licdata.purpose = 'credit_assessment';
SELECT * FROM prod_t.check_person('ID0013');
-- no licence for the dataset itself: the raw table stays closed outside the product
SELECT months FROM prod_t.people WHERE id_number = 'ID0013';
SET licdata.consent_ref = 'P-01 point check';
SELECT * FROM prod_t.check_person('ID0013');
SELECT * FROM prod_t.check_person('ID0013') c, prod_t.check_person('ID0024') d;
SELECT prod_t.months_of('ID0013') AS months;
-- one call per row of the licensee's own list
CREATE TEMP TABLE my_list (idn text);
INSERT INTO my_list SELECT 'ID' || lpad(g::text, 4, '0') FROM generate_series(1, 7) g;
SET licdata.consent_ref = 'P-02 per row';
SELECT count(prod_t.months_of(idn)) FROM my_list;
-- a set-returning product counts the rows it returns, whatever the statement keeps of them
SET licdata.purpose = 'verification';
SET licdata.consent_ref = 'P-03 batch';
SELECT count(*) FROM prod_t.above(1090);
SET licdata.consent_ref = 'P-04 batch in a cursor';
BEGIN;
DECLARE c CURSOR FOR SELECT * FROM prod_t.above(1095);
FETCH 2 FROM c;
CLOSE c;
COMMIT;
-- a session that asks for parallel plans: the body is planned without them
-- (a parallel worker would not know it serves a product)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET licdata.consent_ref = 'P-04b parallel';
SELECT count(*) FROM prod_t.above(0);
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
-- the day quota of calls: 5 for the point check, 3 used above
SET licdata.purpose = 'credit_assessment';
SET licdata.consent_ref = 'P-05 quota';
SELECT * FROM prod_t.check_person('ID0001');
SELECT * FROM prod_t.check_person('ID0002');
SELECT * FROM prod_t.check_person('ID0003');
SELECT calls_left_today FROM licdata.my_licences WHERE id = :lic_check;
RESET SESSION AUTHORIZATION;
-- suspended, resumed, revoked: the same codes as for datasets
SELECT licdata.suspend_licence(:lic_months);
SET SESSION AUTHORIZATION prod_analyst;
SET licdata.purpose = 'credit_assessment';
SELECT prod_t.months_of('ID0013');
RESET SESSION AUTHORIZATION;
SELECT licdata.resume_licence(:lic_months);
SET SESSION AUTHORIZATION prod_analyst;
SET licdata.purpose = 'credit_assessment';
SET licdata.consent_ref = 'P-06 resumed';
SELECT prod_t.months_of('ID0013');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION prod_other;
SET licdata.purpose = 'other';
SELECT prod_t.months_of('ID0013');
SELECT * FROM prod_t.check_person('ID0013');
RESET SESSION AUTHORIZATION;
-- an operator calls the function as any function: not metered
SELECT * FROM prod_t.check_person('ID0013');

SELECT licdata.flush();
-- one usage row per statement and product licence
SELECT consent_ref, licence_id - :lic_check AS lic, dataset, mode, calls, rows, amount, outcome, sqlstate
  FROM licdata.usage WHERE licensee = 'prod_bank'::regrole ORDER BY id;
-- the audit names the product, the datasets it read, the arguments
SELECT decision, sqlstate, dataset_names, licence_ids, statement
  FROM licdata.audit_log WHERE licensee = 'prod_bank'::regrole ORDER BY seq;
SELECT licence_id - :lic_check AS lic, dataset, purpose, queries, rows, amount
  FROM licdata.invoice('prod_bank', now() - interval '1 hour', now() + interval '1 hour');
SET SESSION AUTHORIZATION prod_analyst;
SELECT count(*), sum(calls) AS calls FROM licdata.my_usage;
RESET SESSION AUTHORIZATION;

-- audit_statement_text = off: the arguments are in the statement's hash only
SET licdata.audit_statement_text = off;
SET SESSION AUTHORIZATION prod_analyst;
SET licdata.purpose = 'credit_assessment';
SET licdata.consent_ref = 'P-07 hashed';
SELECT prod_t.months_of('ID0042');
RESET SESSION AUTHORIZATION;
RESET licdata.audit_statement_text;
SELECT licdata.flush();
SELECT statement ~ '^[0-9a-f]{64}$' AS hashed, statement_is_hash, calls FROM licdata.usage WHERE consent_ref = 'P-07 hashed';

-- revoked and unpublished; a dropped product is unpublished and its licences revoked
SELECT licdata.revoke_licence(:lic_above);
SET SESSION AUTHORIZATION prod_analyst;
SET licdata.purpose = 'verification';
SELECT count(*) FROM prod_t.above(0);
RESET SESSION AUTHORIZATION;
SELECT licdata.unpublish_product('prod_t.above(numeric)');
SELECT unpublished_at IS NOT NULL AS unpublished FROM licdata.products WHERE product = 'prod_t.above(numeric)'::regprocedure;
SET SESSION AUTHORIZATION prod_analyst;
SET licdata.purpose = 'verification';
-- no longer a product: the body runs as the licensee, under its own licences (none)
SELECT count(*) FROM prod_t.above(0);
RESET SESSION AUTHORIZATION;
DROP FUNCTION prod_t.months_of(text);
SELECT status FROM licdata.licences WHERE id IN (:lic_months, :lic_future) ORDER BY id;
