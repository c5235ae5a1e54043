/*-------------------------------------------------------------------------
 *
 * raft_progress.h
 *	  The leader's view of one follower: how far its log matches, what to
 *	  send next, and how many append messages are still unacknowledged.
 *
 * A follower is in one of three states (as in etcd raft):
 *	PROBE      we do not know where its log matches ours: send one append
 *	           per heartbeat interval and wait for the answer;
 *	REPLICATE  its log matches up to match: stream appends optimistically
 *	           (next runs ahead of match) up to max_inflight messages;
 *	SNAPSHOT   the entries it needs are compacted: a snapshot was sent,
 *	           wait for it to be installed (or give up after a timeout).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RAFT_PROGRESS_H
#define DISTX_RAFT_PROGRESS_H

#include "raft.h"

/* Ring buffer of the last index of each append message in flight. */
typedef struct raft_inflights
{
	uint32_t	start;
	uint32_t	count;
	uint32_t	cap;
	raft_index *buf;
} raft_inflights;

typedef struct raft_progress
{
	raft_id		id;
	raft_index	match;
	raft_index	next;
	raft_progress_state state;
	bool		probe_sent;		/* PROBE: an append is outstanding */
	bool		recent_active;	/* heard from it in this CheckQuorum round */
	raft_index	pending_snapshot;	/* SNAPSHOT: index of snapshot sent */
	int			snapshot_ticks; /* SNAPSHOT: ticks waited so far */
	int			stall_ticks;	/* ticks since match last moved */
	uint64_t	last_contact;	/* tick count when last heard from */
	bool		ever_contacted;
	raft_inflights ins;
} raft_progress;

extern int	raft_progress_init(raft_progress *pr, raft_id id, raft_index next,
							   uint32_t max_inflight, const raft_allocator *a);
extern void raft_progress_free(raft_progress *pr, const raft_allocator *a);

extern void raft_progress_become_probe(raft_progress *pr);
extern void raft_progress_become_replicate(raft_progress *pr);
extern void raft_progress_become_snapshot(raft_progress *pr, raft_index index);

/* An ack for everything up to n; true if match moved. */
extern bool raft_progress_maybe_update(raft_progress *pr, raft_index n);

/* A rejection of the append whose prev index was rejected; true if it
 * was not stale and next moved back. */
extern bool raft_progress_maybe_decr_to(raft_progress *pr, raft_index rejected,
										raft_index match_hint);

/* An append covering entries up to last was just sent. */
extern void raft_progress_sent(raft_progress *pr, raft_index last, uint32_t n);

extern bool raft_progress_is_paused(const raft_progress *pr);

extern bool raft_inflights_full(const raft_inflights *in);
extern void raft_inflights_add(raft_inflights *in, raft_index last);
extern void raft_inflights_free_le(raft_inflights *in, raft_index to);
extern void raft_inflights_free_first(raft_inflights *in);
extern void raft_inflights_reset(raft_inflights *in);

#endif							/* DISTX_RAFT_PROGRESS_H */
