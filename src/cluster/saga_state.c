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

#include "cluster/cluster.h"
#include "cluster/saga_state.h"
#include "foreign/foreign.h"
#include "utils/acl.h"
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
 * Remote attempts recorded as aborted or failed that finished after
 * since: their prepared transactions, if any exist, must never commit.
 * SagaAttemptRow with step_no, attempt_no, state and gid; the node and the
 * role in node_id / userid of a SagaAbandoned.
 */
List *
saga_state_abandoned_attempts(TimestampTz since)
{
	static const char *sql =
		"SELECT d.node_name, r.started_by, a.gid, a.state FROM distx.saga_attempt a "
		"JOIN distx.saga_run r ON r.run_id = a.run_id "
		"JOIN distx.saga_def_step d ON d.saga = r.saga AND d.version = r.version "
		"AND d.step_no = a.step_no "
		"WHERE a.gid IS NOT NULL AND d.node_name IS NOT NULL "
		"AND a.state IN ('aborted', 'failed') AND a.finished_at > $1 "
		"ORDER BY a.run_id, a.step_no, a.attempt_no";
	SStateCtx	ctx;
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1];
	List	   *result = NIL;
	int			i;

	sstate_begin(&ctx);
	values[0] = TimestampTzGetDatum(since);
	sstate_exec(sql, 1, types, values, NULL);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		SagaAbandoned *a = MemoryContextAllocZero(ctx.caller, sizeof(SagaAbandoned));
		bool		isnull;
		MemoryContext old;

		a->node_name = copy_in(ctx.caller, col_text(i, 1));
		a->userid = DatumGetObjectId(col_datum(i, 2, &isnull));
		a->gid = copy_in(ctx.caller, col_text(i, 3));
		a->state = copy_in(ctx.caller, col_text(i, 4));
		old = MemoryContextSwitchTo(ctx.caller);
		result = lappend(result, a);
		MemoryContextSwitchTo(old);
	}
	sstate_end(&ctx);
	return result;
}

/*
 * ----------------------------------------------------------------------
 * Entries (cluster mode): encoding, proposing
 * ----------------------------------------------------------------------
 */

/* the term the worker's proposals carry (0: a session's) */
static uint64 proposal_term = 0;

/* the last proposal was refused for its term */
static bool proposal_refused = false;

/* the last saga_state_attempt_succeeded() was refused (see there) */
bool		saga_state_success_refused = false;

bool
saga_state_clustered(void)
{
	return cluster_is_member();
}

void
saga_state_set_term(uint64 term)
{
	proposal_term = term;
}

static void
entry_begin(StringInfo buf, int op)
{
	initStringInfo(buf);
	entry_put_u8(buf, ENTRY_SAGA);
	entry_put_u8(buf, (uint8) op);
	entry_put_u64(buf, proposal_term);
	entry_put_u64(buf, (uint64) GetCurrentTimestamp());
}

static void
entry_put_list(StringInfo buf, List *list)
{
	ListCell   *lc;

	if (list_length(list) > PG_UINT16_MAX)
		elog(ERROR, "list of %d elements in a saga entry", list_length(list));
	entry_put_u16(buf, (uint16) list_length(list));
	foreach(lc, list)
		entry_put_text(buf, (const char *) lfirst(lc));
}

static List *
entry_get_list(EntryReader *r)
{
	int			n = entry_get_u16(r);
	List	   *list = NIL;
	int			i;

	for (i = 0; i < n; i++)
	{
		char	   *t = entry_get_text(r);

		if (t == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed %s: NULL in a list", r->what)));
		list = lappend(list, t);
	}
	return list;
}

/*
 * Propose a saga entry from any member and wait until it is applied here;
 * returns what applying it returned.  An entry refused for its term (the
 * worker's leadership ended) is an error.
 */
static int64
entry_propose(StringInfo buf, const char *what)
{
	ProposalOutcome out;

	proposal_refused = false;
	if (buf->len > CLUSTER_PROPOSAL_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is too large for the distx cluster", what),
				 errdetail("It takes %d bytes in a Raft entry; at most %d fit.",
						   buf->len, CLUSTER_PROPOSAL_MAX)));
	cluster_propose_anywhere(PROPOSAL_ENTRY, 0, buf->data, (uint32) buf->len, true, &out);
	if (out.rc != PROPOSAL_OK)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("%s was not committed in the distx cluster: %s", what,
						out.rc == PROPOSAL_LOST ? "lost in a change of leader" : out.errmsg)));
	if (out.result == SAGA_ENTRY_REFUSED)
	{
		proposal_refused = true;
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("%s was refused: this server stopped acting as the coordinator in term %llu",
						what, (unsigned long long) proposal_term),
				 errdetail("It was committed in term %llu, under another leader.",
						   (unsigned long long) out.term)));
	}
	return out.result;
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

/*
 * Write a definition.  If that version exists already (a retried entry, or
 * two nodes that defined the saga at once), nothing is written: returns the
 * version if it is the same definition, else 0.
 */
static int
do_define(SagaDef *def, TimestampTz at)
{
	static const char *sql_exists =
		"SELECT definition = $3 FROM distx.saga_def WHERE saga = $1 AND version = $2";
	static const char *sql_def =
		"INSERT INTO distx.saga_def (saga, version, owner, definition, created_at) "
		"VALUES ($1, $2, $3, $4, $5)";
	static const char *sql_step =
		"INSERT INTO distx.saga_def_step (saga, version, step_no, step_name, "
		"node_id, node_name, forward_sql, forward_params, compensate_sql, "
		"compensate_params, max_attempts, base_delay_ms, multiplier, "
		"max_delay_ms, timeout_ms, non_retryable) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";
	SStateCtx	ctx;
	Oid			etypes[3] = {TEXTOID, INT4OID, JSONBOID};
	Datum		evalues[3];
	Oid			dtypes[5] = {TEXTOID, INT4OID, OIDOID, JSONBOID, TIMESTAMPTZOID};
	Datum		dvalues[5];
	Oid			stypes[16] = {TEXTOID, INT4OID, INT4OID, TEXTOID, OIDOID, TEXTOID,
		TEXTOID, TEXTARRAYOID, TEXTOID, TEXTARRAYOID, INT4OID, INT4OID,
	FLOAT8OID, INT4OID, INT4OID, TEXTARRAYOID};
	ListCell   *lc;
	int			result = def->version;

	sstate_begin(&ctx);
	evalues[0] = CStringGetTextDatum(def->name);
	evalues[1] = Int32GetDatum(def->version);
	evalues[2] = JsonbPGetDatum(def->normalized);
	sstate_exec(sql_exists, 3, etypes, evalues, NULL);
	if (SPI_processed > 0)
	{
		bool		isnull;

		if (!DatumGetBool(col_datum(0, 1, &isnull)))
			result = 0;
		sstate_end(&ctx);
		return result;
	}

	dvalues[0] = CStringGetTextDatum(def->name);
	dvalues[1] = Int32GetDatum(def->version);
	dvalues[2] = ObjectIdGetDatum(def->owner);
	dvalues[3] = JsonbPGetDatum(def->normalized);
	dvalues[4] = TimestampTzGetDatum(at);
	sstate_exec(sql_def, 5, dtypes, dvalues, NULL);

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
	return result;
}

