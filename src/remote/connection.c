/*-------------------------------------------------------------------------
 *
 * connection.c
 *	  Connections to distx nodes.
 *
 * Modelled on contrib/postgres_fdw's connection.c.  Each backend caches one
 * connection per user mapping.  The first use of a node in a local
 * transaction opens a remote transaction with the same isolation level,
 * and savepoints are opened lazily so that the remote nesting follows the
 * local one.  START TRANSACTION and SAVEPOINT travel in one libpq pipeline
 * with the statement that needs them (one round trip, not two); the
 * commands that end transactions (PREPARE, COMMIT, ROLLBACK, COMMIT
 * PREPARED) go over the simple query protocol, alone.  The
 * transaction and subtransaction callbacks (txn/txn.c) finish the remote
 * transactions.
 *
 * Every wait for a node goes through WaitLatchOrSocket, so that cancel,
 * SIGTERM and postmaster death are honoured: an interrupt raises an error
 * while the remote statement runs, and the abort callback then sends a
 * cancel request to the node before rolling it back, which is how a local
 * cancel or statement_timeout reaches the remote statement.
 *
 * Every PGresult is cleared on every path, errors included.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "distx.h"
#include "remote/connection.h"
#include "remote/health.h"
#include "txn/fault.h"

int			distx_cleanup_timeout = 30000;
bool		distx_second_phase_wait = true;

static HTAB *ConnectionHash = NULL;

static void conn_inval_callback(Datum arg, int cacheid, uint32 hashvalue);

void
connection_define_gucs(void)
{
	DefineCustomIntVariable("distx.cleanup_timeout",
							"Time the second phase and rollback wait for a node before leaving the work to recovery, and a recovery pass waits for one node.",
							NULL,
							&distx_cleanup_timeout,
							30000, 100, 3600000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("distx.second_phase_wait",
							 "Whether COMMIT waits until every node has answered COMMIT PREPARED.",
							 "When off, COMMIT returns once the decision is durable and COMMIT PREPARED "
							 "is sent; the answers are collected when the session next uses each node.",
							 &distx_second_phase_wait,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
}

HTAB *
conn_cache(void)
{
	return ConnectionHash;
}

static void
conn_cache_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(DistxConn);
	ConnectionHash = hash_create("distx connections", 8, &ctl,
								 HASH_ELEM | HASH_BLOBS);

	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, conn_inval_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, conn_inval_callback, (Datum) 0);
}

/*
 * Open a libpq connection to a node, with the circuit breaker consulted
 * first and told the outcome.  Errors are raised; the result is ready to
 * use.
 */
PGconn *
conn_connect(DistxNode *node)
{
	return conn_connect_within(node, 0);
}

/*
 * libpqsrv_connect_params(), but giving up after timeout_ms: *timed_out
 * says so, and the connection is closed and NULL returned.
 */
