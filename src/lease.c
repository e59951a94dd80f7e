/*-------------------------------------------------------------------------
 *
 * lease.c
 *	  Day-quota leases: a hot standby serves licences with day quotas
 *	  (max_queries_per_day, max_rows_per_day, max_lookups_per_day, a product
 *	  licence's max_calls_per_day) from quota it leases from the primary in
 *	  chunks, so that what all nodes serve together never passes a quota.
 *
 * The primary holds every day quota in its shared counters (shmem.h).  A
 * lease is a chunk of one kind of one licence's quota for one UTC day,
 * granted to one standby: licdata_internal._lease_quota (executable by
 * licdata_replica only) counts it as used in the counters when it grants
 * it, and records it in licdata.quota_leases in the same transaction, so a
 * primary restart rebuilds the counters (worker.c, rebuild_quotas) as the
 * usage of its own and of standbys without a lease, plus every lease of the
 * day net of what was given back.  The standby's usage records, handed over
 * later, are billed as they are but not counted a second time: rebuild
 * leaves out the rows of a (node, licence) that holds a lease that day.
 *
 * Kinds: queries (statements; a product licence's calls, its counter's
 * "queries"), rows, lookups.  Each is leased and given back on its own.
 *
 * Chunk: the primary grants what the standby needs now (at least), up to
 * one eighth of what is left of the quota (rounded up), at most
 * licdata.quota_lease_max.  Chunks shrink as the quota runs out, so the
 * last units are leased one by one and few are left on any one node.
 *
 * Unused leases: a standby's flusher gives back, after each hand-over, the
 * unused part of every lease no backend took from for
 * licdata.quota_lease_idle, and all of it when the flusher exits (standby
 * shutdown).  What is given back is a cumulative total per (day, node,
 * licence), so a retry after a lost answer is harmless.  A lease of a
 * standby that disappears, or of a day that ended, expires with the day:
 * quota may go unserved, never over-served.
 *
 * Standby (backends): the shared entry of a licence (standby = true) counts
 * this node's own use in queries/rows/lookups against lease[k]; a backend
 * takes from it under quota_lock and, when it runs short, asks the primary
 * itself over libpq (licdata.primary_conninfo, as the hand-over) without
 * holding the lock, then adds the grant and tries again.  One backend per
 * licence asks at a time (topup_until; the others wait for its answer, so
 * a standby holds few connections to the primary), and the answers "none
 * left" and "could not ask" are kept for a second.  If the primary
 * has none left the statement is refused (LD006, "reached"); if it cannot
 * be asked (the flusher's last hand-over failed, or this connection
 * fails), the statement is refused at once (LD006, hint: the primary is
 * unreachable) -- never served without quota, never after a long wait
 * (connect timeout 2 s, answer timeout 5 s).
 *
 * Primary: grants are taken from the counters under quota_lock, then
 * recorded; if the transaction aborts the grant is given back to the
 * counters (the standby never saw it).  A give-back lowers the counters
 * only once its transaction committed (an XactCallback).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "errcodes.h"
#include "lease.h"
#include "licdata.h"
#include "replica.h"
#include "shmem.h"

#define LEASE_CONNECT_MS	2000	/* a backend's connection to the primary */
#define LEASE_TIMEOUT_MS	5000	/* one grant or give-back, at most */
#define LEASE_ATTEMPTS		8		/* grants in a row used up by others */

int			licdata_quota_lease_max = 10000;
int			licdata_quota_lease_idle_ms = 5000;

static const char *const kind_name[LEASE_KINDS] = {"queries", "rows", "lookups"};

/* why this backend's last grant failed (REPLICA_*), for the hint */
static uint32 last_cause = REPLICA_OK;
static TimestampTz last_logged = 0;

