/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker ("licdata flusher") that moves journal records
 *	  into licdata.usage and licdata.audit_log, exactly once.
 *
 * Every licdata.flush_interval (or when woken) it reads each journal file
 * from where it stopped and moves the final records in batches of at most
 * BATCH_RECORDS records (BATCH_BYTES bytes), each batch one transaction:
 *
 *	1. the audit hash chain computed here, in C, over the batch, from the
 *	   chain head kept in memory (read from the last batch at the start of
 *	   each pass and after any error): the same bytes
 *	   licdata_internal._audit_bytes() builds, so verify_audit() checks old
 *	   and new rows alike;
 *	2. the audit rows and the usage rows packed (see Sink; packed.c), each
 *	   row's defaults and constraints evaluated as for an INSERT, and the
 *	   batch stored as one row of licdata_internal.record_batches; its
 *	   records' places noted in licdata_internal.journal_moved (see
 *	   mark_moved); prepared statements (SPI_prepare + SPI_keepplan), every
 *	   name schema-qualified, search_path pinned;
 *	3. the audit checkpoints that fell due (each multiple of
 *	   licdata.checkpoint_interval past the last one) signed
 *	   (licdata._audit_sign, authority.c) and inserted;
 *	4. commit; then each file's header gets its new tail (the backend may
 *	   reuse that part of its ring), and finished files are removed.
 *
 * Exactly once: every record gets one audit row, in the same batch row as
 * its usage rows, and its byte range in its journal file is noted in
 * journal_moved in the same subtransaction -- a range noted twice is the
 * one duplicate check.  A crash loses at most the batch in flight: it is
 * replayed from the file's tail.  A replayed batch that holds a record
 * already moved fails on that check (unique_violation) and runs again,
 * once, after a duplicate probe (licdata_internal._moved: the batch's
 * references): those records are skipped *before* any hash is computed,
 * so a record already moved takes no sequence number and the chain head
 * stays where the tables have it.  On a standby, a file's tail does not
 * pass records handed over until this node has replayed the primary's
 * commit of them (see HandedOver).
 *
 * Errors: a batch runs in a subtransaction.  When it fails with an error
 * about the data (SQLSTATE classes 22 and 23), its records are retried one
 * by one, each in its own subtransaction; a record that still fails is
 * moved to licdata.quarantine (its raw bytes and its fields as jsonb, the
 * reason) with an audit row (decision 'quarantined') in its place in the
 * chain, and the rest keep flowing.  Any other error (the tables missing,
 * disk full, a cancel) ends the pass: the worker logs it, forgets its
 * in-memory progress and tries again after flush_interval -- never a crash
 * loop, and nothing is quarantined for a fault that is not the record's.
 *
 * Per file the worker remembers how far it has read, and the records it
 * passed while they were still open (a cursor, a long query): those are
 * looked at again each pass, and the records after them are moved as soon
 * as they are closed.  The progress is kept in memory only; after a worker
 * restart a file is read again from its tail (the probe makes the replay a
 * no-op).
 *
 * After a (re)start of the shared memory, before anything else, it rebuilds
 * today's quota counters from licdata.usage plus the journal's records not
 * yet moved, and wakes the backends waiting for them (quota_cv).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/heapam.h"
#include "access/hio.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#if PG_VERSION_NUM >= 150000
#include "access/xlogrecovery.h"
#endif
#include "commands/dbcommands.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/sha2.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "rewrite/rewriteHandler.h"
#include "storage/condition_variable.h"
#include "storage/bufmgr.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include <openssl/evp.h>

#include "errcodes.h"
#include "licdata.h"
#include "meter.h"
#include "packed.h"
#include "replica.h"
#include "shmem.h"

PGDLLEXPORT void licdata_worker_main(Datum arg);

/* This process is the flusher (its statements are not metered). */
bool		licdata_in_flusher = false;

extern bool licdata_records_writable;

/* Bounds of one batch (one transaction). */
#define BATCH_RECORDS 8000
#define BATCH_BYTES (8 * 1024 * 1024)
/* a standby hands over (replica.c) at most this many records per call */
#define HAND_OVER_RECORDS 2000
#define BATCH_FULL(len) \
	(batch_n >= (RecoveryInProgress() ? HAND_OVER_RECORDS : BATCH_RECORDS) || \
	 batch_bytes + (len) > BATCH_BYTES)

typedef struct PendingRecord
{
	uint64		offset;			/* logical position */
	uint32		length;
} PendingRecord;

typedef struct FileProgress
{
	char		name[64];
	uint64		offset;			/* logical; everything before is moved,
								 * batched or pending */
	bool		started;		/* offset taken from the file's tail */
	uint64		committed;		/* end of the last record whose batch committed */
	int			unsent;			/* its records in the batch not yet committed */
	uint64		tail_written;
	uint64		size;			/* file size, for journal_bytes */
	bool		final;			/* no more records will come (as last read) */
	bool		finished;		/* final, all read, none pending */
	List	   *pending;		/* PendingRecord *: open when last seen */
	bool		seen;			/* listed in the current pass */
	bool		unlink_failed;	/* warned about once */
	bool		bad_version;	/* warned about once */
	bool		foreign;		/* another node's (journal.h, "Whose files") */
	List	   *unreplayed;		/* a standby's: HandedOver *, oldest first */
} FileProgress;

/*
 * On a standby, records handed over whose commit on the primary this node
 * has not replayed yet: the file's tail stays at 'tail' (where it was
 * before them) until the replay reaches 'lsn' (replica.c).
 */
typedef struct HandedOver
{
	XLogRecPtr	lsn;
	uint64		tail;
} HandedOver;

static List *progress = NIL;	/* of FileProgress *, in TopMemoryContext */

/* One record of the batch being built: a copy, and where it came from. */
typedef struct BatchRec
{
	FileProgress *p;
	uint64		off;
	uint64		end;
	bool		dead;			/* its backend died: an open record is cancelled */
	uint32		use_size;		/* sizeof(JournalUse) of its file's layout */
	const char *bad;			/* why it cannot be trusted, or NULL */
	JournalRecord *r;
	const char *ref;			/* a standby's record from the inbox: its
								 * reference ('p' is NULL), else NULL */
	const char *node;			/* and the standby's name */
} BatchRec;

static BatchRec *batch = NULL;	/* BATCH_RECORDS slots, TopMemoryContext */
static int	batch_n = 0;
static size_t batch_bytes = 0;
static MemoryContext batch_cxt = NULL;	/* the copies; reset after each batch */

/* The audit chain's head, as committed (see load_chain). */
static bool chain_known = false;
static int64 chain_seq = 0;
static bytea *chain_hash = NULL;	/* the head's hash (batch memory while a
									 * batch runs) */
static bytea *chain_hash_kept = NULL;	/* TopMemoryContext copy */
static int64 chain_last_cp = 0;

/* Prepared statements, kept across transactions (SPI_keepplan). */
static SPIPlanPtr plan_probe = NULL;
static SPIPlanPtr plan_checkpoint = NULL;	/* by seq, the hash read back */
static SPIPlanPtr plan_checkpoint_hash = NULL;	/* the hash known */
static SPIPlanPtr plan_store = NULL;
static SPIPlanPtr plan_moved = NULL;

/* This pass's count, for the rate in licdata.journal_status. */
static uint64 pass_moved = 0;

void
licdata_worker_register(void)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* on a hot standby too: it hands the standby's records to the primary */
	w.bgw_start_time = BgWorkerStart_ConsistentState;
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
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		progress = lappend(progress, p);
		MemoryContextSwitchTo(old);
	}
	return p;
}

static void
progress_free(FileProgress *p)
{
	list_free_deep(p->pending);
	list_free_deep(p->unreplayed);
	pfree(p);
}

static void
progress_forget(FileProgress *p)
{
	progress = list_delete_ptr(progress, p);
	progress_free(p);
}

/* ---- reading records ---- */

/*
 * Text from a record as valid text of the database encoding.  The journal
 * holds what a backend had, unchecked (a setting sent in the startup packet
 * is not checked for its encoding).  Invalid bytes are kept visible as \xNN.
 * NULL for an empty field (stored as NULL, as before).  'name': clipped to
 * what a column of type name keeps, so the hash covers what is stored.
 */
static char *
valid_text(const char *s, size_t maxlen, bool name)
{
	int			len = (int) strnlen(s, maxlen);
	int			enc = GetDatabaseEncoding();
	StringInfoData out;

	if (len == 0)
		return NULL;
	if (pg_verifymbstr(s, len, true))
	{
		if (name && len >= NAMEDATALEN)
			len = pg_mbcliplen(s, len, NAMEDATALEN - 1);
		return pnstrdup(s, len);
	}
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
	if (name && out.len >= NAMEDATALEN)
		out.data[pg_mbcliplen(out.data, out.len, NAMEDATALEN - 1)] = '\0';
	return out.data;
}

/* A price of a record: numeric text as the catalog printed it, else 0. */
static const char *
valid_price(const char *p, const char *ref)
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
			(errmsg("journal record \"%s\" has an unreadable price; 0 is recorded", ref)));
	return "0";
}

static bool
valid_ts(TimestampTz t)
{
	return t != 0 && !TIMESTAMP_NOT_FINITE(t) && IS_VALID_TIMESTAMP(t);
}

/* A record's fields as they go into the tables. */
typedef struct RecView
{
	char		ref[128];
	const char *node;			/* where the statement ran */
	int			kind;
	TimestampTz started_at;		/* 0: invalid */
	TimestampTz ended_at;		/* 0: NULL */
	Oid			licensee;
	char	   *role_name;
	char	   *session_user_name;
	char	   *purpose;
	char	   *consent_ref;
	char	   *statement;
	char	   *sqlstate;
	bool		is_hash;
	int64		query_id;
	int64		rows;
	int64		nested_rows;
	int64		rows_aggregated;
	int64		billed;
	double		duration_ms;
	const char *outcome;
	bool		denied;
	int			nuses;
	JournalUse *uses;			/* this build's layout, prices checked */
} RecView;

static void
rec_view(const BatchRec *b, RecView *v)
{
	const JournalRecord *r = b->r;
	char		outcome = r->outcome;
	char		sqlstate[6];

	memset(v, 0, sizeof(*v));
	if (b->ref)
		strlcpy(v->ref, b->ref, sizeof(v->ref));
	else
		snprintf(v->ref, sizeof(v->ref), "%s@%llu", b->p->name, (unsigned long long) b->off);
	v->node = b->node ? b->node : licdata_node_name();
	/* never closed: its backend died (or exited) while it ran */
	if (r->state != JR_CLOSED || outcome == 0)
		outcome = OUTCOME_CANCELLED;
	v->kind = (int) r->kind;
	v->started_at = valid_ts(r->started_at) ? r->started_at : 0;
	v->ended_at = valid_ts(r->ended_at) ? r->ended_at : 0;
	v->licensee = r->licensee;
	v->role_name = valid_text(r->role_name, NAMEDATALEN, true);
	v->session_user_name = valid_text(r->session_user_name, NAMEDATALEN, true);
	v->purpose = valid_text(r->purpose, NAMEDATALEN, false);
	v->consent_ref = valid_text(r->consent_ref, sizeof(r->consent_ref), false);
	v->statement = valid_text(r->statement, r->statement_len, false);
	memcpy(sqlstate, r->sqlstate, 5);
	sqlstate[5] = '\0';
	v->sqlstate = valid_text(sqlstate, sizeof(sqlstate), false);
	v->is_hash = r->statement_is_hash != 0;
	v->query_id = (int64) r->query_id;
	v->rows = Max(r->rows, 0);
	v->nested_rows = Max(r->nested_rows, 0);
	v->rows_aggregated = Max(r->rows_aggregated, 0);
	v->billed = Max(v->rows, v->nested_rows);
	v->duration_ms = isfinite(r->duration_ms) && r->duration_ms >= 0 ? r->duration_ms : 0.0;
	v->outcome = outcome == OUTCOME_OK ? "ok" : outcome == OUTCOME_CANCELLED ? "cancelled" : "error";
	v->denied = r->denied != 0;
	v->nuses = (int) Min(r->nuses, r->uses_capacity);
	v->uses = palloc0(sizeof(JournalUse) * Max(v->nuses, 1));
	for (int i = 0; i < v->nuses; i++)
	{
		JournalUse *u = &v->uses[i];

		memcpy(u, (const char *) r + JR_USES_OFFSET(r) + (Size) i * b->use_size,
			   Min(b->use_size, sizeof(JournalUse)));
		if (b->use_size < sizeof(JournalUse))
			u->calls = 0;
		strlcpy(u->price_per_query, valid_price(u->price_per_query, v->ref), JOURNAL_PRICE_LEN);
		strlcpy(u->price_per_row, valid_price(u->price_per_row, v->ref), JOURNAL_PRICE_LEN);
		u->calls = Max(u->calls, 0);
	}
}

