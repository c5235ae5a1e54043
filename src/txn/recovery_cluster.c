/*-------------------------------------------------------------------------
 *
 * recovery_cluster.c
 *	  Recovery in a Raft cluster: the acting coordinator resolves the distx
 *	  prepared transactions of every member.
 *
 * A pass runs only while cluster_acting_term() is non-zero (this node
 * leads, has applied everything committed before its term, and hears from
 * a majority):
 *
 * 1. Read the members (distx.cluster_nodes: server name, system id).  A
 *    removed member's row stays, and a gid of its origin is still committed
 *    or rolled back here by a decision of the cluster, but never decided
 *    here: once it has left it resolves its own gids (by the decisions it
 *    left with, see _cluster_quiesce), and what it decided as a single
 *    server since has no decision in the cluster.  Proposing abort for
 *    those would race its own recovery.
 * 2. On every node, list the prepared distx gids whose origin is a member
 *    (gid_parse_any), with whether each was prepared longer ago than the
 *    grace period (distx.raft_election_timeout, measured by the node).
 * 3. Look up each (origin, xid) in the replicated decisions.  Where the
 *    outcome depends on the origin's transaction (no decision, or a
 *    conditional commit), ask the origin, in one query per origin,
 *    pg_xact_status() of those xids ("future" for an xid not handed out
 *    yet: lost in a crash before its WAL reached disk, never committed).
 * 4. Per gid:
 *    - an abort decision: ROLLBACK PREPARED;
 *    - a commit decision that names the node (the gid's OID and this
 *      node's server name): COMMIT PREPARED when unconditional, or when
 *      conditional and the origin's xid committed; ROLLBACK PREPARED when
 *      conditional and it did not; left in doubt while the origin cannot
 *      tell (down, or still committing);
 *    - a commit decision that does not name the node: ROLLBACK PREPARED;
 *    - no decision: left alone while the origin's xid runs (its session
 *      may be proposing right now); otherwise, once past the grace period,
 *      abort is proposed.  The state machine keeps the first decision for
 *      a gid, so if the session's commit got there first, that is what
 *      this pass applies, and the session's commit, if it comes second,
 *      fails.  An origin that cannot be reached counts as finished: its
 *      sessions are gone, or will lose that race.
 * 5. Forget decisions older than the forget age whose participants were
 *    all reached in step 2 and showed none of their gids.  The age
 *    (3 x distx.raft_proposal_timeout, at least a minute) outlasts any
 *    session still waiting for its own proposal of the same decision.
 *
 * Every decision this pass makes is a Raft entry of this leader's term,
 * committed before any ROLLBACK PREPARED it leads to; a leader that lost
 * its majority cannot commit it.  COMMIT/ROLLBACK PREPARED by a committed
 * decision are safe from any node, because a committed decision never
 * changes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "foreign/foreign.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "distx.h"
#include "cluster/cluster.h"
#include "cluster/cluster_apply.h"
#include "remote/connection.h"
#include "remote/health.h"
#include "remote/node.h"
#include "txn/gid.h"
#include "txn/recovery.h"

/* what the origin says of a transaction */
typedef enum OriginStatus
{
	OS_UNASKED = 0,
	OS_UNKNOWN,					/* the origin cannot tell (xid too old) */
	OS_UNREACHABLE,				/* the origin could not be asked */
	OS_IN_PROGRESS,
	OS_COMMITTED,
	OS_NOT_COMMITTED			/* aborted, or never handed out */
} OriginStatus;

/* key of a transaction: "<origin><xid>" */
#define TXKEY_LEN	(DECISION_ORIGIN_MAX + 24)

typedef struct TxEntry
{
	char		key[TXKEY_LEN];
	char	   *origin;
	uint64		xid;
	bool		has_decision;
	int			outcome;		/* DECISION_* */
	bool		conditional;
	int			nparts;
	Oid		   *oids;			/* in the origin's catalog */
	char	  **names;
	bool		forgettable;	/* old enough to be forgotten */
	bool		seen;			/* a gid of it was found on a node */
	bool		origin_left;	/* its origin is no voter any more */
	OriginStatus status;
} TxEntry;

/* a prepared gid found on a node */
typedef struct FoundGid
{
	Oid			serverid;		/* here */
	char	   *servername;
	char	   *gid;
	Oid			gid_oid;		/* the participant's OID at the origin */
	bool		old_enough;
	TxEntry    *tx;
} FoundGid;