void
licdata_lease_define_gucs(void)
{
	DefineCustomIntVariable("licdata.quota_lease_max",
							"Largest day-quota lease the primary grants a standby at once, per kind.",
							"A lease is what the standby needs, up to an eighth of what is left of the quota, at most this.",
							&licdata_quota_lease_max,
							10000, 1, INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("licdata.quota_lease_idle",
							"How long a standby keeps an unused day-quota lease no session takes from before giving it back.",
							NULL,
							&licdata_quota_lease_idle_ms,
							5000, 0, INT_MAX / 2,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
}

static inline int32
utc_day(TimestampTz t)
{
	return (int32) (t / USECS_PER_DAY);
}

static inline int64 *
used_of(LicdataQuotaEntry *e, int k)
{
	return k == LEASE_QUERIES ? &e->queries : k == LEASE_ROWS ? &e->rows : &e->lookups;
}

/* ---- standby: backends ---- */

/* A standby's entry of a licence for 'day' (quota_lock held exclusively). */
static LicdataQuotaEntry *
standby_entry(int64 licence_id, int32 day)
{
	bool		found;
	LicdataQuotaEntry *e;

	e = hash_search(licdata_quota_hash, &licence_id, HASH_ENTER_NULL, &found);
	if (e == NULL)
		return NULL;
	if (!found || e->day != day || !e->standby)
	{
		/* a new day: yesterday's leases expired with it */
		memset(e, 0, sizeof(*e));
		e->licence_id = licence_id;
		e->day = day;
		e->standby = true;
	}
	return e;
}

static void
log_failure(const char *why)
{
	TimestampTz now = GetCurrentTimestamp();

	/* one line per backend per 10 s at most: the primary may be down a while */
	if (now - last_logged < 10 * USECS_PER_SEC)
		return;
	last_logged = now;
	ereport(LOG,
			(errmsg("licdata: could not lease day quota from the primary"),
			 errdetail_log("%s", why ? why : "unknown")));
}

/*
 * Ask the primary for want[k] more of each kind (at least): the grant in
 * grant[], for the primary's UTC day *gday; or LEASE_EXHAUSTED with *kind;
 * or LEASE_UNREACHABLE (last_cause says why).
 */
static LeaseResult
request_grant(int64 licence_id, const int64 *want, int64 *grant, int32 *gday, int *kind)
{
	uint32		cause = pg_atomic_read_u32(&licdata_shared->replica_cause);
	PGconn	   *volatile c;
	PGresult   *volatile res = NULL;
	char	   *why = NULL;
	char		idbuf[32];
	char		wbuf[LEASE_KINDS][32];
	const char *values[5];

	/* the flusher's last hand-over failed: do not wait for the same failure */
	if (cause != REPLICA_OK)
	{
		last_cause = cause;
		return LEASE_UNREACHABLE;
	}
	c = licdata_replica_connect("licdata lease", LEASE_CONNECT_MS, &cause, &why);
	if (c == NULL)
	{
		last_cause = cause;
		log_failure(why);
		return LEASE_UNREACHABLE;
	}
	snprintf(idbuf, sizeof(idbuf), INT64_FORMAT, licence_id);
	values[0] = licdata_node_name();
	values[1] = idbuf;
	for (int k = 0; k < LEASE_KINDS; k++)
	{
		snprintf(wbuf[k], sizeof(wbuf[k]), INT64_FORMAT, want[k]);
		values[2 + k] = wbuf[k];
	}
	PG_TRY();
	{
		res = licdata_replica_exec(c,
								   "SELECT (l.day OPERATOR(pg_catalog.-) '2000-01-01'::pg_catalog.date), "
								   "l.queries, l.rows, l.lookups, l.exhausted "
								   "FROM licdata_internal._lease_quota($1, $2::pg_catalog.int8, $3::pg_catalog.int8, "
								   "$4::pg_catalog.int8, $5::pg_catalog.int8) l",
								   5, values, LEASE_TIMEOUT_MS, &why);
	}
	PG_FINALLY();
	{
		if (res == NULL && why == NULL)
			why = pstrdup(PQerrorMessage(c));
		PQfinish(c);
	}
	PG_END_TRY();
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		last_cause = res ? REPLICA_REFUSED : REPLICA_CONNECT_FAILED;
		log_failure(res ? PQresultErrorMessage(res) : why);
		if (res)
			PQclear(res);
		return LEASE_UNREACHABLE;
	}
	*gday = (int32) strtol(PQgetvalue(res, 0, 0), NULL, 10);
	for (int k = 0; k < LEASE_KINDS; k++)
		grant[k] = strtoll(PQgetvalue(res, 0, 1 + k), NULL, 10);
	if (!PQgetisnull(res, 0, 4))
	{
		const char *ex = PQgetvalue(res, 0, 4);

		*kind = LEASE_QUERIES;
		for (int k = 0; k < LEASE_KINDS; k++)
			if (strcmp(ex, kind_name[k]) == 0)
				*kind = k;
		PQclear(res);
		return LEASE_EXHAUSTED;
	}
	PQclear(res);
	return LEASE_OK;
}

/*
 * On a standby: take from this node's lease of licence_id's day quotas.
 * For each kind k with limit[k] > 0 at least need[k] must be left; take[k]
 * is taken (take[k] <= need[k]), and with extra_rows up to that many more
 * rows when they are left here (a reservation; added to take[LEASE_ROWS]).
 * When short, tops the lease up from the primary.  *day: the UTC day taken
 * from.  Returns LEASE_EXHAUSTED (*kind) when the primary has none left,
 * LEASE_UNREACHABLE when it could not be asked: nothing is taken then.
 */
LeaseResult
licdata_lease_take(int64 licence_id, const int64 *limit, const int64 *need,
				   int64 *take, int64 extra_rows, int32 *day, int *kind)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), LEASE_TIMEOUT_MS + 2000);
	int			grants = 0;

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		int32		today = utc_day(now);
		int64		want[LEASE_KINDS] = {0, 0, 0};
		int64		grant[LEASE_KINDS];
		int32		gday = today;
		bool		short_of = false;
		LicdataQuotaEntry *e;
		LeaseResult r;

		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		e = standby_entry(licence_id, today);
		if (e == NULL)
		{
			LWLockRelease(licdata_shared->quota_lock);
			licdata_quota_table_full(licence_id);
		}
		for (int k = 0; k < LEASE_KINDS; k++)
		{
			int64		left = e->lease[k] - *used_of(e, k);

			if (limit[k] > 0 && left < need[k])
			{
				want[k] = need[k] - left;
				short_of = true;
			}
		}
		if (!short_of)
		{
			for (int k = 0; k < LEASE_KINDS; k++)
				if (limit[k] > 0)
					*used_of(e, k) += take[k];
			if (extra_rows > 0 && limit[LEASE_ROWS] > 0)
			{
				int64		x = Min(extra_rows, (e->lease[LEASE_ROWS] - e->rows) / 8);

				if (x > 0)
				{
					e->rows += x;
					take[LEASE_ROWS] += x;
				}
			}
			e->last_take = now;
			LWLockRelease(licdata_shared->quota_lock);
			*day = today;
			return LEASE_OK;
		}
		/* the primary said a moment ago it has none left, or was not reached */
		for (int k = 0; k < LEASE_KINDS; k++)
		{
			if (want[k] > 0 && e->exhausted_until[k] > now)
			{
				LWLockRelease(licdata_shared->quota_lock);
				*kind = k;
				return LEASE_EXHAUSTED;
			}
		}
		if (e->failed_at != 0 && now - e->failed_at < USECS_PER_SEC)
		{
			last_cause = e->failed_cause;
			LWLockRelease(licdata_shared->quota_lock);
			return LEASE_UNREACHABLE;
		}
		if (e->topup_until > now)
		{
			/* another session asks the primary now: wait for its answer */
			LWLockRelease(licdata_shared->quota_lock);
			if (now > deadline)
			{
				last_cause = REPLICA_OK;
				return LEASE_UNREACHABLE;
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 2L,
							 PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		if (grants >= LEASE_ATTEMPTS || now > deadline)
		{
			/* other sessions here used up every grant, or the clocks differ */
			LWLockRelease(licdata_shared->quota_lock);
			last_cause = REPLICA_OK;
			return LEASE_UNREACHABLE;
		}
		e->topup_until = TimestampTzPlusMilliseconds(now, LEASE_TIMEOUT_MS + 2000);
		LWLockRelease(licdata_shared->quota_lock);

		PG_TRY();
		{
			r = request_grant(licence_id, want, grant, &gday, kind);
		}
		PG_CATCH();
		{
			LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
			e = hash_search(licdata_quota_hash, &licence_id, HASH_FIND, NULL);
			if (e)
				e->topup_until = 0;
			LWLockRelease(licdata_shared->quota_lock);
			PG_RE_THROW();
		}
		PG_END_TRY();

		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		e = standby_entry(licence_id, r == LEASE_OK ? gday : today);
		if (e != NULL)
		{
			e->topup_until = 0;
			if (r == LEASE_OK)
			{
				for (int k = 0; k < LEASE_KINDS; k++)
					e->lease[k] += grant[k];
				e->last_take = now;
			}
			else if (r == LEASE_EXHAUSTED)
				e->exhausted_until[*kind] = TimestampTzPlusMilliseconds(now, 1000);
			else
			{
				e->failed_at = now;
				e->failed_cause = last_cause;
			}
		}
		LWLockRelease(licdata_shared->quota_lock);
		if (r != LEASE_OK)
			return r;
		grants++;
	}
}