/* Why a record cannot be moved as it is, or NULL. */
static const char *
rec_invalid(const BatchRec *b, const RecView *v)
{
	if (b->bad)
		return b->bad;
	if (v->kind != KIND_LICENSEE && v->kind != KIND_DENIAL && v->kind != KIND_OPERATOR)
		return "the record has an unknown kind";
	if (v->started_at == 0)
		return "the record has no valid start time";
	return NULL;
}

/* ---- the audit hash (the bytes licdata._audit_bytes builds) ---- */

static void
append_quoted_nullable(StringInfo buf, const char *s)
{
	if (s == NULL)
		appendStringInfoString(buf, "NULL");
	else
	{
		char	   *q = quote_literal_cstr(s);

		appendStringInfoString(buf, q);
		pfree(q);
	}
}

/* text[] output (array_out) of a one-dimensional array of non-null texts */
static void
append_text_array(StringInfo buf, char **elems, int n)
{
	appendStringInfoChar(buf, '{');
	for (int i = 0; i < n; i++)
	{
		const char *e = elems[i];
		bool		quote = (e[0] == '\0' || pg_strcasecmp(e, "NULL") == 0);

		if (i > 0)
			appendStringInfoChar(buf, ',');
		for (const char *c = e; *c && !quote; c++)
			if (*c == '"' || *c == '\\' || *c == '{' || *c == '}' || *c == ',' ||
				*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r' || *c == '\v' || *c == '\f')
				quote = true;
		if (!quote)
			appendStringInfoString(buf, e);
		else
		{
			appendStringInfoChar(buf, '"');
			for (const char *c = e; *c; c++)
			{
				if (*c == '"' || *c == '\\')
					appendStringInfoChar(buf, '\\');
				appendStringInfoChar(buf, *c);
			}
			appendStringInfoChar(buf, '"');
		}
	}
	appendStringInfoChar(buf, '}');
}

/* 'v' (0 <= v < 10^n) as n decimal digits, zero-padded, at p */
static inline void
put_digits(char *p, int v, int n)
{
	for (int i = n - 1; i >= 0; i--)
	{
		p[i] = '0' + v % 10;
		v /= 10;
	}
}

/* to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') */
static void
append_utc_time(StringInfo buf, TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm((Timestamp) t, NULL, &tm, &fsec, NULL, NULL) == 0 &&
		tm.tm_year >= 1 && tm.tm_year <= 9999 && fsec >= 0)
	{
		/* digits by hand: this runs for every audit row the flusher moves */
		char		d[] = "0000-00-00T00:00:00.000000";

		put_digits(d, tm.tm_year, 4);
		put_digits(d + 5, tm.tm_mon, 2);
		put_digits(d + 8, tm.tm_mday, 2);
		put_digits(d + 11, tm.tm_hour, 2);
		put_digits(d + 14, tm.tm_min, 2);
		put_digits(d + 17, tm.tm_sec, 2);
		put_digits(d + 20, (int) fsec, 6);
		appendBinaryStringInfo(buf, d, sizeof(d) - 1);
	}
	else
	{
		text	   *out = DatumGetTextPP(DirectFunctionCall2(timestamp_to_char,
															 TimestampGetDatum((Timestamp) t),
															 PointerGetDatum(cstring_to_text("YYYY-MM-DD\"T\"HH24:MI:SS.US"))));

		appendBinaryStringInfo(buf, VARDATA_ANY(out), VARSIZE_ANY_EXHDR(out));
	}
}

/* Where audit_hash puts hashes (NULL: the current context). */
static MemoryContext hash_cxt = NULL;
static EVP_MD_CTX *audit_md = NULL;	/* the flusher's, for its life */

/* One audit row as it is inserted and hashed. */
typedef struct AuditRow
{
	int64		seq;
	TimestampTz at;
	const char *role_name;
	const char *session_user_name;
	Oid			licensee;		/* InvalidOid: NULL */
	char	   *licensee_name;
	const char *kind;
	const char *purpose;
	const char *consent_ref;
	char	   *dataset_names;	/* text[] as text (array_out) */
	char	   *licence_ids;	/* int8[] as text */
	Datum	   *dataset_oids;	/* the datasets (regclass[]): not products */
	Datum	   *dataset_name_datums;	/* every dataset and product */
	Datum	   *licence_id_datums;
	char	  **product_names;
	int			ndatasets;		/* names */
	int			ndataset_oids;
	int			nproducts;
	int			nlicences;
	const char *decision;
	const char *sqlstate;
	const char *statement;
	int64		rows;
	const char *journal_ref;
	const char *node;
	bytea	   *prev_hash;
	bytea	   *hash;
} AuditRow;

