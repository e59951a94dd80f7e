/*-------------------------------------------------------------------------
 *
 * journal.c
 *	  The metering journal: each backend appends its statement records to
 *	  a file of its own under pg_licdata/journal, mapped into memory.
 *
 * Why a mapped file: a store into a MAP_SHARED mapping is in the kernel's
 * page cache at once, so it survives the backend being killed (SIGKILL)
 * and the server crashing, without a system call per record; the row
 * counter of a running statement is updated in place, so even a statement
 * killed mid-stream leaves the count of rows it had sent.  With
 * licdata.journal_sync = on, a record is also made durable (through
 * PostgreSQL's WAL, or by fdatasync) before its statement's result leaves
 * the server, so it survives power loss (see "Durability" below).
 *
 * Files are fully allocated (posix_fallocate) when created, so a full disk
 * is reported when a file cannot be made -- and the statement is refused --
 * never as SIGBUS while writing into a hole.
 *
 * File layout: a JournalFileHeader, then a ring of records.  A record at
 * logical position L lies at ring offset L % ring_size and never across the
 * ring's end (a JR_PAD marker fills the end first).  A record is written
 * with state JR_WRITING, its CRC computed over the immutable part, then
 * published by setting JR_OPEN (statement running) and later JR_CLOSED
 * (final).  The header's 'head' (logical) is advanced after a record is
 * fully written.  The background worker reads files with read(), which
 * sees the same page cache, and after committing what it moved writes the
 * header's 'tail': the ring before it may be written again.  Reusing ring
 * pages that are still mapped and dirty is what makes an append cheap: a
 * fresh page of a file mapping costs a page fault (tens of microseconds on
 * virtual machines).  When the worker is behind by a whole ring, or an
 * open record (a long cursor) holds the tail back, the backend starts a
 * new file.
 *
 * A file belongs to one backend of one shared-memory incarnation.  When the
 * backend exits normally it marks its file closed; a file of an older
 * incarnation belongs to a backend that died in a crash.  Either way the
 * worker may delete the file once it has moved all its records.  The
 * header also names the node (licdata_node_id): a copy of another node's
 * file, brought by a base backup, is not this node's to move (journal.h,
 * "Whose files").
 *
 * The record format and the backend<->worker protocol (who stores what, in
 * which order, behind which barrier, and who may reuse which bytes when)
 * are written down in journal.h.
 *
 * The journal's disk is bounded: a new file is made only if the bytes of
 * all journal files stay within licdata.max_journal_size (shmem.h,
 * journal_bytes and journal_base); otherwise the statement is refused (LD009), never served
 * unmetered.  Statements of sessions whose ring has room go on; once the
 * worker has moved records, rings have room again and files are removed.
 *
 * Durability (journal_sync = on).  The rule is the write-ahead rule of
 * PostgreSQL's WAL applied to the client socket: no byte of output leaves
 * the server before every record this backend has appended or closed is
 * durable.  So a record is not synced when it is appended nor when it is
 * closed, but once, by the backend, just before its output is sent:
 *	- PostgreSQL's send path (PqCommMethods) is wrapped on first use.
 *	  pq_flush, which sends the buffer (ReadyForQuery at the end of every
 *	  statement or pipeline, an error, a notice), first syncs what this
 *	  backend appended, closed or voided since its last sync (through the
 *	  WAL or by fdatasync of its files, below).  pq_putmessage
 *	  sends the 8 kB buffer by itself when it fills: a large result leaves
 *	  mid-statement, so a message that could fill it (counting every byte
 *	  put since the last flush, an upper bound) syncs first too.
 *	- One fdatasync covers the header page (head) and every record of the
 *	  file since the last one: a small statement costs one sync (before,
 *	  two or three msyncs: the record and the header page when it was
 *	  appended, the record when it closed); a large result two (before its
 *	  first bytes, and when it closes); statements whose results leave in
 *	  one flush (several in one simple-query message, an extended-protocol
 *	  pipeline up to its Sync) share one: the DEBUG1 line "one journal sync
 *	  made N new records durable" counts them.
 *	- A backend without a client (background worker, single-user mode)
 *	  syncs when a record closes.
 *	- Files stay allocated with posix_fallocate, not written with zeros as
 *	  PostgreSQL does for WAL segments: on ext4 here, a store through the
 *	  mapping into a page first written with write() made each fdatasync
 *	  3-4 times slower (1.1-2.2 ms against 0.3-0.6 ms, 1 kB records, a
 *	  small C program run back to back), while an fallocate'd file synced
 *	  as fast as a pwrite'd one.
 * A sync is made one of two ways (licdata.journal_sync_method):
 *	- wal (PostgreSQL 15 on, a primary; see wal_route for when not): the
 *	  images of the records appended, closed or voided since the last sync
 *	  (and of open records whose counts changed, and ring-end pads) go into
 *	  one WAL record per file of licdata's resource manager (journal_wal.c),
 *	  and the WAL is flushed up to the last one (XLogFlush): backends whose
 *	  statements end together share a WAL flush, as concurrent commits do.
 *	  Replay writes the images back into this node's journal files
 *	  (journal_wal.c says exactly when).  Replay starts at the last
 *	  checkpoint, which does not sync journal files: so a file whose first
 *	  image not yet fdatasynced went into the WAL before the latest
 *	  checkpoint began (GetRedoRecPtr) is fdatasynced at the backend's next
 *	  sync -- once per checkpoint and file.  Between that checkpoint's end
 *	  and that next sync, such a record relies on the kernel's write-back
 *	  or the flusher having moved it (README, Known limits).
 *	- fdatasync: of each file this backend dirtied since its last sync, as
 *	  described above.  Also on a standby (no WAL can be written), while an
 *	  error or notice is being sent (the send path flushes then, maybe
 *	  between another XLogBeginInsert and its XLogInsert), in a critical
 *	  section, at process exit (shared memory is gone by then), when this
 *	  node's identity is unknown, and while a record could not be tracked
 *	  (more than MAX_TRACKED changed at a moment the WAL could not be
 *	  written; an open one, until it closes).  A file synced this way may hold later states
 *	  than images in the WAL; replay never puts an earlier state back.
 * Through fdatasync, syncs of different backends share nothing in licdata:
 * each backend's file is its own, and one fdatasync makes one file
 * durable.  (Linux does
 * write pages another process dirtied through its MAP_SHARED mapping when
 * a leader fdatasyncs that file through a descriptor of its own -- checked
 * with /proc/kpageflags -- but a leader syncing N followers' files still
 * issues N device flushes, one after the other, which is no better than N
 * backends issuing them at once (the block layer can merge flushes that
 * are in flight together).  Sharing one flush across backends needs one
 * shared file that is synced, i.e. a durable log of record images replayed
 * into the journal files before the flusher reads them after a crash: the
 * WAL, with journal_sync_method = wal.)
 *
 * A record whose durability cannot be ensured fails closed.  When a sync
 * fails (an fdatasync, or writing the WAL record: an error there is
 * caught; a failed WAL flush is a PANIC of PostgreSQL's own), every
 * record no sync has covered yet ('fresh': none of its statement's output
 * has left) and that the flusher has not moved is
 * marked JR_VOID -- the worker skips it, never billed -- and the connection
 * is closed without sending what is buffered (the send path refuses all
 * further output and the backend ends with "connection to client lost"):
 * the statements' results never reach the client.  A record an earlier
 * sync covered stays as it is (its statement's first rows may have left).
 * The flusher reads closed records before they are durable; if it moved
 * one before the sync failed, that statement is billed though its result
 * was not sent (never the other way round).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#if PG_VERSION_NUM >= 150000
#include "access/xlog.h"
#include "access/xloginsert.h"
#endif
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "errcodes.h"
#include "licdata.h"
#include "journal.h"
#include "journal_wal.h"
#include "shmem.h"

/*
 * PostgreSQL's send path (libpq/libpq.h, which cannot be included here: it
 * includes libpq-be.h, which needs the GSSAPI headers of Debian's build).
 * Declared as PostgreSQL 14 to 17 declare it (the six methods; 14 dropped
 * startcopyout/endcopyout).
 */
