#!/usr/bin/env bash
# test/demo/scenario.sh -- the licdata demo: both licensed-access cases of SPEC.md,
# end to end, told for a person to read.
#
# Run by test/demo/run-demo.sh (`make demo`) against a throwaway cluster, with
# PGHOST PGPORT PGDATABASE PGUSER (a superuser: the operator) exported and
# licdata preloaded with licdata.database = $PGDATABASE.  Uses psql only; the SQL
# of each part is in test/demo/*.sql, next to this file.
#
# The demo is a list of steps, run in the order of their numbers:
#   10  operator: sample data, CREATE EXTENSION, datasets, prices, masks, licensees, licences
#   20  credit: bank_a checks three loan applicants; then six refused statements
#   30  statistics: the bureau counts enterprises above the reporting thresholds
#   90  operator: flush, invoices, usage, the audit trail of denials, verify_audit()
#   95  data products (steps/95_products.sh): the bank's credit check, the bureau's threshold verification
#   99  the month (steps/99_month.sh): statements, revenue, the authority's ceilings, next month's plans
# then a closing summary.
#
# Adding a step: write a function and register it with demo_step, anywhere
# before the run_demo line at the end of this file (or in a file
# test/demo/steps/NN_name.sh, which is sourced before run_demo):
#
#   step_products()
#   {
#       as_operator operator_products.sql || fail "the operator could not publish the products"
#       as_role bank_a_analyst credit_assessment bank_products.sql || fail "..."
#   }
#   demo_step 40 step_products "4. PRODUCTS: bank_a calls a verification service" \
#       "bank_a gets a yes/no answer from pd.credit_check() without reading a single row of pd.people."
#
# The number places the step (10-80 between setup and the operator's report;
# the report at 90 should stay last, it bills everything before it), the title
# is printed as the step's heading, and the last argument is the one line the
# reader should notice, printed under the heading and again in the summary.
# Helpers for steps: as_operator FILE, as_role ROLE PURPOSE FILE (psql with the
# file on stdin, the purpose as a connection option), run_psql, heading, fail MSG.
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

# ---------------------------------------------------------------------------
# The step registry
# ---------------------------------------------------------------------------
STEP_ORDER=() STEP_FUNC=() STEP_TITLE=() STEP_NOTICE=() STEP_SECS=()

# demo_step NUMBER FUNCTION TITLE NOTICE: register a step (see the header).
demo_step()
{
	[ "$#" -eq 4 ] || fail "demo_step needs NUMBER FUNCTION TITLE NOTICE (got: $*)"
	declare -F "$2" >/dev/null || fail "demo_step: no function $2"
	STEP_ORDER+=("$1") STEP_FUNC+=("$2") STEP_TITLE+=("$3") STEP_NOTICE+=("$4")
}

notice() { printf '\n>>> Notice: %s\n' "$*"; }

# ---------------------------------------------------------------------------
# Step 10: the operator
# ---------------------------------------------------------------------------
step_setup()
{
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
	local t
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
}
demo_step 10 step_setup "0. OPERATOR: publish the data, set masks and prices, issue licences" \
	"licensees get no GRANT on any table: publish() and the licences alone decide which rows and columns each sees, and how masked."

# ---------------------------------------------------------------------------
# Step 20: credit
# ---------------------------------------------------------------------------
step_credit()
{
	as_role bank_a_analyst credit_assessment bank_credit.sql || fail "bank_a's credit checks failed"
	echo
	echo "--- 1.5  What the licence does not allow.  A second session of bank_a_analyst, connected"
	echo "         without a purpose (like a BI tool whose connection string forgot it).  Each statement"
	echo "         is refused with an SQLSTATE of class LD, and every refusal is audited:"
	echo
	as_role bank_a_analyst "" bank_denials.sql || fail "a statement of bank_a was not refused as it should be"
}
demo_step 20 step_credit "1. CREDIT: bank_a assesses loan applicants (purpose credit_assessment)
   psql as bank_a_analyst (a member of bank_a), PGOPTIONS='-c licdata.purpose=credit_assessment'" \
	"bank_a finds its applicant only through licdata.token() (the ID is a per-bank pseudonym), sees Beijing residents only, and each forbidden statement is refused with its own LD SQLSTATE."

