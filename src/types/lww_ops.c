/*-------------------------------------------------------------------------
 *
 * lww_ops.c
 *	  Operations on the lww type: writing (lww_new, lww_set), accessors, the
 *	  merge (a CRDT join) and concurrency detection.
 *
 * Writes (lww_new, lww_set) take their timestamps from this server's hybrid
 * logical clock.
 * lww_set(old, value) replaces a register: it observes old's hlc and ticks,
 * so the new write is ordered after the one it overwrites even when this
 * node's wall clock is behind the node that wrote old, and it increments
 * this node's entry of old's clock, so the new write causally follows old.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "types/lww.h"
#include "types/vclock.h"

PG_FUNCTION_INFO_V1(lww_new);
PG_FUNCTION_INFO_V1(lww_set);
PG_FUNCTION_INFO_V1(lww_make);
PG_FUNCTION_INFO_V1(lww_value);
PG_FUNCTION_INFO_V1(lww_value_text);
PG_FUNCTION_INFO_V1(lww_hlc);
PG_FUNCTION_INFO_V1(lww_clock);
PG_FUNCTION_INFO_V1(lww_merge);
PG_FUNCTION_INFO_V1(lww_concurrent);
PG_FUNCTION_INFO_V1(lww_compare);
PG_FUNCTION_INFO_V1(lww_eq);
PG_FUNCTION_INFO_V1(lww_ne);
PG_FUNCTION_INFO_V1(lww_hash);
PG_FUNCTION_INFO_V1(lww_hash_extended);

/* what lww_new()/lww_set() cache to convert their argument with to_jsonb() */
typedef struct ToJsonbCache
{
	Oid			argtype;
	FmgrInfo	flinfo;
} ToJsonbCache;

/* argument argno of any type as jsonb; SQL NULL becomes JSON null */
static Jsonb *
arg_to_jsonb(FunctionCallInfo fcinfo, int argno)
{
	ToJsonbCache *cache = (ToJsonbCache *) fcinfo->flinfo->fn_extra;
	Oid			argtype;

	if (PG_ARGISNULL(argno))
	{
		JsonbValue	null;

		null.type = jbvNull;
		return JsonbValueToJsonb(&null);
	}
	argtype = get_fn_expr_argtype(fcinfo->flinfo, argno);
	if (!OidIsValid(argtype))
		elog(ERROR, "could not determine the type of the value");
	if (argtype == JSONBOID)
		return PG_GETARG_JSONB_P(argno);

	if (cache == NULL || cache->argtype != argtype)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		FuncExpr   *expr;

		if (cache == NULL)
			cache = palloc(sizeof(ToJsonbCache));
		fmgr_info_cxt(F_TO_JSONB, &cache->flinfo, fcinfo->flinfo->fn_mcxt);
		/* to_jsonb() learns the type of its argument from its expression */
		expr = makeFuncExpr(F_TO_JSONB, JSONBOID,
							list_make1(makeNullConst(argtype, -1, InvalidOid)),
							InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		cache->flinfo.fn_expr = (Node *) expr;
		cache->argtype = argtype;
		fcinfo->flinfo->fn_extra = cache;
		MemoryContextSwitchTo(old);
	}
	return DatumGetJsonbP(FunctionCall1(&cache->flinfo, PG_GETARG_DATUM(argno)));
}

/* the empty clock */
static struct varlena *
empty_clock(void)
{
	struct varlena *v = palloc(VARHDRSZ);

	SET_VARSIZE(v, VARHDRSZ);
	return v;
}

/* lww_new(value anyelement): a new register written on this node now */
Datum
lww_new(PG_FUNCTION_ARGS)
{
	Jsonb	   *value = arg_to_jsonb(fcinfo, 0);
	const char *node = distx_node_name();
	Hlc			ts;
	struct varlena *clock;

	hlc_clock_now(&ts);
	clock = vclock_increment_internal(empty_clock(), node, strlen(node));
	PG_RETURN_LWW_P(lww_build(&ts, clock, value));
}

/*
 * lww_set(old lww, value anyelement): a write on this node that replaces
 * old.  Its hlc is greater than old's and its clock is old's with this
 * node's entry incremented.  With old NULL it is lww_new(value).
 */
Datum
lww_set(PG_FUNCTION_ARGS)
{
	Jsonb	   *value = arg_to_jsonb(fcinfo, 1);
	const char *node = distx_node_name();
	Hlc			ts;
	struct varlena *clock;

	if (PG_ARGISNULL(0))
	{
		hlc_clock_now(&ts);
		clock = vclock_increment_internal(empty_clock(), node, strlen(node));
	}
	else
	{
		LwwData    *old = PG_GETARG_LWW_P(0);
		Hlc			old_ts;

		lww_get_hlc(old, &old_ts);
		hlc_clock_observe(&old_ts, &ts);
		clock = vclock_increment_internal(lww_get_clock(old), node, strlen(node));
	}
	PG_RETURN_LWW_P(lww_build(&ts, clock, value));
}

/* lww(value jsonb, ts hlc, clock vclock): a register from its parts */
Datum
lww_make(PG_FUNCTION_ARGS)
{
	Jsonb	   *value = PG_GETARG_JSONB_P(0);
	Hlc		   *ts = PG_GETARG_HLC_P(1);
	struct varlena *clock = PG_GETARG_VCLOCK_P(2);

	PG_RETURN_LWW_P(lww_build(ts, clock, value));
}

