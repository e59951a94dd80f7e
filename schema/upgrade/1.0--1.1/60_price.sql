/*
 * 60_price.sql -- 1.0 -> 1.1: prices that follow the public-data pricing rules.
 *
 * licdata.usage gets calls (appended, as in schema/40_records.sql);
 * licdata.invoice is rewritten to price by plan (same signature, same
 * columns); everything else is new and is schema/80_pricing.sql verbatim
 * (keep the two in step).
 */

-- (licdata.usage.calls: added by 40_pipe.sql)

/*
 * The invoice of a licensee for a period, per licence and purpose, priced by
 * the plans (schema/80_pricing.sql): for each calendar month (UTC) the period
 * covers whole, the month's invoice lines (licdata.invoice_lines) summed per
 * licence and purpose, the monthly fee, cap and adjustments on a line with
 * purpose NULL; for a month it covers in part, the charges of the records in
 * that part (volumes counted from the start of the month), without the
 * monthly items.
 */
CREATE OR REPLACE FUNCTION licdata.invoice(licensee regrole, period_start timestamptz, period_end timestamptz)
	RETURNS TABLE (licence_id bigint, dataset regclass, purpose text, queries bigint, rows bigint, amount numeric)
	LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
	lic regrole := licensee;
	ps timestamptz := period_start;
	pe timestamptz := period_end;
BEGIN
	PERFORM licdata_internal._not_null(lic, 'licensee');
	-- a dropped role's OID is allowed (its usage stays); 0 names no role
	IF lic::oid = 0 THEN
		RAISE EXCEPTION 'role with OID 0 does not exist'
			USING ERRCODE = 'undefined_object',
				  HINT = 'Pass the licensee by name, e.g. licensee => ''bank''.';
	END IF;
	PERFORM licdata_internal._not_null(ps, 'period_start');
	PERFORM licdata_internal._not_null(pe, 'period_end');
	IF pe <= ps THEN
		RAISE EXCEPTION 'period_end must be after period_start'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a period such as now() - interval ''1 month'' to now().';
	END IF;
	IF NOT isfinite(ps) OR NOT isfinite(pe) THEN
		RAISE EXCEPTION 'the period must be finite'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a period such as ''2025-03-01'' to ''2025-04-01''.';
	END IF;
	RETURN QUERY
		WITH months AS (
			SELECT g::date AS m, licdata_internal._month_start(g::date) AS ms, licdata_internal._month_end(g::date) AS me
			  FROM generate_series(licdata_internal._month_of(ps)::timestamp,
								   licdata_internal._month_of(pe - interval '1 microsecond')::timestamp,
								   interval '1 month') g
		), lines AS (
			SELECT b.licence_id, b.dataset, b.purpose, b.queries, b.rows, b.amount
			  FROM (SELECT * FROM months WHERE ps <= months.ms AND pe >= months.me) w,
				   LATERAL licdata_internal._bill_lines(lic, w.m) b
			UNION ALL
			SELECT b.licence_id, b.dataset, b.purpose, b.queries, b.rows, b.amount
			  FROM (SELECT * FROM months WHERE NOT (ps <= months.ms AND pe >= months.me)) p,
				   LATERAL licdata_internal._bill_compute(lic, p.m, greatest(ps, p.ms), least(pe, p.me), false) b
		)
		SELECT l.licence_id, l.dataset, l.purpose, sum(l.queries)::bigint, sum(l.rows)::bigint, sum(l.amount)
		  FROM lines l
		 GROUP BY l.licence_id, l.dataset, l.purpose
		 ORDER BY l.licence_id, l.purpose;
END
$$;

-- (the rest of the pricing objects: 61_price_pricing.sql, the same file as schema/80_pricing.sql)
