/*-------------------------------------------------------------------------
 *
 * distx.c
 *	  Module entry point: GUCs, shared memory and the background worker.
 *
 * distx can be loaded in two ways.  Through shared_preload_libraries it gets
 * shared memory and its background worker, and every feature works.  Loaded
 * on demand (CREATE EXTENSION without preloading) only the features that
 * need neither work (the column types, except hlc_now()/hlc_observe() which
 * keep their clock in shared memory); the others fail through
 * distx_require_preload() with a hint.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

#include "distx.h"
#include "cluster/cluster.h"
#include "remote/connection.h"
#include "remote/health.h"
#include "saga/saga.h"
#include "txn/fault.h"
#include "txn/recovery.h"
#include "txn/txn.h"
#include "types/hlc.h"
#include "worker/worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

bool		distx_preloaded = false;
char	   *distx_database = NULL;
DistxShared *distx_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
distx_shmem_size(void)
{
	Size		size = MAXALIGN(sizeof(DistxShared));

	size = add_size(size, hlc_shmem_size());
	size = add_size(size, health_shmem_size());
	size = add_size(size, txn_shmem_size());
	size = add_size(size, cluster_shmem_size());
	return size;
}

static void
distx_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(distx_shmem_size());
	RequestNamedLWLockTranche("distx", 1);
	cluster_shmem_request();
}

static void
distx_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	distx_shared = ShmemInitStruct("distx", sizeof(DistxShared), &found);
	if (!found)
	{
		memset(distx_shared, 0, sizeof(DistxShared));
		distx_shared->lock = &(GetNamedLWLockTranche("distx"))->lock;
	}
	hlc_shmem_init();
	health_shmem_init();
	txn_shmem_init();
	cluster_shmem_init();

	LWLockRelease(AddinShmemInitLock);
}

/*
 * Raise a clear error when a feature that needs shared memory or the
 * background worker is used while distx was not preloaded.
 */
void
distx_require_preload(const char *feature)
{
	if (distx_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s requires distx to be loaded via shared_preload_libraries",
						feature),
				 errhint("Add distx to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Wake the background worker to run a recovery pass at once.  A no-op
 * when the worker is not running: it does its work when it starts.
 */
void
distx_wake_worker(void)
{
	Latch	   *latch;

	if (distx_shared == NULL)
		return;
	LWLockAcquire(distx_shared->lock, LW_EXCLUSIVE);
	distx_shared->recovery_requested = true;
	latch = distx_shared->worker_latch;
	LWLockRelease(distx_shared->lock);
	if (latch)
		SetLatch(latch);
}

void
_PG_init(void)
{
	DefineCustomStringVariable("distx.database",
							   "Database in which the distx background worker runs.",
							   "The worker resolves in-doubt transactions and runs sagas "
							   "for the distx extension installed in this database.",
							   &distx_database,
							   "postgres",
							   /* PGC_POSTMASTER may only be defined while preloading */
							   process_shared_preload_libraries_in_progress ?
							   PGC_POSTMASTER : PGC_SIGHUP,
							   0,
							   NULL, NULL, NULL);

	hlc_define_gucs();
	health_define_gucs();
	connection_define_gucs();
	recovery_define_gucs();
	fault_define_gucs();
	saga_define_gucs();
	cluster_define_gucs();

	MarkGUCPrefixReserved("distx");

	/* the 2PC callbacks; they do nothing in a transaction without nodes */
	txn_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	distx_preloaded = true;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = distx_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = distx_shmem_startup;

	distx_worker_register();
	/* the Raft worker, on a member of a cluster only */
	cluster_register_worker_at_startup();
}