/* LD006 for a statement that needs quota the primary could not be asked for. */
void
licdata_lease_unreachable_decision(int64 licence_id, LicdataDecision *d)
{
	memset(d, 0, sizeof(*d));
	d->sqlerrcode = ERRCODE_LD_QUOTA_EXCEEDED;
	d->message = psprintf("could not obtain day quota of licence %lld from the primary", (long long) licence_id);
	d->detail = pstrdup("A standby serves a licence with a day quota from quota it leases from the primary, and this standby has none left of it.");
	switch (last_cause)
	{
		case REPLICA_NO_CONNINFO:
			d->hint = pstrdup("The primary is unreachable: this standby has no connection string for it (licdata.primary_conninfo). Connect to the primary.");
			break;
		case REPLICA_REFUSED:
			d->hint = pstrdup("The primary refused to lease quota to this standby (the standby's server log says why). Connect to the primary.");
			break;
		case REPLICA_OK:
			d->hint = pstrdup("Other sessions on this standby used up each lease it obtained. Retry, or connect to the primary.");
			break;
		default:
			d->hint = pstrdup("The primary is unreachable: this standby could not connect to it to lease quota. Connect to the primary, or retry when the standby reaches it again.");
	}
}

/* ---- standby: the flusher gives back unused leases ---- */