/*
 * Define a saga version.  Returns the version, or 0 when another
 * definition of that version was committed first (only in a cluster, where
 * two nodes may define the same saga at once).
 */
int
saga_state_define(SagaDef *def)
{
	StringInfoData buf;
	ListCell   *lc;

	if (!saga_state_clustered())
		return do_define(def, GetCurrentTimestamp());

	entry_begin(&buf, SAGA_OP_DEFINE);
	entry_put_text(&buf, def->name);
	entry_put_u32(&buf, (uint32) def->version);
	entry_put_text(&buf, GetUserNameFromId(def->owner, false));
	entry_put_text(&buf, JsonbToCString(NULL, &def->normalized->root,
										VARSIZE(def->normalized)));
	entry_put_u16(&buf, list_length(def->steps));
	foreach(lc, def->steps)
	{
		SagaStepDef *s = (SagaStepDef *) lfirst(lc);
		uint64		bits;

		entry_put_u32(&buf, (uint32) s->step_no);
		entry_put_text(&buf, s->name);
		entry_put_text(&buf, s->node_name);
		entry_put_text(&buf, s->forward_sql);
		entry_put_list(&buf, s->forward_params);
		entry_put_text(&buf, s->compensate_sql);
		entry_put_list(&buf, s->compensate_params);
		entry_put_u32(&buf, (uint32) s->max_attempts);
		entry_put_u32(&buf, (uint32) s->base_delay_ms);
		memcpy(&bits, &s->multiplier, sizeof(bits));
		entry_put_u64(&buf, bits);
		entry_put_u32(&buf, (uint32) s->max_delay_ms);
		entry_put_u32(&buf, (uint32) s->timeout_ms);
		entry_put_list(&buf, s->non_retryable);
	}
	return (int) entry_propose(&buf, "the saga definition");
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

	/*
	 * Server OIDs are this server's own: in a cluster, where the definition
	 * came from another node, a step's node is found by its name (every
	 * coordinator declares the participants under the same names).
	 */
	for (i = 0; i < *nsteps; i++)
		if (steps[i].node_name != NULL &&
			(!OidIsValid(steps[i].node_id) || saga_state_clustered()))
			steps[i].node_id = get_foreign_server_oid(steps[i].node_name, false);
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
	/* in a cluster the Raft worker must never wait for a lock: none is taken */
	if (saga_state_clustered())
		for_update = false;
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
 * is gone.  In a cluster nothing locks saga rows (changes are entries,
 * compare-and-set when they are applied): always true.
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

	if (saga_state_clustered())
		return true;
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
 *
 * Each writer has a do_ function that changes the tables (at: the time
 * written, the proposer's clock in a cluster), called directly in
 * single-node mode and by saga_state_apply() on every member of a
 * cluster.
 * ----------------------------------------------------------------------
 */

/*
 * Create a run and its steps, idempotently on run_key and request.  run_id
 * 0 takes the next value of the local sequence (single node).  Returns the
 * run's id (of the existing run when there is one: its saga in
 * *existing_saga), or 0 when the saga version does not exist.
 */
static int64
do_create_run(const char *saga, int version, const char *run_key,
			  const char *request, Jsonb *input, Oid started_by, int nsteps,
			  int64 run_id, TimestampTz at, char **existing_saga)
{
	static const char *sql_run =
		"INSERT INTO distx.saga_run (run_id, saga, version, run_key, input, state, "
		"started_by, created_at, updated_at, next_at, request_id) "
		"SELECT coalesce($6, nextval('distx.saga_run_id_seq')), $1, $2, $3, $4, 'pending', "
		"$5, $7, $7, $7, $8 "
		"WHERE EXISTS (SELECT 1 FROM distx.saga_def WHERE saga = $1 AND version = $2) "
		"ON CONFLICT DO NOTHING RETURNING run_id";
	static const char *sql_existing =
		"SELECT run_id, saga FROM distx.saga_run WHERE run_key = $1 OR request_id = $2 "
		"ORDER BY run_id LIMIT 1";
	static const char *sql_steps =
		"INSERT INTO distx.saga_run_step (run_id, step_no, state) "
		"SELECT $1, g, 'pending' FROM generate_series(1, $2) g";
	static const char *sql_seq =
		"SELECT pg_catalog.setval('distx.saga_run_id_seq', $1) "
		"FROM distx.saga_run_id_seq WHERE last_value < $1";
	SStateCtx	ctx;
	Oid			types[8] = {TEXTOID, INT4OID, TEXTOID, JSONBOID, OIDOID, INT8OID,
	TIMESTAMPTZOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;

	*existing_saga = NULL;
	sstate_begin(&ctx);
	values[0] = CStringGetTextDatum(saga);
	values[1] = Int32GetDatum(version);
	values[2] = text_or_null(run_key, &nulls[2]);
	values[3] = JsonbPGetDatum(input);
	values[4] = ObjectIdGetDatum(started_by);
	values[5] = Int64GetDatum(run_id);
	nulls[5] = run_id ? ' ' : 'n';
	values[6] = TimestampTzGetDatum(at);
	values[7] = text_or_null(request, &nulls[7]);
	sstate_exec(sql_run, 8, types, values, nulls);
	if (SPI_processed == 0)
	{
		Oid			t1[2] = {TEXTOID, TEXTOID};
		Datum		v1[2];
		char		n1[2];

		v1[0] = values[2];
		n1[0] = nulls[2];
		v1[1] = values[7];
		n1[1] = nulls[7];
		sstate_exec(sql_existing, 2, t1, v1, n1);
		if (SPI_processed == 0)
			run_id = 0;			/* no such saga version */
		else
		{
			run_id = DatumGetInt64(col_datum(0, 1, &isnull));
			*existing_saga = copy_in(ctx.caller, col_text(0, 2));
		}
	}
	else
	{
		Oid			t2[2] = {INT8OID, INT4OID};
		Datum		v2[2];

		run_id = DatumGetInt64(col_datum(0, 1, &isnull));
		v2[0] = Int64GetDatum(run_id);
		v2[1] = Int32GetDatum(nsteps);
		sstate_exec(sql_steps, 2, t2, v2, NULL);
		/* a server that leaves the cluster goes on with higher ids */
		sstate_exec(sql_seq, 1, t2, v2, NULL);
	}
	sstate_end(&ctx);
	return run_id;
}

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
	static const char *sql_request =
		"SELECT saga, request_id FROM distx.saga_run WHERE run_id = $1";
	StringInfoData buf;
	uint64		token;
	char	   *request;
	int64		run_id;
	SStateCtx	ctx;
	Oid			types[1] = {INT8OID};
	Datum		values[1];

	if (!saga_state_clustered())
	{
		run_id = do_create_run(saga, version, run_key, NULL, input, started_by,
							   nsteps, 0, GetCurrentTimestamp(), existing_saga);
		if (run_id == 0)
			elog(ERROR, "saga \"%s\" version %d vanished", saga, version);
		return run_id;
	}

	/* a retried proposal finds the run by this token */
	if (!pg_strong_random(&token, sizeof(token)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random request id")));
	request = psprintf("%016llx", (unsigned long long) token);

	entry_begin(&buf, SAGA_OP_CREATE_RUN);
	entry_put_text(&buf, saga);
	entry_put_u32(&buf, (uint32) version);
	entry_put_text(&buf, run_key);
	entry_put_text(&buf, request);
	entry_put_text(&buf, JsonbToCString(NULL, &input->root, VARSIZE(input)));
	entry_put_text(&buf, GetUserNameFromId(started_by, false));
	entry_put_u32(&buf, (uint32) nsteps);
	run_id = entry_propose(&buf, "the new saga run");
	if (run_id <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("saga \"%s\" version %d does not exist in the distx cluster",
						saga, version)));

	/* applied here: another request's run is an existing one */
	*existing_saga = NULL;
	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	sstate_exec(sql_request, 1, types, values, NULL);
	if (SPI_processed > 0)
	{
		char	   *their = col_text(0, 2);

		if (their == NULL || strcmp(their, request) != 0)
			*existing_saga = copy_in(ctx.caller, col_text(0, 1));
	}
	sstate_end(&ctx);
	return run_id;
}

static bool
do_run_transition(int64 run_id, const char *from_states, const char *to_state,
				  TimestampTz next_at, bool cancel_requested, const char *error,
				  const char *sqlstate, TimestampTz at)
{
	static const char *sql =
		"UPDATE distx.saga_run SET state = $3, next_at = $4, "
		"cancel_requested = cancel_requested OR $5, "
		"last_error = coalesce($6, last_error), "
		"last_sqlstate = CASE WHEN $6 IS NULL THEN last_sqlstate ELSE $7 END, "
		"updated_at = $8, "
		"finished_at = CASE WHEN $3 IN ('completed', 'compensated', "
		"'compensation_failed', 'cancelled') THEN $8 END "
		"WHERE run_id = $1 AND state = ANY ($2::text[])";
	SStateCtx	ctx;
	Oid			types[8] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID,
	TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		done;

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	values[1] = CStringGetTextDatum(from_states);
	values[2] = CStringGetTextDatum(to_state);
	values[3] = ts_or_null(next_at, &nulls[3]);
	values[4] = BoolGetDatum(cancel_requested);
	values[5] = text_or_null(error, &nulls[5]);
	values[6] = text_or_null(sqlstate, &nulls[6]);
	values[7] = TimestampTzGetDatum(at);
	sstate_exec(sql, 8, types, values, nulls);
	done = SPI_processed > 0;
	sstate_end(&ctx);
	return done;
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
	StringInfoData buf;

	if (!saga_state_clustered())
		return do_run_transition(run_id, from_states, to_state, next_at,
								 cancel_requested, error, sqlstate,
								 GetCurrentTimestamp());
	entry_begin(&buf, SAGA_OP_RUN_TRANSITION);
	entry_put_u64(&buf, (uint64) run_id);
	entry_put_text(&buf, from_states);
	entry_put_text(&buf, to_state);
	entry_put_u64(&buf, (uint64) next_at);
	entry_put_u8(&buf, cancel_requested ? 1 : 0);
	entry_put_text(&buf, error);
	entry_put_text(&buf, sqlstate);
	return entry_propose(&buf, "the change of state of a saga run") > 0;
}

static int
do_steps_transition(int64 run_id, int step_no, const char *from_states,
					const char *to_state, TimestampTz next_at,
					bool reset_failures, TimestampTz at)
{
	static const char *sql =
		"UPDATE distx.saga_run_step SET state = $4, next_at = $5, "
		"comp_failures = CASE WHEN $6 THEN 0 ELSE comp_failures END, "
		"compensated_at = CASE WHEN $4 = 'compensated' THEN $7 "
		"ELSE compensated_at END "
		"WHERE run_id = $1 AND ($2 = 0 OR step_no = $2) AND state = ANY ($3::text[])";
	SStateCtx	ctx;
	Oid			types[7] = {INT8OID, INT4OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, BOOLOID,
	TIMESTAMPTZOID};
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			n;

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(step_no);
	values[2] = CStringGetTextDatum(from_states);
	values[3] = CStringGetTextDatum(to_state);
	values[4] = ts_or_null(next_at, &nulls[4]);
	values[5] = BoolGetDatum(reset_failures);
	values[6] = TimestampTzGetDatum(at);
	sstate_exec(sql, 7, types, values, nulls);
	n = (int) SPI_processed;
	sstate_end(&ctx);
	return n;
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
	StringInfoData buf;

	if (!saga_state_clustered())
		return do_steps_transition(run_id, step_no, from_states, to_state,
								   next_at, reset_failures, GetCurrentTimestamp());
	entry_begin(&buf, SAGA_OP_STEPS_TRANSITION);
	entry_put_u64(&buf, (uint64) run_id);
	entry_put_u32(&buf, (uint32) step_no);
	entry_put_text(&buf, from_states);
	entry_put_text(&buf, to_state);
	entry_put_u64(&buf, (uint64) next_at);
	entry_put_u8(&buf, reset_failures ? 1 : 0);
	return (int) entry_propose(&buf, "the change of state of saga steps");
}

static void
do_delay(int64 run_id, int step_no, TimestampTz next_at, const char *error,
		 const char *sqlstate, TimestampTz at)
{
	static const char *sql_run =
		"UPDATE distx.saga_run SET next_at = $2, last_error = coalesce($3, last_error), "
		"last_sqlstate = CASE WHEN $3 IS NULL THEN last_sqlstate ELSE $4 END, "
		"updated_at = $5 "
		"WHERE run_id = $1 AND state IN ('pending', 'running', 'compensating')";
	static const char *sql_step =
		"UPDATE distx.saga_run_step SET next_at = $3, last_error = coalesce($4, last_error), "
		"last_sqlstate = CASE WHEN $4 IS NULL THEN last_sqlstate ELSE $5 END "
		"WHERE run_id = $1 AND step_no = $2";
	SStateCtx	ctx;
	Oid			t1[5] = {INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Oid			t2[5] = {INT8OID, INT4OID, TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		v[5];
	char		n[5] = {' ', ' ', ' ', ' ', ' '};

	sstate_begin(&ctx);
	v[0] = Int64GetDatum(run_id);
	v[1] = TimestampTzGetDatum(next_at);
	v[2] = text_or_null(error, &n[2]);
	v[3] = text_or_null(sqlstate, &n[3]);
	v[4] = TimestampTzGetDatum(at);
	sstate_exec(sql_run, 5, t1, v, n);

	memset(n, ' ', sizeof(n));
	v[1] = Int32GetDatum(step_no);
	v[2] = TimestampTzGetDatum(next_at);
	v[3] = text_or_null(error, &n[3]);
	v[4] = text_or_null(sqlstate, &n[4]);
	sstate_exec(sql_step, 5, t2, v, n);
	sstate_end(&ctx);
}

/*
 * A step could not be started (its node is unreachable, its circuit open,
 * its bulkhead full): nothing ran, no attempt is recorded; the run waits.
 */
void
saga_state_delay(int64 run_id, int step_no, TimestampTz next_at,
				 const char *error, const char *sqlstate)
{
	StringInfoData buf;

	if (!saga_state_clustered())
	{
		do_delay(run_id, step_no, next_at, error, sqlstate, GetCurrentTimestamp());
		return;
	}
	entry_begin(&buf, SAGA_OP_DELAY);
	entry_put_u64(&buf, (uint64) run_id);
	entry_put_u32(&buf, (uint32) step_no);
	entry_put_u64(&buf, (uint64) next_at);
	entry_put_text(&buf, error);
	entry_put_text(&buf, sqlstate);
	(void) entry_propose(&buf, "the delay of a saga run");
}

#define PURGE_BATCH		500

/* delete the runs of ids that are still finished before finished_before */
static int64
do_purge_ids(TimestampTz finished_before, int64 *ids, int n)
{
	static const char *sql =
		"DELETE FROM distx.saga_run WHERE run_id = ANY ($1) "
		"AND state IN ('completed', 'compensated', 'cancelled') AND finished_at < $2";
	SStateCtx	ctx;
	Oid			types[2] = {INT8ARRAYOID, TIMESTAMPTZOID};
	Datum		values[2];
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;
	int64		deleted;

	for (i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	sstate_begin(&ctx);
	values[0] = PointerGetDatum(construct_array(elems, n, INT8OID, sizeof(int64),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[1] = TimestampTzGetDatum(finished_before);
	sstate_exec(sql, 2, types, values, NULL);
	deleted = (int64) SPI_processed;
	sstate_end(&ctx);
	return deleted;
}

/*
 * Forget finished runs (completed, compensated, cancelled) that ended
 * before finished_before and that for_role may act on.  Runs stopped in
 * compensation_failed are kept: they need an operator.  In a cluster the
 * runs are chosen here (roles are this server's) and their ids proposed,
 * in batches.
 */
int64
saga_state_purge(TimestampTz finished_before, Oid for_role)
{
	static const char *sql =
		"DELETE FROM distx.saga_run WHERE state IN ('completed', 'compensated', 'cancelled') "
		"AND finished_at < $1 AND pg_has_role($2, started_by, 'USAGE')";
	static const char *sql_ids =
		"SELECT run_id FROM distx.saga_run WHERE state IN ('completed', 'compensated', 'cancelled') "
		"AND finished_at < $1 AND pg_has_role($2, started_by, 'USAGE') ORDER BY run_id";
	SStateCtx	ctx;
	Oid			types[2] = {TIMESTAMPTZOID, OIDOID};
	Datum		values[2];
	int64		n = 0;
	int64	   *ids;
	int			nids;
	int			i;

	sstate_begin(&ctx);
	values[0] = TimestampTzGetDatum(finished_before);
	values[1] = ObjectIdGetDatum(for_role);
	if (!saga_state_clustered())
	{
		sstate_exec(sql, 2, types, values, NULL);
		n = (int64) SPI_processed;
		sstate_end(&ctx);
		return n;
	}
	sstate_exec(sql_ids, 2, types, values, NULL);
	nids = (int) SPI_processed;
	ids = MemoryContextAlloc(ctx.caller, sizeof(int64) * Max(nids, 1));
	for (i = 0; i < nids; i++)
	{
		bool		isnull;

		ids[i] = DatumGetInt64(col_datum(i, 1, &isnull));
	}
	sstate_end(&ctx);

	for (i = 0; i < nids; i += PURGE_BATCH)
	{
		StringInfoData buf;
		int			k = Min(PURGE_BATCH, nids - i);
		int			j;

		entry_begin(&buf, SAGA_OP_PURGE);
		entry_put_u64(&buf, (uint64) finished_before);
		entry_put_u32(&buf, (uint32) k);
		for (j = 0; j < k; j++)
			entry_put_u64(&buf, (uint64) ids[i + j]);
		n += entry_propose(&buf, "the purge of saga runs");
		pfree(buf.data);
	}
	return n;
}

/*
 * ----------------------------------------------------------------------
 * Attempts
 * ----------------------------------------------------------------------
 */

/*
 * Record an attempt.  attempt_no 0: the next one (single node); else that
 * one, if it is the next one and the run is in the state its phase needs,
 * or if it is recorded already with the same phase and term (a retried
 * entry).  Returns the attempt's number, 0 when refused.
 */
static int
do_claim(int64 run_id, int step_no, bool compensate, const char *gid_prefix,
		 int lease_ms, uint64 term, int attempt_no, TimestampTz at)
{
	static const char *sql_attempt =
		"INSERT INTO distx.saga_attempt (run_id, step_no, attempt_no, phase, state, "
		"gid, term, started_at) "
		"SELECT $1, $2, coalesce(max(attempt_no), 0) + 1, $3, 'running', "
		"$4 || (coalesce(max(attempt_no), 0) + 1), $5, $6 "
		"FROM distx.saga_attempt WHERE run_id = $1 AND step_no = $2 "
		"RETURNING attempt_no";
	static const char *sql_known =
		"SELECT phase = $4 AND term = $5 FROM distx.saga_attempt "
		"WHERE run_id = $1 AND step_no = $2 AND attempt_no = $3";
	static const char *sql_keyed =
		"INSERT INTO distx.saga_attempt (run_id, step_no, attempt_no, phase, state, "
		"gid, term, started_at) "
		"SELECT $1, $2, $3, $4, 'running', $6 || $3, $5, $7 "
		"FROM distx.saga_run_step s JOIN distx.saga_run r ON r.run_id = s.run_id "
		"WHERE s.run_id = $1 AND s.step_no = $2 AND r.state = $8 "
		"AND $3 = (SELECT coalesce(max(attempt_no), 0) + 1 FROM distx.saga_attempt "
		"WHERE run_id = $1 AND step_no = $2) "
		"RETURNING attempt_no";
	static const char *sql_step =
		"UPDATE distx.saga_run_step SET state = $3, next_at = NULL, "
		"started_at = coalesce(started_at, $4) "
		"WHERE run_id = $1 AND step_no = $2";
	static const char *sql_lease =
		"UPDATE distx.saga_run SET next_at = $3 + $2 * interval '1 ms', "
		"updated_at = $3 "
		"WHERE run_id = $1 AND state IN ('pending', 'running', 'compensating')";
	SStateCtx	ctx;
	const char *phase = compensate ? "compensate" : "forward";

	sstate_begin(&ctx);
	if (attempt_no == 0)
	{
		Oid			types[6] = {INT8OID, INT4OID, TEXTOID, TEXTOID, INT8OID, TIMESTAMPTZOID};
		Datum		values[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

		values[0] = Int64GetDatum(run_id);
		values[1] = Int32GetDatum(step_no);
		values[2] = CStringGetTextDatum(phase);
		values[3] = text_or_null(gid_prefix, &nulls[3]);
		values[4] = Int64GetDatum((int64) term);
		values[5] = TimestampTzGetDatum(at);
		sstate_exec(sql_attempt, 6, types, values, nulls);
		attempt_no = col_int(0, 1);
	}
	else
	{
		Oid			types[8] = {INT8OID, INT4OID, INT4OID, TEXTOID, INT8OID, TEXTOID,
		TIMESTAMPTZOID, TEXTOID};
		Datum		values[8];
		char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		values[0] = Int64GetDatum(run_id);
		values[1] = Int32GetDatum(step_no);
		values[2] = Int32GetDatum(attempt_no);
		values[3] = CStringGetTextDatum(phase);
		values[4] = Int64GetDatum((int64) term);
		sstate_exec(sql_known, 5, types, values, NULL);
		if (SPI_processed > 0)
		{
			bool		isnull;
			bool		same = DatumGetBool(col_datum(0, 1, &isnull));

			sstate_end(&ctx);
			return same ? attempt_no : 0;
		}
		values[5] = text_or_null(gid_prefix, &nulls[5]);
		values[6] = TimestampTzGetDatum(at);
		values[7] = CStringGetTextDatum(compensate ? SAGA_COMPENSATING : SAGA_RUNNING);
		sstate_exec(sql_keyed, 8, types, values, nulls);
		if (SPI_processed == 0)
		{
			sstate_end(&ctx);
			return 0;
		}
	}
	{
		Oid			st[4] = {INT8OID, INT4OID, TEXTOID, TIMESTAMPTZOID};
		Datum		sv[4];
		Oid			lt[3] = {INT8OID, INT4OID, TIMESTAMPTZOID};
		Datum		lv[3];

		sv[0] = Int64GetDatum(run_id);
		sv[1] = Int32GetDatum(step_no);
		sv[2] = CStringGetTextDatum(compensate ? SAGA_COMPENSATING : SAGA_RUNNING);
		sv[3] = TimestampTzGetDatum(at);
		sstate_exec(sql_step, 4, st, sv, NULL);

		lv[0] = Int64GetDatum(run_id);
		lv[1] = Int32GetDatum(lease_ms);
		lv[2] = TimestampTzGetDatum(at);
		sstate_exec(sql_lease, 3, lt, lv, NULL);
	}
	sstate_end(&ctx);
	return attempt_no;
}

/*
 * Record an attempt before it runs: returns its number.  gid_prefix, for a
 * remote step, is completed with the attempt number to name its prepared
 * transaction.  The run is not due again before lease_ms: its outcome
 * moves it on; if none comes (the worker stopped), it is reconciled then.
 * In a cluster the attempt carries the worker's term; a claim that is
 * refused (the run changed, or the leadership moved) is an error.
 */
int
saga_state_claim_attempt(int64 run_id, int step_no, bool compensate,
						 const char *gid_prefix, int lease_ms)
{
	static const char *sql_next =
		"SELECT coalesce(max(attempt_no), 0) + 1 FROM distx.saga_attempt "
		"WHERE run_id = $1 AND step_no = $2";
	StringInfoData buf;
	SStateCtx	ctx;
	Oid			types[2] = {INT8OID, INT4OID};
	Datum		values[2];
	int			next;
	int64		got;

	if (!saga_state_clustered())
		return do_claim(run_id, step_no, compensate, gid_prefix, lease_ms, 0, 0,
						GetCurrentTimestamp());

	/* the next attempt as this member sees it: the key of the claim */
	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(step_no);
	sstate_exec(sql_next, 2, types, values, NULL);
	next = col_int(0, 1);
	sstate_end(&ctx);

	entry_begin(&buf, SAGA_OP_CLAIM);
	entry_put_u64(&buf, (uint64) run_id);
	entry_put_u32(&buf, (uint32) step_no);
	entry_put_u8(&buf, compensate ? 1 : 0);
	entry_put_u32(&buf, (uint32) next);
	entry_put_text(&buf, gid_prefix);
	entry_put_u32(&buf, (uint32) Max(lease_ms, 0));
	got = entry_propose(&buf, "the claim of a saga step");
	if (got != next)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the claim of attempt %d of step %d of saga run " INT64_FORMAT " was refused",
						next, step_no, run_id),
				 errdetail("The run changed meanwhile, or that attempt was claimed by another coordinator.")));
	return next;
}

static void
do_wake_interrupted(TimestampTz at)
{
	static const char *sql =
		"UPDATE distx.saga_run r SET next_at = $1 "
		"WHERE state IN ('pending', 'running', 'compensating') "
		"AND EXISTS (SELECT 1 FROM distx.saga_attempt a WHERE a.run_id = r.run_id "
		"AND (a.state = 'running' OR a.commit_pending))";
	SStateCtx	ctx;
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1];

	sstate_begin(&ctx);
	values[0] = TimestampTzGetDatum(at);
	sstate_exec(sql, 1, types, values, NULL);
	sstate_end(&ctx);
}

/*
 * After a restart of the worker, or when a new coordinator takes over in a
 * cluster: runs with an attempt that was in flight (or a commit not
 * confirmed) are due at once, to be reconciled.
 */
void
saga_state_wake_interrupted(void)
{
	StringInfoData buf;

	if (!saga_state_clustered())
	{
		do_wake_interrupted(GetCurrentTimestamp());
		return;
	}
	entry_begin(&buf, SAGA_OP_WAKE_INTERRUPTED);
	(void) entry_propose(&buf, "the wake-up of interrupted saga runs");
}

static bool
do_attempt_succeeded(int64 run_id, int step_no, int attempt_no, bool compensate,
					 const char *output, bool commit_pending, TimestampTz at)
{
	static const char *sql_attempt =
		"UPDATE distx.saga_attempt SET state = 'succeeded', commit_pending = $4, "
		"finished_at = $5 "
		"WHERE run_id = $1 AND step_no = $2 AND attempt_no = $3 AND state = 'running'";
	static const char *sql_state =
		"SELECT state FROM distx.saga_attempt "
		"WHERE run_id = $1 AND step_no = $2 AND attempt_no = $3";
	static const char *sql_forward =
		"UPDATE distx.saga_run_step SET state = 'completed', output = $3, "
		"completed_at = $4, next_at = NULL "
		"WHERE run_id = $1 AND step_no = $2";
	static const char *sql_compensate =
		"UPDATE distx.saga_run_step SET state = 'compensated', "
		"compensated_at = $3, next_at = NULL "
		"WHERE run_id = $1 AND step_no = $2";
	static const char *sql_run =
		"UPDATE distx.saga_run SET next_at = $2, updated_at = $2 "
		"WHERE run_id = $1 AND state IN ('pending', 'running', 'compensating')";
	SStateCtx	ctx;
	Oid			types[5] = {INT8OID, INT4OID, INT4OID, BOOLOID, TIMESTAMPTZOID};
	Oid			ftypes[4] = {INT8OID, INT4OID, JSONBOID, TIMESTAMPTZOID};
	Oid			ctypes[3] = {INT8OID, INT4OID, TIMESTAMPTZOID};
	Oid			rtypes[2] = {INT8OID, TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	sstate_begin(&ctx);
	values[0] = Int64GetDatum(run_id);
	values[1] = Int32GetDatum(step_no);
	values[2] = Int32GetDatum(attempt_no);
	values[3] = BoolGetDatum(commit_pending);
	values[4] = TimestampTzGetDatum(at);
	sstate_exec(sql_attempt, 5, types, values, NULL);
	if (SPI_processed == 0)
	{
		bool		recorded;

		/*
		 * Succeeded already: this very success applied twice (a retried
		 * proposal), since only the worker that ran an attempt records its
		 * success.  Otherwise settled as aborted or failed (by another
		 * coordinator, in a cluster), or gone.
		 */
		sstate_exec(sql_state, 3, types, values, NULL);
		recorded = SPI_processed > 0 && strcmp(col_text(0, 1), ATTEMPT_SUCCEEDED) == 0;
		sstate_end(&ctx);
		return recorded;
	}
	if (compensate)
	{
		values[2] = TimestampTzGetDatum(at);
		sstate_exec(sql_compensate, 3, ctypes, values, NULL);
	}
	else
	{
		if (output)
			values[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(output));
		else
			nulls[2] = 'n';
		values[3] = TimestampTzGetDatum(at);
		sstate_exec(sql_forward, 4, ftypes, values, nulls);
	}
	values[1] = TimestampTzGetDatum(at);
	sstate_exec(sql_run, 2, rtypes, values, NULL);
	sstate_end(&ctx);
	return true;
}

/*
 * An attempt succeeded: the step is completed (forward, with its output)
 * or compensated, and the run is due again at once.  commit_pending: the
 * attempt's remote prepared transaction is still to be committed.  In a
 * cluster, an attempt that is not running any more (a new coordinator
 * reconciled it) is not recorded: an error, so that its prepared
 * transaction is never committed by this worker.  When the success was
 * certainly not recorded (refused for its term, or the attempt was not
 * running), saga_state_success_refused is set: the caller may then roll
 * the attempt's prepared transaction back.
 */
void
saga_state_attempt_succeeded(int64 run_id, int step_no, int attempt_no,
							 bool compensate, const char *output,
							 bool commit_pending)
{
	StringInfoData buf;
	volatile int64 result = 0;

	saga_state_success_refused = false;
	if (!saga_state_clustered())
	{
		(void) do_attempt_succeeded(run_id, step_no, attempt_no, compensate,
									output, commit_pending, GetCurrentTimestamp());
		return;
	}
	entry_begin(&buf, SAGA_OP_SUCCEEDED);
	entry_put_u64(&buf, (uint64) run_id);
	entry_put_u32(&buf, (uint32) step_no);
	entry_put_u32(&buf, (uint32) attempt_no);
	entry_put_u8(&buf, compensate ? 1 : 0);
	entry_put_text(&buf, output);
	entry_put_u8(&buf, commit_pending ? 1 : 0);
	PG_TRY();
	{
		result = entry_propose(&buf, "the success of a saga step");
	}
	PG_CATCH();
	{
		/* refused for its term: certainly not recorded */
		saga_state_success_refused = proposal_refused;
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (result != 1)
	{
		saga_state_success_refused = true;
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("the success of attempt %d of step %d of saga run " INT64_FORMAT " was not recorded",
						attempt_no, step_no, run_id),
				 errdetail("The attempt was settled by another coordinator meanwhile.")));
	}
}

static bool
do_attempt_failed(int64 run_id, int step_no, int attempt_no, bool compensate,
				  const char *attempt_state, bool counted, const char *error,
				  const char *sqlstate, const char *step_state,
				  TimestampTz retry_at, TimestampTz at)
{
	static const char *sql_attempt =
		"UPDATE distx.saga_attempt SET state = $4, counted = $5, error = $6, "
		"sqlstate = $7, finished_at = $8 "
		"WHERE run_id = $1 AND step_no = $2 AND attempt_no = $3 AND state = 'running'";
	static const char *sql_step =
		"UPDATE distx.saga_run_step SET state = $3, next_at = $4, "
		"last_error = $5, last_sqlstate = $6, "
		"failures = failures + CASE WHEN $7 AND NOT $8 THEN 1 ELSE 0 END, "
		"comp_failures = comp_failures + CASE WHEN $7 AND $8 THEN 1 ELSE 0 END "
		"WHERE run_id = $1 AND step_no = $2";
	static const char *sql_run =
		"UPDATE distx.saga_run SET last_error = $2, last_sqlstate = $3, "
		"next_at = coalesce($4, next_at), updated_at = $5 "
		"WHERE run_id = $1 AND state IN ('pending', 'running', 'compensating')";
	SStateCtx	ctx;
	Oid			ta[8] = {INT8OID, INT4OID, INT4OID, TEXTOID, BOOLOID, TEXTOID, TEXTOID,
	TIMESTAMPTZOID};
	Oid			ts[8] = {INT8OID, INT4OID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID,
	BOOLOID, BOOLOID};
	Oid			tr[5] = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
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
	v[7] = TimestampTzGetDatum(at);
	sstate_exec(sql_attempt, 8, ta, v, n);
	if (SPI_processed == 0)
	{
		sstate_end(&ctx);
		return false;
	}

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
	v[4] = TimestampTzGetDatum(at);
	sstate_exec(sql_run, 5, tr, v, n);
	sstate_end(&ctx);
	return true;
}

/*
 * An attempt failed (or was aborted by a crash and rolled back).  counted:
 * it counts against the step's max_attempts.  The step moves to step_state
 * (still running/compensating with a retry time, or failed /
 * compensation_failed), and the run is due again at retry_at (0: the caller
 * moves the run itself).  An attempt that is not running any more is left
 * as it is.
 */
void
saga_state_attempt_failed(int64 run_id, int step_no, int attempt_no,
						  bool compensate, const char *attempt_state,
						  bool counted, const char *error,
						  const char *sqlstate, const char *step_state,
						  TimestampTz retry_at)
{
	StringInfoData buf;

	if (!saga_state_clustered())
	{
		(void) do_attempt_failed(run_id, step_no, attempt_no, compensate,
								 attempt_state, counted, error, sqlstate,
								 step_state, retry_at, GetCurrentTimestamp());
		return;
	}
	entry_begin(&buf, SAGA_OP_FAILED);
	entry_put_u64(&buf, (uint64) run_id);
	entry_put_u32(&buf, (uint32) step_no);
	entry_put_u32(&buf, (uint32) attempt_no);
	entry_put_u8(&buf, compensate ? 1 : 0);
	entry_put_text(&buf, attempt_state);
	entry_put_u8(&buf, counted ? 1 : 0);
	entry_put_text(&buf, error);
	entry_put_text(&buf, sqlstate);
	entry_put_text(&buf, step_state);
	entry_put_u64(&buf, (uint64) retry_at);
	(void) entry_propose(&buf, "the failure of a saga step");
}

static void
do_attempt_resolved(int64 run_id, int step_no, int attempt_no)
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

/* the remote prepared transaction of a succeeded attempt is committed */
void
saga_state_attempt_resolved(int64 run_id, int step_no, int attempt_no)
{
	StringInfoData buf;

	if (!saga_state_clustered())
	{
		do_attempt_resolved(run_id, step_no, attempt_no);
		return;
	}
	entry_begin(&buf, SAGA_OP_RESOLVED);
	entry_put_u64(&buf, (uint64) run_id);
	entry_put_u32(&buf, (uint32) step_no);
	entry_put_u32(&buf, (uint32) attempt_no);
	(void) entry_propose(&buf, "the commit of a saga step");
}

/*
 * ----------------------------------------------------------------------
 * Cluster: applying entries, snapshots
 * ----------------------------------------------------------------------
 */

/* a role by name on this server; InvalidOid when it does not exist here */
static Oid
role_here(const char *name)
{
	return name ? get_role_oid(name, true) : InvalidOid;
}

static TimestampTz
get_ts(EntryReader *r)
{
	return (TimestampTz) entry_get_u64(r);
}

/*
 * Apply one ENTRY_SAGA entry (the reader is past its kind), in the Raft
 * worker's apply transaction, on every member alike.  Returns what the op
 * returns (see saga_state.h), SAGA_ENTRY_REFUSED for an entry of a worker
 * whose term is not the entry's.
 */
int64
saga_state_apply(EntryReader *r, uint64 entry_term, uint64 entry_index)
{
	int			op = entry_get_u8(r);
	uint64		term = entry_get_u64(r);
	TimestampTz at = get_ts(r);
	bool		refused = term != 0 && term != entry_term;
	int64		result = 0;

	switch (op)
	{
		case SAGA_OP_DEFINE:
			{
				SagaDef    *def = palloc0(sizeof(SagaDef));
				char	   *owner;
				char	   *json;
				int			n;
				int			i;

				def->name = entry_get_text(r);
				def->version = (int) entry_get_u32(r);
				owner = entry_get_text(r);
				json = entry_get_text(r);
				n = entry_get_u16(r);
				for (i = 0; i < n; i++)
				{
					SagaStepDef *s = palloc0(sizeof(SagaStepDef));
					uint64		bits;

					s->step_no = (int) entry_get_u32(r);
					s->name = entry_get_text(r);
					s->node_name = entry_get_text(r);
					s->forward_sql = entry_get_text(r);
					s->forward_params = entry_get_list(r);
					s->compensate_sql = entry_get_text(r);
					s->compensate_params = entry_get_list(r);
					s->max_attempts = (int) entry_get_u32(r);
					s->base_delay_ms = (int) entry_get_u32(r);
					bits = entry_get_u64(r);
					memcpy(&s->multiplier, &bits, sizeof(bits));
					s->max_delay_ms = (int) entry_get_u32(r);
					s->timeout_ms = (int) entry_get_u32(r);
					s->non_retryable = entry_get_list(r);
					/* this server's OID of the node, if it declares it */
					s->node_id = s->node_name ?
						get_foreign_server_oid(s->node_name, true) : InvalidOid;
					def->steps = lappend(def->steps, s);
				}
				entry_get_end(r);
				if (def->name == NULL || json == NULL || def->steps == NIL)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("malformed %s: incomplete saga definition", r->what)));
				if (refused)
					return SAGA_ENTRY_REFUSED;
				def->owner = role_here(owner);
				def->normalized = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																	 CStringGetDatum(json)));
				result = do_define(def, at);
				break;
			}
		case SAGA_OP_CREATE_RUN:
			{
				char	   *saga = entry_get_text(r);
				int			version = (int) entry_get_u32(r);
				char	   *run_key = entry_get_text(r);
				char	   *request = entry_get_text(r);
				char	   *input = entry_get_text(r);
				char	   *started_by = entry_get_text(r);
				int			nsteps = (int) entry_get_u32(r);
				char	   *existing;

				entry_get_end(r);
				if (saga == NULL || input == NULL || request == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("malformed %s: incomplete saga run", r->what)));
				if (refused)
					return SAGA_ENTRY_REFUSED;
				result = do_create_run(saga, version, run_key, request,
									   DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
																		  CStringGetDatum(input))),
									   role_here(started_by), nsteps,
									   (int64) entry_index, at, &existing);
				break;
			}
		case SAGA_OP_RUN_TRANSITION:
			{
				int64		run_id = (int64) entry_get_u64(r);
				char	   *from = entry_get_text(r);
				char	   *to = entry_get_text(r);
				TimestampTz next_at = get_ts(r);
				bool		cancel = entry_get_u8(r) != 0;
				char	   *error = entry_get_text(r);
				char	   *sqlstate = entry_get_text(r);

				entry_get_end(r);
				if (from == NULL || to == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("malformed %s: incomplete transition", r->what)));
				if (refused)
					return SAGA_ENTRY_REFUSED;
				result = do_run_transition(run_id, from, to, next_at, cancel,
										   error, sqlstate, at) ? 1 : 0;
				break;
			}
		case SAGA_OP_STEPS_TRANSITION:
			{
				int64		run_id = (int64) entry_get_u64(r);
				int			step_no = (int) entry_get_u32(r);
				char	   *from = entry_get_text(r);
				char	   *to = entry_get_text(r);
				TimestampTz next_at = get_ts(r);
				bool		reset = entry_get_u8(r) != 0;

				entry_get_end(r);
				if (from == NULL || to == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("malformed %s: incomplete transition", r->what)));
				if (refused)
					return SAGA_ENTRY_REFUSED;
				result = do_steps_transition(run_id, step_no, from, to, next_at,
											 reset, at);
				break;
			}
		case SAGA_OP_DELAY:
			{
				int64		run_id = (int64) entry_get_u64(r);
				int			step_no = (int) entry_get_u32(r);
				TimestampTz next_at = get_ts(r);
				char	   *error = entry_get_text(r);
				char	   *sqlstate = entry_get_text(r);

				entry_get_end(r);
				if (refused)
					return SAGA_ENTRY_REFUSED;
				do_delay(run_id, step_no, next_at, error, sqlstate, at);
				break;
			}
		case SAGA_OP_PURGE:
			{
				TimestampTz before = get_ts(r);
				uint32		n = entry_get_u32(r);
				int64	   *ids;
				uint32		i;

				if (n > r->left / 8)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("malformed %s: bad count of runs", r->what)));
				ids = palloc(sizeof(int64) * Max(n, 1));
				for (i = 0; i < n; i++)
					ids[i] = (int64) entry_get_u64(r);
				entry_get_end(r);
				if (refused)
					return SAGA_ENTRY_REFUSED;
				result = do_purge_ids(before, ids, (int) n);
				break;
			}
		case SAGA_OP_CLAIM:
			{
				int64		run_id = (int64) entry_get_u64(r);
				int			step_no = (int) entry_get_u32(r);
				bool		compensate = entry_get_u8(r) != 0;
				int			attempt_no = (int) entry_get_u32(r);
				char	   *gid_prefix = entry_get_text(r);
				int			lease_ms = (int) entry_get_u32(r);

				entry_get_end(r);
				if (attempt_no <= 0)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("malformed %s: bad attempt number", r->what)));
				if (refused)
					return SAGA_ENTRY_REFUSED;
				result = do_claim(run_id, step_no, compensate, gid_prefix, lease_ms,
								  term, attempt_no, at);
				break;
			}
		case SAGA_OP_WAKE_INTERRUPTED:
			entry_get_end(r);
			if (refused)
				return SAGA_ENTRY_REFUSED;
			do_wake_interrupted(at);
			break;
		case SAGA_OP_SUCCEEDED:
			{
				int64		run_id = (int64) entry_get_u64(r);
				int			step_no = (int) entry_get_u32(r);
				int			attempt_no = (int) entry_get_u32(r);
				bool		compensate = entry_get_u8(r) != 0;
				char	   *output = entry_get_text(r);
				bool		pending = entry_get_u8(r) != 0;

				entry_get_end(r);
				if (refused)
					return SAGA_ENTRY_REFUSED;
				result = do_attempt_succeeded(run_id, step_no, attempt_no, compensate,
											  output, pending, at) ? 1 : 0;
				break;
			}
		case SAGA_OP_FAILED:
			{
				int64		run_id = (int64) entry_get_u64(r);
				int			step_no = (int) entry_get_u32(r);
				int			attempt_no = (int) entry_get_u32(r);
				bool		compensate = entry_get_u8(r) != 0;
				char	   *attempt_state = entry_get_text(r);
				bool		counted = entry_get_u8(r) != 0;
				char	   *error = entry_get_text(r);
				char	   *sqlstate = entry_get_text(r);
				char	   *step_state = entry_get_text(r);
				TimestampTz retry_at = get_ts(r);

				entry_get_end(r);
				if (attempt_state == NULL || step_state == NULL)
					ereport(ERROR,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("malformed %s: incomplete failure", r->what)));
				if (refused)
					return SAGA_ENTRY_REFUSED;
				result = do_attempt_failed(run_id, step_no, attempt_no, compensate,
										   attempt_state, counted, error, sqlstate,
										   step_state, retry_at, at) ? 1 : 0;
				break;
			}
		case SAGA_OP_RESOLVED:
			{
				int64		run_id = (int64) entry_get_u64(r);
				int			step_no = (int) entry_get_u32(r);
				int			attempt_no = (int) entry_get_u32(r);

				entry_get_end(r);
				if (refused)
					return SAGA_ENTRY_REFUSED;
				do_attempt_resolved(run_id, step_no, attempt_no);
				break;
			}
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("unknown saga op %d in %s %llu", op, r->what,
							(unsigned long long) entry_index),
					 errhint("Was it written by a newer version of distx?")));
	}

	/* a change made by a session: the coordinator here looks at once */
	if (term == 0)
		saga_wake_worker_at_commit();
	return result;
}

