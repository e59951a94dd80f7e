# test/t/002_fail_closed.pl -- without licdata preloaded, nobody but a
# superuser reads a published table: not the licensee (directly or through
# an operator's view), not the table's non-superuser owner; pg_stats shows a
# licensee nothing.  With the library back, service resumes.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('failclosed');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'licdata'\nlicdata.database = 'postgres'\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION licdata;
CREATE ROLE owner_op LOGIN;
CREATE ROLE bank LOGIN;
CREATE SCHEMA pd AUTHORIZATION owner_op;
SET ROLE owner_op;
CREATE TABLE pd.people (id int PRIMARY KEY, region text, secret text);
INSERT INTO pd.people SELECT g, CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END, 'secret' || g
  FROM generate_series(1, 100) g;
ANALYZE pd.people;
CREATE VIEW pd.everything AS SELECT * FROM pd.people;
GRANT USAGE ON SCHEMA pd TO bank;
GRANT SELECT ON pd.everything TO bank;
RESET ROLE;
SELECT licdata.publish('pd.people');
SELECT licdata.register_licensee('bank', 'Bank');
SELECT licdata.grant_licence('bank', 'pd.people', ARRAY['credit_assessment'],
	columns => ARRAY['id', 'region'], row_filter => 'region = ''bj''');
});

my $lic = "SET licdata.purpose = 'credit_assessment';";

# With the library: served through the licence.
is($node->safe_psql('postgres', "$lic SELECT count(*) FROM pd.people", extra_params => [ '-U', 'bank' ]),
	'50', 'licensee reads its 50 licensed rows');
my ($ret, $out, $err) = $node->psql('postgres', "$lic SELECT secret FROM pd.everything",
	extra_params => [ '-U', 'bank' ]);
like($err, qr/outside licence/, "operator's view is served through the licence (secret refused)");

# Without the library.
$node->stop;
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->start;

($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM pd.people',
	extra_params => [ '-U', 'bank' ]);
isnt($ret, 0, 'licensee cannot read the table directly');
is($out, '', 'and gets no rows');
like($err, qr/permission denied|not loaded/, 'with an error');

($ret, $out, $err) = $node->psql('postgres', 'SELECT secret FROM pd.everything',
	extra_params => [ '-U', 'bank' ]);
isnt($ret, 0, "licensee cannot read through the operator's view");
is($out, '', 'and gets no rows');
like($err, qr/licdata is not loaded through shared_preload_libraries/,
	'the guard says the library is missing');

($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM pd.people',
	extra_params => [ '-U', 'owner_op' ]);
isnt($ret, 0, 'the non-superuser owner cannot read it either');
like($err, qr/shared_preload_libraries/, 'the hint names shared_preload_libraries');

is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stats WHERE schemaname = 'pd'",
	extra_params => [ '-U', 'bank' ]), '0', 'pg_stats shows the licensee nothing');

($ret, $out, $err) = $node->psql('postgres', "SET licdata.purpose = 'credit_assessment'",
	extra_params => [ '-U', 'bank' ]);
is($ret, 0, 'a client sending licdata.purpose still connects (placeholder)');

# A superuser is a superuser.
is($node->safe_psql('postgres', 'SELECT count(*) FROM pd.people'), '100',
	'superuser reads the table');

# Back with the library: service resumes.
$node->stop;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'licdata'\n");
$node->start;
is($node->safe_psql('postgres', "$lic SELECT count(*) FROM pd.people", extra_params => [ '-U', 'bank' ]),
	'50', 'with the library back, the licensee is served again');

$node->stop;
done_testing();