static void
audit_hash(AuditRow *a)
{
	StringInfoData s;
	char	   *utf8;
	Size		plen = VARSIZE_ANY_EXHDR(a->prev_hash);
	unsigned int mdlen = 0;

	initStringInfo(&s);
	{
		char		num[MAXINT8LEN + 1];
		int			n = pg_lltoa(a->seq, num);

		appendBinaryStringInfo(&s, num, n);
		appendStringInfoChar(&s, '|');
	}
	append_utc_time(&s, a->at);
	appendStringInfoChar(&s, '|');
	append_quoted_nullable(&s, a->role_name);
	appendStringInfoChar(&s, '|');
	append_quoted_nullable(&s, a->session_user_name);
	appendStringInfoChar(&s, '|');
	append_quoted_nullable(&s, a->licensee_name);
	appendStringInfoChar(&s, '|');
	appendStringInfoString(&s, a->kind);
	appendStringInfoChar(&s, '|');
	append_quoted_nullable(&s, a->purpose);
	appendStringInfoChar(&s, '|');
	append_quoted_nullable(&s, a->consent_ref);
	appendStringInfoChar(&s, '|');
	append_quoted_nullable(&s, a->dataset_names);
	appendStringInfoChar(&s, '|');
	append_quoted_nullable(&s, a->licence_ids);
	appendStringInfoChar(&s, '|');
	appendStringInfoString(&s, a->decision);
	appendStringInfoChar(&s, '|');
	append_quoted_nullable(&s, a->sqlstate);
	appendStringInfoChar(&s, '|');
	append_quoted_nullable(&s, a->statement);
	appendStringInfoChar(&s, '|');
	{
		char		rows[MAXINT8LEN + 1];

		pg_lltoa(a->rows, rows);
		append_quoted_nullable(&s, rows);
	}
	appendStringInfoChar(&s, '|');
	appendStringInfoString(&s, a->journal_ref);

	utf8 = pg_server_to_any(s.data, s.len, PG_UTF8);
	/* the hash outlives the record's memory: the next row chains to it */
	a->hash = MemoryContextAlloc(hash_cxt ? hash_cxt : CurrentMemoryContext,
								 VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	SET_VARSIZE(a->hash, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	/*
	 * One digest context for the flusher's life (libcrypto directly: PG's
	 * cryptohash API makes and registers a context per call, 5 % of the
	 * flusher's CPU at full load).
	 */
	if (audit_md == NULL && (audit_md = EVP_MD_CTX_new()) == NULL)
		elog(ERROR, "out of memory for a SHA-256 context");
	if (EVP_DigestInit_ex(audit_md, EVP_sha256(), NULL) != 1 ||
		EVP_DigestUpdate(audit_md, VARDATA_ANY(a->prev_hash), plen) != 1 ||
		EVP_DigestUpdate(audit_md, utf8, utf8 == s.data ? (size_t) s.len : strlen(utf8)) != 1 ||
		EVP_DigestFinal_ex(audit_md, (unsigned char *) VARDATA(a->hash), &mdlen) != 1 ||
		mdlen != PG_SHA256_DIGEST_LENGTH)
		elog(ERROR, "could not compute SHA-256 of an audit row");
	if (utf8 != s.data)
		pfree(utf8);
	pfree(s.data);
}

/*
 * The names audit rows keep, looked up once per batch (a batch's records
 * name few roles and datasets): label_cxt is reset when a batch starts.
 */
#define LABEL_CACHE 64
typedef struct Label
{
	char		kind;			/* 'r' role, 'd' dataset */
	Oid			oid;
	char	   *label;
} Label;
static Label labels[LABEL_CACHE];
static int	nlabels = 0;
static MemoryContext label_cxt = NULL;

static void
labels_reset(void)
{
	if (label_cxt == NULL)
		label_cxt = AllocSetContextCreate(TopMemoryContext, "licdata flush labels",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(label_cxt);
	nlabels = 0;
}

static char *
label_find(char kind, Oid oid)
{
	for (int i = 0; i < nlabels; i++)
		if (labels[i].oid == oid && labels[i].kind == kind)
			return labels[i].label;
	return NULL;
}

static char *
label_keep(char kind, Oid oid, char *label)
{
	if (nlabels < LABEL_CACHE && label_cxt != NULL)
	{
		labels[nlabels].kind = kind;
		labels[nlabels].oid = oid;
		labels[nlabels].label = MemoryContextStrdup(label_cxt, label);
		return labels[nlabels++].label;
	}
	return label;
}

/* The name of a role or dataset as the audit row keeps it. */
static char *
role_label(Oid role)
{
	char	   *n = label_find('r', role);

	if (n)
		return n;
	n = GetUserNameFromId(role, true);
	return label_keep('r', role, n ? n : psprintf("%u", role));
}

static char *
dataset_label(Oid relid)
{
	char	   *rel = label_find('d', relid);
	Oid			nsp;

	if (rel)
		return rel;
	rel = get_rel_name(relid);
	if (rel == NULL)
		return label_keep('d', relid, psprintf("%u", relid));
	nsp = get_rel_namespace(relid);
	return label_keep('d', relid, psprintf("%s.%s", get_namespace_name(nsp), rel));
}

/*
 * The audit row of a record, chained to the in-memory head (which it
 * advances).  'quarantined_sqlstate': the row says the record was
 * quarantined, with that error.
 */
static void
audit_row(const RecView *v, AuditRow *a, const char *quarantined_sqlstate)
{
	StringInfoData lic;
	char	  **names = palloc(sizeof(char *) * Max(v->nuses, 1));
	int			nnames = 0;
	bool		firstlic = true;

	memset(a, 0, sizeof(*a));
	a->seq = chain_seq + 1;
	a->at = v->started_at ? v->started_at : GetCurrentTimestamp();
	a->role_name = v->role_name;
	a->session_user_name = v->session_user_name;
	a->licensee = v->licensee;
	a->licensee_name = v->licensee != InvalidOid ? role_label(v->licensee) : NULL;
	a->kind = v->kind == KIND_OPERATOR ? "operator" : "licensee";
	a->purpose = v->purpose;
	a->consent_ref = v->consent_ref;
	a->dataset_oids = palloc(sizeof(Datum) * Max(v->nuses, 1));
	a->product_names = palloc(sizeof(char *) * Max(v->nuses, 1));
	a->dataset_name_datums = palloc(sizeof(Datum) * Max(v->nuses, 1));
	a->licence_id_datums = palloc(sizeof(Datum) * Max(v->nuses, 1));
	initStringInfo(&lic);
	appendStringInfoChar(&lic, '{');
	for (int i = 0; i < v->nuses; i++)
	{
		const JournalUse *u = &v->uses[i];

		if (u->flags & USE_PRODUCT)
		{
			/* a data product's use: its function, named in the audit row */
			char	   *fn = format_procedure_extended(u->dataset, FORMAT_PROC_INVALID_AS_NULL);

			names[nnames] = fn ? fn : psprintf("%u", u->dataset);
			a->dataset_name_datums[nnames] = CStringGetTextDatum(names[nnames]);
			a->product_names[a->nproducts++] = names[nnames];
			nnames++;
		}
		else if (u->dataset != InvalidOid)
		{
			names[nnames] = dataset_label(u->dataset);
			a->dataset_oids[a->ndataset_oids++] = ObjectIdGetDatum(u->dataset);
			a->dataset_name_datums[nnames] = CStringGetTextDatum(names[nnames]);
			nnames++;
		}
		if (u->licence_id != 0)
		{
			appendStringInfo(&lic, "%s" INT64_FORMAT, firstlic ? "" : ",", u->licence_id);
			firstlic = false;
			a->licence_id_datums[a->nlicences++] = Int64GetDatum(u->licence_id);
		}
	}
	appendStringInfoChar(&lic, '}');
	a->ndatasets = nnames;
	a->licence_ids = lic.data;
	{
		StringInfoData dn;

		initStringInfo(&dn);
		append_text_array(&dn, names, nnames);
		a->dataset_names = dn.data;
	}
	if (quarantined_sqlstate)
	{
		a->decision = "quarantined";
		a->sqlstate = quarantined_sqlstate;
	}
	else
	{
		a->decision = (v->kind == KIND_DENIAL || v->denied) ? "deny" : "allow";
		a->sqlstate = v->sqlstate;
	}
	a->statement = v->statement;
	a->rows = v->kind == KIND_DENIAL ? 0 : v->billed;
	a->journal_ref = v->ref;
	a->node = v->node;
	a->prev_hash = chain_hash;
	audit_hash(a);
	/* the head moves on (rolled back by the caller if the batch fails) */
	chain_seq = a->seq;
	chain_hash = a->hash;
}

/* ---- SQL ---- */

static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

	if (p == NULL)
		elog(ERROR, "could not prepare the flusher's statement: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(p) != 0)
		elog(ERROR, "could not keep the flusher's statement");
	return p;
}

static void
forget_plans(void)
{
	SPIPlanPtr *plans[] = {&plan_probe, &plan_checkpoint, &plan_checkpoint_hash, &plan_store, &plan_moved};

	for (int i = 0; i < lengthof(plans); i++)
	{
		if (*plans[i])
			SPI_freeplan(*plans[i]);
		*plans[i] = NULL;
	}
}

static void
prepare_plans(void)
{
	if (plan_probe == NULL)
	{
		Oid			t[1] = {TEXTARRAYOID};

		plan_probe = prepare_kept("SELECT m.ref FROM licdata_internal._moved($1) m(ref)", 1, t);
	}
	if (plan_checkpoint == NULL)
	{
		Oid			t[1] = {INT8OID};

		plan_checkpoint = prepare_kept(
									   "INSERT INTO licdata.audit_checkpoints (seq, hash, public_key, signature) "
									   "SELECT $1, h.h, licdata.audit_public_key(), "
									   "licdata_internal._audit_sign($1, h.h) "
									   "FROM licdata_internal._audit_hash($1) h(h) WHERE h.h IS NOT NULL", 1, t);
	}
	if (plan_checkpoint_hash == NULL)
	{
		Oid			t[2] = {INT8OID, BYTEAOID};

		plan_checkpoint_hash = prepare_kept(
											"INSERT INTO licdata.audit_checkpoints (seq, hash, public_key, signature) "
											"VALUES ($1, $2, licdata.audit_public_key(), "
											"licdata_internal._audit_sign($1, $2))", 2, t);
	}
	if (plan_store == NULL)
	{
		Oid			t[10] = {INT8OID, INT8OID, BYTEAOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
		INT4OID, INT4OID, BYTEAOID, BYTEAOID, OIDARRAYOID};

		plan_store = prepare_kept(
								  "INSERT INTO licdata_internal.record_batches (first_seq, last_seq, last_hash, "
								  "min_at, max_at, audit_rows, usage_rows, audit, usage, licensees) "
								  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", 10, t);
	}
	if (plan_moved == NULL)
	{
		Oid			t[2] = {TEXTOID, TEXTOID};

		/* no row when a range is there already: a record moved twice */
		plan_moved = prepare_kept(
								  "INSERT INTO licdata_internal.journal_moved AS m (file, moved) "
								  "VALUES ($1, $2::pg_catalog.int8multirange) "
								  "ON CONFLICT (file) DO UPDATE SET moved = m.moved OPERATOR(pg_catalog.+) excluded.moved "
								  "WHERE NOT m.moved OPERATOR(pg_catalog.&&) excluded.moved", 2, t);
	}
}

/* The chain head and the last checkpoint, from the tables. */
static void
load_chain(void)
{
	int			rc;
	bool		isnull;
	MemoryContext cxt = CurrentMemoryContext;

	rc = SPI_execute("SELECT h.seq, h.hash FROM ("
					 "(SELECT b.last_seq, b.last_hash FROM licdata_internal.record_batches b "
					 "ORDER BY b.first_seq DESC LIMIT 1) UNION ALL "
					 "(SELECT a.seq, a.hash FROM licdata_internal.audit_rows a ORDER BY a.seq DESC LIMIT 1)) "
					 "h(seq, hash) ORDER BY h.seq DESC LIMIT 1",
					 true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the audit chain's head");
	chain_hash = NULL;
	chain_seq = 0;
	if (chain_hash_kept)
	{
		pfree(chain_hash_kept);
		chain_hash_kept = NULL;
	}
	if (SPI_processed > 0)
	{
		Datum		h;

		chain_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		h = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			chain_hash = DatumGetByteaPCopy(h);
			MemoryContextSwitchTo(old);
		}
	}
	if (chain_hash == NULL)
	{
		chain_hash = MemoryContextAlloc(TopMemoryContext, VARHDRSZ);
		SET_VARSIZE(chain_hash, VARHDRSZ);
	}
	rc = SPI_execute("SELECT pg_catalog.max(c.seq) FROM licdata.audit_checkpoints c", true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read the last audit checkpoint");
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		chain_last_cp = isnull ? 0 : DatumGetInt64(d);
	}
	MemoryContextSwitchTo(cxt);
	chain_hash_kept = chain_hash;
	chain_known = true;
}

/* The committed head outlives the batch's memory. */
static void
chain_keep(void)
{
	bytea	   *copy;

	if (chain_hash == chain_hash_kept)
		return;
	copy = MemoryContextAlloc(TopMemoryContext, VARSIZE(chain_hash));
	memcpy(copy, chain_hash, VARSIZE(chain_hash));
	if (chain_hash_kept)
		pfree(chain_hash_kept);
	chain_hash = chain_hash_kept = copy;
}

/*
 * Rows are not inserted one by one: each table's rows of a batch are packed
 * (packed.c) into one bytea, and the batch is one row of
 * licdata_internal.record_batches (see store_batch) -- one heap tuple, its
 * TOAST chunks (lz4-compressed where the server has lz4) and one index
 * entry for thousands of records.  The views licdata.usage and
 * licdata.audit_log unpack them.  The row types are those of the row
 * tables licdata_internal.usage_rows and audit_rows (which keep the rows
 * of before 1.1): a Sink evaluates each row's defaults (the usage id's
 * nextval) and constraints (NOT NULL, CHECK) against that table, as an
 * INSERT would, and packs the row.
 */
#define SINK_MAX_COLS 25

typedef struct Sink Sink;

struct Sink
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	int			ncols;
	AttrNumber	attno[SINK_MAX_COLS];	/* of each of our columns */
	bool	   *ours;			/* per attribute: set by us */
	ExprState **defaults;		/* per attribute not ours: its default */
	Datum		values[SINK_MAX_COLS];
	bool		nulls[SINK_MAX_COLS];
	int			rows;
	PackWriter	pack;
	TimestampTz min_at;			/* of the rows' "at" */
	TimestampTz max_at;
	AttrNumber	at_att;
	AttrNumber	licensee_att;	/* usage: the licensees of its rows */
	List	   *licensees;		/* of Oid, distinct (in cxt) */
	MemoryContext cxt;			/* the opener's: outlives the sink */
};

static const char *const usage_cols[] = {"at", "ended_at", "licence_id", "licensee", "dataset",
	"session_user_name", "role_name", "purpose", "consent_ref", "query_id", "statement",
	"statement_is_hash", "rows", "rows_delivered", "rows_in_functions", "rows_aggregated",
"duration_ms", "outcome", "sqlstate", "mode", "amount", "journal_ref", "calls", "node"};
static const char *const audit_cols[] = {"seq", "at", "role_name", "session_user_name", "licensee",
	"licensee_name", "kind", "purpose", "consent_ref", "datasets", "dataset_names", "licence_ids",
"decision", "sqlstate", "statement", "rows", "journal_ref", "prev_hash", "hash", "node"};

/*
 * The buffers the rows of each table are packed into, kept from batch to
 * batch in TopMemoryContext (a batch's rows are megabytes: a new buffer per
 * batch grew by copying and faulted its pages in each time).
 */
static StringInfo
pack_buffer(const char *relname)
{
	static StringInfo bufs[2] = {NULL, NULL};
	int			i = strcmp(relname, "usage_rows") == 0 ? 0 : 1;

	if (bufs[i] == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		bufs[i] = makeStringInfo();
		enlargeStringInfo(bufs[i], 4 * 1024 * 1024);
		MemoryContextSwitchTo(old);
	}
	return bufs[i];
}

static void
sink_open(Sink *k, const char *relname, const char *const *cols, int ncols)
{
	const LicdataCatalog *c = licdata_catalog();
	Oid			relid = c ? get_relname_relid(relname, c->internal_schema) : InvalidOid;
	RangeTblEntry *rte;
	TupleDesc	td;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_LD_NOT_READY),
				 errmsg("could not move journal records: table licdata_internal.%s does not exist", relname),
				 errdetail("The records stay in the journal until they can be moved."),
				 errhint("Run ALTER EXTENSION licdata UPDATE.")));
	memset(k, 0, sizeof(*k));
	k->cxt = CurrentMemoryContext;
	k->rel = table_open(relid, AccessShareLock);
	td = RelationGetDescr(k->rel);
	k->estate = CreateExecutorState();
	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = k->rel->rd_rel->relkind;
	rte->rellockmode = AccessShareLock;
	ExecInitRangeTable(k->estate, list_make1(rte));
	k->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(k->rri, k->rel, 1, NULL, 0);
	k->slot = ExecInitExtraTupleSlot(k->estate, td, &TTSOpsVirtual);
	k->ncols = ncols;
	k->ours = palloc0(sizeof(bool) * td->natts);
	k->defaults = palloc0(sizeof(ExprState *) * td->natts);
	for (int i = 0; i < ncols; i++)
	{
		AttrNumber	n = attnameAttNum(k->rel, cols[i], false);

		if (n <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_LD_NOT_READY),
					 errmsg("could not move journal records: column \"%s\" of table licdata_internal.%s does not exist",
							cols[i], relname),
					 errdetail("The records stay in the journal until they can be moved."),
					 errhint("Run ALTER EXTENSION licdata UPDATE.")));
		k->attno[i] = n;
		k->ours[n - 1] = true;
	}
	k->at_att = attnameAttNum(k->rel, "at", false);
	k->licensee_att = strcmp(relname, "usage_rows") == 0 ? attnameAttNum(k->rel, "licensee", false) : 0;
	for (int i = 0; i < td->natts; i++)
	{
		Node	   *def;

		if (k->ours[i] || TupleDescAttr(td, i)->attisdropped)
			continue;
		def = build_column_default(k->rel, i + 1);
		if (def)
			k->defaults[i] = ExecPrepareExpr((Expr *) expression_planner((Expr *) def), k->estate);
	}
	licdata_pack_begin(&k->pack, td, pack_buffer(relname));
}

static void
sink_set(Sink *k, int col, Datum d, bool isnull)
{
	k->values[col] = d;
	k->nulls[col] = isnull;
}

static void
sink_text(Sink *k, int col, const char *s)
{
	sink_set(k, col, s ? CStringGetTextDatum(s) : (Datum) 0, s == NULL);
}

static void
sink_name(Sink *k, int col, const char *s)
{
	Name		n = NULL;

	if (s)
	{
		n = palloc0(NAMEDATALEN);
		namestrcpy(n, s);
	}
	sink_set(k, col, NameGetDatum(n), s == NULL);
}

