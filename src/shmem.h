/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  licdata's shared memory: one struct, one LWLock tranche.
 *
 * Locking protocol:
 *	- key_generation, journal_file_seq: atomics; read without a lock.
 *	- worker_pid, worker_latch: written by the flusher only (set when it
 *	  starts, reset to 0 / NULL by its before_shmem_exit callback); read
 *	  without a lock (a stale latch is never left behind for SetLatch).
 *	- passes, records_moved, rate_bits: written by the flusher only,
 *	  atomics; pass_cv is broadcast after each pass (licdata.flush waits
 *	  on it).
 *	- journal_bytes, journal_base: the journal's disk, estimated as
 *	  journal_base + journal_bytes.  journal_bytes only grows by what
 *	  backends create: a backend adds a file's size before creating it (and
 *	  takes it back if that fails), refusing the statement when the sum
 *	  would pass licdata.max_journal_size.  journal_base (an int64 stored in
 *	  an atomic) is written by the flusher only: at each pass it lists the
 *	  directory and sets it to (sizes of the files it saw) - (journal_bytes
 *	  read before listing), and it subtracts each file it removes.  A file
 *	  created while the flusher lists may count twice until the next pass
 *	  (an overestimate: the safe side); files removed by anyone else are
 *	  forgotten at the next pass.
 *	- replica_ok_at, replica_cause: atomics, written by the flusher only
 *	  (on a standby, after each hand-over to the primary: replica.c), read
 *	  without a lock by backends deciding whether the standby may serve.
 *	- incarnation: written once by the postmaster at shared memory
 *	  initialisation, read-only afterwards.
 *	- the quota hash (LicdataQuotaEntry, keyed by licence id): every read
 *	  and write under quota_lock; exclusive to insert or change, shared
 *	  to look up.
 *	- quota_ready: set by the background worker once counters are rebuilt
 *	  from the usage table and the journal's unmoved records after a
 *	  restart; read without a lock.  A backend that sees 0 sleeps on
 *	  quota_cv, which the worker broadcasts after setting it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_SHMEM_H
#define LICDATA_SHMEM_H

#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "datatype/timestamp.h"
#include "utils/hsearch.h"

typedef struct LicdataQuotaEntry
{
	int64		licence_id;		/* hash key */
	int32		day;			/* UTC day (days since 2000-01-01) of the counts */
	int64		queries;		/* statements started today */
	int64		rows;			/* rows delivered today */
	int64		lookups;		/* licdata.token() calls today (not rebuilt
								 * after a restart: see README, Known limits) */
	/*
	 * On a standby (lease.c) the counts above are this node's own, taken
	 * from quota leased from the primary: lease[k] is what the primary
	 * granted today net of what was given back, returned[k] what was given
	 * back (returned_acked[k]: what the primary confirmed), last_take the
	 * last time a backend took from the lease.  'standby' marks such an
	 * entry (a promoted node's entries are rebuilt before use).  One
	 * backend at a time asks the primary for more (until topup_until);
	 * the answer "none left" of a kind is kept until exhausted_until[k],
	 * a failure to ask (failed_cause, replica.h) for a second from
	 * failed_at, so refused statements do not each ask again.
	 */
	bool		standby;
	int64		lease[3];
	int64		returned[3];
	int64		returned_acked[3];
	TimestampTz last_take;
	TimestampTz topup_until;
	TimestampTz exhausted_until[3];
	TimestampTz failed_at;
	uint32		failed_cause;
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
	ConditionVariable quota_cv;	/* quota_ready became 1 */
	ConditionVariable pass_cv;	/* a flush pass ended */
	pg_atomic_uint64 records_moved;	/* records moved since shmem init */
	pg_atomic_uint64 rate_bits;	/* double: records/s of the last pass that moved any */
	pg_atomic_uint64 journal_bytes;	/* bytes of journal files created (see above) */
	pg_atomic_uint64 journal_base;	/* int64: see above */
	/* read replicas (replica.c): written by the flusher, read by backends */
	pg_atomic_uint64 replica_ok_at;	/* TimestampTz of the last hand-over the
									 * primary acknowledged (shmem init time
									 * before the first) */
	pg_atomic_uint32 replica_cause;	/* why the last hand-over failed (replica.h) */
} LicdataShared;

#define LICDATA_QUOTA_ENTRIES 4096

extern LicdataShared *licdata_shared;
extern HTAB *licdata_quota_hash;

extern void licdata_shmem_init(void);

#endif							/* LICDATA_SHMEM_H */
