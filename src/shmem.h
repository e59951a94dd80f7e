/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  licdata's shared memory: one struct, one LWLock tranche.
 *
 * Locking protocol:
 *	- key_generation, journal_file_seq, worker_latch_pid: atomics or
 *	  single-writer fields; read without a lock.
 *	- incarnation: written once by the postmaster at shared memory
 *	  initialisation, read-only afterwards.
 *	- the quota hash (LicdataQuotaEntry, keyed by licence id): every read
 *	  and write under quota_lock; exclusive to insert or change, shared
 *	  to look up.
 *	- quota_ready: set by the background worker once counters are rebuilt
 *	  from the usage table after a restart; read without a lock (a
 *	  backend that sees false waits or refuses quota-limited work).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_SHMEM_H
#define LICDATA_SHMEM_H

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/hsearch.h"

typedef struct LicdataQuotaEntry
{
	int64		licence_id;		/* hash key */
	int32		day;			/* UTC day (days since 2000-01-01) of the counts */
	int64		queries;		/* statements started today */
	int64		rows;			/* rows delivered today */
	int64		lookups;		/* licdata.token() calls today (not rebuilt
								 * after a restart: see README, Known limits) */
} LicdataQuotaEntry;

typedef struct LicdataShared
{
	LWLock	   *quota_lock;
	uint64		incarnation;	/* random, new at every postmaster (re)start of shmem */
	pg_atomic_uint64 key_generation;	/* bumped by rotate_master_key */
	pg_atomic_uint64 journal_file_seq;	/* numbers journal files */
	pg_atomic_uint32 quota_ready;	/* worker has rebuilt the counters */
	pg_atomic_uint32 worker_pid;	/* the flusher, 0 when not running */
	pg_atomic_uint64 passes;	/* flush passes the worker has completed */
	Latch	   *worker_latch;	/* set to wake the flusher early */
} LicdataShared;

#define LICDATA_QUOTA_ENTRIES 4096

extern LicdataShared *licdata_shared;
extern HTAB *licdata_quota_hash;

extern void licdata_shmem_init(void);

#endif							/* LICDATA_SHMEM_H */
