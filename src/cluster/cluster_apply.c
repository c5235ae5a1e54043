/*-------------------------------------------------------------------------
 *
 * cluster_apply.c
 *	  The replicated state machine of the distx cluster (see
 *	  cluster_apply.h for the entry and snapshot formats).
 *
 * Only the Raft worker calls these, inside its own transactions, so they
 * use SPI as the superuser the worker runs as.  Applying must be
 * deterministic: the same entries give the same tables on every node (the
 * time an entry carries is the proposer's, not the applier's).  An entry
 * that cannot be decoded is a bug or corruption: an ERROR that stops the
 * worker, which will not skip an entry.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cluster/cluster_apply.h"
#include "cluster/saga_state.h"

#define SNAP_MAGIC		0x4E535844u /* "DXSN" as little-endian bytes */
#define SNAP_VERSION	1
#define SNAP_TAG_NODES	1
#define SNAP_TAG_DECISIONS	2
#define SNAP_TAG_SAGAS		3

/* ------------------------------------------------------------------ */

static void
put_u8(StringInfo buf, uint8 v)
{
	appendBinaryStringInfo(buf, (const char *) &v, 1);
}

static void
put_u16(StringInfo buf, uint16 v)
{
	uint8		b[2];

	b[0] = (uint8) v;
	b[1] = (uint8) (v >> 8);
	appendBinaryStringInfo(buf, (const char *) b, 2);
}

static void
put_u32(StringInfo buf, uint32 v)
{
	uint8		b[4];
	int			i;

	for (i = 0; i < 4; i++)
		b[i] = (uint8) (v >> (8 * i));
	appendBinaryStringInfo(buf, (const char *) b, 4);
}

static void
put_u64(StringInfo buf, uint64 v)
{
	uint8		b[8];
	int			i;

	for (i = 0; i < 8; i++)
		b[i] = (uint8) (v >> (8 * i));
	appendBinaryStringInfo(buf, (const char *) b, 8);
}

typedef EntryReader Reader;

static void
need(Reader *r, uint32 n)
{
	if (r->left < n)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed %s: truncated", r->what)));
}

static uint8
get_u8(Reader *r)
{
	uint8		v;

	need(r, 1);
	v = r->p[0];
	r->p++;
	r->left--;
	return v;
}

static uint16
get_u16(Reader *r)
{
	uint16		v;

	need(r, 2);
	v = (uint16) (r->p[0] | (r->p[1] << 8));
	r->p += 2;
	r->left -= 2;
	return v;
}

static uint32
get_u32(Reader *r)
{
	uint32		v = 0;
	int			i;

	need(r, 4);
	for (i = 0; i < 4; i++)
		v |= (uint32) r->p[i] << (8 * i);
	r->p += 4;
	r->left -= 4;
	return v;
}

static uint64
get_u64(Reader *r)
{
	uint64		v = 0;
	int			i;

	need(r, 8);
	for (i = 0; i < 8; i++)
		v |= (uint64) r->p[i] << (8 * i);
	r->p += 8;
	r->left -= 8;
	return v;
}

/* a str of 1..max-1 bytes without NUL */
static char *
get_str(Reader *r, size_t max, const char *what)
{
	uint16		len = get_u16(r);
	char	   *s;

	need(r, len);
	if (len == 0 || len >= max || memchr(r->p, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed %s: bad %s", r->what, what)));
	s = pnstrdup((const char *) r->p, len);
	r->p += len;
	r->left -= len;
	return s;
}

static void
put_str(StringInfo buf, const char *s, size_t max, const char *what)
{
	size_t		len = strlen(s);

	if (len == 0 || len >= max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" is empty or too long", what, s)));
	put_u16(buf, (uint16) len);
	appendBinaryStringInfo(buf, s, (int) len);
}