#if PG_VERSION_NUM < 140000 || PG_VERSION_NUM >= 180000
#error "journal.c declares PostgreSQL 14-17's PQcommMethods: check libpq/libpq.h"
#endif
typedef struct
{
	void		(*comm_reset) (void);
	int			(*flush) (void);
	int			(*flush_if_writable) (void);
	bool		(*is_send_pending) (void);
	int			(*putmessage) (char msgtype, const char *s, size_t len);
	void		(*putmessage_noblock) (char msgtype, const char *s, size_t len);
} PQcommMethods;

extern PGDLLIMPORT const PQcommMethods *PqCommMethods;

typedef struct JournalFile
{
	char		path[MAXPGPATH];
	int			fd;
	char	   *base;
	size_t		size;
	bool		full;			/* no more records will be added */
	bool		dirty;			/* journal_sync: written since its last fdatasync */
	int			open_records;
#if PG_VERSION_NUM >= 150000
	XLogRecPtr	wal_unsynced;	/* first WAL record with images of this file
								 * since its last fdatasync (0: none) */
#endif
	uint64		wake_at;		/* logical head from which the next append may
								 * wake the worker (see licdata_journal_append) */
} JournalFile;

static JournalFile *cur = NULL;
static List *retired = NIL;		/* full files with records still open; in
								 * TopMemoryContext, as it outlives statements */
static bool exit_registered = false;

/*
 * journal_sync = on (see "Durability" above).  'fresh' are the records this
 * backend appended that no fdatasync has covered yet: no byte of their
 * statements' output has left the server.  'sync_pending' says some file
 * is dirty (a record appended, closed or voided since its last fdatasync);
 * 'sync_records' counts the records appended since, for the DEBUG1 line of
 * a sync that covered several statements.  'comm_buffered' is an upper bound of the bytes in
 * PostgreSQL's send buffer (see journal_putmessage).
 */
#define MAX_FRESH			16
#define PQ_SEND_BUFFER		8192	/* pqcomm.c's PQ_SEND_BUFFER_SIZE (not exported) */

typedef struct FreshRecord
{
	JournalRecord *rec;
	uint64		lpos;			/* identifies it: its bytes may be reused */
} FreshRecord;

static FreshRecord fresh[MAX_FRESH];
static int	nfresh = 0;
static bool sync_pending = false;
static int	sync_records = 0;
static bool comm_poisoned = false;
static const PQcommMethods *real_comm = NULL;
static size_t comm_buffered = PQ_SEND_BUFFER;

/*
 * journal_sync = on through the WAL (see "Durability"): the records (and
 * ring-end pads) whose current image is not yet in the WAL.  An open record
 * stays here until its final image is logged, so that a later sync logs
 * its counts again when they changed.  'track_lost': one could not be kept
 * here (more than MAX_TRACKED), so the next sync fdatasyncs instead.
 */
