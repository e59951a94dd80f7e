/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker that moves journal records into licdata.usage
 *	  and licdata.audit_log, exactly once.
 *
 * Every licdata.flush_interval (or when woken) it reads each journal file
 * from where it stopped, and for each final record calls
 * licdata._flush_records(jsonb), in batches, which inserts the usage rows and the audit
 * row (extending the audit hash chain) unless the record's journal
 * reference is already there.  A record of a backend that died in a crash
 * (its file is from an older shared-memory incarnation) and never closed is
 * recorded as cancelled, with the rows it had counted; so is a record left
 * open in the file of a backend that exited.  Files are deleted only after
 * the transaction that moved their last record has committed: a crash at
 * any point replays the file, and the journal reference makes the replay a
 * no-op for what was already moved.
 *
 * Per file the worker remembers how far it has read, and the records it
 * passed while they were still open (a cursor, a long query): those are
 * looked at again each pass, and the records after them are moved as soon
 * as they are closed, so one open cursor does not hold back the records of
 * the statements its session ran after it.  The progress is kept in memory
 * only; after a worker restart a file is read again from its start (the
 * replay is a no-op).
 *
 * After a (re)start, once the journal is drained, it rebuilds today's quota
 * counters from licdata.usage and tells backends they are ready.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <math.h>
#include <unistd.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
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

typedef struct PendingRecord
{
	uint64		offset;			/* logical position */
	uint32		length;
} PendingRecord;

