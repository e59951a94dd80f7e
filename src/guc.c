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
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "mb/pg_wchar.h"
#include "utils/guc.h"
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
