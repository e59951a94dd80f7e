/*-------------------------------------------------------------------------
 *
 * sqlfuncs.c
 *	  Small SQL-callable helpers behind the operator API and the record
 *	  tables: the preload check, the row-security guard, catalog change
 *	  notification, validation of row filters and masks, the write guard of
 *	  the record tables, flushing, and the caller's licensee.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "storage/fd.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "errcodes.h"
#include "licdata.h"
#include "meter.h"
#include "shmem.h"

/* Set only by the background worker and the retention function. */
bool		licdata_records_writable = false;

/* Whatever happened, the record tables' guard is back on at transaction end. */
static void
records_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		licdata_records_writable = false;
}

void
licdata_sqlfuncs_init(void)
{
	RegisterXactCallback(records_xact_callback, NULL);
}

static void
not_preloaded(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_LD_NOT_READY),
			 errmsg("licdata is not loaded through shared_preload_libraries"),
			 errdetail("Without its hooks, licences, masks and metering would not be enforced, so published data is not served."),
			 errhint("Add licdata to shared_preload_libraries in postgresql.conf (shared_preload_libraries = 'licdata') and restart the server.")));
}

#define HOME_FILE LICDATA_DIR "/database"

/*
 * The database licdata lives in: licdata.database when set, else the one
 * remembered in pg_licdata/database (written by the first CREATE
 * EXTENSION), else NULL.
 */
char *
licdata_home_database(void)
{
	char		buf[NAMEDATALEN + 2];
	FILE	   *f;
	size_t		n;

	if (licdata_database && licdata_database[0] != '\0')
		return pstrdup(licdata_database);
	f = AllocateFile(HOME_FILE, "r");
	if (f == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	FreeFile(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return n > 0 ? pstrdup(buf) : NULL;
}

/* Remember this database as licdata's home (durably), and wake the worker. */
static void
claim_home(const char *dbname)
{
	char		tmp[MAXPGPATH];
	FILE	   *f;

	(void) MakePGDirectory(LICDATA_DIR);
	snprintf(tmp, sizeof(tmp), "%s.tmp", HOME_FILE);
	f = AllocateFile(tmp, PG_BINARY_W);
	if (f == NULL || fprintf(f, "%s\n", dbname) < 0 || fflush(f) != 0 ||
		pg_fsync(fileno(f)) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	FreeFile(f);
	durable_rename(tmp, HOME_FILE, ERROR);
	licdata_worker_wake();
}

PG_FUNCTION_INFO_V1(licdata_assert_preloaded);
Datum
licdata_assert_preloaded(PG_FUNCTION_ARGS)
{
	char	   *home;
	char	   *here;

	if (!licdata_preloaded)
		not_preloaded();
	here = get_database_name(MyDatabaseId);
	home = licdata_home_database();
	if (home == NULL)
		claim_home(here);
	else if (strcmp(here, home) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_CATALOG_NAME),
				 errmsg("licdata can only be created in database \"%s\"", home),
				 errdetail("Its background worker keeps usage and audit records in one database per cluster%s.",
						   licdata_database[0] ? ", the one named by licdata.database" :
						   ", the one where CREATE EXTENSION licdata first ran"),
				 errhint("Create the extension in \"%s\", or set licdata.database = '%s' in postgresql.conf and restart.",
						 home, here)));

	/*
	 * A new catalog starts licence ids afresh: forget the day counters of the
	 * licences of any earlier installation in this cluster.
	 */
	{
		HASH_SEQ_STATUS seq;
		LicdataQuotaEntry *e;

		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		hash_seq_init(&seq, licdata_quota_hash);
		while ((e = hash_seq_search(&seq)) != NULL)
			hash_search(licdata_quota_hash, &e->licence_id, HASH_REMOVE, NULL);
		LWLockRelease(licdata_shared->quota_lock);
	}
	PG_RETURN_VOID();
}

/*
 * licdata.guard(): the row-security policy on published tables.  True when
 * licdata is preloaded; an error otherwise, so that without the library
 * nobody but a superuser reads a published table.
 */
PG_FUNCTION_INFO_V1(licdata_guard);
Datum
licdata_guard(PG_FUNCTION_ARGS)
{
	if (!licdata_preloaded)
		not_preloaded();
	PG_RETURN_BOOL(true);
}

/* Statement trigger on the catalog tables: tell every backend. */
PG_FUNCTION_INFO_V1(licdata_catalog_changed);
Datum
licdata_catalog_changed(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "licdata_catalog_changed: not called as a trigger");
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	PG_RETURN_POINTER(NULL);
}

