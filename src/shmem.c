/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Reserve and attach licdata's shared memory (see shmem.h for what each
 *	  field holds and which lock protects it).
 *
 * PostgreSQL 15 asks for shared memory in shmem_request_hook and hands it
 * out in shmem_startup_hook; both are chained here.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "licdata.h"
#include "shmem.h"

LicdataShared *licdata_shared = NULL;
HTAB	   *licdata_quota_hash = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
licdata_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(LicdataShared));

	size = add_size(size, hash_estimate_size(LICDATA_QUOTA_ENTRIES,
											 sizeof(LicdataQuotaEntry)));
	return size;
}

static void
licdata_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(licdata_shmem_size());
	RequestNamedLWLockTranche("licdata", 1);
}

static void
licdata_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	licdata_shared = ShmemInitStruct("licdata", sizeof(LicdataShared), &found);
	if (!found)
	{
		uint64		r = 0;

		memset(licdata_shared, 0, sizeof(LicdataShared));
		licdata_shared->quota_lock = &(GetNamedLWLockTranche("licdata"))->lock;
		if (!pg_strong_random(&r, sizeof(r)))
			r = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
		licdata_shared->incarnation = r;
		pg_atomic_init_u64(&licdata_shared->key_generation, 0);
		pg_atomic_init_u64(&licdata_shared->journal_file_seq, 0);
		pg_atomic_init_u32(&licdata_shared->quota_ready, 0);
		pg_atomic_init_u32(&licdata_shared->worker_pid, 0);
		pg_atomic_init_u64(&licdata_shared->passes, 0);
		licdata_shared->worker_latch = NULL;
		ConditionVariableInit(&licdata_shared->quota_cv);
		ConditionVariableInit(&licdata_shared->pass_cv);
		pg_atomic_init_u64(&licdata_shared->records_moved, 0);
		pg_atomic_init_u64(&licdata_shared->rate_bits, 0);
		pg_atomic_init_u64(&licdata_shared->replica_ok_at, (uint64) GetCurrentTimestamp());
		pg_atomic_init_u32(&licdata_shared->replica_cause, 0);
		pg_atomic_init_u64(&licdata_shared->journal_bytes, 0);
		pg_atomic_init_u64(&licdata_shared->journal_base, 0);
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(int64);
	info.entrysize = sizeof(LicdataQuotaEntry);
	licdata_quota_hash = ShmemInitHash("licdata quotas",
									   LICDATA_QUOTA_ENTRIES, LICDATA_QUOTA_ENTRIES,
									   &info, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

void
licdata_shmem_init(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = licdata_shmem_request;
#else
	licdata_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = licdata_shmem_startup;
}
