/*-------------------------------------------------------------------------
 *
 * txn.c
 *	  The 2PC coordinator.
 *
 * The remote transactions that distx.exec()/distx.query() opened on nodes
 * are finished by the callbacks here, together with the local transaction
 * (presumed abort, as Citus does it):
 *
 * PRE_COMMIT	Participants that only ran SELECTs are asked whether they
 *				wrote.  With no writer, or with one remote writer and no
 *				local write, every participant commits in one phase (the
 *				writer last, so that any failure still rolls everything
 *				back).  Otherwise the decision row is written through the
 *				apply path (cluster/state.c) in the local transaction, a
 *				synchronous local commit is forced, PREPARE TRANSACTION goes
 *				to every writer in parallel, and read-only participants
 *				commit in one phase.  Any failure raises an error: the local
 *				transaction, with its decision row, aborts, and the abort
 *				callback rolls back what was prepared.
 *				In a Raft cluster the decision is instead proposed after the
 *				PREPAREs and committed in Raft (pre_commit_cluster).
 * (commit)		The local commit makes the decision durable (single-node).
 * COMMIT		COMMIT PREPARED to every writer in parallel.  This is past the
 *				commit point: a failure is a WARNING naming the gid, and the
 *				background worker is woken to resolve it.
 * ABORT		Cancel what still runs on a node, then ROLLBACK, or ROLLBACK
 *				PREPARED for what was prepared.  Failures are left to
 *				recovery, which rolls back gids without a decision.
 *
 * Subtransactions are mirrored with savepoints, as postgres_fdw does.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "cluster/cluster.h"
#include "cluster/cluster_apply.h"
#include "commands/dbcommands.h"
#include "miscadmin.h"
#include "replication/message.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "distx.h"
#include "cluster/state.h"
#include "remote/connection.h"
#include "remote/health.h"
#include "txn/fault.h"
#include "txn/gid.h"
#include "txn/txn.h"

typedef struct TxnShared
{
	slock_t		mutex;
	int			nslots;
	TimestampTz quiesce_until;	/* no new two-phase commit before this */
	InflightTxn slots[FLEXIBLE_ARRAY_MEMBER];
} TxnShared;

static TxnShared *txn_shared = NULL;

/* this backend's distributed transaction */
static bool txn_two_phase = false;	/* PREPAREs were sent */

/*
 * Cluster mode, an unconditional decision: DECISION_UNKNOWN while it is
 * proposed (a failure leaves its outcome unknown), DECISION_COMMIT once
 * committed in Raft.  Either way an abort must not roll back what was
 * prepared: that is left to the cluster's coordinator.  DECISION_NONE
 * otherwise.
 */
#define DECISION_NONE		0
#define DECISION_UNKNOWN	(-1)
static int	txn_decision = DECISION_NONE;

static void txn_xact_callback(XactEvent event, void *arg);
static void txn_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								 SubTransactionId parentSubid, void *arg);

void
txn_init(void)
{
	RegisterXactCallback(txn_xact_callback, NULL);
	RegisterSubXactCallback(txn_subxact_callback, NULL);
}

Size
txn_shmem_size(void)
{
	return add_size(offsetof(TxnShared, slots),
					mul_size(MaxBackends + 1, sizeof(InflightTxn)));
}

void
txn_shmem_init(void)
{
	bool		found;

	txn_shared = ShmemInitStruct("distx transactions", txn_shmem_size(), &found);
	if (!found)
	{
		memset(txn_shared, 0, txn_shmem_size());
		SpinLockInit(&txn_shared->mutex);
		txn_shared->nslots = MaxBackends + 1;
	}
}

/* ---- the in-flight registry behind distx.transactions ---- */

static InflightTxn *
my_slot(void)
{
	if (txn_shared == NULL || MyBackendId <= 0 || MyBackendId >= txn_shared->nslots)
		return NULL;
	return &txn_shared->slots[MyBackendId];
}

/* with txn_shared->mutex held */
static void
slot_set_state(InflightTxn *s, InflightState state, uint64 fxid, TimestampTz now)
{
	if (s->state == INFLIGHT_NONE || s->pid != MyProcPid)
	{
		s->pid = MyProcPid;
		s->started_at = now;
		s->nparticipants = 0;
		s->fxid = 0;
	}
	s->state = state;
	if (fxid != 0)
		s->fxid = fxid;
	if (state == INFLIGHT_NONE)
	{
		s->pid = 0;
		s->nparticipants = 0;
		s->fxid = 0;
	}
}