static PGconn *
connect_bounded(const char **keywords, const char **values, int timeout_ms,
				bool *timed_out)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	PGconn	   *volatile conn;

	*timed_out = false;
	libpqsrv_connect_prepare();
	conn = PQconnectStartParams(keywords, values, false);
	if (conn == NULL)
	{
		ReleaseExternalFD();
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_BAD)
		return conn;

	PG_TRY();
	{
		PostgresPollingStatusType status = PGRES_POLLING_WRITING;

		while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
		{
			long		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			int			io = status == PGRES_POLLING_READING ?
				WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
			int			rc;

			if (left <= 0)
			{
				*timed_out = true;
				break;
			}
			rc = WaitLatchOrSocket(MyLatch,
								   WL_EXIT_ON_PM_DEATH | WL_LATCH_SET | WL_TIMEOUT | io,
								   PQsocket(conn), left, PG_WAIT_EXTENSION);
			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			if (rc & io)
				status = PQconnectPoll(conn);
		}
	}
	PG_CATCH();
	{
		libpqsrv_disconnect(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (*timed_out)
	{
		libpqsrv_disconnect(conn);
		return NULL;
	}
	return conn;
}

/*
 * conn_connect() that gives up after timeout_ms (0: waits as long as the
 * node takes, like libpq without connect_timeout; cancel still works).
 */
PGconn *
conn_connect_within(DistxNode *node, int timeout_ms)
{
	const char **keywords;
	const char **values;
	PGconn	   *conn;
	bool		timed_out = false;

	node_conn_params(node, &keywords, &values);
	health_circuit_admit(node->serverid, node->servername);

	if (timeout_ms > 0)
		conn = connect_bounded(keywords, values, timeout_ms, &timed_out);
	else
		conn = libpqsrv_connect_params(keywords, values, false, PG_WAIT_EXTENSION);
	if (timed_out)
	{
		health_report_failure(node->serverid, "timeout while connecting");
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to distx node \"%s\"", node->servername),
				 errdetail("The node did not answer within %d ms.", timeout_ms)));
	}
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = conn ? pchomp(PQerrorMessage(conn)) : pstrdup("out of memory");

		health_report_failure(node->serverid, msg);
		libpqsrv_disconnect(conn);
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to distx node \"%s\"", node->servername),
				 errdetail_internal("%s", msg)));
	}

	/* see node_conn_params(): a non-superuser must have used a password */
	if (!superuser_arg(node->userid) && node_password_required(node) &&
		!PQconnectionUsedPassword(conn))
	{
		libpqsrv_disconnect(conn);
		ereport(ERROR,
				(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
				 errmsg("password is required"),
				 errdetail("Non-superuser cannot connect to distx node \"%s\" if it does not request a password.",
						   node->servername),
				 errhint("Target server's authentication method must be changed or password_required=false set in the user mapping attributes.")));
	}
	health_report_success(node->serverid);
	return conn;
}

void
conn_close(PGconn *conn)
{
	libpqsrv_disconnect(conn);
}

/*
 * Open the connection of a cache entry and set its session up.  A
 * connection that fails here is not kept.
 */