static char *
get_name(Reader *r)
{
	uint16		len = get_u16(r);
	char	   *s;

	need(r, len);
	if (len == 0 || len >= DXS_NAME_LEN || memchr(r->p, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed %s: bad node name", r->what)));
	s = pnstrdup((const char *) r->p, len);
	r->p += len;
	r->left -= len;
	return s;
}

/* the codec, for the entry kinds defined elsewhere (saga_state.c) */

void
entry_put_u8(StringInfo buf, uint8 v)
{
	put_u8(buf, v);
}

void
entry_put_u16(StringInfo buf, uint16 v)
{
	put_u16(buf, v);
}

void
entry_put_u32(StringInfo buf, uint32 v)
{
	put_u32(buf, v);
}

void
entry_put_u64(StringInfo buf, uint64 v)
{
	put_u64(buf, v);
}

/* text: u32 length (ENTRY_TEXT_NULL for NULL), bytes (no NUL) */
void
entry_put_text(StringInfo buf, const char *s)
{
	if (s == NULL)
	{
		put_u32(buf, ENTRY_TEXT_NULL);
		return;
	}
	put_u32(buf, (uint32) strlen(s));
	appendBinaryStringInfo(buf, s, (int) strlen(s));
}

uint8
entry_get_u8(EntryReader *r)
{
	return get_u8(r);
}

uint16
entry_get_u16(EntryReader *r)
{
	return get_u16(r);
}

uint32
entry_get_u32(EntryReader *r)
{
	return get_u32(r);
}

uint64
entry_get_u64(EntryReader *r)
{
	return get_u64(r);
}

char *
entry_get_text(EntryReader *r)
{
	uint32		len = get_u32(r);
	char	   *s;

	if (len == ENTRY_TEXT_NULL)
		return NULL;
	need(r, len);
	if (memchr(r->p, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed %s: a text contains a NUL byte", r->what)));
	s = pnstrdup((const char *) r->p, len);
	r->p += len;
	r->left -= len;
	return s;
}

void
entry_get_end(EntryReader *r)
{
	if (r->left != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed %s: trailing bytes", r->what)));
}

/* ------------------------------------------------------------------
 * Encoders
 * ------------------------------------------------------------------
 */

uint8 *
cluster_encode_node_add(const char *name, uint64 system_id, bool fresh,
						uint32 *len)
{
	StringInfoData buf;
	size_t		nlen = strlen(name);

	if (nlen == 0 || nlen >= DXS_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("node name \"%s\" is too long", name)));
	initStringInfo(&buf);
	put_u8(&buf, ENTRY_NODE_ADD);
	put_u8(&buf, fresh ? NODE_ADD_FRESH : 0);
	put_u64(&buf, system_id);
	put_u64(&buf, (uint64) GetCurrentTimestamp());
	put_u16(&buf, (uint16) nlen);
	appendBinaryStringInfo(&buf, name, (int) nlen);
	*len = (uint32) buf.len;
	return (uint8 *) buf.data;
}

uint8 *
cluster_encode_decision(const char *origin, uint64 xid, int outcome,
						bool conditional, const Oid *oids,
						const char *const *names, int n, uint32 *len)
{
	StringInfoData buf;
	int			i;

	if (n < 0 || n > PG_UINT16_MAX)
		elog(ERROR, "bad number of participants %d", n);
	initStringInfo(&buf);
	put_u8(&buf, ENTRY_DECISION);
	put_u8(&buf, (uint8) outcome);
	put_u8(&buf, conditional ? 1 : 0);
	put_u64(&buf, xid);
	put_u64(&buf, (uint64) GetCurrentTimestamp());
	put_str(&buf, origin, DECISION_ORIGIN_MAX, "origin");
	put_u16(&buf, (uint16) n);
	for (i = 0; i < n; i++)
	{
		put_u32(&buf, oids[i]);
		put_str(&buf, names[i], NAMEDATALEN, "participant name");
	}
	*len = (uint32) buf.len;
	return (uint8 *) buf.data;
}

uint8 *
cluster_encode_forget_many(int n, const char *const *origins,
						   const uint64 *xids, uint32 max_len, int *taken,
						   uint32 *len)
{
	StringInfoData buf;
	int			i;

	Assert(n > 0);
	initStringInfo(&buf);
	put_u8(&buf, ENTRY_FORGET_MANY);
	put_u16(&buf, 0);			/* the count, set below */
	for (i = 0; i < n && i < FORGET_MANY_MAX; i++)
	{
		/* u64 xid, u16 length, the origin's bytes */
		if (i > 0 && buf.len + 10 + strlen(origins[i]) > max_len)
			break;
		put_u64(&buf, xids[i]);
		put_str(&buf, origins[i], DECISION_ORIGIN_MAX, "origin");
	}
	buf.data[1] = (char) (i & 0xFF);	/* little-endian, as put_u16 */
	buf.data[2] = (char) (i >> 8);
	*taken = i;
	*len = (uint32) buf.len;
	return (uint8 *) buf.data;
}

/* ------------------------------------------------------------------
 * SPI helpers
 * ------------------------------------------------------------------
 */

/*
 * Run one of this file's statements.  They run for every applied entry on
 * every member, so each is planned once per process and the plan kept
 * (SPI_keepplan; the plan cache revalidates it after DDL) instead of being
 * parsed and planned again each time.
 *
 * Never read_only: a read-only SPI call uses the snapshot of the caller and
 * would not see what earlier entries of the same batch wrote.
 */
#define RUN_PLANS 32

typedef struct RunPlan
{
	char	   *sql;
	SPIPlanPtr	plan;
} RunPlan;

static RunPlan run_plans[RUN_PLANS];
static int	n_run_plans = 0;

static int
run(const char *sql, int nargs, Oid *types, Datum *values)
{
	SPIPlanPtr	plan = NULL;
	int			rc;
	int			i;

	for (i = 0; i < n_run_plans; i++)
		if (strcmp(run_plans[i].sql, sql) == 0)
		{
			plan = run_plans[i].plan;
			break;
		}
	if (plan == NULL)
	{
		plan = SPI_prepare(sql, nargs, types);
		if (plan == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (n_run_plans < RUN_PLANS && SPI_keepplan(plan) == 0)
		{
			run_plans[n_run_plans].sql = MemoryContextStrdup(TopMemoryContext, sql);
			run_plans[n_run_plans].plan = plan;
			n_run_plans++;
		}
	}
	rc = SPI_execute_plan(plan, values, NULL, false, 0);
	if (rc < 0)
		elog(ERROR, "could not run \"%s\": %s", sql, SPI_result_code_string(rc));
	return rc;
}

static int64
apply_node_add(Reader *r)
{
	uint8		flags = get_u8(r);
	uint64		sysid = get_u64(r);
	TimestampTz at = (TimestampTz) get_u64(r);
	char	   *name = get_name(r);
	Oid			types[4] = {TEXTOID, INT8OID, INT8OID, TIMESTAMPTZOID};
	Datum		values[4];
	bool		isnull;
	int64		id;

	if (r->left != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed %s: trailing bytes", r->what)));

	values[0] = CStringGetTextDatum(name);
	run("SELECT node_id, system_id FROM distx.cluster_nodes WHERE node = $1::name",
		1, types, values);
	if (SPI_processed == 1)
	{
		int64		old_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1, &isnull));
		int64		old_sysid = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
															SPI_tuptable->tupdesc, 2, &isnull));

		/*
		 * A retry, or the same server again with its Raft state.  A server
		 * without Raft state (fresh) never gets an old id back, even with
		 * the same system identifier: it would have forgotten the vote it
		 * may have cast under that id in the current term.
		 */
		if ((uint64) old_sysid == sysid && !(flags & NODE_ADD_FRESH))
			return old_id;
	}

	/* a new server under this name, or a fresh one: a new id */
	run("SELECT coalesce(max(node_id), 0) + 1 FROM distx.cluster_nodes",
		0, NULL, NULL);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	values[1] = Int64GetDatum(id);
	values[2] = Int64GetDatum((int64) sysid);
	values[3] = TimestampTzGetDatum(at);
	run("DELETE FROM distx.cluster_nodes WHERE node = $1::name", 1, types, values);
	run("INSERT INTO distx.cluster_nodes (node, node_id, system_id, added_at) "
		"VALUES ($1::name, $2, $3, $4)", 4, types, values);
	return id;
}

/* oid[] and name[] arrays as text literals for SPI */
static void
array_literals(int n, const Oid *oids, char **names, char **oid_lit, char **name_lit)
{
	StringInfoData o;
	StringInfoData m;
	int			i;

	initStringInfo(&o);
	initStringInfo(&m);
	appendStringInfoChar(&o, '{');
	appendStringInfoChar(&m, '{');
	for (i = 0; i < n; i++)
	{
		const char *c;

		appendStringInfo(&o, "%s%u", i ? "," : "", oids[i]);
		appendStringInfoString(&m, i ? ",\"" : "\"");
		for (c = names[i]; *c; c++)
		{
			if (*c == '"' || *c == '\\')
				appendStringInfoChar(&m, '\\');
			appendStringInfoChar(&m, *c);
		}
		appendStringInfoChar(&m, '"');
	}
	appendStringInfoChar(&o, '}');
	appendStringInfoChar(&m, '}');
	*oid_lit = o.data;
	*name_lit = m.data;
}

static void
insert_decision(const char *origin, uint64 xid, int outcome, bool conditional,
				uint64 term, TimestampTz at, int n, const Oid *oids, char **names)
{
	Oid			types[8] = {TEXTOID, INT8OID, TEXTOID, BOOLOID, INT8OID,
	TIMESTAMPTZOID, TEXTOID, TEXTOID};
	Datum		values[8];
	char	   *oid_lit;
	char	   *name_lit;

	array_literals(n, oids, names, &oid_lit, &name_lit);
	values[0] = CStringGetTextDatum(origin);
	values[1] = Int64GetDatum((int64) xid);
	values[2] = CStringGetTextDatum(outcome == DECISION_COMMIT ? "commit" : "abort");
	values[3] = BoolGetDatum(conditional);
	values[4] = Int64GetDatum((int64) term);
	values[5] = TimestampTzGetDatum(at);
	values[6] = CStringGetTextDatum(oid_lit);
	values[7] = CStringGetTextDatum(name_lit);
	run("INSERT INTO distx.cluster_decisions "
		"(origin, xid, outcome, conditional, term, decided_at, participant_oids, participants) "
		"VALUES ($1, $2::text::xid8, $3, $4, $5, $6, $7::oid[], $8::name[])",
		8, types, values);
}

static int64
apply_decision(Reader *r, uint64 term)
{
	int			outcome = get_u8(r);
	bool		conditional = get_u8(r) != 0;
	uint64		xid = get_u64(r);
	TimestampTz at = (TimestampTz) get_u64(r);
	char	   *origin = get_str(r, DECISION_ORIGIN_MAX, "origin");
	int			n = get_u16(r);
	Oid		   *oids = palloc(sizeof(Oid) * Max(n, 1));
	char	  **names = palloc(sizeof(char *) * Max(n, 1));
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2];
	int			i;

	if (outcome != DECISION_COMMIT && outcome != DECISION_ABORT)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed %s: bad outcome %d", r->what, outcome)));
	for (i = 0; i < n; i++)
	{
		oids[i] = get_u32(r);
		names[i] = get_str(r, NAMEDATALEN, "participant name");
	}
	if (r->left != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed %s: trailing bytes", r->what)));

	/* the first decision wins */
	values[0] = CStringGetTextDatum(origin);
	values[1] = Int64GetDatum((int64) xid);
	run("SELECT outcome FROM distx.cluster_decisions WHERE origin = $1 AND xid = $2::text::xid8",
		2, types, values);
	if (SPI_processed > 0)
	{
		char	   *won = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		return strcmp(won, "commit") == 0 ? DECISION_COMMIT : DECISION_ABORT;
	}
	insert_decision(origin, xid, outcome, conditional, term, at, n, oids, names);
	return outcome;
}

/* ENTRY_FORGET (n = 1, from older logs) and ENTRY_FORGET_MANY */
static int64
apply_forget(Reader *r, bool many)
{
	int			n = many ? get_u16(r) : 1;
	Oid			types[2] = {TEXTOID, INT8OID};
	SPIPlanPtr	plan;
	int64		forgotten = 0;
	int			i;

	plan = SPI_prepare("DELETE FROM distx.cluster_decisions WHERE origin = $1 AND xid = $2::text::xid8",
					   2, types);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	for (i = 0; i < n; i++)
	{
		uint64		xid = get_u64(r);
		char	   *origin = get_str(r, DECISION_ORIGIN_MAX, "origin");
		Datum		values[2];
		int			rc;

		values[0] = CStringGetTextDatum(origin);
		values[1] = Int64GetDatum((int64) xid);
		rc = SPI_execute_plan(plan, values, NULL, false, 0);
		if (rc < 0)
			elog(ERROR, "could not forget a decision: %s", SPI_result_code_string(rc));
		forgotten += (int64) SPI_processed;
	}
	if (r->left != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed %s: trailing bytes", r->what)));
	SPI_freeplan(plan);
	return forgotten;
}

static void
store_applied(uint64 index, uint64 term)
{
	Oid			types[2] = {INT8OID, INT8OID};
	Datum		values[2];

	values[0] = Int64GetDatum((int64) index);
	values[1] = Int64GetDatum((int64) term);
	run("UPDATE distx.raft_applied SET applied_index = $1, applied_term = $2",
		2, types, values);
	if (SPI_processed != 1)
		run("INSERT INTO distx.raft_applied (applied_index, applied_term) VALUES ($1, $2)",
			2, types, values);
}

void
cluster_apply_entries(const raft_entry *entries, size_t n, int64 *results)
{
	uint64		applied;
	size_t		i;

	if (n == 0)
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	applied = cluster_applied_index();
	for (i = 0; i < n; i++)
	{
		const raft_entry *e = &entries[i];
		Reader		r;

		results[i] = 0;
		if (e->index <= applied)
			continue;			/* already in the tables */
		if (e->type != RAFT_ENTRY_NORMAL)
			continue;
		r.p = e->data;
		r.left = e->len;
		r.what = "Raft entry";
		switch (get_u8(&r))
		{
			case ENTRY_NODE_ADD:
				results[i] = apply_node_add(&r);
				break;
			case ENTRY_DECISION:
				results[i] = apply_decision(&r, e->term);
				break;
			case ENTRY_FORGET:
			case ENTRY_FORGET_MANY:
				results[i] = apply_forget(&r, e->data[0] == ENTRY_FORGET_MANY);
				break;
			case ENTRY_SAGA:
				results[i] = saga_state_apply(&r, e->term, e->index);
				break;
			default:
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("unknown kind %u of Raft entry %llu",
								(unsigned) e->data[0], (unsigned long long) e->index),
						 errhint("Was it written by a newer version of distx?")));
		}
	}
	if (entries[n - 1].index > applied)
		store_applied(entries[n - 1].index, entries[n - 1].term);
	SPI_finish();
}

void
cluster_reset_replicated_state(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	run("DELETE FROM distx.cluster_nodes", 0, NULL, NULL);
	run("DELETE FROM distx.cluster_decisions", 0, NULL, NULL);
	saga_state_reset();
	store_applied(0, 0);
	SPI_finish();
}

uint64
cluster_applied_index(void)
{
	bool		isnull;
	uint64		v = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	run("SELECT applied_index FROM distx.raft_applied", 0, NULL, NULL);
	if (SPI_processed > 0)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			v = (uint64) DatumGetInt64(d);
	}
	SPI_finish();
	return v;
}

