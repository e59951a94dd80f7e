# test/t/030_sec_lookup_quota.pl -- the per-licence lookup quota
# (max_lookups_per_day) holds exactly across concurrent sessions: 4 clients x
# 200 licdata.token() statements against a quota of 500 are served exactly
# 500 lookups, the rest refused with LD006; every lookup served is billed as
# a row in licdata.usage.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('sec_lookup_quota');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '100ms'
max_connections = 30
log_statement = none
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA lq;
CREATE TABLE lq.people (id integer PRIMARY KEY, id_number text);
INSERT INTO lq.people SELECT g, lpad(g::text, 18, '0') FROM generate_series(1, 100) g;
SELECT licdata.publish('lq.people');
CREATE ROLE lq_lic LOGIN;
SELECT licdata.register_licensee('lq_lic', 'Lookups Ltd');
SELECT licdata.grant_licence('lq_lic', 'lq.people', ARRAY['lookup'], max_lookups_per_day => 500);
SELECT licdata.set_mask('lq.people', 'id_number', 'pseudonym', '{"length": 16}');
});

# One lookup per statement, a different value each time.
my $script = q{\set v random(1, 1000000000)
SELECT licdata.token('lq.people', 'id_number', :v::text);
};
my $file = "$PostgreSQL::Test::Utils::tmp_check/lq_bench.sql";
open(my $fh, '>', $file) or die "$file: $!";
print $fh $script;
close $fh;

local $ENV{PGOPTIONS} = '-c licdata.purpose=lookup';
my ($stdout, $stderr);
IPC::Run::run [
	'pgbench', '-n', '-U', 'lq_lic', '-c', '4', '-j', '2', '-t', '200',
	'-f', $file, '-h', $node->host, '-p', $node->port, 'postgres'
  ],
  '>', \$stdout, '2>', \$stderr;
my $failed = () = $stderr =~ /quota of licence \d+ reached: lookups per day/g;
ok($failed > 0, "lookups past the quota are refused ($failed refusals seen)");
like($stderr, qr/LD006|lookups per day/, 'with the quota named');

is($node->safe_psql('postgres', 'SELECT licdata_internal._lookups_used(l.id) FROM licdata.licences l'),
	'500', 'the shared counter stops at the quota exactly');
ok($node->safe_psql('postgres', 'SELECT licdata.flush()') eq 't', 'records flushed');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE outcome = 'ok' AND rows = 1), sum(rows) FILTER (WHERE outcome = 'ok')
		    FROM licdata.usage}),
	'500|500',
	'exactly 500 lookups were served, each billed as one row');
my $left = $node->safe_psql('postgres',
	q{SELECT lookups_left_today FROM licdata.my_licences}, extra_params => [ '-U', 'lq_lic' ]);
is($left, '0', 'my_licences shows no lookups left');
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET licdata.purpose = 'lookup'; SELECT licdata.token('lq.people', 'id_number', '1')},
	extra_params => [ '-U', 'lq_lic' ]);
like($err, qr/lookups per day.*\n.*The limit is 500.*\n.*HINT:/s, 'one more is refused, with a hint');

$node->stop;
done_testing();
