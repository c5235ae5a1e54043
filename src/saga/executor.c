/*-------------------------------------------------------------------------
 *
 * executor.c
 *	  Step execution by the background worker.
 *
 * Remote steps run concurrently, one pooled connection each, and stay in
 * flight across ticks of the worker, so that a slow step holds up nothing
 * but its own run.  On its connection a remote step is
 *		BEGIN; SET LOCAL statement_timeout, application_name = the attempt
 *		<the step, with its bind parameters>
 *		PREPARE TRANSACTION '<gid of the attempt>'
 * (or ROLLBACK after an error), driven asynchronously; a step over its
 * timeout is cancelled.  One tick of the worker (saga_worker_tick):
 *
 * 1. Progress on the steps in flight, without waiting.
 * 2. One transaction: the outcomes of the finished steps are recorded; due
 *	  runs that are not in flight are planned (run.c), each in a
 *	  subtransaction: an attempt a crash left open is settled at once; for
 *	  a step to run, a connection is taken (circuit breaker, bulkhead: a
 *	  node that cannot be used now delays the run, it does not fail it) and
 *	  the attempt is claimed (recorded as running, and the run leased for
 *	  the attempt's timeout).  The transaction commits synchronously before
 *	  anything it claims runs.
 * 3. COMMIT PREPARED for every finished remote step whose success is now
 *	  recorded.  The attempt is marked resolved at the next tick; if the
 *	  commit could not be confirmed, the run resolves it before going on.
 * 4. Local steps run in a transaction of their own, each in a
 *	  subtransaction as the role that started the run, so that the step's
 *	  effect and its completion commit together or not at all.
 * 5. The remote steps planned are sent.
 * 6. With nothing else to do, a wait on their sockets and the latch.
 *
 * Why this is exactly once for remote steps too: a step's effect commits
 * only through COMMIT PREPARED of an attempt whose success is durably
 * recorded, and at most one attempt of a step is ever recorded as a
 * success.  An attempt still recorded as running after a crash is
 * reconciled: while a backend of that attempt still runs on the node
 * (found by its application_name) the run waits; then ROLLBACK PREPARED of
 * its gid makes sure it never commits, and the step is retried.
 *
 * Connections are pooled per (node, role) in this process and reused
 * across ticks.  What survives a tick: that pool, the steps in flight (each
 * in its own memory context) and the attempts to mark resolved.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "miscadmin.h"
#include "parser/parse_param.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "distx.h"
#include "cluster/cluster.h"
#include "cluster/saga_state.h"
#include "remote/connection.h"
#include "remote/health.h"
#include "remote/node.h"
#include "saga/saga.h"
#include "txn/fault.h"
#include "txn/gid.h"

/* extra time after a remote step's timeout before distx cancels it */
#define REMOTE_TIMEOUT_GRACE_MS		1000
/* time a cancelled statement has to report back before its connection is dropped */
#define REMOTE_CANCEL_WAIT_MS		5000

int			distx_saga_max_concurrency = 16;

/* a pooled connection of the worker */
typedef struct PoolConn
{
	Oid			serverid;
	Oid			userid;
	PGconn	   *conn;
	bool		in_use;
	bool		broken;
} PoolConn;

static List *pool = NIL;		/* PoolConn *, in TopMemoryContext */
static bool pool_invalidated = false;
static bool pool_callbacks_registered = false;

/* attempts whose COMMIT PREPARED succeeded, to mark at the next tick */
typedef struct ResolvedAttempt
{
	int64		run_id;
	int			step_no;
	int			attempt_no;
} ResolvedAttempt;

static List *resolved_attempts = NIL;	/* in TopMemoryContext */

/* the nodes whose bulkhead slot this process holds */
static List *held_nodes = NIL;	/* in TopMemoryContext */

/*
 * Remote steps in flight, across ticks.  Each action lives in its own
 * memory context, a child of saga_context, deleted when it is finished.
 */
static MemoryContext saga_context = NULL;
static List *inflight = NIL;	/* SagaAction *, in saga_context */

/* runs whose row somebody else had locked: not planned before "until" */
typedef struct BusyRun
{
	int64		run_id;
	TimestampTz until;
} BusyRun;

#define BUSY_RUN_DELAY_MS	100

static List *busy_runs = NIL;	/* BusyRun *, in TopMemoryContext */

/* finished remote steps whose run somebody else had locked: recorded later */
static List *deferred = NIL;	/* SagaAction *, in saga_context */
static bool interrupted_woken = false;

typedef enum RemotePhase
{
	RP_BEGIN,
	RP_STEP,
	RP_PREPARE,
	RP_ROLLBACK,
	RP_DONE
} RemotePhase;

typedef struct RemoteExec
{
	PoolConn   *pc;
	RemotePhase phase;
	PGresult   *err;			/* the first error of the current command */
	PGresult   *rows;			/* the result of the step */
	bool		prepared;		/* PREPARE TRANSACTION answered as such */
	TimestampTz deadline;
	TimestampTz cancel_deadline;	/* 0 until a cancel was sent */
	TimestampTz record_at;		/* finished, its run locked: record then */
} RemoteExec;

/*
 * ----------------------------------------------------------------------
 * Names
 * ----------------------------------------------------------------------
 */

static char *
saga_gid_prefix(int64 run_id, int step_no)
{
	return psprintf("%ssaga_" INT64_FORMAT "_%d_", gid_prefix(), run_id, step_no);
}

char *
saga_gid(int64 run_id, int step_no, int attempt_no)
{
	return psprintf("%s%d", saga_gid_prefix(run_id, step_no), attempt_no);
}

char *
saga_idempotency_key(int64 run_id, const char *step_name, bool compensate)
{
	return psprintf("distx:" INT64_FORMAT ":%s%s", run_id, step_name,
					compensate ? ":compensate" : "");
}

/* the application_name an attempt's remote session carries while it runs */
static char *
attempt_appname(SagaAction *act)
{
	return psprintf("distx_saga_" INT64_FORMAT "_%d_%d", act->run_id,
					act->step_no, act->attempt_no);
}

/*
 * ----------------------------------------------------------------------
 * Outputs: a row as a json object
 * ----------------------------------------------------------------------
 */

