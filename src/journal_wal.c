/*-------------------------------------------------------------------------
 *
 * journal_wal.c
 *	  licdata's custom WAL resource manager (PostgreSQL 15 on): journal
 *	  records made durable by riding PostgreSQL's WAL, and their replay.
 *
 * With licdata.journal_sync = on, a backend of a primary does not
 * fdatasync its journal file before its output leaves the server: it
 * writes the images of the records it appended or closed since its last
 * sync into one WAL record per file and flushes the WAL up to it
 * (XLogFlush), as a synchronous commit does -- so backends that make
 * records durable at the same moment share WAL flushes with each other and
 * with PostgreSQL's commits (journal.c, "Durability").  The journal file
 * itself is then written back by the kernel, or fdatasynced by the backend
 * once per checkpoint (see journal.c).
 *
 * Replay (rm_redo, in the startup process: crash recovery, a standby's
 * replay, archive recovery) writes an image back into its journal file
 * only when all of these hold, and otherwise writes nothing:
 *	- the WAL record's node identity is this data directory's
 *	  (licdata_node_id, nonzero).  A standby, a restored base backup or a
 *	  PITR copy has an identity of its own (replica.c): the primary's
 *	  records are not its to restore -- the primary keeps and moves them;
 *	- the journal file exists (the flusher removes a file only once every
 *	  record in it is moved and committed), and its header is a journal
 *	  header of the same ring size and node;
 *	- the record's logical position is at or after the file's tail, and
 *	  after the tail the writer saw (the flusher moved and committed
 *	  everything before those: the ring there may hold newer records);
 *	- the file does not already hold a later state of the same record (same
 *	  position and checksum): a final record (closed or void) is never
 *	  turned back into an open one, and an open one never gets lower
 *	  counts.  A record's states only go forward (journal.h), and bytes the
 *	  kernel wrote back or an fdatasync made durable may be later than the
 *	  WAL image replayed before them.
 * The file's head is raised to cover what was restored, and its tail to
 * the tail the writer saw.  Writing an image the file already holds
 * changes nothing, so replaying a record twice (a restart during
 * recovery) is harmless.  Nothing reads journal files during this replay:
 * the flusher starts once recovery is consistent, and a node replays its
 * own WAL only in crash recovery, which ends before that (a standby
 * replays records of another node, which it never writes).  Replay makes
 * what it wrote durable (fsync) at the end of recovery (rm_cleanup),
 * before the end-of-recovery checkpoint, and before closing a file it
 * keeps no longer open.
 *
 * Exactly once: a restored record is one that no committed flusher
 * transaction moved (it is at or after the tail), or one moved by a
 * transaction whose tail store did not reach the disk -- which the
 * flusher's duplicate probe finds by its journal reference, as after any
 * crash between a commit and a tail store (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"
#include "utils/guc.h"

#if PG_VERSION_NUM >= 150000
#include "access/xlog_internal.h"
#include "access/xlogreader.h"
#include "lib/stringinfo.h"
#include "storage/fd.h"
#endif

#include "licdata.h"
#include "journal.h"
#include "journal_wal.h"

bool		licdata_journal_wal_ready = false;
int			licdata_journal_sync_method = JOURNAL_SYNC_WAL;

static const struct config_enum_entry sync_methods[] = {
	{"wal", JOURNAL_SYNC_WAL, false},
	{"fdatasync", JOURNAL_SYNC_FDATASYNC, false},
	{NULL, 0, false}
};

static void
define_sync_method(void)
{
	DefineCustomEnumVariable("licdata.journal_sync_method",
							 "How licdata.journal_sync = on makes metering records durable.",
							 "wal: through PostgreSQL's WAL, whose flushes concurrent statements share (PostgreSQL 15 on, on a primary; a standby fdatasyncs). fdatasync: each backend syncs its own journal file.",
							 &licdata_journal_sync_method,
							 JOURNAL_SYNC_WAL,
							 sync_methods,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
}

#if PG_VERSION_NUM >= 150000

/* Files replay has written into, kept open until synced. */
#define REDO_FILES 16

typedef struct RedoFile
{
	char		name[XL_JOURNAL_NAME_LEN];
	int			fd;
	bool		written;
} RedoFile;

static RedoFile redo_files[REDO_FILES];
static int	n_redo_files = 0;
static uint64 n_restored = 0;
static uint64 n_present = 0;
static uint64 n_moved = 0;
static uint64 n_foreign = 0;

static void
redo_file_error(const char *what, const char *name)
{
	ereport(ERROR,
			(errcode_for_file_access(),
			 errmsg("could not %s journal file \"%s/%s\" while replaying WAL: %m",
					what, licdata_journal_dir(), name),
			 errdetail("Replay restores journal records made durable in the WAL into their files."),
			 errhint("Fix the file's permissions or the disk, then start the server again.")));
}

