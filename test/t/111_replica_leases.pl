# test/t/111_replica_leases.pl -- day quotas hold across a primary and two
# hot standbys: standbys serve licences with day quotas from quota they
# lease from the primary in chunks (src/lease.c).
#
#  1. A licence with max_queries_per_day = 45 and one with
#     max_rows_per_day = 150 (7-row statements, stopped mid-statement at
#     the limit) are served concurrently on all three nodes by clients
#     that ask for more than the quota: the total served, counted by the
#     clients and in the primary's licdata.usage, is exactly the quota --
#     never more, and nothing stranded on a node -- and both standbys
#     served part of it.  Refusals are LD006 with a hint saying the shared
#     quota is used up.
#  2. A restarted primary does not grant again what it leased before: it
#     serves the quota less the standby's lease, the standby its lease.
#  3. A standby whose primary is stopped serves from the lease it holds and
#     refuses a licence it holds no lease of at once, LD006, with a hint
#     that the primary is unreachable.
#  4. An idle lease goes back to the primary (licdata.quota_lease_idle),
#     and a standby shutting down gives back what it holds.
#  5. Lookups (licdata.token) and product calls are leased too.
#
# On the old code a standby refused every licence with a day quota (LD006
# "a standby cannot hold"): the "standby served" checks fail.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '200ms'
licdata.standby_grace = '120s'
max_connections = 40
log_statement = none
});
$primary->start;

# licences: name => [ role, grant_licence options ]
my %lic = (
	q => 'max_queries_per_day => 45',
	r => 'max_rows_per_day => 150, max_queries_per_day => 1000',
	s => 'max_queries_per_day => 20',
	h => 'max_queries_per_day => 40',
	u => 'max_queries_per_day => 10',
	i => 'max_queries_per_day => 16',
	d => 'max_queries_per_day => 16',);
my $setup = q{
CREATE EXTENSION licdata;
CREATE SCHEMA rp;
CREATE TABLE rp.items (id integer PRIMARY KEY, val text);
INSERT INTO rp.items SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT licdata.publish('rp.items', 'replica items', 1, 0.01);
CREATE ROLE rp_agent LOGIN IN ROLE licdata_replica;
CREATE FUNCTION rp.count_items() RETURNS bigint LANGUAGE sql STABLE
	AS $$SELECT count(*) FROM rp.items$$;
SELECT licdata.publish_product('rp.count_items()', 'item count', 1.00);
CREATE ROLE lp_lic LOGIN;
SELECT licdata.register_licensee('lp_lic', 'Product Ltd');
SELECT licdata.grant_product_licence('lp_lic', 'rp.count_items()', ARRAY['bi'], max_calls_per_day => 12);
CREATE ROLE lk_lic LOGIN;
SELECT licdata.register_licensee('lk_lic', 'Lookup Ltd');
SELECT licdata.grant_licence('lk_lic', 'rp.items', ARRAY['bi'], max_lookups_per_day => 12);
SELECT licdata.set_mask('rp.items', 'val', 'pseudonym', '{"length": 8}');
GRANT USAGE ON SCHEMA rp TO lp_lic, lk_lic;
};
for my $k (sort keys %lic)
{
	$setup .= "CREATE ROLE l${k}_lic LOGIN;\n"
	  . "SELECT licdata.register_licensee('l${k}_lic', 'Licensee $k');\n"
	  . "SELECT licdata.grant_licence('l${k}_lic', 'rp.items', ARRAY['bi'], $lic{$k});\n";
}
$primary->safe_psql('postgres', $setup);
my %id;
for my $k (sort keys %lic, 'p', 'k')
{
	$id{$k} = $primary->safe_psql('postgres',
		"SELECT id FROM licdata.licences WHERE licensee = 'l${k}_lic'::regrole");
}

$primary->backup('bk');
my $conninfo = "host=" . $primary->host . " port=" . $primary->port . " user=rp_agent";
my @standbys;
for my $name ('standby1', 'standby2')
{
	my $s = PostgreSQL::Test::Cluster->new($name);
	$s->init_from_backup($primary, 'bk', has_streaming => 1);
	$s->append_conf('postgresql.conf',
		"licdata.primary_conninfo = '$conninfo'\nlicdata.quota_lease_idle = '1h'\n");
	$s->start;
	push @standbys, $s;
}
my ($s1, $s2) = @standbys;
$primary->wait_for_catchup($_) for @standbys;