static void
append_json_value(StringInfo buf, Oid type, const char *val)
{
	if (val == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	switch (type)
	{
		case BOOLOID:
			appendStringInfoString(buf, val[0] == 't' ? "true" : "false");
			return;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			/* NaN and infinities are not JSON numbers */
			if (val[0] != '\0' && strspn(val, "0123456789+-.eE") == strlen(val) &&
				val[strspn(val, "+-")] >= '0' && val[strspn(val, "+-")] <= '9')
			{
				appendStringInfoString(buf, val);
				return;
			}
			break;
		case JSONOID:
		case JSONBOID:
			appendStringInfoString(buf, val);
			return;
		default:
			break;
	}
	escape_json(buf, val);
}

static char *
saga_row_json(int ncols, const char *const *names, const Oid *types,
			const char *const *values)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (i = 0; i < ncols; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, ", ");
		escape_json(&buf, names[i]);
		appendStringInfoString(&buf, ": ");
		append_json_value(&buf, types[i], values[i]);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * ----------------------------------------------------------------------
 * Errors
 * ----------------------------------------------------------------------
 */

/*
 * Failures that are not the statement's fault: the connection (08, except
 * a protocol violation, which a statement can cause), a node shutting down
 * (57P0x), too many connections (53300).
 */
static bool
sqlstate_transient(const char *sqlstate)
{
	if (sqlstate == NULL || sqlstate[0] == '\0')
		return false;
	return (strncmp(sqlstate, "08", 2) == 0 && strcmp(sqlstate, "08P01") != 0) ||
		strncmp(sqlstate, "57P0", 4) == 0 ||
		strcmp(sqlstate, "53300") == 0;
}

static void
action_fail(SagaAction *act, const char *error, const char *sqlstate,
			bool transient)
{
	act->done = true;
	act->ok = false;
	act->error = pstrdup(error ? error : "unknown error");
	strlcpy(act->sqlstate, sqlstate ? sqlstate : "", sizeof(act->sqlstate));
	act->transient = transient || sqlstate_transient(sqlstate);
}

static void
action_fail_result(SagaAction *act, PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char	   *text;

	if (msg == NULL)
		msg = PQresultErrorMessage(res);
	text = detail ? psprintf("%s (%s)", msg, detail) : pstrdup(msg);
	action_fail(act, text, sqlstate ? sqlstate : "XX000", false);
}

static void
action_fail_edata(SagaAction *act, ErrorData *edata)
{
	char	   *text = edata->detail ?
		psprintf("%s (%s)", edata->message, edata->detail) : pstrdup(edata->message);

	action_fail(act, text, unpack_sql_state(edata->sqlerrcode), false);
}

/*
 * ----------------------------------------------------------------------
 * The connection pool
 * ----------------------------------------------------------------------
 */

static void
pool_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	pool_invalidated = true;
}

static void
pool_close(PoolConn *pc)
{
	if (pc->conn)
	{
		libpqsrv_disconnect(pc->conn);
		pc->conn = NULL;
		health_count_connection(pc->serverid, -1);
	}
}

/* close idle connections that are broken, or all when an option changed */
static void
pool_prune(void)
{
	ListCell   *lc;
	bool		all = pool_invalidated;

	pool_invalidated = false;
	foreach(lc, pool)
	{
		PoolConn   *pc = (PoolConn *) lfirst(lc);

		if (pc->in_use)
			continue;
		if (all || pc->broken || pc->conn == NULL ||
			PQstatus(pc->conn) != CONNECTION_OK ||
			PQtransactionStatus(pc->conn) != PQTRANS_IDLE)
		{
			pool_close(pc);
			pool = foreach_delete_current(pool, lc);
			pfree(pc);
		}
	}
}

static int
pool_in_use(Oid serverid)
{
	ListCell   *lc;
	int			n = 0;

	foreach(lc, pool)
	{
		PoolConn   *pc = (PoolConn *) lfirst(lc);

		if (pc->in_use && pc->serverid == serverid)
			n++;
	}
	return n;
}

/*
 * A connection to a node for a role: an idle pooled one, or a new one.
 * Errors are raised (circuit open, connection refused, no user mapping...).
 */
static PoolConn *
pool_get(Oid serverid, Oid userid)
{
	ListCell   *lc;
	DistxNode  *node;
	PoolConn   *pc;
	PGconn	   *conn;
	MemoryContext old;
	bool		held = false;

	if (!pool_callbacks_registered)
	{
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID, pool_inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID, pool_inval_callback, (Datum) 0);
		pool_callbacks_registered = true;
	}

	/* USAGE and the user mapping of the role that started the run */
	node = node_lookup_by_oid(serverid, userid, true);

	/* the bulkhead: one slot per node for this process, for the tick */
	foreach(lc, held_nodes)
		if (lfirst_oid(lc) == serverid)
			held = true;
	if (!held)
	{
		health_bulkhead_acquire(serverid, node->servername);
		old = MemoryContextSwitchTo(TopMemoryContext);
		held_nodes = lappend_oid(held_nodes, serverid);
		MemoryContextSwitchTo(old);
	}
	if (pool_in_use(serverid) >= distx_max_connections_per_node)
		ereport(ERROR,
				(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
				 errmsg("all %d connection slots to node \"%s\" are in use",
						distx_max_connections_per_node, node->servername)));

	foreach(lc, pool)
	{
		pc = (PoolConn *) lfirst(lc);
		if (pc->in_use || pc->broken || pc->serverid != serverid ||
			pc->userid != userid || pc->conn == NULL)
			continue;
		/* an idle connection the node closed meanwhile shows up here */
		if (!PQconsumeInput(pc->conn) || PQstatus(pc->conn) != CONNECTION_OK ||
			PQtransactionStatus(pc->conn) != PQTRANS_IDLE)
		{
			pc->broken = true;
			continue;
		}
		pc->in_use = true;
		return pc;
	}

	/* the circuit breaker is consulted and told the outcome */
	conn = conn_connect(node);
	health_count_connection(serverid, 1);
	old = MemoryContextSwitchTo(TopMemoryContext);
	pc = palloc0(sizeof(PoolConn));
	pc->serverid = serverid;
	pc->userid = userid;
	pc->conn = conn;
	pc->in_use = true;
	pool = lappend(pool, pc);
	MemoryContextSwitchTo(old);
	return pc;
}

static void
pool_put(PoolConn *pc)
{
	if (pc == NULL)
		return;
	pc->in_use = false;
	if (pc->conn == NULL || PQstatus(pc->conn) != CONNECTION_OK ||
		PQtransactionStatus(pc->conn) != PQTRANS_IDLE)
		pc->broken = true;
}

/* an action is finished: its results, its connection, its memory */
static void
release_action(SagaAction *act)
{
	RemoteExec *rx = (RemoteExec *) act->exec;

	if (rx != NULL)
	{
		PQclear(rx->err);
		PQclear(rx->rows);
		rx->err = rx->rows = NULL;
		pool_put(rx->pc);
		rx->pc = NULL;
	}
	if (act->cxt)
		MemoryContextDelete(act->cxt);
}

static void
release_actions(List *actions)
{
	ListCell   *lc;

	foreach(lc, actions)
		release_action((SagaAction *) lfirst(lc));
}

/* bulkhead slots of nodes nothing uses any more; idle connections */
static void
release_idle_resources(void)
{
	ListCell   *lc;

	foreach(lc, held_nodes)
	{
		Oid			serverid = lfirst_oid(lc);

		if (pool_in_use(serverid) == 0)
		{
			health_bulkhead_release(serverid);
			held_nodes = foreach_delete_current(held_nodes, lc);
		}
	}
	pool_prune();
}

/*
 * Take a connection for an action, in a subtransaction.  Returns NULL with
 * *edata set when it cannot be had.
 */
static PoolConn *
acquire_conn(SagaAction *act, ErrorData **edata)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	PoolConn   *volatile pc = NULL;

	*edata = NULL;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		pc = pool_get(act->node_id, act->userid);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		*edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		pc = NULL;
	}
	PG_END_TRY();
	return pc;
}

