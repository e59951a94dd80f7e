# test/t/100_upgrade.pl -- ALTER EXTENSION licdata UPDATE from 1.0 to 1.1.
#
# Node "old": CREATE EXTENSION licdata VERSION '1.0' (the frozen
# licdata--1.0.sql) under the current (1.1) library.  The operator publishes
# tables, registers licensees, grants licences (every option), sets masks at
# each precedence level, adds an authority; usage and audit records, with
# signed checkpoints, are written by 1.0's own licdata._flush_records from
# journal records of 1.0's shape (the 1.1 library neither serves licensees
# nor moves records into a 1.0 database -- that is the version check under
# test -- so this is how 1.0's worker wrote them).
#
# Under 1.0 with the 1.1 library: a licensee is refused (LD011) with a hint
# to run ALTER EXTENSION licdata UPDATE, on every path (query, token, keyed
# mask functions); operators keep working; licdata.flush() says records wait.
#
# Then ALTER EXTENSION licdata UPDATE, and:
#   - pg_dump --schema-only --binary-upgrade (the only pg_dump mode that
#     writes an extension's member objects) of the updated database equals
#     that of a fresh 1.1 install on node "fresh", after normalising only
#     what differs between any two clusters: OIDs, relfilenodes and
#     attribute LSNs in binary_upgrade_* calls, the values of sequence
#     setval calls (data), and pg_dump's random \restrict key.  The
#     licensee's own schema (pd) is left out with -N.  On a difference the
#     test prints a unified diff of the two normalised dumps.
#   - every row of every licdata table is unchanged in its 1.0 columns;
#   - verify_audit() passes, and the records the journal held while the
#     versions differed (the operator's reads, the licensee's refusals) are
#     moved after the update;
#   - the licensee is served again, with its masks, also in a session that
#     was open (and refused) before the update: ALTER EXTENSION makes every
#     backend read the version again.
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

my $old = PostgreSQL::Test::Cluster->new('upgrade_old');
$old->init;
$old->append_conf('postgresql.conf', $conf);
$old->start;

# ---------------------------------------------------------------------------
# 1.0, with catalog and records
# ---------------------------------------------------------------------------
$old->safe_psql('postgres', q{
CREATE EXTENSION licdata VERSION '1.0';
CREATE ROLE up_op LOGIN IN ROLE licdata_operator;
CREATE ROLE up_bank NOLOGIN;
CREATE ROLE up_analyst LOGIN IN ROLE up_bank;
CREATE ROLE up_bureau LOGIN;
CREATE SCHEMA pd;
GRANT USAGE ON SCHEMA pd TO up_op;
CREATE TABLE pd.people (
	id			integer PRIMARY KEY,
	name		text NOT NULL,
	id_number	varchar(18) NOT NULL,
	region		text NOT NULL,
	salary		numeric(10,2)
);
INSERT INTO pd.people VALUES
	(1, '张三丰', '110105194912310021', '110000', 12000),
	(2, '欧阳娜娜', '110105198003150047', '110000', 25000),
	(3, '李四', '310105199001010012', '310000', 8000);
CREATE TABLE pd.firms (id integer, region text) PARTITION BY LIST (region);
CREATE TABLE pd.firms_bj PARTITION OF pd.firms FOR VALUES IN ('110000');
INSERT INTO pd.firms VALUES (1, '110000');
});
is($old->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'licdata'}),
	'1.0', 'old: licdata 1.0 installed from the frozen script');

$old->safe_psql('postgres', q{
SELECT licdata.publish('pd.people', 'Residents', 0.50, 0.01);
SELECT licdata.publish('pd.firms', 'Firms');
SELECT licdata.register_licensee('up_bank', 'Upgrade Bank Ltd.', '91110000UB');
SELECT licdata.register_licensee('up_bureau', 'Upgrade Bureau');
SELECT licdata.grant_licence(
	licensee => 'up_bank', dataset => 'pd.people',
	purposes => ARRAY['credit_assessment', 'fraud_check'],
	columns => ARRAY['id', 'name', 'id_number', 'region']::name[],
	row_filter => 'region = ''110000''',
	valid_from => '2025-01-01 00:00:00+00', valid_until => '2099-12-31 00:00:00+00',
	max_rows_per_query => 100, max_rows_per_day => 10000, max_queries_per_day => 500,
	require_consent_ref => true, price_per_query => 1.25, price_per_row => 0.002);
SELECT licdata.grant_licence('up_bureau', 'pd.people', '{statistics}', mode => 'aggregate',
	min_group_size => 2);
SELECT licdata.grant_licence('up_bureau', 'pd.firms', '{statistics}');
SELECT licdata.suspend_licence(3);
SELECT licdata.grant_licence('up_bureau', 'pd.people', '{marketing}');
SELECT licdata.revoke_licence(4);
SELECT licdata.set_mask('pd.people', 'name', 'cn_name');
SELECT licdata.set_mask('pd.people', 'id_number', 'pseudonym', '{"length": 12}');
SELECT licdata.set_mask('pd.people', 'name', 'partial', '{"keep_first": 1, "keep_last": 1, "pad": "#"}', 1);
SELECT licdata.set_mask('pd.people', 'id_number', 'cn_id', '{}', 1, 'credit_assessment');
},
	extra_params => [ '-U', 'up_op' ]);
