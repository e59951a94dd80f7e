# test/t/061_pipe_poison.pl -- a journal record the tables refuse is
# quarantined, with an audit row saying so, while the records around it
# flow; the worker neither crashes nor loops.
#
# How the poison is made: the worker is idle (flush_interval = 1h, woken only
# by licdata.flush()), a licensee runs statements, and the test edits one
# closed record in its journal file before it is moved.
#  - "dup": the uses array (mutable while a statement runs, so outside the
#    CRC) gets its one use twice, nuses = 2: the record passes every check
#    the worker makes, but it would bill the same licence and dataset twice,
#    which the worker refuses as usage's unique key (journal_ref, licence_id,
#    dataset) did until 1.1 -- the batch fails with 23505, the records are
#    retried one by one, that one is quarantined.
#  - "crc": one byte of the statement text (inside the CRC) is changed: the
#    record fails its checksum and is quarantined, not silently dropped.
# The offsets used are the ones journal.h pins with static assertions.
#
# On the old code (plpgsql flusher) the "dup" record made the worker FATAL on
# every pass: nothing after it was moved (a crash loop).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pipe_poison');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '3600s'
licdata.checkpoint_interval = 3
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA pp;
CREATE TABLE pp.items (id integer PRIMARY KEY, val text);
INSERT INTO pp.items SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT licdata.publish('pp.items', 'poison test', 1, 0);
CREATE ROLE pp_lic LOGIN;
SELECT licdata.register_licensee('pp_lic', 'Poison Ltd');
SELECT licdata.grant_licence('pp_lic', 'pp.items', ARRAY['poison_test']);
});
is($node->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'worker up');
my $worker_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'licdata flusher'");
ok($worker_pid > 0, 'the flusher runs');

# One session per tag: its file is closed when it ends.
for my $tag (qw(before dup middle crc after))
{
	$node->safe_psql(
		'postgres',
		"SET licdata.purpose = 'poison_test'; SET licdata.consent_ref = 'ref-$tag';\n"
		  . "SELECT val FROM pp.items WHERE id = 7;",
		extra_params => [ '-U', 'pp_lic' ]);
}

my $dir = $node->data_dir . '/pg_licdata/journal';

# Find the record whose consent_ref is $ref: (file, record offset, bytes).
sub find_record
{
	my ($ref) = @_;
	opendir(my $dh, $dir) or die "no journal dir: $!";
	for my $f (sort grep { /\.jnl$/ } readdir($dh))
	{
		my $data = slurp_file("$dir/$f");
		my $needle = $ref . "\0";
		my $pos = -1;
		while (($pos = index($data, $needle, $pos + 1)) >= 0)
		{
			my $rec = $pos - 304;    # offsetof(JournalRecord, consent_ref)
			next if $rec < 0;
			next unless substr($data, $rec, 4) eq 'LDJR';
			return ($f, $rec, $data);
		}
	}
	return;
}

sub patch
{
	my ($f, $off, $bytes) = @_;
	open(my $fh, '+<:raw', "$dir/$f") or die "open $f: $!";
	sysseek($fh, $off, 0) or die;
	syswrite($fh, $bytes) == length($bytes) or die "write: $!";
	close($fh);
}

# "dup": the use twice.
{
	my ($f, $rec, $data) = find_record('ref-dup');
	ok(defined $f, 'the "dup" record is in the journal, not moved yet');
	my $nuses = unpack('V', substr($data, $rec + 64, 4));
	my $cap = unpack('V', substr($data, $rec + 68, 4));
	my $stmt_len = unpack('V', substr($data, $rec + 520, 4));
	my $uses = $rec + ((524 + $stmt_len + 7) & ~7);
	is($nuses, 1, 'it has one use');
	ok($cap >= 2, 'and room for another');
	patch($f, $uses + 112, substr($data, $uses, 112));
	patch($f, $rec + 64, pack('V', 2));
}

# "crc": a byte of the statement text.
{
	my ($f, $rec, $data) = find_record('ref-crc');
	ok(defined $f, 'the "crc" record is in the journal');
	patch($f, $rec + 524, 'X');
}

is($node->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'flush completes');

is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(consent_ref, ',' ORDER BY consent_ref) FROM licdata.usage"),
	'ref-after,ref-before,ref-middle',
	'the records around the poison are moved');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(sqlstate || ':' || (record->>'consent_ref'), ',' ORDER BY record->>'consent_ref') FROM licdata.quarantine"),
	'22000:ref-crc,23505:ref-dup',
	'the two poison records are quarantined with their error');
like(
	$node->safe_psql('postgres',
		"SELECT reason FROM licdata.quarantine WHERE record->>'consent_ref' = 'ref-dup'"),
	qr/duplicate key/,
	'the reason says why');
like(
	$node->safe_psql('postgres',
		"SELECT reason FROM licdata.quarantine WHERE record->>'consent_ref' = 'ref-crc'"),
	qr/checksum/,
	'a record that fails its checksum is quarantined, not dropped');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM licdata.quarantine q JOIN licdata.audit_log a USING (journal_ref) "
		  . "WHERE a.decision = 'quarantined' AND length(q.raw) > 0"),
	'2',
	'each has an audit row saying it was quarantined');
is( $node->safe_psql('postgres', 'SELECT ok, records_checked FROM licdata.verify_audit()'),
	't|5', 'the audit chain verifies across the quarantined rows');
ok( $node->safe_psql('postgres', 'SELECT count(*) FROM licdata.audit_checkpoints') >= 1,
	'checkpoints are signed');
is( $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'licdata flusher'"),
	$worker_pid, 'the worker did not restart');

# It goes on: a new record flows, the quarantined ones are not retried.
$node->safe_psql(
	'postgres',
	"SET licdata.purpose = 'poison_test'; SET licdata.consent_ref = 'ref-later';\n"
	  . "SELECT val FROM pp.items WHERE id = 8;",
	extra_params => [ '-U', 'pp_lic' ]);
is($node->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'flush completes again');
is($node->safe_psql('postgres', 'SELECT count(*) FROM licdata.usage'), '4', 'later records flow');
is($node->safe_psql('postgres', 'SELECT count(*) FROM licdata.quarantine'), '2', 'nothing quarantined twice');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_ls_dir(\'pg_licdata/journal\')'),
	'0', 'every journal file is removed');

# Records tables: a licensee reads no quarantine, and nobody writes it.
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT count(*) FROM licdata.quarantine',
	extra_params => [ '-U', 'pp_lic' ]);
like($err, qr/permission denied/, 'a licensee cannot read the quarantine');
($ret, $out, $err) = $node->psql('postgres', 'DELETE FROM licdata.quarantine');
like($err, qr/written only by licdata/, 'not even a superuser edits the quarantine');

my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|licdata flusher.*exited with exit code/,
	'no worker crash in the log');
$node->stop;
done_testing();
