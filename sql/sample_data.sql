--
-- sample_data: the deterministic sample public-data generator (test/data/generate.sql).
-- Independent of the licdata extension. Drops what it creates at the end.
--
\set ECHO none
\set scale 0.01
\i test/data/generate.sql
\set ON_ERROR_STOP off
\set ECHO all
SET datestyle = 'ISO, YMD';

-- published examples: GB 11643 standard example and a wrong check digit
SELECT pd.valid_id_number('11010519491231002X') AS gb11643_example,
       pd.valid_id_number('110105194912310021') AS wrong_check,
       pd.valid_id_number('11010519491231003X') AS changed_digit,
       pd.valid_id_number('11010519491231002x') AS lowercase_x,
       pd.valid_id_number('11010519490231002X') AS no_such_date,
       pd.valid_id_number('1101051949123100') AS too_short;
-- GB 32100 example; then one character changed; then the final check recomputed over a
-- broken organisation code (Y56, 101Y4Q): the embedded GB 11714 check must catch it
SELECT pd.valid_credit_code('91350100M000100Y43') AS gb32100_example,
       pd.valid_credit_code('91350100M000100Y44') AS last_changed,
       pd.valid_credit_code('91350100M000110Y43') AS middle_changed,
       pd.valid_credit_code('91350100M000100Y56') AS bad_org_check,
       pd.valid_credit_code('91350100M000101Y4Q') AS bad_org_body,
       pd.valid_credit_code('91350100M00O100Y43') AS letter_o;

-- row counts at scale 0.01
SELECT (SELECT count(*) FROM pd.people) AS people,
       (SELECT count(*) FROM pd.enterprises) AS enterprises,
       (SELECT count(*) FROM pd.tax_revenue) AS tax_rows,
       (SELECT count(*) FROM pd.contributions) AS contribution_rows,
       (SELECT count(*) FROM pd.reporting_thresholds) AS industries,
       (SELECT count(*) FROM bank_a_own.applicants) AS applicants,
       (SELECT count(*) FROM stats_own.enterprise_register) AS register;

-- every generated identifier validates
SELECT (SELECT count(*) FROM pd.people WHERE NOT pd.valid_id_number(id_number)) AS bad_people_ids,
       (SELECT count(*) FROM bank_a_own.applicants WHERE NOT pd.valid_id_number(id_number)) AS bad_applicant_ids,
       (SELECT count(*) FROM pd.enterprises WHERE NOT pd.valid_credit_code(credit_code)) AS bad_credit_codes,
       (SELECT count(*) FROM stats_own.enterprise_register WHERE NOT pd.valid_credit_code(credit_code)) AS bad_register_codes;

-- uniqueness
SELECT count(*) = count(DISTINCT id_number) AS ids_unique,
       count(*) = count(DISTINCT mobile) AS mobiles_unique
FROM pd.people;
SELECT count(*) = count(DISTINCT credit_code) AS credit_codes_unique,
       count(*) = count(DISTINCT substr(credit_code, 9, 9)) AS org_codes_unique
FROM pd.enterprises;

-- people: gender, birth date, region consistent with the ID; ages 18..70 on 2026-01-01
SELECT count(*) FILTER (WHERE gender <> CASE WHEN substr(id_number, 17, 1)::int % 2 = 1 THEN 'M' ELSE 'F' END) AS bad_gender,
       count(*) FILTER (WHERE birth_date <> to_date(substr(id_number, 7, 8), 'YYYYMMDD')) AS bad_birth_date,
       count(*) FILTER (WHERE city_code <> left(id_number, 6)) AS bad_city,
       count(*) FILTER (WHERE region <> (SELECT province FROM pd.regions r WHERE r.code = p.city_code)) AS bad_region,
       count(*) FILTER (WHERE extract(year FROM age(date '2026-01-01', birth_date)) NOT BETWEEN 18 AND 70) AS bad_age,
       count(*) FILTER (WHERE mobile !~ '^1(3[0-9]|5[0-35-9]|7[35-8]|8[0-9]|9[13589])[0-9]{8}$') AS bad_mobile,
       count(*) FILTER (WHERE email !~ '^[a-z0-9]+@[a-z0-9]+\.(com|cn)$') AS bad_email,
       count(*) FILTER (WHERE monthly_salary NOT BETWEEN 2500 AND 120000) AS bad_salary,
       count(DISTINCT city_code) AS cities,
       count(*) FILTER (WHERE gender = 'M') AS men,
       count(*) FILTER (WHERE gender = 'F') AS women
