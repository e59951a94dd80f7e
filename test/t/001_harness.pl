# test/t/001_harness.pl -- licdata loads from shared_preload_libraries and
# CREATE EXTENSION works; without the preload, CREATE EXTENSION is refused with
# a message that names shared_preload_libraries.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('harness');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'licdata'\nlicdata.database = 'postgres'\n");
$node->start;

# Preloaded: the extension installs in licdata.database.
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'CREATE EXTENSION licdata');
is($ret, 0, 'CREATE EXTENSION licdata succeeds with the library preloaded')
  or diag("stderr: $stderr");

is( $node->safe_psql(
		'postgres', "SELECT extname FROM pg_extension WHERE extname = 'licdata'"),
	'licdata',
	'pg_extension lists licdata');

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'licdata', 'licdata is in shared_preload_libraries');

# Without the preload: CREATE EXTENSION in a new database is refused, and the
# message says what to add.
$node->stop;
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'', 'restarted without shared_preload_libraries');

$node->safe_psql('postgres', 'CREATE DATABASE nopreload');
($ret, $stdout, $stderr) =
  $node->psql('nopreload', 'CREATE EXTENSION licdata');
isnt($ret, 0, 'CREATE EXTENSION licdata fails without the preload');
like(
	$stderr,
	qr/shared_preload_libraries/,
	'the error names shared_preload_libraries');
is( $node->safe_psql(
		'nopreload',
		"SELECT count(*) FROM pg_extension WHERE extname = 'licdata'"),
	'0',
	'licdata is not installed in that database');

$node->stop;
done_testing();
