-- A dataset served in place (rewrite.c: the entry read as licdata_reader
-- under its quals, masked columns replaced where the query reads them)
-- must give exactly what the licensed subquery gives: masked values at
-- every level that reads them, NULL (not the mask of NULL) on the nullable
-- side of an outer join, the row filter wherever the dataset is in the
-- range table, whole rows and unlicensed columns as before.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 13000, false);
CREATE SCHEMA ipl;
CREATE TABLE ipl.people (
	id			integer PRIMARY KEY,
	name		text,
	secret		text,
	code		varchar(18),
	region		text
);
INSERT INTO ipl.people VALUES
 (1, '张三丰', 'raw1', '110105194912310021', 'north'),
 (2, '欧阳娜娜', 'raw2', '310101198001010012', 'south'),
 (3, '李四', 'raw3', '440305199912120033', 'north');
CREATE TABLE ipl.other (id integer, pid integer, note text);
INSERT INTO ipl.other VALUES (10, 1, 'raw1'), (20, 2, 'raw2'), (30, 999, 'raw3');
CREATE ROLE ipl_bank NOLOGIN;
CREATE ROLE ipl_user LOGIN IN ROLE ipl_bank;
GRANT USAGE ON SCHEMA ipl TO PUBLIC;
GRANT SELECT ON ipl.other TO PUBLIC;
SELECT licdata.publish('ipl.people');
SELECT licdata.register_licensee('ipl_bank', 'Bank');
SELECT licdata.grant_licence('ipl_bank', 'ipl.people', ARRAY['masked']);
SELECT licdata.grant_licence('ipl_bank', 'ipl.people', ARRAY['filtered'], row_filter => 'region = ''north''');
SELECT licdata.grant_licence('ipl_bank', 'ipl.people', ARRAY['narrow'], columns => ARRAY['id', 'name']::name[],
							 unlicensed_columns => 'null');
SELECT licdata.grant_licence('ipl_bank', 'ipl.people', ARRAY['strict'], columns => ARRAY['id', 'name']::name[]);
SELECT licdata.set_mask('ipl.people', 'name', 'cn_name', '{}', 13000);
SELECT licdata.set_mask('ipl.people', 'secret', 'redact', '{"with": "###"}', 13000);
SELECT licdata.set_mask('ipl.people', 'code', 'pseudonym', '{"length": 8}', 13000);
CREATE TABLE ipl.expected_codes AS
	SELECT id, licdata.mask_pseudonym(code, 8, 'ipl_bank') AS token FROM ipl.people;
GRANT SELECT ON ipl.expected_codes TO PUBLIC;
CREATE VIEW ipl.v AS SELECT id, secret FROM ipl.people WHERE id < 3;
GRANT SELECT ON ipl.v TO PUBLIC;

SET SESSION AUTHORIZATION ipl_user;
SET licdata.purpose = 'masked';
-- the masks, at the top level and in predicates, grouping and ordering
SELECT id, name, secret FROM ipl.people ORDER BY id;
SELECT count(*) FROM ipl.people WHERE name = '张三丰' OR secret = 'raw1';
SELECT count(*) FROM ipl.people WHERE secret = '###';
SELECT secret, count(*) FROM ipl.people GROUP BY secret ORDER BY secret;
SELECT p.id, p.code = e.token AS keyed FROM ipl.people p JOIN ipl.expected_codes e ON e.id = p.id ORDER BY p.id;
-- the dataset second in the range table
SELECT o.id, p.name, p.secret FROM ipl.other o JOIN ipl.people p ON p.id = o.pid ORDER BY o.id;
-- the nullable side of an outer join: NULL, not the redaction constant
SELECT o.id, p.secret FROM ipl.other o LEFT JOIN ipl.people p ON p.id = o.pid ORDER BY o.id;
SELECT o.id, p.secret FROM ipl.people p RIGHT JOIN ipl.other o ON p.id = o.pid ORDER BY o.id;
SELECT o.id, p.secret FROM ipl.people p FULL JOIN ipl.other o ON p.id = o.pid ORDER BY o.id, p.id;
-- references from inner levels see the mask too
SELECT p.id, (SELECT p.secret || o.id FROM ipl.other o WHERE o.pid = p.id) AS s FROM ipl.people p ORDER BY p.id;
SELECT count(*) FROM ipl.people p WHERE EXISTS (SELECT 1 FROM ipl.other o WHERE o.note = p.secret);
SELECT p.id, x.s FROM ipl.people p, LATERAL (SELECT p.secret || '!' AS s) x ORDER BY p.id;
SELECT o.id, (SELECT p.name FROM ipl.people p WHERE p.id = o.pid) AS name FROM ipl.other o ORDER BY o.id;
SELECT count(*) FROM ipl.people WHERE secret IN (SELECT note FROM ipl.other);
WITH c AS (SELECT name, secret FROM ipl.people) SELECT count(*) FROM c WHERE name = '张三丰' OR secret = 'raw2';
SELECT secret FROM ipl.people WHERE id = 1 UNION ALL SELECT secret FROM ipl.people WHERE id = 2;
-- each part of a query that can name a masked column: an expression in the
-- target list, ORDER BY, HAVING, a join's alias, a LATERAL function or
-- VALUES in FROM (the last two are replaced with the whole query)
SELECT id, lower(secret) || '-' || length(name) AS s FROM ipl.people ORDER BY id;
SELECT id FROM ipl.people ORDER BY secret || name, id;
SELECT region, count(*) FROM ipl.people GROUP BY region HAVING max(secret) = '###' ORDER BY region;
SELECT region, count(*) FROM ipl.people GROUP BY region HAVING max(secret) LIKE 'raw%';
SELECT j.pid, j.secret, j.note
  FROM (ipl.people p JOIN ipl.other o ON o.pid = p.id) AS j(id, name, secret, code, region, oid, pid, note)
 ORDER BY j.pid;
