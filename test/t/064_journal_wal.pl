# test/t/064_journal_wal.pl -- licdata.journal_sync = on through PostgreSQL's
# WAL (journal_sync_method = wal, the default on PostgreSQL 15 on): a
# statement's record is in a WAL record flushed before its result leaves,
# and WAL replay puts it back into its journal file.
#
# Power loss is staged by hand: after `pg_ctl stop -m immediate` the
# record's bytes in the journal file are zeroed, and the header's head set
# back before it, as if the page had never reached the disk.  Then:
#   A. journal_sync_method = wal: replay restores the record, the flusher
#      bills it once;
#   B. the control, journal_sync_method = fdatasync: the same zeroing loses
#      the record (nothing in the WAL brings it back) -- so A is not a test
#      that cannot fail;
#   C. a record the flusher had moved (the file's tail is past it) is not
#      written back by replay, and stays billed once;
#   D. 100 statements in one message (more than a backend tracks): all
#      restored;
#   E. an open cursor's record, logged again with its new count by the next
#      statement's sync, is restored and billed as cancelled with its rows;
#   F. a standby made from a base backup (a node identity of its own)
#      replays the primary's journal WAL records without restoring any:
#      its promotion reports them as another node's, and it bills none of
#      them, while the primary bills each once.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('journal_wal');
$node->init(allows_streaming => 1);
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.node_name = 'primary'
licdata.flush_interval = '3600s'
licdata.journal_sync = on
log_statement = none
});
$node->start;

if ($node->safe_psql('postgres', 'SHOW server_version_num') < 150000)
{
	plan skip_all => 'journal_sync through the WAL needs PostgreSQL 15 or later';
}

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA jw;
CREATE TABLE jw.items (id integer PRIMARY KEY, val text);
INSERT INTO jw.items SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT licdata.publish('jw.items', 'wal items', 0, 1);
CREATE ROLE jw_lic LOGIN;
SELECT licdata.register_licensee('jw_lic', 'WAL Reader Ltd');
SELECT licdata.grant_licence('jw_lic', 'jw.items', ARRAY['jw_test'], price_per_query => 1);
});
is($node->safe_psql('postgres', 'SELECT licdata.flush(120)'), 't', 'the flusher is up');

# One licensee statement under consent reference $tag; its result must come back.
sub run_statement
{
	my ($n, $tag) = @_;
	my ($ret, $out, $err) = $n->psql(
		'postgres',
		"SET licdata.purpose = 'jw_test'; SET licdata.consent_ref = '$tag';\n"
		  . "SELECT 'result-' || count(*) FROM jw.items WHERE id <= 3;",
		extra_params => [ '-U', 'jw_lic' ]);
	is($ret, 0, "statement '$tag' runs") or diag($err);
	like($out, qr/result-3/, "statement '$tag' returned its result");
}

sub usage_of
{
	my ($n, $tag) = @_;
	return $n->safe_psql('postgres',
		"SELECT count(*) FROM licdata.usage WHERE consent_ref = '$tag'");
}

# The record of consent reference $tag in $n's journal: file, offset in the
# file, length, logical position, and the file's header head.
sub find_record
{
	my ($n, $tag) = @_;
	my $dir = $n->data_dir . '/pg_licdata/journal';
	opendir(my $dh, $dir) or die "no journal directory: $!";
	for my $f (sort grep { /\.jnl$/ } readdir($dh))
	{
		my $bytes = slurp_file("$dir/$f");
		my $at = 0;
		while ((my $i = index($bytes, "$tag\0", $at)) >= 0)
		{
			$at = $i + 1;
			my $rec = $i - 304;    # consent_ref's offset (journal.h)
			next if $rec < 64 || substr($bytes, $rec, 4) ne 'LDJR';
			my $len = unpack('V', substr($bytes, $rec + 4, 4));
			my $lpos = unpack('Q<', substr($bytes, $rec + 72, 8));
			my $head = unpack('Q<', substr($bytes, 32, 8));
			closedir($dh);
			return { path => "$dir/$f", off => $rec, len => $len, lpos => $lpos, head => $head };
		}
	}
	closedir($dh);
	return undef;
}