$old->safe_psql('postgres',
	q{INSERT INTO licdata.authorities (name, public_key)
	  VALUES ('Data Office', 'MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=')});

# Usage and audit records through 1.0's own flush function, as 1.0's worker
# moved journal records: licensee statements (usage + audit), a denial
# (audit only) and an operator read; checkpoints every 3 rows.
$old->safe_psql('postgres', q{
BEGIN;
SELECT licdata._set_records_writable(true);
SELECT licdata._flush_records(jsonb_agg(r ORDER BY n)) FROM (
	SELECT n, jsonb_build_object(
		'ref', 'upgrade-test-' || n,
		'kind', CASE n WHEN 4 THEN 2 WHEN 7 THEN 3 ELSE 1 END,
		'denied', 0,
		'rows', n, 'nested_rows', 0, 'rows_aggregated', 0,
		'licensee', CASE WHEN n = 7 THEN 0 ELSE 'up_bank'::regrole::oid END,
		'uses', jsonb_build_array(jsonb_build_object(
			'dataset', 'pd.people'::regclass::oid, 'licence_id', CASE WHEN n = 7 THEN 0 ELSE 1 END,
			'aggregate', false, 'price_per_query', 1.25, 'price_per_row', 0.002)),
		'started_at', timestamptz '2026-11-03 10:00:00+00' + n * interval '1 minute',
		'ended_at', timestamptz '2026-11-03 10:00:01+00' + n * interval '1 minute',
		'session_user_name', CASE WHEN n = 7 THEN 'up_op' ELSE 'up_analyst' END,
		'role_name', CASE WHEN n = 7 THEN 'up_op' ELSE 'up_analyst' END,
		'purpose', CASE WHEN n = 4 THEN 'marketing' ELSE 'credit_assessment' END,
		'consent_ref', 'APP-' || n, 'query_id', 1000 + n,
		'statement', 'SELECT id, name FROM pd.people -- ' || n, 'statement_is_hash', 0,
		'duration_ms', 1.5 * n,
		'outcome', CASE WHEN n = 4 THEN 'error' ELSE 'ok' END,
		'sqlstate', CASE WHEN n = 4 THEN 'LD002' END) AS r
	  FROM generate_series(1, 8) n) s;
SELECT licdata._set_records_writable(false);
COMMIT;
});
is($old->safe_psql('postgres',
		'SELECT (SELECT count(*) FROM licdata.usage) || \' \' || (SELECT count(*) FROM licdata.audit_log)'
		  . ' || \' \' || (SELECT count(*) FROM licdata.audit_checkpoints)'),
	'6 8 2', 'old: 6 usage rows, 8 audit rows, 2 signed checkpoints written by 1.0');
is($old->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'), 't',
	'old: the 1.0 audit trail verifies');

# ---------------------------------------------------------------------------
# The 1.1 library against 1.0 SQL
# ---------------------------------------------------------------------------
my %licensee_sql = (
	query => q{SET licdata.purpose = 'credit_assessment'; SET licdata.consent_ref = 'APP-9';
SELECT id, name, id_number FROM pd.people ORDER BY id;},
	token => q{SET licdata.purpose = 'credit_assessment'; SET licdata.consent_ref = 'APP-9';
SELECT licdata.token('pd.people', 'id_number', '110105194912310021');},
	mask => q{SELECT licdata.mask_pseudonym('110105194912310021', 12);},
);
for my $k (sort keys %licensee_sql)
{
	my ($ret, $out, $err) = $old->psql('postgres', $licensee_sql{$k},
		extra_params => [ '-U', 'up_analyst', '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/ERROR:  LD011: licdata cannot serve licensees: its library is version 1\.1 but the extension in this database is version 1\.0/,
		"old: the licensee's $k is refused with LD011");
	like($err, qr/HINT:  .*ALTER EXTENSION licdata UPDATE/, "old: the refusal of $k says to run ALTER EXTENSION licdata UPDATE");
	is($out, '', "old: the licensee's $k returned nothing");
}
# A licensee session that stays open across the update.
my $s = $old->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'up_analyst' ]);
$s->query_safe(q{SET licdata.purpose = 'credit_assessment'});
$s->query_safe(q{SET licdata.consent_ref = 'APP-10'});
my ($s_out, $s_ret) = $s->query('SELECT id FROM pd.people ORDER BY id');
ok($s_ret == 1 && $s->{stderr} =~ /LD011|licdata cannot serve licensees/,
	'old: an open licensee session is refused too');
