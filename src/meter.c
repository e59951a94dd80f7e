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
 *	ExecutorEnd	   close the record: outcome ok
 *	(sub)xact abort close the record: outcome error, or cancelled for a
 *				   cancel or disconnect (ExecutorEnd does not run then)
 *
 * Day quotas are exact across backends: shared counters (shmem.h) taken
 * under quota_lock; rows are reserved in chunks and unused reservations
 * returned at the end, so the total delivered never passes the quota.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/cryptohash.h"
#include "common/sha2.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parsetree.h"
#include "portability/instr_time.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "storage/ipc.h"
#include "utils/timestamp.h"

#include "errcodes.h"
#include "licdata.h"
#include "meter.h"
#include "rewrite.h"
#include "shmem.h"

typedef struct QuotaState
{
	int64		licence_id;
	int64		max_rows_per_query;
	int64		max_rows_per_day;
	int64		reserved;		/* rows taken from the day quota, not yet used */
} QuotaState;

typedef struct MeterStmt
{
	JournalRecord *rec;			/* NULL until a licensed access happens */
	QueryDesc  *owner;			/* NULL for a DO / CALL block */
	SubTransactionId subxid;
	instr_time	start;
	TimestampTz started_at;
	int			kind;
	int			nquota;
	QuotaState	quota[LICDATA_MAX_USES];
	JournalUse	uses[LICDATA_MAX_USES];
	int			nuses;
	int64		rows;
	int64		nested_rows;
} MeterStmt;

typedef struct CountingDest
{
	DestReceiver pub;
	DestReceiver *inner;
	MeterStmt  *stmt;
	bool		nested;
} CountingDest;

static List *open_stmts = NIL;	/* MeterStmt *, in TopMemoryContext */
static MeterStmt *running = NULL;	/* the outermost statement now executing */
static List *nested_qds = NIL;	/* QueryDescs of licensed statements in functions */
static char last_sqlstate[6] = "";
static emit_log_hook_type prev_emit_log_hook = NULL;

/* ---- helpers ---- */

static int32
utc_day(TimestampTz t)
{
	return (int32) (t / USECS_PER_DAY);
}

static void
fill_identity(JournalRecord *r, int kind, const LicdataLicensee *who)
{
	const char *stmt_src = debug_query_string ? debug_query_string : "";

	r->kind = kind;
	r->started_at = GetCurrentTimestamp();
	r->licensee = who ? who->roleid : InvalidOid;
	strlcpy(r->role_name, GetUserNameFromId(GetUserId(), false), NAMEDATALEN);
	strlcpy(r->session_user_name, GetUserNameFromId(GetSessionUserId(), false), NAMEDATALEN);
	strlcpy(r->purpose, licdata_purpose ? licdata_purpose : "", NAMEDATALEN);
	strlcpy(r->consent_ref, licdata_consent_ref ? licdata_consent_ref : "", sizeof(r->consent_ref));
	(void) stmt_src;
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

static void
set_use(JournalUse *u, Oid dataset, const LicdataLicence *lic, const LicdataDataset *ds)
{
	memset(u, 0, sizeof(*u));
	u->dataset = dataset;
	if (lic)
	{
		u->licence_id = lic->id;
		u->flags = lic->aggregate_mode ? 1 : 0;
		strlcpy(u->price_per_query,
				lic->price_per_query ? lic->price_per_query : (ds && ds->price_per_query ? ds->price_per_query : "0"),
				sizeof(u->price_per_query));
		strlcpy(u->price_per_row,
				lic->price_per_row ? lic->price_per_row : (ds && ds->price_per_row ? ds->price_per_row : "0"),
				sizeof(u->price_per_row));
	}
}

static JournalRecord *
write_record(int kind, const LicdataLicensee *who, JournalUse *uses, int nuses,
			 const char *deny_sqlstate, uint64 query_id)
{
	JournalRecord *hdr = palloc0(sizeof(JournalRecord));
	uint32		len;
	bool		is_hash;
	char	   *text = statement_text(&len, &is_hash);
	JournalRecord *rec;

	fill_identity(hdr, kind, who);
	hdr->query_id = query_id;
	hdr->statement_is_hash = is_hash;
	if (deny_sqlstate)
		memcpy(hdr->deny_sqlstate, deny_sqlstate, 5);
	hdr->nuses = nuses;
	memcpy(hdr->uses, uses, sizeof(JournalUse) * nuses);
	rec = licdata_journal_append(hdr, text, len);
	pfree(hdr);
	pfree(text);
	return rec;
}

/* ---- quotas ---- */

static LicdataQuotaEntry *
quota_entry(int64 licence_id, int32 today)
{
	bool		found;
	LicdataQuotaEntry *e;

	e = hash_search(licdata_quota_hash, &licence_id, HASH_ENTER_NULL, &found);
	if (e == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("could not track the quota of licence %lld", (long long) licence_id),
				 errdetail("The shared quota table is full."),
				 errhint("Restart the server to rebuild the quota table.")));
	if (!found || e->day != today)
	{
		e->day = today;
		e->queries = 0;
		e->rows = 0;
	}
	return e;
}

