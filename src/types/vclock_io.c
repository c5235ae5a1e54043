/*-------------------------------------------------------------------------
 *
 * vclock_io.c
 *	  Text and binary input/output of the vclock type, and its casts to and
 *	  from jsonb.
 *
 * The text form is a JSON object of node names and non-negative integer
 * counters, {"node-a": 3, "node-b": 1}, with any JSON whitespace.  The
 * output is canonical: sorted by node name (byte order), zero counters
 * dropped, one space after ':' and ','.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "types/vclock.h"

PG_FUNCTION_INFO_V1(vclock_in);
PG_FUNCTION_INFO_V1(vclock_out);
PG_FUNCTION_INFO_V1(vclock_recv);
PG_FUNCTION_INFO_V1(vclock_send);
PG_FUNCTION_INFO_V1(vclock_to_jsonb);
PG_FUNCTION_INFO_V1(jsonb_to_vclock);

/*
 * Building a clock from entries
 */

static int
entry_cmp(const void *a, const void *b)
{
	const VclockEntry *ea = (const VclockEntry *) a;
	const VclockEntry *eb = (const VclockEntry *) b;
	int			c = vclock_name_cmp(ea->name, ea->len, eb->name, eb->len);

	if (c != 0)
		return c;
	return (ea->pos > eb->pos) - (ea->pos < eb->pos);
}

/*
 * Sort entries by name.  Returns the index of an entry whose name also
 * appears earlier in the input (the later one by pos), or -1.
 */
int
vclock_sort_entries(VclockEntry *entries, int n)
{
	int			i;
	int			dup = -1;

	if (n > 1)
		qsort(entries, n, sizeof(VclockEntry), entry_cmp);
	for (i = 1; i < n; i++)
	{
		if (vclock_name_cmp(entries[i - 1].name, entries[i - 1].len,
							entries[i].name, entries[i].len) == 0 &&
			(dup < 0 || entries[i].pos < entries[dup].pos))
			dup = i;
	}
	return dup;
}

/* Build a clock from sorted, unique entries with counters >= 0. */
struct varlena *
vclock_build(const VclockEntry *entries, int n)
{
	Size		size = VARHDRSZ;
	struct varlena *result;
	uint8	   *out;
	int			i;

	for (i = 0; i < n; i++)
		size += 1 + entries[i].len + VCLOCK_VARINT_MAX;
	result = (struct varlena *) palloc(size);
	out = (uint8 *) VARDATA(result);
	for (i = 0; i < n; i++)
	{
		Assert(entries[i].counter >= 0);
		if (entries[i].counter > 0)
			out += vclock_put_entry(out, entries[i].name, entries[i].len,
									entries[i].counter);
	}
	SET_VARSIZE(result, (char *) out - (char *) result);
	return result;
}

/*
 * Text input
 */

typedef struct VclockParser
{
	const char *input;			/* the whole input, for messages */
	const char *p;				/* current position */
	StringInfoData names;		/* decoded node names */
} VclockParser;

/* 1-based character position of p in the input */
static int
char_pos(VclockParser *ps, const char *p)
{
	return pg_mbstrlen_with_len(ps->input, p - ps->input) + 1;
}

pg_attribute_noreturn()
static void
syntax_error(VclockParser *ps, const char *where, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type vclock: \"%s\"", ps->input),
			 errdetail("%s at character %d.", what, char_pos(ps, where))));
}

