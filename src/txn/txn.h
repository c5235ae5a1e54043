/*-------------------------------------------------------------------------
 *
 * txn.h
 *	  The 2PC coordinator: transaction callbacks that finish the remote
 *	  transactions of a session together with the local one.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_TXN_H
#define DISTX_TXN_H

#include "datatype/timestamp.h"

#define TXN_MAX_PARTICIPANTS 16

typedef enum InflightState
{
	INFLIGHT_NONE = 0,
	INFLIGHT_ACTIVE,			/* remote work in progress */
	INFLIGHT_PREPARING,			/* PREPARE TRANSACTION sent */
	INFLIGHT_PREPARED,			/* all prepared, local commit next */
	INFLIGHT_COMMITTING,		/* decided; COMMIT PREPARED in progress */
	INFLIGHT_ABORTING			/* rolling back */
} InflightState;

/* one session's distributed transaction, for distx.transactions */
typedef struct InflightTxn
{
	pid_t		pid;
	InflightState state;
	uint64		fxid;			/* 0 until the decision assigns it */
	TimestampTz started_at;
	int			nparticipants;
	Oid			participants[TXN_MAX_PARTICIPANTS];
	char		participant_state[TXN_MAX_PARTICIPANTS];	/* see txn.c */
} InflightTxn;

extern void txn_init(void);
extern Size txn_shmem_size(void);
extern void txn_shmem_init(void);
extern void txn_note_participant(Oid serverid);
extern int	txn_inflight_snapshot(InflightTxn **result);

/* pausing new two-phase commits during a change of cluster membership */
extern void txn_quiesce_begin(int hold_ms);
extern void txn_quiesce_end(void);
extern int	txn_two_phase_in_flight(void);

#endif							/* DISTX_TXN_H */
