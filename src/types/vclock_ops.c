/*-------------------------------------------------------------------------
 *
 * vclock_ops.c
 *	  Operations on the vclock type: increment, merge (pointwise maximum),
 *	  lookup, comparison in the happens-before partial order, equality and
 *	  hashing, and listing the entries as rows.
 *
 * Every operation walks the sorted entries of its inputs once, so merge and
 * compare are linear in the sizes of the two clocks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "types/vclock.h"

PG_FUNCTION_INFO_V1(vclock_increment);
PG_FUNCTION_INFO_V1(vclock_merge);
PG_FUNCTION_INFO_V1(vclock_get);
PG_FUNCTION_INFO_V1(vclock_compare);
PG_FUNCTION_INFO_V1(vclock_eq);
PG_FUNCTION_INFO_V1(vclock_ne);
PG_FUNCTION_INFO_V1(vclock_before);
PG_FUNCTION_INFO_V1(vclock_after);
PG_FUNCTION_INFO_V1(vclock_before_eq);
PG_FUNCTION_INFO_V1(vclock_after_eq);
PG_FUNCTION_INFO_V1(vclock_concurrent);
PG_FUNCTION_INFO_V1(vclock_hash);
PG_FUNCTION_INFO_V1(vclock_hash_extended);
PG_FUNCTION_INFO_V1(vclock_entries);
PG_FUNCTION_INFO_V1(vclock_size);

/*
 * Pointwise maximum.  Returns one of the inputs when it already dominates
 * the other, so that merging into a clock that has seen everything (the
 * common case in an aggregate) allocates nothing.
 */
struct varlena *
vclock_merge_internal(const struct varlena *a, const struct varlena *b)
{
	VclockIter	ia,
				ib;
	VclockEntry ea = {0},
				eb = {0};
	bool		has_a,
				has_b;
	bool		a_needed = false;	/* a has something b lacks */
	bool		b_needed = false;	/* b has something a lacks */
	struct varlena *result;
	uint8	   *out;
	const uint8 *sa,
			   *sb;

	if (VARSIZE_ANY_EXHDR(a) == 0)
		return (struct varlena *) b;
	if (VARSIZE_ANY_EXHDR(b) == 0)
		return (struct varlena *) a;

	result = (struct varlena *) palloc(VARHDRSZ + VARSIZE_ANY_EXHDR(a) +
									   VARSIZE_ANY_EXHDR(b));
	out = (uint8 *) VARDATA(result);

	vclock_iter_init(&ia, a);
	vclock_iter_init(&ib, b);
	sa = ia.p;
	sb = ib.p;
	has_a = vclock_iter_next(&ia, &ea);
	has_b = vclock_iter_next(&ib, &eb);
	while (has_a || has_b)
	{
		int			c;

		if (!has_a)
			c = 1;
		else if (!has_b)
			c = -1;
		else
			c = vclock_name_cmp(ea.name, ea.len, eb.name, eb.len);

		if (c < 0 || (c == 0 && ea.counter >= eb.counter))
		{
			/* copy a's entry as it is */
			memcpy(out, sa, ia.p - sa);
			out += ia.p - sa;
			if (c < 0 || ea.counter > eb.counter)
				a_needed = true;
		}
		else
		{
			memcpy(out, sb, ib.p - sb);
			out += ib.p - sb;
			b_needed = true;
		}
		if (c <= 0)
		{
			sa = ia.p;
			has_a = vclock_iter_next(&ia, &ea);
		}
		if (c >= 0)
		{
			sb = ib.p;
			has_b = vclock_iter_next(&ib, &eb);
		}
	}
	if (!b_needed)
	{
		pfree(result);
		return (struct varlena *) a;
	}
	if (!a_needed)
	{
		pfree(result);
		return (struct varlena *) b;
	}
	SET_VARSIZE(result, (char *) out - (char *) result);
	return result;
}

