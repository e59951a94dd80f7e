# test/t/101_keys_dump_restore.pl -- the master key moves with a dump:
# licdata.export_master_key on the old cluster, pg_dump -Fc + roles, a new
# cluster (its own random key), pg_restore, licdata.import_master_key: the
# licensee gets the same pseudonyms, FPE values and noise as before, its
# stored token still finds its applicant, verify_audit() passes with the old
# signed checkpoints, and new checkpoints are signed by the old audit key.
#
# Also: a wrong passphrase or an altered export is refused and changes
# nothing; only superusers may export or import; both refuse to run while
# the statement would be logged (the passphrase would be in the log); a
# backend connected before the import switches to the imported key at once;
# neither the passphrase nor the export reaches the server log.
#
# Run by test/run-tests.sh (suite "tap") with prove, from the top of the tree.
use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $conf = "shared_preload_libraries = 'licdata'\n"
  . "licdata.database = 'postgres'\n"
  . "licdata.flush_interval = '100ms'\n"
  . "licdata.checkpoint_interval = 3\n";
my $passphrase = 'tap-passphrase-Zq7!xK2v';

# The session settings under which export and import run: nothing of the
# statement reaches the log (PostgreSQL::Test::Cluster sets log_statement = all).
my $quiet = "SET log_statement = 'none';\nSET log_min_duration_statement = -1;\n";

# ---------------------------------------------------------------------------
# Node A: a licensee served keyed masks
# ---------------------------------------------------------------------------
my $node_a = PostgreSQL::Test::Cluster->new('keys_a');
$node_a->init;
$node_a->append_conf('postgresql.conf', $conf);
$node_a->start;

$node_a->safe_psql(
	'postgres', q{
CREATE EXTENSION licdata;
CREATE ROLE kd_op LOGIN IN ROLE licdata_operator;
CREATE ROLE kd_bank NOLOGIN;
CREATE ROLE kd_analyst LOGIN IN ROLE kd_bank;
CREATE SCHEMA pd;
CREATE TABLE pd.people (
	id			integer PRIMARY KEY,
	id_number	varchar(18) NOT NULL,
	mobile		text NOT NULL,
	salary		numeric(10,2) NOT NULL
);
INSERT INTO pd.people VALUES
	(1, '110105194912310021', '13812345678', 12000),
	(2, '110105198003150047', '13900001111', 25000),
	(3, '310105199001010012', '13700002222', 8000);
SELECT licdata.publish('pd.people');
SELECT licdata.register_licensee('kd_bank', 'Key Bank');
SELECT licdata.grant_licence('kd_bank', 'pd.people', ARRAY['credit_assessment']);
SELECT licdata.set_mask('pd.people', 'id_number', 'pseudonym', '{"length": 16}');
SELECT licdata.set_mask('pd.people', 'mobile', 'fpe', '{"alphabet": "0123456789"}');
SELECT licdata.set_mask('pd.people', 'salary', 'noise', '{"absolute": 1000}');
});

my $served = q{SET licdata.purpose = 'credit_assessment';
SELECT id, id_number, mobile, salary FROM pd.people ORDER BY id;};
my $token = q{SET licdata.purpose = 'credit_assessment';
SELECT licdata.token('pd.people', 'id_number', '110105198003150047');};

sub licensee
{
	my ($node, $sql) = @_;
	return $node->safe_psql('postgres', $sql, extra_params => [ '-U', 'kd_analyst' ]);
}

my $view_a = licensee($node_a, $served);
my $token_a = licensee($node_a, $token);
like($view_a, qr/^1\|[a-z2-7]{16}\|\d{11}\|\d+\.\d\d$/m, 'A: the licensee is served keyed masks');
unlike($view_a, qr/110105194912310021|13812345678|\|12000\.00/, 'A: no raw value of row 1');
like($token_a, qr/^[a-z2-7]{16}$/, 'A: the licensee\'s token for its applicant');
for my $i (1 .. 4)
{
	licensee($node_a, $served);
}
$node_a->safe_psql('postgres', 'SELECT licdata.flush()');
my $checkpoints_a = $node_a->safe_psql('postgres',
	'SELECT count(*) FROM licdata.audit_checkpoints');
ok($checkpoints_a >= 2, "A: signed audit checkpoints ($checkpoints_a)");
my $audit_key_a = $node_a->safe_psql('postgres', 'SELECT licdata.audit_public_key()');
is( $node_a->safe_psql('postgres',
		'SELECT count(*) FROM licdata.audit_checkpoints WHERE public_key <> licdata.audit_public_key()'),
	'0', 'A: the checkpoints carry A\'s audit key');

# ---------------------------------------------------------------------------
# Export: refused while logged, refused to non-superusers, then done quietly
# ---------------------------------------------------------------------------
my ($ret, $out, $err) = $node_a->psql('postgres',
	"SELECT licdata.export_master_key('refused-because-logged')");
like($err, qr/refuses to run while statements are logged/,
	'export is refused under log_statement = all');
($ret, $out, $err) = $node_a->psql('postgres',
	"SET log_min_duration_statement = 0; SELECT licdata.export_master_key('refused-because-logged')");
