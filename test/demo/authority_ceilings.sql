-- test/demo/authority_ceilings.sql -- step 4, the pricing authority (role price_office, a
-- member of licdata_authority) sets the government-guided ceilings.
\set ON_ERROR_STOP off
\set VERBOSITY default
\set SHOW_CONTEXT never
\echo
\echo '--- 5.2  The authority sets ceilings per dataset (licdata.set_price_ceiling):'
\set ECHO queries
SELECT licdata.set_price_ceiling('pd.people', '{"per_query": 1.00, "per_row": 0.20, "monthly_fee": 500}');
SELECT licdata.set_price_ceiling('pd.tax_annual', '{"per_query": 5.00, "per_row": 0.50}');
\set ECHO none
\echo '    A ceiling below a price in force is refused (bank_a pays 0.20 a row of pd.people):'
\set ECHO queries
SELECT licdata.set_price_ceiling('pd.people', '{"per_row": 0.15}');
\set ECHO none
\set expect 23514
\i :demo/expect_error.sql
\echo '    The authority sets ceilings and nothing else:'
\set ECHO queries
SELECT licdata.set_price_plan(1, '{"per_query": 0}');
\set ECHO none
\set expect 42501
\i :demo/expect_error.sql
\i :demo/expect_error_end.sql
