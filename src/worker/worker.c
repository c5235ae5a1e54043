/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The distx background worker: one loop that drives recovery, sagas and
 *	  Raft.  It sleeps on its latch, so that SIGTERM, SIGHUP, postmaster
 *	  death and wake-ups from backends (distx_wake_worker) are honoured at
 *	  once, and every iteration runs in a memory context that is reset
 *	  before the next one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "access/xact.h"
#include "commands/extension.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "distx.h"
#include "cluster/cluster.h"
#include "saga/saga.h"
#include "txn/recovery.h"
#include "worker/worker.h"

/* how long the loop sleeps when nothing wakes it, in milliseconds */
#define WORKER_IDLE_TIMEOUT_MS	1000

void
distx_worker_register(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/* after a crash or an error exit, start again after 5 seconds */
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "distx");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "distx_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "distx coordinator");
	snprintf(worker.bgw_type, BGW_MAXLEN, "distx coordinator");
	worker.bgw_main_arg = (Datum) 0;
	worker.bgw_notify_pid = 0;

	RegisterBackgroundWorker(&worker);
}

static void
worker_detach_shmem(int code, Datum arg)
{
	LWLockAcquire(distx_shared->lock, LW_EXCLUSIVE);
	if (distx_shared->worker_pid == MyProcPid)
	{
		distx_shared->worker_pid = 0;
		distx_shared->worker_latch = NULL;
	}
	LWLockRelease(distx_shared->lock);
}

/*
 * One recovery pass in its own transaction.  An error is logged and the
 * transaction rolled back; the loop goes on.  Returns the delay in ms until
 * a node in backoff is due again (-1 if none).
 */
static long
worker_run_recovery(MemoryContext loop_context)
{
	volatile long next_due = -1;

	/* in a Raft cluster only the acting coordinator recovers */
	if (cluster_is_member() && cluster_acting_term() == 0)
		return -1;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "distx recovery pass");

	PG_TRY();
	{
		if (OidIsValid(get_extension_oid("distx", true)))
		{
			RecoveryResult r;

			next_due = recovery_pass(true, &r);
			if (r.committed + r.rolled_back > 0)
				ereport(LOG,
						(errmsg("distx recovery: %d committed, %d rolled back, %d in doubt, %d nodes unreachable",
								r.committed, r.rolled_back, r.in_doubt, r.unreachable)));
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(loop_context);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		next_due = distx_retry_base_delay;
	}
	PG_END_TRY();

	pgstat_report_activity(STATE_IDLE, NULL);
	return next_due;
}

void
distx_worker_main(Datum main_arg)
{
	MemoryContext loop_context;
	TimestampTz next_recovery_at = 0;
	TimestampTz next_saga_at = 0;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(distx_database, NULL, 0);

	LWLockAcquire(distx_shared->lock, LW_EXCLUSIVE);
	distx_shared->worker_pid = MyProcPid;
	distx_shared->worker_latch = MyLatch;
	LWLockRelease(distx_shared->lock);
	before_shmem_exit(worker_detach_shmem, (Datum) 0);

	elog(LOG, "distx coordinator started in database \"%s\"", distx_database);

	loop_context = AllocSetContextCreate(TopMemoryContext,
										 "distx worker loop",
										 ALLOCSET_DEFAULT_SIZES);

	while (!ShutdownRequestPending)
	{
		MemoryContext oldcontext;
		TimestampTz now;
		bool		requested;
		long		timeout;
		int			rc;

		now = GetCurrentTimestamp();
		timeout = Min(WORKER_IDLE_TIMEOUT_MS,
					  Max(0, TimestampDifferenceMilliseconds(now, next_recovery_at)));
		timeout = Min(timeout,
					  Max(0, TimestampDifferenceMilliseconds(now, next_saga_at)));

		/* WL_EXIT_ON_PM_DEATH: exit at once if the postmaster dies */
		rc = WaitLatch(MyLatch,
					   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   timeout,
					   PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ShutdownRequestPending)
			break;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* a shorter distx.recovery_interval applies at once */
			next_recovery_at = Min(next_recovery_at,
								   TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															   distx_recovery_interval));
		}

		LWLockAcquire(distx_shared->lock, LW_EXCLUSIVE);
		requested = distx_shared->recovery_requested;
		distx_shared->recovery_requested = false;
		LWLockRelease(distx_shared->lock);

		oldcontext = MemoryContextSwitchTo(loop_context);
		now = GetCurrentTimestamp();
		if (requested || now >= next_recovery_at)
		{
			long		due = worker_run_recovery(loop_context);
			long		wait = distx_recovery_interval;

			if (due >= 0 && due < wait)
				wait = Max(due, 10);
			next_recovery_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), wait);
		}

		/*
		 * sagas: when woken (a run was started or changed) or when due; in a
		 * cluster only on the acting coordinator (the others look again soon)
		 */
		if ((rc & WL_LATCH_SET) || GetCurrentTimestamp() >= next_saga_at)
		{
			long		due = saga_worker_acting() ?
				saga_worker_tick(loop_context) : SAGA_NOT_ACTING_RECHECK_MS;

			if (due < 0 || due > WORKER_IDLE_TIMEOUT_MS)
				due = WORKER_IDLE_TIMEOUT_MS;
			next_saga_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), due);
		}
		MemoryContextSwitchTo(oldcontext);
		MemoryContextReset(loop_context);
	}

	/*
	 * Exit code 1, not 0: a worker that exits with 0 is unregistered, and a
	 * pg_terminate_backend() would leave the node without recovery until the
	 * next restart.  At server shutdown nothing is restarted anyway.
	 */
	elog(LOG, "distx coordinator shutting down");
	proc_exit(1);
}
