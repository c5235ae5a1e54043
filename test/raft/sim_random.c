/*-------------------------------------------------------------------------
 *
 * sim_random.c
 *	  Randomized fault schedules for the Raft simulator.
 *
 * One seed determines everything: the network's behaviour (loss,
 * duplication, delay, reordering), the Raft flow-control knobs, and a
 * fault phase of several simulated seconds with crashes (also in the
 * middle of handling a Ready), pauses, symmetric and asymmetric
 * partitions, leader isolation, membership changes, leadership transfers,
 * log compaction and (in some schedules) failing allocations, while
 * clients keep proposing to whoever claims to be leader.  The checker in
 * sim.c runs after every event.  Then the faults stop: every node is
 * restarted, the network healed, and within a bound a leader must be
 * elected and proposals made to it committed (liveness).
 *
 *-------------------------------------------------------------------------
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sim_random.h"

typedef struct driver
{
	sim		   *s;
	uint64_t	seed;
	uint64_t	fault_end;
	int			fault_gap_ms;
	int			prop_gap_ms;
	int			n_props;
	int			conf_changes;
	int			transfers;
	int			kill_new_leader_pm;	/* crash a leader right after election */
	int			kill_window_ms; /* ... within this many ms */
	raft_term	seen_term;
	raft_index	seen_commit;
	char		buf[64];
} driver;

#define ARG(x) ((void *) (uintptr_t) (x))
#define UNARG(p) ((uintptr_t) (p))

static uint64_t
pick(sim *s, const uint64_t *v, int n)
{
	return v[sim_rand(s) % (uint64_t) n];
}

static raft_id
random_node(sim *s)
{
	return 1 + (raft_id) (sim_rand(s) % (uint64_t) sim_pool(s));
}

static void
cb_restart(sim *s, void *arg)
{
	sim_restart(s, (raft_id) UNARG(arg));
}

static void
cb_resume(sim *s, void *arg)
{
	sim_resume(s, (raft_id) UNARG(arg));
}

static void
cb_heal(sim *s, void *arg)
{
	(void) arg;
	sim_heal(s);
}

static void
cb_unblock(sim *s, void *arg)
{
	uintptr_t	v = UNARG(arg);

	sim_block(s, (raft_id) (v >> 8), (raft_id) (v & 0xFF), false);
}

static void
cb_propose(sim *s, void *arg)
{
	driver	   *d = arg;
	int			i;

	if (sim_now(s) >= d->fault_end)
		return;
	/* propose to everyone who believes to be leader, stale ones too */
	for (i = 1; i <= sim_pool(s); i++)
	{
		raft_node  *r = sim_raft(s, (raft_id) i);

		if (r && raft_get_role(r) == RAFT_LEADER && sim_rand(s) % 2 == 0)
		{
			snprintf(d->buf, sizeof(d->buf), "v%d", d->n_props++);
			(void) sim_propose(s, (raft_id) i, d->buf, NULL, NULL);
		}
	}
	sim_at(s, sim_now(s) + 1 + sim_rand(s) % (uint64_t) d->prop_gap_ms,
		   cb_propose, d);
}

static void
cb_crash_if_leader(sim *s, void *arg)
{
	raft_id		id = (raft_id) UNARG(arg);
	raft_node  *r = sim_raft(s, id);

	if (r != NULL && raft_get_role(r) == RAFT_LEADER)
	{
		sim_crash(s, id);
		sim_at(s, sim_now(s) + 50 + sim_rand(s) % 2000, cb_restart, ARG(id));
	}
}

/*
 * After every event: when a new leader shows up, sometimes crash it a few
 * milliseconds later, while its first entries are only partly replicated.
 * Random crashes almost never hit that window, and it is the window in
 * which commitment rules matter (Raft paper, figure 8).
 */