#define MAX_TRACKED			64

typedef struct TrackedItem
{
	char	   *ptr;			/* the record, or the pad marker, in the mapping */
	uint64		lpos;
	uint32		extent;			/* a pad: logical bytes to the ring's end */
	bool		pad;
	bool		logged;			/* an image is in the WAL (or the file synced) */
	uint32		state;			/* what that image holds */
	int64		rows;
	int64		nested_rows;
	int64		rows_aggregated;
	uint32		nuses;
} TrackedItem;

static TrackedItem tracked[MAX_TRACKED];
static int	ntracked = 0;
static bool track_lost = false;
static int	evicted_open = 0;	/* open records dropped from 'tracked' that
								 * have not closed yet: their counts are
								 * durable only by fdatasync meanwhile */

#if PG_VERSION_NUM >= 150000
static XLogRecPtr wal_inserted = InvalidXLogRecPtr; /* logged, maybe not flushed */
static char *wal_buf = NULL;
static Size wal_buf_size = 0;
#endif

const char *
licdata_journal_dir(void)
{
	return LICDATA_DIR "/journal";
}

uint32
licdata_journal_crc(const JournalRecord *rec)
{
	pg_crc32c	crc;
	size_t		off = offsetof(JournalRecord, immutable);

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, ((const char *) rec) + off,
				offsetof(JournalRecord, statement) - off + rec->statement_len);
	FIN_CRC32C(crc);
	return crc;
}

static void
journal_error(const char *what, const char *path)
{
	int			save = errno;

	errno = save;
	ereport(ERROR,
			(errcode(ERRCODE_LD_METERING_FAILED),
			 errmsg("could not record metering, so the query is refused"),
			 errdetail("Could not %s journal file \"%s\": %m.", what, path),
			 errhint("Ask the operator to free space in or fix the permissions of the data directory's %s directory.",
					 licdata_journal_dir())));
}

static bool journal_sync_now(void);
static void sync_failed(const char *path, int err);
static void track_forget_file(JournalFile *f);

static void
file_mark_closed(JournalFile *f)
{
	JournalFileHeader *h = (JournalFileHeader *) f->base;

	/*
	 * What it holds must be durable before its mapping goes: a sync now,
	 * while it is still 'cur' or in 'retired' (where journal_sync_now
	 * looks), covers it and every other file of this backend.
	 */
	if (sync_pending)
		(void) journal_sync_now();
	track_forget_file(f);
	pg_write_barrier();
	h->closed = 1;
	if (licdata_journal_sync)
		(void) fdatasync(f->fd);
	(void) munmap(f->base, f->size);
	close(f->fd);
	f->base = NULL;
	f->fd = -1;
}

static void
journal_exit(int code, Datum arg)
{
	ListCell   *lc;

	/* Open records were closed by the transaction abort before this. */
	if (cur)
	{
		file_mark_closed(cur);
		cur = NULL;
	}
	foreach(lc, retired)
	{
		JournalFile *f = lfirst(lc);

		if (f->base)
			file_mark_closed(f);
	}
	retired = NIL;
}

/* A new file could not be made: remove what there is of it, refuse. */
static void
new_file_failed(JournalFile *f, const char *what, int err)
{
	char		path[MAXPGPATH];

	strlcpy(path, f->path, sizeof(path));
	if (f->base)
		(void) munmap(f->base, f->size);
	if (f->fd >= 0)
		close(f->fd);
	(void) unlink(path);
	pg_atomic_fetch_sub_u64(&licdata_shared->journal_bytes, f->size);
	pfree(f);
	errno = err;
	journal_error(what, path);
}

static int
fsync_dir(const char *path)
{
	int			fd = open(path, O_RDONLY | PG_BINARY, 0);
	int			rc;
	int			save;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	save = errno;
	close(fd);
	errno = save;
	return rc;
}

