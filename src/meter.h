/*-------------------------------------------------------------------------
 *
 * meter.h
 *	  Per-statement accounting (meter.c) over the durable journal
 *	  (journal.c), flushed into tables by the background worker (worker.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_METER_H
#define LICDATA_METER_H

#include "executor/execdesc.h"
#include "fmgr.h"
#include "licdata.h"

#define LICDATA_MAX_USES 32

/* Outcomes as stored. */
#define OUTCOME_OK			'o'
#define OUTCOME_ERROR		'e'
#define OUTCOME_CANCELLED	'c'

/* Record kinds. */
#define KIND_LICENSEE		1	/* a licensee statement: usage + audit allow */
#define KIND_DENIAL			2	/* a refused licensee statement: audit deny */
#define KIND_OPERATOR		3	/* an operator read of a dataset: audit only */

#define JOURNAL_PRICE_LEN	40		/* a price as numeric text, NUL included */

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
	char		price_per_query[JOURNAL_PRICE_LEN];	/* numeric as text, at query time;
														 * per call for USE_PRODUCT */
	char		price_per_row[JOURNAL_PRICE_LEN];
	int64		calls;			/* USE_PRODUCT: calls of the product */
	int64		rows;			/* USE_PRODUCT: rows the product returned */
} JournalUse;

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
	char		pad2[8];
} JournalFileHeader;

/*
 * The records of a file form a ring after its header: a record at logical
 * position L lies at ring offset L % ring_size, never across the ring's end
 * (a JR_PAD marker fills the rest of the ring first).  Reusing the ring's
 * pages once the worker has moved their records keeps them mapped and dirty,
 * so appending a record seldom costs a page fault.
 */
#define JF_RING(base)	((char *) (base) + sizeof(JournalFileHeader))
#define JR_PAD_MAGIC	0x504A444C	/* "LDJP" */

#define JF_MAGIC	0x464A444C	/* "LDJF" */
#define JF_VERSION	5			/* layout of JournalRecord and the ring */
#define JR_MAGIC	0x524A444C	/* "LDJR" */
#define JR_WRITING	0			/* being written; not yet a record */
#define JR_OPEN		1			/* statement running; rows updated in place */
#define JR_CLOSED	2			/* final */
#define JR_VOID		3			/* abandoned before its statement ran (it was
								 * refused because the record could not be
								 * made durable): not a record */

/* journal.c */
extern JournalRecord *licdata_journal_append(const JournalRecord *hdr, const JournalUse *uses,
											 uint32 nuses, uint32 capacity, const char *stmt,
											 uint32 stmt_len);
extern void licdata_journal_sync_record(JournalRecord *rec);
extern void licdata_journal_close_record(JournalRecord *rec);
extern JournalRecord *licdata_journal_regrow(JournalRecord *old, uint32 capacity);
extern void licdata_journal_backend_exit(void);
extern uint32 licdata_journal_crc(const JournalRecord *rec);
extern const char *licdata_journal_dir(void);

/* meter.c */
extern void licdata_meter_init(void);
extern void licdata_meter_denial(LicdataDataset *ds, const LicdataDecision *d, int64 licence_id);
extern void licdata_meter_executor_start(QueryDesc *qd, int eflags, int depth);
extern void licdata_meter_executor_started(QueryDesc *qd);
extern void licdata_meter_executor_end(QueryDesc *qd);
extern DestReceiver *licdata_meter_wrap_dest(QueryDesc *qd, DestReceiver *orig);
extern void licdata_meter_unwrap_dest(QueryDesc *qd, DestReceiver *wrapper);
extern DestReceiver *licdata_meter_fetch_dest(Node *parsetree, DestReceiver *dest, uint64 *id);
extern void licdata_meter_fetch_done(DestReceiver *counting, uint64 id);
extern void licdata_meter_note_aggregated(int64 n);
extern bool licdata_meter_counts_calls(Oid fn_oid);
extern void licdata_meter_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private);
extern void licdata_meter_lookup(LicdataDataset *ds, const LicdataLicence *lic);
extern int64 licdata_meter_lookups_today(int64 licence_id);
extern void *licdata_meter_block_begin(void);
extern void licdata_meter_block_end(void *block);
extern void licdata_meter_note_error(void);
extern uint64 licdata_meter_operator_copy_begin(LicdataDataset *ds);
extern void licdata_meter_operator_copy_end(uint64 id, uint64 rows);

/* meter.c: data products (product.c) */
extern int	licdata_meter_product_call(Oid product, const LicdataLicence *lic,
									   const char *price_per_call, const char *price_per_row,
									   int64 max_calls_per_day, const char *(*args_text) (void *),
									   void *args_arg, uint64 *stmt_id);
extern void licdata_meter_product_rows(uint64 stmt_id, int use, int64 rows);
extern void licdata_meter_product_denial(Oid product, const LicdataDecision *d, int64 licence_id);


/* worker.c */
extern void licdata_worker_register(void);
extern void licdata_worker_wake(void);

#endif							/* LICDATA_METER_H */
