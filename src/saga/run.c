/*-------------------------------------------------------------------------
 *
 * run.c
 *	  The run state machine: what a run does next, and how an attempt's
 *	  outcome moves its step and its run.
 *
 * A run starts pending.  The worker moves it to running and runs the
 * forward statements of its steps in order; when the last step completes
 * the run is completed.  A step whose attempt fails is retried after a
 * full-jitter exponential backoff until it has failed max_attempts times
 * (or at once with a non-retryable SQLSTATE): the step is then failed,
 * having applied nothing, and the run turns compensating.  The steps it did
 * not reach are cancelled, and the compensations of the completed steps run
 * in reverse order, each retried the same way.  When they are all done the
 * run is compensated (cancelled if an operator cancelled it).  A
 * compensation that fails for good stops the run in compensation_failed;
 * distx.saga_retry() resumes it.
 *
 * Before planning anything new for a run, an attempt that is still marked
 * running (the worker stopped during it) is reconciled, and a succeeded
 * remote attempt whose COMMIT PREPARED was not confirmed is resolved.
 *
 * Failures that are not the statement's fault (the node is unreachable,
 * its circuit is open, the connection broke before the outcome was known to
 * be nothing) are retried with backoff without counting against
 * max_attempts: a node that is down delays its runs, it does not fail them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "cluster/saga_state.h"
#include "saga/saga.h"

List *
saga_due_runs(int limit, long *next_due_ms)
{
	return saga_state_due_runs(limit, next_due_ms);
}

/*
 * Full-jitter exponential backoff: a uniformly random delay between 0 and
 * min(max_delay, base_delay * multiplier^(failures - 1)).  (The same rule
 * as backoff_delay() of recovery, with the step's own multiplier.)
 */
long
saga_backoff_ms(SagaStepDef *def, int failures)
{
	double		cap = def->base_delay_ms;
	int			i;

	for (i = 1; i < failures && cap < def->max_delay_ms; i++)
		cap *= def->multiplier;
	if (cap > def->max_delay_ms)
		cap = def->max_delay_ms;
	return (long) (pg_prng_double(&pg_global_prng_state) * cap);
}

/*
 * ----------------------------------------------------------------------
 * Binding values
 * ----------------------------------------------------------------------
 */

/* the text a JSON value binds as; NULL for SQL NULL */
static char *
jsonb_value_text(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return NULL;
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			{
				Jsonb	   *j = JsonbValueToJsonb(v);

				return JsonbToCString(NULL, &j->root, VARSIZE(j));
			}
	}
}

/*
 * The value at a path below a jsonb document.  *found is false when a key
 * is missing (or the path goes through a scalar).
 */
static char *
jsonb_path_text(Jsonb *doc, List *path, bool *found)
{
	JsonbValue	v;
	JsonbContainer *c = &doc->root;
	ListCell   *lc;

	*found = false;
	memset(&v, 0, sizeof(v));
	if (path == NIL)
	{
		*found = true;
		return JsonbToCString(NULL, &doc->root, VARSIZE(doc));
	}
	foreach(lc, path)
	{
		const char *key = (const char *) lfirst(lc);
		JsonbValue *r = NULL;

		if (c == NULL)
			return NULL;
		if (JsonContainerIsObject(c))
			r = getKeyJsonValueFromContainer(c, key, strlen(key), &v);
		else if (JsonContainerIsArray(c) && !JsonContainerIsScalar(c))
		{
			char	   *end;
			long		idx = strtol(key, &end, 10);

			if (*end == '\0' && end != key && idx >= 0)
			{
				r = getIthJsonbValueFromContainer(c, (uint32) idx);
				if (r)
					v = *r;
			}
		}
		if (r == NULL)
			return NULL;
		c = (v.type == jbvBinary) ? v.val.binary.data : NULL;
	}
	*found = true;
	return jsonb_value_text(&v);
}

static char *
path_string(List *path)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, path)
		appendStringInfo(&buf, "%s%s", buf.len ? "." : "", (char *) lfirst(lc));
	return buf.data;
}

