/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL API of sagas: saga_define, saga_start, saga_cancel, saga_retry
 *	  and saga_wait, and the GUCs of the saga executor.
 *
 * Who may do what: anybody may define a saga (and only its owner, or a
 * member of the owner role, may define a new version of it); anybody may
 * start a run of any saga, and its steps then run with the privileges of
 * the role that started it: remote steps through that role's user
 * mappings (USAGE on each node is checked at start and again by the
 * worker), local steps as that role.  Only that role (or a member of it,
 * or a superuser) may cancel, retry or wait for the run.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "common/hashfn.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "distx.h"
#include "cluster/saga_state.h"
#include "remote/node.h"
#include "saga/saga.h"

PG_FUNCTION_INFO_V1(distx_saga_define);
PG_FUNCTION_INFO_V1(distx_saga_start);
PG_FUNCTION_INFO_V1(distx_saga_cancel);
PG_FUNCTION_INFO_V1(distx_saga_retry);
PG_FUNCTION_INFO_V1(distx_saga_wait);
PG_FUNCTION_INFO_V1(distx_saga_purge);

/* advisory lock field that serializes saga_define per saga name */
#define SAGA_DEFINE_LOCK_FIELD4 5

static bool wake_at_commit = false;
static bool xact_callback_registered = false;

void
saga_define_gucs(void)
{
	DefineCustomIntVariable("distx.saga_max_concurrency",
							"Maximum number of saga steps the background worker runs at the same time.",
							"Remote steps run concurrently, one connection each; local steps one after the other.",
							&distx_saga_max_concurrency,
							16, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

/*
 * Wake the background worker when the current transaction commits (a run
 * it creates or changes is invisible to the worker before that).  Only the
 * latch is set: a recovery pass is not requested.
 */
static void
saga_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_at_commit && distx_shared != NULL)
	{
		Latch	   *latch;

		LWLockAcquire(distx_shared->lock, LW_SHARED);
		latch = distx_shared->worker_latch;
		LWLockRelease(distx_shared->lock);
		if (latch)
			SetLatch(latch);
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		wake_at_commit = false;
}

void
saga_wake_worker_at_commit(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(saga_xact_callback, NULL);
		xact_callback_registered = true;
	}
	wake_at_commit = true;
}

/*
 * In a cluster a step's effect and its completion cannot commit in one
 * local transaction (the completion is a Raft entry), so steps on this
 * database are refused there: the database is declared as a distx server
 * instead, and its steps run like remote ones, with two-phase commit.
 */
static void
refuse_local_steps(const char *saga, List *steps, SagaStepDef *array, int n)
{
	ListCell   *lc;
	int			i;
	const char *local = NULL;

	if (!saga_state_clustered())
		return;
	foreach(lc, steps)
		if (!OidIsValid(((SagaStepDef *) lfirst(lc))->node_id) && local == NULL)
			local = ((SagaStepDef *) lfirst(lc))->name;
	for (i = 0; i < n; i++)
		if (array[i].node_name == NULL && local == NULL)
			local = array[i].name;
	if (local != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("step \"%s\" of saga \"%s\" runs on the local database, which a distx cluster does not support",
						local, saga),
				 errdetail("In a cluster the completion of a step is a Raft entry, so it cannot commit in one local transaction with the step's effect."),
				 errhint("Declare this database as a distx server (CREATE SERVER ... FOREIGN DATA WRAPPER distx) on every node and name it as the step's node: the step then runs with two-phase commit like any remote step.")));
}

static bool
is_final_state(const char *state)
{
	return strcmp(state, SAGA_COMPLETED) == 0 ||
		strcmp(state, SAGA_COMPENSATED) == 0 ||
		strcmp(state, SAGA_COMPENSATION_FAILED) == 0 ||
		strcmp(state, SAGA_CANCELLED) == 0;
}

/* the run, checked to exist and to belong to the caller */
static void
get_own_run(int64 run_id, bool for_update, SagaRunRow *run)
{
	if (!saga_state_get_run(run_id, for_update, run))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("saga run " INT64_FORMAT " does not exist", run_id)));
	if (!has_privs_of_role(GetUserId(), run->started_by))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for saga run " INT64_FORMAT, run_id),
				 errdetail("Only the role that started a run, its members and superusers may act on it.")));
}

