/*-------------------------------------------------------------------------
 *
 * raft_worker.c
 *	  The "distx raft" background worker: runs the Raft core of this node
 *	  (see cluster.h for why it is a process of its own).
 *
 * Start:
 *	1. the identity file (pg_distx/identity); none: nothing to do, exit;
 *	2. refuse to run when the identity belongs to another data directory
 *	   (system identifier) or when this node's name leads to another
 *	   server (a copied data directory, see cluster.c); the refusal is
 *	   retried every few seconds and shown in distx.raft_status;
 *	3. open the storage, bring the tables up to the snapshot if a crash
 *	   came between installing a snapshot and applying it, restore the
 *	   core (or bootstrap it: the founder's first start).
 *
 * Loop: wait for the latch (messages, proposals), the peers' sockets or
 * the next tick; then inbox -> raft_step, due ticks -> raft_tick,
 * proposals -> raft_propose, and the Ready cycle of raft.h: persist
 * (snapshot, entries, fsync, hard state), send, apply the committed
 * entries in one local transaction that also stores the applied index,
 * raft_advance.  Storage failures are FATAL: the worker restarts and
 * rebuilds the node from what is durable, which is always safe in Raft.
 *
 * At a clean shutdown a leader hands its leadership to the most
 * up-to-date voter first, so the cluster does not wait an election
 * timeout.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "distx.h"
#include "cluster/cluster.h"
#include "cluster/cluster_apply.h"
#include "cluster/transport.h"
#include "raft/raft_codec.h"

/* how long a refused or unverified node waits before checking again */
#define RECHECK_MS		5000

static raft_node *node = NULL;
static dxs_storage *store = NULL;
static dxs_identity ident;
static pg_prng_state prng;
static int	tick_ms;
static MemoryContext iter_cxt;

static uint64
worker_rand(void *ctx)
{
	return pg_prng_uint64(&prng);
}

static void
worker_trace(void *ctx, raft_id id, const char *line)
{
	elog(DEBUG1, "distx raft: %s", line);
}

static void
storage_failed(const char *what)
{
	ereport(FATAL,
			(errcode_for_file_access(),
			 errmsg("distx raft: could not %s: %s", what, dxs_error(store)),
			 errdetail("The Raft worker stops rather than go on with state that is not durable.")));
}

static void
raft_failed(const char *what, int rc)
{
	/* RAFT_ENOMEM / RAFT_EFATAL: rebuild from storage, i.e. restart */
	ereport(FATAL,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("distx raft: %s failed: %s", what, raft_strerror(rc)),
			 errdetail("The Raft worker restarts from its durable state.")));
}

static void
set_state(ClusterWorkerState state, const char *error)
{
	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	cluster_shared->state = state;
	if (error)
		strlcpy(cluster_shared->last_error, error, CLUSTER_ERR_LEN);
	else
		cluster_shared->last_error[0] = '\0';
	LWLockRelease(cluster_shared->lock);
}

static void
worker_detach(int code, Datum arg)
{
	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	if (cluster_shared->worker_pid == MyProcPid)
	{
		cluster_shared->worker_pid = 0;
		cluster_shared->worker_latch = NULL;
		cluster_shared->state = CW_NONE;
		cluster_shared->acting_term = 0;
	}
	LWLockRelease(cluster_shared->lock);
}

/* sleep up to ms, honouring SIGTERM and SIGHUP; false when shutting down */
static bool
pause_ms(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
	return !ShutdownRequestPending;
}

/* ------------------------------------------------------------------
 * Members
 * ------------------------------------------------------------------
 */

static void
publish_members(ClusterMember *members, int n)
{
	int			i;

	for (i = 0; i < n; i++)
		transport_set_peer(members[i].id, members[i].name);
	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	memcpy(cluster_shared->members, members, sizeof(ClusterMember) * n);
	cluster_shared->nmembers = n;
	LWLockRelease(cluster_shared->lock);
}