/* Pack the row set with sink_set (every column of ours must be set). */
static void
sink_put(Sink *k)
{
	TupleTableSlot *slot = k->slot;
	TupleDesc	td = slot->tts_tupleDescriptor;
	ExprContext *econtext = GetPerTupleExprContext(k->estate);

	ExecClearTuple(slot);
	for (int i = 0; i < td->natts; i++)
	{
		slot->tts_isnull[i] = true;
		slot->tts_values[i] = (Datum) 0;
		if (k->defaults[i])
			slot->tts_values[i] = ExecEvalExprSwitchContext(k->defaults[i], econtext,
															&slot->tts_isnull[i]);
	}
	for (int c = 0; c < k->ncols; c++)
	{
		slot->tts_values[k->attno[c] - 1] = k->values[c];
		slot->tts_isnull[k->attno[c] - 1] = k->nulls[c];
	}
	ExecStoreVirtualTuple(slot);
	if (k->rel->rd_att->constr)
		ExecConstraints(k->rri, slot, k->estate);
	if (k->at_att > 0 && !slot->tts_isnull[k->at_att - 1])
	{
		TimestampTz at = DatumGetTimestampTz(slot->tts_values[k->at_att - 1]);

		if (k->rows == 0 || at < k->min_at)
			k->min_at = at;
		if (k->rows == 0 || at > k->max_at)
			k->max_at = at;
	}
	if (k->licensee_att > 0 && !slot->tts_isnull[k->licensee_att - 1])
	{
		MemoryContext old = MemoryContextSwitchTo(k->cxt);

		k->licensees = list_append_unique_oid(k->licensees,
											  DatumGetObjectId(slot->tts_values[k->licensee_att - 1]));
		MemoryContextSwitchTo(old);
	}
	licdata_pack_row(&k->pack, slot->tts_values, slot->tts_isnull);
	ResetPerTupleExprContext(k->estate);
	k->rows++;
}

/* Close the sink; its packed rows (NULL when none). */
static bytea *
sink_close(Sink *k)
{
	bytea	   *packed = k->rows > 0 ? licdata_pack_end(&k->pack) : NULL;

	if (k->rows == 0)
	{
		pfree(k->pack.buf.data);
		pfree(k->pack.refs);
	}
	ExecCloseResultRelations(k->estate);
	ExecCloseRangeTableRelations(k->estate);
	ExecResetTupleTable(k->estate->es_tupleTable, false);
	FreeExecutorState(k->estate);
	table_close(k->rel, NoLock);
	return packed;
}

static Datum
numeric_text(const char *s)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
							   Int32GetDatum(-1));
}

static void
usage_rows(Sink *k, const RecView *v)
{
	if (v->kind != KIND_LICENSEE)
		return;

	/*
	 * A licence and dataset billed twice for one statement (a uses array
	 * damaged outside the record's CRC): refused as the unique key
	 * (journal_ref, licence_id, dataset) usage had until 1.1 refused it --
	 * the record is quarantined.  The key itself is gone: the record's
	 * range in journal_moved, in the same transaction, keeps records from
	 * being moved twice, and this keeps a record's rows distinct.
	 */
	for (int i = 0; i < v->nuses; i++)
	{
		const JournalUse *a = &v->uses[i];

		if ((a->flags & (USE_PRODUCT | USE_PRODUCT_READ)) != 0)
			continue;
		for (int j = i + 1; j < v->nuses; j++)
		{
			const JournalUse *b = &v->uses[j];

			if ((b->flags & (USE_PRODUCT | USE_PRODUCT_READ)) == 0 &&
				a->licence_id == b->licence_id && a->dataset == b->dataset)
				ereport(ERROR,
						(errcode(ERRCODE_UNIQUE_VIOLATION),
						 errmsg("duplicate key: journal record \"%s\" uses licence " INT64_FORMAT " on dataset %u twice",
								v->ref, a->licence_id, a->dataset),
						 errdetail("A statement is billed once per licence and dataset.")));
		}
	}
	for (int i = 0; i < v->nuses; i++)
	{
		const JournalUse *u = &v->uses[i];
		bool		product = (u->flags & USE_PRODUCT) != 0;
		int64		rows = product ? Max(u->rows, 0) : v->billed;
		Datum		amount;

		/* a dataset read inside a data product's body: audited, not billed */
		if (u->flags & USE_PRODUCT_READ)
			continue;
		/*
		 * A data product's use: one row per statement and product licence,
		 * its calls and the rows the product returned, price per call x
		 * calls + price per row x rows.  A dataset's: price per query +
		 * rows billed x price per row.
		 */
		amount = DirectFunctionCall2(numeric_add,
									 product ?
									 DirectFunctionCall2(numeric_mul,
														 NumericGetDatum(int64_to_numeric(Max(u->calls, 0))),
														 numeric_text(u->price_per_query)) :
									 numeric_text(u->price_per_query),
									 DirectFunctionCall2(numeric_mul,
														 NumericGetDatum(int64_to_numeric(rows)),
														 numeric_text(u->price_per_row)));
		sink_set(k, 0, TimestampTzGetDatum(v->started_at), false);
		sink_set(k, 1, TimestampTzGetDatum(v->ended_at), v->ended_at == 0);
		sink_set(k, 2, Int64GetDatum(u->licence_id), false);
		sink_set(k, 3, ObjectIdGetDatum(v->licensee), false);
		sink_set(k, 4, ObjectIdGetDatum(u->dataset), product);
		sink_name(k, 5, v->session_user_name);
		sink_name(k, 6, v->role_name);
		sink_text(k, 7, v->purpose);
		sink_text(k, 8, v->consent_ref);
		sink_set(k, 9, Int64GetDatum(v->query_id), false);
		sink_text(k, 10, v->statement);
		sink_set(k, 11, BoolGetDatum(v->is_hash), false);
		sink_set(k, 12, Int64GetDatum(rows), false);
		sink_set(k, 13, Int64GetDatum(v->rows), false);
		sink_set(k, 14, Int64GetDatum(v->nested_rows), false);
		sink_set(k, 15, Int64GetDatum(v->rows_aggregated), false);
		sink_set(k, 16, Float8GetDatum(v->duration_ms), false);
		sink_text(k, 17, v->outcome);
		sink_text(k, 18, v->sqlstate);
		sink_text(k, 19, product ? "product" : (u->flags & USE_AGGREGATE) ? "aggregate" : "rows");
		sink_set(k, 20, amount, false);
		sink_text(k, 21, v->ref);
		sink_set(k, 22, Int64GetDatum(product ? Max(u->calls, 0) : 0), false);
		sink_text(k, 23, v->node);
		sink_put(k);
	}
}

static void
audit_put(Sink *k, const AuditRow *a)
{
	sink_set(k, 0, Int64GetDatum(a->seq), false);
	sink_set(k, 1, TimestampTzGetDatum(a->at), false);
	sink_name(k, 2, a->role_name);
	sink_name(k, 3, a->session_user_name);
	sink_set(k, 4, ObjectIdGetDatum(a->licensee), a->licensee == InvalidOid);
	sink_text(k, 5, a->licensee_name);
	sink_text(k, 6, a->kind);
	sink_text(k, 7, a->purpose);
	sink_text(k, 8, a->consent_ref);
	sink_set(k, 9, PointerGetDatum(a->ndataset_oids == 0 ? construct_empty_array(REGCLASSOID) :
								   construct_array(a->dataset_oids, a->ndataset_oids, REGCLASSOID,
												   sizeof(Oid), true, TYPALIGN_INT)), false);
	sink_set(k, 10, PointerGetDatum(a->ndatasets == 0 ? construct_empty_array(TEXTOID) :
									construct_array(a->dataset_name_datums, a->ndatasets, TEXTOID,
													-1, false, TYPALIGN_INT)), false);
	sink_set(k, 11, PointerGetDatum(a->nlicences == 0 ? construct_empty_array(INT8OID) :
									construct_array(a->licence_id_datums, a->nlicences, INT8OID,
													sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE)), false);
	sink_text(k, 12, a->decision);
	sink_text(k, 13, a->sqlstate);
	sink_text(k, 14, a->statement);
	sink_set(k, 15, Int64GetDatum(a->rows), false);
	sink_text(k, 16, a->journal_ref);
	sink_set(k, 17, PointerGetDatum(a->prev_hash), false);
	sink_set(k, 18, PointerGetDatum(a->hash), false);
	sink_text(k, 19, a->node);
	sink_put(k);
}

/* ---- quarantine ---- */

static void due_note(const AuditRow *a);
static void store_batch(int64 first_seq, Sink *ak, Sink *uk);

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
	appendStringInfo(buf, ":" INT64_FORMAT, val);
}

