# test/t/050_race_copy_audit.pl -- pg_dump of a published table is audited.
#
# pg_dump reads each table with COPY ... TO stdout, as a superuser (or any
# role that row-level security does not apply to): no executor runs, so the
# hooks that audit an operator's SELECT never saw it.  Every read of a
# dataset by an operator or superuser gets an audit row (SPEC, second wave):
# here a plain pg_dump, a pg_dump of the data only and a pg_dump -Fc each
# leave one operator audit row per published table dumped, with the rows
# read; a table that is not published leaves none.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('copy_audit');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'licdata'\n"
	  . "licdata.database = 'postgres'\n"
	  . "licdata.flush_interval = '100ms'\n");
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA pd;
CREATE TABLE pd.people (id integer PRIMARY KEY, name text);
INSERT INTO pd.people SELECT g, 'person ' || g FROM generate_series(1, 7) g;
CREATE TABLE pd.firms (id integer, region text) PARTITION BY LIST (region);
CREATE TABLE pd.firms_bj PARTITION OF pd.firms FOR VALUES IN ('bj');
CREATE TABLE pd.firms_sh PARTITION OF pd.firms FOR VALUES IN ('sh');
INSERT INTO pd.firms VALUES (1, 'bj'), (2, 'sh'), (3, 'sh');
CREATE TABLE pd.notes (id integer);
INSERT INTO pd.notes VALUES (1);
SELECT licdata.publish('pd.people');
SELECT licdata.publish('pd.firms');
});

# The operator audit rows of COPY statements so far, as "dataset:rows" lines.
sub copy_audits
{
	$node->safe_psql('postgres', 'SELECT licdata.flush()');
	return $node->safe_psql(
		'postgres', q{
SELECT string_agg(dataset_names[1] || ':' || rows, ' ' ORDER BY dataset_names[1], rows)
  FROM licdata.audit_log WHERE kind = 'operator' AND statement ~ '^COPY '});
}

is(copy_audits(), '', 'no COPY audited before the dumps');

my $out = "${PostgreSQL::Test::Utils::tmp_check}/copy_audit.sql";
$node->command_ok([ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $out ],
	'pg_dump of the database');
like(slurp_file($out), qr/person 7/, 'the dump holds the published rows');
is(copy_audits(), 'pd.firms:1 pd.firms:2 pd.people:7',
	'pg_dump: one audit row per published table (and partition) it copied, with its rows');

$node->command_ok(
	[ 'pg_dump', '-d', $node->connstr('postgres'), '--data-only', '-t', 'pd.people', '-f', $out ],
	'pg_dump --data-only of one table');
is(copy_audits(), 'pd.firms:1 pd.firms:2 pd.people:7 pd.people:7',
	'pg_dump --data-only -t: audited');

$node->command_ok(
	[ 'pg_dump', '-d', $node->connstr('postgres'), '-Fc', '-t', 'pd.notes', '-f', "$out.fc" ],
	'pg_dump -Fc of a table that is not published');
is(copy_audits(), 'pd.firms:1 pd.firms:2 pd.people:7 pd.people:7',
	'a table that is not published is not audited');

my $me = $node->safe_psql('postgres', 'SELECT current_user');
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(DISTINCT role_name || '/' || kind || '/' || decision, ' ')
			FROM licdata.audit_log WHERE statement ~ '^COPY '}),
	"$me/operator/allow",
	'audited as the superuser pg_dump ran as, an operator read');

$node->stop;
done_testing();