static void
wait_quota_ready(void)
{
	int			waited = 0;

	while (pg_atomic_read_u32(&licdata_shared->quota_ready) == 0)
	{
		CHECK_FOR_INTERRUPTS();
		if (waited >= 30000)
			ereport(ERROR,
					(errcode(ERRCODE_LD_NOT_READY),
					 errmsg("quota counters are not ready"),
					 errdetail("The licdata background worker has not yet rebuilt today's quota counters from the usage table."),
					 errhint("Check that the licdata worker is running in database \"%s\" and retry.",
							 licdata_database)));
		pg_usleep(10000L);
		waited += 10;
	}
}

static void
quota_refuse(const LicdataLicence *lic, LicdataDataset *ds, const char *what, int64 limit)
{
	LicdataDecision d;

	memset(&d, 0, sizeof(d));
	d.sqlerrcode = ERRCODE_LD_QUOTA_EXCEEDED;
	d.message = psprintf("quota of licence %lld reached: %s", (long long) lic->id, what);
	d.detail = psprintf("The limit is %lld.", (long long) limit);
	d.hint = pstrdup("Wait for the quota to reset at midnight UTC, or ask the operator to raise it.");
	licdata_meter_denial(ds, &d, lic->id);
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
		return;
	if (lic->max_queries_per_day > 0 || lic->max_rows_per_day > 0)
	{
		LicdataQuotaEntry *e;

		wait_quota_ready();
		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		e = quota_entry(lic->id, today);
		if (lic->max_queries_per_day > 0 && e->queries >= lic->max_queries_per_day)
		{
			LWLockRelease(licdata_shared->quota_lock);
			quota_refuse(lic, ds, "queries per day", lic->max_queries_per_day);
		}
		if (lic->max_rows_per_day > 0 && e->rows >= lic->max_rows_per_day)
		{
			LWLockRelease(licdata_shared->quota_lock);
			quota_refuse(lic, ds, "rows per day", lic->max_rows_per_day);
		}
		e->queries++;
		LWLockRelease(licdata_shared->quota_lock);
	}
	qs = &ms->quota[ms->nquota++];
	qs->licence_id = lic->id;
	qs->max_rows_per_query = lic->max_rows_per_query;
	qs->max_rows_per_day = lic->max_rows_per_day;
	qs->reserved = 0;
}