like($err, qr/refuses to run while statements are logged/,
	'export is refused under log_min_duration_statement');
($ret, $out, $err) = $node_a->psql('postgres', "SELECT licdata.export_master_key('not-the-passphrase')",
	extra_params => [ '-U', 'kd_op' ]);
like($err, qr/permission denied for function export_master_key/,
	'an operator who is not a superuser cannot export the key');
($ret, $out, $err) = $node_a->psql('postgres', "SELECT licdata.export_master_key('not-the-passphrase')",
	extra_params => [ '-U', 'kd_analyst' ]);
like($err, qr/permission denied for function export_master_key/,
	'a licensee cannot export the key');
($ret, $out, $err) = $node_a->psql('postgres', $quiet . "SELECT licdata.export_master_key('short')");
like($err, qr/passphrase of export_master_key is too short/, 'a short passphrase is refused');

my $export = $node_a->safe_psql('postgres', $quiet . "SELECT licdata.export_master_key('$passphrase')");
like($export,
	qr/^licdata-master-key-v1:argon2id13:\d+:\d+:[A-Za-z0-9+\/=]{24}:[A-Za-z0-9+\/=]{32}:[A-Za-z0-9+\/=]{64}$/,
	'the export is the versioned one-line format');
my $export2 = $node_a->safe_psql('postgres', $quiet . "SELECT licdata.export_master_key('$passphrase')");
isnt($export2, $export, 'each export has its own salt and nonce');

# ---------------------------------------------------------------------------
# Dump A (database and roles)
# ---------------------------------------------------------------------------
# the audit rows the dump holds: those moved before it (pg_dump's own read of
# the dataset is audited too, after the dump)
$node_a->safe_psql('postgres', 'SELECT licdata.flush()');
my $audit_max_a = $node_a->safe_psql('postgres', 'SELECT max(seq) FROM licdata.audit_log');
my $tempdir = PostgreSQL::Test::Utils::tempdir;
my $dump = "$tempdir/a.dump";
my $roles = "$tempdir/roles.sql";
$node_a->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node_a->connstr('postgres') ],
	'pg_dump -Fc of A');
$node_a->command_ok(
	[ 'pg_dumpall', '--roles-only', '-f', $roles, '-d', $node_a->connstr('postgres') ],
	'pg_dumpall --roles-only of A');
my $audit_sql = "SELECT x::text FROM licdata.audit_log x WHERE seq <= $audit_max_a ORDER BY seq";
my $checkpoints_sql =
  "SELECT x::text FROM licdata.audit_checkpoints x WHERE seq <= $audit_max_a ORDER BY seq";
my $audit_a = $node_a->safe_psql('postgres', $audit_sql);
my $cps_a = $node_a->safe_psql('postgres', $checkpoints_sql);

# ---------------------------------------------------------------------------
# Node B: a new cluster with its own key; roles, then the dump
# ---------------------------------------------------------------------------
my $node_b = PostgreSQL::Test::Cluster->new('keys_b');
$node_b->init;
$node_b->append_conf('postgresql.conf', $conf);
$node_b->start;
$node_b->safe_psql('postgres', 'CREATE ROLE kd_b_only NOLOGIN');
my $superuser = $node_b->safe_psql('postgres', 'SELECT current_user');
($ret, $out, $err) =
  $node_b->psql('postgres', PostgreSQL::Test::Utils::slurp_file($roles), on_error_stop => 0);
is_deeply([ grep { !/^role "\Q$superuser\E" already exists$/ } ($err =~ /ERROR:\s+(.*)/g) ],
	[], 'B: roles restored');
my ($restore_out, $restore_err) = ('', '');
{
	local $ENV{PGHOST} = $node_b->host;
	local $ENV{PGPORT} = $node_b->port;
	ok( IPC::Run::run(
			[ 'pg_restore', '-d', 'postgres', $dump ],
			'>', \$restore_out, '2>', \$restore_err),
		'B: pg_restore succeeds')
	  or diag($restore_err);
}

my $audit_key_b0 = $node_b->safe_psql('postgres', 'SELECT licdata.audit_public_key()');
isnt($audit_key_b0, $audit_key_a, 'B before the import: its own audit key');
my $view_b0 = licensee($node_b, $served);
isnt($view_b0, $view_a, 'B before the import: other pseudonyms, FPE values and noise (the key is not in the dump)');
isnt(licensee($node_b, $token), $token_a, 'B before the import: the stored token would not match');

# A licensee backend connected before the import.
my $s = $node_b->background_psql('postgres', extra_params => [ '-U', 'kd_analyst' ]);
$s->query_safe("SET licdata.purpose = 'credit_assessment'");
is($s->query_safe('SELECT id, id_number, mobile, salary FROM pd.people ORDER BY id'), $view_b0,
	'B: a session opened before the import is served under B\'s key');

# ---------------------------------------------------------------------------
# Import: refused cases change nothing
# ---------------------------------------------------------------------------
($ret, $out, $err) = $node_b->psql('postgres',
	"SELECT licdata.import_master_key('not-an-export', 'refused-because-logged')");