/* an action that cannot start now: the run waits, no attempt is made */
static void
delay_action(SagaAction *act, ErrorData *edata)
{
	long		delay;
	SagaStepDef *def = act->def;
	double		cap = Max(def->base_delay_ms, 50);
	int			i;

	for (i = 0; i < 3 && cap < def->max_delay_ms; i++)
		cap *= def->multiplier;
	cap = Min(cap, Max(def->max_delay_ms, 50));
	delay = Max(50, (long) (cap * (0.5 + 0.5 * pg_prng_double(&pg_global_prng_state))));
	saga_record_delay(act, edata->message, unpack_sql_state(edata->sqlerrcode), delay);
}

/*
 * ----------------------------------------------------------------------
 * Remote settlement of an interrupted or unconfirmed attempt
 * ----------------------------------------------------------------------
 */

/* run a command synchronously on a pooled connection; returns its result */
static PGresult *
remote_exec(PoolConn *pc, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res;

	res = libpqsrv_exec_params(pc->conn, sql, nparams, NULL, params, NULL, NULL, 0,
							   PG_WAIT_EXTENSION);
	if (PQstatus(pc->conn) != CONNECTION_OK)
		pc->broken = true;
	return res;
}

static bool
result_ok_or_missing(PGresult *res)
{
	const char *sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (PQresultStatus(res) == PGRES_COMMAND_OK ||
		PQresultStatus(res) == PGRES_TUPLES_OK)
		return true;
	return sqlstate != NULL && strcmp(sqlstate, "42704") == 0;
}

/*
 * Settle an attempt of a remote step: RESOLVE commits its prepared
 * transaction; RECONCILE makes sure an interrupted attempt never commits.
 * Returns false (with the reason in act->error) when it cannot be settled
 * now.
 */
static bool
settle_remote(SagaAction *act, PoolConn *pc)
{
	PGresult   *res;
	char	   *sql;

	if (act->kind == SAGA_ACT_RECONCILE)
	{
		const char *params[1];
		bool		alive;

		/* a backend of the attempt still working on the node? wait for it */
		params[0] = attempt_appname(act);
		res = remote_exec(pc, "SELECT count(*) FROM pg_catalog.pg_stat_activity "
						  "WHERE application_name = $1", 1, params);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			action_fail_result(act, res);
			PQclear(res);
			return false;
		}
		alive = strcmp(PQgetvalue(res, 0, 0), "0") != 0;
		PQclear(res);
		if (alive)
		{
			action_fail(act, "the interrupted attempt is still running on the node",
						"55006", true);
			return false;
		}
		sql = psprintf("ROLLBACK PREPARED %s", quote_literal_cstr(act->gid));
	}
	else
		sql = psprintf("COMMIT PREPARED %s", quote_literal_cstr(act->gid));

	res = remote_exec(pc, sql, 0, NULL);
	if (!result_ok_or_missing(res))
	{
		action_fail_result(act, res);
		PQclear(res);
		return false;
	}
	if (act->kind == SAGA_ACT_RECONCILE)
		action_fail(act,
					PQresultStatus(res) == PGRES_COMMAND_OK ?
					"the attempt was interrupted after it prepared; its prepared transaction was rolled back" :
					"the attempt was interrupted before it prepared; nothing of it was applied",
					"40003", true);
	PQclear(res);
	return true;
}

/*
 * ----------------------------------------------------------------------
 * Remote steps, driven asynchronously
 * ----------------------------------------------------------------------
 */

static void
remote_lost(SagaAction *act)
{
	RemoteExec *rx = (RemoteExec *) act->exec;
	char	   *msg = pchomp(PQerrorMessage(rx->pc->conn));

	rx->pc->broken = true;
	health_report_failure(act->node_id, msg);
	PQclear(rx->err);
	PQclear(rx->rows);
	rx->err = rx->rows = NULL;
	if (rx->phase == RP_PREPARE)
	{
		/* PREPARE may or may not have happened: reconcile later */
		act->done = false;
	}
	else if (rx->phase != RP_ROLLBACK && !act->done)
		action_fail(act, psprintf("connection to the node was lost: %s", msg),
					"08006", true);
	rx->phase = RP_DONE;
}

static void
remote_send(SagaAction *act, RemotePhase phase, const char *sql)
{
	RemoteExec *rx = (RemoteExec *) act->exec;
	int			ok;

	rx->phase = phase;
	if (phase == RP_STEP)
		ok = PQsendQueryParams(rx->pc->conn, sql, act->nparams, NULL,
							   (const char *const *) act->params, NULL, NULL, 0);
	else
		ok = PQsendQuery(rx->pc->conn, sql);
	if (!ok)
		remote_lost(act);
}

static void
remote_start(SagaAction *act)
{
	RemoteExec *rx = (RemoteExec *) act->exec;
	char	   *sql;

	rx->deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   (int64) act->timeout_ms + REMOTE_TIMEOUT_GRACE_MS);
	sql = psprintf("BEGIN ISOLATION LEVEL READ COMMITTED; "
				   "SET LOCAL statement_timeout = %d; "
				   "SET LOCAL application_name = %s",
				   act->timeout_ms, quote_literal_cstr(attempt_appname(act)));
	remote_send(act, RP_BEGIN, sql);
}

/* the results of the current command are all in: go on */
static void
remote_advance(SagaAction *act)
{
	RemoteExec *rx = (RemoteExec *) act->exec;
	PGconn	   *conn = rx->pc->conn;

	switch (rx->phase)
	{
		case RP_BEGIN:
			if (rx->err)
			{
				action_fail_result(act, rx->err);
				PQclear(rx->err);
				rx->err = NULL;
				if (PQtransactionStatus(conn) == PQTRANS_INERROR ||
					PQtransactionStatus(conn) == PQTRANS_INTRANS)
					remote_send(act, RP_ROLLBACK, "ROLLBACK");
				else
					rx->phase = RP_DONE;
				return;
			}
			remote_send(act, RP_STEP, act->sql);
			return;

		case RP_STEP:
			if (rx->err)
			{
				action_fail_result(act, rx->err);
				PQclear(rx->err);
				rx->err = NULL;
				PQclear(rx->rows);
				rx->rows = NULL;
				remote_send(act, RP_ROLLBACK, "ROLLBACK");
				return;
			}
			if (rx->rows && PQntuples(rx->rows) > 0)
			{
				int			n = PQnfields(rx->rows);
				const char **names = palloc(sizeof(char *) * Max(n, 1));
				const char **values = palloc(sizeof(char *) * Max(n, 1));
				Oid		   *types = palloc(sizeof(Oid) * Max(n, 1));
				int			i;

				for (i = 0; i < n; i++)
				{
					names[i] = PQfname(rx->rows, i);
					types[i] = PQftype(rx->rows, i);
					values[i] = PQgetisnull(rx->rows, 0, i) ? NULL :
						PQgetvalue(rx->rows, 0, i);
				}
				act->output = saga_row_json(n, names, types, values);
			}
			PQclear(rx->rows);
			rx->rows = NULL;
			remote_send(act, RP_PREPARE,
						psprintf("PREPARE TRANSACTION %s", quote_literal_cstr(act->gid)));
			return;

		case RP_PREPARE:
			if (rx->err)
			{
				action_fail_result(act, rx->err);
				PQclear(rx->err);
				rx->err = NULL;
			}
			else if (!rx->prepared)
				action_fail(act, "the remote transaction was rolled back instead of prepared",
							"40000", false);
			else
			{
				act->done = true;
				act->ok = true;
				/* test only: stop between PREPARE and its record */
				fault_point(act->compensate ? "saga_compensate_prepared" :
							"saga_forward_prepared", false);
			}
			if (PQtransactionStatus(conn) != PQTRANS_IDLE)
				remote_send(act, RP_ROLLBACK, "ROLLBACK");
			else
				rx->phase = RP_DONE;
			return;

		case RP_ROLLBACK:
			PQclear(rx->err);
			rx->err = NULL;
			rx->phase = RP_DONE;
			return;

		case RP_DONE:
			return;
	}
}

