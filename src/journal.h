/*-------------------------------------------------------------------------
 *
 * journal.h
 *	  The metering journal's on-disk format (journal.c writes it, worker.c
 *	  reads it) and the protocol between a backend and the flusher.
 *
 * Files: pg_licdata/journal/<incarnation>-<pid>-<seq>.jnl, one writer
 * (the backend that created it), one reader (the background worker).  A
 * file is a JournalFileHeader, then a ring of records: the record at logical
 * position L lies at ring offset L % ring_size and never across the ring's
 * end (a JR_PAD marker fills the end of the ring first).
 *
 * Protocol (the only shared state is the file's page cache: no lock is
 * taken, so every rule below is about the order of stores and loads).
 *
 *	Backend appends a record (licdata_journal_append):
 *	  1. reads h->tail (written by the worker), then pg_read_barrier(): the
 *		 ring before 'tail' may be overwritten, nothing at or after it;
 *	  2. if a pad is needed: writes the JR_PAD marker, pg_write_barrier(),
 *		 h->head += pad;
 *	  3. writes every field of the record with state = JR_WRITING, and the
 *		 CRC over the immutable part (from 'immutable' to the end of the
 *		 statement text);
 *	  4. pg_write_barrier(); state = JR_OPEN;
 *	  5. pg_write_barrier(); h->head = L + length.
 *	While the statement runs, only the backend stores into the record's
 *	mutable part (rows, nested_rows, rows_aggregated, nuses and the uses
 *	array: a new use's slot is written before nuses grows, with a
 *	pg_write_barrier() between).  It closes the record by writing
 *	ended_at, duration_ms, outcome, sqlstate, denied, the final counts,
 *	then pg_write_barrier(), then state = JR_CLOSED (or JR_VOID for a
 *	record that is not one).  After that nothing in the record changes,
 *	except that a failed journal_sync may turn a closed record no sync
 *	has covered into JR_VOID (see Durability below).
 *	On normal exit the backend sets h->closed = 1 after a pg_write_barrier().
 *
 *	Worker reads (worker.c) with pread of the same page cache:
 *	  1. loads h->head, then pg_read_barrier(): every record below 'head' is
 *		 whole (its state is at least JR_OPEN, or it is a pad);
 *	  2. per record loads 'state', then pg_read_barrier(), then the rest: a
 *		 JR_CLOSED record is final and is moved; a JR_OPEN record of a live
 *		 file is remembered and looked at again next pass (its counts may
 *		 still change); in a file whose backend died (older incarnation) or
 *		 exited (h->closed), an open record is final as it is (cancelled);
 *	  3. only after the transaction that inserted a record's rows has
 *		 committed does it store h->tail (pwrite, fdatasync with
 *		 journal_sync = on): the lowest logical position it still needs
 *		 (the oldest record it passed while open, or the end of what it
 *		 moved).
 *	Byte reuse: the backend may overwrite ring bytes below h->tail and no
 *	others; the worker never writes anything but h->tail; a file is
 *	unlinked by the worker only when final and every record is moved and
 *	committed.  A crash between the commit and the tail store replays
 *	records that are already in the tables: their journal reference
 *	(file@position) is found by the flusher's duplicate probe and they are
 *	skipped.
 *
 * Durability (licdata.journal_sync = on; journal.c, "Durability"): the
 * backend makes its records durable -- through the WAL (journal_wal.c:
 * replay writes the images back into the file, never behind the tail) or
 * by fdatasync of its file -- before any byte of output leaves the server,
 * so a record is durable before its statement's first result bytes (open,
 * with the rows counted so far) and, closed, before the rest of its result
 * and ReadyForQuery.  The flusher may read and move a record before it is
 * durable (as with journal_sync = off).  A record no sync has covered
 * when a sync fails becomes JR_VOID (its statement's output never leaves:
 * the connection is closed) unless the worker's tail is already past it.
 *
 * A record's identity is "<file name>@<logical position>": unique forever
 * (file names carry the shared-memory incarnation, the pid and a sequence).
 *
 * Whose files (version 6 on): the header's node_id is the writer's node
 * identity (licdata_node_id, replica.c): 64 random bits kept in
 * pg_licdata/node_id, the same across restarts, crashes and promotion, and
 * drawn anew when the data directory is a restored base backup (a
 * backup_label at the postmaster's start: pg_basebackup, pg_rewind, any
 * pg_backup_start/stop copy) -- so the copy a backup brings of another
 * node's journal is told apart from the node's own files, which the system
 * identifier (the same on a primary and all its standbys) cannot do.  A
 * node moves, hands over and counts (quota rebuild) the records of its own
 * files only: those stamped with its id, and unstamped ones (versions 4
 * and 5, and files written while the id could not be read; as before).
 * Another node's file is never written and none of its records is used:
 * on a standby it is a copy whose writer has the original and moves its records, so the
 * worker removes it; on a primary it is left in place with a warning (it
 * may hold the only copy of records of a node that is gone; the operator
 * decides).  The node that wrote a file as a standby still moves it after
 * its promotion: the id does not change.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_JOURNAL_H
#define LICDATA_JOURNAL_H

/* Outcomes as stored. */
#define OUTCOME_OK			'o'
#define OUTCOME_ERROR		'e'
#define OUTCOME_CANCELLED	'c'

