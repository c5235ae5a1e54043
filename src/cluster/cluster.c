/*-------------------------------------------------------------------------
 *
 * cluster.c
 *	  The cluster's SQL surface and the shared memory between backends and
 *	  the Raft worker (see cluster.h).
 *
 * Membership.  Every node declares every member, itself included, as a
 * distx server under the same name (the same CREATE SERVER statements run
 * on every node): names are the cluster-wide addresses of nodes, and a
 * node finds itself by connecting to its own name and recognizing the
 * random token of its running postmaster (distx._cluster_whoami).  That
 * check is also what refuses a copied data directory: the copy carries
 * the same identity file, but its own name leads to the original server,
 * whose token differs, so the copy's Raft worker never takes part.
 *
 * distx.cluster_init() makes this server node 1 of a new cluster (a
 * single voter); distx.cluster_add_node(server) on the leader (forwarded
 * there from any other node) gives the server a node id (an entry of the
 * replicated state, ENTRY_NODE_ADD), writes its identity over libpq
 * (distx._cluster_join on that server, which starts its Raft worker) and
 * then proposes the configuration change.  One change at a time: the Raft
 * core refuses a second one while the first is not committed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "libpq/libpq-be-fe-helpers.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/xid8.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "distx.h"
#include "cluster/cluster.h"
#include "cluster/cluster_apply.h"
#include "cluster/saga_state.h"
#include "remote/connection.h"
#include "remote/node.h"
#include "txn/recovery.h"
#include "txn/txn.h"

PG_FUNCTION_INFO_V1(distx_cluster_init);
PG_FUNCTION_INFO_V1(distx_cluster_add_node);
PG_FUNCTION_INFO_V1(distx_cluster_remove_node);
PG_FUNCTION_INFO_V1(distx_cluster_join);
PG_FUNCTION_INFO_V1(distx_cluster_whoami);
PG_FUNCTION_INFO_V1(distx_raft_deliver);
PG_FUNCTION_INFO_V1(distx_raft_status);
PG_FUNCTION_INFO_V1(distx_leader);
PG_FUNCTION_INFO_V1(distx_raft_propose);
PG_FUNCTION_INFO_V1(distx_cluster_decide);
PG_FUNCTION_INFO_V1(distx_cluster_forget);
PG_FUNCTION_INFO_V1(distx_cluster_leave);
PG_FUNCTION_INFO_V1(distx_cluster_quiesce);

ClusterShared *cluster_shared = NULL;

int			distx_raft_heartbeat_interval = 100;
int			distx_raft_election_timeout = 1000;
int			distx_raft_proposal_timeout = 10000;
int			distx_raft_snapshot_threshold = 10000;

void
cluster_define_gucs(void)
{
	GucContext	ctx = process_shared_preload_libraries_in_progress ?
		PGC_POSTMASTER : PGC_SIGHUP;

	DefineCustomIntVariable("distx.raft_heartbeat_interval",
							"Interval between the Raft leader's heartbeats.",
							"Also the Raft worker's tick, unless the election timeout asks for a finer one.",
							&distx_raft_heartbeat_interval,
							100, 5, 10000,
							ctx, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("distx.raft_election_timeout",
							"Time a Raft follower waits without hearing from a leader before it stands for election.",
							"Each election waits a random time between this and twice this.",
							&distx_raft_election_timeout,
							1000, 50, 600000,
							ctx, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("distx.raft_proposal_timeout",
							"How long a change of the replicated state waits to be committed.",
							NULL,
							&distx_raft_proposal_timeout,
							10000, 100, 3600000,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("distx.raft_snapshot_threshold",
							"Number of Raft log entries after which the log is compacted into a snapshot.",
							NULL,
							&distx_raft_snapshot_threshold,
							10000, 2, INT_MAX,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

/* ------------------------------------------------------------------
 * Shared memory and the worker's registration
 * ------------------------------------------------------------------
 */

Size
cluster_shmem_size(void)
{
	return MAXALIGN(sizeof(ClusterShared));
}

void
cluster_shmem_request(void)
{
	RequestNamedLWLockTranche("distx cluster", 2);
}

void
cluster_shmem_init(void)
{
	bool		found;

	cluster_shared = ShmemInitStruct("distx cluster", sizeof(ClusterShared), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("distx cluster");

		memset(cluster_shared, 0, sizeof(ClusterShared));
		ConditionVariableInit(&cluster_shared->applied_cv);
		cluster_shared->lock = &locks[0].lock;
		cluster_shared->inbox_lock = &locks[1].lock;
		if (!pg_strong_random(&cluster_shared->instance_token, sizeof(uint64)))
			cluster_shared->instance_token = (uint64) GetCurrentTimestamp() ^ ((uint64) MyProcPid << 32);
		cluster_shared->instance_token &= UINT64CONST(0x7FFFFFFFFFFFFFFF);
	}
}

char *
cluster_dir(void)
{
	return psprintf("%s/%s", DataDir, CLUSTER_DIR);
}

static void
fill_worker(BackgroundWorker *worker)
{
	memset(worker, 0, sizeof(BackgroundWorker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = 5;
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "distx");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "distx_raft_worker_main");
	snprintf(worker->bgw_name, BGW_MAXLEN, "distx raft");
	snprintf(worker->bgw_type, BGW_MAXLEN, "distx raft");
}

/*
 * At postmaster start (from _PG_init, in the data directory): a member of
 * a cluster gets its Raft worker; any other server gets none.
 */
void
cluster_register_worker_at_startup(void)
{
	struct stat st;
	BackgroundWorker worker;

	if (stat(CLUSTER_DIR "/identity", &st) != 0)
		return;
	fill_worker(&worker);
	RegisterBackgroundWorker(&worker);
}

/* start the Raft worker now (after cluster_init or a join) unless it runs */
static void
launch_worker(void)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;
	bool		running;

	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	running = cluster_shared->worker_pid != 0 || cluster_shared->worker_launching;
	cluster_shared->worker_launching = true;
	LWLockRelease(cluster_shared->lock);
	if (running)
		return;

	fill_worker(&worker);
	worker.bgw_notify_pid = 0;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
		cluster_shared->worker_launching = false;
		LWLockRelease(cluster_shared->lock);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start the distx Raft worker"),
				 errhint("Raise max_worker_processes; the worker also starts at the next server start.")));
	}
}

uint64
cluster_acting_term(void)
{
	uint64		term = 0;

	if (cluster_shared == NULL)
		return 0;
	LWLockAcquire(cluster_shared->lock, LW_SHARED);
	if (cluster_shared->worker_pid != 0 && cluster_shared->state == CW_RUNNING &&
		cluster_shared->acting_term != 0 &&
		!TimestampDifferenceExceeds(cluster_shared->status_at, GetCurrentTimestamp(),
									Max(distx_raft_election_timeout / 2, 2 * cluster_shared->tick_ms)))
		term = cluster_shared->acting_term;
	LWLockRelease(cluster_shared->lock);
	return term;
}

bool
cluster_is_member(void)
{
	struct stat st;
	char	   *path = psprintf("%s/%s/identity", DataDir, CLUSTER_DIR);
	bool		r = stat(path, &st) == 0;

	pfree(path);
	return r;
}

/* ------------------------------------------------------------------
 * Inbox
 * ------------------------------------------------------------------
 */

#define INBOX_HDR	(4 + 8 + DXS_NAME_LEN)
#define INBOX_WRAP	0xFFFFFFFFu

/*
 * A message too large for the inbox (a snapshot of a large state) goes
 * through a file: the receiving backend writes it to INBOX_SPILL_DIR and
 * pushes a record marked INBOX_SPILLED that holds the file's name; the
 * worker reads the file and removes it.  No fsync: a crash empties the
 * inbox anyway, and the worker clears the directory when it starts.
 */
#define INBOX_SPILLED		0x80000000u
#define INBOX_INLINE_MAX	(CLUSTER_INBOX_BYTES / 4)
#define INBOX_MESSAGE_MAX	(256 * 1024 * 1024)
#define INBOX_SPILL_DIR		"pg_distx/inbox"

