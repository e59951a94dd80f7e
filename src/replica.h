/*-------------------------------------------------------------------------
 *
 * replica.h
 *	  Read replicas: a hot standby's records handed to the primary
 *	  (replica.c).
 *
 * On a standby the flusher (worker.c) does not write tables: it sends each
 * batch of journal records to the primary over libpq
 * (licdata_internal._receive_records), and advances the files' tails only once the
 * primary has committed them.  On the primary the received records wait in
 * licdata.replica_inbox until the flusher moves them into licdata.usage and
 * licdata.audit_log with the same C path as its own (one hash chain), and
 * deletes them from the inbox in the same transaction.
 *
 * A record keeps its journal reference "<file>@<position>" wherever it is
 * moved: the file name carries the writer's shared-memory incarnation (64
 * random bits, new at each start of a node), so the reference names the
 * node's run exactly, and it is the same whether the record is handed over
 * or, after a promotion, moved by the node itself.  The duplicate probe on
 * audit_log.journal_ref therefore counts every record once.  The node's
 * name (licdata.node_name) goes into the rows' "node" column.
 *
 * Each journal file also names the node that wrote it (licdata_node_id,
 * kept in pg_licdata/node_id, drawn anew in a restored base backup): a
 * standby hands over only its own files, so the copy of the primary's
 * journal that pg_basebackup brings is never handed over under the
 * standby's name (journal.h, "Whose files").
 *
 * The flusher's server log: a failed hand-over is logged once when
 * hand-over starts failing (and when its cause changes), repeats at
 * DEBUG1, and one line when it works again (licdata_replica_report_error).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_REPLICA_H
#define LICDATA_REPLICA_H

#include "access/xlogdefs.h"
#include "journal.h"
#include "licdata.h"

/* Why a standby's last hand-over failed (LicdataShared.replica_cause). */
#define REPLICA_OK				0
#define REPLICA_NO_CONNINFO		1	/* no licdata.primary_conninfo nor primary_conninfo */
#define REPLICA_CONNECT_FAILED	2	/* could not connect to the primary */
#define REPLICA_REFUSED			3	/* the primary refused the records */
#define REPLICA_NO_DATABASE		4	/* licdata has no home database here */

/* One record to hand over: where it lies in this node's journal. */
typedef struct ReplicaRecord
{
	const char *file;			/* journal file name */
	uint64		off;			/* logical position */
	bool		dead;			/* its backend died: an open record is cancelled */
	uint32		use_size;		/* sizeof(JournalUse) of its file's layout */
	const JournalRecord *r;
} ReplicaRecord;

/* A record from the primary's inbox, for the flusher to move. */
typedef void (*ReplicaQueueFn) (const char *ref, const char *node, const JournalRecord *r,
								bool dead, uint32 use_size);
typedef void (*ReplicaSendFn) (void);

extern char *licdata_node_name_setting;
extern char *licdata_primary_conninfo;
extern int	licdata_standby_grace_ms;

extern void licdata_replica_define_gucs(void);
extern void licdata_replica_node_init(void);	/* the postmaster, at load */
extern const char *licdata_node_name(void);

/* backends (decide.c) */
extern void licdata_replica_check_serving(void);

/* backends and the flusher on a standby (lease.c): libpq to the primary */
struct pg_conn;
struct pg_result;
extern struct pg_conn *licdata_replica_connect(const char *app, int timeout_ms, uint32 *cause, char **why);
extern struct pg_result *licdata_replica_exec(struct pg_conn *c, const char *sql, int nparams,
											  const char *const *values, int timeout_ms, char **why);

/* the flusher on a standby (worker.c); raise on failure */
extern XLogRecPtr licdata_replica_hand_over(const ReplicaRecord *recs, int n, int64 pending);
extern void licdata_replica_report_error(void);

/* the flusher on the primary (worker.c) */
extern void licdata_replica_drain(ReplicaQueueFn queue, ReplicaSendFn send);
extern void licdata_replica_inbox_delete(Datum refs);

#endif							/* LICDATA_REPLICA_H */
