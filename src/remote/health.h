/*-------------------------------------------------------------------------
 *
 * health.h
 *	  Per-node resilience state shared by all backends of this server: the
 *	  circuit breaker, the bulkhead (a cap on concurrent use of a node) and
 *	  the counters shown by distx.node_health.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_HEALTH_H
#define DISTX_HEALTH_H

#include "datatype/timestamp.h"

typedef enum CircuitState
{
	CIRCUIT_CLOSED = 0,			/* normal operation */
	CIRCUIT_OPEN,				/* failing fast until the cool-down ends */
	CIRCUIT_HALF_OPEN			/* one trial connection in progress */
} CircuitState;

/* a copy of one node's state, for the view */
typedef struct NodeHealthSnapshot
{
	Oid			dbid;
	Oid			serverid;
	CircuitState state;
	int			consecutive_failures;
	int			in_use;			/* backends using the node now */
	int			open_connections;	/* cached connections, all backends */
	int			in_doubt;		/* distx prepared xacts seen by recovery */
	TimestampTz last_failure_at;
	TimestampTz opened_at;
	TimestampTz last_success_at;
	char		last_error[256];
} NodeHealthSnapshot;

/* GUCs */
extern int	distx_circuit_failure_threshold;
extern int	distx_circuit_reset_timeout;
extern int	distx_max_connections_per_node;
extern int	distx_bulkhead_timeout;

extern void health_define_gucs(void);
extern Size health_shmem_size(void);
extern void health_shmem_init(void);

/* circuit breaker: call before connecting, and report the outcome */
extern void health_circuit_admit(Oid serverid, const char *servername);
extern void health_report_failure(Oid serverid, const char *message);
extern void health_report_success(Oid serverid);

/* bulkhead: one slot per backend and node while a transaction uses it */
extern void health_bulkhead_acquire(Oid serverid, const char *servername);
extern void health_bulkhead_release(Oid serverid);

/* counters */
extern void health_count_connection(Oid serverid, int delta);
extern void health_set_in_doubt(Oid serverid, int count);

extern int	health_snapshot(NodeHealthSnapshot **result);

#endif							/* DISTX_HEALTH_H */
