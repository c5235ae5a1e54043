/*-------------------------------------------------------------------------
 *
 * sim.c
 *	  The deterministic Raft simulator and its safety checker.
 *
 * Each simulated host does what the real host must do with a Ready:
 * persist snapshot, entries and hard state into its "disk" (plain memory
 * that survives sim_crash), then send the messages into the simulated
 * network, then apply committed entries to its state machine (a running
 * hash), then advance.  A crash throws away the raft_node and the state
 * machine; a restart rebuilds both from the disk only, so anything the
 * core had not handed out as durable is lost, as on a real machine.
 *
 * The checker keeps global "oracles" and verifies after every event:
 *  - election safety: at most one leader per term;
 *  - leader append-only: a leader never overwrites or drops entries of
 *    its log while it leads (checked in memory and on its disk);
 *  - log matching: an (index, term) pair identifies one entry content and
 *    one predecessor term, in every log and every message, so two logs
 *    that share an (index, term) share the whole prefix;
 *  - leader completeness: a leader of a term later than the one in which
 *    an entry was committed has that entry;
 *  - state machine safety: every node applies the same entry at an index,
 *    in order without gaps, and snapshots carry the same state;
 *  - persisted term never decreases and the vote never changes within a
 *    term; persisted and in-memory commit index never decrease.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft_codec.h"
#include "sim.h"

typedef enum ev_kind
{
	EV_TICK,
	EV_DELIVER,
	EV_CALL
} ev_kind;

typedef struct event
{
	uint64_t	time;
	uint64_t	seq;
	ev_kind		kind;
	raft_id		node;
	raft_id		from;
	uint32_t	gen;
	bool		corrupt;
	uint32_t	len;
	uint8_t    *buf;
	void		(*fn) (sim *s, void *arg);
	void	   *arg;
} event;

typedef struct inmsg
{
	raft_id		from;
	bool		corrupt;
	uint32_t	len;
	uint8_t    *buf;
} inmsg;

typedef struct snode
{
	raft_id		id;
	bool		up;
	bool		paused;
	bool		bootstrapped;
	uint32_t	gen;
	raft_node  *r;
	int			tick_ms;

	/* the disk */
	raft_hard_state hs;
	bool		has_snap;
	raft_snapshot snap;
	raft_entry *log;			/* entries after snap.index */
	size_t		n_log;
	size_t		cap_log;

	/* the state machine (volatile) */
	raft_index	sm_index;
	uint64_t	sm_hash;

	/* checker state for this life */
	raft_index	mem_commit;
	raft_index	commit_checked;
	bool		lead_tracking;
	raft_term	lead_term;
	raft_index	lead_last;
	raft_term	lead_last_term;
	raft_index	lead_verified;

	/* messages that arrived while paused */
	inmsg	   *inbox;
	size_t		n_inbox;
	size_t		cap_inbox;
} snode;

typedef struct okey
{
	raft_index	i;
	raft_term	t;
	uint64_t	h;
	raft_term	prev;
	bool		used;
} okey;

struct sim
{
	sim_options opt;
	uint64_t	rng[4];
	uint64_t	now;
	uint64_t	seq;
	bool		failed;
	char		violation[512];
	sim_stats	stats;

	snode		nodes[SIM_MAX_NODES];
	bool		blocked[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];

	event	   *heap;
	size_t		n_heap;
	size_t		cap_heap;

	/* oracles */
	okey	   *otab;
	size_t		ocap;
	size_t		ocount;
	raft_id    *leader_of;		/* by term */
	size_t		cap_terms;
	raft_term  *c_term;			/* committed entry term, by index */
	uint64_t   *c_hash;
	raft_term  *c_when;			/* term of the first node that reported it */
	raft_index	gcommit;
	uint64_t   *cum;			/* state machine hash after index */
	bool	   *cum_set;
	size_t		cap_idx;

	void		(*hook) (sim *s, void *arg);
	void	   *hook_arg;
	raft_allocator alloc;
	bool		in_alloc_fault;
};

static void after_input(sim *s, snode *n, int rc, const char *what);
static void schedule_tick(sim *s, snode *n, uint64_t at);

/* ---------------------------------------------------------------------
 * PRNG: xoshiro256**, seeded with splitmix64
 * ---------------------------------------------------------------------
 */