static void
inflight_set_state(InflightState state, uint64 fxid)
{
	InflightTxn *s = my_slot();
	TimestampTz now = GetCurrentTimestamp();

	if (s == NULL)
		return;
	SpinLockAcquire(&txn_shared->mutex);
	slot_set_state(s, state, fxid, now);
	SpinLockRelease(&txn_shared->mutex);
}

/*
 * Enter the two-phase commit (INFLIGHT_PREPARING), unless a change of the
 * distx cluster's membership that involves this server has paused them
 * (txn_quiesce_begin).  Checked and entered under one lock, so that a
 * quiesce either sees this transaction in flight or this transaction sees
 * the quiesce: nothing slips between the two.
 */
static void
inflight_enter_two_phase(uint64 fxid)
{
	InflightTxn *s = my_slot();
	TimestampTz now = GetCurrentTimestamp();
	bool		paused = false;

	if (s == NULL)
		return;
	SpinLockAcquire(&txn_shared->mutex);
	if (txn_shared->quiesce_until > now)
		paused = true;
	else
		slot_set_state(s, INFLIGHT_PREPARING, fxid, now);
	SpinLockRelease(&txn_shared->mutex);
	if (paused)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("distributed transactions are paused on this server while its distx cluster membership changes"),
				 errdetail("A transaction that writes on more than one node cannot commit here until the change is done; nothing was prepared."),
				 errhint("Retry the transaction in a moment.")));
}

/*
 * Pause new two-phase commits on this server for hold_ms (a safety bound:
 * txn_quiesce_end() lifts it when the membership change is done).
 */
void
txn_quiesce_begin(int hold_ms)
{
	TimestampTz until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), hold_ms);

	SpinLockAcquire(&txn_shared->mutex);
	txn_shared->quiesce_until = until;
	SpinLockRelease(&txn_shared->mutex);
}

void
txn_quiesce_end(void)
{
	SpinLockAcquire(&txn_shared->mutex);
	txn_shared->quiesce_until = 0;
	SpinLockRelease(&txn_shared->mutex);
}

/* other sessions' distributed transactions between PREPARE and their end */
int
txn_two_phase_in_flight(void)
{
	int			n = 0;
	int			i;

	SpinLockAcquire(&txn_shared->mutex);
	for (i = 0; i < txn_shared->nslots; i++)
	{
		InflightTxn *s = &txn_shared->slots[i];

		if (s->pid != MyProcPid &&
			(s->state == INFLIGHT_PREPARING || s->state == INFLIGHT_PREPARED ||
			 s->state == INFLIGHT_COMMITTING || s->state == INFLIGHT_ABORTING))
			n++;
	}
	SpinLockRelease(&txn_shared->mutex);
	return n;
}

static void
inflight_participant_state(Oid serverid, char state)
{
	InflightTxn *s = my_slot();
	int			i;

	if (s == NULL)
		return;
	SpinLockAcquire(&txn_shared->mutex);
	for (i = 0; i < s->nparticipants; i++)
		if (s->participants[i] == serverid)
			break;
	if (i == s->nparticipants && i < TXN_MAX_PARTICIPANTS)
	{
		s->participants[i] = serverid;
		s->nparticipants++;
	}
	if (i < TXN_MAX_PARTICIPANTS)
		s->participant_state[i] = state;
	SpinLockRelease(&txn_shared->mutex);
}

void
txn_note_participant(Oid serverid)
{
	InflightTxn *s = my_slot();

	if (s != NULL && (s->state == INFLIGHT_NONE || s->pid != MyProcPid))
		inflight_set_state(INFLIGHT_ACTIVE, 0);
	inflight_participant_state(serverid, 'a');
}

