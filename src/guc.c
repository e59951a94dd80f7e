/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  Every licdata setting, in one place, with who may change it.
 *
 * Only licdata.purpose and licdata.consent_ref are USERSET: they are what a
 * licensee's session declares.  Everything that decides how records are
 * kept is SIGHUP or SUSET.  Keys are never settings.
 *
 * Changing licdata.purpose resets this backend's cached plans, because a
 * licensee's plan is built for one purpose (its row scope and masks).
 *
 * Purpose scope: for a licensee registered with purpose_scope 'transaction'
 * the purpose and consent reference in force are the values set for the
 * current transaction only (licdata_purpose_for / _consent_ref_for), read
 * from the setting's GUC stack; a session-level value counts as unset.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "mb/pg_wchar.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/plancache.h"

#include "licdata.h"
#include "replica.h"

char	   *licdata_purpose = NULL;
char	   *licdata_consent_ref = NULL;
bool		licdata_journal_sync = false;
int			licdata_flush_interval_ms = 1000;
bool		licdata_audit_statement_text = true;
bool		licdata_audit_operators = true;
char	   *licdata_database = NULL;
int			licdata_checkpoint_interval = 1000;
int			licdata_max_journal_size_kb = 1024 * 1024;

/* The purpose the cached plans of this backend were built for. */
static char planned_purpose[NAMEDATALEN] = "";

static bool
check_purpose(char **newval, void **extra, GucSource source)
{
	const char *p = *newval;

	if (p == NULL || p[0] == '\0')
		return true;
	if (strlen(p) >= NAMEDATALEN)
	{
		GUC_check_errdetail("A purpose is at most %d characters long.", NAMEDATALEN - 1);
		return false;
	}
	if (!(p[0] >= 'a' && p[0] <= 'z'))
	{
		GUC_check_errdetail("A purpose is a lower-case identifier: a letter followed by letters, digits or underscores.");
		return false;
	}
	for (; *p; p++)
	{
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
		{
			GUC_check_errdetail("A purpose is a lower-case identifier: a letter followed by letters, digits or underscores.");
			return false;
		}
	}
	return true;
}

/*
 * A plan built for one purpose must never serve another: when the value
 * really changes, every cached plan of this backend is marked invalid and is
 * rebuilt at its next use.  Assign hooks must not fail; ResetPlanCache only
 * flips flags.
 */
static void
assign_purpose(const char *newval, void *extra)
{
	const char *v = newval ? newval : "";

	if (strcmp(v, planned_purpose) != 0)
	{
		strlcpy(planned_purpose, v, sizeof(planned_purpose));
		ResetPlanCache();
	}
}

static bool
check_consent_ref(char **newval, void **extra, GucSource source)
{
	if (*newval && strlen(*newval) > 200)
	{
		GUC_check_errdetail("A consent reference is at most 200 bytes long.");
		return false;
	}
	/* It is recorded in the usage and audit tables: it must be valid text. */
	if (*newval && !pg_verifymbstr(*newval, strlen(*newval), true))
	{
		GUC_check_errdetail("A consent reference must be valid text in the database encoding.");
		return false;
	}
	return true;
}

/* The GUC records of licdata.purpose and licdata.consent_ref (stable pointers). */
static struct config_generic *purpose_gconf = NULL;
static struct config_generic *consent_gconf = NULL;

static struct config_generic *
find_gconf(const char *name)
{
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();

	for (int i = 0; i < n; i++)
	{
		if (strcmp(vars[i]->name, name) == 0)
			return vars[i];
	}
	elog(ERROR, "licdata: setting \"%s\" is not defined", name);
	return NULL;				/* keep compiler quiet */
}

/*
 * Is the current value of the setting one set for the current transaction
 * only?  PostgreSQL 15 keeps, per setting, a stack of the values saved at
 * each nesting level of the transaction (subtransactions, functions with a
 * SET clause); the top entry says how the value in force was set at the
 * innermost level that set it:
 *	GUC_LOCAL		SET LOCAL (or set_config(..., true))
 *	GUC_SET_LOCAL	SET, then SET LOCAL: the local value is in force
 *	GUC_SAVE		a function's SET clause, undone when the function returns
 *	GUC_SET			plain SET or RESET: the value outlives the transaction
 * Subtransaction commit merges an entry into the level below keeping these
 * meanings, and no entry exists outside a transaction, so a value set by
 * SET LOCAL in a released savepoint still counts and one inherited from an
 * earlier transaction, a connection option or ALTER ROLE ... SET never does.
 */
