/*-------------------------------------------------------------------------
 *
 * meter.c
 *	  Per-statement accounting for licensees (and audit of operator reads):
 *	  which licences a statement used, how many rows it delivered, how it
 *	  ended -- written to the journal as the statement runs, so that no
 *	  rollback, error, disconnect or crash loses it.
 *
 * A "statement" here is the outermost one: a top-level query (or cursor,
 * COPY, CREATE TABLE AS, EXECUTE ...), or a DO / CALL block.  Licensed
 * statements run inside functions while it runs attach their licences to
 * it (the statement that reached the client is the one billed), and the
 * rows they produce are counted separately: the rows billed are the larger
 * of the rows the statement delivered and the rows licensed statements
 * inside it produced (a function could pass those on by other means).
 *
 * Lifecycle:
 *	ExecutorStart  re-check the licence (time, status, consent may have
 *				   changed since planning), take quotas, open the record
 *	ExecutorRun	   count each row sent (a DestReceiver wrapper), enforce
 *				   rows-per-query and rows-per-day quotas before sending
 *	ExecutorEnd	   close the record: outcome ok.  INSERT / UPDATE / DELETE /
 *				   MERGE without RETURNING send no rows: the rows they
 *				   wrote are counted here, and a rows quota they pass
 *				   refuses them before their transaction can commit
 *	(sub)xact abort close the record: outcome error, or cancelled for a
 *				   cancel, a disconnect or a ROLLBACK by the client
 *				   (ExecutorEnd does not run then)
 *	backend exit   close what is still open (held cursors)
 *
 * Cursors WITH HOLD: at commit PostgreSQL re-runs the cursor's query from
 * the start into a tuplestore (PersistHoldablePortal), and later FETCHes
 * read that store without the executor.  The re-run delivers nothing to
 * the client, so it is not counted; the statement's record stays open, the
 * FETCHes from the store are counted (a ProcessUtility hook wraps their
 * destination), and the record closes when the cursor is closed (the
 * portal's cleanup hook) or the session ends.
 *
 * Day quotas are exact across backends: shared counters (shmem.h) taken
 * under quota_lock; rows are reserved in chunks and unused reservations
 * returned at the end of each run, so the total delivered never passes
 * the quota and an idle cursor holds no reservation.
 *
 * Every list kept here lives in TopMemoryContext: a statement (a cursor)
 * outlives the memory context its ExecutorStart ran in.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/portalcmds.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parsetree.h"
#include "portability/instr_time.h"
#include "storage/condition_variable.h"
#include "storage/ipc.h"
#include "tcop/dest.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "errcodes.h"
#include "licdata.h"
#include "meter.h"
#include "replica.h"
#include "rewrite.h"
#include "shmem.h"

typedef struct QuotaState
{
	int64		licence_id;
	int64		max_rows_per_query;
	int64		max_rows_per_day;
	int64		reserved;		/* rows taken from the day quota, not yet used */
	int32		reserved_day;	/* the UTC day they were taken from */
} QuotaState;

typedef struct MeterStmt
{
	uint64		id;				/* unique in this backend, never 0 */
	JournalRecord *rec;			/* NULL until a licensed access happens */
	QueryDesc  *owner;			/* NULL for a DO / CALL block, a held cursor */
	Portal		persisting;		/* WITH HOLD cursor being materialised now */
	Portal		held;			/* materialised WITH HOLD cursor */
	void		(*held_cleanup) (Portal portal);	/* its cleanup hook before ours */
	SubTransactionId subxid;
	instr_time	start;
	int			kind;
	int			nquota;
	int			nuses;
	int64		rows;			/* delivered */
	int64		nested_rows;	/* produced by licensed statements in functions */
	bool		rerun;			/* its query is being re-run (held cursor) */
	int64		nested_base;	/* nested_rows before the re-run */
	char		deny_sqlstate[6];	/* a rows quota refused it mid-stream */
	/* only the first nquota / nuses entries are ever read: not zeroed */
	QuotaState	quota[LICDATA_MAX_USES];
	JournalUse	uses[LICDATA_MAX_USES];
} MeterStmt;

/*
 * A licensed statement run inside a function of a metered statement.  It
 * can outlive that statement: a cursor the function opened and returned
 * (a refcursor) is fetched by later statements.  Then 'ms' is NULL, and
 * the next run of the cursor is metered on its own (or with the statement
 * then running), under the licences it was opened with, decided again.
 */
typedef struct NestedQuery
{
	QueryDesc  *qd;
	MeterStmt  *ms;				/* the statement it is metered with */
	SubTransactionId subxid;
	int			ndatasets;
	Oid		   *datasets;		/* the datasets it reads (TopMemoryContext) */
	int64		rows;			/* rows it produced */
	int64		rerun_rows;		/* rows of a re-run (held at a COMMIT in a
								 * procedure), counted once past 'rows' */
	bool		rerun;
} NestedQuery;

/* One ExecutorRun of a metered statement (a stack: runs nest). */
typedef struct RunFrame
{
	QueryDesc  *qd;
	uint64		ms_id;
	uint64		prev_running_id;
	bool		persist;
} RunFrame;

typedef struct CountingDest
{
	DestReceiver pub;
	DestReceiver *inner;
	MeterStmt  *stmt;
	NestedQuery *nq;			/* set when counting a nested statement */
} CountingDest;

static List *open_stmts = NIL;	/* MeterStmt * */
static MeterStmt *running = NULL;	/* the outermost statement now executing */
static List *nested_queries = NIL;	/* NestedQuery * */
static List *run_stack = NIL;	/* RunFrame * */
static uint64 next_stmt_id = 1;
static bool exit_registered = false;
static char last_sqlstate[6] = "";
static emit_log_hook_type prev_emit_log_hook = NULL;

