/*-------------------------------------------------------------------------
 *
 * recovery.h
 *	  Resolution of distx prepared transactions left on the nodes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RECOVERY_H
#define DISTX_RECOVERY_H

#include "libpq-fe.h"
#include "remote/node.h"
#include "storage/lock.h"

typedef struct RecoveryResult
{
	int			committed;		/* COMMIT PREPARED done */
	int			rolled_back;	/* ROLLBACK PREPARED done */
	int			in_doubt;		/* still prepared (running, or failed) */
	int			unreachable;	/* nodes that could not be reached */
	int			forgotten;		/* decision rows deleted */
} RecoveryResult;

extern int	distx_recovery_interval;
extern int	distx_retry_base_delay;
extern int	distx_retry_max_delay;

extern void recovery_define_gucs(void);

/*
 * One recovery pass over every node, in the current transaction.  With
 * respect_backoff, nodes that failed recently are skipped until their
 * backoff (exponential, full jitter) has passed.  Returns the time in ms
 * until the next node is due (-1: none is waiting).
 */
extern long recovery_pass(bool respect_backoff, RecoveryResult *result);

/* the same in a Raft cluster (recovery_cluster.c): on the acting coordinator */
extern long recovery_pass_cluster(bool respect_backoff, RecoveryResult *result);

/* one pass at a time per database: take the lock (held to transaction end) */
extern void recovery_lock(LOCKTAG *tag);

typedef void (*RecoveryNodeFn) (DistxNode *node, void *arg);

/*
 * Run fn(node, arg) for one node in a subtransaction, bounded by
 * distx.cleanup_timeout, with per-node backoff; false if it failed (a
 * WARNING says why) or the node's backoff has not passed.
 */
extern bool recovery_on_node(Oid serverid, bool respect_backoff, long *next_due,
							 RecoveryResult *result, RecoveryNodeFn fn, void *arg);

/* COMMIT/ROLLBACK PREPARED a gid; false (after a WARNING) if it failed */
extern bool recovery_finish_gid(PGconn *conn, DistxNode *node, const char *gid,
								bool commit, RecoveryResult *result);

/* full-jitter exponential backoff delay for the n-th retry, in ms */
extern long backoff_delay(int attempt, int base_ms, int max_ms);

#endif							/* DISTX_RECOVERY_H */