typedef struct Member
{
	char	   *name;
	uint64		sysid;
	bool		voter;			/* in the current configuration */
} Member;

typedef struct Pass
{
	HTAB	   *txs;
	List	   *members;		/* Member * */
	List	   *found;			/* FoundGid * */
	List	   *reached;		/* OIDs of the nodes listed */
	RecoveryResult *result;
	List	   *actions;		/* of the node being acted on */
} Pass;

static void
tx_key(char *key, const char *origin, uint64 xid)
{
	snprintf(key, TXKEY_LEN, "%s" UINT64_FORMAT, origin, xid);
}

static TxEntry *
tx_get(Pass *pass, const char *origin, uint64 xid)
{
	char		key[TXKEY_LEN];
	bool		found;
	TxEntry    *tx;

	tx_key(key, origin, xid);
	tx = hash_search(pass->txs, key, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) tx) + TXKEY_LEN, 0, sizeof(TxEntry) - TXKEY_LEN);
		tx->origin = pstrdup(origin);
		tx->xid = xid;
	}
	return tx;
}

/* fill tx from one row of distx.cluster_decisions (SPI) */
static void
tx_set_decision(TxEntry *tx, HeapTuple tup, TupleDesc desc, int firstcol)
{
	bool		isnull;
	ArrayType  *arr;
	Datum	   *elems;
	int			n;
	int			i;

	tx->has_decision = true;
	tx->outcome = strcmp(TextDatumGetCString(SPI_getbinval(tup, desc, firstcol, &isnull)),
						 "commit") == 0 ? DECISION_COMMIT : DECISION_ABORT;
	tx->conditional = DatumGetBool(SPI_getbinval(tup, desc, firstcol + 1, &isnull));
	arr = DatumGetArrayTypeP(SPI_getbinval(tup, desc, firstcol + 2, &isnull));
	deconstruct_array(arr, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
					  &elems, NULL, &n);
	tx->nparts = n;
	tx->names = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
		tx->names[i] = pstrdup(NameStr(*DatumGetName(elems[i])));
	arr = DatumGetArrayTypeP(SPI_getbinval(tup, desc, firstcol + 3, &isnull));
	deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT,
					  &elems, NULL, &n);
	tx->oids = palloc(sizeof(Oid) * Max(n, 1));
	for (i = 0; i < n && i < tx->nparts; i++)
		tx->oids[i] = DatumGetObjectId(elems[i]);
	tx->forgettable = DatumGetBool(SPI_getbinval(tup, desc, firstcol + 4, &isnull));
}

#define DECISION_COLS \
	"outcome, conditional, participants, participant_oids, " \
	"decided_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)"

static double
forget_age_secs(void)
{
	return Max(60.0, 3.0 * distx_raft_proposal_timeout / 1000.0);
}

