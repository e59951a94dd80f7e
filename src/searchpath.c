/*-------------------------------------------------------------------------
 *
 * searchpath.c
 *	  Pinning search_path around SQL that licdata runs itself.
 *
 * Every SQL text licdata runs from C (SPI in the policy loader and the
 * background worker) and every expression it analyses on a licensee's
 * behalf (row filters, masks) must resolve names exactly as licdata wrote
 * them, whatever the session has in search_path: a licensee that puts its
 * own schema first could otherwise shadow a function or an operator (e.g.
 * "=(oid, regclass)") and have it run with licdata's privileges.
 *
 * licdata_pin_search_path() opens a GUC nest level and sets search_path to
 * "pg_catalog, pg_temp" in it: pg_catalog first, and the session's
 * temporary schema named last, so that temporary relations and types are
 * not found before pg_catalog's either (when pg_temp is not named,
 * PostgreSQL searches it first for relations and types).
 * licdata_unpin_search_path() closes the level on the success path; on an
 * error the transaction or subtransaction abort restores the setting.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/guc.h"

#include "licdata.h"

int
licdata_pin_search_path(void)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("search_path", LICDATA_SAFE_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

void
licdata_unpin_search_path(int nestlevel)
{
	AtEOXact_GUC(true, nestlevel);
}
