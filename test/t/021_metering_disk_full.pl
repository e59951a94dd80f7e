# test/t/021_metering_disk_full.pl -- if metering cannot be recorded, the
# query is refused (SQLSTATE LD009), never served unmetered.
#
# The harness runs TAP as the postgres OS user, so a full disk cannot be
# mounted here; the same refusal is staged by making the journal directory
# read-only (chmod 0500) while the server runs: a backend that needs a new
# journal file (each creates its own at its first metered statement) cannot
# create it.  posix_fallocate failing with ENOSPC on a full disk takes the
# same path (journal.c: new_file_failed).  Then permissions are restored
# and the same sessions work again, and nothing was recorded for the
# refused statements.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('metering_disk_full');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '100ms'
});
$node->start;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA df;
CREATE TABLE df.items (id integer PRIMARY KEY, val text);
INSERT INTO df.items SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SELECT licdata.publish('df.items', 'disk full test', 0, 1);
CREATE ROLE df_lic LOGIN;
SELECT licdata.register_licensee('df_lic', 'Disk Full Ltd');
SELECT licdata.grant_licence('df_lic', 'df.items', ARRAY['disk_test']);
});

my $journal = $node->data_dir . '/pg_licdata/journal';
ok(-d $journal, 'the journal directory exists');

sub lic_session
{
	my ($tag) = @_;
	my $s = $node->background_psql(
		'postgres',
		extra_params => [ '-U', 'df_lic' ],
		on_error_stop => 0);
	$s->query_safe("\\set VERBOSITY verbose");
	$s->query_safe("SET licdata.purpose = 'disk_test'");
	$s->query_safe("SET licdata.consent_ref = '$tag'");
	return $s;
}

# Run a statement in a session: (stdout, stderr of this statement).
sub run
{
	my ($s, $sql) = @_;
	$s->{stderr} = '';
	my ($out) = $s->query($sql);
	my $err = $s->{stderr};
	$s->{stderr} = '';
	return ($out, $err);
}

sub usage_of
{
	my ($tag) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*), coalesce(sum(rows), 0) FROM licdata.usage WHERE consent_ref = '$tag'");
}

# A session that already has its journal file (it ran a metered statement).
my $early = lic_session('d1 session with a file');
is($early->query_safe("SELECT count(*) FROM (SELECT * FROM df.items WHERE id <= 5) s"),
	'5', 'd1: a session metered before the directory became read-only');

# A session that will end while the directory is read-only.
my $gone = lic_session('d5 ends while read-only');
is($gone->query_safe("SELECT * FROM df.items WHERE id <= 2 \\g /dev/null\n\\echo :ROW_COUNT"),
	'2', 'd5: the client received 2 rows');
my $gone_pid = $gone->query_safe("SELECT pg_backend_pid()");
my ($gone_file) = glob("$journal/*-" . sprintf('%08x', $gone_pid) . "-*.jnl");
ok(defined $gone_file, 'd5: the session has a journal file');

# The journal directory becomes unwritable.
chmod(0500, $journal) or die "chmod: $!";
my $log_offset = -s $node->logfile;

# A new session: its first metered statement needs a new file, and is refused.
my $late = lic_session('d2 new session');
my ($out, $err) = run($late, "SELECT * FROM df.items WHERE id <= 3");
like($err, qr/ERROR:\s+LD009:/, 'd2: the statement is refused with SQLSTATE LD009');
like($err, qr/could not record metering, so the query is refused/, 'd2: the message says why');
like($err, qr/Permission denied/, 'd2: the detail names the cause');
is($out, '', 'd2: no row was returned');
($out, $err) = run($late, "COPY df.items TO STDOUT");
like($err, qr/ERROR:\s+LD009:/, 'd2: COPY is refused too');
is($out, '', 'd2: no row was copied');
($out, $err) = run($late, "BEGIN; DECLARE c CURSOR FOR SELECT * FROM df.items;");
like($err, qr/ERROR:\s+LD009:/, 'd2: a cursor is refused when it is opened');
run($late, "ROLLBACK");
# a statement that reaches no dataset needs no record and still works
is($late->query_safe("SELECT 1 + 1"), '2', 'd2: a query of no dataset still works');

# A session that has its file goes on: the file was allocated in full when made.
is($early->query_safe("SELECT count(*) FROM df.items WHERE id <= 7"),
	'7', 'd1: a session with a journal file is still metered and served');

# An operator's read of a dataset is audited, so it is refused too.
my $op = $node->background_psql('postgres', on_error_stop => 0);
$op->query_safe("\\set VERBOSITY verbose");
($out, $err) = run($op, "SELECT count(*) FROM df.items");
like($err, qr/ERROR:\s+LD009:/, 'an operator read (audited) is refused too');
$op->quit;

# Records are still moved while the directory is read-only; a file whose
# backend exited cannot be removed yet (one warning), and is kept.
$gone->quit;
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $gone_pid");
my $warnings = 0;
foreach (1 .. 50)    # until its backend has marked the file closed
{
	$node->safe_psql('postgres', 'SELECT licdata.flush(60)');
	$warnings = () = slurp_file($node->logfile, $log_offset) =~ /could not remove journal file/g;
	last if $warnings;
	usleep(100_000);
}
is($node->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'flush works') foreach 1 .. 3;
is(usage_of('d1 session with a file'), '2|2', 'd1: both statements recorded (one row each)');
is(usage_of('d5 ends while read-only'), '1|2', 'd5: recorded, once');
ok(-e $gone_file, 'd5: its file cannot be removed while the directory is read-only');
$warnings = () = slurp_file($node->logfile, $log_offset) =~ /could not remove journal file/g;
is($warnings, 1, 'd5: one warning about the file that cannot be removed, not one per pass');

# Restored: the refused session now works and is metered.
chmod(0700, $journal) or die "chmod: $!";
is($late->query_safe("SELECT count(*) FROM (SELECT * FROM df.items WHERE id <= 3) s"),
	'3', 'd2: after the permissions are restored, the same session is served');
$late->query_safe("SET licdata.consent_ref = 'd3 restored'");
my $n = $late->query_safe("SELECT * FROM df.items WHERE id <= 4 \\g /dev/null\n\\echo :ROW_COUNT");
is($n, '4', 'd3: the client received 4 rows');
my $fresh = lic_session('d4 new session after restore');
is($fresh->query_safe("SELECT * FROM df.items WHERE id <= 6 \\g /dev/null\n\\echo :ROW_COUNT"),
	'6', 'd4: a new session is served');

$early->quit;
$late->quit;
$fresh->quit;
is($node->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'flush works');
# d2 counts the statement that ran after the restore (1 row); the refused ones left nothing
is(usage_of('d2 new session'), '1|1', 'd2: only the statement after the restore is recorded');
is(usage_of('d3 restored'), '1|4', 'd3: recorded');
is(usage_of('d4 new session after restore'), '1|6', 'd4: recorded');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM licdata.audit_log WHERE licensee_name = 'df_lic' AND consent_ref = 'd2 new session'"),
	'1', 'd2: one audit row, for the statement that ran');

# The journal files of the sessions are removed once moved.
my @left;
foreach (1 .. 50)
{
	$node->safe_psql('postgres', 'SELECT licdata.flush(60)');
	@left = glob("$journal/*.jnl");
	last if !@left;
	usleep(100_000);
}
is(scalar(@left), 0, 'no journal file is left behind') or diag("left: @left");

$node->stop;
done_testing();
