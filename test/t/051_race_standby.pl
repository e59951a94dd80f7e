# test/t/051_race_standby.pl -- a hot standby that cannot hand its records to
# the primary serves licensees nothing, fast.
#
# A licensee statement served on a standby whose usage and audit records
# cannot reach the primary would be served unmetered -- which is what the old
# code did for every standby -- and a licence with a day quota made it wait
# 30 s for quota counters no worker would build.  Here the standby's
# licdata.primary_conninfo names a port nothing listens on and
# licdata.standby_grace is 0: a licensee statement that reaches a dataset
# (directly, through a view, a function or a cursor), licdata.token() and a
# data product call are refused at once with LD009 and a hint that names the
# cause.  Statements that reach no dataset, and operators' reads, are served
# as before; after promotion licensees are served again.  (A standby that
# reaches the primary serves licensees: test/t/110_replicas.pl.)
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $conf = "shared_preload_libraries = 'licdata'\n"
  . "licdata.database = 'postgres'\n"
  . "licdata.flush_interval = '100ms'\n";

my $primary = PostgreSQL::Test::Cluster->new('sb_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $conf);
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE ROLE sb_bank NOLOGIN;
CREATE ROLE sb_user LOGIN IN ROLE sb_bank;
CREATE SCHEMA pd;
GRANT USAGE ON SCHEMA pd TO sb_user;
CREATE TABLE pd.people (id integer PRIMARY KEY, code text, region text);
INSERT INTO pd.people SELECT g, 'C' || g, CASE WHEN g % 2 = 0 THEN 'bj' ELSE 'sh' END
  FROM generate_series(1, 20) g;
CREATE VIEW pd.people_v AS SELECT id, region FROM pd.people;
GRANT SELECT ON pd.people_v TO sb_user;
CREATE FUNCTION pd.n() RETURNS bigint LANGUAGE plpgsql AS
	$$DECLARE c bigint; BEGIN SELECT count(*) INTO c FROM pd.people; RETURN c; END$$;
SELECT licdata.publish('pd.people');
SELECT licdata.register_licensee('sb_bank', 'Standby Bank');
SELECT licdata.grant_licence('sb_bank', 'pd.people', ARRAY['research'], row_filter => 'region = ''bj''');
SELECT licdata.grant_licence('sb_bank', 'pd.people', ARRAY['quota'], max_queries_per_day => 100);
SELECT licdata.set_mask('pd.people', 'code', 'pseudonym', '{"length": 8}');
CREATE FUNCTION pd.bj_count() RETURNS bigint LANGUAGE sql STABLE
	AS $$SELECT count(*) FROM pd.people WHERE region = 'bj'$$;
SELECT licdata.publish_product('pd.bj_count()', 'count of Beijing people', 1.00);
SELECT licdata.grant_product_licence('sb_bank', 'pd.bj_count()', ARRAY['research']);
});

# A licensee statement on NODE: (exit code, stdout, stderr, seconds).
sub as_licensee
{
	my ($node, $purpose, $sql) = @_;
	my ($out, $err);
	my $t0 = time;
	my $rc = $node->psql(
		'postgres', "\\set VERBOSITY verbose\nSET licdata.purpose = '$purpose';\n$sql",
		extra_params => [ '-U', 'sb_user' ],
		stdout => \$out,
		stderr => \$err,
		on_error_stop => 1);
	return ($rc, $out, $err, time - $t0);
}

my ($rc, $out, $err, $secs) = as_licensee($primary, 'research', 'SELECT count(*) FROM pd.people');
is($out, '10', 'the primary serves the licensee its licensed rows');

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('sb_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->append_conf('postgresql.conf',
	"hot_standby = on\nlicdata.primary_conninfo = 'host=127.0.0.1 port=1 connect_timeout=1'\n"
	  . "licdata.standby_grace = 0\n");
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

my @cases = (
	[ 'research', 'SELECT count(*) FROM pd.people', 'a direct read' ],
	[ 'research', 'SELECT count(*) FROM pd.people_v', 'a read through a view' ],
	[ 'research', 'SELECT pd.n()', 'a read in a function' ],
	[ 'research', 'DECLARE c CURSOR WITH HOLD FOR SELECT id FROM pd.people; FETCH 1 FROM c', 'a cursor' ],
	[ 'quota', 'SELECT count(*) FROM pd.people', 'a licence with a day quota' ],
	[ 'research', q{SELECT licdata.token('pd.people', 'code', 'C2')}, 'licdata.token()' ],
	[ 'research', 'SELECT pd.bj_count()', 'a data product call' ],);
foreach my $c (@cases)
{
	my ($purpose, $sql, $what) = @$c;
	($rc, $out, $err, $secs) = as_licensee($standby, $purpose, $sql);
	isnt($rc, 0, "standby: $what is refused");
	like($err, qr/ERROR:  LD009: could not hand metering records to the primary, so the query is refused/,
		"standby: $what: LD009");
	like($err, qr/HINT:  .*(could not connect to the primary|has not handed records to the primary)/,
		"standby: $what: the hint names the cause");
	is($out // '', '', "standby: $what: no row served");
	cmp_ok($secs, '<', 10, "standby: $what: refused at once (${\ sprintf('%.1f', $secs)} s)");
}

($rc, $out, $err) = as_licensee($standby, 'research', 'SELECT 1 + 1');
is($out, '2', 'standby: a licensee statement that reaches no dataset is served');
is($standby->safe_psql('postgres', 'SELECT count(*) FROM pd.people'), '20', 'standby: an operator reads the dataset');

# Promoted, it is a primary: licensees are served (and metered) again.
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'promotion';
($rc, $out, $err) = as_licensee($standby, 'research', 'SELECT count(*) FROM pd.people');
is($out, '10', 'promoted: the licensee is served again');

$standby->stop;
$primary->stop;
done_testing();
