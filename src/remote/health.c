/*-------------------------------------------------------------------------
 *
 * health.c
 *	  Per-node circuit breaker, bulkhead and health counters, in shared
 *	  memory so that every backend of this server sees the same state.
 *
 * Nodes are foreign servers, whose OIDs are per database, so an entry is
 * keyed by (database, server).  The table is small and fixed-size; a
 * spinlock protects it because every operation is a few loads and stores.
 *
 * Circuit breaker: after distx.circuit_failure_threshold consecutive
 * connection failures the circuit opens and new work to the node fails at
 * once, saying when to retry.  When distx.circuit_reset_timeout has passed,
 * one backend is let through as a trial (half-open); its success closes the
 * circuit, its failure opens it again for another cool-down.
 *
 * Bulkhead: a backend holds a slot for a node from the first use of the
 * node in a transaction until the transaction ends; at most
 * distx.max_connections_per_node slots exist per node, and a backend that
 * finds them taken waits up to distx.bulkhead_timeout for one.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "distx.h"
#include "remote/health.h"

#define HEALTH_MAX_NODES	256

typedef struct NodeHealth
{
	bool		used;
	Oid			dbid;
	Oid			serverid;
	CircuitState state;
	int			consecutive_failures;
	pid_t		trial_pid;		/* backend running the half-open trial */
	TimestampTz trial_started_at;
	TimestampTz opened_at;
	TimestampTz last_failure_at;
	TimestampTz last_success_at;
	int			in_use;
	int			open_connections;
	int			in_doubt;
	char		last_error[256];
} NodeHealth;

typedef struct HealthShared
{
	slock_t		mutex;
	NodeHealth	nodes[HEALTH_MAX_NODES];
} HealthShared;

int			distx_circuit_failure_threshold = 5;
int			distx_circuit_reset_timeout = 30000;
int			distx_max_connections_per_node = 64;
int			distx_bulkhead_timeout = 10000;

static HealthShared *health = NULL;

/* bulkhead slots this backend holds, so that they are released on exit */
#define MAX_HELD_SLOTS 64
static Oid	held_slots[MAX_HELD_SLOTS];
static int	n_held_slots = 0;
static bool exit_hook_registered = false;