int
txn_inflight_snapshot(InflightTxn **result)
{
	int			i;
	int			n = 0;
	InflightTxn *out;

	distx_require_preload("distx.transactions");
	out = palloc(sizeof(InflightTxn) * txn_shared->nslots);
	SpinLockAcquire(&txn_shared->mutex);
	for (i = 0; i < txn_shared->nslots; i++)
		if (txn_shared->slots[i].state != INFLIGHT_NONE)
			out[n++] = txn_shared->slots[i];
	SpinLockRelease(&txn_shared->mutex);
	*result = out;
	return n;
}

/* ---- the protocol ---- */

/* the connections that take part in the current transaction */
static List *
participants(void)
{
	HTAB	   *hash = conn_cache();
	HASH_SEQ_STATUS scan;
	DistxConn  *c;
	List	   *result = NIL;

	if (hash == NULL)
		return NIL;
	hash_seq_init(&scan, hash);
	while ((c = (DistxConn *) hash_seq_search(&scan)))
		if (c->conn != NULL && c->xact_depth > 0)
			result = lappend(result, c);
	return result;
}

/*
 * Send the same command to several connections, then collect every answer
 * before reporting the first failure, so that no connection is left busy.
 */
static void
exec_parallel(List *conns, const char *sql)
{
	ListCell   *lc;
	DistxConn  *failed = NULL;
	PGresult   *failed_res = NULL;

	foreach(lc, conns)
	{
		DistxConn  *c = lfirst(lc);

		c->changing_xact_state = true;
		if (!conn_send_simple(c, sql))
			conn_report_error(ERROR, NULL, c, sql);
	}
	foreach(lc, conns)
	{
		DistxConn  *c = lfirst(lc);
		PGresult   *res = conn_wait_result(c);

		if (PQresultStatus(res) != PGRES_COMMAND_OK && failed == NULL)
		{
			failed = c;
			failed_res = res;
			continue;
		}
		PQclear(res);
		c->changing_xact_state = false;
	}
	if (failed)
		conn_report_error(ERROR, failed_res, failed, sql);
}

/* commit connections in one phase, the last one last */
static void
commit_one_phase(List *readers, DistxConn *writer)
{
	ListCell   *lc;

	if (readers != NIL)
		exec_parallel(readers, "COMMIT");
	if (writer)
		exec_parallel(list_make1(writer), "COMMIT");
	foreach(lc, readers)
		inflight_participant_state(((DistxConn *) lfirst(lc))->serverid, '1');
	if (writer)
		inflight_participant_state(writer->serverid, '1');
}

/*
 * Participants on which only SELECT-tagged commands ran may still have
 * written (a function with side effects): ask them, all at once.
 */
static void
resolve_maybe_writers(List *conns)
{
	static const char *sql = "SELECT pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL";
	List	   *ask = NIL;
	ListCell   *lc;

	foreach(lc, conns)
	{
		DistxConn  *c = lfirst(lc);

		if (!c->wrote && c->maybe_wrote)
			ask = lappend(ask, c);
	}
	foreach(lc, ask)
	{
		DistxConn  *c = lfirst(lc);

		if (!PQsendQuery(c->conn, sql))
			conn_report_error(ERROR, NULL, c, sql);
	}
	foreach(lc, ask)
	{
		DistxConn  *c = lfirst(lc);
		PGresult   *res = conn_wait_result(c);

		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
			conn_report_error(ERROR, res, c, sql);
		if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
			c->wrote = true;
		PQclear(res);
	}
}

/*
 * PREPARE TRANSACTION on every writer in parallel.  With a valid flush_upto,
 * the local WAL is flushed up to it while the nodes prepare.
 */
