/*-------------------------------------------------------------------------
 *
 * raft_alloc.h
 *	  Memory allocation through the host's (optional) allocator.
 *
 * Every caller checks for NULL: the core never assumes an allocation
 * succeeded.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RAFT_ALLOC_H
#define DISTX_RAFT_ALLOC_H

#include "raft.h"

extern void *raft_mem_alloc(const raft_allocator *a, size_t size);
extern void *raft_mem_realloc(const raft_allocator *a, void *ptr, size_t size);
extern void raft_mem_free(const raft_allocator *a, void *ptr);

#endif							/* DISTX_RAFT_ALLOC_H */