static JournalFile *
journal_new_file(size_t need)
{
	JournalFile *f = MemoryContextAllocZero(TopMemoryContext, sizeof(JournalFile));
	JournalFileHeader *h;
	uint64		seq = pg_atomic_fetch_add_u64(&licdata_shared->journal_file_seq, 1);
	int			rc;

	f->size = Max((size_t) JOURNAL_FILE_SIZE, TYPEALIGN(BLCKSZ, need + sizeof(JournalFileHeader)));

	/* Back-pressure: the journal's disk is bounded. */
	{
		int64		now = (int64) pg_atomic_add_fetch_u64(&licdata_shared->journal_bytes, f->size) +
			(int64) pg_atomic_read_u64(&licdata_shared->journal_base);
		int64		max = (int64) licdata_max_journal_size_kb * 1024;

		if (licdata_max_journal_size_kb > 0 && now > max)
		{
			pg_atomic_fetch_sub_u64(&licdata_shared->journal_bytes, f->size);
			pfree(f);
			ereport(ERROR,
					(errcode(ERRCODE_LD_METERING_FAILED),
					 errmsg("could not record metering, so the query is refused"),
					 errdetail("The metering journal holds %llu kB of records not yet moved into the tables; licdata.max_journal_size is %d kB.",
							   (unsigned long long) (Max(now - (int64) f->size, 0) / 1024), licdata_max_journal_size_kb),
					 errhint("Retry when the background worker has caught up (see licdata.journal_status), or ask the operator to raise licdata.max_journal_size.")));
		}
	}
	snprintf(f->path, sizeof(f->path), "%s/%016llx-%08x-%08llx.jnl",
			 licdata_journal_dir(), (unsigned long long) licdata_shared->incarnation,
			 (unsigned int) MyProcPid, (unsigned long long) seq);
	(void) MakePGDirectory(LICDATA_DIR);
	(void) MakePGDirectory(licdata_journal_dir());
	f->fd = open(f->path, O_RDWR | O_CREAT | O_EXCL | PG_BINARY, S_IRUSR | S_IWUSR);
	if (f->fd < 0)
	{
		int			save = errno;
		char		path[MAXPGPATH];

		strlcpy(path, f->path, sizeof(path));
		pg_atomic_fetch_sub_u64(&licdata_shared->journal_bytes, f->size);
		pfree(f);
		errno = save;
		journal_error("create", path);
	}
	rc = posix_fallocate(f->fd, 0, f->size);
	if (rc != 0)
		new_file_failed(f, "allocate space for", rc);
	f->base = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (f->base == MAP_FAILED)
	{
		f->base = NULL;
		new_file_failed(f, "map", errno);
	}
	h = (JournalFileHeader *) f->base;
	h->magic = JF_MAGIC;
	h->version = JF_VERSION;
	h->incarnation = licdata_shared->incarnation;
	h->pid = MyProcPid;
	h->created_at = GetCurrentTimestamp();
	h->closed = 0;
	h->head = 0;
	h->tail = 0;
	h->ring_size = f->size - sizeof(JournalFileHeader);
	h->node_id = licdata_node_id;	/* whose file (journal.h, "Whose files") */
	if (licdata_journal_sync)
	{
		if (fsync(f->fd) != 0)
			new_file_failed(f, "sync", errno);
		if (fsync_dir(licdata_journal_dir()) != 0)
			new_file_failed(f, "sync the directory of", errno);
	}
	if (!exit_registered)
	{
		on_proc_exit(journal_exit, (Datum) 0);
		exit_registered = true;
	}
	return f;
}

/* ---- journal_sync = on: durability before output ---- */

static JournalFile *file_of(JournalRecord *rec);
static JournalFile *file_of_ptr(const char *ptr);

static void
mark_dirty(JournalFile *f)
{
	f->dirty = true;
	sync_pending = true;
}

/*
 * Void every record in 'fresh' the flusher has not moved: no byte of
 * their statements' output has left the server (see sync_failed).
 */
static void
void_fresh(void)
{
	for (int i = 0; i < nfresh; i++)
	{
		JournalRecord *rec = fresh[i].rec;
		JournalFile *f = file_of(rec);

		if (f == NULL || rec->magic != JR_MAGIC || rec->lpos != fresh[i].lpos)
			continue;
		if (((JournalFileHeader *) f->base)->tail > fresh[i].lpos)
			continue;			/* moved and committed already */
		pg_write_barrier();
		rec->state = JR_VOID;
	}
	nfresh = 0;
	comm_poisoned = true;
	ClientConnectionLost = 1;
	InterruptPending = 1;
}

/*
 * A sync failed: no record in 'fresh' has had a byte of output leave the
 * server, so each one that the flusher has not yet moved (the file's tail
 * is not past it) becomes void -- never billed -- and the connection is
 * closed without sending what is buffered: the statements' results never
 * reach the client.  A record that an earlier sync covered stays as it is:
 * its statement's output may have left, so it is billed (as cancelled if
 * it is still open when the backend exits).  Called inside pq_flush, maybe
 * while an error is being reported: it does not raise.
 */
static void
sync_failed(const char *path, int err)
{
	void_fresh();
	errno = err;
	ereport(WARNING,
			(errcode(ERRCODE_LD_METERING_FAILED),
			 errmsg("could not sync the metering journal file \"%s\": %m", path),
			 errdetail("The records not yet durable are void and their results are not sent; the connection is closed.")));
}

/* The same when writing or flushing their WAL record failed. */
static void
wal_failed(const char *msg)
{
	void_fresh();
	ereport(WARNING,
			(errcode(ERRCODE_LD_METERING_FAILED),
			 errmsg("could not make the metering journal's records durable in the WAL: %s", msg),
			 errdetail("The records not yet durable are void and their results are not sent; the connection is closed.")));
}

/* ---- journal_sync = on: what a sync must cover ---- */

static bool
item_changed(const TrackedItem *t)
{
	const JournalRecord *rec = (const JournalRecord *) t->ptr;

	if (!t->logged)
		return true;
	if (t->pad)
		return false;
	return rec->state != t->state || rec->rows != t->rows ||
		rec->nested_rows != t->nested_rows ||
		rec->rows_aggregated != t->rows_aggregated || rec->nuses != t->nuses;
}

static void
item_mark_logged(TrackedItem *t)
{
	const JournalRecord *rec = (const JournalRecord *) t->ptr;

	t->logged = true;
	if (t->pad)
		return;
	t->state = rec->state;
	t->rows = rec->rows;
	t->nested_rows = rec->nested_rows;
	t->rows_aggregated = rec->rows_aggregated;
	t->nuses = rec->nuses;
}

/*
 * Is the item still what it was (the flusher has not moved it, so its
 * bytes were not reused)?
 */
