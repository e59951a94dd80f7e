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
 *				   cancel, a disconnect or a ROLLBACK by the client
 *				   (ExecutorEnd does not run then)
 *	backend exit   close what is still open (held cursors)
 *
 * Rows that leave other than as result rows count too, as they happen, into
 * the statement's "nested" rows (billed is the larger of delivered and
 * nested): rows its ModifyTable nodes write (wrapped after ExecutorStart),
 * rows folded into one value (the counters fold.c puts in the query), and
 * calls of the licensee's own functions (fmgr_hook).  Quotas are checked on
 * the same count, so a rows quota stops a write before it can commit.
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
#include "nodes/nodeFuncs.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/syscache.h"
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
#include "utils/regproc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "errcodes.h"
#include "lease.h"
#include "licdata.h"
#include "meter.h"
#include "plantag.h"
#include "replica.h"
#include "rewrite.h"
#include "product.h"
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
	int64		agg_rows;		/* dataset rows in released aggregate groups */
	int64		agg_base;		/* agg_rows before a re-run (held cursor) */
	/* only the first nquota / nuses entries are ever read: not zeroed */
	QuotaState	quota[LICDATA_MAX_USES];
	JournalUse	uses[LICDATA_MAX_USES];
	/* product calls and rows of a re-run (held cursor), per use */
	int64		rerun_calls[LICDATA_MAX_USES];
	int64		rerun_rows[LICDATA_MAX_USES];
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
static RunFrame *spare_frame = NULL;	/* one freed frame, kept for the next run */
static CountingDest *spare_dest = NULL; /* one freed wrapper, likewise */
static uint64 next_stmt_id = 1;
static bool exit_registered = false;
static char last_sqlstate[6] = "";	/* of the last error seen passing */
static const char *stmt_suffix = NULL;	/* a product call's arguments, while
										 * it opens its statement's record */

static void held_cleanup(Portal portal);
static void lock_held(MeterStmt *ms);
static void lock_all_held(void);

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

/*
 * Role names as recorded, kept per backend for the two roles a record names
 * (current and session user): looking them up costs two catalog-cache
 * searches per statement.  Dropped at every change of pg_authid (a rename),
 * so a record never carries a stale name.
 */
typedef struct RoleNameMemo
{
	Oid			roleid;
	char		name[NAMEDATALEN];
} RoleNameMemo;

static RoleNameMemo role_names[2];
static bool role_names_registered = false;
static uint64 role_names_resets = 0;

static void
role_names_reset(Datum arg, int cacheid, uint32 hashvalue)
{
	role_names_resets++;
	role_names[0].roleid = InvalidOid;
	role_names[1].roleid = InvalidOid;
}

static void
copy_role_name(char *dst, Oid roleid, int slot)
{
	RoleNameMemo *m = &role_names[slot];

	if (!role_names_registered)
	{
		CacheRegisterSyscacheCallback(AUTHOID, role_names_reset, (Datum) 0);
		role_names_registered = true;
	}
	if (m->roleid != roleid || !OidIsValid(roleid))
	{
		uint64		resets = role_names_resets;
		char	   *name = GetUserNameFromId(roleid, false);

		strlcpy(dst, name, NAMEDATALEN);
		pfree(name);
		/* kept only when no invalidation arrived during the lookup */
		if (resets == role_names_resets)
		{
			/* zero-padded, so that the whole NAME can be copied below */
			strncpy(m->name, dst, NAMEDATALEN);
			m->name[NAMEDATALEN - 1] = '\0';
			m->roleid = roleid;
		}
		return;
	}
	memcpy(dst, m->name, NAMEDATALEN);
}

static void
fill_identity(JournalRecord *r, int kind, const LicdataLicensee *who)
{
	r->kind = kind;
	r->started_at = GetCurrentTimestamp();
	r->licensee = who ? who->roleid : InvalidOid;
	copy_role_name(r->role_name, GetUserId(), 0);
	copy_role_name(r->session_user_name, GetSessionUserId(), 1);
	strlcpy(r->purpose, licdata_purpose_for(who), NAMEDATALEN);
	strlcpy(r->consent_ref, licdata_consent_ref_for(who), sizeof(r->consent_ref));
}

/*
 * The statement text, or its SHA-256 in hex when audit_statement_text is
 * off.  *to_free is set to what the caller frees after use (NULL when the
 * result is the session's own statement string, which is not copied).
 */