void
health_define_gucs(void)
{
	DefineCustomIntVariable("distx.circuit_failure_threshold",
							"Consecutive connection failures after which a node's circuit opens.",
							NULL,
							&distx_circuit_failure_threshold,
							5, 1, 1000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("distx.circuit_reset_timeout",
							"Time an open circuit waits before one trial connection.",
							NULL,
							&distx_circuit_reset_timeout,
							30000, 10, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("distx.max_connections_per_node",
							"Maximum number of backends of this server using one node at the same time.",
							NULL,
							&distx_max_connections_per_node,
							64, 1, 10000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("distx.bulkhead_timeout",
							"Time a session waits for a free connection slot to a node.",
							NULL,
							&distx_bulkhead_timeout,
							10000, 0, 3600000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

Size
health_shmem_size(void)
{
	return MAXALIGN(sizeof(HealthShared));
}

void
health_shmem_init(void)
{
	bool		found;

	health = ShmemInitStruct("distx node health", sizeof(HealthShared), &found);
	if (!found)
	{
		memset(health, 0, sizeof(HealthShared));
		SpinLockInit(&health->mutex);
	}
}

/* Find or create the entry of a node; caller holds the spinlock. */
static NodeHealth *
health_entry(Oid serverid)
{
	int			i;
	NodeHealth *free_slot = NULL;

	for (i = 0; i < HEALTH_MAX_NODES; i++)
	{
		NodeHealth *n = &health->nodes[i];

		if (n->used && n->dbid == MyDatabaseId && n->serverid == serverid)
			return n;
		if (!n->used && free_slot == NULL)
			free_slot = n;
	}
	if (free_slot == NULL)
	{
		/* reuse an idle entry of a node nobody uses */
		for (i = 0; i < HEALTH_MAX_NODES; i++)
		{
			NodeHealth *n = &health->nodes[i];

			if (n->in_use == 0 && n->open_connections == 0 &&
				n->state == CIRCUIT_CLOSED && n->in_doubt == 0)
			{
				free_slot = n;
				break;
			}
		}
	}
	if (free_slot == NULL)
		return NULL;
	memset(free_slot, 0, sizeof(NodeHealth));
	free_slot->used = true;
	free_slot->dbid = MyDatabaseId;
	free_slot->serverid = serverid;
	return free_slot;
}

static void
health_required(void)
{
	distx_require_preload("distx remote execution");
	if (health == NULL)
		elog(ERROR, "distx node health is not initialized");
}

void
health_circuit_admit(Oid serverid, const char *servername)
{
	NodeHealth *n;
	TimestampTz now = GetCurrentTimestamp();
	long		wait_ms = 0;
	int			failures = 0;
	char		last_error[256];
	bool		refuse = false;

	health_required();
	last_error[0] = '\0';

	SpinLockAcquire(&health->mutex);
	n = health_entry(serverid);
	if (n != NULL && n->state != CIRCUIT_CLOSED)
	{
		TimestampTz reopen = TimestampTzPlusMilliseconds(n->opened_at,
														 distx_circuit_reset_timeout);

		if (n->state == CIRCUIT_OPEN && now >= reopen)
		{
			/* cool-down over: this backend is the trial */
			n->state = CIRCUIT_HALF_OPEN;
			n->trial_pid = MyProcPid;
			n->trial_started_at = now;
		}
		else if (n->state == CIRCUIT_HALF_OPEN &&
				 (n->trial_pid == MyProcPid ||
				  now >= TimestampTzPlusMilliseconds(n->trial_started_at,
													 distx_circuit_reset_timeout)))
		{
			/* our own trial, or a trial that never reported back */
			n->trial_pid = MyProcPid;
			n->trial_started_at = now;
		}
		else
		{
			refuse = true;
			failures = n->consecutive_failures;
			strlcpy(last_error, n->last_error, sizeof(last_error));
			if (n->state == CIRCUIT_OPEN)
				wait_ms = TimestampDifferenceMilliseconds(now, reopen);
			else
				wait_ms = distx_circuit_reset_timeout;
		}
	}
	SpinLockRelease(&health->mutex);

	if (refuse)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("circuit breaker for node \"%s\" is open", servername),
				 errdetail("%d consecutive connection attempts failed; the last error was: %s",
						   failures, last_error[0] ? last_error : "(none)"),
				 errhint("Retry after %ld ms.", Max(wait_ms, 1))));
}

void
health_report_failure(Oid serverid, const char *message)
{
	NodeHealth *n;
	TimestampTz now = GetCurrentTimestamp();

	if (health == NULL)
		return;
	SpinLockAcquire(&health->mutex);
	n = health_entry(serverid);
	if (n != NULL)
	{
		n->consecutive_failures++;
		n->last_failure_at = now;
		strlcpy(n->last_error, message ? message : "", sizeof(n->last_error));
		if (n->state == CIRCUIT_HALF_OPEN ||
			(n->state == CIRCUIT_CLOSED &&
			 n->consecutive_failures >= distx_circuit_failure_threshold))
		{
			n->state = CIRCUIT_OPEN;
			n->opened_at = now;
			n->trial_pid = 0;
		}
	}
	SpinLockRelease(&health->mutex);
}

void
health_report_success(Oid serverid)
{
	NodeHealth *n;

	if (health == NULL)
		return;
	SpinLockAcquire(&health->mutex);
	n = health_entry(serverid);
	if (n != NULL)
	{
		n->consecutive_failures = 0;
		n->state = CIRCUIT_CLOSED;
		n->trial_pid = 0;
		n->last_success_at = GetCurrentTimestamp();
	}
	SpinLockRelease(&health->mutex);
}

static void
health_release_all_slots(int code, Datum arg)
{
	while (n_held_slots > 0)
		health_bulkhead_release(held_slots[n_held_slots - 1]);
}

void
health_bulkhead_acquire(Oid serverid, const char *servername)
{
	TimestampTz deadline;
	int			i;

	health_required();

	for (i = 0; i < n_held_slots; i++)
		if (held_slots[i] == serverid)
			return;				/* already ours */
	if (n_held_slots >= MAX_HELD_SLOTS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a transaction may use at most %d distx nodes", MAX_HELD_SLOTS)));

	if (!exit_hook_registered)
	{
		before_shmem_exit(health_release_all_slots, (Datum) 0);
		exit_hook_registered = true;
	}

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   distx_bulkhead_timeout);
	for (;;)
	{
		NodeHealth *n;
		bool		got = false;
		bool		full_table = false;

		SpinLockAcquire(&health->mutex);
		n = health_entry(serverid);
		if (n == NULL)
			full_table = true;
		else if (n->in_use < distx_max_connections_per_node)
		{
			n->in_use++;
			got = true;
		}
		SpinLockRelease(&health->mutex);

		if (full_table)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("too many distx nodes in use on this server"),
					 errdetail("distx tracks the health of at most %d nodes.",
							   HEALTH_MAX_NODES)));
		if (got)
		{
			held_slots[n_held_slots++] = serverid;
			return;
		}
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_TOO_MANY_CONNECTIONS),
					 errmsg("all %d connection slots to node \"%s\" are in use",
							distx_max_connections_per_node, servername),
					 errdetail("No slot became free within distx.bulkhead_timeout (%d ms).",
							   distx_bulkhead_timeout),
					 errhint("Raise distx.max_connections_per_node, or retry later.")));

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

