# test/t/020_metering_crash.pl -- metering loses nothing and counts nothing
# twice when statements end badly: ROLLBACK, an error mid-stream, a client
# that disconnects or is killed mid-cursor, a backend SIGKILLed after its
# statement returned or while a cursor is being fetched, the background
# worker SIGKILLed, an immediate shutdown; and a journal file replayed after
# its records were moved (a worker crash between commit and unlink).  Then
# the same kills with licdata.journal_sync = on.
#
# Each case runs under its own consent reference; after the server is back,
# licdata.usage must hold exactly one row per statement of the case, with
# the rows the client received.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use File::Copy qw(copy);

my $node = PostgreSQL::Test::Cluster->new('metering_crash');
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
CREATE SCHEMA ct;
CREATE TABLE ct.items (id integer PRIMARY KEY, val text);
INSERT INTO ct.items SELECT g, repeat('x', 50) FROM generate_series(1, 20000) g;
ANALYZE ct.items;
SELECT licdata.publish('ct.items', 'crash test items', 0, 1);
CREATE ROLE crash_lic LOGIN;
SELECT licdata.register_licensee('crash_lic', 'Crash Test Ltd');
SELECT licdata.grant_licence('crash_lic', 'ct.items', ARRAY['crash_test'],
                             price_per_query => 1, price_per_row => 0.01);
});

my $journal = $node->data_dir . '/pg_licdata/journal';
my %expected;    # tag => [statements, rows, outcomes]

# A licensee's statements in a fresh session; returns (ret, stdout, stderr).
sub lic_psql
{
	my ($tag, $sql) = @_;
	return $node->psql(
		'postgres',
		"SET licdata.purpose = 'crash_test'; SET licdata.consent_ref = '$tag';\n$sql",
		extra_params => [ '-U', 'crash_lic' ]);
}

# Same, without setting a consent reference (it comes from PGOPTIONS).
sub lic_psql_keep_ref
{
	my ($sql) = @_;
	return $node->psql(
		'postgres',
		"SET licdata.purpose = 'crash_test';\n$sql",
		extra_params => [ '-U', 'crash_lic' ]);
}
my ($ret0, $out0);

# A licensee's session kept open.
sub lic_session
{
	my ($tag) = @_;
	my $s = $node->background_psql(
		'postgres',
		extra_params => [ '-U', 'crash_lic' ],
		on_error_stop => 0);
	$s->query_safe("SET licdata.purpose = 'crash_test'");
	$s->query_safe("SET licdata.consent_ref = '$tag'");
	return $s;
}

# Rows a statement returned to psql in a session (psql's ROW_COUNT).
sub fetched
{
	my ($s, $sql) = @_;
	return $s->query_safe("$sql \\g /dev/null\n\\echo :ROW_COUNT");
}

sub lines
{
	my ($out) = @_;
	return scalar(grep { $_ ne '' } split /\n/, $out);
}

sub flush
{
	is($node->safe_psql('postgres', 'SELECT licdata.flush(60)'),
		't', 'licdata.flush() completes');
}

sub check_tag
{
	my ($tag, $what) = @_;
	my ($stmts, $rows, $outcomes) = @{ $expected{$tag} };
	my $got = $node->safe_psql(
		'postgres', qq{
SELECT count(*), coalesce(sum(rows), 0), coalesce(string_agg(DISTINCT outcome, ',' ORDER BY outcome), '')
  FROM licdata.usage WHERE consent_ref = '$tag'});
	is($got, "$stmts|$rows|$outcomes",
		"$what: $stmts usage row(s), $rows rows, outcome $outcomes");
}

# Wait until a backend pid is gone from pg_stat_activity.
sub wait_gone
{
	my ($pid) = @_;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
	  or die "backend $pid did not exit";
}

# After a crash restart: wait until the server accepts connections again.
sub wait_restarted
{
	my ($what) = @_;
	ok($node->poll_query_until('postgres', 'SELECT true'),
		"$what: the server is back after the crash restart");
}

sub kill9
{
	my ($pid) = @_;
	kill 'KILL', $pid or die "could not kill $pid: $!";
}

sub forget_session
{
	my ($s) = @_;
	eval { $s->{run}->kill_kill; };
}

# Every case so far, then: nothing doubled anywhere.
sub check_all
{
	my ($when) = @_;
	flush();
	check_tag($_, "$when, $_") foreach sort keys %expected;
	is( $node->safe_psql(
			'postgres',
			q{SELECT count(*) FROM (SELECT journal_ref FROM licdata.usage
			   GROUP BY journal_ref HAVING count(*) > 1) d}),
		'0',
		"$when: no journal record gave two usage rows");
	is( $node->safe_psql(
			'postgres',
			q{SELECT count(*) - count(DISTINCT journal_ref) FROM licdata.audit_log}),
		'0',
		"$when: no journal record gave two audit rows");
	is($node->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'),
		't', "$when: the audit chain verifies");
}