typedef struct FileProgress
{
	char		name[64];
	uint64		offset;			/* logical; everything before is moved or pending */
	bool		started;		/* offset taken from the file's tail */
	uint64		tail_to_write;	/* moved and committed once this pass commits */
	uint64		tail_written;
	List	   *pending;		/* PendingRecord *: open when last seen */
	bool		seen;			/* listed in the current pass */
	bool		unlink_failed;	/* warned about once */
	bool		bad_version;	/* warned about once */
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

/*
 * Text from a record as valid text of the database encoding.  The journal
 * holds what a backend had, unchecked: a setting sent in the startup packet
 * (options=-c licdata.consent_ref=...) is not checked for its encoding, and
 * one record the tables refuse must not stop the worker for good (it would
 * fail on it after every restart, and no record after it would be moved).
 * Invalid bytes are kept visible as \xNN.
 */
static char *
valid_text(const char *s, size_t maxlen)
{
	int			len = (int) strnlen(s, maxlen);
	int			enc = GetDatabaseEncoding();
	StringInfoData out;

	if (pg_verifymbstr(s, len, true))
		return pnstrdup(s, len);
	initStringInfo(&out);
	for (int i = 0; i < len;)
	{
		int			l = pg_encoding_verifymbchar(enc, s + i, len - i);

		if (l > 0)
		{
			appendBinaryStringInfo(&out, s + i, l);
			i += l;
		}
		else
		{
			appendStringInfo(&out, "\\x%02X", (unsigned char) s[i]);
			i++;
		}
	}
	return out.data;
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

/* A text field of a record (at most maxlen bytes, NUL-terminated or not). */
static void
json_kt(StringInfo buf, const char *key, const char *val, size_t maxlen)
{
	char	   *v = (val == NULL || val[0] == '\0') ? NULL : valid_text(val, maxlen);

	json_kv(buf, key, v, false);
	if (v)
		pfree(v);
}

/* A timestamp of a record, or null when it has none or it is not one. */
static void
json_kts(StringInfo buf, const char *key, TimestampTz t)
{
	const char *v = NULL;

	if (t != 0 && !TIMESTAMP_NOT_FINITE(t) && IS_VALID_TIMESTAMP(t))
		v = timestamptz_to_str(t);
	json_kv(buf, key, v, false);
}

/* A price of a record: numeric text as the catalog printed it, else 0. */
static const char *
valid_price(const char *p, const char *file, uint64 offset)
{
	size_t		n = strnlen(p, JOURNAL_PRICE_LEN);
	size_t		i = 0;
	bool		digits = false;

	if (n == 0)
		return "0";
	if (n < JOURNAL_PRICE_LEN)
	{
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++, digits = true;
		if (i < n && p[i] == '.')
			for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++)
				digits = true;
		if (i == n && digits)
			return p;
	}
	ereport(WARNING,
			(errmsg("licdata: journal record \"%s\" at offset %llu has an unreadable price; 0 is recorded",
					file, (unsigned long long) offset)));
	return "0";
}

static void
json_ki(StringInfo buf, const char *key, int64 val)
{
	appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfo(buf, ":%lld", (long long) val);
}

static char
final_open_outcome(bool dead)
{
	(void) dead;
	return OUTCOME_CANCELLED;
}

/*
 * Records are moved in batches: one call of licdata._flush_records(jsonb)
 * per BATCH_RECORDS records (or BATCH_BYTES of them), in journal order,
 * all in the pass's one transaction.
 */
#define BATCH_RECORDS 500
#define BATCH_BYTES (4 * 1024 * 1024)

static StringInfoData batch;
static int	batch_count = 0;

static void
batch_send(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		arg;
	Oid			argtype = TEXTOID;
	int			rc;
	StringInfoData whole;

	if (batch_count == 0)
		return;
	initStringInfo(&whole);
	appendStringInfoChar(&whole, '[');
	appendBinaryStringInfo(&whole, batch.data, batch.len);
	appendStringInfoChar(&whole, ']');
	arg = CStringGetTextDatum(whole.data);
	pfree(whole.data);
	resetStringInfo(&batch);
	batch_count = 0;
	rc = SPI_execute_with_args("SELECT licdata._flush_records($1::pg_catalog.jsonb)",
							   1, &argtype, &arg, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "licdata: could not move journal records: %s", SPI_result_code_string(rc));
	SPI_freetuptable(SPI_tuptable);
	/* SPI leaves its procedure context current: back to the caller's */
	MemoryContextSwitchTo(cxt);
	pfree(DatumGetPointer(arg));
}

/* Move one record into the tables (idempotent): queued for the next batch. */
static void
flush_record(const char *file, uint64 offset, const JournalRecord *r, bool dead)
{
	MemoryContext cxt = CurrentMemoryContext;
	StringInfoData buf;
	char		ref[128];
	char	   *stmt = pnstrdup(r->statement, r->statement_len);
	char		outcome = r->outcome;
	char		sqlstate[6];

	/* never closed: its backend died (or exited) while it ran */
	if (r->state != JR_CLOSED || outcome == 0)
		outcome = final_open_outcome(dead);
	memcpy(sqlstate, r->sqlstate, 5);
	sqlstate[5] = '\0';
	snprintf(ref, sizeof(ref), "%s@%llu", file, (unsigned long long) offset);

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_kv(&buf, "ref", ref, true);
	json_ki(&buf, "kind", r->kind);
	json_kts(&buf, "started_at", r->started_at);
	json_kts(&buf, "ended_at", r->ended_at);
	json_ki(&buf, "licensee", r->licensee);
	json_kt(&buf, "role_name", r->role_name, NAMEDATALEN);
	json_kt(&buf, "session_user_name", r->session_user_name, NAMEDATALEN);
	json_kt(&buf, "purpose", r->purpose, NAMEDATALEN);
	json_kt(&buf, "consent_ref", r->consent_ref, sizeof(r->consent_ref));
	json_ki(&buf, "query_id", (int64) r->query_id);
	json_kt(&buf, "statement", stmt, r->statement_len);
	json_ki(&buf, "statement_is_hash", r->statement_is_hash ? 1 : 0);
	json_ki(&buf, "rows", Max(r->rows, 0));
	json_ki(&buf, "nested_rows", Max(r->nested_rows, 0));
	json_ki(&buf, "rows_aggregated", Max(r->rows_aggregated, 0));
	appendStringInfo(&buf, ",\"duration_ms\":%.3f",
					 isfinite(r->duration_ms) && r->duration_ms >= 0 ? r->duration_ms : 0.0);
	json_kv(&buf, "outcome", outcome == OUTCOME_OK ? "ok" : outcome == OUTCOME_CANCELLED ? "cancelled" : "error", false);
	json_kt(&buf, "sqlstate", sqlstate, sizeof(sqlstate));
	json_ki(&buf, "denied", r->denied ? 1 : 0);
	appendStringInfoString(&buf, ",\"uses\":[");
	for (uint32 i = 0; i < r->nuses && i < r->uses_capacity; i++)
	{
		const JournalUse *u = &JR_USES(r)[i];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfo(&buf, "{\"licence_id\":%lld,\"dataset\":%u,\"aggregate\":%s",
						 (long long) u->licence_id, u->dataset, (u->flags & USE_AGGREGATE) ? "true" : "false");
		/* data products (product.c): 'dataset' is then the product's function */
		appendStringInfo(&buf, ",\"product\":%s,\"product_read\":%s,\"calls\":%lld,\"use_rows\":%lld",
						 (u->flags & USE_PRODUCT) ? "true" : "false",
						 (u->flags & USE_PRODUCT_READ) ? "true" : "false",
						 (long long) Max(u->calls, 0), (long long) Max(u->rows, 0));
		json_kv(&buf, "price_per_query", valid_price(u->price_per_query, file, offset), false);
		json_kv(&buf, "price_per_row", valid_price(u->price_per_row, file, offset), false);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoString(&buf, "]}");

	/* Into the batch; sent when it is full and at the end of the pass. */
	if (batch_count > 0)
		appendStringInfoChar(&batch, ',');
	appendBinaryStringInfo(&batch, buf.data, buf.len);
	batch_count++;
	pfree(buf.data);
	pfree(stmt);
	if (batch_count >= BATCH_RECORDS || batch.len >= BATCH_BYTES)
		batch_send();
	MemoryContextSwitchTo(cxt);
}

/* Is the record at buf (len bytes available) whole and sane? */
static bool
record_sane(const JournalRecord *r, uint32 avail)
{
	return avail >= offsetof(JournalRecord, statement) &&
		r->magic == JR_MAGIC &&
		r->length >= offsetof(JournalRecord, statement) &&
		r->length <= avail &&
		(uint64) offsetof(JournalRecord, statement) + r->statement_len <= r->length &&
		(uint64) JR_USES_OFFSET(r) + (uint64) sizeof(JournalUse) * r->uses_capacity <= r->length &&
		r->nuses <= r->uses_capacity;
}

static void
add_pending(FileProgress *p, uint64 off, uint32 len)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	PendingRecord *pr = palloc(sizeof(PendingRecord));

	pr->offset = off;
	pr->length = len;
	p->pending = lappend(p->pending, pr);
	MemoryContextSwitchTo(old);
}

/*
 * Decide about one record (already read into memory) at 'off': move it
 * (returns true), or leave it (returns false: still open in a live file).
 * 'final': no more records will come and none will be closed any more (the
 * file's backend died or exited).
 */
static bool
consider_record(const char *name, uint64 off, const JournalRecord *r, bool dead, bool final)
{
	uint32		state = r->state;

	pg_read_barrier();
	if (state == JR_VOID)
		return true;			/* not a record: its statement was refused */
	if (state == JR_WRITING || (state == JR_OPEN && !final))
	{
		if (!final)
			return false;		/* still being written, or statement running */
		return true;			/* its backend died while writing it: nothing ran */
	}
	if (licdata_journal_crc(r) != r->crc)
	{
		ereport(WARNING, (errmsg("licdata: journal record \"%s\" at offset %llu fails its checksum and is skipped",
								 name, (unsigned long long) off)));
		return true;
	}
	flush_record(name, off, r, dead);
	return true;
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
	uint64		head;
	uint64		ring;
	bool		dead;
	bool		final;
	FileProgress *p = progress_for(name);
	ListCell   *lc;

	p->seen = true;
	snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), name);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		return false;
	if (pg_pread(fd, &h, sizeof(h), 0) != sizeof(h) || h.magic != JF_MAGIC)
	{
		/* being created (or not ours): look again next pass */
		CloseTransientFile(fd);
		return false;
	}
	if (h.version != JF_VERSION)
	{
		if (!p->bad_version)
			ereport(WARNING,
					(errmsg("licdata: journal file \"%s\" has layout version %u, this build reads version %u; it is left in place",
							name, h.version, JF_VERSION),
					 errhint("Run the licdata version that wrote it until its records are moved.")));
		p->bad_version = true;
		CloseTransientFile(fd);
		return false;
	}
	dead = (h.incarnation != licdata_shared->incarnation);
	final = dead || h.closed != 0;
	pg_read_barrier();
	head = h.head;
	ring = h.ring_size;
	if (ring == 0)
	{
		CloseTransientFile(fd);
		return false;
	}
	/* Everything before the file's tail was moved and committed earlier. */
	if (!p->started)
	{
		p->offset = h.tail;
		p->tail_written = h.tail;
		p->started = true;
	}

	/* Records passed while open: moved once closed (or once final). */
	foreach(lc, p->pending)
	{
		PendingRecord *pr = lfirst(lc);
		JournalRecord *r = palloc(pr->length);

		if (pg_pread(fd, r, pr->length, sizeof(JournalFileHeader) + pr->offset % ring) != (ssize_t) pr->length ||
			!record_sane(r, pr->length) || r->lpos != pr->offset)
		{
			ereport(WARNING, (errmsg("licdata: journal record \"%s\" at offset %llu cannot be read again and is skipped",
									 name, (unsigned long long) pr->offset)));
			p->pending = foreach_delete_current(p->pending, lc);
			pfree(pr);
		}
		else if (consider_record(name, pr->offset, r, dead, final))
		{
			p->pending = foreach_delete_current(p->pending, lc);
			pfree(pr);
		}
		pfree(r);
	}

	/* Records added since the last pass, chunk by chunk up to the ring's end. */
	while (p->offset < head)
	{
		uint64		phys = p->offset % ring;
		uint32		len = (uint32) Min(head - p->offset, ring - phys);
		uint32		off = 0;
		bool		stop = false;

		buf = palloc(len);
		if (pg_pread(fd, buf, len, sizeof(JournalFileHeader) + phys) != (ssize_t) len)
		{
			CloseTransientFile(fd);
			pfree(buf);
			return false;
		}
		while (off < len)
		{
			JournalRecord *r = (JournalRecord *) (buf + off);

			if (len - off >= 2 * sizeof(uint32) && ((uint32 *) r)[0] == JR_PAD_MAGIC &&
				((uint32 *) r)[1] == len - off)
			{
				off = len;		/* the rest of the ring is padding */
				break;
			}
			if (!record_sane(r, len - off) || r->lpos != p->offset + off)
			{
				if (!final)
				{
					stop = true;	/* cannot happen below 'head'; look again */
					break;
				}
				ereport(WARNING, (errmsg("licdata: journal file \"%s\" is damaged at offset %llu; the rest is skipped",
										 name, (unsigned long long) (p->offset + off))));
				off = len;
				p->offset = head - len;		/* so that the file counts as finished */
				break;
			}
			if (!consider_record(name, p->offset + off, r, dead, final))
				add_pending(p, p->offset + off, r->length);
			off += r->length;
		}
		p->offset += off;
		pfree(buf);
		if (stop || off == 0)
			break;
	}

	/* The ring before the oldest record not yet moved may be reused. */
	p->tail_to_write = p->offset;
	foreach(lc, p->pending)
		p->tail_to_write = Min(p->tail_to_write, ((PendingRecord *) lfirst(lc))->offset);
	CloseTransientFile(fd);
	return final && p->pending == NIL && p->offset >= head;
}

