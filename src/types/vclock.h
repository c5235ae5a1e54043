/*-------------------------------------------------------------------------
 *
 * vclock.h
 *	  The vclock type: a vector clock as a column type.
 *
 * On-disk layout (a varlena, TOAST-able; read byte by byte, so a short
 * header needs no realignment):
 *
 *		varlena header | entry | entry | ...
 *		entry = uint8 name length (1..63) | name bytes | counter (varint)
 *
 * Entries are sorted by node name (byte order, as memcmp), names are
 * unique and every counter is at least 1 (a zero entry is the same clock
 * without it, so it is dropped).  Counters (1 .. 2^63-1) are unsigned LEB128
 * varints: 1 byte up to 127, 2 up to 16383, at most 9.  The representation
 * of a clock is therefore canonical: two clocks are equal exactly when
 * their bytes are, which is what equality and hashing use.  There is no
 * entry count; the entries end where the data does.  A clock of n entries
 * with names of L bytes and small counters takes n * (L + 2) bytes plus
 * the header (1 byte on disk when short).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_VCLOCK_H
#define DISTX_VCLOCK_H

#include "fmgr.h"
#include "utils/jsonb.h"

#include "types/hlc.h"			/* DISTX_NODE_NAME_MAX */

/* longest varint of a counter (63 bits) */
#define VCLOCK_VARINT_MAX	9
/* the most bytes one entry can take */
#define VCLOCK_ENTRY_MAX	(1 + DISTX_NODE_NAME_MAX + VCLOCK_VARINT_MAX)

#define PG_GETARG_VCLOCK_P(n)	((struct varlena *) PG_DETOAST_DATUM_PACKED(PG_GETARG_DATUM(n)))
#define PG_RETURN_VCLOCK_P(x)	PG_RETURN_POINTER(x)

/* one entry, pointing into a clock or an input buffer */
typedef struct VclockEntry
{
	const char *name;			/* not NUL-terminated */
	int			len;			/* bytes of name */
	int64		counter;
	int			pos;			/* where it came from, for error messages */
} VclockEntry;

/* iterates over the entries of a (detoasted, possibly short-header) clock */
typedef struct VclockIter
{
	const uint8 *p;
	const uint8 *end;
} VclockIter;

/* result of comparing two clocks in the happens-before partial order */
typedef enum VclockOrder
{
	VCLOCK_EQUAL,
	VCLOCK_BEFORE,
	VCLOCK_AFTER,
	VCLOCK_CONCURRENT
} VclockOrder;

static inline int
vclock_write_varint(uint8 *out, uint64 v)
{
	int			n = 0;

	while (v >= 0x80)
	{
		out[n++] = (uint8) (v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8) v;
	return n;
}

static inline uint64
vclock_read_varint(const uint8 **pp, const uint8 *end)
{
	const uint8 *p = *pp;
	uint64		v = 0;
	int			shift = 0;

	while (p < end)
	{
		uint8		b = *p++;

		v |= (uint64) (b & 0x7F) << shift;
		if ((b & 0x80) == 0)
			break;
		shift += 7;
		if (shift > 63)
			elog(ERROR, "corrupt vclock: counter varint too long");
	}
	*pp = p;
	return v;
}

static inline void
vclock_iter_init(VclockIter *it, const struct varlena *v)
{
	it->p = (const uint8 *) VARDATA_ANY(v);
	it->end = it->p + VARSIZE_ANY_EXHDR(v);
}

static inline bool
vclock_iter_next(VclockIter *it, VclockEntry *e)
{
	int			len;

	if (it->p >= it->end)
		return false;
	len = *it->p++;
	if (len == 0 || len > DISTX_NODE_NAME_MAX || it->p + len >= it->end)
		elog(ERROR, "corrupt vclock: bad entry");
	e->name = (const char *) it->p;
	e->len = len;
	it->p += len;
	e->counter = (int64) vclock_read_varint(&it->p, it->end);
	e->pos = 0;
	return true;
}

/* byte order of node names */
static inline int
vclock_name_cmp(const char *a, int alen, const char *b, int blen)
{
	int			c = memcmp(a, b, Min(alen, blen));

	if (c != 0)
		return c;
	return (alen > blen) - (alen < blen);
}

/* append one entry (counter >= 1) at *out, return bytes written */
static inline int
vclock_put_entry(uint8 *out, const char *name, int len, int64 counter)
{
	out[0] = (uint8) len;
	memcpy(out + 1, name, len);
	return 1 + len + vclock_write_varint(out + 1 + len, (uint64) counter);
}

/* vclock_io.c */
extern int	vclock_sort_entries(VclockEntry *entries, int n);
extern struct varlena *vclock_build(const VclockEntry *entries, int n);
extern struct varlena *vclock_parse(const char *str);
extern char *vclock_to_cstring(const struct varlena *v);
extern void vclock_send_internal(StringInfo buf, const struct varlena *v);
extern struct varlena *vclock_recv_internal(StringInfo buf);
extern Jsonb *vclock_to_jsonb_internal(const struct varlena *v);
extern struct varlena *vclock_from_jsonb_internal(Jsonb *jb);

/* vclock_ops.c */
extern struct varlena *vclock_merge_internal(const struct varlena *a,
											 const struct varlena *b);
extern struct varlena *vclock_increment_internal(const struct varlena *v,
												 const char *name, int len);
extern VclockOrder vclock_order(const struct varlena *a, const struct varlena *b);
extern bool vclock_equal_internal(const struct varlena *a, const struct varlena *b);

#endif							/* DISTX_VCLOCK_H */