$s->{stderr} = '';
is($old->safe_psql('postgres', 'SELECT 1', extra_params => [ '-U', 'up_analyst' ]), '1',
	'old: a licensee\'s statement that reaches no dataset still runs');
is($old->safe_psql('postgres', 'SELECT count(*) FROM pd.people', extra_params => [ '-U', 'up_op' ]),
	'3', 'old: the operator keeps working (reads a dataset)');
is( $old->safe_psql('postgres', q{SELECT licdata.grant_licence('up_bureau', 'pd.firms', '{planning}')},
		extra_params => [ '-U', 'up_op' ]),
	'5', 'old: the operator keeps working (grants a licence)');
my ($ret, $out, $err) = $old->psql('postgres', 'SELECT licdata.flush(5)');
like($err, qr/does not move records while its library \(version 1\.1\) and the extension \(version 1\.0\) differ/,
	'old: flush() says the records wait for the update');

# The 1.0 state, table by table, in its 1.0 columns.
my @tables = qw(datasets licensees licences masks authorities usage audit_log audit_checkpoints);
# Rows made before the update (records moved after it come on top).
my %before_update = (
	audit_log => 'seq <= 8',
	audit_checkpoints => 'seq <= 8',
	usage => q{journal_ref LIKE 'upgrade-test-%'});
my %cols;
my %before;
for my $t (@tables)
{
	$cols{$t} = $old->safe_psql('postgres', qq{
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
 WHERE attrelid = 'licdata.$t'::regclass AND attnum > 0 AND NOT attisdropped});
	$before{$t} = $old->safe_psql('postgres', "SELECT row($cols{$t})::text FROM licdata.$t WHERE "
		  . ($before_update{$t} // 'true') . ' ORDER BY 1');
	isnt($before{$t}, '', "old: licdata.$t has rows");
}
my $seq_sql = q{SELECT string_agg(c.relname || ' ' || pg_sequence_last_value(c.oid), ', ' ORDER BY c.relname)
  FROM pg_class c WHERE c.relkind = 'S'
   AND c.relnamespace IN ('licdata'::regnamespace, (SELECT n.oid FROM pg_namespace n WHERE n.nspname = 'licdata_internal'))
   AND c.relname IN ('licences_id_seq', 'licensee_key_id_seq', 'masks_id_seq', 'usage_id_seq')};
# (1.1 stores records per batch: usage_id_seq moved with the row table to licdata_internal)
my $seq_before = $old->safe_psql('postgres', $seq_sql);

# ---------------------------------------------------------------------------
# ALTER EXTENSION licdata UPDATE
# ---------------------------------------------------------------------------
$old->safe_psql('postgres', 'ALTER EXTENSION licdata UPDATE');
is($old->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'licdata'}),
	'1.1', 'old: updated to 1.1');
is($old->safe_psql('postgres', 'SELECT licdata.flush()'), 't',
	'old: flush() works again after the update');

