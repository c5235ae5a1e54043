/*-------------------------------------------------------------------------
 *
 * distx.h
 *	  Module-wide state of distx: whether it was preloaded, its shared
 *	  memory, and the GUCs that more than one part of the extension reads.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_H
#define DISTX_H

#include "storage/latch.h"
#include "storage/lwlock.h"

/* true when loaded through shared_preload_libraries */
extern bool distx_preloaded;

/* GUCs */
extern char *distx_database;

/*
 * The part of shared memory that belongs to the module as a whole.  Each
 * concern (hlc, remote node health, ...) keeps its own struct and registers
 * its size and initializer in distx.c.
 */
typedef struct DistxShared
{
	LWLock	   *lock;			/* protects the fields below */
	pid_t		worker_pid;		/* 0 when the worker is not running */
	Latch	   *worker_latch;	/* set to wake the worker */
	bool		recovery_requested; /* a session left work for recovery */
} DistxShared;

extern DistxShared *distx_shared;

extern void distx_require_preload(const char *feature);
extern void distx_wake_worker(void);

#endif							/* DISTX_H */