FROM pd.people p;
SELECT count(*) AS regions, count(DISTINCT province) AS provinces FROM pd.regions;

-- contributions: 2025 only, 12 months minus one contiguous unemployment gap
SELECT min(month) AS first_month, max(month) AS last_month,
       count(*) FILTER (WHERE extract(day FROM month) <> 1) AS not_first_of_month,
       count(*) FILTER (WHERE abs(pension - 4 * medical) > 0.02 OR abs(medical - 4 * unemployment) > 0.02) AS bad_rates
FROM pd.contributions;
WITH per_person AS (
  SELECT p.person_id, p.employer_id, count(c.month) AS months,
         min(extract(month FROM g.m)) FILTER (WHERE c.month IS NULL) AS gap_first,
         max(extract(month FROM g.m)) FILTER (WHERE c.month IS NULL) AS gap_last,
         count(*) FILTER (WHERE c.month = date '2025-12-01') AS has_december
  FROM pd.people p
  CROSS JOIN generate_series(date '2025-01-01', date '2025-12-01', interval '1 month') AS g(m)
  LEFT JOIN pd.contributions c ON c.person_id = p.person_id AND c.month = g.m
  GROUP BY p.person_id, p.employer_id
)
SELECT count(*) FILTER (WHERE months = 12) AS full_year,
       count(*) FILTER (WHERE months < 12) AS with_gap,
       count(*) FILTER (WHERE months < 6) AS gap_too_long,
       count(*) FILTER (WHERE months < 12 AND gap_last - gap_first + 1 <> 12 - months) AS gap_not_contiguous,
       count(*) FILTER (WHERE (employer_id IS NULL) <> (has_december = 0)) AS unemployed_mismatch
FROM per_person;

-- tax revenue: 12 months per enterprise; "above designated size" per industry
SELECT count(*) FILTER (WHERE n <> 12) AS enterprises_without_12_months
FROM (SELECT enterprise_id, count(*) AS n FROM pd.tax_revenue GROUP BY 1) t;
SELECT count(*) FILTER (WHERE vat < 0 OR corporate_income_tax < 0 OR revenue <= 0) AS negative_amounts,
       count(*) FILTER (WHERE vat > revenue * 0.1) AS implausible_vat
FROM pd.tax_revenue;
WITH annual AS (
  SELECT e.enterprise_id, e.industry, sum(t.revenue) AS revenue
  FROM pd.enterprises e JOIN pd.tax_revenue t USING (enterprise_id)
  GROUP BY 1, 2
)
SELECT a.industry, count(*) AS enterprises,
       count(*) FILTER (WHERE a.revenue >= r.annual_revenue_threshold) AS above_threshold
FROM annual a JOIN pd.reporting_thresholds r USING (industry)
GROUP BY a.industry
ORDER BY a.industry COLLATE "C";
WITH annual AS (
  SELECT e.industry, sum(t.revenue) >= r.annual_revenue_threshold AS above
  FROM pd.enterprises e JOIN pd.tax_revenue t USING (enterprise_id)
  JOIN pd.reporting_thresholds r USING (industry)
  GROUP BY e.enterprise_id, e.industry, r.annual_revenue_threshold
)
SELECT count(DISTINCT industry) FILTER (WHERE above) >= 5 AS several_industries_above,
       avg(above::int) BETWEEN 0.05 AND 0.15 AS share_above_5_to_15_pct
