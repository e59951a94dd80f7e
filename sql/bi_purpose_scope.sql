-- purpose_scope => 'transaction': the purpose and consent reference of a
-- licensee count only when set for the current transaction (SET LOCAL,
-- set_config(..., true), a function's SET clause), so that behind a
-- transaction-pooling pooler one client's plain SET never serves the next
-- client on the same server connection.  A session-level value is refused
-- (LD001 / LD007), also under statements prepared earlier.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS licdata;
RESET client_min_messages;
SELECT setval('licdata.licences_id_seq', 9100, false);
CREATE SCHEMA bips;
CREATE TABLE bips.people (id integer PRIMARY KEY, region text);
INSERT INTO bips.people SELECT g, CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END FROM generate_series(1, 6) g;
CREATE ROLE bips_bank NOLOGIN;
CREATE ROLE bips_analyst LOGIN IN ROLE bips_bank;
CREATE ROLE bips_plain NOLOGIN;
SELECT licdata.publish('bips.people');
-- validation
SELECT licdata.register_licensee('bips_bank', 'Bank', purpose_scope => 'statement');
SELECT licdata.register_licensee('bips_bank', 'Bank', purpose_scope => NULL);
SELECT licdata.register_licensee('bips_bank', 'Bank', purpose_scope => 'transaction');
SELECT licdata.register_licensee('bips_plain', 'Plain Bank');
SELECT licensee, purpose_scope FROM licdata.licensees WHERE licensee::text LIKE 'bips%' ORDER BY 1;
SELECT licdata.alter_licensee('bips_analyst', 'session');
SELECT licdata.alter_licensee('bips_bank', 'sometimes');
SELECT licdata.grant_licence('bips_bank', 'bips.people', ARRAY['credit_assessment'],
							 require_consent_ref => true) AS lic \gset
SELECT licdata.grant_licence('bips_plain', 'bips.people', ARRAY['credit_assessment']) AS lic_plain \gset
CREATE FUNCTION bips.count_with_purpose() RETURNS bigint LANGUAGE plpgsql
	SET licdata.purpose = 'credit_assessment' SET licdata.consent_ref = 'FN-1'
	AS $$ BEGIN RETURN (SELECT count(*) FROM bips.people); END $$;
GRANT EXECUTE ON FUNCTION bips.count_with_purpose() TO bips_analyst;

SET ROLE bips_analyst;
-- a session-level value does not count ...
SET licdata.purpose = 'credit_assessment';
SET licdata.consent_ref = 'SESSION-1';
SELECT count(*) FROM bips.people;
-- ... not even when set inside the transaction, since it outlives it
BEGIN;
SET licdata.purpose = 'credit_assessment';
SELECT count(*) FROM bips.people;
ROLLBACK;
-- SET LOCAL counts; a consent reference set for the session still does not
BEGIN;
SET LOCAL licdata.purpose = 'credit_assessment';
SELECT count(*) FROM bips.people;
ROLLBACK;
BEGIN;
SET LOCAL licdata.purpose = 'credit_assessment';
SET LOCAL licdata.consent_ref = 'LOCAL-1';
SELECT count(*) FROM bips.people;
COMMIT;
-- after COMMIT the session values are back, and do not count
SHOW licdata.consent_ref;
SELECT count(*) FROM bips.people;
-- SET then SET LOCAL at one level: the local value is in force
BEGIN;
SET licdata.purpose = 'credit_assessment';
SET LOCAL licdata.purpose = 'credit_assessment';
SET LOCAL licdata.consent_ref = 'LOCAL-2';
SELECT count(*) FROM bips.people;
COMMIT;
-- SET LOCAL in a released savepoint counts; a plain SET in a savepoint does not
BEGIN;
SET LOCAL licdata.purpose = 'credit_assessment';
SAVEPOINT s1;
SET LOCAL licdata.consent_ref = 'LOCAL-3';
RELEASE SAVEPOINT s1;
SELECT count(*) FROM bips.people;
SAVEPOINT s2;
SET licdata.consent_ref = 'PLAIN-IN-SAVEPOINT';
SELECT count(*) FROM bips.people;
ROLLBACK TO SAVEPOINT s2;
SELECT count(*) FROM bips.people;
COMMIT;
-- set_config(..., true) is SET LOCAL
BEGIN;
SELECT set_config('licdata.purpose', 'credit_assessment', true) IS NOT NULL AS set,
	   set_config('licdata.consent_ref', 'LOCAL-4', true) IS NOT NULL AS set;
SELECT count(*) FROM bips.people;
COMMIT;
-- a function's SET clause lasts for the call only: it counts
SELECT bips.count_with_purpose();
-- prepared statements: planned under a local purpose, refused once it is gone,
-- even though the session value is the same string (no plan reset on SET)
PREPARE q AS SELECT count(*) FROM bips.people;
BEGIN;
SET LOCAL licdata.purpose = 'credit_assessment';
SET LOCAL licdata.consent_ref = 'LOCAL-5';
EXECUTE q;
EXECUTE q;
COMMIT;
EXECUTE q;
-- the SQLSTATEs are LD001 and LD007
SELECT count(*) FROM bips.people;
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL licdata.purpose = 'credit_assessment';
SELECT count(*) FROM bips.people;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET licdata.purpose;
RESET licdata.consent_ref;
RESET ROLE;

-- usage rows carry only the references set for their transaction
SELECT licdata.flush();
SELECT consent_ref, outcome, rows FROM licdata.usage WHERE licence_id = :lic ORDER BY id;
SELECT count(*) AS refused_with_session_reference FROM licdata.audit_log
 WHERE licensee = 'bips_bank'::regrole AND consent_ref IN ('SESSION-1', 'PLAIN-IN-SAVEPOINT');

-- a licensee with the default session scope, and operators, are unaffected
SET ROLE bips_plain;
SET licdata.purpose = 'credit_assessment';
SELECT count(*) FROM bips.people;
RESET ROLE;
SELECT count(*) FROM bips.people;

-- back to session scope: plain SET counts again (cached plans are replanned)
SELECT licdata.alter_licensee('bips_bank', 'session');
SET ROLE bips_analyst;
SET licdata.purpose = 'credit_assessment';
SET licdata.consent_ref = 'SESSION-2';
EXECUTE q;
SELECT count(*) FROM bips.people;
DEALLOCATE q;
RESET licdata.purpose;
RESET licdata.consent_ref;
RESET ROLE;
