-- hostile_inputs: arguments that pass a type check and name nothing --
-- regrole or regclass 0, the OID of a dropped role or table, NULL arrays,
-- arrays with NULL elements, empty strings, infinite times, NaN -- are
-- refused by every licdata function with a clear error, and change nothing
-- (the catalog fingerprint is compared after the bad calls).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SET timezone = 'UTC';
CREATE SCHEMA hin;
CREATE TABLE hin.people (id integer, name text);
CREATE TABLE hin.gone (id integer);
CREATE ROLE hin_bank NOLOGIN;
CREATE ROLE hin_user LOGIN IN ROLE hin_bank;
CREATE ROLE hin_gone NOLOGIN;
CREATE ROLE hin_stale NOLOGIN;
SELECT licdata.publish('hin.people');
SELECT licdata.register_licensee('hin_bank', 'Input Bank');
SELECT licdata.register_licensee('hin_stale', 'Dropped Later');
SELECT licdata.grant_licence('hin_bank', 'hin.people', '{credit}') AS lic \gset
-- OIDs that name nothing any more
SELECT 'hin_gone'::regrole::oid AS gone_role, 'hin_stale'::regrole::oid AS stale_role,
	   'hin.gone'::regclass::oid AS gone_table \gset
DROP ROLE hin_gone, hin_stale;		-- hin_stale stays in licdata.licensees
DROP TABLE hin.gone;

CREATE FUNCTION hin.try(stmt text, OUT code text, OUT error text, OUT hint text)
	LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	code := '00000';
	error := '(no error)';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, error = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
END
$$;
CREATE FUNCTION hin.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.datasets x),
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.licensees x),
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.licences x),
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.masks x),
		(SELECT string_agg(x::text, ',' ORDER BY x::text) FROM licdata.authorities x)))