static void held_cleanup(Portal portal);

/* ---- helpers ---- */

static int32
utc_day(TimestampTz t)
{
	return (int32) (t / USECS_PER_DAY);
}

static List *
top_lappend(List *list, void *p)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	list = lappend(list, p);
	MemoryContextSwitchTo(old);
	return list;
}

static void
fill_identity(JournalRecord *r, int kind, const LicdataLicensee *who)
{
	r->kind = kind;
	r->started_at = GetCurrentTimestamp();
	r->licensee = who ? who->roleid : InvalidOid;
	strlcpy(r->role_name, GetUserNameFromId(GetUserId(), false), NAMEDATALEN);
	strlcpy(r->session_user_name, GetUserNameFromId(GetSessionUserId(), false), NAMEDATALEN);
	strlcpy(r->purpose, licdata_purpose ? licdata_purpose : "", NAMEDATALEN);
	strlcpy(r->consent_ref, licdata_consent_ref ? licdata_consent_ref : "", sizeof(r->consent_ref));
}

/* The statement text, or its SHA-256 in hex when audit_statement_text is off. */
static char *
statement_text(uint32 *len, bool *is_hash)
{
	const char *src = debug_query_string ? debug_query_string : "";
	size_t		n = strlen(src);

	if (licdata_audit_statement_text)
	{
		n = Min(n, (size_t) (1024 * 1024));
		*len = (uint32) n;
		*is_hash = false;
		return pnstrdup(src, n);
	}
	else
	{
		pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
		uint8		digest[PG_SHA256_DIGEST_LENGTH];
		char	   *hex = palloc(PG_SHA256_DIGEST_LENGTH * 2 + 1);

		if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
			pg_cryptohash_update(ctx, (const uint8 *) src, n) < 0 ||
			pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
			elog(ERROR, "could not compute SHA-256 of the statement");
		pg_cryptohash_free(ctx);
		hex_encode((const char *) digest, PG_SHA256_DIGEST_LENGTH, hex);
		hex[PG_SHA256_DIGEST_LENGTH * 2] = '\0';
		*len = PG_SHA256_DIGEST_LENGTH * 2;
		*is_hash = true;
		return hex;
	}
}

/* A price as recorded; one that does not fit is refused, never truncated. */
static void
set_price(char *dst, const char *price, const LicdataLicence *lic)
{
	if (strlen(price) >= JOURNAL_PRICE_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("could not record metering, so the query is refused"),
				 errdetail("A price of licence %lld has %d characters; at most %d can be recorded.",
						   (long long) lic->id, (int) strlen(price), JOURNAL_PRICE_LEN - 1),
				 errhint("Ask the operator to set a price with fewer digits.")));
	strlcpy(dst, price, JOURNAL_PRICE_LEN);
}

static void
set_use(JournalUse *u, Oid dataset, const LicdataLicence *lic, const LicdataDataset *ds)
{
	memset(u, 0, sizeof(*u));
	u->dataset = dataset;
	if (lic)
	{
		u->licence_id = lic->id;
		u->flags = lic->aggregate_mode ? 1 : 0;
		set_price(u->price_per_query,
				  lic->price_per_query ? lic->price_per_query : (ds && ds->price_per_query ? ds->price_per_query : "0"),
				  lic);
		set_price(u->price_per_row,
				  lic->price_per_row ? lic->price_per_row : (ds && ds->price_per_row ? ds->price_per_row : "0"),
				  lic);
	}
}

static JournalRecord *
write_record(int kind, const LicdataLicensee *who, JournalUse *uses, int nuses,
			 const char *deny_sqlstate, uint64 query_id)
{
	JournalRecord *hdr = palloc0(offsetof(JournalRecord, statement));
	uint32		len;
	bool		is_hash;
	char	   *text = statement_text(&len, &is_hash);
	JournalRecord *rec;

	fill_identity(hdr, kind, who);
	hdr->query_id = query_id;
	hdr->statement_is_hash = is_hash;
	if (deny_sqlstate)
		memcpy(hdr->deny_sqlstate, deny_sqlstate, 5);
	rec = licdata_journal_append(hdr, uses, nuses, nuses + JR_SPARE_USES, text, len);
	pfree(hdr);
	pfree(text);
	return rec;
}

/* ---- statements ---- */

static MeterStmt *
stmt_by_id(uint64 id)
{
	ListCell   *lc;

	if (id == 0)
		return NULL;
	foreach(lc, open_stmts)
	{
		MeterStmt  *ms = lfirst(lc);

		if (ms->id == id)
			return ms;
	}
	return NULL;
}

static MeterStmt *
stmt_of(QueryDesc *qd)
{
	ListCell   *lc;

	foreach(lc, open_stmts)
	{
		MeterStmt  *ms = lfirst(lc);

		if (ms->owner == qd)
			return ms;
	}
	return NULL;
}

static MeterStmt *
stmt_held(Portal portal)
{
	ListCell   *lc;

	foreach(lc, open_stmts)
	{
		MeterStmt  *ms = lfirst(lc);

		if (ms->held == portal)
			return ms;
	}
	return NULL;
}

static NestedQuery *
nested_of(QueryDesc *qd)
{
	ListCell   *lc;

	foreach(lc, nested_queries)
	{
		NestedQuery *nq = lfirst(lc);

		if (nq->qd == qd)
			return nq;
	}
	return NULL;
}

static void
nested_forget(NestedQuery *nq)
{
	nested_queries = list_delete_ptr(nested_queries, nq);
	if (nq->datasets)
		pfree(nq->datasets);
	pfree(nq);
}

/* The nested rows as billed: during a re-run, never less than before it. */
static int64
effective_nested(const MeterStmt *ms, int64 nested_rows)
{
	return ms->rerun ? Max(ms->nested_base, nested_rows) : nested_rows;
}

