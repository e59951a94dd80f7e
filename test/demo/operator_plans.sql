-- test/demo/operator_plans.sql -- step 4, the operator's plans for next month (a plan is never
-- retroactive), within the ceilings, and the public price list.
\set ON_ERROR_STOP off
\set VERBOSITY default
\set SHOW_CONTEXT never
\echo
\echo '--- 5.3  Plans from next month (UTC): bank_a''s pd.people licence gets 20 free queries,'
\echo '         progressive row tiers and a monthly cap; the bureau''s statistics are public'
\echo '         governance: free.'
SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC' AS next_month,
       (SELECT id FROM licdata.licences WHERE licensee = 'bank_a'::regrole AND dataset = 'pd.people'::regclass)
         AS people_licence,
       (SELECT id FROM licdata.licences WHERE licensee = 'stats_bureau'::regrole AND dataset = 'pd.tax_annual'::regclass)
         AS tax_annual_licence \gset
\set ECHO queries
SELECT licdata.set_price_plan(:people_licence, '{"per_query": 1.00, "free_queries_per_month": 20,
         "tiers": [{"up_to": 1000, "per_row": 0.20}, {"up_to": 10000, "per_row": 0.10}, {"up_to": null, "per_row": 0.05}],
         "monthly_cap": 2000}', :'next_month');
SELECT licdata.set_price_plan(:tax_annual_licence, '{"free_purposes": ["statistics"]}', :'next_month');
\set ECHO none
\echo '    Above the authority''s ceiling: refused'
\set ECHO queries
SELECT licdata.set_price_plan(:people_licence, '{"per_query": 2.00}', :'next_month');
\set ECHO none
\set expect 23514
\i :demo/expect_error.sql
\echo '--- 5.4  The public price list (licdata.price_list, readable by every role):'
SELECT kind, name, ceiling_per_query AS ceil_query, ceiling_per_row AS ceil_row,
       list_per_query AS list_query, list_per_row AS list_row, licences,
       max_per_query AS max_query, max_per_row AS max_row, free_purposes
  FROM licdata.price_list ORDER BY kind, name;
\i :demo/expect_error_end.sql