static bool
item_valid(const TrackedItem *t, uint64 tail)
{
	const JournalRecord *rec = (const JournalRecord *) t->ptr;

	if (t->lpos < tail)
		return false;
	if (t->pad)
		return ((const uint32 *) t->ptr)[0] == JR_PAD_MAGIC;
	return rec->magic == JR_MAGIC && rec->lpos == t->lpos && rec->state != JR_WRITING;
}

/* Keep what a later sync must still log: changed items and open records. */
static void
track_compact(void)
{
	int			n = 0;

	for (int i = 0; i < ntracked; i++)
	{
		TrackedItem *t = &tracked[i];
		JournalFile *f = file_of_ptr(t->ptr);

		if (f == NULL || !item_valid(t, ((JournalFileHeader *) f->base)->tail))
			continue;
		if (!item_changed(t) && (t->pad || t->state != JR_OPEN))
			continue;
		tracked[n++] = *t;
	}
	ntracked = n;
}

/* A file's mapping goes (file_mark_closed): forget its items. */
static void
track_forget_file(JournalFile *f)
{
	int			n = 0;

	for (int i = 0; i < ntracked; i++)
		if (!(tracked[i].ptr >= f->base && tracked[i].ptr < f->base + f->size))
			tracked[n++] = tracked[i];
	ntracked = n;
}

/* The file synced (fdatasync): its items are durable as they are. */
static void
track_file_synced(JournalFile *f)
{
	for (int i = 0; i < ntracked; i++)
		if (tracked[i].ptr >= f->base && tracked[i].ptr < f->base + f->size)
			item_mark_logged(&tracked[i]);
#if PG_VERSION_NUM >= 150000
	f->wal_unsynced = InvalidXLogRecPtr;
#endif
}

/*
 * Sync through the WAL now?  PostgreSQL 15 on, a primary (a standby cannot
 * write WAL), this node's identity known (replay restores only records of
 * its own node), and a moment when WAL may be written: not while an error
 * or notice is being reported (the send path flushes then, maybe between
 * another XLogBeginInsert and its XLogInsert), not in a critical section,
 * not at process exit (shared memory is gone by then).  Otherwise, and
 * when an item could not be tracked, the files are fdatasynced.
 */
static bool
wal_route(void)
{
#if PG_VERSION_NUM >= 150000
	return licdata_journal_sync_method == JOURNAL_SYNC_WAL && licdata_journal_wal_ready &&
		licdata_node_id != 0 && !track_lost && !proc_exit_inprogress &&
		CritSectionCount == 0 && CurrentMemoryContext != ErrorContext &&
		!RecoveryInProgress() && XLogInsertAllowed();
#else
	return false;
#endif
}

#if PG_VERSION_NUM >= 150000
/*
 * One WAL record with the images of the file's changed items (journal_wal.h).
 * Returns its end, or 0 when it had none.
 */
static XLogRecPtr
wal_log_file(JournalFile *f)
{
	JournalFileHeader *h = (JournalFileHeader *) f->base;
	uint64		tail = h->tail;
	Size		need = sizeof(xl_licdata_journal);
	Size		off;
	uint32		n = 0;
	xl_licdata_journal *xl;
	const char *name = strrchr(f->path, '/');
	XLogRecPtr	lsn;

	pg_read_barrier();
	for (int i = 0; i < ntracked; i++)
	{
		TrackedItem *t = &tracked[i];

		if (!(t->ptr >= f->base && t->ptr < f->base + f->size) ||
			!item_valid(t, tail) || !item_changed(t))
			continue;
		need += sizeof(xl_licdata_journal_item) +
			(t->pad ? 2 * sizeof(uint32) : ((JournalRecord *) t->ptr)->length);
		n++;
	}
	if (n == 0)
		return InvalidXLogRecPtr;
	if (need > wal_buf_size)
	{
		Size		size = Max(need, 16384);

		if (wal_buf)
			pfree(wal_buf);
		wal_buf = NULL;
		wal_buf = MemoryContextAlloc(TopMemoryContext, size);
		wal_buf_size = size;
	}
	xl = (xl_licdata_journal *) wal_buf;
	memset(xl, 0, sizeof(*xl));
	xl->node_id = licdata_node_id;
	xl->ring_size = h->ring_size;
	xl->tail_seen = tail;
	xl->nitems = n;
	strlcpy(xl->file, name ? name + 1 : f->path, sizeof(xl->file));
	off = sizeof(*xl);
	for (int i = 0; i < ntracked; i++)
	{
		TrackedItem *t = &tracked[i];
		xl_licdata_journal_item it;

		if (!(t->ptr >= f->base && t->ptr < f->base + f->size) ||
			!item_valid(t, tail) || !item_changed(t))
			continue;
		it.lpos = t->lpos;
		if (t->pad)
		{
			it.nbytes = 2 * sizeof(uint32);
			it.extent = t->extent;
		}
		else
			it.nbytes = it.extent = ((JournalRecord *) t->ptr)->length;
		memcpy(wal_buf + off, &it, sizeof(it));
		off += sizeof(it);
		memcpy(wal_buf + off, t->ptr, it.nbytes);
		off += it.nbytes;
	}
	Assert(off == need);
	XLogBeginInsert();
	XLogRegisterData(wal_buf, (int) off);
	lsn = XLogInsert(LICDATA_RMGR_ID, XLOG_LICDATA_JOURNAL);
	for (int i = 0; i < ntracked; i++)
	{
		TrackedItem *t = &tracked[i];

		if ((t->ptr >= f->base && t->ptr < f->base + f->size) &&
			item_valid(t, tail) && item_changed(t))
			item_mark_logged(&tracked[i]);
	}
	if (f->wal_unsynced == InvalidXLogRecPtr)
		f->wal_unsynced = lsn;
	return lsn;
}