Datum
vclock_merge(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VCLOCK_P(0);
	struct varlena *b = PG_GETARG_VCLOCK_P(1);

	PG_RETURN_VCLOCK_P(vclock_merge_internal(a, b));
}

/* check a node name given as a function argument */
static void
check_node_arg(const char *name, int len)
{
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node name must not be empty")));
	if (len > DISTX_NODE_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node name is too long"),
				 errdetail("The node name is %d bytes long; the maximum is %d.",
						   len, DISTX_NODE_NAME_MAX)));
}

struct varlena *
vclock_increment_internal(const struct varlena *v, const char *name, int len)
{
	VclockIter	it;
	VclockEntry e;
	struct varlena *result;
	uint8	   *out;
	const uint8 *start;
	int64		counter = 0;
	bool		done = false;

	check_node_arg(name, len);
	result = (struct varlena *) palloc(VARHDRSZ + VARSIZE_ANY_EXHDR(v) +
									   VCLOCK_ENTRY_MAX);
	out = (uint8 *) VARDATA(result);
	vclock_iter_init(&it, v);
	start = it.p;
	while (vclock_iter_next(&it, &e))
	{
		int			c = done ? -1 : vclock_name_cmp(e.name, e.len, name, len);

		if (c == 0)
			counter = e.counter;
		if (c >= 0)
		{
			if (counter == PG_INT64_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("vclock counter is out of range"),
						 errdetail("The counter of node \"%.*s\" is already " INT64_FORMAT ".",
								   len, name, PG_INT64_MAX)));
			out += vclock_put_entry(out, name, len, counter + 1);
			done = true;
		}
		if (c != 0)
		{
			memcpy(out, start, it.p - start);
			out += it.p - start;
		}
		start = it.p;
	}
	if (!done)
		out += vclock_put_entry(out, name, len, 1);
	SET_VARSIZE(result, (char *) out - (char *) result);
	return result;
}

Datum
vclock_increment(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VCLOCK_P(0);
	text	   *node = PG_GETARG_TEXT_PP(1);

	PG_RETURN_VCLOCK_P(vclock_increment_internal(v, VARDATA_ANY(node),
												 VARSIZE_ANY_EXHDR(node)));
}

Datum
vclock_get(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VCLOCK_P(0);
	text	   *node = PG_GETARG_TEXT_PP(1);
	const char *name = VARDATA_ANY(node);
	int			len = VARSIZE_ANY_EXHDR(node);
	VclockIter	it;
	VclockEntry e;

	vclock_iter_init(&it, v);
	while (vclock_iter_next(&it, &e))
	{
		int			c = vclock_name_cmp(e.name, e.len, name, len);

		if (c == 0)
			PG_RETURN_INT64(e.counter);
		if (c > 0)
			break;
	}
	PG_RETURN_INT64(0);
}

/*
 * Compare in the happens-before order: a is before b when every counter of
 * a is at most b's and a != b.
 */
VclockOrder
vclock_order(const struct varlena *a, const struct varlena *b)
{
	VclockIter	ia,
				ib;
	VclockEntry ea = {0},
				eb = {0};
	bool		has_a,
				has_b;
	bool		a_less = false; /* some counter of a is below b's */
	bool		a_more = false; /* some counter of a is above b's */

	vclock_iter_init(&ia, a);
	vclock_iter_init(&ib, b);
	has_a = vclock_iter_next(&ia, &ea);
	has_b = vclock_iter_next(&ib, &eb);
	while ((has_a || has_b) && !(a_less && a_more))
	{
		int			c;

		if (!has_a)
			c = 1;
		else if (!has_b)
			c = -1;
		else
			c = vclock_name_cmp(ea.name, ea.len, eb.name, eb.len);

		if (c < 0)
			a_more = true;		/* b's counter is 0 */
		else if (c > 0)
			a_less = true;
		else if (ea.counter < eb.counter)
			a_less = true;
		else if (ea.counter > eb.counter)
			a_more = true;

		if (c <= 0)
			has_a = vclock_iter_next(&ia, &ea);
		if (c >= 0)
			has_b = vclock_iter_next(&ib, &eb);
	}
	if (a_less && a_more)
		return VCLOCK_CONCURRENT;
	if (a_less)
		return VCLOCK_BEFORE;
	if (a_more)
		return VCLOCK_AFTER;
	return VCLOCK_EQUAL;
}

