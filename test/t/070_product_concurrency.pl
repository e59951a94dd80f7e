# test/t/070_product_concurrency.pl -- data products under concurrency: 6
# licensee clients calling a product (pgbench, prepared) give one usage row
# per statement with exactly one call each; and a day quota of calls shared
# by the clients is exact (the calls served add up to max_calls_per_day,
# never more), also after a restart (the counters are rebuilt from usage).
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('product_concurrency');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '100ms'
max_connections = 30
});
$node->start;

$node->safe_psql(
	'postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION licdata;
CREATE SCHEMA pc;
CREATE TABLE pc.people (id integer PRIMARY KEY, salary numeric);
INSERT INTO pc.people SELECT g, g * 10 FROM generate_series(1, 1000) g;
SELECT licdata.publish('pc.people', 'people');
CREATE FUNCTION pc.rich(p integer) RETURNS boolean LANGUAGE sql
	AS $$ SELECT salary > 5000 FROM pc.people WHERE id = p $$;
SELECT licdata.publish_product('pc.rich(integer)', 'point check', 0.5, 0.1);
CREATE ROLE pc_lic LOGIN;
SELECT licdata.register_licensee('pc_lic', 'Product Client');
SELECT licdata.grant_product_licence('pc_lic', 'pc.rich(integer)', ARRAY['bench']);
SELECT licdata.grant_product_licence('pc_lic', 'pc.rich(integer)', ARRAY['quota'], max_calls_per_day => 777);
});

PostgreSQL::Test::Utils::append_to_file("$PostgreSQL::Test::Utils::tmp_check/pc_bench.sql",
	qq{\\set p random(1, 1000)\nSELECT pc.rich(:p);\n});

sub bench
{
	my ($purpose, $clients, $xacts) = @_;
	local $ENV{PGOPTIONS} = "-c licdata.purpose=$purpose";
	my ($stdout, $stderr);
	IPC::Run::run [
		'pgbench', '-n', '-U', 'pc_lic', '-M', 'prepared', '-c', $clients, '-j', '2',
		'-t', $xacts, '-f', "$PostgreSQL::Test::Utils::tmp_check/pc_bench.sql",
		'-h', $node->host, '-p', $node->port, 'postgres'
	  ],
	  '>', \$stdout, '2>', \$stderr;
	return ($? >> 8, $stdout, $stderr);
}

my ($rc, $out, $err) = bench('bench', 6, 500);
is($rc, 0, '6 x 500 product calls: pgbench succeeds') or diag($err);
is($node->safe_psql('postgres', 'SELECT licdata.flush(120)'), 't', 'flush completes');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*), sum(calls), sum(rows), sum(amount), count(DISTINCT journal_ref)
		    FROM licdata.usage WHERE purpose = 'bench' AND mode = 'product'}),
	'3000|3000|3000|1800.0|3000',
	'3,000 usage rows, one call and one row each, amount 3,000 x 0.6, none doubled');

# the quota: 6 clients x 200 attempts against 777 calls a day
($rc, $out, $err) = bench('quota', 6, 200);
isnt($rc, 0, 'the quota stops pgbench');
like($err, qr/quota of licence \d+ reached: calls per day/, 'with LD006 calls per day');
is($node->safe_psql('postgres', 'SELECT licdata.flush(120)'), 't', 'flush completes');
is( $node->safe_psql(
		'postgres',
		q{SELECT sum(calls) FROM licdata.usage WHERE purpose = 'quota' AND outcome = 'ok'}),
	'777', 'the calls served add up to max_calls_per_day exactly');

# after a restart the counter is rebuilt from usage: no call left today
$node->restart;
my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', 'SELECT pc.rich(1)',
	extra_params => [ '-U', 'pc_lic' ],
	on_error_stop => 0,
	connstr => $node->connstr('postgres') . ' options=\'-c licdata.purpose=quota\'');
like($stderr, qr/calls per day/, 'after a restart the day quota of calls is still used up');

$node->stop;
done_testing();
