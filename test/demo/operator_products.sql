-- test/demo/operator_products.sql -- part 4.1 of the demo, as the operator: two
-- data products (SPEC "Data products"), functions over the raw datasets that
-- licensees call by name and never see inside of.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
\echo '--- 4.1  The operator writes two products over the raw data and publishes them.'
\echo '         credit_check: for one applicant (the ID number the bank holds), months of social-'
\echo '         insurance contributions in the last 24 (to 2025-12), an unemployment-claim flag (a gap'
\echo '         in contributions, or no employer now), pension status, eligibility for the bank''s loan.'
\set ECHO queries
CREATE FUNCTION pd.credit_check(applicant_id_number text)
	RETURNS TABLE (months_contributed_24 integer, unemployment_claim boolean,
				   pension_status text, eligible boolean)
	LANGUAGE sql AS $$
	WITH p AS (SELECT person_id, employer_id FROM pd.people WHERE id_number = applicant_id_number),
	     c AS (SELECT count(*)::integer AS months,
	                  bool_or(c.pension > 0 AND c.month = date '2025-12-01') AS pension_now
	             FROM pd.contributions c JOIN p USING (person_id)
	            WHERE c.month >= date '2024-01-01' AND c.month < date '2026-01-01')
	SELECT c.months,
	       c.months < 12 OR p.employer_id IS NULL,
	       CASE WHEN coalesce(c.pension_now, false) THEN 'contributing'
	            WHEN c.months > 0 THEN 'interrupted' ELSE 'none' END,
	       c.months >= 10 AND p.employer_id IS NOT NULL
	  FROM p CROSS JOIN c
$$;
\set ECHO none
\echo '         above_threshold: of the credit codes it is given, those of enterprises whose 2025'
\echo '         revenue is at or above the reporting threshold of their industry (no revenue figure).'
\set ECHO queries
CREATE FUNCTION pd.above_threshold(credit_codes text[]) RETURNS SETOF text
	LANGUAGE sql AS $$
	SELECT t.credit_code::text
	  FROM pd.tax_annual t JOIN pd.reporting_thresholds th ON th.industry = t.industry
	 WHERE t.credit_code::text = ANY (credit_codes)
	   AND t.annual_revenue >= th.annual_revenue_threshold
	 ORDER BY 1
$$;
-- publish: licdata checks the function and pins its search_path (a NOTICE says so)
SELECT licdata.publish_product('pd.credit_check(text)', 'credit check of one consenting applicant',
                               price_per_call => 2.00, price_per_row => 0),
       licdata.publish_product('pd.above_threshold(text[])', 'reporting-threshold verification of a register',
                               price_per_call => 50.00, price_per_row => 0.20)
\g /dev/null
-- product licences: purpose, consent per call, a day quota of calls, prices
SELECT licdata.grant_product_licence('bank_a', 'pd.credit_check(text)', ARRAY['credit_assessment'],
                                     max_calls_per_day => 1000, require_consent_ref => true,
                                     price_per_call => 1.50) AS credit_check_licence,
       licdata.grant_product_licence('stats_bureau', 'pd.above_threshold(text[])', ARRAY['statistics'],
                                     max_calls_per_day => 10) AS threshold_licence;
\set ECHO none
SELECT product, description, price_per_call, price_per_row, search_path
  FROM licdata.products ORDER BY product::text;