typedef struct GiveBack
{
	int64		licence_id;
	int32		day;
	int64		returned[LEASE_KINDS];
} GiveBack;

/*
 * On the flusher's connection c to the primary: give back the unused part
 * of every lease idle for licdata.quota_lease_idle (of every lease when
 * 'all'), and send what earlier attempts could not.  Never raises (but on
 * an interrupt): a failure is retried after the next hand-over.  Returns
 * false when c is no longer usable (the caller drops it).
 */
bool
licdata_lease_give_back(PGconn *c, bool all)
{
	TimestampTz now = GetCurrentTimestamp();
	int32		today = utc_day(now);
	HASH_SEQ_STATUS seq;
	LicdataQuotaEntry *e;
	GiveBack   *gb = NULL;
	int			n = 0;
	int			cap = 0;

	if (c == NULL || PQstatus(c) != CONNECTION_OK || licdata_quota_hash == NULL)
		return false;
	LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, licdata_quota_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		bool		pending = false;

		if (!e->standby || e->day != today)
			continue;
		if (all || now - e->last_take >= (int64) licdata_quota_lease_idle_ms * 1000)
		{
			for (int k = 0; k < LEASE_KINDS; k++)
			{
				int64		unused = e->lease[k] - *used_of(e, k);

				if (unused > 0)
				{
					e->lease[k] -= unused;
					e->returned[k] += unused;
				}
			}
		}
		for (int k = 0; k < LEASE_KINDS; k++)
			pending |= e->returned[k] != e->returned_acked[k];
		if (!pending)
			continue;
		if (n == cap)
		{
			cap = Max(16, cap * 2);
			/* no palloc error under the lock: at most what fits */
			if (gb == NULL)
				gb = MemoryContextAllocExtended(CurrentMemoryContext, cap * sizeof(GiveBack), MCXT_ALLOC_NO_OOM);
			else
				gb = repalloc_huge(gb, cap * sizeof(GiveBack));
			if (gb == NULL)
				break;
		}
		gb[n].licence_id = e->licence_id;
		gb[n].day = e->day;
		memcpy(gb[n].returned, e->returned, sizeof(gb[n].returned));
		n++;
	}
	LWLockRelease(licdata_shared->quota_lock);

	for (int i = 0; i < n; i++)
	{
		char		bufs[5][32];
		const char *values[6];
		char	   *why = NULL;
		PGresult   *res;

		values[0] = licdata_node_name();
		snprintf(bufs[0], 32, "%d", gb[i].day);
		snprintf(bufs[1], 32, INT64_FORMAT, gb[i].licence_id);
		for (int k = 0; k < LEASE_KINDS; k++)
			snprintf(bufs[2 + k], 32, INT64_FORMAT, gb[i].returned[k]);
		for (int j = 0; j < 5; j++)
			values[1 + j] = bufs[j];
		res = licdata_replica_exec(c,
								   "SELECT licdata_internal._return_quota($1, '2000-01-01'::pg_catalog.date "
								   "OPERATOR(pg_catalog.+) $2::pg_catalog.int4, $3::pg_catalog.int8, "
								   "$4::pg_catalog.int8, $5::pg_catalog.int8, $6::pg_catalog.int8)",
								   6, values, LEASE_TIMEOUT_MS, &why);
		if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			log_failure(res ? PQresultErrorMessage(res) : why);
			if (res == NULL)
				return false;	/* broken, or a statement still running */
			PQclear(res);
			break;
		}
		PQclear(res);
		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		e = hash_search(licdata_quota_hash, &gb[i].licence_id, HASH_FIND, NULL);
		if (e && e->standby && e->day == gb[i].day)
			memcpy(e->returned_acked, gb[i].returned, sizeof(e->returned_acked));
		LWLockRelease(licdata_shared->quota_lock);
	}
	return true;
}

