/*-------------------------------------------------------------------------
 *
 * saga_state.c
 *	  The apply path for saga state, single-node mode: changes are written
 *	  to the distx saga tables of this database, in the caller's
 *	  transaction (see saga_state.h).
 *
 * The statements are prepared once per process and kept.  They run as the
 * owner of the tables, with search_path = pg_catalog, pg_temp; values only
 * ever travel as parameters.  Timestamps of attempts and steps come from
 * clock_timestamp(), so that they order events inside one transaction too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "cluster/saga_state.h"
#include "saga/saga.h"

#define ACTIVE_STATES "{pending,running,compensating}"

typedef struct SStateCtx
{
	MemoryContext caller;
	Oid			save_userid;
	int			save_sec;
	int			nestlevel;
} SStateCtx;

typedef struct PlanEntry
{
	const char *sql;			/* hash key: the address of a literal */
	SPIPlanPtr	plan;
} PlanEntry;

static HTAB *plan_cache = NULL;

/* the owner of the saga tables: the role the statements run as */
static Oid
sstate_owner(void)
{
	Oid			nsp = get_namespace_oid("distx", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("saga_run", nsp) : InvalidOid;
	HeapTuple	tp;
	Oid			owner;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table distx.saga_run does not exist"),
				 errhint("Is the distx extension installed in this database?")));
	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tp))->relowner;
	ReleaseSysCache(tp);
	return owner;
}

