/*-------------------------------------------------------------------------
 *
 * lww.h
 *	  The lww type: a last-write-wins register holding a jsonb value, the
 *	  hlc of the write and a vector clock.
 *
 * Merge is a join (commutative, associative, idempotent on all inputs): the
 * winner is the maximum under (hlc, value), where the hlc order already
 * ends with the writer's node id and the value order is the jsonb order
 * followed by the bytes (so two different values never tie), and the
 * clocks merge pointwise.  A register is thus a pair (winning write,
 * clock) in the product of a total order and the vclock semilattice.  The
 * clock never picks the winner; it tells whether two writes were
 * concurrent.
 *
 * Layout (a varlena, 4-byte aligned, always read detoasted and unpacked):
 *
 *		int32 varlena header
 *		int32 clock_size			bytes of the embedded vclock
 *		Hlc   ts					16 bytes, read with memcpy
 *		vclock						a vclock with a 4-byte header
 *		padding to 4 bytes			zero
 *		jsonb						the value, a Jsonb with its header
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_LWW_H
#define DISTX_LWW_H

#include "fmgr.h"
#include "utils/jsonb.h"

#include "types/hlc.h"

typedef struct LwwData
{
	int32		vl_len_;
	int32		clock_size;
	char		ts[sizeof(Hlc)];	/* an Hlc, possibly unaligned */
	char		rest[FLEXIBLE_ARRAY_MEMBER];	/* vclock, padding, jsonb */
} LwwData;

#define LWW_HEADER_SIZE		offsetof(LwwData, rest)

#define PG_GETARG_LWW_P(n)	((LwwData *) PG_DETOAST_DATUM(PG_GETARG_DATUM(n)))
#define PG_RETURN_LWW_P(x)	PG_RETURN_POINTER(x)

static inline void
lww_get_hlc(const LwwData *l, Hlc *h)
{
	memcpy(h, l->ts, sizeof(Hlc));
}

static inline struct varlena *
lww_get_clock(const LwwData *l)
{
	return (struct varlena *) l->rest;
}

static inline Jsonb *
lww_get_value(const LwwData *l)
{
	return (Jsonb *) ((char *) l + INTALIGN(LWW_HEADER_SIZE + l->clock_size));
}

/* lww_io.c */
extern LwwData *lww_build(const Hlc *ts, const struct varlena *clock,
						  const Jsonb *value);

#endif							/* DISTX_LWW_H */