/* A record's fields as JSON (for licdata.quarantine.record). */
static char *
record_json(const BatchRec *b, const RecView *v)
{
	StringInfoData buf;
	const JournalRecord *r = b->r;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	json_kv(&buf, "ref", v->ref, true);
	json_ki(&buf, "kind", r->kind);
	json_kv(&buf, "started_at", valid_ts(r->started_at) ? timestamptz_to_str(r->started_at) : NULL, false);
	json_kv(&buf, "ended_at", valid_ts(r->ended_at) ? timestamptz_to_str(r->ended_at) : NULL, false);
	json_ki(&buf, "licensee", r->licensee);
	json_kv(&buf, "role_name", v->role_name, false);
	json_kv(&buf, "session_user_name", v->session_user_name, false);
	json_kv(&buf, "purpose", v->purpose, false);
	json_kv(&buf, "consent_ref", v->consent_ref, false);
	json_ki(&buf, "query_id", v->query_id);
	json_kv(&buf, "statement", v->statement, false);
	json_ki(&buf, "statement_is_hash", v->is_hash ? 1 : 0);
	json_ki(&buf, "rows", r->rows);
	json_ki(&buf, "nested_rows", r->nested_rows);
	json_ki(&buf, "rows_aggregated", r->rows_aggregated);
	json_kv(&buf, "outcome", v->outcome, false);
	json_kv(&buf, "sqlstate", v->sqlstate, false);
	json_ki(&buf, "denied", r->denied ? 1 : 0);
	json_ki(&buf, "state", r->state);
	appendStringInfoString(&buf, ",\"uses\":[");
	for (int i = 0; i < v->nuses; i++)
	{
		const JournalUse *u = &v->uses[i];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfo(&buf, "{\"licence_id\":" INT64_FORMAT ",\"dataset\":%u,\"flags\":%u,\"calls\":" INT64_FORMAT
						 ",\"rows\":" INT64_FORMAT,
						 u->licence_id, u->dataset, u->flags, u->calls, u->rows);
		json_kv(&buf, "price_per_query", u->price_per_query, false);
		json_kv(&buf, "price_per_row", u->price_per_row, false);
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoString(&buf, "]}");
	return buf.data;
}

/*
 * Move one record to licdata.quarantine, with its audit row (decision
 * 'quarantined') in the chain.  Raises if even that fails.
 */
static void
quarantine(const BatchRec *b, const RecView *v, const char *reason, const char *sqlstate)
{
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID};
	Datum		args[5];
	bytea	   *raw = palloc(VARHDRSZ + b->r->length);
	int			rc;
	AuditRow	a;
	Sink		k;
	int64		first_seq;

	memcpy(VARDATA(raw), b->r, b->r->length);
	SET_VARSIZE(raw, VARHDRSZ + b->r->length);
	args[0] = CStringGetTextDatum(v->ref);
	args[1] = CStringGetTextDatum(reason);
	args[2] = CStringGetTextDatum(sqlstate);
	args[3] = CStringGetTextDatum(record_json(b, v));
	args[4] = PointerGetDatum(raw);
	rc = SPI_execute_with_args("INSERT INTO licdata.quarantine (journal_ref, reason, sqlstate, record, raw) "
							   "VALUES ($1, $2, $3, $4::pg_catalog.jsonb, $5)",
							   5, types, args, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not quarantine a journal record: %s", SPI_result_code_string(rc));
	first_seq = chain_seq + 1;
	sink_open(&k, "audit_rows", audit_cols, lengthof(audit_cols));
	audit_row(v, &a, sqlstate);
	due_note(&a);
	audit_put(&k, &a);
	store_batch(first_seq, &k, NULL);
	ereport(WARNING,
			(errcode(ERRCODE_LD_METERING_FAILED),
			 errmsg("journal record \"%s\" was moved to licdata.quarantine", v->ref),
			 errdetail("%s", reason)));
}

/*
 * The hashes of the audit rows whose seq is a checkpoint's (a multiple of
 * licdata.checkpoint_interval), made in this batch: sign_checkpoints signs
 * them without reading the batch back.  Rolled back with the chain head.
 */
#define DUE_MAX 64
static int64 due_seq[DUE_MAX];
static bytea *due_hash[DUE_MAX];
static int	ndue = 0;

static void
due_note(const AuditRow *a)
{
	int			every = Max(licdata_checkpoint_interval, 1);

	if (a->seq % every != 0 || ndue >= DUE_MAX)
		return;
	due_seq[ndue] = a->seq;
	due_hash[ndue] = MemoryContextAlloc(batch_cxt, VARSIZE(a->hash));
	memcpy(due_hash[ndue], a->hash, VARSIZE(a->hash));
	ndue++;
}

/*
 * One batch row: the packed audit rows (and usage rows, if any), the seq
 * range and the chain head after it, the time range.  Through SPI: the
 * records guard trigger lets the flusher pass.
 */
static void
store_batch(int64 first_seq, Sink *ak, Sink *uk)
{
	Datum		args[10];
	char		nulls[10] = "          ";
	int			nusage = uk ? uk->rows : 0;
	List	   *licensees = uk ? uk->licensees : NIL;
	TimestampTz min_at = ak->min_at;
	TimestampTz max_at = ak->max_at;
	bytea	   *usage = uk ? sink_close(uk) : NULL;
	bytea	   *audit = sink_close(ak);
	int			rc;

	if (audit == NULL)
	{
		if (usage)
			elog(ERROR, "usage rows without their audit rows");
		return;
	}
	if (nusage > 0)
	{
		min_at = Min(min_at, uk->min_at);
		max_at = Max(max_at, uk->max_at);
	}
	args[0] = Int64GetDatum(first_seq);
	args[1] = Int64GetDatum(chain_seq);
	args[2] = PointerGetDatum(chain_hash);
	args[3] = TimestampTzGetDatum(min_at);
	args[4] = TimestampTzGetDatum(max_at);
	args[5] = Int32GetDatum(ak->rows);
	args[6] = Int32GetDatum(nusage);
	args[7] = PointerGetDatum(audit);
	args[8] = PointerGetDatum(usage);
	if (usage == NULL)
		nulls[8] = 'n';
	/* the licensees of the usage rows, for licdata.my_usage to find */
	{
		Datum	   *oids = palloc(sizeof(Datum) * Max(list_length(licensees), 1));
		int			n = 0;
		ListCell   *lc;

		foreach(lc, licensees)
			oids[n++] = ObjectIdGetDatum(lfirst_oid(lc));
		args[9] = PointerGetDatum(construct_array(oids, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	}
	rc = SPI_execute_plan(plan_store, args, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not store a record batch: %s", SPI_result_code_string(rc));
	pfree(audit);
	if (usage)
		pfree(usage);
}

/*
 * The journal file a batch record came from (its own progress's name, or
 * a copy of a standby reference's file part), and its [off, end).
 */
static const char *
rec_place(const BatchRec *b, uint64 *off, uint64 *end)
{
	const char *at;

	if (b->ref == NULL)
	{
		*off = b->off;
		*end = b->end;
		return b->p->name;
	}
	at = strrchr(b->ref, '@');
	if (at == NULL || at == b->ref)
		elog(ERROR, "journal reference \"%s\" is not valid", b->ref);
	*off = strtou64(at + 1, NULL, 10);
	*end = *off + b->r->length;
	return pnstrdup(b->ref, at - b->ref);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * Note batch records [from, to) (those not in 'skip') as moved in
 * licdata_internal.journal_moved, in the caller's (sub)transaction: per
 * journal file the byte ranges of its moved records, merged.  A range
 * already there means a record moved twice: unique_violation (the batch is
 * then run again after a probe, see send_batch) -- this is the one
 * duplicate check, as audit_log's unique journal_ref was before 1.1.
 */
static void
mark_moved(int from, int to, const bool *skip)
{
	int			n = to - from;
	const char **files = palloc(sizeof(char *) * n);
	uint64	   *offs = palloc(sizeof(uint64) * 2 * n);
	bool	   *done = palloc0(sizeof(bool) * n);

	for (int i = 0; i < n; i++)
	{
		files[i] = rec_place(&batch[from + i], &offs[2 * i], &offs[2 * i + 1]);
		if (skip && skip[i])
			done[i] = true;
	}
	for (int i = 0; i < n; i++)
	{
		StringInfoData mr;
		uint64	   *pairs;
		int			np = 0;
		Datum		args[2];
		int			rc;

		if (done[i])
			continue;
		pairs = palloc(sizeof(uint64) * 2 * n);
		for (int j = i; j < n; j++)
		{
			if (done[j] || strcmp(files[j], files[i]) != 0)
				continue;
			pairs[2 * np] = offs[2 * j];
			pairs[2 * np + 1] = offs[2 * j + 1];
			np++;
			done[j] = true;
		}
		/* sorted by start (qsort of pairs: start first) and merged */
		qsort(pairs, np, sizeof(uint64) * 2, cmp_u64);
		initStringInfo(&mr);
		appendStringInfoChar(&mr, '{');
		for (int k = 0; k < np;)
		{
			uint64		lo = pairs[2 * k];
			uint64		hi = pairs[2 * k + 1];

			for (k++; k < np && pairs[2 * k] <= hi; k++)
				hi = Max(hi, pairs[2 * k + 1]);
			if (mr.len > 1)
				appendStringInfoChar(&mr, ',');
			appendStringInfo(&mr, "[" UINT64_FORMAT "," UINT64_FORMAT ")", lo, hi);
		}
		appendStringInfoChar(&mr, '}');
		args[0] = CStringGetTextDatum(files[i]);
		args[1] = CStringGetTextDatum(mr.data);
		rc = SPI_execute_plan(plan_moved, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not note moved records: %s", SPI_result_code_string(rc));
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("a journal record of file \"%s\" was moved before", files[i]),
					 errdetail("Moved now: %s.", mr.data)));
		pfree(mr.data);
		pfree(pairs);
	}
}

/*
 * Move batch records [from, to): with 'probe', first one probe for the
 * already-moved ones (skipped: licdata_internal._moved); then their rows
 * packed into one record batch, and their places noted as moved.  Without
 * the probe, a record already moved makes mark_moved fail with
 * unique_violation and with it the whole call.  Runs in the caller's
 * (sub)transaction; advances the in-memory chain head.
 */
static void
move_records(int from, int to, bool probe)
{
	Sink		uk;
	Sink		ak;
	bool		open = false;
	MemoryContext outer;
	MemoryContext rec_cxt;
	bool	   *skip = palloc0(sizeof(bool) * (to - from));
	RecView    *views = palloc(sizeof(RecView) * (to - from));
	ArrayBuildState *refs = probe ? initArrayResult(TEXTOID, CurrentMemoryContext, false) : NULL;
	Datum		arg;
	int			rc;
	int64		first_seq = chain_seq + 1;

	for (int i = from; i < to; i++)
	{
		rec_view(&batch[i], &views[i - from]);
		if (probe)
			accumArrayResult(refs, CStringGetTextDatum(views[i - from].ref), false, TEXTOID,
							 CurrentMemoryContext);
	}
	if (probe)
	{
		/* the duplicate probe: one statement for the batch */
		arg = makeArrayResult(refs, CurrentMemoryContext);
		rc = SPI_execute_plan(plan_probe, &arg, NULL, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not probe for moved records: %s", SPI_result_code_string(rc));
		for (uint64 k = 0; k < SPI_processed; k++)
		{
			char	   *ref = SPI_getvalue(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1);

			for (int i = from; i < to; i++)
				if (!skip[i - from] && strcmp(views[i - from].ref, ref) == 0)
					skip[i - from] = true;
		}
		SPI_freetuptable(SPI_tuptable);
	}

	/* each record's own allocations go when it is packed */
	outer = CurrentMemoryContext;
	rec_cxt = AllocSetContextCreate(outer, "licdata flush record", ALLOCSET_DEFAULT_SIZES);
	for (int i = from; i < to; i++)
	{
		RecView    *v = &views[i - from];
		const char *bad;
		AuditRow	a;

		if (skip[i - from])
			continue;
		bad = rec_invalid(&batch[i], v);
		if (bad)
		{
			if (open)
			{
				store_batch(first_seq, &ak, &uk);
				open = false;
			}
			quarantine(&batch[i], v, bad, "22000");
			first_seq = chain_seq + 1;
			continue;
		}
		if (!open)
		{
			sink_open(&ak, "audit_rows", audit_cols, lengthof(audit_cols));
			sink_open(&uk, "usage_rows", usage_cols, lengthof(usage_cols));
			open = true;
		}
		MemoryContextSwitchTo(rec_cxt);
		hash_cxt = outer;
		audit_row(v, &a, NULL);
		hash_cxt = NULL;
		due_note(&a);
		audit_put(&ak, &a);
		usage_rows(&uk, v);
		MemoryContextSwitchTo(outer);
		MemoryContextReset(rec_cxt);
	}
	if (open)
		store_batch(first_seq, &ak, &uk);
	MemoryContextDelete(rec_cxt);
	mark_moved(from, to, skip);
}

/* Sign the checkpoints that fell due (each multiple of the interval). */
static void
sign_checkpoints(void)
{
	int			every = Max(licdata_checkpoint_interval, 1);

	while (chain_last_cp + every <= chain_seq)
	{
		int64		seq = chain_last_cp + every;
		Datum		args[2] = {Int64GetDatum(seq), (Datum) 0};
		int			rc;

		for (int i = 0; i < ndue; i++)
			if (due_seq[i] == seq)
				args[1] = PointerGetDatum(due_hash[i]);
		if (args[1] != (Datum) 0)
			rc = SPI_execute_plan(plan_checkpoint_hash, args, NULL, false, 0);
		else
			rc = SPI_execute_plan(plan_checkpoint, args, NULL, false, 0);

		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not sign an audit checkpoint: %s", SPI_result_code_string(rc));
		chain_last_cp += every;
	}
}

/* Errors that are about the data of a record (so retry it alone). */
static bool
data_error(int sqlerrcode)
{
	int			cls = ERRCODE_TO_CATEGORY(sqlerrcode);

	return cls == ERRCODE_DATA_EXCEPTION || cls == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION;
}

/*
 * Run move_records(from, to, probe) in a subtransaction.  Returns NULL on
 * success, else the error (the subtransaction rolled back, the chain head
 * restored).  Errors that are not about the data are raised.
 */
static ErrorData *
try_move(int from, int to, bool probe)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int64		seq = chain_seq;
	bytea	   *hash = chain_hash;
	int64		cp = chain_last_cp;
	int			due = ndue;
	ErrorData  *edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		move_records(from, to, probe);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		hash_cxt = NULL;
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		chain_seq = seq;
		chain_hash = hash;
		chain_last_cp = cp;
		ndue = due;
		if (!data_error(edata->sqlerrcode))
			ReThrowError(edata);
	}
	PG_END_TRY();
	return edata;
}

static void
write_tail(FileProgress *p, uint64 tail)
{
	char		path[MAXPGPATH];
	int			fd;

	snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), p->name);
	fd = OpenTransientFile(path, O_RDWR | PG_BINARY);
	if (fd < 0)
		return;					/* removed meanwhile: nothing to reuse */
	if (pg_pwrite(fd, &tail, sizeof(tail), offsetof(JournalFileHeader, tail)) == sizeof(tail) &&
		(!licdata_journal_sync || pg_fdatasync(fd) == 0))
		p->tail_written = tail;
	CloseTransientFile(fd);
}

/* How far a file's records are moved (or handed over) and committed. */
static uint64
file_tail(const FileProgress *p)
{
	uint64		tail = p->unsent == 0 ? p->offset : p->committed;
	ListCell   *pc;

	foreach(pc, p->pending)
		tail = Min(tail, ((PendingRecord *) lfirst(pc))->offset);
	return tail;
}

/* Tell each file's backend how far its records are moved and committed. */
static void
write_tails(void)
{
	ListCell   *lc;

	XLogRecPtr	replayed = RecoveryInProgress() ? GetXLogReplayRecPtr(NULL) : InvalidXLogRecPtr;

	foreach(lc, progress)
	{
		FileProgress *p = lfirst(lc);
		uint64		tail;

		if (!p->started)
			continue;
		tail = file_tail(p);
		/* a standby: not past records whose hand-over it has not replayed */
		while (p->unreplayed != NIL)
		{
			HandedOver *h = linitial(p->unreplayed);

			if (RecoveryInProgress() && replayed < h->lsn)
			{
				tail = Min(tail, h->tail);
				break;
			}
			p->unreplayed = list_delete_first(p->unreplayed);
			pfree(h);
		}
		if (tail > p->tail_written)
			write_tail(p, tail);
	}
}

/* Records this node holds that are not handed over: the open ones. */
static int64
records_held(void)
{
	ListCell   *lc;
	int64		n = 0;

	foreach(lc, progress)
		n += list_length(((FileProgress *) lfirst(lc))->pending);
	return n;
}

/*
 * On a standby: hand batch records [0, n) to the primary (raises on
 * failure; the records stay in the journal).  The standby's tables are not
 * written, so the chain head is read again before any local batch (after a
 * promotion).
 */
static void
hand_over(int n)
{
	ReplicaRecord *rr = palloc(sizeof(ReplicaRecord) * Max(n, 1));
	XLogRecPtr	lsn;

	for (int i = 0; i < n; i++)
	{
		rr[i].file = batch[i].p->name;
		rr[i].off = batch[i].off;
		rr[i].dead = batch[i].dead;
		rr[i].use_size = batch[i].use_size;
		rr[i].r = batch[i].r;
	}
	chain_known = false;
	lsn = licdata_replica_hand_over(rr, n, records_held());
	if (n == 0 || XLogRecPtrIsInvalid(lsn))
		return;
	/* each file of the batch keeps its tail until the replay passes lsn */
	for (int i = 0; i < n; i++)
	{
		FileProgress *p = batch[i].p;
		HandedOver *h;
		MemoryContext old;

		if (p == NULL || (p->unreplayed != NIL &&
						  ((HandedOver *) llast(p->unreplayed))->lsn == lsn))
			continue;
		old = MemoryContextSwitchTo(TopMemoryContext);
		h = palloc(sizeof(HandedOver));
		h->lsn = lsn;
		h->tail = file_tail(p);
		p->unreplayed = lappend(p->unreplayed, h);
		MemoryContextSwitchTo(old);
	}
}

/* In the batch's transaction: the inbox records moved leave the inbox. */
static void
inbox_delete(void)
{
	ArrayBuildState *refs = NULL;

	for (int i = 0; i < batch_n; i++)
	{
		if (batch[i].ref == NULL)
			continue;
		if (refs == NULL)
			refs = initArrayResult(TEXTOID, CurrentMemoryContext, false);
		accumArrayResult(refs, CStringGetTextDatum(batch[i].ref), false, TEXTOID, CurrentMemoryContext);
	}
	if (refs)
		licdata_replica_inbox_delete(makeArrayResult(refs, CurrentMemoryContext));
}

/*
 * Send the batch: one transaction.  On return the records are committed
 * (or quarantined) and the files' tails written.
 */
static void
send_batch(void)
{
	ErrorData  *err;
	MemoryContext old;

	if (batch_n == 0)
		return;
	old = MemoryContextSwitchTo(batch_cxt);
	if (RecoveryInProgress())
	{
		/* a standby: the primary takes them (replica.c) */
		hand_over(batch_n);
		goto sent;
	}
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "could not connect to SPI");
	PushActiveSnapshot(GetTransactionSnapshot());
	licdata_records_writable = true;
	if (!chain_known)
		load_chain();
	prepare_plans();
	labels_reset();

	/*
	 * Optimistic: no duplicate probe.  A record moved before (a replay
	 * after a crash between a commit and the tail store, or after an error
	 * ended a pass) fails the batch when its range is noted in
	 * journal_moved again (mark_moved), which costs one batch's work once;
	 * then the batch runs again with the probe.  Nothing else checks for
	 * duplicates: every record's usage rows go in the same batch row as its
	 * audit row.
	 */
	ndue = 0;
	err = try_move(0, batch_n, false);
	if (err && err->sqlerrcode == ERRCODE_UNIQUE_VIOLATION)
		err = try_move(0, batch_n, true);
	if (err)
	{
		/* one record the tables refuse: find it, the rest go on */
		for (int i = 0; i < batch_n; i++)
		{
			ErrorData  *e1 = try_move(i, i + 1, true);

			if (e1)
			{
				RecView		v;

				rec_view(&batch[i], &v);
				quarantine(&batch[i], &v, e1->message ? e1->message : "error",
						   unpack_sql_state(e1->sqlerrcode));
				mark_moved(i, i + 1, NULL);
			}
		}
	}
	sign_checkpoints();
	inbox_delete();
	/* SPI's memory (where the new head's hash is) goes with SPI_finish */
	chain_keep();
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
sent:
	MemoryContextSwitchTo(old);

	pg_atomic_fetch_add_u64(&licdata_shared->records_moved, batch_n);
	pass_moved += batch_n;
	for (int i = 0; i < batch_n; i++)
	{
		FileProgress *p = batch[i].p;

		if (p == NULL)
			continue;			/* from the inbox */
		p->committed = Max(p->committed, batch[i].end);
		p->unsent--;
	}
	batch_n = 0;
	batch_bytes = 0;
	MemoryContextReset(batch_cxt);
	write_tails();
}

