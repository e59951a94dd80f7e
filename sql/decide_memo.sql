-- A licence choice is kept per (dataset, licensee, purpose) between the
-- validity boundaries nearest to it (decide.c): a licence that becomes
-- valid, or one that expires, while the session goes on takes effect at
-- that instant, without any catalog change; the consent reference is
-- checked at every statement.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 14000, false);
CREATE SCHEMA dmemo;
CREATE TABLE dmemo.t (id integer PRIMARY KEY, v text);
INSERT INTO dmemo.t SELECT g, 'v' || g FROM generate_series(1, 3) g;
CREATE ROLE dmemo_bank NOLOGIN;
CREATE ROLE dmemo_user LOGIN IN ROLE dmemo_bank;
GRANT USAGE ON SCHEMA dmemo TO PUBLIC;
SELECT licdata.publish('dmemo.t');
SELECT licdata.register_licensee('dmemo_bank', 'Bank');
-- 14000: one row, valid now and for four seconds; 14001: every row, valid
-- from two seconds on for four (granted later: it wins while both are valid)
SELECT licdata.grant_licence('dmemo_bank', 'dmemo.t', ARRAY['p'], row_filter => 'id = 1',
							 valid_until => clock_timestamp() + interval '4 seconds');
SELECT licdata.grant_licence('dmemo_bank', 'dmemo.t', ARRAY['p'],
							 valid_from => clock_timestamp() + interval '2 seconds',
							 valid_until => clock_timestamp() + interval '6 seconds');
-- 14002: another purpose, needs a consent reference
SELECT licdata.grant_licence('dmemo_bank', 'dmemo.t', ARRAY['c'], require_consent_ref => true);

\set VERBOSITY terse
SET SESSION AUTHORIZATION dmemo_user;
SET licdata.purpose = 'p';
SELECT count(*) AS only_14000 FROM dmemo.t;
SELECT count(*) AS only_14000 FROM dmemo.t;
PREPARE q AS SELECT count(*) FROM dmemo.t;
EXECUTE q;
SELECT pg_sleep(3);
SELECT count(*) AS now_14001 FROM dmemo.t;
SELECT pg_sleep(3.5);
-- both expired
SELECT count(*) FROM dmemo.t;
EXECUTE q;
SET licdata.purpose = 'c';
SET licdata.consent_ref = 'case-1';
SELECT count(*) AS with_consent FROM dmemo.t;
RESET licdata.consent_ref;
SELECT count(*) FROM dmemo.t;
SET licdata.consent_ref = '  ';
SELECT count(*) FROM dmemo.t;
SET licdata.consent_ref = 'case-2';
SELECT count(*) AS with_consent FROM dmemo.t;
RESET SESSION AUTHORIZATION;

SELECT licdata.revoke_licence(id) FROM licdata.licences WHERE dataset = 'dmemo.t'::regclass;
SELECT licdata.unpublish('dmemo.t');
DROP SCHEMA dmemo CASCADE;
DROP ROLE dmemo_user, dmemo_bank;