/*
 * Compute the parameter values of an action.  A reference that cannot be
 * resolved (the output of a step that returned no row, a column that its
 * row does not have) makes the action fail for good, with the reason.
 */
static void
bind_params(SagaAction *act, List *refs, Jsonb *input, SagaStepDef *defs,
			SagaStepRow *steps, int nsteps)
{
	ListCell   *lc;
	int			i = 0;

	/* only the parameters the statement uses are sent */
	act->nparams = Min(list_length(refs), saga_sql_max_param(act->sql));
	act->params = palloc0(sizeof(char *) * Max(act->nparams, 1));
	foreach(lc, refs)
	{
		SagaRef    *r = saga_parse_ref((const char *) lfirst(lc), true);
		bool		found;
		int			j;

		if (i >= act->nparams)
			break;
		switch (r->kind)
		{
			case SAGA_REF_IDEMPOTENCY_KEY:
				act->params[i] = saga_idempotency_key(act->run_id, act->step_name,
													  act->kind == SAGA_ACT_COMPENSATE);
				break;
			case SAGA_REF_RUN_ID:
				act->params[i] = psprintf(INT64_FORMAT, act->run_id);
				break;
			case SAGA_REF_INPUT:
				/* a key missing from the input binds as NULL */
				act->params[i] = jsonb_path_text(input, r->path, &found);
				break;
			case SAGA_REF_STEP:
				for (j = 0; j < nsteps; j++)
					if (strcmp(defs[j].name, r->step) == 0)
						break;
				if (j == nsteps)
				{
					act->done = true;
					act->permanent = true;
					act->error = psprintf("step \"%s\" does not exist", r->step);
					strlcpy(act->sqlstate, "42704", sizeof(act->sqlstate));
					return;
				}
				if (steps[j].output == NULL)
				{
					/* a compensation of a step without output gets NULLs */
					if (j + 1 == act->step_no)
					{
						act->params[i] = NULL;
						break;
					}
					act->done = true;
					act->permanent = true;
					act->error = psprintf("parameter \"%s\": step \"%s\" returned no row",
										  (char *) lfirst(lc), r->step);
					strlcpy(act->sqlstate, "22023", sizeof(act->sqlstate));
					return;
				}
				act->params[i] = jsonb_path_text(steps[j].output, r->path, &found);
				if (!found)
				{
					act->done = true;
					act->permanent = true;
					act->error = psprintf("parameter \"%s\": the output of step \"%s\" has no \"%s\"",
										  (char *) lfirst(lc), r->step,
										  path_string(r->path));
					strlcpy(act->sqlstate, "42703", sizeof(act->sqlstate));
					return;
				}
				break;
		}
		i++;
	}
}

/*
 * ----------------------------------------------------------------------
 * Planning
 * ----------------------------------------------------------------------
 */

static SagaAction *
new_action(SagaActionKind kind, SagaRunRow *run, SagaStepDef *def)
{
	SagaAction *act = palloc0(sizeof(SagaAction));

	act->kind = kind;
	act->run_id = run->run_id;
	act->saga = run->saga;
	act->userid = run->started_by;
	act->step_no = def->step_no;
	act->step_name = def->name;
	act->node_id = def->node_id;
	act->timeout_ms = def->timeout_ms;
	act->def = def;
	return act;
}

static bool
is_state(const char *state, const char *a)
{
	return strcmp(state, a) == 0;
}

/*
 * Decide what a due run does next, in the current transaction (the run row
 * is locked first, without waiting: *busy when somebody else holds it).  Transitions that need no statement (pending to running, the
 * end of a run, a step without compensation) are applied here.  Returns the
 * action to execute, or NULL when the run needs nothing now.
 */