# A client in the background: $n statements as l${k}_lic on $node, each
# returning $rows rows ('ok' in the first column), fetched a row at a time
# (FETCH_COUNT) so rows sent before a refusal are seen; $pause seconds
# between statements and, with $barrier, starting only once that file
# exists, so that clients on all nodes overlap.
my $seq = 0;

sub start_client
{
	my ($node, $k, $n, $rows, $pause, $barrier) = @_;
	my $sql = "\\set FETCH_COUNT 1\nSET licdata.purpose = 'bi';\n";
	$sql .= "\\! while [ ! -e '$barrier' ]; do sleep 0.01; done\n" if $barrier;
	for my $i (1 .. $n)
	{
		$sql .= "SELECT pg_sleep($pause) \\g /dev/null\n" if $pause;
		my $from = 1 + ($i * 7) % 900;
		$sql .= "SELECT 'ok', val FROM rp.items WHERE id BETWEEN $from AND "
		  . ($from + $rows - 1) . ";\n";
	}
	$seq++;
	my $in = "$PostgreSQL::Test::Utils::tmp_check/lease$seq.sql";
	my $out = "$PostgreSQL::Test::Utils::tmp_check/lease$seq.out";
	my $err = "$PostgreSQL::Test::Utils::tmp_check/lease$seq.err";
	PostgreSQL::Test::Utils::append_to_file($in, $sql);
	my $h = IPC::Run::start(
		[
			'psql', '-X', '-At', '-h', $node->host, '-p', $node->port,
			'-U', "l${k}_lic", '-d', 'postgres', '-f', $in, '-o', $out
		],
		'<', '/dev/null', '>', '/dev/null', '2>', $err);
	return { h => $h, out => $out, err => $err };
}

sub finish_client
{
	my ($c) = @_;
	$c->{h}->finish;
	my $text = -f $c->{out} ? PostgreSQL::Test::Utils::slurp_file($c->{out}) : '';
	my $n = () = $text =~ /^ok\|/mg;
	$c->{ok} = $n;
	$c->{stderr} = -f $c->{err} ? PostgreSQL::Test::Utils::slurp_file($c->{err}) : '';
	return $n;
}

# Run and wait: rows served.
sub run_client
{
	my $c = start_client(@_);
	finish_client($c);
	return ($c->{ok}, $c->{stderr});
}

# Every standby record moved into the primary's usage.
sub settle
{
	$_->safe_psql('postgres', 'SELECT licdata.flush()') for @standbys;
	$primary->poll_query_until('postgres',
		'SELECT count(*) = 0 FROM licdata.replica_inbox')
	  or diag('inbox not empty');
	$primary->safe_psql('postgres', 'SELECT licdata.flush()');
}

sub q1
{
	my ($sql) = @_;
	return $primary->safe_psql('postgres', $sql);
}

# ---- 1. concurrent clients on all nodes: exactly the quota in total ----
my @nodes = ($primary, $s1, $s2);
my (@cq, @cr);
my $go = "$PostgreSQL::Test::Utils::tmp_check/go";
for my $node (@nodes)
{
	push @cq, start_client($node, 'q', 60, 1, 0.03, $go);
	push @cr, start_client($node, 'r', 40, 7, 0.03, $go);
}
sleep 1;    # every client connected and waiting
PostgreSQL::Test::Utils::append_to_file($go, 'go');
finish_client($_) for @cq, @cr;
my @served_q = map { $_->{ok} } @cq;
my @served_r = map { $_->{ok} } @cr;
diag("queries quota 45 served per node (primary, standby1, standby2): @served_q");
diag("rows quota 150 served per node (primary, standby1, standby2): @served_r");
my $sum = 0;
$sum += $_ for @served_q;
is($sum, 45, 'queries per day: the clients on all nodes were served exactly the quota');
$sum = 0;
$sum += $_ for @served_r;
is($sum, 150, 'rows per day: the clients on all nodes were served exactly the quota');
ok($served_q[1] > 0 && $served_q[2] > 0, 'both standbys served the queries-quota licence');
ok($served_r[1] > 0 && $served_r[2] > 0, 'both standbys served the rows-quota licence');
like($cq[1]{stderr}, qr/quota of licence $id{q} reached: queries per day/,
	'a standby refuses at the quota (LD006)');