Datum
lww_value(PG_FUNCTION_ARGS)
{
	LwwData    *l = PG_GETARG_LWW_P(0);
	Jsonb	   *value = lww_get_value(l);
	Jsonb	   *result = palloc(VARSIZE(value));

	memcpy(result, value, VARSIZE(value));
	PG_RETURN_JSONB_P(result);
}

/* the value as text, like ->>: strings unquoted, JSON null as SQL NULL */
Datum
lww_value_text(PG_FUNCTION_ARGS)
{
	LwwData    *l = PG_GETARG_LWW_P(0);
	Jsonb	   *value = lww_get_value(l);
	JsonbValue	scalar;

	if (JB_ROOT_IS_SCALAR(value) &&
		JsonbExtractScalar(&value->root, &scalar))
	{
		if (scalar.type == jbvNull)
			PG_RETURN_NULL();
		if (scalar.type == jbvString)
			PG_RETURN_TEXT_P(cstring_to_text_with_len(scalar.val.string.val,
													  scalar.val.string.len));
	}
	PG_RETURN_TEXT_P(cstring_to_text(JsonbToCString(NULL, &value->root,
													VARSIZE(value))));
}

Datum
lww_hlc(PG_FUNCTION_ARGS)
{
	LwwData    *l = PG_GETARG_LWW_P(0);
	Hlc		   *result = palloc(sizeof(Hlc));

	lww_get_hlc(l, result);
	PG_RETURN_HLC_P(result);
}

Datum
lww_clock(PG_FUNCTION_ARGS)
{
	LwwData    *l = PG_GETARG_LWW_P(0);
	struct varlena *clock = lww_get_clock(l);
	struct varlena *result = palloc(VARSIZE(clock));

	memcpy(result, clock, VARSIZE(clock));
	PG_RETURN_VCLOCK_P(result);
}

/*
 * The total order of writes: hlc (physical, logical, node), then the value
 * in jsonb order, then the value's bytes, so that only identical writes
 * compare equal.
 */
static int
lww_write_cmp(const LwwData *a, const LwwData *b)
{
	Hlc			ha,
				hb;
	Jsonb	   *va = lww_get_value(a);
	Jsonb	   *vb = lww_get_value(b);
	int			c;

	lww_get_hlc(a, &ha);
	lww_get_hlc(b, &hb);
	c = hlc_cmp_internal(&ha, &hb);
	if (c != 0)
		return c;
	c = compareJsonbContainers(&va->root, &vb->root);
	if (c != 0)
		return c;
	if (VARSIZE(va) != VARSIZE(vb))
		return VARSIZE(va) < VARSIZE(vb) ? -1 : 1;
	return memcmp(va, vb, VARSIZE(va));
}

Datum
lww_merge(PG_FUNCTION_ARGS)
{
	LwwData    *a = PG_GETARG_LWW_P(0);
	LwwData    *b = PG_GETARG_LWW_P(1);
	LwwData    *winner = lww_write_cmp(a, b) >= 0 ? a : b;
	struct varlena *clock = vclock_merge_internal(lww_get_clock(a),
												  lww_get_clock(b));
	Hlc			ts;

	/* the winner already carries the merged clock: return it as is */
	if (clock == lww_get_clock(winner) ||
		vclock_equal_internal(clock, lww_get_clock(winner)))
		PG_RETURN_LWW_P(winner);
	lww_get_hlc(winner, &ts);
	PG_RETURN_LWW_P(lww_build(&ts, clock, lww_get_value(winner)));
}

/* were a and b written concurrently (neither clock covers the other)? */
Datum
lww_concurrent(PG_FUNCTION_ARGS)
{
	LwwData    *a = PG_GETARG_LWW_P(0);
	LwwData    *b = PG_GETARG_LWW_P(1);

	PG_RETURN_BOOL(vclock_order(lww_get_clock(a), lww_get_clock(b)) ==
				   VCLOCK_CONCURRENT);
}

/* vclock_compare() of the two clocks */
Datum
lww_compare(PG_FUNCTION_ARGS)
{
	LwwData    *a = PG_GETARG_LWW_P(0);
	LwwData    *b = PG_GETARG_LWW_P(1);
	const char *s = NULL;

	switch (vclock_order(lww_get_clock(a), lww_get_clock(b)))
	{
		case VCLOCK_EQUAL:
			s = "equal";
			break;
		case VCLOCK_BEFORE:
			s = "before";
			break;
		case VCLOCK_AFTER:
			s = "after";
			break;
		case VCLOCK_CONCURRENT:
			s = "concurrent";
			break;
	}
	PG_RETURN_TEXT_P(cstring_to_text(s));
}

/* equality: the same write with the same clock (the layout is canonical) */
static bool
lww_equal(const LwwData *a, const LwwData *b)
{
	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

Datum
lww_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(lww_equal(PG_GETARG_LWW_P(0), PG_GETARG_LWW_P(1)));
}

Datum
lww_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!lww_equal(PG_GETARG_LWW_P(0), PG_GETARG_LWW_P(1)));
}

Datum
lww_hash(PG_FUNCTION_ARGS)
{
	LwwData    *l = PG_GETARG_LWW_P(0);

	return hash_any((const unsigned char *) VARDATA(l), VARSIZE(l) - VARHDRSZ);
}

Datum
lww_hash_extended(PG_FUNCTION_ARGS)
{
	LwwData    *l = PG_GETARG_LWW_P(0);

	return hash_any_extended((const unsigned char *) VARDATA(l),
							 VARSIZE(l) - VARHDRSZ, PG_GETARG_INT64(1));
}