static void
prepare_writers(List *writers, FullTransactionId fxid, XLogRecPtr flush_upto)
{
	ListCell   *lc;
	char		sql[DISTX_GID_LEN + 64];

	foreach(lc, writers)
	{
		DistxConn  *c = lfirst(lc);

		gid_format(c->gid, sizeof(c->gid), fxid, c->serverid);
		snprintf(sql, sizeof(sql), "PREPARE TRANSACTION '%s'", c->gid);
		c->changing_xact_state = true;
		if (!conn_send_simple(c, sql))
			conn_report_error(ERROR, NULL, c, sql);
		c->prepared = true;		/* may be; abort will ROLLBACK PREPARED */

		/*
		 * Test only: stop between the first PREPARE and the others (else
		 * they all run in parallel).
		 */
		if (lc == list_head(writers) && list_length(writers) > 1 &&
			fault_armed("between_prepares"))
		{
			PGresult   *res = conn_wait_result(c);

			if (PQresultStatus(res) != PGRES_COMMAND_OK)
				conn_report_error(ERROR, res, c, sql);
			PQclear(res);
			c->changing_xact_state = false;
			inflight_participant_state(c->serverid, 'p');
			fault_point("between_prepares", true);
		}
	}
	if (!XLogRecPtrIsInvalid(flush_upto))
		XLogFlush(flush_upto);
	{
		DistxConn  *failed = NULL;
		PGresult   *failed_res = NULL;

		foreach(lc, writers)
		{
			DistxConn  *c = lfirst(lc);
			PGresult   *res;

			if (!c->changing_xact_state)
				continue;		/* the first one, already collected */
			res = conn_wait_result(c);
			if (PQresultStatus(res) != PGRES_COMMAND_OK)
			{
				if (failed == NULL)
				{
					failed = c;
					failed_res = res;
				}
				else
					PQclear(res);
				continue;
			}
			PQclear(res);
			c->changing_xact_state = false;
			inflight_participant_state(c->serverid, 'p');
		}
		if (failed)
		{
			snprintf(sql, sizeof(sql), "PREPARE TRANSACTION '%s'", failed->gid);
			conn_report_error(ERROR, failed_res, failed, sql);
		}
	}
}

/*
 * PRE_COMMIT in a Raft cluster: PREPARE on every writer, then the commit
 * decision is proposed and committed in Raft (from a follower it goes to
 * the leader).  Only then may COMMIT PREPARED be sent, after the local
 * commit.
 *
 * The decision is conditional when the transaction also wrote here (or runs
 * under SERIALIZABLE, whose final check comes after this callback): it then
 * holds only if this transaction commits, which the acting coordinator asks
 * this server about, so a crash here before the local commit aborts it
 * everywhere.  Otherwise it is unconditional, and the acting coordinator
 * can finish the transaction without this server.
 *
 * The xid is part of the gids and the key of the decision, so it must never
 * be handed out again after a crash: a WAL record carrying it is flushed
 * (while the nodes prepare) before the decision is proposed.
 */
static void
pre_commit_cluster(List *writers, List *readers, bool local_wrote)
{
	FullTransactionId fxid;
	volatile bool conditional;
	XLogRecPtr	lsn;
	char	   *origin;
	Oid		   *oids;
	const char **names;
	int			n = list_length(writers);
	int			i;
	volatile int outcome = 0;
	ListCell   *lc;
	MemoryContext oldcontext = CurrentMemoryContext;
	char		gid[DISTX_GID_LEN];

	if (strcmp(get_database_name(MyDatabaseId), distx_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("distributed transactions of a distx cluster must run in database \"%s\"",
						distx_database),
				 errdetail("The cluster's decisions and recovery live in distx.database; a transaction that writes on %d nodes from database \"%s\" could not be recovered.",
						   n, get_database_name(MyDatabaseId)),
				 errhint("Connect to database \"%s\", or write to only one node per transaction.",
						 distx_database)));

	conditional = local_wrote || IsolationIsSerializable();
	fxid = GetTopFullTransactionId();
	lsn = LogLogicalMessage("distx", "", 0, true);
	if (conditional)
		ForceSyncCommit();

	inflight_enter_two_phase(U64FromFullTransactionId(fxid));
	txn_two_phase = true;
	prepare_writers(writers, fxid, lsn);

	fault_point("after_prepares", true);

	origin = gid_prefix();
	oids = palloc(sizeof(Oid) * n);
	names = palloc(sizeof(char *) * n);
	i = 0;
	foreach(lc, writers)
	{
		DistxConn  *c = lfirst(lc);

		oids[i] = c->serverid;
		names[i] = c->servername;
		i++;
	}
	gid_format(gid, sizeof(gid), fxid, InvalidOid);

	/* if the proposal fails, its outcome is unknown (see txn_abort) */
	txn_decision = conditional ? DECISION_NONE : DECISION_UNKNOWN;
	PG_TRY();
	{
		/*
		 * Committed is enough: the session needs the outcome, which the
		 * leader returns, not this node's copy of the decision.
		 */
		outcome = cluster_decide(origin, U64FromFullTransactionId(fxid), true,
								 conditional, oids, names, n, false);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(ERROR,
				(errcode(edata->sqlerrcode),
				 errmsg("could not commit the decision of distributed transaction %s in the distx cluster: %s",
						gid, edata->message),
				 conditional ?
				 errdetail("The transaction is rolled back on every node.") :
				 errdetail("Its outcome is unknown: the cluster's coordinator commits its prepared transactions if the decision was committed, and rolls them back otherwise.")));
	}
	PG_END_TRY();

	if (outcome != DECISION_COMMIT)
	{
		txn_decision = DECISION_NONE;
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("distributed transaction %s was rolled back by the distx cluster's recovery",
						gid),
				 errdetail("Recovery decided to roll it back before this session's commit decision reached the cluster."),
				 errhint("Retry the transaction.")));
	}
	txn_decision = conditional ? DECISION_NONE : DECISION_COMMIT;

	/*
	 * An unconditional decision does not depend on the local commit, which
	 * has nothing else to make durable (the xid's WAL is flushed already):
	 * it need not wait for its flush.
	 */
	if (!conditional)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);

	/* test only: the decision is in Raft, the local commit still to come */
	fault_point("after_raft_decision", true);

	/* read-only participants need only commit */
	if (readers != NIL)
		commit_one_phase(readers, NULL);

	inflight_set_state(INFLIGHT_PREPARED, 0);
}

