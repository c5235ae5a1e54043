/*-------------------------------------------------------------------------
 *
 * saga_state.h
 *	  The apply path for saga state: definitions, runs, steps and attempts.
 *
 * Every change of saga state goes through the writers below, and the saga
 * code reads its tables only through the readers below.  In single-node
 * mode a change is applied to the distx tables of this database in the
 * caller's transaction; in a Raft cluster (a later step) each writer
 * becomes the proposal of one entry, applied on every node in log order.
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
#include "saga/saga.h"
#include "utils/jsonb.h"

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

/* definitions */
extern int	saga_state_latest_version(const char *saga, Oid *owner,
									  Jsonb **normalized);
extern void saga_state_define(SagaDef *def);
extern SagaStepDef *saga_state_load_steps(const char *saga, int version,
										  int *nsteps);

/* runs: reads */
extern bool saga_state_get_run(int64 run_id, bool for_update, SagaRunRow *row);
extern bool saga_state_try_lock_run(int64 run_id);
extern SagaStepRow *saga_state_get_steps(int64 run_id, int *nsteps);
extern List *saga_state_open_attempts(int64 run_id);
extern List *saga_state_due_runs(int limit, long *next_due_ms);

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

#endif							/* DISTX_SAGA_STATE_H */