static uint8 *inbox_read_spill(const char *path, uint32 *len);
static void quiesce_here(int hold_ms, uint64 min_applied);
static void cluster_init_here(const char *name, dxs_identity *idp);

/*
 * Push one message; false when it does not fit (it is dropped: Raft
 * resends).  The free space is [tail, end) + [0, head) when tail >= head,
 * else [tail, head); a record that does not fit before the end starts
 * again at 0, and the rest of the end is padding (marked INBOX_WRAP).
 */
static bool
inbox_push(uint64 from, const char *from_name, const uint8 *msg, uint32 len,
		   bool spilled)
{
	ClusterShared *cs = cluster_shared;
	uint32		need = MAXALIGN(INBOX_HDR + len);
	uint32		at = UINT32_MAX;
	uint32		word = spilled ? (len | INBOX_SPILLED) : len;

	LWLockAcquire(cs->inbox_lock, LW_EXCLUSIVE);
	if (cs->inbox_used == 0)
		cs->inbox_head = cs->inbox_tail = 0;
	if (cs->inbox_used == 0 || cs->inbox_tail > cs->inbox_head)
	{
		uint32		at_end = CLUSTER_INBOX_BYTES - cs->inbox_tail;

		if (at_end >= need)
			at = cs->inbox_tail;
		else if (cs->inbox_head >= need)
		{
			uint32		w = INBOX_WRAP;

			memcpy(cs->inbox + cs->inbox_tail, &w, 4);
			cs->inbox_used += at_end;
			at = 0;
		}
	}
	else if (cs->inbox_tail < cs->inbox_head &&
			 cs->inbox_head - cs->inbox_tail >= need)
		at = cs->inbox_tail;

	if (at != UINT32_MAX)
	{
		char	   *p = cs->inbox + at;

		memcpy(p, &word, 4);
		memcpy(p + 4, &from, 8);
		memset(p + 12, 0, DXS_NAME_LEN);
		strlcpy(p + 12, from_name, DXS_NAME_LEN);
		memcpy(p + INBOX_HDR, msg, len);
		cs->inbox_tail = (at + need) % CLUSTER_INBOX_BYTES;
		cs->inbox_used += need;
	}
	else
		cs->inbox_dropped++;
	LWLockRelease(cs->inbox_lock);
	return at != UINT32_MAX;
}

bool
cluster_inbox_pop(InboxMessage *m)
{
	ClusterShared *cs = cluster_shared;
	bool		found = false;
	bool		spilled = false;

	LWLockAcquire(cs->inbox_lock, LW_EXCLUSIVE);
	while (cs->inbox_used > 0)
	{
		uint32		head = cs->inbox_head;
		uint32		at_end = CLUSTER_INBOX_BYTES - head;
		uint32		len;
		char	   *p;

		p = cs->inbox + head;
		memcpy(&len, p, 4);
		if (len == INBOX_WRAP)
		{
			cs->inbox_used -= at_end;
			cs->inbox_head = 0;
			continue;
		}
		spilled = (len & INBOX_SPILLED) != 0;
		len &= ~INBOX_SPILLED;
		memcpy(&m->from, p + 4, 8);
		memcpy(m->from_name, p + 12, DXS_NAME_LEN);
		m->from_name[DXS_NAME_LEN - 1] = '\0';
		m->len = len;
		m->buf = palloc(len + 1);
		memcpy(m->buf, p + INBOX_HDR, len);
		cs->inbox_head = (head + MAXALIGN(INBOX_HDR + len)) % CLUSTER_INBOX_BYTES;
		cs->inbox_used -= MAXALIGN(INBOX_HDR + len);
		found = true;
		break;
	}
	if (cs->inbox_used == 0)
		cs->inbox_head = cs->inbox_tail = 0;
	LWLockRelease(cs->inbox_lock);

	if (found && spilled)
	{
		char	   *path = (char *) m->buf;

		path[m->len] = '\0';
		m->buf = inbox_read_spill(path, &m->len);
		pfree(path);
		if (m->buf == NULL)
			return cluster_inbox_pop(m);	/* lost: Raft sends it again */
	}
	return found;
}

/* write a large message to a file of its own; returns the file's name */
static char *
inbox_write_spill(const uint8 *msg, uint32 len)
{
	static uint32 counter = 0;
	char	   *path;
	int			fd;

	if (MakePGDirectory(INBOX_SPILL_DIR) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", INBOX_SPILL_DIR)));
	path = psprintf(INBOX_SPILL_DIR "/%d.%u", MyProcPid, counter++);
	fd = OpenTransientFile(path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", path)));
	errno = 0;
	if (write(fd, msg, len) != (ssize_t) len)
	{
		int			save_errno = errno ? errno : ENOSPC;

		CloseTransientFile(fd);
		unlink(path);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", path)));
	}
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", path)));
	return path;
}

/*
 * Read a spilled message and remove its file.  A failure is logged and the
 * message is lost (as when the inbox is full): Raft sends it again.
 */
static uint8 *
inbox_read_spill(const char *path, uint32 *len)
{
	struct stat st;
	uint8	   *buf = NULL;
	int			fd;

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size <= INBOX_MESSAGE_MAX)
	{
		buf = palloc(st.st_size > 0 ? st.st_size : 1);
		if (read(fd, buf, st.st_size) != st.st_size)
		{
			pfree(buf);
			buf = NULL;
		}
		else
			*len = (uint32) st.st_size;
	}
	if (buf == NULL)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("distx raft: could not read the large message in \"%s\": %m", path)));
	if (fd >= 0)
		CloseTransientFile(fd);
	if (unlink(path) != 0 && errno != ENOENT)
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", path)));
	return buf;
}

/* at the worker's start: spilled messages of an earlier run are stale */
void
cluster_inbox_clear_spill(void)
{
	rmtree(INBOX_SPILL_DIR, true);
}

/* ------------------------------------------------------------------
 * Proposals
 * ------------------------------------------------------------------
 */

static void
wake_worker(void)
{
	Latch	   *latch;

	LWLockAcquire(cluster_shared->lock, LW_SHARED);
	latch = cluster_shared->worker_latch;
	LWLockRelease(cluster_shared->lock);
	if (latch)
		SetLatch(latch);
}

void
cluster_propose(int kind, uint64 arg, const void *data, uint32 len,
				ProposalOutcome *out)
{
	ClusterShared *cs = cluster_shared;
	ClusterProposal *volatile slot = NULL;
	volatile int slotno = -1;
	TimestampTz deadline;
	int			i;

	memset(out, 0, sizeof(ProposalOutcome));
	out->rc = PROPOSAL_FAILED;
	if (len > CLUSTER_PROPOSAL_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("change of the replicated state too large (%u bytes, at most %d)",
						len, CLUSTER_PROPOSAL_MAX)));

	LWLockAcquire(cs->lock, LW_EXCLUSIVE);
	for (i = 0; i < CLUSTER_PROPOSAL_SLOTS; i++)
		if (cs->proposals[i].state == SLOT_FREE)
		{
			slotno = i;
			slot = &cs->proposals[i];
			slot->state = SLOT_SUBMITTED;
			slot->kind = kind;
			slot->pid = MyProcPid;
			slot->latch = MyLatch;
			slot->arg = arg;
			slot->len = len;
			if (len > 0)
				memcpy(slot->data, data, len);
			slot->index = slot->term = 0;
			slot->rc = 0;
			slot->result = 0;
			slot->errmsg[0] = '\0';
			break;
		}
	LWLockRelease(cs->lock);
	if (slot == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("too many changes of the replicated state waiting at once"),
				 errhint("Try again.")));

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), distx_raft_proposal_timeout);
	PG_TRY();
	{
		wake_worker();
		for (;;)
		{
			long		left;
			bool		done;

			LWLockAcquire(cs->lock, LW_EXCLUSIVE);
			done = slot->state == SLOT_DONE;
			if (done)
			{
				out->rc = slot->rc;
				out->index = slot->index;
				out->term = slot->term;
				out->result = slot->result;
				if (slot->rc == PROPOSAL_NOT_LEADER)
					out->leader = (uint64) slot->result;
				strlcpy(out->errmsg, slot->errmsg, CLUSTER_ERR_LEN);
			}
			LWLockRelease(cs->lock);
			if (done)
				break;
			left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
			if (left <= 0)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("timed out waiting for the distx cluster to commit a change"),
						 errdetail("No change is committed without a leader and a majority of the nodes."),
						 errhint("See distx.raft_status; the wait is set by distx.raft_proposal_timeout.")));
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 Min(left, 1000), PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		LWLockAcquire(cs->lock, LW_EXCLUSIVE);
		cs->proposals[slotno].state = SLOT_FREE;
		cs->proposals[slotno].latch = NULL;
		LWLockRelease(cs->lock);
	}
	PG_END_TRY();
}

