# test/t/022_metering_concurrency.pl -- metering under concurrency: 8
# licensee clients x 2,000 statements (pgbench) give exactly 16,000 usage
# rows with the exact row sum and no journal record moved twice; and day
# quotas shared by concurrent clients are exact: the rows (or queries)
# served add up to the quota, never more.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('metering_concurrency');
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
CREATE SCHEMA cc;
CREATE TABLE cc.items (id integer PRIMARY KEY, val text);
INSERT INTO cc.items SELECT g, 'v' || g FROM generate_series(1, 10000) g;
ANALYZE cc.items;
SELECT licdata.publish('cc.items', 'concurrency test', 0, 1);
CREATE ROLE cc_lic LOGIN;
SELECT licdata.register_licensee('cc_lic', 'Concurrent Ltd');
SELECT licdata.grant_licence('cc_lic', 'cc.items', ARRAY['bench'], price_per_query => 1, price_per_row => 0.01);
SELECT licdata.grant_licence('cc_lic', 'cc.items', ARRAY['rows_quota'], max_rows_per_day => 50005);
SELECT licdata.grant_licence('cc_lic', 'cc.items', ARRAY['queries_quota'], max_queries_per_day => 3000);
});

# Every statement returns exactly 10 rows.
my $script = q{\set a random(1, 9991)
SELECT id, val FROM cc.items WHERE id BETWEEN :a AND :a + 9;
};

sub bench
{
	my ($purpose, $mode, $clients, $xacts, $expect_status, $name) = @_;
	local $ENV{PGOPTIONS} = "-c licdata.purpose=$purpose";
	my $t0 = time;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run [
		'pgbench', '-n', '-U', 'cc_lic', '-M', $mode, '-c', $clients, '-j', '2',
		'-t', $xacts, '-f', "$PostgreSQL::Test::Utils::tmp_check/cc_bench.sql",
		'-h', $node->host, '-p', $node->port, 'postgres'
	  ],
	  '>', \$stdout, '2>', \$stderr;
	my $status = $? >> 8;
	is($status, $expect_status, "$name: pgbench exits with $expect_status")
	  or diag("stdout: $stdout\nstderr: $stderr");
	note sprintf("%s: %.1f s", $name, time - $t0);
	return ($stdout, $stderr);
}

sub flush
{
	my ($name) = @_;
	my $t0 = time;
	is($node->safe_psql('postgres', 'SELECT licdata.flush(120)'), 't', "$name: flush completes");
	note sprintf("%s: flush %.1f s", $name, time - $t0);
}

PostgreSQL::Test::Utils::append_to_file("$PostgreSQL::Test::Utils::tmp_check/cc_bench.sql", $script);

# 8 clients x 2,000 statements, extended protocol with prepared statements.
my ($out) = bench('bench', 'prepared', 8, 2000, 0, '8 x 2000');
like($out, qr/number of transactions actually processed: 16000\/16000/, 'pgbench ran 16,000 statements');
flush('8 x 2000');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), sum(rows), count(DISTINCT journal_ref), count(*) FILTER (WHERE outcome <> 'ok'),
       sum(amount) FROM licdata.usage WHERE purpose = 'bench'}),
	'16000|160000|16000|0|17600.00',
	'16,000 usage rows, 160,000 rows, 16,000 distinct journal records, all ok, amount 17,600');
is( $node->safe_psql(
		'postgres', q{
SELECT count(*), count(DISTINCT journal_ref), sum(rows) FROM licdata.audit_log
 WHERE purpose = 'bench' AND decision = 'allow'}),
	'16000|16000|160000',
	'16,000 audit rows');
is( $node->safe_psql(
		'postgres', q{SELECT count(DISTINCT session_user_name), count(DISTINCT split_part(journal_ref, '-', 2))
		                FROM licdata.usage WHERE purpose = 'bench'}),
	'1|8',
	'written by 8 backends');

# A rows-per-day quota shared by 8 clients wanting 80,000 rows: exactly 50,005
# are served and recorded (so at least one statement of 10 rows is cut short
# mid-stream).  Each client stops at its first refusal (LD006).
bench('rows_quota', 'simple', 8, 1000, 2, 'rows quota');
flush('rows quota');
is( $node->safe_psql(
		'postgres', q{SELECT sum(rows) FROM licdata.usage WHERE purpose = 'rows_quota'}),
	'50005', 'rows quota: exactly 50,005 rows recorded');
# A statement refused once it had begun: its usage row (outcome error,
# LD006, the rows it had sent) and its audit row, the denial, are one
# journal record.
my ($cut, $cut_denied, $errors) = split /\|/, $node->safe_psql(
	'postgres', q{
SELECT count(*), count(*) FILTER (WHERE a.decision = 'deny' AND a.sqlstate = 'LD006' AND a.rows = u.rows),
       count(*) FILTER (WHERE u.outcome = 'error')
  FROM licdata.usage u JOIN licdata.audit_log a USING (journal_ref)
 WHERE u.purpose = 'rows_quota' AND u.sqlstate = 'LD006'});
ok($cut > 0, "rows quota: $cut statement(s) cut short mid-stream by the quota");
is($cut_denied, $cut, 'rows quota: each has its audit row, a denial with the same rows');
is($errors, $cut, 'rows quota: each ended in error');
is( $node->safe_psql(
		'postgres', q{SELECT rows FROM licdata_internal._quota_used((SELECT id FROM licdata.licences WHERE 'rows_quota' = ANY (purposes)))}),
	'50005', 'rows quota: the shared counter holds 50,005, nothing left reserved');

# A queries-per-day quota shared by 8 clients wanting 4,000 queries: exactly 3,000.
bench('queries_quota', 'simple', 8, 500, 2, 'queries quota');
flush('queries quota');
is( $node->safe_psql(
		'postgres', q{SELECT count(*), sum(rows) FROM licdata.usage WHERE purpose = 'queries_quota'}),
	'3000|30000', 'queries quota: exactly 3,000 statements served and recorded');

is($node->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'), 't', 'the audit chain verifies');

$node->stop;
done_testing();