/*
 * Read what has arrived.  Returns true when the current command's results
 * are complete.
 */
static bool
remote_collect(SagaAction *act)
{
	RemoteExec *rx = (RemoteExec *) act->exec;
	PGconn	   *conn = rx->pc->conn;

	while (!PQisBusy(conn))
	{
		PGresult   *res = PQgetResult(conn);
		ExecStatusType st;

		if (res == NULL)
			return true;
		st = PQresultStatus(res);
		if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE ||
			st == PGRES_NONFATAL_ERROR)
		{
			if (rx->err == NULL)
				rx->err = res;
			else
				PQclear(res);
		}
		else if (st == PGRES_TUPLES_OK && rx->phase == RP_STEP && rx->rows == NULL)
			rx->rows = res;
		else
		{
			if (rx->phase == RP_PREPARE && st == PGRES_COMMAND_OK)
				rx->prepared = strcmp(PQcmdStatus(res), "PREPARE TRANSACTION") == 0;
			else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
			{
				/* COPY is not a step; the connection cannot be reused */
				PQclear(res);
				rx->pc->broken = true;
				action_fail(act, "COPY is not supported in saga steps", "0A000", false);
				rx->phase = RP_DONE;
				return false;
			}
			PQclear(res);
		}
	}
	return false;
}

static void
remote_cancel(SagaAction *act)
{
	RemoteExec *rx = (RemoteExec *) act->exec;
	PGcancel   *cancel = PQgetCancel(rx->pc->conn);
	char		errbuf[256];

	if (cancel)
	{
		if (!PQcancel(cancel, errbuf, sizeof(errbuf)))
			ereport(LOG,
					(errmsg("distx saga: could not cancel step \"%s\" of run " INT64_FORMAT ": %s",
							act->step_name, act->run_id, errbuf)));
		PQfreeCancel(cancel);
	}
	rx->cancel_deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													  REMOTE_CANCEL_WAIT_MS);
}

/*
 * Make progress on the remote steps in flight without waiting: read what
 * has arrived, send the next command, enforce the deadlines.
 */
static void
progress_inflight(void)
{
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();

	foreach(lc, inflight)
	{
		SagaAction *act = (SagaAction *) lfirst(lc);
		RemoteExec *rx = (RemoteExec *) act->exec;
		MemoryContext old = MemoryContextSwitchTo(act->cxt);

		if (rx->phase != RP_DONE && !PQconsumeInput(rx->pc->conn))
			remote_lost(act);
		while (rx->phase != RP_DONE && remote_collect(act))
			remote_advance(act);
		if (rx->phase != RP_DONE)
		{
			if (rx->cancel_deadline == 0 && now >= rx->deadline)
			{
				remote_cancel(act);
				if (!act->done)
					action_fail(act, psprintf("step timed out after %d ms", act->timeout_ms),
								"57014", false);
			}
			else if (rx->cancel_deadline != 0 && now >= rx->cancel_deadline)
			{
				/* the node does not answer: drop the connection */
				remote_lost(act);
			}
		}
		MemoryContextSwitchTo(old);
	}
}

/*
 * Wait until a remote step in flight has something to read, the latch is
 * set, a deadline passes or timeout_ms (at most) is over.  Returns whether
 * the latch was set.
 */
static bool
wait_inflight(long timeout_ms)
{
	ListCell   *lc;
	bool		latch_set = false;
	int			nevents = list_length(inflight) + 2;
	WaitEvent  *occurred = palloc(sizeof(WaitEvent) * nevents);
	WaitEventSet *set;
	TimestampTz now = GetCurrentTimestamp();
	int			n;
	int			i;

	set = CreateWaitEventSet(CurrentMemoryContext, nevents);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	foreach(lc, inflight)
	{
		SagaAction *act = (SagaAction *) lfirst(lc);
		RemoteExec *rx = (RemoteExec *) act->exec;
		TimestampTz due = rx->cancel_deadline ? rx->cancel_deadline : rx->deadline;

		timeout_ms = Min(timeout_ms, Max(TimestampDifferenceMilliseconds(now, due), 1));
		if (rx->phase != RP_DONE)
			AddWaitEventToSet(set, WL_SOCKET_READABLE, PQsocket(rx->pc->conn),
							  NULL, act);
		else
			timeout_ms = 0;
	}
	n = WaitEventSetWait(set, Max(timeout_ms, 0), occurred, nevents, PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);
	for (i = 0; i < n; i++)
		if (occurred[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);	/* the caller returns 0: the loop looks again */
			latch_set = true;
		}
	pfree(occurred);
	return latch_set;
}

static bool
any_finished(void)
{
	ListCell   *lc;

	foreach(lc, inflight)
		if (((RemoteExec *) ((SagaAction *) lfirst(lc))->exec)->phase == RP_DONE)
			return true;
	return false;
}

/*
 * Drive the steps in flight until one finishes, the latch is set (a run
 * was started or changed, or a shutdown is asked for) or timeout_ms is
 * over.
 */
static void
drive_inflight(long timeout_ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);

	for (;;)
	{
		long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
		bool		latch_set;

		latch_set = wait_inflight(left);
		progress_inflight();
		if (latch_set || any_finished() || left <= 0)
			return;
	}
}

/*
 * ----------------------------------------------------------------------
 * Local steps
 * ----------------------------------------------------------------------
 */

typedef struct VarParams
{
	Oid		   *types;
	int			ntypes;
} VarParams;

static void
local_parser_setup(struct ParseState *pstate, void *arg)
{
	VarParams  *vp = (VarParams *) arg;

	setup_parse_variable_parameters(pstate, &vp->types, &vp->ntypes);
}

/*
 * Run a local step in the current (sub)transaction as the role that
 * started the run; its output (json text) is returned in cxt.  Parameters
 * are typed from their use, as a remote server does with untyped
 * parameters.
 */
