/*-------------------------------------------------------------------------
 *
 * lww_io.c
 *	  Construction, text and binary input/output of the lww type.
 *
 * The text form is a JSON object with exactly the keys value, hlc and
 * clock:
 *
 *		{"value": {"qty": 3}, "hlc": "2026-11-21T05:42:33.123456Z/0@17",
 *		 "clock": {"node-a": 2}}
 *
 * The output always has that key order and the canonical forms of the
 * three parts, so it round-trips exactly.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "types/lww.h"
#include "types/vclock.h"

PG_FUNCTION_INFO_V1(lww_in);
PG_FUNCTION_INFO_V1(lww_out);
PG_FUNCTION_INFO_V1(lww_recv);
PG_FUNCTION_INFO_V1(lww_send);

LwwData *
lww_build(const Hlc *ts, const struct varlena *clock, const Jsonb *value)
{
	Size		clock_size = VARHDRSZ + VARSIZE_ANY_EXHDR(clock);
	Size		value_off = INTALIGN(LWW_HEADER_SIZE + clock_size);
	Size		size = value_off + VARSIZE(value);
	LwwData    *l;
	struct varlena *c;

	if (size > MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("lww value is too large")));
	l = (LwwData *) palloc0(size);
	SET_VARSIZE(l, size);
	l->clock_size = (int32) clock_size;
	memcpy(l->ts, ts, sizeof(Hlc));
	c = (struct varlena *) l->rest;
	SET_VARSIZE(c, clock_size);
	memcpy(VARDATA(c), VARDATA_ANY(clock), VARSIZE_ANY_EXHDR(clock));
	memcpy((char *) l + value_off, value, VARSIZE(value));
	return l;
}

pg_attribute_noreturn()
static void
lww_syntax_error(const char *str, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type lww: \"%s\"", str),
			 errdetail("%s", detail)));
}

static JsonbValue *
lww_key(const char *str, Jsonb *jb, const char *key)
{
	JsonbValue *v = getKeyJsonValueFromContainer(&jb->root, key, strlen(key),
												 NULL);

	if (v == NULL)
		lww_syntax_error(str, psprintf("The key \"%s\" is missing.", key));
	return v;
}

Datum
lww_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	Jsonb	   *jb;
	JsonbValue *jv;
	Jsonb	   *value;
	struct varlena *clock;
	Hlc			ts;
	char	   *hlc_str;

	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(str)));
	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		lww_syntax_error(str, "Expected a JSON object with the keys \"value\", \"hlc\" and \"clock\".");
	if (JB_ROOT_COUNT(jb) != 3)
		lww_syntax_error(str, "Expected exactly the keys \"value\", \"hlc\" and \"clock\".");

	value = JsonbValueToJsonb(lww_key(str, jb, "value"));

	jv = lww_key(str, jb, "hlc");
	if (jv->type != jbvString)
		lww_syntax_error(str, "The value of \"hlc\" must be a string.");
	hlc_str = pnstrdup(jv->val.string.val, jv->val.string.len);
	hlc_parse(hlc_str, &ts);

	jv = lww_key(str, jb, "clock");
	if (jv->type != jbvBinary || !JsonContainerIsObject(jv->val.binary.data))
		lww_syntax_error(str, "The value of \"clock\" must be a JSON object.");
	clock = vclock_from_jsonb_internal(JsonbValueToJsonb(jv));

	PG_RETURN_LWW_P(lww_build(&ts, clock, value));
}

Datum
lww_out(PG_FUNCTION_ARGS)
{
	LwwData    *l = PG_GETARG_LWW_P(0);
	Jsonb	   *value = lww_get_value(l);
	Hlc			ts;
	StringInfoData out;

	lww_get_hlc(l, &ts);
	initStringInfo(&out);
	appendStringInfoString(&out, "{\"value\": ");
	(void) JsonbToCString(&out, &value->root, VARSIZE(value));
	appendStringInfo(&out, ", \"hlc\": \"%s\", \"clock\": %s}",
					 hlc_to_cstring(&ts),
					 vclock_to_cstring(lww_get_clock(l)));
	PG_RETURN_CSTRING(out.data);
}

/*
 * Binary form: the hlc (int64, uint32, uint32), then the vclock and the
 * jsonb value in their own binary forms, each preceded by its int32 length.
 */
Datum
lww_send(PG_FUNCTION_ARGS)
{
	LwwData    *l = PG_GETARG_LWW_P(0);
	Hlc			ts;
	StringInfoData buf;
	StringInfoData sub;
	bytea	   *jb;

	lww_get_hlc(l, &ts);
	pq_begintypsend(&buf);
	hlc_send_internal(&buf, &ts);

	initStringInfo(&sub);
	vclock_send_internal(&sub, lww_get_clock(l));
	pq_sendint32(&buf, sub.len);
	pq_sendbytes(&buf, sub.data, sub.len);

	jb = DatumGetByteaPP(DirectFunctionCall1(jsonb_send,
											 PointerGetDatum(lww_get_value(l))));
	pq_sendint32(&buf, VARSIZE_ANY_EXHDR(jb));
	pq_sendbytes(&buf, VARDATA_ANY(jb), VARSIZE_ANY_EXHDR(jb));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* the next int32-length-prefixed part of buf, as a StringInfo of its own */
static void
lww_recv_part(StringInfo buf, StringInfo part, const char *what)
{
	int			len = pq_getmsgint(buf, 4);

	if (len < 0 || len > buf->len - buf->cursor)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid %s length in external lww value: %d", what, len)));
	part->data = (char *) pq_getmsgbytes(buf, len);
	part->len = len;
	part->maxlen = len;
	part->cursor = 0;
}

Datum
lww_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	Hlc			ts;
	StringInfoData part;
	struct varlena *clock;
	Jsonb	   *value;

	hlc_recv_internal(buf, &ts);

	lww_recv_part(buf, &part, "clock");
	clock = vclock_recv_internal(&part);
	if (part.cursor != part.len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid clock in external lww value")));

	lww_recv_part(buf, &part, "value");
	if (part.len < 1 || part.data[0] != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid value in external lww value"),
				 errdetail("The value must be in the binary form of jsonb version 1.")));
	value = DatumGetJsonbP(DirectFunctionCall1(jsonb_recv, PointerGetDatum(&part)));

	PG_RETURN_LWW_P(lww_build(&ts, clock, value));
}