static const char *
statement_text(uint32 *len, bool *is_hash, char **to_free)
{
	const char *src = debug_query_string ? debug_query_string : "";
	size_t		n;

	*to_free = NULL;
	/* A data product's call opens the record: its arguments are audited too. */
	if (stmt_suffix)
		src = *to_free = psprintf("%s\n/* licdata product call: %s */", src, stmt_suffix);
	n = strlen(src);

	if (licdata_audit_statement_text)
	{
		n = Min(n, (size_t) (1024 * 1024));
		*len = (uint32) n;
		*is_hash = false;
		return src;				/* the journal copies the first n bytes */
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
		if (*to_free)
			pfree(*to_free);
		*to_free = hex;
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
	union
	{
		JournalRecord r;
		char		bytes[offsetof(JournalRecord, statement)];
	}			hdr_buf;
	JournalRecord *hdr = &hdr_buf.r;
	uint32		len;
	bool		is_hash;
	char	   *to_free;
	const char *text = statement_text(&len, &is_hash, &to_free);
	JournalRecord *rec;

	memset(&hdr_buf, 0, offsetof(JournalRecord, statement));
	fill_identity(hdr, kind, who);
	hdr->query_id = query_id;
	hdr->statement_is_hash = is_hash;
	if (deny_sqlstate)
		memcpy(hdr->deny_sqlstate, deny_sqlstate, 5);
	rec = licdata_journal_append(hdr, uses, nuses, nuses + JR_SPARE_USES, text, len);
	if (to_free)
		pfree(to_free);
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

/* A refusal found by the meter: its denial record, then the error. */
static void meter_refuse(LicdataDataset *ds, const LicdataDecision *d, int64 licence_id) pg_attribute_noreturn();
static void
meter_refuse(LicdataDataset *ds, const LicdataDecision *d, int64 licence_id)
{
	licdata_meter_denial(ds, d, licence_id);
	licdata_raise_decision(d);
}

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
	if (found && e->standby)
	{
		/*
		 * A standby's entry (its own use of leased quota, lease.c) seen by a
		 * node just promoted, before its worker rebuilt the counters.
		 */
		LWLockRelease(licdata_shared->quota_lock);
		ereport(ERROR,
				(errcode(ERRCODE_LD_NOT_READY),
				 errmsg("quota counters are not ready"),
				 errdetail("This node was just promoted; its licdata worker has not yet rebuilt today's quota counters."),
				 errhint("Retry in a moment.")));
	}
	if (!found || e->day != today)
	{
		memset(e, 0, sizeof(*e));
		e->licence_id = licence_id;
		e->day = today;
	}
	return e;
}

/* For lease.c: the shared counter of a licence for today (quota_lock held). */
LicdataQuotaEntry *
licdata_quota_entry(int64 licence_id, int32 today)
{
	return quota_entry(licence_id, today);
}

void
licdata_quota_table_full(int64 licence_id)
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

/* For lease.c: the primary grants leases only from rebuilt counters. */
void
licdata_quota_wait_ready(void)
{
	wait_quota_ready();
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
	else if (RecoveryInProgress())
		d.hint = pstrdup("The day quota is shared by all nodes and this standby leases it from the primary, which has none left: wait for the quota to reset at midnight UTC, or ask the operator to raise it.");
	else
		d.hint = pstrdup("Wait for the quota to reset at midnight UTC, or ask the operator to raise it.");
	if (own && ms != NULL && ms->rec != NULL)
	{
		memcpy(ms->deny_sqlstate, unpack_sql_state(d.sqlerrcode), 6);
		memcpy(ms->rec->sqlstate, ms->deny_sqlstate, 5);
		pg_write_barrier();
		ms->rec->denied = 1;
		licdata_raise_decision(&d);	/* audited by the statement's own record */
	}
	meter_refuse(ds, &d, licence_id);
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
			/*
			 * A standby: from this node's lease of the day quotas (lease.c).
			 * As on the primary, a query is taken and some rows must be
			 * left.
			 */
			int64		limit[LEASE_KINDS] = {lic->max_queries_per_day, lic->max_rows_per_day, 0};
			int64		need[LEASE_KINDS] = {1, 1, 0};
			int64		take[LEASE_KINDS] = {1, 0, 0};
			int			kind;

			switch (licdata_lease_take(lic->id, limit, need, take, 0, &today, &kind))
			{
				case LEASE_OK:
					break;
				case LEASE_EXHAUSTED:
					quota_refuse(ms, lic->id, kind == LEASE_QUERIES ? "queries per day" : "rows per day",
								 limit[kind], false);
					break;
				default:
					{
						LicdataDecision d;

						licdata_lease_unreachable_decision(lic->id, &d);
						licdata_meter_denial(ds, &d, lic->id);
						licdata_raise_decision(&d);
					}
			}
			goto taken;
		}

		wait_quota_ready();
		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		e = quota_entry(lic->id, today);
		if (e == NULL)
		{
			LWLockRelease(licdata_shared->quota_lock);
			licdata_quota_table_full(lic->id);
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
taken:
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
		if (RecoveryInProgress())
		{
			/*
			 * A standby: from this node's lease (lease.c), topped up from the
			 * primary when it runs short; stopped at the limit otherwise.
			 */
			int64		limit[LEASE_KINDS] = {0, qs->max_rows_per_day, 0};
			int64		needs[LEASE_KINDS] = {0, 0, 0};
			int64		takes[LEASE_KINDS] = {0, 0, 0};
			int32		day;
			int			kind;
			LeaseResult lr;

			if (qs->reserved_day != utc_day(GetCurrentTimestamp()))
				qs->reserved = 0;	/* yesterday's lease expired */
			need = n - qs->reserved;
			needs[LEASE_ROWS] = need;
			takes[LEASE_ROWS] = need;
			lr = licdata_lease_take(qs->licence_id, limit, needs, takes,
									stream ? 1000 : 0, &day, &kind);
			if (lr == LEASE_EXHAUSTED)
				quota_refuse(ms, qs->licence_id, "rows per day", qs->max_rows_per_day, own);
			else if (lr != LEASE_OK)
			{
				LicdataDecision d;
				LicdataLicence *lic = licdata_licence_by_id(qs->licence_id);

				licdata_lease_unreachable_decision(qs->licence_id, &d);
				if (own && ms->rec != NULL)
				{
					memcpy(ms->deny_sqlstate, unpack_sql_state(d.sqlerrcode), 6);
					memcpy(ms->rec->sqlstate, ms->deny_sqlstate, 5);
					pg_write_barrier();
					ms->rec->denied = 1;
					licdata_raise_decision(&d);
				}
				meter_refuse(lic ? licdata_dataset_for_rel(lic->dataset) : NULL, &d, qs->licence_id);
			}
			qs->reserved += takes[LEASE_ROWS] - n;
			qs->reserved_day = day;
			continue;
		}
		today = utc_day(GetCurrentTimestamp());
		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		e = quota_entry(qs->licence_id, today);
		if (e == NULL)
		{
			LWLockRelease(licdata_shared->quota_lock);
			licdata_quota_table_full(qs->licence_id);
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
count_rows_own(MeterStmt *ms, int64 n, bool nested, bool own, bool stream)
{
	int64		new_rows = ms->rows + (nested ? 0 : n);
	int64		new_nested = ms->nested_rows + (nested ? n : 0);
	int64		before = Max(ms->rows, effective_nested(ms, ms->nested_rows));
	int64		after = Max(new_rows, effective_nested(ms, new_nested));

	if (after > before && ms->nquota > 0)
		quota_take(ms, after - before, after, own, stream);
	ms->rows = new_rows;
	ms->nested_rows = new_nested;
	sync_counts(ms);
}

/*
 * The same, refusing at a quota as its own statement when the rows are
 * delivered by it, with a denial record of their own when they are
 * produced inside it (a function may catch the error and go on).
 */
static void
count_rows(MeterStmt *ms, int64 n, bool nested, bool stream)
{
	count_rows_own(ms, n, nested, !nested, stream);
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
			ms->agg_rows = Max(ms->agg_base, ms->agg_rows);
			ms->rerun = false;
		}
		r->rows = ms->rows;
		r->nested_rows = ms->nested_rows;
		r->rows_aggregated = ms->agg_rows;
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

	if (dss != NIL)
		licdata_refuse_on_standby();
	foreach(lc, dss)
	{
		LicdataDataset *ds = lfirst(lc);
		LicdataDecision d;

		licdata_decide(ds, who, licdata_purpose_for(who), licdata_consent_ref_for(who), now, &d);
		if (d.sqlerrcode != 0)
			meter_refuse(ds, &d, 0);
		if (!licdata_plan_terms_match(qd->plannedstmt, ds->relid,
									  licdata_terms_fingerprint(ds, d.licence, licdata_purpose_for(who))))
		{
			int64		id = d.licence->id;

			licdata_decision_refusal(&d, ERRCODE_LD_LICENCE_CHANGED,
									 psprintf("the terms of licence %lld for dataset %s changed after this statement was planned",
											  (long long) id, ds->name),
									 "The statement was prepared under terms (columns, rows, masks or purpose) that no longer hold.",
									 "Run the statement again; it will be planned under the current terms.");
			meter_refuse(ds, &d, id);
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

			licdata_decision_refusal(&d, ERRCODE_LD_NO_LICENCE,
									 psprintf("dataset %u is no longer served to this session", nq->datasets[i]),
									 "The cursor was opened under a licence that no longer applies.",
									 "Close the cursor and run the query again.");
			meter_refuse(NULL, &d, 0);
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

/* ---- data products (product.c) ---- */

/*
 * Add a use built by the caller (a product's, or a read inside one) to a
 * statement, or find it there: the same target, licence and kind is one
 * use.  Returns its index.
 */
static int
add_use(MeterStmt *ms, const JournalUse *u)
{
	const uint32 kind = USE_PRODUCT | USE_PRODUCT_READ;

	for (int i = 0; i < ms->nuses; i++)
	{
		if (ms->uses[i].dataset == u->dataset && ms->uses[i].licence_id == u->licence_id &&
			(ms->uses[i].flags & kind) == (u->flags & kind))
			return i;
	}
	if (ms->nuses >= LICDATA_MAX_USES)
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("a statement may use at most %d licences", LICDATA_MAX_USES),
				 errhint("Split the statement.")));
	ms->uses[ms->nuses] = *u;
	ms->rerun_calls[ms->nuses] = 0;
	ms->rerun_rows[ms->nuses] = 0;
	ms->nuses++;
	if (ms->rec)
	{
		if ((uint32) ms->nuses > ms->rec->uses_capacity)
			ms->rec = licdata_journal_regrow(ms->rec, ms->nuses + 2 * JR_SPARE_USES);
		JR_USES(ms->rec)[ms->nuses - 1] = ms->uses[ms->nuses - 1];
		pg_write_barrier();
		ms->rec->nuses = ms->nuses;
	}
	return ms->nuses - 1;
}

/* The datasets a product's body reads: audited with the call, not billed. */
static void
product_reads(QueryDesc *qd, const LicdataCatalog *c)
{
	List	   *dss;
	ListCell   *lc;

	if (running == NULL || running->kind != KIND_LICENSEE || qd->plannedstmt == NULL)
		return;
	dss = plan_datasets(qd->plannedstmt, c->reader_role, false);
	foreach(lc, dss)
	{
		JournalUse	u;

		memset(&u, 0, sizeof(u));
		u.dataset = ((LicdataDataset *) lfirst(lc))->relid;
		u.flags = USE_PRODUCT_READ;
		add_use(running, &u);
	}
}

/* Store a use's call and row counts into the record. */
static void
sync_use(MeterStmt *ms, int i)
{
	if (ms->rec && (uint32) i < ms->rec->nuses)
	{
		JR_USES(ms->rec)[i].calls = ms->uses[i].calls;
		JR_USES(ms->rec)[i].rows = ms->uses[i].rows;
	}
}

/*
 * One call of a data product under licence lic, by the running licensee
 * statement: the day quota of calls is taken first (exact across
 * sessions: a product licence's shared counter counts calls in 'queries'),
 * then the call is counted on the statement's use of the licence, and the
 * statement's record is opened if it is not yet (with the call's
 * arguments, from args_text, appended to the audited statement).  Returns
 * the use's index for licdata_meter_product_rows, and the statement's id.
 * With no licensee statement running the call cannot be metered, so it is
 * refused (fail closed).
 */
int
licdata_meter_product_call(Oid product, const LicdataLicence *lic,
						   const char *price_per_call, const char *price_per_row,
						   int64 max_calls_per_day, const char *(*args_text) (void *),
						   void *args_arg, uint64 *stmt_id)
{
	MeterStmt  *ms = running;
	JournalUse	u;
	int			i;

	if (ms == NULL || ms->kind != KIND_LICENSEE || IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("could not meter a call of data product %s, so it is refused",
						format_procedure(product)),
				 errdetail("The product was called outside a statement licdata meters (for example by COPY FROM)."),
				 errhint("Call the product in a SELECT, or in a function called by one.")));
	if (max_calls_per_day > 0)
	{
		int32		today = utc_day(GetCurrentTimestamp());
		LicdataQuotaEntry *e;
		bool		refused = false;

		if (RecoveryInProgress())
		{
			/*
			 * A standby: a call from this node's lease (lease.c); a product
			 * licence's calls are its "queries".
			 */
			int64		limit[LEASE_KINDS] = {max_calls_per_day, 0, 0};
			int64		need[LEASE_KINDS] = {1, 0, 0};
			int64		take[LEASE_KINDS] = {1, 0, 0};
			int			kind;
			LeaseResult lr = licdata_lease_take(lic->id, limit, need, take, 0, &today, &kind);

			if (lr != LEASE_OK)
			{
				LicdataDecision d;

				if (lr == LEASE_EXHAUSTED)
				{
					memset(&d, 0, sizeof(d));
					d.sqlerrcode = ERRCODE_LD_QUOTA_EXCEEDED;
					d.message = psprintf("quota of licence %lld reached: calls per day", (long long) lic->id);
					d.detail = psprintf("The limit is %lld.", (long long) max_calls_per_day);
					d.hint = pstrdup("The day quota is shared by all nodes and this standby leases it from the primary, which has none left: wait for the quota to reset at midnight UTC, or ask the operator to raise it.");
				}
				else
					licdata_lease_unreachable_decision(lic->id, &d);
				licdata_meter_product_denial(product, &d, lic->id);
				licdata_raise_decision(&d);
			}
			goto call_taken;
		}
		wait_quota_ready();
		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		e = quota_entry(lic->id, today);
		if (e == NULL)
		{
			LWLockRelease(licdata_shared->quota_lock);
			licdata_quota_table_full(lic->id);
		}
		if (e->queries >= max_calls_per_day)
			refused = true;
		else
			e->queries++;
		LWLockRelease(licdata_shared->quota_lock);
		if (refused)
		{
			LicdataDecision d;

			memset(&d, 0, sizeof(d));
			d.sqlerrcode = ERRCODE_LD_QUOTA_EXCEEDED;
			d.message = psprintf("quota of licence %lld reached: calls per day", (long long) lic->id);
			d.detail = psprintf("The limit is %lld.", (long long) max_calls_per_day);
			d.hint = pstrdup("Wait for the quota to reset at midnight UTC, or ask the operator to raise it.");
			licdata_meter_product_denial(product, &d, lic->id);
			licdata_raise_decision(&d);
		}
call_taken:
		;
	}
	memset(&u, 0, sizeof(u));
	u.dataset = product;
	u.licence_id = lic->id;
	u.flags = USE_PRODUCT;
	set_price(u.price_per_query, price_per_call, lic);
	set_price(u.price_per_row, price_per_row, lic);
	i = add_use(ms, &u);
	if (ms->rerun)
	{
		/* a held cursor's re-run repeats the calls its fetches made */
		ms->rerun_calls[i]++;
		ms->uses[i].calls = Max(ms->uses[i].calls, ms->rerun_calls[i]);
	}
	else
		ms->uses[i].calls++;
	if (ms->rec == NULL)
	{
		stmt_suffix = args_text ? args_text(args_arg) : NULL;
		PG_TRY();
		{
			stmt_journal(ms, licdata_acting_licensee(), 0);
		}
		PG_FINALLY();
		{
			stmt_suffix = NULL;
		}
		PG_END_TRY();
	}
	sync_use(ms, i);
	*stmt_id = ms->id;
	return i;
}

/* The rows a product call returned, counted on its use. */
void
licdata_meter_product_rows(uint64 stmt_id, int use, int64 rows)
{
	MeterStmt  *ms = stmt_by_id(stmt_id);

	if (ms == NULL || use < 0 || use >= ms->nuses)
		return;
	if (ms->rerun)
	{
		ms->rerun_rows[use] += rows;
		ms->uses[use].rows = Max(ms->uses[use].rows, ms->rerun_rows[use]);
	}
	else
		ms->uses[use].rows += rows;
	sync_use(ms, use);
}

/* A refused product call: an audit record of the denial, then the caller raises. */
void
licdata_meter_product_denial(Oid product, const LicdataDecision *d, int64 licence_id)
{
	JournalUse	u;
	JournalRecord *rec;

	if (IsParallelWorker())
		return;
	memset(&u, 0, sizeof(u));
	u.dataset = product;
	u.licence_id = licence_id;
	u.flags = USE_PRODUCT;
	rec = write_record(KIND_DENIAL, licdata_acting_licensee(), &u, 1,
					   unpack_sql_state(d->sqlerrcode), 0);
	rec->ended_at = GetCurrentTimestamp();
	rec->outcome = OUTCOME_ERROR;
	memcpy(rec->sqlstate, unpack_sql_state(d->sqlerrcode), 5);
	licdata_journal_close_record(rec);
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

	/* the flusher's own statements read licdata's tables, never a dataset */
	if (IsParallelWorker() || licdata_in_flusher)
		return;
	if (open_stmts != NIL)
		lock_all_held();
	c = licdata_catalog();
	if (c == NULL || (eflags & EXEC_FLAG_EXPLAIN_ONLY))
		return;
	/*
	 * Inside a data product's body (product.c) the statement is the
	 * product's: its dataset reads are audited with the call, not decided
	 * or billed as the licensee's.
	 */
	if (licdata_product_depth > 0)
	{
		product_reads(qd, c);
		return;
	}
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

/*
 * One more licdata.token() call of a licence today: refused (LD006) when
 * the licence's max_lookups_per_day is reached.  One shared counter per
 * licence, taken under quota_lock, so the limit is exact across sessions.
 */
static void
lookup_quota_take(MeterStmt *ms, const LicdataLicence *lic)
{
	LicdataQuotaEntry *e;
	bool		refused;

	if (RecoveryInProgress())
	{
		/* a standby: a lookup from this node's lease (lease.c) */
		int64		limit[LEASE_KINDS] = {0, 0, lic->max_lookups_per_day};
		int64		need[LEASE_KINDS] = {0, 0, 1};
		int64		take[LEASE_KINDS] = {0, 0, 1};
		int32		day;
		int			kind;
		LicdataDecision d;

		switch (licdata_lease_take(lic->id, limit, need, take, 0, &day, &kind))
		{
			case LEASE_OK:
				return;
			case LEASE_EXHAUSTED:
				quota_refuse(ms, lic->id, "lookups per day", lic->max_lookups_per_day, false);
				break;
			default:
				licdata_lease_unreachable_decision(lic->id, &d);
				meter_refuse(licdata_dataset_for_rel(lic->dataset), &d, lic->id);
		}
	}
	wait_quota_ready();
	LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
	e = quota_entry(lic->id, utc_day(GetCurrentTimestamp()));
	if (e == NULL)
	{
		LWLockRelease(licdata_shared->quota_lock);
		licdata_quota_table_full(lic->id);
	}
	refused = (e->lookups >= lic->max_lookups_per_day);
	if (!refused)
		e->lookups++;
	LWLockRelease(licdata_shared->quota_lock);
	if (refused)
		quota_refuse(ms, lic->id, "lookups per day", lic->max_lookups_per_day, false);
}

/* Today's licdata.token() calls of a licence (0 when none or not tracked). */
int64
licdata_meter_lookups_today(int64 licence_id)
{
	LicdataQuotaEntry *e;
	int64		n = 0;

	if (!licdata_preloaded || licdata_quota_hash == NULL)
		return 0;
	LWLockAcquire(licdata_shared->quota_lock, LW_SHARED);
	e = hash_search(licdata_quota_hash, &licence_id, HASH_FIND, NULL);
	if (e && e->day == utc_day(GetCurrentTimestamp()))
		n = e->lookups;
	LWLockRelease(licdata_shared->quota_lock);
	return n;
}

/*
 * licdata.token: a lookup, metered with the statement that runs it.  Each
 * call is one looked-up row of the statement (SPEC: rows that leave in any
 * form are counted): against max_rows_per_query, max_rows_per_day and the
 * price, counted with the rows produced inside the statement's functions
 * (usage.rows_in_functions; usage.rows bills the larger of that and the
 * rows delivered).  And one call against max_lookups_per_day.
 */
void
licdata_meter_lookup(LicdataDataset *ds, const LicdataLicence *lic)
{
	/*
	 * token() is parallel restricted: never in a worker.  It is volatile,
	 * so the planner never evaluates it; without a running statement it is
	 * evaluated where no statement can carry the lookup (a parameter of
	 * EXECUTE): refused rather than served unmetered.
	 */
	if (IsParallelWorker())
		return;
	if (running == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LD_METERING_FAILED),
				 errmsg("licdata.token cannot be evaluated outside a metered statement"),
				 errdetail("It was evaluated where its lookup could not be counted, e.g. as a parameter of EXECUTE."),
				 errhint("Call licdata.token inside the query, e.g. PREPARE q(text) AS SELECT ... WHERE id_number = licdata.token('pd.people', 'id_number', $1).")));
	if (lic->max_lookups_per_day > 0)
		lookup_quota_take(running, lic);
	quota_start(running, lic, ds);
	stmt_add_use(running, ds->relid, lic, ds);
	stmt_journal(running, licdata_acting_licensee(), 0);
	count_rows(running, 1, true, true);
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

	if (open_stmts != NIL && !IsParallelWorker())
		lock_all_held();
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
	if (open_stmts == NIL)
		last_sqlstate[0] = '\0';	/* an error caught inside it is past */
}

/*
 * An operator's (or superuser's) COPY dataset TO: COPY of a table reads it
 * without the executor when row-level security does not apply, so it is
 * audited here, as one statement around the whole COPY; it is the running
 * statement meanwhile, so a COPY that row-level security turns into a query
 * is not audited twice.  Returns a token for licdata_meter_operator_copy_end,
 * or 0 when not audited.
 */
uint64
licdata_meter_operator_copy_begin(LicdataDataset *ds)
{
	MeterStmt  *ms;

	if (IsParallelWorker() || !licdata_audit_operators)
		return 0;
	if (running != NULL)
	{
		/* inside an audited statement (a function it runs): one more dataset */
		if (running->kind == KIND_OPERATOR)
			stmt_add_use(running, ds->relid, NULL, ds);
		return 0;
	}
	ms = stmt_new(NULL, KIND_OPERATOR);
	stmt_add_use(ms, ds->relid, NULL, ds);
	stmt_journal(ms, NULL, 0);
	running = ms;
	return ms->id;
}

void
licdata_meter_operator_copy_end(uint64 id, uint64 rows)
{
	MeterStmt  *ms = stmt_by_id(id);

	if (ms == NULL)
		return;
	ms->rows = (int64) rows;
	stmt_close(ms, OUTCOME_OK, NULL);
}

/*
 * Rows written.  A statement that reads a dataset and writes -- INSERT ...
 * SELECT, UPDATE ... FROM, MERGE, a data-modifying CTE (WITH x AS (INSERT
 * INTO mine SELECT ... RETURNING 1) SELECT count(*) FROM x), a trigger's
 * statement -- copies licensed rows as surely as a SELECT sends them.
 * Each ModifyTable node's input rows are counted as they reach it: its
 * child's ExecProcNodeReal is wrapped (before the first row, so
 * ExecProcNodeFirst installs the wrapper), the rows counted into the
 * statement's nested rows, quotas checked on the same count -- during
 * ExecutorRun or ExecutorFinish (which runs CTEs the query did not read to
 * the end), so a rows quota stops the write before it commits.
 */
typedef struct WriteCounter
{
	PlanState  *ps;
	ExecProcNodeMtd real;
	QueryDesc  *qd;
	uint64		ms_id;
} WriteCounter;

static List *write_counters = NIL;	/* WriteCounter *, TopMemoryContext */

static TupleTableSlot *
counting_exec(PlanState *ps)
{
	WriteCounter *wc = NULL;
	TupleTableSlot *slot;
	ListCell   *lc;

	foreach(lc, write_counters)
	{
		WriteCounter *w = lfirst(lc);

		if (w->ps == ps)
			wc = w;				/* the latest one: addresses are reused */
	}
	if (wc == NULL)
		elog(ERROR, "licdata: no write counter for plan node");
	slot = wc->real(ps);
	if (!TupIsNull(slot))
	{
		MeterStmt  *ms = stmt_by_id(wc->ms_id);

		/* a write of the statement itself ends it at a quota */
		if (ms)
			count_rows_own(ms, 1, true, ms->owner == wc->qd, true);
	}
	return slot;
}

typedef struct WriteWalk
{
	QueryDesc  *qd;
	uint64		ms_id;
} WriteWalk;

static bool
wrap_writes(PlanState *ps, WriteWalk *ww)
{
	if (ps == NULL)
		return false;
	if (IsA(ps, ModifyTableState))
	{
		PlanState  *child = outerPlanState(ps);

		if (child && child->ExecProcNodeReal != counting_exec)
		{
			WriteCounter *wc = MemoryContextAlloc(TopMemoryContext, sizeof(WriteCounter));

			wc->ps = child;
			wc->real = child->ExecProcNodeReal;
			wc->qd = ww->qd;
			wc->ms_id = ww->ms_id;
			write_counters = top_lappend(write_counters, wc);
			child->ExecProcNodeReal = counting_exec;
		}
	}
	return planstate_tree_walker(ps, wrap_writes, ww);
}

/*
 * After standard_ExecutorStart: count the rows qd writes when it is a
 * licensee statement (or one inside it) that reads a dataset.
 */
void
licdata_meter_executor_started(QueryDesc *qd)
{
	MeterStmt  *ms;
	WriteWalk	ww;
	ListCell   *lc;

	if (IsParallelWorker() || qd->planstate == NULL || qd->plannedstmt == NULL ||
		(qd->plannedstmt->commandType == CMD_SELECT && !qd->plannedstmt->hasModifyingCTE))
		return;
	ms = stmt_of(qd);
	if (ms == NULL)
	{
		NestedQuery *nq = nested_of(qd);

		ms = nq ? nq->ms : NULL;
	}
	if (ms == NULL || ms->kind != KIND_LICENSEE || ms->nuses == 0)
		return;
	ww.qd = qd;
	ww.ms_id = ms->id;
	wrap_writes(qd->planstate, &ww);
	foreach(lc, qd->estate->es_subplanstates)
		wrap_writes((PlanState *) lfirst(lc), &ww);
}

static void
forget_write_counters(QueryDesc *qd)
{
	ListCell   *lc;

	foreach(lc, write_counters)
	{
		WriteCounter *wc = lfirst(lc);

		if (qd == NULL || wc->qd == qd)
		{
			write_counters = foreach_delete_current(write_counters, lc);
			pfree(wc);
		}
	}
}

void
licdata_meter_executor_end(QueryDesc *qd)
{
	NestedQuery *nq;
	MeterStmt  *ms;

	if (IsParallelWorker())
		return;
	if (write_counters != NIL)
		forget_write_counters(qd);
	nq = nested_of(qd);
	if (nq)
	{
		nested_forget(nq);
		return;
	}
	ms = stmt_of(qd);
	if (ms == NULL)
		return;

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
	stmt_close(ms, OUTCOME_OK, NULL);
	if (open_stmts == NIL)
		last_sqlstate[0] = '\0';	/* an error caught inside it is past */
}

/*
 * An aggregate-licence gate released a group of n dataset rows
 * (aggregate.c): they count into the rows_aggregated of the statement
 * running now -- its own counter, so a cursor that stays open meanwhile
 * neither takes nor gives another statement's count.
 */
void
licdata_meter_note_aggregated(int64 n)
{
	MeterStmt  *ms = running;

	if (ms == NULL || IsParallelWorker())
		return;
	ms->agg_rows += n;
	if (ms->rec && !ms->rerun)
		ms->rec->rows_aggregated = ms->agg_rows;
}

/*
 * licdata._count_row(boolean, internal) and licdata._count_value(anyelement,
 * internal): the row counters fold.c puts where a licensee statement folds
 * dataset rows into one value.  Each call that lets a row through counts
 * it into the running statement's nested rows, quotas checked first.
 */
static void
count_folded(void)
{
	MeterStmt  *ms = running;

	if (ms == NULL || ms->kind != KIND_LICENSEE || ms->nuses == 0 || IsParallelWorker())
		return;
	count_rows(ms, 1, true, true);
}

/*
 * Functions of the licensee's own (and of any role that is neither a
 * superuser nor an operator) see the rows of the statement that calls them
 * and can pass them on by side effects: RAISE NOTICE, a write to a table,
 * a setting.  While a licensee statement that reads a dataset runs, each
 * call of such a function counts as one row (into its nested rows, against
 * its quotas): SELECT count(f(name)) FROM people, where f raises its
 * argument, is billed a row per call, not one.  Built-in and licdata
 * functions, and the operator's own (mask functions), are not counted.
 * Through needs_fmgr_hook (hooks.c), such functions are called via
 * fmgr_hook, which calls licdata_meter_fmgr.
 */
bool
licdata_meter_counts_calls(Oid fn_oid)
{
	const LicdataCatalog *c = licdata_catalog_cached();
	HeapTuple	tup;
	Form_pg_proc p;
	bool		counts;

	if (c == NULL)
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(tup))
		return false;
	p = (Form_pg_proc) GETSTRUCT(tup);
	counts = p->pronamespace != PG_CATALOG_NAMESPACE && p->pronamespace != c->schema &&
		p->pronamespace != c->internal_schema &&
		!superuser_arg(p->proowner) &&
		!(OidIsValid(c->operator_role) && is_member_of_role(p->proowner, c->operator_role));
	ReleaseSysCache(tup);
	return counts;
}

