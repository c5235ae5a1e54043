/*-------------------------------------------------------------------------
 *
 * raft_log.c
 *	  The in-memory Raft log.
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>

#include "raft_alloc.h"
#include "raft_log.h"

void
raft_log_init(raft_log *l, const raft_allocator *alloc)
{
	memset(l, 0, sizeof(*l));
	l->alloc = alloc;
}

static void
free_range(raft_log *l, size_t from, size_t to)
{
	size_t		k;

	for (k = from; k < to; k++)
	{
		raft_mem_free(l->alloc, l->ents[k].data);
		l->ents[k].data = NULL;
	}
}

void
raft_log_free(raft_log *l)
{
	free_range(l, 0, l->n);
	raft_mem_free(l->alloc, l->ents);
	l->ents = NULL;
	l->n = l->cap = 0;
}

raft_index
raft_log_first_index(const raft_log *l)
{
	return l->snap_index + 1;
}

raft_index
raft_log_last_index(const raft_log *l)
{
	return l->snap_index + l->n;
}

raft_term
raft_log_last_term(const raft_log *l)
{
	return l->n > 0 ? l->ents[l->n - 1].term : l->snap_term;
}

bool
raft_log_term(const raft_log *l, raft_index i, raft_term *term)
{
	if (i == l->snap_index)
	{
		*term = l->snap_term;
		return true;
	}
	if (i < l->snap_index || i > raft_log_last_index(l))
	{
		*term = 0;
		return false;
	}
	*term = l->ents[i - l->snap_index - 1].term;
	return true;
}

bool
raft_log_match_term(const raft_log *l, raft_index i, raft_term term)
{
	raft_term	t;

	return raft_log_term(l, i, &t) && t == term;
}

const raft_entry *
raft_log_entry(const raft_log *l, raft_index i)
{
	if (i <= l->snap_index || i > raft_log_last_index(l))
		return NULL;
	return &l->ents[i - l->snap_index - 1];
}

int
raft_log_append(raft_log *l, const raft_entry *e)
{
	raft_entry *dst;
	uint8_t    *data = NULL;

	if (e->index != raft_log_last_index(l) + 1)
		return RAFT_EFATAL;
	if (l->n == l->cap)
	{
		size_t		ncap = l->cap ? l->cap * 2 : 64;
		raft_entry *nents;

		nents = raft_mem_realloc(l->alloc, l->ents, ncap * sizeof(raft_entry));
		if (nents == NULL)
			return RAFT_ENOMEM;
		l->ents = nents;
		l->cap = ncap;
	}
	if (e->len > 0)
	{
		data = raft_mem_alloc(l->alloc, e->len);
		if (data == NULL)
			return RAFT_ENOMEM;
		memcpy(data, e->data, e->len);
	}
	dst = &l->ents[l->n++];
	dst->term = e->term;
	dst->index = e->index;
	dst->type = e->type;
	dst->len = e->len;
	dst->data = data;
	return RAFT_OK;
}

void
raft_log_truncate(raft_log *l, raft_index from)
{
	size_t		keep;

	if (from > raft_log_last_index(l))
		return;
	keep = (size_t) (from - l->snap_index - 1);
	free_range(l, keep, l->n);
	l->n = keep;
	if (l->stable >= from)
		l->stable = from - 1;
}

raft_index
raft_log_find_conflict(const raft_log *l, const raft_entry *ents, size_t n)
{
	size_t		k;

	for (k = 0; k < n; k++)
	{
		/*
		 * Entries at or below the snapshot are committed, so they match
		 * whatever a legitimate leader sends; skip them.
		 */
		if (ents[k].index <= l->snap_index)
			continue;
		if (!raft_log_match_term(l, ents[k].index, ents[k].term))
			return ents[k].index;
	}
	return 0;
}

raft_index
raft_log_find_conflict_by_term(const raft_log *l, raft_index i, raft_term term)
{
	raft_term	t;

	if (i > raft_log_last_index(l))
		i = raft_log_last_index(l);
	for (;;)
	{
		if (!raft_log_term(l, i, &t) || t <= term || i == 0)
			return i;
		i--;
	}
}

bool
raft_log_is_up_to_date(const raft_log *l, raft_index last_index,
					   raft_term last_term)
{
	raft_term	my_term = raft_log_last_term(l);

	return last_term > my_term ||
		(last_term == my_term && last_index >= raft_log_last_index(l));
}

void
raft_log_compact(raft_log *l, raft_index index, raft_term term)
{
	size_t		drop;

	if (index <= l->snap_index)
		return;
	if (index > raft_log_last_index(l))
	{
		raft_log_reset(l, index, term);
		return;
	}
	drop = (size_t) (index - l->snap_index);
	free_range(l, 0, drop);
	memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(raft_entry));
	l->n -= drop;
	l->snap_index = index;
	l->snap_term = term;
	if (l->stable < index)
		l->stable = index;
}

void
raft_log_reset(raft_log *l, raft_index index, raft_term term)
{
	free_range(l, 0, l->n);
	l->n = 0;
	l->snap_index = index;
	l->snap_term = term;
	l->stable = index;
	if (l->committed < index)
		l->committed = index;
}