static void
sstate_begin(SStateCtx *ctx)
{
	ctx->caller = CurrentMemoryContext;
	ctx->nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	GetUserIdAndSecContext(&ctx->save_userid, &ctx->save_sec);
	SetUserIdAndSecContext(sstate_owner(),
						   ctx->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
sstate_end(SStateCtx *ctx)
{
	SPI_finish();
	SetUserIdAndSecContext(ctx->save_userid, ctx->save_sec);
	AtEOXact_GUC(true, ctx->nestlevel);
	MemoryContextSwitchTo(ctx->caller);
}

static SPIPlanPtr
sstate_plan(const char *sql, int nargs, Oid *types)
{
	PlanEntry  *e;
	bool		found;

	if (plan_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(const char *);
		ctl.entrysize = sizeof(PlanEntry);
		plan_cache = hash_create("distx saga statements", 32, &ctl,
								 HASH_ELEM | HASH_BLOBS);
	}
	e = hash_search(plan_cache, &sql, HASH_ENTER, &found);
	if (!found)
	{
		SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

		if (plan == NULL)
		{
			hash_search(plan_cache, &sql, HASH_REMOVE, NULL);
			elog(ERROR, "could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		}
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		e->plan = plan;
	}
	return e->plan;
}

static int
sstate_exec(const char *sql, int nargs, Oid *types, Datum *values,
			const char *nulls)
{
	int			rc;

	rc = SPI_execute_plan(sstate_plan(sql, nargs, types), values, nulls,
						  false, 0);
	if (rc < 0)
		elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
	return rc;
}

static Datum
text_or_null(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

static Datum
ts_or_null(TimestampTz ts, char *null)
{
	*null = ts ? ' ' : 'n';
	return TimestampTzGetDatum(ts);
}

/* column accessors of the current SPI result */
static char *
col_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

static Datum
col_datum(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col,
						 isnull);
}

static int32
col_int(int row, int col)
{
	bool		isnull;
	Datum		d = col_datum(row, col, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

static TimestampTz
col_ts(int row, int col)
{
	bool		isnull;
	Datum		d = col_datum(row, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

/* a text[] column as a List of palloc'd strings in the caller's context */
static List *
col_text_list(int row, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = col_datum(row, col, &isnull);
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *enulls;
	int			n;
	int			i;
	List	   *result = NIL;
	MemoryContext old;

	if (isnull)
		return NIL;
	arr = DatumGetArrayTypeP(d);
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &enulls, &n);
	old = MemoryContextSwitchTo(cxt);
	for (i = 0; i < n; i++)
		result = lappend(result, enulls[i] ? NULL : TextDatumGetCString(elems[i]));
	MemoryContextSwitchTo(old);
	return result;
}

static Datum
text_array(List *list)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(list), 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, list)
		elems[i++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, i, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

static char *
copy_in(MemoryContext cxt, const char *s)
{
	return s ? MemoryContextStrdup(cxt, s) : NULL;
}

static Jsonb *
copy_jsonb(MemoryContext cxt, Datum d)
{
	Jsonb	   *j = DatumGetJsonbP(d);
	Jsonb	   *copy = MemoryContextAlloc(cxt, VARSIZE(j));

	memcpy(copy, j, VARSIZE(j));
	return copy;
}

/*
 * ----------------------------------------------------------------------
 * Definitions
 * ----------------------------------------------------------------------
 */

int
saga_state_latest_version(const char *saga, Oid *owner, Jsonb **normalized)
{
	static const char *sql =
		"SELECT version, owner, definition FROM distx.saga_def "
		"WHERE saga = $1 ORDER BY version DESC LIMIT 1";
	SStateCtx	ctx;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			version = 0;

	sstate_begin(&ctx);
	values[0] = CStringGetTextDatum(saga);
	sstate_exec(sql, 1, types, values, NULL);
	if (SPI_processed > 0)
	{
		bool		isnull;

		version = col_int(0, 1);
		if (owner)
			*owner = DatumGetObjectId(col_datum(0, 2, &isnull));
		if (normalized)
			*normalized = copy_jsonb(ctx.caller, col_datum(0, 3, &isnull));
	}
	sstate_end(&ctx);
	return version;
}

void
saga_state_define(SagaDef *def)
{
	static const char *sql_def =
		"INSERT INTO distx.saga_def (saga, version, owner, definition, created_at) "
		"VALUES ($1, $2, $3, $4, now())";
	static const char *sql_step =
		"INSERT INTO distx.saga_def_step (saga, version, step_no, step_name, "
		"node_id, node_name, forward_sql, forward_params, compensate_sql, "
		"compensate_params, max_attempts, base_delay_ms, multiplier, "
		"max_delay_ms, timeout_ms, non_retryable) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
	SStateCtx	ctx;
	Oid			dtypes[4] = {TEXTOID, INT4OID, OIDOID, JSONBOID};
	Datum		dvalues[4];
	Oid			stypes[16] = {TEXTOID, INT4OID, INT4OID, TEXTOID, OIDOID, TEXTOID,
		TEXTOID, TEXTARRAYOID, TEXTOID, TEXTARRAYOID, INT4OID, INT4OID,
	FLOAT8OID, INT4OID, INT4OID, TEXTARRAYOID};
	ListCell   *lc;

	sstate_begin(&ctx);
	dvalues[0] = CStringGetTextDatum(def->name);
	dvalues[1] = Int32GetDatum(def->version);
	dvalues[2] = ObjectIdGetDatum(def->owner);
	dvalues[3] = JsonbPGetDatum(def->normalized);
	sstate_exec(sql_def, 4, dtypes, dvalues, NULL);

	foreach(lc, def->steps)
	{
		SagaStepDef *s = (SagaStepDef *) lfirst(lc);
		Datum		v[16];
		char		n[16];

		memset(n, ' ', sizeof(n));
		v[0] = CStringGetTextDatum(def->name);
		v[1] = Int32GetDatum(def->version);
		v[2] = Int32GetDatum(s->step_no);
		v[3] = CStringGetTextDatum(s->name);
		v[4] = ObjectIdGetDatum(s->node_id);
		if (!OidIsValid(s->node_id))
			n[4] = 'n';
		v[5] = text_or_null(s->node_name, &n[5]);
		v[6] = CStringGetTextDatum(s->forward_sql);
		v[7] = text_array(s->forward_params);
		v[8] = text_or_null(s->compensate_sql, &n[8]);
		v[9] = text_array(s->compensate_params);
		v[10] = Int32GetDatum(s->max_attempts);
		v[11] = Int32GetDatum(s->base_delay_ms);
		v[12] = Float8GetDatum(s->multiplier);
		v[13] = Int32GetDatum(s->max_delay_ms);
		v[14] = Int32GetDatum(s->timeout_ms);
		v[15] = text_array(s->non_retryable);
		sstate_exec(sql_step, 16, stypes, v, n);
	}
	sstate_end(&ctx);
}

SagaStepDef *
saga_state_load_steps(const char *saga, int version, int *nsteps)
{
	static const char *sql =
		"SELECT step_no, step_name, node_id, node_name, forward_sql, "
		"forward_params, compensate_sql, compensate_params, max_attempts, "
		"base_delay_ms, multiplier, max_delay_ms, timeout_ms, non_retryable "
		"FROM distx.saga_def_step WHERE saga = $1 AND version = $2 ORDER BY step_no";
	SStateCtx	ctx;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	SagaStepDef *steps;
	int			i;

	sstate_begin(&ctx);
	values[0] = CStringGetTextDatum(saga);
	values[1] = Int32GetDatum(version);
	sstate_exec(sql, 2, types, values, NULL);
	*nsteps = (int) SPI_processed;
	steps = MemoryContextAllocZero(ctx.caller,
								   sizeof(SagaStepDef) * Max(SPI_processed, 1));
	for (i = 0; i < (int) SPI_processed; i++)
	{
		SagaStepDef *s = &steps[i];
		bool		isnull;
		Datum		d;

		s->step_no = col_int(i, 1);
		s->name = copy_in(ctx.caller, col_text(i, 2));
		d = col_datum(i, 3, &isnull);
		s->node_id = isnull ? InvalidOid : DatumGetObjectId(d);
		s->node_name = copy_in(ctx.caller, col_text(i, 4));
		s->forward_sql = copy_in(ctx.caller, col_text(i, 5));
		s->forward_params = col_text_list(i, 6, ctx.caller);
		s->compensate_sql = copy_in(ctx.caller, col_text(i, 7));
		s->compensate_params = col_text_list(i, 8, ctx.caller);
		s->max_attempts = col_int(i, 9);
		s->base_delay_ms = col_int(i, 10);
		s->multiplier = DatumGetFloat8(col_datum(i, 11, &isnull));
		s->max_delay_ms = col_int(i, 12);
		s->timeout_ms = col_int(i, 13);
		s->non_retryable = col_text_list(i, 14, ctx.caller);
	}
	sstate_end(&ctx);
	return steps;
}

/*
 * ----------------------------------------------------------------------
 * Runs: reads
 * ----------------------------------------------------------------------
 */

bool
saga_state_get_run(int64 run_id, bool for_update, SagaRunRow *row)
{
	static const char *sql =
		"SELECT saga, version, state, started_by, input, cancel_requested, next_at "
		"FROM distx.saga_run WHERE run_id = $1";
	static const char *sql_lock =
		"SELECT saga, version, state, started_by, input, cancel_requested, next_at "
		"FROM distx.saga_run WHERE run_id = $1 FOR UPDATE";
	SStateCtx	ctx;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		found = false;

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	sstate_exec(for_update ? sql_lock : sql, 1, types, values, NULL);
	if (SPI_processed > 0)
	{
		bool		isnull;

		found = true;
		row->run_id = run_id;
		row->saga = copy_in(ctx.caller, col_text(0, 1));
		row->version = col_int(0, 2);
		row->state = copy_in(ctx.caller, col_text(0, 3));
		row->started_by = DatumGetObjectId(col_datum(0, 4, &isnull));
		row->input = copy_jsonb(ctx.caller, col_datum(0, 5, &isnull));
		row->cancel_requested = DatumGetBool(col_datum(0, 6, &isnull));
		row->next_at = col_ts(0, 7);
	}
	sstate_end(&ctx);
	return found;
}

/*
 * Lock a run row for the worker without waiting: false if somebody else
 * holds it (an operator's saga_cancel() in an open transaction, say) or it
 * is gone.
 */
bool
saga_state_try_lock_run(int64 run_id)
{
	static const char *sql =
		"SELECT 1 FROM distx.saga_run WHERE run_id = $1 FOR UPDATE SKIP LOCKED";
	SStateCtx	ctx;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	bool		locked;

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	sstate_exec(sql, 1, types, values, NULL);
	locked = SPI_processed > 0;
	sstate_end(&ctx);
	return locked;
}

SagaStepRow *
saga_state_get_steps(int64 run_id, int *nsteps)
{
	static const char *sql =
		"SELECT step_no, state, output, failures, comp_failures, next_at "
		"FROM distx.saga_run_step WHERE run_id = $1 ORDER BY step_no";
	SStateCtx	ctx;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	SagaStepRow *rows;
	int			i;

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	sstate_exec(sql, 1, types, values, NULL);
	*nsteps = (int) SPI_processed;
	rows = MemoryContextAllocZero(ctx.caller,
								  sizeof(SagaStepRow) * Max(SPI_processed, 1));
	for (i = 0; i < (int) SPI_processed; i++)
	{
		bool		isnull;
		Datum		d;

		rows[i].step_no = col_int(i, 1);
		rows[i].state = copy_in(ctx.caller, col_text(i, 2));
		d = col_datum(i, 3, &isnull);
		rows[i].output = isnull ? NULL : copy_jsonb(ctx.caller, d);
		rows[i].failures = col_int(i, 4);
		rows[i].comp_failures = col_int(i, 5);
		rows[i].next_at = col_ts(i, 6);
	}
	sstate_end(&ctx);
	return rows;
}

List *
saga_state_open_attempts(int64 run_id)
{
	static const char *sql =
		"SELECT step_no, attempt_no, phase, state, gid, commit_pending "
		"FROM distx.saga_attempt WHERE run_id = $1 "
		"AND (state = 'running' OR commit_pending) ORDER BY step_no, attempt_no";
	SStateCtx	ctx;
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	List	   *result = NIL;
	int			i;

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	sstate_exec(sql, 1, types, values, NULL);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		SagaAttemptRow *a = MemoryContextAllocZero(ctx.caller, sizeof(SagaAttemptRow));
		bool		isnull;
		MemoryContext old;

		a->step_no = col_int(i, 1);
		a->attempt_no = col_int(i, 2);
		a->phase = copy_in(ctx.caller, col_text(i, 3));
		a->state = copy_in(ctx.caller, col_text(i, 4));
		a->gid = copy_in(ctx.caller, col_text(i, 5));
		a->commit_pending = DatumGetBool(col_datum(i, 6, &isnull));
		old = MemoryContextSwitchTo(ctx.caller);
		result = lappend(result, a);
		MemoryContextSwitchTo(old);
	}
	sstate_end(&ctx);
	return result;
}

/*
 * The runs that are due now (at most limit, the longest waiting first), and
 * in *next_due_ms the time until the next one that is not (-1: none).
 */
List *
saga_state_due_runs(int limit, long *next_due_ms)
{
	static const char *sql =
		"SELECT run_id FROM distx.saga_run "
		"WHERE state IN ('pending', 'running', 'compensating') "
		"AND next_at <= clock_timestamp() ORDER BY next_at LIMIT $1";
	static const char *sql_next =
		"SELECT min(next_at) FROM distx.saga_run "
		"WHERE state IN ('pending', 'running', 'compensating') "
		"AND next_at > clock_timestamp()";
	SStateCtx	ctx;
	Oid			types[1] = {INT4OID};
	Datum		values[1];
	List	   *result = NIL;
	int			i;
	TimestampTz next;

	sstate_begin(&ctx);
	values[0] = Int32GetDatum(limit);
	sstate_exec(sql, 1, types, values, NULL);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		bool		isnull;
		int64		run_id = DatumGetInt64(col_datum(i, 1, &isnull));
		MemoryContext old = MemoryContextSwitchTo(ctx.caller);
		int64	   *p = palloc(sizeof(int64));

		*p = run_id;
		result = lappend(result, p);
		MemoryContextSwitchTo(old);
	}
	sstate_exec(sql_next, 0, NULL, NULL, NULL);
	next = col_ts(0, 1);
	*next_due_ms = next ? TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next) : -1;
	sstate_end(&ctx);
	return result;
}

/*
 * ----------------------------------------------------------------------
 * Runs: writes
 * ----------------------------------------------------------------------
 */

/*
 * Create a run and its steps.  With a run_key that an existing run already
 * has, nothing is created: the existing run's id is returned and its saga
 * in *existing_saga.
 */
int64
saga_state_create_run(const char *saga, int version, const char *run_key,
					  Jsonb *input, Oid started_by, int nsteps,
					  char **existing_saga)
{
	static const char *sql_run =
		"INSERT INTO distx.saga_run (run_id, saga, version, run_key, input, state, "
		"started_by, created_at, updated_at, next_at) "
		"VALUES (nextval('distx.saga_run_id_seq'), $1, $2, $3, $4, 'pending', $5, "
		"now(), clock_timestamp(), clock_timestamp()) "
		"ON CONFLICT (run_key) DO NOTHING RETURNING run_id";
	static const char *sql_existing =
		"SELECT run_id, saga FROM distx.saga_run WHERE run_key = $1";
	static const char *sql_steps =
		"INSERT INTO distx.saga_run_step (run_id, step_no, state) "
		"SELECT $1, g, 'pending' FROM generate_series(1, $2) g";
	SStateCtx	ctx;
	Oid			types[5] = {TEXTOID, INT4OID, TEXTOID, JSONBOID, OIDOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int64		run_id;
	bool		isnull;

	*existing_saga = NULL;
	sstate_begin(&ctx);
	values[0] = CStringGetTextDatum(saga);
	values[1] = Int32GetDatum(version);
	values[2] = text_or_null(run_key, &nulls[2]);
	values[3] = JsonbPGetDatum(input);
	values[4] = ObjectIdGetDatum(started_by);
	sstate_exec(sql_run, 5, types, values, nulls);
	if (SPI_processed == 0)
	{
		Oid			t1[1] = {TEXTOID};

		sstate_exec(sql_existing, 1, t1, &values[2], NULL);
		if (SPI_processed == 0)
			elog(ERROR, "saga run with key \"%s\" vanished", run_key);
		run_id = DatumGetInt64(col_datum(0, 1, &isnull));
		*existing_saga = copy_in(ctx.caller, col_text(0, 2));
	}
	else
	{
		Oid			t2[2] = {INT8OID, INT4OID};
		Datum		v2[2];

		run_id = DatumGetInt64(col_datum(0, 1, &isnull));
		v2[0] = Int64GetDatum(run_id);
		v2[1] = Int32GetDatum(nsteps);
		sstate_exec(sql_steps, 2, t2, v2, NULL);
	}
	sstate_end(&ctx);
	return run_id;
}

/*
 * Move a run from one of from_states (a text[] literal) to to_state.
 * next_at 0 means none; error and sqlstate, when given, become the run's
 * last error.  Returns false if the run was in none of from_states.
 */
bool
saga_state_run_transition(int64 run_id, const char *from_states,
						  const char *to_state, TimestampTz next_at,
						  bool cancel_requested, const char *error,
						  const char *sqlstate)
{
	static const char *sql =
		"UPDATE distx.saga_run SET state = $3, next_at = $4, "
		"cancel_requested = cancel_requested OR $5, "
		"last_error = coalesce($6, last_error), "
		"last_sqlstate = CASE WHEN $6 IS NULL THEN last_sqlstate ELSE $7 END, "
		"updated_at = clock_timestamp(), "
		"finished_at = CASE WHEN $3 IN ('completed', 'compensated', "
		"'compensation_failed', 'cancelled') THEN clock_timestamp() END "
		"WHERE run_id = $1 AND state = ANY ($2::text[])";
	SStateCtx	ctx;
	Oid			types[7] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID,
	TEXTOID, TEXTOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		done;

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(from_states);
	values[2] = CStringGetTextDatum(to_state);
	values[3] = ts_or_null(next_at, &nulls[3]);
	values[4] = BoolGetDatum(cancel_requested);
	values[5] = text_or_null(error, &nulls[5]);
	values[6] = text_or_null(sqlstate, &nulls[6]);
	sstate_exec(sql, 7, types, values, nulls);
	done = SPI_processed > 0;
	sstate_end(&ctx);
	return done;
}

/*
 * Move steps of a run that are in one of from_states to to_state: one step,
 * or with step_no 0 all of them.  With reset_failures the failure counter
 * of the new phase starts again from zero.  Returns the number moved.
 */
int
saga_state_steps_transition(int64 run_id, int step_no, const char *from_states,
							const char *to_state, TimestampTz next_at,
							bool reset_failures)
{
	static const char *sql =
		"UPDATE distx.saga_run_step SET state = $4, next_at = $5, "
		"comp_failures = CASE WHEN $6 THEN 0 ELSE comp_failures END, "
		"compensated_at = CASE WHEN $4 = 'compensated' THEN clock_timestamp() "
		"ELSE compensated_at END "
		"WHERE run_id = $1 AND ($2 = 0 OR step_no = $2) AND state = ANY ($3::text[])";
	SStateCtx	ctx;
	Oid			types[6] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
	int			n;

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(step_no);
	values[2] = CStringGetTextDatum(from_states);
	values[3] = CStringGetTextDatum(to_state);
	values[4] = ts_or_null(next_at, &nulls[4]);
	values[5] = BoolGetDatum(reset_failures);
	sstate_exec(sql, 6, types, values, nulls);
	n = (int) SPI_processed;
	sstate_end(&ctx);
	return n;
}

/*
 * A step could not be started (its node is unreachable, its circuit open,
 * its bulkhead full): nothing ran, no attempt is recorded; the run waits.
 */
void
saga_state_delay(int64 run_id, int step_no, TimestampTz next_at,
				 const char *error, const char *sqlstate)
{
	static const char *sql_run =
		"UPDATE distx.saga_run SET next_at = $2, last_error = coalesce($3, last_error), "
		"last_sqlstate = CASE WHEN $3 IS NULL THEN last_sqlstate ELSE $4 END, "
		"updated_at = clock_timestamp() "
		"WHERE run_id = $1 AND state IN ('pending', 'running', 'compensating')";
	static const char *sql_step =
		"UPDATE distx.saga_run_step SET next_at = $3, last_error = coalesce($4, last_error), "
		"last_sqlstate = CASE WHEN $4 IS NULL THEN last_sqlstate ELSE $5 END "
		"WHERE run_id = $1 AND step_no = $2";
	SStateCtx	ctx;
	Oid			t1[4] = {INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Oid			t2[5] = {INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		v[5];
	char		n[5] = {' ', ' ', ' ', ' ', ' '};

	sstate_begin(&ctx);
	v[0] = Int64GetDatum(run_id);
	v[1] = TimestampTzGetDatum(next_at);
	v[2] = text_or_null(error, &n[2]);
	v[3] = text_or_null(sqlstate, &n[3]);
	sstate_exec(sql_run, 4, t1, v, n);

	v[1] = Int32GetDatum(step_no);
	v[2] = TimestampTzGetDatum(next_at);
	n[2] = ' ';
	v[3] = text_or_null(error, &n[3]);
	v[4] = text_or_null(sqlstate, &n[4]);
	sstate_exec(sql_step, 5, t2, v, n);
	sstate_end(&ctx);
}

/*
 * Forget finished runs (completed, compensated, cancelled) that ended
 * before finished_before and that for_role may act on.  Runs stopped in
 * compensation_failed are kept: they need an operator.
 */
int64
saga_state_purge(TimestampTz finished_before, Oid for_role)
{
	static const char *sql =
		"DELETE FROM distx.saga_run WHERE state IN ('completed', 'compensated', 'cancelled') "
		"AND finished_at < $1 AND pg_has_role($2, started_by, 'USAGE')";
	SStateCtx	ctx;
	Oid			types[2] = {TIMESTAMPTZOID, OIDOID};
	Datum		values[2];
	int64		n;

	sstate_begin(&ctx);
	values[0] = TimestampTzGetDatum(finished_before);
	values[1] = ObjectIdGetDatum(for_role);
	sstate_exec(sql, 2, types, values, NULL);
	n = (int64) SPI_processed;
	sstate_end(&ctx);
	return n;
}

/*
 * ----------------------------------------------------------------------
 * Attempts
 * ----------------------------------------------------------------------
 */

/*
 * Record an attempt before it runs: returns its number.  gid_prefix, for a
 * remote step, is completed with the attempt number to name its prepared
 * transaction.  The run is not due again before lease_ms: its outcome
 * moves it on; if none comes (the worker stopped), it is reconciled then.
 */
int
saga_state_claim_attempt(int64 run_id, int step_no, bool compensate,
						 const char *gid_prefix, int lease_ms)
{
	static const char *sql_attempt =
		"INSERT INTO distx.saga_attempt (run_id, step_no, attempt_no, phase, state, "
		"gid, started_at) "
		"SELECT $1, $2, coalesce(max(attempt_no), 0) + 1, $3, 'running', "
		"$4 || (coalesce(max(attempt_no), 0) + 1), clock_timestamp() "
		"FROM distx.saga_attempt WHERE run_id = $1 AND step_no = $2 "
		"RETURNING attempt_no";
	static const char *sql_step =
		"UPDATE distx.saga_run_step SET state = $3, next_at = NULL, "
		"started_at = coalesce(started_at, clock_timestamp()) "
		"WHERE run_id = $1 AND step_no = $2";
	static const char *sql_lease =
		"UPDATE distx.saga_run SET next_at = clock_timestamp() + $2 * interval '1 ms', "
		"updated_at = clock_timestamp() "
		"WHERE run_id = $1 AND state IN ('pending', 'running', 'compensating')";
	SStateCtx	ctx;
	Oid			types[4] = {INT8OID, INT4OID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			attempt_no;

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(step_no);
	values[2] = CStringGetTextDatum(compensate ? "compensate" : "forward");
	values[3] = text_or_null(gid_prefix, &nulls[3]);
	sstate_exec(sql_attempt, 4, types, values, nulls);
	attempt_no = col_int(0, 1);
	values[2] = CStringGetTextDatum(compensate ? SAGA_COMPENSATING : SAGA_RUNNING);
	sstate_exec(sql_step, 3, types, values, NULL);
	{
		Oid			lt[2] = {INT8OID, INT4OID};
		Datum		lv[2];

		lv[0] = Int64GetDatum(run_id);
		lv[1] = Int32GetDatum(lease_ms);
		sstate_exec(sql_lease, 2, lt, lv, NULL);
	}
	sstate_end(&ctx);
	return attempt_no;
}

/*
 * After a restart of the worker: runs with an attempt that was in flight
 * (or a commit not confirmed) are due at once, to be reconciled.
 */
void
saga_state_wake_interrupted(void)
{
	static const char *sql =
		"UPDATE distx.saga_run r SET next_at = clock_timestamp() "
		"WHERE state IN ('pending', 'running', 'compensating') "
		"AND EXISTS (SELECT 1 FROM distx.saga_attempt a WHERE a.run_id = r.run_id "
		"AND (a.state = 'running' OR a.commit_pending))";
	SStateCtx	ctx;

	sstate_begin(&ctx);
	sstate_exec(sql, 0, NULL, NULL, NULL);
	sstate_end(&ctx);
}

/*
 * An attempt succeeded: the step is completed (forward, with its output)
 * or compensated, and the run is due again at once.  commit_pending: the
 * attempt's remote prepared transaction is still to be committed.
 */
void
saga_state_attempt_succeeded(int64 run_id, int step_no, int attempt_no,
							 bool compensate, const char *output,
							 bool commit_pending)
{
	static const char *sql_attempt =
		"UPDATE distx.saga_attempt SET state = 'succeeded', commit_pending = $4, "
		"finished_at = clock_timestamp() "
		"WHERE run_id = $1 AND step_no = $2 AND attempt_no = $3";
	static const char *sql_forward =
		"UPDATE distx.saga_run_step SET state = 'completed', output = $3, "
		"completed_at = clock_timestamp(), next_at = NULL "
		"WHERE run_id = $1 AND step_no = $2";
	static const char *sql_compensate =
		"UPDATE distx.saga_run_step SET state = 'compensated', "
		"compensated_at = clock_timestamp(), next_at = NULL "
		"WHERE run_id = $1 AND step_no = $2";
	static const char *sql_run =
		"UPDATE distx.saga_run SET next_at = clock_timestamp(), "
		"updated_at = clock_timestamp() "
		"WHERE run_id = $1 AND state IN ('pending', 'running', 'compensating')";
	SStateCtx	ctx;
	Oid			types[4] = {INT8OID, INT4OID, INT4OID, BOOLOID};
	Oid			ftypes[3] = {INT8OID, INT4OID, JSONBOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(step_no);
	values[2] = Int32GetDatum(attempt_no);
	values[3] = BoolGetDatum(commit_pending);
	sstate_exec(sql_attempt, 4, types, values, NULL);
	if (compensate)
		sstate_exec(sql_compensate, 2, types, values, NULL);
	else
	{
		if (output)
			values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(output));
		else
			nulls[2] = 'n';
		sstate_exec(sql_forward, 3, ftypes, values, nulls);
	}
	sstate_exec(sql_run, 1, types, values, NULL);
	sstate_end(&ctx);
}

/*
 * An attempt failed (or was aborted by a crash and rolled back).  counted:
 * it counts against the step's max_attempts.  The step moves to step_state
 * (still running/compensating with a retry time, or failed /
 * compensation_failed), and the run is due again at retry_at (0: the caller
 * moves the run itself).
 */
void
saga_state_attempt_failed(int64 run_id, int step_no, int attempt_no,
						  bool compensate, const char *attempt_state,
						  bool counted, const char *error,
						  const char *sqlstate, const char *step_state,
						  TimestampTz retry_at)
{
	static const char *sql_attempt =
		"UPDATE distx.saga_attempt SET state = $4, counted = $5, error = $6, "
		"sqlstate = $7, finished_at = clock_timestamp() "
		"WHERE run_id = $1 AND step_no = $2 AND attempt_no = $3";
	static const char *sql_step =
		"UPDATE distx.saga_run_step SET state = $3, next_at = $4, "
		"last_error = $5, last_sqlstate = $6, "
		"failures = failures + CASE WHEN $7 AND NOT $8 THEN 1 ELSE 0 END, "
		"comp_failures = comp_failures + CASE WHEN $7 AND $8 THEN 1 ELSE 0 END "
		"WHERE run_id = $1 AND step_no = $2";
	static const char *sql_run =
		"UPDATE distx.saga_run SET last_error = $2, last_sqlstate = $3, "
		"next_at = coalesce($4, next_at), updated_at = clock_timestamp() "
		"WHERE run_id = $1 AND state IN ('pending', 'running', 'compensating')";
	SStateCtx	ctx;
	Oid			ta[7] = {INT8OID, INT4OID, INT4OID, TEXTOID, BOOLOID, TEXTOID, TEXTOID};
	Oid			ts[8] = {INT8OID, INT4OID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID,
	BOOLOID, BOOLOID};
	Oid			tr[4] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		v[8];
	char		n[8];

	sstate_begin(&ctx);
	memset(n, ' ', sizeof(n));
	v[0] = Int64GetDatum(run_id);
	v[1] = Int32GetDatum(step_no);
	v[2] = Int32GetDatum(attempt_no);
	v[3] = CStringGetTextDatum(attempt_state);
	v[4] = BoolGetDatum(counted);
	v[5] = text_or_null(error, &n[5]);
	v[6] = text_or_null(sqlstate, &n[6]);
	sstate_exec(sql_attempt, 7, ta, v, n);

	memset(n, ' ', sizeof(n));
	v[2] = CStringGetTextDatum(step_state);
	v[3] = ts_or_null(retry_at, &n[3]);
	v[4] = text_or_null(error, &n[4]);
	v[5] = text_or_null(sqlstate, &n[5]);
	v[6] = BoolGetDatum(counted);
	v[7] = BoolGetDatum(compensate);
	sstate_exec(sql_step, 8, ts, v, n);

	memset(n, ' ', sizeof(n));
	v[1] = text_or_null(error, &n[1]);
	v[2] = text_or_null(sqlstate, &n[2]);
	v[3] = ts_or_null(retry_at, &n[3]);
	sstate_exec(sql_run, 4, tr, v, n);
	sstate_end(&ctx);
}

/* the remote prepared transaction of a succeeded attempt is committed */
void
saga_state_attempt_resolved(int64 run_id, int step_no, int attempt_no)
{
	static const char *sql =
		"UPDATE distx.saga_attempt SET commit_pending = false "
		"WHERE run_id = $1 AND step_no = $2 AND attempt_no = $3";
	SStateCtx	ctx;
	Oid			types[3] = {INT8OID, INT4OID, INT4OID};
	Datum		values[3];

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(step_no);
	values[2] = Int32GetDatum(attempt_no);
	sstate_exec(sql, 3, types, values, NULL);
	sstate_end(&ctx);
}