/* Which functions count, per backend; dropped when pg_proc changes. */
typedef struct CountedFn
{
	Oid			fn;				/* hash key */
	bool		counts;
} CountedFn;

static HTAB *counted_fns = NULL;

static void
counted_fns_reset(Datum arg, int cacheid, uint32 hashvalue)
{
	if (counted_fns != NULL)
	{
		hash_destroy(counted_fns);
		counted_fns = NULL;
	}
}

/*
 * fmgr_hook (hooks.c): at the start of each call of a function that
 * needs_fmgr_hook let through, count it when it is one that counts and a
 * licensee statement that reads a dataset is running.  The hook's private
 * datum is left to other hooks.
 */
void
licdata_meter_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	static bool callback_registered = false;
	CountedFn  *e;
	bool		found;

	if (event != FHET_START || running == NULL || running->kind != KIND_LICENSEE ||
		running->nuses == 0 || IsParallelWorker())
		return;
	if (counted_fns == NULL)
	{
		HASHCTL		ctl;

		if (!callback_registered)
		{
			CacheRegisterSyscacheCallback(PROCOID, counted_fns_reset, (Datum) 0);
			callback_registered = true;
		}
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(CountedFn);
		ctl.hcxt = TopMemoryContext;
		counted_fns = hash_create("licdata counted functions", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = hash_search(counted_fns, &flinfo->fn_oid, HASH_FIND, NULL);
	if (e == NULL)
	{
		bool		counts = licdata_meter_counts_calls(flinfo->fn_oid);

		/* the lookup may have reset the table (an invalidation) */
		if (counted_fns == NULL)
			return licdata_meter_fmgr(event, flinfo, private);
		e = hash_search(counted_fns, &flinfo->fn_oid, HASH_ENTER, &found);
		e->counts = counts;
	}
	if (e->counts)
		count_folded();
}

PG_FUNCTION_INFO_V1(licdata_count_row);
Datum
licdata_count_row(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_GETARG_BOOL(0))
		count_folded();
	PG_RETURN_BOOL(PG_GETARG_BOOL(0));
}