/* ------------------------------------------------------------------
 * Checks shared by the SQL functions
 * ------------------------------------------------------------------
 */

/* a new membership: indexes of an earlier cluster's log mean nothing */
static void
reset_own_decided(void)
{
	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	cluster_shared->own_decided = 0;
	LWLockRelease(cluster_shared->lock);
}

static void
require_admin(const char *what)
{
	distx_require_preload(what);
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may change the distx cluster")));
}

static void
require_worker_database(void)
{
	char	   *db = get_database_name(MyDatabaseId);

	if (db == NULL || strcmp(db, distx_database) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the distx cluster is managed from database \"%s\"", distx_database),
				 errdetail("The Raft worker keeps the replicated state in the database named by distx.database.")));
}

static void
require_member(void)
{
	if (!cluster_is_member())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server is not a member of a distx cluster"),
				 errhint("Run distx.cluster_init() on the first node, then distx.cluster_add_node() for the others.")));
}

/* a snapshot of the worker's status */
typedef struct StatusCopy
{
	ClusterWorkerState state;
	bool		has_identity;
	uint64		cluster_id;
	uint64		node_id;
	char		node_name[DXS_NAME_LEN];
	raft_status st;
	uint64		applied;
	int			nmembers;
	ClusterMember members[CLUSTER_MAX_MEMBERS];
	int			npeers;
	ClusterPeerInfo peers[RAFT_MAX_VOTERS];
	char		last_error[CLUSTER_ERR_LEN];
	int			tick_ms;
} StatusCopy;

static StatusCopy *
status_copy(void)
{
	StatusCopy *c = palloc0(sizeof(StatusCopy));
	ClusterShared *cs = cluster_shared;

	LWLockAcquire(cs->lock, LW_SHARED);
	c->state = cs->worker_pid != 0 ? cs->state : CW_NONE;
	c->has_identity = cs->has_identity;
	c->cluster_id = cs->cluster_id;
	c->node_id = cs->node_id;
	memcpy(c->node_name, cs->node_name, DXS_NAME_LEN);
	c->st = cs->status;
	c->applied = cs->applied;
	c->nmembers = cs->nmembers;
	memcpy(c->members, cs->members, sizeof(ClusterMember) * cs->nmembers);
	c->npeers = cs->npeers;
	memcpy(c->peers, cs->peers, sizeof(ClusterPeerInfo) * cs->npeers);
	memcpy(c->last_error, cs->last_error, CLUSTER_ERR_LEN);
	c->tick_ms = cs->tick_ms;
	LWLockRelease(cs->lock);
	return c;
}

static const char *
member_name(StatusCopy *c, uint64 id)
{
	int			i;

	if (id == 0)
		return NULL;
	for (i = 0; i < c->nmembers; i++)
		if (c->members[i].id == id)
			return c->members[i].name;
	if (id == c->node_id && c->node_name[0])
		return c->node_name;
	return NULL;
}

/*
 * Wait (up to the proposal timeout) until this node knows a leader;
 * returns a copy of the status then.
 */
static StatusCopy *
wait_for_leader(TimestampTz deadline)
{
	for (;;)
	{
		StatusCopy *c = status_copy();

		if (c->state == CW_RUNNING && c->st.leader != RAFT_NONE &&
			member_name(c, c->st.leader) != NULL)
			return c;
		if (c->state == CW_REFUSED)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the distx Raft worker of this server refuses to run"),
					 errdetail_internal("%s", c->last_error)));
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("the distx cluster has no leader"),
					 errdetail("A leader needs a majority of the nodes."),
					 errhint("See distx.raft_status.")));
		pfree(c);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* run a one-row query on a connection; the value of its first column */
static char *
remote_value(PGconn *conn, const char *servername, const char *sql,
			 int nparams, const char *const *values)
{
	PGresult   *res;
	char	   *v = NULL;

	res = libpqsrv_exec_params(conn, sql, nparams, NULL, values, NULL, NULL, 0,
							   PG_WAIT_EXTENSION);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		int			code = state ? MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])
			: ERRCODE_CONNECTION_FAILURE;
		char	   *msg = primary ? pstrdup(primary) : pchomp(PQerrorMessage(conn));
		char	   *d = detail ? pstrdup(detail) : NULL;
		char	   *h = hint ? pstrdup(hint) : NULL;

		PQclear(res);
		ereport(ERROR,
				(errcode(code),
				 errmsg("distx node \"%s\": %s", servername, msg),
				 d ? errdetail_internal("%s", d) : 0,
				 h ? errhint("%s", h) : 0));
	}
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		v = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return v;
}

/*
 * How long a node's two-phase commits stay paused for a membership change
 * at most (distx._cluster_quiesce), should the change never say it is
 * done: its waits and proposals each take at most the proposal timeout.
 */
static int
quiesce_hold_ms(void)
{
	return 4 * distx_raft_proposal_timeout;
}

/*
 * Pause a node's two-phase commits and wait for its own (see
 * distx_cluster_quiesce); a member also until it has applied the log up to
 * min_applied.
 */
static void
remote_quiesce(PGconn *conn, const char *servername, uint64 min_applied)
{
	char		hold[16];
	char		applied[32];
	const char *values[2];

	snprintf(hold, sizeof(hold), "%d", quiesce_hold_ms());
	snprintf(applied, sizeof(applied), INT64_FORMAT, (int64) min_applied);
	values[0] = hold;
	values[1] = applied;
	(void) remote_value(conn, servername, "SELECT distx._cluster_quiesce($1, $2)::text",
						2, values);
}

/*
 * Resume them; never raises an error (the pause ends by itself anyway), so
 * it also serves while an error is being handled, quietly then.  A short
 * statement that does not wait on the node, hence plain PQexec.
 */
static void
remote_unquiesce(PGconn *conn, const char *servername, bool quiet)
{
	PGresult   *res = PQexec(conn, "SELECT distx._cluster_quiesce(0)");

	if (PQresultStatus(res) != PGRES_TUPLES_OK && !quiet)
		ereport(WARNING,
				(errmsg("could not resume distributed transactions on distx node \"%s\": %s",
						servername, pchomp(PQresultErrorMessage(res))),
				 errhint("They resume by themselves within %d ms.", quiesce_hold_ms())));
	PQclear(res);
}

typedef struct WhoAmI
{
	uint64		cluster_id;
	uint64		node_id;
	uint64		token;
	uint64		system_id;
} WhoAmI;

static void
remote_whoami(PGconn *conn, const char *servername, WhoAmI *w)
{
	char	   *v = remote_value(conn, servername,
								 "SELECT concat_ws(' ', coalesce(cluster_id, 0), coalesce(node_id, 0), token, system_id) "
								 "FROM distx._cluster_whoami()",
								 0, NULL);
	long long	a,
				b,
				c,
				d;

	if (v == NULL || sscanf(v, "%lld %lld %lld %lld", &a, &b, &c, &d) != 4)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("distx node \"%s\" gave an unexpected answer to distx._cluster_whoami()",
						servername)));
	w->cluster_id = (uint64) a;
	w->node_id = (uint64) b;
	w->token = (uint64) c;
	w->system_id = (uint64) d;
}

