/*-------------------------------------------------------------------------
 *
 * hlc.h
 *	  Hybrid logical clock: the hlc type and this server's clock.
 *
 * An hlc is (physical time, logical counter, node id).  The physical part is
 * a PostgreSQL timestamp (microseconds since 2000-01-01 UTC), the logical
 * counter orders events within one microsecond and lets a clock run ahead
 * of a slow wall clock, and the node id breaks ties between servers.  The
 * order is lexicographic on (physical, logical, node), a total order that
 * extends causality as long as every event takes its timestamp through
 * hlc_now() / hlc_observe().
 *
 * This server is identified by distx.node_name (a string; by default derived
 * from the system identifier, see distx_node_name()) and in an hlc by
 * distx.node_id (an integer; 0, the default, means derived from the node
 * name by hashing).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_HLC_H
#define DISTX_HLC_H

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"

typedef struct Hlc
{
	int64		physical;		/* microseconds since 2000-01-01 UTC */
	uint32		logical;		/* counter within one physical value */
	uint32		node;			/* node id of the issuing server */
} Hlc;

#define DatumGetHlcP(X)		((Hlc *) DatumGetPointer(X))
#define HlcPGetDatum(X)		PointerGetDatum(X)
#define PG_GETARG_HLC_P(n)	DatumGetHlcP(PG_GETARG_DATUM(n))
#define PG_RETURN_HLC_P(x)	return HlcPGetDatum(x)

/* longest node name (bytes), for vclock entries and distx.node_name */
#define DISTX_NODE_NAME_MAX 63

/* shared memory for this server's clock (registered from distx.c) */
extern Size hlc_shmem_size(void);
extern void hlc_shmem_init(void);
extern void hlc_define_gucs(void);

/* this server's identity */
extern const char *distx_node_name(void);
extern uint32 distx_node_id(void);

/* the server clock; both need distx in shared_preload_libraries */
extern void hlc_clock_now(Hlc *result);
extern void hlc_clock_observe(const Hlc *remote, Hlc *result);

/* total order: negative, zero or positive */
extern int	hlc_cmp_internal(const Hlc *a, const Hlc *b);

/* text and binary forms */
extern void hlc_parse(const char *str, Hlc *result);
extern char *hlc_to_cstring(const Hlc *h);
extern void hlc_send_internal(StringInfo buf, const Hlc *h);
extern void hlc_recv_internal(StringInfo buf, Hlc *h);

#endif							/* DISTX_HLC_H */
