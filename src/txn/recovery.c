/*-------------------------------------------------------------------------
 *
 * recovery.c
 *	  Resolve the distx prepared transactions left on the nodes.
 *
 * A pass, for this origin server and database:
 *
 * 1. Take the horizon: the oldest transaction still running here.  Every
 *    transaction older than it has finished, so all its PREPAREs (which
 *    precede its commit) are visible in step 2.
 * 2. On every node, list the prepared gids of this origin and database.
 * 3. For each gid, check whether its transaction still runs here; if it
 *    does, leave it (it may be committing right now).  Otherwise its fate is
 *    sealed: look for its decision with the latest snapshot, and COMMIT
 *    PREPARED if there is one naming this node, ROLLBACK PREPARED if not
 *    (presumed abort).  A gid whose xid is not even handed out yet comes
 *    from a transaction that was lost in a crash before its WAL reached
 *    disk: it is rolled back (that xid will be handed out again, which is
 *    also why a decision must name the node to commit a gid there).
 * 4. Forget (delete) decision rows older than the horizon whose
 *    participants were all reached in step 2 and none of whose gids is
 *    still prepared.
 *
 * Checking "still running" after listing, and forgetting only decisions
 * older than a horizon taken before listing, are what keep a pass from
 * rolling back a transaction that is committing while the pass runs (the
 * same race DESIGN.md's "prepared, running, decisions, prepared again"
 * order closes).
 *
 * Nodes that cannot be reached are retried with exponential backoff and
 * full jitter (distx.retry_base_delay, distx.retry_max_delay).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "distx.h"
#include "cluster/cluster.h"
#include "cluster/state.h"
#include "remote/connection.h"
#include "remote/health.h"
#include "remote/node.h"
#include "txn/gid.h"
#include "txn/recovery.h"

PG_FUNCTION_INFO_V1(distx_recover);

int			distx_recovery_interval = 10000;
int			distx_retry_base_delay = 100;
int			distx_retry_max_delay = 30000;

/* per-node retry state of this process (the worker, mostly) */
typedef struct NodeRetry
{
	Oid			serverid;		/* hash key */
	int			attempts;
	TimestampTz next_at;
} NodeRetry;

static HTAB *node_retries = NULL;

/*
 * The work on one node is bounded by distx.cleanup_timeout, so that a node
 * that accepts connections but never answers (a frozen server) cannot hold
 * up the recovery of every other node: when the time is up, the wait for the
 * node is interrupted as a query cancel would, and the node is retried later.
 */
static TimeoutId node_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t node_timed_out = false;

static void
node_timeout_handler(void)
{
	node_timed_out = true;
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
}

static void
node_timeout_disable(void)
{
	disable_timeout(node_timeout_id, false);

	/*
	 * Fired after the last wait: the cancel is ours, not the user's, and
	 * must not hit whatever runs next.
	 */
	if (node_timed_out)
		QueryCancelPending = false;
}