like($cq[1]{stderr}, qr/HINT:  The day quota is shared by all nodes.*none left/,
	'the hint says the shared quota is used up');
like($cr[2]{stderr}, qr/quota of licence $id{r} reached: rows per day/,
	'a standby stops a statement at the rows quota');
settle();
is(q1("SELECT count(*) FROM licdata.usage WHERE licence_id = $id{q} AND outcome = 'ok'"),
	'45', 'usage: the queries served on all nodes, exactly the quota');
is(q1("SELECT sum(rows) FROM licdata.usage WHERE licence_id = $id{r}"),
	'150', 'usage: the rows delivered on all nodes, exactly the quota');
is(q1("SELECT string_agg(DISTINCT node, ',' ORDER BY node) FROM licdata.usage WHERE licence_id = $id{q} AND outcome = 'ok'"),
	'primary,standby1,standby2', 'usage rows name all three nodes');
diag(q1("SELECT string_agg(node || ' q=' || queries_granted || ' r=' || rows_granted || ' grants=' || grants, '; ' ORDER BY node, licence_id) FROM licdata.quota_leases"));
is(q1("SELECT count(*) FROM (SELECT journal_ref FROM licdata.usage GROUP BY journal_ref, licence_id HAVING count(*) > 1) d"),
	'0', 'no record counted twice');

# ---- 2. a restarted primary does not grant again what it leased ----
my ($n, $err) = run_client($s1, 's', 1, 1);
is($n, 1, 'standby1 serves a statement under licence s');
my $leased = q1("SELECT queries_granted FROM licdata.quota_leases WHERE node = 'standby1' AND licence_id = $id{s}");
is($leased, '3', 'it leased an eighth of the quota of 20 (rounded up)');
$primary->restart;
my $t_restart = time;
($n, $err) = run_client($primary, 's', 30, 1);
is($n, 20 - $leased, 'the restarted primary serves the quota less the standby\'s lease');
$primary->poll_query_until('postgres',
	"SELECT last_contact > to_timestamp($t_restart) FROM licdata.nodes WHERE node = 'standby1'")
  or diag('standby1 did not come back');
($n, $err) = run_client($s1, 's', 5, 1);
is($n, $leased - 1, 'the standby serves the rest of its lease, then is refused');
like($err, qr/quota of licence $id{s} reached: queries per day/, 'refused at the quota');
settle();
is(q1("SELECT count(*) FROM licdata.usage WHERE licence_id = $id{s} AND outcome = 'ok'"),
	'20', 'usage: exactly the quota across the restart');

# ---- 3. the primary stopped: serve from the lease, else refuse at once ----
($n, $err) = run_client($s1, 'h', 1, 1);
is($n, 1, 'standby1 serves licence h (and holds a lease of it)');
$primary->stop('fast');
($n, $err) = run_client($s1, 'h', 2, 1);
is($n, 2, 'with the primary stopped, the standby serves from its lease');
my $t0 = time;
($n, $err) = run_client($s1, 'u', 1, 1);
my $took = time - $t0;
is($n, 0, 'a licence it holds no lease of is refused');
like($err, qr/could not obtain day quota of licence $id{u} from the primary/, 'LD006: no quota from the primary');
like($err, qr/HINT:  The primary is unreachable/, 'the hint names the cause');
ok($took < 4, sprintf('refused at once (%.2f s)', $took));
$primary->start;
$t_restart = time;
for my $s (@standbys)
{
	my $name = $s->name;
	$primary->poll_query_until('postgres',
		"SELECT last_contact > to_timestamp($t_restart) FROM licdata.nodes WHERE node = '$name'")
	  or diag("$name did not come back");
}
# (a failure to reach the primary is remembered for a second)
for (1 .. 20)
{
	($n, $err) = run_client($s1, 'u', 1, 1);
	last if $n == 1;
	select(undef, undef, undef, 0.25);
}
is($n, 1, 'served again once the primary is back');

# ---- 4. idle leases go back; a standby that stops gives back its leases ----
$s1->append_conf('postgresql.conf', "licdata.quota_lease_idle = '300ms'\n");
$s1->reload;
($n, $err) = run_client($s1, 'i', 1, 1);
is($n, 1, 'standby1 serves licence i');
$primary->poll_query_until('postgres',
	"SELECT queries_returned = queries_granted - 1 FROM licdata.quota_leases WHERE node = 'standby1' AND licence_id = $id{i}")
  or diag('the idle lease was not given back');
