/*-------------------------------------------------------------------------
 *
 * sim_scenarios.h
 *	  Scripted Raft scenarios with exact expected outcomes, and the
 *	  measurements reported in NOTES.md.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RAFT_SIM_SCENARIOS_H
#define DISTX_RAFT_SIM_SCENARIOS_H

#include <stdbool.h>

/* Run all scenarios (or the one named); prints TAP; returns failures. */
extern int	sim_scenarios_run(const char *only, bool trace);

/* Measure election times etc.; prints a report. */
extern int	sim_measure(void);

#endif							/* DISTX_RAFT_SIM_SCENARIOS_H */