void
recovery_define_gucs(void)
{
	DefineCustomIntVariable("distx.recovery_interval",
							"Time between two recovery passes of the background worker.",
							NULL,
							&distx_recovery_interval,
							10000, 100, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("distx.retry_base_delay",
							"Base delay of the exponential backoff for retries of the second phase and recovery.",
							NULL,
							&distx_retry_base_delay,
							100, 1, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("distx.retry_max_delay",
							"Maximum delay of the exponential backoff for retries.",
							NULL,
							&distx_retry_max_delay,
							30000, 1, 86400000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/*
 * Exponential backoff with full jitter: a uniformly random delay between 0
 * and min(max, base * 2^attempt).
 */
long
backoff_delay(int attempt, int base_ms, int max_ms)
{
	double		cap = base_ms;
	int			i;

	for (i = 0; i < attempt && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	return (long) (pg_prng_double(&pg_global_prng_state) * cap);
}

static NodeRetry *
node_retry(Oid serverid)
{
	bool		found;
	NodeRetry  *r;

	if (node_retries == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(NodeRetry);
		node_retries = hash_create("distx node retries", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS);
	}
	r = hash_search(node_retries, &serverid, HASH_ENTER, &found);
	if (!found)
	{
		r->attempts = 0;
		r->next_at = 0;
	}
	return r;
}

/* the full form of an xid that is at most one epoch old */
static FullTransactionId
full_xid(TransactionId xid)
{
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (xid > XidFromFullTransactionId(next))
		epoch--;
	return FullTransactionIdFromEpochAndXid(epoch, xid);
}

typedef struct FxidEntry
{
	FullTransactionId fxid;
} FxidEntry;

/*
 * COMMIT PREPARED (commit) or ROLLBACK PREPARED a gid on a node, logged.
 * A gid that is gone already (42704) is fine: someone else finished it.
 * Returns false, after a WARNING, if it is still there.
 */
bool
recovery_finish_gid(PGconn *conn, DistxNode *node, const char *gid,
					bool commit, RecoveryResult *result)
{
	char	   *sql = psprintf("%s %s", commit ? "COMMIT PREPARED" : "ROLLBACK PREPARED",
							   quote_literal_cstr(gid));
	PGresult   *res = libpqsrv_exec(conn, sql, PG_WAIT_EXTENSION);
	bool		done = true;

	if (PQresultStatus(res) == PGRES_COMMAND_OK)
	{
		if (commit)
			result->committed++;
		else
			result->rolled_back++;
		ereport(LOG,
				(errmsg("distx recovery: %s on node \"%s\"", sql, node->servername)));
	}
	else if (PQresultErrorField(res, PG_DIAG_SQLSTATE) == NULL ||
			 strcmp(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42704") != 0)
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("distx recovery could not run %s on node \"%s\": %s",
						sql, node->servername, pchomp(PQerrorMessage(conn)))));
		done = false;
	}
	PQclear(res);
	pfree(sql);
	return done;
}

typedef struct RecoverNodeCtx
{
	const char *prefix;
	HTAB	   *unresolved;
	RecoveryResult *result;
} RecoverNodeCtx;

/* resolve the gids of one node; errors are raised */
static void
recover_node(DistxNode *node, void *arg)
{
	RecoverNodeCtx *ctx = arg;
	const char *prefix = ctx->prefix;
	HTAB	   *unresolved = ctx->unresolved;
	RecoveryResult *result = ctx->result;
	PGconn	   *volatile conn = NULL;
	PGresult   *volatile res = NULL;
	volatile int in_doubt = 0;

	PG_TRY();
	{
		const char *params[1];
		int			i;

		conn = conn_connect(node);
		params[0] = prefix;
		res = libpqsrv_exec_params(conn,
								   "SELECT gid FROM pg_catalog.pg_prepared_xacts "
								   "WHERE database = current_database() AND starts_with(gid, $1)",
								   1, NULL, params, NULL, NULL, 0,
								   PG_WAIT_EXTENSION);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not list prepared transactions on distx node \"%s\": %s",
							node->servername, pchomp(PQerrorMessage(conn)))));

		for (i = 0; i < PQntuples(res); i++)
		{
			const char *gid = PQgetvalue(res, i, 0);
			FullTransactionId fxid;
			Oid			serverid;
			bool		decided;

			if (!gid_parse(gid, &fxid, &serverid) || serverid != node->serverid)
				continue;

			/*
			 * An xid not handed out yet belongs to a transaction of before a
			 * crash whose WAL never reached disk (its commit would have
			 * advanced the next xid during replay): it did not commit, and
			 * no transaction running now has that xid.  (This holds for
			 * gids of this server only, which is all gid_parse accepts.)
			 * Otherwise, a transaction still running here may be committing
			 * right now.
			 */
			if (FullTransactionIdFollowsOrEquals(fxid, ReadNextFullTransactionId()))
				decided = false;
			else if (TransactionIdIsInProgress(XidFromFullTransactionId(fxid)))
			{
				in_doubt++;
				hash_search(unresolved, &fxid, HASH_ENTER, NULL);
				continue;
			}
			else
				decided = state_commit_decided(fxid, serverid);
			if (!recovery_finish_gid(conn, node, gid, decided, result))
			{
				in_doubt++;
				hash_search(unresolved, &fxid, HASH_ENTER, NULL);
			}
		}
	}
	PG_CATCH();
	{
		PQclear(res);
		if (conn)
			conn_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	PQclear(res);
	conn_close(conn);

	result->in_doubt += in_doubt;
	health_set_in_doubt(node->serverid, in_doubt);
}

void
recovery_lock(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, 0x64697374, 0x7265, 3);
	(void) LockAcquire(tag, ExclusiveLock, false, false);
}

/*
 * Run fn(node, arg) for one node in a subtransaction, bounded by
 * distx.cleanup_timeout.  A failure is a WARNING, and the node is retried
 * with backoff (with respect_backoff, a node whose backoff has not passed
 * is skipped); *next_due gets the earliest such retry.  Returns whether fn
 * completed.
 */
bool
recovery_on_node(Oid serverid, bool respect_backoff, long *next_due,
				 RecoveryResult *result, RecoveryNodeFn fn, void *arg)
{
	NodeRetry  *retry = node_retry(serverid);
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	TimestampTz now = GetCurrentTimestamp();
	volatile bool ok = false;

	if (respect_backoff && retry->next_at > now)
	{
		long		due = TimestampDifferenceMilliseconds(now, retry->next_at);

		if (*next_due < 0 || due < *next_due)
			*next_due = due;
		result->unreachable++;
		return false;
	}
	if (node_timeout_id == MAX_TIMEOUTS)
		node_timeout_id = RegisterTimeout(USER_TIMEOUT, node_timeout_handler);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		DistxNode  *node = node_lookup_by_oid(serverid, GetUserId(), false);

		node_timed_out = false;
		enable_timeout_after(node_timeout_id, distx_cleanup_timeout);
		fn(node, arg);
		node_timeout_disable();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		retry->attempts = 0;
		retry->next_at = 0;
		ok = true;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		long		delay;
		ForeignServer *server;

		node_timeout_disable();
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		if (node_timed_out)
		{
			pfree(edata->message);
			edata->message = psprintf("no answer within distx.cleanup_timeout (%d ms)",
									  distx_cleanup_timeout);
			edata->sqlerrcode = ERRCODE_CONNECTION_FAILURE;
		}
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;

		delay = backoff_delay(retry->attempts, distx_retry_base_delay,
							  distx_retry_max_delay);
		retry->attempts++;
		retry->next_at = TimestampTzPlusMilliseconds(now, delay);
		if (*next_due < 0 || delay < *next_due)
			*next_due = delay;
		result->unreachable++;
		server = GetForeignServerExtended(serverid, FSV_MISSING_OK);
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("distx recovery could not reach node \"%s\": %s",
						server ? server->servername : "?", edata->message),
				 errdetail("Retrying in %ld ms.", delay)));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return ok;
}

