/*-------------------------------------------------------------------------
 *
 * hlc.c
 *	  The hlc type (hybrid logical clock timestamp) and this server's clock.
 *
 * The clock state (the last timestamp issued) lives in shared memory under
 * a spinlock, so hlc_now() never goes backwards on this server, across all
 * backends, even when the system clock does: a timestamp is the larger of
 * the wall clock and the last one issued, with the logical counter ticking
 * while the wall clock stands still or lags behind.
 *
 * hlc_observe() folds in a timestamp received from elsewhere (another node,
 * or the register a write is about to replace) and returns a new local
 * timestamp greater than both it and every timestamp issued before, after
 * refusing one further ahead of the wall clock than distx.hlc_max_offset.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xlog.h"
#include "common/hashfn.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "distx.h"
#include "types/hlc.h"

/* the clock in shared memory */
typedef struct HlcShared
{
	slock_t		mutex;
	int64		physical;		/* last timestamp issued */
	uint32		logical;
} HlcShared;

static HlcShared *hlc_shared = NULL;

/* GUCs */
static int	hlc_max_offset_ms = 500;
static char *node_name_guc = NULL;
static int	node_id_guc = 0;

/* this server's derived identity, computed on first use */
static char derived_node_name[DISTX_NODE_NAME_MAX + 1];

/*
 * Shared memory
 */
Size
hlc_shmem_size(void)
{
	return MAXALIGN(sizeof(HlcShared));
}

void
hlc_shmem_init(void)
{
	bool		found;

	hlc_shared = ShmemInitStruct("distx hlc", sizeof(HlcShared), &found);
	if (!found)
	{
		SpinLockInit(&hlc_shared->mutex);
		hlc_shared->physical = 0;
		hlc_shared->logical = 0;
	}
}

/*
 * GUCs
 */
static bool
check_node_name(char **newval, void **extra, GucSource source)
{
	size_t		len = strlen(*newval);
	const char *p;

	if (len > DISTX_NODE_NAME_MAX)
	{
		GUC_check_errdetail("distx.node_name is %zu bytes long; the maximum is %d.",
							len, DISTX_NODE_NAME_MAX);
		return false;
	}
	for (p = *newval; *p; p++)
	{
		if ((unsigned char) *p < 0x20)
		{
			GUC_check_errdetail("distx.node_name must not contain control characters.");
			return false;
		}
	}
	return true;
}

static const char *
show_node_name(void)
{
	return distx_node_name();
}

static const char *
show_node_id(void)
{
	static char buf[16];

	snprintf(buf, sizeof(buf), "%u", distx_node_id());
	return buf;
}