$$;
SELECT hin.state() AS before \gset
CREATE TABLE hin.cases (n serial, label text, stmt text);
INSERT INTO hin.cases (label, stmt) VALUES
 ('register: role 0',              $$SELECT licdata.register_licensee(0::regrole, 'X')$$),
 ('register: dropped role',        format($$SELECT licdata.register_licensee(%s::regrole, 'X')$$, :gone_role)),
 ('register: empty org_name',      $$SELECT licdata.register_licensee('hin_user', '')$$),
 ('publish: relation 0',           $$SELECT licdata.publish(0::regclass)$$),
 ('publish: dropped table',        format($$SELECT licdata.publish(%s::regclass)$$, :gone_table)),
 ('unpublish: relation 0',         $$SELECT licdata.unpublish(0::regclass)$$),
 ('unpublish: dropped table',      format($$SELECT licdata.unpublish(%s::regclass)$$, :gone_table)),
 ('grant: role 0',                 $$SELECT licdata.grant_licence(0::regrole, 'hin.people', '{credit}')$$),
 ('grant: dropped role',           format($$SELECT licdata.grant_licence(%s::regrole, 'hin.people', '{credit}')$$, :gone_role)),
 ('grant: registered, then dropped', format($$SELECT licdata.grant_licence(%s::regrole, 'hin.people', '{credit}')$$, :stale_role)),
 ('grant: relation 0',             $$SELECT licdata.grant_licence('hin_bank', 0::regclass, '{credit}')$$),
 ('grant: dropped table',          format($$SELECT licdata.grant_licence('hin_bank', %s::regclass, '{credit}')$$, :gone_table)),
 ('grant: purposes NULL',          $$SELECT licdata.grant_licence('hin_bank', 'hin.people', NULL)$$),
 ('grant: purposes {NULL}',        $$SELECT licdata.grant_licence('hin_bank', 'hin.people', '{NULL}')$$),
 ('grant: purposes {""}',          $$SELECT licdata.grant_licence('hin_bank', 'hin.people', '{""}')$$),
 ('grant: columns {}',             $$SELECT licdata.grant_licence('hin_bank', 'hin.people', '{credit}', columns => '{}')$$),
 ('grant: columns {NULL}',         $$SELECT licdata.grant_licence('hin_bank', 'hin.people', '{credit}', columns => '{NULL}')$$),
 ('grant: columns {""}',           $$SELECT licdata.grant_licence('hin_bank', 'hin.people', '{credit}', columns => '{""}')$$),
 ('grant: empty row filter',       $$SELECT licdata.grant_licence('hin_bank', 'hin.people', '{credit}', row_filter => '')$$),
 ('grant: valid_from infinity',    $$SELECT licdata.grant_licence('hin_bank', 'hin.people', '{credit}', valid_from => 'infinity')$$),
 ('grant: valid_from -infinity',   $$SELECT licdata.grant_licence('hin_bank', 'hin.people', '{credit}', valid_from => '-infinity')$$),
 ('grant: lookups 0',              $$SELECT licdata.grant_licence('hin_bank', 'hin.people', '{credit}', max_lookups_per_day => 0)$$),
 ('set_mask: relation 0',          $$SELECT licdata.set_mask(0::regclass, 'name', 'redact')$$),
 ('set_mask: dropped table',       format($$SELECT licdata.set_mask(%s::regclass, 'name', 'redact')$$, :gone_table)),
 ('set_mask: empty column',        $$SELECT licdata.set_mask('hin.people', '', 'redact')$$),
 ('set_mask: empty method',        $$SELECT licdata.set_mask('hin.people', 'name', '')$$),
 ('drop_mask: relation 0',         $$SELECT licdata.drop_mask(0::regclass, 'name')$$),
 ('drop_mask: dropped table',      format($$SELECT licdata.drop_mask(%s::regclass, 'name')$$, :gone_table)),
 ('invoice: role 0',               $$SELECT * FROM licdata.invoice(0::regrole, now() - interval '1 day', now())$$),
 ('mask_pseudonym: role 0',        $$SELECT licdata.mask_pseudonym('x', 16, 0::regrole)$$),
 ('mask_pseudonym: dropped role',  format($$SELECT licdata.mask_pseudonym('x', 16, %s::regrole)$$, :stale_role)),
 ('mask_fpe: role 0',              $$SELECT licdata.mask_fpe('123456', '0123456789', 0::regrole)$$),
 ('unmask_fpe: dropped role',      format($$SELECT licdata.unmask_fpe('123456', %s::regrole)$$, :stale_role)),
 ('mask_function: function 0',     $$SELECT licdata_internal.mask_function('x'::text, 0::regproc)$$),
 ('flush: NaN',                    $$SELECT licdata.flush('NaN')$$),
 ('flush: negative',               $$SELECT licdata.flush(-1)$$),
 ('add_authority: empty name',     $$SELECT licdata.add_authority('', 'x')$$),
 ('install_licence: JSON null',    $$SELECT licdata.install_licence('null', 'x')$$);
-- (the OIDs of the dropped objects, which vary, are shown by name)
SELECT c.label, t.code,
	   replace(replace(replace(t.error, :'gone_role', '<gone_role>'), :'stale_role', '<stale_role>'),
			   :'gone_table', '<gone_table>') AS error, t.hint
  FROM hin.cases c, LATERAL hin.try(c.stmt) t ORDER BY c.n;
SELECT hin.state() = :'before' AS catalog_unchanged;

-- a licensee's side: token() of relation 0 or a dropped table, and the
-- quota helper with NULL
SET SESSION AUTHORIZATION hin_user;
SET licdata.purpose = 'credit';
SELECT c.label, t.code, replace(t.error, :'gone_table', '<gone_table>') AS error FROM (VALUES
	(1, 'token: relation 0', $$SELECT licdata.token(0::regclass, 'name', 'x')$$),
	(2, 'token: dropped table', format($$SELECT licdata.token(%s::regclass, 'name', 'x')$$, :gone_table)),
	(3, 'token: empty column', $$SELECT licdata.token('hin.people', '', 'x')$$),
	(4, 'token: NULL column', $$SELECT licdata.token('hin.people', NULL, 'x')$$)) c(n, label, stmt),
	LATERAL hin.try(c.stmt) t ORDER BY c.n;
RESET SESSION AUTHORIZATION;
SELECT licdata_internal._quota_used(NULL) IS NULL AS quota_used_null,
	   licdata_internal._lookups_used(NULL) IS NULL AS lookups_used_null;
SELECT hin.state() = :'before' AS catalog_unchanged;