static void
conn_open(DistxConn *c, DistxNode *node)
{
	PGconn	   *conn;
	PGresult   *res;

	c->serverid = node->serverid;
	c->userid = node->userid;
	strlcpy(c->servername, node->servername, NAMEDATALEN);
	c->xact_depth = 0;
	c->wrote = c->maybe_wrote = c->prepared = false;
	c->changing_xact_state = false;
	c->invalidated = false;
	c->server_hashvalue = GetSysCacheHashValue1(FOREIGNSERVEROID,
												ObjectIdGetDatum(node->serverid));
	c->mapping_hashvalue = GetSysCacheHashValue1(USERMAPPINGOID,
												 ObjectIdGetDatum(node->umid));

	conn = conn_connect(node);
	c->conn = conn;
	c->fresh = true;
	health_count_connection(c->serverid, 1);

	/*
	 * Make values travel in formats that do not depend on the remote
	 * settings, and learn whether the node can prepare transactions.  A
	 * connection that fails here is not kept.
	 */
	PG_TRY();
	{
		if (!PQsendQuery(conn,
						 "SET datestyle = ISO; SET intervalstyle = postgres; "
						 "SET extra_float_digits = 3; "
						 "SELECT current_setting('max_prepared_transactions')"))
			conn_report_error(ERROR, NULL, c, "session setup");
		res = libpqsrv_get_result_last(conn, PG_WAIT_EXTENSION);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
			conn_report_error(ERROR, res, c, "session setup");
		c->max_prepared_xacts = atoi(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	PG_CATCH();
	{
		conn_disconnect(c);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

DistxConn *
conn_get(DistxNode *node)
{
	DistxConn  *c;
	bool		found;

	distx_require_preload("distx remote execution");
	if (ConnectionHash == NULL)
		conn_cache_init();

	c = hash_search(ConnectionHash, &node->umid, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) c) + sizeof(Oid), 0, sizeof(DistxConn) - sizeof(Oid));
	}

	/* the answer to the previous transaction's COMMIT PREPARED */
	if (c->conn != NULL && c->pending_result)
		conn_collect_pending(c);

	/* a changed server or mapping: reconnect, unless a transaction uses it */
	if (c->conn != NULL && c->invalidated && c->xact_depth == 0)
		conn_disconnect(c);

	/*
	 * A cached connection may have broken while idle (the node restarted).
	 * Reading what the socket holds, without blocking, shows a closed
	 * connection: a server that goes away sends a FATAL message and then
	 * closes, and libpq sees the end of the stream only on the read after
	 * the one that brought the message, hence two reads.  A break that
	 * shows neither way shows when the first statement runs, and
	 * conn_exec_params() reconnects once then.  (The test-only fault point
	 * stale_connection skips this check, to make a break look silent.)
	 */
	if (c->conn != NULL && c->xact_depth == 0 &&
		!fault_armed("stale_connection") &&
		(!PQconsumeInput(c->conn) || !PQconsumeInput(c->conn) ||
		 PQstatus(c->conn) != CONNECTION_OK))
	{
		ereport(DEBUG1,
				(errmsg_internal("distx: reconnecting to node \"%s\" after a broken cached connection: %s",
								 c->servername, pchomp(PQerrorMessage(c->conn)))));
		conn_disconnect(c);
	}

	if (c->xact_depth == 0 && !c->holds_slot)
	{
		health_bulkhead_acquire(node->serverid, node->servername);
		c->holds_slot = true;
		c->serverid = node->serverid;
	}

	if (c->conn == NULL)
		conn_open(c, node);
	return c;
}

/*
 * The commands that bring the remote transaction to the local nest level:
 * START TRANSACTION with the local isolation level if none is open, then
 * the missing savepoints.  They travel with the next statement.
 */
static List *
conn_prelude(DistxConn *c)
{
	int			curlevel = GetCurrentTransactionNestLevel();
	List	   *cmds = NIL;
	int			depth;

	if (c->xact_depth <= 0)
	{
		const char *sql;

		/* the remote isolation level follows the local one */
		if (IsolationIsSerializable())
			sql = XactReadOnly ? "START TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY"
				: "START TRANSACTION ISOLATION LEVEL SERIALIZABLE";
		else if (IsolationUsesXactSnapshot())
			sql = XactReadOnly ? "START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"
				: "START TRANSACTION ISOLATION LEVEL REPEATABLE READ";
		else
			sql = XactReadOnly ? "START TRANSACTION ISOLATION LEVEL READ COMMITTED READ ONLY"
				: "START TRANSACTION ISOLATION LEVEL READ COMMITTED";
		cmds = lappend(cmds, (char *) sql);
	}
	for (depth = Max(c->xact_depth, 1); depth < curlevel; depth++)
		cmds = lappend(cmds, psprintf("SAVEPOINT distx_s%d", depth + 1));
	return cmds;
}

/*
 * distx.exec and distx.query pass no COPY data: a COPY from the client is
 * failed on the node (CopyFail), one to the client is read and dropped.
 * The result of the COPY itself comes next; the caller raises the error.
 */
static void
conn_refuse_copy(DistxConn *c, PGresult *res)
{
	ExecStatusType status = PQresultStatus(res);

	PQclear(res);
	if (status == PGRES_COPY_IN || status == PGRES_COPY_BOTH)
	{
		if (PQputCopyEnd(c->conn, "distx does not pass COPY data") != 1)
			conn_report_error(ERROR, NULL, c, "(end of COPY)");
	}
	else
	{
		for (;;)
		{
			char	   *buf = NULL;
			int			n = PQgetCopyData(c->conn, &buf, 1);

			if (n > 0)
				PQfreemem(buf);
			else if (n == 0)
			{
				(void) WaitLatchOrSocket(MyLatch,
										 WL_LATCH_SET | WL_SOCKET_READABLE | WL_EXIT_ON_PM_DEATH,
										 PQsocket(c->conn), 0, PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
				if (!PQconsumeInput(c->conn))
					conn_report_error(ERROR, NULL, c, "(COPY data)");
			}
			else
				break;			/* -1: done; -2: the result says why */
		}
	}
}

/* the next result of a command; a COPY is refused and *copy set */
static PGresult *
conn_next_result(DistxConn *c, bool *copy)
{
	PGresult   *res = libpqsrv_get_result(c->conn, PG_WAIT_EXTENSION);
	ExecStatusType status = PQresultStatus(res);

	if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT ||
		status == PGRES_COPY_BOTH)
	{
		*copy = true;
		conn_refuse_copy(c, res);
		res = libpqsrv_get_result(c->conn, PG_WAIT_EXTENSION);
	}
	return res;
}

static void
report_copy(DistxConn *c, PGresult *res, const char *sql)
{
	PQclear(res);
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("COPY to or from the client cannot run through distx"),
			 errhint("Use INSERT or distx.query with the rows as parameters, or COPY with a file on node \"%s\".",
					 c->servername),
			 errcontext("remote SQL command on node \"%s\": %s", c->servername, sql)));
}

