/*-------------------------------------------------------------------------
 *
 * visibility.c
 *	  The background worker's sweep that keeps licensees' privileges on
 *	  datasets in step with time: a licence that becomes valid or expires
 *	  changes no row, so no trigger sees it.
 *
 * The privileges themselves (schema/70_clients.sql) are for the catalog
 * only -- information_schema, has_table_privilege -- and are never what
 * lets a licensee read: the decision enforces validity on every statement
 * whether or not the sweep has run.  The sweep runs at most every
 * SWEEP_EVERY, in a transaction of its own after the worker's flush pass,
 * inside a subtransaction so that an error (a role dropped under it, say)
 * is logged as a WARNING and never stops the worker from moving records.
 * It looks back SWEEP_OVERLAP before its previous run, so a licence made
 * valid by a transaction that committed late is not missed, and
 * resynchronises every dataset every SWEEP_FULL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "licdata.h"

#define SWEEP_EVERY		(5 * USECS_PER_SEC)
#define SWEEP_OVERLAP	(5 * USECS_PER_MINUTE)
#define SWEEP_FULL		(10 * USECS_PER_MINUTE)

static TimestampTz last_sweep = 0;
static TimestampTz last_full = 0;

/* licdata._sync_privileges_due(timestamptz), or InvalidOid (an older SQL version). */
static Oid
sweep_function(void)
{
	Oid			argtypes[1] = {TIMESTAMPTZOID};

	return licdata_internal_function("_sync_privileges_due", 1, argtypes, true);
}

/* Called by the worker between flush passes, outside a transaction. */
void
licdata_privileges_sweep(void)
{
	TimestampTz now = GetCurrentTimestamp();
	bool		full = (last_full == 0 || now - last_full >= SWEEP_FULL);
	MemoryContext outer = CurrentMemoryContext;
	ResourceOwner owner;

	if (last_sweep != 0 && now - last_sweep < SWEEP_EVERY)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	owner = CurrentResourceOwner;
	if (licdata_catalog() != NULL && OidIsValid(sweep_function()))
	{
		BeginInternalSubTransaction(NULL);
		PG_TRY();
		{
			Oid			argtypes[1] = {TIMESTAMPTZOID};
			Datum		args[1] = {TimestampTzGetDatum(last_sweep - SWEEP_OVERLAP)};
			int			rc;

			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "licdata: SPI_connect failed");
			rc = SPI_execute_with_args("SELECT licdata_internal._sync_privileges_due($1)",
									   1, argtypes, args, full ? "n" : " ", false, 0);
			if (rc != SPI_OK_SELECT)
				elog(ERROR, "licdata: privilege sweep failed: %s", SPI_result_code_string(rc));
			SPI_finish();
			ReleaseCurrentSubTransaction();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(outer);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			ereport(WARNING,
					(errmsg("licdata: could not bring licensees' privileges in step with their licences: %s",
							edata->message),
					 errdetail("Licences are enforced as before; only what information_schema shows licensees lags."),
					 errhint("The worker tries again in a few seconds.")));
			FreeErrorData(edata);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(outer);
		CurrentResourceOwner = owner;
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(outer);
	last_sweep = now;
	if (full)
		last_full = now;
}