static void
redo_file_close(RedoFile *rf)
{
	if (rf->written && pg_fsync(rf->fd) != 0)
		redo_file_error("sync", rf->name);
	close(rf->fd);
	rf->fd = -1;
}

/* The file of that name, open for writing; -1 when it does not exist. */
static RedoFile *
redo_file_open(const char *name)
{
	char		path[MAXPGPATH];
	int			fd;
	RedoFile   *rf;

	for (int i = 0; i < n_redo_files; i++)
		if (strcmp(redo_files[i].name, name) == 0)
			return &redo_files[i];
	snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), name);
	fd = open(path, O_RDWR | PG_BINARY, 0);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return NULL;		/* removed: every record in it was moved */
		redo_file_error("open", name);
	}
	if (n_redo_files == REDO_FILES)
	{
		/* the oldest goes: synced first */
		redo_file_close(&redo_files[0]);
		memmove(&redo_files[0], &redo_files[1], sizeof(RedoFile) * (REDO_FILES - 1));
		n_redo_files--;
	}
	rf = &redo_files[n_redo_files++];
	strlcpy(rf->name, name, sizeof(rf->name));
	rf->fd = fd;
	rf->written = false;
	return rf;
}

static void
redo_pwrite(RedoFile *rf, const void *buf, size_t len, off_t off)
{
	if (pg_pwrite(rf->fd, buf, len, off) != (ssize_t) len)
	{
		if (errno == 0)
			errno = ENOSPC;
		redo_file_error("write", rf->name);
	}
	rf->written = true;
}

/*
 * Does the file already hold this record in a state at least as late as
 * the image (see the header comment)?
 */
static bool
disk_is_later(const JournalRecord *disk, const JournalRecord *img, uint32 n)
{
	if (n < offsetof(JournalRecord, statement) ||
		disk->magic != JR_MAGIC || disk->lpos != img->lpos ||
		disk->length != img->length || disk->crc != img->crc ||
		(uint64) offsetof(JournalRecord, statement) + disk->statement_len > n ||
		licdata_journal_crc(disk) != disk->crc)
		return false;
	if (img->state != JR_OPEN)
		return false;
	if (disk->state == JR_CLOSED || disk->state == JR_VOID)
		return true;
	return disk->state == JR_OPEN &&
		disk->rows >= img->rows && disk->nested_rows >= img->nested_rows &&
		disk->rows_aggregated >= img->rows_aggregated && disk->nuses >= img->nuses;
}

static bool
name_ok(const char *name)
{
	size_t		len = strnlen(name, XL_JOURNAL_NAME_LEN);

	return len > 4 && len < XL_JOURNAL_NAME_LEN && strchr(name, '/') == NULL &&
		name[0] != '.' && strcmp(name + len - 4, ".jnl") == 0;
}

static void
journal_redo(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	const char *data = XLogRecGetData(record);
	Size		len = XLogRecGetDataLen(record);
	xl_licdata_journal xl;
	JournalFileHeader h;
	RedoFile   *rf;
	Size		off;
	uint64		tail;
	uint64		head;
	char	   *disk = NULL;
	char	   *img = NULL;
	uint32		bufsize = 0;

	if (info != XLOG_LICDATA_JOURNAL)
		elog(PANIC, "licdata redo: unknown op code %u", info);
	if (len < sizeof(xl))
		elog(PANIC, "licdata redo: journal record too short (%zu bytes)", len);
	memcpy(&xl, data, sizeof(xl));

	/* another node's record (this is a standby or a restored copy) */
	if (xl.node_id == 0 || xl.node_id != licdata_node_id)
	{
		n_foreign += xl.nitems;
		return;
	}
	xl.file[XL_JOURNAL_NAME_LEN - 1] = '\0';
	if (!name_ok(xl.file))
	{
		ereport(WARNING,
				(errmsg("licdata redo: journal record names no journal file (\"%s\"); skipped", xl.file)));
		return;
	}
	rf = redo_file_open(xl.file);
	if (rf == NULL)
	{
		n_moved += xl.nitems;
		return;
	}
	if (pg_pread(rf->fd, &h, sizeof(h), 0) != (ssize_t) sizeof(h))
	{
		if (errno == 0)
			errno = EIO;
		redo_file_error("read", xl.file);
	}
	if (h.magic != JF_MAGIC || h.ring_size != xl.ring_size || h.ring_size == 0 ||
		(h.version >= 6 && h.node_id != 0 && h.node_id != xl.node_id))
	{
		ereport(WARNING,
				(errmsg("licdata redo: journal file \"%s\" does not match its WAL record; its records there are not restored",
						xl.file)));
		return;
	}
	tail = Max(h.tail, xl.tail_seen);
	head = h.head;
	off = sizeof(xl);
	for (uint32 i = 0; i < xl.nitems; i++)
	{
		xl_licdata_journal_item it;
		uint64		phys;

		if (off + sizeof(it) > len)
			elog(PANIC, "licdata redo: journal record truncated");
		memcpy(&it, data + off, sizeof(it));
		off += sizeof(it);
		if (off + it.nbytes > len)
			elog(PANIC, "licdata redo: journal record truncated");
		phys = it.lpos % xl.ring_size;
		if (it.lpos < tail)
		{
			n_moved++;
			off += it.nbytes;
			continue;
		}
		if (phys + it.nbytes > xl.ring_size || it.nbytes > it.extent)
			elog(PANIC, "licdata redo: journal record image out of its ring");
		if (it.nbytes > bufsize)
		{
			if (disk)
			{
				pfree(disk);
				pfree(img);
			}
			bufsize = it.nbytes;
			disk = palloc(bufsize);
			img = palloc(bufsize);
		}
		/* aligned copies (JournalRecord has 8-byte fields) */
		memcpy(img, data + off, it.nbytes);
		off += it.nbytes;
		if (pg_pread(rf->fd, disk, it.nbytes, sizeof(JournalFileHeader) + phys) != (ssize_t) it.nbytes)
			memset(disk, 0, it.nbytes);
		if (memcmp(disk, img, it.nbytes) == 0 ||
			(it.nbytes >= offsetof(JournalRecord, statement) &&
			 disk_is_later((JournalRecord *) disk, (JournalRecord *) img, it.nbytes)))
			n_present++;
		else
		{
			redo_pwrite(rf, img, it.nbytes, sizeof(JournalFileHeader) + phys);
			n_restored++;
		}
		head = Max(head, it.lpos + it.extent);
	}
	if (disk)
	{
		pfree(disk);
		pfree(img);
	}
	/* the head after the images, the tail where the writer saw it */
	if (head != h.head)
		redo_pwrite(rf, &head, sizeof(head), offsetof(JournalFileHeader, head));
	if (tail != h.tail)
		redo_pwrite(rf, &tail, sizeof(tail), offsetof(JournalFileHeader, tail));
}