SagaAction *
saga_plan_run(int64 run_id, bool *busy)
{
	SagaRunRow	run;
	SagaStepDef *defs;
	int			ndefs;
	int			guard;
	TimestampTz now = GetCurrentTimestamp();

	*busy = false;
	if (!saga_state_try_lock_run(run_id))
	{
		/* locked by somebody else: look again a little later */
		*busy = true;
		return NULL;
	}
	if (!saga_state_get_run(run_id, false, &run))
		return NULL;
	defs = saga_state_load_steps(run.saga, run.version, &ndefs);
	if (ndefs == 0)
		elog(ERROR, "saga \"%s\" version %d has no steps", run.saga, run.version);

	for (guard = 0; guard < 2 * ndefs + 4; guard++)
	{
		SagaStepRow *steps;
		int			nsteps;
		List	   *open;
		int			i;

		if (!saga_state_get_run(run_id, false, &run))
			return NULL;
		if (!is_state(run.state, SAGA_PENDING) && !is_state(run.state, SAGA_RUNNING) &&
			!is_state(run.state, SAGA_COMPENSATING))
			return NULL;

		steps = saga_state_get_steps(run_id, &nsteps);
		if (nsteps != ndefs)
			elog(ERROR, "saga run " INT64_FORMAT " has %d steps, its definition %d",
				 run_id, nsteps, ndefs);

		/* an attempt left open by a crash, or a commit not confirmed */
		open = saga_state_open_attempts(run_id);
		if (open != NIL)
		{
			SagaAttemptRow *a = (SagaAttemptRow *) linitial(open);
			SagaAction *act;

			act = new_action(is_state(a->state, ATTEMPT_RUNNING) ?
							 SAGA_ACT_RECONCILE : SAGA_ACT_RESOLVE,
							 &run, &defs[a->step_no - 1]);
			act->attempt_no = a->attempt_no;
			act->gid = a->gid;
			act->compensate = is_state(a->phase, "compensate");
			act->failures = act->compensate ? steps[a->step_no - 1].comp_failures :
				steps[a->step_no - 1].failures;
			return act;
		}

		if (is_state(run.state, SAGA_PENDING))
		{
			saga_state_run_transition(run_id, "{pending}", SAGA_RUNNING, now,
									  false, NULL, NULL);
			continue;
		}

		if (is_state(run.state, SAGA_RUNNING))
		{
			SagaStepRow *st;
			SagaAction *act;

			for (i = 0; i < nsteps; i++)
				if (!is_state(steps[i].state, SAGA_COMPLETED))
					break;
			if (i == nsteps)
			{
				saga_state_run_transition(run_id, "{running}", SAGA_COMPLETED, 0,
										  false, NULL, NULL);
				return NULL;
			}
			st = &steps[i];
			if (!is_state(st->state, SAGA_PENDING) && !is_state(st->state, SAGA_RUNNING))
			{
				/* a failed step: compensate */
				saga_state_run_transition(run_id, "{running}", SAGA_COMPENSATING, now,
										  false, NULL, NULL);
				continue;
			}
			if (st->next_at > now)
			{
				saga_state_delay(run_id, st->step_no, st->next_at, NULL, NULL);
				return NULL;
			}
			act = new_action(SAGA_ACT_FORWARD, &run, &defs[i]);
			act->sql = defs[i].forward_sql;
			act->failures = st->failures;
			bind_params(act, defs[i].forward_params, run.input, defs, steps, nsteps);
			return act;
		}

		/* compensating: steps never reached are cancelled */
		if (saga_state_steps_transition(run_id, 0, "{pending,running}",
										SAGA_CANCELLED, 0, false) > 0)
			continue;
		for (i = nsteps - 1; i >= 0; i--)
			if (is_state(steps[i].state, SAGA_COMPLETED) ||
				is_state(steps[i].state, SAGA_COMPENSATING))
				break;
		if (i < 0)
		{
			saga_state_run_transition(run_id, "{compensating}",
									  run.cancel_requested ? SAGA_CANCELLED : SAGA_COMPENSATED,
									  0, false, NULL, NULL);
			return NULL;
		}
		if (defs[i].compensate_sql == NULL)
		{
			/* nothing to undo */
			saga_state_steps_transition(run_id, i + 1, "{completed,compensating}",
										SAGA_COMPENSATED, 0, false);
			continue;
		}
		if (steps[i].next_at > now)
		{
			saga_state_delay(run_id, i + 1, steps[i].next_at, NULL, NULL);
			return NULL;
		}
		{
			SagaAction *act = new_action(SAGA_ACT_COMPENSATE, &run, &defs[i]);

			act->compensate = true;
			act->sql = defs[i].compensate_sql;
			act->failures = steps[i].comp_failures;
			bind_params(act, defs[i].compensate_params, run.input, defs, steps, nsteps);
			return act;
		}
	}
	elog(ERROR, "saga run " INT64_FORMAT " does not settle", run_id);
	return NULL;				/* keep compiler quiet */
}

