-- test/demo/bank_products.sql -- part 4.2 of the demo: bank_a's analyst (purpose
-- credit_assessment) checks three applicants through the credit_check product:
-- one call per applicant, its loan application number as consent reference; the
-- bank reads no row of pd.people or pd.contributions on this path.
\set ON_ERROR_STOP on
\echo '--- 4.2  bank_a: its product licence, then one credit_check call per applicant'
SELECT id, kind, product, purposes, require_consent_ref AS consent, calls_left_today,
       price_per_call, price_per_row
  FROM licdata.my_licences WHERE kind = 'product' ORDER BY id;
CREATE TEMP VIEW queue AS
SELECT application_no, id_number
  FROM bank_a_own.applicants
 WHERE application_no IN ('BA2025-00002', 'BA2025-00126', 'BA2025-00209', 'BA2025-00051')
 ORDER BY application_no;
SELECT string_agg(application_no || ' ' || id_number, ',' ORDER BY application_no) AS apps FROM queue \gset
\set ECHO queries
SET licdata.consent_ref = 'BA2025-00002';
SELECT * FROM pd.credit_check((SELECT id_number FROM bank_a_own.applicants WHERE application_no = 'BA2025-00002'));
SET licdata.consent_ref = 'BA2025-00126';
SELECT * FROM pd.credit_check((SELECT id_number FROM bank_a_own.applicants WHERE application_no = 'BA2025-00126'));
SET licdata.consent_ref = 'BA2025-00209';
SELECT * FROM pd.credit_check((SELECT id_number FROM bank_a_own.applicants WHERE application_no = 'BA2025-00209'));
-- an applicant of nobody in the public data (every 51st application): no row
SET licdata.consent_ref = 'BA2025-00051';
SELECT * FROM pd.credit_check((SELECT id_number FROM bank_a_own.applicants WHERE application_no = 'BA2025-00051'));
\set ECHO none