/* inside a transaction */
static void
reload_members(void)
{
	ClusterMember *members = palloc(sizeof(ClusterMember) * CLUSTER_MAX_MEMBERS);
	int			n = cluster_load_members(members, CLUSTER_MAX_MEMBERS);

	publish_members(members, n);
	pfree(members);
}

/* ------------------------------------------------------------------
 * Start
 * ------------------------------------------------------------------
 */

/*
 * Verify that the identity is ours: the data directory's system
 * identifier, then our name leads back to this very server.  Returns when
 * verified; loops (refusing) otherwise.
 */
static void
verify_identity(void)
{
	char		msg[CLUSTER_ERR_LEN];
	volatile bool logged = false;

	if (ident.system_id != GetSystemIdentifier())
	{
		snprintf(msg, sizeof(msg),
				 "the distx cluster identity in this data directory belongs to another one (system identifier %llu, this one is %llu)",
				 (unsigned long long) ident.system_id,
				 (unsigned long long) GetSystemIdentifier());
		set_state(CW_REFUSED, msg);
		ereport(LOG,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("distx raft: refusing to run: %s", msg),
				 errhint("Remove the directory pg_distx of this data directory and add the server to the cluster again.")));
		while (pause_ms(RECHECK_MS))
			;
		proc_exit(1);
	}

	for (;;)
	{
		MemoryContext old = CurrentMemoryContext;
		volatile int outcome = 0;	/* 1 self, -1 another server, 0 error */
		char	   *volatile error = NULL;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		PG_TRY();
		{
			outcome = cluster_name_is_self(ident.name) ? 1 : -1;
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(old);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			error = psprintf("%s", edata->message);
			FreeErrorData(edata);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(old);

		if (outcome == 1)
			return;
		if (outcome == -1)
		{
			snprintf(msg, sizeof(msg),
					 "server \"%s\" (the name of node %llu) leads to another server: this data directory is a copy of that node's",
					 ident.name, (unsigned long long) ident.node_id);
			set_state(CW_REFUSED, msg);
			if (!logged)
				ereport(LOG,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("distx raft: refusing to run: %s", msg),
						 errdetail("Two servers with one identity would break the cluster's guarantees."),
						 errhint("Remove the directory pg_distx of the copy and add it to the cluster as a new node.")));
		}
		else
		{
			snprintf(msg, sizeof(msg), "could not check the identity through server \"%s\": %s",
					 ident.name, error);
			set_state(CW_STARTING, msg);
			if (!logged)
				ereport(LOG,
						(errmsg("distx raft: %s", msg),
						 errhint("Every node needs a distx server for itself, under the name the other nodes use.")));
		}
		logged = true;
		if (!pause_ms(outcome == -1 ? RECHECK_MS : 1000))
			proc_exit(1);
	}
}