/* ---- primary: granting and taking back ---- */

/* Counter changes that wait for the end of the transaction. */
typedef struct PendingAdjust
{
	int64		licence_id;
	int32		day;
	int64		delta[LEASE_KINDS];	/* subtracted from the counters */
	bool		on_commit;		/* a give-back; else a grant undone on abort */
} PendingAdjust;

static List *pending = NIL;		/* in TopTransactionContext */
static bool callback_registered = false;

static void
lease_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;
	bool		commit;

	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		commit = true;
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		commit = false;
	else
		return;
	if (pending == NIL)
		return;
	LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
	foreach(lc, pending)
	{
		PendingAdjust *p = lfirst(lc);
		LicdataQuotaEntry *e;

		if (p->on_commit != commit)
			continue;
		e = hash_search(licdata_quota_hash, &p->licence_id, HASH_FIND, NULL);
		if (e == NULL || e->standby || e->day != p->day)
			continue;
		for (int k = 0; k < LEASE_KINDS; k++)
			*used_of(e, k) = Max(*used_of(e, k) - p->delta[k], 0);
	}
	LWLockRelease(licdata_shared->quota_lock);
	pending = NIL;				/* the list went with TopTransactionContext */
}

static void
add_pending(int64 licence_id, int32 day, const int64 *delta, bool on_commit)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
	PendingAdjust *p = palloc(sizeof(PendingAdjust));

	p->licence_id = licence_id;
	p->day = day;
	memcpy(p->delta, delta, sizeof(p->delta));
	p->on_commit = on_commit;
	pending = lappend(pending, p);
	MemoryContextSwitchTo(old);
	if (!callback_registered)
	{
		RegisterXactCallback(lease_xact_callback, NULL);
		callback_registered = true;
	}
}

static void
check_caller(text *node_t, char **node)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot lease day quota on a standby"),
				 errhint("Point licdata.primary_conninfo at the primary: cascading standbys are not supported.")));
	if (GetCurrentTransactionNestLevel() > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("day-quota leases cannot be changed in a subtransaction")));
	*node = text_to_cstring(node_t);
	if ((*node)[0] == '\0' || strlen(*node) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the node name must have 1 to 63 bytes")));
}

PG_FUNCTION_INFO_V1(licdata_lease_quota);

/*
 * licdata_internal._lease_quota(node text, licence_id bigint, queries
 * bigint, rows bigint, lookups bigint, OUT day date, OUT queries bigint,
 * OUT rows bigint, OUT lookups bigint, OUT exhausted text): grant standby
 * 'node' at least the given amount of each kind of the licence's day
 * quota for today (UTC), up to the chunk (see the file header).  All or
 * nothing: when a kind has less left than asked, nothing is granted and
 * 'exhausted' names it.  A kind the licence has no day quota of is granted
 * as asked (the standby's catalog is behind).
 */
