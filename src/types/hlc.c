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
#include "miscadmin.h"
#include "storage/shmem.h"
#include "storage/spin.h"
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
							   PGC_POSTMASTER,
							   0,
							   check_node_name, NULL, show_node_name);

	DefineCustomIntVariable("distx.node_id",
							"Identifier of this node in hybrid logical clock timestamps.",
							"0 (the default) means derived from distx.node_name by hashing.",
							&node_id_guc,
							0,
							0, INT_MAX,
							PGC_POSTMASTER,
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

	distx_require_preload("hlc_observe()");
	wall = GetCurrentTimestamp();

	if (remote->physical > wall &&
		remote->physical - wall > (int64) hlc_max_offset_ms * 1000)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("hlc timestamp is too far in the future"),
				 errdetail("The timestamp is %.3f ms ahead of this server's clock; distx.hlc_max_offset allows %d ms.",
						   (double) (remote->physical - wall) / 1000.0,
						   hlc_max_offset_ms),
				 errhint("Check the clock synchronization of the nodes, or raise distx.hlc_max_offset.")));

	SpinLockAcquire(&hlc_shared->mutex);
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