/* Record kinds. */
#define KIND_LICENSEE		1	/* a licensee statement: usage + audit allow */
#define KIND_DENIAL			2	/* a refused licensee statement: audit deny */
#define KIND_OPERATOR		3	/* an operator read of a dataset: audit only */

#define JOURNAL_PRICE_LEN	40	/* a price as numeric text, NUL included */

/*
 * One licence (or dataset, for operators and denials) a statement used.
 * Mutable while the record is open; not covered by the CRC.  'calls' is
 * last: a version 4 file's uses are this struct without it.
 */
/* JournalUse.flags */
#define USE_AGGREGATE		1	/* an aggregate licence */
#define USE_PRODUCT			2	/* a data product's licence (product.c): 'dataset'
								 * holds the product's function OID, the prices
								 * are per call and per row it returned */
#define USE_PRODUCT_READ	4	/* a dataset a product's body read: audited with
								 * the call, never billed (licence_id 0) */

typedef struct JournalUse
{
	int64		licence_id;		/* 0 when none (operator access, denial) */
	Oid			dataset;
	uint32		flags;			/* USE_* */
	char		price_per_query[JOURNAL_PRICE_LEN]; /* numeric as text, at query time;
														 * per call for USE_PRODUCT */
	char		price_per_row[JOURNAL_PRICE_LEN];
	int64		calls;			/* USE_PRODUCT: calls of the product (licdata.usage.calls) */
	int64		rows;			/* USE_PRODUCT: rows the product returned */
} JournalUse;

#define JOURNAL_USE_V4_SIZE		offsetof(JournalUse, calls)

/*
 * One statement's record as it lies in the journal.  The fixed part up to
 * 'immutable' may change while the statement runs (rows, uses, outcome);
 * everything from 'immutable' on is written once and covered by the CRC.
 */
typedef struct JournalRecord
{
	uint32		magic;
	uint32		length;			/* whole record, MAXALIGNed */
	uint32		crc;			/* CRC-32C of the immutable part */
	volatile uint32 state;		/* JR_WRITING, JR_OPEN, JR_CLOSED, JR_VOID */
	/* mutable while open */
	volatile int64 rows;		/* delivered to the client */
	volatile int64 nested_rows; /* produced by licensed statements in functions */
	volatile int64 rows_aggregated;
	int64		ended_at;		/* TimestampTz */
	double		duration_ms;
	char		outcome;
	char		sqlstate[6];
	char		denied;			/* refused by a licence check after it began
								 * (a rows quota): audited as a denial */
	volatile uint32 nuses;
	uint32		uses_capacity;	/* slots of the uses array (see JR_USES) */
	uint64		lpos;			/* logical position in its file's ring */
	/* immutable */
	uint32		immutable;		/* marks the start of the CRC'd part */
	uint32		kind;
	int64		started_at;
	uint64		query_id;
	Oid			licensee;
	Oid			pad3;
	char		role_name[NAMEDATALEN];
	char		session_user_name[NAMEDATALEN];
	char		purpose[NAMEDATALEN];
	char		consent_ref[208];
	char		deny_sqlstate[6];
	char		statement_is_hash;
	char		pad4;
	uint32		statement_len;
	char		statement[FLEXIBLE_ARRAY_MEMBER];
	/* then, at JR_USES_OFFSET: JournalUse uses[uses_capacity] (mutable) */
} JournalRecord;