static void
skip_ws(VclockParser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

static int
hex_digits4(const char *s)
{
	int			v = 0;
	int			i;

	for (i = 0; i < 4; i++)
	{
		char		c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * Parse a JSON string at ps->p (which is at the opening quote) into
 * ps->names; returns its offset there and sets *len.
 */
static int
parse_name(VclockParser *ps, int *len)
{
	const char *start = ps->p;
	int			off = ps->names.len;

	ps->p++;					/* the opening quote */
	for (;;)
	{
		char		c = *ps->p;

		if (c == '\0')
			syntax_error(ps, start, "Unterminated node name starting");
		if (c == '"')
		{
			ps->p++;
			break;
		}
		if ((unsigned char) c < 0x20)
			syntax_error(ps, ps->p, "Unescaped control character in node name");
		if (c != '\\')
		{
			appendStringInfoChar(&ps->names, c);
			ps->p++;
			continue;
		}
		/* an escape */
		switch (ps->p[1])
		{
			case '"':
			case '\\':
			case '/':
				appendStringInfoChar(&ps->names, ps->p[1]);
				ps->p += 2;
				break;
			case 'b':
				appendStringInfoChar(&ps->names, '\b');
				ps->p += 2;
				break;
			case 'f':
				appendStringInfoChar(&ps->names, '\f');
				ps->p += 2;
				break;
			case 'n':
				appendStringInfoChar(&ps->names, '\n');
				ps->p += 2;
				break;
			case 'r':
				appendStringInfoChar(&ps->names, '\r');
				ps->p += 2;
				break;
			case 't':
				appendStringInfoChar(&ps->names, '\t');
				ps->p += 2;
				break;
			case 'u':
				{
					const char *esc = ps->p;
					pg_wchar	cp;
					int			hi = hex_digits4(ps->p + 2);
					unsigned char buf[MAX_UNICODE_EQUIVALENT_STRING + 1];

					if (hi < 0)
						syntax_error(ps, esc, "Invalid \\u escape in node name");
					ps->p += 6;
					if (hi >= 0xD800 && hi <= 0xDBFF)
					{
						int			lo = (ps->p[0] == '\\' && ps->p[1] == 'u') ?
						hex_digits4(ps->p + 2) : -1;

						if (lo < 0xDC00 || lo > 0xDFFF)
							syntax_error(ps, esc, "Unpaired Unicode surrogate in node name");
						cp = 0x10000 + (((pg_wchar) hi - 0xD800) << 10) + ((pg_wchar) lo - 0xDC00);
						ps->p += 6;
					}
					else if (hi >= 0xDC00 && hi <= 0xDFFF)
						syntax_error(ps, esc, "Unpaired Unicode surrogate in node name");
					else if (hi == 0)
						syntax_error(ps, esc, "Disallowed escape \\u0000 in node name");
					else
						cp = (pg_wchar) hi;
					pg_unicode_to_server(cp, buf);
					appendStringInfoString(&ps->names, (char *) buf);
				}
				break;
			default:
				syntax_error(ps, ps->p, "Invalid escape sequence in node name");
		}
	}
	*len = ps->names.len - off;
	if (*len == 0)
		syntax_error(ps, start, "Empty node name");
	if (*len > DISTX_NODE_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type vclock: \"%s\"", ps->input),
				 errdetail("Node name at character %d is %d bytes long; the maximum is %d.",
						   char_pos(ps, start), *len, DISTX_NODE_NAME_MAX)));
	return off;
}

/*
 * Parse a counter (a non-negative integer up to 2^63-1).  What counts as the
 * number for the messages is the longest run of number-like characters.
 */
static int64
parse_counter(VclockParser *ps, const char *name, int namelen)
{
	const char *start = ps->p;
	const char *q = ps->p;
	uint64		v = 0;
	bool		overflow = false;

	if (*q == '-')
	{
		q++;
		while (*q >= '0' && *q <= '9')
			q++;
		if (q > start + 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type vclock: \"%s\"", ps->input),
					 errdetail("Counter of node \"%.*s\" at character %d is negative.",
							   namelen, name, char_pos(ps, start))));
		q = start;
	}
	if (!(*q >= '0' && *q <= '9'))
		syntax_error(ps, start, "Expected a counter (a non-negative integer)");
	while (*q >= '0' && *q <= '9')
	{
		if (!overflow)
		{
			v = v * 10 + (*q - '0');
			if (v > (uint64) PG_INT64_MAX)
				overflow = true;
		}
		q++;
	}
	if (*q == '.' || *q == 'e' || *q == 'E')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type vclock: \"%s\"", ps->input),
				 errdetail("Counter of node \"%.*s\" at character %d is not an integer.",
						   namelen, name, char_pos(ps, start))));
	if (overflow)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("vclock counter is out of range"),
				 errdetail("Counter of node \"%.*s\" at character %d exceeds the maximum " INT64_FORMAT ".",
						   namelen, name, char_pos(ps, start), PG_INT64_MAX)));
	ps->p = q;
	return (int64) v;
}