static void
start_node(void)
{
	char		err[DXS_ERR_LEN];
	char	   *dir = cluster_dir();
	raft_options opt;
	raft_hard_state hs;
	const raft_snapshot *snap;
	const raft_entry *entries;
	size_t		n;
	uint64		applied;
	int			heartbeat_ticks;
	int			election_ticks;
	int			rc;

	store = dxs_open(dir, err, sizeof(err));
	if (store == NULL)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("distx raft: could not open the Raft storage: %s", err)));
	dxs_hard_state(store, &hs);
	snap = dxs_snapshot(store);
	dxs_entries(store, &entries, &n);

	/* the tables, up to the snapshot if they are behind it */
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	applied = cluster_applied_index();
	if (snap != NULL && applied < snap->index)
	{
		ereport(LOG,
				(errmsg("distx raft: restoring the replicated state from the snapshot at index %llu",
						(unsigned long long) snap->index)));
		cluster_snapshot_restore(snap->data, snap->len, snap->index, snap->term);
		applied = snap->index;
	}
	if (applied > Max(dxs_last_index(store), snap ? snap->index : 0))
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("distx raft: the replicated state has applied index %llu, beyond the Raft log (last index %llu)",
						(unsigned long long) applied,
						(unsigned long long) Max(dxs_last_index(store), snap ? snap->index : 0)),
				 errdetail("The tables and the files in pg_distx do not belong together.")));
	reload_members();
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* timing: the tick is the heartbeat, or finer for short elections */
	tick_ms = Max(1, Min(distx_raft_heartbeat_interval, distx_raft_election_timeout / 10));
	heartbeat_ticks = Max(1, distx_raft_heartbeat_interval / tick_ms);
	election_ticks = Max(heartbeat_ticks + 1, distx_raft_election_timeout / tick_ms);

	raft_options_init(&opt);
	opt.id = ident.node_id;
	opt.election_ticks = election_ticks;
	opt.heartbeat_ticks = heartbeat_ticks;
	opt.max_msg_bytes = 256 * 1024;
	opt.rand = worker_rand;
	opt.trace = worker_trace;
	node = raft_new(&opt, &rc);
	if (node == NULL)
		raft_failed("raft_new", rc);

	if (hs.term == 0 && n == 0 && snap == NULL)
	{
		if (ident.founder)
		{
			raft_config cfg;

			memset(&cfg, 0, sizeof(cfg));
			cfg.n = 1;
			cfg.voters[0] = ident.node_id;
			rc = raft_bootstrap(node, &cfg);
			if (rc != RAFT_OK)
				raft_failed("raft_bootstrap", rc);
		}
		/* a joining node starts empty and learns everything from the leader */
	}
	else
	{
		rc = raft_restore(node, &hs, snap, entries, n, applied);
		if (rc != RAFT_OK)
			raft_failed("raft_restore", rc);
	}

	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	cluster_shared->tick_ms = tick_ms;
	cluster_shared->applied = applied;
	LWLockRelease(cluster_shared->lock);
	ereport(LOG,
			(errmsg("distx raft: node %llu (\"%s\") of cluster %llu started: term %llu, log %llu..%llu, applied %llu",
					(unsigned long long) ident.node_id, ident.name,
					(unsigned long long) ident.cluster_id,
					(unsigned long long) hs.term,
					(unsigned long long) dxs_first_index(store),
					(unsigned long long) dxs_last_index(store),
					(unsigned long long) applied)));
}

/* ------------------------------------------------------------------
 * The Ready cycle
 * ------------------------------------------------------------------
 */

/* settle the proposals that the applied entries decide */
static void
settle_proposals(const raft_entry *entries, size_t n, const int64 *results)
{
	ClusterShared *cs = cluster_shared;
	size_t		i;
	int			k;

	LWLockAcquire(cs->lock, LW_EXCLUSIVE);
	for (k = 0; k < CLUSTER_PROPOSAL_SLOTS; k++)
	{
		ClusterProposal *p = &cs->proposals[k];

		if (p->state != SLOT_PROPOSED)
			continue;
		for (i = 0; i < n; i++)
		{
			if (entries[i].index != p->index)
				continue;
			if (entries[i].term == p->term)
			{
				p->rc = PROPOSAL_OK;
				p->result = results[i];
			}
			else
				p->rc = PROPOSAL_LOST;
			p->state = SLOT_DONE;
			if (p->latch)
				SetLatch(p->latch);
		}
	}
	cs->applied = entries[n - 1].index;
	LWLockRelease(cs->lock);
	ConditionVariableBroadcast(&cs->applied_cv);
}

static void
apply_committed(const raft_entry *entries, size_t n)
{
	MemoryContext caller = CurrentMemoryContext;
	int64	   *results = palloc0(sizeof(int64) * n);
	bool		members_changed = false;
	size_t		i;

	for (i = 0; i < n; i++)
		if (entries[i].type == RAFT_ENTRY_NORMAL && entries[i].len > 0 &&
			entries[i].data[0] == ENTRY_NODE_ADD)
			members_changed = true;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "distx raft: applying committed entries");
	cluster_apply_entries(entries, n, results);
	if (members_changed)
		reload_members();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	pgstat_report_activity(STATE_IDLE, NULL);

	settle_proposals(entries, n, results);
	pfree(results);
}