static void
hook_new_leader(sim *s, void *arg)
{
	driver	   *d = arg;
	raft_id		lead;
	raft_term	t;

	if (d->kill_new_leader_pm == 0 || sim_now(s) >= d->fault_end)
		return;
	lead = sim_leader(s);
	if (lead == RAFT_NONE)
		return;
	t = raft_get_term(sim_raft(s, lead));

	/*
	 * Likewise, sometimes crash a leader the moment its commit index
	 * moves: what it committed must survive whoever comes next.
	 */
	if (t == d->seen_term &&
		raft_get_commit(sim_raft(s, lead)) > d->seen_commit)
	{
		d->seen_commit = raft_get_commit(sim_raft(s, lead));
		if (sim_rand(s) % 1000 < (uint64_t) d->kill_new_leader_pm / 10)
		{
			sim_trace(s, "** crash leader n%llu right after it committed %llu",
					  (unsigned long long) lead,
					  (unsigned long long) d->seen_commit);
			cb_crash_if_leader(s, ARG(lead));
		}
		return;
	}
	if (t <= d->seen_term)
		return;
	d->seen_term = t;
	d->seen_commit = raft_get_commit(sim_raft(s, lead));
	if (sim_rand(s) % 1000 < (uint64_t) d->kill_new_leader_pm)
		sim_at(s, sim_now(s) + sim_rand(s) % (uint64_t) d->kill_window_ms,
			   cb_crash_if_leader, ARG(lead));
}

static void
cb_fault(sim *s, void *arg)
{
	driver	   *d = arg;
	uint64_t	now = sim_now(s);
	uint64_t	dice = sim_rand(s) % 100;
	raft_id		id = random_node(s);
	raft_id		lead = sim_leader(s);

	if (now >= d->fault_end)
		return;
	if (dice < 15)
	{
		/* crash, restart later */
		if (sim_is_up(s, id))
		{
			sim_crash(s, id);
			sim_at(s, now + 50 + sim_rand(s) % 4000, cb_restart, ARG(id));
		}
	}
	else if (dice < 22)
	{
		/* crash the leader */
		if (lead != RAFT_NONE)
		{
			sim_crash(s, lead);
			sim_at(s, now + 50 + sim_rand(s) % 3000, cb_restart, ARG(lead));
		}
	}
	else if (dice < 32)
	{
		if (sim_is_up(s, id) && !sim_is_paused(s, id))
		{
			sim_pause(s, id);
			sim_at(s, now + 50 + sim_rand(s) % 3000, cb_resume, ARG(id));
		}
	}
	else if (dice < 42)
	{
		uint32_t	mask = (uint32_t) (sim_rand(s) % ((1u << sim_pool(s)) - 1)) + 1;

		sim_partition(s, mask);
		sim_at(s, now + 200 + sim_rand(s) % 5000, cb_heal, NULL);
	}
	else if (dice < 52)
	{
		/* asymmetric: a few one-way links fail */
		int			k,
					cnt = 1 + (int) (sim_rand(s) % 3);

		for (k = 0; k < cnt; k++)
		{
			raft_id		a = random_node(s),
						b = random_node(s);

			if (a == b)
				continue;
			sim_trace(s, "** block n%llu -> n%llu", (unsigned long long) a,
					  (unsigned long long) b);
			sim_block(s, a, b, true);
			sim_at(s, now + 200 + sim_rand(s) % 5000, cb_unblock,
				   ARG((a << 8) | b));
		}
	}
	else if (dice < 60)
	{
		if (lead != RAFT_NONE)
		{
			sim_isolate(s, lead);
			sim_at(s, now + 200 + sim_rand(s) % 5000, cb_heal, NULL);
		}
	}
	else if (dice < 64)
	{
		sim_heal(s);
	}
	else if (dice < 74)
	{
		/* membership change: remove a member or add a non-member */
		if (lead != RAFT_NONE)
		{
			raft_status st;
			int			rc;

			raft_get_status(sim_raft(s, lead), &st);
			if (raft_config_has(&st.config, id) && st.config.n > 1)
				rc = raft_propose_config(sim_raft(s, lead), RAFT_CONFIG_REMOVE, id, NULL);
			else
				rc = raft_propose_config(sim_raft(s, lead), RAFT_CONFIG_ADD, id, NULL);
			sim_trace(s, "** config change %s n%llu at leader n%llu: %s",
					  raft_config_has(&st.config, id) ? "remove" : "add",
					  (unsigned long long) id, (unsigned long long) lead,
					  raft_strerror(rc));
			if (rc == RAFT_OK)
				d->conf_changes++;
			if (rc != RAFT_EBUSY && rc != RAFT_EINVAL && rc != RAFT_ENOTLEADER)
				sim_after_input(s, lead, rc, "config change");
		}
	}
	else if (dice < 80)
	{
		if (lead != RAFT_NONE)
		{
			int			rc = raft_transfer_leadership(sim_raft(s, lead), id);

			sim_trace(s, "** transfer leadership n%llu -> n%llu: %s",
					  (unsigned long long) lead, (unsigned long long) id,
					  raft_strerror(rc));
			if (rc == RAFT_OK)
				d->transfers++;
			if (rc != RAFT_EINVAL && rc != RAFT_ENOTLEADER)
				sim_after_input(s, lead, rc, "transfer");
		}
	}
	else if (dice < 86)
	{
		static const uint64_t drops[] = {0, 0, 50, 200, 500};
		static const uint64_t dups[] = {0, 20, 100};
		static const uint64_t longs[] = {0, 10, 100};

		sim_set_network(s, (int) pick(s, drops, 5), (int) pick(s, dups, 3),
						(int) pick(s, longs, 3));
		sim_trace(s, "** network changes");
	}
	/* else: a quiet period */
	sim_at(s, now + 1 + sim_rand(s) % (uint64_t) d->fault_gap_ms, cb_fault, d);
}

