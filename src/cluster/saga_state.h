/*-------------------------------------------------------------------------
 *
 * saga_state.h
 *	  The apply path for saga state: definitions, runs, steps and attempts.
 *
 * Every change of saga state goes through the writers below, and the saga
 * code reads its tables only through the readers below.  In single-node
 * mode a change is applied to the distx tables of this database in the
 * caller's transaction.  On a member of a Raft cluster each writer proposes
 * one ENTRY_SAGA entry (cluster_apply.h) from any member and returns once
 * it is committed and applied here; it takes effect at once, not at the
 * commit of the caller's transaction.  Readers read the local, replicated
 * copy and never lock rows (the Raft worker must never wait for a lock to
 * apply an entry).
 *
 * ENTRY_SAGA ops, after the common header (u8 op, u64 term, i64 at):
 *
 *	SAGA_OP_DEFINE		text saga, u32 version, text owner (role name), text
 *						definition (jsonb text), u16 steps, per step: u32
 *						step_no, text name, text node (server name; NULL for
 *						local), text forward_sql, list forward_params, text
 *						compensate_sql, list compensate_params, u32
 *						max_attempts, u32 base_delay_ms, u64 multiplier (bits
 *						of the float8), u32 max_delay_ms, u32 timeout_ms,
 *						list non_retryable.  Result: the version, or 0 when
 *						that version exists with another definition (two
 *						nodes defined the saga at once).
 *	SAGA_OP_CREATE_RUN	text saga, u32 version, text run_key, text request,
 *						text input (jsonb text), text started_by (role name),
 *						u32 steps.  The run id is the index of the entry (the
 *						same on every node, never reused).  Idempotent on
 *						run_key and on request (a random token of the
 *						proposal): the result is the id of the run that has
 *						either, or of the new one.
 *	SAGA_OP_RUN_TRANSITION	u64 run, text from_states, text to_state, i64
 *						next_at, u8 cancel_requested, text error, text
 *						sqlstate.  Compare-and-set on from_states; result 1
 *						if it moved, else 0.
 *	SAGA_OP_STEPS_TRANSITION	u64 run, u32 step_no (0: all), text
 *						from_states, text to_state, i64 next_at, u8
 *						reset_failures.  Compare-and-set; result: steps moved.
 *	SAGA_OP_DELAY		u64 run, u32 step_no, i64 next_at, text error, text
 *						sqlstate.
 *	SAGA_OP_PURGE		i64 finished_before, u32 count, count u64 run ids
 *						(chosen by the proposer, which checks the roles):
 *						those still finished before that time are deleted.
 *	SAGA_OP_CLAIM		u64 run, u32 step_no, u8 compensate, u32 attempt_no,
 *						text gid_prefix, u32 lease_ms.  Keyed by attempt_no
 *						(the proposer's next one): the attempt is recorded if
 *						it is the next one of the step and the run is in the
 *						state the phase needs (running, or compensating);
 *						applied again (a retry) it returns the same number.
 *						Result: attempt_no, or 0 when refused.
 *	SAGA_OP_WAKE_INTERRUPTED	(no fields).
 *	SAGA_OP_SUCCEEDED	u64 run, u32 step_no, u32 attempt_no, u8 compensate,
 *						text output, u8 commit_pending.  Only an attempt still
 *						running is recorded; result 1 if it is succeeded now
 *						(or was already: a retried entry), 0 if it was
 *						settled as aborted or failed.
 *	SAGA_OP_FAILED		u64 run, u32 step_no, u32 attempt_no, u8 compensate,
 *						text attempt_state, u8 counted, text error, text
 *						sqlstate, text step_state, i64 retry_at.  Only an
 *						attempt still running: result 1, else 0.
 *	SAGA_OP_RESOLVED	u64 run, u32 step_no, u32 attempt_no.
 *
 * Writers and readers run as the owner of the distx tables with a safe
 * search_path, so that an unprivileged caller of distx.saga_start() needs
 * no privilege on the tables, and nothing in the caller's search_path can
 * capture the queries.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_SAGA_STATE_H
#define DISTX_SAGA_STATE_H

#include "datatype/timestamp.h"
#include "cluster/cluster_apply.h"
#include "lib/stringinfo.h"
#include "saga/saga.h"
#include "utils/jsonb.h"

#define SAGA_OP_DEFINE				1
#define SAGA_OP_CREATE_RUN			2
#define SAGA_OP_RUN_TRANSITION		3
#define SAGA_OP_STEPS_TRANSITION	4
#define SAGA_OP_DELAY				5
#define SAGA_OP_PURGE				6
#define SAGA_OP_CLAIM				7
#define SAGA_OP_WAKE_INTERRUPTED	8
#define SAGA_OP_SUCCEEDED			9
#define SAGA_OP_FAILED				10
#define SAGA_OP_RESOLVED			11

/* the result of an entry refused for its term */
#define SAGA_ENTRY_REFUSED			(-1)