for my $t (@tables)
{
	is($old->safe_psql('postgres', "SELECT row($cols{$t})::text FROM licdata.$t WHERE "
			  . ($before_update{$t} // 'true') . ' ORDER BY 1'),
		$before{$t}, "updated: licdata.$t unchanged in its 1.0 columns");
}
is($old->safe_psql('postgres', $seq_sql), $seq_before, 'updated: the sequences are where they were');
is($old->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'), 't',
	'updated: verify_audit() passes');
ok( $old->safe_psql('postgres',
		q{SELECT count(*) FROM licdata.audit_log WHERE seq > 8 AND sqlstate = 'LD011' AND decision = 'deny'}) >= 2,
	'updated: the licensee\'s refusals held in the journal were moved after the update');
ok( $old->safe_psql('postgres',
		q{SELECT count(*) FROM licdata.audit_log WHERE seq > 8 AND kind = 'operator' AND role_name = 'up_op'}) >= 1,
	'updated: the operator\'s read held in the journal was moved after the update');

is($s->query_safe('SELECT id FROM pd.people ORDER BY id'), "1\n2",
	'updated: the licensee session opened under 1.0 is served at its next statement, without reconnecting');
$s->quit;
my $served = $old->safe_psql('postgres', $licensee_sql{query}, extra_params => [ '-U', 'up_analyst' ]);
like($served, qr/^1\|张#丰\|110105\*{8}0021\n2\|欧##娜\|110105\*{8}0047$/,
	'updated: the licensee is served again, with its licence\'s row filter and masks');
like($old->safe_psql('postgres', $licensee_sql{token}, extra_params => [ '-U', 'up_analyst' ]),
	qr/^110105\*{8}0021$/, 'updated: the licensee\'s token works again');

# ---------------------------------------------------------------------------
# The updated objects against a fresh 1.1 install
# ---------------------------------------------------------------------------
my $fresh = PostgreSQL::Test::Cluster->new('upgrade_fresh');
$fresh->init;
$fresh->append_conf('postgresql.conf', $conf);
$fresh->start;
$fresh->safe_psql('postgres', 'CREATE EXTENSION licdata');
is($fresh->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'licdata'}),
	'1.1', 'fresh: CREATE EXTENSION licdata installs 1.1');

# pg_dump's text, with only cluster-specific numbers replaced.
sub schema_dump
{
	my ($node) = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[ 'pg_dump', '--schema-only', '--binary-upgrade', '--exclude-schema=pd',
		  '-d', $node->connstr('postgres') ],
		'>', \$stdout, '2>', \$stderr);
	die "pg_dump failed: $stderr" unless $ok;
	my @out;
	for my $line (split /\n/, $stdout)
	{
		# pg_dump's random key of \restrict / \unrestrict
		$line =~ s/^\\(un)?restrict \S+$/\\$1restrict KEY/;
		if ($line =~ /binary_upgrade_/)
		{
			# OIDs and relfilenodes ('16385'::pg_catalog.oid, '{16885,...}')
			$line =~ s/'(\d+)'::pg_catalog\.oid/'OID'::pg_catalog.oid/g;
			$line =~ s/(binary_upgrade_create_empty_extension\([^{]*)'\{([\d,]*)\}'/
			  my ($h, $l) = ($1, $2); $l =~ s{\d+}{OID}g; "$h'{$l}'"/e;
			# per-attribute LSNs
			$line =~ s{(\d|[A-F])+/[0-9A-F]+}{LSN}g
			  if $line =~ /binary_upgrade_set_next_attribute_versions/;
		}
		# sequence positions are data
		$line =~ s/^(SELECT pg_catalog\.setval\('[^']+'), \d+, (true|false)\);$/$1, N, B);/;
		# the frozen xids of pg_class rows (binary upgrade keeps them), by OID
		$line =~ s/relfrozenxid = '\d+', relminmxid = '\d+'/relfrozenxid = 'XID', relminmxid = 'MXID'/;
		$line =~ s/^WHERE oid = '\d+';$/WHERE oid = 'OID';/;
		# a column added to a table that had rows keeps its default for them
		# as a "missing value" (storage, not schema): the updated side only
		next if $line =~ /^SELECT pg_catalog\.binary_upgrade_set_missing_value\(/;
		next if $line eq '-- set missing value.';
		push @out, $line;
	}
	my $text = join("\n", @out) . "\n";
	$text =~ s/\n{3,}/\n\n/g;
	return $text;
}

my $dump_updated = schema_dump($old);
my $dump_fresh = schema_dump($fresh);
like($dump_fresh, qr/CREATE FUNCTION licdata\.export_master_key/, 'fresh: the dump lists the extension\'s objects');
my $tmp = PostgreSQL::Test::Utils::tempdir;
PostgreSQL::Test::Utils::append_to_file("$tmp/updated.sql", $dump_updated);
PostgreSQL::Test::Utils::append_to_file("$tmp/fresh.sql", $dump_fresh);
my ($diff, $differr) = ('', '');
IPC::Run::run([ 'diff', '-u', "$tmp/fresh.sql", "$tmp/updated.sql" ], '>', \$diff, '2>', \$differr);
ok($diff eq '', 'pg_dump --schema-only of 1.0 + ALTER EXTENSION UPDATE equals a fresh 1.1 install')
  or diag("--- fresh 1.1 install / +++ 1.0 updated to 1.1 (normalised pg_dump --schema-only --binary-upgrade):\n$diff");

$old->stop;
$fresh->stop;
done_testing();