/*
 * Whether server "name" leads to this very server (same postmaster
 * token).  Connection errors are raised.
 */
bool
cluster_name_is_self(const char *name)
{
	DistxNode  *node = node_lookup(name, false);
	PGconn	   *volatile conn = conn_connect(node);
	WhoAmI		w;

	PG_TRY();
	{
		remote_whoami(conn, name, &w);
	}
	PG_FINALLY();
	{
		conn_close(conn);
	}
	PG_END_TRY();
	return w.token == cluster_shared->instance_token;
}

/* ------------------------------------------------------------------
 * SQL functions
 * ------------------------------------------------------------------
 */

/* distx._cluster_whoami(): who answers on this server */
Datum
distx_cluster_whoami(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	dxs_identity id;
	char		err[DXS_ERR_LEN];
	char	   *dir;
	int			rc;

	distx_require_preload("distx._cluster_whoami()");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	dir = cluster_dir();
	rc = dxs_identity_read(dir, &id, err, sizeof(err));
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s", err)));
	if (rc > 0)
	{
		values[0] = Int64GetDatum((int64) id.cluster_id);
		values[1] = Int64GetDatum((int64) id.node_id);
	}
	else
		nulls[0] = nulls[1] = true;
	values[2] = Int64GetDatum((int64) cluster_shared->instance_token);
	values[3] = Int64GetDatum((int64) GetSystemIdentifier());
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* the name under which the other nodes know this server */
static char *
find_own_name(void)
{
	List	   *servers = node_list_all();
	ListCell   *lc;
	StringInfoData tried;

	initStringInfo(&tried);
	foreach(lc, servers)
	{
		ForeignServer *srv = GetForeignServer(lfirst_oid(lc));
		MemoryContext old = CurrentMemoryContext;
		volatile bool self = false;

		PG_TRY();
		{
			self = cluster_name_is_self(srv->servername);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(old);
			FlushErrorState();
		}
		PG_END_TRY();
		if (self)
			return pstrdup(srv->servername);
		appendStringInfo(&tried, "%s%s", tried.len ? ", " : "", srv->servername);
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("none of the distx servers of this database leads to this server"),
			 errdetail("Tried: %s.", tried.len ? tried.data : "(no distx servers)"),
			 errhint("Declare every member, this one included, as a distx server under the same name on every node, or pass the name: distx.cluster_init('name').")));
	return NULL;
}

Datum
distx_cluster_init(PG_FUNCTION_ARGS)
{
	char	   *name;
	dxs_identity id;

	require_admin("distx.cluster_init()");
	require_worker_database();
	if (cluster_is_member())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server is already a member of a distx cluster"),
				 errhint("See distx.raft_status.")));
	saga_state_check_unshared(false);

	if (PG_ARGISNULL(0))
		name = find_own_name();
	else
	{
		name = NameStr(*PG_GETARG_NAME(0));
		if (!cluster_name_is_self(name))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("distx server \"%s\" does not lead to this server", name),
					 errhint("The other nodes reach this one through the server of that name.")));
	}
	if (strlen(name) >= DXS_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("node name \"%s\" is too long", name)));

	/*
	 * Like a server that joins, the founder must have none of its own
	 * distributed transactions in doubt: from now on the cluster's
	 * decisions govern the gids of its origin.
	 */
	quiesce_here(quiesce_hold_ms(), 0);
	PG_TRY();
	{
		cluster_init_here(name, &id);
	}
	PG_FINALLY();
	{
		txn_quiesce_end();
	}
	PG_END_TRY();
	PG_RETURN_INT64((int64) id.cluster_id);
}

/* the rest of cluster_init(), while this server's 2PC is paused */
static void
cluster_init_here(const char *name, dxs_identity *idp)
{
	dxs_identity id;
	char		err[DXS_ERR_LEN];
	uint8	   *entry;
	uint32		len;
	ProposalOutcome out;

	memset(&id, 0, sizeof(id));
	if (!pg_strong_random(&id.cluster_id, sizeof(id.cluster_id)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random cluster id")));
	reset_own_decided();
	id.cluster_id &= UINT64CONST(0x7FFFFFFFFFFFFFFF);
	if (id.cluster_id == 0)
		id.cluster_id = 1;
	id.node_id = 1;
	id.system_id = GetSystemIdentifier();
	id.founder = true;
	strlcpy(id.name, name, DXS_NAME_LEN);
	if (dxs_identity_write(cluster_dir(), &id, err, sizeof(err)) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write the distx cluster identity: %s", err)));
	ereport(LOG,
			(errmsg("distx cluster %llu initialized; this server is node 1 (\"%s\")",
					(unsigned long long) id.cluster_id, name)));
	launch_worker();

	/* this node's name in the replicated state */
	entry = cluster_encode_node_add(name, id.system_id, false, &len);
	cluster_propose(PROPOSAL_ENTRY, 0, entry, len, &out);
	if (out.rc != PROPOSAL_OK || out.result != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not record this node in the new cluster (outcome %d, id " INT64_FORMAT ")",
						out.rc, out.result)));
	*idp = id;
}

/* ------------------------------------------------------------------
 * Proposals from any member
 * ------------------------------------------------------------------
 */

void
cluster_wait_applied(uint64 index, TimestampTz deadline)
{
	ConditionVariablePrepareToSleep(&cluster_shared->applied_cv);
	for (;;)
	{
		uint64		applied;
		long		left;

		LWLockAcquire(cluster_shared->lock, LW_SHARED);
		applied = cluster_shared->applied;
		LWLockRelease(cluster_shared->lock);
		if (applied >= index)
			break;
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		if (left <= 0)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("timed out waiting for this node to apply a committed change (index %llu, applied %llu)",
							(unsigned long long) index, (unsigned long long) applied),
					 errhint("See distx.raft_status.")));
		}
		(void) ConditionVariableTimedSleep(&cluster_shared->applied_cv, Min(left, 1000),
										   PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * A connection of this backend to the leader, kept between proposals (a
 * 2PC commit on a follower proposes once per transaction).
 */
static PGconn *leader_conn = NULL;
static char leader_conn_name[DXS_NAME_LEN];

static void
leader_conn_drop(void)
{
	if (leader_conn != NULL)
		conn_close(leader_conn);
	leader_conn = NULL;
	leader_conn_name[0] = '\0';
}

static PGconn *
leader_conn_get(const char *name)
{
	if (leader_conn != NULL &&
		(strcmp(leader_conn_name, name) != 0 || PQstatus(leader_conn) != CONNECTION_OK))
		leader_conn_drop();
	if (leader_conn == NULL)
	{
		DistxNode  *node = node_lookup(name, false);

		leader_conn = conn_connect(node);
		strlcpy(leader_conn_name, name, sizeof(leader_conn_name));
	}
	return leader_conn;
}

/* distx._raft_propose on the leader; false if the connection failed */
static bool
remote_propose(const char *leader, uint64 cluster_id, int kind, uint64 arg,
			   const void *data, uint32 len, ProposalOutcome *out)
{
	PGconn	   *conn = leader_conn_get(leader);
	char		a[32],
				b[32],
				k[16];
	const char *values[4];
	int			lengths[4] = {0, 0, 0, (int) len};
	int			formats[4] = {0, 0, 0, 1};
	Oid			types[4] = {INT8OID, INT4OID, INT8OID, BYTEAOID};
	PGresult   *res;

	snprintf(a, sizeof(a), INT64_FORMAT, (int64) cluster_id);
	snprintf(k, sizeof(k), "%d", kind);
	snprintf(b, sizeof(b), INT64_FORMAT, (int64) arg);
	values[0] = a;
	values[1] = k;
	values[2] = b;
	values[3] = data ? (const char *) data : "";

	if (!PQsendQueryParams(conn,
						   "SELECT rc, idx, term, result, leader, errmsg "
						   "FROM distx._raft_propose($1, $2, $3, $4)",
						   4, types, values, lengths, formats, 0))
	{
		leader_conn_drop();
		return false;
	}
	res = libpqsrv_get_result_last(conn, PG_WAIT_EXTENSION);
	if (res == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		PQclear(res);
		leader_conn_drop();
		return false;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
	{
		char	   *msg = pchomp(PQresultErrorMessage(res));
		char	   *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		int			code = state ? MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4])
			: ERRCODE_CONNECTION_FAILURE;

		PQclear(res);
		ereport(ERROR,
				(errcode(code),
				 errmsg("distx leader \"%s\": %s", leader, msg)));
	}
	memset(out, 0, sizeof(ProposalOutcome));
	out->rc = atoi(PQgetvalue(res, 0, 0));
	out->index = (uint64) strtoi64(PQgetvalue(res, 0, 1), NULL, 10);
	out->term = (uint64) strtoi64(PQgetvalue(res, 0, 2), NULL, 10);
	out->result = strtoi64(PQgetvalue(res, 0, 3), NULL, 10);
	out->leader = (uint64) strtoi64(PQgetvalue(res, 0, 4), NULL, 10);
	strlcpy(out->errmsg, PQgetvalue(res, 0, 5), CLUSTER_ERR_LEN);
	PQclear(res);
	return true;
}

