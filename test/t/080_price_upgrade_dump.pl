# test/t/080_price_upgrade_dump.pl -- prices across ALTER EXTENSION UPDATE and
# pg_dump / pg_restore.
#
# Node A: licdata 1.0 installed; a dataset with list prices, a licensee whose
# analyst runs a statement (billed at the flat price by 1.0's invoice).
# ALTER EXTENSION licdata UPDATE to 1.1: the same invoice amount, usage.calls
# there (0), licdata_authority and licdata.price_list there.  Then a plan (not
# retroactive: the first statement keeps the list price), a second statement
# priced by the plan, a ceiling set by the authority, a past month closed.
#
# Dump A (pg_dump -Fc, roles), restore into node B (A's master key; the
# three-step restore test/t/010_dump_restore.pl explains).  Checked on B: plans,
# ceilings, closed months and their frozen lines, invoiced records equal A's;
# invoice_lines of the open and the closed month equal A's; the ceiling is
# still enforced.
use strict;
use warnings;

use File::Copy;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $conf = "shared_preload_libraries = 'licdata'\n"
  . "licdata.database = 'postgres'\n"
  . "licdata.flush_interval = '100ms'\n";

my $node_a = PostgreSQL::Test::Cluster->new('price_a');
$node_a->init;
$node_a->append_conf('postgresql.conf', $conf);
$node_a->start;

$node_a->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata VERSION '1.0';
CREATE ROLE pu_bank NOLOGIN;
CREATE ROLE pu_analyst LOGIN IN ROLE pu_bank;
CREATE SCHEMA pd;
CREATE TABLE pd.t (id integer PRIMARY KEY, v text);
INSERT INTO pd.t SELECT g, 'v' || g FROM generate_series(1, 20) g;
SELECT licdata.publish('pd.t', 'price test', 0.50, 0.10);
SELECT licdata.register_licensee('pu_bank', 'PU Bank');
SELECT licdata.grant_licence('pu_bank', 'pd.t', ARRAY['credit']);
});
sub analyst_reads
{
	my ($n) = @_;
	$node_a->safe_psql('postgres',
		"SET licdata.purpose = 'credit'; SELECT * FROM pd.t WHERE id <= $n",
		extra_params => [ '-U', 'pu_analyst' ]);
	$node_a->safe_psql('postgres', 'SELECT licdata.flush()');
}
# Under 1.0 SQL objects the 1.1 library serves no licensee (it refuses until
# ALTER EXTENSION licdata UPDATE): the statement 1.0 billed is put in as 1.0's
# worker wrote it, 3 rows at 0.50 + 3 x 0.10.
$node_a->safe_psql(
	'postgres', q{
BEGIN;
SELECT licdata._set_records_writable(true);
INSERT INTO licdata.usage (at, licence_id, licensee, dataset, purpose, rows, rows_delivered, rows_in_functions,
						   rows_aggregated, outcome, amount, journal_ref)
SELECT now(), l.id, l.licensee, l.dataset, 'credit', 3, 3, 0, 0, 'ok', 0.80, 'pu-1.0' FROM licdata.licences l;
COMMIT;
});
my $period = "'pu_bank', now() - interval '1 day', now() + interval '1 day'";
is($node_a->safe_psql('postgres', "SELECT sum(amount) FROM licdata.invoice($period)"),
	'0.80', '1.0: the statement costs 0.50 + 3 x 0.10');

$node_a->safe_psql('postgres', 'ALTER EXTENSION licdata UPDATE');
is($node_a->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'licdata'"),
	'1.1', 'updated to 1.1');
is($node_a->safe_psql('postgres', "SELECT sum(amount) FROM licdata.invoice($period)"),
	'0.80', '1.1: the same invoice amount for the same record');
is($node_a->safe_psql('postgres', 'SELECT sum(calls) FROM licdata.usage'), '0',
	'usage.calls added, 0 for the old record');
is( $node_a->safe_psql(
		'postgres', "SELECT count(*) FROM licdata.price_list WHERE name = 'pd.t'",
		extra_params => [ '-U', 'pu_analyst' ]),
	'1',
	'the public price list, read by a licensee');

# a plan from now on; the authority's ceiling; a second statement
$node_a->safe_psql('postgres', 'CREATE ROLE pu_auth LOGIN IN ROLE licdata_authority');
$node_a->safe_psql('postgres',
	q{SELECT licdata.set_price_plan(l.id, '{"per_query": 2, "per_row": 0.05}') FROM licdata.licences l});
$node_a->safe_psql('postgres',
	q{SELECT licdata.set_price_ceiling('pd.t', '{"per_query": 3, "per_row": 0.2}')},
	extra_params => [ '-U', 'pu_auth' ]);
