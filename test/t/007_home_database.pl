# test/t/007_home_database.pl -- with only shared_preload_libraries set (as
# the install instructions say), licdata works in whichever database
# CREATE EXTENSION first runs in: the worker follows it there and meters;
# another database is refused with a hint; the choice survives a restart.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('home');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'licdata'\nlicdata.flush_interval = '100ms'\n");
$node->start;

is($node->safe_psql('postgres', 'SHOW licdata.database'), '', 'licdata.database is not set');
$node->safe_psql('postgres', 'CREATE DATABASE bureau');
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('bureau', q{
CREATE EXTENSION licdata;
CREATE ROLE lic LOGIN;
CREATE TABLE t (id int);
INSERT INTO t SELECT generate_series(1, 10);
SELECT licdata.publish('t');
SELECT licdata.register_licensee('lic', 'Licensee');
SELECT licdata.grant_licence('lic', 't', ARRAY['research']);
});
ok(-f $node->data_dir . '/pg_licdata/database', 'the home database is remembered');
is($node->safe_psql('bureau', "SET licdata.purpose = 'research'; SELECT count(*) FROM t",
	extra_params => [ '-U', 'lic' ]), '10', 'the licensee is served');
is($node->safe_psql('bureau', 'SELECT licdata.flush(60)'), 't', 'the worker moves the records');
is($node->safe_psql('bureau', "SELECT count(*) || ',' || sum(rows) FROM licdata.usage"), '1,1',
	'the statement is metered in the home database');

my ($ret, $out, $err) = $node->psql('other', 'CREATE EXTENSION licdata');
isnt($ret, 0, 'a second database is refused');
like($err, qr/licdata can only be created in database "bureau"/, 'naming the home database');

$node->restart;
is($node->safe_psql('bureau', "SET licdata.purpose = 'research'; SELECT count(*) FROM t",
	extra_params => [ '-U', 'lic' ]), '10', 'after a restart');
is($node->safe_psql('bureau', 'SELECT licdata.flush(60)'), 't', 'the worker finds its home again');
is($node->safe_psql('bureau', 'SELECT count(*) FROM licdata.usage'), '2', 'and meters');

$node->stop;
done_testing();
