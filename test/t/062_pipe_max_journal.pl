# test/t/062_pipe_max_journal.pl -- licdata.max_journal_size bounds the
# journal's disk: a statement that would need a journal file beyond it is
# refused with LD009 (and a hint), never served unmetered; once the worker
# has moved records and removed files, statements are served again.  Also:
# licdata.journal_status shows the files, and only operators and auditors
# read it.
#
# Each journal file is 4 MB; with max_journal_size = 4MB one session's file
# fills the budget, so a second session cannot start one.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('pipe_max_journal');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'licdata'
licdata.database = 'postgres'
licdata.flush_interval = '100ms'
licdata.max_journal_size = '4MB'
});
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE SCHEMA mj;
CREATE TABLE mj.items (id integer PRIMARY KEY, val text);
INSERT INTO mj.items SELECT g, 'v' || g FROM generate_series(1, 100) g;
SELECT licdata.publish('mj.items', 'journal size test', 1, 0);
CREATE ROLE mj_lic LOGIN;
SELECT licdata.register_licensee('mj_lic', 'Journal Ltd');
SELECT licdata.grant_licence('mj_lic', 'mj.items', ARRAY['size_test']);
CREATE ROLE mj_aud LOGIN IN ROLE licdata_auditor;
});
is($node->safe_psql('postgres', 'SHOW licdata.max_journal_size'), '4MB', 'the setting has units');

# Session A holds the one journal file the budget allows.
my $sa = $node->background_psql('postgres', extra_params => [ '-U', 'mj_lic' ], on_error_stop => 0);
$sa->query_safe("SET licdata.purpose = 'size_test'; SET licdata.consent_ref = 'a'");
is($sa->query_safe('SELECT val FROM mj.items WHERE id = 1'), 'v1', 'session A is served');

is( $node->safe_psql('postgres',
		"SELECT count(*), sum(bytes) FROM licdata.journal_status WHERE file IS NOT NULL"),
	'1|4194304', 'journal_status shows its file');
is( $node->safe_psql('postgres',
		'SELECT count(*) FROM licdata.journal_status', extra_params => [ '-U', 'mj_aud' ]),
	'1', 'an auditor reads journal_status');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM licdata.journal_status',
	extra_params => [ '-U', 'mj_lic' ]);
like($err, qr/permission denied/, 'a licensee does not');
($ret, $out, $err) = $node->psql('postgres', 'SELECT * FROM licdata_internal._journal_status()',
	extra_params => [ '-U', 'mj_lic' ]);
like($err, qr/permission denied/, 'nor through the function');

# Session B would need a second file: refused, no data.
($ret, $out, $err) = $node->psql(
	'postgres',
	"SET licdata.purpose = 'size_test'; SET licdata.consent_ref = 'b';\n"
	  . "SELECT val FROM mj.items WHERE id = 2;",
	extra_params => [ '-U', 'mj_lic' ]);
isnt($ret, 0, 'session B is refused');
like($err, qr/ERROR:  could not record metering, so the query is refused/, 'with LD009\'s message');
like($err, qr/max_journal_size/, 'saying why');
like($err, qr/HINT:  Retry when the background worker has caught up/, 'and what to do');
unlike($out, qr/v2/, 'no data was served unmetered');

# Session A goes on in its own file.
is($sa->query_safe('SELECT val FROM mj.items WHERE id = 3'), 'v3', 'session A goes on');
$sa->quit;

# Its file is moved and removed: B is served again.
ok( $node->poll_query_until(
		'postgres',
		"SELECT count(*) = 0 FROM licdata.journal_status WHERE file IS NOT NULL"),
	'the worker removes the finished file');
my $served = 0;
for (1 .. 50)
{
	($ret, $out, $err) = $node->psql(
		'postgres',
		"SET licdata.purpose = 'size_test'; SET licdata.consent_ref = 'b2';\n"
		  . "SELECT val FROM mj.items WHERE id = 2;",
		extra_params => [ '-U', 'mj_lic' ]);
	if ($ret == 0 && $out eq 'v2') { $served = 1; last; }
	usleep(200_000);
}
ok($served, 'after the worker caught up, new statements are served');

# Raised at reload: two sessions at once.
$node->append_conf('postgresql.conf', "licdata.max_journal_size = '16MB'\n");
$node->reload;
ok( $node->poll_query_until('postgres', "SELECT setting = '16384' FROM pg_settings WHERE name = 'licdata.max_journal_size'"),
	'reloaded');
$sa = $node->background_psql('postgres', extra_params => [ '-U', 'mj_lic' ], on_error_stop => 0);
$sa->query_safe("SET licdata.purpose = 'size_test'; SET licdata.consent_ref = 'a2'");
is($sa->query_safe('SELECT val FROM mj.items WHERE id = 4'), 'v4', 'one session');
($ret, $out, $err) = $node->psql(
	'postgres',
	"SET licdata.purpose = 'size_test'; SET licdata.consent_ref = 'b3';\n"
	  . "SELECT val FROM mj.items WHERE id = 5;",
	extra_params => [ '-U', 'mj_lic' ]);
is($out, 'v5', 'and another, under the raised limit');
$sa->quit;

is($node->safe_psql('postgres', 'SELECT licdata.flush(60)'), 't', 'flush');
is( $node->safe_psql('postgres',
		"SELECT string_agg(consent_ref, ',' ORDER BY consent_ref) FROM licdata.usage"),
	'a,a,a2,b2,b3', 'exactly the served statements are billed (the refused one is not)');
$node->stop;
done_testing();