/* every decision of the replicated state, and the members */
static void
load_state(Pass *pass)
{
	Oid			argtypes[1] = {FLOAT8OID};
	Datum		args[1];
	uint64		i;
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext spicxt;

	args[0] = Float8GetDatum(forget_age_secs());
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT origin, xid::text, " DECISION_COLS
							  " FROM distx.cluster_decisions",
							  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read distx.cluster_decisions");
	/* what is kept outlives SPI (every SPI call returns in its context) */
	spicxt = MemoryContextSwitchTo(caller);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		TxEntry    *tx;

		tx = tx_get(pass, SPI_getvalue(tup, desc, 1),
					strtou64(SPI_getvalue(tup, desc, 2), NULL, 10));
		tx_set_decision(tx, tup, desc, 3);
	}
	MemoryContextSwitchTo(spicxt);
	if (SPI_execute("SELECT node, system_id, node_id FROM distx.cluster_nodes", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read distx.cluster_nodes");
	MemoryContextSwitchTo(caller);
	for (i = 0; i < SPI_processed; i++)
	{
		Member	   *m = palloc(sizeof(Member));

		/* a removed member's row stays (see step 1) */
		m->voter = cluster_is_voter(strtou64(SPI_getvalue(SPI_tuptable->vals[i],
														  SPI_tuptable->tupdesc, 3), NULL, 10));
		m->name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		m->sysid = strtou64(SPI_getvalue(SPI_tuptable->vals[i],
										 SPI_tuptable->tupdesc, 2), NULL, 10);
		pass->members = lappend(pass->members, m);
	}
	MemoryContextSwitchTo(spicxt);
	SPI_finish();
}

/* the decision of one transaction, read again (after proposing) */
static void
reload_decision(TxEntry *tx)
{
	Oid			argtypes[3] = {FLOAT8OID, TEXTOID, TEXTOID};
	Datum		args[3];
	MemoryContext caller = CurrentMemoryContext;

	args[0] = Float8GetDatum(forget_age_secs());
	args[1] = CStringGetTextDatum(tx->origin);
	args[2] = CStringGetTextDatum(psprintf(UINT64_FORMAT, tx->xid));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT " DECISION_COLS
							  " FROM distx.cluster_decisions WHERE origin = $2 AND xid = $3::xid8",
							  3, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read distx.cluster_decisions");
	if (SPI_processed == 1)
	{
		MemoryContext spicxt = MemoryContextSwitchTo(caller);

		tx_set_decision(tx, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		MemoryContextSwitchTo(spicxt);
	}
	SPI_finish();
}

static Member *
member_by_sysid(Pass *pass, uint64 sysid)
{
	ListCell   *lc;

	foreach(lc, pass->members)
	{
		Member	   *m = lfirst(lc);

		if (m->sysid == sysid)
			return m;
	}
	return NULL;
}

typedef void (*RowsFn) (PGresult *res, DistxNode *node, void *arg);

/*
 * Run one query with text parameters on a node, on a connection of its own,
 * and hand the rows to fn; the result and the connection are released on
 * every path.  what names the query in the error.
 */
static void
query_node(DistxNode *node, const char *what, const char *sql, int nparams,
		   const char *const *params, RowsFn fn, void *arg)
{
	PGconn	   *volatile conn = NULL;
	PGresult   *volatile res = NULL;

	PG_TRY();
	{
		conn = conn_connect(node);
		res = libpqsrv_exec_params(conn, sql, nparams, NULL, params, NULL,
								   NULL, 0, PG_WAIT_EXTENSION);
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not %s on distx node \"%s\": %s",
							what, node->servername, pchomp(PQerrorMessage(conn)))));
		fn(res, node, arg);
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
}

/* the gids of the members found on a node */
static void
collect_gids(PGresult *res, DistxNode *node, void *arg)
{
	Pass	   *pass = arg;
	int			i;

	for (i = 0; i < PQntuples(res); i++)
	{
		const char *gid = PQgetvalue(res, i, 0);
		char	   *origin;
		uint64		sysid;
		Oid			dboid;
		FullTransactionId fxid;
		Oid			oid;
		FoundGid   *f;
		Member	   *m;

		if (!gid_parse_any(gid, &origin, &sysid, &dboid, &fxid, &oid) ||
			(m = member_by_sysid(pass, sysid)) == NULL)
			continue;
		f = palloc(sizeof(FoundGid));
		f->serverid = node->serverid;
		f->servername = pstrdup(node->servername);
		f->gid = pstrdup(gid);
		f->gid_oid = oid;
		f->old_enough = strcmp(PQgetvalue(res, i, 1), "t") == 0;
		f->tx = tx_get(pass, origin, U64FromFullTransactionId(fxid));
		f->tx->seen = true;
		f->tx->origin_left = !m->voter;
		pass->found = lappend(pass->found, f);
	}
}

/* step 2 on one node (via recovery_on_node): list the gids of the members */
static void
list_node(DistxNode *node, void *arg)
{
	const char *params[1];

	params[0] = psprintf("%d milliseconds", distx_raft_election_timeout);
	query_node(node, "list prepared transactions",
			   "SELECT gid, prepared < pg_catalog.now() - $1::pg_catalog.interval "
			   "FROM pg_catalog.pg_prepared_xacts "
			   "WHERE database = pg_catalog.current_database() "
			   "AND pg_catalog.starts_with(gid, 'distx_')",
			   1, params, collect_gids, arg);
}

/* whether the outcome of tx depends on what its origin says */
static bool
needs_origin(TxEntry *tx)
{
	return tx->seen &&
		(!tx->has_decision || (tx->outcome == DECISION_COMMIT && tx->conditional));
}

static const char *status_sql =
"SELECT s.xid::text, s.status, "
"(SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()) "
"FROM distx._xact_status($1::pg_catalog.xid8[]) AS s";

PG_FUNCTION_INFO_V1(distx_xact_status);

/*
 * distx._xact_status(xid8[]): what pg_xact_status() says, except that an
 * xid not handed out yet is 'future' rather than an error (a snapshot's
 * xmax does not tell that: a running transaction may have a later xid).
 * A gid exists only after its xid was handed out, so no xid asked about is
 * being assigned right now.
 */
