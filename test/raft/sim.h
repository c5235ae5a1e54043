/*-------------------------------------------------------------------------
 *
 * sim.h
 *	  Deterministic simulator for the Raft core: one process, one seeded
 *	  PRNG, simulated time in milliseconds, an event queue, a faulty
 *	  network, hosts that persist exactly what the core hands them, and a
 *	  checker that verifies the Raft safety properties after every event.
 *
 * Node ids are 1..pool; the first n_voters are the bootstrapped cluster,
 * the others start empty and can be added by membership changes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RAFT_SIM_H
#define DISTX_RAFT_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "raft.h"

#define SIM_MAX_NODES 8

typedef struct sim sim;

typedef struct sim_options
{
	uint64_t	seed;
	int			n_voters;		/* bootstrapped cluster size */
	int			pool;			/* node slots (>= n_voters) */
	bool		trace;			/* print every event */
	int			tick_ms;		/* default 100 */
	int			clock_drift_pct;	/* per-node tick period +- this % */
	raft_options raft;			/* timing etc. (id/rand/trace ignored) */
	/* network */
	int			delay_min_ms;	/* default 1 */
	int			delay_max_ms;	/* default 10 */
	int			drop_pm;		/* per mille */
	int			dup_pm;
	int			long_delay_pm;	/* per mille of messages delayed a lot */
	int			long_delay_ms;	/* up to this */
	int			crash_in_ready_pm;	/* crash while handling a Ready */
	int			compact_every;	/* compact after this many applied, 0=never */
	int			alloc_fail_pm;	/* per MILLION allocations that fail */
	int			corrupt_pm;		/* per mille of messages with a byte
								 * changed in flight (must be rejected) */
} sim_options;

extern void sim_options_init(sim_options *o);
extern sim *sim_new(const sim_options *o);
extern void sim_free(sim *s);

extern uint64_t sim_rand(sim *s);
extern uint64_t sim_now(const sim *s);
extern bool sim_failed(const sim *s);
extern const char *sim_violation(const sim *s);
extern void sim_fail(sim *s, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern void sim_trace(sim *s, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));

/* Run events up to and including time t (ms). */
extern void sim_run_until(sim *s, uint64_t t);
/* Run until pred is true (checked after each event) or deadline. */
extern bool sim_run_until_pred(sim *s, uint64_t deadline,
							   bool (*pred) (sim *s, void *arg), void *arg);

/* faults */
extern void sim_crash(sim *s, raft_id id);
extern void sim_restart(sim *s, raft_id id);
extern bool sim_is_up(const sim *s, raft_id id);
extern void sim_pause(sim *s, raft_id id);
extern void sim_resume(sim *s, raft_id id);
extern bool sim_is_paused(const sim *s, raft_id id);
extern void sim_block(sim *s, raft_id from, raft_id to, bool blocked);
extern void sim_isolate(sim *s, raft_id id);
extern void sim_heal(sim *s);
/* nodes whose bit (1 << (id-1)) is set in mask can only talk together */
extern void sim_partition(sim *s, uint32_t mask);
extern void sim_set_network(sim *s, int drop_pm, int dup_pm,
							int long_delay_pm);
/* No more loss, duplication, long delays, crashes in Ready handling or
 * allocation failures. */
extern void sim_disable_faults(sim *s);

/* inspection and client actions */
extern int	sim_pool(const sim *s);
extern raft_node *sim_raft(sim *s, raft_id id);	/* NULL if down */
extern raft_id sim_leader(sim *s);	/* the up leader of the highest term */
extern int	sim_count_leaders(sim *s);
extern int	sim_propose(sim *s, raft_id id, const char *data,
						raft_index *index, raft_term *term);
extern bool sim_is_committed(const sim *s, raft_index index, raft_term term);
extern bool sim_committed_other(const sim *s, raft_index index, raft_term term);
extern raft_index sim_global_commit(const sim *s);
/* Who was leader of term (RAFT_NONE if nobody, as far as seen). */
extern raft_id sim_leader_of_term(const sim *s, raft_term term);
extern void sim_set_compact_every(sim *s, int every);

/* statistics */
typedef struct sim_stats
{
	uint64_t	events;
	uint64_t	messages;
	uint64_t	elections_won;
	uint64_t	snapshots_sent;
	uint64_t	crashes;
	uint64_t	alloc_failures;
	uint64_t	trace_hash;		/* hash of every event, for determinism */
} sim_stats;
extern const sim_stats *sim_get_stats(const sim *s);

/* Run fn(s, arg) at simulated time t. */
extern void sim_at(sim *s, uint64_t t, void (*fn) (sim *s, void *arg),
				   void *arg);

/* Feed the result of a direct call on sim_raft() through the host loop
 * (persist, send, apply the Ready it produced). */
extern void sim_after_input(sim *s, raft_id id, int rc, const char *what);

/* Called after every event when set (scenario assertions, drivers). */
extern void sim_set_hook(sim *s, void (*hook) (sim *s, void *arg), void *arg);

#endif							/* DISTX_RAFT_SIM_H */
