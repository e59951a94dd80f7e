-- Masks through licences: every method applied where the licensee's query
-- reads the column, the column's type kept (a JDBC-like describe), the mask
-- precedence, and inference attempts through predicates, joins and errors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 4000, false);
CREATE SCHEMA msk;
CREATE TABLE msk.people (
	id			integer PRIMARY KEY,
	id_number	varchar(18),
	name		text,
	mobile		varchar(20),
	email		text,
	birth		date,
	seen_at		timestamptz,
	salary		numeric(10,2),
	score		integer,
	code		varchar(18),
	note		text
);
INSERT INTO msk.people VALUES
 (1, '11010519491231002X', '张三丰', '13812345678', 'zhang.san@example.cn', '1949-12-31', '2026-03-15 10:20:30+08', 10007.00, 87, '110105194912310021', 'a'),
 (2, '310101198001010012', '欧阳娜娜', '+86 139 0000 1111', 'nana@example.com', '1980-01-01', '2025-07-04 00:00:00+08', 25000.50, 42, '310101198001010012', 'b'),
 (3, '440305199912120033', '李', '13700001111', 'x@y.cn', '1999-12-12', '2024-02-29 23:59:59+08', 999.99, -5, '440305199912120033', 'c');
CREATE ROLE msk_bank NOLOGIN;
CREATE ROLE msk_user LOGIN IN ROLE msk_bank;
CREATE ROLE msk_other NOLOGIN;
CREATE ROLE msk_other_user LOGIN IN ROLE msk_other;
CREATE SCHEMA msk_own AUTHORIZATION msk_user;
CREATE FUNCTION msk.first_char(text) RETURNS text LANGUAGE sql IMMUTABLE
	SET search_path = pg_catalog, pg_temp AS 'SELECT left($1, 1)';
GRANT USAGE ON SCHEMA msk TO PUBLIC;
SELECT licdata.publish('msk.people');
SELECT licdata.register_licensee('msk_bank', 'Bank');
SELECT licdata.register_licensee('msk_other', 'Other');
SELECT licdata.grant_licence('msk_bank', 'msk.people', ARRAY['credit_assessment', 'fraud']);
SELECT licdata.grant_licence('msk_other', 'msk.people', ARRAY['credit_assessment']);
SELECT licdata.set_mask('msk.people', 'id_number', 'cn_id');
SELECT licdata.set_mask('msk.people', 'name', 'cn_name');
SELECT licdata.set_mask('msk.people', 'mobile', 'cn_mobile');
SELECT licdata.set_mask('msk.people', 'email', 'email');
SELECT licdata.set_mask('msk.people', 'birth', 'date_trunc', '{"unit": "year"}');
SELECT licdata.set_mask('msk.people', 'seen_at', 'date_trunc', '{"unit": "month"}');
SELECT licdata.set_mask('msk.people', 'salary', 'bucket', '{"width": 1000}');
SELECT licdata.set_mask('msk.people', 'score', 'noise', '{"absolute": 10}');
SELECT licdata.set_mask('msk.people', 'code', 'pseudonym', '{"length": 12}');
SELECT licdata.set_mask('msk.people', 'note', 'function', '{"name": "msk.first_char"}');
-- licence-level and purpose-level masks override the dataset default
SELECT licdata.set_mask('msk.people', 'id_number', 'fpe', '{"alphabet": "0123456789X"}', 4000);
SELECT licdata.set_mask('msk.people', 'id_number', 'redact', '{"with": "REDACTED"}', 4000, 'fraud');
SELECT licdata.set_mask('msk.people', 'name', 'partial', '{"keep_first": 0, "keep_last": 1, "pad": "#"}', 4001);
-- the operator computes the bank's pseudonyms (licensees cannot call the keyed masks)
CREATE TABLE msk.expected_codes AS
	SELECT id, licdata.mask_pseudonym(code, 12, 'msk_bank') AS token FROM msk.people;
GRANT SELECT ON msk.expected_codes TO PUBLIC;

SET SESSION AUTHORIZATION msk_user;
SET licdata.purpose = 'credit_assessment';
-- the result keeps the table's column types
SELECT * FROM msk.people LIMIT 0 \gdesc
SELECT id, name, mobile, email, birth, salary, note FROM msk.people ORDER BY id;
-- pseudonyms depend on the cluster's key: compare with the operator's computation
SELECT p.id, p.code ~ '^[a-z2-7]{12}$' AS base32_12, p.code = e.token AS keyed
  FROM msk.people p JOIN msk.expected_codes e ON e.id = p.id ORDER BY p.id;
