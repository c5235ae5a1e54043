/*-------------------------------------------------------------------------
 *
 * raft_log.h
 *	  The in-memory Raft log: entries after the latest snapshot, plus the
 *	  stable (durable), committed and applied positions.
 *
 * The core keeps the whole uncompacted log in memory: the host compacts
 * it (raft_compact) once its state machine has applied and snapshotted a
 * prefix, so memory stays bounded.  Entries own their data.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RAFT_LOG_H
#define DISTX_RAFT_LOG_H

#include "raft.h"

typedef struct raft_log
{
	const raft_allocator *alloc;
	raft_entry *ents;			/* ents[k].index == snap_index + 1 + k */
	size_t		n;
	size_t		cap;
	raft_index	snap_index;		/* last index covered by the snapshot */
	raft_term	snap_term;
	raft_index	stable;			/* entries <= stable are durable */
	raft_index	committed;
	raft_index	applied;		/* acknowledged by the host */
} raft_log;

extern void raft_log_init(raft_log *l, const raft_allocator *alloc);
extern void raft_log_free(raft_log *l);

extern raft_index raft_log_first_index(const raft_log *l);
extern raft_index raft_log_last_index(const raft_log *l);
extern raft_term raft_log_last_term(const raft_log *l);
extern bool raft_log_term(const raft_log *l, raft_index i, raft_term *term);
extern bool raft_log_match_term(const raft_log *l, raft_index i, raft_term term);
extern const raft_entry *raft_log_entry(const raft_log *l, raft_index i);

/* Append a copy of *e (e->index must be last + 1). */
extern int	raft_log_append(raft_log *l, const raft_entry *e);

/* Drop entries with index >= from (from > snap_index). */
extern void raft_log_truncate(raft_log *l, raft_index from);

/* Index of the first of ents[] that is new or conflicts, 0 if none. */
extern raft_index raft_log_find_conflict(const raft_log *l,
										 const raft_entry *ents, size_t n);

/* Largest index <= i whose term is <= term (or unknown/compacted). */
extern raft_index raft_log_find_conflict_by_term(const raft_log *l,
												 raft_index i, raft_term term);

/* Is a log ending at (last_index, last_term) at least as up to date? */
extern bool raft_log_is_up_to_date(const raft_log *l, raft_index last_index,
								   raft_term last_term);

/* Drop entries up to index (must be in the log or the snapshot point). */
extern void raft_log_compact(raft_log *l, raft_index index, raft_term term);

/* Throw everything away: the log restarts after a snapshot at index. */
extern void raft_log_reset(raft_log *l, raft_index index, raft_term term);

#endif							/* DISTX_RAFT_LOG_H */