static void
install_snapshot(const raft_snapshot *snap)
{
	MemoryContext caller = CurrentMemoryContext;

	if (dxs_save_snapshot(store, snap) < 0)
		storage_failed("save a snapshot");
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	cluster_snapshot_restore(snap->data, snap->len, snap->index, snap->term);
	reload_members();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	cluster_shared->applied = snap->index;
	LWLockRelease(cluster_shared->lock);
	ConditionVariableBroadcast(&cluster_shared->applied_cv);
	ereport(LOG,
			(errmsg("distx raft: installed a snapshot at index %llu from the leader",
					(unsigned long long) snap->index)));
}

static void
process_ready(void)
{
	while (raft_has_ready(node))
	{
		raft_ready	rd;
		raft_hard_state cur;
		bool		early;
		size_t		i;
		int			rc;

		rc = raft_ready_get(node, &rd);
		if (rc != RAFT_OK)
			raft_failed("raft_ready_get", rc);

		/*
		 * A leader may send its appends before its own copy is durable
		 * (Raft thesis, 10.2.1): the core counts that copy towards a
		 * majority only from raft_advance(), after the fsync below.  So
		 * the followers' fsyncs overlap the leader's.  Not when the term or
		 * the vote is new (it must be durable first) or with a snapshot;
		 * and every other message waits as usual.
		 */
		dxs_hard_state(store, &cur);
		early = raft_get_role(node) == RAFT_LEADER && rd.snapshot == NULL &&
			(!rd.has_hard_state ||
			 (cur.term == rd.hard_state.term && cur.vote == rd.hard_state.vote));
		if (early)
		{
			for (i = 0; i < rd.n_messages; i++)
				if (rd.messages[i].type == RAFT_MSG_APPEND)
					transport_send(rd.messages[i].to, rd.messages[i].buf,
								   rd.messages[i].len);
			transport_kick();
		}

		/* 1-3: durable before anything else goes out */
		if (rd.snapshot)
			install_snapshot(rd.snapshot);
		if (rd.n_entries > 0 && dxs_append(store, rd.entries, rd.n_entries) < 0)
			storage_failed("append to the Raft log");
		if (dxs_sync(store) < 0)
			storage_failed("fsync the Raft log");
		if (rd.has_hard_state)
		{
			/*
			 * Only term and vote must be durable before messages go out.
			 * The commit index is written along with them but not for
			 * itself: that would cost a rename and two fsyncs per commit.
			 * raft_restore() takes the commit index to be at least the
			 * applied index, which the tables keep durably, and learns the
			 * rest from the leader.
			 */
			if ((cur.term != rd.hard_state.term || cur.vote != rd.hard_state.vote) &&
				dxs_set_hard_state(store, &rd.hard_state) < 0)
				storage_failed("write the Raft hard state");
		}

		/* 4 */
		for (i = 0; i < rd.n_messages; i++)
			if (!early || rd.messages[i].type != RAFT_MSG_APPEND)
				transport_send(rd.messages[i].to, rd.messages[i].buf,
							   rd.messages[i].len);

		/* 5 */
		if (rd.n_committed > 0)
			apply_committed(rd.committed, rd.n_committed);

		rc = raft_advance(node, &rd);
		if (rc != RAFT_OK)
			raft_failed("raft_advance", rc);
	}
}

/* ------------------------------------------------------------------
 * Inputs
 * ------------------------------------------------------------------
 */

/* when each peer was last heard from (wall clock) */
typedef struct Heard
{
	uint64		id;
	TimestampTz at;
} Heard;

static Heard heard[CLUSTER_MAX_MEMBERS];
static int	n_heard = 0;

