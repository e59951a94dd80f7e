# test/t/063_pipe_group_sync.pl -- licdata.journal_sync = on syncs a
# statement's record once, before its result leaves the server, and the
# records of statements whose results leave together share that sync.
# Concurrent licensee clients run while a backend is SIGKILLed (a crash
# restart) and while the server is stopped in immediate mode: every
# statement a client saw complete is in licdata.usage exactly once, and at
# most the one statement each client had in flight is added (billed as
# cancelled or ok, never twice).
#
# On PostgreSQL 15 on, the syncs of parts 1, 2 and 4 go through the WAL
# (journal_sync_method = wal), and the crashes of part 4 replay it.
#
# A crash here keeps the page cache: what this checks is the sync protocol's
# bookkeeping (no record lost, doubled or left void) and that the shared
# and mid-statement sync paths run; power loss itself cannot be staged here.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('group_sync');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '100ms'
licdata.journal_sync = on
restart_after_crash = on
log_statement = none
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA gs;
CREATE TABLE gs.items (id integer PRIMARY KEY, val text);
INSERT INTO gs.items SELECT g, repeat('x', 50) FROM generate_series(1, 5000) g;
ANALYZE gs.items;
SELECT licdata.publish('gs.items', 'group sync items', 0, 1);
CREATE ROLE gs_lic LOGIN;
SELECT licdata.register_licensee('gs_lic', 'Group Sync Ltd');
SELECT licdata.grant_licence('gs_lic', 'gs.items', ARRAY['gs_test'],
                             row_filter => 'id > 0', price_per_query => 1);
ALTER ROLE gs_lic SET log_min_messages = debug1;
});

sub flush_all
{
	is($node->safe_psql('postgres', 'SELECT licdata.flush(120)'), 't', 'licdata.flush() completes');
}

sub usage_of
{
	my ($tag) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM licdata.usage WHERE consent_ref = '$tag'");
}

# 1. Three statements in one message: their results leave in one flush, so
#    one fdatasync makes the three records durable (the DEBUG1 line).  The
#    session's first licensee statement goes alone: the send buffer's
#    contents are unknown when the sync path is set up, so its first
#    message syncs.
my $log_off = -s $node->logfile;
my ($ret, $out, $err) = $node->psql(
	'postgres',
	"SET licdata.purpose = 'gs_test'; SET licdata.consent_ref = 'grouped';\n"
	  . "SELECT count(*) FROM gs.items WHERE id <= 1;\n"
	  . "SELECT count(*) FROM gs.items WHERE id <= 1\\; SELECT count(*) FROM gs.items WHERE id <= 2\\; SELECT count(*) FROM gs.items WHERE id <= 3;",
	extra_params => [ '-U', 'gs_lic' ]);
is($ret, 0, 'three statements in one message run') or diag($err);
my $log = slurp_file($node->logfile, $log_off);
my @grouped = ($log =~ /one journal sync made ([0-9]+) new records durable/g);
ok((grep { $_ >= 3 } @grouped), 'one sync covered the three statements of one message')
  or diag("sync lines: @grouped");
if ($node->safe_psql('postgres', 'SHOW server_version_num') >= 150000)
{
	like($log, qr/one journal sync made [0-9]+ new records durable \(a WAL flush\)/,
		'on PostgreSQL 15 on the sync is a WAL flush (journal_sync_method = wal)');
}

# 2. A result larger than the send buffer leaves mid-statement: its record
#    is synced before the first bytes go, and again when it closes.
($ret, $out, $err) = $node->psql(
	'postgres',
	"SET licdata.purpose = 'gs_test'; SET licdata.consent_ref = 'large';\n"
	  . "SELECT id, val FROM gs.items;",
	extra_params => [ '-U', 'gs_lic', '-o', '/dev/null' ]);
is($ret, 0, 'a large result is sent') or diag($err);
flush_all();
is(usage_of('grouped'), '4', 'the three grouped statements (and the one before) are billed once each');
is( $node->safe_psql('postgres',
		"SELECT count(*), sum(rows), min(outcome) FROM licdata.usage WHERE consent_ref = 'large'"),
	'1|5000|ok', 'the large result is billed once with all its rows');