static char *
exec_local(SagaAction *act, MemoryContext cxt)
{
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
	VarParams	vp = {NULL, 0};
	SPIPlanPtr	plan;
	ParamListInfo pli;
	char	   *output = NULL;
	int			rc;
	int			i;

	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(act->userid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role with OID %u does not exist", act->userid),
				 errdetail("Saga run " INT64_FORMAT " was started by that role; its steps run as it.",
						   act->run_id)));

	GetUserIdAndSecContext(&save_userid, &save_sec);
	nestlevel = NewGUCNestLevel();
	SetUserIdAndSecContext(act->userid, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	plan = SPI_prepare_params(act->sql, local_parser_setup, &vp, 0);
	if (plan == NULL)
		elog(ERROR, "could not prepare saga step: %s", SPI_result_code_string(SPI_result));

	pli = makeParamList(act->nparams);
	for (i = 0; i < act->nparams; i++)
	{
		ParamExternData *prm = &pli->params[i];
		Oid			ptype = i < vp.ntypes ? vp.types[i] : InvalidOid;

		if (!OidIsValid(ptype))
			ptype = TEXTOID;
		prm->ptype = ptype;
		prm->pflags = PARAM_FLAG_CONST;
		prm->isnull = act->params[i] == NULL;
		if (prm->isnull)
			prm->value = (Datum) 0;
		else
		{
			Oid			typinput;
			Oid			typioparam;

			getTypeInputInfo(ptype, &typinput, &typioparam);
			prm->value = OidInputFunctionCall(typinput, act->params[i], typioparam, -1);
		}
	}

	enable_timeout_after(STATEMENT_TIMEOUT, act->timeout_ms);
	rc = SPI_execute_plan_with_paramlist(plan, pli, false, 0);
	if (rc < 0)
		elog(ERROR, "could not run saga step: %s", SPI_result_code_string(rc));
	if (SPI_tuptable != NULL && SPI_processed > 0)
	{
		TupleDesc	desc = SPI_tuptable->tupdesc;
		HeapTuple	tup = SPI_tuptable->vals[0];
		int			n = 0;
		const char **names = palloc(sizeof(char *) * Max(desc->natts, 1));
		const char **values = palloc(sizeof(char *) * Max(desc->natts, 1));
		Oid		   *types = palloc(sizeof(Oid) * Max(desc->natts, 1));

		for (i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped)
				continue;
			names[n] = NameStr(att->attname);
			types[n] = att->atttypid;
			values[n] = SPI_getvalue(tup, desc, i + 1);
			n++;
		}
		output = MemoryContextStrdup(cxt, saga_row_json(n, names, types, values));
	}
	/* deferred constraints are checked now, inside the step */
	rc = SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0);
	if (rc < 0)
		elog(ERROR, "could not check deferred constraints: %s", SPI_result_code_string(rc));
	disable_timeout(STATEMENT_TIMEOUT, false);

	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	AtEOXact_GUC(false, nestlevel);
	return output;
}

/*
 * Run a local action in a subtransaction of the current transaction and
 * record its outcome: on success inside the subtransaction, so that the
 * effect and its record commit together.
 */
static void
run_local(SagaAction *act)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	/*
	 * Somebody else holds the run (an operator's open transaction): do not
	 * wait for it.  The claimed attempt stays running; when its lease runs
	 * out it is reconciled (it did nothing) and the step runs again.
	 */
	if (!saga_state_try_lock_run(act->run_id))
	{
		ereport(LOG,
				(errmsg("distx saga: run " INT64_FORMAT " is locked by another transaction; its local step \"%s\" runs later",
						act->run_id, act->step_name)));
		return;
	}

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		act->output = exec_local(act, cxt);
		act->done = true;
		act->ok = true;
		saga_record_outcome(act);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		disable_timeout(STATEMENT_TIMEOUT, false);
		/* a timeout that fired after the step must not hit anything else */
		if (get_timeout_indicator(STATEMENT_TIMEOUT, true))
			QueryCancelPending = false;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		action_fail_edata(act, edata);
		FreeErrorData(edata);
		saga_record_outcome(act);
	}
	PG_END_TRY();
}

/*
 * ----------------------------------------------------------------------
 * The tick
 * ----------------------------------------------------------------------
 */

static void
tick_start_xact(MemoryContext cxt, const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
	MemoryContextSwitchTo(cxt);
}

static void
tick_commit_xact(MemoryContext cxt)
{
	/* claims and outcomes are durable before anything depends on them */
	ForceSyncCommit();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

static void
tick_abort_xact(MemoryContext cxt, const char *what)
{
	MemoryContextSwitchTo(cxt);
	EmitErrorReport();
	FlushErrorState();
	AbortCurrentTransaction();
	MemoryContextSwitchTo(cxt);
	ereport(LOG, (errmsg("distx saga worker: %s failed; retrying", what)));
}

static bool
saga_tables_exist(void)
{
	Oid			nsp;

	if (!OidIsValid(get_extension_oid("distx", true)))
		return false;
	nsp = get_namespace_oid("distx", true);
	return OidIsValid(nsp) && OidIsValid(get_relname_relid("saga_run", nsp)) &&
		OidIsValid(get_relname_relid("saga_attempt", nsp));
}

/*
 * How long a claimed attempt keeps its run from being due: its timeout, the
 * time a cancel may take, and a margin.  Only a worker that stopped during
 * the attempt lets the lease run out.
 */
static int
action_lease_ms(SagaAction *act)
{
	int64		ms = (int64) act->timeout_ms + REMOTE_TIMEOUT_GRACE_MS +
		REMOTE_CANCEL_WAIT_MS + 1000;

	return (int) Min(ms, PG_INT32_MAX);
}

/*
 * Plan one run in a subtransaction; settle what a crash left open; prepare
 * and claim a step to run.  Returns the action to execute, or NULL.
 */
static bool
run_is_busy(int64 run_id, TimestampTz now)
{
	ListCell   *lc;

	foreach(lc, busy_runs)
	{
		BusyRun    *b = (BusyRun *) lfirst(lc);

		if (b->until <= now)
		{
			busy_runs = foreach_delete_current(busy_runs, lc);
			pfree(b);
		}
		else if (b->run_id == run_id)
			return true;
	}
	return false;
}

static void
note_busy_run(int64 run_id)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	BusyRun    *b = palloc(sizeof(BusyRun));

	b->run_id = run_id;
	b->until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), BUSY_RUN_DELAY_MS);
	busy_runs = lappend(busy_runs, b);
	MemoryContextSwitchTo(old);
}