static bool
set_for_transaction(struct config_generic *gconf)
{
	GucStack   *top = gconf->stack;

	if (top == NULL)
		return false;
	return top->state == GUC_LOCAL || top->state == GUC_SET_LOCAL || top->state == GUC_SAVE;
}

/* True when who's purpose and consent reference count only if set for the transaction. */
bool
licdata_purpose_session_only(const LicdataLicensee *who)
{
	return who != NULL && who->purpose_xact;
}

/*
 * The purpose in force for licensee who (NULL: an operator or anyone else):
 * licdata.purpose, or "" when who's purpose scope is 'transaction' and the
 * value was not set for the current transaction.
 */
const char *
licdata_purpose_for(const LicdataLicensee *who)
{
	const char *v = licdata_purpose ? licdata_purpose : "";

	if (!licdata_purpose_session_only(who) || v[0] == '\0')
		return v;
	if (purpose_gconf == NULL)
		purpose_gconf = find_gconf("licdata.purpose");
	return set_for_transaction(purpose_gconf) ? v : "";
}

/* The consent reference in force for licensee who, under the same rule. */
const char *
licdata_consent_ref_for(const LicdataLicensee *who)
{
	const char *v = licdata_consent_ref ? licdata_consent_ref : "";

	if (!licdata_purpose_session_only(who) || v[0] == '\0')
		return v;
	if (consent_gconf == NULL)
		consent_gconf = find_gconf("licdata.consent_ref");
	return set_for_transaction(consent_gconf) ? v : "";
}

void
licdata_define_gucs(void)
{
	DefineCustomStringVariable("licdata.purpose",
							   "Declared purpose of the queries that follow.",
							   "A licensee's queries are served only under licences granted for this purpose.",
							   &licdata_purpose,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   check_purpose, assign_purpose, NULL);

	DefineCustomStringVariable("licdata.consent_ref",
							   "Reference of the data subject's consent or business case for the queries that follow.",
							   "Recorded with every query; required by licences that say so.",
							   &licdata_consent_ref,
							   "",
							   PGC_USERSET,
							   GUC_NOT_IN_SAMPLE,
							   check_consent_ref, NULL, NULL);

	DefineCustomBoolVariable("licdata.journal_sync",
							 "Flushes each metering record to disk before the statement returns.",
							 "Off: records survive process and server crashes. On: they also survive power loss.",
							 &licdata_journal_sync,
							 false,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("licdata.flush_interval",
							"How often the background worker moves usage and audit records into tables.",
							NULL,
							&licdata_flush_interval_ms,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("licdata.audit_statement_text",
							 "Records the full statement text in usage and audit records.",
							 "When off, only a SHA-256 hash of the statement text is recorded.",
							 &licdata_audit_statement_text,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("licdata.audit_operators",
							 "Records an audit row for every operator statement that reads a published table.",
							 NULL,
							 &licdata_audit_operators,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomStringVariable("licdata.database",
							   "The database in which licdata is installed and its records are kept.",
							   "Empty (the default): the database where CREATE EXTENSION licdata first runs, remembered in pg_licdata/database. "
							   "The background worker connects to it; CREATE EXTENSION licdata is refused elsewhere.",
							   &licdata_database,
							   "",
							   PGC_POSTMASTER,
							   0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("licdata.checkpoint_interval",
							"Number of audit records between two signed audit checkpoints.",
							NULL,
							&licdata_checkpoint_interval,
							1000, 1, 1000000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("licdata.max_journal_size",
							"Disk space the metering journal may take; above it new licensee statements are refused.",
							"Statements that would need a new journal file beyond this size are refused with LD009 until the background worker has moved records. 0: no limit.",
							&licdata_max_journal_size_kb,
							1024 * 1024, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	licdata_replica_define_gucs();
	MarkGUCPrefixReserved("licdata");
}