# 3. A sync that fails: an LD_PRELOAD shim makes fdatasync of journal files
#    fail (EIO) while a flag file exists.  The statement's result must not
#    reach the client, the connection closes, and its record is void:
#    never billed.  (journal_sync_method = fdatasync for this part: through
#    the WAL a statement's sync is no fdatasync of its file.)
my $tmp = PostgreSQL::Test::Utils::tempdir();
my $flag = "$tmp/fail-sync";
my $cc = $ENV{CC} // 'cc';
PostgreSQL::Test::Utils::append_to_file(
	"$tmp/failsync.c", q{
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int
fdatasync(int fd)
{
	static int	(*real) (int);
	const char *flag = getenv("LICDATA_TEST_FAIL_SYNC");
	char		link[64], target[4096];
	ssize_t		n;

	if (!real)
		real = (int (*) (int)) dlsym(RTLD_NEXT, "fdatasync");
	if (flag && access(flag, F_OK) == 0)
	{
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n > 0)
		{
			target[n] = '\0';
			if (strstr(target, "pg_licdata/journal/") && strstr(target, ".jnl"))
			{
				errno = EIO;
				return -1;
			}
		}
	}
	return real(fd);
}
});
my $built = system($cc, '-shared', '-fPIC', '-o', "$tmp/failsync.so", "$tmp/failsync.c", '-ldl') == 0;
SKIP:
{
	skip "no C compiler ($cc) for the fdatasync shim", 5 unless $built;
	$node->stop;
	$node->append_conf('postgresql.conf', "licdata.journal_sync_method = 'fdatasync'\n");
	{
		local $ENV{LD_PRELOAD} = "$tmp/failsync.so";
		local $ENV{LICDATA_TEST_FAIL_SYNC} = $flag;
		$node->start;
	}
	my $log_at = -s $node->logfile;
	PostgreSQL::Test::Utils::append_to_file($flag, 'on');
	($ret, $out, $err) = $node->psql(
		'postgres',
		"SET licdata.purpose = 'gs_test'; SET licdata.consent_ref = 'sync failed';
"
		  . "SELECT 'result-' || count(*) FROM gs.items WHERE id <= 7;",
		extra_params => [ '-U', 'gs_lic' ]);
	unlink $flag;
	isnt($ret, 0, 'a statement whose record cannot be synced fails');
	unlike($out, qr/result-7/, 'its result never reaches the client');
	like(slurp_file($node->logfile, $log_at),
		qr/could not sync the metering journal file/, 'the failed sync is logged');
	flush_all();
	is(usage_of('sync failed'), '0', 'the statement is not billed (its record is void)');
	# back to the default (through the WAL on PostgreSQL 15 on) for part 4
	$node->adjust_conf('postgresql.conf', 'licdata.journal_sync_method', "'wal'");
	$node->reload;
}

# 4. Concurrent clients, killed.  Each client runs $n statements under its
#    own consent reference and prints one line per completed statement.
my $n = 20000;    # more than any client completes before the cut, however fast syncs are

sub start_clients
{
	my ($round, $count) = @_;
	my @c;
	for my $k (1 .. $count)
	{
		my $tag = "r$round-c$k";
		my $sql = "SET licdata.purpose = 'gs_test';\nSET licdata.consent_ref = '$tag';\n";
		$sql .= "SELECT 'done', $_, count(*) FROM gs.items WHERE id <= 3;\n" for 1 .. $n;
		my $file = PostgreSQL::Test::Utils::tempdir() . "/$tag.sql";
		PostgreSQL::Test::Utils::append_to_file($file, $sql);
		my ($o, $e) = ('', '');
		my $h = IPC::Run::start(
			[
				'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-f', $file,
				'-d', $node->connstr('postgres') . ' user=gs_lic'
			],
			'<', '/dev/null', '>', \$o, '2>', \$e);
		push @c, { tag => $tag, h => $h, out => \$o, err => \$e };
	}
	return @c;
}

sub completed
{
	my ($c) = @_;
	my @lines = (${ $c->{out} } =~ /^done\|[0-9]+\|3$/mg);
	return scalar @lines;
}

# wait until every client has completed some statements
sub wait_progress
{
	my @c = @_;
	for (1 .. 600)
	{
		$_->{h}->pump_nb for @c;
		return 1 unless grep { completed($_) < 50 } @c;
		usleep(50_000);
	}
	return 0;
}

my @all;
for my $round (1 .. 2)
{
	my @c = start_clients($round, 4);
	ok(wait_progress(@c), "round $round: the clients are running");
	if ($round == 1)
	{
		# SIGKILL one licensee backend: the postmaster restarts them all
		my $pid = $node->safe_psql('postgres',
			"SELECT pid FROM pg_stat_activity WHERE usename = 'gs_lic' LIMIT 1");
		kill 'KILL', $pid;
	}
	else
	{
		$node->stop('immediate');
	}
	for my $c (@c)
	{
		eval { $c->{h}->finish; };
		diag("client $c->{tag}: $@") if $@;
	}
	if ($round == 1)
	{
		$node->poll_query_until('postgres', 'SELECT true') or die 'no restart after the kill';
	}
	else
	{
		$node->start;
	}
	push @all, @c;
}

flush_all();
my $cut = 0;
for my $c (@all)
{
	my $done = completed($c);
	my $got = usage_of($c->{tag});
	$cut++ if $done < $n;
	ok($got >= $done && $got <= $done + 1,
		"$c->{tag}: $done statements completed, $got billed (nothing lost, at most the one in flight added)")
	  or diag($node->safe_psql('postgres',
			"SELECT outcome, count(*), min(substring(statement from ', ([0-9]+),')::int), max(substring(statement from ', ([0-9]+),')::int) FROM licdata.usage WHERE consent_ref = '$c->{tag}' GROUP BY 1"),
		"\nclient stderr: ${ $c->{err} }\nlast output: " . substr(${ $c->{out} }, -60));
}
is($cut, scalar @all, 'every client was cut off mid-run');
is( $node->safe_psql('postgres', 'SELECT count(*) - count(DISTINCT journal_ref) FROM licdata.usage'),
	'0', 'nothing doubled');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM licdata.journal_status WHERE records_pending > 0"),
	'0', 'the journal is empty: no record left behind');

done_testing();