static SagaAction *
plan_one(int64 run_id, MemoryContext cxt)
{
	ResourceOwner owner = CurrentResourceOwner;
	SagaAction *volatile result = NULL;
	PoolConn   *volatile pc_held = NULL;
	volatile bool busy = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		bool		b;
		SagaAction *act = saga_plan_run(run_id, &b);
		bool		remote = act && OidIsValid(act->node_id);

		busy = b;
		if (act == NULL)
			 /* nothing to do now */ ;
		else if (act->kind == SAGA_ACT_RECONCILE || act->kind == SAGA_ACT_RESOLVE)
		{
			if (!remote)
			{
				/* a local attempt commits with its record: it did nothing */
				action_fail(act, "the attempt was interrupted; nothing of it was committed",
							"40003", true);
				saga_record_outcome(act);
			}
			else
			{
				ErrorData  *edata;
				PoolConn   *pc = acquire_conn(act, &edata);

				if (pc == NULL)
					delay_action(act, edata);
				else
				{
					bool		settled;

					pc_held = pc;
					settled = settle_remote(act, pc);
					pc_held = NULL;
					pool_put(pc);
					if (settled)
						saga_record_outcome(act);
					else
						saga_record_delay(act, act->error, act->sqlstate, 1000);
				}
			}
		}
		else if (act->done)
		{
			/* the parameters could not be bound: a failed attempt */
			act->attempt_no = saga_state_claim_attempt(act->run_id, act->step_no,
													   act->compensate, NULL, 0);
			saga_record_outcome(act);
		}
		else if (remote)
		{
			ErrorData  *edata;
			PoolConn   *pc = acquire_conn(act, &edata);

			if (pc == NULL && sqlstate_transient(unpack_sql_state(edata->sqlerrcode)))
				delay_action(act, edata);
			else if (pc == NULL)
			{
				/* no USAGE, no user mapping...: a failed attempt */
				act->attempt_no = saga_state_claim_attempt(act->run_id, act->step_no,
														   act->compensate, NULL, 0);
				action_fail_edata(act, edata);
				saga_record_outcome(act);
			}
			else
			{
				RemoteExec *rx;

				pc_held = pc;
				rx = palloc0(sizeof(RemoteExec));
				rx->pc = pc;
				act->exec = rx;
				act->attempt_no =
					saga_state_claim_attempt(act->run_id, act->step_no, act->compensate,
											 saga_gid_prefix(act->run_id, act->step_no),
											 action_lease_ms(act));
				act->gid = saga_gid(act->run_id, act->step_no, act->attempt_no);
				result = act;
			}
		}
		else if (saga_state_clustered())
		{
			/*
			 * A local step of a run started before this server joined a
			 * cluster: its effect and its record cannot commit together any
			 * more (the record is a Raft entry).  It fails for good, with
			 * the reason.
			 */
			act->attempt_no = saga_state_claim_attempt(act->run_id, act->step_no,
													   act->compensate, NULL, 0);
			action_fail(act, "steps on the local database do not run in a distx cluster",
						"0A000", false);
			act->permanent = true;
			saga_record_outcome(act);
		}
		else
		{
			act->attempt_no = saga_state_claim_attempt(act->run_id, act->step_no,
													   act->compensate, NULL,
													   action_lease_ms(act));
			result = act;
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (pc_held)
			pool_put(pc_held);
		result = NULL;
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("distx saga run " INT64_FORMAT " could not be planned: %s",
						run_id, edata->message)));
		/* the run waits, and says why */
		saga_state_delay(run_id, 0,
						 TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 5000),
						 edata->message, unpack_sql_state(edata->sqlerrcode));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	if (busy)
		note_busy_run(run_id);
	return result;
}

static bool
list_member_run(List *actions, int64 run_id)
{
	ListCell   *lc;

	foreach(lc, actions)
		if (((SagaAction *) lfirst(lc))->run_id == run_id)
			return true;
	return false;
}

/*
 * COMMIT PREPARED for the remote steps whose success is now durably
 * recorded, all sent at once; confirmed ones are marked resolved at the
 * next tick.
 */
static void
commit_prepared(List *finished)
{
	ListCell   *lc;
	bool		fault_checked = false;

	foreach(lc, finished)
	{
		SagaAction *act = (SagaAction *) lfirst(lc);
		RemoteExec *rx = (RemoteExec *) act->exec;

		if (!(act->done && act->ok) || rx->pc->broken)
			continue;
		if (!fault_checked)
		{
			/* test only: stop between the record and COMMIT PREPARED */
			fault_point(act->compensate ? "saga_compensate_recorded" :
						"saga_forward_recorded", false);
			fault_checked = true;
		}
		if (!PQsendQuery(rx->pc->conn,
						 psprintf("COMMIT PREPARED %s", quote_literal_cstr(act->gid))))
			rx->pc->broken = true;
		else
			rx->phase = RP_PREPARE; /* reused: "a commit is in flight" */
	}
	foreach(lc, finished)
	{
		SagaAction *act = (SagaAction *) lfirst(lc);
		RemoteExec *rx = (RemoteExec *) act->exec;
		PGresult   *res;

		if (!(act->done && act->ok) || rx->phase != RP_PREPARE)
			continue;
		res = libpqsrv_get_result_last(rx->pc->conn, PG_WAIT_EXTENSION);
		if (result_ok_or_missing(res))
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
			ResolvedAttempt *r = palloc(sizeof(ResolvedAttempt));

			r->run_id = act->run_id;
			r->step_no = act->step_no;
			r->attempt_no = act->attempt_no;
			resolved_attempts = lappend(resolved_attempts, r);
			MemoryContextSwitchTo(old);
		}
		else
			ereport(WARNING,
					(errmsg("distx saga: COMMIT PREPARED of step \"%s\" of run " INT64_FORMAT " failed: %s",
							act->step_name, act->run_id,
							pchomp(PQerrorMessage(rx->pc->conn))),
					 errdetail("The run commits it before it goes on.")));
		PQclear(res);
		rx->phase = RP_DONE;
		if (PQstatus(rx->pc->conn) != CONNECTION_OK)
			rx->pc->broken = true;
	}
}

/*
 * Run the local actions planned in this tick, in one transaction (each in
 * a subtransaction, with its record).  If that transaction fails, the runs
 * are made due again so that their claimed attempts are reconciled.
 */
static void
run_locals(List *locals, MemoryContext cxt)
{
	volatile bool failed = false;
	ListCell   *lc;

	if (locals == NIL)
		return;
	tick_start_xact(cxt, "distx saga: running local steps");
	PG_TRY();
	{
		foreach(lc, locals)
			run_local((SagaAction *) lfirst(lc));
		tick_commit_xact(cxt);
	}
	PG_CATCH();
	{
		tick_abort_xact(cxt, "running local steps");
		failed = true;
	}
	PG_END_TRY();
	if (!failed)
		return;

	tick_start_xact(cxt, "distx saga: rescheduling local steps");
	PG_TRY();
	{
		foreach(lc, locals)
		{
			SagaAction *act = (SagaAction *) lfirst(lc);

			saga_state_delay(act->run_id, act->step_no, GetCurrentTimestamp(),
							 "the transaction of the local step failed", "XX000");
		}
		tick_commit_xact(cxt);
	}
	PG_CATCH();
	{
		/* the leases run out, and the runs are reconciled then */
		tick_abort_xact(cxt, "rescheduling local steps");
	}
	PG_END_TRY();
}

/*
 * In a cluster: a remote attempt of this worker whose success is certainly
 * not recorded (refused, or never proposed because this server stopped
 * acting) must never commit.  Its prepared transaction, if there is one, is
 * rolled back on its own connection (the acting coordinator would do the
 * same when it reconciles the attempt; if it did so already, the attempt
 * may have prepared after that, and only this worker knows).
 */