static uint64_t
splitmix(uint64_t *x)
{
	uint64_t	z = (*x += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
sim_rand(sim *s)
{
	uint64_t	r = rotl(s->rng[1] * 5, 7) * 9;
	uint64_t	t = s->rng[1] << 17;

	s->rng[2] ^= s->rng[0];
	s->rng[3] ^= s->rng[1];
	s->rng[1] ^= s->rng[2];
	s->rng[0] ^= s->rng[3];
	s->rng[2] ^= t;
	s->rng[3] = rotl(s->rng[3], 45);
	return r;
}

static uint64_t
rand_below(sim *s, uint64_t n)
{
	return n ? sim_rand(s) % n : 0;
}

static uint64_t
core_rand(void *ctx)
{
	return sim_rand((sim *) ctx);
}

/* ---------------------------------------------------------------------
 * Hashing
 * ---------------------------------------------------------------------
 */
static uint64_t
mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static uint64_t
entry_hash(const raft_entry *e)
{
	uint64_t	h = 1469598103934665603ULL;
	uint32_t	k;

	for (k = 0; k < e->len; k++)
		h = (h ^ e->data[k]) * 1099511628211ULL;
	return mix64(h ^ mix64(e->term) ^ ((uint64_t) e->type << 56));
}

/* ---------------------------------------------------------------------
 * Reporting
 * ---------------------------------------------------------------------
 */
void
sim_fail(sim *s, const char *fmt,...)
{
	va_list		ap;
	int			n;

	if (s->failed)
		return;
	s->failed = true;
	n = snprintf(s->violation, sizeof(s->violation), "t=%llums: ",
				 (unsigned long long) s->now);
	va_start(ap, fmt);
	vsnprintf(s->violation + n, sizeof(s->violation) - (size_t) n, fmt, ap);
	va_end(ap);
	if (s->opt.trace)
		printf("%8llu VIOLATION %s\n", (unsigned long long) s->now,
			   s->violation);
}

void
sim_trace(sim *s, const char *fmt,...)
{
	va_list		ap;

	if (!s->opt.trace)
		return;
	printf("%8llu ", (unsigned long long) s->now);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void
core_trace(void *ctx, raft_id id, const char *line)
{
	sim		   *s = ctx;

	printf("%8llu   n%llu: %s\n", (unsigned long long) s->now,
		   (unsigned long long) id, line);
}

bool
sim_failed(const sim *s)
{
	return s->failed;
}

const char *
sim_violation(const sim *s)
{
	return s->violation;
}

uint64_t
sim_now(const sim *s)
{
	return s->now;
}

const sim_stats *
sim_get_stats(const sim *s)
{
	return &s->stats;
}

void
sim_set_hook(sim *s, void (*hook) (sim *s, void *arg), void *arg)
{
	s->hook = hook;
	s->hook_arg = arg;
}

/* ---------------------------------------------------------------------
 * Allocation (with optional injected failures for the core)
 * ---------------------------------------------------------------------
 */
static void *
xmalloc(size_t n)
{
	void	   *p = malloc(n ? n : 1);

	if (p == NULL)
	{
		fprintf(stderr, "simulator out of memory\n");
		exit(2);
	}
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
	{
		fprintf(stderr, "simulator out of memory\n");
		exit(2);
	}
	return p;
}

static bool
alloc_should_fail(sim *s)
{
	if (s->opt.alloc_fail_pm <= 0)
		return false;
	/* alloc_fail_pm is per million here: allocations are frequent */
	if (rand_below(s, 1000000) < (uint64_t) s->opt.alloc_fail_pm)
	{
		s->stats.alloc_failures++;
		s->in_alloc_fault = true;
		return true;
	}
	return false;
}

static void *
core_alloc(void *ctx, size_t size)
{
	if (alloc_should_fail(ctx))
		return NULL;
	return malloc(size);
}

static void *
core_realloc(void *ctx, void *p, size_t size)
{
	if (alloc_should_fail(ctx))
		return NULL;
	return realloc(p, size);
}

static void
core_free(void *ctx, void *p)
{
	(void) ctx;
	free(p);
}

/* ---------------------------------------------------------------------
 * Event queue (binary heap on (time, seq))
 * ---------------------------------------------------------------------
 */
static bool
ev_less(const event *a, const event *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void
push_event(sim *s, event *e)
{
	size_t		i;

	if (s->n_heap == s->cap_heap)
	{
		s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 256;
		s->heap = xrealloc(s->heap, s->cap_heap * sizeof(event));
	}
	e->seq = s->seq++;
	i = s->n_heap++;
	while (i > 0)
	{
		size_t		p = (i - 1) / 2;

		if (!ev_less(e, &s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = *e;
}

static event
pop_event(sim *s)
{
	event		top = s->heap[0];
	event		last = s->heap[--s->n_heap];
	size_t		i = 0;

	for (;;)
	{
		size_t		c = 2 * i + 1;

		if (c >= s->n_heap)
			break;
		if (c + 1 < s->n_heap && ev_less(&s->heap[c + 1], &s->heap[c]))
			c++;
		if (!ev_less(&s->heap[c], &last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->n_heap > 0)
		s->heap[i] = last;
	return top;
}

void
sim_at(sim *s, uint64_t t, void (*fn) (sim *s, void *arg), void *arg)
{
	event		e;

	memset(&e, 0, sizeof(e));
	e.time = t;
	e.kind = EV_CALL;
	e.fn = fn;
	e.arg = arg;
	push_event(s, &e);
}

/* ---------------------------------------------------------------------
 * Oracles
 * ---------------------------------------------------------------------
 */
static void
ensure_idx(sim *s, raft_index i)
{
	size_t		ncap;

	if (i < s->cap_idx)
		return;
	ncap = s->cap_idx ? s->cap_idx : 1024;
	while (ncap <= i)
		ncap *= 2;
	s->c_term = xrealloc(s->c_term, ncap * sizeof(raft_term));
	s->c_hash = xrealloc(s->c_hash, ncap * sizeof(uint64_t));
	s->c_when = xrealloc(s->c_when, ncap * sizeof(raft_term));
	s->cum = xrealloc(s->cum, ncap * sizeof(uint64_t));
	s->cum_set = xrealloc(s->cum_set, ncap * sizeof(bool));
	memset(s->cum_set + s->cap_idx, 0, (ncap - s->cap_idx) * sizeof(bool));
	s->cap_idx = ncap;
}

static size_t
okey_slot(raft_index i, raft_term t, size_t cap)
{
	return (size_t) (mix64(i * 0x9E3779B97F4A7C15ULL ^ t) & (cap - 1));
}

static okey *
okey_find(sim *s, raft_index i, raft_term t, bool create)
{
	size_t		k;

	if (create && (s->ocount + 1) * 2 > s->ocap)
	{
		okey	   *old = s->otab;
		size_t		oldcap = s->ocap,
					j;

		s->ocap = s->ocap ? s->ocap * 2 : 4096;
		s->otab = xmalloc(s->ocap * sizeof(okey));
		memset(s->otab, 0, s->ocap * sizeof(okey));
		for (j = 0; j < oldcap; j++)
		{
			if (!old[j].used)
				continue;
			k = okey_slot(old[j].i, old[j].t, s->ocap);
			while (s->otab[k].used)
				k = (k + 1) & (s->ocap - 1);
			s->otab[k] = old[j];
		}
		free(old);
	}
	if (s->ocap == 0)
		return NULL;
	k = okey_slot(i, t, s->ocap);
	while (s->otab[k].used)
	{
		if (s->otab[k].i == i && s->otab[k].t == t)
			return &s->otab[k];
		k = (k + 1) & (s->ocap - 1);
	}
	if (!create)
		return NULL;
	s->otab[k].used = true;
	s->otab[k].i = i;
	s->otab[k].t = t;
	s->ocount++;
	return &s->otab[k];
}

/* Log matching: (index, term) determines content and predecessor. */
static void
oracle_entry(sim *s, const raft_entry *e, raft_term prev_term,
			 const char *where, raft_id who)
{
	okey	   *k = okey_find(s, e->index, e->term, false);
	uint64_t	h = entry_hash(e);

	if (k == NULL)
	{
		k = okey_find(s, e->index, e->term, true);
		k->h = h;
		k->prev = prev_term;
		return;
	}
	if (k->h != h)
		sim_fail(s, "log matching: two different entries at index %llu term %llu (%s of n%llu)",
				 (unsigned long long) e->index, (unsigned long long) e->term,
				 where, (unsigned long long) who);
	else if (k->prev != prev_term)
		sim_fail(s, "log matching: entry %llu/t%llu follows term %llu in one log and %llu in another (%s of n%llu)",
				 (unsigned long long) e->index, (unsigned long long) e->term,
				 (unsigned long long) k->prev, (unsigned long long) prev_term,
				 where, (unsigned long long) who);
}

/* ---------------------------------------------------------------------
 * Nodes and their disks
 * ---------------------------------------------------------------------
 */
static snode *
node(sim *s, raft_id id)
{
	if (id < 1 || id > (raft_id) s->opt.pool)
	{
		fprintf(stderr, "simulator: bad node id %llu\n", (unsigned long long) id);
		exit(2);
	}
	return &s->nodes[id - 1];
}

static raft_term
disk_term_at(const snode *n, raft_index i)
{
	raft_index	base = n->has_snap ? n->snap.index : 0;

	if (i == base)
		return n->has_snap ? n->snap.term : 0;
	if (i < base || i > base + n->n_log)
		return 0;
	return n->log[i - base - 1].term;
}

static void
disk_truncate(snode *n, size_t keep)
{
	size_t		k;

	for (k = keep; k < n->n_log; k++)
		free(n->log[k].data);
	if (keep < n->n_log)
		n->n_log = keep;
}

static void
copy_entry(raft_entry *dst, const raft_entry *src)
{
	*dst = *src;
	dst->data = NULL;
	if (src->len > 0)
	{
		dst->data = xmalloc(src->len);
		memcpy(dst->data, src->data, src->len);
	}
}

static void
persist_snapshot(sim *s, snode *n, const raft_snapshot *snap)
{
	if (n->has_snap && snap->index < n->snap.index)
		sim_fail(s, "n%llu persisted snapshot %llu older than its %llu",
				 (unsigned long long) n->id, (unsigned long long) snap->index,
				 (unsigned long long) n->snap.index);
	free(n->snap.data);
	n->snap = *snap;
	n->snap.data = NULL;
	if (snap->len > 0)
	{
		n->snap.data = xmalloc(snap->len);
		memcpy(n->snap.data, snap->data, snap->len);
	}
	n->has_snap = true;
}

/* The host's own snapshot after compaction: keep the tail of the log. */
static void
persist_own_snapshot(sim *s, snode *n, const raft_snapshot *snap)
{
	raft_index	base = n->has_snap ? n->snap.index : 0;
	size_t		drop = 0,
				k;

	if (snap->index > base)
		drop = (size_t) (snap->index - base);
	if (drop > n->n_log)
		drop = n->n_log;
	persist_snapshot(s, n, snap);
	for (k = 0; k < drop; k++)
		free(n->log[k].data);
	memmove(n->log, n->log + drop, (n->n_log - drop) * sizeof(raft_entry));
	n->n_log -= drop;
}

static void
persist_entries(sim *s, snode *n, const raft_entry *ents, size_t cnt)
{
	raft_index	base = n->has_snap ? n->snap.index : 0;
	raft_index	first = ents[0].index;
	raft_index	stored_last = base + n->n_log;
	size_t		k;

	if (first <= base || first > stored_last + 1)
	{
		sim_fail(s, "n%llu asked to persist entries from %llu, disk has (%llu, %llu]",
				 (unsigned long long) n->id, (unsigned long long) first,
				 (unsigned long long) base, (unsigned long long) stored_last);
		return;
	}
	if (first <= stored_last && raft_get_role(n->r) == RAFT_LEADER)
	{
		sim_fail(s, "leader append-only: leader n%llu overwrites its disk from %llu (last %llu)",
				 (unsigned long long) n->id, (unsigned long long) first,
				 (unsigned long long) stored_last);
		return;
	}
	disk_truncate(n, (size_t) (first - base - 1));
	for (k = 0; k < cnt; k++)
	{
		raft_term	prev = k == 0 ? disk_term_at(n, first - 1) : ents[k - 1].term;

		oracle_entry(s, &ents[k], prev, "disk", n->id);
		if (n->n_log == n->cap_log)
		{
			n->cap_log = n->cap_log ? n->cap_log * 2 : 64;
			n->log = xrealloc(n->log, n->cap_log * sizeof(raft_entry));
		}
		copy_entry(&n->log[n->n_log++], &ents[k]);
	}
}

static void
persist_hard_state(sim *s, snode *n, const raft_hard_state *hs)
{
	if (hs->term < n->hs.term)
		sim_fail(s, "n%llu persisted term went back from %llu to %llu",
				 (unsigned long long) n->id, (unsigned long long) n->hs.term,
				 (unsigned long long) hs->term);
	else if (hs->term == n->hs.term && n->hs.vote != RAFT_NONE &&
			 hs->vote != n->hs.vote)
		sim_fail(s, "n%llu changed its persisted vote in term %llu from %llu to %llu",
				 (unsigned long long) n->id, (unsigned long long) hs->term,
				 (unsigned long long) n->hs.vote, (unsigned long long) hs->vote);
	else if (hs->commit < n->hs.commit)
		sim_fail(s, "n%llu persisted commit went back from %llu to %llu",
				 (unsigned long long) n->id, (unsigned long long) n->hs.commit,
				 (unsigned long long) hs->commit);
	n->hs = *hs;
}

/* ---------------------------------------------------------------------
 * State machine
 * ---------------------------------------------------------------------
 */
static void
sm_snapshot_data(const snode *n, uint8_t out[16])
{
	memcpy(out, &n->sm_index, 8);
	memcpy(out + 8, &n->sm_hash, 8);
}

static bool
sm_decode(const raft_snapshot *snap, raft_index *idx, uint64_t *hash)
{
	if (snap->len == 0)
	{
		*idx = snap->index;
		*hash = 0;
		return snap->index == 0;
	}
	if (snap->len != 16)
		return false;
	memcpy(idx, snap->data, 8);
	memcpy(hash, snap->data + 8, 8);
	return *idx == snap->index;
}

static void
check_snapshot_state(sim *s, const raft_snapshot *snap, const char *where)
{
	raft_index	idx;
	uint64_t	h;

	if (!sm_decode(snap, &idx, &h))
	{
		sim_fail(s, "%s: snapshot %llu carries bad state machine data",
				 where, (unsigned long long) snap->index);
		return;
	}
	if (idx == 0)
		return;
	ensure_idx(s, idx);
	if (s->cum_set[idx] && s->cum[idx] != h)
		sim_fail(s, "state machine safety: %s snapshot at %llu differs from applied state",
				 where, (unsigned long long) idx);
	if (idx <= s->gcommit && s->c_term[idx] != snap->term)
		sim_fail(s, "state machine safety: %s snapshot %llu has term %llu, committed term is %llu",
				 where, (unsigned long long) idx, (unsigned long long) snap->term,
				 (unsigned long long) s->c_term[idx]);
}

static void
sm_apply(sim *s, snode *n, const raft_entry *e)
{
	uint64_t	h = entry_hash(e);

	if (e->index != n->sm_index + 1)
	{
		sim_fail(s, "n%llu applies index %llu after %llu",
				 (unsigned long long) n->id, (unsigned long long) e->index,
				 (unsigned long long) n->sm_index);
		return;
	}
	ensure_idx(s, e->index);
	if (e->index <= s->gcommit &&
		(s->c_term[e->index] != e->term || s->c_hash[e->index] != h))
		sim_fail(s, "state machine safety: n%llu applies %llu/t%llu but committed there is t%llu",
				 (unsigned long long) n->id, (unsigned long long) e->index,
				 (unsigned long long) e->term,
				 (unsigned long long) s->c_term[e->index]);
	n->sm_hash = mix64(n->sm_hash ^ h);
	n->sm_index = e->index;
	if (s->cum_set[e->index])
	{
		if (s->cum[e->index] != n->sm_hash)
			sim_fail(s, "state machine safety: n%llu state after %llu differs from another node's",
					 (unsigned long long) n->id, (unsigned long long) e->index);
	}
	else
	{
		s->cum_set[e->index] = true;
		s->cum[e->index] = n->sm_hash;
	}
}

/* ---------------------------------------------------------------------
 * Checker: per-node checks after every input
 * ---------------------------------------------------------------------
 */
static void
register_committed(sim *s, snode *n, raft_index i, const raft_entry *e,
				   raft_term node_term)
{
	uint64_t	h = entry_hash(e);

	ensure_idx(s, i);
	if (i <= s->gcommit)
	{
		if (s->c_term[i] != e->term || s->c_hash[i] != h)
			sim_fail(s, "state machine safety: n%llu commits %llu/t%llu, but %llu/t%llu was committed",
					 (unsigned long long) n->id, (unsigned long long) i,
					 (unsigned long long) e->term, (unsigned long long) i,
					 (unsigned long long) s->c_term[i]);
		return;
	}
	if (i != s->gcommit + 1)
		return;					/* cannot happen: callers go in order */
	s->c_term[i] = e->term;
	s->c_hash[i] = h;
	s->c_when[i] = node_term;
	s->gcommit = i;
}

static void
check_node(sim *s, snode *n)
{
	raft_node  *r = n->r;
	raft_index	commit,
				i,
				snap_index;
	raft_term	term;
	raft_role	role;

	if (!n->up || r == NULL || s->failed)
		return;
	commit = raft_get_commit(r);
	term = raft_get_term(r);
	role = raft_get_role(r);
	snap_index = raft_get_snapshot(r)->index;

	if (commit < n->mem_commit)
		sim_fail(s, "n%llu commit index went back from %llu to %llu",
				 (unsigned long long) n->id, (unsigned long long) n->mem_commit,
				 (unsigned long long) commit);
	n->mem_commit = commit;

	if (n->commit_checked < snap_index)
		n->commit_checked = snap_index;
	for (i = n->commit_checked + 1; i <= commit; i++)
	{
		const raft_entry *e = raft_get_entry(r, i);

		if (e == NULL)
		{
			sim_fail(s, "n%llu committed %llu but has no such entry",
					 (unsigned long long) n->id, (unsigned long long) i);
			return;
		}
		register_committed(s, n, i, e, term);
	}
	if (commit > n->commit_checked)
		n->commit_checked = commit;

	if (role != RAFT_LEADER)
	{
		n->lead_tracking = false;
		return;
	}

	/* election safety */
	if (term >= s->cap_terms)
	{
		size_t		ncap = s->cap_terms ? s->cap_terms : 256;

		while (ncap <= term)
			ncap *= 2;
		s->leader_of = xrealloc(s->leader_of, ncap * sizeof(raft_id));
		memset(s->leader_of + s->cap_terms, 0,
			   (ncap - s->cap_terms) * sizeof(raft_id));
		s->cap_terms = ncap;
	}
	if (s->leader_of[term] == RAFT_NONE)
	{
		s->leader_of[term] = n->id;
		s->stats.elections_won++;
		sim_trace(s, "== n%llu is leader of term %llu",
				  (unsigned long long) n->id, (unsigned long long) term);
	}
	else if (s->leader_of[term] != n->id)
	{
		sim_fail(s, "election safety: n%llu and n%llu are both leaders of term %llu",
				 (unsigned long long) s->leader_of[term],
				 (unsigned long long) n->id, (unsigned long long) term);
		return;
	}

	/* leader append-only, in memory */
	if (n->lead_tracking && n->lead_term == term)
	{
		raft_term	t;

		if (raft_get_last_index(r) < n->lead_last)
			sim_fail(s, "leader append-only: leader n%llu log shrank from %llu to %llu",
					 (unsigned long long) n->id, (unsigned long long) n->lead_last,
					 (unsigned long long) raft_get_last_index(r));
		else if (n->lead_last > snap_index &&
				 (!raft_get_term_at(r, n->lead_last, &t) ||
				  t != n->lead_last_term))
			sim_fail(s, "leader append-only: leader n%llu changed entry %llu",
					 (unsigned long long) n->id, (unsigned long long) n->lead_last);
	}
	else
	{
		n->lead_tracking = true;
		n->lead_term = term;
		n->lead_verified = 0;
	}
	n->lead_last = raft_get_last_index(r);
	(void) raft_get_term_at(r, n->lead_last, &n->lead_last_term);

	/* leader completeness */
	for (i = n->lead_verified + 1; i <= s->gcommit; i++)
	{
		const raft_entry *e;

		if (s->c_when[i] >= term || i <= snap_index)
			continue;
		e = raft_get_entry(r, i);
		if (e == NULL || e->term != s->c_term[i] ||
			entry_hash(e) != s->c_hash[i])
		{
			sim_fail(s, "leader completeness: leader n%llu of term %llu lacks entry %llu/t%llu committed in term %llu",
					 (unsigned long long) n->id, (unsigned long long) term,
					 (unsigned long long) i, (unsigned long long) s->c_term[i],
					 (unsigned long long) s->c_when[i]);
			return;
		}
	}
	n->lead_verified = s->gcommit;
}

/* ---------------------------------------------------------------------
 * Network
 * ---------------------------------------------------------------------
 */
static void
describe(const uint8_t *buf, uint32_t len, char *out, size_t cap)
{
	raft_message m;

	if (raft_msg_decode(buf, len, &m, NULL) != RAFT_OK)
	{
		snprintf(out, cap, "<undecodable %u bytes>", len);
		return;
	}
	raft_msg_describe(&m, out, cap);
	raft_msg_free_decoded(&m, NULL);
}

static void
schedule_delivery(sim *s, raft_id from, raft_id to, const uint8_t *buf,
				  uint32_t len)
{
	event		e;
	uint64_t	delay;
	int			lo = s->opt.delay_min_ms,
				hi = s->opt.delay_max_ms;

	delay = (uint64_t) lo + rand_below(s, (uint64_t) (hi - lo + 1));
	if (s->opt.long_delay_pm > 0 &&
		rand_below(s, 1000) < (uint64_t) s->opt.long_delay_pm)
		delay += rand_below(s, (uint64_t) s->opt.long_delay_ms + 1);
	memset(&e, 0, sizeof(e));
	e.time = s->now + delay;
	e.kind = EV_DELIVER;
	e.node = to;
	e.from = from;
	/* a message in flight to a node that restarts meanwhile is lost */
	e.gen = s->nodes[to - 1].gen;
	e.len = len;
	e.buf = xmalloc(len);
	memcpy(e.buf, buf, len);
	if (s->opt.corrupt_pm > 0 &&
		rand_below(s, 1000) < (uint64_t) s->opt.corrupt_pm)
	{
		/* change one byte: the receiver must reject the message */
		uint8_t		x = (uint8_t) (1 + rand_below(s, 255));

		e.buf[rand_below(s, len)] ^= x;
		e.corrupt = true;
	}
	push_event(s, &e);
}

static void
net_send(sim *s, snode *n, const raft_outmsg *om)
{
	raft_message m;
	char		desc[160] = "";

	s->stats.messages++;
	if (raft_msg_decode(om->buf, om->len, &m, NULL) != RAFT_OK)
	{
		sim_fail(s, "n%llu sent an undecodable message", (unsigned long long) n->id);
		return;
	}
	if (m.type == RAFT_MSG_APPEND)
	{
		uint32_t	k;

		for (k = 0; k < m.n_entries; k++)
			oracle_entry(s, &m.entries[k],
						 k == 0 ? m.log_term : m.entries[k - 1].term,
						 "append message", n->id);
	}
	if (m.type == RAFT_MSG_SNAPSHOT)
	{
		s->stats.snapshots_sent++;
		check_snapshot_state(s, &m.snapshot, "sent");
	}
	if (s->opt.trace)
		raft_msg_describe(&m, desc, sizeof(desc));
	raft_msg_free_decoded(&m, NULL);

	if (om->to < 1 || om->to > (raft_id) s->opt.pool)
		return;
	if (s->blocked[n->id][om->to])
	{
		sim_trace(s, "   blocked %s", desc);
		return;
	}
	if (s->opt.drop_pm > 0 && rand_below(s, 1000) < (uint64_t) s->opt.drop_pm)
	{
		sim_trace(s, "   dropped %s", desc);
		return;
	}
	schedule_delivery(s, n->id, om->to, om->buf, om->len);
	if (s->opt.dup_pm > 0 && rand_below(s, 1000) < (uint64_t) s->opt.dup_pm)
	{
		sim_trace(s, "   duplicated %s", desc);
		schedule_delivery(s, n->id, om->to, om->buf, om->len);
	}
}

/* ---------------------------------------------------------------------
 * The host loop
 * ---------------------------------------------------------------------
 */
static void
crash_node(sim *s, snode *n, const char *why)
{
	size_t		k;

	if (!n->up)
		return;
	sim_trace(s, "** crash n%llu (%s)", (unsigned long long) n->id, why);
	raft_free(n->r);
	n->r = NULL;
	n->up = false;
	n->paused = false;
	n->gen++;
	for (k = 0; k < n->n_inbox; k++)
		free(n->inbox[k].buf);
	n->n_inbox = 0;
	s->stats.crashes++;
}

static void
maybe_compact(sim *s, snode *n)
{
	uint8_t		data[16];
	raft_snapshot meta;
	raft_index	snap_index;
	int			rc;

	if (s->opt.compact_every <= 0 || !n->up)
		return;
	snap_index = raft_get_snapshot(n->r)->index;
	if (n->sm_index < snap_index + (raft_index) s->opt.compact_every)
		return;
	sm_snapshot_data(n, data);
	rc = raft_compact(n->r, n->sm_index, data, sizeof(data), &meta);
	if (rc != RAFT_OK)
	{
		after_input(s, n, rc, "compact");
		return;
	}
	sim_trace(s, "   n%llu compacts up to %llu", (unsigned long long) n->id,
			  (unsigned long long) meta.index);
	persist_own_snapshot(s, n, &meta);
}

static void
cb_restart_node(sim *s, void *arg)
{
	sim_restart(s, (raft_id) (uintptr_t) arg);
}

/* A crash injected while handling a Ready; the node comes back later. */
static void
crash_in_ready(sim *s, snode *n, const char *why)
{
	crash_node(s, n, why);
	sim_at(s, s->now + 50 + rand_below(s, 2000), cb_restart_node,
		   (void *) (uintptr_t) n->id);
}

static void
process_ready(sim *s, snode *n)
{
	while (n->up && !s->failed && raft_has_ready(n->r))
	{
		raft_ready	rd;
		size_t		k;
		int			crash_at = 0;
		int			rc;

		check_node(s, n);
		rc = raft_ready_get(n->r, &rd);
		if (rc != RAFT_OK)
		{
			after_input(s, n, rc, "ready");
			return;
		}
		if (s->opt.crash_in_ready_pm > 0 &&
			rand_below(s, 1000) < (uint64_t) s->opt.crash_in_ready_pm)
			crash_at = 1 + (int) rand_below(s, 3);
		if (crash_at == 1)
		{
			crash_in_ready(s, n, "before persisting a Ready");
			return;
		}
		if (rd.snapshot)
		{
			check_snapshot_state(s, rd.snapshot, "received");
			persist_snapshot(s, n, rd.snapshot);
			disk_truncate(n, 0);
		}
		if (rd.n_entries > 0)
			persist_entries(s, n, rd.entries, rd.n_entries);
		if (crash_at == 3)
		{
			/* entries written, hard state not: raft.h says that is safe */
			crash_in_ready(s, n, "after persisting entries, before the hard state");
			return;
		}
		if (rd.has_hard_state)
			persist_hard_state(s, n, &rd.hard_state);
		if (s->failed)
			return;
		if (crash_at == 2)
		{
			crash_in_ready(s, n, "after persisting, before sending");
			return;
		}
		for (k = 0; k < rd.n_messages; k++)
			net_send(s, n, &rd.messages[k]);
		if (rd.snapshot)
		{
			(void) sm_decode(rd.snapshot, &n->sm_index, &n->sm_hash);
			n->sm_index = rd.snapshot->index;
		}
		for (k = 0; k < rd.n_committed; k++)
			sm_apply(s, n, &rd.committed[k]);
		rc = raft_advance(n->r, &rd);
		if (rc != RAFT_OK)
		{
			after_input(s, n, rc, "advance");
			return;
		}
		maybe_compact(s, n);
	}
	check_node(s, n);
}

static void
after_input(sim *s, snode *n, int rc, const char *what)
{
	if (rc == RAFT_ENOMEM || (rc == RAFT_EFATAL && s->in_alloc_fault))
	{
		/* what a real host does: drop the node, restart from disk */
		s->in_alloc_fault = false;
		crash_node(s, n, "allocation failure");
		sim_restart(s, n->id);
		return;
	}
	if (rc == RAFT_EFATAL)
	{
		sim_fail(s, "n%llu core reported a broken invariant during %s",
				 (unsigned long long) n->id, what);
		return;
	}
	if (rc != RAFT_OK)
	{
		sim_fail(s, "n%llu %s returned %s", (unsigned long long) n->id, what,
				 raft_strerror(rc));
		return;
	}
	s->in_alloc_fault = false;
	process_ready(s, n);
}

static raft_node *
make_core(sim *s, snode *n)
{
	raft_options o = s->opt.raft;
	raft_node  *r;
	int			err;

	o.id = n->id;
	o.rand = core_rand;
	o.rand_ctx = s;
	o.trace = s->opt.trace ? core_trace : NULL;
	o.trace_ctx = s;
	o.allocator = s->alloc;
	r = raft_new(&o, &err);
	return r;
}

void
sim_restart(sim *s, raft_id id)
{
	snode	   *n = node(s, id);
	int			rc = RAFT_OK;

	if (n->up)
		return;
	n->r = make_core(s, n);
	if (n->r == NULL)
	{
		/* injected allocation failure: try again a bit later */
		sim_trace(s, "   n%llu could not start (allocation)", (unsigned long long) id);
		n->gen++;
		schedule_tick(s, n, s->now + 10);
		return;
	}
	n->up = true;
	n->paused = false;
	n->gen++;
	n->sm_index = 0;
	n->sm_hash = 0;
	if (n->has_snap)
	{
		if (!sm_decode(&n->snap, &n->sm_index, &n->sm_hash))
			sim_fail(s, "n%llu: bad snapshot on disk", (unsigned long long) id);
		n->sm_index = n->snap.index;
	}
	if (n->bootstrapped || n->has_snap || n->n_log > 0 || n->hs.term > 0)
		rc = raft_restore(n->r, &n->hs, n->has_snap ? &n->snap : NULL,
						  n->log, n->n_log, n->sm_index);
	n->mem_commit = 0;
	n->commit_checked = 0;
	n->lead_tracking = false;
	sim_trace(s, "** restart n%llu (term %llu, snapshot %llu, %zu entries on disk)",
			  (unsigned long long) id, (unsigned long long) n->hs.term,
			  (unsigned long long) (n->has_snap ? n->snap.index : 0), n->n_log);
	schedule_tick(s, n, s->now + 1 + rand_below(s, (uint64_t) n->tick_ms));
	after_input(s, n, rc, "restore");
}

static void
schedule_tick(sim *s, snode *n, uint64_t at)
{
	event		e;

	memset(&e, 0, sizeof(e));
	e.time = at;
	e.kind = EV_TICK;
	e.node = n->id;
	e.gen = n->gen;
	push_event(s, &e);
}

/* What must not change when a corrupted message is rejected. */
static bool
same_status(const raft_status *a, const raft_status *b)
{
	return a->role == b->role && a->term == b->term && a->vote == b->vote &&
		a->leader == b->leader && a->commit == b->commit &&
		a->last_index == b->last_index && a->last_term == b->last_term &&
		a->snapshot_index == b->snapshot_index;
}

static void
deliver_corrupt(sim *s, snode *n, uint8_t *buf, uint32_t len)
{
	raft_status before,
				after;
	int			rc;

	raft_get_status(n->r, &before);
	rc = raft_step(n->r, buf, len);
	sim_trace(s, "-> corrupted message to n%llu: %s", (unsigned long long) n->id,
			  raft_strerror(rc));
	if (rc == RAFT_ENOMEM)
	{
		after_input(s, n, rc, "step");
		return;
	}
	raft_get_status(n->r, &after);
	if (rc != RAFT_EDECODE)
		sim_fail(s, "n%llu accepted a corrupted message (%s)",
				 (unsigned long long) n->id, raft_strerror(rc));
	else if (!same_status(&before, &after) || raft_has_ready(n->r) !=
			 false)
		sim_fail(s, "n%llu changed state on a corrupted message",
				 (unsigned long long) n->id);
}

static void
deliver(sim *s, snode *n, raft_id from, uint8_t *buf, uint32_t len)
{
	int			rc;

	if (s->opt.trace)
	{
		char		desc[160];

		describe(buf, len, desc, sizeof(desc));
		sim_trace(s, "-> %s", desc);
	}
	rc = raft_step(n->r, buf, len);
	(void) from;
	after_input(s, n, rc, "step");
}

static void
handle_event(sim *s, event *e)
{
	snode	   *n;

	s->stats.events++;
	s->stats.trace_hash = mix64(s->stats.trace_hash ^ e->time ^
								((uint64_t) e->kind << 60) ^
								(e->node << 40) ^ (e->from << 32) ^ e->len);
	if (e->buf)
	{
		raft_entry	x;

		x.term = 0;
		x.type = 0;
		x.len = e->len;
		x.data = e->buf;
		s->stats.trace_hash ^= entry_hash(&x);
	}
	switch (e->kind)
	{
		case EV_CALL:
			e->fn(s, e->arg);
			break;
		case EV_TICK:
			n = node(s, e->node);
			if (e->gen != n->gen)
				break;			/* from a previous life */
			if (!n->up)
			{
				/* a restart that failed to allocate: retry */
				sim_restart(s, n->id);
				break;
			}
			schedule_tick(s, n, s->now + (uint64_t) n->tick_ms);
			if (n->paused)
				break;
			after_input(s, n, raft_tick(n->r), "tick");
			break;
		case EV_DELIVER:
			n = node(s, e->node);
			if (!n->up || e->gen != n->gen || s->blocked[e->from][e->node])
			{
				free(e->buf);
				break;
			}
			if (n->paused)
			{
				if (n->n_inbox == n->cap_inbox)
				{
					n->cap_inbox = n->cap_inbox ? n->cap_inbox * 2 : 64;
					n->inbox = xrealloc(n->inbox, n->cap_inbox * sizeof(inmsg));
				}
				n->inbox[n->n_inbox].from = e->from;
				n->inbox[n->n_inbox].corrupt = e->corrupt;
				n->inbox[n->n_inbox].buf = e->buf;
				n->inbox[n->n_inbox].len = e->len;
				n->n_inbox++;
				break;
			}
			if (e->corrupt)
				deliver_corrupt(s, n, e->buf, e->len);
			else
				deliver(s, n, e->from, e->buf, e->len);
			free(e->buf);
			break;
	}
	if (s->hook && !s->failed)
		s->hook(s, s->hook_arg);
}

void
sim_run_until(sim *s, uint64_t t)
{
	while (!s->failed && s->n_heap > 0 && s->heap[0].time <= t)
	{
		event		e = pop_event(s);

		s->now = e.time;
		handle_event(s, &e);
	}
	if (!s->failed && s->now < t)
		s->now = t;
}

bool
sim_run_until_pred(sim *s, uint64_t deadline,
				   bool (*pred) (sim *s, void *arg), void *arg)
{
	if (pred(s, arg))
		return true;
	while (!s->failed && s->n_heap > 0 && s->heap[0].time <= deadline)
	{
		event		e = pop_event(s);

		s->now = e.time;
		handle_event(s, &e);
		if (pred(s, arg))
			return true;
	}
	if (!s->failed && s->now < deadline)
		s->now = deadline;
	return pred(s, arg);
}

/* ---------------------------------------------------------------------
 * Construction
 * ---------------------------------------------------------------------
 */
void
sim_options_init(sim_options *o)
{
	memset(o, 0, sizeof(*o));
	o->seed = 1;
	o->n_voters = 3;
	o->pool = 3;
	o->tick_ms = 100;
	o->delay_min_ms = 1;
	o->delay_max_ms = 10;
	o->long_delay_ms = 300;
	raft_options_init(&o->raft);
}

sim *
sim_new(const sim_options *o)
{
	sim		   *s = xmalloc(sizeof(sim));
	uint64_t	x;
	int			i;
	raft_config c;

	memset(s, 0, sizeof(*s));
	s->opt = *o;
	if (s->opt.pool < s->opt.n_voters)
		s->opt.pool = s->opt.n_voters;
	if (s->opt.pool > SIM_MAX_NODES)
		s->opt.pool = SIM_MAX_NODES;
	x = o->seed;
	for (i = 0; i < 4; i++)
		s->rng[i] = splitmix(&x);
	s->alloc.alloc = core_alloc;
	s->alloc.realloc = core_realloc;
	s->alloc.free = core_free;
	s->alloc.ctx = s;
	ensure_idx(s, 1024);

	memset(&c, 0, sizeof(c));
	c.n = (uint32_t) s->opt.n_voters;
	for (i = 0; i < s->opt.n_voters; i++)
		c.voters[i] = (raft_id) (i + 1);

	for (i = 0; i < s->opt.pool; i++)
	{
		snode	   *n = &s->nodes[i];
		int			drift = s->opt.clock_drift_pct;

		n->id = (raft_id) (i + 1);
		n->tick_ms = s->opt.tick_ms;
		if (drift > 0)
			n->tick_ms += (int) ((int64_t) s->opt.tick_ms *
								 ((int64_t) rand_below(s, (uint64_t) (2 * drift + 1)) - drift) / 100);
		if (n->tick_ms < 1)
			n->tick_ms = 1;
		n->bootstrapped = i < s->opt.n_voters;
		/* start without failures: a node must at least bootstrap */
		{
			int			saved = s->opt.alloc_fail_pm;

			s->opt.alloc_fail_pm = 0;
			n->r = make_core(s, n);
			if (n->bootstrapped)
				(void) raft_bootstrap(n->r, &c);
			n->up = true;
			process_ready(s, n);
			s->opt.alloc_fail_pm = saved;
		}
		schedule_tick(s, n, 1 + rand_below(s, (uint64_t) n->tick_ms));
	}
	return s;
}

void
sim_free(sim *s)
{
	int			i;
	size_t		k;

	for (i = 0; i < s->opt.pool; i++)
	{
		snode	   *n = &s->nodes[i];

		if (n->r)
			raft_free(n->r);
		disk_truncate(n, 0);
		free(n->log);
		free(n->snap.data);
		for (k = 0; k < n->n_inbox; k++)
			free(n->inbox[k].buf);
		free(n->inbox);
	}
	while (s->n_heap > 0)
	{
		event		e = pop_event(s);

		free(e.buf);
	}
	free(s->heap);
	free(s->otab);
	free(s->leader_of);
	free(s->c_term);
	free(s->c_hash);
	free(s->c_when);
	free(s->cum);
	free(s->cum_set);
	free(s);
}

/* ---------------------------------------------------------------------
 * Faults
 * ---------------------------------------------------------------------
 */
void
sim_crash(sim *s, raft_id id)
{
	crash_node(s, node(s, id), "fault");
}

bool
sim_is_up(const sim *s, raft_id id)
{
	return s->nodes[id - 1].up;
}

void
sim_pause(sim *s, raft_id id)
{
	snode	   *n = node(s, id);

	if (!n->up || n->paused)
		return;
	sim_trace(s, "** pause n%llu", (unsigned long long) id);
	n->paused = true;
}

void
sim_resume(sim *s, raft_id id)
{
	snode	   *n = node(s, id);
	size_t		k,
				cnt;
	inmsg	   *box;

	if (!n->up || !n->paused)
		return;
	sim_trace(s, "** resume n%llu (%zu queued messages)", (unsigned long long) id,
			  n->n_inbox);
	n->paused = false;
	/* take the queue: delivering may pause/crash nothing, but be safe */
	box = n->inbox;
	cnt = n->n_inbox;
	n->inbox = NULL;
	n->n_inbox = n->cap_inbox = 0;
	for (k = 0; k < cnt; k++)
	{
		if (n->up && !n->paused && !s->failed)
		{
			if (box[k].corrupt)
				deliver_corrupt(s, n, box[k].buf, box[k].len);
			else
				deliver(s, n, box[k].from, box[k].buf, box[k].len);
		}
		free(box[k].buf);
	}
	free(box);
}

bool
sim_is_paused(const sim *s, raft_id id)
{
	return s->nodes[id - 1].paused;
}

void
sim_block(sim *s, raft_id from, raft_id to, bool blocked)
{
	s->blocked[from][to] = blocked;
}

void
sim_isolate(sim *s, raft_id id)
{
	int			j;

	sim_trace(s, "** isolate n%llu", (unsigned long long) id);
	for (j = 1; j <= s->opt.pool; j++)
	{
		if ((raft_id) j == id)
			continue;
		s->blocked[id][j] = true;
		s->blocked[j][id] = true;
	}
}

void
sim_heal(sim *s)
{
	sim_trace(s, "** heal network");
	memset(s->blocked, 0, sizeof(s->blocked));
}

void
sim_partition(sim *s, uint32_t mask)
{
	int			a,
				b;

	sim_trace(s, "** partition mask 0x%x", mask);
	for (a = 1; a <= s->opt.pool; a++)
		for (b = 1; b <= s->opt.pool; b++)
		{
			bool		ia = (mask >> (a - 1)) & 1,
						ib = (mask >> (b - 1)) & 1;

			s->blocked[a][b] = ia != ib;
		}
}

void
sim_set_network(sim *s, int drop_pm, int dup_pm, int long_delay_pm)
{
	s->opt.drop_pm = drop_pm;
	s->opt.dup_pm = dup_pm;
	s->opt.long_delay_pm = long_delay_pm;
}

void
sim_disable_faults(sim *s)
{
	s->opt.drop_pm = 0;
	s->opt.dup_pm = 0;
	s->opt.long_delay_pm = 0;
	s->opt.crash_in_ready_pm = 0;
	s->opt.alloc_fail_pm = 0;
	s->opt.corrupt_pm = 0;
}

/* ---------------------------------------------------------------------
 * Inspection and client actions
 * ---------------------------------------------------------------------
 */
int
sim_pool(const sim *s)
{
	return s->opt.pool;
}

raft_node *
sim_raft(sim *s, raft_id id)
{
	snode	   *n = node(s, id);

	return n->up ? n->r : NULL;
}

raft_id
sim_leader(sim *s)
{
	raft_id		best = RAFT_NONE;
	raft_term	best_term = 0;
	int			i;

	for (i = 0; i < s->opt.pool; i++)
	{
		snode	   *n = &s->nodes[i];

		if (n->up && raft_get_role(n->r) == RAFT_LEADER &&
			(best == RAFT_NONE || raft_get_term(n->r) > best_term))
		{
			best = n->id;
			best_term = raft_get_term(n->r);
		}
	}
	return best;
}

int
sim_count_leaders(sim *s)
{
	int			i,
				cnt = 0;

	for (i = 0; i < s->opt.pool; i++)
		if (s->nodes[i].up && raft_get_role(s->nodes[i].r) == RAFT_LEADER)
			cnt++;
	return cnt;
}

int
sim_propose(sim *s, raft_id id, const char *data, raft_index *index,
			raft_term *term)
{
	snode	   *n = node(s, id);
	int			rc;

	if (!n->up || n->paused)
		return RAFT_ENOTLEADER;
	rc = raft_propose(n->r, data, (uint32_t) strlen(data), index, term);
	if (rc == RAFT_ENOTLEADER || rc == RAFT_EBUSY)
		return rc;
	sim_trace(s, "   propose '%s' at n%llu: %s", data, (unsigned long long) id,
			  raft_strerror(rc));
	after_input(s, n, rc, "propose");
	return rc;
}

bool
sim_is_committed(const sim *s, raft_index index, raft_term term)
{
	return index <= s->gcommit && s->c_term[index] == term;
}

bool
sim_committed_other(const sim *s, raft_index index, raft_term term)
{
	return index <= s->gcommit && s->c_term[index] != term;
}

raft_index
sim_global_commit(const sim *s)
{
	return s->gcommit;
}

raft_id
sim_leader_of_term(const sim *s, raft_term term)
{
	return term < s->cap_terms ? s->leader_of[term] : RAFT_NONE;
}

void
sim_set_compact_every(sim *s, int every)
{
	s->opt.compact_every = every;
}

void
sim_after_input(sim *s, raft_id id, int rc, const char *what)
{
	snode	   *n = node(s, id);

	if (n->up)
		after_input(s, n, rc, what);
}