PG_FUNCTION_INFO_V1(licdata_count_value);
Datum
licdata_count_value(PG_FUNCTION_ARGS)
{
	count_folded();
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(PG_GETARG_DATUM(0));
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

/*
 * A row-counting wrapper of orig (TopMemoryContext; released with
 * counting_dest_release).  One released wrapper is kept for the next: a
 * statement's every run would otherwise allocate one.
 */
static CountingDest *
counting_dest(DestReceiver *orig, MeterStmt *ms, NestedQuery *nq)
{
	CountingDest *cd = spare_dest;

	if (cd != NULL)
		spare_dest = NULL;
	else
		cd = MemoryContextAlloc(TopMemoryContext, sizeof(CountingDest));
	memset(cd, 0, sizeof(CountingDest));
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

static void
counting_dest_release(DestReceiver *wrapper)
{
	if (spare_dest == NULL)
		spare_dest = (CountingDest *) wrapper;
	else
		pfree(wrapper);
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

	f = spare_frame;
	if (f != NULL)
		spare_frame = NULL;
	else
		f = MemoryContextAlloc(TopMemoryContext, sizeof(RunFrame));
	memset(f, 0, sizeof(RunFrame));
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
		memset(ms->rerun_calls, 0, sizeof(ms->rerun_calls));
		memset(ms->rerun_rows, 0, sizeof(ms->rerun_rows));
		ms->agg_base = ms->agg_rows;
		ms->agg_rows = 0;
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
					ms->agg_rows = Max(ms->agg_base, ms->agg_rows);
					ms->rerun = false;
					sync_counts(ms);
				}
				quota_release(ms);
			}
			running = stmt_by_id(f->prev_running_id);
			if (spare_frame == NULL)
				spare_frame = f;
			else
				pfree(f);
		}
	}
	if (wrapper)
		counting_dest_release(wrapper);
}