/* Log the changed items of every file (not flushed: see journal_sync_wal). */
static void
wal_log_all(void)
{
	ListCell   *lc;
	XLogRecPtr	lsn;

	if (cur && (lsn = wal_log_file(cur)) != InvalidXLogRecPtr)
		wal_inserted = Max(wal_inserted, lsn);
	foreach(lc, retired)
	{
		JournalFile *f = lfirst(lc);

		if (f->base && (lsn = wal_log_file(f)) != InvalidXLogRecPtr)
			wal_inserted = Max(wal_inserted, lsn);
	}
	track_compact();
}

/*
 * Log (and with 'flush', flush the WAL up to) the images.  An error is
 * caught: the fresh records are void and the connection closes
 * (wal_failed); false then.
 */
static bool
wal_log_guarded(bool flush)
{
	MemoryContext mcxt = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		wal_log_all();
		if (flush && wal_inserted != InvalidXLogRecPtr)
			XLogFlush(wal_inserted);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(mcxt);
		edata = CopyErrorData();
		FlushErrorState();
		XLogResetInsertion();
		wal_failed(edata->message ? edata->message : "error");
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	if (ok && flush)
		wal_inserted = InvalidXLogRecPtr;
	return ok;
}

/*
 * The sync through the WAL: log the images, flush the WAL (concurrent
 * backends share the flush, as commits do).  A file whose images reached
 * the WAL before the latest checkpoint began is fdatasynced too: replay
 * starts at that checkpoint, so its records must be in the file itself
 * by then (once per checkpoint and file).
 */
static bool
wal_file_synced(JournalFile *f, XLogRecPtr redo)
{
	if (f == NULL || f->base == NULL)
		return true;
	f->dirty = false;
	if (f->wal_unsynced != InvalidXLogRecPtr && redo >= f->wal_unsynced)
	{
		if (fdatasync(f->fd) != 0)
		{
			int			save = errno;

			sync_failed(f->path, save);
			errno = save;
			return false;
		}
		f->wal_unsynced = InvalidXLogRecPtr;
	}
	return true;
}

static bool
journal_sync_wal(void)
{
	ListCell   *lc;
	XLogRecPtr	redo;

	if (!wal_log_guarded(true))
		return false;
	redo = GetRedoRecPtr();
	if (!wal_file_synced(cur, redo))
		return false;
	foreach(lc, retired)
	{
		if (!wal_file_synced((JournalFile *) lfirst(lc), redo))
			return false;
	}
	return true;
}
#endif

/* Track a record (or pad) whose image the next sync must cover. */
static void
track_add(char *ptr, uint64 lpos, bool pad, uint32 extent)
{
	TrackedItem *t;

	for (int i = 0; i < ntracked; i++)
		if (tracked[i].ptr == ptr && tracked[i].lpos == lpos)
			return;
	/* a record closing that was dropped while open */
	if (!pad && evicted_open > 0 && ((JournalRecord *) ptr)->state != JR_OPEN)
		evicted_open--;
	if (ntracked == MAX_TRACKED)
		track_compact();
#if PG_VERSION_NUM >= 150000
	/* still full: log them now, flushed with the next sync */
	if (ntracked == MAX_TRACKED && wal_route())
		(void) wal_log_guarded(false);
#endif
	if (ntracked == MAX_TRACKED)
	{
		/* cannot keep track: the next sync fdatasyncs the files */
		track_lost = true;
		if (!tracked[0].pad && ((JournalRecord *) tracked[0].ptr)->state == JR_OPEN)
			evicted_open++;
		memmove(&tracked[0], &tracked[1], sizeof(TrackedItem) * (MAX_TRACKED - 1));
		ntracked--;
	}
	t = &tracked[ntracked++];
	memset(t, 0, sizeof(*t));
	t->ptr = ptr;
	t->lpos = lpos;
	t->pad = pad;
	t->extent = extent;
}

/*
 * Make every record this backend appended, closed or voided since its last
 * sync durable: through the WAL (wal_route), else by fdatasync of each
 * file it dirtied since -- one call per file (usually one), covering the
 * header page (head) and every record appended, closed or voided since.
 * On Linux fdatasync writes the pages dirtied through the MAP_SHARED
 * mapping like any other dirty page cache page of the file.  False (after
 * sync_failed or wal_failed) when it failed.
 */
static bool
journal_sync_now(void)
{
	ListCell   *lc;
	int			n = sync_records;
	bool		wal = wal_route();

	if (!sync_pending)
	{
		nfresh = 0;
		return true;
	}
#if PG_VERSION_NUM >= 150000
	if (wal)
	{
		if (!journal_sync_wal())
			return false;
	}
	else
#endif
	{
		if (cur && cur->dirty)
		{
			if (fdatasync(cur->fd) != 0)
			{
				int			save = errno;

				sync_failed(cur->path, save);
				errno = save;
				return false;
			}
			cur->dirty = false;
			track_file_synced(cur);
		}
		foreach(lc, retired)
		{
			JournalFile *f = lfirst(lc);

			if (f->base && f->dirty)
			{
				if (fdatasync(f->fd) != 0)
				{
					int			save = errno;

					sync_failed(f->path, save);
					errno = save;
					return false;
				}
				f->dirty = false;
				track_file_synced(f);
			}
		}
		/* until the open records it could not track close, fdatasync */
		track_lost = (evicted_open > 0);
		track_compact();
	}
	sync_pending = false;
	nfresh = 0;
	sync_records = 0;
	if (n > 1)
		ereport(DEBUG1,
				(errmsg_internal("licdata: one journal sync made %d new records durable (%s)",
								 n, wal ? "a WAL flush" : "fdatasync"),
				 errhidestmt(true)));
	return true;
}