Datum
distx_saga_define(PG_FUNCTION_ARGS)
{
	char	   *name;
	SagaDef    *def;
	int			latest;
	Oid			owner = InvalidOid;
	Jsonb	   *normalized = NULL;
	LOCKTAG		tag;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("saga name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	/* everything is checked before anything is written */
	def = saga_parse_definition(name, PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1));
	refuse_local_steps(name, def->steps, NULL, 0);

	/* one definer of a saga at a time */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
						 DatumGetUInt32(hash_any((const unsigned char *) name, strlen(name))),
						 0, SAGA_DEFINE_LOCK_FIELD4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	latest = saga_state_latest_version(name, &owner, &normalized);
	if (latest > 0)
	{
		if (!has_privs_of_role(GetUserId(), owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of saga \"%s\"", name),
					 errdetail("Saga \"%s\" belongs to role \"%s\".", name,
							   GetUserNameFromId(owner, true))));
		/* unchanged: the same version */
		if (DatumGetBool(DirectFunctionCall2(jsonb_eq,
											 JsonbPGetDatum(normalized),
											 JsonbPGetDatum(def->normalized))))
			PG_RETURN_INT32(latest);
		def->owner = owner;
	}
	def->version = latest + 1;
	if (saga_state_define(def) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("saga \"%s\" was defined on another node at the same time", name),
				 errdetail("Version %d of it is another definition.", def->version),
				 errhint("Try again.")));
	PG_RETURN_INT32(def->version);
}

Datum
distx_saga_start(PG_FUNCTION_ARGS)
{
	char	   *name;
	Jsonb	   *input;
	char	   *run_key = NULL;
	int			version;
	SagaStepDef *steps;
	int			nsteps;
	int			i;
	int64		run_id;
	char	   *existing_saga;
	char	   *dbname;

	distx_require_preload("distx.saga_start()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("saga name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (PG_ARGISNULL(1))
		input = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	else
		input = PG_GETARG_JSONB_P(1);
	if (!JB_ROOT_IS_OBJECT(input))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("saga input must be a JSON object"),
				 errdetail("The input given is a JSON %s.",
						   TextDatumGetCString(DirectFunctionCall1(jsonb_typeof,
																   JsonbPGetDatum(input)))),
				 errhint("Steps reference its values as $input.<key>.")));

	if (!PG_ARGISNULL(2))
	{
		run_key = text_to_cstring(PG_GETARG_TEXT_PP(2));
		if (run_key[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("run key must not be empty"),
					 errhint("Pass NULL for a run without a key.")));
	}

	version = saga_state_latest_version(name, NULL, NULL);
	if (version == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("saga \"%s\" does not exist", name),
				 errhint("Define it with distx.saga_define().")));

	/* the starting role must be able to use every node of the saga */
	steps = saga_state_load_steps(name, version, &nsteps);
	refuse_local_steps(name, NIL, steps, nsteps);
	for (i = 0; i < nsteps; i++)
		if (OidIsValid(steps[i].node_id))
			(void) node_lookup_by_oid(steps[i].node_id, GetUserId(), true);

	run_id = saga_state_create_run(name, version, run_key, input, GetUserId(),
								   nsteps, &existing_saga);
	if (existing_saga != NULL)
	{
		if (strcmp(existing_saga, name) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNIQUE_VIOLATION),
					 errmsg("run key \"%s\" is already used by a run of saga \"%s\"",
							run_key, existing_saga)));
		PG_RETURN_INT64(run_id);
	}

	dbname = get_database_name(MyDatabaseId);
	if (dbname == NULL || distx_database == NULL || strcmp(dbname, distx_database) != 0)
		ereport(WARNING,
				(errmsg("saga runs in database \"%s\" are not executed",
						dbname ? dbname : "?"),
				 errdetail("The distx background worker runs sagas in database \"%s\" (distx.database).",
						   distx_database ? distx_database : ""),
				 errhint("Start runs in that database, or change distx.database and restart the server.")));

	saga_wake_worker_at_commit();
	PG_RETURN_INT64(run_id);
}

static void
cancel_missed(int64 run_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("saga run " INT64_FORMAT " kept changing while it was being cancelled", run_id),
			 errhint("Try again.")));
}

