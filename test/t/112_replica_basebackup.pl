# test/t/112_replica_basebackup.pl -- a standby made by pg_basebackup while
# the primary had journal records not yet moved (issue 12).
#
# pg_basebackup copies pg_licdata/journal/ with the rest of the data
# directory.  The standby must leave the primary's files alone: the primary
# moves its own records, and each is billed once, with the primary's node
# name and its final counts.  Here the primary's flusher is idle
# (flush_interval = 1h) while a licensee runs 20 statements and keeps a
# cursor open (10 rows fetched) across the backup; the cursor fetches 5
# more after the standby has started and made its passes.  Then both
# flush: the primary's usage must hold 21 rows, all of node 'primary',
# 20 + 15 rows, none from the standby.
#
# On the old code the standby took the primary's files for its own files
# "of an earlier incarnation" and handed their records over as its own:
# the open cursor's record reached the primary first, from the standby,
# as a cancelled statement of node 'standby' with 10 rows, and the
# primary's own final record (15 rows) was then skipped as a duplicate.
#
# The cursor is of a day-quota licence and the standby then holds a lease
# of it: after a primary restart the rebuilt counter must count the
# cursor (old code: its row named the standby, so the rebuild left it out).
#
# Also (same issue): while the primary is down the standby's worker logs
# one line when hand-over starts failing and one when it works again, not
# one per attempt (old code: 17 ERROR lines in 3 s); after a promotion the
# node moves its own files, those it wrote as a standby included; and the
# primary's flusher is woken when the records a standby handed over are
# committed (old code: woken before, it found the inbox empty and slept
# for its whole flush_interval, here 1 h).
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
licdata.flush_interval = '3600s'
log_statement = none
});
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA bb;
CREATE TABLE bb.items (id integer PRIMARY KEY, val text);
INSERT INTO bb.items SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT licdata.publish('bb.items', 'backup items', 1, 0.01);
CREATE ROLE bb_lic LOGIN;
SELECT licdata.register_licensee('bb_lic', 'Backup Reader Ltd');
SELECT licdata.grant_licence('bb_lic', 'bb.items', ARRAY['bi']);
CREATE ROLE bq_lic LOGIN;
SELECT licdata.register_licensee('bq_lic', 'Quota Reader Ltd');
SELECT licdata.grant_licence('bq_lic', 'bb.items', ARRAY['bi'], max_queries_per_day => 1000);
CREATE ROLE bb_agent LOGIN IN ROLE licdata_replica;
});
is($primary->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'primary worker up');
my $lic_q = $primary->safe_psql('postgres',
	"SELECT id FROM licdata.licences WHERE licensee = 'bq_lic'::regrole");

# ---- records pending on the primary: 20 statements and an open cursor ----
my $sql = "SET licdata.purpose = 'bi';\n";
$sql .= "SELECT val FROM bb.items WHERE id = $_;\n" for 1 .. 20;
my ($rc, $out, $err) = $primary->psql('postgres', $sql,
	extra_params => [ '-U', 'bb_lic' ], on_error_stop => 1);
is($rc, 0, '20 licensee statements on the primary') or diag($err);

# the cursor is of a day-quota licence (the quota rebuild below)
my $cur = $primary->background_psql('postgres', extra_params => [ '-U', 'bq_lic' ]);
$cur->query_safe("SET licdata.purpose = 'bi'");
$cur->query_safe('BEGIN');
$cur->query_safe('DECLARE c CURSOR FOR SELECT val FROM bb.items ORDER BY id');
$cur->query_safe('FETCH 10 FROM c');

is($primary->safe_psql('postgres', 'SELECT count(*) FROM licdata.usage'),
	'0', 'nothing moved yet on the primary');
ok( $primary->safe_psql('postgres',
		'SELECT sum(records_pending) FROM licdata.journal_status') >= 21,
	'the records wait in the primary\'s journal');

# ---- a standby from a base backup taken now ----
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
my $conninfo = "host=" . $primary->host . " port=" . $primary->port . " user=bb_agent";
$standby->append_conf(
	'postgresql.conf', qq{
licdata.node_name = 'standby'
licdata.flush_interval = '200ms'
licdata.primary_conninfo = '$conninfo'
licdata.standby_grace = '600s'
});
my @copied = glob($standby->data_dir . '/pg_licdata/journal/*.jnl');
ok(@copied > 0, 'pg_basebackup copied the primary\'s journal files (' . scalar(@copied) . ')');
$standby->start;
$primary->wait_for_catchup($standby);

# the standby's worker has made passes: it reached the primary
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM licdata.replica_nodes WHERE node = 'standby'"),
	'the standby reached the primary');
# a few more passes of the standby (200 ms each), then the primary moves
# what it received
$standby->safe_psql('postgres', 'SELECT licdata.flush(60)');
$standby->safe_psql('postgres', 'SELECT licdata.flush(60)');
$primary->safe_psql('postgres', 'SELECT licdata.flush(60)');

# the cursor goes on and closes: its record is final only now
$cur->query_safe('FETCH 5 FROM c');
$cur->query_safe('CLOSE c');
$cur->query_safe('COMMIT');
$cur->quit;
$primary->safe_psql('postgres', 'SELECT licdata.flush(60)');

is($primary->safe_psql('postgres', 'SELECT count(*) FROM licdata.usage'),
	'21', 'every statement billed once: 20 statements and the cursor');