# ---------------------------------------------------------------------------
# Step 30: statistics
# ---------------------------------------------------------------------------
step_statistics()
{
	as_role stats_bureau statistics stats_bureau.sql || fail "the statistics bureau's queries failed"
	echo
	as_operator operator_stats_check.sql || fail "the bureau's figures do not match the raw computation"
}
demo_step 30 step_statistics "2. STATISTICS: the bureau counts enterprises above the reporting thresholds (四上企业)
   psql as stats_bureau, PGOPTIONS='-c licdata.purpose=statistics'; aggregate-only licences" \
	"the bureau receives counts only, each of at least 10 enterprises and equal to the raw count; small groups are suppressed and a row-by-row query is refused (LD008)."

# ---------------------------------------------------------------------------
# Step 90: the operator's report (keep it last: it bills what came before)
# ---------------------------------------------------------------------------
step_report()
{
	as_operator operator_report.sql || fail "the operator's report failed"
}
demo_step 90 step_report "3. OPERATOR: metering, billing, audit" \
	"every statement above, served or refused, left a usage or audit row; the invoices add up, and verify_audit() confirms no audit row was altered."

# ---------------------------------------------------------------------------
# Running the steps, and the summary
# ---------------------------------------------------------------------------
summary()
{
	heading "Summary: what the demo showed (in $(elapsed))"
	local i
	for i in "${RUN_ORDER[@]}"; do
		printf '%s  (%ss)\n' "$(head -n1 <<<"${STEP_TITLE[$i]}")" "${STEP_SECS[$i]}"
		printf '   %s\n' "${STEP_NOTICE[$i]}"
	done
	echo
	PGUSER=$OPERATOR psql -X -q -A -t -F ' ' <<'SQL' 2>&1 || fail "could not read the figures for the summary"
SELECT format('Served: %s licensee statements (%s rows billed, %s yuan) under %s licences;',
              count(DISTINCT journal_ref), coalesce(sum(rows), 0), coalesce(sum(amount), 0),
              count(DISTINCT licence_id))
  FROM licdata.usage;
SELECT format('Refused: %s statements (%s), every one audited;', count(*),
              coalesce(string_agg(DISTINCT sqlstate, ' ' ORDER BY sqlstate), 'none'))
  FROM licdata.audit_log WHERE decision = 'deny';
SELECT format('Audit trail: %s rows, hash chain %s.', records_checked,
              CASE WHEN ok THEN 'verified' ELSE 'BROKEN at ' || first_bad_seq END)
  FROM licdata.verify_audit();
SQL
}

run_demo()
{
	local i n=${#STEP_ORDER[@]}
	[ "$n" -gt 0 ] || fail "no demo steps registered"
	# the step indexes, by step number (then registration order)
	mapfile -t RUN_ORDER < <(for ((i = 0; i < n; i++)); do printf '%s %s\n' "${STEP_ORDER[$i]}" "$i"; done |
		sort -n -k1,1 -k2,2 | cut -d' ' -f2)
	heading "licdata demo: licensed access to public data, enforced inside PostgreSQL
database $PGDATABASE, operator $OPERATOR (superuser), sample data scale $SCALE"
	local t
	for i in "${RUN_ORDER[@]}"; do
		heading "${STEP_TITLE[$i]}"
		notice "${STEP_NOTICE[$i]}"
		echo
		t=$(date +%s)
		"${STEP_FUNC[$i]}"
		STEP_SECS[i]=$(($(date +%s) - t))
	done
	summary
	heading "Demo complete in $(elapsed): every allowed step succeeded, every refusal had its expected SQLSTATE."
}

# Steps kept in files of their own (test/demo/steps/NN_name.sh), if any.
if [ -d "$HERE/steps" ]; then
	for f in "$HERE"/steps/*.sh; do
		[ -e "$f" ] || continue
		# shellcheck source=/dev/null
		. "$f"
	done
fi

run_demo