/* empty the saga tables (a fresh member, or before a snapshot is installed) */
void
saga_state_reset(void)
{
	SStateCtx	ctx;

	sstate_begin(&ctx);
	/* steps and attempts go with their runs */
	sstate_exec("DELETE FROM distx.saga_run", 0, NULL, NULL, NULL);
	sstate_exec("DELETE FROM distx.saga_def_step", 0, NULL, NULL, NULL);
	sstate_exec("DELETE FROM distx.saga_def", 0, NULL, NULL, NULL);
	sstate_end(&ctx);
}

/* the tables of the snapshot section, in the order they are restored */
typedef struct SnapTable
{
	const char *dump;
	const char *restore;
} SnapTable;

static const SnapTable snap_tables[] = {
	{
		"SELECT (pg_catalog.to_jsonb(d) || pg_catalog.jsonb_build_object('_owner', "
		"(SELECT rolname FROM pg_catalog.pg_roles WHERE oid = d.owner)))::text "
		"FROM distx.saga_def d ORDER BY saga, version",
		"INSERT INTO distx.saga_def SELECT * FROM pg_catalog.jsonb_populate_record("
		"NULL::distx.saga_def, $1::jsonb || pg_catalog.jsonb_build_object('owner', "
		"coalesce((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1::jsonb ->> '_owner'), 0)))"
	},
	{
		"SELECT pg_catalog.to_jsonb(s)::text FROM distx.saga_def_step s "
		"ORDER BY saga, version, step_no",
		"INSERT INTO distx.saga_def_step SELECT * FROM pg_catalog.jsonb_populate_record("
		"NULL::distx.saga_def_step, $1::jsonb || pg_catalog.jsonb_build_object('node_id', "
		"(SELECT oid FROM pg_catalog.pg_foreign_server WHERE srvname = $1::jsonb ->> 'node_name')))"
	},
	{
		"SELECT (pg_catalog.to_jsonb(r) || pg_catalog.jsonb_build_object('_started_by', "
		"(SELECT rolname FROM pg_catalog.pg_roles WHERE oid = r.started_by)))::text "
		"FROM distx.saga_run r ORDER BY run_id",
		"INSERT INTO distx.saga_run SELECT * FROM pg_catalog.jsonb_populate_record("
		"NULL::distx.saga_run, $1::jsonb || pg_catalog.jsonb_build_object('started_by', "
		"coalesce((SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1::jsonb ->> '_started_by'), 0)))"
	},
	{
		"SELECT pg_catalog.to_jsonb(s)::text FROM distx.saga_run_step s ORDER BY run_id, step_no",
		"INSERT INTO distx.saga_run_step SELECT * FROM pg_catalog.jsonb_populate_record("
		"NULL::distx.saga_run_step, $1::jsonb)"
	},
	{
		"SELECT pg_catalog.to_jsonb(a)::text FROM distx.saga_attempt a "
		"ORDER BY run_id, step_no, attempt_no",
		"INSERT INTO distx.saga_attempt SELECT * FROM pg_catalog.jsonb_populate_record("
		"NULL::distx.saga_attempt, $1::jsonb)"
	}
};