is( $primary->safe_psql('postgres',
		"SELECT string_agg(DISTINCT node, ',') FROM licdata.usage"),
	'primary', 'every row names the primary, where the statements ran');
is($primary->safe_psql('postgres', 'SELECT sum(rows) FROM licdata.usage'),
	'35', 'rows summed exact: 20 + the cursor\'s 15');
is( $primary->safe_psql('postgres',
		"SELECT count(*) FROM licdata.usage WHERE outcome <> 'ok'"),
	'0', 'no statement billed as cancelled');
is( $primary->safe_psql('postgres',
		"SELECT count(*) FROM licdata.audit_log WHERE node = 'standby'"),
	'0', 'no audit row from the standby');
is( $primary->safe_psql('postgres',
		"SELECT coalesce(sum(records_handed_over), 0) FROM licdata.replica_nodes WHERE node = 'standby'"),
	'0', 'the standby handed over no record');
is($primary->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'),
	't', 'verify_audit() ok');
ok( $standby->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_ls_dir('pg_licdata/journal') f WHERE f LIKE '%.jnl' AND "
		  . "f IN (" . join(',', map { my $b = $_; $b =~ s{.*/}{}; "'$b'" } @copied) . ")"),
	'the standby removed its copies of the primary\'s journal files');

# ---- the day quota after a primary restart, the standby holding a lease ----
($rc, $out, $err) = $standby->psql('postgres',
	"SET licdata.purpose = 'bi'; SELECT val FROM bb.items WHERE id = 1",
	extra_params => [ '-U', 'bq_lic' ]);
is($out, 'v1', 'the standby serves the day-quota licence from a lease');
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM licdata.usage WHERE licence_id = $lic_q AND node = 'standby'"),
	'its record reaches the primary');
$primary->restart;
$primary->safe_psql('postgres', 'SELECT licdata.flush(60)');
# the rebuilt counter: the primary's own rows (the cursor) plus what is
# leased (the standby's rows are served from its lease, not counted again)
is( $primary->safe_psql('postgres',
		"SELECT q.queries = (SELECT count(*) FROM licdata.usage WHERE licence_id = $lic_q AND node = 'primary') "
		  . "+ (SELECT sum(queries_granted - queries_returned) FROM licdata.quota_leases WHERE licence_id = $lic_q) "
		  . "AND (SELECT count(*) FROM licdata.usage WHERE licence_id = $lic_q AND node = 'primary') = 1 "
		  . "FROM licdata_internal._quota_used($lic_q) q"),
	't', 'after a primary restart the quota counts the cursor the primary ran');

# ---- the standby's own records still reach the primary ----
($rc, $out, $err) = $standby->psql('postgres', $sql,
	extra_params => [ '-U', 'bb_lic' ], on_error_stop => 1);
is($rc, 0, '20 licensee statements on the standby') or diag($err);
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) = 20 FROM licdata.usage WHERE node = 'standby' AND licence_id <> $lic_q"),
	'the standby\'s own records reach the primary, with its name');

# ---- the primary down: one line when hand-over starts failing, one when it works again ----
my $log_off = -s $standby->logfile;
$primary->stop('fast');
sleep 3;    # about 15 failed attempts (flush_interval 200 ms)
$primary->start;
ok( $primary->poll_query_until('postgres',
		"SELECT last_contact > now() - interval '2 s' FROM licdata.replica_nodes WHERE node = 'standby'"),
	'the standby reaches the primary again');
$standby->safe_psql('postgres', 'SELECT licdata.flush(60)');
my $log = slurp_file($standby->logfile, $log_off);
my $failed = () = $log =~ /could not hand journal records to the primary/g;
is($failed, 1, 'one line when hand-over started failing (not one per attempt)')
  or diag($log);
my $again = () = $log =~ /hands journal records to the primary again/g;
is($again, 1, 'one line when it works again') or diag($log);

# ---- promotion: the node moves its own files, those written as a standby too ----
$primary->stop('fast');
($rc, $out, $err) = $standby->psql('postgres', $sql,
	extra_params => [ '-U', 'bb_lic' ], on_error_stop => 1);
is($rc, 0, '20 licensee statements on the standby while the primary is down') or diag($err);
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()');
is($standby->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'promoted node flushed');
ok( $standby->poll_query_until('postgres',
		"SELECT count(*) = 40 FROM licdata.usage WHERE node = 'standby' AND licence_id <> $lic_q"),
	'the promoted node moved the records it wrote as a standby')
  or diag($standby->safe_psql('postgres',
	"SELECT 'usage by node: ' || string_agg(node || '=' || n, ', ') FROM (SELECT node, count(*) n FROM licdata.usage GROUP BY node) x "
	  . "UNION ALL SELECT 'journal: ' || string_agg(file || ' pending ' || records_pending, ', ') FROM licdata.journal_status "
	  . "UNION ALL SELECT 'quarantine: ' || count(*) FROM licdata.quarantine"));
is( $standby->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT journal_ref FROM licdata.usage GROUP BY journal_ref HAVING count(*) > 1) d"),
	'0', 'no record counted twice');
is( $standby->safe_psql('postgres',
		"SELECT coalesce(sum(records_pending), 0) FROM licdata.journal_status"),
	'0', 'nothing left in its journal');

done_testing();