/*
 * Before output may leave the server: sync what is dirty.  EOF when the
 * connection is poisoned (a sync failed): nothing more is sent.
 */
static int
journal_before_send(void)
{
	if (comm_poisoned)
		return EOF;
	if (sync_pending && !journal_sync_now())
		return EOF;
	return 0;
}

/*
 * PostgreSQL's own send path, wrapped (PqCommMethods).  pq_flush sends the
 * buffer: sync first.  pq_putmessage copies into an 8 kB buffer and sends
 * it whenever it fills, in the middle of a statement (a large result):
 * sync first when the message could fill it, counting conservatively --
 * every byte put since the last flush we saw is assumed still buffered.
 */
static void
journal_comm_reset(void)
{
	real_comm->comm_reset();
}

static int
journal_flush(void)
{
	int			rc;

	if (journal_before_send() != 0)
		return EOF;
	rc = real_comm->flush();
	if (rc == 0)
		comm_buffered = 0;
	return rc;
}

static int
journal_flush_if_writable(void)
{
	int			rc;

	if (journal_before_send() != 0)
		return EOF;
	rc = real_comm->flush_if_writable();
	if (rc == 0 && !real_comm->is_send_pending())
		comm_buffered = 0;
	return rc;
}

static bool
journal_is_send_pending(void)
{
	return real_comm->is_send_pending();
}

static int
journal_putmessage(char msgtype, const char *s, size_t len)
{
	if (comm_poisoned)
		return EOF;
	comm_buffered += len + 5;
	if (comm_buffered >= PQ_SEND_BUFFER && journal_before_send() != 0)
		return EOF;
	return real_comm->putmessage(msgtype, s, len);
}

static void
journal_putmessage_noblock(char msgtype, const char *s, size_t len)
{
	if (comm_poisoned)
		return;
	comm_buffered += len + 5;
	if (comm_buffered >= PQ_SEND_BUFFER && journal_before_send() != 0)
		return;
	real_comm->putmessage_noblock(msgtype, s, len);
}

static const PQcommMethods journal_comm = {
	journal_comm_reset,
	journal_flush,
	journal_flush_if_writable,
	journal_is_send_pending,
	journal_putmessage,
	journal_putmessage_noblock
};

/*
 * Output goes to a client through our wrapper (installed once per backend:
 * another module may wrap it in turn, and then calls it).
 */
static bool comm_wrapped = false;

static bool
comm_installed(void)
{
	return comm_wrapped;
}

/*
 * Wrap the send path of a backend that talks to a client (pq_init set
 * PqCommMethods after our _PG_init ran in the postmaster, so this is done
 * on first use).  What the buffer holds then is unknown: comm_buffered
 * starts full, so the first message syncs.
 */
static void
install_comm(void)
{
	if (comm_wrapped || whereToSendOutput != DestRemote || PqCommMethods == NULL)
		return;
	real_comm = PqCommMethods;
	comm_buffered = PQ_SEND_BUFFER;
	PqCommMethods = &journal_comm;
	comm_wrapped = true;
}

static JournalFile *
file_of_ptr(const char *ptr)
{
	ListCell   *lc;

	if (cur && cur->base && ptr >= cur->base && ptr < cur->base + cur->size)
		return cur;
	foreach(lc, retired)
	{
		JournalFile *f = lfirst(lc);

		if (f->base && ptr >= f->base && ptr < f->base + f->size)
			return f;
	}
	return NULL;
}

static JournalFile *
file_of(JournalRecord *rec)
{
	return file_of_ptr((const char *) rec);
}

/*
 * Append a record: hdr's fields, then the statement text.  Returns the
 * record in the mapping, state JR_OPEN.  Raises LD009 when it cannot.
 */