/* a run, as the state machine reads it */
typedef struct SagaRunRow
{
	int64		run_id;
	char	   *saga;
	int			version;
	char	   *state;
	Oid			started_by;
	Jsonb	   *input;
	bool		cancel_requested;
	TimestampTz next_at;		/* 0 when NULL */
} SagaRunRow;

typedef struct SagaStepRow
{
	int			step_no;
	char	   *state;
	Jsonb	   *output;			/* NULL when none */
	int			failures;
	int			comp_failures;
	TimestampTz next_at;		/* 0 when NULL */
} SagaStepRow;

typedef struct SagaAttemptRow
{
	int			step_no;
	int			attempt_no;
	char	   *phase;
	char	   *state;
	char	   *gid;			/* NULL for local steps */
	bool		commit_pending;
} SagaAttemptRow;

/* a remote attempt that must never commit (saga_state_abandoned_attempts) */
typedef struct SagaAbandoned
{
	char	   *node_name;
	Oid			userid;			/* the role that started the run */
	char	   *gid;
	char	   *state;			/* aborted or failed */
} SagaAbandoned;

/* definitions */
extern int	saga_state_latest_version(const char *saga, Oid *owner,
									  Jsonb **normalized);
extern int	saga_state_define(SagaDef *def);
extern SagaStepDef *saga_state_load_steps(const char *saga, int version,
										  int *nsteps);

/* runs: reads */
extern bool saga_state_get_run(int64 run_id, bool for_update, SagaRunRow *row);
extern bool saga_state_try_lock_run(int64 run_id);
extern SagaStepRow *saga_state_get_steps(int64 run_id, int *nsteps);
extern List *saga_state_open_attempts(int64 run_id);
extern List *saga_state_due_runs(int limit, long *next_due_ms);
extern List *saga_state_abandoned_attempts(TimestampTz since);

/* runs: writes */
extern int64 saga_state_create_run(const char *saga, int version,
								   const char *run_key, Jsonb *input,
								   Oid started_by, int nsteps,
								   char **existing_saga);
extern bool saga_state_run_transition(int64 run_id, const char *from_states,
									  const char *to_state, TimestampTz next_at,
									  bool cancel_requested,
									  const char *error, const char *sqlstate);
extern int	saga_state_steps_transition(int64 run_id, int step_no,
										const char *from_states,
										const char *to_state,
										TimestampTz next_at,
										bool reset_failures);
extern void saga_state_delay(int64 run_id, int step_no, TimestampTz next_at,
							 const char *error, const char *sqlstate);

extern int64 saga_state_purge(TimestampTz finished_before, Oid for_role);

/* attempts */
extern int	saga_state_claim_attempt(int64 run_id, int step_no, bool compensate,
									 const char *gid_prefix, int lease_ms);
extern void saga_state_wake_interrupted(void);
extern void saga_state_attempt_succeeded(int64 run_id, int step_no,
										 int attempt_no, bool compensate,
										 const char *output,
										 bool commit_pending);
extern void saga_state_attempt_failed(int64 run_id, int step_no,
									  int attempt_no, bool compensate,
									  const char *attempt_state, bool counted,
									  const char *error, const char *sqlstate,
									  const char *step_state,
									  TimestampTz retry_at);
extern void saga_state_attempt_resolved(int64 run_id, int step_no,
										int attempt_no);

/*
 * The cluster: whether the writers propose entries (this server is a member
 * of a Raft cluster), the term the worker's proposals carry (0 for a
 * session), applying an entry (in the Raft worker's apply transaction),
 * and the saga section of snapshots.
 */
extern bool saga_state_clustered(void);
extern void saga_state_set_term(uint64 term);
extern int64 saga_state_apply(EntryReader *r, uint64 entry_term,
							  uint64 entry_index);
extern void saga_state_reset(void);
extern void saga_state_snapshot_make(StringInfo sec);
extern void saga_state_snapshot_restore(EntryReader *r);
extern void saga_state_check_unshared(bool joining);
extern bool saga_state_success_refused;

#endif							/* DISTX_SAGA_STATE_H */