/* Record in a file's header how far its records are moved and committed. */
static void
write_tail(FileProgress *p)
{
	char		path[MAXPGPATH];
	int			fd;
	uint64		tail = p->tail_to_write;

	snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), p->name);
	fd = OpenTransientFile(path, O_RDWR | PG_BINARY);
	if (fd < 0)
		return;					/* removed meanwhile: nothing to reuse */
	if (pg_pwrite(fd, &tail, sizeof(tail), offsetof(JournalFileHeader, tail)) == sizeof(tail) &&
		(!licdata_journal_sync || pg_fdatasync(fd) == 0))
		p->tail_written = tail;
	CloseTransientFile(fd);
}

static void
progress_forget(FileProgress *p)
{
	progress = list_delete_ptr(progress, p);
	list_free_deep(p->pending);
	pfree(p);
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

	/* a product licence's day counter counts calls (product.c) */
	rc = SPI_execute("SELECT licence_id, pg_catalog.sum(CASE WHEN mode OPERATOR(pg_catalog.=) 'product' "
					 "THEN calls ELSE 1 END)::pg_catalog.int8, pg_catalog.sum(rows) FROM licdata.usage "
					 "WHERE licence_id IS NOT NULL AND at OPERATOR(pg_catalog.>=) "
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
		bool		found;
		LicdataQuotaEntry *e = hash_search(licdata_quota_hash, &id, HASH_ENTER_NULL, &found);

		if (e == NULL)
			break;
		if (!found)
			e->lookups = 0;		/* not in the usage table: starts afresh */
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
	bool		version_mismatch;
	const LicdataCatalog *cat;
	static bool mismatch_logged = false;
	int			save_nestlevel;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	/* the database's or role's search_path setting must not redirect our SQL */
	save_nestlevel = licdata_pin_search_path();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "moving journal records");

	/*
	 * Records are moved only into the SQL objects of this library's version:
	 * under a mismatch (ALTER EXTENSION licdata UPDATE not run yet) they
	 * wait in the journal, and the day quotas are rebuilt after the update.
	 */
	cat = licdata_catalog();
	version_mismatch = (cat != NULL && !cat->version_ok);
	extension_here = (cat != NULL && !version_mismatch);
	if (version_mismatch && !mismatch_logged)
		ereport(LOG,
				(errmsg("licdata: journal records wait until the extension is updated"),
				 errdetail("The library is version %s, the extension in database \"%s\" is version %s.",
						   LICDATA_VERSION, get_database_name(MyDatabaseId), cat->sql_version),
				 errhint("Run ALTER EXTENSION licdata UPDATE in that database.")));
	mismatch_logged = version_mismatch;
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

		foreach(lc, progress)
			((FileProgress *) lfirst(lc))->seen = false;
		licdata_records_writable = true;
		PG_TRY();
		{
			foreach(lc, names)
			{
				bool		finished = process_file(lfirst(lc));
				MemoryContext prev = MemoryContextSwitchTo(pass_cxt);

				/* 'done' is read after SPI_finish and the commit */
				if (finished)
					done = lappend(done, lfirst(lc));
				MemoryContextSwitchTo(prev);
			}
			batch_send();
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
	licdata_unpin_search_path(save_nestlevel);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	/*
	 * Only now, with the records committed, may their ring space be reused:
	 * tell each file's backend how far the tables have it.
	 */
	MemoryContextSwitchTo(TopMemoryContext);
	foreach(lc, progress)
	{
		FileProgress *p = lfirst(lc);

		if (p->seen && p->started && p->tail_to_write > p->tail_written)
			write_tail(p);
	}

	/*
	 * Only now, with the records committed, may their files go.  A file
	 * that cannot be removed keeps its progress, so it is not read again.
	 */
	foreach(lc, done)
	{
		char		path[MAXPGPATH];
		FileProgress *p = progress_for(lfirst(lc));

		snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), (char *) lfirst(lc));
		if (unlink(path) != 0 && errno != ENOENT)
		{
			if (!p->unlink_failed)
				ereport(WARNING, (errcode_for_file_access(),
								  errmsg("licdata: could not remove journal file \"%s\": %m", path),
								  errdetail("Its records are in the tables; it will be removed when it can be.")));
			p->unlink_failed = true;
			continue;
		}
		progress_forget(p);
	}
	/* Files that are gone (removed by someone else): forget them. */
	if (extension_here)
	{
		foreach(lc, progress)
		{
			FileProgress *p = lfirst(lc);

			if (!p->seen)
			{
				progress = foreach_delete_current(progress, lc);
				list_free_deep(p->pending);
				pfree(p);
			}
		}
	}
	if (!version_mismatch)
		pg_atomic_write_u32(&licdata_shared->quota_ready, 1);
	MemoryContextDelete(pass_cxt);
}

void
licdata_worker_main(Datum arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	pg_atomic_write_u32(&licdata_shared->worker_pid, MyProcPid);
	licdata_shared->worker_latch = MyLatch;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&batch);
		MemoryContextSwitchTo(old);
	}

	/*
	 * Until licdata has a home database (licdata.database, or the first
	 * CREATE EXTENSION), there is nothing to move: wait for it.
	 */
	for (;;)
	{
		char	   *home;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		home = licdata_home_database();
		if (home)
		{
			BackgroundWorkerInitializeConnection(home, NULL, 0);
			break;
		}
		pg_atomic_write_u32(&licdata_shared->quota_ready, 1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
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
		licdata_privileges_sweep();
		pg_atomic_fetch_add_u64(&licdata_shared->passes, 1);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 licdata_flush_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