typedef struct live
{
	raft_index	index[3];
	raft_term	term[3];
	int			n;
} live;

static bool
all_committed(sim *s, void *arg)
{
	live	   *l = arg;
	int			k;

	for (k = 0; k < l->n; k++)
		if (!sim_is_committed(s, l->index[k], l->term[k]))
			return false;
	return true;
}

static bool
any_lost(sim *s, live *l)
{
	int			k;

	for (k = 0; k < l->n; k++)
		if (sim_committed_other(s, l->index[k], l->term[k]))
			return true;
	return false;
}

static bool
still_leader(sim *s, raft_id id, raft_term term)
{
	raft_node  *r = sim_raft(s, id);

	return r != NULL && raft_get_role(r) == RAFT_LEADER &&
		raft_get_term(r) == term;
}

static bool
has_leader(sim *s, void *arg)
{
	raft_id		lead = sim_leader(s);
	raft_status st;

	(void) arg;
	if (lead == RAFT_NONE)
		return false;
	raft_get_status(sim_raft(s, lead), &st);
	return raft_config_has(&st.config, lead) && st.transferee == RAFT_NONE;
}

void
sim_random_params(uint64_t seed, int nodes, sim_options *o,
				  uint64_t *fault_ms)
{
	uint64_t	x = seed * 0x9E3779B97F4A7C15ULL + 12345;
	uint64_t	r[16];
	int			k;

	for (k = 0; k < 16; k++)
	{
		uint64_t	z = (x += 0x9E3779B97F4A7C15ULL);

		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
		r[k] = z ^ (z >> 31);
	}
	sim_options_init(o);
	o->seed = seed;
	o->n_voters = nodes;
	o->pool = nodes + 1;
	{
		static const int drops[] = {0, 0, 20, 50, 150};
		static const int dups[] = {0, 10, 50};
		static const int longs[] = {0, 10, 50};
		static const int dmax[] = {5, 10, 30, 80, 200};
		static const int cir[] = {0, 0, 5, 20};
		static const int compact[] = {0, 3, 10, 40};
		static const uint32_t ents[] = {1, 1, 2, 8, 64};
		static const uint32_t infl[] = {1, 2, 8, 64};
		static const int drift[] = {0, 0, 3, 10};
		static const int allocf[] = {0, 0, 0, 0, 0, 0, 0, 300};
		static const int corrupt[] = {0, 0, 5, 30};

		o->drop_pm = drops[r[0] % 5];
		o->dup_pm = dups[r[1] % 3];
		o->long_delay_pm = longs[r[2] % 3];
		o->delay_max_ms = dmax[r[3] % 5];
		o->crash_in_ready_pm = cir[r[4] % 4];
		o->compact_every = compact[r[5] % 4];
		o->raft.max_msg_entries = ents[r[6] % 5];
		o->raft.max_inflight = infl[r[7] % 4];
		o->clock_drift_pct = drift[r[8] % 4];
		o->alloc_fail_pm = allocf[r[9] % 8];
		o->corrupt_pm = corrupt[r[11] % 4];
		/* safety must not depend on the optional mechanisms */
		o->raft.pre_vote = r[12] % 8 != 0;
		o->raft.check_quorum = r[13] % 8 != 0;
	}
	*fault_ms = 5000 + r[10] % 25000;
}

