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
 * licdata.journal_sync = on, each record is msync'ed before the statement
 * returns, so it also survives power loss.
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
 * worker may delete the file once it has moved all its records.
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
 * A record whose durability cannot be ensured (msync failed with
 * journal_sync = on) is marked JR_VOID and its statement refused: the
 * worker skips it, so a refused statement is never billed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "errcodes.h"
#include "licdata.h"
#include "journal.h"
#include "shmem.h"

typedef struct JournalFile
{
	char		path[MAXPGPATH];
	int			fd;
	char	   *base;
	size_t		size;
	bool		full;			/* no more records will be added */
	int			open_records;
} JournalFile;

static JournalFile *cur = NULL;
static List *retired = NIL;		/* full files with records still open; in
								 * TopMemoryContext, as it outlives statements */
static bool exit_registered = false;

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

static void
file_mark_closed(JournalFile *f)
{
	JournalFileHeader *h = (JournalFileHeader *) f->base;

	pg_write_barrier();
	h->closed = 1;
	if (licdata_journal_sync)
		(void) msync(f->base, BLCKSZ, MS_SYNC);
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

static JournalFile *
file_of(JournalRecord *rec)
{
	ListCell   *lc;

	if (cur && (char *) rec >= cur->base && (char *) rec < cur->base + cur->size)
		return cur;
	foreach(lc, retired)
	{
		JournalFile *f = lfirst(lc);

		if (f->base && (char *) rec >= f->base && (char *) rec < f->base + f->size)
			return f;
	}
	return NULL;
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
	if (licdata_journal_sync)
	{
		PG_TRY();
		{
			licdata_journal_sync_record(rec);
		}
		PG_CATCH();
		{
			/* not durable: the statement is refused, so it is no record */
			pg_write_barrier();
			rec->state = JR_VOID;
			cur->open_records--;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return rec;
}

void
licdata_journal_sync_record(JournalRecord *rec)
{
	JournalFile *f = file_of(rec);
	uintptr_t	start;
	uintptr_t	end;
	long		page = sysconf(_SC_PAGESIZE);

	if (f == NULL)
		return;
	/* the record's own pages, then the header page (its 'used' finds it) */
	start = TYPEALIGN_DOWN(page, (uintptr_t) rec);
	end = (uintptr_t) rec + rec->length;
	if (msync((void *) start, end - start, MS_SYNC) != 0)
		journal_error("sync", f->path);
	if (start != (uintptr_t) f->base &&
		msync((void *) f->base, page, MS_SYNC) != 0)
		journal_error("sync", f->path);
}

/* Mark a record final (its mutable fields set by the caller). */
/* A record is final (closed) or abandoned (void): its file may retire. */
static void
record_done(JournalRecord *rec, uint32 state)
{
	JournalFile *f = file_of(rec);

	pg_write_barrier();
	rec->state = state;
	if (f == NULL)
		return;
	if (licdata_journal_sync && state == JR_CLOSED)
	{
		uintptr_t	page = (uintptr_t) sysconf(_SC_PAGESIZE);
		uintptr_t	start = TYPEALIGN_DOWN(page, (uintptr_t) rec);

		/*
		 * The statement has run and its rows are sent: too late to refuse
		 * it, and raising here would make the caller close it twice.
		 */
		if (msync((void *) start, (uintptr_t) rec + rec->length - start, MS_SYNC) != 0)
			ereport(WARNING,
					(errcode(ERRCODE_LD_METERING_FAILED),
					 errmsg("could not sync the metering journal file \"%s\": %m", f->path),
					 errdetail("The record is written but may not survive a power loss.")));
	}
	f->open_records--;
	if (f->full && f->open_records == 0)
	{
		retired = list_delete_ptr(retired, f);
		file_mark_closed(f);
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