static void
note_heard(uint64 id)
{
	TimestampTz now = GetCurrentTimestamp();
	int			k;

	for (k = 0; k < n_heard; k++)
		if (heard[k].id == id)
		{
			heard[k].at = now;
			return;
		}
	if (n_heard < CLUSTER_MAX_MEMBERS)
	{
		heard[n_heard].id = id;
		heard[n_heard].at = now;
		n_heard++;
	}
}

/*
 * Step what the peers sent, then run one Ready cycle for the lot: a burst of
 * appends costs the follower one fsync, and a burst of acknowledgements the
 * leader one apply transaction, instead of one each.  The cycle runs at
 * least every INBOX_BATCH messages, to keep a Ready small.
 */
#define INBOX_BATCH 64

static void
drain_inbox(void)
{
	InboxMessage m;
	int			stepped = 0;

	while (cluster_inbox_pop(&m))
	{
		int			rc;

		if (transport_peer_name(m.from) == NULL)
			transport_set_peer(m.from, m.from_name);
		note_heard(m.from);
		rc = raft_step(node, m.buf, m.len);
		pfree(m.buf);
		if (rc == RAFT_EDECODE)
			ereport(LOG,
					(errmsg("distx raft: ignored a malformed message from node %llu",
							(unsigned long long) m.from)));
		else if (rc == RAFT_ENOMEM || rc == RAFT_EFATAL)
			raft_failed("raft_step", rc);
		if (++stepped % INBOX_BATCH == 0)
			process_ready();
	}
	process_ready();
}

static void
take_proposals(void)
{
	ClusterShared *cs = cluster_shared;
	raft_role	role = raft_get_role(node);
	raft_id		leader = raft_get_leader(node);
	int			k;

	LWLockAcquire(cs->lock, LW_EXCLUSIVE);
	for (k = 0; k < CLUSTER_PROPOSAL_SLOTS; k++)
	{
		ClusterProposal *p = &cs->proposals[k];
		raft_index	index = 0;
		raft_term	term = 0;
		int			rc;

		if (p->state != SLOT_SUBMITTED)
			continue;
		if (role != RAFT_LEADER)
		{
			if (leader != RAFT_NONE && leader != ident.node_id)
			{
				p->rc = PROPOSAL_NOT_LEADER;
				p->result = (int64) leader;
				p->state = SLOT_DONE;
				if (p->latch)
					SetLatch(p->latch);
			}
			continue;			/* no leader yet: wait for one */
		}
		switch (p->kind)
		{
			case PROPOSAL_ENTRY:
				rc = raft_propose(node, p->data, p->len, &index, &term);
				break;
			case PROPOSAL_CONFIG_ADD:
			case PROPOSAL_CONFIG_REMOVE:
				rc = raft_propose_config(node,
										 p->kind == PROPOSAL_CONFIG_ADD ? RAFT_CONFIG_ADD : RAFT_CONFIG_REMOVE,
										 p->arg, &index);
				term = raft_get_term(node);
				break;
			default:
				rc = RAFT_EINVAL;
				break;
		}
		if (rc == RAFT_OK)
		{
			p->index = index;
			p->term = term;
			p->state = SLOT_PROPOSED;
			continue;
		}
		if (rc == RAFT_ENOMEM || rc == RAFT_EFATAL)
		{
			LWLockRelease(cs->lock);
			raft_failed("raft_propose", rc);
		}
		p->rc = rc == RAFT_ENOTLEADER ? PROPOSAL_NOT_LEADER : PROPOSAL_FAILED;
		if (rc == RAFT_EBUSY)
			strlcpy(p->errmsg, "another membership change or a leadership transfer is in progress",
					CLUSTER_ERR_LEN);
		else
			strlcpy(p->errmsg, raft_strerror(rc), CLUSTER_ERR_LEN);
		p->state = SLOT_DONE;
		if (p->latch)
			SetLatch(p->latch);
	}
	LWLockRelease(cs->lock);
}

