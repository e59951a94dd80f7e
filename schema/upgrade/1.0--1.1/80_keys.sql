/*
 * 1.0 -> 1.1, keys: export_master_key and import_master_key (new in 1.1;
 * the same definitions as schema/80_keys.sql).
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