int
sim_random_run(uint64_t seed, int nodes, bool trace, sim_random_result *res)
{
	sim_options o;
	sim		   *s;
	driver		d;
	uint64_t	fault_ms,
				heal_at,
				t_leader;
	live		l;
	bool		done;
	uint64_t	deadline,
				catchup,
				commit_bound;
	int			attempt,
				i,
				ok = 1;

	memset(res, 0, sizeof(*res));
	sim_random_params(seed, nodes, &o, &fault_ms);
	o.trace = trace;
	s = sim_new(&o);
	memset(&d, 0, sizeof(d));
	d.s = s;
	d.seed = seed;
	d.fault_end = fault_ms;
	d.fault_gap_ms = 100 + (int) (sim_rand(s) % 900);
	d.prop_gap_ms = 20 + (int) (sim_rand(s) % 300);
	{
		static const int kill[] = {0, 0, 300, 700};

		d.kill_new_leader_pm = kill[sim_rand(s) % 4];
		d.kill_window_ms = 1 + 3 * o.delay_max_ms;
	}
	sim_set_hook(s, hook_new_leader, &d);
	sim_trace(s, "seed %llu: %d nodes, faults for %llu ms, drop %d, dup %d, long delays %d, delay<=%d, crash-in-ready %d, compact every %d, msg entries %u, inflight %u, drift %d%%, alloc failures %d ppm, corrupted messages %d per mille, prevote %d, checkquorum %d",
			  (unsigned long long) seed, nodes, (unsigned long long) fault_ms,
			  o.drop_pm, o.dup_pm, o.long_delay_pm, o.delay_max_ms,
			  o.crash_in_ready_pm, o.compact_every, o.raft.max_msg_entries,
			  o.raft.max_inflight, o.clock_drift_pct, o.alloc_fail_pm,
			  o.corrupt_pm, o.raft.pre_vote, o.raft.check_quorum);
	sim_at(s, 500 + sim_rand(s) % 1000, cb_fault, &d);
	sim_at(s, 100, cb_propose, &d);

	/* fault phase */
	sim_run_until(s, fault_ms);

	/* faults stop */
	if (!sim_failed(s))
	{
		sim_trace(s, "== faults stop: healing, restarting every node");
		sim_disable_faults(s);
		sim_heal(s);
		sim_set_network(s, 0, 0, 0);
		for (i = 1; i <= sim_pool(s); i++)
		{
			if (!sim_is_up(s, (raft_id) i))
				sim_restart(s, (raft_id) i);
			sim_resume(s, (raft_id) i);
		}
	}
	sim_disable_faults(s);
	heal_at = sim_now(s);

	/*
	 * Catching up a backlog is allowed for in both bounds: with one entry
	 * per message, one message in flight and 200 ms delays, a follower
	 * 150 entries behind needs a minute, and that is flow control doing
	 * its job, not a liveness bug.  (It matters for the leader bound too:
	 * a leader that removed itself only hands over once the change is
	 * committed, which needs a caught-up majority.)
	 */
	{
		raft_index	backlog = 0;
		uint64_t	batch = (uint64_t) o.raft.max_msg_entries * o.raft.max_inflight;

		for (i = 1; i <= sim_pool(s); i++)
			if (sim_raft(s, (raft_id) i) &&
				raft_get_last_index(sim_raft(s, (raft_id) i)) > backlog)
				backlog = raft_get_last_index(sim_raft(s, (raft_id) i));
		catchup = 4 * (uint64_t) o.delay_max_ms * (backlog / batch + 1);
	}

	/* liveness: a leader within the bound ... */
	if (!sim_failed(s) &&
		!sim_run_until_pred(s, heal_at + SIM_LIVE_LEADER_MS + catchup,
							has_leader, NULL))
	{
		if (!sim_failed(s))
			sim_fail(s, "liveness: no leader within %d ms after the faults stopped",
					 (int) (SIM_LIVE_LEADER_MS + catchup));
	}
	t_leader = sim_now(s) - heal_at;

	/*
	 * ... and proposals to it committed within the bound.  The leader we
	 * find may be a stale one that has not noticed yet (say it was paused
	 * until now); its proposals are then lost, and we try again with
	 * whoever leads next, until the deadline.
	 */
	memset(&l, 0, sizeof(l));
	done = false;
	commit_bound = SIM_LIVE_COMMIT_MS + catchup;
	deadline = heal_at + SIM_LIVE_LEADER_MS + catchup + commit_bound;
	for (attempt = 0; !sim_failed(s) && !done && sim_now(s) < deadline;)
	{
		raft_id		lead;

		if (!has_leader(s, NULL))
		{
			sim_run_until(s, sim_now(s) + 10);
			continue;
		}
		lead = sim_leader(s);
		l.n = 0;
		for (i = 0; i < 3; i++)
		{
			snprintf(d.buf, sizeof(d.buf), "live%d-%d", attempt, i);
			if (sim_propose(s, lead, d.buf, &l.index[l.n], &l.term[l.n]) == RAFT_OK)
				l.n++;
		}
		attempt++;
		while (!sim_failed(s) && !all_committed(s, &l) && !any_lost(s, &l) &&
			   sim_now(s) < deadline && still_leader(s, lead, l.term[0]))
			sim_run_until(s, sim_now(s) + 10);
		done = l.n == 3 && all_committed(s, &l);
		if (!done)
			sim_run_until(s, sim_now(s) + 10);
	}
	if (!sim_failed(s) && !done)
		sim_fail(s, "liveness: proposals to the leader not committed within %d ms of the faults stopping (%d attempts)",
				 (int) (SIM_LIVE_LEADER_MS + catchup + commit_bound), attempt);
	if (sim_failed(s))
	{
		ok = 0;
		snprintf(res->violation, sizeof(res->violation), "%s", sim_violation(s));
	}
	res->events = sim_get_stats(s)->events;
	res->messages = sim_get_stats(s)->messages;
	res->sim_ms = sim_now(s);
	res->leader_after_heal_ms = t_leader;
	res->commit = sim_global_commit(s);
	res->conf_changes = d.conf_changes;
	res->trace_hash = sim_get_stats(s)->trace_hash;
	res->snapshots = sim_get_stats(s)->snapshots_sent;
	sim_trace(s, "== end: %s", ok ? "ok" : res->violation);
	sim_free(s);
	return ok;
}