/* Before a row is sent: would it pass a rows quota? */
static void
quota_row(MeterStmt *ms, int64 next_count)
{
	for (int i = 0; i < ms->nquota; i++)
	{
		QuotaState *qs = &ms->quota[i];

		if (qs->max_rows_per_query > 0 && next_count > qs->max_rows_per_query)
		{
			LicdataLicence *lic = licdata_licence_by_id(qs->licence_id);

			if (lic)
				quota_refuse(lic, licdata_dataset_for_rel(lic->dataset), "rows per query",
							 qs->max_rows_per_query);
		}
		if (qs->max_rows_per_day > 0)
		{
			if (qs->reserved == 0)
			{
				LicdataQuotaEntry *e;
				int64		left;
				int64		take;

				LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
				e = quota_entry(qs->licence_id, utc_day(GetCurrentTimestamp()));
				left = qs->max_rows_per_day - e->rows;
				take = Min(left, Max((int64) 1, Min((int64) 1000, left / 8)));
				if (take > 0)
					e->rows += take;
				LWLockRelease(licdata_shared->quota_lock);
				if (take <= 0)
				{
					LicdataLicence *lic = licdata_licence_by_id(qs->licence_id);

					if (lic)
						quota_refuse(lic, licdata_dataset_for_rel(lic->dataset), "rows per day",
									 qs->max_rows_per_day);
				}
				qs->reserved = take;
			}
			qs->reserved--;
		}
	}
}

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

			if (e)
				e->rows -= qs->reserved;
			qs->reserved = 0;
		}
	}
	LWLockRelease(licdata_shared->quota_lock);
}

/* ---- statements ---- */

static MeterStmt *
stmt_new(QueryDesc *owner, int kind)
{
	MeterStmt  *ms = MemoryContextAllocZero(TopMemoryContext, sizeof(MeterStmt));

	ms->owner = owner;
	ms->kind = kind;
	ms->subxid = GetCurrentSubTransactionId();
	ms->started_at = GetCurrentTimestamp();
	INSTR_TIME_SET_CURRENT(ms->start);
	open_stmts = lappend(open_stmts, ms);
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
	set_use(&ms->uses[ms->nuses++], dataset, lic, ds);
	if (ms->rec)
	{
		ms->rec->uses[ms->nuses - 1] = ms->uses[ms->nuses - 1];
		pg_write_barrier();
		ms->rec->nuses = ms->nuses;
	}
}

static void
stmt_journal(MeterStmt *ms, const LicdataLicensee *who, uint64 query_id)
{
	if (ms->rec)
		return;
	ms->rec = write_record(ms->kind, who, ms->uses, ms->nuses, NULL, query_id);
}