static void sync_counts(MeterStmt *ms);

/* ---- quotas ---- */

/* The shared counter of a licence for today, or NULL when the table is full. */
static LicdataQuotaEntry *
quota_entry(int64 licence_id, int32 today)
{
	bool		found;
	LicdataQuotaEntry *e;

	e = hash_search(licdata_quota_hash, &licence_id, HASH_ENTER_NULL, &found);
	if (e == NULL)
		return NULL;
	if (!found || e->day != today)
	{
		e->day = today;
		e->queries = 0;
		e->rows = 0;
	}
	return e;
}

static void
quota_table_full(int64 licence_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_LD_METERING_FAILED),
			 errmsg("could not track the quota of licence %lld", (long long) licence_id),
			 errdetail("The shared quota table is full."),
			 errhint("Restart the server to rebuild the quota table.")));
}

/*
 * Day-quota counters are rebuilt by the background worker after a restart
 * (from the usage table and the journal's records not yet moved, before it
 * moves anything): wait for that on its condition variable, 30 s at most.
 */
static void
wait_quota_ready(void)
{
	TimestampTz deadline;

	if (pg_atomic_read_u32(&licdata_shared->quota_ready) != 0)
		return;
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 30000);
	ConditionVariablePrepareToSleep(&licdata_shared->quota_cv);
	while (pg_atomic_read_u32(&licdata_shared->quota_ready) == 0)
	{
		long		left = (long) ((deadline - GetCurrentTimestamp()) / 1000);

		if (left <= 0)
		{
			char	   *home = licdata_home_database();

			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_LD_NOT_READY),
					 errmsg("quota counters are not ready"),
					 errdetail("The licdata background worker has not yet rebuilt today's quota counters."),
					 home ?
					 errhint("Check that the licdata worker is running in database \"%s\" and retry.", home) :
					 errhint("Check that the licdata worker is running and retry.")));
		}
		licdata_worker_wake();
		(void) ConditionVariableTimedSleep(&licdata_shared->quota_cv, Min(left, 1000L),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * Refuse a statement for a quota.  'own': the refusal ends the statement
 * itself after it began (its rows quota), so the statement's own record
 * becomes the audit row of the denial; otherwise (at its start, or for a
 * statement inside a function, whose error the function may catch) a
 * denial record of its own is written.
 */
static void
quota_refuse(MeterStmt *ms, int64 licence_id, const char *what, int64 limit, bool own)
{
	LicdataLicence *lic = licdata_licence_by_id(licence_id);
	LicdataDataset *ds = lic ? licdata_dataset_for_rel(lic->dataset) : NULL;
	LicdataDecision d;

	memset(&d, 0, sizeof(d));
	d.sqlerrcode = ERRCODE_LD_QUOTA_EXCEEDED;
	d.message = psprintf("quota of licence %lld reached: %s", (long long) licence_id, what);
	d.detail = psprintf("The limit is %lld.", (long long) limit);
	if (strstr(what, "per query") != NULL)
		d.hint = psprintf("Narrow the query (a WHERE clause, a LIMIT): the licence allows at most %lld rows per query.",
						  (long long) limit);
	else
		d.hint = pstrdup("Wait for the quota to reset at midnight UTC, or ask the operator to raise it.");
	if (own && ms != NULL && ms->rec != NULL)
	{
		memcpy(ms->deny_sqlstate, unpack_sql_state(d.sqlerrcode), 6);
		memcpy(ms->rec->sqlstate, ms->deny_sqlstate, 5);
		pg_write_barrier();
		ms->rec->denied = 1;
	}
	else
		licdata_meter_denial(ds, &d, licence_id);
	licdata_raise_decision(&d);
}

/* Take one query from each day quota at statement start. */
static void
quota_start(MeterStmt *ms, const LicdataLicence *lic, LicdataDataset *ds)
{
	int32		today = utc_day(GetCurrentTimestamp());
	QuotaState *qs;

	if (lic->max_queries_per_day == 0 && lic->max_rows_per_day == 0 && lic->max_rows_per_query == 0)
		return;
	for (int i = 0; i < ms->nquota; i++)
	{
		if (ms->quota[i].licence_id == lic->id)
			return;
	}
	if (ms->nquota >= LICDATA_MAX_USES)
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("a statement may use at most %d licences", LICDATA_MAX_USES),
				 errhint("Split the statement.")));
	if (lic->max_queries_per_day > 0 || lic->max_rows_per_day > 0)
	{
		LicdataQuotaEntry *e;
		const char *refused = NULL;
		int64		limit = 0;

		if (RecoveryInProgress())
		{
			/* a standby: day quotas are held on the primary (replica.c) */
			LicdataDecision d;

			licdata_replica_day_quota_decision(lic->id, &d);
			licdata_meter_denial(ds, &d, lic->id);
			licdata_raise_decision(&d);
		}

		wait_quota_ready();
		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		e = quota_entry(lic->id, today);
		if (e == NULL)
		{
			LWLockRelease(licdata_shared->quota_lock);
			quota_table_full(lic->id);
		}
		if (lic->max_queries_per_day > 0 && e->queries >= lic->max_queries_per_day)
		{
			refused = "queries per day";
			limit = lic->max_queries_per_day;
		}
		else if (lic->max_rows_per_day > 0 && e->rows >= lic->max_rows_per_day)
		{
			refused = "rows per day";
			limit = lic->max_rows_per_day;
		}
		else
			e->queries++;
		LWLockRelease(licdata_shared->quota_lock);
		if (refused)
			quota_refuse(ms, lic->id, refused, limit, false);
	}
	qs = &ms->quota[ms->nquota++];
	qs->licence_id = lic->id;
	qs->max_rows_per_query = lic->max_rows_per_query;
	qs->max_rows_per_day = lic->max_rows_per_day;
	qs->reserved = 0;
	qs->reserved_day = today;
}