void
health_bulkhead_release(Oid serverid)
{
	int			i;

	for (i = 0; i < n_held_slots; i++)
	{
		if (held_slots[i] == serverid)
		{
			NodeHealth *n;

			held_slots[i] = held_slots[--n_held_slots];
			if (health == NULL)
				return;
			SpinLockAcquire(&health->mutex);
			n = health_entry(serverid);
			if (n != NULL && n->in_use > 0)
				n->in_use--;
			SpinLockRelease(&health->mutex);
			return;
		}
	}
}

void
health_count_connection(Oid serverid, int delta)
{
	NodeHealth *n;

	if (health == NULL)
		return;
	SpinLockAcquire(&health->mutex);
	n = health_entry(serverid);
	if (n != NULL)
		n->open_connections = Max(0, n->open_connections + delta);
	SpinLockRelease(&health->mutex);
}

void
health_set_in_doubt(Oid serverid, int count)
{
	NodeHealth *n;

	if (health == NULL)
		return;
	SpinLockAcquire(&health->mutex);
	n = health_entry(serverid);
	if (n != NULL)
		n->in_doubt = count;
	SpinLockRelease(&health->mutex);
}

/* A palloc'd copy of the entries of the current database. */
int
health_snapshot(NodeHealthSnapshot **result)
{
	int			i;
	int			count = 0;
	NodeHealthSnapshot *out;

	health_required();
	out = palloc0(sizeof(NodeHealthSnapshot) * HEALTH_MAX_NODES);
	SpinLockAcquire(&health->mutex);
	for (i = 0; i < HEALTH_MAX_NODES; i++)
	{
		NodeHealth *n = &health->nodes[i];
		NodeHealthSnapshot *s;

		if (!n->used || n->dbid != MyDatabaseId)
			continue;
		s = &out[count++];
		s->dbid = n->dbid;
		s->serverid = n->serverid;
		s->state = n->state;
		s->consecutive_failures = n->consecutive_failures;
		s->in_use = n->in_use;
		s->open_connections = n->open_connections;
		s->in_doubt = n->in_doubt;
		s->last_failure_at = n->last_failure_at;
		s->opened_at = n->opened_at;
		s->last_success_at = n->last_success_at;
		memcpy(s->last_error, n->last_error, sizeof(s->last_error));
	}
	SpinLockRelease(&health->mutex);
	*result = out;
	return count;
}