/*
 * test/t/061_pipe_poison.pl edits records in place and knows these offsets
 * (64-bit build, NAMEDATALEN 64): change both together.
 */
StaticAssertDecl(offsetof(JournalRecord, nuses) == 64, "journal layout (see 061_pipe_poison.pl)");
StaticAssertDecl(offsetof(JournalRecord, consent_ref) == 304, "journal layout (see 061_pipe_poison.pl)");
StaticAssertDecl(offsetof(JournalRecord, statement_len) == 520, "journal layout (see 061_pipe_poison.pl)");
StaticAssertDecl(offsetof(JournalRecord, statement) == 524, "journal layout (see 061_pipe_poison.pl)");
StaticAssertDecl(sizeof(JournalUse) == 112, "journal layout (see 061_pipe_poison.pl)");

/*
 * The uses (licences) of a statement follow its text, sized to what it needs
 * (the licences known when it starts, plus room for a few that functions it
 * runs may add): records stay small, so a statement seldom touches a fresh
 * page of the journal mapping.
 */
#define JR_USES_OFFSET(rec) \
	MAXALIGN(offsetof(JournalRecord, statement) + (rec)->statement_len)
#define JR_USES(rec) \
	((JournalUse *) ((char *) (rec) + JR_USES_OFFSET(rec)))
#define JR_SPARE_USES 2

/* The header at the start of each journal file. */
typedef struct JournalFileHeader
{
	uint32		magic;
	uint32		version;
	uint64		incarnation;	/* LicdataShared->incarnation of the writer */
	int32		pid;
	volatile uint32 closed;		/* writer exited: no more records, all final */
	int64		created_at;
	volatile uint64 head;		/* logical bytes appended (written by the backend) */
	volatile uint64 tail;		/* logical bytes moved to the tables and committed
								 * (written by the worker): the ring before it
								 * may be reused */
	uint64		ring_size;		/* bytes of the ring that follows the header */
	uint64		node_id;		/* version 6 on: licdata_node_id of the node
								 * that wrote it (0: unknown, as before) */
} JournalFileHeader;

StaticAssertDecl(sizeof(JournalFileHeader) == 64, "journal file header is 64 bytes in every version");

/*
 * Is the file (header h) another node's?  Only a version 6 file says who
 * wrote it; an older one counts as this node's, as before (see "Whose
 * files" above).
 */
#define JF_FOREIGN(h) \
	((h)->version >= 6 && (h)->node_id != 0 && (h)->node_id != licdata_node_id)

#define JF_RING(base)	((char *) (base) + sizeof(JournalFileHeader))
#define JR_PAD_MAGIC	0x504A444C	/* "LDJP" */

#define JF_MAGIC	0x464A444C	/* "LDJF" */
#define JF_VERSION	6			/* layout of the header, JournalRecord and the
								 * ring; 6 = 5 plus the header's node_id */
#define JF_VERSION_MIN	4		/* oldest layout the worker still reads (no
								 * JournalUse.calls) */
#define JR_MAGIC	0x524A444C	/* "LDJR" */
#define JR_WRITING	0			/* being written; not yet a record */
#define JR_OPEN		1			/* statement running; rows updated in place */
#define JR_CLOSED	2			/* final */
#define JR_VOID		3			/* not a record: superseded (regrown), or its
								 * statement was refused because the record
								 * could not be made durable before any of
								 * its output left the server */

#define JOURNAL_FILE_SIZE	(4 * 1024 * 1024)

/* replica.c: this node's identity, stamped into each file it makes */
extern uint64 licdata_node_id;

/* journal.c */
extern JournalRecord *licdata_journal_append(const JournalRecord *hdr, const JournalUse *uses,
											 uint32 nuses, uint32 capacity, const char *stmt,
											 uint32 stmt_len);
extern void licdata_journal_sync_record(JournalRecord *rec);
extern void licdata_journal_close_record(JournalRecord *rec);
extern JournalRecord *licdata_journal_regrow(JournalRecord *old, uint32 capacity);
extern uint32 licdata_journal_crc(const JournalRecord *rec);
extern const char *licdata_journal_dir(void);

#endif							/* LICDATA_JOURNAL_H */