void
hlc_define_gucs(void)
{
	/*
	 * PGC_POSTMASTER variables can only be created while preloading; when
	 * distx is loaded on demand (no clock, no worker), SIGHUP is the
	 * closest.
	 */
	GucContext	identity_context = process_shared_preload_libraries_in_progress ?
		PGC_POSTMASTER : PGC_SIGHUP;

	DefineCustomIntVariable("distx.hlc_max_offset",
							"Maximum offset of a received hybrid logical clock timestamp ahead of the local wall clock.",
							"hlc_observe() refuses a timestamp further in the future than this.",
							&hlc_max_offset_ms,
							500,
							0, INT_MAX / 1000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("distx.node_name",
							   "Name of this node in vector clocks and transaction identifiers.",
							   "Empty (the default) means a name derived from the system identifier, node-<system identifier>.",
							   &node_name_guc,
							   "",
							   identity_context,
							   0,
							   check_node_name, NULL, show_node_name);

	DefineCustomIntVariable("distx.node_id",
							"Identifier of this node in hybrid logical clock timestamps.",
							"0 (the default) means derived from distx.node_name by hashing.",
							&node_id_guc,
							0,
							0, INT_MAX,
							identity_context,
							0,
							NULL, NULL, show_node_id);
}

/*
 * This server's name: distx.node_name, or node-<system identifier>.
 */
const char *
distx_node_name(void)
{
	if (node_name_guc != NULL && node_name_guc[0] != '\0')
		return node_name_guc;
	if (derived_node_name[0] == '\0')
		snprintf(derived_node_name, sizeof(derived_node_name),
				 "node-" UINT64_FORMAT, GetSystemIdentifier());
	return derived_node_name;
}

/*
 * This server's id in an hlc: distx.node_id, or a hash of the node name
 * (31 bits, never 0).
 */
uint32
distx_node_id(void)
{
	const char *name;
	uint32		h;

	if (node_id_guc != 0)
		return (uint32) node_id_guc;
	name = distx_node_name();
	h = hash_bytes((const unsigned char *) name, strlen(name)) & 0x7FFFFFFF;
	return h == 0 ? 1 : h;
}

/*
 * The server clock
 */
int
hlc_cmp_internal(const Hlc *a, const Hlc *b)
{
	if (a->physical != b->physical)
		return a->physical < b->physical ? -1 : 1;
	if (a->logical != b->logical)
		return a->logical < b->logical ? -1 : 1;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return 0;
}

/* next logical value after l at physical p, carrying into p on overflow */
static inline void
hlc_tick(int64 *p, uint64 l, uint32 *out_l)
{
	if (l + 1 > PG_UINT32_MAX)
	{
		(*p)++;
		*out_l = 0;
	}
	else
		*out_l = (uint32) (l + 1);
}

void
hlc_clock_now(Hlc *result)
{
	TimestampTz wall;
	int64		p;
	uint32		l;

	distx_require_preload("hlc_now()");
	wall = GetCurrentTimestamp();

	SpinLockAcquire(&hlc_shared->mutex);
	if (wall > hlc_shared->physical)
	{
		hlc_shared->physical = wall;
		hlc_shared->logical = 0;
	}
	else
	{
		p = hlc_shared->physical;
		hlc_tick(&p, hlc_shared->logical, &l);
		hlc_shared->physical = p;
		hlc_shared->logical = l;
	}
	p = hlc_shared->physical;
	l = hlc_shared->logical;
	SpinLockRelease(&hlc_shared->mutex);

	result->physical = p;
	result->logical = l;
	result->node = distx_node_id();
}

void
hlc_clock_observe(const Hlc *remote, Hlc *result)
{
	TimestampTz wall;
	int64		p;
	uint32		l;

	TimestampTz reference;

	distx_require_preload("hlc_observe()");
	wall = GetCurrentTimestamp();

	/*
	 * Refuse a timestamp that would move this server's clock more than
	 * distx.hlc_max_offset ahead of the wall clock.  One no later than the
	 * clock already is (for instance one this server issued itself, while
	 * the system clock stepped back) moves nothing and is always accepted.
	 */
	SpinLockAcquire(&hlc_shared->mutex);
	reference = wall;
	if (remote->physical > hlc_shared->physical &&
		remote->physical > reference &&
		remote->physical - reference > (int64) hlc_max_offset_ms * 1000)
	{
		SpinLockRelease(&hlc_shared->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("hlc timestamp is too far in the future"),
				 errdetail("The timestamp is %.3f ms ahead of this server's clock; distx.hlc_max_offset allows %d ms.",
						   (double) (remote->physical - reference) / 1000.0,
						   hlc_max_offset_ms),
				 errhint("Check the clock synchronization of the nodes, or raise distx.hlc_max_offset.")));
	}
	p = Max(wall, Max(hlc_shared->physical, remote->physical));
	if (p == hlc_shared->physical && p == remote->physical)
		hlc_tick(&p, Max(hlc_shared->logical, remote->logical), &l);
	else if (p == hlc_shared->physical)
		hlc_tick(&p, hlc_shared->logical, &l);
	else if (p == remote->physical)
		hlc_tick(&p, remote->logical, &l);
	else
		l = 0;
	hlc_shared->physical = p;
	hlc_shared->logical = l;
	SpinLockRelease(&hlc_shared->mutex);

	result->physical = p;
	result->logical = l;
	result->node = distx_node_id();
}

/*
 * The hlc type
 *
 * Text form: 2026-11-21T05:42:33.123456Z/3@17, the physical time in UTC
 * (ISO 8601, always six fractional digits on output, 0 to 6 accepted on
 * input, 'T' or a space between date and time), the logical counter after
 * '/' and the node id after '@'.  The output does not depend on DateStyle
 * or TimeZone, so the text form round-trips exactly.  Years 0001 to 9999.
 */