int
cluster_load_members(ClusterMember *members, int max)
{
	uint64		i;
	int			n = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	run("SELECT node_id, system_id, node::text FROM distx.cluster_nodes ORDER BY node_id",
		0, NULL, NULL);
	for (i = 0; i < SPI_processed && n < max; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name;

		members[n].id = (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		members[n].system_id = (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		name = SPI_getvalue(tup, desc, 3);
		strlcpy(members[n].name, name ? name : "", DXS_NAME_LEN);
		n++;
	}
	SPI_finish();
	return n;
}

/* ------------------------------------------------------------------
 * Snapshots
 * ------------------------------------------------------------------
 */

uint8 *
cluster_snapshot_make(uint32 *len)
{
	StringInfoData buf;
	StringInfoData sec;
	uint64		i;

	/* in the caller's memory: the result outlives SPI's */
	initStringInfo(&buf);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	put_u32(&buf, SNAP_MAGIC);
	put_u32(&buf, SNAP_VERSION);

	run("SELECT node_id, system_id, added_at, node::text FROM distx.cluster_nodes ORDER BY node_id",
		0, NULL, NULL);
	initStringInfo(&sec);
	put_u32(&sec, (uint32) SPI_processed);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *name = SPI_getvalue(tup, desc, 4);

		put_u64(&sec, (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull)));
		put_u64(&sec, (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull)));
		put_u64(&sec, (uint64) DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull)));
		put_u16(&sec, (uint16) strlen(name));
		appendBinaryStringInfo(&sec, name, (int) strlen(name));
	}
	put_u8(&buf, SNAP_TAG_NODES);
	put_u32(&buf, (uint32) sec.len);
	appendBinaryStringInfo(&buf, sec.data, sec.len);

	run("SELECT origin, xid::text, outcome, conditional, term, decided_at, "
		"participant_oids, array_length(participants, 1), participants "
		"FROM distx.cluster_decisions ORDER BY origin, xid",
		0, NULL, NULL);
	resetStringInfo(&sec);
	put_u32(&sec, (uint32) SPI_processed);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		ArrayType  *oids;
		ArrayType  *names;
		Datum	   *oe;
		Datum	   *ne;
		int			no;
		int			nn;
		int			k;

		put_str(&sec, SPI_getvalue(tup, desc, 1), DECISION_ORIGIN_MAX, "origin");
		put_u64(&sec, strtou64(SPI_getvalue(tup, desc, 2), NULL, 10));
		put_u8(&sec, strcmp(SPI_getvalue(tup, desc, 3), "commit") == 0 ?
			   DECISION_COMMIT : DECISION_ABORT);
		put_u8(&sec, DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull)) ? 1 : 0);
		put_u64(&sec, (uint64) DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull)));
		put_u64(&sec, (uint64) DatumGetTimestampTz(SPI_getbinval(tup, desc, 6, &isnull)));
		d = SPI_getbinval(tup, desc, 9, &isnull);
		names = DatumGetArrayTypeP(d);
		deconstruct_array(names, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &ne, NULL, &nn);
		d = SPI_getbinval(tup, desc, 7, &isnull);
		oids = DatumGetArrayTypeP(d);
		deconstruct_array(oids, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &oe, NULL, &no);
		put_u16(&sec, (uint16) nn);
		for (k = 0; k < nn; k++)
		{
			put_u32(&sec, k < no ? DatumGetObjectId(oe[k]) : InvalidOid);
			put_str(&sec, NameStr(*DatumGetName(ne[k])), NAMEDATALEN, "participant name");
		}
	}
	put_u8(&buf, SNAP_TAG_DECISIONS);
	put_u32(&buf, (uint32) sec.len);
	appendBinaryStringInfo(&buf, sec.data, sec.len);

	resetStringInfo(&sec);
	saga_state_snapshot_make(&sec);
	put_u8(&buf, SNAP_TAG_SAGAS);
	put_u32(&buf, (uint32) sec.len);
	appendBinaryStringInfo(&buf, sec.data, sec.len);
	SPI_finish();

	*len = (uint32) buf.len;
	return (uint8 *) buf.data;
}

