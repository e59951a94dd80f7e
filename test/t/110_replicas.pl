# test/t/110_replicas.pl -- read replicas: licensees served by hot standbys,
# every record reaching the primary exactly once.
#
# A primary and two streaming standbys.  Licensee clients run on the
# primary and both standbys; one standby is restarted and the primary is
# stopped for a while (every standby's connection to it cut) mid-run.
# Then the primary's licdata.usage holds exactly one row per statement the
# clients completed (rows summed exact, no duplicate journal reference),
# each row names its node, the day quota was never passed in total (a
# standby serves it from a lease it gives back when idle), and
# verify_audit() is ok.  And a standby that cannot reach the primary
# refuses licensee statements (LD009) once licdata.standby_grace has
# passed -- at once, with a hint naming the cause -- and serves again (its
# records handed over) when it reaches the primary again.
#
# On the old code a standby served licensees and its records never reached
# the primary (usage stayed empty: the "reached the primary" checks fail),
# and a licence with a day quota made each statement wait 30 s; before
# leases a standby refused a day-quota licence outright (LD006).  Quotas
# across nodes in detail: test/t/111_replica_leases.pl.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $grace_ms = 3000;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '200ms'
licdata.standby_grace = '${grace_ms}ms'
log_statement = none
});
$primary->start;
$primary->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA rp;
CREATE TABLE rp.items (id integer PRIMARY KEY, val text);
INSERT INTO rp.items SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT licdata.publish('rp.items', 'replica items', 1, 0.01);
CREATE ROLE rp_lic LOGIN;
SELECT licdata.register_licensee('rp_lic', 'Replica Reader Ltd');
SELECT licdata.grant_licence('rp_lic', 'rp.items', ARRAY['bi']);
CREATE ROLE rq_lic LOGIN;
SELECT licdata.register_licensee('rq_lic', 'Quota Reader Ltd');
SELECT licdata.grant_licence('rq_lic', 'rp.items', ARRAY['bi'], max_queries_per_day => 30);
CREATE ROLE rp_agent LOGIN IN ROLE licdata_replica;
});
my $lic_rp = $primary->safe_psql('postgres',
	"SELECT id FROM licdata.licences WHERE licensee = 'rp_lic'::regrole");
my $lic_rq = $primary->safe_psql('postgres',
	"SELECT id FROM licdata.licences WHERE licensee = 'rq_lic'::regrole");

# least privilege: the standby's role can hand over records, nothing else
my ($rc, $out, $err) = $primary->psql('postgres', 'SELECT count(*) FROM rp.items',
	extra_params => [ '-U', 'rp_agent' ]);
isnt($rc, 0, 'the replica role cannot read a dataset');
($rc, $out, $err) = $primary->psql('postgres', 'SELECT count(*) FROM licdata.usage',
	extra_params => [ '-U', 'rp_agent' ]);
isnt($rc, 0, 'the replica role cannot read usage');
($rc, $out, $err) = $primary->psql('postgres',
	"SELECT licdata_internal._receive_records('x', '\\x00'::bytea, 0)",
	extra_params => [ '-U', 'rp_lic' ]);
like($err, qr/permission denied/, 'a licensee cannot hand over records');
($rc, $out, $err) = $primary->psql('postgres',
	"SELECT licdata_internal._receive_records('x', '\\x4c44524201000000'::bytea, 0)",
	extra_params => [ '-U', 'rp_agent' ]);
like($err, qr/invalid records from a standby/, 'malformed records are refused');

$primary->backup('bk');
my $conninfo = "host=" . $primary->host . " port=" . $primary->port . " user=rp_agent";
my @standbys;
for my $name ('standby1', 'standby2')
{
	my $s = PostgreSQL::Test::Cluster->new($name);
	$s->init_from_backup($primary, 'bk', has_streaming => 1);
	$s->append_conf('postgresql.conf',
		"licdata.primary_conninfo = '$conninfo'\nlicdata.quota_lease_idle = '300ms'\n");
	$s->start;
	push @standbys, $s;
}
my ($s1, $s2) = @standbys;
$primary->wait_for_catchup($_) for @standbys;

# the master key came with the base backup: pseudonyms and masks match
is(PostgreSQL::Test::Utils::slurp_file($s1->data_dir . '/pg_licdata/master.key'),
	PostgreSQL::Test::Utils::slurp_file($primary->data_dir . '/pg_licdata/master.key'),
	'pg_basebackup copied the master key file');