/* Queue a final record (a copy) for the batch; sends a full batch. */
static void
batch_add(FileProgress *p, uint64 off, const JournalRecord *r, bool dead, uint32 use_size,
		  const char *bad)
{
	BatchRec   *b;

	if (BATCH_FULL(r->length))
		send_batch();
	b = &batch[batch_n++];
	b->p = p;
	b->off = off;
	b->end = off + r->length;
	b->dead = dead;
	b->use_size = use_size;
	b->bad = bad;
	b->r = MemoryContextAlloc(batch_cxt, r->length);
	memcpy(b->r, r, r->length);
	b->ref = NULL;
	b->node = NULL;
	batch_bytes += r->length;
	p->unsent++;
}

static bool record_sane(const JournalRecord *r, uint32 avail, uint32 use_size);

/* Queue a record a standby handed over (licdata_replica_drain). */
static void
queue_inbox(const char *ref, const char *node, const JournalRecord *r, bool dead, uint32 use_size)
{
	BatchRec   *b;

	if (BATCH_FULL(r->length))
		send_batch();
	b = &batch[batch_n++];
	memset(b, 0, sizeof(*b));
	b->dead = dead;
	b->use_size = use_size;
	b->r = MemoryContextAlloc(batch_cxt, r->length);
	memcpy(b->r, r, r->length);
	b->ref = MemoryContextStrdup(batch_cxt, ref);
	b->node = MemoryContextStrdup(batch_cxt, node);
	if (!record_sane(b->r, r->length, use_size))
		b->bad = "the record handed over by a standby is not whole";
	else if (licdata_journal_crc(b->r) != b->r->crc)
		b->bad = "the record handed over by a standby fails its checksum";
	batch_bytes += r->length;
}

/* Is the record at buf (len bytes available) whole and sane? */
static bool
record_sane(const JournalRecord *r, uint32 avail, uint32 use_size)
{
	return avail >= offsetof(JournalRecord, statement) &&
		r->magic == JR_MAGIC &&
		r->length >= offsetof(JournalRecord, statement) &&
		r->length <= avail &&
		(uint64) offsetof(JournalRecord, statement) + r->statement_len <= r->length &&
		(uint64) JR_USES_OFFSET(r) + (uint64) use_size * r->uses_capacity <= r->length &&
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
 * Decide about one record (already read into memory) at 'off': queue it
 * (returns true: it is taken care of), or leave it (returns false: still
 * open in a live file).  'final': no more records will come and none will
 * be closed any more (the file's backend died or exited).
 */
static bool
consider_record(FileProgress *p, uint64 off, const JournalRecord *r, bool dead, bool final,
				uint32 use_size)
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
	/* a record that fails its checksum is not trusted, nor dropped */
	batch_add(p, off, r, dead, use_size,
			  licdata_journal_crc(r) != r->crc ? "the record fails its checksum" : NULL);
	return true;
}

/* What a file holds, read with its descriptor closed again. */
typedef struct JournalRead
{
	JournalFileHeader h;
	uint32		use_size;
	int			nchunks;
	char	   *chunk[2];		/* the new records: up to the ring's end, then from its start */
	uint32		chunk_len[2];
	List	   *pending_copies; /* JournalRecord * or NULL per pending record */
} JournalRead;

/*
 * Read what is new in a file (and the records passed while open) into
 * memory.  Returns false when the file cannot be read now.
 */
static bool
read_file(FileProgress *p, JournalRead *fr)
{
	char		path[MAXPGPATH];
	int			fd;
	ListCell   *lc;
	uint64		pos;
	uint64		ring;

	memset(fr, 0, sizeof(*fr));
	snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), p->name);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		return false;
	if (pg_pread(fd, &fr->h, sizeof(fr->h), 0) != sizeof(fr->h) || fr->h.magic != JF_MAGIC)
	{
		/* being created (or not ours): look again next pass */
		CloseTransientFile(fd);
		return false;
	}
	if (fr->h.version < JF_VERSION_MIN || fr->h.version > JF_VERSION)
	{
		if (!p->bad_version)
			ereport(WARNING,
					(errmsg("journal file \"%s\" has layout version %u, this build reads versions %u to %u; it is left in place",
							p->name, fr->h.version, JF_VERSION_MIN, JF_VERSION),
					 errhint("Run the licdata version that wrote it until its records are moved.")));
		p->bad_version = true;
		CloseTransientFile(fd);
		return false;
	}
	fr->use_size = fr->h.version == 4 ? JOURNAL_USE_V4_SIZE : sizeof(JournalUse);
	ring = fr->h.ring_size;
	if (ring == 0)
	{
		CloseTransientFile(fd);
		return false;
	}
	if (p->size == 0)
	{
		struct stat st;

		if (fstat(fd, &st) == 0)
			p->size = (uint64) st.st_size;
	}
	pg_read_barrier();
	if (!p->started)
	{
		/* everything before the file's tail was moved and committed earlier */
		p->offset = fr->h.tail;
		p->committed = fr->h.tail;
		p->tail_written = fr->h.tail;
		p->started = true;
	}
	foreach(lc, p->pending)
	{
		PendingRecord *pr = lfirst(lc);
		JournalRecord *r = palloc(pr->length);

		if (pg_pread(fd, r, pr->length, sizeof(JournalFileHeader) + pr->offset % ring) != (ssize_t) pr->length)
		{
			pfree(r);
			r = NULL;
		}
		fr->pending_copies = lappend(fr->pending_copies, r);
	}
	pos = p->offset;
	while (pos < fr->h.head && fr->nchunks < 2)
	{
		uint64		phys = pos % ring;
		uint32		len = (uint32) Min(fr->h.head - pos, ring - phys);
		char	   *buf = palloc(len);

		if (pg_pread(fd, buf, len, sizeof(JournalFileHeader) + phys) != (ssize_t) len)
		{
			pfree(buf);
			break;
		}
		fr->chunk[fr->nchunks] = buf;
		fr->chunk_len[fr->nchunks] = len;
		fr->nchunks++;
		pos += len;
	}
	CloseTransientFile(fd);
	return true;
}

/*
 * A file another node wrote (journal.h, "Whose files"): none of its records
 * is moved, handed over or counted here, and its header is not written.
 * On a standby it is a copy a base backup brought (its writer has the
 * original and moves its records): it is removed with the finished files.
 * On a primary it is left in place, with one warning.
 */