static void
txn_pre_commit(void)
{
	List	   *conns = participants();
	List	   *writers = NIL;
	List	   *readers = NIL;
	ListCell   *lc;
	bool		local_wrote;
	FullTransactionId fxid;
	Oid		   *servers;
	int			i;

	txn_two_phase = false;
	if (conns == NIL)
		return;

	foreach(lc, conns)
	{
		DistxConn  *c = lfirst(lc);

		/* an earlier failure left the remote transaction in doubt */
		if (c->changing_xact_state)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("connection to distx node \"%s\" is in an unknown state",
							c->servername),
					 errdetail("An earlier command on that node was interrupted; the transaction cannot commit.")));
	}
	resolve_maybe_writers(conns);
	foreach(lc, conns)
	{
		DistxConn  *c = lfirst(lc);

		if (c->wrote)
			writers = lappend(writers, c);
		else
			readers = lappend(readers, c);
	}
	local_wrote = TransactionIdIsValid(GetTopTransactionIdIfAny());

	/*
	 * No writer, or one remote writer alone: no PREPARE needed.  Not under
	 * SERIALIZABLE, though: the local serialization check runs after this
	 * callback, and could fail the local commit after the writer committed.
	 */
	if (list_length(writers) == 0 ||
		(list_length(writers) == 1 && !local_wrote && !IsolationIsSerializable()))
	{
		commit_one_phase(readers, writers != NIL ? linitial(writers) : NULL);
		return;
	}

	foreach(lc, writers)
	{
		DistxConn  *c = lfirst(lc);

		if (c->max_prepared_xacts <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("distx node \"%s\" cannot take part in a distributed transaction",
							c->servername),
					 errdetail("max_prepared_transactions is 0 on that server, so it cannot prepare a transaction."),
					 errhint("Set max_prepared_transactions to a value greater than zero on the server of node \"%s\" (this needs a restart), or write to only one node per transaction.",
							 c->servername)));
	}

	fault_point("before_prepare", true);

	if (cluster_is_member())
	{
		pre_commit_cluster(writers, readers, local_wrote);
		return;
	}

	/*
	 * The decision row goes into the local transaction (which assigns its
	 * xid, part of every gid); it becomes durable exactly when the local
	 * transaction commits, and that commit is made synchronous whatever
	 * synchronous_commit says.
	 */
	fxid = GetTopFullTransactionId();
	servers = palloc(sizeof(Oid) * list_length(writers));
	i = 0;
	foreach(lc, writers)
		servers[i++] = ((DistxConn *) lfirst(lc))->serverid;
	state_record_commit_decision(fxid, servers, list_length(writers));
	ForceSyncCommit();

	inflight_enter_two_phase(U64FromFullTransactionId(fxid));
	txn_two_phase = true;

	prepare_writers(writers, fxid, InvalidXLogRecPtr);

	fault_point("after_prepares", true);

	/* read-only participants need only commit */
	if (readers != NIL)
		commit_one_phase(readers, NULL);

	inflight_set_state(INFLIGHT_PREPARED, 0);
}

