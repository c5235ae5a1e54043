/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The distx background worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_WORKER_H
#define DISTX_WORKER_H

#include "fmgr.h"

extern void distx_worker_register(void);
extern PGDLLEXPORT void distx_worker_main(Datum main_arg);

#endif							/* DISTX_WORKER_H */
