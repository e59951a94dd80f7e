-- test/demo/operator_setup.sql -- part 0 of the demo, run by scenario.sh as the
-- operator (a superuser) after the sample data is loaded: the extension, the
-- datasets and their prices, the masks, the licensees and their licences.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

\echo '--- 0.2  CREATE EXTENSION (the library is preloaded: shared_preload_libraries = ''licdata'')'
CREATE EXTENSION licdata;
SELECT extversion AS licdata_version,
       current_setting('shared_preload_libraries') AS shared_preload_libraries
  FROM pg_extension WHERE extname = 'licdata';

\echo
\echo '--- 0.3  For the statistics case the operator derives one row per enterprise from the raw'
\echo '         monthly tax records, so that an aggregate licence''s "group of at least 10 rows"'
\echo '         means at least 10 enterprises (not 10 enterprise-months):'
\set ECHO queries
CREATE TABLE pd.tax_annual AS
SELECT e.enterprise_id, e.credit_code, e.industry, e.district,
       sum(t.revenue)::numeric(16,2) AS annual_revenue
  FROM pd.enterprises e JOIN pd.tax_revenue t USING (enterprise_id)
 WHERE t.month >= date '2025-01-01' AND t.month < date '2026-01-01'
 GROUP BY e.enterprise_id, e.credit_code, e.industry, e.district;
\set ECHO none
ALTER TABLE pd.tax_annual ADD PRIMARY KEY (enterprise_id), ADD UNIQUE (credit_code);
COMMENT ON TABLE pd.tax_annual IS 'annual operating revenue per enterprise, 2025 (the sum of pd.tax_revenue)';
ANALYZE pd.tax_annual;
SELECT count(*) AS enterprises, round(sum(annual_revenue) / 1e9, 1) AS revenue_2025_billion_yuan
  FROM pd.tax_annual;

\echo
\echo '--- 0.4  Publish five tables as datasets, with list prices (per query, per row delivered)'
\set ECHO queries
SELECT licdata.publish('pd.people',        'residents: identity, contact, employer, salary',      0.50, 0.10),
       licdata.publish('pd.contributions', 'social-insurance contributions per person and month', 0.20, 0.02),
       licdata.publish('pd.enterprises',   'enterprises (market regulator register)',             0.20, 0.01),
       licdata.publish('pd.tax_revenue',   'monthly revenue and taxes per enterprise, 2025',      1.00, 0.05),
       licdata.publish('pd.tax_annual',    'annual revenue per enterprise, 2025 (derived)',       2.00, 0.10)
\g /dev/null
\set ECHO none

\echo
\echo '--- 0.5  Default masks of pd.people: what every licensee sees instead of the raw value'
\set ECHO queries
SELECT licdata.set_mask('pd.people', 'id_number',      'pseudonym',  '{"length": 16}'),
       licdata.set_mask('pd.people', 'name',           'cn_name'),
       licdata.set_mask('pd.people', 'mobile',         'cn_mobile'),
       licdata.set_mask('pd.people', 'email',          'email'),
       licdata.set_mask('pd.people', 'birth_date',     'date_trunc', '{"unit": "year"}'),
       licdata.set_mask('pd.people', 'monthly_salary', 'bucket',     '{"width": 1000}')
\g /dev/null
\set ECHO none

\echo
\echo '--- 0.6  The licensees: login roles, each owning its own schema (its own data);'
\echo '         bank_a_analyst is a member of bank_a and acts under bank_a''s licences'
CREATE ROLE bank_a LOGIN;
CREATE ROLE bank_a_analyst LOGIN IN ROLE bank_a;
CREATE ROLE stats_bureau LOGIN;
ALTER SCHEMA bank_a_own OWNER TO bank_a;
ALTER TABLE bank_a_own.applicants OWNER TO bank_a;
ALTER SCHEMA stats_own OWNER TO stats_bureau;
ALTER TABLE stats_own.enterprise_register OWNER TO stats_bureau;
-- the reporting thresholds and the district names are plain reference data, not
-- published: an ordinary GRANT is enough
GRANT USAGE ON SCHEMA pd TO stats_bureau;
GRANT SELECT ON pd.reporting_thresholds, pd.regions TO stats_bureau;
\set ECHO queries
SELECT licdata.register_licensee('bank_a',       'Bank A',                 '91110000100000000A'),
       licdata.register_licensee('stats_bureau', 'Municipal Statistics Bureau')
