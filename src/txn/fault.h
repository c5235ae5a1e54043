/*-------------------------------------------------------------------------
 *
 * fault.h
 *	  Test-only fault injection at the steps of the 2PC protocol.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_FAULT_H
#define DISTX_FAULT_H

extern void fault_define_gucs(void);

/*
 * Called at a named point of the protocol.  If distx.fault_point names it,
 * the backend logs "distx fault point ... reached" and then, depending on
 * distx.fault_action, raises an error ("error", only before the commit
 * point), sleeps for distx.fault_sleep ("sleep"), exits at once as a
 * crash would ("exit"), or waits until another session releases
 * pg_advisory_lock(1684633460) ("wait_lock", before the commit point only).
 */
extern void fault_point(const char *name, bool can_error);
extern bool fault_armed(const char *name);

#endif							/* DISTX_FAULT_H */
