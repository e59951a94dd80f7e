# test/bench/replica.pl -- licensee throughput on a hot standby vs on the
# primary, and the delay from a statement on the standby to its usage row
# on the primary.  Not a test (prints numbers; test/t/ does not collect it).
#
# Run as the postgres user from a copy of the tree (see BENCHMARKS.md):
#   PG_REGRESS=... TESTDIR=$PWD prove -v -I $PGXS/src/test/perl test/bench/replica.pl
# Settings: LICDATA_BENCH_SECONDS (8 per run), LICDATA_BENCH_ROUNDS (2).
#
# Workload: rp.items (100,000 rows), a licensee with a plain licence;
# pgbench -n -M prepared -c 2 -j 2, each transaction one primary-key SELECT
# under the licence.  Primary and standby alternate, back to back, each
# with its flusher live at the default licdata.flush_interval (1 s): the
# standby's hands its records to the primary over libpq, the primary's
# moves its own and the standby's into the tables.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $secs = $ENV{LICDATA_BENCH_SECONDS} || 8;
my $rounds = $ENV{LICDATA_BENCH_ROUNDS} || 2;

my $primary = PostgreSQL::Test::Cluster->new('bench_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
shared_buffers = '128MB'
log_statement = none
});
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA rp;
CREATE TABLE rp.items (id integer PRIMARY KEY, val text);
INSERT INTO rp.items SELECT g, 'v' || g FROM generate_series(1, 100000) g;
SELECT licdata.publish('rp.items', 'bench items', 0, 0.001);
CREATE ROLE rp_lic LOGIN;
SELECT licdata.register_licensee('rp_lic', 'Bench Reader Ltd');
SELECT licdata.grant_licence('rp_lic', 'rp.items', ARRAY['bi']);
CREATE ROLE rp_agent LOGIN IN ROLE licdata_replica;
});
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('bench_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->append_conf('postgresql.conf',
	"licdata.primary_conninfo = 'host=" . $primary->host . " port=" . $primary->port . " user=rp_agent'\n");
$standby->start;
$primary->wait_for_catchup($standby);

my $script = "$PostgreSQL::Test::Utils::tmp_check/point.sql";
PostgreSQL::Test::Utils::append_to_file($script,
	"\\set id random(1, 100000)\nSELECT val FROM rp.items WHERE id = :id;\n");

sub pgb
{
	my ($node) = @_;
	local $ENV{PGOPTIONS} = '-c licdata.purpose=bi';
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'pgbench', '-n', '-M', 'prepared', '-c', '2', '-j', '2', '-T', $secs,
			'-h', $node->host, '-p', $node->port, '-U', 'rp_lic', '-f', $script, 'postgres'
		],
		'>', \$out, '2>', \$err);
	my ($tps) = $out =~ /tps = ([\d.]+) \(without initial connection time\)/;
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	return ($tps // 0, $failed // 0);
}

diag("pgbench -n -M prepared -c 2 -j 2 -T $secs, $rounds rounds, primary and standby alternating");
my @ratios;
for my $r (1 .. $rounds)
{
	my @order = $r % 2 ? ($primary, $standby) : ($standby, $primary);
	my %tps;
	for my $n (@order)
	{
		my ($tps, $failed) = pgb($n);
		$tps{ $n->name } = $tps;
		diag(sprintf("round %d %-14s %8.0f TPS (%d failed)", $r, $n->name, $tps, $failed));
	}
	push @ratios, $tps{bench_standby} / $tps{bench_primary} if $tps{bench_primary};
	diag(sprintf("round %d standby/primary %.2f", $r, $ratios[-1]));
}

# all of the standby's statements reach the primary
my $standby_rows = 0;
for (1 .. 600)
{
	$standby_rows = $primary->safe_psql('postgres',
		"SELECT count(*) FROM licdata.usage WHERE node = 'bench_standby'");
	my $pending = $primary->safe_psql('postgres',
		"SELECT coalesce(sum(records_pending), 0) FROM licdata.nodes");
	last if $pending == 0 && $_ > 5;
	sleep 1;
}
diag("standby statements in the primary's usage: $standby_rows");

# delay: one statement on the standby, then poll the primary for its row
my @delays;
for my $i (1 .. 20)
{
	my $tag = "delay$i";
	my $t0 = time;
	$standby->safe_psql('postgres',
		"SET licdata.purpose = 'bi'; SET licdata.consent_ref = '$tag'; SELECT val FROM rp.items WHERE id = $i",
		extra_params => [ '-U', 'rp_lic' ]);
	my $t1 = time;
	for (1 .. 1000)
	{
		last if $primary->safe_psql('postgres',
			"SELECT count(*) FROM licdata.usage WHERE consent_ref = '$tag'") > 0;
		select(undef, undef, undef, 0.02);
	}
	push @delays, time - $t1;
	select(undef, undef, undef, rand(0.5));
}
@delays = sort { $a <=> $b } @delays;
diag(sprintf("delay standby statement -> primary usage row: median %.2f s, min %.2f s, max %.2f s (n=%d)",
	$delays[$#delays / 2], $delays[0], $delays[-1], scalar @delays));
ok(1, 'measured');
$standby->stop;
$primary->stop;
done_testing();