sub run_cases
{
	my ($p) = @_;    # tag prefix: "c" (journal_sync off), "s" (on)
	my ($ret, $out, $err, $s, $pid, $n);

	# ROLLBACK: usage survives
	($ret, $out) = lic_psql("${p}01 rollback",
		"BEGIN; SELECT * FROM ct.items WHERE id <= 10; ROLLBACK;");
	is(lines($out), 10, "${p}01: the client received 10 rows");
	$expected{"${p}01 rollback"} = [ 1, 10, 'ok' ];

	# an error after 499 rows were sent (index order: rows 1..499, then 1/0)
	($ret, $out, $err) = lic_psql(
		"${p}02 error mid-stream",
		"SET enable_seqscan = off; SET enable_bitmapscan = off;
		 SELECT id, 1 / (id - 500) FROM ct.items WHERE id <= 1000 ORDER BY id;");
	like($err, qr/division by zero/, "${p}02: the statement failed after row 499");
	$expected{"${p}02 error mid-stream"} = [ 1, 499, 'error' ];

	# the client quits mid-cursor (psql \q: the server gets a Terminate message)
	$s = lic_session("${p}03 client quits mid-cursor");
	$s->query_safe("BEGIN");
	$s->query_safe("DECLARE c CURSOR FOR SELECT * FROM ct.items");
	is(fetched($s, "FETCH 25 FROM c"), 25, "${p}03: the client received 25 rows");
	$pid = $s->query_safe("SELECT pg_backend_pid()");
	$s->quit;
	wait_gone($pid);
	$expected{"${p}03 client quits mid-cursor"} = [ 1, 25, 'cancelled' ];

	# the client is killed mid-cursor (the server sees the socket close)
	$s = lic_session("${p}04 client killed mid-cursor");
	$s->query_safe("BEGIN");
	$s->query_safe("DECLARE c CURSOR FOR SELECT * FROM ct.items");
	is(fetched($s, "FETCH 30 FROM c") + fetched($s, "FETCH 3 FROM c"), 33, "${p}04: the client received 33 rows");
	$pid = $s->query_safe("SELECT pg_backend_pid()");
	$s->{run}->signal('KILL');
	forget_session($s);
	wait_gone($pid);
	$expected{"${p}04 client killed mid-cursor"} = [ 1, 33, 'cancelled' ];

	check_all("$p after rollback, error and disconnects");

	# SIGKILL of a backend after its statement returned: a crash restart
	$s = lic_session("${p}05 backend killed after the statement");
	$pid = $s->query_safe("SELECT pg_backend_pid()");
	is(fetched($s, "SELECT * FROM ct.items WHERE id <= 7"), 7, "${p}05: the client received 7 rows");
	kill9($pid);
	forget_session($s);
	wait_restarted("${p}05");
	$expected{"${p}05 backend killed after the statement"} = [ 1, 7, 'ok' ];
	check_all("$p after a backend was killed");

	# SIGKILL while a cursor is being fetched: cancelled, with the rows of
	# the FETCHes that completed
	$s = lic_session("${p}06 backend killed mid-cursor");
	$pid = $s->query_safe("SELECT pg_backend_pid()");
	$s->query_safe("BEGIN");
	$s->query_safe("DECLARE c CURSOR FOR SELECT * FROM ct.items");
	$n = 0;
	$n += fetched($s, "FETCH 100 FROM c") foreach 1 .. 3;
	is($n, 300, "${p}06: the client received 300 rows");
	kill9($pid);
	forget_session($s);
	wait_restarted("${p}06");
	$expected{"${p}06 backend killed mid-cursor"} = [ 1, 300, 'cancelled' ];

	# SIGKILL while rows are streaming (psql fetches 10 at a time): the
	# record holds what was sent, at most the one FETCH in flight more than
	# the client printed
	$s = lic_session("${p}07 backend killed mid-stream");
	$pid = $s->query_safe("SELECT pg_backend_pid()");
	my $early = $s->query_until(qr/start\n/,
		"\\echo start\n\\set FETCH_COUNT 10\nSELECT id, pg_sleep(0.001) FROM ct.items;\n");
	usleep(1_500_000);
	kill9($pid);
	foreach (1 .. 10)
	{
		usleep(50_000);
		# psql exits when the connection is lost: that ends the pumping
		last if !eval { $s->{run}->pump_nb; 1 };
	}
	eval { $s->{run}->finish; };    # what psql printed before it exited
	my $printed = lines($early) - 1 + lines($s->{stdout});
	forget_session($s);
	wait_restarted("${p}07");
	flush();
	my ($recorded, $outcome);
	($n, $recorded, $outcome) = split /\|/,
	  $node->safe_psql('postgres',
		"SELECT count(*), sum(rows), min(outcome) FROM licdata.usage WHERE consent_ref = '${p}07 backend killed mid-stream'"
	  );
	is($n, 1, "${p}07: one usage row");
	is($outcome, 'cancelled', "${p}07: outcome cancelled");
	ok( $printed > 0 && $recorded >= $printed && $recorded <= $printed + 10,
		"${p}07: recorded $recorded rows, the client printed $printed");

	# SIGKILL of the background worker, right after statements it has not moved
	($ret, $out) = lic_psql("${p}08 worker killed",
		"SELECT * FROM ct.items WHERE id <= 5; SELECT * FROM ct.items WHERE id <= 6;");
	is(lines($out), 11, "${p}08: the client received 11 rows");
	my $wpid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'licdata flusher'");
	ok($wpid =~ /^\d+$/, "${p}08: the worker runs (pid $wpid)");
	kill9($wpid);
	wait_restarted("${p}08");
	$expected{"${p}08 worker killed"} = [ 2, 11, 'ok' ];

	# immediate shutdown with a cursor open and statements just done
	$s = lic_session("${p}09 immediate stop, cursor");
	$s->query_safe("BEGIN");
	$s->query_safe("DECLARE c CURSOR FOR SELECT * FROM ct.items");
	is(fetched($s, "FETCH 12 FROM c"), 12, "${p}09: the client received 12 rows");
	($ret, $out) = lic_psql("${p}09 immediate stop, statements",
		"SELECT * FROM ct.items WHERE id <= 4; SELECT * FROM ct.items WHERE id <= 4;");
	is(lines($out), 8, "${p}09: the client received 8 rows");
	$node->stop('immediate');
	forget_session($s);
	$node->start;
	$expected{"${p}09 immediate stop, cursor"} = [ 1, 12, 'cancelled' ];
	$expected{"${p}09 immediate stop, statements"} = [ 2, 8, 'ok' ];
	check_all("$p after kills and an immediate stop");
}

# A consent reference that is not valid UTF-8, sent in the startup packet
# (where PostgreSQL does not check the encoding of settings), is refused by
# licdata.consent_ref's check: the session never starts, nothing is served.
# (The worker also copes with such text, turning it into \xNN, should a
# record ever carry it.)
{
	local $ENV{PGOPTIONS} = "-c licdata.consent_ref=x01\xff\xfebad";
	my ($ret, $out) = lic_psql_keep_ref("SELECT * FROM ct.items WHERE id <= 3;");
	is(lines($out), 0, 'x01: a session with an invalid consent reference gets no rows');
}
($ret0, $out0) = lic_psql("x02 after the bad one", "SELECT * FROM ct.items WHERE id <= 2;");
is(lines($out0), 2, 'x02: the client received 2 rows');
$expected{'x02 after the bad one'} = [ 1, 2, 'ok' ];
check_all('after a record with invalid text');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM licdata.usage WHERE consent_ref LIKE 'x01%'}),
	'0',
	'x01: nothing served, nothing recorded');