Datum
distx_xact_status(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	deconstruct_array(arr, XID8OID, sizeof(FullTransactionId), FLOAT8PASSBYVAL,
					  TYPALIGN_DOUBLE, &elems, &nulls, &n);
	for (i = 0; i < n; i++)
	{
		Datum		values[2];
		bool		isnull[2] = {false, false};
		FullTransactionId fxid;

		if (nulls[i])
			continue;
		fxid = DatumGetFullTransactionId(elems[i]);
		values[0] = elems[i];
		if (FullTransactionIdFollowsOrEquals(fxid, ReadNextFullTransactionId()))
			values[1] = CStringGetTextDatum("future");
		else
		{
			LOCAL_FCINFO(inner, 1);

			InitFunctionCallInfoData(*inner, NULL, 1, InvalidOid, NULL, NULL);
			inner->args[0].value = elems[i];
			inner->args[0].isnull = false;
			values[1] = pg_xact_status(inner);
			isnull[1] = inner->isnull;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, isnull);
	}
	return (Datum) 0;
}

static OriginStatus
status_from_text(const char *s)
{
	if (s == NULL)
		return OS_UNKNOWN;
	if (strcmp(s, "in progress") == 0)
		return OS_IN_PROGRESS;
	if (strcmp(s, "committed") == 0)
		return OS_COMMITTED;
	if (strcmp(s, "aborted") == 0 || strcmp(s, "future") == 0)
		return OS_NOT_COMMITTED;
	return OS_UNKNOWN;
}

/* the xids of origin that need its word, as an xid8[] literal */
static char *
origin_xids(Pass *pass, const char *origin)
{
	HASH_SEQ_STATUS scan;
	TxEntry    *tx;
	StringInfoData buf;
	bool		any = false;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	hash_seq_init(&scan, pass->txs);
	while ((tx = hash_seq_search(&scan)))
		if (needs_origin(tx) && strcmp(tx->origin, origin) == 0)
		{
			appendStringInfo(&buf, "%s" UINT64_FORMAT, any ? "," : "", tx->xid);
			any = true;
		}
	appendStringInfoChar(&buf, '}');
	return any ? buf.data : NULL;
}

static void
set_status(Pass *pass, const char *origin, const char *xid, OriginStatus st)
{
	char		key[TXKEY_LEN];
	TxEntry    *tx;

	snprintf(key, TXKEY_LEN, "%s%s", origin, xid);
	tx = hash_search(pass->txs, key, HASH_FIND, NULL);
	if (tx)
		tx->status = st;
}

/* the origin is this server: ask through SPI */
static void
ask_self(Pass *pass, const char *origin, const char *xids)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	uint64		i;

	args[0] = CStringGetTextDatum(xids);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(status_sql, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the status of transactions");
	/* set_status only reads the strings: they may live in SPI's context */
	for (i = 0; i < SPI_processed; i++)
		set_status(pass, origin,
				   SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
				   status_from_text(SPI_getvalue(SPI_tuptable->vals[i],
												 SPI_tuptable->tupdesc, 2)));
	SPI_finish();
}

typedef struct AskCtx
{
	Pass	   *pass;
	const char *origin;
	const char *xids;
	Oid			dboid;
} AskCtx;

/* what an origin said about its transactions */
static void
collect_status(PGresult *res, DistxNode *node, void *arg)
{
	AskCtx	   *ctx = arg;
	int			i;

	for (i = 0; i < PQntuples(res); i++)
	{
		OriginStatus st = status_from_text(PQgetisnull(res, i, 1) ? NULL :
										   PQgetvalue(res, i, 1));

		/* the server's database must be the origin's */
		if (strtoul(PQgetvalue(res, i, 2), NULL, 10) != ctx->dboid)
			st = OS_UNKNOWN;
		set_status(ctx->pass, ctx->origin, PQgetvalue(res, i, 0), st);
	}
}

/* the origin is another member: ask it over libpq (via recovery_on_node) */
static void
ask_remote(DistxNode *node, void *arg)
{
	AskCtx	   *ctx = arg;
	const char *params[1];

	params[0] = ctx->xids;
	query_node(node, "ask about transactions", status_sql, 1, params,
			   collect_status, ctx);
}

