/*-------------------------------------------------------------------------
 *
 * saga.h
 *	  Sagas: definitions (catalog.c), the run state machine (run.c), step
 *	  execution by the background worker (executor.c) and the SQL API
 *	  (api.c).  Every change of saga state goes through the apply path in
 *	  cluster/saga_state.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_SAGA_H
#define DISTX_SAGA_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/* states of runs and steps; see sql/parts/30_saga.sql */
#define SAGA_PENDING			"pending"
#define SAGA_RUNNING			"running"
#define SAGA_COMPLETED			"completed"
#define SAGA_FAILED				"failed"	/* steps only */
#define SAGA_COMPENSATING		"compensating"
#define SAGA_COMPENSATED		"compensated"
#define SAGA_COMPENSATION_FAILED "compensation_failed"
#define SAGA_CANCELLED			"cancelled"

/* states of attempts */
#define ATTEMPT_RUNNING			"running"
#define ATTEMPT_SUCCEEDED		"succeeded"
#define ATTEMPT_FAILED			"failed"
#define ATTEMPT_ABORTED			"aborted"	/* interrupted; rolled back */

/*
 * A value reference in the parameter list of a step: "$input.a.b",
 * "$steps.reserve.id", "$idempotency_key", "$run_id".
 */
typedef enum SagaRefKind
{
	SAGA_REF_INPUT,
	SAGA_REF_STEP,
	SAGA_REF_IDEMPOTENCY_KEY,
	SAGA_REF_RUN_ID
} SagaRefKind;

typedef struct SagaRef
{
	SagaRefKind kind;
	char	   *step;			/* SAGA_REF_STEP: the step name */
	List	   *path;			/* keys (char *) below the input or output */
} SagaRef;

/* one step of a definition */
typedef struct SagaStepDef
{
	int			step_no;		/* 1-based */
	char	   *name;
	Oid			node_id;		/* InvalidOid: the local database */
	char	   *node_name;		/* NULL for local */
	char	   *forward_sql;
	List	   *forward_params; /* char * references */
	char	   *compensate_sql; /* NULL: nothing to undo */
	List	   *compensate_params;
	int			max_attempts;
	int			base_delay_ms;
	double		multiplier;
	int			max_delay_ms;
	int			timeout_ms;
	List	   *non_retryable;	/* char * SQLSTATEs */
} SagaStepDef;

typedef struct SagaDef
{
	char	   *name;
	int			version;
	Oid			owner;
	List	   *steps;			/* SagaStepDef * in order */
	Jsonb	   *normalized;		/* the canonical jsonb form */
} SagaDef;

/* GUCs */
extern int	distx_saga_max_concurrency;

/* catalog.c */
extern SagaDef *saga_parse_definition(const char *name, Jsonb *steps);
extern SagaRef *saga_parse_ref(const char *ref, bool elog_on_error);
extern bool saga_sqlstate_listed(List *sqlstates, const char *sqlstate);
extern int	saga_sql_max_param(const char *sql);

/* run.c: the state machine */
typedef enum SagaActionKind
{
	SAGA_ACT_FORWARD,			/* run the forward statement of a step */
	SAGA_ACT_COMPENSATE,		/* run the compensation of a step */
	SAGA_ACT_RECONCILE,			/* settle an attempt interrupted by a crash */
	SAGA_ACT_RESOLVE			/* finish the COMMIT PREPARED of an attempt */
} SagaActionKind;

typedef struct SagaAction
{
	SagaActionKind kind;
	int64		run_id;
	int			step_no;
	char	   *step_name;
	char	   *saga;
	Oid			node_id;		/* InvalidOid: local */
	Oid			userid;			/* the role that started the run */
	int			attempt_no;		/* claimed attempt (or the one to settle) */
	char	   *gid;			/* remote: prepared transaction name */
	char	   *sql;
	int			nparams;
	char	  **params;			/* text values, NULL for SQL NULL */
	int			timeout_ms;
	bool		compensate;		/* a compensation (or an attempt of one) */
	int			failures;		/* counted failures of this phase so far */
	SagaStepDef *def;

	/* outcome, filled by the executor */
	bool		done;			/* outcome known */
	bool		ok;
	bool		transient;		/* not the statement's fault: don't count */
	bool		permanent;		/* no retry can help */
	char	   *output;			/* json text of the first row, or NULL */
	char	   *error;
	char		sqlstate[6];

	/* executor state of a remote action, and the action's memory */
	void	   *exec;
	MemoryContext cxt;
} SagaAction;

extern List *saga_due_runs(int limit, long *next_due_ms);
extern SagaAction *saga_plan_run(int64 run_id, bool *busy);
extern void saga_record_outcome(SagaAction *act);
extern void saga_record_delay(SagaAction *act, const char *error,
							  const char *sqlstate, long delay_ms);
extern long saga_backoff_ms(SagaStepDef *def, int failures);

/* executor.c */
#define SAGA_NOT_ACTING_RECHECK_MS	100
extern bool saga_worker_acting(void);
extern long saga_worker_tick(MemoryContext loop_context);
extern char *saga_gid(int64 run_id, int step_no, int attempt_no);
extern char *saga_idempotency_key(int64 run_id, const char *step_name,
								  bool compensate);

/* api.c */
extern void saga_define_gucs(void);
extern void saga_wake_worker_at_commit(void);

#endif							/* DISTX_SAGA_H */
