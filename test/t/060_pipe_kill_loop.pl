# test/t/060_pipe_kill_loop.pl -- the server is killed again and again while
# the flusher drains a backlog: every pass commits progress (batches commit
# one by one, so a crash loses at most the batch in flight), and in the end
# licdata.usage holds exactly one row per statement the clients completed --
# nothing lost, nothing doubled.  Day-quota counters are ready right after
# each restart and count the journal's records not yet moved.
#
# Kills alternate between an immediate shutdown and SIGKILL of the flusher
# (the postmaster then restarts every process).  A backlog is made by
# keeping the worker idle (flush_interval = 1h) while clients run; each
# restart starts a pass at once.
#
# On the old code one pass moved every record of every file in a single
# transaction: killed before that pass ended, nothing committed, and the
# "progress" checks below fail.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pipe_kill_loop');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '3600s'
licdata.checkpoint_interval = 500
restart_after_crash = on
log_statement = none
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA kl;
CREATE TABLE kl.items (id integer PRIMARY KEY, val text);
INSERT INTO kl.items SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT licdata.publish('kl.items', 'kill loop items', 1, 0.01);
CREATE ROLE kl_lic LOGIN;
SELECT licdata.register_licensee('kl_lic', 'Kill Loop Ltd');
SELECT licdata.grant_licence('kl_lic', 'kl.items', ARRAY['kill_test'],
                             max_queries_per_day => 100000000);
});
my $lic = $node->safe_psql('postgres', 'SELECT min(id) FROM licdata.licences');
is($node->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'worker up');

my $total = 0;    # statements the clients completed

# $n licensee statements in one session; they all complete (ON_ERROR_STOP).
sub run_statements
{
	my ($n, $tag) = @_;
	my $sql = "SET licdata.purpose = 'kill_test'; SET licdata.consent_ref = '$tag';\n";
	$sql .= "SELECT val FROM kl.items WHERE id = " . (1 + $_ % 1000) . ";\n" for 1 .. $n;
	my ($ret, $out, $err) = $node->psql(
		'postgres', $sql,
		extra_params => [ '-U', 'kl_lic', '-o', '/dev/null' ],
		on_error_stop => 1);
	is($ret, 0, "$tag: $n statements completed") or diag($err);
	$total += $n;
}

sub moved
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM licdata.usage');
}

run_statements(15000, 'backlog-1');
run_statements(15000, 'backlog-2');
# every statement is either still in the journal or already moved (a pass
# may have started meanwhile: the worker is woken by more than its timer)
ok( $node->poll_query_until('postgres',
		"SELECT (SELECT coalesce(sum(records_pending), 0) FROM licdata.journal_status) "
		  . "+ (SELECT count(*) FROM licdata.usage) = $total"),
	'the backlog is in the journal (or moved), nothing lost or doubled');

my $mid_drain_kills = 0;
for my $i (1 .. 6)
{
	my $before = moved();

	# a restart starts a pass; the first time (and for records made after a
	# pass listed the files) wake the idle worker
	$node->safe_psql('postgres', 'SELECT licdata.flush(0)');
	# a pass starts at (re)start; wait for its first committed batch (once
	# the backlog is drained, the kills go on with nothing pending)
	if ($before < $total)
	{
		ok( $node->poll_query_until('postgres',
				"SELECT count(*) > $before FROM licdata.usage"),
			"kill $i: the pass commits progress before the kill")
		  or last;
	}
	# more records, from a client, while the worker drains
	run_statements(300, "live-$i");
	my $seen = moved();
	$mid_drain_kills++ if $seen < $total;

	if ($i % 2)
	{
		$node->stop('immediate');
		$node->start;
	}
	else
	{
		my $pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'licdata flusher'");
		kill 'KILL', $pid;
		$node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'licdata flusher' AND pid <> $pid")
		  or die "no flusher after the crash restart";
	}
	cmp_ok(moved(), '>=', $seen, "kill $i: what was committed survives");

	# quota counters: ready at once, counting the records not yet moved
	run_statements(1, "after-$i");
	is( $node->safe_psql('postgres', "SELECT queries FROM licdata_internal._quota_used($lic)"),
		$total, "kill $i: today's query count is exact right after the restart");
}
cmp_ok($mid_drain_kills, '>=', 3, 'several kills hit the worker in the middle of the backlog');

is($node->safe_psql('postgres', 'SELECT licdata.flush(120)'), 't', 'the rest drains');
is(moved(), $total, 'one usage row per completed statement: nothing lost');
is( $node->safe_psql('postgres', 'SELECT count(*) - count(DISTINCT journal_ref) FROM licdata.usage'),
	'0', 'nothing doubled');
is($node->safe_psql('postgres', 'SELECT count(*) FROM licdata.audit_log'), $total,
	'one audit row per statement');
is($node->safe_psql('postgres', 'SELECT count(*) FROM licdata.quarantine'), '0', 'nothing quarantined');
is($node->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'), 't',
	'the audit chain and its checkpoints verify');
is( $node->safe_psql('postgres', 'SELECT count(*) FROM licdata.audit_checkpoints'),
	int($total / 500), 'a checkpoint at every multiple of the interval');
is( $node->safe_psql('postgres', "SELECT count(*) FROM pg_ls_dir('pg_licdata/journal')"),
	'0', 'every journal file is removed');
$node->stop;
done_testing();