bool
vclock_equal_internal(const struct varlena *a, const struct varlena *b)
{
	/* the representation is canonical */
	return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
		memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

Datum
vclock_compare(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VCLOCK_P(0);
	struct varlena *b = PG_GETARG_VCLOCK_P(1);
	const char *s = NULL;

	switch (vclock_order(a, b))
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

Datum
vclock_eq(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VCLOCK_P(0);
	struct varlena *b = PG_GETARG_VCLOCK_P(1);

	PG_RETURN_BOOL(vclock_equal_internal(a, b));
}

Datum
vclock_ne(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VCLOCK_P(0);
	struct varlena *b = PG_GETARG_VCLOCK_P(1);

	PG_RETURN_BOOL(!vclock_equal_internal(a, b));
}

Datum
vclock_before(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VCLOCK_P(0);
	struct varlena *b = PG_GETARG_VCLOCK_P(1);

	PG_RETURN_BOOL(vclock_order(a, b) == VCLOCK_BEFORE);
}

Datum
vclock_after(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VCLOCK_P(0);
	struct varlena *b = PG_GETARG_VCLOCK_P(1);

	PG_RETURN_BOOL(vclock_order(a, b) == VCLOCK_AFTER);
}

Datum
vclock_before_eq(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VCLOCK_P(0);
	struct varlena *b = PG_GETARG_VCLOCK_P(1);
	VclockOrder o = vclock_order(a, b);

	PG_RETURN_BOOL(o == VCLOCK_BEFORE || o == VCLOCK_EQUAL);
}

Datum
vclock_after_eq(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VCLOCK_P(0);
	struct varlena *b = PG_GETARG_VCLOCK_P(1);
	VclockOrder o = vclock_order(a, b);

	PG_RETURN_BOOL(o == VCLOCK_AFTER || o == VCLOCK_EQUAL);
}

Datum
vclock_concurrent(PG_FUNCTION_ARGS)
{
	struct varlena *a = PG_GETARG_VCLOCK_P(0);
	struct varlena *b = PG_GETARG_VCLOCK_P(1);

	PG_RETURN_BOOL(vclock_order(a, b) == VCLOCK_CONCURRENT);
}

Datum
vclock_hash(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VCLOCK_P(0);

	return hash_any((const unsigned char *) VARDATA_ANY(v),
					VARSIZE_ANY_EXHDR(v));
}

Datum
vclock_hash_extended(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VCLOCK_P(0);

	return hash_any_extended((const unsigned char *) VARDATA_ANY(v),
							 VARSIZE_ANY_EXHDR(v), PG_GETARG_INT64(1));
}

/* the entries as rows (node text, counter bigint), sorted by node */
Datum
vclock_entries(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VCLOCK_P(0);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	VclockIter	it;
	VclockEntry e;

	InitMaterializedSRF(fcinfo, 0);
	vclock_iter_init(&it, v);
	while (vclock_iter_next(&it, &e))
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = PointerGetDatum(cstring_to_text_with_len(e.name, e.len));
		values[1] = Int64GetDatum(e.counter);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* number of entries (nodes with a nonzero counter) */
Datum
vclock_size(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VCLOCK_P(0);
	VclockIter	it;
	VclockEntry e;
	int32		n = 0;

	vclock_iter_init(&it, v);
	while (vclock_iter_next(&it, &e))
		n++;
	PG_RETURN_INT32(n);
}
