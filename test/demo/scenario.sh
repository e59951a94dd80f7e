#!/usr/bin/env bash
# test/demo/scenario.sh -- the licdata demo: both licensed-access cases of SPEC.md,
# end to end, told for a person to read.
#
# Run by test/demo/run-demo.sh (`make demo`) against a throwaway cluster, with
# PGHOST PGPORT PGDATABASE PGUSER (a superuser: the operator) exported and
# licdata preloaded with licdata.database = $PGDATABASE.  Uses psql only; the SQL
# of each part is in test/demo/*.sql, next to this file.
#
#   0. operator: sample data, CREATE EXTENSION, datasets, prices, masks, licensees, licences
#   1. credit: bank_a checks three loan applicants; then six refused statements
#   2. statistics: the bureau counts enterprises above the reporting thresholds
#   3. operator: flush, invoices, usage, the audit trail of denials, verify_audit()
#   4. the month: statement totals, revenue by dataset and product; the authority's
#      ceilings, next month's plans, the public price list
#
# Environment: LICDATA_DEMO_SCALE (default 1) is the scale of test/data/generate.sql.
# Exit status: 0 if every step gave what it should (successes succeeded, every
# refusal had its expected SQLSTATE, the figures and the audit chain check out).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=${LICDATA_TOP:-$(cd "$HERE/../.." && pwd)}
SCALE=${LICDATA_DEMO_SCALE:-1}
: "${PGUSER:?PGUSER (the operator, a superuser) must be set}"
: "${PGDATABASE:?PGDATABASE must be set}"
OPERATOR=$PGUSER
T0=$(date +%s)

export PGAPPNAME=licdata-demo
unset PGOPTIONS

# psql, quiet, no psqlrc, no pager, aligned tables; SQL read from stdin so that
# messages carry no "psql:file:line:" prefix.  The SQL files find each other
# through :demo.
run_psql()
{
	local file=$1
	shift
	psql -X -q -P pager=off -P null='' -v demo="$HERE" "$@" <"$HERE/$file" 2>&1
}

# As the operator / a licensee role, with an optional purpose given at connect time.
as_operator() { PGUSER=$OPERATOR run_psql "$@"; }
as_role()
{
	local role=$1 purpose=$2
	shift 2
	if [ -n "$purpose" ]; then
		PGUSER=$role PGOPTIONS="-c licdata.purpose=$purpose" run_psql "$@"
	else
		PGUSER=$role run_psql "$@"
	fi
}

heading()
{
	printf '\n%s\n%s\n%s\n' \
		"==============================================================================" \
		"$*" \
		"=============================================================================="
}

elapsed() { echo "$(($(date +%s) - T0))s"; }

fail()
{
	echo
	echo "DEMO FAILED: $* (after $(elapsed))"
	exit 1
}

heading "licdata demo: licensed access to public data, enforced inside PostgreSQL
database $PGDATABASE, operator $OPERATOR (superuser), sample data scale $SCALE"

# ---------------------------------------------------------------------------
heading "0. OPERATOR: publish the data, set masks and prices, issue licences"
echo "--- 0.1  Load the sample public data (test/data/generate.sql, scale $SCALE; deterministic)"
# Earlier runs in this database (not in a fresh \`make demo\` cluster): start over.
PGUSER=$OPERATOR psql -X -q -v ON_ERROR_STOP=1 <<'SQL' 2>&1 || fail "could not clean up an earlier run"
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS licdata CASCADE;
DO $$
DECLARE r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['bank_a_analyst', 'bank_a', 'stats_bureau'] LOOP
		IF EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
			EXECUTE format('DROP OWNED BY %I CASCADE', r);
			EXECUTE format('DROP ROLE %I', r);
		END IF;
	END LOOP;
END $$;
SQL
t=$(date +%s)
PGUSER=$OPERATOR psql -X -q -v ON_ERROR_STOP=1 -v scale="$SCALE" -f "$TOP/test/data/generate.sql" 2>&1 ||
	fail "test/data/generate.sql failed"
PGUSER=$OPERATOR psql -X -q -P pager=off <<'SQL' 2>&1 || fail "could not read the sample data"
SELECT (SELECT count(*) FROM pd.people) AS people, (SELECT count(*) FROM pd.contributions) AS contributions,
       (SELECT count(*) FROM pd.enterprises) AS enterprises, (SELECT count(*) FROM pd.tax_revenue) AS tax_rows,
       (SELECT count(*) FROM bank_a_own.applicants) AS bank_applicants,
       (SELECT count(*) FROM stats_own.enterprise_register) AS bureau_register;
SQL
echo "(loaded in $(($(date +%s) - t))s)"
echo
as_operator operator_setup.sql || fail "the operator's setup failed"

# ---------------------------------------------------------------------------
heading "1. CREDIT: bank_a assesses loan applicants (purpose credit_assessment)
   psql as bank_a_analyst (a member of bank_a), PGOPTIONS='-c licdata.purpose=credit_assessment'"
as_role bank_a_analyst credit_assessment bank_credit.sql || fail "bank_a's credit checks failed"

echo
echo "--- 1.5  What the licence does not allow.  A second session of bank_a_analyst, connected"
echo "         without a purpose (like a BI tool whose connection string forgot it).  Each statement"
echo "         is refused with an SQLSTATE of class LD, and every refusal is audited:"
echo
as_role bank_a_analyst "" bank_denials.sql || fail "a statement of bank_a was not refused as it should be"

# ---------------------------------------------------------------------------
heading "2. STATISTICS: the bureau counts enterprises above the reporting thresholds (四上企业)
   psql as stats_bureau, PGOPTIONS='-c licdata.purpose=statistics'; aggregate-only licences"
as_role stats_bureau statistics stats_bureau.sql || fail "the statistics bureau's queries failed"
echo
as_operator operator_stats_check.sql || fail "the bureau's figures do not match the raw computation"

# ---------------------------------------------------------------------------
heading "3. OPERATOR: metering, billing, audit"
as_operator operator_report.sql || fail "the operator's report failed"

heading "4. THE MONTH: each party's statement total and the operator's revenue"
as_operator operator_month.sql || fail "the month's statements failed"
as_role price_office "" authority_ceilings.sql || fail "the authority's ceilings failed"
as_operator operator_plans.sql || fail "the operator's plans failed"

heading "Demo complete in $(elapsed): every allowed step succeeded, every refusal had its expected SQLSTATE."
