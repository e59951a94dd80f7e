/*-------------------------------------------------------------------------
 *
 * keys_sql.c
 *	  licdata.export_master_key(passphrase) and
 *	  licdata.import_master_key(exported, passphrase): move the cluster's
 *	  master key with a dump, so pseudonyms, FPE values, noise and the audit
 *	  key are the same on the cluster the dump is restored into.
 *
 * The key material is handled by keys.c; this file checks who may call,
 * the passphrase, and that the statement (which holds the passphrase, and
 * for an import also the wrapped key) is not being written to the server
 * log.
 *
 * Statement logging: PostgreSQL logs a statement's text, before it runs,
 * under log_statement = 'all', and after it ran under
 * log_min_duration_statement and the sampling settings; debug_print_parse,
 * _rewritten and _plan log its constants.  These functions refuse to run
 * while any of those would write this statement to the log, so the caller
 * turns them off for the session first (SET log_statement = 'none' ...; a
 * superuser may).  The refusal comes after a log_statement line was
 * written, so it says so: choose another passphrase (export), or treat the
 * logged export as exposed (import).  Their own errors carry errhidestmt,
 * so log_min_error_statement does not log the statement either.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "keys.h"
#include "licdata.h"

/* Shortest passphrase an export accepts, in characters. */
#define MIN_PASSPHRASE_CHARS	12

PG_FUNCTION_INFO_V1(licdata_export_master_key);
PG_FUNCTION_INFO_V1(licdata_import_master_key);

static void
require_superuser(const char *fname)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for function %s", fname),
				 errdetail("Only superusers may export or import the master key."),
				 errhidestmt(true)));
}

static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *fname, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s of %s must not be NULL", argname, fname),
				 errhidestmt(true)));
}

/* A setting of another module (auto_explain, pgaudit), or NULL. */
static const char *
other_setting(const char *name)
{
	return GetConfigOption(name, true, true);
}

/*
 * Refuse when the current statement's text would reach the server log
 * through statement logging (see the file header).  what: "export" or
 * "import".
 */
static void
refuse_if_statement_logged(const char *fname, bool is_import)
{
	const char *setting = NULL;
	const char *s;

	if (log_statement == LOGSTMT_ALL)
		setting = "log_statement = 'all'";
	else if (log_min_duration_statement >= 0)
		setting = "log_min_duration_statement";
	else if (log_min_duration_sample >= 0 && log_statement_sample_rate > 0)
		setting = "log_min_duration_sample";
	else if (log_xact_sample_rate > 0)
		setting = "log_transaction_sample_rate";
	else if (Debug_print_parse || Debug_print_rewritten || Debug_print_plan)
		setting = "debug_print_parse, debug_print_rewritten or debug_print_plan";
	else if ((s = other_setting("auto_explain.log_min_duration")) != NULL &&
			 strcmp(s, "-1") != 0)
		setting = "auto_explain.log_min_duration";
	else if ((s = other_setting("pgaudit.log")) != NULL &&
			 (strstr(s, "all") || strstr(s, "ALL") || strstr(s, "read") ||
			  strstr(s, "READ") || strstr(s, "function") || strstr(s, "FUNCTION")))
		setting = "pgaudit.log";
	if (setting == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s refuses to run while statements are logged", fname),
			 errdetail("%s writes this statement's text, with the passphrase%s, to the server log.",
					   setting, is_import ? " and the wrapped key" : ""),
			 is_import ?
			 errhint("In this session run SET log_statement = 'none'; SET log_min_duration_statement = -1; (and turn off the other statement logging), then repeat.  If this statement was logged, the logged export and passphrase together reveal the key: remove them from the log.") :
			 errhint("In this session run SET log_statement = 'none'; SET log_min_duration_statement = -1; (and turn off the other statement logging), then export again with another passphrase: this one may be in the log."),
			 errhidestmt(true)));
}

/*
 * licdata.export_master_key(passphrase text) RETURNS text
 *		The cluster's master key wrapped under passphrase (keys.c describes
 *		the format).  Superusers only; the passphrase has at least 12
 *		characters.
 */
Datum
licdata_export_master_key(PG_FUNCTION_ARGS)
{
	text	   *pass;
	char	   *result;

	require_superuser("export_master_key");
	refuse_if_statement_logged("export_master_key", false);
	require_arg(fcinfo, 0, "export_master_key", "passphrase");
	pass = PG_GETARG_TEXT_PP(0);
	if (pg_mbstrlen_with_len(VARDATA_ANY(pass), VARSIZE_ANY_EXHDR(pass)) < MIN_PASSPHRASE_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("passphrase of export_master_key is too short"),
				 errdetail("It must have at least %d characters.", MIN_PASSPHRASE_CHARS),
				 errhint("Anyone who has the exported text and the passphrase has the key: choose a long random passphrase and keep it apart from the export."),
				 errhidestmt(true)));

	result = licdata_keys_export(VARDATA_ANY(pass), VARSIZE_ANY_EXHDR(pass));
	ereport(LOG,
			(errmsg("licdata master key exported by role \"%s\"",
					GetUserNameFromId(GetUserId(), false)),
			 errhidestmt(true)));
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/*
 * licdata.import_master_key(exported text, passphrase text) RETURNS void
 *		Replace the cluster's master key with the exported one.
 *		Superusers only.  Refused, with nothing changed, when the text is
 *		malformed or the passphrase wrong.
 */
Datum
licdata_import_master_key(PG_FUNCTION_ARGS)
{
	text	   *pass;

	require_superuser("import_master_key");
	refuse_if_statement_logged("import_master_key", true);
	require_arg(fcinfo, 0, "import_master_key", "exported");
	require_arg(fcinfo, 1, "import_master_key", "passphrase");
	pass = PG_GETARG_TEXT_PP(1);

	licdata_keys_import(text_to_cstring(PG_GETARG_TEXT_PP(0)),
						VARDATA_ANY(pass), VARSIZE_ANY_EXHDR(pass));
	ereport(LOG,
			(errmsg("licdata master key imported by role \"%s\"",
					GetUserNameFromId(GetUserId(), false)),
			 errdetail("Every pseudonym, FPE value, noise and the audit key now follow the imported key."),
			 errhidestmt(true)));
	PG_RETURN_VOID();
}