PG_FUNCTION_INFO_V1(licdata_check_row_filter);
Datum
licdata_check_row_filter(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *filter;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("dataset and row filter must not be null")));
	relid = PG_GETARG_OID(0);
	filter = text_to_cstring(PG_GETARG_TEXT_PP(1));
	(void) licdata_parse_row_filter(relid, filter, true);
	PG_RETURN_TEXT_P(cstring_to_text(filter));
}

PG_FUNCTION_INFO_V1(licdata_check_mask);
Datum
licdata_check_mask(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *col;
	AttrNumber	attnum;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("dataset, column, method and params must not be null")));
	relid = PG_GETARG_OID(0);
	col = NameStr(*PG_GETARG_NAME(1));
	attnum = get_attnum(relid, col);
	if (attnum <= 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("column \"%s\" does not exist", col)));
	(void) licdata_build_mask_expr(relid, attnum, text_to_cstring(PG_GETARG_TEXT_PP(2)),
								   text_to_cstring(PG_GETARG_TEXT_PP(3)), true);
	PG_RETURN_TEXT_P(cstring_to_text("ok"));
}

/* The licensee a role acts for (itself or through membership), or NULL. */
PG_FUNCTION_INFO_V1(licdata_is_licensee_member);
Datum
licdata_is_licensee_member(PG_FUNCTION_ARGS)
{
	Oid			role = PG_GETARG_OID(0);
	const LicdataLicensee *l;

	if (licdata_catalog() == NULL)
		PG_RETURN_NULL();
	l = licdata_licensee_for_role(role);
	if (l)
		PG_RETURN_OID(l->roleid);
	l = licdata_licensee_acted_by(role);
	if (l == NULL)
		PG_RETURN_NULL();
	PG_RETURN_OID(l->roleid);
}

/* The licensee the caller acts for, or NULL. */
PG_FUNCTION_INFO_V1(licdata_my_licensee);
Datum
licdata_my_licensee(PG_FUNCTION_ARGS)
{
	const LicdataLicensee *l;

	if (licdata_catalog() == NULL)
		PG_RETURN_NULL();
	l = licdata_acting_licensee();
	if (l == NULL)
		PG_RETURN_NULL();
	PG_RETURN_OID(l->roleid);
}

/* Trigger on the record tables: only licdata itself writes them. */
PG_FUNCTION_INFO_V1(licdata_records_guard);
Datum
licdata_records_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "licdata_records_guard: not called as a trigger");
	if (!licdata_records_writable)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s is written only by licdata", RelationGetRelationName(td->tg_relation)),
				 errdetail("Usage and audit records are moved from the journal by licdata's background worker and are never changed."),
				 errhint("Use licdata.purge_records to apply a retention period.")));
	if (TRIGGER_FIRED_FOR_ROW(td->tg_event))
		PG_RETURN_POINTER(TRIGGER_FIRED_BY_DELETE(td->tg_event) ? td->tg_trigtuple :
						  (TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple));
	PG_RETURN_POINTER(NULL);
}

/*
 * INSTEAD OF trigger on the views licdata.usage and licdata.audit_log.
 * Refused as the tables' guard refuses, except an INSERT by a writer the
 * guard lets through (pg_restore of a 1.0 dump, licdata itself): that row
 * goes into the row table behind the view (licdata_internal.usage_rows or
 * audit_rows).  Rows are never changed or deleted through the views.
 */
PG_FUNCTION_INFO_V1(licdata_records_view_guard);
Datum
licdata_records_view_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *view;
	char	   *sql;
	Oid			argtype;
	Datum		arg;
	int			rc;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		elog(ERROR, "licdata_records_view_guard: not called as a row trigger");
	view = RelationGetRelationName(td->tg_relation);
	if (!licdata_records_writable || !TRIGGER_FIRED_BY_INSERT(td->tg_event) ||
		(strcmp(view, "usage") != 0 && strcmp(view, "audit_log") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s is written only by licdata", view),
				 errdetail("Usage and audit records are moved from the journal by licdata's background worker and are never changed."),
				 errhint("Use licdata.purge_records to apply a retention period.")));
	argtype = td->tg_relation->rd_rel->reltype;
	arg = heap_copy_tuple_as_datum(td->tg_trigtuple, RelationGetDescr(td->tg_relation));
	sql = psprintf("INSERT INTO licdata_internal.%s SELECT ($1::licdata.%s).*",
				   strcmp(view, "usage") == 0 ? "usage_rows" : "audit_rows", view);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "could not connect to SPI");
	rc = SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not insert into the row table: %s", SPI_result_code_string(rc));
	SPI_finish();
	PG_RETURN_POINTER(td->tg_trigtuple);
}