PG_FUNCTION_INFO_V1(hlc_in);
PG_FUNCTION_INFO_V1(hlc_out);
PG_FUNCTION_INFO_V1(hlc_recv);
PG_FUNCTION_INFO_V1(hlc_send);
PG_FUNCTION_INFO_V1(hlc_now);
PG_FUNCTION_INFO_V1(hlc_observe);
PG_FUNCTION_INFO_V1(hlc_make);
PG_FUNCTION_INFO_V1(hlc_to_timestamptz);
PG_FUNCTION_INFO_V1(hlc_logical);
PG_FUNCTION_INFO_V1(hlc_node);
PG_FUNCTION_INFO_V1(hlc_cmp);
PG_FUNCTION_INFO_V1(hlc_lt);
PG_FUNCTION_INFO_V1(hlc_le);
PG_FUNCTION_INFO_V1(hlc_eq);
PG_FUNCTION_INFO_V1(hlc_ne);
PG_FUNCTION_INFO_V1(hlc_ge);
PG_FUNCTION_INFO_V1(hlc_gt);
PG_FUNCTION_INFO_V1(hlc_larger);
PG_FUNCTION_INFO_V1(hlc_smaller);
PG_FUNCTION_INFO_V1(hlc_hash);
PG_FUNCTION_INFO_V1(hlc_hash_extended);
PG_FUNCTION_INFO_V1(distx_node_name_sql);
PG_FUNCTION_INFO_V1(distx_node_id_sql);

/* physical range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z */
#define HLC_MIN_PHYSICAL \
	((int64) (1721426 - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)
#define HLC_END_PHYSICAL \
	((int64) (5373485 - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY)

static void
hlc_check_physical(int64 physical)
{
	if (physical < HLC_MIN_PHYSICAL || physical >= HLC_END_PHYSICAL)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("hlc physical time out of range"),
				 errdetail("An hlc holds times from year 1 to year 9999.")));
}

typedef struct HlcParser
{
	const char *input;
	const char *p;
} HlcParser;

pg_attribute_noreturn()
static void
hlc_syntax_error(HlcParser *ps, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type hlc: \"%s\"", ps->input),
			 errdetail("%s at character %d.", what,
					   pg_mbstrlen_with_len(ps->input, ps->p - ps->input) + 1)));
}

/* exactly n digits */
static int
hlc_digits(HlcParser *ps, int n, const char *what)
{
	int			v = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		if (ps->p[i] < '0' || ps->p[i] > '9')
		{
			ps->p += i;
			hlc_syntax_error(ps, what);
		}
		v = v * 10 + (ps->p[i] - '0');
	}
	ps->p += n;
	return v;
}

static void
hlc_expect(HlcParser *ps, char c, const char *what)
{
	if (*ps->p != c)
		hlc_syntax_error(ps, what);
	ps->p++;
}

/* an unsigned integer up to max */
static uint64
hlc_number(HlcParser *ps, uint64 max, const char *what, const char *field)
{
	const char *start = ps->p;
	uint64		v = 0;
	bool		overflow = false;

	if (*ps->p < '0' || *ps->p > '9')
		hlc_syntax_error(ps, what);
	while (*ps->p >= '0' && *ps->p <= '9')
	{
		if (!overflow)
		{
			v = v * 10 + (*ps->p - '0');
			if (v > max)
				overflow = true;
		}
		ps->p++;
	}
	if (overflow)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hlc %s is out of range", field),
				 errdetail("The %s at character %d exceeds the maximum " UINT64_FORMAT ".",
						   field,
						   pg_mbstrlen_with_len(ps->input, start - ps->input) + 1,
						   max)));
	return v;
}

pg_attribute_noreturn()
static void
hlc_field_error(const char *str, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_FIELD_OVERFLOW),
			 errmsg("date/time field value out of range in hlc: \"%s\"", str),
			 errdetail("%s", what)));
}

