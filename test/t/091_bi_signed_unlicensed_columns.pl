# test/t/091_bi_signed_unlicensed_columns.pl -- a signed licence carries
# unlicensed_columns (licdata-sign --unlicensed-columns): installed, it serves
# the other columns as NULL, and the licensee holds SELECT on exactly the
# licensed columns; a bad value is refused by grant_licence's validation.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('bi_signed');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'licdata'\nlicdata.database = 'postgres'\n");
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my ($pub) = run_command([ 'licdata-sign', 'keygen', "$tmp/authority.key" ]);
chomp $pub;
my @common = ('--authority', 'authority', '--licensee', 'bank', '--dataset', 'pd.people',
	'--purposes', 'credit_assessment', '--columns', 'id,region');
my ($signed) = run_command([ 'licdata-sign', 'sign', "$tmp/authority.key", @common,
	'--unlicensed-columns', 'null' ]);
my ($doc, $sig) = split /\n/, $signed;
like($doc, qr/"unlicensed_columns": "null"/, 'the document carries unlicensed_columns');
my ($bad) = run_command([ 'licdata-sign', 'sign', "$tmp/authority.key", @common, '--row-filter', 'true',
	'--unlicensed-columns', 'mask' ]);
my ($bdoc, $bsig) = split /\n/, $bad;

$node->safe_psql('postgres', q{
CREATE EXTENSION licdata;
CREATE ROLE bank LOGIN;
CREATE SCHEMA pd;
CREATE TABLE pd.people (id int PRIMARY KEY, name text, region text);
INSERT INTO pd.people VALUES (1, 'a', 'bj'), (2, 'b', 'sh');
SELECT licdata.publish('pd.people');
SELECT licdata.register_licensee('bank', 'Bank');
});
sub q_ { my $s = shift; $s =~ s/'/''/g; return "'$s'"; }
$node->safe_psql('postgres', "SELECT licdata.add_authority('authority', " . q_($pub) . ")");

my $id = $node->safe_psql('postgres', "SELECT licdata.install_licence(" . q_($doc) . "::jsonb, " . q_($sig) . ")");
is($node->safe_psql('postgres', "SELECT unlicensed_columns FROM licdata.licences WHERE id = $id"),
	'null', 'the installed licence serves other columns as NULL');
is($node->safe_psql('postgres', q{SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_attribute a
	WHERE a.attrelid = 'pd.people'::regclass AND a.attnum > 0 AND has_column_privilege('bank', a.attrelid, a.attnum, 'SELECT')}),
	'id,region', 'the licensee holds SELECT on exactly the licensed columns');
is($node->safe_psql('postgres', "SET licdata.purpose = 'credit_assessment'; SELECT * FROM pd.people ORDER BY id",
	extra_params => [ '-U', 'bank' ]), "1||bj\n2||sh", 'SELECT * is served, name as NULL');

my ($ret, $out, $err) = $node->psql('postgres',
	"SELECT licdata.install_licence(" . q_($bdoc) . "::jsonb, " . q_($bsig) . ")");
like($err, qr/invalid value 'mask' for unlicensed_columns/, 'a bad unlicensed_columns value is refused');

$node->stop;
done_testing();