static void
foreign_file(FileProgress *p, JournalRead *fr)
{
	bool		standby = RecoveryInProgress();

	for (int c = 0; c < fr->nchunks; c++)
		pfree(fr->chunk[c]);
	list_free(fr->pending_copies);
	p->final = true;
	p->finished = standby;
	if (p->foreign)
		return;
	p->foreign = true;
	if (standby)
		ereport(LOG,
				(errmsg("licdata: journal file \"%s\" was written by another node; this standby removes its copy",
						p->name),
				 errdetail("Its writer (node identity %016llx) moves its records; this node is %016llx.",
						   (unsigned long long) fr->h.node_id, (unsigned long long) licdata_node_id)));
	else
		ereport(WARNING,
				(errmsg("journal file \"%s\" was written by another node; its records are not moved here",
						p->name),
				 errdetail("Its writer has node identity %016llx; this node is %016llx.",
						   (unsigned long long) fr->h.node_id, (unsigned long long) licdata_node_id),
				 errhint("It is a copy of that node's journal (a base backup): its writer moves its records. Remove the file when that node has moved them, or is gone for good.")));
}

/* Queue what can be moved from one file. */
static void
process_file(FileProgress *p)
{
	JournalRead	fr;
	bool		dead;
	bool		final;
	ListCell   *lc;

	p->seen = true;
	if (!read_file(p, &fr))
		return;
	if (JF_FOREIGN(&fr.h))
	{
		foreign_file(p, &fr);
		return;
	}
	dead = (fr.h.incarnation != licdata_shared->incarnation);
	final = dead || fr.h.closed != 0;
	p->final = final;

	/* Records passed while open: moved once closed (or once final). */
	{
		List	   *still = NIL;
		ListCell   *cc = list_head(fr.pending_copies);

		foreach(lc, p->pending)
		{
			PendingRecord *pr = lfirst(lc);
			JournalRecord *r = lfirst(cc);

			cc = lnext(fr.pending_copies, cc);
			if (r == NULL || !record_sane(r, pr->length, fr.use_size) || r->lpos != pr->offset)
			{
				ereport(WARNING, (errmsg("journal record \"%s@%llu\" cannot be read again and is skipped",
										 p->name, (unsigned long long) pr->offset)));
				pfree(pr);
			}
			else if (consider_record(p, pr->offset, r, dead, final, fr.use_size))
				pfree(pr);
			else
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				still = lappend(still, pr);
				MemoryContextSwitchTo(old);
			}
			if (r)
				pfree(r);
		}
		list_free(p->pending);
		p->pending = still;
	}

	/* Records added since the last pass, chunk by chunk up to the ring's end. */
	for (int c = 0; c < fr.nchunks; c++)
	{
		char	   *buf = fr.chunk[c];
		uint32		len = fr.chunk_len[c];
		uint32		off = 0;
		bool		stop = false;

		while (off < len)
		{
			JournalRecord *r = (JournalRecord *) (buf + off);

			if (len - off >= 2 * sizeof(uint32) && ((uint32 *) r)[0] == JR_PAD_MAGIC &&
				((uint32 *) r)[1] == len - off)
			{
				off = len;		/* the rest of the ring is padding */
				break;
			}
			if (!record_sane(r, len - off, fr.use_size) || r->lpos != p->offset + off)
			{
				if (!final)
				{
					stop = true;	/* cannot happen below 'head'; look again */
					break;
				}
				ereport(WARNING, (errmsg("journal file \"%s\" is damaged at offset %llu; the rest is skipped",
										 p->name, (unsigned long long) (p->offset + off))));
				p->offset = fr.h.head;	/* so that the file counts as finished */
				off = 0;
				stop = true;
				break;
			}
			if (!consider_record(p, p->offset + off, r, dead, final, fr.use_size))
				add_pending(p, p->offset + off, r->length);
			off += r->length;
		}
		p->offset += off;
		pfree(buf);
		if (stop || off == 0)
		{
			for (c++; c < fr.nchunks; c++)
				pfree(fr.chunk[c]);
			break;
		}
	}
	list_free(fr.pending_copies);
	p->finished = final && p->pending == NIL && p->offset >= fr.h.head;
}

/* ---- quota counters after a restart ---- */

/*
 * Today's counters: the usage table's rows of today, plus the records of
 * the journal (files of an earlier incarnation: every backend of this one
 * waited for the counters before counting) that are not in the table yet.
 */
static void
rebuild_quotas(void)
{
	int			rc;
	TimestampTz now = GetCurrentTimestamp();
	int32		today = (int32) (now / USECS_PER_DAY);
	HTAB	   *extra;
	HASHCTL		ctl;
	ArrayBuildState *refs = initArrayResult(TEXTOID, CurrentMemoryContext, false);
	List	   *recs = NIL;		/* of BatchRec *, licensee records of today */
	DIR		   *dir;
	struct dirent *de;
	ListCell   *lc;
	typedef struct
	{
		int64		licence_id;
		int64		queries;
		int64		rows;
	}			Extra;

	/*
	 * A standby's counters are its own use of the quota it leases from the
	 * primary (lease.c): nothing to rebuild, a restart leaves it no lease.
	 * A node just promoted forgets those before counting as a primary.
	 */
	if (RecoveryInProgress())
		return;
	{
		HASH_SEQ_STATUS seq;
		LicdataQuotaEntry *e;

		LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
		hash_seq_init(&seq, licdata_quota_hash);
		while ((e = hash_seq_search(&seq)) != NULL)
			if (e->standby)
				hash_search(licdata_quota_hash, &e->licence_id, HASH_REMOVE, NULL);
		LWLockRelease(licdata_shared->quota_lock);
	}

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(Extra);
	ctl.hcxt = CurrentMemoryContext;
	extra = hash_create("licdata quota rebuild", 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	dir = AllocateDir(licdata_journal_dir());
	while (dir && (de = ReadDir(dir, licdata_journal_dir())) != NULL)
	{
		size_t		n = strlen(de->d_name);
		FileProgress tmp;
		JournalRead	fr;

		if (n <= 4 || n >= sizeof(tmp.name) || strcmp(de->d_name + n - 4, ".jnl") != 0)
			continue;
		memset(&tmp, 0, sizeof(tmp));
		strlcpy(tmp.name, de->d_name, sizeof(tmp.name));
		/* this incarnation's files were counted as written; others' are theirs */
		if (!read_file(&tmp, &fr) || fr.h.incarnation == licdata_shared->incarnation ||
			JF_FOREIGN(&fr.h))
			continue;
		for (int c = 0; c < fr.nchunks; c++)
		{
			uint32		off = 0;

			while (off + 2 * sizeof(uint32) <= fr.chunk_len[c])
			{
				JournalRecord *r = (JournalRecord *) (fr.chunk[c] + off);

				if (((uint32 *) r)[0] == JR_PAD_MAGIC ||
					!record_sane(r, fr.chunk_len[c] - off, fr.use_size))
					break;
				if ((r->state == JR_OPEN || r->state == JR_CLOSED) && r->kind == KIND_LICENSEE &&
					valid_ts(r->started_at) && (int32) (r->started_at / USECS_PER_DAY) == today &&
					licdata_journal_crc(r) == r->crc)
				{
					BatchRec   *b = palloc0(sizeof(BatchRec));
					FileProgress *fp = palloc(sizeof(FileProgress));

					memcpy(fp, &tmp, sizeof(FileProgress));
					b->p = fp;
					b->off = r->lpos;
					b->use_size = fr.use_size;
					b->r = palloc(r->length);
					memcpy(b->r, r, r->length);
					recs = lappend(recs, b);
					accumArrayResult(refs, CStringGetTextDatum(psprintf("%s@%llu", tmp.name,
																		(unsigned long long) r->lpos)),
									 false, TEXTOID, CurrentMemoryContext);
				}
				off += r->length;
			}
		}
	}
	if (dir)
		FreeDir(dir);

	if (recs != NIL)
	{
		Datum		arg = makeArrayResult(refs, CurrentMemoryContext);
		Oid			t = TEXTARRAYOID;
		List	   *moved = NIL;

		rc = SPI_execute_with_args("SELECT m.ref FROM licdata_internal._moved($1) m(ref)",
								   1, &t, &arg, NULL, true, 0);
		if (rc != SPI_OK_SELECT)
			elog(ERROR, "could not probe for moved records");
		for (uint64 k = 0; k < SPI_processed; k++)
			moved = lappend(moved, SPI_getvalue(SPI_tuptable->vals[k], SPI_tuptable->tupdesc, 1));
		foreach(lc, recs)
		{
			BatchRec   *b = lfirst(lc);
			RecView		v;
			ListCell   *mc;
			bool		done = false;

			rec_view(b, &v);
			foreach(mc, moved)
				if (strcmp(lfirst(mc), v.ref) == 0)
					done = true;
			if (done)
				continue;
			for (int i = 0; i < v.nuses; i++)
			{
				bool		found;
				Extra	   *e;

				if (v.uses[i].licence_id == 0)
					continue;
				if (v.uses[i].flags & USE_PRODUCT_READ)
					continue;
				e = hash_search(extra, &v.uses[i].licence_id, HASH_ENTER, &found);
				if (!found)
					e->queries = e->rows = 0;
				/* a product licence's day counter counts calls (product.c) */
				if (v.uses[i].flags & USE_PRODUCT)
				{
					e->queries += v.uses[i].calls;
					e->rows += v.uses[i].rows;
				}
				else
				{
					e->queries++;
					e->rows += v.billed;
				}
			}
		}
	}

	/*
	 * A product licence's day counter counts calls (product.c).  Today's
	 * quota leases count as used as granted, net of what was given back;
	 * the rows of a standby (another node) that held a lease of the licence
	 * today are served from it, so they are left out (lease.c).
	 */
	{
		Oid			nt[1] = {TEXTOID};
		Datum		na[1] = {CStringGetTextDatum(licdata_node_name())};

		rc = SPI_execute_with_args("WITH t AS (SELECT (pg_catalog.now() AT TIME ZONE 'UTC')::pg_catalog.date AS day), "
								   "u AS (SELECT u.licence_id, CASE WHEN u.mode OPERATOR(pg_catalog.=) 'product' "
								   "THEN u.calls ELSE 1 END AS q, u.rows AS r, 0 AS l FROM licdata_internal._usage_since("
								   "pg_catalog.date_trunc('day', pg_catalog.now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') u "
								   "WHERE u.licence_id IS NOT NULL "
								   "AND NOT EXISTS (SELECT FROM licdata.quota_leases q, t WHERE q.day OPERATOR(pg_catalog.=) t.day "
								   "AND q.node OPERATOR(pg_catalog.=) u.node AND q.licence_id OPERATOR(pg_catalog.=) u.licence_id "
								   "AND u.node OPERATOR(pg_catalog.<>) $1) "
								   "UNION ALL SELECT q.licence_id, q.queries_granted OPERATOR(pg_catalog.-) q.queries_returned, "
								   "q.rows_granted OPERATOR(pg_catalog.-) q.rows_returned, "
								   "q.lookups_granted OPERATOR(pg_catalog.-) q.lookups_returned "
								   "FROM licdata.quota_leases q, t WHERE q.day OPERATOR(pg_catalog.=) t.day) "
								   "SELECT u.licence_id, pg_catalog.sum(u.q)::pg_catalog.int8, pg_catalog.sum(u.r), "
								   "pg_catalog.sum(u.l)::pg_catalog.int8 FROM u GROUP BY u.licence_id",
								   1, nt, na, NULL, true, 0);
	}
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not rebuild quota counters");
	LWLockAcquire(licdata_shared->quota_lock, LW_EXCLUSIVE);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		int64		q = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		Datum		rd = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull);
		int64		rows = isnull ? 0 : DatumGetInt64(DirectFunctionCall1(numeric_int8, rd));
		Datum		ld = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4, &isnull);
		int64		leased_lookups = isnull ? 0 : DatumGetInt64(ld);
		bool		found;
		LicdataQuotaEntry *e = hash_search(licdata_quota_hash, &id, HASH_ENTER_NULL, &found);

		if (e == NULL)
			break;
		if (!found)
		{
			/* lookups are not in the usage table: they start afresh */
			memset(e, 0, sizeof(*e));
			e->licence_id = id;
		}
		e->day = today;
		e->queries = q;
		e->rows = rows;
		/* lookups leased to standbys are in the lease table (lease.c) */
		e->lookups = Max(e->lookups, leased_lookups);
	}
	{
		HASH_SEQ_STATUS seq;
		Extra	   *x;

		hash_seq_init(&seq, extra);
		while ((x = hash_seq_search(&seq)) != NULL)
		{
			bool		found;
			LicdataQuotaEntry *e = hash_search(licdata_quota_hash, &x->licence_id, HASH_ENTER_NULL, &found);

			if (e == NULL)
				continue;
			if (!found || e->day != today)
			{
				memset(e, 0, sizeof(*e));
				e->licence_id = x->licence_id;
				e->day = today;
			}
			e->queries += x->queries;
			e->rows += x->rows;
		}
	}
	LWLockRelease(licdata_shared->quota_lock);
}