($n, $err) = run_client($primary, 'i', 20, 1);
is($n, 15, 'the idle lease went back: the primary serves all the rest');
($n, $err) = run_client($s2, 'd', 1, 1);
is($n, 1, 'standby2 serves licence d');
is(q1("SELECT queries_returned FROM licdata.quota_leases WHERE node = 'standby2' AND licence_id = $id{d}"),
	'0', 'standby2 holds its lease');
$s2->stop('fast');
is(q1("SELECT queries_granted - queries_returned FROM licdata.quota_leases WHERE node = 'standby2' AND licence_id = $id{d}"),
	'1', 'standby2 gave back its unused lease when it stopped');
($n, $err) = run_client($primary, 'd', 20, 1);
is($n, 15, 'the primary serves what standby2 gave back');
$s2->start;

# ---- 5. lookups and product calls ----
my ($out, $rc);
my $served_k = 0;
my $served_p = 0;
for my $node ($s1, $primary, $s1, 'sleep', $primary)
{
	# a pause: standby1's unused leases go back (idle 300 ms)
	if (!ref $node) { sleep 2; next; }
	for (1 .. 5)
	{
		($rc, $out, $err) = $node->psql('postgres',
			"SET licdata.purpose = 'bi'; SELECT licdata.token('rp.items', 'val', 'x') IS NOT NULL",
			extra_params => [ '-U', 'lk_lic' ]);
		$served_k++ if $rc == 0;
		($rc, $out, $err) = $node->psql('postgres',
			"SET licdata.purpose = 'bi'; SELECT rp.count_items()",
			extra_params => [ '-U', 'lp_lic' ]);
		$served_p++ if $rc == 0 && $out eq '1000';
	}
}
is($served_k, 12, 'lookups per day: exactly the quota across the primary and a standby');
is($served_p, 12, 'product calls per day: exactly the quota across the primary and a standby');
ok(q1("SELECT lookups_granted > 0 FROM licdata.quota_leases WHERE node = 'standby1' AND licence_id = $id{k}") eq 't',
	'standby1 leased lookups');
ok(q1("SELECT queries_granted > 0 FROM licdata.quota_leases WHERE node = 'standby1' AND licence_id = $id{p}") eq 't',
	'standby1 leased product calls');

# ---- 6. what a lease top-up costs (a diagnostic, no assertion) ----
# licdata.quota_lease_max = 1: every statement on the standby asks the
# primary (a connection and a call); compared with a licence without quota.
$primary->append_conf('postgresql.conf', "licdata.quota_lease_max = 1\n");
$primary->reload;
$primary->safe_psql('postgres',
	"SELECT licdata.grant_licence('lq_lic', 'rp.items', ARRAY['perf'], max_queries_per_day => 100000)");
$primary->safe_psql('postgres',
	"SELECT licdata.grant_licence('lq_lic', 'rp.items', ARRAY['free'])");
$primary->wait_for_catchup($s1);
my %took;
for my $purpose ('free', 'perf', 'free', 'perf')
{
	my $sql = "SET licdata.purpose = '$purpose';\n"
	  . join('', map { "SELECT 'v', val FROM rp.items WHERE id = $_;\n" } 1 .. 50);
	$t0 = time;
	my ($o, $e);
	IPC::Run::run(
		[ 'psql', '-X', '-At', '-h', $s1->host, '-p', $s1->port, '-U', 'lq_lic', '-d', 'postgres' ],
		'<', \$sql, '>', \$o, '2>', \$e);
	$took{$purpose} = time - $t0;
	$n = () = $o =~ /^v\|/mg;
	is($n, 50, "standby1: 50 statements under purpose $purpose served");
}
diag(sprintf('standby1, 50 statements: no quota %.3f s, a lease top-up each %.3f s (%.1f ms per top-up)',
	$took{free}, $took{perf}, 1000 * ($took{perf} - $took{free}) / 50));
is(q1("SELECT sum(grants) FROM licdata.quota_leases l JOIN licdata.licences c ON c.id = l.licence_id WHERE 'perf' = ANY (c.purposes)"),
	'100', 'one grant per statement at licdata.quota_lease_max = 1');

settle();
is(q1('SELECT ok FROM licdata.verify_audit()'), 't', 'verify_audit() ok');

$s1->stop;
$s2->stop;
$primary->stop;
done_testing();