# As if the record's page (and the header page) never reached the disk.
sub lose_record
{
	my ($r) = @_;
	open(my $fh, '+<:raw', $r->{path}) or die "open $r->{path}: $!";
	sysseek($fh, $r->{off}, 0) or die;
	syswrite($fh, "\0" x $r->{len}) == $r->{len} or die "write: $!";
	if ($r->{head} == $r->{lpos} + $r->{len})
	{
		sysseek($fh, 32, 0) or die;
		syswrite($fh, pack('Q<', $r->{lpos})) == 8 or die "write: $!";
	}
	close($fh);
}

sub record_bytes_zero
{
	my ($r) = @_;
	my $bytes = slurp_file($r->{path});
	return substr($bytes, $r->{off}, $r->{len}) eq "\0" x $r->{len};
}

sub flush
{
	my ($n) = @_;
	is($n->safe_psql('postgres', 'SELECT licdata.flush(120)'), 't', 'licdata.flush() completes');
}

# ---- A. the WAL route: replay restores a record whose page was lost ----
run_statement($node, 'wal-restored');
$node->stop('immediate');
my $r = find_record($node, 'wal-restored');
ok($r, 'the record is in a journal file') or BAIL_OUT('record not found');
lose_record($r);
ok(record_bytes_zero($r), 'its bytes are gone from the file');
my $log_at = -s $node->logfile;
$node->start;
my $log = slurp_file($node->logfile, $log_at);
like($log, qr/WAL replay restored [1-9][0-9]* journal records/, 'replay restored journal records')
  or diag($log);
flush($node);
is(usage_of($node, 'wal-restored'), '1', 'the restored record is billed once');

# ---- B. the control: fdatasync only, the same loss loses the record ----
$node->append_conf('postgresql.conf', "licdata.journal_sync_method = 'fdatasync'\n");
$node->reload;
run_statement($node, 'fsync-lost');
$node->stop('immediate');
$r = find_record($node, 'fsync-lost');
ok($r, 'the fdatasync record is in a journal file') or BAIL_OUT('record not found');
lose_record($r);
$node->start;
flush($node);
is(usage_of($node, 'fsync-lost'), '0',
	'without the WAL a record whose page is lost is gone (the loss staged here is real)');
$node->adjust_conf('postgresql.conf', 'licdata.journal_sync_method', "'wal'");
$node->reload;

# ---- C. a record already moved is not written back ----
# The session stays open, so its file stays (a file is removed once its
# backend has exited and all its records are moved).
my $bg = $node->background_psql('postgres', extra_params => [ '-U', 'jw_lic' ]);
$bg->query_safe("SET licdata.purpose = 'jw_test'");
$bg->query_safe("SET licdata.consent_ref = 'wal-moved'");
like($bg->query_safe('SELECT count(*) FROM jw.items WHERE id <= 3'), qr/3/,
	"statement 'wal-moved' returned its result");