Datum
licdata_lease_quota(PG_FUNCTION_ARGS)
{
	char	   *node;
	int64		licence_id;
	int64		want[LEASE_KINDS];
	int64		limit[LEASE_KINDS] = {0, 0, 0};
	int64		grant[LEASE_KINDS] = {0, 0, 0};
	int			exhausted = -1;
	int32		today;
	LicdataQuotaEntry *e;
	TupleDesc	td;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Oid			t1[1] = {INT8OID};
	Datum		a1[1];
	int			rc;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("an argument is null")));
	check_caller(PG_GETARG_TEXT_PP(0), &node);
	licence_id = PG_GETARG_INT64(1);
	for (int k = 0; k < LEASE_KINDS; k++)
	{
		want[k] = PG_GETARG_INT64(2 + k);
		if (want[k] < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a lease cannot be negative")));
	}
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "could not connect to SPI");
	a1[0] = Int64GetDatum(licence_id);
	rc = SPI_execute_with_args("SELECT CASE WHEN l.product IS NULL THEN l.max_queries_per_day "
							   "ELSE l.max_calls_per_day END, l.max_rows_per_day, l.max_lookups_per_day "
							   "FROM licdata.licences l WHERE l.id OPERATOR(pg_catalog.=) $1",
							   1, t1, a1, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read licence %lld", (long long) licence_id);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_LD_NO_LICENCE),
				 errmsg("licence %lld does not exist", (long long) licence_id)));
	for (int k = 0; k < LEASE_KINDS; k++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, k + 1, &isnull);

		limit[k] = isnull ? 0 : DatumGetInt64(d);
	}

	licdata_quota_wait_ready();
	today = utc_day(GetCurrentTimestamp());
	LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
	e = licdata_quota_entry(licence_id, today);
	if (e == NULL)
	{
		LWLockRelease(licdata_shared->quota_lock);
		licdata_quota_table_full(licence_id);
	}
	for (int k = 0; k < LEASE_KINDS && exhausted < 0; k++)
		if (want[k] > 0 && limit[k] > 0 && limit[k] - *used_of(e, k) < want[k])
			exhausted = k;
	if (exhausted < 0)
	{
		for (int k = 0; k < LEASE_KINDS; k++)
		{
			int64		left = limit[k] - *used_of(e, k);

			if (want[k] == 0)
				continue;
			if (limit[k] > 0)
				grant[k] = Max(want[k], Min(left, Min((int64) licdata_quota_lease_max, (left + 7) / 8)));
			else
				grant[k] = want[k];
			*used_of(e, k) += grant[k];
		}
	}
	LWLockRelease(licdata_shared->quota_lock);

	if (exhausted < 0 && (grant[0] > 0 || grant[1] > 0 || grant[2] > 0))
	{
		Oid			t[6] = {DATEOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID};
		Datum		a[6];
		Oid			td1[1] = {DATEOID};
		Datum		ad1[1];

		add_pending(licence_id, today, grant, false);	/* undone on abort */
		a[0] = DateADTGetDatum((DateADT) today);
		a[1] = CStringGetTextDatum(node);
		a[2] = Int64GetDatum(grant[0]);
		a[3] = Int64GetDatum(grant[1]);
		a[4] = Int64GetDatum(grant[2]);
		a[5] = Int64GetDatum(licence_id);
		rc = SPI_execute_with_args("INSERT INTO licdata.quota_leases AS q (day, node, licence_id, "
								   "queries_granted, rows_granted, lookups_granted, grants, first_grant_at, last_grant_at) "
								   "VALUES ($1, $2, $6, $3, $4, $5, 1, pg_catalog.now(), pg_catalog.now()) "
								   "ON CONFLICT (day, node, licence_id) DO UPDATE SET "
								   "queries_granted = q.queries_granted OPERATOR(pg_catalog.+) $3, "
								   "rows_granted = q.rows_granted OPERATOR(pg_catalog.+) $4, "
								   "lookups_granted = q.lookups_granted OPERATOR(pg_catalog.+) $5, "
								   "grants = q.grants OPERATOR(pg_catalog.+) 1, last_grant_at = pg_catalog.now()",
								   6, t, a, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not record a quota lease: %s", SPI_result_code_string(rc));
		/* leases of past months are of no use to anyone */
		ad1[0] = DateADTGetDatum((DateADT) (today - 31));
		rc = SPI_execute_with_args("DELETE FROM licdata.quota_leases q WHERE q.day OPERATOR(pg_catalog.<) $1",
								   1, td1, ad1, NULL, false, 0);
		if (rc != SPI_OK_DELETE)
			elog(ERROR, "could not delete old quota leases: %s", SPI_result_code_string(rc));
	}
	SPI_finish();

	values[0] = DateADTGetDatum((DateADT) today);
	for (int k = 0; k < LEASE_KINDS; k++)
		values[1 + k] = Int64GetDatum(grant[k]);
	if (exhausted >= 0)
		values[4] = CStringGetTextDatum(kind_name[exhausted]);
	else
		nulls[4] = true;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(td), values, nulls)));
}