# $n licensee statements as $role on $node; returns the statements completed.
sub run_client
{
	my ($node, $role, $n, $tag) = @_;
	my $sql = "SET licdata.purpose = 'bi';\n";
	$sql .= "SELECT 'ok', val FROM rp.items WHERE id = " . (1 + ($_ * 7) % 1000) . ";\n"
	  for 1 .. $n;
	my ($stdout, $stderr) = ('', '');
	IPC::Run::run(
		[
			'psql', '-X', '-At', '-h', $node->host, '-p', $node->port,
			'-U', $role, '-d', 'postgres'
		],
		'<', \$sql, '>', \$stdout, '2>', \$stderr);
	my $ok = () = $stdout =~ /^ok\|/mg;
	return ($ok, $stderr);
}

# Runs in the background, reading its statements from a file and writing to
# one: no pipe of ours is inherited by the servers (re)started meanwhile
# (an inherited stdin pipe would keep the client waiting for more input).
my $seq = 0;
sub start_client
{
	my ($node, $role, $n) = @_;
	my $sql = "SET licdata.purpose = 'bi';\n";
	$sql .= "SELECT 'ok', val FROM rp.items WHERE id = " . (1 + ($_ * 7) % 1000) . ";\n"
	  for 1 .. $n;
	$seq++;
	my $in = "$PostgreSQL::Test::Utils::tmp_check/client$seq.sql";
	my $out = "$PostgreSQL::Test::Utils::tmp_check/client$seq.out";
	PostgreSQL::Test::Utils::append_to_file($in, $sql);
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-At', '-h', $node->host, '-p', $node->port,
			'-U', $role, '-d', 'postgres', '-f', $in, '-o', $out
		],
		'<', '/dev/null', '>', '/dev/null', '2>', '/dev/null');
	return ($h, $out);
}

sub count_ok
{
	my $text = -f $_[0] ? PostgreSQL::Test::Utils::slurp_file($_[0]) : '';
	my $n = () = $text =~ /^ok\|/mg;
	return $n;
}

sub wait_usage
{
	my ($expect, $what) = @_;
	my $got;
	for (1 .. 600)
	{
		$got = $primary->safe_psql('postgres',
			"SELECT count(*) FROM licdata.usage WHERE licence_id = $lic_rp AND outcome = 'ok'");
		last if $got == $expect;
		select(undef, undef, undef, 0.1);
	}
	is($got, $expect, $what);
}

# ---- a standby serves, and its records reach the primary ----
my $completed = 0;
my ($n1, $e1) = run_client($s1, 'rp_lic', 50);
is($n1, 50, 'standby1 serves a licensee');
$completed += $n1;
my $t0 = time;
wait_usage($completed, 'the standby\'s statements reach the primary\'s usage');
my $delay = time - $t0;
diag(sprintf('standby statement to primary usage row: %.2f s after the last statement', $delay));
is( $primary->safe_psql('postgres',
		"SELECT count(*) FROM licdata.usage WHERE node = 'standby1'"),
	'50', 'usage rows name the standby');
is( $primary->safe_psql('postgres',
		"SELECT count(*) FROM licdata.audit_log WHERE node = 'standby1'"),
	'50', 'audit rows name the standby');
like($primary->safe_psql('postgres',
		"SELECT node || ' ' || records_handed_over FROM licdata.nodes WHERE node = 'standby1'"),
	qr/^standby1 50$/, 'licdata.nodes shows the standby');

# ---- a day-quota licence: served on a standby from a lease (lease.c) ----
$t0 = time;
($rc, $out, $err) = $s1->psql('postgres',
	"SET licdata.purpose = 'bi'; SELECT val FROM rp.items WHERE id = 1",
	extra_params => [ '-U', 'rq_lic' ]);
is($out, 'v1', 'a standby serves a day-quota licence from quota leased from the primary');
ok(time - $t0 < 5, 'at once, not after a 30 s wait');
is( $primary->safe_psql('postgres',
		"SELECT queries_granted FROM licdata.quota_leases WHERE node = 'standby1' AND licence_id = $lic_rq"),
	'4', 'the primary leased it an eighth of the quota of 30 (rounded up)');
# the unused part goes back once idle (licdata.quota_lease_idle = 300ms)
ok( $primary->poll_query_until('postgres',
		"SELECT queries_returned = 3 FROM licdata.quota_leases WHERE node = 'standby1' AND licence_id = $lic_rq"),
	'the standby gave back the unused part of its lease');

