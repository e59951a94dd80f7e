# Demo step 99 (sourced by test/demo/scenario.sh): the month, last of all.
step_month()
{
	as_operator operator_month.sql || fail "the month's statements failed"
	as_role price_office "" authority_ceilings.sql || fail "the authority's ceilings failed"
	as_operator operator_plans.sql || fail "the operator's plans failed"
}
demo_step 99 step_month "5. THE MONTH: each party's statement total and the operator's revenue" \
	"the bank's and the bureau's month each fit on one statement (free allowances, tiers, cap applied), the operator's revenue is shown by dataset and product, and a price above the authority's ceiling is refused."
