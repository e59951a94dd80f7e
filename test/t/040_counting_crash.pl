# test/t/040_counting_crash.pl -- rows counted other than as result rows
# (folded into one value, written into the licensee's own table, seen by
# its own functions) survive the backend being SIGKILLed mid-statement: the
# journal record holds them as they are counted, and the usage row after the
# crash restart bills them (outcome cancelled).  Also: a rows-per-day quota
# stops a folding statement on the same count across sessions.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('counting_crash');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '100ms'
restart_after_crash = on
log_statement = none
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA cc;
CREATE TABLE cc.items (id integer PRIMARY KEY, val text);
INSERT INTO cc.items SELECT g, 'v' || g FROM generate_series(1, 2000) g;
SELECT licdata.publish('cc.items', 'counting crash items', 0, 0.01);
CREATE ROLE cc_lic LOGIN;
SELECT licdata.register_licensee('cc_lic', 'Counting Crash Ltd');
SELECT licdata.grant_licence('cc_lic', 'cc.items', ARRAY['crash'], price_per_query => 1);
SELECT licdata.grant_licence('cc_lic', 'cc.items', ARRAY['daily'], max_rows_per_day => 1500);
CREATE SCHEMA cc_own AUTHORIZATION cc_lic;
});
$node->safe_psql(
	'postgres', q{
SET SESSION AUTHORIZATION cc_lic;
CREATE TABLE cc_own.copy (id integer, val text);
-- passes its argument on, and stops for a minute at id 1500
CREATE FUNCTION cc_own.stall(id integer, val text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN IF id = 1500 THEN PERFORM pg_sleep(60); END IF; RETURN val; END$$;
});

sub flush
{
	is($node->safe_psql('postgres', 'SELECT licdata.flush(60)'),
		't', 'licdata.flush() completes');
}

# Run $sql as the licensee in the background, SIGKILL its backend while it
# sleeps at row 1500, wait for the crash restart; return the usage row.
sub killed_mid_statement
{
	my ($tag, $sql) = @_;
	my $s = $node->background_psql(
		'postgres',
		extra_params => [ '-U', 'cc_lic' ],
		on_error_stop => 0);
	$s->query_safe("SET licdata.purpose = 'crash'");
	$s->query_safe("SET licdata.consent_ref = '$tag'");
	my $pid = $s->query_safe("SELECT pg_backend_pid()");
	$s->query_until(qr/start\n/, "\\echo start\n$sql\n");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $pid"),
		"$tag: the statement reached row 1500");
	kill 'KILL', $pid or die "could not kill $pid: $!";
	foreach (1 .. 20)
	{
		usleep(50_000);
		last if !eval { $s->{run}->pump_nb; 1 };
	}
	eval { $s->{run}->kill_kill; };
	ok($node->poll_query_until('postgres', 'SELECT true'),
		"$tag: the server is back after the crash restart");
	flush();
	return $node->safe_psql('postgres',
		"SELECT count(*), min(rows), min(outcome) FROM licdata.usage WHERE consent_ref = '$tag'");
}

my ($n, $rows, $outcome);

# a collection aggregate folding rows, killed after 1,499 rows went in
($n, $rows, $outcome) = split /\|/, killed_mid_statement('fold',
	"SELECT length(string_agg(cc_own.stall(id, val), ',' ORDER BY id)) FROM cc.items;");
is($n, 1, 'fold: one usage row');
is($outcome, 'cancelled', 'fold: outcome cancelled');
ok($rows >= 1499, "fold: the rows folded before the kill are billed ($rows)");

# a data-modifying CTE copying rows into the licensee's table
($n, $rows, $outcome) = split /\|/, killed_mid_statement('write',
	"WITH x AS (INSERT INTO cc_own.copy SELECT id, cc_own.stall(id, val) FROM cc.items ORDER BY id RETURNING 1) SELECT count(*) FROM x;");
is($n, 1, 'write: one usage row');
is($outcome, 'cancelled', 'write: outcome cancelled');
ok($rows >= 1499, "write: the rows written before the kill are billed ($rows)");
is($node->safe_psql('postgres', 'SELECT count(*) FROM cc_own.copy'),
	'0', 'write: nothing was written (the transaction died)');

# rows seen by the licensee's own function (each call), in a WHERE clause
($n, $rows, $outcome) = split /\|/, killed_mid_statement('calls',
	"SELECT count(*) FROM cc.items WHERE cc_own.stall(id, val) IS NOT NULL;");
is($n, 1, 'calls: one usage row');
is($outcome, 'cancelled', 'calls: outcome cancelled');
ok($rows >= 1499, "calls: the calls before the kill are billed ($rows)");

# a rows-per-day quota of 1,500 across two sessions: 1,000 folded rows in
# the first, the second is stopped at the 501st
my ($ret, $out, $err) = $node->psql(
	'postgres',
	"SET licdata.purpose = 'daily'; SELECT length(string_agg(val, ',')) FROM cc.items WHERE id <= 1000;",
	extra_params => [ '-U', 'cc_lic' ]);
is($ret, 0, 'daily: 1,000 folded rows pass a quota of 1,500');
($ret, $out, $err) = $node->psql(
	'postgres',
	"SET licdata.purpose = 'daily'; SELECT length(string_agg(val, ',')) FROM cc.items WHERE id <= 1000;",
	extra_params => [ '-U', 'cc_lic' ]);
like($err, qr/rows per day/, 'daily: the next 1,000 are refused at the quota');
flush();
is( $node->safe_psql(
		'postgres',
		"SELECT sum(u.rows) FROM licdata.usage u JOIN licdata.licences l ON l.id = u.licence_id WHERE 'daily' = ANY (l.purposes)"
	),
	'1500',
	'daily: exactly the quota is billed');

$node->stop;
done_testing();