/*
 * Run the prelude and the statement in one round trip: a libpq pipeline
 * with one Sync at the end (the node answers all of it at once, after the
 * statement).  The remote transaction is taken to be at the local nest
 * level from the moment the pipeline is sent: if an interrupt stops the
 * wait, the abort callbacks cancel the statement, drain the pipeline
 * (conn_cancel_and_drain) and roll back to that level.  Returns the
 * statement's result, or the first failed one (NULL if the connection
 * broke) with *failed_sql set; the connection is out of pipeline mode
 * either way, unless it broke.  *copy is set if the statement was a COPY
 * to or from the client (refused: see conn_refuse_copy).
 */
static PGresult *
conn_exec_pipelined(DistxConn *c, List *prelude, const char *sql, int nparams,
					const char *const *values, const char **failed_sql,
					bool *copy)
{
	int			depth = c->xact_depth;
	int			nprelude = list_length(prelude);
	PGresult   *stmt_res = NULL;
	PGresult   *failed = NULL;
	bool		lost = false;
	ListCell   *lc;
	int			i;

	*failed_sql = NULL;
	if (!PQenterPipelineMode(c->conn))
	{
		*failed_sql = sql;
		return NULL;
	}
	if (depth <= 0)
	{
		c->wrote = c->maybe_wrote = c->prepared = false;
		c->gid[0] = '\0';
	}
	c->changing_xact_state = true;
	foreach(lc, prelude)
		if (!PQsendQueryParams(c->conn, lfirst(lc), 0, NULL, NULL, NULL, NULL, 0))
		{
			*failed_sql = lfirst(lc);
			lost = true;
			break;
		}
	if (!lost && (!PQsendQueryParams(c->conn, sql, nparams, NULL, values, NULL, NULL, 0) ||
				  !PQpipelineSync(c->conn)))
	{
		*failed_sql = sql;
		lost = true;
	}
	if (!lost)
	{
		c->xact_depth = Max(GetCurrentTransactionNestLevel(), 1);
		c->changing_xact_state = false;
	}

	/* one result and a NULL per command, then the Sync's */
	for (i = 0; i <= nprelude && !lost; i++)
	{
		PGresult   *res = conn_next_result(c, copy);
		ExecStatusType status = PQresultStatus(res);
		PGresult   *extra;

		if (res == NULL)
		{
			lost = true;
			break;
		}
		while ((extra = conn_next_result(c, copy)) != NULL)
			PQclear(extra);		/* a statement has one result; never more */
		if (i < nprelude)
		{
			if (status == PGRES_COMMAND_OK)
			{
				depth = depth <= 0 ? 1 : depth + 1;
				PQclear(res);
				continue;
			}
		}
		else if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
		{
			stmt_res = res;
			continue;
		}
		if (failed == NULL && status != PGRES_PIPELINE_ABORTED)
		{
			failed = res;
			*failed_sql = i < nprelude ? list_nth(prelude, i) : sql;
		}
		else
			PQclear(res);
	}
	if (!lost)
	{
		PGresult   *res = libpqsrv_get_result(c->conn, PG_WAIT_EXTENSION);

		if (PQresultStatus(res) != PGRES_PIPELINE_SYNC)
			lost = true;
		PQclear(res);
	}
	if (lost || !PQexitPipelineMode(c->conn))
	{
		/* the connection is broken or out of step: drop it at xact end */
		c->changing_xact_state = true;
		if (*failed_sql == NULL)
			*failed_sql = sql;
		PQclear(stmt_res);
		return failed;
	}

	/* the savepoints that were not made are not there */
	c->xact_depth = depth;
	if (failed)
	{
		PQclear(stmt_res);
		return failed;
	}
	return stmt_res;
}