like($err, qr/refuses to run while statements are logged/,
	'B: import is refused under log_statement = all');
($ret, $out, $err) = $node_b->psql('postgres',
	$quiet . "SELECT licdata.import_master_key('$export', 'the-wrong-passphrase')");
like($err, qr/could not unwrap the exported master key/, 'B: a wrong passphrase is refused');
my $altered = $export;
$altered =~ s/:(\d+):(\d+):/':' . ($1 + 1) . ":$2:"/e;
($ret, $out, $err) = $node_b->psql('postgres',
	$quiet . "SELECT licdata.import_master_key('$altered', '$passphrase')");
like($err, qr/could not unwrap the exported master key/,
	'B: an export with an altered field is refused');
($ret, $out, $err) = $node_b->psql('postgres',
	$quiet . "SELECT licdata.import_master_key('licdata-master-key-v1:argon2id13:3:67108864:AAAA', '$passphrase')");
like($err, qr/exported master key is malformed/, 'B: a malformed export is refused');
($ret, $out, $err) = $node_b->psql('postgres',
	$quiet . "SELECT licdata.import_master_key(replace('$export', 'v1:', 'v9:'), '$passphrase')");
like($err, qr/exported master key is malformed/, 'B: an unknown format version is refused');
($ret, $out, $err) = $node_b->psql('postgres',
	"SELECT licdata.import_master_key('not-an-export', 'not-the-passphrase')",
	extra_params => [ '-U', 'kd_analyst' ]);
like($err, qr/permission denied for function import_master_key/,
	'B: a licensee cannot import a key');
is($node_b->safe_psql('postgres', 'SELECT licdata.audit_public_key()'), $audit_key_b0,
	'B: after the refused imports the key is unchanged');
is(licensee($node_b, $served), $view_b0, 'B: and the licensee is served as before');

# ---------------------------------------------------------------------------
# Import A's key
# ---------------------------------------------------------------------------
# The licensee's statements on B so far were audited, and checkpoints falling
# due were signed with B's own key (the README says to import right after
# the restore, before licensees connect).
$node_b->safe_psql('postgres', 'SELECT licdata.flush()');
my $cp_before_import =
  $node_b->safe_psql('postgres', 'SELECT coalesce(max(seq), 0) FROM licdata.audit_checkpoints');
$node_b->safe_psql('postgres',
	$quiet . "SELECT licdata.import_master_key(E'$export\\n', '$passphrase')");
is($node_b->safe_psql('postgres', 'SELECT licdata.audit_public_key()'), $audit_key_a,
	'B after the import: A\'s audit key');
is(licensee($node_b, $served), $view_a,
	'B after the import: the same pseudonyms, FPE values and noise as on A');
is(licensee($node_b, $token), $token_a, 'B after the import: the stored token matches again');
is( licensee($node_b,
		"SET licdata.purpose = 'credit_assessment'; SELECT id FROM pd.people WHERE id_number = '$token_a'"),
	'2', 'B after the import: the token finds the applicant');
is($s->query_safe('SELECT id, id_number, mobile, salary FROM pd.people ORDER BY id'), $view_a,
	'B: the session opened before the import switched to the imported key at once');
$s->quit;

my $fpe_a = (split /\|/, (split /\n/, $view_a)[0])[2];
is( $node_b->safe_psql('postgres',
		"SELECT licdata.unmask_fpe('$fpe_a', 'kd_bank', '0123456789')"),
	'13812345678', 'B after the import: an operator unmasks A\'s FPE value');

is($node_b->safe_psql('postgres', $audit_sql), $audit_a, 'B: A\'s audit rows came back');
is($node_b->safe_psql('postgres', $checkpoints_sql), $cps_a, 'B: A\'s signed checkpoints came back');
is($node_b->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'), 't',
	'B: verify_audit() passes with A\'s signed checkpoints');

# New records on B: the worker signs new checkpoints with A's audit key.
for my $i (1 .. 4)
{
	licensee($node_b, $served);
}
$node_b->safe_psql('postgres', 'SELECT licdata.flush()');
is( $node_b->safe_psql('postgres',
		"SELECT count(*) > 0 AND bool_and(public_key = '$audit_key_a') FROM licdata.audit_checkpoints WHERE seq > $cp_before_import"),
	't', 'B: checkpoints signed after the import carry A\'s audit key');
is($node_b->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'), 't',
	'B: the audit trail verifies across the move');

# The imported key is in B's key file: it survives a restart.
$node_b->restart;
is(licensee($node_b, $served), $view_a, 'B after a restart: still A\'s key');

# Nothing of the passphrase or the export in either server log.
for my $node ($node_a, $node_b)
{
	my $log = slurp_file($node->logfile);
	unlike($log, qr/\Q$passphrase\E/, $node->name . ': the passphrase is not in the server log');
	unlike($log, qr/\Q$export\E|the-wrong-passphrase/, $node->name . ': the export is not in the server log');
	like($log, qr/licdata master key (ex|im)ported by role/, $node->name . ': the log says the key was moved');
}

$node_a->stop;
$node_b->stop;
done_testing();