# ---- clients on all three nodes; a standby restarted, the primary stopped ----
my ($h1, $o1) = start_client($s1, 'rp_lic', 20000);
my ($h2, $o2) = start_client($s2, 'rp_lic', 300);
my ($hp, $op) = start_client($primary, 'rp_lic', 300);
my ($nq, $eq) = run_client($primary, 'rq_lic', 40);
is($nq, 29, 'the day quota serves the other 29 of 40 on the primary');
$hp->finish;
$h2->finish;
$completed += count_ok($op) + count_ok($o2);
is(count_ok($op), 300, 'primary client completed');
$s2->restart;
($n1, $e1) = run_client($s2, 'rp_lic', 100);
$completed += $n1;
my $stop_t = time;
$primary->stop('fast');
sleep 2;
my $start_t = time;
$primary->start;
$h1->finish;
my $c1 = count_ok($o1);
ok($c1 > 0, "standby1 client completed $c1 statements across the primary's stop");
$completed += $c1;
wait_usage($completed, 'usage rows = statements the clients completed, on all nodes');
is( $primary->safe_psql('postgres',
		"SELECT sum(rows) FROM licdata.usage WHERE licence_id = $lic_rp AND outcome = 'ok'"),
	$completed, 'rows summed exact');
is( $primary->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT journal_ref FROM licdata.usage GROUP BY journal_ref, licence_id HAVING count(*) > 1) d"),
	'0', 'no record counted twice');
ok( $primary->safe_psql('postgres',
		"SELECT count(*) FROM licdata.usage WHERE node = 'standby1' AND at BETWEEN to_timestamp($stop_t) AND to_timestamp($start_t)"
	) > 0,
	'standby1 served while the primary was down, and those records arrived later');
is( $primary->safe_psql('postgres',
		"SELECT count(*) FROM licdata.usage WHERE licence_id = $lic_rq"),
	'30', 'the day quota was never passed in total');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM licdata.replica_inbox'),
	'0', 'the inbox is empty');
is($primary->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'),
	't', 'verify_audit() ok: one chain');

# ---- no way to reach the primary: refused after the grace period ----
$s1->append_conf('postgresql.conf',
	"licdata.primary_conninfo = 'host=" . $primary->host . " port=1 user=rp_agent connect_timeout=1'\n");
$s1->reload;
($n1, $e1) = run_client($s1, 'rp_lic', 5);
is($n1, 5, 'within the grace period the standby serves');
$completed += $n1;
sleep(int($grace_ms / 1000) + 2);
$t0 = time;
($rc, $out, $err) = $s1->psql('postgres',
	"SET licdata.purpose = 'bi'; SELECT val FROM rp.items WHERE id = 1",
	extra_params => [ '-U', 'rp_lic' ]);
my $took = time - $t0;
like($err, qr/could not hand metering records to the primary/, 'refused after the grace period');
like($err, qr/could not connect to the primary/, 'the hint names the cause');
ok($took < 2, sprintf('refused at once (%.2f s)', $took));
($rc, $out, $err) = $s1->psql('postgres', "SELECT 1",
	extra_params => [ '-U', 'rp_lic' ]);
is($out, '1', 'statements that read no dataset still run');

$s1->append_conf('postgresql.conf', "licdata.primary_conninfo = '$conninfo'\n");
$s1->reload;
my $served = 0;
for (1 .. 100)
{
	($n1, $e1) = run_client($s1, 'rp_lic', 1);
	if ($n1 == 1) { $served = 1; last; }
	select(undef, undef, undef, 0.2);
}
ok($served, 'the standby serves again once it reaches the primary');
$completed += 1;
wait_usage($completed, 'the records made before the refusal reached the primary');
is($primary->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'),
	't', 'verify_audit() ok at the end');

# ---- promotion: the promoted standby moves its own journal, exactly ----
$primary->wait_for_catchup($s2);
$primary->stop('fast');
($n1, $e1) = run_client($s2, 'rp_lic', 10);
is($n1, 10, 'standby2 serves within the grace period with the primary gone');
$completed += $n1;
$s2->promote;
my $got;
for (1 .. 300)
{
	$got = $s2->safe_psql('postgres',
		"SELECT count(*) FROM licdata.usage WHERE licence_id = $lic_rp AND outcome = 'ok'");
	last if $got == $completed;
	select(undef, undef, undef, 0.1);
}
is($got, $completed, 'promoted: its own records in its own tables, with the old primary\'s, exactly once');
is( $s2->safe_psql('postgres',
		"SELECT count(*) FROM (SELECT journal_ref FROM licdata.usage GROUP BY journal_ref, licence_id HAVING count(*) > 1) d"),
	'0', 'promoted: no record counted twice');
is($s2->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'),
	't', 'promoted: verify_audit() ok');
($rc, $out, $err) = $s2->psql('postgres',
	"SET licdata.purpose = 'bi'; SELECT val FROM rp.items WHERE id = 1",
	extra_params => [ '-U', 'rq_lic' ]);
like($err, qr/quota of licence \d+ reached: queries per day/,
	'promoted: the day quota counts what the old primary served');

$s1->stop;
$s2->stop;
done_testing();
