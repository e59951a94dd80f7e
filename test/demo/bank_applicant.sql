-- test/demo/bank_applicant.sql -- one credit check by bank_a (included by
-- bank_credit.sql with :app, the application number, and :idn, the applicant's
-- resident ID number, which the bank holds in its own table).
\echo
\echo '>>> Application' :app '(the consent reference), ID number' :idn '(from the bank''s own file)'
SET licdata.consent_ref = :'app';
\if :show_sql
\set ECHO queries
\endif
\x on
SELECT person_id, id_number, name, gender, birth_date, city_code, region, mobile,
       employer_id, monthly_salary
  FROM pd.people
 WHERE id_number = licdata.token('pd.people', 'id_number', :'idn');
\x off
SELECT to_char(c.month, 'YYYY-MM') AS month, c.employer_id, c.pension, c.unemployment, c.medical
  FROM pd.people p JOIN pd.contributions c USING (person_id)
 WHERE p.id_number = licdata.token('pd.people', 'id_number', :'idn')
 ORDER BY c.month;
-- the credit signal, computed inside the database from the licensed, masked data
SELECT count(*) AS months_paid_2025,
       count(DISTINCT c.employer_id) AS employers,
       CASE WHEN count(*) = 12 AND count(DISTINCT c.employer_id) = 1
                 AND bool_and(c.employer_id = p.employer_id) THEN 'yes' ELSE 'no' END AS stable_employer,
       (floor(avg(c.pension) / 100) * 100)::int || '-' || (floor(avg(c.pension) / 100) * 100 + 100)::int
         AS avg_pension_band,
       CASE WHEN count(*) = 12 AND count(DISTINCT c.employer_id) = 1 AND bool_and(c.employer_id = p.employer_id)
                 THEN 'A: steady contributor'
            WHEN count(*) >= 9 AND bool_or(c.month = date '2025-12-01')
                 THEN 'B: short gap, employed now'
            ELSE 'C: refer to a loan officer' END AS credit_signal
  FROM pd.people p JOIN pd.contributions c USING (person_id)
 WHERE p.id_number = licdata.token('pd.people', 'id_number', :'idn');
\set ECHO none