/*
 * Before n more rows are billed, bringing the statement's billed rows to
 * 'total': would they pass a rows quota?  Refuses (raises LD006) if so;
 * otherwise takes them from the day quotas.  'stream': rows come one by
 * one, so reserve a chunk ahead to take the lock less often.
 */
static void
quota_take(MeterStmt *ms, int64 n, int64 total, bool own, bool stream)
{
	for (int i = 0; i < ms->nquota; i++)
	{
		QuotaState *qs = &ms->quota[i];

		if (qs->max_rows_per_query > 0 && total > qs->max_rows_per_query)
			quota_refuse(ms, qs->licence_id, "rows per query", qs->max_rows_per_query, own);
	}
	for (int i = 0; i < ms->nquota; i++)
	{
		QuotaState *qs = &ms->quota[i];
		int32		today;
		LicdataQuotaEntry *e;
		int64		need;
		int64		left;
		int64		take;

		if (qs->max_rows_per_day <= 0)
			continue;
		if (qs->reserved >= n)
		{
			qs->reserved -= n;
			continue;
		}
		today = utc_day(GetCurrentTimestamp());
		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		e = quota_entry(qs->licence_id, today);
		if (e == NULL)
		{
			LWLockRelease(licdata_shared->quota_lock);
			quota_table_full(qs->licence_id);
		}
		if (qs->reserved_day != today)
			qs->reserved = 0;	/* taken from yesterday's counter, now reset */
		need = n - qs->reserved;
		left = qs->max_rows_per_day - e->rows;
		take = need;
		if (stream)
			take += Min((int64) 1000, left / 8);
		take = Min(take, left);
		if (take >= need)
			e->rows += take;
		LWLockRelease(licdata_shared->quota_lock);
		if (take < need)
			quota_refuse(ms, qs->licence_id, "rows per day", qs->max_rows_per_day, own);
		qs->reserved += take - n;
		qs->reserved_day = today;
	}
}

/* Give back rows reserved from the day quotas and not used. */
static void
quota_release(MeterStmt *ms)
{
	bool		any = false;

	for (int i = 0; i < ms->nquota; i++)
		any |= ms->quota[i].reserved > 0;
	if (!any)
		return;
	LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
	for (int i = 0; i < ms->nquota; i++)
	{
		QuotaState *qs = &ms->quota[i];

		if (qs->reserved > 0)
		{
			LicdataQuotaEntry *e = hash_search(licdata_quota_hash, &qs->licence_id, HASH_FIND, NULL);

			if (e && e->day == qs->reserved_day)
				e->rows = Max(e->rows - qs->reserved, 0);
			qs->reserved = 0;
		}
	}
	LWLockRelease(licdata_shared->quota_lock);
}

/*
 * Count n more rows of a statement: delivered by it, or produced by a
 * licensed statement inside it (nested).  Quotas are checked first, so a
 * refused row is neither sent nor counted.
 */
static void
count_rows(MeterStmt *ms, int64 n, bool nested, bool stream)
{
	int64		new_rows = ms->rows + (nested ? 0 : n);
	int64		new_nested = ms->nested_rows + (nested ? n : 0);
	int64		before = Max(ms->rows, effective_nested(ms, ms->nested_rows));
	int64		after = Max(new_rows, effective_nested(ms, new_nested));

	if (after > before && ms->nquota > 0)
		quota_take(ms, after - before, after, !nested, stream);
	ms->rows = new_rows;
	ms->nested_rows = new_nested;
	sync_counts(ms);
}

/* ---- statement lifecycle ---- */

static void stmt_close(MeterStmt *ms, char outcome, const char *sqlstate);

/*
 * Backend exit (on_shmem_exit: after the transaction was aborted by the
 * before_shmem_exit callbacks, before the journal marks its files closed
 * in on_proc_exit).  Only held cursors should still be open: a cursor WITH
 * HOLD the client never closed ended with the session.
 */
static void
meter_exit(int code, Datum arg)
{
	while (open_stmts != NIL)
	{
		MeterStmt  *ms = linitial(open_stmts);

		stmt_close(ms, ms->held ? OUTCOME_OK : OUTCOME_CANCELLED, NULL);
	}
}

static MeterStmt *
stmt_new(QueryDesc *owner, int kind)
{
	MeterStmt  *ms = MemoryContextAlloc(TopMemoryContext, sizeof(MeterStmt));

	memset(ms, 0, offsetof(MeterStmt, quota));

	if (!exit_registered)
	{
		on_shmem_exit(meter_exit, (Datum) 0);
		exit_registered = true;
	}
	ms->id = next_stmt_id++;
	ms->owner = owner;
	ms->kind = kind;
	ms->subxid = GetCurrentSubTransactionId();
	INSTR_TIME_SET_CURRENT(ms->start);
	open_stmts = top_lappend(open_stmts, ms);
	licdata_aggregate_reset_stats();
	return ms;
}

static void
stmt_add_use(MeterStmt *ms, Oid dataset, const LicdataLicence *lic, LicdataDataset *ds)
{
	for (int i = 0; i < ms->nuses; i++)
	{
		if (ms->uses[i].dataset == dataset &&
			ms->uses[i].licence_id == (lic ? lic->id : 0))
			return;
	}
	if (ms->nuses >= LICDATA_MAX_USES)
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("a statement may use at most %d licences", LICDATA_MAX_USES),
				 errhint("Split the statement.")));
	set_use(&ms->uses[ms->nuses], dataset, lic, ds);
	ms->nuses++;
	if (ms->rec)
	{
		if ((uint32) ms->nuses > ms->rec->uses_capacity)
			ms->rec = licdata_journal_regrow(ms->rec, ms->nuses + 2 * JR_SPARE_USES);
		JR_USES(ms->rec)[ms->nuses - 1] = ms->uses[ms->nuses - 1];
		pg_write_barrier();
		ms->rec->nuses = ms->nuses;
	}
}