/*
 * Report an error from a node.  The remote SQLSTATE, message, detail, hint
 * and context are passed through, with the remote statement as context.
 * The result is cleared.  A lost connection is counted against the node's
 * circuit.
 */
void
conn_report_error(int elevel, PGresult *res, DistxConn *c, const char *sql)
{
	char	   *diag_sqlstate = NULL;
	char	   *message_primary = NULL;
	char	   *message_detail = NULL;
	char	   *message_hint = NULL;
	char	   *message_context = NULL;
	int			sqlstate;
	bool		lost = (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK);

	if (res)
	{
		diag_sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		message_primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		message_detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		message_hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		message_context = PQresultErrorField(res, PG_DIAG_CONTEXT);
		/* copy out: the result is cleared before ereport */
		diag_sqlstate = diag_sqlstate ? pstrdup(diag_sqlstate) : NULL;
		message_primary = message_primary ? pstrdup(message_primary) : NULL;
		message_detail = message_detail ? pstrdup(message_detail) : NULL;
		message_hint = message_hint ? pstrdup(message_hint) : NULL;
		message_context = message_context ? pstrdup(message_context) : NULL;
		PQclear(res);
	}

	if (diag_sqlstate)
		sqlstate = MAKE_SQLSTATE(diag_sqlstate[0], diag_sqlstate[1],
								 diag_sqlstate[2], diag_sqlstate[3],
								 diag_sqlstate[4]);
	else
		sqlstate = ERRCODE_CONNECTION_FAILURE;

	if (message_primary == NULL && c->conn)
		message_primary = pchomp(PQerrorMessage(c->conn));
	if (lost)
		health_report_failure(c->serverid, message_primary);

	ereport(elevel,
			(errcode(sqlstate),
			 (message_primary && message_primary[0]) ?
			 errmsg_internal("%s", message_primary) :
			 errmsg("could not communicate with distx node \"%s\"", c->servername),
			 message_detail ? errdetail_internal("%s", message_detail) : 0,
			 message_hint ? errhint("%s", message_hint) : 0,
			 message_context ? errcontext("%s", message_context) : 0,
			 sql ? errcontext("remote SQL command on node \"%s\": %s", c->servername, sql) : 0));
}

/*
 * Wait for the result of a query sent on a connection, honouring
 * interrupts; returns the last result (the caller clears it).
 */
PGresult *
conn_wait_result(DistxConn *c)
{
	return libpqsrv_get_result_last(c->conn, PG_WAIT_EXTENSION);
}

/*
 * Run a statement with bind parameters in the remote transaction at the
 * local nest level; errors are raised.  The first statement of a remote
 * transaction (or of a savepoint level) carries the commands that open it
 * in the same round trip.  A cached connection found broken there, before
 * anything ran in this transaction, is replaced once.
 */