static void
abandon_prepared(SagaAction *act)
{
	RemoteExec *rx = (RemoteExec *) act->exec;
	PGresult   *res;

	if (rx == NULL || rx->pc == NULL || rx->pc->conn == NULL || act->gid == NULL ||
		PQstatus(rx->pc->conn) != CONNECTION_OK)
		return;
	if (rx->phase == RP_PREPARE && !(act->done && act->ok))
	{
		/* PREPARE sent, its answer not read yet */
		res = libpqsrv_get_result_last(rx->pc->conn, PG_WAIT_EXTENSION);
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK ||
			strcmp(PQcmdStatus(res), "PREPARE TRANSACTION") != 0)
		{
			PQclear(res);
			return;				/* not prepared */
		}
		PQclear(res);
	}
	else if (!(act->done && act->ok))
		return;					/* never prepared: closing the connection ends it */
	if (PQtransactionStatus(rx->pc->conn) != PQTRANS_IDLE)
		return;
	res = remote_exec(rx->pc, psprintf("ROLLBACK PREPARED %s", quote_literal_cstr(act->gid)),
					  0, NULL);
	ereport(LOG,
			(errmsg("distx saga: ROLLBACK PREPARED of attempt %d of step \"%s\" of run " INT64_FORMAT ": %s",
					act->attempt_no, act->step_name, act->run_id,
					PQresultStatus(res) == PGRES_COMMAND_OK ? "rolled back" :
					result_ok_or_missing(res) ? "already gone" :
					pchomp(PQresultErrorMessage(res))),
			 errdetail("This server does not act as the coordinator for the attempt's term any more; its success was not recorded.")));
	PQclear(res);
}

/*
 * Record the outcome of a finished remote step.  In a cluster, a success
 * that is refused (this server's term ended, or the attempt was settled by
 * the acting coordinator) rolls its prepared transaction back before the
 * error goes on.
 */
static void
record_finished(SagaAction *act)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	if (!saga_state_clustered())
	{
		saga_record_outcome(act);
		return;
	}
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		saga_record_outcome(act);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (act->ok && saga_state_success_refused)
			abandon_prepared(act);
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/*
 * In a cluster, now and then: the prepared transactions of remote attempts
 * recorded as aborted or failed are rolled back wherever they still exist.
 * Such an attempt never commits (only a recorded success is committed),
 * but a coordinator that lost its leadership may have prepared it after
 * the new one reconciled it (see abandon_prepared), and it would hold its
 * locks for good.  Attempts that ended in the last SWEEP_WINDOW_MS are
 * looked at, every SWEEP_INTERVAL_MS; a gid that does not exist is fine.
 */
#define SWEEP_INTERVAL_MS	10000
#define SWEEP_WINDOW_MS		(10 * 60 * 1000)

static TimestampTz next_sweep_at = 0;

static void
sweep_abandoned(void)
{
	List	   *list;
	ListCell   *lc;
	TimestampTz now = GetCurrentTimestamp();

	if (now < next_sweep_at)
		return;
	next_sweep_at = TimestampTzPlusMilliseconds(now, SWEEP_INTERVAL_MS);
	list = saga_state_abandoned_attempts(TimestampTzPlusMilliseconds(now, -SWEEP_WINDOW_MS));
	foreach(lc, list)
	{
		SagaAbandoned *a = (SagaAbandoned *) lfirst(lc);
		SagaAction	act;
		ErrorData  *edata;
		PoolConn   *pc;
		PGresult   *res;

		memset(&act, 0, sizeof(act));
		act.node_id = get_foreign_server_oid(a->node_name, true);
		act.userid = a->userid;
		if (!OidIsValid(act.node_id))
			continue;
		pc = acquire_conn(&act, &edata);
		if (pc == NULL)
		{
			FreeErrorData(edata);
			continue;
		}
		res = remote_exec(pc, psprintf("ROLLBACK PREPARED %s", quote_literal_cstr(a->gid)),
						  0, NULL);
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			ereport(LOG,
					(errmsg("distx saga: rolled back prepared transaction %s on node \"%s\": its attempt is recorded as %s",
							a->gid, a->node_name, a->state)));
		PQclear(res);
		pool_put(pc);
	}
}

/*
 * Whether this server runs saga steps now.  A single server always does.
 * A member of a cluster only while it acts as the coordinator
 * (cluster_acting_term() != 0); its proposals then carry that term, and a
 * new term wakes the runs whose attempts were left open (by this server's
 * last worker or by the old leader), to be reconciled.  A member that does
 * not act drops what it has in flight: a step that prepared is rolled back
 * (abandon_prepared: its success was never proposed), the connections are
 * closed, so the other remote transactions end, and the acting coordinator
 * reconciles the attempts, which are still running in the replicated
 * state.  Even a short loss of the role (a Raft worker stalled for half an
 * election timeout) drops the steps in flight; they are tried again.
 */
static uint64 last_acting_term = 0;

bool
saga_worker_acting(void)
{
	uint64		term;
	ListCell   *lc;

	if (!saga_state_clustered())
	{
		saga_state_set_term(0);
		return true;
	}
	term = cluster_acting_term();
	if (term != 0)
	{
		if (term != last_acting_term)
		{
			interrupted_woken = false;
			last_acting_term = term;
			ereport(LOG,
					(errmsg("distx saga: acting as the coordinator in term %llu",
						(unsigned long long) term)));
		}
		saga_state_set_term(term);
		return true;
	}

	saga_state_set_term(0);
	if (inflight != NIL || deferred != NIL)
	{
		ereport(LOG,
				(errmsg("distx saga: not the coordinator any more; dropping %d saga steps in flight",
						list_length(inflight) + list_length(deferred)),
				 errdetail("The acting coordinator reconciles their attempts.")));
		foreach(lc, inflight)
		{
			abandon_prepared((SagaAction *) lfirst(lc));
			((RemoteExec *) ((SagaAction *) lfirst(lc))->exec)->pc->broken = true;
		}
		foreach(lc, deferred)
		{
			abandon_prepared((SagaAction *) lfirst(lc));
			((RemoteExec *) ((SagaAction *) lfirst(lc))->exec)->pc->broken = true;
		}
		release_actions(inflight);
		list_free(inflight);
		inflight = NIL;
		release_actions(deferred);
		list_free(deferred);
		deferred = NIL;
	}
	list_free_deep(resolved_attempts);
	resolved_attempts = NIL;
	last_acting_term = 0;
	release_idle_resources();
	return false;
}

/*
 * One tick of the saga executor:
 *
 * 1. progress of the remote steps in flight (no waiting);
 * 2. one transaction: the outcomes of the finished ones are recorded, the
 *    commits confirmed at the last tick are marked, and due runs (not in
 *    flight, up to distx.saga_max_concurrency in all) are planned and
 *    their next attempts claimed;
 * 3. COMMIT PREPARED for the finished remote steps that succeeded;
 * 4. the local steps planned, in a transaction of their own;
 * 5. the remote steps planned are sent and join those in flight;
 * 6. with nothing else to do but steps in flight, a wait on their sockets
 *    and the latch.
 *
 * Returns the time in ms until the next run is due: 0 if there is more to
 * do right away, -1 if nothing waits.
 */