long
recovery_pass(bool respect_backoff, RecoveryResult *result)
{
	List	   *servers;
	List	   *reached = NIL;
	ListCell   *lc;
	char	   *prefix;
	HTAB	   *unresolved;
	HASHCTL		ctl;
	FullTransactionId horizon;
	LOCKTAG		tag;
	long		next_due = -1;
	int			i;
	RecoverNodeCtx ctx;

	if (cluster_is_member())
		return recovery_pass_cluster(respect_backoff, result);

	memset(result, 0, sizeof(*result));

	/* one pass at a time per database (the worker and distx.recover()) */
	recovery_lock(&tag);

	/* 1. the horizon */
	horizon = full_xid(GetOldestActiveTransactionId());

	prefix = gid_prefix();
	ctl.keysize = sizeof(FullTransactionId);
	ctl.entrysize = sizeof(FxidEntry);
	ctl.hcxt = CurrentMemoryContext;
	unresolved = hash_create("distx unresolved", 64, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	/* 2 and 3, node by node, each in a subtransaction */
	ctx.prefix = prefix;
	ctx.unresolved = unresolved;
	ctx.result = result;
	servers = node_list_all();
	foreach(lc, servers)
	{
		Oid			serverid = lfirst_oid(lc);

		if (recovery_on_node(serverid, respect_backoff, &next_due, result,
							 recover_node, &ctx))
			reached = lappend_oid(reached, serverid);
	}

	/* 4. forget decisions that are fully resolved */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT xid, participants FROM distx.decisions", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read distx.decisions");
	for (i = 0; i < (int) SPI_processed; i++)
	{
		bool		isnull;
		FullTransactionId fxid;
		ArrayType  *arr;
		Datum	   *elems;
		int			n;
		int			j;
		bool		all_reached = true;

		fxid = DatumGetFullTransactionId(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc, 1, &isnull));
		if (!FullTransactionIdPrecedes(fxid, horizon) ||
			hash_search(unresolved, &fxid, HASH_FIND, NULL) != NULL)
			continue;
		arr = DatumGetArrayTypeP(SPI_getbinval(SPI_tuptable->vals[i],
											   SPI_tuptable->tupdesc, 2, &isnull));
		deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT,
						  &elems, NULL, &n);
		for (j = 0; j < n; j++)
			if (!list_member_oid(reached, DatumGetObjectId(elems[j])))
				all_reached = false;
		if (all_reached)
		{
			state_forget_decision(fxid);
			result->forgotten++;
		}
	}
	SPI_finish();

	LockRelease(&tag, ExclusiveLock, false);
	return next_due;
}

Datum
distx_recover(PG_FUNCTION_ARGS)
{
	RecoveryResult r;
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5];

	distx_require_preload("distx.recover()");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	(void) recovery_pass(false, &r);

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int32GetDatum(r.committed);
	values[1] = Int32GetDatum(r.rolled_back);
	values[2] = Int32GetDatum(r.in_doubt);
	values[3] = Int32GetDatum(r.unreachable);
	values[4] = Int32GetDatum(r.forgotten);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, nulls)));
}