void
hlc_parse(const char *str, Hlc *result)
{
	HlcParser	ps;
	int			year,
				mon,
				mday,
				hour,
				min,
				sec;
	int64		fsec = 0;

	ps.input = str;
	ps.p = str;
	while (isspace((unsigned char) *ps.p))
		ps.p++;
	year = hlc_digits(&ps, 4, "Expected a four-digit year");
	hlc_expect(&ps, '-', "Expected \"-\" after the year");
	mon = hlc_digits(&ps, 2, "Expected a two-digit month");
	hlc_expect(&ps, '-', "Expected \"-\" after the month");
	mday = hlc_digits(&ps, 2, "Expected a two-digit day");
	if (*ps.p != 'T' && *ps.p != ' ')
		hlc_syntax_error(&ps, "Expected \"T\" between date and time");
	ps.p++;
	hour = hlc_digits(&ps, 2, "Expected a two-digit hour");
	hlc_expect(&ps, ':', "Expected \":\" after the hour");
	min = hlc_digits(&ps, 2, "Expected two-digit minutes");
	hlc_expect(&ps, ':', "Expected \":\" after the minutes");
	sec = hlc_digits(&ps, 2, "Expected two-digit seconds");
	if (*ps.p == '.')
	{
		int			n = 0;

		ps.p++;
		while (*ps.p >= '0' && *ps.p <= '9')
		{
			if (++n > 6)
				hlc_syntax_error(&ps, "More than six fractional digits");
			fsec = fsec * 10 + (*ps.p - '0');
			ps.p++;
		}
		if (n == 0)
			hlc_syntax_error(&ps, "Expected fractional digits after \".\"");
		for (; n < 6; n++)
			fsec *= 10;
	}
	hlc_expect(&ps, 'Z', "Expected \"Z\" (the time is in UTC)");

	if (year < 1)
		hlc_field_error(str, "Year 0 does not exist.");
	if (mon < 1 || mon > 12)
		hlc_field_error(str, psprintf("Month %d is out of range.", mon));
	if (mday < 1 || mday > day_tab[isleap(year)][mon - 1])
		hlc_field_error(str,
						psprintf("Day %d does not exist in %04d-%02d.", mday, year, mon));
	if (hour > 23 || min > 59 || sec > 59)
		hlc_field_error(str,
						psprintf("Time %02d:%02d:%02d is out of range.", hour, min, sec));

	hlc_expect(&ps, '/', "Expected \"/\" and the logical counter after the time");
	result->logical = (uint32) hlc_number(&ps, PG_UINT32_MAX,
										  "Expected the logical counter (a non-negative integer)",
										  "logical counter");
	hlc_expect(&ps, '@', "Expected \"@\" and the node id after the logical counter");
	result->node = (uint32) hlc_number(&ps, PG_INT32_MAX,
									   "Expected the node id (a non-negative integer)",
									   "node id");
	while (isspace((unsigned char) *ps.p))
		ps.p++;
	if (*ps.p != '\0')
		hlc_syntax_error(&ps, "Unexpected text after the node id");

	result->physical = (int64) (date2j(year, mon, mday) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY +
		((int64) ((hour * 60 + min) * 60 + sec)) * USECS_PER_SEC + fsec;
}

Datum
hlc_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	Hlc		   *result = palloc(sizeof(Hlc));

	hlc_parse(str, result);
	PG_RETURN_HLC_P(result);
}

char *
hlc_to_cstring(const Hlc *h)
{
	int64		days = h->physical / USECS_PER_DAY;
	int64		time = h->physical % USECS_PER_DAY;
	int			year,
				mon,
				mday;
	int			secs;

	if (time < 0)
	{
		time += USECS_PER_DAY;
		days -= 1;
	}
	j2date((int) (days + POSTGRES_EPOCH_JDATE), &year, &mon, &mday);
	secs = (int) (time / USECS_PER_SEC);
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ/%u@%u",
					year, mon, mday, secs / 3600, (secs / 60) % 60, secs % 60,
					(int) (time % USECS_PER_SEC), h->logical, h->node);
}

Datum
hlc_out(PG_FUNCTION_ARGS)
{
	Hlc		   *h = PG_GETARG_HLC_P(0);

	PG_RETURN_CSTRING(hlc_to_cstring(h));
}

/* binary form: int64 physical, uint32 logical, uint32 node */
void
hlc_send_internal(StringInfo buf, const Hlc *h)
{
	pq_sendint64(buf, h->physical);
	pq_sendint32(buf, h->logical);
	pq_sendint32(buf, h->node);
}

void
hlc_recv_internal(StringInfo buf, Hlc *h)
{
	h->physical = pq_getmsgint64(buf);
	h->logical = pq_getmsgint(buf, 4);
	h->node = pq_getmsgint(buf, 4);
	if (h->physical < HLC_MIN_PHYSICAL || h->physical >= HLC_END_PHYSICAL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("hlc physical time out of range in external hlc value")));
	if (h->node > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("node id out of range in external hlc value: %u", h->node)));
}

Datum
hlc_send(PG_FUNCTION_ARGS)
{
	Hlc		   *h = PG_GETARG_HLC_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	hlc_send_internal(&buf, h);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

Datum
hlc_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	Hlc		   *result = palloc(sizeof(Hlc));

	hlc_recv_internal(buf, result);
	PG_RETURN_HLC_P(result);
}

Datum
hlc_now(PG_FUNCTION_ARGS)
{
	Hlc		   *result = palloc(sizeof(Hlc));

	hlc_clock_now(result);
	PG_RETURN_HLC_P(result);
}

