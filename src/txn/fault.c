/*-------------------------------------------------------------------------
 *
 * fault.c
 *	  Test-only fault injection, so that TAP tests can stop a session at a
 *	  precise step of the 2PC protocol and crash something there.  The GUCs
 *	  are superuser-only and hidden from SHOW ALL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/pmsignal.h"
#include "utils/guc.h"

#include "txn/fault.h"

/* the advisory lock key of the wait_lock action ("dist") */
#define DISTX_FAULT_LOCK_KEY 1684633460

static char *distx_fault_point = NULL;
static char *distx_fault_action = NULL;
static int	distx_fault_sleep = 5000;

void
fault_define_gucs(void)
{
	DefineCustomStringVariable("distx.fault_point",
							   "Test only: 2PC step at which to inject a fault.",
							   "One of before_prepare, between_prepares, after_prepares, "
							   "after_raft_decision (cluster only), after_decision, "
							   "between_commit_prepared; or stale_connection, which makes "
							   "a cached connection skip its liveness check.",
							   &distx_fault_point, "",
							   PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("distx.fault_action",
							   "Test only: what happens at distx.fault_point: error, sleep, exit or wait_lock.",
							   NULL,
							   &distx_fault_action, "sleep",
							   PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("distx.fault_sleep",
							"Test only: how long the sleep action sleeps.",
							NULL,
							&distx_fault_sleep, 5000, 0, 600000,
							PGC_SUSET, GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* whether distx.fault_point names this point */
bool
fault_armed(const char *name)
{
	return distx_fault_point != NULL && strcmp(distx_fault_point, name) == 0;
}

void
fault_point(const char *name, bool can_error)
{
	int			slept;

	if (distx_fault_point == NULL || strcmp(distx_fault_point, name) != 0)
		return;

	ereport(LOG,
			(errmsg("distx fault point \"%s\" reached in process %d",
					name, MyProcPid)));

	if (strcmp(distx_fault_action, "error") == 0 && can_error)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("distx fault injected at \"%s\"", name)));
	if (strcmp(distx_fault_action, "exit") == 0)
		_exit(1);

	/*
	 * wait_lock: wait until another session releases the advisory lock
	 * pg_advisory_lock(1684633460), so that isolation tests see this
	 * session as blocked.  Only before the commit point, where taking a
	 * lock is allowed.
	 */
	if (strcmp(distx_fault_action, "wait_lock") == 0 && can_error)
	{
		LOCKTAG		tag;

		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, DISTX_FAULT_LOCK_KEY, 1);
		(void) LockAcquire(&tag, ShareLock, false, false);
		LockRelease(&tag, ShareLock, false);
		return;
	}

	/*
	 * Sleep without processing interrupts: some points are past the commit
	 * point, where an error is not allowed.  Leave as a crash would if the
	 * postmaster dies meanwhile.
	 */
	for (slept = 0; slept < distx_fault_sleep; slept += 50)
	{
		if (!PostmasterIsAlive())
			_exit(1);
		pg_usleep(50 * 1000L);
	}
}
