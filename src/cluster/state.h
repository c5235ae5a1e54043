/*-------------------------------------------------------------------------
 *
 * state.h
 *	  The one apply path for changes of coordinator state.
 *
 * Every change to coordinator state goes through these functions.  In
 * single-node mode they apply the change to the local distx tables, inside
 * the caller's transaction.  In a Raft cluster (a later step) they propose
 * the change to the leader and apply it in log order; callers do not change.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_STATE_H
#define DISTX_STATE_H

#include "access/transam.h"

/*
 * Record the commit decision of a distributed transaction: fxid is the
 * coordinator's transaction, servers its prepared participants.  In
 * single-node mode the row is written in the current transaction, so the
 * decision is durable exactly when that transaction commits.
 */
extern void state_record_commit_decision(FullTransactionId fxid,
										 const Oid *servers, int nservers);

/*
 * Whether a commit decision exists for fxid that names serverid among its
 * participants, seen with a fresh snapshot.
 */
extern bool state_commit_decided(FullTransactionId fxid, Oid serverid);

/* forget a decision whose participants are all resolved */
extern void state_forget_decision(FullTransactionId fxid);

#endif							/* DISTX_STATE_H */
