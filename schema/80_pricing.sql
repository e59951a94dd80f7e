/*
 * 80_pricing.sql -- prices that follow the public-data pricing rules: price
 * plans with history, the authority's price ceilings, the public price list,
 * monthly invoice lines, closed months with adjustments for late records, and
 * the printable monthly statement.
 *
 * Invariants:
 *  - A plan applies from its effective_from, which is never in the past (nor in
 *    a closed month): no plan ever reprices a statement already made.
 *  - Amounts are computed from licdata.usage (rows, calls, purpose, sqlstate,
 *    at) by the plan in force at each record's time, over the calendar month
 *    in UTC; usage.amount (the flat price the record was made at) is not read.
 *  - A closed month's lines are frozen in licdata.invoice_closed_lines; records
 *    for it that arrive later are billed as an adjustment line in the next
 *    open month, and remembered in licdata.invoiced_usage once that month is
 *    closed, so no record is ever billed twice or changes a closed month.
 *  - Every price in force (dataset, product, licence, plan) is at or below the
 *    authority's ceiling for its dataset or product: triggers and
 *    set_price_plan refuse a higher price, set_price_ceiling refuses a ceiling
 *    below a price in force.
 *
 * Product licences (licdata.licences.product, licdata.products) are read
 * through to_jsonb() of their rows so that this file works with and without
 * them; see licdata_internal._list_prices.
 */

DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'licdata_authority') THEN
		CREATE ROLE licdata_authority NOLOGIN;
	END IF;
END
$roles$;
COMMENT ON ROLE licdata_authority IS 'licdata: the pricing authority; sets price ceilings per dataset or product, nothing else';

CREATE TABLE licdata.price_plans (
	licence_id		bigint NOT NULL REFERENCES licdata.licences (id),
	effective_from	timestamptz NOT NULL,
	plan			jsonb NOT NULL,
	set_at			timestamptz NOT NULL DEFAULT now(),
	set_by			name NOT NULL DEFAULT session_user,
	PRIMARY KEY (licence_id, effective_from)
);
COMMENT ON TABLE licdata.price_plans IS 'Price plans of licences: each applies from effective_from until the next one';

CREATE TABLE licdata.price_ceilings (
	dataset			regclass UNIQUE,
	product			regprocedure UNIQUE,
	ceiling			jsonb NOT NULL,
	set_at			timestamptz NOT NULL DEFAULT now(),
	set_by			name NOT NULL DEFAULT session_user,
	CHECK (num_nonnulls(dataset, product) = 1)
);
COMMENT ON TABLE licdata.price_ceilings IS 'The authority''s ceilings per dataset or product (keys per_query, per_row, per_call, monthly_fee)';

CREATE TABLE licdata.closed_months (
	month			date PRIMARY KEY CHECK (month = date_trunc('month', month)::date),
	closed_at		timestamptz NOT NULL DEFAULT now(),
	closed_by		name NOT NULL DEFAULT session_user
);
COMMENT ON TABLE licdata.closed_months IS 'Months invoiced with licdata.close_month: their lines are frozen';

CREATE TABLE licdata.invoice_closed_lines (
	month			date NOT NULL,
	licensee		regrole NOT NULL,
	line_no			integer NOT NULL,
	licence_id		bigint,
	dataset			regclass,
	purpose			text,
	kind			text NOT NULL,
	item			text NOT NULL,
	quantity		numeric,
	unit_price		numeric,
	amount			numeric NOT NULL,
	queries			bigint NOT NULL,
	rows			bigint NOT NULL,
	-- the month the line bills: this month, or an earlier one for an adjustment
	for_month		date NOT NULL,
	PRIMARY KEY (month, licensee, line_no)
);
COMMENT ON TABLE licdata.invoice_closed_lines IS 'Invoice lines of closed months, as they were when the month was closed';

CREATE TABLE licdata.invoiced_usage (
	usage_id		bigint PRIMARY KEY,
	month			date NOT NULL REFERENCES licdata.closed_months (month)
);
COMMENT ON TABLE licdata.invoiced_usage IS 'Usage records billed in a closed month (their own month, or a later one as late records)';

SELECT pg_catalog.pg_extension_config_dump('licdata.price_plans', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.price_ceilings', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.closed_months', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.invoice_closed_lines', '');
SELECT pg_catalog.pg_extension_config_dump('licdata.invoiced_usage', '');

GRANT SELECT ON licdata.price_plans, licdata.price_ceilings, licdata.closed_months,
	licdata.invoice_closed_lines, licdata.invoiced_usage TO licdata_operator, licdata_auditor;
GRANT SELECT ON licdata.price_ceilings TO licdata_authority;

/* ------------------------------------------------------------------------
 * Months (UTC)
 * ------------------------------------------------------------------------ */

CREATE FUNCTION licdata_internal._month_start(m date) RETURNS timestamptz
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
	AS $$ SELECT (date_trunc('month', m)::timestamp) AT TIME ZONE 'UTC' $$;
CREATE FUNCTION licdata_internal._month_end(m date) RETURNS timestamptz
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
	AS $$ SELECT (date_trunc('month', m)::timestamp + interval '1 month') AT TIME ZONE 'UTC' $$;
CREATE FUNCTION licdata_internal._month_of(t timestamptz) RETURNS date
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
	AS $$ SELECT date_trunc('month', t AT TIME ZONE 'UTC')::date $$;

/* ------------------------------------------------------------------------
 * Prices of a licence
 * ------------------------------------------------------------------------ */

-- The published row of a product (licdata.products), or NULL when there is
-- no such table or row.
CREATE FUNCTION licdata_internal._product_row(product oid) RETURNS jsonb
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r jsonb;
BEGIN
	IF product IS NULL OR pg_catalog.to_regclass('licdata.products') IS NULL THEN
		RETURN NULL;
	END IF;
	EXECUTE 'SELECT pg_catalog.to_jsonb(p) FROM licdata.products p WHERE p.product::oid OPERATOR(pg_catalog.=) $1'
		INTO r USING product;
	RETURN r;
END
$$;

/*
 * The list prices of a licence: its own price over its dataset's (or
 * product's), as {"per_query", "per_row", "per_call"}.  A product licence is
 * charged per call and per row; a dataset licence per query and per row.
 */
CREATE FUNCTION licdata_internal._list_prices(licence_id bigint) RETURNS jsonb
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	l jsonb;
	d record;
	p jsonb;
BEGIN
	SELECT to_jsonb(x) INTO l FROM licdata.licences x WHERE x.id = licence_id;
	IF l IS NULL THEN
		RETURN NULL;
	END IF;
	IF l->>'product' IS NOT NULL THEN
		p := licdata_internal._product_row((l->>'product')::regprocedure);
		RETURN jsonb_build_object(
			'per_query', 0,
			'per_call', coalesce((l->>'price_per_call')::numeric, (l->>'price_per_query')::numeric,
								 (p->>'price_per_call')::numeric, 0),
			'per_row', coalesce((l->>'price_per_row')::numeric, (p->>'price_per_row')::numeric, 0));
	END IF;
	-- (joined on the column: the text of a dropped table's regclass is its OID)
	SELECT ds.price_per_query, ds.price_per_row INTO d
	  FROM licdata.licences x JOIN licdata.datasets ds ON ds.dataset = x.dataset WHERE x.id = licence_id;
	RETURN jsonb_build_object(
		'per_query', coalesce((l->>'price_per_query')::numeric, d.price_per_query, 0),
		'per_row', coalesce((l->>'price_per_row')::numeric, d.price_per_row, 0),
		'per_call', 0);
END
$$;

/*
 * A plan with every key filled in: keys the plan leaves out are free (0, no
 * allowance, no cap), except the unit prices per_query, per_row and per_call,
 * which default to the licence's list prices.  A NULL plan (no plan in force)
 * is the list prices.  per_row is NULL when the plan has tiers.
 */
CREATE FUNCTION licdata_internal._plan_effective(licence_id bigint, plan jsonb) RETURNS jsonb
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	lp jsonb := licdata_internal._list_prices(licence_id);
BEGIN
	plan := coalesce(plan, '{}');
	RETURN jsonb_build_object(
		'per_query', coalesce(plan->'per_query', lp->'per_query'),
		'per_row', CASE WHEN plan ? 'tiers' THEN 'null'::jsonb ELSE coalesce(plan->'per_row', lp->'per_row') END,
		'per_call', coalesce(plan->'per_call', lp->'per_call'),
		'monthly_fee', coalesce(plan->'monthly_fee', '0'),
		'free_queries_per_month', coalesce(plan->'free_queries_per_month', '0'),
		'free_rows_per_month', coalesce(plan->'free_rows_per_month', '0'),
		'free_calls_per_month', coalesce(plan->'free_calls_per_month', '0'),
		'monthly_cap', coalesce(plan->'monthly_cap', 'null'),
		'tiers', coalesce(plan->'tiers', 'null'),
		'free_purposes', coalesce(plan->'free_purposes', '[]'),
		'bill_empty_results', coalesce(plan->'bill_empty_results', 'true'));
END
$$;

-- The row-price bands of an effective plan: tier n covers monthly row
-- positions lo+1 .. hi (hi NULL: no end).  Without tiers, one band (n = 0).
CREATE FUNCTION licdata_internal._tiers(p jsonb, OUT n integer, OUT lo numeric, OUT hi numeric, OUT price numeric)
	RETURNS SETOF record
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT 0, 0::numeric, NULL::numeric, (p->>'per_row')::numeric
	 WHERE jsonb_typeof(p->'tiers') IS DISTINCT FROM 'array'
	UNION ALL
	SELECT t.i::integer, coalesce(lag((t.e->>'up_to')::numeric) OVER (ORDER BY t.i), 0),
		   (t.e->>'up_to')::numeric, (t.e->>'per_row')::numeric
	  FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p->'tiers') = 'array' THEN p->'tiers' ELSE '[]' END)
		   WITH ORDINALITY t(e, i)
