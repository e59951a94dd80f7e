# test/t/004_signed_licence.pl -- the authority's signed licence: keygen and
# sign with tools/licdata-sign, install with licdata.install_licence; a
# tampered document, a wrong key, a replay and a bad key are refused.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('signed');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'licdata'\nlicdata.database = 'postgres'\n");
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;
my ($pub, $err) = run_command([ 'licdata-sign', 'keygen', "$tmp/authority.key" ]);
chomp $pub;
like($pub, qr{^[A-Za-z0-9+/]{43}=$}, 'keygen prints a base64 Ed25519 public key');
ok(-f "$tmp/authority.key" && ((stat("$tmp/authority.key"))[2] & 0777) == 0600,
	'secret key file written with mode 0600');
my ($other_pub) = run_command([ 'licdata-sign', 'keygen', "$tmp/other.key" ]);

my ($signed) = run_command([
	'licdata-sign', 'sign', "$tmp/authority.key",
	'--authority', '国家数据局', '--licensee', 'bank', '--dataset', 'pd.people',
	'--purposes', 'credit_assessment,risk', '--columns', 'id,name',
	'--row-filter', "region = 'bj' AND name <> 'x\"y'",
	'--max-rows-per-query', '100', '--require-consent-ref',
	'--price-per-query', '0.50', '--valid-until', '2030-01-01T00:00:00Z' ]);
my ($doc, $sig) = split /\n/, $signed;
ok($doc =~ /^\{/ && length($sig) == 88, 'sign prints the document and a signature');
my ($forged) = run_command([
	'licdata-sign', 'sign', "$tmp/other.key",
	'--authority', '国家数据局', '--licensee', 'bank', '--dataset', 'pd.people',
	'--purposes', 'credit_assessment' ]);
my ($fdoc, $fsig) = split /\n/, $forged;

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

$node->safe_psql('postgres', "SELECT licdata.add_authority('国家数据局', " . q_($pub) . ")");
my $id = $node->safe_psql('postgres', "SELECT licdata.install_licence(" . q_($doc) . "::jsonb, " . q_($sig) . ")");
is($id, '1', 'signed licence installed');
is($node->safe_psql('postgres',
	"SELECT licensee::text || '|' || array_to_string(purposes, ',') || '|' || array_to_string(columns, ',') || '|' || row_filter || '|' || max_rows_per_query || '|' || require_consent_ref || '|' || price_per_query || '|' || authority FROM licdata.licences WHERE id = 1"),
	qq{bank|credit_assessment,risk|id,name|region = 'bj' AND name <> 'x"y'|100|true|0.50|国家数据局},
	'the licence carries the document\'s terms and its authority');
is($node->safe_psql('postgres', "SET licdata.purpose = 'risk'; SET licdata.consent_ref = 'A-1'; SELECT string_agg(name, ',') FROM pd.people",
	extra_params => [ '-U', 'bank' ]), 'a', 'the licensee is served under it');

my ($ret, $out, $stderr) = $node->psql('postgres',
	"SELECT licdata.install_licence(" . q_($doc) . "::jsonb, " . q_($sig) . ")");
like($stderr, qr/already installed/, 'a replayed document is refused');

($ret, $out, $stderr) = $node->psql('postgres',
	"SELECT licdata.install_licence(jsonb_set(" . q_($doc) . "::jsonb, '{max_rows_per_query}', '1000000'), " . q_($sig) . ")");
like($stderr, qr/does not verify/, 'a tampered document is refused');

($ret, $out, $stderr) = $node->psql('postgres',
	"SELECT licdata.install_licence(" . q_($fdoc) . "::jsonb, " . q_($fsig) . ")");
like($stderr, qr/does not verify/, 'a document signed with another key is refused');

($ret, $out, $stderr) = $node->psql('postgres', "SELECT licdata.add_authority('x', 'not a key')");
like($stderr, qr/not a base64 Ed25519 public key/, 'a malformed public key is refused');

($ret, $out, $stderr) = $node->psql('postgres',
	"SELECT licdata.install_licence('{\"authority\": \"nobody\", \"licensee\": \"bank\", \"dataset\": \"pd.people\", \"purposes\": [\"x\"]}', " . q_($sig) . ")");
like($stderr, qr/unknown licensing authority/, 'an unknown authority is refused');

is($node->safe_psql('postgres', 'SELECT count(*) FROM licdata.licences'), '1', 'nothing else was installed');

$node->stop;
done_testing();