static void
sync_counts(MeterStmt *ms)
{
	if (ms->rec)
	{
		ms->rec->rows = ms->rows;
		ms->rec->nested_rows = effective_nested(ms, ms->nested_rows);
	}
}

static void
stmt_journal(MeterStmt *ms, const LicdataLicensee *who, uint64 query_id)
{
	if (ms->rec)
		return;
	ms->rec = write_record(ms->kind, who, ms->uses, ms->nuses, NULL, query_id);
	sync_counts(ms);			/* rows it sent before it reached a dataset */
}

static void
stmt_close(MeterStmt *ms, char outcome, const char *sqlstate)
{
	JournalRecord *r = ms->rec;
	ListCell   *lc;

	/* Forget it first: whatever fails below must not close it twice. */
	open_stmts = list_delete_ptr(open_stmts, ms);
	if (running == ms)
		running = NULL;
	foreach(lc, nested_queries)
	{
		NestedQuery *nq = lfirst(lc);

		if (nq->ms == ms)
			nq->ms = NULL;		/* outlives it: see NestedQuery */
	}
	if (ms->held && ms->held->cleanup == held_cleanup)
		ms->held->cleanup = ms->held_cleanup;

	if (r)
	{
		instr_time	dur;

		INSTR_TIME_SET_CURRENT(dur);
		INSTR_TIME_SUBTRACT(dur, ms->start);
		if (ms->rerun)
		{
			ms->nested_rows = Max(ms->nested_base, ms->nested_rows);
			ms->rerun = false;
		}
		r->rows = ms->rows;
		r->nested_rows = ms->nested_rows;
		r->rows_aggregated = licdata_aggregate_rows;
		r->ended_at = GetCurrentTimestamp();
		r->duration_ms = INSTR_TIME_GET_MILLISEC(dur);
		if (ms->deny_sqlstate[0])
		{
			/* a quota refused it: it ended in that error, however closed */
			outcome = OUTCOME_ERROR;
			sqlstate = ms->deny_sqlstate;
		}
		r->outcome = outcome;
		if (sqlstate)
			memcpy(r->sqlstate, sqlstate, 5);
		licdata_journal_close_record(r);
	}
	PG_TRY();
	{
		quota_release(ms);
	}
	PG_FINALLY();
	{
		pfree(ms);
	}
	PG_END_TRY();
}

/*
 * A refused licensee statement: an audit record of the denial, written and
 * closed before the error is raised (the transaction will abort, the
 * journal does not).
 */
void
licdata_meter_denial(LicdataDataset *ds, const LicdataDecision *d, int64 licence_id)
{
	JournalUse	u;
	JournalRecord *rec;
	const LicdataLicensee *who = licdata_acting_licensee();

	if (IsParallelWorker())
		return;
	memset(&u, 0, sizeof(u));
	u.dataset = ds ? ds->relid : InvalidOid;
	u.licence_id = licence_id;
	rec = write_record(KIND_DENIAL, who, &u, ds ? 1 : 0, unpack_sql_state(d->sqlerrcode), 0);
	rec->ended_at = GetCurrentTimestamp();
	rec->outcome = OUTCOME_ERROR;
	memcpy(rec->sqlstate, unpack_sql_state(d->sqlerrcode), 5);
	licdata_journal_close_record(rec);
}

/* The datasets a plan reads through a licence (or, for operators, at all). */
static List *
plan_datasets(PlannedStmt *ps, Oid reader, bool licensed)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, ps->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		LicdataDataset *ds;

		if (rte->rtekind != RTE_RELATION)
			continue;
		if (licensed && rte->checkAsUser != reader)
			continue;
		ds = licdata_dataset_for_rel(rte->relid);
		if (ds)
			result = list_append_unique_ptr(result, ds);
	}
	return result;
}

/*
 * The licences qd reads its datasets through, decided again (time, status
 * or consent may have changed since planning): refused (a denial record,
 * then the error), or taken from the quotas and recorded with ms.
 */
static void
attach_uses(MeterStmt *ms, QueryDesc *qd, List *dss, const LicdataLicensee *who)
{
	TimestampTz now = GetCurrentTimestamp();
	ListCell   *lc;

	foreach(lc, dss)
	{
		LicdataDataset *ds = lfirst(lc);
		LicdataDecision d;

		licdata_decide(ds, who, licdata_purpose, licdata_consent_ref, now, &d);
		if (d.sqlerrcode != 0)
		{
			licdata_meter_denial(ds, &d, 0);
			licdata_raise_decision(&d);
		}
		if (!licdata_plan_fingerprint_matches(qd->plannedstmt, ds, d.licence))
		{
			LicdataDecision changed;

			memset(&changed, 0, sizeof(changed));
			changed.sqlerrcode = ERRCODE_LD_LICENCE_CHANGED;
			changed.message = psprintf("the terms of licence %lld for dataset %s changed after this statement was planned",
									   (long long) d.licence->id, ds->name);
			changed.detail = pstrdup("The statement was prepared under terms (columns, rows, masks or purpose) that no longer hold.");
			changed.hint = pstrdup("Run the statement again; it will be planned under the current terms.");
			licdata_meter_denial(ds, &changed, d.licence->id);
			licdata_raise_decision(&changed);
		}
		quota_start(ms, d.licence, ds);
		stmt_add_use(ms, ds->relid, d.licence, ds);
	}
	stmt_journal(ms, who, qd->plannedstmt->queryId);
}