/*
 * The term in which this node may act as the coordinator, or 0.  It must
 * lead, have applied an entry of its own term (so everything committed
 * before it is applied here), and have heard from a majority of the voters
 * (itself included) within the election timeout, by the wall clock: a
 * leader whose process was paused (SIGSTOP, a stall) stops acting at once
 * when it resumes, before CheckQuorum, which counts ticks, notices.  This
 * only shortens how long an old leader acts: what keeps it from doing harm
 * is that its actions are entries that must be committed first.
 */
static uint64
acting_term(const raft_status *st, TimestampTz now)
{
	raft_term	t;
	uint32		fresh = 0;
	uint32		i;

	if (st->role != RAFT_LEADER ||
		!raft_get_term_at(node, st->applied, &t) || t != st->term)
		return 0;
	for (i = 0; i < st->config.n; i++)
	{
		raft_id		v = st->config.voters[i];
		int			k;

		if (v == ident.node_id)
		{
			fresh++;
			continue;
		}
		for (k = 0; k < n_heard; k++)
			if (heard[k].id == v &&
				!TimestampDifferenceExceeds(heard[k].at, now, distx_raft_election_timeout))
				fresh++;
	}
	return fresh >= st->config.n / 2 + 1 ? st->term : 0;
}

static uint64 last_acting = 0;

static void
publish_status(void)
{
	raft_status st;
	ClusterPeerInfo peers[RAFT_MAX_VOTERS];
	int			n;
	TimestampTz now = GetCurrentTimestamp();
	uint64		acting;
	int			i;

	raft_get_status(node, &st);
	acting = acting_term(&st, now);
	n = transport_status(peers, RAFT_MAX_VOTERS);
	for (i = 0; i < n; i++)
	{
		int			k;

		peers[i].last_heard = 0;
		for (k = 0; k < n_heard; k++)
			if (heard[k].id == peers[i].id)
				peers[i].last_heard = heard[k].at;
	}
	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	cluster_shared->status = st;
	cluster_shared->status_at = now;
	cluster_shared->acting_term = acting;
	memcpy(cluster_shared->peers, peers, sizeof(ClusterPeerInfo) * n);
	cluster_shared->npeers = n;
	LWLockRelease(cluster_shared->lock);

	/* a new coordinator: recovery runs at once, not at its next interval */
	if (acting != 0 && acting != last_acting)
		distx_wake_worker();
	last_acting = acting;
}

/* compact the log into a snapshot of the tables once it is long enough */
static void
maybe_compact(void)
{
	MemoryContext caller = CurrentMemoryContext;
	const raft_snapshot *snap = dxs_snapshot(store);
	raft_index	snap_index = snap ? snap->index : 0;
	raft_index	applied = raft_get_applied(node);
	raft_snapshot meta;
	uint8	   *data;
	uint32		len;
	int			rc;

	if (applied <= snap_index ||
		dxs_last_index(store) - snap_index < (uint64) distx_raft_snapshot_threshold)
		return;
	/*
	 * The snapshot is built in the caller's memory: inside the transaction
	 * the current context is the transaction's, gone at its commit.
	 */
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	MemoryContextSwitchTo(caller);
	data = cluster_snapshot_make(&len);
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller);

	rc = raft_compact(node, applied, data, len, &meta);
	if (rc != RAFT_OK)
	{
		if (rc == RAFT_ENOMEM || rc == RAFT_EFATAL)
			raft_failed("raft_compact", rc);
		return;
	}
	meta.data = data;
	meta.len = len;
	if (dxs_save_snapshot(store, &meta) < 0)
		storage_failed("save a snapshot");
	elog(DEBUG1, "distx raft: compacted the log up to index %llu",
		 (unsigned long long) applied);
}

