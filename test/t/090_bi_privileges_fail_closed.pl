# test/t/090_bi_privileges_fail_closed.pl -- licensees now hold SELECT
# privileges that mirror their licences (for information_schema and BI
# tools).  Those privileges must open nothing: without licdata preloaded a
# licensee holding SELECT on the whole table, or on its licensed columns,
# still reads nothing (the forced row-security guard fails), not with
# row_security off, not by COPY; and after DROP EXTENSION licdata CASCADE the
# tables keep forced row security with no policy, so licensees read no row.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('bi_fail_closed');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'licdata'\nlicdata.database = 'postgres'\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA pd;
CREATE TABLE pd.people (id int PRIMARY KEY, region text, secret text);
INSERT INTO pd.people SELECT g, CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END, 'secret' || g
  FROM generate_series(1, 100) g;
ANALYZE pd.people;
CREATE ROLE bank LOGIN;
CREATE ROLE bank_all LOGIN;
SELECT licdata.publish('pd.people');
SELECT licdata.register_licensee('bank', 'Bank');
SELECT licdata.register_licensee('bank_all', 'Bank with every column');
SELECT licdata.grant_licence('bank', 'pd.people', ARRAY['credit_assessment'],
	columns => ARRAY['id', 'region'], row_filter => 'region = ''bj''', unlicensed_columns => 'null');
SELECT licdata.grant_licence('bank_all', 'pd.people', ARRAY['credit_assessment'],
	row_filter => 'region = ''bj''');
});

is($node->safe_psql('postgres', q{
	SELECT has_column_privilege('bank', 'pd.people', 'region', 'SELECT')::text || ' ' ||
		   has_column_privilege('bank', 'pd.people', 'secret', 'SELECT')::text || ' ' ||
		   has_table_privilege('bank_all', 'pd.people', 'SELECT')::text}),
	'true false true', 'licensees hold the privileges their licences cover');

my $lic = "SET licdata.purpose = 'credit_assessment';";
is($node->safe_psql('postgres', "$lic SELECT count(*), count(secret) FROM pd.people",
	extra_params => [ '-U', 'bank' ]), '50|0', 'with the library: 50 licensed rows, secret as NULL');
is($node->safe_psql('postgres', "$lic SELECT count(*), count(secret) FROM pd.people",
	extra_params => [ '-U', 'bank_all' ]), '50|50', 'the whole-table licensee: 50 licensed rows');

# Without the library.
$node->stop;
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->start;

for my $who ('bank', 'bank_all')
{
	for my $sql ('SELECT count(*) FROM pd.people', 'SELECT id, region FROM pd.people',
		'SET row_security = off; SELECT id FROM pd.people', 'COPY pd.people (id, region) TO STDOUT')
	{
		my ($ret, $out, $err) = $node->psql('postgres', $sql, extra_params => [ '-U', $who ]);
		isnt($ret, 0, "without the library, $who: \"$sql\" fails");
		is($out, '', '... and returns no row');
		like($err, qr/not loaded through shared_preload_libraries|row-level security/,
			'... refused by the guard (or by row security)');
	}
}
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stats WHERE schemaname = 'pd'",
	extra_params => [ '-U', 'bank_all' ]), '0', 'pg_stats shows the whole-table licensee nothing');

# With the library again, then the extension dropped with CASCADE.
$node->stop;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'licdata'\n");
$node->start;
is($node->safe_psql('postgres', "$lic SELECT count(*) FROM pd.people", extra_params => [ '-U', 'bank_all' ]),
	'50', 'with the library back, served again');
$node->safe_psql('postgres', 'DROP EXTENSION licdata CASCADE');
is($node->safe_psql('postgres', "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'pd.people'::regclass"),
	't', 'after DROP EXTENSION licdata CASCADE the table keeps forced row security');
is($node->safe_psql('postgres', 'SELECT has_table_privilege(\'bank_all\', \'pd.people\', \'SELECT\')'),
	't', '... and the licensee still holds its SELECT privilege');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pd.people', extra_params => [ '-U', 'bank_all' ]),
	'0', '... yet reads no row (row security with no policy denies everything)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pd.people'), '100', 'a superuser still reads the table');

$node->stop;
done_testing();