SELECT id, to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS seen FROM msk.people ORDER BY id;
-- noise is deterministic: the same value gives the same noisy value every time
SELECT count(DISTINCT score) FROM (SELECT score FROM msk.people WHERE id = 1
	UNION ALL SELECT score FROM msk.people WHERE id = 1) s;
SELECT bool_and(abs(score - real_score) <= 10) AS within_10
  FROM msk.people p JOIN (VALUES (1, 87), (2, 42), (3, -5)) v(vid, real_score) ON v.vid = p.id;
-- fpe keeps length and alphabet; licence 4000's mask beats the dataset default
SELECT id, length(id_number) = 18 AS same_length, id_number ~ '^[0-9X]{18}$' AS same_alphabet,
	   id_number <> '11010519491231002X' AS changed
  FROM msk.people ORDER BY id;
-- the purpose-level mask beats both
SET licdata.purpose = 'fraud';
SELECT id, id_number FROM msk.people ORDER BY id;
SET licdata.purpose = 'credit_assessment';
-- inference through predicates finds nothing raw
SELECT count(*) FROM msk.people WHERE salary BETWEEN 10006 AND 10008;
SELECT count(*) FROM msk.people WHERE salary = 10007.00;
SELECT count(*) FROM msk.people WHERE birth = '1949-12-31';
SELECT count(*) FROM msk.people WHERE mobile = '13812345678';
SELECT count(*) FROM msk.people WHERE email LIKE 'zhang%';
SELECT count(*) FROM msk.people WHERE code = '110105194912310021';
SELECT count(*) FROM msk.people WHERE name = '张三丰' OR name LIKE '%三%';
-- a join with the licensee's own raw values finds nothing
CREATE TABLE msk_own.raw AS SELECT '13812345678'::varchar(20) AS mobile, 10007.00::numeric(10,2) AS salary;
SELECT count(*) FROM msk_own.raw r JOIN msk.people p ON p.mobile = r.mobile OR p.salary = r.salary;
-- error messages show masked values only
SELECT email::int FROM msk.people WHERE id = 1;
SELECT licdata_internal.mask_email(email)::int FROM msk.people WHERE id = 1;
-- EXPLAIN of a dataset is refused to licensees (see hostile_explain)
EXPLAIN (VERBOSE, COSTS OFF) SELECT code, salary FROM msk.people WHERE id = 1;
-- the licensee's token of a value it holds matches its own masked column
SELECT id FROM msk.people WHERE code = licdata.token('msk.people', 'code', '110105194912310021');
SELECT licdata.token('msk.people', 'note', 'zzz') AS token_of_function_mask;
SELECT code AS bank_token, id_number AS bank_fpe FROM msk.people WHERE id = 1 \gset
RESET SESSION AUTHORIZATION;

-- another licensee sees different pseudonyms (unlinkable) and its own name mask
SET SESSION AUTHORIZATION msk_other_user;
SET licdata.purpose = 'credit_assessment';
SELECT code <> :'bank_token' AS unlinkable, name FROM msk.people WHERE id = 1;
RESET SESSION AUTHORIZATION;

-- the operator can reverse FPE for a licensee, and compute its pseudonym
SELECT licdata.mask_pseudonym('110105194912310021', 12, 'msk_bank') = :'bank_token' AS operator_sees_same_token;
SELECT licdata.unmask_fpe(:'bank_fpe', 'msk_bank', '0123456789X') AS operator_reverses_fpe;
-- licensees cannot reverse FPE
SET SESSION AUTHORIZATION msk_user;
SELECT licdata.unmask_fpe(:'bank_fpe', 'msk_bank', '0123456789X');
RESET SESSION AUTHORIZATION;

DROP SCHEMA msk_own CASCADE;
SELECT licdata.revoke_licence(id) FROM licdata.licences WHERE dataset = 'msk.people'::regclass;
SELECT licdata.unpublish('msk.people');
DROP SCHEMA msk CASCADE;
DROP ROLE msk_user, msk_other_user, msk_bank, msk_other;