$$;

/* ------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------ */

CREATE FUNCTION licdata_internal._bad_plan(msg text, detail text, hint text) RETURNS void
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	RAISE EXCEPTION '%', msg USING ERRCODE = 'invalid_parameter_value', DETAIL = detail, HINT = hint;
END
$$;

-- v must be a JSON number >= 0 (an amount when money, at most 2 decimals;
-- a count when whole).
CREATE FUNCTION licdata_internal._check_number(what text, key text, v jsonb, whole boolean DEFAULT false,
									  money boolean DEFAULT false) RETURNS void
	LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n numeric;
BEGIN
	IF jsonb_typeof(v) IS DISTINCT FROM 'number' THEN
		PERFORM licdata_internal._bad_plan(format('%s key "%s" must be a number', what, key),
			format('It is %s.', coalesce(v::text, 'missing')),
			CASE WHEN whole THEN 'Pass a whole number of zero or more.'
				 ELSE 'Pass zero or a positive amount as a JSON number, e.g. 0.05.' END);
	END IF;
	n := (v #>> '{}')::numeric;
	IF n < 0 THEN
		PERFORM licdata_internal._bad_plan(format('%s key "%s" must not be negative', what, key),
			format('It is %s.', n), 'Pass zero or a positive amount.');
	END IF;
	IF n > 1e15 THEN
		PERFORM licdata_internal._bad_plan(format('%s key "%s" is too large', what, key),
			format('It is %s.', n), 'Pass at most 1000000000000000.');
	END IF;
	IF whole AND n <> trunc(n) THEN
		PERFORM licdata_internal._bad_plan(format('%s key "%s" must be a whole number', what, key),
			format('It is %s.', n), 'Pass a count such as 1000.');
	END IF;
	IF money AND n <> round(n, 2) THEN
		PERFORM licdata_internal._bad_plan(format('%s key "%s" must be an amount in cents', what, key),
			format('It is %s.', n), 'Pass an amount with at most two decimals.');
	END IF;
END
$$;

/*
 * Check a plan (see README "Prices and statements"); raise on the first
 * problem.  Nothing is changed.
 */
CREATE FUNCTION licdata_internal._check_plan(licence_id bigint, plan jsonb) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	allowed text[] := ARRAY['per_query', 'per_row', 'per_call', 'monthly_fee', 'free_queries_per_month',
							'free_rows_per_month', 'free_calls_per_month', 'monthly_cap', 'tiers',
							'free_purposes', 'bill_empty_results'];
	k text;
	t jsonb;
	i integer := 0;
	n integer;
	prev numeric := 0;
	purposes text[];
	lic_purposes text[];
BEGIN
	IF jsonb_typeof(plan) IS DISTINCT FROM 'object' THEN
		PERFORM licdata_internal._bad_plan('price plan must be a JSON object',
			format('It is %s.', coalesce(jsonb_typeof(plan), 'NULL')),
			'Pass an object such as {"per_query": 1, "per_row": 0.05}.');
	END IF;
	FOR k IN SELECT jsonb_object_keys(plan) ORDER BY 1 LOOP
		IF NOT k = ANY (allowed) THEN
			PERFORM licdata_internal._bad_plan(format('unknown key "%s" in price plan', k),
				'Known keys: ' || array_to_string(allowed, ', ') || '.', 'Remove or correct the key.');
		END IF;
	END LOOP;
	FOREACH k IN ARRAY ARRAY['per_query', 'per_row', 'per_call'] LOOP
		IF plan ? k THEN
			PERFORM licdata_internal._check_number('price plan', k, plan->k);
		END IF;
	END LOOP;
	FOREACH k IN ARRAY ARRAY['monthly_fee', 'monthly_cap'] LOOP
		IF plan ? k THEN
			PERFORM licdata_internal._check_number('price plan', k, plan->k, money => true);
		END IF;
	END LOOP;
	FOREACH k IN ARRAY ARRAY['free_queries_per_month', 'free_rows_per_month', 'free_calls_per_month'] LOOP
		IF plan ? k THEN
			PERFORM licdata_internal._check_number('price plan', k, plan->k, whole => true);
		END IF;
	END LOOP;
	IF plan ? 'monthly_cap' AND (plan->>'monthly_cap')::numeric < coalesce((plan->>'monthly_fee')::numeric, 0) THEN
		PERFORM licdata_internal._bad_plan('price plan''s monthly_cap is below its monthly_fee',
			format('monthly_cap is %s and monthly_fee is %s.', plan->>'monthly_cap', plan->>'monthly_fee'),
			'Set a cap at or above the monthly fee.');
	END IF;
	IF plan ? 'bill_empty_results' AND jsonb_typeof(plan->'bill_empty_results') <> 'boolean' THEN
		PERFORM licdata_internal._bad_plan('price plan key "bill_empty_results" must be true or false',
			format('It is %s.', plan->'bill_empty_results'), 'Pass a JSON boolean.');
	END IF;
	IF plan ? 'tiers' THEN
		IF plan ? 'per_row' THEN
			PERFORM licdata_internal._bad_plan('price plan has both "per_row" and "tiers"',
				'Tiers set the price of every row.', 'Remove "per_row", or put it in the tiers.');
		END IF;
		IF jsonb_typeof(plan->'tiers') <> 'array' OR jsonb_array_length(plan->'tiers') = 0 THEN
			PERFORM licdata_internal._bad_plan('price plan key "tiers" must be a non-empty array',
				format('It is %s.', plan->'tiers'),
				'Pass e.g. [{"up_to": 1000, "per_row": 0.1}, {"up_to": null, "per_row": 0.05}].');
		END IF;
		n := jsonb_array_length(plan->'tiers');
		FOR t IN SELECT e FROM jsonb_array_elements(plan->'tiers') e LOOP
			i := i + 1;
			IF jsonb_typeof(t) <> 'object' OR NOT (t ? 'up_to' AND t ? 'per_row')
			   OR EXISTS (SELECT FROM jsonb_object_keys(t) x WHERE x NOT IN ('up_to', 'per_row')) THEN
				PERFORM licdata_internal._bad_plan(format('tier %s of the price plan must be an object with keys "up_to" and "per_row"', i),
					format('It is %s.', t), 'Pass e.g. {"up_to": 1000, "per_row": 0.1}.');
			END IF;
			PERFORM licdata_internal._check_number(format('tier %s of the price plan:', i), 'per_row', t->'per_row');
			IF i = n THEN
				IF jsonb_typeof(t->'up_to') <> 'null' THEN
					PERFORM licdata_internal._bad_plan('the last tier of the price plan must have "up_to": null',
						'Every row of the month must fall in a tier.', 'End the tiers with {"up_to": null, "per_row": ...}.');
				END IF;
			ELSE
				IF jsonb_typeof(t->'up_to') = 'null' THEN
					PERFORM licdata_internal._bad_plan(format('only the last tier may have "up_to": null (tier %s has it)', i),
						'Every tier but the last ends at a number of rows a month.',
						'Order the tiers by increasing "up_to", the open-ended one last.');
				END IF;
				PERFORM licdata_internal._check_number(format('tier %s of the price plan:', i), 'up_to', t->'up_to', whole => true);
				IF (t->>'up_to')::numeric <= prev THEN
					PERFORM licdata_internal._bad_plan('tiers of the price plan must have increasing "up_to"',
						format('Tier %s ends at %s, not after %s.', i, t->>'up_to', prev),
						'Order the tiers by increasing "up_to", the open-ended one last.');
				END IF;
				prev := (t->>'up_to')::numeric;
			END IF;
		END LOOP;
	END IF;
	IF plan ? 'free_purposes' THEN
		IF jsonb_typeof(plan->'free_purposes') <> 'array'
		   OR EXISTS (SELECT FROM jsonb_array_elements(plan->'free_purposes') e WHERE jsonb_typeof(e) <> 'string') THEN
			PERFORM licdata_internal._bad_plan('price plan key "free_purposes" must be an array of purposes',
				format('It is %s.', plan->'free_purposes'), 'Pass e.g. ["public_interest"].');
		END IF;
		purposes := ARRAY(SELECT jsonb_array_elements_text(plan->'free_purposes'));
		IF cardinality(purposes) > 0 THEN
			PERFORM licdata_internal._check_purposes(purposes);
			SELECT l.purposes INTO lic_purposes FROM licdata.licences l WHERE l.id = licence_id;
			IF NOT purposes <@ lic_purposes THEN
				PERFORM licdata_internal._bad_plan(format('free purpose %s is not a purpose of licence %s',
						(SELECT min(x) FROM unnest(purposes) x WHERE NOT x = ANY (lic_purposes)), licence_id),
					'The licence is for: ' || array_to_string(lic_purposes, ', ') || '.',
					'Name purposes of the licence.');
			END IF;
		END IF;
	END IF;
END
$$;

/* ------------------------------------------------------------------------
 * Ceilings
 * ------------------------------------------------------------------------ */

-- The prices of an effective plan, in ceiling keys (per_row: the highest tier).
CREATE FUNCTION licdata_internal._plan_prices(p jsonb) RETURNS jsonb
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT jsonb_build_object('per_query', p->'per_query', 'per_call', p->'per_call',
							  'monthly_fee', p->'monthly_fee',
							  'per_row', (SELECT max(t.price) FROM licdata_internal._tiers(p) t))
$$;

-- Raise when one of prices (ceiling keys) is above the ceiling of the dataset
-- or product.  what names the price's owner for the message.
CREATE FUNCTION licdata_internal._check_ceiling(ds regclass, prod regprocedure, prices jsonb, what text) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	c record;
	k text;
BEGIN
	SELECT * INTO c FROM licdata.price_ceilings pc
	 WHERE (ds IS NOT NULL AND pc.dataset = ds) OR (prod IS NOT NULL AND pc.product = prod);
	IF NOT FOUND THEN
		RETURN;
	END IF;
	FOREACH k IN ARRAY ARRAY['per_query', 'per_row', 'per_call', 'monthly_fee'] LOOP
		IF c.ceiling ? k AND (prices->>k)::numeric > (c.ceiling->>k)::numeric THEN
			RAISE EXCEPTION '% price % of % is above the ceiling %', k, prices->>k, what, c.ceiling->>k
				USING ERRCODE = 'check_violation',
					  DETAIL = format('The authority set a ceiling of %s on %s for %s %s.', c.ceiling->>k, k,
									  CASE WHEN c.dataset IS NOT NULL THEN 'dataset' ELSE 'product' END,
									  coalesce(c.dataset::text, c.product::text)),
					  HINT = 'Set a price at or below the ceiling (see licdata.price_list), or ask the authority to raise it.';
		END IF;
	END LOOP;
END
$$;

-- Trigger on licdata.datasets, licdata.licences (and licdata.products where
-- it exists): a list or licence price above the ceiling is refused.
CREATE FUNCTION licdata_internal._price_ceiling_guard() RETURNS trigger
	LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n jsonb := to_jsonb(NEW);
	o jsonb := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END;
	prod regprocedure;
BEGIN
	IF o IS NOT NULL
	   AND (n->'price_per_query', n->'price_per_row', n->'price_per_call')
		   IS NOT DISTINCT FROM (o->'price_per_query', o->'price_per_row', o->'price_per_call') THEN
		RETURN NEW;
	END IF;
	-- no ceiling changes until this transaction ends (see set_price_ceiling)
	LOCK TABLE licdata.price_ceilings IN SHARE MODE;
	IF TG_TABLE_NAME = 'datasets' THEN
		PERFORM licdata_internal._check_ceiling((n->>'dataset')::regclass, NULL,
			jsonb_build_object('per_query', n->'price_per_query', 'per_row', n->'price_per_row'),
			format('dataset %s', n->>'dataset'));
	ELSIF TG_TABLE_NAME = 'products' THEN
		PERFORM licdata_internal._check_ceiling(NULL, (n->>'product')::regprocedure,
			jsonb_build_object('per_call', coalesce(n->'price_per_call', n->'price_per_query'),
							   'per_row', n->'price_per_row'),
			format('product %s', n->>'product'));
	ELSE
		prod := (n->>'product')::regprocedure;
		PERFORM licdata_internal._check_ceiling(CASE WHEN prod IS NULL THEN (n->>'dataset')::regclass END, prod,
			CASE WHEN prod IS NULL
				 THEN jsonb_build_object('per_query', n->'price_per_query', 'per_row', n->'price_per_row')
				 ELSE jsonb_build_object('per_call', coalesce(n->'price_per_call', n->'price_per_query'),
										 'per_row', n->'price_per_row') END,
			'the licence');
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER price_ceiling BEFORE INSERT OR UPDATE ON licdata.datasets
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._price_ceiling_guard();
CREATE TRIGGER price_ceiling BEFORE INSERT OR UPDATE ON licdata.licences
	FOR EACH ROW EXECUTE FUNCTION licdata_internal._price_ceiling_guard();
DO $products$
BEGIN
	IF pg_catalog.to_regclass('licdata.products') IS NOT NULL THEN
		CREATE TRIGGER price_ceiling BEFORE INSERT OR UPDATE ON licdata.products
			FOR EACH ROW EXECUTE FUNCTION licdata_internal._price_ceiling_guard();
	END IF;
END
$products$;

/*
 * The prices in force on a dataset or product, one row per price owner: the
 * list price, and each licence that is not revoked, with its plan in force
 * now and every later plan.
 */
CREATE FUNCTION licdata_internal._prices_in_force(ds regclass, prod regprocedure)
	RETURNS TABLE (owner text, licence_id bigint, prices jsonb)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	r jsonb;
	lic record;
BEGIN
	IF ds IS NOT NULL THEN
		SELECT to_jsonb(d) INTO r FROM licdata.datasets d WHERE d.dataset = ds;
		RETURN QUERY SELECT format('dataset %s', ds), NULL::bigint,
			jsonb_build_object('per_query', r->'price_per_query', 'per_row', r->'price_per_row');
	ELSE
		r := licdata_internal._product_row(prod);
		IF r IS NOT NULL THEN
			RETURN QUERY SELECT format('product %s', prod), NULL::bigint,
				jsonb_build_object('per_call', coalesce(r->'price_per_call', r->'price_per_query'),
								   'per_row', r->'price_per_row');
		END IF;
	END IF;
	FOR lic IN SELECT l.id FROM licdata.licences l
				WHERE l.status <> 'revoked'
				  AND ((ds IS NOT NULL AND l.dataset = ds)
					   OR (prod IS NOT NULL AND (to_jsonb(l)->>'product')::regprocedure = prod))
				ORDER BY l.id LOOP
		RETURN QUERY
			SELECT CASE WHEN x.eff IS NULL THEN format('licence %s', lic.id)
						ELSE format('licence %s (plan from %s)', lic.id,
									to_char(x.eff AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS "UTC"')) END,
				   lic.id, licdata_internal._plan_prices(licdata_internal._plan_effective(lic.id, x.plan))
			  FROM (SELECT NULL::timestamptz AS eff, NULL::jsonb AS plan
					 WHERE NOT EXISTS (SELECT FROM licdata.price_plans pp
										WHERE pp.licence_id = lic.id AND pp.effective_from <= now())
					UNION ALL
					SELECT pp.effective_from, pp.plan FROM licdata.price_plans pp
					 WHERE pp.licence_id = lic.id
					   AND pp.effective_from >= coalesce((SELECT max(q.effective_from) FROM licdata.price_plans q
														   WHERE q.licence_id = lic.id AND q.effective_from <= now()),
														 '-infinity')) x
			 ORDER BY x.eff NULLS FIRST;
	END LOOP;
END
$$;

-- A dataset or product named by text: (dataset, product), one of them set.
CREATE FUNCTION licdata_internal._price_target(target text, OUT ds regclass, OUT prod regprocedure)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	o oid;
BEGIN
	PERFORM licdata_internal._not_null(target, 'target');
	BEGIN
		ds := to_regclass(target);
	EXCEPTION WHEN OTHERS THEN
		ds := NULL;
	END;
	IF ds IS NOT NULL AND EXISTS (SELECT FROM licdata.datasets d WHERE d.dataset = ds AND d.unpublished_at IS NULL) THEN
		RETURN;
	END IF;
	ds := NULL;
	IF pg_catalog.to_regclass('licdata.products') IS NOT NULL THEN
		BEGIN
			o := CASE WHEN target LIKE '%(%' THEN to_regprocedure(target)::oid ELSE to_regproc(target)::oid END;
		EXCEPTION WHEN OTHERS THEN
			o := NULL;
		END;
		IF o IS NOT NULL AND licdata_internal._product_row(o) IS NOT NULL THEN
			prod := o::regprocedure;
			RETURN;
		END IF;
	END IF;
	RAISE EXCEPTION 'no published dataset or product named %', quote_literal(target)
		USING ERRCODE = 'undefined_object',
			  HINT = 'Name a dataset as schema.table or a product as schema.function(argument types); see licdata.price_list.';
END
$$;

CREATE FUNCTION licdata.set_price_ceiling(target text, ceiling jsonb) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t record;
	k text;
	over text;
BEGIN
	-- Separation of duties: the operator does not set the ceilings that
	-- bound its own prices (superusers are operators).
	IF pg_has_role(session_user, 'licdata_operator', 'MEMBER') THEN
		RAISE EXCEPTION 'an operator cannot set price ceilings'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('Session user %s is an operator (a superuser or a member of licdata_operator); ceilings bound the operator''s prices.', session_user),
				  HINT = 'Connect as a role of the pricing authority: a member of licdata_authority that is not an operator.';
	END IF;
	SELECT * INTO t FROM licdata_internal._price_target(target);
	PERFORM licdata_internal._not_null(ceiling, 'ceiling');
	IF jsonb_typeof(ceiling) <> 'object' THEN
		RAISE EXCEPTION 'price ceiling must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass e.g. {"per_query": 2, "per_row": 0.5}; {} removes the ceiling.';
	END IF;
	FOR k IN SELECT jsonb_object_keys(ceiling) ORDER BY 1 LOOP
		IF k NOT IN ('per_query', 'per_row', 'per_call', 'monthly_fee') THEN
			RAISE EXCEPTION 'unknown key "%" in price ceiling', k
				USING ERRCODE = 'invalid_parameter_value',
					  DETAIL = 'Known keys: per_query, per_row, per_call, monthly_fee.';
		END IF;
		PERFORM licdata_internal._check_number('price ceiling', k, ceiling->k, money => (k = 'monthly_fee'));
	END LOOP;
	-- Every price in force must already be within the new ceiling: the
	-- operator lowers its prices first (a ceiling never silently reprices).
	-- The lock waits for prices being set now and holds new ones back until
	-- this ceiling is committed (they take SHARE; this mode conflicts).
	LOCK TABLE licdata.price_ceilings IN SHARE ROW EXCLUSIVE MODE;
	SELECT string_agg(format('%s: %s %s', p.owner, k2, p.prices->>k2), '; ' ORDER BY p.owner, k2) INTO over
	  FROM licdata_internal._prices_in_force(t.ds, t.prod) p,
		   unnest(ARRAY['per_query', 'per_row', 'per_call', 'monthly_fee']) k2
	 WHERE ceiling ? k2 AND (p.prices->>k2)::numeric > (ceiling->>k2)::numeric;
	IF over IS NOT NULL THEN
		RAISE EXCEPTION 'price ceiling for % is below prices in force', coalesce(t.ds::text, t.prod::text)
			USING ERRCODE = 'check_violation',
				  DETAIL = 'Above the new ceiling: ' || over || '.',
				  HINT = 'The operator must lower these prices first (licdata.set_price_plan with a new effective_from); then set the ceiling.';
	END IF;
	DELETE FROM licdata.price_ceilings pc WHERE pc.dataset = t.ds OR pc.product = t.prod;
	IF ceiling <> '{}' THEN
		INSERT INTO licdata.price_ceilings (dataset, product, ceiling) VALUES (t.ds, t.prod, ceiling);
	END IF;
END
$$;
REVOKE ALL ON FUNCTION licdata.set_price_ceiling(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.set_price_ceiling(text, jsonb) TO licdata_authority;

/* ------------------------------------------------------------------------
 * Plans
 * ------------------------------------------------------------------------ */

CREATE FUNCTION licdata.set_price_plan(licence_id bigint, plan jsonb, effective_from timestamptz DEFAULT now())
	RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
	l jsonb;
	prod regprocedure;
BEGIN
	PERFORM licdata_internal._not_null(licence_id, 'licence_id');
	PERFORM licdata_internal._not_null(plan, 'plan');
	PERFORM licdata_internal._not_null(effective_from, 'effective_from', true);
	SELECT to_jsonb(x) INTO l FROM licdata.licences x WHERE x.id = licence_id FOR UPDATE;
	IF l IS NULL THEN
		RAISE EXCEPTION 'licence % does not exist', licence_id
			USING ERRCODE = 'undefined_object',
				  HINT = 'See licdata.licences for the licence ids.';
	END IF;
	IF l->>'status' = 'revoked' THEN
		RAISE EXCEPTION 'licence % is revoked', licence_id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'A revoked licence is not used any more; price a new licence.';
	END IF;
	IF NOT isfinite(effective_from) OR effective_from < now() THEN
		RAISE EXCEPTION 'a price plan cannot take effect in the past'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A plan never reprices statements already made: it applies from now or later.',
				  HINT = 'Pass now() (the default) or a later time.';
	END IF;
	IF EXISTS (SELECT FROM licdata.closed_months c WHERE c.month >= licdata_internal._month_of(effective_from)) THEN
		RAISE EXCEPTION 'a price plan cannot take effect in or before a closed month'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The month of %s is closed, or a later one is.', effective_from),
				  HINT = 'Pass a time in a month after the last closed month.';
	END IF;
	PERFORM licdata_internal._check_plan(licence_id, plan);
	-- no ceiling changes until this transaction ends (see set_price_ceiling)
	LOCK TABLE licdata.price_ceilings IN SHARE MODE;
	prod := (l->>'product')::regprocedure;
	PERFORM licdata_internal._check_ceiling(CASE WHEN prod IS NULL THEN (l->>'dataset')::regclass END, prod,
		licdata_internal._plan_prices(licdata_internal._plan_effective(licence_id, plan)),
		format('the plan of licence %s', licence_id));
	INSERT INTO licdata.price_plans AS pp (licence_id, effective_from, plan)
	VALUES (licence_id, effective_from, plan)
	ON CONFLICT ON CONSTRAINT price_plans_pkey DO UPDATE
	   SET plan = EXCLUDED.plan, set_at = now(), set_by = session_user;
END
$$;
REVOKE ALL ON FUNCTION licdata.set_price_plan(bigint, jsonb, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.set_price_plan(bigint, jsonb, timestamptz) TO licdata_operator;

/* ------------------------------------------------------------------------
 * The public price list
 * ------------------------------------------------------------------------ */

CREATE FUNCTION licdata_internal._price_list()
	RETURNS TABLE (kind text, name text, description text,
				   ceiling_per_query numeric, ceiling_per_row numeric, ceiling_per_call numeric,
				   ceiling_monthly_fee numeric,
				   list_per_query numeric, list_per_row numeric, list_per_call numeric,
				   licences bigint,
				   max_per_query numeric, max_per_row numeric, max_per_call numeric, max_monthly_fee numeric,
				   free_purposes text[])
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	t record;
	c jsonb;
BEGIN
	FOR t IN
		SELECT 'dataset' AS kind, d.dataset::text AS name, d.description, d.dataset AS ds, NULL::regprocedure AS prod
		  FROM licdata.datasets d WHERE d.unpublished_at IS NULL
		UNION ALL
		SELECT 'product', p->>'product', p->>'description', NULL, (p->>'product')::regprocedure
		  FROM licdata_internal._published_products() p
		 ORDER BY 1, 2
	LOOP
		SELECT pc.ceiling INTO c FROM licdata.price_ceilings pc WHERE pc.dataset = t.ds OR pc.product = t.prod;
		RETURN QUERY
			SELECT t.kind, t.name, t.description,
				   (c->>'per_query')::numeric, (c->>'per_row')::numeric, (c->>'per_call')::numeric,
				   (c->>'monthly_fee')::numeric,
				   max((f.prices->>'per_query')::numeric) FILTER (WHERE f.licence_id IS NULL),
				   max((f.prices->>'per_row')::numeric) FILTER (WHERE f.licence_id IS NULL),
				   max((f.prices->>'per_call')::numeric) FILTER (WHERE f.licence_id IS NULL),
				   count(DISTINCT f.licence_id),
				   max((f.prices->>'per_query')::numeric), max((f.prices->>'per_row')::numeric),
				   max((f.prices->>'per_call')::numeric), max((f.prices->>'monthly_fee')::numeric),
				   (SELECT coalesce(array_agg(DISTINCT fp ORDER BY fp), '{}')
					  FROM licdata.licences l, licdata.price_plans pp,
						   jsonb_array_elements_text(pp.plan->'free_purposes') fp
					 WHERE pp.licence_id = l.id AND l.status <> 'revoked'
					   AND (l.dataset = t.ds OR (to_jsonb(l)->>'product')::regprocedure = t.prod))
			  FROM licdata_internal._prices_in_force(t.ds, t.prod) f;
	END LOOP;
END
$$;

-- The published products as JSON rows (none when there is no products table).
CREATE FUNCTION licdata_internal._published_products() RETURNS SETOF jsonb
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	IF pg_catalog.to_regclass('licdata.products') IS NOT NULL THEN
		RETURN QUERY EXECUTE
			'SELECT j FROM (SELECT pg_catalog.to_jsonb(p) AS j FROM licdata.products p) x
			  WHERE (j OPERATOR(pg_catalog.->>) ''unpublished_at'') IS NULL';
	END IF;
END
$$;

CREATE VIEW licdata.price_list AS SELECT * FROM licdata_internal._price_list();
COMMENT ON VIEW licdata.price_list IS
	'Public disclosure: every published dataset and product, the authority''s ceiling, the list price and the highest price in force on any licence';
GRANT SELECT ON licdata.price_list TO PUBLIC;

/* ------------------------------------------------------------------------
 * Billing
 * ------------------------------------------------------------------------ */

/*
 * The invoice lines of one licensee's licences for the records of month m
 * made in [from_at, to_at) (the whole month or a part of it), priced by the
 * plan in force at each record's time (see README "Prices and statements").
 * Volumes (free allowances, tiers) count from the start of the month whatever
 * the part.  with_monthly adds the monthly fee and the monthly cap (whole
 * months only).  Reads every record of the month, invoiced or not.
 */
CREATE FUNCTION licdata_internal._bill_compute(lic_role regrole, m date, from_at timestamptz, to_at timestamptz,
									  with_monthly boolean)
	RETURNS TABLE (licence_id bigint, dataset regclass, purpose text, kind text, item text,
				   quantity numeric, unit_price numeric, amount numeric, queries bigint, rows bigint,
				   grp integer, seg_start timestamptz, kind_rank integer, tier integer, tier_lo numeric,
				   tier_hi numeric)
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
WITH mon AS (
	SELECT licdata_internal._month_start(m) AS ms, licdata_internal._month_end(m) AS me
), lic AS (
	SELECT l.id, l.dataset, l.valid_from,
		   least(l.valid_until, CASE WHEN l.status = 'revoked' THEN l.status_changed_at END) AS lend
	  FROM licdata.licences l WHERE l.licensee = lic_role
), segs AS (
	SELECT x.lid, x.s, x.e, x.eff, licdata_internal._plan_effective(x.lid, x.plan) AS p,
		   count(*) OVER (PARTITION BY x.lid) AS nsegs
	  FROM (SELECT lic.id AS lid, '-infinity'::timestamptz AS s,
				   coalesce((SELECT min(pp.effective_from) FROM licdata.price_plans pp WHERE pp.licence_id = lic.id),
							'infinity') AS e,
				   NULL::jsonb AS plan, NULL::timestamptz AS eff
			  FROM lic
			UNION ALL
			SELECT pp.licence_id, pp.effective_from,
				   coalesce(lead(pp.effective_from) OVER (PARTITION BY pp.licence_id ORDER BY pp.effective_from),
							'infinity'),
				   pp.plan, pp.effective_from
			  FROM licdata.price_plans pp JOIN lic ON lic.id = pp.licence_id) x
	  JOIN lic ON lic.id = x.lid, mon
	 -- segments that overlap the month and the licence's validity
	 WHERE x.s < mon.me AND x.e > mon.ms AND x.s < x.e AND x.e > lic.valid_from
), bands AS MATERIALIZED (
	-- the row-price bands of each segment's plan, computed once per segment
	SELECT sg.lid, sg.s AS seg, t.n, t.lo, t.hi, t.price
	  FROM segs sg CROSS JOIN LATERAL licdata_internal._tiers(sg.p) t
), recs AS (
	SELECT u.id, u.at, u.licence_id AS lid, u.purpose, u.rows AS nrows, u.calls AS ncalls, u.sqlstate,
		   sg.eff, sg.s AS seg, sg.nsegs,
		   (sg.p->>'free_queries_per_month')::numeric AS fq,
		   (sg.p->>'free_rows_per_month')::numeric AS fr,
		   (sg.p->>'free_calls_per_month')::numeric AS fc,
		   (sg.p->>'per_query')::numeric AS per_query,
		   (sg.p->>'per_call')::numeric AS per_call,
		   CASE WHEN u.purpose IS NOT NULL AND (sg.p->'free_purposes') ? u.purpose THEN 'free_purpose'
				WHEN u.rows = 0 AND u.calls = 0 AND NOT (sg.p->>'bill_empty_results')::boolean THEN 'empty'
				ELSE 'billed' END AS cls
	  FROM mon CROSS JOIN LATERAL licdata_internal._usage_between(mon.ms, mon.me) u
	  JOIN segs sg ON sg.lid = u.licence_id AND u.at >= sg.s AND u.at < sg.e
	 -- (only the month's record batches are unpacked: 85_packed.sql)
	 WHERE u.licensee = lic_role
), billed AS (
	SELECT r.*,
		   count(*) OVER w - 1 AS q0,
		   sum(r.nrows) OVER w - r.nrows AS r0,
		   sum(r.ncalls) OVER w - r.ncalls AS c0
	  FROM recs r WHERE r.cls = 'billed'
	WINDOW w AS (PARTITION BY r.lid ORDER BY r.at, r.id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), pieces AS (
	-- statements not charged: one piece each, with their rows
	SELECT r.lid, r.purpose, r.seg, r.eff, r.nsegs, r.cls AS kind, 0 AS tier, NULL::numeric AS lo,
		   NULL::numeric AS hi, 1::numeric AS qty, 0::numeric AS price, 1 AS nq, r.nrows AS nr
	  FROM recs r WHERE r.cls <> 'billed' AND r.at >= from_at AND r.at < to_at
	UNION ALL
	-- the query: free while the month's billed queries are within the allowance
	SELECT b.lid, b.purpose, b.seg, b.eff, b.nsegs,
		   CASE WHEN b.q0 < b.fq THEN 'free_queries' ELSE 'queries' END, 0, NULL, NULL, 1,
		   CASE WHEN b.q0 < b.fq THEN 0 ELSE b.per_query END, 1, 0
	  FROM billed b WHERE b.at >= from_at AND b.at < to_at
	UNION ALL
	SELECT b.lid, b.purpose, b.seg, b.eff, b.nsegs, 'free_calls', 0, NULL, NULL,
		   greatest(0, least(b.c0 + b.ncalls, b.fc) - b.c0), 0, 0, 0
	  FROM billed b WHERE b.at >= from_at AND b.at < to_at
	UNION ALL
	SELECT b.lid, b.purpose, b.seg, b.eff, b.nsegs, 'calls', 0, NULL, NULL,
		   b.ncalls - greatest(0, least(b.c0 + b.ncalls, b.fc) - b.c0), b.per_call, 0, 0
	  FROM billed b WHERE b.at >= from_at AND b.at < to_at
	UNION ALL
	SELECT b.lid, b.purpose, b.seg, b.eff, b.nsegs,
		   CASE WHEN b.sqlstate = 'LD006' THEN 'free_quota_rows' ELSE 'free_rows' END, 0, NULL, NULL,
		   greatest(0, least(b.r0 + b.nrows, b.fr) - b.r0), 0, 0,
		   greatest(0, least(b.r0 + b.nrows, b.fr) - b.r0)
	  FROM billed b WHERE b.at >= from_at AND b.at < to_at
	UNION ALL
	-- rows past the allowance, in the tier of their position in the month
	SELECT b.lid, b.purpose, b.seg, b.eff, b.nsegs,
		   CASE WHEN b.sqlstate = 'LD006' THEN 'quota_rows' ELSE 'rows' END, t.n, t.lo, t.hi,
		   greatest(0, least(b.r0 + b.nrows, coalesce(t.hi, b.r0 + b.nrows)) - greatest(b.r0, b.fr, t.lo)),
		   t.price, 0,
		   greatest(0, least(b.r0 + b.nrows, coalesce(t.hi, b.r0 + b.nrows)) - greatest(b.r0, b.fr, t.lo))
	  FROM billed b JOIN bands t ON t.lid = b.lid AND t.seg = b.seg
	 WHERE b.at >= from_at AND b.at < to_at
), usage_lines AS (
	SELECT pc.lid, pc.purpose, pc.seg, pc.eff, pc.nsegs, pc.kind, pc.tier, pc.lo, pc.hi, pc.price,
		   sum(pc.qty) AS qty, sum(pc.nq)::bigint AS nq, sum(pc.nr)::bigint AS nr,
		   round(sum(pc.qty) * pc.price, 2) AS amount
	  FROM pieces pc WHERE pc.qty > 0
	 GROUP BY pc.lid, pc.purpose, pc.seg, pc.eff, pc.nsegs, pc.kind, pc.tier, pc.lo, pc.hi, pc.price
), fee_lines AS (
	SELECT sg.lid, sg.s AS seg, sg.eff, sg.nsegs, (sg.p->>'monthly_fee')::numeric AS fee,
		   extract(epoch FROM least(sg.e, mon.me, lic.lend) - greatest(sg.s, mon.ms, lic.valid_from))
		   / extract(epoch FROM mon.me - mon.ms) AS frac
	  FROM segs sg JOIN lic ON lic.id = sg.lid, mon
	 WHERE with_monthly AND (sg.p->>'monthly_fee')::numeric > 0
	   AND least(sg.e, mon.me, lic.lend) > greatest(sg.s, mon.ms, lic.valid_from)
), totals AS (
	SELECT t.lid, sum(t.amount) AS total
	  FROM (SELECT ul.lid, ul.amount FROM usage_lines ul
			UNION ALL
			SELECT fl.lid, round(fl.fee * fl.frac, 2) FROM fee_lines fl) t
	 GROUP BY t.lid
), caps AS (
	-- the cap of the plan in force at the end of the month (or of the licence)
	SELECT tt.lid, (sg.p->>'monthly_cap')::numeric AS cap, tt.total
	  FROM totals tt JOIN lic ON lic.id = tt.lid, mon, segs sg
	 WHERE with_monthly AND sg.lid = tt.lid
	   AND sg.s < least(mon.me, lic.lend) AND sg.e >= least(mon.me, lic.lend)
	   AND jsonb_typeof(sg.p->'monthly_cap') = 'number' AND tt.total > (sg.p->>'monthly_cap')::numeric
)
SELECT ul.lid, lic.dataset, ul.purpose, ul.kind,
	   coalesce(ul.purpose, '(no purpose)') || ': ' ||
	   CASE ul.kind
		 WHEN 'free_purpose' THEN 'statements for a free purpose (public interest), not charged'
		 WHEN 'empty' THEN 'statements with an empty result, not charged'
		 WHEN 'free_queries' THEN format('free queries (allowance: first %s a month)', ul.p->>'free_queries_per_month')
		 WHEN 'queries' THEN 'queries'
		 WHEN 'free_calls' THEN format('free calls (allowance: first %s a month)', ul.p->>'free_calls_per_month')
		 WHEN 'calls' THEN 'calls'
		 WHEN 'free_rows' THEN format('free rows (allowance: first %s a month)', ul.p->>'free_rows_per_month')
		 WHEN 'free_quota_rows' THEN format('free rows sent before a quota stop (allowance: first %s a month)',
											ul.p->>'free_rows_per_month')
		 WHEN 'rows' THEN 'rows'
		 WHEN 'quota_rows' THEN 'rows sent before a quota stop'
	   END ||
	   CASE WHEN ul.tier > 0 AND ul.hi IS NULL THEN format(', tier %s (row %s of the month on)', ul.tier, ul.lo + 1)
			WHEN ul.tier > 0 THEN format(', tier %s (rows %s to %s of the month)', ul.tier, ul.lo + 1, ul.hi)
			ELSE '' END ||
	   CASE WHEN ul.nsegs > 1 THEN
			CASE WHEN ul.eff IS NULL THEN ' [list prices]'
				 ELSE format(' [plan from %s]', to_char(ul.eff AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')) END
			ELSE '' END,
	   ul.qty, ul.price, ul.amount, ul.nq, ul.nr, 0, ul.seg,
	   array_position(ARRAY['free_purpose', 'empty', 'free_queries', 'queries', 'free_calls', 'calls',
							'free_rows', 'free_quota_rows', 'rows', 'quota_rows'], ul.kind),
	   ul.tier, ul.lo, ul.hi
  FROM (SELECT u.*, sg.p FROM usage_lines u JOIN segs sg ON sg.lid = u.lid AND sg.s = u.seg) ul
  JOIN lic ON lic.id = ul.lid
UNION ALL
SELECT fl.lid, lic.dataset, NULL, 'monthly_fee',
	   'monthly fee' ||
	   CASE WHEN fl.frac < 1 THEN format(' (%s%% of the month)', round(fl.frac * 100, 2)) ELSE '' END ||
	   CASE WHEN fl.nsegs > 1 THEN
			CASE WHEN fl.eff IS NULL THEN ' [list prices]'
				 ELSE format(' [plan from %s]', to_char(fl.eff AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')) END
			ELSE '' END,
	   round(fl.frac, 6), fl.fee, round(fl.fee * fl.frac, 2), 0, 0, 1, fl.seg, 0, 0, NULL, NULL
  FROM fee_lines fl JOIN lic ON lic.id = fl.lid
UNION ALL
SELECT c.lid, lic.dataset, NULL, 'monthly_cap', format('monthly cap of %s applied (charges were %s)', c.cap, c.total),
	   1, c.cap - c.total, c.cap - c.total, 0, 0, 2, NULL, 0, 0, NULL, NULL
  FROM caps c JOIN lic ON lic.id = c.lid
$$;

/*
 * Adjustment lines of open month m: for each closed month before it whose
 * next open month is m, per licence, what the closed month costs now (with
 * the records that arrived after it was closed) minus what was billed for it.
 */
CREATE FUNCTION licdata_internal._bill_adjustments(lic_role regrole, m date)
	RETURNS TABLE (licence_id bigint, dataset regclass, item text, quantity numeric, amount numeric,
				   for_month date)
	LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
WITH earlier AS (
	SELECT c.month FROM licdata.closed_months c
	 WHERE c.month < date_trunc('month', m)::date
	   AND NOT EXISTS (SELECT FROM generate_series(c.month + interval '1 month',
												   date_trunc('month', m) - interval '1 month',
												   interval '1 month') g
					    WHERE NOT EXISTS (SELECT FROM licdata.closed_months c2 WHERE c2.month = g::date))
), now_cost AS (
	SELECT e.month, b.licence_id, b.dataset, sum(b.amount) AS amount
	  FROM earlier e,
		   licdata_internal._bill_compute(lic_role, e.month, licdata_internal._month_start(e.month), licdata_internal._month_end(e.month), true) b
	 GROUP BY e.month, b.licence_id, b.dataset
), billed AS (
	SELECT f.for_month AS month, f.licence_id, sum(f.amount) AS amount
	  FROM licdata.invoice_closed_lines f JOIN earlier e ON e.month = f.for_month
	 WHERE f.licensee = lic_role
	 GROUP BY f.for_month, f.licence_id
), late AS (
	SELECT e.month, u.licence_id, count(*) AS n
	  FROM earlier e CROSS JOIN LATERAL
		   licdata_internal._usage_between(licdata_internal._month_start(e.month), licdata_internal._month_end(e.month)) u
	 WHERE u.licensee = lic_role
	   AND NOT EXISTS (SELECT FROM licdata.invoiced_usage iu WHERE iu.usage_id = u.id)
	 GROUP BY e.month, u.licence_id
)
SELECT l.licence_id, (SELECT x.dataset FROM licdata.licences x WHERE x.id = l.licence_id),
	   format('late records for %s (adjustment)', to_char(l.month, 'YYYY-MM')),
	   l.n::numeric, coalesce(nc.amount, 0) - coalesce(bl.amount, 0), l.month
  FROM late l
  LEFT JOIN now_cost nc ON nc.month = l.month AND nc.licence_id = l.licence_id
  LEFT JOIN billed bl ON bl.month = l.month AND bl.licence_id = l.licence_id
$$;

/*
 * Every line of a licensee's month, in order: frozen when the month is
 * closed; otherwise computed, with the adjustments for late records.
 */
CREATE FUNCTION licdata_internal._bill_lines(lic_role regrole, m date)
	RETURNS TABLE (line_no integer, licence_id bigint, dataset regclass, purpose text, kind text, item text,
				   quantity numeric, unit_price numeric, amount numeric, queries bigint, rows bigint,
				   for_month date)
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	mm date := date_trunc('month', m)::date;
BEGIN
	IF EXISTS (SELECT FROM licdata.closed_months c WHERE c.month = mm) THEN
		RETURN QUERY
			SELECT f.line_no, f.licence_id, f.dataset, f.purpose, f.kind, f.item, f.quantity, f.unit_price,
				   f.amount, f.queries, f.rows, f.for_month
			  FROM licdata.invoice_closed_lines f
			 WHERE f.month = mm AND f.licensee = lic_role ORDER BY f.line_no;
		RETURN;
	END IF;
	RETURN QUERY
		SELECT (row_number() OVER (ORDER BY x.licence_id, x.grp, x.purpose NULLS LAST, x.seg_start NULLS FIRST,
										 x.kind_rank, x.tier, x.item))::integer,
			   x.licence_id, x.dataset, x.purpose, x.kind, x.item, x.quantity, x.unit_price, x.amount,
			   x.queries, x.rows, x.for_month
		  FROM (SELECT b.licence_id, b.dataset, b.purpose, b.kind, b.item, b.quantity, b.unit_price, b.amount,
					   b.queries, b.rows, mm AS for_month, b.grp, b.seg_start, b.kind_rank, b.tier
				  FROM licdata_internal._bill_compute(lic_role, mm, licdata_internal._month_start(mm), licdata_internal._month_end(mm), true) b
				UNION ALL
				SELECT a.licence_id, a.dataset, NULL, 'adjustment', a.item, a.quantity, NULL, a.amount, 0, 0,
					   a.for_month, 3, NULL, 0, 0
				  FROM licdata_internal._bill_adjustments(lic_role, mm) a) x
		 ORDER BY 1;
END
$$;

CREATE FUNCTION licdata_internal._check_billing_args(licensee regrole, month date) RETURNS void
	LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM licdata_internal._not_null(licensee, 'licensee');
	PERFORM licdata_internal._not_null(month, 'month');
	IF NOT isfinite(month) THEN
		RAISE EXCEPTION 'month must be a date'
			USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass the first day of the month, e.g. ''2025-03-01''.';
	END IF;
	IF NOT EXISTS (SELECT FROM licdata.licensees l WHERE l.licensee = _check_billing_args.licensee) THEN
		RAISE EXCEPTION 'role % is not a registered licensee', licensee
			USING ERRCODE = 'undefined_object',
				  HINT = 'See licdata.licensees.';
	END IF;
END
$$;

CREATE FUNCTION licdata.invoice_lines(licensee regrole, month date)
	RETURNS TABLE (licence_id bigint, item text, quantity numeric, unit_price numeric, amount numeric)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
	PERFORM licdata_internal._check_billing_args(licensee, month);
	RETURN QUERY SELECT b.licence_id, b.item, b.quantity, b.unit_price, b.amount
				   FROM licdata_internal._bill_lines(licensee, month) b ORDER BY b.line_no;
END
$$;
REVOKE ALL ON FUNCTION licdata.invoice_lines(regrole, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.invoice_lines(regrole, date) TO licdata_operator, licdata_auditor;

/*
 * Close a month: freeze every licensee's lines for it (with the adjustments
 * for late records of earlier closed months) and remember which records they
 * bill.  The month must be over.  Returns each licensee's total.
 */
CREATE FUNCTION licdata.close_month(month date)
	RETURNS TABLE (licensee regrole, lines bigint, total numeric)
	LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	mm date;
	lic regrole;
BEGIN
	PERFORM licdata_internal._not_null(month, 'month');
	IF NOT isfinite(month) THEN
		RAISE EXCEPTION 'month must be a date' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	mm := date_trunc('month', month)::date;
	IF licdata_internal._month_end(mm) > now() THEN
		RAISE EXCEPTION 'month % is not over', to_char(mm, 'YYYY-MM')
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('It ends at %s UTC.',
								  to_char(licdata_internal._month_end(mm) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')),
				  HINT = 'Close a month after it has ended (UTC).';
	END IF;
	IF EXISTS (SELECT FROM licdata.closed_months c WHERE c.month = mm) THEN
		RAISE EXCEPTION 'month % is already closed', to_char(mm, 'YYYY-MM')
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Records that arrive for it later are billed in the next open month.';
	END IF;
	-- Records still in the journal belong in this month's lines.
	IF NOT licdata.flush() THEN
		RAISE EXCEPTION 'could not move the pending usage records before closing the month'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Check that the licdata background worker runs (licdata.flush()), then try again.';
	END IF;
	-- No record arrives between computing the lines and noting what they bill.
	LOCK TABLE licdata.usage IN SHARE MODE;
	LOCK TABLE licdata.closed_months IN EXCLUSIVE MODE;
	-- (computed while the month is still open; each licensee's lines read
	-- only its own frozen lines, so the order does not matter)
	FOR lic IN SELECT l.licensee FROM licdata.licensees l ORDER BY l.licensee::oid LOOP
		INSERT INTO licdata.invoice_closed_lines
			(month, licensee, line_no, licence_id, dataset, purpose, kind, item, quantity, unit_price, amount,
			 queries, rows, for_month)
		SELECT mm, lic, b.* FROM licdata_internal._bill_lines(lic, mm) b;
	END LOOP;
	INSERT INTO licdata.closed_months (month) VALUES (mm);
	-- The records billed: this month's, and the late records of the closed
	-- months whose adjustments this month carries.
	INSERT INTO licdata.invoiced_usage (usage_id, month)
	SELECT u.id, mm FROM licdata.usage u
	 WHERE u.at < licdata_internal._month_end(mm)
	   AND NOT EXISTS (SELECT FROM licdata.invoiced_usage iu WHERE iu.usage_id = u.id)
	   AND (u.at >= licdata_internal._month_start(mm)
			OR EXISTS (SELECT FROM licdata.invoice_closed_lines f
						WHERE f.month = mm AND f.kind = 'adjustment' AND f.licence_id = u.licence_id
						  AND u.at >= licdata_internal._month_start(f.for_month) AND u.at < licdata_internal._month_end(f.for_month)));
	RETURN QUERY
		SELECT f.licensee, count(*), sum(f.amount) FROM licdata.invoice_closed_lines f
		 WHERE f.month = mm GROUP BY f.licensee ORDER BY f.licensee::text;
END
$$;
REVOKE ALL ON FUNCTION licdata.close_month(date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.close_month(date) TO licdata_operator;

/* ------------------------------------------------------------------------
 * The printable monthly statement
 * ------------------------------------------------------------------------ */

-- Text as HTML character data or attribute value.
CREATE FUNCTION licdata_internal._html(v anyelement) RETURNS text
	LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
	SELECT replace(replace(replace(replace(replace(coalesce(v::text, ''), '&', '&amp;'), '<', '&lt;'),
										   '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;

/*
 * A self-contained HTML page (inline CSS and SVG, no script, no external
 * asset): the licensee's licences, a daily usage chart, the invoice lines
 * per licence and purpose, free allowances used, tiers, the cap, totals, the
 * consent references used, and the audit chain's verification.  Every value
 * is HTML-escaped.
 */
CREATE FUNCTION licdata.statement_html(licensee regrole, month date) RETURNS text
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	lic regrole := licensee;
	mm date;
	ms timestamptz;
	me timestamptz;
	org record;
	closed record;
	h text;
	r record;
	total numeric;
	maxn bigint;
	ndays integer;
	x integer;
	bh integer;
	v record;
	audit_rows bigint;
	cur bigint := NULL;
	sub numeric := 0;
	lj jsonb;
BEGIN
	PERFORM licdata_internal._check_billing_args(lic, month);
	mm := date_trunc('month', month)::date;
	ms := licdata_internal._month_start(mm);
	me := licdata_internal._month_end(mm);
	ndays := extract(day FROM (mm + interval '1 month' - interval '1 day'))::integer;
	SELECT * INTO org FROM licdata.licensees l WHERE l.licensee = lic;
	SELECT * INTO closed FROM licdata.closed_months c WHERE c.month = mm;
	-- the month's lines, computed once
	SELECT coalesce(jsonb_agg(to_jsonb(b) ORDER BY b.line_no), '[]') INTO lj FROM licdata_internal._bill_lines(lic, mm) b;

	h := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
		|| '<title>Statement ' || to_char(mm, 'YYYY-MM') || ' ' || licdata_internal._html(org.org_name) || '</title>'
		|| '<style>body{font-family:sans-serif;margin:2em;color:#222}h1{font-size:1.5em}'
		|| 'table{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left}'
		|| 'td.n,th.n{text-align:right}tr.subtotal td{font-weight:bold;background:#f2f2f2}'
		|| '.ok{color:#060}.bad{color:#b00}#total{font-size:1.3em;font-weight:bold}'
		|| '@media print{body{margin:0}}</style></head><body><main id="statement">'
		|| '<h1>Monthly statement ' || to_char(mm, 'YYYY-MM') || ' (UTC)</h1>'
		|| '<p id="licensee">Licensee: <strong>' || licdata_internal._html(org.org_name) || '</strong>'
		|| CASE WHEN org.org_code IS NOT NULL THEN ' (' || licdata_internal._html(org.org_code) || ')' ELSE '' END || ', role ' || licdata_internal._html(lic::text) || '</p>'
		|| '<p id="month-status">'
		|| CASE WHEN closed.month IS NOT NULL
				THEN 'Month closed on ' || to_char(closed.closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI "UTC"')
					 || ': these lines are final.'
				ELSE 'Month open: provisional lines.' END || '</p>';

	-- licences
	h := h || '<h2>Licences</h2><table id="licences"><tr><th>licence</th><th>dataset or product</th><th>purposes</th>'
		|| '<th>valid</th><th>status</th></tr>';
	FOR r IN SELECT l.id, coalesce(l.dataset::text, to_jsonb(l)->>'product') AS target, l.purposes,
					l.valid_from, l.valid_until, l.status
			   FROM licdata.licences l WHERE l.licensee = lic
				AND l.valid_from < me AND (l.valid_until IS NULL OR l.valid_until > ms)
			  ORDER BY l.id LOOP
		h := h || '<tr><td>' || r.id || '</td><td>' || licdata_internal._html(r.target) || '</td><td>'
			|| licdata_internal._html(array_to_string(r.purposes, ', ')) || '</td><td>'
			|| to_char(r.valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD') || ' to '
			|| coalesce(to_char(r.valid_until AT TIME ZONE 'UTC', 'YYYY-MM-DD'), 'open') || '</td><td>'
			|| licdata_internal._html(r.status) || '</td></tr>';
	END LOOP;
	h := h || '</table>';

	-- daily usage chart: statements per UTC day
	SELECT coalesce(max(n), 0) INTO maxn FROM (
		SELECT count(*) AS n FROM licdata_internal._usage_between(ms, me) u
		 WHERE u.licensee = lic
		 GROUP BY date_trunc('day', u.at AT TIME ZONE 'UTC')) d;
	h := h || '<h2>Daily usage</h2><svg id="daily-usage-chart" xmlns="http://www.w3.org/2000/svg" width="'
		|| (ndays * 30 + 60) || '" height="200" viewBox="0 0 ' || (ndays * 30 + 60) || ' 200" role="img" '
		|| 'aria-label="statements per day"><line x1="40" y1="170" x2="' || (ndays * 30 + 50)
		|| '" y2="170" stroke="#444"/><text x="2" y="20" font-size="10">' || maxn || '</text>'
		|| '<text x="2" y="170" font-size="10">0</text>';
	FOR v IN SELECT g.d, coalesce(u.n, 0) AS n, coalesce(u.nrows, 0) AS nrows
			   FROM generate_series(1, ndays) g(d)
			   LEFT JOIN (SELECT extract(day FROM u.at AT TIME ZONE 'UTC')::integer AS d, count(*) AS n,
								 sum(u.rows) AS nrows
							FROM licdata_internal._usage_between(ms, me) u WHERE u.licensee = lic
						   GROUP BY 1) u ON u.d = g.d
			  ORDER BY g.d LOOP
		x := 40 + (v.d - 1) * 30 + 5;
		bh := CASE WHEN maxn > 0 THEN (150 * v.n / maxn)::integer ELSE 0 END;
		h := h || '<rect class="bar" x="' || x || '" y="' || (170 - bh) || '" width="20" height="' || bh
			|| '" fill="#3a6ea5"><title>day ' || v.d || ': ' || v.n || ' statements, ' || v.nrows
			|| ' rows</title></rect><text x="' || (x + 4) || '" y="185" font-size="9">' || v.d || '</text>';
	END LOOP;
	h := h || '</svg>';

	-- invoice lines per licence
	h := h || '<h2>Charges</h2><table id="lines"><tr><th>licence</th><th>item</th><th class="n">quantity</th>'
		|| '<th class="n">unit price</th><th class="n">amount</th></tr>';
	FOR r IN SELECT b.* FROM jsonb_to_recordset(lj) AS b(line_no integer, licence_id bigint, kind text, item text, quantity numeric, unit_price numeric, amount numeric) ORDER BY b.line_no LOOP
		IF cur IS NOT NULL AND r.licence_id IS DISTINCT FROM cur THEN
			h := h || '<tr class="subtotal"><td>' || cur || '</td><td>subtotal</td><td></td><td></td><td class="n">'
				|| sub || '</td></tr>';
			sub := 0;
		END IF;
		cur := r.licence_id;
		sub := sub + r.amount;
		h := h || '<tr class="line kind-' || licdata_internal._html(r.kind) || '"><td>' || coalesce(r.licence_id::text, '')
			|| '</td><td>' || licdata_internal._html(r.item) || '</td><td class="n">' || licdata_internal._html(r.quantity)
			|| '</td><td class="n">' || licdata_internal._html(r.unit_price) || '</td><td class="n">' || r.amount || '</td></tr>';
	END LOOP;
	IF cur IS NOT NULL THEN
		h := h || '<tr class="subtotal"><td>' || cur || '</td><td>subtotal</td><td></td><td></td><td class="n">'
			|| sub || '</td></tr>';
	END IF;
	SELECT coalesce(sum(b.amount), 0) INTO total FROM jsonb_to_recordset(lj) AS b(line_no integer, licence_id bigint, kind text, item text, quantity numeric, unit_price numeric, amount numeric);
	h := h || '</table><p>Total for the month: <span id="total">' || total || '</span></p>';

	-- free allowances, free purposes, tiers, cap
	h := h || '<h2>Free allowances and free purposes</h2><ul id="free-allowances">';
	FOR r IN SELECT b.item, b.quantity FROM jsonb_to_recordset(lj) AS b(line_no integer, licence_id bigint, kind text, item text, quantity numeric, unit_price numeric, amount numeric)
			  WHERE b.kind IN ('free_queries', 'free_rows', 'free_quota_rows', 'free_calls', 'free_purpose', 'empty')
			  ORDER BY b.line_no LOOP
		h := h || '<li>' || licdata_internal._html(r.item) || ': ' || licdata_internal._html(r.quantity) || '</li>';
	END LOOP;
	h := h || '</ul><h2>Tiers</h2><ul id="tiers">';
	FOR r IN SELECT b.item, b.quantity, b.unit_price, b.amount FROM jsonb_to_recordset(lj) AS b(line_no integer, licence_id bigint, kind text, item text, quantity numeric, unit_price numeric, amount numeric)
			  WHERE b.kind IN ('rows', 'quota_rows') AND b.item LIKE '%tier %' ORDER BY b.line_no LOOP
		h := h || '<li>' || licdata_internal._html(r.item) || ': ' || licdata_internal._html(r.quantity) || ' x '
			|| licdata_internal._html(r.unit_price) || ' = ' || r.amount || '</li>';
	END LOOP;
	h := h || '</ul><h2>Monthly cap</h2><p id="cap">'
		|| coalesce((SELECT string_agg(licdata_internal._html(b.item) || ': ' || b.amount, '; ' ORDER BY b.line_no)
					   FROM jsonb_to_recordset(lj) AS b(line_no integer, licence_id bigint, kind text, item text, quantity numeric, unit_price numeric, amount numeric) WHERE b.kind = 'monthly_cap'), 'No cap applied.')
		|| '</p>';

	-- consent references (the licensee's own strings: escaped)
	h := h || '<h2>Consent references</h2><table id="consent-refs"><tr><th>consent reference</th>'
		|| '<th class="n">statements</th><th class="n">rows</th></tr>';
	FOR r IN SELECT u.consent_ref, count(*) AS n, sum(u.rows) AS nrows FROM licdata_internal._usage_between(ms, me) u
			  WHERE u.licensee = lic AND u.consent_ref IS NOT NULL
			  GROUP BY u.consent_ref ORDER BY count(*) DESC, u.consent_ref LIMIT 50 LOOP
		h := h || '<tr><td>' || licdata_internal._html(r.consent_ref) || '</td><td class="n">' || r.n
			|| '</td><td class="n">' || r.nrows || '</td></tr>';
	END LOOP;
	h := h || '</table>';

	-- the audit chain
	SELECT count(*) INTO audit_rows FROM licdata_internal._audit_between(ms, me) a
	 WHERE a.licensee = lic;
	SELECT * INTO v FROM licdata.verify_audit();
	h := h || '<h2>Audit</h2><p id="audit-status" class="' || CASE WHEN v.ok THEN 'ok' ELSE 'bad' END || '">'
		|| CASE WHEN v.ok THEN 'Audit chain verified' ELSE 'Audit chain NOT verified: first bad record ' || v.first_bad_seq END
		|| ' (' || v.records_checked || ' records checked; ' || audit_rows
		|| ' audit records of this licensee in the month).</p>'
		|| '</main></body></html>';
	RETURN h;
END
$$;
REVOKE ALL ON FUNCTION licdata.statement_html(regrole, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION licdata.statement_html(regrole, date) TO licdata_operator, licdata_auditor;

-- The internal helpers are for the functions above (they run with the
-- caller's rights; a licensee could not read the tables through them
-- anyway).  licdata_internal._price_list stays callable by everyone: the public
-- view licdata.price_list calls it.
DO $grants$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_proc p
			  WHERE p.pronamespace = 'licdata_internal'::regnamespace
				AND p.proname IN ('_month_start', '_month_end', '_month_of', '_product_row', '_list_prices',
								  '_plan_effective', '_tiers', '_bad_plan', '_check_number', '_check_plan',
								  '_plan_prices', '_check_ceiling', '_prices_in_force', '_price_target',
								  '_published_products', '_bill_compute', '_bill_adjustments', '_bill_lines',
								  '_check_billing_args', '_html')
	LOOP
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
	END LOOP;
END
$grants$;