/* step 3: ask every origin whose word is needed */
static void
ask_origins(Pass *pass)
{
	HASH_SEQ_STATUS scan;
	TxEntry    *tx;
	List	   *origins = NIL;
	ListCell   *lc;

	hash_seq_init(&scan, pass->txs);
	while ((tx = hash_seq_search(&scan)))
		if (needs_origin(tx) && !list_member(origins, makeString(tx->origin)))
			origins = lappend(origins, makeString(tx->origin));

	foreach(lc, origins)
	{
		const char *origin = strVal(lfirst(lc));
		char	   *xids = origin_xids(pass, origin);
		uint64		sysid;
		unsigned long dboid;
		Member	   *m;
		ForeignServer *server;
		AskCtx		ctx;
		long		ignored = -1;
		RecoveryResult scratch;

		if (xids == NULL ||
			sscanf(origin, "distx_" UINT64_FORMAT "_%lu_", &sysid, &dboid) != 2)
			continue;
		if (sysid == GetSystemIdentifier() && dboid == MyDatabaseId)
		{
			ask_self(pass, origin, xids);
			continue;
		}
		m = member_by_sysid(pass, sysid);
		server = m ? GetForeignServerByName(m->name, true) : NULL;
		ctx.pass = pass;
		ctx.origin = origin;
		ctx.xids = xids;
		ctx.dboid = (Oid) dboid;
		memset(&scratch, 0, sizeof(scratch));
		if (server == NULL ||
			!recovery_on_node(server->serverid, false, &ignored, &scratch,
							  ask_remote, &ctx))
		{
			/* every transaction of that origin that was not answered */
			hash_seq_init(&scan, pass->txs);
			while ((tx = hash_seq_search(&scan)))
				if (needs_origin(tx) && strcmp(tx->origin, origin) == 0 &&
					tx->status == OS_UNASKED)
					tx->status = OS_UNREACHABLE;
		}
	}
}

/* whether a decision names this participant (OID at the origin, name here) */
static bool
names_node(TxEntry *tx, FoundGid *f)
{
	int			i;

	for (i = 0; i < tx->nparts; i++)
		if (tx->oids[i] == f->gid_oid && strcmp(tx->names[i], f->servername) == 0)
			return true;
	return false;
}

#define ACT_NONE		0
#define ACT_COMMIT		1
#define ACT_ROLLBACK	2

static int
decide_action(TxEntry *tx, FoundGid *f)
{
	if (!tx->has_decision)
		return ACT_NONE;
	if (tx->outcome == DECISION_ABORT || !names_node(tx, f))
		return ACT_ROLLBACK;
	if (!tx->conditional)
		return ACT_COMMIT;
	if (tx->status == OS_COMMITTED)
		return ACT_COMMIT;
	if (tx->status == OS_NOT_COMMITTED)
		return ACT_ROLLBACK;
	return ACT_NONE;			/* the origin cannot tell yet */
}

/* step 4, no decision: propose abort where that is due */
static void
propose_aborts(Pass *pass)
{
	ListCell   *lc;

	foreach(lc, pass->found)
	{
		FoundGid   *f = lfirst(lc);
		TxEntry    *tx = f->tx;
		ListCell   *lc2;
		int			n = 0;
		Oid		   *oids;
		const char **names;

		if (tx->has_decision || !f->old_enough || tx->origin_left ||
			tx->status == OS_IN_PROGRESS || tx->status == OS_UNKNOWN ||
			tx->status == OS_UNASKED)
			continue;
		/* the participants seen, so that the decision names them */
		oids = palloc(sizeof(Oid) * list_length(pass->found));
		names = palloc(sizeof(char *) * list_length(pass->found));
		foreach(lc2, pass->found)
		{
			FoundGid   *g = lfirst(lc2);

			if (g->tx == tx)
			{
				oids[n] = g->gid_oid;
				names[n] = g->servername;
				n++;
			}
		}
		if (cluster_decide(tx->origin, tx->xid, false, false, oids, names, n, true) != DECISION_ABORT)
		{
			/*
			 * The session's commit got there first.  What its origin said
			 * is from before that decision: ask again in the next pass.
			 */
			reload_decision(tx);
			tx->status = OS_UNASKED;
			continue;
		}
		ereport(LOG,
				(errmsg("distx recovery: decided to roll back transaction " UINT64_FORMAT " of %s (%s)",
						tx->xid, tx->origin,
						tx->status == OS_UNREACHABLE ? "its coordinator cannot be reached" :
						"it did not commit on its coordinator")));
		reload_decision(tx);
	}
}

