# test/t/005_audit_checkpoints.pl -- the audit trail is tamper-evident:
# verify_audit finds an altered row; an operator who alters a row and
# recomputes the whole hash chain is still caught by the signed checkpoints;
# nobody but the background worker can get a checkpoint signed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('checkpoints');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'licdata'\nlicdata.database = 'postgres'\n"
	  . "licdata.flush_interval = '100ms'\nlicdata.checkpoint_interval = 5\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION licdata;
CREATE ROLE bank LOGIN;
CREATE SCHEMA pd;
CREATE TABLE pd.t (id int PRIMARY KEY, v text);
INSERT INTO pd.t SELECT g, 'v' || g FROM generate_series(1, 10) g;
SELECT licdata.publish('pd.t');
SELECT licdata.register_licensee('bank', 'Bank');
SELECT licdata.grant_licence('bank', 'pd.t', ARRAY['credit_assessment']);
});
for my $i (1 .. 12)
{
	$node->safe_psql('postgres', "SET licdata.purpose = 'credit_assessment'; SELECT count(*) FROM pd.t WHERE id <= $i",
		extra_params => [ '-U', 'bank' ]);
}
$node->safe_psql('postgres', 'SELECT licdata.flush()');
is($node->safe_psql('postgres', 'SELECT count(*) FROM licdata.audit_log'), '12', '12 audit rows');
is($node->safe_psql('postgres', 'SELECT string_agg(seq::text, \',\' ORDER BY seq) FROM licdata.audit_checkpoints'),
	'5,10', 'checkpoints signed at rows 5 and 10');
is($node->safe_psql('postgres', 'SELECT ok FROM licdata.verify_audit()'), 't', 'the trail verifies');
is($node->safe_psql('postgres', 'SELECT count(DISTINCT public_key) = 1 AND min(public_key) = licdata.audit_public_key() FROM licdata.audit_checkpoints'),
	't', 'checkpoints carry the cluster audit key');

# Tampering as a superuser would: the audit rows are packed per batch
# (licdata_internal.record_batches, behind the view licdata.audit_log); the
# batches are rewritten with the rows changed.  rewrite(FILTER) packs each
# batch again from pg_temp.fixed, the rows as they should now read.
my $rewrite = q{
CREATE TEMP TABLE fixed AS SELECT * FROM licdata_internal.audit_rows LIMIT 0;
CREATE FUNCTION pg_temp.repack() RETURNS void LANGUAGE sql AS $r$
	UPDATE licdata_internal.record_batches b
	   SET audit = licdata_internal._pack(ARRAY(SELECT f FROM pg_temp.fixed f
												 WHERE f.seq BETWEEN b.first_seq AND b.last_seq
												 ORDER BY f.seq))
$r$;
ALTER TABLE licdata_internal.record_batches DISABLE TRIGGER records_guard;
};

# Alter one row: the chain breaks there.
$node->safe_psql('postgres', $rewrite . q{
INSERT INTO fixed SELECT * FROM licdata.audit_log;
UPDATE fixed SET rows = 0 WHERE seq = 3;
SELECT pg_temp.repack();
});
is($node->safe_psql('postgres', "SELECT ok::text || ',' || first_bad_seq FROM licdata.verify_audit()"),
	'false,3', 'an altered row is found');

# Recompute the whole chain after the alteration: the chain is consistent
# again, but the signed checkpoint at 5 no longer matches.
$node->safe_psql('postgres', $rewrite . q{
DO $$
DECLARE a licdata.audit_log; prev bytea := '\x';
BEGIN
	FOR a IN SELECT * FROM licdata.audit_log ORDER BY seq LOOP
		a.prev_hash := prev;
		a.hash := sha256(licdata_internal._audit_bytes(a));
		INSERT INTO fixed SELECT a.*;
		prev := a.hash;
	END LOOP;
END $$;
SELECT pg_temp.repack();
});
is($node->safe_psql('postgres', "SELECT ok::text || ',' || first_bad_seq FROM licdata.verify_audit()"),
	'false,5', 'a recomputed chain is caught by the signed checkpoint');

# Deleting a row leaves a gap.
$node->safe_psql('postgres', $rewrite . q{
INSERT INTO fixed SELECT * FROM licdata.audit_log WHERE seq <> 11;
SELECT pg_temp.repack();
});
like($node->safe_psql('postgres', "SELECT ok::text || ',' || first_bad_seq FROM licdata.verify_audit()"),
	qr/^false,/, 'a removed row is found');

# Through the view, as anyone: refused.
my ($vret, $vout, $verr) = $node->psql('postgres', 'UPDATE licdata.audit_log SET rows = 0 WHERE seq = 4');
like($verr, qr/audit_log is written only by licdata/, 'the view refuses an UPDATE, even a superuser\'s');
($vret, $vout, $verr) = $node->psql('postgres', 'TRUNCATE licdata.audit_log');
like($verr, qr/audit_log is written only by licdata/, 'the view refuses a TRUNCATE, even a superuser\'s');

# Only the worker signs.
my ($ret, $out, $err) = $node->psql('postgres', "SELECT licdata_internal._audit_sign(100, '\\x00')");
like($err, qr/signed only by licdata's background worker/, 'a superuser cannot have a checkpoint signed');
($ret, $out, $err) = $node->psql('postgres', 'INSERT INTO licdata.audit_checkpoints VALUES (1, now(), \'\\x\', \'k\', \'s\')');
like($err, qr/written only by licdata/, 'checkpoints cannot be inserted by hand');

$node->stop;
done_testing();
