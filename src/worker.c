/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker that moves journal records into licdata.usage
 *	  and licdata.audit_log, exactly once.
 *
 * Every licdata.flush_interval (or when woken) it reads each journal file
 * from where it stopped, and for each final record calls
 * licdata._flush_record(jsonb), which inserts the usage rows and the audit
 * row (extending the audit hash chain) unless the record's journal
 * reference is already there.  A record of a backend that died in a crash
 * (its file is from an older shared-memory incarnation) and never closed is
 * recorded as cancelled, with the rows it had counted.  Files are deleted
 * only after the transaction that moved their last record has committed:
 * a crash at any point replays the file, and the journal reference makes
 * the replay a no-op for what was already moved.
 *
 * After a (re)start, once the journal is drained, it rebuilds today's quota
 * counters from licdata.usage and tells backends they are ready.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "licdata.h"
#include "meter.h"
#include "shmem.h"

PGDLLEXPORT void licdata_worker_main(Datum arg);

extern bool licdata_records_writable;

typedef struct FileProgress
{
	char		name[64];
	uint32		offset;
} FileProgress;

static List *progress = NIL;	/* of FileProgress *, in TopMemoryContext */

void
licdata_worker_register(void)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 5;
	snprintf(w.bgw_library_name, BGW_MAXLEN, "licdata");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "licdata_worker_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "licdata flusher");
	snprintf(w.bgw_type, BGW_MAXLEN, "licdata flusher");
	RegisterBackgroundWorker(&w);
}

void
licdata_worker_wake(void)
{
	Latch	   *l = licdata_shared->worker_latch;

	if (l)
		SetLatch(l);
}

static FileProgress *
progress_for(const char *name)
{
	ListCell   *lc;
	FileProgress *p;

	foreach(lc, progress)
	{
		p = lfirst(lc);
		if (strcmp(p->name, name) == 0)
			return p;
	}
	p = MemoryContextAllocZero(TopMemoryContext, sizeof(FileProgress));
	strlcpy(p->name, name, sizeof(p->name));
	p->offset = sizeof(JournalFileHeader);
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		progress = lappend(progress, p);
		MemoryContextSwitchTo(old);
	}
	return p;
}

static void
json_kv(StringInfo buf, const char *key, const char *val, bool first)
{
	if (!first)
		appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	if (val == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, val);
}

static void
json_ki(StringInfo buf, const char *key, int64 val)
{
	appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfo(buf, ":%lld", (long long) val);
}

/* Move one record into the tables (idempotent). */
static void
flush_record(const char *file, uint32 offset, const JournalRecord *r, bool dead)
{
	StringInfoData buf;
	char		ref[128];
	char	   *stmt = pnstrdup(r->statement, r->statement_len);
	char		outcome = r->outcome;
	char		sqlstate[6];
	Datum		arg;
	Oid			argtype = TEXTOID;
	int			rc;

	if (r->state != JR_CLOSED || outcome == 0)
		outcome = dead ? OUTCOME_CANCELLED : OUTCOME_ERROR;
	memcpy(sqlstate, r->sqlstate, 5);
	sqlstate[5] = '\0';
	snprintf(ref, sizeof(ref), "%s@%u", file, offset);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_kv(&buf, "ref", ref, true);
	json_ki(&buf, "kind", r->kind);
	json_kv(&buf, "started_at", timestamptz_to_str(r->started_at), false);
	json_kv(&buf, "ended_at", r->ended_at ? timestamptz_to_str(r->ended_at) : NULL, false);
	json_ki(&buf, "licensee", r->licensee);
	json_kv(&buf, "role_name", r->role_name, false);
	json_kv(&buf, "session_user_name", r->session_user_name, false);
	json_kv(&buf, "purpose", r->purpose[0] ? r->purpose : NULL, false);
	json_kv(&buf, "consent_ref", r->consent_ref[0] ? r->consent_ref : NULL, false);
	json_ki(&buf, "query_id", (int64) r->query_id);
	json_kv(&buf, "statement", stmt, false);
	json_ki(&buf, "statement_is_hash", r->statement_is_hash ? 1 : 0);
	json_ki(&buf, "rows", r->rows);
	json_ki(&buf, "nested_rows", r->nested_rows);
	json_ki(&buf, "rows_aggregated", r->rows_aggregated);
	appendStringInfo(&buf, ",\"duration_ms\":%.3f", r->duration_ms);
	json_kv(&buf, "outcome", outcome == OUTCOME_OK ? "ok" : outcome == OUTCOME_CANCELLED ? "cancelled" : "error", false);
	json_kv(&buf, "sqlstate", sqlstate[0] ? sqlstate : NULL, false);
	appendStringInfoString(&buf, ",\"uses\":[");
	for (uint32 i = 0; i < r->nuses && i < LICDATA_MAX_USES; i++)
	{
		const JournalUse *u = &r->uses[i];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfo(&buf, "{\"licence_id\":%lld,\"dataset\":%u,\"aggregate\":%s",
						 (long long) u->licence_id, u->dataset, (u->flags & 1) ? "true" : "false");
		json_kv(&buf, "price_per_query", u->price_per_query[0] ? u->price_per_query : "0", false);
		json_kv(&buf, "price_per_row", u->price_per_row[0] ? u->price_per_row : "0", false);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoString(&buf, "]}");

	arg = CStringGetTextDatum(buf.data);
	rc = SPI_execute_with_args("SELECT licdata._flush_record($1::pg_catalog.jsonb)",
							   1, &argtype, &arg, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "licdata: could not move a journal record: %s", SPI_result_code_string(rc));
	pfree(buf.data);
	pfree(stmt);
}

/*
 * Move what can be moved from one file.  Returns true when the file is
 * finished (all records moved, and no more will come).
 */
static bool
process_file(const char *name)
{
	char		path[MAXPGPATH];
	int			fd;
	JournalFileHeader h;
	char	   *buf;
	uint32		used;
	bool		dead;
	bool		closed;
	FileProgress *p = progress_for(name);
	uint32		off;

	snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), name);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		return false;
	if (read(fd, &h, sizeof(h)) != sizeof(h) || h.magic != JF_MAGIC)
	{
		CloseTransientFile(fd);
		return false;
	}
	dead = (h.incarnation != licdata_shared->incarnation);
	closed = (h.closed != 0);
	pg_read_barrier();
	used = h.used;
	if (used <= p->offset)
	{
		CloseTransientFile(fd);
		return dead || closed;
	}
	buf = palloc(used);
	if (pg_pread(fd, buf, used, 0) != (ssize_t) used)
	{
		CloseTransientFile(fd);
		pfree(buf);
		return false;
	}
	CloseTransientFile(fd);

	off = p->offset;
	while (off + offsetof(JournalRecord, statement) <= used)
	{
		JournalRecord *r = (JournalRecord *) (buf + off);

		if (r->magic != JR_MAGIC || r->length < offsetof(JournalRecord, statement) ||
			off + r->length > used)
		{
			if (!dead)
				break;
			ereport(WARNING, (errmsg("licdata: journal file \"%s\" is damaged at offset %u; the rest is skipped",
									 name, off)));
			off = used;
			break;
		}
		if (r->state == JR_WRITING || (r->state == JR_OPEN && !dead))
		{
			if (!dead)
				break;			/* still being written, or statement running */
			if (r->state == JR_WRITING)
			{
				off += r->length;
				continue;
			}
		}
		if (licdata_journal_crc(r) != r->crc)
		{
			ereport(WARNING, (errmsg("licdata: journal record \"%s\" at offset %u fails its checksum and is skipped",
									 name, off)));
			off += r->length;
			continue;
		}
		flush_record(name, off, r, dead);
		off += r->length;
	}
	p->offset = off;
	pfree(buf);
	return (dead || closed) && off >= used;
}

