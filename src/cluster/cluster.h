/*-------------------------------------------------------------------------
 *
 * cluster.h
 *	  The Raft cluster of distx nodes: shared memory between the backends
 *	  and the Raft worker, GUCs, proposals, and the worker itself.
 *
 * One background worker per server ("distx raft", src/cluster/raft_worker.c)
 * runs the Raft core: it persists (storage.c), talks to its peers
 * (transport.c) and applies committed entries to the distx tables
 * (cluster_apply.c).  It exists only on a server that is a member of a
 * cluster (pg_distx/identity exists): a server that never ran
 * distx.cluster_init() or was never added has no such process and keeps
 * the single-node behaviour.
 *
 * The Raft worker is separate from the coordinator worker (worker.c, which
 * runs recovery and sagas) on purpose: a recovery pass or a saga step can
 * block on a slow node for seconds, and a Raft node that misses its ticks
 * and heartbeats starts needless elections or loses its leadership.
 *
 * Backends talk to the Raft worker through shared memory only:
 *	- received messages go into a bounded ring (distx._raft_deliver),
 *	- proposals go into slots and the backend waits on its latch for the
 *	  outcome (cluster_propose),
 *	- the worker publishes its status (distx.raft_status, distx.leader()).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_CLUSTER_H
#define DISTX_CLUSTER_H

#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/timestamp.h"

#include "cluster/storage.h"
#include "raft/raft.h"

#define CLUSTER_DIR				"pg_distx"
#define CLUSTER_MAX_MEMBERS		64	/* nodes ever known by name */
#define CLUSTER_PROPOSAL_SLOTS	32
#define CLUSTER_PROPOSAL_MAX	8192	/* bytes of one proposal */
#define CLUSTER_INBOX_BYTES		(2 * 1024 * 1024)
#define CLUSTER_ERR_LEN			256

/* kinds of proposals a backend can make */
typedef enum ClusterProposalKind
{
	PROPOSAL_ENTRY = 1,			/* a NORMAL entry (cluster_apply.h format) */
	PROPOSAL_CONFIG_ADD = 2,	/* add voter id */
	PROPOSAL_CONFIG_REMOVE = 3	/* remove voter id */
} ClusterProposalKind;

typedef enum ClusterSlotState
{
	SLOT_FREE = 0,
	SLOT_SUBMITTED,				/* waiting for the worker */
	SLOT_PROPOSED,				/* in the log at (index, term), not applied */
	SLOT_DONE					/* outcome in rc / result / errmsg */
} ClusterSlotState;

/* outcomes of a proposal */
#define PROPOSAL_OK				0
#define PROPOSAL_NOT_LEADER		1
#define PROPOSAL_LOST			2	/* overwritten by another leader's entry */
#define PROPOSAL_FAILED			3	/* refused (errmsg says why) */

typedef struct ClusterProposal
{
	ClusterSlotState state;
	int			kind;
	pid_t		pid;			/* the waiting backend */
	Latch	   *latch;
	uint64		arg;			/* voter id for config changes */
	uint32		len;
	uint64		index;			/* where it went */
	uint64		term;
	int			rc;
	int64		result;			/* what applying it returned */
	char		errmsg[CLUSTER_ERR_LEN];
	char		data[CLUSTER_PROPOSAL_MAX];
} ClusterProposal;

typedef struct ClusterMember
{
	uint64		id;
	uint64		system_id;
	char		name[DXS_NAME_LEN];
} ClusterMember;

/* per peer, for the status view */
typedef struct ClusterPeerInfo
{
	uint64		id;
	bool		connected;
	uint64		sent;			/* messages handed to libpq */
	uint64		dropped;		/* messages dropped (queue full, no link) */
	TimestampTz last_heard;		/* a message from it last arrived (0: never) */
	char		last_error[CLUSTER_ERR_LEN];
} ClusterPeerInfo;

typedef enum ClusterWorkerState
{
	CW_NONE = 0,				/* no Raft worker */
	CW_STARTING,				/* checking identity, opening storage */
	CW_REFUSED,					/* identity check failed; see last_error */
	CW_RUNNING
} ClusterWorkerState;

