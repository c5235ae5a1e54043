/*-------------------------------------------------------------------------
 *
 * sim_random.h
 *	  Randomized fault schedules (see sim_random.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RAFT_SIM_RANDOM_H
#define DISTX_RAFT_SIM_RANDOM_H

#include "sim.h"

/* Liveness bounds, counted from the moment the faults stop. */
#define SIM_LIVE_LEADER_MS	10000
#define SIM_LIVE_COMMIT_MS	5000

typedef struct sim_random_result
{
	char		violation[512];
	uint64_t	events;
	uint64_t	messages;
	uint64_t	sim_ms;
	uint64_t	leader_after_heal_ms;
	uint64_t	commit;
	uint64_t	snapshots;
	int			conf_changes;
	uint64_t	trace_hash;
} sim_random_result;

extern void sim_random_params(uint64_t seed, int nodes, sim_options *o,
							  uint64_t *fault_ms);

/* Run one seeded schedule; 1 if every check held. */
extern int	sim_random_run(uint64_t seed, int nodes, bool trace,
						   sim_random_result *res);

#endif							/* DISTX_RAFT_SIM_RANDOM_H */