/*
 * A cursor opened inside a function whose statement has ended is run again
 * (FETCH from a returned refcursor): meter it with the statement running
 * now, or as a statement of its own.  Returns the statement it now counts
 * for; 'nested' tells whether as a nested statement.
 */
static MeterStmt *
adopt_orphan(NestedQuery *nq, bool *nested)
{
	const LicdataLicensee *who = licdata_acting_licensee();
	List	   *dss = NIL;
	MeterStmt  *ms;

	for (int i = 0; i < nq->ndatasets; i++)
	{
		LicdataDataset *ds = licdata_dataset_for_rel(nq->datasets[i]);

		if (ds == NULL || who == NULL)
		{
			LicdataDecision d;

			memset(&d, 0, sizeof(d));
			d.sqlerrcode = ERRCODE_LD_NO_LICENCE;
			d.message = psprintf("dataset %u is no longer served to this session", nq->datasets[i]);
			d.detail = pstrdup("The cursor was opened under a licence that no longer applies.");
			d.hint = pstrdup("Close the cursor and run the query again.");
			licdata_meter_denial(NULL, &d, 0);
			licdata_raise_decision(&d);
		}
		dss = lappend(dss, ds);
	}
	if (running != NULL && running->kind == KIND_LICENSEE)
	{
		ms = running;
		*nested = true;
		attach_uses(ms, nq->qd, dss, who);
		nq->ms = ms;
	}
	else
	{
		ms = stmt_new(nq->qd, KIND_LICENSEE);
		*nested = false;
		attach_uses(ms, nq->qd, dss, who);
		nested_forget(nq);
	}
	return ms;
}

void
licdata_meter_executor_start(QueryDesc *qd, int eflags, int depth)
{
	const LicdataCatalog *c;
	const LicdataLicensee *who;
	List	   *dss;
	ListCell   *lc;
	MeterStmt  *ms;
	bool		nested = false;

	if (IsParallelWorker())
		return;
	c = licdata_catalog();
	if (c == NULL || (eflags & EXEC_FLAG_EXPLAIN_ONLY))
		return;
	/* an entry left for a QueryDesc that was freed without ExecutorEnd */
	if (nested_queries != NIL)
	{
		NestedQuery *stale = nested_of(qd);

		if (stale)
			nested_forget(stale);
	}
	who = licdata_acting_licensee();
	if (who == NULL)
	{
		/* Operators and other roles: audit their reads of datasets. */
		if (!licdata_audit_operators || running != NULL || depth > 0)
			return;
		if (!licdata_any_datasets())
			return;
		dss = plan_datasets(qd->plannedstmt, c->reader_role, false);
		if (dss == NIL)
			return;
		ms = stmt_new(qd, KIND_OPERATOR);
		foreach(lc, dss)
			stmt_add_use(ms, ((LicdataDataset *) lfirst(lc))->relid, NULL, lfirst(lc));
		stmt_journal(ms, NULL, qd->plannedstmt->queryId);
		return;
	}

	dss = plan_datasets(qd->plannedstmt, c->reader_role, true);
	if (running != NULL && depth > 0 && running->kind == KIND_LICENSEE)
	{
		ms = running;			/* inside a function of the running statement */
		nested = true;
	}
	else if (depth > 0 && dss == NIL)
		return;					/* a function's statement, nothing licensed */
	else
		ms = stmt_new(qd, KIND_LICENSEE);

	if (dss == NIL)
		return;
	/* a standby serves licensees only while its records reach the primary */
	licdata_replica_check_serving();
	attach_uses(ms, qd, dss, who);
	if (nested)
	{
		NestedQuery *nq = MemoryContextAllocZero(TopMemoryContext, sizeof(NestedQuery));
		int			i = 0;

		nq->qd = qd;
		nq->ms = ms;
		nq->subxid = GetCurrentSubTransactionId();
		nq->ndatasets = list_length(dss);
		nq->datasets = MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * nq->ndatasets);
		foreach(lc, dss)
			nq->datasets[i++] = ((LicdataDataset *) lfirst(lc))->relid;
		nested_queries = top_lappend(nested_queries, nq);
	}
}

/* licdata.token: a lookup, metered with the statement that runs it. */
void
licdata_meter_lookup(LicdataDataset *ds, const LicdataLicence *lic)
{
	if (running == NULL || IsParallelWorker())
		return;
	quota_start(running, lic, ds);
	stmt_add_use(running, ds->relid, lic, ds);
	stmt_journal(running, licdata_acting_licensee(), 0);
}

/*
 * A DO or CALL block: the statements it runs attach to one record.  The
 * token handed back is the statement's id, not a pointer: if the block's
 * record was closed meanwhile (a ROLLBACK inside a procedure), the end of
 * the block finds nothing to close.
 */
void *
licdata_meter_block_begin(void)
{
	MeterStmt  *ms;

	if (IsParallelWorker() || licdata_catalog() == NULL ||
		licdata_acting_licensee() == NULL || running != NULL)
		return NULL;
	ms = stmt_new(NULL, KIND_LICENSEE);
	running = ms;
	return (void *) (uintptr_t) ms->id;
}

void
licdata_meter_block_end(void *block)
{
	MeterStmt  *ms = stmt_by_id((uint64) (uintptr_t) block);

	if (ms == NULL)
		return;
	stmt_close(ms, OUTCOME_OK, NULL);
}

/*
 * INSERT / UPDATE / DELETE / MERGE without RETURNING deliver no rows to a
 * destination: the rows they wrote count (INSERT INTO own_table SELECT
 * ... FROM dataset copies licensed rows as surely as CREATE TABLE AS).
 * Counted at ExecutorEnd, which runs before the transaction can commit,
 * so a rows quota refuses them while their writes can still roll back.
 */
