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
#include "journal.h"
#include "licdata.h"

#define LICDATA_MAX_USES 32

/* meter.c */
extern void licdata_meter_init(void);
extern void licdata_meter_denial(LicdataDataset *ds, const LicdataDecision *d, int64 licence_id);
extern void licdata_meter_executor_start(QueryDesc *qd, int eflags, int depth);
extern void licdata_meter_executor_end(QueryDesc *qd);
extern DestReceiver *licdata_meter_wrap_dest(QueryDesc *qd, DestReceiver *orig);
extern void licdata_meter_unwrap_dest(QueryDesc *qd, DestReceiver *wrapper);
extern DestReceiver *licdata_meter_fetch_dest(Node *parsetree, DestReceiver *dest, uint64 *id);
extern void licdata_meter_fetch_done(DestReceiver *counting, uint64 id);
extern void licdata_meter_lookup(LicdataDataset *ds, const LicdataLicence *lic);
extern void *licdata_meter_block_begin(void);
extern void licdata_meter_block_end(void *block);

/* hooks.c: the plan's record of the terms it was built under */
extern bool licdata_plan_fingerprint_matches(PlannedStmt *ps, LicdataDataset *ds,
											 const LicdataLicence *lic);

/* worker.c */
extern bool licdata_in_flusher;
extern void licdata_worker_register(void);
extern void licdata_worker_wake(void);

#endif							/* LICDATA_METER_H */