typedef struct ClusterShared
{
	LWLock	   *lock;			/* everything below except the inbox */
	LWLock	   *inbox_lock;		/* the inbox ring */

	uint64		instance_token; /* random, per postmaster start */

	/* the Raft worker */
	pid_t		worker_pid;
	Latch	   *worker_latch;
	bool		worker_launching;	/* a dynamic worker was registered */
	bool		leave_requested;	/* removed from the cluster: stop, and
									 * put the identity aside */
	ClusterWorkerState state;
	char		last_error[CLUSTER_ERR_LEN];

	/* identity of this node (valid once state >= CW_STARTING) */
	bool		has_identity;
	uint64		cluster_id;
	uint64		node_id;
	char		node_name[DXS_NAME_LEN];

	/* status published by the worker */
	raft_status status;
	TimestampTz status_at;
	ConditionVariable applied_cv;	/* broadcast when applied advances */
	int			tick_ms;		/* the worker's tick */
	uint64		acting_term;	/* see cluster_acting_term() */
	uint64		applied;		/* applied index (of the tables) */
	uint64		own_decided;	/* the last index of a decision proposed
								 * by a session of this server */
	int			nmembers;
	ClusterMember members[CLUSTER_MAX_MEMBERS];
	int			npeers;
	ClusterPeerInfo peers[RAFT_MAX_VOTERS];
	uint64		inbox_dropped;

	ClusterProposal proposals[CLUSTER_PROPOSAL_SLOTS];

	/* inbox ring: records [u32 len][u64 from][name][msg] */
	uint32		inbox_head;		/* next byte to read */
	uint32		inbox_tail;		/* next byte to write */
	uint32		inbox_used;		/* bytes in use, wrap padding included */
	char		inbox[CLUSTER_INBOX_BYTES];
} ClusterShared;

extern ClusterShared *cluster_shared;

/* GUCs */
extern int	distx_raft_heartbeat_interval;
extern int	distx_raft_election_timeout;
extern int	distx_raft_proposal_timeout;
extern int	distx_raft_snapshot_threshold;

/* set up from distx.c */
extern void cluster_define_gucs(void);
extern Size cluster_shmem_size(void);
extern void cluster_shmem_request(void);
extern void cluster_shmem_init(void);
extern void cluster_register_worker_at_startup(void);

/* whether this server is a member of a cluster */
extern bool cluster_is_member(void);
extern bool cluster_is_voter(uint64 id);

/* the directory of the Raft files */
extern char *cluster_dir(void);

/* what became of a proposal */
typedef struct ProposalOutcome
{
	int			rc;				/* PROPOSAL_* */
	uint64		index;			/* where it went in the log */
	uint64		term;
	int64		result;			/* what applying it returned */
	uint64		leader;			/* PROPOSAL_NOT_LEADER: the leader, if known */
	char		errmsg[CLUSTER_ERR_LEN];
} ProposalOutcome;

/*
 * Propose through this node's Raft worker (it must lead) and wait until the
 * entry is applied here or fails.  Raises an error on timeout or interrupt.
 */
extern void cluster_propose(int kind, uint64 arg, const void *data, uint32 len,
							ProposalOutcome *out);

/*
 * Propose from any member: through the local worker when this node leads,
 * else on the leader over libpq (distx._raft_propose), retried when the
 * leadership moves.  With apply_here, then wait until this node has applied
 * the entry, so that its effect is visible here; without, return once the
 * leader has applied it (the outcome is known and the entry committed).
 * Raises an error when no leader commits it within
 * distx.raft_proposal_timeout.
 */
extern void cluster_propose_anywhere(int kind, uint64 arg, const void *data,
									 uint32 len, bool apply_here,
									 ProposalOutcome *out);

/*
 * The decision of a distributed transaction in the replicated state
 * (cluster_apply.h, ENTRY_DECISION): proposed from any member, committed
 * (and applied here too with apply_here) before it returns.  Returns the
 * outcome that won (DECISION_COMMIT or DECISION_ABORT): the first decision
 * for (origin, xid) wins.
 */
extern int	cluster_decide(const char *origin, uint64 xid, bool commit,
						   bool conditional, const Oid *oids,
						   const char *const *names, int n,
						   bool apply_here);
/* drop decisions, as few entries as fit them, from any member */
extern void cluster_forget_decisions(int n, const char *const *origins,
									 const uint64 *xids);

/* wait until this node has applied index (error at the deadline) */
extern void cluster_wait_applied(uint64 index, TimestampTz deadline);

/*
 * The term in which this node acts as the cluster's coordinator (it leads,
 * has applied everything committed before its term, has heard from a
 * majority within the election timeout, and its Raft worker is not
 * stalled), or 0.  Recovery and saga execution run only while this is
 * non-zero, and carry the term.
 */
extern uint64 cluster_acting_term(void);

/* whether distx server "name" leads to this very server */
extern bool cluster_name_is_self(const char *name);

/* the worker: raft_worker.c */
extern PGDLLEXPORT void distx_raft_worker_main(Datum main_arg);

/* inbox, read by the worker: one message per call, false when empty */
typedef struct InboxMessage
{
	uint64		from;
	char		from_name[DXS_NAME_LEN];
	uint32		len;
	uint8	   *buf;			/* palloc'ed */
} InboxMessage;

extern bool cluster_inbox_pop(InboxMessage *m);
extern void cluster_inbox_clear_spill(void);

#endif							/* DISTX_CLUSTER_H */