PGresult *
conn_exec_params(DistxConn *c, DistxNode *node, const char *sql, int nparams,
				 const char *const *values)
{
	PGresult   *res;
	ExecStatusType status;
	List	   *prelude = conn_prelude(c);
	bool		may_retry = c->xact_depth == 0 && !c->fresh;
	const char *failed_sql;
	bool		copy = false;

	c->fresh = false;
	if (prelude == NIL)
	{
		PGresult   *extra;

		if (!PQsendQueryParams(c->conn, sql, nparams, NULL, values, NULL, NULL, 0))
			conn_report_error(ERROR, NULL, c, sql);
		res = conn_next_result(c, &copy);
		while ((extra = conn_next_result(c, &copy)) != NULL)
			PQclear(extra);		/* one statement, one result */
		if (copy)
			report_copy(c, res, sql);
		status = PQresultStatus(res);
		if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
			conn_report_error(ERROR, res, c, sql);
		return res;
	}

	res = conn_exec_pipelined(c, prelude, sql, nparams, values, &failed_sql, &copy);
	if (failed_sql != NULL && may_retry && PQstatus(c->conn) != CONNECTION_OK)
	{
		/* nothing ran: the remote transaction died with the connection */
		ereport(DEBUG1,
				(errmsg_internal("distx: reconnecting to node \"%s\" after a broken cached connection: %s",
								 c->servername, pchomp(PQerrorMessage(c->conn)))));
		PQclear(res);
		conn_disconnect(c);
		conn_open(c, node);
		c->fresh = false;
		res = conn_exec_pipelined(c, prelude, sql, nparams, values, &failed_sql, &copy);
	}
	if (copy)
		report_copy(c, res, sql);
	if (failed_sql != NULL)
		conn_report_error(ERROR, res, c, failed_sql);
	return res;
}

void
conn_exec_simple(DistxConn *c, const char *sql)
{
	PGresult   *res;

	if (!PQsendQuery(c->conn, sql))
		conn_report_error(ERROR, NULL, c, sql);
	res = conn_wait_result(c);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		conn_report_error(ERROR, res, c, sql);
	PQclear(res);
}

bool
conn_send_simple(DistxConn *c, const char *sql)
{
	if (c->conn == NULL)
		return false;
	return PQsendQuery(c->conn, sql) == 1;
}

/*
 * During cleanup (after the commit point, or in an abort), wait until a
 * result can be read without blocking: no error is raised and no interrupt
 * processed, and the wait ends at the deadline.  Not proc_exit() on
 * postmaster death as WL_EXIT_ON_PM_DEATH would do: after the commit point,
 * exiting tries to abort a committed transaction, a PANIC.  The caller
 * gives up on the node; the backend exits once the transaction is over.
 * On a broken connection PQgetResult returns the error (WAIT_READY).
 */
typedef enum CleanupWait
{
	WAIT_READY,
	WAIT_TIMEOUT,
	WAIT_PM_DEATH
} CleanupWait;