Datum
hlc_observe(PG_FUNCTION_ARGS)
{
	Hlc		   *remote = PG_GETARG_HLC_P(0);
	Hlc		   *result = palloc(sizeof(Hlc));

	hlc_clock_observe(remote, result);
	PG_RETURN_HLC_P(result);
}

/* hlc(timestamptz, logical bigint, node integer) */
Datum
hlc_make(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	int64		logical = PG_GETARG_INT64(1);
	int32		node = PG_GETARG_INT32(2);
	Hlc		   *result;

	if (TIMESTAMP_NOT_FINITE(ts))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("hlc physical time must be finite")));
	hlc_check_physical(ts);
	if (logical < 0 || logical > PG_UINT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hlc logical counter out of range: " INT64_FORMAT, logical),
				 errdetail("The logical counter must be between 0 and %u.",
						   PG_UINT32_MAX)));
	if (node < 0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hlc node id out of range: %d", node),
				 errdetail("The node id must not be negative.")));
	result = palloc(sizeof(Hlc));
	result->physical = ts;
	result->logical = (uint32) logical;
	result->node = (uint32) node;
	PG_RETURN_HLC_P(result);
}

Datum
hlc_to_timestamptz(PG_FUNCTION_ARGS)
{
	Hlc		   *h = PG_GETARG_HLC_P(0);

	PG_RETURN_TIMESTAMPTZ(h->physical);
}

Datum
hlc_logical(PG_FUNCTION_ARGS)
{
	Hlc		   *h = PG_GETARG_HLC_P(0);

	PG_RETURN_INT64((int64) h->logical);
}

Datum
hlc_node(PG_FUNCTION_ARGS)
{
	Hlc		   *h = PG_GETARG_HLC_P(0);

	PG_RETURN_INT32((int32) h->node);
}

Datum
hlc_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(hlc_cmp_internal(PG_GETARG_HLC_P(0), PG_GETARG_HLC_P(1)));
}

Datum
hlc_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hlc_cmp_internal(PG_GETARG_HLC_P(0), PG_GETARG_HLC_P(1)) < 0);
}

Datum
hlc_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hlc_cmp_internal(PG_GETARG_HLC_P(0), PG_GETARG_HLC_P(1)) <= 0);
}

Datum
hlc_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hlc_cmp_internal(PG_GETARG_HLC_P(0), PG_GETARG_HLC_P(1)) == 0);
}

Datum
hlc_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hlc_cmp_internal(PG_GETARG_HLC_P(0), PG_GETARG_HLC_P(1)) != 0);
}

Datum
hlc_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hlc_cmp_internal(PG_GETARG_HLC_P(0), PG_GETARG_HLC_P(1)) >= 0);
}

Datum
hlc_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hlc_cmp_internal(PG_GETARG_HLC_P(0), PG_GETARG_HLC_P(1)) > 0);
}

Datum
hlc_larger(PG_FUNCTION_ARGS)
{
	Hlc		   *a = PG_GETARG_HLC_P(0);
	Hlc		   *b = PG_GETARG_HLC_P(1);

	PG_RETURN_HLC_P(hlc_cmp_internal(a, b) >= 0 ? a : b);
}

Datum
hlc_smaller(PG_FUNCTION_ARGS)
{
	Hlc		   *a = PG_GETARG_HLC_P(0);
	Hlc		   *b = PG_GETARG_HLC_P(1);

	PG_RETURN_HLC_P(hlc_cmp_internal(a, b) <= 0 ? a : b);
}

/* hash the fields, not the struct, so that padding can never matter */
static void
hlc_hash_bytes(const Hlc *h, unsigned char *buf)
{
	memcpy(buf, &h->physical, 8);
	memcpy(buf + 8, &h->logical, 4);
	memcpy(buf + 12, &h->node, 4);
}

Datum
hlc_hash(PG_FUNCTION_ARGS)
{
	unsigned char buf[16];

	hlc_hash_bytes(PG_GETARG_HLC_P(0), buf);
	return hash_any(buf, sizeof(buf));
}

Datum
hlc_hash_extended(PG_FUNCTION_ARGS)
{
	unsigned char buf[16];

	hlc_hash_bytes(PG_GETARG_HLC_P(0), buf);
	return hash_any_extended(buf, sizeof(buf), PG_GETARG_INT64(1));
}

Datum
distx_node_name_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(distx_node_name()));
}

Datum
distx_node_id_sql(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) distx_node_id());
}
