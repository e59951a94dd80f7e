-- test/demo/bank_denials.sql -- part 1, continued: what bank_a may NOT do.  A second
-- session of bank_a_analyst, connected without any purpose (like a BI tool whose
-- connection string forgot options=-c licdata.purpose=...).  Each statement must be
-- refused; expect_error.sql checks its SQLSTATE.
\set ON_ERROR_STOP off
\set VERBOSITY default
\set SHOW_CONTEXT never
-- an applicant of the bank's own file, in the licensed region
SELECT application_no AS app, id_number AS idn
  FROM bank_a_own.applicants WHERE left(id_number, 2) = '11'
 ORDER BY application_no LIMIT 1 \gset

\echo '[LD001] No purpose declared:'
\set ECHO queries
SELECT count(*) FROM pd.people;
\set ECHO none
\set expect LD001
\i :demo/expect_error.sql

\echo '[LD002] A purpose the licence does not cover:'
\set ECHO queries
SET licdata.purpose = 'marketing';
SET licdata.consent_ref = :'app';
SELECT name, mobile FROM pd.people WHERE id_number = licdata.token('pd.people', 'id_number', :'idn');
\set ECHO none
\set expect LD002
\i :demo/expect_error.sql

\echo '[LD003] A column outside the licence (e-mail is not licensed to the bank, masked or not):'
\set ECHO queries
SET licdata.purpose = 'credit_assessment';
SELECT name, email FROM pd.people WHERE id_number = licdata.token('pd.people', 'id_number', :'idn');
\set ECHO none
\set expect LD003
\i :demo/expect_error.sql

\echo '[LD005] A dataset the bank holds no licence for:'
\set ECHO queries
SELECT sum(revenue) FROM pd.tax_revenue WHERE enterprise_id = 1;
\set ECHO none
\set expect LD005
\i :demo/expect_error.sql

\echo '[LD006] A bulk export.  The licence allows 100 rows a query: the 101st row is refused'
\echo '        (the 100 rows sent before it are metered and billed, with outcome ''error''):'
\set ECHO queries
SELECT id_number, name, mobile FROM pd.people;
\set ECHO none
\set expect LD006
\i :demo/expect_error.sql

\echo '[LD007] No consent reference (the licence requires one for every query):'
\set ECHO queries
RESET licdata.consent_ref;
SELECT name, mobile FROM pd.people WHERE id_number = licdata.token('pd.people', 'id_number', :'idn');
\set ECHO none
\set expect LD007
\i :demo/expect_error.sql
\i :demo/expect_error_end.sql