void
cluster_snapshot_restore(const uint8 *data, uint32 len, uint64 index, uint64 term)
{
	Reader		r;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	run("DELETE FROM distx.cluster_nodes", 0, NULL, NULL);
	run("DELETE FROM distx.cluster_decisions", 0, NULL, NULL);
	saga_state_reset();

	if (len > 0)
	{
		r.p = data;
		r.left = len;
		r.what = "Raft snapshot";
		if (get_u32(&r) != SNAP_MAGIC || get_u32(&r) != SNAP_VERSION)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed Raft snapshot at index %llu: bad header",
							(unsigned long long) index)));
		while (r.left > 0)
		{
			uint8		tag = get_u8(&r);
			uint32		slen = get_u32(&r);
			Reader		s;

			need(&r, slen);
			s.p = r.p;
			s.left = slen;
			s.what = "Raft snapshot";
			r.p += slen;
			r.left -= slen;
			if (tag == SNAP_TAG_NODES)
			{
				uint32		count = get_u32(&s);
				uint32		i;

				for (i = 0; i < count; i++)
				{
					Oid			types[4] = {INT8OID, INT8OID, TIMESTAMPTZOID, TEXTOID};
					Datum		values[4];

					values[0] = Int64GetDatum((int64) get_u64(&s));
					values[1] = Int64GetDatum((int64) get_u64(&s));
					values[2] = TimestampTzGetDatum((TimestampTz) get_u64(&s));
					values[3] = CStringGetTextDatum(get_name(&s));
					run("INSERT INTO distx.cluster_nodes (node_id, system_id, added_at, node) "
						"VALUES ($1, $2, $3, $4::name)", 4, types, values);
				}
			}
			else if (tag == SNAP_TAG_DECISIONS)
			{
				uint32		count = get_u32(&s);
				uint32		i;

				for (i = 0; i < count; i++)
				{
					char	   *origin = get_str(&s, DECISION_ORIGIN_MAX, "origin");
					uint64		xid = get_u64(&s);
					int			outcome = get_u8(&s);
					bool		conditional = get_u8(&s) != 0;
					uint64		dterm = get_u64(&s);
					TimestampTz at = (TimestampTz) get_u64(&s);
					int			n = get_u16(&s);
					Oid		   *oids = palloc(sizeof(Oid) * Max(n, 1));
					char	  **names = palloc(sizeof(char *) * Max(n, 1));
					int			k;

					for (k = 0; k < n; k++)
					{
						oids[k] = get_u32(&s);
						names[k] = get_str(&s, NAMEDATALEN, "participant name");
					}
					insert_decision(origin, xid, outcome, conditional, dterm, at,
									n, oids, names);
				}
			}
			else if (tag == SNAP_TAG_SAGAS)
				saga_state_snapshot_restore(&s);
			else
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("unknown section %u in Raft snapshot at index %llu",
								(unsigned) tag, (unsigned long long) index),
						 errhint("Was it written by a newer version of distx?")));
		}
	}
	store_applied(index, term);
	SPI_finish();
}