void
cluster_propose_anywhere(int kind, uint64 arg, const void *data, uint32 len,
						 bool apply_here, ProposalOutcome *out)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   distx_raft_proposal_timeout);

	for (;;)
	{
		StatusCopy *c = wait_for_leader(deadline);

		if (c->st.leader == c->node_id)
		{
			cluster_propose(kind, arg, data, len, out);
			if (out->rc != PROPOSAL_NOT_LEADER)
				return;			/* applied here, or failed */
		}
		else
		{
			MemoryContext old = CurrentMemoryContext;
			volatile bool sent = false;
			const char *volatile leader = member_name(c, c->st.leader);

			PG_TRY();
			{
				sent = remote_propose(leader, c->cluster_id, kind, arg, data, len, out);
			}
			PG_CATCH();
			{
				/* cannot reach the leader: maybe it just died; try again */
				if (GetCurrentTimestamp() >= deadline)
					PG_RE_THROW();
				MemoryContextSwitchTo(old);
				FlushErrorState();
				leader_conn_drop();
			}
			PG_END_TRY();
			if (sent && out->rc == PROPOSAL_OK)
			{
				if (apply_here)
					cluster_wait_applied(out->index, deadline);
				return;
			}
			if (sent && out->rc != PROPOSAL_NOT_LEADER)
				return;
		}
		pfree(c);
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("timed out waiting for the distx cluster to commit a change"),
					 errdetail("The leadership kept moving."),
					 errhint("See distx.raft_status; the wait is set by distx.raft_proposal_timeout.")));
		/* the leadership moved: let this node learn where */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * distx._raft_propose(cluster_id, kind, arg, entry): a proposal from
 * another member, made here because this node leads.  The outcome is
 * returned, not raised, so the caller can follow the leadership.
 */
Datum
distx_raft_propose(PG_FUNCTION_ARGS)
{
	uint64		cluster_id = (uint64) PG_GETARG_INT64(0);
	int			kind = PG_GETARG_INT32(1);
	uint64		arg = (uint64) PG_GETARG_INT64(2);
	bytea	   *entry = PG_GETARG_BYTEA_PP(3);
	TupleDesc	tupdesc;
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};
	ProposalOutcome out;
	uint64		my_cluster;

	require_admin("distx._raft_propose()");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	LWLockAcquire(cluster_shared->lock, LW_SHARED);
	my_cluster = cluster_shared->cluster_id;
	LWLockRelease(cluster_shared->lock);
	if (my_cluster != cluster_id)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server is not a member of distx cluster %llu",
						(unsigned long long) cluster_id)));
	if (kind != PROPOSAL_ENTRY && kind != PROPOSAL_CONFIG_ADD && kind != PROPOSAL_CONFIG_REMOVE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown kind of proposal %d", kind)));

	cluster_propose(kind, arg, VARDATA_ANY(entry), VARSIZE_ANY_EXHDR(entry), &out);
	values[0] = Int32GetDatum(out.rc);
	values[1] = Int64GetDatum((int64) out.index);
	values[2] = Int64GetDatum((int64) out.term);
	values[3] = Int64GetDatum(out.result);
	values[4] = Int64GetDatum((int64) out.leader);
	values[5] = CStringGetTextDatum(out.errmsg);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* ------------------------------------------------------------------
 * Decisions
 * ------------------------------------------------------------------
 */

int
cluster_decide(const char *origin, uint64 xid, bool commit, bool conditional,
			   const Oid *oids, const char *const *names, int n, bool apply_here)
{
	uint32		len;
	uint8	   *entry = cluster_encode_decision(origin, xid,
												commit ? DECISION_COMMIT : DECISION_ABORT,
												conditional, oids, names, n, &len);
	ProposalOutcome out;

	cluster_propose_anywhere(PROPOSAL_ENTRY, 0, entry, len, apply_here, &out);
	if (out.rc != PROPOSAL_OK)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the decision of transaction %llu of \"%s\" was not committed: %s",
						(unsigned long long) xid, origin,
						out.rc == PROPOSAL_LOST ? "lost in a change of leader" : out.errmsg)));
	if (out.result != DECISION_COMMIT && out.result != DECISION_ABORT)
		elog(ERROR, "unexpected result " INT64_FORMAT " of a decision", out.result);

	/* this server must apply it before it may leave (cluster_quiesce) */
	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	if (out.index > cluster_shared->own_decided)
		cluster_shared->own_decided = out.index;
	LWLockRelease(cluster_shared->lock);
	return (int) out.result;
}

void
cluster_forget_decisions(int n, const char *const *origins, const uint64 *xids)
{
	int			done = 0;

	while (done < n)
	{
		uint32		len;
		int			taken;
		uint8	   *entry = cluster_encode_forget_many(n - done, origins + done,
													   xids + done, CLUSTER_PROPOSAL_MAX,
													   &taken, &len);
		ProposalOutcome out;

		cluster_propose_anywhere(PROPOSAL_ENTRY, 0, entry, len, true, &out);
		if (out.rc != PROPOSAL_OK)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("forgetting %d decisions was not committed: %s", taken,
							out.rc == PROPOSAL_LOST ? "lost in a change of leader" : out.errmsg)));
		pfree(entry);
		done += taken;
	}
}

/*
 * distx._cluster_decide(origin, xid, commit, conditional, participants,
 * participant_oids): the SQL face of cluster_decide(), for tests and tools.
 * Returns the outcome that won, 'commit' or 'abort'.
 */
Datum
distx_cluster_decide(PG_FUNCTION_ARGS)
{
	char	   *origin;
	uint64		xid;
	bool		commit;
	bool		conditional;
	ArrayType  *names_arr;
	Datum	   *ne;
	int			n;
	Oid		   *oids;
	const char **names;
	int			i;

	require_admin("distx._cluster_decide()");
	require_member();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) ||
		PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("arguments of distx._cluster_decide() must not be NULL (except participant_oids)")));
	origin = text_to_cstring(PG_GETARG_TEXT_PP(0));
	xid = U64FromFullTransactionId(PG_GETARG_FULLTRANSACTIONID(1));
	commit = PG_GETARG_BOOL(2);
	conditional = PG_GETARG_BOOL(3);
	names_arr = PG_GETARG_ARRAYTYPE_P(4);
	deconstruct_array(names_arr, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
					  &ne, NULL, &n);
	oids = palloc0(sizeof(Oid) * Max(n, 1));
	names = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
		names[i] = NameStr(*DatumGetName(ne[i]));
	if (!PG_ARGISNULL(5))
	{
		ArrayType  *oids_arr = PG_GETARG_ARRAYTYPE_P(5);
		Datum	   *oe;
		int			no;

		deconstruct_array(oids_arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT,
						  &oe, NULL, &no);
		if (no != n)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("participants and participant_oids differ in length")));
		for (i = 0; i < n; i++)
			oids[i] = DatumGetObjectId(oe[i]);
	}
	if (cluster_decide(origin, xid, commit, conditional, oids, names, n, true) == DECISION_COMMIT)
		PG_RETURN_TEXT_P(cstring_to_text("commit"));
	PG_RETURN_TEXT_P(cstring_to_text("abort"));
}