static int64
rows_written(QueryDesc *qd)
{
	if (qd->operation == CMD_SELECT || qd->operation == CMD_UTILITY ||
		qd->plannedstmt == NULL || qd->plannedstmt->hasReturning || qd->estate == NULL)
		return 0;
	return (int64) qd->estate->es_processed;
}

void
licdata_meter_executor_end(QueryDesc *qd)
{
	NestedQuery *nq;
	MeterStmt  *ms;
	int64		written;

	if (IsParallelWorker())
		return;
	nq = nested_of(qd);
	if (nq)
	{
		ms = nq->ms;			/* NULL: its statement ended, it did not run since */
		nested_forget(nq);
		written = rows_written(qd);
		if (written > 0 && ms)
			count_rows(ms, written, true, false);
		return;
	}
	ms = stmt_of(qd);
	if (ms == NULL)
		return;
	written = rows_written(qd);
	if (written > 0)
		count_rows(ms, written, false, false);

	if (ms->persisting)
	{
		/*
		 * A cursor WITH HOLD was materialised at commit: from now on its
		 * FETCHes read the store.  The record stays open until the cursor
		 * is closed.
		 */
		Portal		portal = ms->persisting;

		ms->persisting = NULL;
		ms->owner = NULL;
		ms->held = portal;
		ms->held_cleanup = portal->cleanup;
		portal->cleanup = held_cleanup;
		quota_release(ms);
		return;
	}
	if (licdata_aggregate_suppressed > 0)
		ereport(NOTICE,
				(errmsg("licdata: %lld group(s) smaller than the licence's minimum group size were suppressed",
						(long long) licdata_aggregate_suppressed)));
	stmt_close(ms, OUTCOME_OK, NULL);
}

/* ---- counting rows ---- */

static bool
counting_receive(TupleTableSlot *slot, DestReceiver *self)
{
	CountingDest *cd = (CountingDest *) self;
	NestedQuery *nq = cd->nq;

	if (nq == NULL)
		count_rows(cd->stmt, 1, false, true);
	else if (!nq->rerun)
	{
		count_rows(cd->stmt, 1, true, true);
		nq->rows++;
	}
	else if (++nq->rerun_rows > nq->rows)
	{
		/* a re-run from the start: only rows past the first run are new */
		count_rows(cd->stmt, 1, true, true);
		nq->rows++;
	}
	return cd->inner->receiveSlot(slot, cd->inner);
}

static void
counting_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	CountingDest *cd = (CountingDest *) self;

	cd->inner->rStartup(cd->inner, operation, typeinfo);
}

static void
counting_shutdown(DestReceiver *self)
{
	CountingDest *cd = (CountingDest *) self;

	cd->inner->rShutdown(cd->inner);
}

static void
counting_destroy(DestReceiver *self)
{
	/* the wrapper is freed by whoever made it */
}

static CountingDest *
counting_dest(DestReceiver *orig, MeterStmt *ms, NestedQuery *nq)
{
	CountingDest *cd = palloc0(sizeof(CountingDest));

	cd->pub.receiveSlot = counting_receive;
	cd->pub.rStartup = counting_startup;
	cd->pub.rShutdown = counting_shutdown;
	cd->pub.rDestroy = counting_destroy;
	cd->pub.mydest = orig->mydest;
	cd->inner = orig;
	cd->stmt = ms;
	cd->nq = nq;
	return cd;
}

/* Is qd's ExecutorRun the re-run that materialises a cursor WITH HOLD? */
static bool
persisting_held_cursor(QueryDesc *qd)
{
	return ActivePortal != NULL && ActivePortal->queryDesc == qd &&
		ActivePortal->holdStore != NULL &&
		(ActivePortal->cursorOptions & CURSOR_OPT_HOLD) != 0;
}

/*
 * Wrap qd's destination for one ExecutorRun when qd is metered; returns
 * NULL when not.  Also marks the statement running (until the matching
 * licdata_meter_unwrap_dest), so licensed statements inside functions
 * attach to it.
 */
DestReceiver *
licdata_meter_wrap_dest(QueryDesc *qd, DestReceiver *orig)
{
	MeterStmt  *ms;
	NestedQuery *nq = NULL;
	RunFrame   *f;

	if (IsParallelWorker())
		return NULL;
	ms = stmt_of(qd);
	if (ms == NULL)
	{
		bool		nested = true;

		nq = nested_of(qd);
		if (nq == NULL)
			return NULL;
		ms = nq->ms;
		if (ms == NULL)
			ms = adopt_orphan(nq, &nested);
		if (!nested)
			return licdata_meter_wrap_dest(qd, orig);	/* now its own statement */
		nq->rerun = persisting_held_cursor(qd);
		nq->rerun_rows = 0;
		if (orig->mydest == DestNone)
			return NULL;
		return (DestReceiver *) counting_dest(orig, ms, nq);
	}

	f = MemoryContextAllocZero(TopMemoryContext, sizeof(RunFrame));
	f->qd = qd;
	f->ms_id = ms->id;
	f->prev_running_id = running ? running->id : 0;
	run_stack = top_lappend(run_stack, f);
	running = ms;
	if (persisting_held_cursor(qd))
	{
		/*
		 * The re-run delivers nothing to the client (its FETCHes from the
		 * store are counted later); functions it runs again are not billed
		 * again.
		 */
		f->persist = true;
		ms->persisting = ActivePortal;
		ms->rerun = true;
		ms->nested_base = ms->nested_rows;
		ms->nested_rows = 0;
		return NULL;
	}
	if (orig->mydest == DestNone)
		return NULL;
	return (DestReceiver *) counting_dest(orig, ms, NULL);
}