flush($node);
is(usage_of($node, 'wal-moved'), '1', 'the record is moved');
$node->stop('immediate');
$bg->quit;
$r = find_record($node, 'wal-moved');
ok($r, 'the moved record is still in its file') or BAIL_OUT('record not found');
lose_record($r);
$log_at = -s $node->logfile;
$node->start;
$log = slurp_file($node->logfile, $log_at);
like($log, qr/WAL replay restored 0 journal records into their files \(0 there already, [1-9][0-9]* moved before/,
	'replay counts it as moved and writes nothing back') or diag($log);
flush($node);
is(usage_of($node, 'wal-moved'), '1', 'it stays billed once');

# ---- D. more statements in one message than a backend tracks (64) ----
# Their records are logged into the WAL as the list fills, flushed once
# before the results leave; all are restored after the loss of every page.
# (The session's first licensee statement goes alone: the send path is
# wrapped then, with the send buffer's contents unknown.)
my $many = "SET licdata.purpose = 'jw_test'; SET licdata.consent_ref = 'wal-many-first';\n"
  . "SELECT 1 FROM jw.items WHERE id = 1;\n"
  . "SET licdata.consent_ref = 'wal-many';\n"
  . join('\\; ', map { "SELECT $_ FROM jw.items WHERE id = 1" } 1 .. 100) . ";";
my ($ret, $out, $err) = $node->psql('postgres', $many, extra_params => [ '-U', 'jw_lic' ]);
is($ret, 0, '100 statements in one message run') or diag($err);
$node->stop('immediate');
my @recs;
{
	my $dir = $node->data_dir . '/pg_licdata/journal';
	opendir(my $dh, $dir) or die;
	for my $f (sort grep { /\.jnl$/ } readdir($dh))
	{
		my $bytes = slurp_file("$dir/$f");
		my $at = 0;
		while ((my $i = index($bytes, "wal-many\0", $at)) >= 0)
		{
			$at = $i + 1;
			my $rec = $i - 304;
			next if $rec < 64 || substr($bytes, $rec, 4) ne 'LDJR';
			push @recs, {
				path => "$dir/$f", off => $rec,
				len => unpack('V', substr($bytes, $rec + 4, 4)),
				lpos => unpack('Q<', substr($bytes, $rec + 72, 8)),
				head => 0 };
		}
	}
	closedir($dh);
}
is(scalar @recs, 100, 'the 100 records are in the journal');
lose_record($_) for @recs;
{
	# the header as before the first of them
	my @by = sort { $a->{lpos} <=> $b->{lpos} } @recs;
	open(my $fh, '+<:raw', $by[0]{path}) or die;
	sysseek($fh, 32, 0) or die;
	syswrite($fh, pack('Q<', $by[0]{lpos})) == 8 or die;
	close($fh);
}
$node->start;
flush($node);
is(usage_of($node, 'wal-many'), '100', 'all 100 are restored and billed once each');

# ---- E. an open cursor: its record, with the rows sent so far, is restored ----
my $cur = $node->background_psql('postgres', extra_params => [ '-U', 'jw_lic' ]);
$cur->query_safe("SET licdata.purpose = 'jw_test'");
$cur->query_safe("SET licdata.consent_ref = 'wal-cursor'");
$cur->query_safe('BEGIN');
$cur->query_safe('DECLARE c CURSOR FOR SELECT id FROM jw.items ORDER BY id');
$cur->query_safe('FETCH 10 FROM c');
like($cur->query_safe('FETCH 5 FROM c'), qr/15/, 'the cursor has sent 15 rows');
# A FETCH adds no record, so nothing is synced for it alone (as with
# fdatasync: counts are durable as of the last sync); the next statement's
# sync logs the cursor's record again with its new count.
$cur->query_safe("SET licdata.consent_ref = 'wal-cursor-next'");
like($cur->query_safe('SELECT count(*) FROM jw.items WHERE id <= 3'), qr/3/,
	'a statement after the FETCHes returned its result');
$node->stop('immediate');
$cur->quit;
$r = find_record($node, 'wal-cursor');
ok($r, 'the open record is in a journal file') or BAIL_OUT('record not found');
lose_record($r);
$node->start;
flush($node);
is( $node->safe_psql('postgres',
		"SELECT count(*), sum(rows), min(outcome) FROM licdata.usage WHERE consent_ref = 'wal-cursor'"),
	'1|15|cancelled', 'the cursor is billed once, cancelled, with the 15 rows it sent');

# ---- F. a standby does not restore the primary's records ----
$node->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b1', has_streaming => 1);
$standby->append_conf('postgresql.conf', "licdata.node_name = 'standby'\n");
$standby->start;
run_statement($node, 'wal-standby') for 1 .. 3;
$node->wait_for_catchup($standby, 'replay', $node->lsn('flush'));
my $sb_log_at = -s $standby->logfile;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'standby did not promote';
my $sb_log = slurp_file($standby->logfile, $sb_log_at);
like($sb_log, qr/WAL replay restored 0 journal records into their files \([0-9]+ there already, [0-9]+ moved before, [1-9][0-9]* of another node/,
	"the standby's replay restores none of the primary's records") or diag($sb_log);
flush($standby);
is(usage_of($standby, 'wal-standby'), '0', 'the promoted standby bills none of them');
flush($node);
is(usage_of($node, 'wal-standby'), '3', 'the primary bills each once');

$standby->stop;
$node->stop;
done_testing();