static void
stmt_close(MeterStmt *ms, char outcome, const char *sqlstate)
{
	JournalRecord *r = ms->rec;

	quota_release(ms);
	if (r)
	{
		instr_time	dur;

		INSTR_TIME_SET_CURRENT(dur);
		INSTR_TIME_SUBTRACT(dur, ms->start);
		r->rows = ms->rows;
		r->nested_rows = ms->nested_rows;
		r->rows_aggregated = licdata_aggregate_rows;
		r->ended_at = GetCurrentTimestamp();
		r->duration_ms = INSTR_TIME_GET_MILLISEC(dur);
		r->outcome = outcome;
		if (sqlstate)
			memcpy(r->sqlstate, sqlstate, 5);
		licdata_journal_close_record(r);
	}
	if (running == ms)
		running = NULL;
	open_stmts = list_delete_ptr(open_stmts, ms);
	pfree(ms);
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

bool
licdata_meter_owner_active(void)
{
	return running != NULL;
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

void
licdata_meter_executor_start(QueryDesc *qd, int eflags, int depth)
{
	const LicdataCatalog *c = licdata_catalog();
	const LicdataLicensee *who;
	List	   *dss;
	ListCell   *lc;
	MeterStmt  *ms;
	bool		nested = false;
	TimestampTz now = GetCurrentTimestamp();

	if (c == NULL || (eflags & EXEC_FLAG_EXPLAIN_ONLY))
		return;
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
	if (running != NULL && depth > 0)
	{
		ms = running;			/* inside a function of the running statement */
		nested = true;
	}
	else if (depth > 0 && dss == NIL)
		return;					/* a function's statement, nothing licensed */
	else if (depth > 0)
		ms = stmt_new(NULL, KIND_LICENSEE); /* owned by its QueryDesc below */
	else
		ms = stmt_new(qd, KIND_LICENSEE);
	if (ms->owner == NULL && !nested)
		ms->owner = qd;

	if (dss == NIL)
		return;

	/* The licence is decided again: time, status or consent may have changed. */
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
	if (nested)
		nested_qds = lappend(nested_qds, qd);
}

/* licdata.token: a lookup, metered with the statement that runs it. */
void
licdata_meter_lookup(LicdataDataset *ds, const LicdataLicence *lic)
{
	if (running == NULL)
		return;
	quota_start(running, lic, ds);
	stmt_add_use(running, ds->relid, lic, ds);
	stmt_journal(running, licdata_acting_licensee(), 0);
}

/* A DO or CALL block: the statements it runs attach to one record. */
void *
licdata_meter_block_begin(void)
{
	MeterStmt  *ms;

	if (licdata_catalog() == NULL || licdata_acting_licensee() == NULL || running != NULL)
		return NULL;
	ms = stmt_new(NULL, KIND_LICENSEE);
	running = ms;
	return ms;
}

void
licdata_meter_block_end(void *block)
{
	MeterStmt  *ms = block;

	if (ms == NULL || !list_member_ptr(open_stmts, ms))
		return;
	stmt_close(ms, OUTCOME_OK, NULL);
}

void
licdata_meter_executor_end(QueryDesc *qd)
{
	MeterStmt  *ms = stmt_of(qd);

	nested_qds = list_delete_ptr(nested_qds, qd);
	if (ms == NULL)
		return;
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
	MeterStmt  *ms = cd->stmt;

	if (cd->nested)
	{
		ms->nested_rows++;
		if (ms->nested_rows > ms->rows)
			quota_row(ms, ms->nested_rows);
		if (ms->rec)
			ms->rec->nested_rows = ms->nested_rows;
	}
	else
	{
		if (ms->rows >= ms->nested_rows)
			quota_row(ms, ms->rows + 1);
		ms->rows++;
		if (ms->rec)
			ms->rec->rows = ms->rows;
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
	/* the wrapper is freed by licdata_meter_unwrap_dest */
}

/*
 * Wrap qd's destination for one ExecutorRun when qd is metered; returns
 * NULL when not.  Also marks the statement running, so licensed statements
 * inside functions attach to it.
 */
DestReceiver *
licdata_meter_wrap_dest(QueryDesc *qd, DestReceiver *orig)
{
	MeterStmt  *ms = stmt_of(qd);
	CountingDest *cd;
	bool		nested = false;

	if (ms == NULL)
	{
		if (running == NULL || !list_member_ptr(nested_qds, qd))
			return NULL;
		ms = running;
		nested = true;
	}
	else
		running = ms;
	if (orig->mydest == DestNone)
		return NULL;
	cd = palloc0(sizeof(CountingDest));
	cd->pub.receiveSlot = counting_receive;
	cd->pub.rStartup = counting_startup;
	cd->pub.rShutdown = counting_shutdown;
	cd->pub.rDestroy = counting_destroy;
	cd->pub.mydest = orig->mydest;
	cd->inner = orig;
	cd->stmt = ms;
	cd->nested = nested;
	return (DestReceiver *) cd;
}

void
licdata_meter_unwrap_dest(QueryDesc *qd, DestReceiver *wrapper)
{
	MeterStmt  *ms = stmt_of(qd);

	if (ms && running == ms)
		running = NULL;
	if (wrapper)
		pfree(wrapper);
}

/* ---- aborts ---- */

static char
abort_outcome(void)
{
	if (proc_exit_inprogress || strcmp(last_sqlstate, "57014") == 0 ||
		strncmp(last_sqlstate, "57P", 3) == 0)
		return OUTCOME_CANCELLED;
	return OUTCOME_ERROR;
}

static void
meter_xact_callback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	while (open_stmts != NIL)
		stmt_close(linitial(open_stmts), abort_outcome(),
				   last_sqlstate[0] ? last_sqlstate : NULL);
	running = NULL;
	nested_qds = NIL;
	last_sqlstate[0] = '\0';
}

static void
meter_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;
	List	   *doomed = NIL;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, open_stmts)
	{
		MeterStmt  *ms = lfirst(lc);

		if (ms->subxid >= mySubid)
			doomed = lappend(doomed, ms);
	}
	foreach(lc, doomed)
		stmt_close(lfirst(lc), abort_outcome(), last_sqlstate[0] ? last_sqlstate : NULL);
	if (running && !list_member_ptr(open_stmts, running))
		running = NULL;
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