/* the transaction is over: every connection gives back its slot */
static void
end_all_connections(void)
{
	HTAB	   *hash = conn_cache();
	HASH_SEQ_STATUS scan;
	DistxConn  *c;

	if (hash == NULL)
		return;
	hash_seq_init(&scan, hash);
	while ((c = (DistxConn *) hash_seq_search(&scan)))
		conn_end_xact(c, true);
}

/*
 * After the local commit: COMMIT PREPARED everywhere, in parallel.  Nothing
 * here may raise an error.
 */
static void
txn_commit(void)
{
	List	   *conns = participants();
	ListCell   *lc;
	bool		all_done = true;
	char		sql[DISTX_GID_LEN + 64];
	TimestampTz deadline;
	int			nprepared = 0;
	int			sent = 0;

	foreach(lc, conns)
		if (((DistxConn *) lfirst(lc))->prepared)
			nprepared++;

	if (txn_two_phase)
	{
		inflight_set_state(INFLIGHT_COMMITTING, 0);
		fault_point("after_decision", false);

		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   distx_cleanup_timeout);
		foreach(lc, conns)
		{
			DistxConn  *c = lfirst(lc);

			if (!c->prepared)
				continue;
			snprintf(sql, sizeof(sql), "COMMIT PREPARED '%s'", c->gid);
			c->changing_xact_state = true;
			if (!conn_send_simple(c, sql))
			{
				ereport(WARNING,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("could not send COMMIT PREPARED for distx transaction \"%s\" to node \"%s\"",
								c->gid, c->servername),
						 errdetail("The transaction is committed; recovery will commit it on that node.")));
				all_done = false;
				c->prepared = false;
				continue;
			}
			if (++sent == 1 && nprepared > 1 &&
				fault_armed("between_commit_prepared"))
			{
				/* test only: stop between the COMMIT PREPAREDs */
				if (conn_wait_cleanup(c, sql, WARNING, deadline, false))
				{
					c->changing_xact_state = false;
					inflight_participant_state(c->serverid, 'c');
				}
				else
					all_done = false;
				c->prepared = false;
				fault_point("between_commit_prepared", false);
			}
		}
		foreach(lc, conns)
		{
			DistxConn  *c = lfirst(lc);

			if (!c->prepared)
				continue;
			snprintf(sql, sizeof(sql), "COMMIT PREPARED '%s'", c->gid);
			if (!distx_second_phase_wait)
			{
				/* collected when the session next uses the node */
				c->pending_result = true;
				strlcpy(c->pending_gid, c->gid, sizeof(c->pending_gid));
				c->changing_xact_state = false;
				c->prepared = false;
				continue;
			}
			if (conn_wait_cleanup(c, sql, WARNING, deadline, false))
			{
				c->changing_xact_state = false;
				inflight_participant_state(c->serverid, 'c');
			}
			else
			{
				ereport(WARNING,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("distx transaction \"%s\" is committed but not yet on node \"%s\"",
								c->gid, c->servername),
						 errdetail("Recovery will commit it there; until then its changes on that node are not visible.")));
				all_done = false;
			}
		}
		if (!all_done)
			distx_wake_worker();
	}

	end_all_connections();
}