Datum
distx_cluster_forget(PG_FUNCTION_ARGS)
{
	const char *origin = text_to_cstring(PG_GETARG_TEXT_PP(0));
	uint64		xid = U64FromFullTransactionId(PG_GETARG_FULLTRANSACTIONID(1));

	require_admin("distx._cluster_forget()");
	require_member();
	cluster_forget_decisions(1, &origin, &xid);
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------
 * Membership
 * ------------------------------------------------------------------
 */

static bool
config_has(const raft_status *st, uint64 id)
{
	uint32		i;

	for (i = 0; i < st->config.n; i++)
		if (st->config.voters[i] == id)
			return true;
	return false;
}

/*
 * Whether node id votes in the configuration this node last published.
 * Recovery takes over the gids of voters only: a removed member resolves
 * its own (by the decisions it left with), whatever distx.cluster_nodes
 * still lists.
 */
bool
cluster_is_voter(uint64 id)
{
	bool		found;

	LWLockAcquire(cluster_shared->lock, LW_SHARED);
	found = config_has(&cluster_shared->status, id);
	LWLockRelease(cluster_shared->lock);
	return found;
}

static void
check_outcome(const ProposalOutcome *out, const char *what)
{
	if (out->rc == PROPOSAL_OK)
		return;
	if (out->rc == PROPOSAL_LOST)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("%s was lost in a change of leader", what),
				 errhint("Try again.")));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s refused: %s", what, out->errmsg[0] ? out->errmsg : "no leader")));
}

/*
 * Adding a node works from any member: its id comes from an entry (the same
 * id again on a retry), its identity is written over libpq from here, and
 * the configuration change is proposed on the leader.
 */
Datum
distx_cluster_add_node(PG_FUNCTION_ARGS)
{
	char	   *server = NameStr(*PG_GETARG_NAME(0));
	StatusCopy *c;
	DistxNode  *node;
	PGconn	   *volatile conn;
	WhoAmI		w;
	volatile int64 node_id = 0;
	volatile bool quiesced = false;
	uint8	   *entry;
	uint32		len;
	ProposalOutcome out;

	require_admin("distx.cluster_add_node()");
	require_worker_database();
	require_member();
	if (strlen(server) >= DXS_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("node name \"%s\" is too long", server)));

	c = wait_for_leader(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													distx_raft_proposal_timeout));
	node = node_lookup(server, false);
	conn = conn_connect(node);
	PG_TRY();
	{
		char		a[32],
					b[32];
		const char *values[3];
		StatusCopy *now;

		remote_whoami(conn, server, &w);
		if (w.token == cluster_shared->instance_token &&
			strcmp(server, c->node_name) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("distx server \"%s\" leads to this server, which is node \"%s\"",
							server, c->node_name)));
		if (w.cluster_id != 0 && w.cluster_id != c->cluster_id)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("distx node \"%s\" is a member of another cluster (%llu)",
							server, (unsigned long long) w.cluster_id),
					 errhint("A node leaves its cluster only by being removed; a fresh server can be added.")));

		/*
		 * A server that joins must have none of its own distributed
		 * transactions in doubt, and start none until it is a member: the
		 * cluster's coordinator takes over the gids of its origin and would
		 * not know its single-node decisions.
		 */
		if (w.node_id == 0)
		{
			remote_quiesce(conn, server, 0);
			quiesced = true;
		}

		/* its id in the replicated state (the same one again on a retry) */
		entry = cluster_encode_node_add(server, w.system_id, w.node_id == 0, &len);
		cluster_propose_anywhere(PROPOSAL_ENTRY, 0, entry, len, true, &out);
		check_outcome(&out, "giving the node an id");
		node_id = out.result;
		if (w.node_id != 0 && w.node_id != (uint64) node_id)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("distx node \"%s\" already is node %llu of this cluster, not node " INT64_FORMAT,
							server, (unsigned long long) w.node_id, node_id)));

		/* its identity, and its Raft worker */
		if (w.node_id == 0)
		{
			snprintf(a, sizeof(a), INT64_FORMAT, (int64) c->cluster_id);
			snprintf(b, sizeof(b), INT64_FORMAT, node_id);
			values[0] = a;
			values[1] = b;
			values[2] = server;
			(void) remote_value(conn, server,
								"SELECT distx._cluster_join($1, $2, $3)", 3, values);
		}

		/* then the vote (this node has applied the NODE_ADD: it knows the name) */
		now = status_copy();
		if (!config_has(&now->st, (uint64) node_id))
		{
			cluster_propose_anywhere(PROPOSAL_CONFIG_ADD, (uint64) node_id, NULL, 0, true, &out);
			check_outcome(&out, "the membership change");
		}
		pfree(now);
		if (quiesced)
			remote_unquiesce(conn, server, false);
	}
	PG_CATCH();
	{
		if (quiesced)
			remote_unquiesce(conn, server, true);
		conn_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	conn_close(conn);
	pfree(c);

	ereport(NOTICE,
			(errmsg("distx node \"%s\" joined the cluster as node " INT64_FORMAT, server, node_id)));
	PG_RETURN_INT64(node_id);
}

/* distx._cluster_leave on a removed node */
static void
tell_leave(const char *server, uint64 cluster_id, uint64 id)
{
	DistxNode  *node = node_lookup(server, false);
	PGconn	   *volatile conn = conn_connect_within(node, 2 * distx_raft_election_timeout);
	char		a[32],
				b[32];
	const char *values[2];

	snprintf(a, sizeof(a), INT64_FORMAT, (int64) cluster_id);
	snprintf(b, sizeof(b), INT64_FORMAT, (int64) id);
	values[0] = a;
	values[1] = b;
	PG_TRY();
	{
		(void) remote_value(conn, server, "SELECT distx._cluster_leave($1, $2)::text",
							2, values);
	}
	PG_FINALLY();
	{
		conn_close(conn);
	}
	PG_END_TRY();
}

/* a connection to a node, or NULL (with a NOTICE) if it cannot be reached */
static PGconn *
connect_if_up(const char *server, MemoryContext caller)
{
	DistxNode  *node = node_lookup(server, false);
	PGconn	   *volatile conn = NULL;

	PG_TRY();
	{
		conn = conn_connect_within(node, 2 * distx_raft_election_timeout);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(NOTICE,
				(errmsg("distx node \"%s\" cannot be reached: it is removed without waiting for its own distributed transactions",
						server),
				 errdetail_internal("%s", edata->message)));
		FreeErrorData(edata);
		conn = NULL;
	}
	PG_END_TRY();
	return conn;
}

