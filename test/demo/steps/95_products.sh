# Demo step 95 (sourced by test/demo/scenario.sh): data products.
step_products()
{
	as_operator operator_products.sql || fail "the operator could not publish the products"
	as_role bank_a_analyst credit_assessment bank_products.sql || fail "bank_a's product calls failed"
	as_role stats_bureau statistics stats_products.sql || fail "the bureau's product call failed"
	as_operator operator_products_report.sql || fail "the product usage does not check out"
}
demo_step 95 step_products "4. DATA PRODUCTS: a credit check and a threshold verification, licensed and metered per call
   the licensees call the operator's functions by name; inside them the data is read as published" \
	"bank_a gets an eligibility answer per applicant and the bureau one batch answer for its register, without reading a single pd.* row; each call is a metered, audited use."