SELECT id, secret, note FROM ipl.people JOIN (SELECT pid AS id, note FROM ipl.other) o USING (id) ORDER BY id;
SELECT id, secret, note FROM ipl.people FULL JOIN (SELECT pid AS id, note FROM ipl.other) o USING (id) ORDER BY id;
SELECT p.id, g FROM ipl.people p, LATERAL unnest(ARRAY[p.secret, p.name]) g ORDER BY p.id, g;
SELECT p.id, v.s FROM ipl.people p, LATERAL (VALUES (p.secret), (p.region)) v(s) ORDER BY p.id, v.s;
SELECT p.id, f.n FROM ipl.people p CROSS JOIN LATERAL length(p.secret) f(n) ORDER BY p.id;
-- a dataset inside a sublink in FROM, a subquery in FROM, a view
SELECT u FROM unnest(ARRAY(SELECT secret FROM ipl.people ORDER BY id)) u;
SELECT count(*) FROM (SELECT name FROM ipl.people WHERE name = '张三丰') s;
SELECT id, secret FROM ipl.v ORDER BY id;
-- grouping sets, whole rows: served through the subquery, same values
SELECT secret, count(*) FROM ipl.people GROUP BY ROLLUP (secret) ORDER BY secret NULLS LAST;
SELECT row_to_json(p)::jsonb - 'code' AS whole_row FROM ipl.people p ORDER BY p.id;
SELECT (p).secret, (p).code = e.token AS keyed FROM ipl.people p JOIN ipl.expected_codes e ON e.id = p.id WHERE p.id = 3;
-- a generic plan
SET plan_cache_mode = force_generic_plan;
PREPARE q(int) AS SELECT id, name, secret FROM ipl.people WHERE id = $1 OR secret = 'raw1';
EXECUTE q(1);
EXECUTE q(2);
DEALLOCATE q;
RESET plan_cache_mode;

-- the row filter, wherever the dataset is
SET licdata.purpose = 'filtered';
SELECT id, name, secret FROM ipl.people ORDER BY id;
SELECT o.id, p.id AS pid FROM ipl.other o JOIN ipl.people p ON p.id = o.pid ORDER BY o.id;
SELECT o.id, p.id AS pid FROM ipl.other o LEFT JOIN ipl.people p ON p.id = o.pid ORDER BY o.id;
SELECT (SELECT count(*) FROM ipl.people p WHERE p.id = o.pid) AS n FROM ipl.other o ORDER BY o.id;
SELECT count(*) FROM ipl.people a JOIN ipl.people b ON b.region = a.region;

-- columns outside the licence: NULL under 'null', refused otherwise
SET licdata.purpose = 'narrow';
SELECT id, name, secret FROM ipl.people ORDER BY id;
SELECT count(*) FROM ipl.people WHERE secret = 'raw1';
SELECT id, name FROM ipl.people WHERE id = 2;
SET licdata.purpose = 'strict';
SELECT id, name FROM ipl.people WHERE id = 2;
SELECT id, secret FROM ipl.people WHERE id = 2;
RESET SESSION AUTHORIZATION;

SELECT licdata.revoke_licence(id) FROM licdata.licences WHERE dataset = 'ipl.people'::regclass;
SELECT licdata.unpublish('ipl.people');
DROP SCHEMA ipl CASCADE;
DROP ROLE ipl_user, ipl_bank;