FROM annual;

-- people work for existing enterprises, mostly in their own district
SELECT count(*) FILTER (WHERE e.enterprise_id IS NULL AND p.employer_id IS NOT NULL) AS dangling_employer,
       avg((e.district = p.city_code)::int) > 0.75 AS mostly_local
FROM pd.people p LEFT JOIN pd.enterprises e ON e.enterprise_id = p.employer_id;

-- the bank's applicants: 1,000 people from pd.people, 20 valid IDs of nobody in it
SELECT count(*) FILTER (WHERE p.person_id IS NOT NULL) AS known,
       count(*) FILTER (WHERE p.person_id IS NULL) AS unknown,
       count(DISTINCT a.id_number) AS distinct_ids
FROM bank_a_own.applicants a LEFT JOIN pd.people p USING (id_number);

-- the statistics register: ~95 % of pd.enterprises plus 500 of its own
SELECT count(*) FILTER (WHERE e.enterprise_id IS NOT NULL) AS matched,
       count(*) FILTER (WHERE e.enterprise_id IS NULL) AS register_only,
       count(*) FILTER (WHERE e.enterprise_id IS NOT NULL
                          AND (e.name, e.industry, e.district, e.founded) IS DISTINCT FROM (r.name, r.industry, r.district, r.registered_on)) AS mismatched,
       (SELECT count(*) FROM pd.enterprises) - count(e.enterprise_id) AS not_registered
FROM stats_own.enterprise_register r LEFT JOIN pd.enterprises e USING (credit_code);

-- determinism: fixed digests of every table at scale 0.01 ...
SELECT 'people' AS tbl, md5(string_agg(t::text, E'\n' ORDER BY person_id)) FROM pd.people t
UNION ALL SELECT 'contributions', md5(string_agg(t::text, E'\n' ORDER BY person_id, month)) FROM pd.contributions t
UNION ALL SELECT 'enterprises', md5(string_agg(t::text, E'\n' ORDER BY enterprise_id)) FROM pd.enterprises t
UNION ALL SELECT 'tax_revenue', md5(string_agg(t::text, E'\n' ORDER BY enterprise_id, month)) FROM pd.tax_revenue t
UNION ALL SELECT 'applicants', md5(string_agg(t::text, E'\n' ORDER BY application_no COLLATE "C")) FROM bank_a_own.applicants t
UNION ALL SELECT 'enterprise_register', md5(string_agg(t::text, E'\n' ORDER BY credit_code COLLATE "C")) FROM stats_own.enterprise_register t;

-- ... and running the generator again (idempotent) gives the same data
SELECT md5(string_agg(t::text, E'\n' ORDER BY person_id)) AS people_md5 FROM pd.people t \gset
SELECT md5(string_agg(t::text, E'\n' ORDER BY person_id, month)) AS contributions_md5 FROM pd.contributions t \gset
SELECT md5(string_agg(t::text, E'\n' ORDER BY enterprise_id, month)) AS tax_md5 FROM pd.tax_revenue t \gset
\set ECHO none
\i test/data/generate.sql
\set ON_ERROR_STOP off
\set ECHO all
SELECT md5(string_agg(t::text, E'\n' ORDER BY person_id)) = :'people_md5' AS people_same FROM pd.people t;
SELECT md5(string_agg(t::text, E'\n' ORDER BY person_id, month)) = :'contributions_md5' AS contributions_same FROM pd.contributions t;
SELECT md5(string_agg(t::text, E'\n' ORDER BY enterprise_id, month)) = :'tax_md5' AS tax_same FROM pd.tax_revenue t;

-- leave nothing behind
DROP SCHEMA pd, bank_a_own, stats_own CASCADE;
RESET datestyle;
RESET client_min_messages;