#define SNAP_NTABLES	((int) lengthof(snap_tables))

/* the saga section of a snapshot (format in cluster_apply.h) */
void
saga_state_snapshot_make(StringInfo sec)
{
	SStateCtx	ctx;
	int			t;

	sstate_begin(&ctx);
	for (t = 0; t < SNAP_NTABLES; t++)
	{
		uint64		i;

		sstate_exec(snap_tables[t].dump, 0, NULL, NULL, NULL);
		entry_put_u8(sec, (uint8) (t + 1));
		entry_put_u32(sec, (uint32) SPI_processed);
		for (i = 0; i < SPI_processed; i++)
			entry_put_text(sec, col_text((int) i, 1));
	}
	sstate_end(&ctx);
}

void
saga_state_snapshot_restore(EntryReader *r)
{
	static const char *sql_seq =
		"SELECT pg_catalog.setval('distx.saga_run_id_seq', max(run_id)) "
		"FROM distx.saga_run HAVING max(run_id) > "
		"(SELECT last_value FROM distx.saga_run_id_seq)";
	SStateCtx	ctx;
	Oid			types[1] = {TEXTOID};

	sstate_begin(&ctx);
	while (r->left > 0)
	{
		int			t = entry_get_u8(r);
		uint32		count = entry_get_u32(r);
		uint32		i;

		if (t < 1 || t > SNAP_NTABLES)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed %s: unknown saga table %d", r->what, t)));
		for (i = 0; i < count; i++)
		{
			char	   *row = entry_get_text(r);
			Datum		values[1];

			if (row == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("malformed %s: NULL saga row", r->what)));
			values[0] = CStringGetTextDatum(row);
			sstate_exec(snap_tables[t - 1].restore, 1, types, values, NULL);
		}
	}
	sstate_exec(sql_seq, 0, NULL, NULL, NULL);
	sstate_end(&ctx);
}

/*
 * Before this server founds a cluster (or joins one for the first time):
 * its own saga definitions and runs would not be part of the replicated
 * state (the other members never get them, and run ids are Raft indexes
 * there), so they are refused.  A server joining again, whose tables hold
 * replicated state, is emptied by the join instead.
 */
void
saga_state_check_unshared(bool joining)
{
	static const char *sql =
		"SELECT EXISTS (SELECT 1 FROM distx.saga_def) OR EXISTS (SELECT 1 FROM distx.saga_run)";
	SStateCtx	ctx;
	bool		isnull;
	bool		has;

	if (joining && cluster_applied_index() > 0)
		return;
	sstate_begin(&ctx);
	sstate_exec(sql, 0, NULL, NULL, NULL);
	has = DatumGetBool(col_datum(0, 1, &isnull));
	sstate_end(&ctx);
	if (has)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this server has saga definitions or runs of its own"),
				 errdetail("The saga state of a single server is not carried into a distx cluster."),
				 errhint("Form the cluster before defining sagas, or let the runs finish and remove them (DELETE FROM distx.saga_run; DELETE FROM distx.saga_def_step; DELETE FROM distx.saga_def) as a superuser.")));
}
