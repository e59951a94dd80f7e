/*-------------------------------------------------------------------------
 *
 * rewrite.h
 *	  The licensee query rewrite (rewrite.c) and the aggregate-only checks
 *	  it calls (aggregate.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_REWRITE_H
#define LICDATA_REWRITE_H

#include "licdata.h"

/*
 * One licence a statement uses, on one dataset: values decided once, in the
 * rewrite, never pointers into the policy cache (which may be reloaded
 * before the statement runs).  The fingerprint is of the terms the rewrite
 * applied (licdata_terms_fingerprint), computed when it decided.
 */
typedef struct LicdataUse
{
	Oid			dataset;
	int64		licence_id;
	bool		aggregate;
	uint64		fingerprint;
} LicdataUse;

typedef struct LicdataRewrite
{
	const LicdataLicensee *who;
	const char *purpose;
	const char *consent_ref;
	TimestampTz now;
	Oid			reader_role;
	Oid			guard_func;		/* licdata.guard() */
	List	   *uses;			/* of LicdataUse * */
	List	   *aggregate_levels;	/* of AggregateLevel * (aggregate.c) */
	bool		serial_only;	/* plan without parallel workers (fold.c) */
	List	   *inplace_masks;	/* masks put in the query in place (rewrite.c);
								 * fold.c skips them, as it skips the
								 * licensed subqueries */
} LicdataRewrite;

extern bool licdata_rewrite(Query *parse, LicdataRewrite *ctx);
extern void licdata_rewrite_refuse(LicdataRewrite *ctx, LicdataDataset *ds,
								   const LicdataDecision *d) pg_attribute_noreturn();
extern void licdata_rewrite_note_use(LicdataRewrite *ctx, LicdataDataset *ds,
									 const LicdataLicence *lic);

/* fold.c */
extern void licdata_fold_count(Query *parse, LicdataRewrite *ctx);

/* aggregate.c */
extern void licdata_aggregate_wrap(Query *q, Index rti, Query *sub, const LicdataLicence *lic,
								   LicdataDataset *ds, LicdataRewrite *ctx);
extern void licdata_aggregate_finish_level(Query *q, LicdataRewrite *ctx);

#endif							/* LICDATA_REWRITE_H */