PG_FUNCTION_INFO_V1(licdata_set_records_writable);
Datum
licdata_set_records_writable(PG_FUNCTION_ARGS)
{
	bool		old = licdata_records_writable;

	if (!licdata_role_is_operator(GetUserId()))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("only operators may apply a retention period")));
	licdata_records_writable = PG_GETARG_BOOL(0);
	PG_RETURN_BOOL(old);
}

/*
 * licdata.flush(timeout): wake the background worker and wait until it has
 * finished a full pass that started after this call, so every record closed
 * before the call is in the tables.  Sleeps on the worker's pass condition
 * variable.  Returns false on timeout.
 */
PG_FUNCTION_INFO_V1(licdata_flush);
Datum
licdata_flush(PG_FUNCTION_ARGS)
{
	double		timeout_s = PG_ARGISNULL(0) ? 30.0 : PG_GETARG_FLOAT8(0);
	uint64		start;
	TimestampTz deadline;
	bool		done = true;

	if (!licdata_preloaded)
		not_preloaded();
	{
		const LicdataCatalog *c = licdata_catalog();

		if (c != NULL && !c->version_ok)
			ereport(ERROR,
					(errcode(ERRCODE_LD_NOT_READY),
					 errmsg("licdata does not move records while its library (version %s) and the extension (version %s) differ",
							LICDATA_VERSION, c->sql_version),
					 errdetail("The records wait in the journal; nothing is lost."),
					 errhint("Run ALTER EXTENSION licdata UPDATE.")));
	}
	if (isnan(timeout_s) || timeout_s < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("timeout_seconds must be a number not less than zero"),
				 errhint("Pass the longest wait in seconds, e.g. 30.")));
	timeout_s = Min(timeout_s, 86400.0 * 365);	/* infinity: a year */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   (int64) (Max(timeout_s, 0) * 1000));
	ConditionVariablePrepareToSleep(&licdata_shared->pass_cv);
	start = pg_atomic_read_u64(&licdata_shared->passes);
	licdata_worker_wake();
	while (pg_atomic_read_u64(&licdata_shared->passes) < start + 2)
	{
		long		left = (long) ((deadline - GetCurrentTimestamp()) / 1000);

		if (left <= 0)
		{
			done = false;
			break;
		}
		licdata_worker_wake();
		/* a bounded sleep: the worker may be between latch and pass */
		(void) ConditionVariableTimedSleep(&licdata_shared->pass_cv, Min(left, 1000L),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	PG_RETURN_BOOL(done);
}

/* Today's use of a licence's day quotas: (queries, rows). */
PG_FUNCTION_INFO_V1(licdata_quota_used);
Datum
licdata_quota_used(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	LicdataQuotaEntry *e;
	int32		today = (int32) (GetCurrentTimestamp() / USECS_PER_DAY);
	int64		q = 0,
				r = 0;
	TupleDesc	td;
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	/* A licensee sees the use of its own licences only. */
	if (!licdata_role_is_operator(GetUserId()) && !licdata_role_is_auditor(GetUserId()))
	{
		LicdataLicence *lic = licdata_catalog() ? licdata_licence_by_id(id) : NULL;
		const LicdataLicensee *who = licdata_catalog() ? licdata_acting_licensee() : NULL;

		if (lic == NULL || who == NULL || lic->licensee != who->roleid)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to read the quota use of licence %lld", (long long) id),
					 errhint("See licdata.my_licences for your own licences.")));
	}
	if (licdata_preloaded && licdata_quota_hash)
	{
		LWLockAcquire(licdata_shared->quota_lock, LW_SHARED);
		e = hash_search(licdata_quota_hash, &id, HASH_FIND, NULL);
		if (e && e->day == today)
		{
			q = e->queries;
			r = e->rows;
		}
		LWLockRelease(licdata_shared->quota_lock);
	}
	values[0] = Int64GetDatum(q);
	values[1] = Int64GetDatum(r);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}
