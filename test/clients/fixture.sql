--
-- test/clients/fixture.sql -- shared setup of the client tests
-- (test/clients/jdbc_test.sh, test/clients/odbc_test.sh).  Run as a superuser
-- in the database named by licdata.database:
--
--   psql -v ON_ERROR_STOP=1 -q -f test/clients/fixture.sql
--
-- What it makes:
--   pd.people     50,000 people; published (price 1 per query, 0.001 per row);
--                 licensed to bank_a for credit_assessment over person_id,
--                 id_number, name, region, birth (not salary), rows with
--                 region <> 'xj' only (37,500 rows), consent reference required;
--                 masks: id_number pseudonym(16), name cn_name, birth month.
--   pd.accounts   1,000 accounts; licensed to bank_a for credit_assessment with
--                 max_rows_per_query = 100 (the LD006 case).
--   pd.tax_records  published, no licence for bank_a (the LD005 case).
--   bank_a        a LOGIN role (no password: the test clusters trust local and
--                 127.0.0.1 connections), registered as licensee "Bank A".
--
-- Raw values are a function of person_id, so a test can compute what a
-- licensee holds (e.g. the raw id number it looks up with licdata.token):
--   region    = (ARRAY['bj','sh','gd','xj'])[1 + person_id % 4]   -- xj: person_id % 4 = 3
--   birth     = date '1950-01-01' + (person_id * 7919) % 20000
--   id_number = '1101' || lpad(person_id, 6, '0') || to_char(birth, 'YYYYMMDD')
--
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION licdata;

CREATE SCHEMA pd;

CREATE TABLE pd.people (
	person_id	bigint PRIMARY KEY,
	id_number	varchar(18) NOT NULL,
	name		text NOT NULL,
	region		text NOT NULL,
	salary		numeric(10,2),
	birth		date
);

INSERT INTO pd.people (person_id, id_number, name, region, salary, birth)
SELECT i,
	   '1101' || lpad(i::text, 6, '0') || to_char(b, 'YYYYMMDD'),
	   (ARRAY['张', '王', '李', '赵', '欧阳', '司马', '陈', '刘'])[1 + i % 8] ||
	   (ARRAY['伟', '芳', '娜娜', '敏', '静', '强', '磊', '洋', '艳', '勇', '军'])[1 + i % 11],
	   (ARRAY['bj', 'sh', 'gd', 'xj'])[1 + i % 4],
	   (3000 + (i * 37) % 50000)::numeric(10,2),
	   b
  FROM generate_series(1, 50000) i,
	   LATERAL (SELECT date '1950-01-01' + (i * 7919) % 20000 AS b) d;

CREATE TABLE pd.accounts (
	account_id	bigint PRIMARY KEY,
	person_id	bigint NOT NULL,
	balance		numeric(12,2) NOT NULL
);
INSERT INTO pd.accounts
SELECT i, 1 + (i * 31) % 50000, (i * 17 % 100000)::numeric(12,2)
  FROM generate_series(1, 1000) i;

CREATE TABLE pd.tax_records (
	enterprise_id	bigint PRIMARY KEY,
	revenue			numeric(14,2) NOT NULL
);
INSERT INTO pd.tax_records SELECT i, i * 1000 FROM generate_series(1, 100) i;

ANALYZE pd.people, pd.accounts, pd.tax_records;

SELECT licdata.publish('pd.people', 'people', 1, 0.001);
SELECT licdata.publish('pd.accounts', 'accounts');
SELECT licdata.publish('pd.tax_records', 'tax records');

CREATE ROLE bank_a LOGIN;
SELECT licdata.register_licensee('bank_a', 'Bank A');

SELECT licdata.grant_licence('bank_a', 'pd.people', ARRAY['credit_assessment'],
		columns => ARRAY['person_id', 'id_number', 'name', 'region', 'birth']::name[],
		row_filter => $$region <> 'xj'$$,
		require_consent_ref => true);

SELECT licdata.set_mask('pd.people', 'id_number', 'pseudonym', '{"length": 16}');
SELECT licdata.set_mask('pd.people', 'name', 'cn_name');
SELECT licdata.set_mask('pd.people', 'birth', 'date_trunc', '{"unit": "month"}');

SELECT licdata.grant_licence('bank_a', 'pd.accounts', ARRAY['credit_assessment'],
		max_rows_per_query => 100);

-- pd.tax_records: published, deliberately no licence for bank_a.

-- Data products: pd.salary_band reads salary (outside bank_a's column
-- licence) and returns a band only; pd.region_members returns up to n
-- person ids of a region (a set).  Licensed to bank_a for credit_assessment.
CREATE FUNCTION pd.salary_band(p bigint) RETURNS text LANGUAGE sql
	AS $$ SELECT CASE WHEN salary >= 30000 THEN 'high' WHEN salary >= 10000 THEN 'mid' ELSE 'low' END
			FROM pd.people WHERE person_id = p $$;
CREATE FUNCTION pd.region_members(r text, n integer) RETURNS SETOF bigint LANGUAGE sql
	AS $$ SELECT person_id FROM pd.people WHERE region = r ORDER BY person_id LIMIT n $$;
SELECT licdata.publish_product('pd.salary_band(bigint)', 'salary band', price_per_call => 0.5, price_per_row => 0.1);
SELECT licdata.publish_product('pd.region_members(text,integer)', 'members', price_per_call => 2, price_per_row => 0.25);
SELECT licdata.grant_product_licence('bank_a', 'pd.salary_band(bigint)', ARRAY['credit_assessment']);
SELECT licdata.grant_product_licence('bank_a', 'pd.region_members(text,integer)', ARRAY['credit_assessment']);