void
licdata_meter_unwrap_dest(QueryDesc *qd, DestReceiver *wrapper)
{
	if (run_stack != NIL)
	{
		RunFrame   *f = llast(run_stack);

		if (f->qd == qd)
		{
			MeterStmt  *ms = stmt_by_id(f->ms_id);

			run_stack = list_delete_last(run_stack);
			if (ms)
			{
				if (f->persist && ms->rerun)
				{
					ms->nested_rows = Max(ms->nested_base, ms->nested_rows);
					ms->rerun = false;
					sync_counts(ms);
				}
				quota_release(ms);
			}
			running = stmt_by_id(f->prev_running_id);
			pfree(f);
		}
	}
	if (wrapper)
		pfree(wrapper);
}

/* ---- cursors WITH HOLD ---- */

/* The portal's cleanup hook: the cursor is closed (or failed). */
static void
held_cleanup(Portal portal)
{
	MeterStmt  *ms = stmt_held(portal);
	void		(*next) (Portal) = PortalCleanup;

	if (ms)
	{
		next = ms->held_cleanup;
		stmt_close(ms, portal->status == PORTAL_FAILED ? OUTCOME_ERROR : OUTCOME_OK,
				   portal->status == PORTAL_FAILED && last_sqlstate[0] ? last_sqlstate : NULL);
	}
	portal->cleanup = next;
	if (next)
		next(portal);
}

/*
 * FETCH from a materialised cursor WITH HOLD runs no executor: the utility
 * hook (hooks.c) asks for a counting destination here, and gives it back
 * with licdata_meter_fetch_done.  Returns NULL when the FETCH is not metered.
 */
DestReceiver *
licdata_meter_fetch_dest(Node *parsetree, DestReceiver *dest, uint64 *id)
{
	FetchStmt  *fs;
	Portal		portal;
	MeterStmt  *ms;

	if (open_stmts == NIL || !IsA(parsetree, FetchStmt))
		return NULL;
	fs = (FetchStmt *) parsetree;
	if (fs->ismove || dest->mydest == DestNone || fs->portalname == NULL)
		return NULL;
	portal = GetPortalByName(fs->portalname);
	ms = PortalIsValid(portal) ? stmt_held(portal) : NULL;
	if (ms == NULL)
		return NULL;
	*id = ms->id;
	return (DestReceiver *) counting_dest(dest, ms, NULL);
}

void
licdata_meter_fetch_done(DestReceiver *counting, uint64 id)
{
	MeterStmt  *ms = stmt_by_id(id);

	if (ms)
		quota_release(ms);
	pfree(counting);
}

/* ---- aborts ---- */

static char
abort_outcome(void)
{
	if (proc_exit_inprogress)
		return OUTCOME_CANCELLED;	/* disconnect, termination */
	if (last_sqlstate[0])
		return (strcmp(last_sqlstate, "57014") == 0 || strncmp(last_sqlstate, "57P", 3) == 0) ?
			OUTCOME_CANCELLED : OUTCOME_ERROR;
	/* no error: the client's ROLLBACK (TBLOCK_ABORT_PENDING and friends) */
	if (TransactionBlockStatusCode() == 'E')
		return OUTCOME_CANCELLED;
	return OUTCOME_ERROR;
}

/* Close every open statement but held cursors (which outlive transactions). */
static void
close_all_but_held(char outcome, const char *sqlstate)
{
	ListCell   *lc;
	List	   *doomed = NIL;

	foreach(lc, open_stmts)
	{
		MeterStmt  *ms = lfirst(lc);

		if (ms->held == NULL)
			doomed = lappend(doomed, ms);
	}
	foreach(lc, doomed)
		stmt_close(lfirst(lc), outcome, sqlstate);
	list_free(doomed);
}

static void
meter_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			close_all_but_held(abort_outcome(), last_sqlstate[0] ? last_sqlstate : NULL);
			while (nested_queries != NIL)
				nested_forget(linitial(nested_queries));
			list_free_deep(run_stack);
			run_stack = NIL;
			running = NULL;
			last_sqlstate[0] = '\0';
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:

			/*
			 * Every portal of the transaction was dropped (its ExecutorEnd
			 * closed its record) or held.  Anything else still open leaked:
			 * close it rather than keep it forever.  Not inside a procedure
			 * that commits (a block is running then, and goes on).
			 */
			if (running == NULL)
				close_all_but_held(OUTCOME_OK, NULL);
			last_sqlstate[0] = '\0';
			break;
		default:
			break;
	}
}

static void
meter_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;
	List	   *doomed = NIL;
	char		outcome;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	outcome = abort_outcome();
	foreach(lc, open_stmts)
	{
		MeterStmt  *ms = lfirst(lc);

		if (ms->subxid >= mySubid && ms->held == NULL)
			doomed = lappend(doomed, ms);
	}
	foreach(lc, doomed)
		stmt_close(lfirst(lc), outcome, last_sqlstate[0] ? last_sqlstate : NULL);
	list_free(doomed);
	foreach(lc, nested_queries)
	{
		NestedQuery *nq = lfirst(lc);

		if (nq->subxid >= mySubid)
		{
			nested_queries = foreach_delete_current(nested_queries, lc);
			if (nq->datasets)
				pfree(nq->datasets);
			pfree(nq);
		}
	}
	if (running && !list_member_ptr(open_stmts, running))
		running = NULL;

	/*
	 * last_sqlstate is kept: a cursor of the parent transaction whose FETCH
	 * failed in this subtransaction ends with the parent, and its outcome
	 * is that error.
	 */
}

static void
meter_emit_log(ErrorData *edata)
{
	if (edata->elevel >= ERROR)
		memcpy(last_sqlstate, unpack_sql_state(edata->sqlerrcode), 6);
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
licdata_meter_init(void)
{
	RegisterXactCallback(meter_xact_callback, NULL);
	RegisterSubXactCallback(meter_subxact_callback, NULL);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = meter_emit_log;
}