/* a leader that shuts down hands over to the most up-to-date voter */
static void
transfer_before_shutdown(void)
{
	raft_status st;
	raft_id		best = RAFT_NONE;
	raft_index	best_match = 0;
	TimestampTz deadline;
	uint32		i;

	raft_get_status(node, &st);
	if (st.role != RAFT_LEADER)
		return;
	for (i = 0; i < st.n_peers; i++)
		if (st.peers[i].id != ident.node_id && st.peers[i].match >= best_match)
		{
			best = st.peers[i].id;
			best_match = st.peers[i].match;
		}
	if (best == RAFT_NONE || raft_transfer_leadership(node, best) != RAFT_OK)
		return;
	ereport(LOG,
			(errmsg("distx raft: shutting down: handing the leadership to node %llu",
					(unsigned long long) best)));
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   Min(distx_raft_election_timeout, 2000));
	process_ready();
	while (raft_get_role(node) == RAFT_LEADER && GetCurrentTimestamp() < deadline)
	{
		WaitEventSet *set;
		WaitEvent  *occurred;
		int			nev;
		int			nocc;

		nev = 2 + transport_max_events();
		occurred = palloc(sizeof(WaitEvent) * nev);
		set = CreateWaitEventSet(CurrentMemoryContext, nev);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		transport_add_events(set);
		nocc = WaitEventSetWait(set, tick_ms, occurred, nev, PG_WAIT_EXTENSION);
		FreeWaitEventSet(set);
		ResetLatch(MyLatch);
		drain_inbox();
		(void) raft_tick(node);
		process_ready();
		transport_progress(occurred, nocc);
		pfree(occurred);
	}
	/* let the last messages (TimeoutNow) leave */
	transport_progress(NULL, 0);
}

static bool
leave_requested(void)
{
	bool		r;

	LWLockAcquire(cluster_shared->lock, LW_SHARED);
	r = cluster_shared->leave_requested;
	LWLockRelease(cluster_shared->lock);
	return r;
}

/*
 * This node was removed from the cluster (distx._cluster_leave, called by
 * the node that removed it once the removal was committed): put the Raft
 * files aside (pg_distx -> pg_distx.removed.<time>, kept for inspection),
 * and stop for good.  The server is no member any more; adding it again
 * gives it a new id.
 */
static void
leave_cluster(void)
{
	char	   *dir = cluster_dir();
	char	   *aside = psprintf("%s.removed.%ld", dir, (long) time(NULL));
	int			fd;

	transport_shutdown();
	dxs_close(store);
	store = NULL;
	if (rename(dir, aside) < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("distx raft: could not rename \"%s\" to \"%s\": %m", dir, aside)));
	fd = open(DataDir, O_RDONLY);
	if (fd < 0 || fsync(fd) < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("distx raft: could not fsync the data directory: %m")));
	close(fd);
	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	cluster_shared->leave_requested = false;
	cluster_shared->has_identity = false;
	cluster_shared->cluster_id = 0;
	cluster_shared->node_id = 0;
	cluster_shared->node_name[0] = '\0';
	cluster_shared->nmembers = 0;
	cluster_shared->npeers = 0;
	LWLockRelease(cluster_shared->lock);
	ereport(LOG,
			(errmsg("distx raft: this server was removed from cluster %llu; its Raft files are kept in \"%s\"",
					(unsigned long long) ident.cluster_id, aside)));
	/* exit code 0: the postmaster does not start this worker again */
	proc_exit(0);
}

/* ------------------------------------------------------------------
 * Main
 * ------------------------------------------------------------------
 */