run_cases('c');

# A journal file replayed after its records were moved (as after a worker
# crash between its commit and the unlink): nothing is inserted twice.
{
	my $s = lic_session('r01 replayed file');
	is( fetched($s, "SELECT * FROM ct.items WHERE id <= 9") +
		  fetched($s, "SELECT * FROM ct.items WHERE id <= 9"),
		18, 'r01: the client received 18 rows');
	my $pid = $s->query_safe("SELECT pg_backend_pid()");
	my @files = glob("$journal/*-" . sprintf('%08x', $pid) . "-*.jnl");
	is(scalar(@files), 1, 'r01: the session has one journal file');
	copy($files[0], "$files[0].copy") or die "copy: $!";
	$s->quit;
	wait_gone($pid);
	foreach (1 .. 50)
	{
		$node->safe_psql('postgres', 'SELECT licdata.flush(60)');
		last if !-e $files[0];
		usleep(100_000);
	}
	ok(!-e $files[0], 'r01: the file was removed after its records were moved');
	rename("$files[0].copy", $files[0]) or die "rename: $!";
	$expected{'r01 replayed file'} = [ 2, 18, 'ok' ];
	check_all('after a moved file was put back');
	# it is a live file of this incarnation (taken while its backend ran):
	# after a restart it is a dead one, moved again (no-op) and removed
	$node->restart;
	check_all('after a restart with the replayed file');
	ok(!-e $files[0], 'r01: the replayed file is removed');
}

# The same kills with licdata.journal_sync = on (reload).
$node->safe_psql('postgres',
	"ALTER SYSTEM SET licdata.journal_sync = on; SELECT pg_reload_conf();");
$node->poll_query_until('postgres', "SELECT current_setting('licdata.journal_sync') = 'on'")
  or die "journal_sync did not become on";
run_cases('s');

# Everything moved, every file removed (no session is left; a backend that
# has just exited may still be marking its file closed).
my @left;
foreach (1 .. 50)
{
	$node->safe_psql('postgres', 'SELECT licdata.flush(60)');
	@left = glob("$journal/*.jnl");
	last if !@left;
	usleep(100_000);
}
is(scalar(@left), 0, 'no journal file is left behind') or diag("left: @left");
my $stmts = 2;    # c07 and s07
$stmts += $_->[0] foreach values %expected;
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM licdata.usage WHERE licensee = 'crash_lic'::regrole"),
	$stmts,
	"$stmts usage rows in all: one per statement, no other");

$node->stop;
done_testing();
