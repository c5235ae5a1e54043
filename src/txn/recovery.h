/*-------------------------------------------------------------------------
 *
 * recovery.h
 *	  Resolution of distx prepared transactions left on the nodes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RECOVERY_H
#define DISTX_RECOVERY_H

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

/* full-jitter exponential backoff delay for the n-th retry, in ms */
extern long backoff_delay(int attempt, int base_ms, int max_ms);

#endif							/* DISTX_RECOVERY_H */