Datum
distx_cluster_remove_node(PG_FUNCTION_ARGS)
{
	char	   *server = NameStr(*PG_GETARG_NAME(0));
	StatusCopy *c;
	volatile uint64 id = 0;
	ProposalOutcome out;
	PGconn	   *qconn;
	int			i;

	MemoryContext caller = CurrentMemoryContext;

	require_admin("distx.cluster_remove_node()");
	require_worker_database();
	require_member();

	c = wait_for_leader(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													distx_raft_proposal_timeout));
	for (i = 0; i < c->nmembers; i++)
		if (strcmp(c->members[i].name, server) == 0)
			id = c->members[i].id;
	if (id == 0 || !config_has(&c->st, id))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("distx node \"%s\" is not a member of the cluster", server)));
	if (c->st.config.n == 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot remove the last member of the cluster")));

	/*
	 * A member that is up first finishes its own distributed transactions
	 * and applies their decisions, and starts no new ones until it has
	 * left: its recovery, single-node again, goes by the decisions it
	 * holds.  One that cannot be reached is removed without that.
	 */
	qconn = connect_if_up(server, caller);
	if (qconn != NULL)
	{
		PG_TRY();
		{
			remote_quiesce(qconn, server, c->st.commit);
		}
		PG_CATCH();
		{
			conn_close(qconn);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	PG_TRY();
	{
		cluster_propose_anywhere(PROPOSAL_CONFIG_REMOVE, id, NULL, 0, true, &out);
		check_outcome(&out, "the membership change");
	}
	PG_CATCH();
	{
		if (qconn != NULL)
		{
			remote_unquiesce(qconn, server, true);
			conn_close(qconn);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();

	/*
	 * Tell the removed node, so that its Raft worker stops rather than try
	 * elections nobody answers.  Best effort: a node that is down keeps its
	 * identity, and its requests are ignored by the others (leader lease).
	 */
	PG_TRY();
	{
		tell_leave(server, c->cluster_id, id);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		ereport(WARNING,
				(errmsg("distx node \"%s\" was removed, but could not be told so", server),
				 errdetail_internal("%s", edata->message),
				 errhint("Its Raft worker keeps running until it is told; its requests are ignored by the cluster.")));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	if (qconn != NULL)
	{
		remote_unquiesce(qconn, server, false);
		conn_close(qconn);
	}
	PG_RETURN_VOID();
}

/* distx._cluster_leave(cluster_id, node_id): this node was removed */
Datum
distx_cluster_leave(PG_FUNCTION_ARGS)
{
	uint64		cluster_id = (uint64) PG_GETARG_INT64(0);
	uint64		node_id = (uint64) PG_GETARG_INT64(1);
	dxs_identity id;
	char		err[DXS_ERR_LEN];
	TimestampTz deadline;
	int			rc;

	require_admin("distx._cluster_leave()");
	rc = dxs_identity_read(cluster_dir(), &id, err, sizeof(err));
	if (rc < 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("%s", err)));
	if (rc == 0)
		PG_RETURN_VOID();		/* not (or no longer) a member */
	if (id.cluster_id != cluster_id || id.node_id != node_id)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server is node %llu of distx cluster %llu, not node %llu of cluster %llu",
						(unsigned long long) id.node_id, (unsigned long long) id.cluster_id,
						(unsigned long long) node_id, (unsigned long long) cluster_id)));
	LWLockAcquire(cluster_shared->lock, LW_EXCLUSIVE);
	cluster_shared->leave_requested = true;
	LWLockRelease(cluster_shared->lock);
	wake_worker();

	/* wait until the worker has put the files aside */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), distx_raft_proposal_timeout);
	while (cluster_is_member())
	{
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("the distx Raft worker of this server did not stop"),
					 errhint("It stops when it runs again; or remove the directory pg_distx while the server is stopped.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_VOID();
}

/*
 * After the pause and wait of _cluster_quiesce on a single server about to
 * join: a recovery pass, then none of its distributed transactions may be
 * left in doubt.  The cluster's coordinator takes over the prepared gids
 * of a member's origin, by the cluster's decisions only: a commit decided
 * here as a single server and not yet carried out everywhere would be
 * rolled back.
 */
static void
check_single_node_settled(void)
{
	RecoveryResult r;
	int64		kept = 0;
	bool		isnull;

	(void) recovery_pass(false, &r);
	if (r.in_doubt > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg_plural("this server has %d distributed transaction still prepared on its nodes",
							   "this server has %d distributed transactions still prepared on its nodes",
							   r.in_doubt, r.in_doubt),
				 errdetail("A server joins a distx cluster only when none of its own transactions is in doubt: the cluster's coordinator would not know how it decided them."),
				 errhint("Let distx.recover() on that server finish them (their nodes must be reachable), then add it again.")));
	if (r.unreachable > 0)
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute("SELECT count(*) FROM distx.decisions", true, 0) != SPI_OK_SELECT ||
			SPI_processed != 1)
			elog(ERROR, "could not count the rows of distx.decisions");
		kept = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1,
										   &isnull));
		SPI_finish();
		if (kept > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("this server cannot tell whether its distributed transactions are finished"),
					 errdetail("%d of its nodes could not be reached, and it keeps " INT64_FORMAT " commit decisions until every node they name has been seen without their transactions.",
							   r.unreachable, kept),
					 errhint("Add it again once its nodes are reachable.")));
	}
}

/*
 * distx._cluster_quiesce(hold_ms, min_applied), on a server whose
 * membership is about to change (called by cluster_add_node and
 * cluster_remove_node, from any member).  With hold_ms > 0: no new
 * two-phase commit may start here for at most hold_ms (the caller lifts the
 * pause when the change is done); then wait, at most
 * distx.raft_proposal_timeout, until none of this server's distributed
 * transactions is between PREPARE and its end, and
 * - on a member (about to leave), until it has applied every decision its
 *   own sessions proposed, and the log up to min_applied (the commit index
 *   the caller knows, which covers decisions of sessions that ran here
 *   before a restart): it leaves holding the outcome of all of them;
 * - on a single server (about to join), check that none of its own
 *   transactions is in doubt (check_single_node_settled).
 * On failure the pause is lifted and an error raised.  hold_ms = 0 lifts
 * the pause.
 */
static void
quiesce_here(int hold_ms, uint64 min_applied)
{
	TimestampTz deadline;

	txn_quiesce_begin(hold_ms);
	PG_TRY();
	{
		deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											   distx_raft_proposal_timeout);
		for (;;)
		{
			int			in_flight = txn_two_phase_in_flight();
			uint64		need = 0;
			uint64		applied = 0;

			if (cluster_is_member())
			{
				LWLockAcquire(cluster_shared->lock, LW_SHARED);
				need = Max(cluster_shared->own_decided, min_applied);
				applied = cluster_shared->applied;
				LWLockRelease(cluster_shared->lock);
			}
			if (in_flight == 0 && applied >= need)
				break;
			if (GetCurrentTimestamp() >= deadline)
			{
				if (in_flight > 0)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_IN_USE),
							 errmsg_plural("this server still has %d distributed transaction in flight",
										   "this server still has %d distributed transactions in flight",
										   in_flight, in_flight),
							 errdetail("Its membership of the distx cluster changes only when none of its distributed transactions is between PREPARE and its end."),
							 errhint("Try again when they are done (distx.transactions on that server lists them).")));
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_IN_USE),
						 errmsg("this server has not yet applied the decisions of its own distributed transactions"),
						 errdetail("It has applied the cluster's log up to index %llu, and must up to index %llu.",
								   (unsigned long long) applied, (unsigned long long) need),
						 errhint("Try again when it has caught up (see distx.raft_status on that server); a member that cannot catch up can be removed once its server is stopped.")));
			}
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 10, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
		if (!cluster_is_member())
			check_single_node_settled();
	}
	PG_CATCH();
	{
		txn_quiesce_end();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

Datum
distx_cluster_quiesce(PG_FUNCTION_ARGS)
{
	int32		hold_ms = PG_GETARG_INT32(0);
	int64		min_applied = PG_GETARG_INT64(1);

	require_admin("distx._cluster_quiesce()");
	require_worker_database();
	if (hold_ms < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("hold_ms must not be negative")));
	if (hold_ms == 0)
		txn_quiesce_end();
	else
		quiesce_here(hold_ms, (uint64) Max(min_applied, 0));
	PG_RETURN_VOID();
}