struct varlena *
vclock_parse(const char *str)
{
	VclockParser ps;
	VclockEntry *entries;
	int			n = 0;
	int			cap = 8;
	int			dup;
	int			i;

	ps.input = str;
	ps.p = str;
	initStringInfo(&ps.names);
	entries = palloc(sizeof(VclockEntry) * cap);

	skip_ws(&ps);
	if (*ps.p != '{')
		syntax_error(&ps, ps.p, "Expected \"{\"");
	ps.p++;
	skip_ws(&ps);
	if (*ps.p == '}')
		ps.p++;
	else
	{
		for (;;)
		{
			int			off;
			int			len;
			const char *start;

			if (*ps.p != '"')
				syntax_error(&ps, ps.p, "Expected a node name in double quotes");
			start = ps.p;
			off = parse_name(&ps, &len);
			skip_ws(&ps);
			if (*ps.p != ':')
				syntax_error(&ps, ps.p, "Expected \":\" after the node name");
			ps.p++;
			skip_ws(&ps);
			if (n == cap)
			{
				cap *= 2;
				entries = repalloc(entries, sizeof(VclockEntry) * cap);
			}
			/* name is fixed up below, once ps.names stops moving */
			entries[n].name = (const char *) (intptr_t) off;
			entries[n].len = len;
			entries[n].pos = start - str;
			entries[n].counter = parse_counter(&ps, ps.names.data + off, len);
			n++;
			skip_ws(&ps);
			if (*ps.p == ',')
			{
				ps.p++;
				skip_ws(&ps);
				continue;
			}
			if (*ps.p == '}')
			{
				ps.p++;
				break;
			}
			syntax_error(&ps, ps.p, "Expected \",\" or \"}\"");
		}
	}
	skip_ws(&ps);
	if (*ps.p != '\0')
		syntax_error(&ps, ps.p, "Unexpected text after the closing \"}\"");

	for (i = 0; i < n; i++)
		entries[i].name = ps.names.data + (intptr_t) entries[i].name;
	dup = vclock_sort_entries(entries, n);
	if (dup >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type vclock: \"%s\"", str),
				 errdetail("Duplicate node name \"%.*s\" at character %d.",
						   entries[dup].len, entries[dup].name,
						   char_pos(&ps, str + entries[dup].pos))));
	return vclock_build(entries, n);
}

Datum
vclock_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);

	PG_RETURN_VCLOCK_P(vclock_parse(str));
}

/*
 * Text output
 */

static void
append_json_name(StringInfo out, const char *name, int len)
{
	int			i;

	appendStringInfoChar(out, '"');
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) name[i];

		switch (c)
		{
			case '"':
				appendStringInfoString(out, "\\\"");
				break;
			case '\\':
				appendStringInfoString(out, "\\\\");
				break;
			case '\b':
				appendStringInfoString(out, "\\b");
				break;
			case '\f':
				appendStringInfoString(out, "\\f");
				break;
			case '\n':
				appendStringInfoString(out, "\\n");
				break;
			case '\r':
				appendStringInfoString(out, "\\r");
				break;
			case '\t':
				appendStringInfoString(out, "\\t");
				break;
			default:
				if (c < 0x20)
					appendStringInfo(out, "\\u%04x", c);
				else
					appendStringInfoChar(out, (char) c);
		}
	}
	appendStringInfoChar(out, '"');
}

char *
vclock_to_cstring(const struct varlena *v)
{
	StringInfoData out;
	VclockIter	it;
	VclockEntry e;
	bool		first = true;

	initStringInfo(&out);
	appendStringInfoChar(&out, '{');
	vclock_iter_init(&it, v);
	while (vclock_iter_next(&it, &e))
	{
		if (!first)
			appendStringInfoString(&out, ", ");
		first = false;
		append_json_name(&out, e.name, e.len);
		appendStringInfo(&out, ": " INT64_FORMAT, e.counter);
	}
	appendStringInfoChar(&out, '}');
	return out.data;
}

Datum
vclock_out(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VCLOCK_P(0);

	PG_RETURN_CSTRING(vclock_to_cstring(v));
}

/*
 * Binary I/O: int32 number of entries, then per entry the node name as
 * int32 length + bytes (client encoding) and the counter as int64.
 */
void
vclock_send_internal(StringInfo buf, const struct varlena *v)
{
	VclockIter	it;
	VclockEntry e;
	int			n = 0;

	vclock_iter_init(&it, v);
	while (vclock_iter_next(&it, &e))
		n++;
	pq_sendint32(buf, n);
	vclock_iter_init(&it, v);
	while (vclock_iter_next(&it, &e))
	{
		pq_sendcountedtext(buf, e.name, e.len, false);
		pq_sendint64(buf, e.counter);
	}
}

Datum
vclock_send(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VCLOCK_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	vclock_send_internal(&buf, v);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

struct varlena *
vclock_recv_internal(StringInfo buf)
{
	int			n = pq_getmsgint(buf, 4);
	VclockEntry *entries;
	int			i;
	int			dup;

	/* every entry takes at least 12 bytes: name length, counter */
	if (n < 0 || n > (buf->len - buf->cursor) / 12)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid number of entries in external vclock value: %d", n)));
	entries = palloc(sizeof(VclockEntry) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		int			len = pq_getmsgint(buf, 4);
		int			nbytes;

		if (len < 0 || len > buf->len - buf->cursor)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid node name length in external vclock value: %d", len)));
		entries[i].name = pq_getmsgtext(buf, len, &nbytes);
		entries[i].len = nbytes;
		entries[i].pos = i + 1;
		entries[i].counter = pq_getmsgint64(buf);
		if (nbytes == 0 || nbytes > DISTX_NODE_NAME_MAX ||
			memchr(entries[i].name, '\0', nbytes) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid node name in external vclock value"),
					 errdetail("Entry %d has a node name of %d bytes; it must have 1 to %d.",
							   i + 1, nbytes, DISTX_NODE_NAME_MAX)));
		if (entries[i].counter < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid counter in external vclock value"),
					 errdetail("Entry %d has the negative counter " INT64_FORMAT ".",
							   i + 1, entries[i].counter)));
	}
	dup = vclock_sort_entries(entries, n);
	if (dup >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("duplicate node name in external vclock value"),
				 errdetail("Entry %d repeats the node name \"%.*s\".",
						   entries[dup].pos, entries[dup].len, entries[dup].name)));
	return vclock_build(entries, n);
}