Datum
distx_saga_cancel(PG_FUNCTION_ARGS)
{
	int64		run_id = PG_GETARG_INT64(0);
	SagaRunRow	run;
	const char *result;
	TimestampTz now = GetCurrentTimestamp();
	int			tries = 0;

	/*
	 * The run row is locked in single-node mode, so the transition cannot
	 * miss.  In a cluster nothing is locked: the transition is a
	 * compare-and-set, and if the worker moved the run meanwhile (pending
	 * to running), the run is read again.
	 */
again:
	get_own_run(run_id, true, &run);

	if (strcmp(run.state, SAGA_PENDING) == 0)
	{
		if (!saga_state_run_transition(run_id, "{pending}", SAGA_CANCELLED, 0, true,
									   NULL, NULL))
		{
			if (++tries < 10)
				goto again;
			cancel_missed(run_id);
		}
		saga_state_steps_transition(run_id, 0, "{pending}", SAGA_CANCELLED, 0, false);
		result = SAGA_CANCELLED;
	}
	else if (strcmp(run.state, SAGA_RUNNING) == 0)
	{
		if (!saga_state_run_transition(run_id, "{running}", SAGA_COMPENSATING, now, true,
									   "cancelled by distx.saga_cancel()", "57014"))
		{
			if (++tries < 10)
				goto again;
			cancel_missed(run_id);
		}
		saga_state_steps_transition(run_id, 0, "{pending}", SAGA_CANCELLED, 0, false);
		result = SAGA_COMPENSATING;
	}
	else if (strcmp(run.state, SAGA_COMPENSATING) == 0 ||
			 strcmp(run.state, SAGA_CANCELLED) == 0)
		result = run.state;		/* already on its way back */
	else if (strcmp(run.state, SAGA_COMPENSATION_FAILED) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("saga run " INT64_FORMAT " is in state %s", run_id, run.state),
				 errdetail("Its compensation stopped after failing."),
				 errhint("Fix the cause, then resume the compensation with distx.saga_retry(" INT64_FORMAT ").",
						 run_id)));
	else
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("saga run " INT64_FORMAT " is already %s", run_id, run.state),
				 errdetail("Only pending and running runs can be cancelled.")));

	saga_wake_worker_at_commit();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

Datum
distx_saga_retry(PG_FUNCTION_ARGS)
{
	int64		run_id = PG_GETARG_INT64(0);
	SagaRunRow	run;
	TimestampTz now = GetCurrentTimestamp();
	const char *result;

	get_own_run(run_id, true, &run);

	if (strcmp(run.state, SAGA_COMPENSATION_FAILED) == 0)
	{
		/* the failed compensation starts again with a fresh count */
		saga_state_steps_transition(run_id, 0, "{compensation_failed}",
									SAGA_COMPENSATING, now, true);
		saga_state_run_transition(run_id, "{compensation_failed}", SAGA_COMPENSATING,
								  now, false, NULL, NULL);
		result = SAGA_COMPENSATING;
	}
	else if (strcmp(run.state, SAGA_PENDING) == 0 ||
			 strcmp(run.state, SAGA_RUNNING) == 0 ||
			 strcmp(run.state, SAGA_COMPENSATING) == 0)
	{
		/* a run waiting for a retry: now */
		saga_state_steps_transition(run_id, 0, "{running}", SAGA_RUNNING, now, false);
		saga_state_steps_transition(run_id, 0, "{compensating}", SAGA_COMPENSATING,
									now, false);
		saga_state_run_transition(run_id, "{pending,running,compensating}", run.state,
								  now, false, NULL, NULL);
		result = run.state;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("saga run " INT64_FORMAT " is already %s", run_id, run.state),
				 errdetail("Only runs that are in progress or in state compensation_failed can be retried.")));

	saga_wake_worker_at_commit();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

Datum
distx_saga_wait(PG_FUNCTION_ARGS)
{
	int64		run_id = PG_GETARG_INT64(0);
	Interval   *timeout = PG_GETARG_INTERVAL_P(1);
	TimestampTz deadline;
	SagaRunRow	run;

	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("distx.saga_wait() requires the READ COMMITTED isolation level"),
				 errdetail("In a transaction with one snapshot the state of the run never changes.")));

	deadline = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													   TimestampTzGetDatum(GetCurrentTimestamp()),
													   IntervalPGetDatum(timeout)));
	get_own_run(run_id, false, &run);
	for (;;)
	{
		long		left;

		if (!saga_state_get_run(run_id, false, &run))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("saga run " INT64_FORMAT " does not exist", run_id)));
		if (is_final_state(run.state))
			break;
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(left, 50), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_TEXT_P(cstring_to_text(run.state));
}

Datum
distx_saga_purge(PG_FUNCTION_ARGS)
{
	Interval   *older_than = PG_GETARG_INTERVAL_P(0);
	TimestampTz before;

	before = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													 TimestampTzGetDatum(GetCurrentTimestamp()),
													 IntervalPGetDatum(older_than)));
	PG_RETURN_INT64(saga_state_purge(before, GetUserId()));
}