/*
 * ----------------------------------------------------------------------
 * Outcomes
 * ----------------------------------------------------------------------
 */

/*
 * Record the outcome of an executed action, in the current transaction.
 * For a failure, decide between a retry and the end of the step.
 */
void
saga_record_outcome(SagaAction *act)
{
	SagaStepDef *def = act->def;
	bool		compensate = act->compensate;
	bool		counted;
	bool		final;
	int			failures;
	const char *sqlstate = act->sqlstate[0] ? act->sqlstate : NULL;
	TimestampTz now = GetCurrentTimestamp();

	if (act->kind == SAGA_ACT_RESOLVE)
	{
		saga_state_attempt_resolved(act->run_id, act->step_no, act->attempt_no);
		saga_state_delay(act->run_id, act->step_no, now, NULL, NULL);
		return;
	}

	if (act->ok)
	{
		saga_state_attempt_succeeded(act->run_id, act->step_no, act->attempt_no,
									 compensate, act->output,
									 OidIsValid(act->node_id) && act->gid != NULL);
		return;
	}

	counted = !act->transient;
	failures = act->failures + (counted ? 1 : 0);
	final = act->permanent ||
		(counted && (saga_sqlstate_listed(def->non_retryable, sqlstate) ||
					 failures >= def->max_attempts));

	if (!final)
	{
		/* a transient failure backs off with the number of attempts */
		long		delay = saga_backoff_ms(def, counted ? Max(failures, 1) :
											Max(act->attempt_no, 1));
		TimestampTz retry_at;

		if (act->kind == SAGA_ACT_RECONCILE)
			delay = Max(delay, 10);
		retry_at = TimestampTzPlusMilliseconds(now, delay);
		saga_state_attempt_failed(act->run_id, act->step_no, act->attempt_no,
								  compensate,
								  act->kind == SAGA_ACT_RECONCILE ? ATTEMPT_ABORTED : ATTEMPT_FAILED,
								  counted, act->error, sqlstate,
								  compensate ? SAGA_COMPENSATING : SAGA_RUNNING,
								  retry_at);
		return;
	}

	saga_state_attempt_failed(act->run_id, act->step_no, act->attempt_no,
							  compensate,
							  act->kind == SAGA_ACT_RECONCILE ? ATTEMPT_ABORTED : ATTEMPT_FAILED,
							  counted, act->error, sqlstate,
							  compensate ? SAGA_COMPENSATION_FAILED : SAGA_FAILED, 0);
	if (compensate)
		saga_state_run_transition(act->run_id, "{compensating}",
								  SAGA_COMPENSATION_FAILED, 0, false,
								  act->error, sqlstate);
	else
		saga_state_run_transition(act->run_id, "{pending,running}",
								  SAGA_COMPENSATING, now, false,
								  act->error, sqlstate);
}

/*
 * An action could not start (no connection, circuit open, bulkhead full):
 * no attempt was made; the run waits and says why.
 */
void
saga_record_delay(SagaAction *act, const char *error, const char *sqlstate,
				  long delay_ms)
{
	saga_state_delay(act->run_id, act->step_no,
					 TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_ms),
					 error, sqlstate);
}
