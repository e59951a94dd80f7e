/*-------------------------------------------------------------------------
 *
 * licdata.c
 *	  Module entry point: _PG_init wires licdata's parts in a fixed order.
 *
 * licdata only works when loaded through shared_preload_libraries: its
 * hooks must be in place before any licensee connects, its shared memory
 * and background worker exist only then.  Loaded any other way (a call to
 * one of its SQL functions loads the library), it installs nothing and its
 * SQL entry points refuse to work (licdata.guard() errors, CREATE EXTENSION
 * is refused), so nobody reads published data without it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"

#include "hooks.h"
#include "journal_wal.h"
#include "keys.h"
#include "licdata.h"
#include "meter.h"
#include "product.h"
#include "replica.h"
#include "shmem.h"

PG_MODULE_MAGIC;

bool		licdata_preloaded = false;

void		_PG_init(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	licdata_preloaded = true;

	/* first: it defines a licdata.* setting, and define_gucs reserves the prefix */
	licdata_journal_wal_init();	/* the WAL resource manager (journal_wal.c) */
	licdata_define_gucs();
	licdata_shmem_init();
	licdata_replica_node_init();
	licdata_keys_init_postmaster();
	licdata_catalog_init();
	licdata_policy_init();
	licdata_meter_init();
	licdata_product_init();
	licdata_sqlfuncs_init();
	licdata_worker_register();
	licdata_hooks_install();
}