static CleanupWait
conn_cleanup_wait(DistxConn *c, TimestampTz deadline)
{
	while (PQisBusy(c->conn))
	{
		long		cur_timeout;
		int			wc;

		cur_timeout = TimestampDifferenceMilliseconds(GetCurrentTimestamp(),
													  deadline);
		if (cur_timeout <= 0)
			return WAIT_TIMEOUT;
		wc = WaitLatchOrSocket(MyLatch,
							   WL_LATCH_SET | WL_SOCKET_READABLE |
							   WL_TIMEOUT | WL_POSTMASTER_DEATH,
							   PQsocket(c->conn),
							   cur_timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		if (wc & WL_POSTMASTER_DEATH)
			return WAIT_PM_DEATH;
		if ((wc & WL_SOCKET_READABLE) && !PQconsumeInput(c->conn))
			break;
	}
	return WAIT_READY;
}

/*
 * Collect the result of a command sent with conn_send_simple during cleanup
 * (after commit or during abort), where no error may be raised and no
 * interrupt may be processed: wait at most until the deadline, report a
 * failure at elevel (WARNING or lower), and return whether the command
 * succeeded.  With ignore_missing, "prepared transaction does not exist" is
 * success: another resolver got there first.
 */
bool
conn_wait_cleanup(DistxConn *c, const char *sql, int elevel,
				  TimestampTz deadline, bool ignore_missing)
{
	PGresult   *last = NULL;
	bool		timed_out = false;
	bool		pm_died = false;
	bool		ok;

	for (;;)
	{
		CleanupWait w = conn_cleanup_wait(c, deadline);
		PGresult   *res;

		if (w != WAIT_READY)
		{
			timed_out = true;
			pm_died = (w == WAIT_PM_DEATH);
			break;
		}
		res = PQgetResult(c->conn);
		if (res == NULL)
			break;
		PQclear(last);
		last = res;
	}

	if (timed_out)
	{
		PQclear(last);
		if (pm_died)
			ereport(elevel,
					(errcode(ERRCODE_ADMIN_SHUTDOWN),
					 errmsg("stopped waiting for \"%s\" on distx node \"%s\" because the postmaster died",
							sql, c->servername)));
		else
			ereport(elevel,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("distx node \"%s\" did not answer \"%s\" in time",
							c->servername, sql)));
		/* the connection is in an unknown state: drop it at end of xact */
		c->invalidated = true;
		c->changing_xact_state = true;
		return false;
	}

	if (last != NULL && (PQresultStatus(last) == PGRES_COMMAND_OK ||
						 PQresultStatus(last) == PGRES_TUPLES_OK))
		ok = true;
	else if (last != NULL && ignore_missing &&
			 PQresultErrorField(last, PG_DIAG_SQLSTATE) != NULL &&
			 strcmp(PQresultErrorField(last, PG_DIAG_SQLSTATE), "42704") == 0)
		ok = true;
	else
		ok = false;

	if (!ok)
	{
		conn_report_error(elevel, last, c, sql);
		return false;
	}
	PQclear(last);
	return true;
}

/* send a command and collect it with conn_wait_cleanup */
bool
conn_exec_cleanup(DistxConn *c, const char *sql, int elevel, bool ignore_missing)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   distx_cleanup_timeout);

	if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK)
		return false;
	if (!conn_send_simple(c, sql))
	{
		conn_report_error(elevel, NULL, c, sql);
		return false;
	}
	return conn_wait_cleanup(c, sql, elevel, deadline, ignore_missing);
}

/*
 * Read and drop what a pipeline interrupted in conn_exec_pipelined() still
 * owes (every command's result, then the Sync's) and leave pipeline mode.
 * Cleanup rules as in conn_wait_cleanup: no error, no interrupt, a
 * deadline.  Returns false if the connection cannot be brought back.
 */
static bool
conn_drain_pipeline(DistxConn *c, TimestampTz deadline)
{
	int			nulls = 0;

	while (nulls < 2)
	{
		PGresult   *res;

		if (conn_cleanup_wait(c, deadline) != WAIT_READY)
			return false;
		res = PQgetResult(c->conn);
		if (res == NULL)
		{
			/* one NULL ends a command's results; two: nothing is left */
			nulls++;
			continue;
		}
		nulls = 0;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC)
		{
			PQclear(res);
			break;
		}
		PQclear(res);
	}
	return PQstatus(c->conn) == CONNECTION_OK && PQexitPipelineMode(c->conn) == 1;
}

/*
 * If a statement is still running on the node (we were interrupted while
 * waiting for it), cancel it and drain its results.  Returns false if the
 * connection cannot be brought back to idle in time.
 */