JournalRecord *
licdata_journal_append(const JournalRecord *hdr, const JournalUse *uses, uint32 nuses,
					   uint32 capacity, const char *stmt, uint32 stmt_len)
{
	size_t		len = MAXALIGN(MAXALIGN(offsetof(JournalRecord, statement) + stmt_len) +
							   sizeof(JournalUse) * capacity);
	JournalFileHeader *h;
	JournalRecord *rec;

	for (;;)
	{
		uint64		L;
		uint64		phys;
		uint64		ring;

		if (cur == NULL)
			cur = journal_new_file(len);
		h = (JournalFileHeader *) cur->base;
		ring = h->ring_size;
		L = h->head;
		phys = L % ring;
		if (len <= ring)
		{
			uint64		tail = h->tail;
			uint64		pad = (phys + len > ring) ? ring - phys : 0;

			pg_read_barrier();
			/* room, once what the worker has moved may be overwritten? */
			if (L + pad + len - tail <= ring)
			{
				if (pad > 0)
				{
					uint32	   *marker = (uint32 *) (JF_RING(cur->base) + phys);

					marker[0] = JR_PAD_MAGIC;
					marker[1] = (uint32) pad;
					pg_write_barrier();
					h->head = L + pad;
					if (licdata_journal_sync)
					{
						mark_dirty(cur);
						track_add((char *) marker, L, true, (uint32) pad);
					}
					L += pad;
					phys = 0;
				}
				rec = (JournalRecord *) (JF_RING(cur->base) + phys);
				rec->lpos = L;
				break;
			}
		}
		/* full (the worker is behind, or a statement keeps a record open) */
		cur->full = true;
		if (cur->open_records == 0)
			file_mark_closed(cur);
		else
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			retired = lappend(retired, cur);
			MemoryContextSwitchTo(old);
		}
		cur = NULL;
	}
	{
		uint64		lpos = rec->lpos;

		memcpy(rec, hdr, offsetof(JournalRecord, statement));
		rec->lpos = lpos;
	}
	memcpy(rec->statement, stmt, stmt_len);
	rec->magic = JR_MAGIC;
	rec->length = len;
	rec->statement_len = stmt_len;
	rec->uses_capacity = capacity;
	rec->nuses = nuses;
	memset(JR_USES(rec), 0, sizeof(JournalUse) * capacity);
	memcpy(JR_USES(rec), uses, sizeof(JournalUse) * nuses);
	rec->state = JR_WRITING;
	rec->crc = licdata_journal_crc(rec);
	pg_write_barrier();
	rec->state = JR_OPEN;
	pg_write_barrier();
	h->head = rec->lpos + len;
	cur->open_records++;

	/*
	 * More than half the ring not moved yet: wake the worker now rather than
	 * at its next interval, so that under a sustained load the ring is
	 * reused instead of a new file being made (fresh pages of a new file cost
	 * a page fault each; reused ones are still mapped).  At most once per
	 * eighth of a ring, so a busy backend sets the latch rarely.  Not with
	 * a flush interval of a minute or more: that holds records on purpose
	 * (benchmarks and crash tests build a backlog that way).
	 */
	if (rec->lpos + len >= cur->wake_at && rec->lpos + len - h->tail > h->ring_size / 2 &&
		licdata_flush_interval_ms < 60 * 1000)
	{
		Latch	   *worker = licdata_shared->worker_latch;

		if (worker)
			SetLatch(worker);
		cur->wake_at = rec->lpos + len + h->ring_size / 8;
	}
	if (licdata_journal_sync)
	{
		/*
		 * Not synced here: before any byte of output leaves the server
		 * (journal_before_send), or at the end of a statement of a session
		 * without a client.  Too many fresh records (cursors, regrown
		 * records): sync now rather than track more.
		 */
		if (!comm_installed())
			install_comm();
		mark_dirty(cur);
		track_add((char *) rec, rec->lpos, false, 0);
		sync_records++;
		if (nfresh < MAX_FRESH)
		{
			fresh[nfresh].rec = rec;
			fresh[nfresh].lpos = rec->lpos;
			nfresh++;
		}
		else if (!journal_sync_now())
		{
			/* not durable: the statement is refused, so it is no record */
			pg_write_barrier();
			rec->state = JR_VOID;
			cur->open_records--;
			journal_error("sync", cur->path);
		}
	}
	return rec;
}

/*
 * Make this backend's open records durable now (the caller is about to let
 * something out that depends on them).  Raises LD009 when it cannot: the
 * fresh records are void then and the connection will close (see
 * sync_failed).
 */
void
licdata_journal_sync_record(JournalRecord *rec)
{
	JournalFile *f = file_of(rec);

	if (f != NULL && f->dirty && !journal_sync_now())
		journal_error("sync", f->path);
}

/* Mark a record final (its mutable fields set by the caller). */
/* A record is final (closed) or abandoned (void): its file may retire. */
static void
record_done(JournalRecord *rec, uint32 state)
{
	JournalFile *f = file_of(rec);

	pg_write_barrier();
	/* a record a failed sync made void stays void: its output never left */
	if (rec->state != JR_VOID)
		rec->state = state;
	if (f == NULL)
		return;
	if (licdata_journal_sync)
	{
		mark_dirty(f);
		track_add((char *) rec, rec->lpos, false, 0);

		/*
		 * A closed record is made durable before the statement's result
		 * leaves: by journal_before_send at the flush that sends it, with
		 * the records of every statement whose output goes in that flush.
		 * Without a client (a background worker, single-user mode) nothing
		 * flushes: sync now.  Raising here would make the caller close the
		 * record twice; a failure voids it instead (sync_failed).
		 */
		if (state == JR_CLOSED && !comm_installed())
			(void) journal_sync_now();
	}
	f->open_records--;
	if (f->full && f->open_records == 0)
	{
		file_mark_closed(f);	/* while file_of() still finds it */
		retired = list_delete_ptr(retired, f);
	}
}

/* Mark a record final (its mutable fields set by the caller). */
void
licdata_journal_close_record(JournalRecord *rec)
{
	record_done(rec, JR_CLOSED);
}

/*
 * An open record whose uses array is full: write it again with room for
 * 'capacity' uses (same identity, counts and uses) and void the old one.
 * Returns the new record, which replaces the old one for its statement.
 */
JournalRecord *
licdata_journal_regrow(JournalRecord *old, uint32 capacity)
{
	JournalRecord *hdr = palloc(offsetof(JournalRecord, statement));
	JournalRecord *rec;

	memcpy(hdr, old, offsetof(JournalRecord, statement));
	rec = licdata_journal_append(hdr, JR_USES(old), old->nuses, capacity,
								 old->statement, old->statement_len);
	pfree(hdr);
	record_done(old, JR_VOID);
	return rec;
}
