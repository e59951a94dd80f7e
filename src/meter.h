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
#include "journal.h"
#include "licdata.h"

#define LICDATA_MAX_USES 32

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
extern bool licdata_in_flusher;
extern void licdata_worker_register(void);
extern void licdata_worker_wake(void);

#endif							/* LICDATA_METER_H */