void
distx_raft_worker_main(Datum main_arg)
{
	char		err[DXS_ERR_LEN];
	int			rc;
	TimestampTz next_tick;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	if (cluster_shared->worker_pid != 0 && cluster_shared->worker_pid != MyProcPid &&
		kill(cluster_shared->worker_pid, 0) == 0)
	{
		/* started twice (at startup and by a join): one is enough */
		cluster_shared->worker_launching = false;
		LWLockRelease(cluster_shared->lock);
		proc_exit(0);
	}
	cluster_shared->worker_pid = MyProcPid;
	cluster_shared->worker_latch = MyLatch;
	cluster_shared->worker_launching = false;
	cluster_shared->state = CW_STARTING;
	cluster_shared->last_error[0] = '\0';
	LWLockRelease(cluster_shared->lock);
	before_shmem_exit(worker_detach, (Datum) 0);

	rc = dxs_identity_read(cluster_dir(), &ident, err, sizeof(err));
	if (rc < 0)
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("distx raft: %s", err)));
	if (rc == 0)
	{
		/* not (or no longer) a member: nothing to run */
		proc_exit(0);
	}

	BackgroundWorkerInitializeConnection(distx_database, NULL, 0);
	pgstat_report_appname("distx raft");

	/*
	 * The tables are applied from the log, which is durable already, and
	 * the applied index is stored in the same transaction as the effects:
	 * a commit lost in a crash is applied again from the log.  So the apply
	 * transactions need not wait for their WAL flush.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_SUSET, PGC_S_OVERRIDE);

	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	cluster_shared->has_identity = true;
	cluster_shared->cluster_id = ident.cluster_id;
	cluster_shared->node_id = ident.node_id;
	strlcpy(cluster_shared->node_name, ident.name, DXS_NAME_LEN);
	LWLockRelease(cluster_shared->lock);

	pg_prng_seed(&prng, (uint64) MyProcPid ^ (uint64) GetCurrentTimestamp() ^
				 cluster_shared->instance_token);
	transport_init(ident.cluster_id, ident.node_id, ident.name);

	verify_identity();
	cluster_inbox_clear_spill();
	start_node();
	set_state(CW_RUNNING, NULL);

	iter_cxt = AllocSetContextCreate(TopMemoryContext, "distx raft loop",
									 ALLOCSET_DEFAULT_SIZES);

	/* the founder's first start: lead at once */
	process_ready();
	if (ident.founder && raft_get_role(node) != RAFT_LEADER &&
		raft_get_last_index(node) == 1)
		(void) raft_campaign(node);

	next_tick = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), tick_ms);
	while (!ShutdownRequestPending)
	{
		MemoryContext old = MemoryContextSwitchTo(iter_cxt);
		WaitEventSet *set;
		WaitEvent  *occurred;
		int			nev;
		int			nocc;
		long		timeout;
		TimestampTz now;
		int			ticks = 0;

		process_ready();
		publish_status();
		if (leave_requested())
			leave_cluster();

		now = GetCurrentTimestamp();
		timeout = Max(0, TimestampDifferenceMilliseconds(now, next_tick));
		nev = 2 + transport_max_events();
		occurred = palloc(sizeof(WaitEvent) * nev);
		set = CreateWaitEventSet(CurrentMemoryContext, nev);
		AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
		AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
		transport_add_events(set);
		nocc = WaitEventSetWait(set, timeout, occurred, nev, PG_WAIT_EXTENSION);
		FreeWaitEventSet(set);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* messages first: a heartbeat that arrived beats a due timeout */
		drain_inbox();

		now = GetCurrentTimestamp();
		while (now >= next_tick)
		{
			/* after a long stall, do not fire a whole election's worth */
			if (++ticks <= 3)
			{
				rc = raft_tick(node);
				if (rc == RAFT_ENOMEM || rc == RAFT_EFATAL)
					raft_failed("raft_tick", rc);
			}
			next_tick = TimestampTzPlusMilliseconds(next_tick, tick_ms);
		}

		take_proposals();
		process_ready();
		transport_progress(occurred, nocc);
		maybe_compact();

		MemoryContextSwitchTo(old);
		MemoryContextReset(iter_cxt);
	}

	transfer_before_shutdown();
	transport_shutdown();
	dxs_close(store);
	elog(LOG, "distx raft: shutting down");
	proc_exit(1);
}