bool
conn_cancel_and_drain(DistxConn *c, TimestampTz deadline)
{
	bool		pipelined;

	if (c->conn == NULL || PQstatus(c->conn) != CONNECTION_OK)
		return false;
	pipelined = PQpipelineStatus(c->conn) != PQ_PIPELINE_OFF;
	if (PQtransactionStatus(c->conn) != PQTRANS_ACTIVE && !pipelined)
		return true;

	{
		PGcancel   *cancel;
		char		errbuf[256];

		if ((cancel = PQgetCancel(c->conn)))
		{
			if (!PQcancel(cancel, errbuf, sizeof(errbuf)))
				ereport(WARNING,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not send cancel request to distx node \"%s\": %s",
								c->servername, errbuf)));
			PQfreeCancel(cancel);
		}
	}
	if (pipelined)
		return conn_drain_pipeline(c, deadline);
	/* the cancelled statement's error is expected: don't report it */
	return conn_wait_cleanup(c, "(cancelled statement)", DEBUG1, deadline, false) ||
		(PQstatus(c->conn) == CONNECTION_OK &&
		 PQtransactionStatus(c->conn) != PQTRANS_ACTIVE);
}

/*
 * The local transaction is over: reset the remote transaction state and
 * give back the bulkhead slot.  Without keep, or when the connection is in
 * a state we cannot trust, it is closed.
 */
void
conn_end_xact(DistxConn *c, bool keep)
{
	c->xact_depth = 0;
	c->wrote = c->maybe_wrote = c->prepared = false;
	c->gid[0] = '\0';
	if (c->holds_slot)
	{
		health_bulkhead_release(c->serverid);
		c->holds_slot = false;
	}
	if (c->conn == NULL)
		return;
	if (c->pending_result && keep && !c->invalidated &&
		PQstatus(c->conn) == CONNECTION_OK)
		return;					/* busy with COMMIT PREPARED: collect later */
	if (!keep || c->changing_xact_state || c->invalidated ||
		PQstatus(c->conn) != CONNECTION_OK ||
		PQtransactionStatus(c->conn) != PQTRANS_IDLE)
		conn_disconnect(c);
}

/*
 * Collect the answer of a COMMIT PREPARED sent without waiting.  The
 * transaction is committed whatever the answer: a failure is a WARNING and
 * recovery finishes the job.
 */
void
conn_collect_pending(DistxConn *c)
{
	char		sql[DISTX_GID_LEN + 32];
	TimestampTz deadline;

	if (!c->pending_result)
		return;
	c->pending_result = false;
	snprintf(sql, sizeof(sql), "COMMIT PREPARED '%s'", c->pending_gid);
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   distx_cleanup_timeout);
	if (!conn_wait_cleanup(c, sql, WARNING, deadline, false))
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("distx transaction \"%s\" is committed but not yet on node \"%s\"",
						c->pending_gid, c->servername),
				 errdetail("Recovery will commit it there.")));
		distx_wake_worker();
		conn_disconnect(c);
	}
}

void
conn_disconnect(DistxConn *c)
{
	c->pending_result = false;
	if (c->conn != NULL)
	{
		libpqsrv_disconnect(c->conn);
		c->conn = NULL;
		health_count_connection(c->serverid, -1);
	}
	c->changing_xact_state = false;
	c->invalidated = false;
}

/*
 * A server or user mapping changed: connections built from it are closed
 * when no transaction uses them (at once if idle, else at transaction end).
 */
static void
conn_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	DistxConn  *c;

	hash_seq_init(&scan, ConnectionHash);
	while ((c = (DistxConn *) hash_seq_search(&scan)))
	{
		if (c->conn == NULL)
			continue;
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID && c->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID && c->mapping_hashvalue == hashvalue))
		{
			if (c->xact_depth == 0)
				conn_disconnect(c);
			else
				c->invalidated = true;
		}
	}
}