/* distx._cluster_join(cluster_id, node_id, name): called by the leader */
Datum
distx_cluster_join(PG_FUNCTION_ARGS)
{
	uint64		cluster_id = (uint64) PG_GETARG_INT64(0);
	uint64		node_id = (uint64) PG_GETARG_INT64(1);
	char	   *name = NameStr(*PG_GETARG_NAME(2));
	dxs_identity id;
	char		err[DXS_ERR_LEN];
	char	   *dir;
	int			rc;

	require_admin("distx._cluster_join()");
	require_worker_database();
	dir = cluster_dir();
	rc = dxs_identity_read(dir, &id, err, sizeof(err));
	if (rc < 0)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("%s", err)));
	if (rc > 0)
	{
		if (id.cluster_id != cluster_id || id.node_id != node_id)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("this server already is node %llu of distx cluster %llu",
							(unsigned long long) id.node_id, (unsigned long long) id.cluster_id)));
		launch_worker();
		PG_RETURN_VOID();
	}
	/*
	 * A fresh member starts from an empty replicated state: what the tables
	 * may hold from an earlier membership (pg_distx removed by hand) would
	 * not match the new, empty log.  The leader sends everything again.
	 */
	saga_state_check_unshared(true);
	cluster_reset_replicated_state();
	reset_own_decided();

	memset(&id, 0, sizeof(id));
	id.cluster_id = cluster_id;
	id.node_id = node_id;
	id.system_id = GetSystemIdentifier();
	id.founder = false;
	strlcpy(id.name, name, DXS_NAME_LEN);
	if (dxs_identity_write(dir, &id, err, sizeof(err)) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write the distx cluster identity: %s", err)));
	ereport(LOG,
			(errmsg("this server joins distx cluster %llu as node %llu (\"%s\")",
					(unsigned long long) cluster_id, (unsigned long long) node_id, name)));
	launch_worker();
	PG_RETURN_VOID();
}

/*
 * distx._raft_deliver(cluster_id, from_id, from_name, batch): messages from
 * a peer's Raft worker, into the inbox of ours.  Returns this node's id.
 */
Datum
distx_raft_deliver(PG_FUNCTION_ARGS)
{
	uint64		cluster_id = (uint64) PG_GETARG_INT64(0);
	uint64		from = (uint64) PG_GETARG_INT64(1);
	char	   *from_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	bytea	   *batch = PG_GETARG_BYTEA_PP(3);
	const uint8 *p = (const uint8 *) VARDATA_ANY(batch);
	uint32		left = VARSIZE_ANY_EXHDR(batch);
	uint64		my_cluster;
	uint64		my_id;
	ClusterWorkerState state;
	bool		any = false;

	distx_require_preload("distx._raft_deliver()");
	LWLockAcquire(cluster_shared->lock, LW_SHARED);
	my_cluster = cluster_shared->cluster_id;
	my_id = cluster_shared->node_id;
	state = cluster_shared->worker_pid != 0 ? cluster_shared->state : CW_NONE;
	LWLockRelease(cluster_shared->lock);

	if (state != CW_RUNNING)
		ereport(ERROR,
				(errcode(ERRCODE_CANNOT_CONNECT_NOW),
				 errmsg("the distx Raft worker of this server is not running")));
	if (my_cluster != cluster_id)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server is not a member of distx cluster %llu",
						(unsigned long long) cluster_id)));
	while (left >= 4)
	{
		uint32		len = (uint32) p[0] | ((uint32) p[1] << 8) |
			((uint32) p[2] << 16) | ((uint32) p[3] << 24);

		if (len > left - 4)
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("malformed batch of Raft messages")));
		if (len > INBOX_MESSAGE_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("Raft message of %u bytes too large (at most %d)",
							len, INBOX_MESSAGE_MAX)));
		if (len > INBOX_INLINE_MAX)
		{
			char	   *path = inbox_write_spill(p + 4, len);

			if (!inbox_push(from, from_name, (const uint8 *) path,
							(uint32) strlen(path), true))
				unlink(path);	/* dropped: Raft sends it again */
			pfree(path);
		}
		else
			(void) inbox_push(from, from_name, p + 4, len, false);
		any = true;
		p += 4 + len;
		left -= 4 + len;
	}
	if (left != 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("malformed batch of Raft messages")));
	if (any)
		wake_worker();
	PG_RETURN_INT64((int64) my_id);
}

static const char *
worker_state_name(ClusterWorkerState s)
{
	switch (s)
	{
		case CW_NONE:
			return "stopped";
		case CW_STARTING:
			return "starting";
		case CW_REFUSED:
			return "refused";
		case CW_RUNNING:
			return "running";
	}
	return "unknown";
}

/*
 * distx._raft_status(): one row for this node, then one per other voter
 * (and per other peer it talks to).
 */
Datum
distx_raft_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	StatusCopy *c;
	uint64		acting;
	uint64		ids[RAFT_MAX_VOTERS + CLUSTER_MAX_MEMBERS + 1];
	int			nids = 0;
	int			i;
	uint32		k;

	distx_require_preload("distx.raft_status");
	InitMaterializedSRF(fcinfo, 0);
	if (!cluster_is_member())
		return (Datum) 0;
	acting = cluster_acting_term();
	c = status_copy();

	ids[nids++] = c->node_id;
	for (k = 0; k < c->st.config.n; k++)
		if (c->st.config.voters[k] != c->node_id)
			ids[nids++] = c->st.config.voters[k];
	for (i = 0; i < c->npeers; i++)
	{
		int			j;
		bool		seen = false;

		for (j = 0; j < nids; j++)
			if (ids[j] == c->peers[i].id)
				seen = true;
		if (!seen)
			ids[nids++] = c->peers[i].id;
	}

	for (i = 0; i < nids; i++)
	{
		Datum		values[20];
		bool		nulls[20];
		uint64		id = ids[i];
		bool		self = id == c->node_id;
		const char *name = member_name(c, id);
		const char *leader = member_name(c, c->st.leader);
		const raft_peer_status *ps = NULL;
		const ClusterPeerInfo *pi = NULL;
		int			j;

		for (k = 0; k < c->st.n_peers; k++)
			if (c->st.peers[k].id == id)
				ps = &c->st.peers[k];
		for (j = 0; j < c->npeers; j++)
			if (c->peers[j].id == id)
				pi = &c->peers[j];

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int64GetDatum((int64) id);
		if (name)
			values[1] = CStringGetTextDatum(name);
		else
			nulls[1] = true;
		values[2] = BoolGetDatum(self);
		values[3] = BoolGetDatum(config_has(&c->st, id));
		if (self)
			values[4] = CStringGetTextDatum(c->state == CW_RUNNING ?
											raft_role_name(c->st.role) : worker_state_name(c->state));
		else if (id == c->st.leader)
			values[4] = CStringGetTextDatum("leader");
		else
			nulls[4] = true;
		values[5] = Int64GetDatum((int64) c->st.term);
		if (leader)
			values[6] = CStringGetTextDatum(leader);
		else
			nulls[6] = true;
		values[7] = Int64GetDatum((int64) c->st.commit);
		values[8] = Int64GetDatum((int64) c->applied);
		values[9] = Int64GetDatum((int64) c->st.last_index);
		if (ps)
		{
			values[10] = Int64GetDatum((int64) ps->match);
			values[11] = Int64GetDatum((int64) ps->next);
			values[12] = CStringGetTextDatum(raft_progress_state_name(ps->state));
			if (ps->last_contact != UINT64_MAX && !self)
				values[13] = Int64GetDatum((int64) (ps->last_contact * (uint64) c->tick_ms));
			else
				nulls[13] = true;
		}
		else
			nulls[10] = nulls[11] = nulls[12] = nulls[13] = true;
		if (pi)
		{
			values[14] = BoolGetDatum(pi->connected);
			values[15] = Int64GetDatum((int64) pi->dropped);
			if (pi->last_error[0])
				values[16] = CStringGetTextDatum(pi->last_error);
			else
				nulls[16] = true;
		}
		else
		{
			nulls[14] = nulls[15] = true;
			if (self && c->last_error[0])
				values[16] = CStringGetTextDatum(c->last_error);
			else
				nulls[16] = true;
		}
		values[17] = Int64GetDatum((int64) c->cluster_id);
		if (self)
			values[18] = BoolGetDatum(acting != 0);
		else
			nulls[18] = true;
		if (pi && pi->last_heard != 0)
			values[19] = TimestampTzGetDatum(pi->last_heard);
		else
			nulls[19] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

Datum
distx_leader(PG_FUNCTION_ARGS)
{
	StatusCopy *c;
	const char *name;

	distx_require_preload("distx.leader()");
	if (!cluster_is_member())
		PG_RETURN_NULL();
	c = status_copy();
	if (c->state != CW_RUNNING)
		PG_RETURN_NULL();
	name = member_name(c, c->st.leader);
	if (name == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(name));
}
