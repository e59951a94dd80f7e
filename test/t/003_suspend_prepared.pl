# test/t/003_suspend_prepared.pl -- an operator suspends a licence while a
# licensee's session holds a prepared statement (and a generic plan): the
# next execution is refused; resuming restores it; a cursor opened later
# sees the change; an expired licence stops the prepared statement.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('suspend');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'licdata'\nlicdata.database = 'postgres'\nplan_cache_mode = force_generic_plan\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION licdata;
CREATE ROLE bank LOGIN;
CREATE SCHEMA pd;
CREATE TABLE pd.people (id int PRIMARY KEY, name text, region text);
INSERT INTO pd.people SELECT g, 'n' || g, CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END FROM generate_series(1, 10) g;
SELECT licdata.publish('pd.people');
SELECT licdata.register_licensee('bank', 'Bank');
SELECT licdata.grant_licence('bank', 'pd.people', ARRAY['credit_assessment'], row_filter => 'region = ''bj''');
});

my $s = $node->background_psql('postgres', extra_params => [ '-U', 'bank' ], on_error_stop => 0);
$s->query_safe("SET licdata.purpose = 'credit_assessment'");
$s->query_safe('PREPARE q AS SELECT count(*) FROM pd.people');
is($s->query_safe('EXECUTE q'), '5', 'prepared statement served');
is($s->query_safe('EXECUTE q'), '5', 'again (generic plan)');

$node->safe_psql('postgres', 'SELECT licdata.suspend_licence(1)');
my $r = $s->query('EXECUTE q');
like($s->{stderr}, qr/licence 1 for dataset pd.people is suspended/, 'suspension applies to the prepared statement');
$s->{stderr} = '';

$node->safe_psql('postgres', 'SELECT licdata.resume_licence(1)');
is($s->query_safe('EXECUTE q'), '5', 'resumed');

# The row filter changes: the prepared statement follows at once.
$node->safe_psql('postgres', "UPDATE licdata.licences SET row_filter = 'id <= 4' WHERE id = 1");
is($s->query_safe('EXECUTE q'), '4', 'a changed row filter applies to the prepared statement');

# Inside an open transaction the change is seen at the next statement too.
$s->query_safe('BEGIN');
is($s->query_safe('EXECUTE q'), '4', 'in a transaction');
$node->safe_psql('postgres', 'SELECT licdata.suspend_licence(1)');
$s->query('DECLARE c CURSOR FOR SELECT id FROM pd.people');
like($s->{stderr}, qr/suspended/, 'a cursor opened after the suspension is refused');
$s->{stderr} = '';
$s->query_safe('ROLLBACK');
$node->safe_psql('postgres', 'SELECT licdata.resume_licence(1)');

# Expiry passes while the statement stays prepared.
$node->safe_psql('postgres', "UPDATE licdata.licences SET valid_until = now() + interval '2 seconds' WHERE id = 1");
is($s->query_safe('EXECUTE q'), '4', 'valid until two seconds from now');
sleep 3;
$s->query('EXECUTE q');
like($s->{stderr}, qr/has expired/, 'expired licence refuses the prepared statement');
$s->{stderr} = '';

# The purpose switches under a prepared statement, also with SET LOCAL.
$node->safe_psql('postgres', 'UPDATE licdata.licences SET valid_until = NULL WHERE id = 1');
$s->query_safe("SET licdata.purpose = 'marketing'");
$s->query('EXECUTE q');
like($s->{stderr}, qr/purpose "marketing" is not licensed/, 'purpose change applies to the prepared statement');
$s->{stderr} = '';
$s->query_safe("BEGIN; SET LOCAL licdata.purpose = 'credit_assessment'");
is($s->query_safe('EXECUTE q'), '4', 'SET LOCAL purpose inside a transaction (pooler style)');
$s->query_safe('COMMIT');
$s->query('EXECUTE q');
like($s->{stderr}, qr/not licensed/, 'after COMMIT the session purpose is back');

$s->quit;
$node->stop;
done_testing();
