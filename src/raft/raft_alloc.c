/*-------------------------------------------------------------------------
 *
 * raft_alloc.c
 *	  Memory allocation through the host's (optional) allocator.
 *
 * Inside PostgreSQL the host may pass an allocator backed by a long-lived
 * memory context; the simulator passes one that fails on purpose.  A NULL
 * allocator (or NULL members) means the C library.
 *
 *-------------------------------------------------------------------------
 */
#include <stdlib.h>

#include "raft_alloc.h"

void *
raft_mem_alloc(const raft_allocator *a, size_t size)
{
	if (size == 0)
		size = 1;				/* never hand out a NULL for success */
	if (a != NULL && a->alloc != NULL)
		return a->alloc(a->ctx, size);
	return malloc(size);
}

void *
raft_mem_realloc(const raft_allocator *a, void *ptr, size_t size)
{
	if (size == 0)
		size = 1;
	if (a != NULL && a->realloc != NULL)
		return a->realloc(a->ctx, ptr, size);
	return realloc(ptr, size);
}

void
raft_mem_free(const raft_allocator *a, void *ptr)
{
	if (ptr == NULL)
		return;
	if (a != NULL && a->free != NULL)
		a->free(a->ctx, ptr);
	else
		free(ptr);
}