\g /dev/null
\set ECHO none
SELECT rolname AS role, rolsuper AS superuser, rolbypassrls AS bypassrls,
       coalesce((SELECT string_agg(m.roleid::regrole::text, ', ') FROM pg_auth_members m
                  WHERE m.member = r.oid), '') AS member_of,
       coalesce((SELECT string_agg(n.nspname, ', ') FROM pg_namespace n
                  WHERE n.nspowner = r.oid), '') AS owns_schema
  FROM pg_roles r
 WHERE rolname IN ('bank_a', 'bank_a_analyst', 'stats_bureau')
 ORDER BY 1;

\echo
\echo '--- 0.7  Licences'
\echo '    Bank A: credit assessment on Beijing residents only, one applicant at a time (consent'
\echo '    reference required), no e-mail address, at most 100 rows a query:'
\set ECHO queries
SELECT licdata.grant_licence('bank_a', 'pd.people', ARRAY['credit_assessment'],
         columns => ARRAY['person_id', 'id_number', 'name', 'gender', 'birth_date', 'city_code',
                          'region', 'mobile', 'employer_id', 'monthly_salary'],
         row_filter => 'region = ''北京市''',
         valid_until => now() + interval '1 year',
         max_rows_per_query => 100, max_queries_per_day => 5000,
         require_consent_ref => true, price_per_query => 1.00, price_per_row => 0.20) AS people_licence,
       licdata.grant_licence('bank_a', 'pd.contributions', ARRAY['credit_assessment'],
         valid_until => now() + interval '1 year',
         max_rows_per_query => 120, max_queries_per_day => 5000,
         require_consent_ref => true, price_per_query => 0.50, price_per_row => 0.02) AS contributions_licence
\gset
\set ECHO none
\echo '    (pd.contributions has no region column, and a row filter sees only the row itself: the'
\echo '    bank reaches contributions through a person its pd.people licence lets it find)'
\echo
\echo '    Statistics bureau: aggregates only, for statistics; groups under 10 enterprises suppressed:'
\set ECHO queries
SELECT licdata.grant_licence('stats_bureau', 'pd.tax_annual', ARRAY['statistics'],
         mode => 'aggregate', min_group_size => 10,
         price_per_query => 5.00, price_per_row => 0.50) AS tax_annual_licence,
       licdata.grant_licence('stats_bureau', 'pd.enterprises', ARRAY['statistics'],
         columns => ARRAY['enterprise_id', 'credit_code', 'industry', 'district', 'employees'],
         mode => 'aggregate', min_group_size => 10) AS enterprises_licence
\gset
\set ECHO none

\echo
\echo '--- 0.8  The catalog, as the operator sees it'
\echo 'licdata.datasets:'
SELECT dataset, description, price_per_query, price_per_row,
       (SELECT reltuples::bigint FROM pg_class WHERE oid = dataset) AS approx_rows
  FROM licdata.datasets ORDER BY dataset::text;
\echo 'licdata.licences:'
SELECT l.id, l.licensee, l.dataset, l.purposes, l.mode,
       CASE WHEN l.mode = 'aggregate' THEN 'groups >= ' || l.min_group_size
            ELSE coalesce(l.row_filter, 'all rows') END AS rows_scope,
       CASE WHEN l.columns IS NULL THEN 'all'
            ELSE cardinality(l.columns) || ' of ' ||
                 (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = l.dataset
                     AND a.attnum > 0 AND NOT a.attisdropped) END AS columns,
       l.require_consent_ref AS consent,
       l.max_rows_per_query AS rows_per_query, l.max_queries_per_day AS queries_per_day,
       coalesce(l.price_per_query, d.price_per_query) AS per_query,
       coalesce(l.price_per_row, d.price_per_row) AS per_row,
       to_char(l.valid_until, 'YYYY-MM-DD') AS valid_until
  FROM licdata.licences l JOIN licdata.datasets d USING (dataset)
 ORDER BY l.id;
\echo 'licdata.masks:'
SELECT dataset, column_name, method, params,
       coalesce(licence_id::text, 'every licence') AS applies_to
  FROM licdata.masks ORDER BY dataset::text, id;
