# test/t/113_replica_failover_unreplayed.pl -- a standby promoted before it
# replayed the primary's commit of records it had handed over still bills
# them, once.
#
# A standby hands its records to the primary (licdata.primary_conninfo),
# which commits them; the standby learns of that commit only when it
# replays the primary's WAL.  Were it to forget the records as soon as the
# primary answers, a failover to it before that replay would lose them: the
# primary that has them is gone, and the promoted node never saw the
# commit.  Here the standby's WAL stream is cut (its primary_conninfo points
# nowhere) while hand-over still reaches the primary; 15 statements on the
# standby are handed over and committed on the primary; the primary is
# stopped; the standby is promoted.  The promoted node must bill the 15
# statements itself, each once, and bill the statements it had replayed
# (before the cut) no second time.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.node_name = 'primary'
licdata.flush_interval = '200ms'
log_statement = none
});
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA fo;
CREATE TABLE fo.items (id integer PRIMARY KEY, val text);
INSERT INTO fo.items SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT licdata.publish('fo.items', 'failover items', 1, 0.01);
CREATE ROLE fo_lic LOGIN;
SELECT licdata.register_licensee('fo_lic', 'Failover Reader Ltd');
SELECT licdata.grant_licence('fo_lic', 'fo.items', ARRAY['bi']);
CREATE ROLE fo_agent LOGIN IN ROLE licdata_replica;
});
$primary->backup('bk');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
my $conninfo = "host=" . $primary->host . " port=" . $primary->port . " user=fo_agent";
$standby->append_conf(
	'postgresql.conf', qq{
licdata.node_name = 'standby'
licdata.flush_interval = '200ms'
licdata.primary_conninfo = '$conninfo'
licdata.standby_grace = '600s'
});
$standby->start;
$primary->wait_for_catchup($standby);

sub statements
{
	my ($n, $from) = @_;
	my $sql = "SET licdata.purpose = 'bi';\n";
	$sql .= "SELECT val FROM fo.items WHERE id = $_;\n" for $from .. $from + $n - 1;
	return $sql;
}

# ---- before the cut: 5 statements handed over, moved, replayed here ----
my ($rc, $out, $err) = $standby->psql('postgres', statements(5, 1),
	extra_params => [ '-U', 'fo_lic' ], on_error_stop => 1);
is($rc, 0, '5 statements on the standby') or diag($err);
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) = 5 FROM licdata.usage WHERE node = 'standby'"),
	'the primary billed them');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', "SELECT count(*) FROM licdata.usage WHERE node = 'standby'"),
	'5', 'the standby replayed them');

# ---- the cut: WAL no longer reaches the standby; hand-over still does ----
$standby->append_conf('postgresql.conf', "primary_conninfo = 'host=/nonexistent port=1'\n");
$standby->reload;
$standby->poll_query_until('postgres',
	'SELECT NOT EXISTS (SELECT FROM pg_stat_wal_receiver WHERE status = \'streaming\')')
  or die 'the WAL receiver kept streaming';
my $replayed = $standby->safe_psql('postgres', 'SELECT pg_last_wal_replay_lsn()');

($rc, $out, $err) = $standby->psql('postgres', statements(15, 10),
	extra_params => [ '-U', 'fo_lic' ], on_error_stop => 1);
is($rc, 0, '15 statements on the standby after the cut') or diag($err);
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) = 20 FROM licdata.usage WHERE node = 'standby'"),
	'the primary committed and billed them (handed over)');
# a few more passes of the standby: it knows the primary has them
$standby->safe_psql('postgres', 'SELECT licdata.flush(60)');
$standby->safe_psql('postgres', 'SELECT licdata.flush(60)');
is($standby->safe_psql('postgres', 'SELECT pg_last_wal_replay_lsn()'), $replayed,
	'the standby replayed nothing since the cut');
is($standby->safe_psql('postgres', "SELECT count(*) FROM licdata.usage WHERE node = 'standby'"),
	'5', 'so its tables have only the 5 from before the cut');
cmp_ok(
	$standby->safe_psql('postgres', 'SELECT count(*) FROM pg_ls_dir(\'pg_licdata/journal\') f WHERE f LIKE \'%.jnl\''),
	'>', 0, 'and it keeps the journal that holds the 15');

# ---- failover: the primary is lost, the standby promoted ----
$primary->stop('immediate');
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()');
is($standby->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'promoted node flushed');
ok( $standby->poll_query_until('postgres',
		"SELECT count(*) = 20 FROM licdata.usage WHERE node = 'standby'", 't'),
	'the promoted node bills all 20 statements it served')
  or diag($standby->safe_psql('postgres',
	"SELECT 'usage: ' || count(*) FROM licdata.usage UNION ALL "
	  . "SELECT 'journal: ' || coalesce(string_agg(file || ' pending ' || records_pending, ', '), 'none') FROM licdata.journal_status"));
is( $standby->safe_psql('postgres',
		"SELECT count(*) - count(DISTINCT journal_ref) FROM licdata.usage WHERE node = 'standby'"),
	'0', 'none of them twice (the 5 it had replayed are not billed again)');
is($standby->safe_psql('postgres', 'SELECT sum(rows) FROM licdata.usage WHERE node = \'standby\''),
	'20', 'one row each');
is($standby->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'), 't',
	'the audit chain verifies');
is($standby->safe_psql('postgres', 'SELECT coalesce(sum(records_pending), 0) FROM licdata.journal_status'),
	'0', 'nothing left pending');

$standby->stop;
done_testing();
