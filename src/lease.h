/*-------------------------------------------------------------------------
 *
 * lease.h
 *	  Day-quota leases: a hot standby serves licences with day quotas from
 *	  quota it leases from the primary in chunks (lease.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_LEASE_H
#define LICDATA_LEASE_H

#include "licdata.h"
#include "shmem.h"

/* The kinds of day quota, each leased on its own (LicdataQuotaEntry.lease[k]). */
#define LEASE_QUERIES	0		/* statements; a product licence's calls */
#define LEASE_ROWS		1		/* rows */
#define LEASE_LOOKUPS	2		/* licdata.token() calls */
#define LEASE_KINDS		3

typedef enum LeaseResult
{
	LEASE_OK,					/* taken */
	LEASE_EXHAUSTED,			/* the primary has none left (*kind says which) */
	LEASE_UNREACHABLE			/* the primary could not be asked */
} LeaseResult;

extern int	licdata_quota_lease_max;
extern int	licdata_quota_lease_idle_ms;

extern void licdata_lease_define_gucs(void);

/* standby backends (meter.c's quota functions) */
extern LeaseResult licdata_lease_take(int64 licence_id, const int64 *limit, const int64 *need,
									  int64 *take, int64 extra_rows, int32 *day, int *kind);
extern void licdata_lease_unreachable_decision(int64 licence_id, LicdataDecision *d);

/* the standby's flusher (replica.c), on its connection to the primary */
struct pg_conn;
extern bool licdata_lease_give_back(struct pg_conn *c, bool all);

/* meter.c: the shared counters, for the primary's grants */
extern LicdataQuotaEntry *licdata_quota_entry(int64 licence_id, int32 today);
extern void licdata_quota_wait_ready(void);
/* ERROR: the shared quota table has no room for the licence (meter.c) */
extern void licdata_quota_table_full(int64 licence_id) pg_attribute_noreturn();

#endif							/* LICDATA_LEASE_H */