/* ---- cursors WITH HOLD ---- */

/*
 * A materialised cursor WITH HOLD is read from its store without the
 * executor, so licdata counts its rows only where it sees them: FETCH and
 * MOVE statements (the utility hook).  A function could read the store
 * through SPI (PL/pgSQL FETCH, FOR ... IN cursor) unseen, so between those
 * statements the portal is marked done, which PostgreSQL refuses to run
 * ("portal cannot be run"): such reads fail instead of going uncounted.
 */
static void
lock_held(MeterStmt *ms)
{
	if (ms->held && ms->held->status == PORTAL_READY)
		ms->held->status = PORTAL_DONE;
}

static void
lock_all_held(void)
{
	ListCell   *lc;

	foreach(lc, open_stmts)
		lock_held((MeterStmt *) lfirst(lc));
}

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
	if (fs->portalname == NULL)
		return NULL;
	portal = GetPortalByName(fs->portalname);
	ms = PortalIsValid(portal) ? stmt_held(portal) : NULL;
	if (ms == NULL)
		return NULL;
	*id = ms->id;
	/* FETCH and MOVE statements may read the store: open it for this one */
	if (portal->status == PORTAL_DONE)
		portal->status = PORTAL_READY;
	if (fs->ismove || dest->mydest == DestNone)
		return NULL;
	return (DestReceiver *) counting_dest(dest, ms, NULL);
}

void
licdata_meter_fetch_done(DestReceiver *counting, uint64 id)
{
	MeterStmt  *ms = stmt_by_id(id);

	if (ms)
	{
		quota_release(ms);
		lock_held(ms);
	}
	if (counting)
		counting_dest_release(counting);
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
			forget_write_counters(NULL);
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
			lock_all_held();	/* materialised by now (PreCommit_Portals) */
			if (running == NULL)
				forget_write_counters(NULL);
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

/*
 * An error is passing through one of licdata's hook wrappers (hooks.c, in
 * PG_CATCH, before re-throwing): remember its SQLSTATE for the outcome of
 * the statements the abort closes.  Taken here, where the error passes, and
 * not from the server log (emit_log_hook sees no ERROR when
 * log_min_messages is above it, and never one caught by PL/pgSQL).
 */
void
licdata_meter_note_error(void)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	ErrorData  *edata = CopyErrorData();

	MemoryContextSwitchTo(old);
	memcpy(last_sqlstate, unpack_sql_state(edata->sqlerrcode), 6);
	FreeErrorData(edata);
}

void
licdata_meter_init(void)
{
	RegisterXactCallback(meter_xact_callback, NULL);
	RegisterSubXactCallback(meter_subxact_callback, NULL);
}