/* step 4 on one node: COMMIT or ROLLBACK PREPARED (via recovery_on_node) */
static void
act_on_node(DistxNode *node, void *arg)
{
	Pass	   *pass = arg;
	PGconn	   *volatile conn = NULL;
	ListCell   *lc;
	volatile int in_doubt = 0;

	PG_TRY();
	{
		foreach(lc, pass->found)
		{
			FoundGid   *f = lfirst(lc);
			int			act;

			if (f->serverid != node->serverid)
				continue;
			act = decide_action(f->tx, f);
			if (act == ACT_NONE)
			{
				in_doubt++;
				continue;
			}
			if (conn == NULL)
				conn = conn_connect(node);
			if (!recovery_finish_gid(conn, node, f->gid, act == ACT_COMMIT,
									 pass->result))
				in_doubt++;
		}
	}
	PG_CATCH();
	{
		if (conn)
			conn_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (conn)
		conn_close(conn);
	pass->result->in_doubt += in_doubt;
	health_set_in_doubt(node->serverid, in_doubt);
}

/* step 5: decisions whose participants were all reached without a gid */
static void
forget_decisions(Pass *pass)
{
	HASH_SEQ_STATUS scan;
	TxEntry    *tx;
	long		max = hash_get_num_entries(pass->txs);
	const char **origins = palloc(sizeof(char *) * Max(max, 1));
	uint64	   *xids = palloc(sizeof(uint64) * Max(max, 1));
	int			n = 0;

	hash_seq_init(&scan, pass->txs);
	while ((tx = hash_seq_search(&scan)))
	{
		int			i;
		bool		all = true;

		if (!tx->has_decision || tx->seen || !tx->forgettable)
			continue;
		for (i = 0; i < tx->nparts && all; i++)
		{
			ForeignServer *server = GetForeignServerByName(tx->names[i], true);

			if (server == NULL || !list_member_oid(pass->reached, server->serverid))
				all = false;
		}
		if (!all)
			continue;
		origins[n] = tx->origin;
		xids[n] = tx->xid;
		n++;
	}
	if (n > 0)
	{
		cluster_forget_decisions(n, origins, xids);
		pass->result->forgotten += n;
	}
	pfree(origins);
	pfree(xids);
}

long
recovery_pass_cluster(bool respect_backoff, RecoveryResult *result)
{
	Pass		pass;
	HASHCTL		ctl;
	LOCKTAG		tag;
	long		next_due = -1;
	List	   *servers;
	ListCell   *lc;

	memset(result, 0, sizeof(*result));
	if (cluster_acting_term() == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server does not act as the distx cluster's coordinator"),
				 errdetail("In a distx cluster only the leader, once it has caught up and while it hears from a majority, resolves prepared transactions."),
				 errhint("Run distx.recover() on the leader: distx.leader() names it.")));

	recovery_lock(&tag);

	memset(&pass, 0, sizeof(pass));
	pass.result = result;
	ctl.keysize = TXKEY_LEN;
	ctl.entrysize = sizeof(TxEntry);
	ctl.hcxt = CurrentMemoryContext;
	pass.txs = hash_create("distx cluster recovery", 64, &ctl,
						   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	/* 1 */
	load_state(&pass);

	/* 2 */
	servers = node_list_all();
	foreach(lc, servers)
	{
		Oid			serverid = lfirst_oid(lc);

		if (recovery_on_node(serverid, respect_backoff, &next_due, result,
							 list_node, &pass))
			pass.reached = lappend_oid(pass.reached, serverid);
	}

	/* 3 */
	ask_origins(&pass);

	/* 4: decide what has no decision, then act */
	if (cluster_acting_term() == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server stopped acting as the distx cluster's coordinator during recovery")));
	propose_aborts(&pass);
	foreach(lc, pass.reached)
	{
		Oid			serverid = lfirst_oid(lc);
		ListCell   *lc2;
		bool		any = false;

		foreach(lc2, pass.found)
			if (((FoundGid *) lfirst(lc2))->serverid == serverid)
				any = true;
		if (!any)
		{
			health_set_in_doubt(serverid, 0);
			continue;
		}
		(void) recovery_on_node(serverid, false, &next_due, result,
								act_on_node, &pass);
	}

	/* 5 */
	forget_decisions(&pass);

	/* what is left in doubt is retried soon */
	if (result->in_doubt > 0 &&
		(next_due < 0 || next_due > distx_retry_max_delay))
		next_due = Min(distx_retry_max_delay, 1000);

	LockRelease(&tag, ExclusiveLock, false);
	return next_due;
}
