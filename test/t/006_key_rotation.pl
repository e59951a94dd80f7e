# test/t/006_key_rotation.pl -- the master key: made at first start with
# mode 0600, kept across restarts (pseudonyms stay the same), rotated by an
# operator (every backend, including one already connected, switches at
# once; old tokens stop matching), never shown; a damaged key file stops
# the server from starting.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('keys');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'licdata'\nlicdata.database = 'postgres'\n");
$node->start;

my $keyfile = $node->data_dir . '/pg_licdata/master.key';
ok(-f $keyfile, 'master key file made at first start');
is((stat($keyfile))[2] & 0777, 0600, 'with mode 0600');
is(-s $keyfile, 32, '32 bytes');

$node->safe_psql('postgres', q{
CREATE EXTENSION licdata;
CREATE ROLE bank LOGIN;
CREATE ROLE op LOGIN IN ROLE licdata_operator;
SELECT licdata.register_licensee('bank', 'Bank');
-- not granted to licensees (an oracle); granted here to watch the key
GRANT USAGE ON SCHEMA licdata_internal TO bank;
GRANT EXECUTE ON FUNCTION licdata_internal.mask_pseudonym(text, integer) TO bank;
});
my $tok = "SELECT licdata.mask_pseudonym('110105194912310021', 16, 'bank')";
my $t1 = $node->safe_psql('postgres', $tok);
like($t1, qr/^[a-z2-7]{16}$/, 'a pseudonym');

$node->restart;
is($node->safe_psql('postgres', $tok), $t1, 'the same pseudonym after a restart');

# A backend connected before the rotation.
my $s = $node->background_psql('postgres', extra_params => [ '-U', 'bank' ]);
is($s->query_safe("SELECT licdata_internal.mask_pseudonym('110105194912310021', 16)"), $t1,
	'the licensee computes the same token');

my ($ret, $out, $err) = $node->psql('postgres', 'SELECT licdata.rotate_master_key()',
	extra_params => [ '-U', 'bank' ]);
like($err, qr/permission denied/, 'a licensee cannot rotate the key');

$node->safe_psql('postgres', 'SELECT licdata.rotate_master_key()', extra_params => [ '-U', 'op' ]);
my $t2 = $node->safe_psql('postgres', $tok);
isnt($t2, $t1, 'after rotation the pseudonym changes');
is($s->query_safe("SELECT licdata_internal.mask_pseudonym('110105194912310021', 16)"), $t2,
	'a backend connected before the rotation uses the new key at once');
$s->quit;

$node->restart;
is($node->safe_psql('postgres', $tok), $t2, 'the rotated key is kept across a restart');

my $log = slurp_file($node->logfile);
unlike($log, qr/master\.key.*[0-9a-f]{64}/i, 'no key material in the server log');
($ret, $out, $err) = $node->psql('postgres', "SELECT pg_read_binary_file('pg_licdata/master.key')",
	extra_params => [ '-U', 'bank' ]);
isnt($ret, 0, 'a licensee cannot read the key file through SQL');

# A damaged key file: the server refuses to start rather than run with another key.
$node->stop;
open(my $fh, '>', $keyfile) or die;
print $fh "short";
close $fh;
my $started = $node->start(fail_ok => 1);
ok(!$started, 'a damaged master key file stops the server from starting');
like(slurp_file($node->logfile), qr/master key/i, 'and the log says why');

done_testing();
