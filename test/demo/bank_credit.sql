-- test/demo/bank_credit.sql -- part 1 of the demo: bank_a's analyst, connected with
-- PGOPTIONS='-c licdata.purpose=credit_assessment' (as a JDBC/ODBC/BI tool would
-- with options=...), checks three loan applicants.
\set ON_ERROR_STOP on
\echo '--- 1.1  Who am I, what may I do: licdata.my_licences'
SELECT session_user AS connected_as, current_setting('licdata.purpose') AS declared_purpose;
SELECT id, dataset, purposes, mode, row_filter, require_consent_ref AS consent,
       max_rows_per_query AS rows_per_query, queries_left_today,
       price_per_query AS per_query, price_per_row AS per_row,
       to_char(valid_until, 'YYYY-MM-DD') AS valid_until
  FROM licdata.my_licences ORDER BY id;

\echo
\echo '--- 1.2  Three applications from the bank''s own file (bank_a_own.applicants, not published),'
\echo '         applicants whose ID number is from Beijing (starts 11), the region of the licence'
CREATE TEMP VIEW queue AS
SELECT row_number() OVER (ORDER BY pick DESC, application_no) AS n, application_no, id_number, applied_at, amount
  FROM (SELECT a.*,
               -- three applications that show three outcomes at scale 1; other Beijing ones otherwise
               a.application_no IN ('BA2025-00002', 'BA2025-00126', 'BA2025-00209') AS pick
          FROM bank_a_own.applicants a
         WHERE left(a.id_number, 2) = '11') s
 ORDER BY pick DESC, application_no
 LIMIT 3;
SELECT application_no, id_number, applied_at, amount FROM queue ORDER BY n;
SELECT max(application_no) FILTER (WHERE n = 1) AS app1, max(id_number) FILTER (WHERE n = 1) AS idn1,
       max(application_no) FILTER (WHERE n = 2) AS app2, max(id_number) FILTER (WHERE n = 2) AS idn2,
       max(application_no) FILTER (WHERE n = 3) AS app3, max(id_number) FILTER (WHERE n = 3) AS idn3
  FROM queue \gset

\echo
\echo '--- 1.3  Each check: SET licdata.consent_ref to the application number, find the person with'
\echo '         licdata.token() (the bank''s own form of the ID number it already holds: pd.people'
\echo '         shows id_number only as a per-licensee pseudonym), read the 2025 contribution history,'
\echo '         compute a credit signal in SQL.  Masked: name, mobile, birth date (year), salary (band).'
\set show_sql true
\set app :app1
\set idn :idn1
\i :demo/bank_applicant.sql
\set show_sql false
\set app :app2
\set idn :idn2
\i :demo/bank_applicant.sql
\set app :app3
\set idn :idn3
\i :demo/bank_applicant.sql

\echo
\echo '--- 1.4  An applicant from Shanghai (ID starting 31): outside the licensed region, the row'
\echo '         filter hides the person - no error, no row'
SELECT application_no AS app, id_number AS idn
  FROM bank_a_own.applicants a
 WHERE left(a.id_number, 2) = '31'
 ORDER BY application_no LIMIT 1 \gset
SET licdata.consent_ref = :'app';
\set ECHO queries
SELECT person_id, name, region
  FROM pd.people
 WHERE id_number = licdata.token('pd.people', 'id_number', :'idn');
\set ECHO none
SELECT :ROW_COUNT = 0 AS demo_hidden \gset
\if :demo_hidden
\else
DO $$ BEGIN RAISE EXCEPTION 'demo: a person outside the licensed region was returned'; END $$;
\endif
RESET licdata.consent_ref;