static int
name_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

static void
rebuild_quotas(void)
{
	int			rc;

	rc = SPI_execute("SELECT licence_id, count(*), sum(rows) FROM licdata.usage "
					 "WHERE licence_id IS NOT NULL AND at >= "
					 "(pg_catalog.date_trunc('day', pg_catalog.now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') "
					 "GROUP BY licence_id", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "licdata: could not rebuild quota counters");
	LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		int64		q = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		Datum		rd = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull);
		int64		rows = isnull ? 0 : DatumGetInt64(DirectFunctionCall1(numeric_int8, rd));
		LicdataQuotaEntry *e = hash_search(licdata_quota_hash, &id, HASH_ENTER_NULL, NULL);

		if (e == NULL)
			break;
		e->day = (int32) (GetCurrentTimestamp() / USECS_PER_DAY);
		e->queries = q;
		e->rows = rows;
	}
	LWLockRelease(licdata_shared->quota_lock);
}

static void
flush_pass(void)
{
	DIR		   *dir;
	struct dirent *de;
	MemoryContext pass_cxt = AllocSetContextCreate(TopMemoryContext, "licdata flush pass",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext old;
	List	   *names = NIL;
	List	   *done = NIL;
	ListCell   *lc;
	bool		extension_here;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "moving journal records");

	extension_here = (licdata_catalog() != NULL);
	old = MemoryContextSwitchTo(pass_cxt);
	if (extension_here)
	{
		dir = AllocateDir(licdata_journal_dir());
		while (dir && (de = ReadDir(dir, licdata_journal_dir())) != NULL)
		{
			size_t		n = strlen(de->d_name);

			if (n > 4 && strcmp(de->d_name + n - 4, ".jnl") == 0)
				names = lappend(names, pstrdup(de->d_name));
		}
		if (dir)
			FreeDir(dir);
		list_sort(names, name_cmp);

		licdata_records_writable = true;
		PG_TRY();
		{
			foreach(lc, names)
			{
				if (process_file(lfirst(lc)))
					done = lappend(done, lfirst(lc));
			}
			if (pg_atomic_read_u32(&licdata_shared->quota_ready) == 0)
				rebuild_quotas();
		}
		PG_FINALLY();
		{
			licdata_records_writable = false;
		}
		PG_END_TRY();
	}

	MemoryContextSwitchTo(old);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	/* Only now, with the records committed, may their files go. */
	MemoryContextSwitchTo(TopMemoryContext);
	foreach(lc, done)
	{
		char		path[MAXPGPATH];
		ListCell   *pc;

		snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), (char *) lfirst(lc));
		if (unlink(path) != 0 && errno != ENOENT)
			ereport(WARNING, (errcode_for_file_access(),
							  errmsg("licdata: could not remove journal file \"%s\": %m", path)));
		foreach(pc, progress)
		{
			FileProgress *p = lfirst(pc);

			if (strcmp(p->name, lfirst(lc)) == 0)
			{
				progress = foreach_delete_current(progress, pc);
				pfree(p);
				break;
			}
		}
	}
	pg_atomic_write_u32(&licdata_shared->quota_ready, 1);
	MemoryContextDelete(pass_cxt);
}

void
licdata_worker_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(licdata_database, NULL, 0);
	pg_atomic_write_u32(&licdata_shared->worker_pid, MyProcPid);
	licdata_shared->worker_latch = MyLatch;
	(void) MakePGDirectory(LICDATA_DIR);
	(void) MakePGDirectory(licdata_journal_dir());

	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		flush_pass();
		pg_atomic_fetch_add_u64(&licdata_shared->passes, 1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 licdata_flush_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