static void
journal_desc(StringInfo buf, XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	const char *data = XLogRecGetData(record);
	Size		len = XLogRecGetDataLen(record);
	xl_licdata_journal xl;
	Size		off;

	if (info != XLOG_LICDATA_JOURNAL || len < sizeof(xl))
		return;
	memcpy(&xl, data, sizeof(xl));
	xl.file[XL_JOURNAL_NAME_LEN - 1] = '\0';
	appendStringInfo(buf, "node %016llx file %s tail %llu items %u:",
					 (unsigned long long) xl.node_id, xl.file,
					 (unsigned long long) xl.tail_seen, xl.nitems);
	off = sizeof(xl);
	for (uint32 i = 0; i < xl.nitems && off + sizeof(xl_licdata_journal_item) <= len; i++)
	{
		xl_licdata_journal_item it;

		memcpy(&it, data + off, sizeof(it));
		appendStringInfo(buf, " %llu+%u", (unsigned long long) it.lpos, it.nbytes);
		off += sizeof(it) + it.nbytes;
	}
}

static const char *
journal_identify(uint8 info)
{
	if ((info & ~XLR_INFO_MASK) == XLOG_LICDATA_JOURNAL)
		return "JOURNAL";
	return NULL;
}

static void
journal_redo_startup(void)
{
	n_redo_files = 0;
	n_restored = n_present = n_moved = n_foreign = 0;
}

/* End of recovery: what replay wrote is made durable before anything else. */
static void
journal_redo_cleanup(void)
{
	for (int i = 0; i < n_redo_files; i++)
		redo_file_close(&redo_files[i]);
	n_redo_files = 0;
	if (n_restored + n_present + n_moved + n_foreign > 0)
		ereport(LOG,
				(errmsg("licdata: WAL replay restored %llu journal records into their files (%llu there already, %llu moved before, %llu of another node, not restored)",
						(unsigned long long) n_restored, (unsigned long long) n_present,
						(unsigned long long) n_moved, (unsigned long long) n_foreign)));
}

static RmgrData licdata_rmgr = {
	.rm_name = LICDATA_RMGR_NAME,
	.rm_redo = journal_redo,
	.rm_desc = journal_desc,
	.rm_identify = journal_identify,
	.rm_startup = journal_redo_startup,
	.rm_cleanup = journal_redo_cleanup,
	.rm_mask = NULL,
	.rm_decode = NULL
};

/* _PG_init (shared_preload_libraries): register the resource manager. */
void
licdata_journal_wal_init(void)
{
	define_sync_method();
	RegisterCustomRmgr(LICDATA_RMGR_ID, &licdata_rmgr);
	licdata_journal_wal_ready = true;
}

#else							/* PostgreSQL < 15: no custom WAL resource managers */

void
licdata_journal_wal_init(void)
{
	/* journal_sync = on fdatasyncs the journal files (journal.c) */
	define_sync_method();
}

#endif