Datum
vclock_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);

	PG_RETURN_VCLOCK_P(vclock_recv_internal(buf));
}

/*
 * Casts to and from jsonb
 */
Jsonb *
vclock_to_jsonb_internal(const struct varlena *v)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;
	VclockIter	it;
	VclockEntry e;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	vclock_iter_init(&it, v);
	while (vclock_iter_next(&it, &e))
	{
		JsonbValue	k;
		JsonbValue	val;

		k.type = jbvString;
		k.val.string.val = (char *) e.name;
		k.val.string.len = e.len;
		pushJsonbValue(&state, WJB_KEY, &k);
		val.type = jbvNumeric;
		val.val.numeric = int64_to_numeric(e.counter);
		pushJsonbValue(&state, WJB_VALUE, &val);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

Datum
vclock_to_jsonb(PG_FUNCTION_ARGS)
{
	struct varlena *v = PG_GETARG_VCLOCK_P(0);

	PG_RETURN_JSONB_P(vclock_to_jsonb_internal(v));
}

pg_attribute_noreturn()
static void
jsonb_error(int code, const char *name, int len, const char *what)
{
	ereport(ERROR,
			(errcode(code),
			 errmsg("cannot convert jsonb to vclock"),
			 errdetail("The value of key \"%.*s\" %s.", len, name, what)));
}

/* a jsonb number as a counter */
static int64
jsonb_counter(JsonbValue *val, const char *name, int len)
{
	char	   *s;
	char	   *q;
	uint64		v = 0;

	if (val->type != jbvNumeric)
		jsonb_error(ERRCODE_INVALID_TEXT_REPRESENTATION, name, len,
					"is not a number");
	s = DatumGetCString(DirectFunctionCall1(numeric_out,
											NumericGetDatum(val->val.numeric)));
	if (s[0] == '-' && strcmp(s, "-0") != 0)
		jsonb_error(ERRCODE_INVALID_TEXT_REPRESENTATION, name, len,
					"is negative");
	for (q = s; *q >= '0' && *q <= '9'; q++)
	{
		v = v * 10 + (*q - '0');
		if (v > (uint64) PG_INT64_MAX)
			jsonb_error(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, name, len,
						"exceeds the maximum counter 9223372036854775807");
	}
	if (*q != '\0' || q == s)
		jsonb_error(ERRCODE_INVALID_TEXT_REPRESENTATION, name, len,
					"is not an integer");
	return (int64) v;
}

struct varlena *
vclock_from_jsonb_internal(Jsonb *jb)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	VclockEntry *entries;
	int			n = 0;
	int			cap;

	if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("cannot convert jsonb to vclock"),
				 errdetail("A vclock must be a JSON object of node names and counters.")));

	cap = Max(JB_ROOT_COUNT(jb), 1);
	entries = palloc(sizeof(VclockEntry) * cap);
	it = JsonbIteratorInit(&jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			if (v.val.string.len == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("cannot convert jsonb to vclock"),
						 errdetail("Node names must not be empty.")));
			if (v.val.string.len > DISTX_NODE_NAME_MAX)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("cannot convert jsonb to vclock"),
						 errdetail("Node name \"%.*s...\" is %d bytes long; the maximum is %d.",
								   pg_mbcliplen(v.val.string.val, v.val.string.len, 20),
								   v.val.string.val, v.val.string.len,
								   DISTX_NODE_NAME_MAX)));
			if (n == cap)
			{
				cap *= 2;
				entries = repalloc(entries, sizeof(VclockEntry) * cap);
			}
			entries[n].name = v.val.string.val;
			entries[n].len = v.val.string.len;
			entries[n].pos = n;
		}
		else if (tok == WJB_VALUE)
		{
			entries[n].counter = jsonb_counter(&v, entries[n].name, entries[n].len);
			n++;
		}
	}
	/* jsonb object keys are unique already */
	(void) vclock_sort_entries(entries, n);
	return vclock_build(entries, n);
}

Datum
jsonb_to_vclock(PG_FUNCTION_ARGS)
{
	Jsonb	   *jb = PG_GETARG_JSONB_P(0);

	PG_RETURN_VCLOCK_P(vclock_from_jsonb_internal(jb));
}
