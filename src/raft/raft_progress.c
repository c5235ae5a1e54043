/*-------------------------------------------------------------------------
 *
 * raft_progress.c
 *	  Per-follower replication progress and flow control.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "raft_alloc.h"
#include "raft_progress.h"

int
raft_progress_init(raft_progress *pr, raft_id id, raft_index next,
				   uint32_t max_inflight, const raft_allocator *a)
{
	memset(pr, 0, sizeof(*pr));
	pr->id = id;
	pr->next = next;
	pr->state = RAFT_PROGRESS_PROBE;
	/* A new peer counts as active so CheckQuorum gives it one round. */
	pr->recent_active = true;
	pr->ins.cap = max_inflight > 0 ? max_inflight : 1;
	pr->ins.buf = raft_mem_alloc(a, sizeof(raft_index) * pr->ins.cap);
	if (pr->ins.buf == NULL)
		return RAFT_ENOMEM;
	return RAFT_OK;
}

void
raft_progress_free(raft_progress *pr, const raft_allocator *a)
{
	raft_mem_free(a, pr->ins.buf);
	pr->ins.buf = NULL;
}

static void
reset_state(raft_progress *pr, raft_progress_state state)
{
	pr->probe_sent = false;
	pr->pending_snapshot = 0;
	pr->snapshot_ticks = 0;
	pr->stall_ticks = 0;
	pr->state = state;
	raft_inflights_reset(&pr->ins);
}

void
raft_progress_become_probe(raft_progress *pr)
{
	/*
	 * Coming back from a snapshot, the follower has at least the snapshot;
	 * otherwise restart right after what we know matches.
	 */
	if (pr->state == RAFT_PROGRESS_SNAPSHOT)
	{
		raft_index	ps = pr->pending_snapshot;

		reset_state(pr, RAFT_PROGRESS_PROBE);
		pr->next = (pr->match + 1 > ps + 1) ? pr->match + 1 : ps + 1;
	}
	else
	{
		reset_state(pr, RAFT_PROGRESS_PROBE);
		pr->next = pr->match + 1;
	}
}

void
raft_progress_become_replicate(raft_progress *pr)
{
	reset_state(pr, RAFT_PROGRESS_REPLICATE);
	pr->next = pr->match + 1;
}

void
raft_progress_become_snapshot(raft_progress *pr, raft_index index)
{
	reset_state(pr, RAFT_PROGRESS_SNAPSHOT);
	pr->pending_snapshot = index;
}

bool
raft_progress_maybe_update(raft_progress *pr, raft_index n)
{
	bool		updated = false;

	if (pr->match < n)
	{
		pr->match = n;
		pr->stall_ticks = 0;
		updated = true;
		pr->probe_sent = false;
	}
	if (pr->next < n + 1)
		pr->next = n + 1;
	return updated;
}

bool
raft_progress_maybe_decr_to(raft_progress *pr, raft_index rejected,
							raft_index match_hint)
{
	raft_index	n;

	if (pr->state == RAFT_PROGRESS_REPLICATE)
	{
		/* Stale: we already know it matches beyond that. */
		if (rejected <= pr->match)
			return false;
		pr->next = pr->match + 1;
		return true;
	}
	/* In PROBE only the answer to the last probe counts. */
	if (pr->next == 0 || pr->next - 1 != rejected)
		return false;
	n = rejected < match_hint + 1 ? rejected : match_hint + 1;
	if (n < pr->match + 1)
		n = pr->match + 1;
	pr->next = n;
	pr->probe_sent = false;
	return true;
}

void
raft_progress_sent(raft_progress *pr, raft_index last, uint32_t n)
{
	switch (pr->state)
	{
		case RAFT_PROGRESS_REPLICATE:
			if (n > 0)
			{
				pr->next = last + 1;
				raft_inflights_add(&pr->ins, last);
			}
			break;
		case RAFT_PROGRESS_PROBE:
			pr->probe_sent = true;
			break;
		case RAFT_PROGRESS_SNAPSHOT:
			break;
	}
}

bool
raft_progress_is_paused(const raft_progress *pr)
{
	switch (pr->state)
	{
		case RAFT_PROGRESS_PROBE:
			return pr->probe_sent;
		case RAFT_PROGRESS_REPLICATE:
			return raft_inflights_full(&pr->ins);
		case RAFT_PROGRESS_SNAPSHOT:
			return true;
	}
	return true;
}

bool
raft_inflights_full(const raft_inflights *in)
{
	return in->count >= in->cap;
}

void
raft_inflights_add(raft_inflights *in, raft_index last)
{
	if (in->count >= in->cap)
		return;					/* callers check full() first */
	in->buf[(in->start + in->count) % in->cap] = last;
	in->count++;
}

void
raft_inflights_free_le(raft_inflights *in, raft_index to)
{
	while (in->count > 0 && in->buf[in->start] <= to)
	{
		in->start = (in->start + 1) % in->cap;
		in->count--;
	}
	if (in->count == 0)
		in->start = 0;
}

void
raft_inflights_free_first(raft_inflights *in)
{
	if (in->count > 0)
		raft_inflights_free_le(in, in->buf[in->start]);
}

void
raft_inflights_reset(raft_inflights *in)
{
	in->start = 0;
	in->count = 0;
}