PG_FUNCTION_INFO_V1(licdata_return_quota);

/*
 * licdata_internal._return_quota(node text, day date, licence_id bigint,
 * queries bigint, rows bigint, lookups bigint) RETURNS bigint: standby
 * 'node' has given back, in all, this much of each kind of its leases of
 * the licence's quota of 'day'.  Cumulative (a retry changes nothing),
 * never more than was granted; today's counters go down by the difference
 * once the transaction commits.  Returns the units newly given back.
 */
Datum
licdata_return_quota(PG_FUNCTION_ARGS)
{
	char	   *node;
	DateADT		day;
	int64		licence_id;
	int64		total[LEASE_KINDS];
	int64		delta[LEASE_KINDS] = {0, 0, 0};
	int64		sum = 0;
	Datum		a[3];
	Oid			t[3] = {DATEOID, TEXTOID, INT8OID};
	int			rc;

	for (int i = 0; i < 6; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("an argument is null")));
	check_caller(PG_GETARG_TEXT_PP(0), &node);
	day = PG_GETARG_DATEADT(1);
	licence_id = PG_GETARG_INT64(2);
	for (int k = 0; k < LEASE_KINDS; k++)
		total[k] = PG_GETARG_INT64(3 + k);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "could not connect to SPI");
	a[0] = DateADTGetDatum(day);
	a[1] = CStringGetTextDatum(node);
	a[2] = Int64GetDatum(licence_id);
	rc = SPI_execute_with_args("SELECT q.queries_granted, q.rows_granted, q.lookups_granted, "
							   "q.queries_returned, q.rows_returned, q.lookups_returned "
							   "FROM licdata.quota_leases q WHERE q.day OPERATOR(pg_catalog.=) $1 "
							   "AND q.node OPERATOR(pg_catalog.=) $2 AND q.licence_id OPERATOR(pg_catalog.=) $3 "
							   "FOR UPDATE",
							   3, t, a, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read a quota lease: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		int64		granted[LEASE_KINDS];
		int64		returned[LEASE_KINDS];
		Datum		u[6];
		Oid			ut[6] = {DATEOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID};

		for (int k = 0; k < LEASE_KINDS; k++)
		{
			bool		isnull;

			granted[k] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, k + 1, &isnull));
			returned[k] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, k + 4, &isnull));
			delta[k] = Max(Min(total[k], granted[k]) - returned[k], 0);
			sum += delta[k];
		}
		if (sum > 0)
		{
			u[0] = a[0];
			u[1] = a[1];
			u[2] = a[2];
			for (int k = 0; k < LEASE_KINDS; k++)
				u[3 + k] = Int64GetDatum(returned[k] + delta[k]);
			rc = SPI_execute_with_args("UPDATE licdata.quota_leases q SET queries_returned = $4, "
									   "rows_returned = $5, lookups_returned = $6, last_return_at = pg_catalog.now() "
									   "WHERE q.day OPERATOR(pg_catalog.=) $1 AND q.node OPERATOR(pg_catalog.=) $2 "
									   "AND q.licence_id OPERATOR(pg_catalog.=) $3",
									   6, ut, u, NULL, false, 0);
			if (rc != SPI_OK_UPDATE)
				elog(ERROR, "could not record a returned quota lease: %s", SPI_result_code_string(rc));
			if ((int32) day == utc_day(GetCurrentTimestamp()))
				add_pending(licence_id, (int32) day, delta, true);
		}
	}
	SPI_finish();
	PG_RETURN_INT64(sum);
}