/* Roll back every remote transaction; nothing here raises an error. */
static void
txn_abort(void)
{
	HTAB	   *hash = conn_cache();
	HASH_SEQ_STATUS scan;
	DistxConn  *c;
	bool		leftovers = false;
	char		sql[DISTX_GID_LEN + 64];

	if (hash == NULL)
		return;
	hash_seq_init(&scan, hash);
	while ((c = (DistxConn *) hash_seq_search(&scan)))
	{
		TimestampTz deadline;
		bool		ok = true;

		if (c->conn == NULL || c->xact_depth == 0)
		{
			conn_end_xact(c, true);
			continue;
		}
		if (txn_shared != NULL)
			inflight_set_state(INFLIGHT_ABORTING, 0);

		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   distx_cleanup_timeout);
		/* forward the cancel: stop what still runs there */
		if (!conn_cancel_and_drain(c, deadline))
			ok = false;
		else if (c->prepared && txn_decision != DECISION_NONE &&
				 PQtransactionStatus(c->conn) == PQTRANS_IDLE)
		{
			/* the decision may be (or is) commit: the coordinator decides */
			ereport(WARNING,
					(errcode(ERRCODE_TRANSACTION_RESOLUTION_UNKNOWN),
					 errmsg("distx transaction \"%s\" is left prepared on node \"%s\"",
							c->gid, c->servername),
					 errdetail("Its decision %s in the distx cluster; the cluster's coordinator will finish it.",
							   txn_decision == DECISION_COMMIT ? "is commit" : "may have been committed")));
			ok = false;
		}
		else if (c->prepared)
		{
			if (PQtransactionStatus(c->conn) == PQTRANS_IDLE)
			{
				snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s'", c->gid);
				ok = conn_exec_cleanup(c, sql, WARNING, true);
			}
			else
				ok = conn_exec_cleanup(c, "ROLLBACK", WARNING, false);
		}
		else if (PQtransactionStatus(c->conn) != PQTRANS_IDLE)
			ok = conn_exec_cleanup(c, "ROLLBACK", WARNING, false);

		if (ok)
		{
			c->changing_xact_state = false;
			inflight_participant_state(c->serverid, 'r');
		}
		else if (c->prepared)
			leftovers = true;
		if (!ok && c->prepared && txn_decision != DECISION_NONE &&
			PQtransactionStatus(c->conn) == PQTRANS_IDLE)
		{
			/* left on purpose: the connection itself is fine */
			c->prepared = false;
			c->changing_xact_state = false;
			ok = true;
		}
		conn_end_xact(c, ok);
	}
	if (leftovers)
		distx_wake_worker();
}

static void
txn_reset(void)
{
	txn_two_phase = false;
	txn_decision = DECISION_NONE;
	if (my_slot() != NULL && my_slot()->state != INFLIGHT_NONE)
		inflight_set_state(INFLIGHT_NONE, 0);
}

static void
txn_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			txn_pre_commit();
			break;
		case XACT_EVENT_COMMIT:
			txn_commit();
			txn_reset();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (participants() != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that used distx nodes"),
						 errdetail("distx already runs two-phase commit on the nodes; a prepared local transaction cannot coordinate it."),
						 errhint("Use COMMIT instead of PREPARE TRANSACTION.")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			txn_abort();
			txn_reset();
			break;
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			break;
	}
}

static void
txn_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	HTAB	   *hash = conn_cache();
	HASH_SEQ_STATUS scan;
	DistxConn  *c;
	int			curlevel;

	if (!(event == SUBXACT_EVENT_PRE_COMMIT_SUB ||
		  event == SUBXACT_EVENT_ABORT_SUB) || hash == NULL)
		return;

	curlevel = GetCurrentTransactionNestLevel();
	hash_seq_init(&scan, hash);
	while ((c = (DistxConn *) hash_seq_search(&scan)))
	{
		char		sql[100];

		if (c->conn == NULL || c->xact_depth < curlevel)
			continue;
		if (c->xact_depth > curlevel)
			elog(ERROR, "missed cleaning up remote subtransaction at level %d",
				 c->xact_depth);

		if (event == SUBXACT_EVENT_PRE_COMMIT_SUB)
		{
			snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT distx_s%d", curlevel);
			c->changing_xact_state = true;
			conn_exec_simple(c, sql);
			c->changing_xact_state = false;
		}
		else if (!c->changing_xact_state)
		{
			TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															   distx_cleanup_timeout);

			/* roll back the remote savepoint, cancelling what still runs */
			c->changing_xact_state = true;
			snprintf(sql, sizeof(sql),
					 "ROLLBACK TO SAVEPOINT distx_s%d; RELEASE SAVEPOINT distx_s%d",
					 curlevel, curlevel);
			if (conn_cancel_and_drain(c, deadline) &&
				conn_exec_cleanup(c, sql, WARNING, false))
				c->changing_xact_state = false;
		}
		c->xact_depth--;
	}
}