long
saga_worker_tick(MemoryContext cxt)
{
	List	   *volatile finished = NIL;
	List	   *volatile planned = NIL;
	List	   *volatile locals = NIL;
	volatile long next_due = -1;
	volatile bool failed = false;
	volatile bool installed = true;
	ListCell   *lc;
	static bool gucs_set = false;

	if (saga_context == NULL)
		saga_context = AllocSetContextCreate(TopMemoryContext, "distx saga actions",
											 ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);

	/* 1. progress; the finished leave the flight */
	progress_inflight();
	foreach(lc, inflight)
	{
		SagaAction *act = (SagaAction *) lfirst(lc);

		if (((RemoteExec *) act->exec)->phase == RP_DONE)
		{
			finished = lappend(finished, act);
			inflight = foreach_delete_current(inflight, lc);
		}
	}
	foreach(lc, deferred)
	{
		SagaAction *act = (SagaAction *) lfirst(lc);

		if (((RemoteExec *) act->exec)->record_at <= GetCurrentTimestamp())
		{
			finished = lappend(finished, act);
			deferred = foreach_delete_current(deferred, lc);
		}
	}

	/*
	 * Nothing finished, nothing to mark, no room for more: only the steps in
	 * flight to drive.
	 */
	if (finished == NIL && resolved_attempts == NIL && inflight != NIL &&
		list_length(inflight) >= distx_saga_max_concurrency)
	{
		drive_inflight(deferred != NIL ? BUSY_RUN_DELAY_MS : 1000);
		return 0;
	}

	/* 2. record, plan, claim */
	tick_start_xact(cxt, "distx saga: planning");
	PG_TRY();
	{
		if (!gucs_set)
		{
			/* the worker never waits for a bulkhead slot: the run waits */
			SetConfigOption("distx.bulkhead_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
			gucs_set = true;
		}
		installed = saga_tables_exist();
		if (installed)
		{
			List	   *runs;
			long		due;
			int			capacity;

			if (!interrupted_woken)
			{
				/* attempts a previous worker left in flight: reconcile now */
				saga_state_wake_interrupted();
				interrupted_woken = true;
			}

			/* COMMIT PREPARED confirmed at the last tick */
			foreach(lc, resolved_attempts)
			{
				ResolvedAttempt *r = (ResolvedAttempt *) lfirst(lc);

				saga_state_attempt_resolved(r->run_id, r->step_no, r->attempt_no);
			}

			foreach(lc, finished)
			{
				SagaAction *act = (SagaAction *) lfirst(lc);

				/* never wait for a lock an operator holds: record later */
				if (!saga_state_try_lock_run(act->run_id))
				{
					MemoryContext old = MemoryContextSwitchTo(saga_context);

					((RemoteExec *) act->exec)->record_at =
						TimestampTzPlusMilliseconds(GetCurrentTimestamp(), BUSY_RUN_DELAY_MS);
					deferred = lappend(deferred, act);
					MemoryContextSwitchTo(old);
					finished = foreach_delete_current(finished, lc);
					continue;
				}
				if (act->done)
					record_finished(act);
				else
					saga_state_delay(act->run_id, act->step_no, GetCurrentTimestamp(),
									 "the connection was lost while the step prepared; its outcome is reconciled",
									 "08006");
			}

			if (saga_state_clustered())
				sweep_abandoned();

			capacity = distx_saga_max_concurrency - list_length(inflight);
			runs = saga_due_runs(Max(capacity, 0) + list_length(inflight) +
								 list_length(finished), &due);
			next_due = due;
			foreach(lc, runs)
			{
				int64		run_id = *(int64 *) lfirst(lc);
				MemoryContext acxt;
				SagaAction *act;

				if (list_length(planned) >= capacity)
					break;
				/* a run in flight, or whose outcome is not committed yet */
				if (list_member_run(inflight, run_id) || list_member_run(finished, run_id) ||
					list_member_run(deferred, run_id))
					continue;
				/* a run somebody else had locked a moment ago */
				if (run_is_busy(run_id, GetCurrentTimestamp()))
				{
					if (next_due < 0 || next_due > BUSY_RUN_DELAY_MS)
						next_due = BUSY_RUN_DELAY_MS;
					continue;
				}
				next_due = 0;
				acxt = AllocSetContextCreate(saga_context, "distx saga action",
											 ALLOCSET_SMALL_SIZES);
				act = plan_one(run_id, acxt);
				MemoryContextSwitchTo(cxt);
				if (act == NULL)
				{
					MemoryContextDelete(acxt);
					continue;
				}
				act->cxt = acxt;
				planned = lappend(planned, act);
			}
		}
		tick_commit_xact(cxt);
		list_free_deep(resolved_attempts);
		resolved_attempts = NIL;
	}
	PG_CATCH();
	{
		tick_abort_xact(cxt, "planning");
		failed = true;
	}
	PG_END_TRY();

	if (failed || !installed)
	{
		/*
		 * Nothing of this tick was recorded: the claimed attempts of the
		 * finished steps stay running and are reconciled when their leases
		 * run out (a prepared step is rolled back and tried again).
		 */
		release_actions(finished);
		release_actions(planned);
		if (!installed)
		{
			/* the extension is gone: drop what is in flight */
			foreach(lc, inflight)
				((RemoteExec *) ((SagaAction *) lfirst(lc))->exec)->pc->broken = true;
			release_actions(inflight);
			list_free(inflight);
			inflight = NIL;
			release_actions(deferred);
			list_free(deferred);
			deferred = NIL;
		}
		release_idle_resources();
		pgstat_report_activity(STATE_IDLE, NULL);
		return failed ? 1000 : -1;
	}

	/* 3. the finished remote steps that succeeded are committed */
	if (finished != NIL)
	{
		pgstat_report_activity(STATE_RUNNING, "distx saga: committing remote steps");
		commit_prepared(finished);
		release_actions(finished);
	}

	/* 4. local steps */
	foreach(lc, planned)
	{
		SagaAction *act = (SagaAction *) lfirst(lc);

		if (act->exec == NULL)
			locals = lappend(locals, act);
	}
	run_locals(locals, cxt);
	release_actions(locals);

	/*
	 * 5. remote steps take off; in a cluster only while this server still
	 * acts in the term that claimed them (otherwise the claims stay running
	 * and the acting coordinator reconciles them)
	 */
	foreach(lc, planned)
	{
		SagaAction *act = (SagaAction *) lfirst(lc);
		MemoryContext old;

		if (act->exec == NULL)
			continue;
		if (last_acting_term != 0 && cluster_acting_term() != last_acting_term)
		{
			((RemoteExec *) act->exec)->pc->broken = true;
			release_action(act);
			continue;
		}
		old = MemoryContextSwitchTo(act->cxt);
		remote_start(act);
		MemoryContextSwitchTo(saga_context);
		inflight = lappend(inflight, act);
		MemoryContextSwitchTo(old);
	}

	release_idle_resources();

	/* 6. nothing else to do: wait for the steps in flight */
	if (finished == NIL && planned == NIL && inflight != NIL)
	{
		long		wait = next_due > 0 ? Min(next_due, 1000) : 1000;

		if (deferred != NIL)
			wait = Min(wait, BUSY_RUN_DELAY_MS);
		pgstat_report_activity(STATE_RUNNING, "distx saga: waiting for remote steps");
		drive_inflight(wait);
		next_due = 0;
	}
	else if (finished != NIL || planned != NIL)
		next_due = 0;
	else if (deferred != NIL && (next_due < 0 || next_due > BUSY_RUN_DELAY_MS))
		next_due = BUSY_RUN_DELAY_MS;

	pgstat_report_activity(inflight != NIL ? STATE_RUNNING : STATE_IDLE,
						   inflight != NIL ? "distx saga: remote steps in flight" : NULL);
	return next_due;
}