static void
set_quota_ready(void)
{
	if (pg_atomic_read_u32(&licdata_shared->quota_ready) == 0)
	{
		pg_atomic_write_u32(&licdata_shared->quota_ready, 1);
		ConditionVariableBroadcast(&licdata_shared->quota_cv);
	}
}

/* ---- the pass ---- */

static int
name_cmp(const ListCell *a, const ListCell *b)
{
	return strcmp((const char *) lfirst(a), (const char *) lfirst(b));
}

static void
flush_pass(MemoryContext pass_cxt)
{
	DIR		   *dir;
	struct dirent *de;
	MemoryContext old;
	List	   *names = NIL;
	ListCell   *lc;
	bool		extension_here;
	bool		version_mismatch;
	const LicdataCatalog *cat;
	static bool mismatch_logged = false;
	uint64		created;
	int64		listed = 0;
	TimestampTz start = GetCurrentTimestamp();

	old = MemoryContextSwitchTo(pass_cxt);
	pass_moved = 0;

	/*
	 * A standby just promoted: today's quota counters are rebuilt from its
	 * tables (the old primary's records replayed into them) and journal.
	 */
	{
		static bool was_standby = false;
		bool		standby = RecoveryInProgress();

		if (was_standby && !standby)
		{
			pg_atomic_write_u32(&licdata_shared->quota_ready, 0);

			/*
			 * Read every file again from its tail: records handed over whose
			 * commit this node had not replayed when it was promoted are on
			 * the old timeline only, and are moved here now (those it had
			 * replayed meet their ranges in journal_moved and are skipped).
			 */
			while (progress != NIL)
				progress_forget(linitial(progress));
		}
		was_standby = standby;
	}

	/* Is licdata here?  Then: the chain head, the quota counters. */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "could not connect to SPI");
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
	if (extension_here)
	{
		load_chain();
		if (pg_atomic_read_u32(&licdata_shared->quota_ready) == 0)
			rebuild_quotas();
		/* a standby's head is read again if it is promoted during the pass */
		if (RecoveryInProgress())
			chain_known = false;
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(pass_cxt);
	if (!extension_here)
	{
		if (!version_mismatch)
			set_quota_ready();
		pgstat_report_activity(STATE_IDLE, NULL);
		MemoryContextSwitchTo(old);
		return;
	}
	set_quota_ready();

	/* the files, and the disk they take (see shmem.h: journal_base) */
	created = pg_atomic_read_u64(&licdata_shared->journal_bytes);
	pg_read_barrier();
	dir = AllocateDir(licdata_journal_dir());
	while (dir && (de = ReadDir(dir, licdata_journal_dir())) != NULL)
	{
		size_t		n = strlen(de->d_name);
		char		path[MAXPGPATH];
		struct stat st;

		if (n > 4 && n < 64 && strcmp(de->d_name + n - 4, ".jnl") == 0)
		{
			names = lappend(names, pstrdup(de->d_name));
			snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), de->d_name);
			if (stat(path, &st) == 0)
				listed += st.st_size;
		}
	}
	if (dir)
		FreeDir(dir);
	pg_atomic_write_u64(&licdata_shared->journal_base, (uint64) (listed - (int64) created));
	list_sort(names, name_cmp);

	foreach(lc, progress)
		((FileProgress *) lfirst(lc))->seen = false;
	foreach(lc, names)
	{
		FileProgress *p = progress_for(lfirst(lc));

		process_file(p);
	}
	send_batch();
	write_tails();
	if (RecoveryInProgress())
	{
		/* a standby: tell the primary it lives, and what it holds */
		hand_over(0);
	}
	else
	{
		/* the primary: the records standbys handed over */
		licdata_replica_drain(queue_inbox, send_batch);
	}
	pgstat_report_activity(STATE_IDLE, NULL);

	/*
	 * Only now, with the records committed, may their files go.  A file
	 * that cannot be removed keeps its progress, so it is not read again.
	 */
	foreach(lc, progress)
	{
		char		path[MAXPGPATH];
		FileProgress *p = lfirst(lc);

		if (!p->seen)
		{
			/* gone (removed by someone else): forget it */
			progress = foreach_delete_current(progress, lc);
			progress_free(p);
			continue;
		}
		/* (a standby's: and its hand-overs replayed here, see write_tails) */
		if (!p->finished || p->unsent > 0 || p->unreplayed != NIL)
			continue;
		snprintf(path, sizeof(path), "%s/%s", licdata_journal_dir(), p->name);
		if (unlink(path) != 0 && errno != ENOENT)
		{
			if (!p->unlink_failed)
				ereport(WARNING, (errcode_for_file_access(),
								  errmsg("could not remove journal file \"%s\": %m", path),
								  errdetail("Its records are in the tables; it will be removed when it can be.")));
			p->unlink_failed = true;
			continue;
		}
		if (p->size > 0)
			pg_atomic_fetch_sub_u64(&licdata_shared->journal_base, p->size);
		progress = foreach_delete_current(progress, lc);
		progress_free(p);
	}
	if (pass_moved > 0)
	{
		double		secs = (double) (GetCurrentTimestamp() - start) / USECS_PER_SEC;
		double		rate = pass_moved / Max(secs, 1e-6);
		uint64		bits;

		memcpy(&bits, &rate, sizeof(bits));
		pg_atomic_write_u64(&licdata_shared->rate_bits, bits);
	}
	MemoryContextSwitchTo(old);
}

/* The flusher leaves no latch or pid behind for others to signal. */
static void
worker_exit(int code, Datum arg)
{
	licdata_shared->worker_latch = NULL;
	pg_write_barrier();
	pg_atomic_write_u32(&licdata_shared->worker_pid, 0);
}

/*
 * After an error in a pass: log it, roll back, forget what was read but
 * not committed (the next pass reads each file again from its tail).
 */
static void
recover_from_error(MemoryContext pass_cxt)
{
	HOLD_INTERRUPTS();
	/* a failed hand-over is logged when it starts failing, not each time */
	licdata_replica_report_error();
	AbortCurrentTransaction();
	FlushErrorState();
	licdata_records_writable = false;
	MemoryContextSwitchTo(TopMemoryContext);
	while (progress != NIL)
		progress_forget(linitial(progress));
	batch_n = 0;
	batch_bytes = 0;
	MemoryContextReset(batch_cxt);
	chain_known = false;
	forget_plans();
	MemoryContextReset(pass_cxt);
	RESUME_INTERRUPTS();
}

void
licdata_worker_main(Datum arg)
{
	MemoryContext pass_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	licdata_in_flusher = true;
#ifdef __GLIBC__

	/*
	 * A batch allocates and frees a few chunks of megabytes (the packed
	 * rows, their compressed copy, TOAST's buffers).  By default glibc
	 * serves such chunks with mmap and gives them back at once, so every
	 * batch faulted its pages in anew (13 % of the flusher's CPU): keep
	 * them in the heap, and the heap's top, in this process.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
#endif
	before_shmem_exit(worker_exit, (Datum) 0);
	pg_atomic_write_u32(&licdata_shared->worker_pid, MyProcPid);
	licdata_shared->worker_latch = MyLatch;
	batch = MemoryContextAlloc(TopMemoryContext, sizeof(BatchRec) * BATCH_RECORDS);
	batch_cxt = AllocSetContextCreate(TopMemoryContext, "licdata flush batch", ALLOCSET_DEFAULT_SIZES);
	pass_cxt = AllocSetContextCreate(TopMemoryContext, "licdata flush pass", ALLOCSET_DEFAULT_SIZES);

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
		set_quota_ready();
		pg_atomic_fetch_add_u64(&licdata_shared->passes, 1);
		ConditionVariableBroadcast(&licdata_shared->pass_cv);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	/* every name the flusher's SQL resolves is qualified; pin the rest */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	(void) MakePGDirectory(LICDATA_DIR);
	(void) MakePGDirectory(licdata_journal_dir());

	for (;;)
	{
		bool		failed = false;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		PG_TRY();
		{
			flush_pass(pass_cxt);
		}
		PG_CATCH();
		{
			recover_from_error(pass_cxt);
			failed = true;
		}
		PG_END_TRY();
		MemoryContextReset(pass_cxt);
		/* licensees' privileges follow licence validity (visibility.c) */
		if (!failed)
			licdata_privileges_sweep();
		if (!failed)
		{
			pg_atomic_fetch_add_u64(&licdata_shared->passes, 1);
			ConditionVariableBroadcast(&licdata_shared->pass_cv);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 licdata_flush_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- licdata.journal_status ---- */

/*
 * licdata._journal_status(): per journal file, its bytes on disk, the
 * records in it not yet moved and committed (from the file's tail to its
 * head) and the oldest one's start; with the flusher's rate (records per
 * second of its last pass that moved records) and its total.  Operators
 * and auditors only.
 */
PG_FUNCTION_INFO_V1(licdata_journal_status);
Datum
licdata_journal_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	DIR		   *dir;
	struct dirent *de;
	uint64		bits = pg_atomic_read_u64(&licdata_shared->rate_bits);
	double		rate;
	int64		moved = (int64) pg_atomic_read_u64(&licdata_shared->records_moved);
	const char *node = (cluster_name && cluster_name[0]) ? cluster_name : "local";
	int			rows = 0;

	if (!licdata_preloaded)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("licdata is not loaded through shared_preload_libraries")));
	if (!licdata_role_is_operator(GetUserId()) && !licdata_role_is_auditor(GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read the journal status"),
				 errhint("Only operators and auditors may read licdata.journal_status.")));
	memcpy(&rate, &bits, sizeof(rate));
	InitMaterializedSRF(fcinfo, 0);

	dir = AllocateDir(licdata_journal_dir());
	while (dir && (de = ReadDir(dir, licdata_journal_dir())) != NULL)
	{
		size_t		n = strlen(de->d_name);
		FileProgress tmp;
		JournalRead fr;
		int64		pending = 0;
		TimestampTz oldest = 0;
		Datum		values[8];
		bool		nulls[8] = {0};

		if (n <= 4 || n >= sizeof(tmp.name) || strcmp(de->d_name + n - 4, ".jnl") != 0)
			continue;
		memset(&tmp, 0, sizeof(tmp));
		strlcpy(tmp.name, de->d_name, sizeof(tmp.name));
		if (!read_file(&tmp, &fr))
			continue;
		for (int c = 0; c < fr.nchunks; c++)
		{
			uint32		off = 0;

			while (off + 2 * sizeof(uint32) <= fr.chunk_len[c])
			{
				JournalRecord *r = (JournalRecord *) (fr.chunk[c] + off);

				if (((uint32 *) r)[0] == JR_PAD_MAGIC || !record_sane(r, fr.chunk_len[c] - off, fr.use_size))
					break;
				if (r->state != JR_VOID)
				{
					pending++;
					if (valid_ts(r->started_at) && (oldest == 0 || r->started_at < oldest))
						oldest = r->started_at;
				}
				off += r->length;
			}
			pfree(fr.chunk[c]);
		}
		values[0] = CStringGetTextDatum(node);
		values[1] = CStringGetTextDatum(de->d_name);
		values[2] = Int64GetDatum((int64) tmp.size);
		values[3] = Int64GetDatum(pending);
		values[4] = TimestampTzGetDatum(oldest);
		nulls[4] = (oldest == 0);
		values[5] = Float8GetDatum(rate);
		values[6] = Int64GetDatum(moved);
		values[7] = BoolGetDatum(fr.h.incarnation != licdata_shared->incarnation || fr.h.closed != 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		rows++;
	}
	if (dir)
		FreeDir(dir);
	if (rows == 0)
	{
		Datum		values[8] = {0};
		bool		nulls[8] = {false, true, false, false, true, false, false, true};

		values[0] = CStringGetTextDatum(node);
		values[2] = Int64GetDatum(0);
		values[3] = Int64GetDatum(0);
		values[5] = Float8GetDatum(rate);
		values[6] = Int64GetDatum(moved);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
