/*
 * 80_keys.sql -- moving the cluster's master key with a dump.
 *
 * The master key lives in $PGDATA/pg_licdata/master.key, outside the
 * catalog, so pg_dump does not carry it.  export_master_key wraps it under
 * a passphrase (Argon2id + XChaCha20-Poly1305, src/keys.c); on the cluster
 * the dump is restored into, import_master_key puts it in place, and
 * pseudonyms, FPE values, noise and the audit key are what they were.
 * Superusers only (the C functions check too).  Both refuse to run while
 * the statement, which holds the passphrase, would be written to the server
 * log (src/keys_sql.c; README "Keys").
 */

CREATE FUNCTION licdata.export_master_key(passphrase text) RETURNS text
	LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'licdata_export_master_key';
CREATE FUNCTION licdata.import_master_key(exported text, passphrase text) RETURNS void
	LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'licdata_import_master_key';
COMMENT ON FUNCTION licdata.export_master_key(text) IS
	'The master key wrapped under a passphrase (superusers only), to move it with a dump';
COMMENT ON FUNCTION licdata.import_master_key(text, text) IS
	'Replaces the master key with an exported one (superusers only); every backend switches at once';
REVOKE ALL ON FUNCTION licdata.export_master_key(text),
	licdata.import_master_key(text, text) FROM PUBLIC;