analyst_reads(5);
# 0.50 + 0.30 at the list prices (made before the plan), 2.00 + 5 x 0.05 by the plan
is($node_a->safe_psql('postgres', "SELECT sum(amount) FROM licdata.invoice_lines('pu_bank', current_date)"),
	'3.05', 'the plan prices the second statement only (not retroactive)');

# a past month with a record, closed
$node_a->safe_psql(
	'postgres', q{
BEGIN;
SELECT licdata_internal._set_records_writable(true);
INSERT INTO licdata.usage (at, licence_id, licensee, dataset, purpose, rows, rows_delivered, rows_in_functions,
						   rows_aggregated, outcome, amount, journal_ref)
SELECT '2020-01-15 UTC', l.id, l.licensee, l.dataset, 'credit', 4, 4, 0, 0, 'ok', 0, 'pu-past' FROM licdata.licences l;
COMMIT;
SELECT licdata.close_month('2020-01-01');
});
is($node_a->safe_psql('postgres', "SELECT sum(amount) FROM licdata.invoice_lines('pu_bank', '2020-01-01')"),
	'0.90', 'the closed month: 0.50 + 4 x 0.10');

my %state_sql = (
	plans => 'SELECT l.licensee, pp.effective_from, pp.plan FROM licdata.price_plans pp '
	  . 'JOIN licdata.licences l ON l.id = pp.licence_id ORDER BY 1, 2',
	ceilings => 'SELECT dataset, product, ceiling FROM licdata.price_ceilings ORDER BY 1',
	closed => 'SELECT month FROM licdata.closed_months ORDER BY 1',
	frozen => 'SELECT month, licensee, line_no, item, quantity, unit_price, amount, for_month '
	  . 'FROM licdata.invoice_closed_lines ORDER BY 1, 2, 3',
	invoiced => 'SELECT u.journal_ref, iu.month FROM licdata.invoiced_usage iu '
	  . 'JOIN licdata.usage u ON u.id = iu.usage_id ORDER BY 1',
	open_month => "SELECT * FROM licdata.invoice_lines('pu_bank', current_date)",
	closed_month => "SELECT * FROM licdata.invoice_lines('pu_bank', '2020-01-01')");
my %state_a = map { $_ => $node_a->safe_psql('postgres', $state_sql{$_}) } keys %state_sql;
isnt($state_a{frozen}, '', 'A has frozen lines');
isnt($state_a{plans}, '', 'A has a plan');

my $dump = $node_a->basedir . '/price.dump';
my $roles = $node_a->basedir . '/roles.sql';
$node_a->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node_a->connstr('postgres') ], 'pg_dump A');
$node_a->command_ok([ 'pg_dumpall', '--roles-only', '-f', $roles, '-d', $node_a->connstr('postgres') ],
	'pg_dumpall --roles-only A');

my $node_b = PostgreSQL::Test::Cluster->new('price_b');
$node_b->init;
$node_b->append_conf('postgresql.conf', $conf);
mkdir($node_b->data_dir . '/pg_licdata', 0700) or die "mkdir: $!";
copy($node_a->data_dir . '/pg_licdata/master.key', $node_b->data_dir . '/pg_licdata/master.key')
  or die "copy master key: $!";
chmod(0600, $node_b->data_dir . '/pg_licdata/master.key');
$node_b->start;
$node_b->psql('postgres', PostgreSQL::Test::Utils::slurp_file($roles), on_error_stop => 0);
my $steps_err = '';
for my $step ([ '--section=pre-data' ], [ '--data-only', '--disable-triggers' ], [ '--section=post-data' ])
{
	my ($out, $err) = ('', '');
	local $ENV{PGHOST} = $node_b->host;
	local $ENV{PGPORT} = $node_b->port;
	IPC::Run::run [ 'pg_restore', '-d', 'postgres', @$step, $dump ], '>', \$out, '2>', \$err;
	$steps_err .= $err;
}
is($steps_err, '', 'pg_restore into B: no error');
for my $k (sort keys %state_sql)
{
	is($node_b->safe_psql('postgres', $state_sql{$k}), $state_a{$k}, "B: $k equals A's");
}
my ($ret, $out, $err) = $node_b->psql('postgres',
	q{SELECT licdata.set_price_plan(l.id, '{"per_row": 0.5}', now() + interval '1 day') FROM licdata.licences l});
like($err, qr/per_row price 0.5 of the plan of licence \d+ is above the ceiling 0.2/,
	'B: the ceiling is still enforced');

$node_a->stop;
$node_b->stop;
done_testing();
