/*-------------------------------------------------------------------------
 *
 * sim_scenarios.c
 *	  Scripted Raft scenarios with exact expected outcomes, run in the
 *	  simulator (so the safety checker watches them too), and the
 *	  measurements reported in NOTES.md.
 *
 * The network in scenarios is reliable with 2-5 ms delays unless a
 * scenario says otherwise; elections are forced with raft_campaign() so
 * that who leads is part of the script, not of chance.
 *
 * Two scenarios exist to prove the checker can fail: "figure8" and
 * "stale_candidate" have one expected outcome with the correct core and
 * a reported violation with the core built with RAFT_BUG_COMMIT_OLD_TERM
 * and RAFT_BUG_VOTE_IGNORES_LOG respectively.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sim_random.h"
#include "sim_scenarios.h"

typedef struct scen
{
	sim		   *s;
	bool		trace;
	char		msg[600];
} scen;

#define ARG(x) ((void *) (uintptr_t) (x))
#define UNARG(p) ((raft_id) (uintptr_t) (p))

static bool expectf(scen *c, bool cond, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* Record the first failed expectation; returns cond. */
static bool
expectf(scen *c, bool cond, const char *fmt,...)
{
	va_list		ap;

	if (cond || c->msg[0] != '\0')
		return cond;
	va_start(ap, fmt);
	vsnprintf(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return false;
}

#define EXPECT(cond, ...) \
	do { if (!expectf(c, (cond), __VA_ARGS__)) return false; } while (0)

static void
base_options(sim_options *o, int voters, int pool, bool trace)
{
	sim_options_init(o);
	o->seed = 42;
	o->n_voters = voters;
	o->pool = pool;
	o->trace = trace;
	o->delay_min_ms = 2;
	o->delay_max_ms = 5;
}

static raft_node *
R(scen *c, raft_id id)
{
	return sim_raft(c->s, id);
}

static raft_role
role_of(scen *c, raft_id id)
{
	raft_node  *r = R(c, id);

	return r ? raft_get_role(r) : RAFT_FOLLOWER;
}

static raft_term
term_of(scen *c, raft_id id)
{
	raft_node  *r = R(c, id);

	return r ? raft_get_term(r) : 0;
}

static bool
pred_leader(sim *s, void *arg)
{
	raft_node  *r = sim_raft(s, UNARG(arg));

	return r != NULL && raft_get_role(r) == RAFT_LEADER;
}

static bool
pred_not_leader(sim *s, void *arg)
{
	return !pred_leader(s, arg);
}

static bool
pred_any_leader(sim *s, void *arg)
{
	(void) arg;
	return sim_leader(s) != RAFT_NONE;
}

static void
campaign(scen *c, raft_id id)
{
	sim_trace(c->s, "** scenario: n%llu campaigns", (unsigned long long) id);
	sim_after_input(c->s, id, raft_campaign(R(c, id)), "campaign");
}

/*
 * Force id to campaign and wait until it leads.  A first attempt may only
 * teach it the current term (a PreVote for a term the others are already
 * in is refused), so try up to three times.
 */
static bool
elect(scen *c, raft_id id)
{
	int			k;

	for (k = 0; k < 3; k++)
	{
		campaign(c, id);
		if (sim_run_until_pred(c->s, sim_now(c->s) + 200, pred_leader, ARG(id)))
			return true;
	}
	return false;
}

typedef struct cpred
{
	raft_index	index;
	raft_term	term;
} cpred;

static bool
pred_committed(sim *s, void *arg)
{
	cpred	   *p = arg;

	return sim_is_committed(s, p->index, p->term);
}

/* Propose at id; wait for the commit if wait_ms > 0. */
static bool
propose(scen *c, raft_id id, const char *data, int wait_ms, raft_index *index)
{
	cpred		p;

	if (sim_propose(c->s, id, data, &p.index, &p.term) != RAFT_OK)
		return false;
	if (index)
		*index = p.index;
	if (wait_ms <= 0)
		return true;
	return sim_run_until_pred(c->s, sim_now(c->s) + (uint64_t) wait_ms,
							  pred_committed, &p);
}

static void
run_for(scen *c, uint64_t ms)
{
	sim_run_until(c->s, sim_now(c->s) + ms);
}

/* ------------------------------------------------------------------ */

/*
 * Split vote: four voters, no PreVote; n1 and n2 campaign at once and each
 * reaches only half of the cluster, so term 2 has no leader.  Once the
 * links are back, exactly one leader is elected in a later term.
 */
static bool
sc_split_vote(scen *c)
{
	sim_options o;
	raft_id		lead;
	raft_status st;

	base_options(&o, 4, 4, c->trace);
	o.raft.pre_vote = false;
	c->s = sim_new(&o);
	run_for(c, 10);
	sim_block(c->s, 1, 4, true);
	sim_block(c->s, 4, 1, true);
	sim_block(c->s, 2, 3, true);
	sim_block(c->s, 3, 2, true);
	campaign(c, 1);
	campaign(c, 2);
	run_for(c, 300);
	EXPECT(sim_leader_of_term(c->s, 2) == RAFT_NONE, "term 2 got a leader");
	EXPECT(role_of(c, 1) == RAFT_CANDIDATE && role_of(c, 2) == RAFT_CANDIDATE,
		   "n1 and n2 should both still be candidates");
	EXPECT(term_of(c, 1) == 2 && term_of(c, 2) == 2 && term_of(c, 3) == 2 &&
		   term_of(c, 4) == 2, "everyone should be in term 2");
	raft_get_status(R(c, 3), &st);
	EXPECT(st.vote == 1, "n3 should have voted for n1, voted %llu",
		   (unsigned long long) st.vote);
	raft_get_status(R(c, 4), &st);
	EXPECT(st.vote == 2, "n4 should have voted for n2");

	sim_heal(c->s);
	EXPECT(sim_run_until_pred(c->s, sim_now(c->s) + 5000, pred_any_leader, NULL),
		   "no leader 5 s after the split vote");
	lead = sim_leader(c->s);
	EXPECT(term_of(c, lead) >= 3, "leader in term %llu, expected >= 3",
		   (unsigned long long) term_of(c, lead));
	EXPECT(sim_count_leaders(c->s) == 1, "more than one leader");
	EXPECT(sim_leader_of_term(c->s, 2) == RAFT_NONE, "term 2 got a leader");
	EXPECT(propose(c, lead, "after-split", 500, NULL), "proposal not committed");
	return true;
}

/*
 * A leader cut off by a partition keeps believing it leads only until
 * CheckQuorum (one election timeout without a majority); it commits
 * nothing meanwhile.  The majority elects a new leader.  When the old
 * leader comes back it follows the new one, its uncommitted entry is
 * replaced, and it does not disturb the new leader.
 */
static bool
sc_stale_leader(scen *c)
{
	sim_options o;
	raft_index	c0 = 0,
				ix = 0;
	raft_term	t1,
				t2;
	raft_id		lead;
	uint64_t	t_iso;
	raft_status st;

	base_options(&o, 3, 3, c->trace);
	c->s = sim_new(&o);
	run_for(c, 10);
	EXPECT(elect(c, 1), "n1 not elected");
	t1 = term_of(c, 1);
	EXPECT(propose(c, 1, "a", 200, NULL), "a not committed");
	EXPECT(propose(c, 1, "b", 200, NULL), "b not committed");
	run_for(c, 200);
	c0 = raft_get_commit(R(c, 1));

	sim_isolate(c->s, 1);
	t_iso = sim_now(c->s);
	EXPECT(propose(c, 1, "x", 0, &ix), "isolated leader refused a proposal");
	EXPECT(sim_run_until_pred(c->s, t_iso + 2100, pred_not_leader, ARG(1)),
		   "isolated leader did not step down within two election timeouts");
	EXPECT(raft_get_commit(R(c, 1)) == c0,
		   "isolated leader moved its commit index");
	EXPECT(sim_run_until_pred(c->s, t_iso + 5000, pred_any_leader, NULL),
		   "majority elected no leader");
	lead = sim_leader(c->s);
	EXPECT(lead == 2 || lead == 3, "leader should be n2 or n3");
	t2 = term_of(c, lead);
	EXPECT(t2 > t1, "new leader's term should be above %llu",
		   (unsigned long long) t1);
	EXPECT(term_of(c, 1) == t1, "isolated node changed its term (PreVote)");
	EXPECT(propose(c, lead, "y", 300, NULL), "y not committed");

	sim_heal(c->s);
	run_for(c, 1000);
	EXPECT(sim_leader(c->s) == lead && term_of(c, lead) == t2,
		   "the old leader disturbed the new one");
	raft_get_status(R(c, 1), &st);
	EXPECT(st.role == RAFT_FOLLOWER && st.leader == lead && st.term == t2,
		   "old leader should follow n%llu in term %llu", (unsigned long long) lead,
		   (unsigned long long) t2);
	EXPECT(sim_committed_other(c->s, ix, t1),
		   "the isolated leader's entry should have been replaced");
	EXPECT(st.last_index == raft_get_last_index(R(c, lead)) &&
		   st.commit == raft_get_commit(R(c, lead)),
		   "old leader's log did not converge");
	return true;
}

/*
 * A follower holding an uncommitted tail from an old leader gets it
 * truncated and replaced by the new leader's entries at the same indexes.
 */
static bool
sc_conflicting_tail(scen *c)
{
	sim_options o;
	raft_index	i0 = 0,
				k,
				last;
	raft_term	t1,
				t;
	raft_id		lead;

	base_options(&o, 3, 3, c->trace);
	c->s = sim_new(&o);
	run_for(c, 10);
	EXPECT(elect(c, 1), "n1 not elected");
	t1 = term_of(c, 1);
	EXPECT(propose(c, 1, "a", 200, NULL), "a not committed");
	run_for(c, 100);

	sim_isolate(c->s, 1);
	EXPECT(propose(c, 1, "x1", 0, &i0), "x1");
	EXPECT(propose(c, 1, "x2", 0, NULL), "x2");
	EXPECT(propose(c, 1, "x3", 0, NULL), "x3");
	run_for(c, 10);
	sim_crash(c->s, 1);
	sim_heal(c->s);

	EXPECT(sim_run_until_pred(c->s, sim_now(c->s) + 5000, pred_any_leader, NULL),
		   "n2/n3 elected no leader");
	lead = sim_leader(c->s);
	EXPECT(propose(c, lead, "y1", 300, NULL), "y1");
	EXPECT(propose(c, lead, "y2", 300, NULL), "y2");
	EXPECT(propose(c, lead, "y3", 300, NULL), "y3");
	EXPECT(propose(c, lead, "y4", 300, NULL), "y4");

	sim_restart(c->s, 1);
	EXPECT(raft_get_term_at(R(c, 1), i0 + 2, &t) && t == t1,
		   "restarted n1 should still hold its tail of term %llu",
		   (unsigned long long) t1);
	run_for(c, 1000);
	last = raft_get_last_index(R(c, lead));
	EXPECT(raft_get_last_index(R(c, 1)) == last,
		   "n1 last index %llu, leader %llu",
		   (unsigned long long) raft_get_last_index(R(c, 1)),
		   (unsigned long long) last);
	for (k = i0; k <= i0 + 2; k++)
	{
		raft_term	tl;

		EXPECT(raft_get_term_at(R(c, 1), k, &t) &&
			   raft_get_term_at(R(c, lead), k, &tl) && t == tl && t > t1,
			   "n1 entry %llu not replaced", (unsigned long long) k);
		EXPECT(sim_committed_other(c->s, k, t1), "x entry %llu committed",
			   (unsigned long long) k);
	}
	EXPECT(raft_get_applied(R(c, 1)) == raft_get_commit(R(c, lead)),
		   "n1 did not apply the new entries");
	return true;
}

/*
 * A node cut off from the cluster keeps timing out.  With PreVote it
 * never gets a majority of pre-votes, so its term does not move and when
 * it comes back the leader is undisturbed; a node that hears a live
 * leader ignores a campaign (leader lease).  Without PreVote and
 * CheckQuorum the same node returns with a higher term and deposes the
 * leader: that is what the mechanism prevents.
 */
static bool
disruptive_run(scen *c, bool protect, raft_term *leader_term_after,
			   raft_term *t_before, raft_term *n3_term)
{
	sim_options o;

	base_options(&o, 3, 3, c->trace);
	o.raft.pre_vote = protect;
	o.raft.check_quorum = protect;
	c->s = sim_new(&o);
	run_for(c, 10);
	EXPECT(elect(c, 1), "n1 not elected");
	EXPECT(propose(c, 1, "a", 200, NULL), "a not committed");
	*t_before = term_of(c, 1);
	sim_isolate(c->s, 3);
	run_for(c, 6000);
	*n3_term = term_of(c, 3);
	sim_heal(c->s);
	run_for(c, 3000);
	EXPECT(sim_leader(c->s) != RAFT_NONE, "no leader after heal");
	*leader_term_after = term_of(c, sim_leader(c->s));
	return true;
}

static bool
sc_prevote(scen *c)
{
	raft_term	after,
				before,
				n3;

	if (!disruptive_run(c, true, &after, &before, &n3))
		return false;
	EXPECT(n3 == before, "with PreVote the isolated node's term moved %llu -> %llu",
		   (unsigned long long) before, (unsigned long long) n3);
	EXPECT(sim_leader(c->s) == 1 && after == before,
		   "with PreVote the leader was disturbed");
	EXPECT(term_of(c, 3) == before && raft_get_leader(R(c, 3)) == 1,
		   "n3 should follow n1 again");

	/* leader lease: a connected node's campaign is ignored */
	campaign(c, 3);
	run_for(c, 500);
	EXPECT(sim_leader(c->s) == 1 && term_of(c, 1) == before &&
		   term_of(c, 3) == before,
		   "a campaign during a live leader's lease changed something");
	sim_free(c->s);
	c->s = NULL;

	/* the same story without the protection */
	if (!disruptive_run(c, false, &after, &before, &n3))
		return false;
	EXPECT(n3 > before + 2, "without PreVote the isolated node's term should climb (%llu -> %llu)",
		   (unsigned long long) before, (unsigned long long) n3);
	EXPECT(after > before, "without PreVote the leader should have been deposed");
	return true;
}

/*
 * The leader removes itself: the change is effective when appended, is
 * committed by the remaining two, then the old leader steps down and hands
 * over with TimeoutNow, so the next leader is there well before an
 * election timeout.  The removed node never leads again and the cluster
 * works without it.
 */
static bool
sc_leader_removed(scen *c)
{
	sim_options o;
	raft_index	ci;
	raft_term	t1,
				t;
	raft_id		lead;
	uint64_t	t0;
	raft_status st;
	int			rc;

	base_options(&o, 3, 3, c->trace);
	c->s = sim_new(&o);
	run_for(c, 10);
	EXPECT(elect(c, 1), "n1 not elected");
	t1 = term_of(c, 1);
	EXPECT(propose(c, 1, "a", 200, NULL), "a not committed");
	run_for(c, 100);

	t0 = sim_now(c->s);
	rc = raft_propose_config(R(c, 1), RAFT_CONFIG_REMOVE, 1, &ci);
	EXPECT(rc == RAFT_OK, "remove failed: %s", raft_strerror(rc));
	sim_after_input(c->s, 1, rc, "config");
	raft_get_status(R(c, 1), &st);
	EXPECT(!raft_config_has(&st.config, 1) && st.config.n == 2,
		   "configuration not effective on append");
	EXPECT(raft_propose_config(R(c, 1), RAFT_CONFIG_ADD, 4, NULL) != RAFT_OK,
		   "a second change was accepted while one is pending");
	EXPECT(sim_run_until_pred(c->s, t0 + 500, pred_not_leader, ARG(1)),
		   "removed leader did not step down");
	EXPECT(raft_get_commit(R(c, 1)) >= ci, "stepped down before the change committed");
	EXPECT(sim_run_until_pred(c->s, t0 + 500, pred_any_leader, NULL),
		   "no new leader within 500 ms (TimeoutNow hand-over)");
	lead = sim_leader(c->s);
	EXPECT(lead == 2 || lead == 3, "leader n%llu", (unsigned long long) lead);
	raft_get_status(R(c, lead), &st);
	EXPECT(st.config.n == 2 && !raft_config_has(&st.config, 1),
		   "new leader's configuration should be {2,3}");
	EXPECT(propose(c, lead, "b", 300, NULL), "b not committed");

	run_for(c, 5000);
	EXPECT(role_of(c, 1) == RAFT_FOLLOWER, "removed node campaigns");
	sim_crash(c->s, 1);
	EXPECT(propose(c, sim_leader(c->s), "c", 300, NULL),
		   "cluster of two did not commit without the removed node");
	for (t = t1 + 1; t <= term_of(c, sim_leader(c->s)); t++)
		EXPECT(sim_leader_of_term(c->s, t) != 1, "removed node led term %llu",
			   (unsigned long long) t);
	return true;
}

/*
 * A follower that was down while the leader compacted its log far past
 * the follower's last entry is brought back with InstallSnapshot and ends
 * with the same state (the checker compares snapshot and applied state).
 */
static bool
sc_snapshot(scen *c)
{
	sim_options o;
	int			k;
	char		buf[32];
	raft_status st1,
				st3;
	uint64_t	sent0;

	base_options(&o, 3, 3, c->trace);
	o.compact_every = 10;
	c->s = sim_new(&o);
	run_for(c, 10);
	EXPECT(elect(c, 1), "n1 not elected");
	EXPECT(propose(c, 1, "a", 200, NULL), "a not committed");
	run_for(c, 100);
	sim_crash(c->s, 3);
	for (k = 0; k < 100; k++)
	{
		snprintf(buf, sizeof(buf), "e%d", k);
		EXPECT(propose(c, 1, buf, k % 10 == 9 ? 300 : 0, NULL),
			   "%s not committed", buf);
	}
	run_for(c, 200);
	raft_get_status(R(c, 1), &st1);
	EXPECT(st1.snapshot_index >= 90, "leader compacted only up to %llu",
		   (unsigned long long) st1.snapshot_index);
	sent0 = sim_get_stats(c->s)->snapshots_sent;
	sim_restart(c->s, 3);
	raft_get_status(R(c, 3), &st3);
	EXPECT(st3.last_index + 1 < st1.first_index,
		   "n3 (last %llu) should be behind the leader's log start %llu",
		   (unsigned long long) st3.last_index,
		   (unsigned long long) st1.first_index);
	run_for(c, 1500);
	raft_get_status(R(c, 1), &st1);
	raft_get_status(R(c, 3), &st3);
	EXPECT(sim_get_stats(c->s)->snapshots_sent > sent0, "no snapshot sent");
	EXPECT(st3.snapshot_index > 0, "n3 did not install a snapshot");
	EXPECT(st3.last_index == st1.last_index && st3.applied == st1.applied &&
		   st3.commit == st1.commit,
		   "n3 did not catch up (last %llu/%llu applied %llu/%llu)",
		   (unsigned long long) st3.last_index,
		   (unsigned long long) st1.last_index,
		   (unsigned long long) st3.applied, (unsigned long long) st1.applied);
	return true;
}

/* Leadership transfer: the target leads in the next term at once. */
static bool
sc_transfer(scen *c)
{
	sim_options o;
	raft_term	t1;
	uint64_t	t0;
	int			rc;

	base_options(&o, 3, 3, c->trace);
	c->s = sim_new(&o);
	run_for(c, 10);
	EXPECT(elect(c, 1), "n1 not elected");
	t1 = term_of(c, 1);
	EXPECT(propose(c, 1, "a", 200, NULL), "a not committed");
	t0 = sim_now(c->s);
	rc = raft_transfer_leadership(R(c, 1), 3);
	EXPECT(rc == RAFT_OK, "transfer: %s", raft_strerror(rc));
	sim_after_input(c->s, 1, rc, "transfer");
	EXPECT(raft_propose(R(c, 1), "z", 1, NULL, NULL) == RAFT_EBUSY,
		   "proposals should be refused during a transfer");
	EXPECT(sim_run_until_pred(c->s, t0 + 100, pred_leader, ARG(3)),
		   "n3 not leader within 100 ms");
	EXPECT(term_of(c, 3) == t1 + 1, "transfer should take exactly one term");
	run_for(c, 50);
	EXPECT(role_of(c, 1) == RAFT_FOLLOWER && raft_get_leader(R(c, 1)) == 3,
		   "old leader should follow n3");
	EXPECT(propose(c, 3, "b", 300, NULL), "b not committed");
	return true;
}

/*
 * Raft paper, figure 8, in three nodes: an entry of an older term that
 * reaches a majority must not be committed by counting replicas; only an
 * entry of the leader's own term commits (and the older ones with it).
 * With the correct core the entry "E" is later legitimately overwritten;
 * with RAFT_BUG_COMMIT_OLD_TERM it is committed and then overwritten,
 * which the checker must report.
 */
static bool
pred_match(sim *s, void *arg)
{
	raft_node  *r = sim_raft(s, 1);
	raft_status st;
	uint32_t	i;

	if (r == NULL || raft_get_role(r) != RAFT_LEADER)
		return false;
	raft_get_status(r, &st);
	for (i = 0; i < st.n_peers; i++)
		if (st.peers[i].id == 2 && st.peers[i].match >= (raft_index) (uintptr_t) arg)
			return true;
	return false;
}

static bool
sc_figure8(scen *c)
{
	sim_options o;
	raft_index	k,
				e_index = 0;
	raft_term	t2,
				t;

	base_options(&o, 3, 3, c->trace);
	o.raft.max_msg_entries = 1;
	o.raft.check_quorum = false;	/* no lease: elections are scripted */
	o.raft.election_ticks = 50;	/* and nothing happens by itself */
	c->s = sim_new(&o);
	run_for(c, 10);

	/* S1 leads term 2; E (index k+1, term 2) reaches only S1 */
	EXPECT(elect(c, 1), "n1 not elected");
	EXPECT(propose(c, 1, "a", 200, NULL), "a not committed");
	run_for(c, 50);
	k = raft_get_last_index(R(c, 1));
	t2 = term_of(c, 1);
	sim_isolate(c->s, 1);
	EXPECT(propose(c, 1, "E", 0, &e_index), "E refused");
	EXPECT(e_index == k + 1, "E at %llu", (unsigned long long) e_index);
	sim_crash(c->s, 1);
	sim_heal(c->s);

	/* S3 leads term 3 with S2's vote; its no-op at k+1 reaches nobody */
	EXPECT(elect(c, 3), "n3 not elected");
	sim_block(c->s, 3, 2, true);
	sim_crash(c->s, 3);
	run_for(c, 20);
	sim_block(c->s, 3, 2, false);
	EXPECT(raft_get_last_index(R(c, 2)) == k, "n2 got n3's no-op");

	/* S1 leads term 4 with S2's vote and sends E to S2, E alone */
	sim_restart(c->s, 1);
	EXPECT(elect(c, 1), "n1 not re-elected");
	EXPECT(sim_run_until_pred(c->s, sim_now(c->s) + 500, pred_match,
							  (void *) (uintptr_t) (k + 1)),
		   "E never reached n2");
	/* E is on a majority now (n1, n2), the term-4 no-op only on n1 */
	sim_block(c->s, 1, 2, true);
	sim_crash(c->s, 1);
	run_for(c, 20);
	sim_block(c->s, 1, 2, false);
	EXPECT(raft_get_term_at(R(c, 2), k + 1, &t) && t == t2,
		   "n2 should hold E");
#ifndef RAFT_BUG_COMMIT_OLD_TERM
	/* (the broken build goes on, so that the checker sees what follows) */
	EXPECT(!sim_is_committed(c->s, k + 1, t2),
		   "E was committed by counting replicas of an old term");
#endif

	/* S3 comes back, wins term 5 with S2's vote, overwrites E */
	sim_restart(c->s, 3);
	EXPECT(elect(c, 3), "n3 not elected in term 5");
	run_for(c, 300);
	EXPECT(raft_get_term_at(R(c, 2), k + 1, &t) && t != t2,
		   "n2's E should have been overwritten");
	EXPECT(sim_committed_other(c->s, k + 1, t2), "n3's entry should commit at %llu",
		   (unsigned long long) (k + 1));
	return true;
}

/*
 * A candidate whose log lacks committed entries must not win: n3 was cut
 * off while n1 and n2 committed entries; n1 dies; n3 campaigns and n2
 * refuses (its log is more up to date); n2 then wins.  With
 * RAFT_BUG_VOTE_IGNORES_LOG n3 wins, which the checker must report.
 */
static bool
sc_stale_candidate(scen *c)
{
	sim_options o;
	int			k;
	char		buf[16];

	base_options(&o, 3, 3, c->trace);
	o.raft.check_quorum = false;
	o.raft.election_ticks = 50;
	c->s = sim_new(&o);
	run_for(c, 10);
	EXPECT(elect(c, 1), "n1 not elected");
	sim_isolate(c->s, 3);
	for (k = 0; k < 5; k++)
	{
		snprintf(buf, sizeof(buf), "c%d", k);
		EXPECT(propose(c, 1, buf, 200, NULL), "%s not committed", buf);
	}
	run_for(c, 100);
	sim_crash(c->s, 1);
	sim_heal(c->s);
	campaign(c, 3);
	run_for(c, 500);
	EXPECT(role_of(c, 3) != RAFT_LEADER, "n3 won with a stale log");
	EXPECT(elect(c, 2), "n2 not elected");
	EXPECT(propose(c, 2, "after", 300, NULL), "not committed under n2");
	return true;
}

/* ------------------------------------------------------------------ */

typedef struct scenario
{
	const char *name;
	const char *desc;
	bool		(*fn) (scen *c);
	int			bug;			/* 0, or which broken build must fail it */
} scenario;

#define BUG_NONE 0
#define BUG_COMMIT 1
#define BUG_VOTE 2

static const scenario scenarios[] = {
	{"split_vote", "split vote in term 2, one leader later", sc_split_vote, BUG_NONE},
	{"stale_leader", "stale leader steps down, commits nothing, rejoins as follower", sc_stale_leader, BUG_NONE},
	{"conflicting_tail", "follower's conflicting uncommitted tail is replaced", sc_conflicting_tail, BUG_NONE},
	{"prevote", "PreVote and lease stop a disruptive node (and without them it disrupts)", sc_prevote, BUG_NONE},
	{"leader_removed", "leader removes itself, steps down after commit, hands over", sc_leader_removed, BUG_NONE},
	{"snapshot", "far-behind follower catches up by InstallSnapshot", sc_snapshot, BUG_NONE},
	{"transfer", "leadership transfer with TimeoutNow", sc_transfer, BUG_NONE},
	{"figure8", "old-term entry on a majority is not committed by counting (figure 8)", sc_figure8, BUG_COMMIT},
	{"stale_candidate", "candidate with a stale log cannot win", sc_stale_candidate, BUG_VOTE},
};

#if defined(RAFT_BUG_COMMIT_OLD_TERM)
#define THIS_BUG BUG_COMMIT
#elif defined(RAFT_BUG_VOTE_IGNORES_LOG)
#define THIS_BUG BUG_VOTE
#else
#define THIS_BUG BUG_NONE
#endif

int
sim_scenarios_run(const char *only, bool trace)
{
	size_t		i;
	int			failures = 0;
	bool		found = false;

	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
	{
		const scenario *sc = &scenarios[i];
		scen		c;
		bool		ok;

		if (only && strcmp(only, sc->name) != 0)
			continue;
		/* a broken build only runs the scenario that must catch it */
		if (THIS_BUG != BUG_NONE && only == NULL && sc->bug != THIS_BUG)
			continue;
		found = true;
		memset(&c, 0, sizeof(c));
		c.trace = trace;
		ok = sc->fn(&c);
		if (c.s && sim_failed(c.s))
		{
			ok = false;
			snprintf(c.msg, sizeof(c.msg), "checker: %s", sim_violation(c.s));
		}
		if (THIS_BUG != BUG_NONE && sc->bug == THIS_BUG)
		{
			/* the broken core must be caught by the checker itself */
			bool		caught = c.s && sim_failed(c.s);

			printf("%s - broken variant: scenario %s: checker reports a violation\n",
				   caught ? "ok" : "not ok", sc->name);
			printf("# %s\n", caught ? sim_violation(c.s) : "no violation reported");
			if (!caught)
				failures++;
		}
		else
		{
			printf("%s - scenario %s: %s\n", ok ? "ok" : "not ok", sc->name,
				   sc->desc);
			if (!ok)
			{
				printf("# %s\n# rerun: ./raft_sim --scenario %s --trace\n",
					   c.msg, sc->name);
				failures++;
			}
		}
		if (c.s)
			sim_free(c.s);
	}
	if (!found)
	{
		fprintf(stderr, "no such scenario: %s\n", only ? only : "");
		return 1;
	}
	return failures;
}

/* ------------------------------------------------------------------ */

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a,
				y = *(const uint64_t *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * Election after a leader crash, default timing (100 ms tick, 10-tick
 * election timeout, 1-tick heartbeat), reliable network with 1-10 ms
 * delays.  Time is from the crash to the moment some node leads a higher
 * term; rounds is how many terms that took.
 */
static void
measure_failover(int nodes, int trials, int also_down, int drop_pm)
{
	uint64_t   *ms = malloc(sizeof(uint64_t) * (size_t) trials);
	int			rounds_hist[8] = {0};
	int			i,
				n = 0,
				pre_fail = 0;

	for (i = 0; i < trials; i++)
	{
		sim_options o;
		sim		   *s;
		raft_id		lead,
					nl;
		raft_term	t;
		uint64_t	t0;

		sim_options_init(&o);
		o.seed = (uint64_t) i + 1;
		o.n_voters = nodes;
		o.pool = nodes;
		o.drop_pm = drop_pm;
		s = sim_new(&o);
		if (!sim_run_until_pred(s, 10000, pred_any_leader, NULL))
		{
			sim_free(s);
			continue;
		}
		/* let it settle, then crash at a random moment */
		sim_run_until(s, sim_now(s) + 2000 + sim_rand(s) % 1000);
		lead = sim_leader(s);
		t = raft_get_term(sim_raft(s, lead));
		{
			int			k,
						down = 0;

			/* optionally some followers are down already */
			for (k = 1; k <= nodes && down < also_down; k++)
				if ((raft_id) k != lead)
				{
					sim_crash(s, (raft_id) k);
					down++;
				}
		}
		sim_crash(s, lead);
		t0 = sim_now(s);
		if (!sim_run_until_pred(s, t0 + 30000, pred_any_leader, NULL) ||
			sim_failed(s))
		{
			pre_fail++;
			sim_free(s);
			continue;
		}
		nl = sim_leader(s);
		ms[n++] = sim_now(s) - t0;
		{
			raft_term	r = raft_get_term(sim_raft(s, nl)) - t;

			rounds_hist[r < 7 ? r : 7]++;
		}
		sim_free(s);
	}
	qsort(ms, (size_t) n, sizeof(uint64_t), cmp_u64);
	printf("%d nodes, leader crash%s%s, %d trials: new leader after median %llu ms, p90 %llu ms, p99 %llu ms, worst %llu ms, best %llu ms; failures %d\n",
		   nodes, also_down ? " with other nodes down" : "",
		   drop_pm ? " on a lossy network" : "", n, (unsigned long long) ms[n / 2],
		   (unsigned long long) ms[n * 9 / 10],
		   (unsigned long long) ms[n * 99 / 100],
		   (unsigned long long) ms[n - 1], (unsigned long long) ms[0], pre_fail);
	printf("  terms needed: 1: %d, 2: %d, 3: %d, 4: %d, 5+: %d\n",
		   rounds_hist[1], rounds_hist[2], rounds_hist[3], rounds_hist[4],
		   rounds_hist[5] + rounds_hist[6] + rounds_hist[7]);
	free(ms);
}

/* First election of a fresh cluster, for comparison. */
static void
measure_first_election(int nodes, int trials)
{
	uint64_t   *ms = malloc(sizeof(uint64_t) * (size_t) trials);
	int			i,
				n = 0,
				extra = 0;

	for (i = 0; i < trials; i++)
	{
		sim_options o;
		sim		   *s;

		sim_options_init(&o);
		o.seed = (uint64_t) i + 100000;
		o.n_voters = nodes;
		o.pool = nodes;
		s = sim_new(&o);
		if (sim_run_until_pred(s, 30000, pred_any_leader, NULL))
		{
			ms[n++] = sim_now(s);
			if (raft_get_term(sim_raft(s, sim_leader(s))) > 2)
				extra++;
		}
		sim_free(s);
	}
	qsort(ms, (size_t) n, sizeof(uint64_t), cmp_u64);
	printf("%d nodes, first election of a fresh cluster, %d trials: median %llu ms, worst %llu ms, %d needed more than one term\n",
		   nodes, n, (unsigned long long) ms[n / 2],
		   (unsigned long long) ms[n - 1], extra);
	free(ms);
}

int
sim_measure(void)
{
	raft_options ro;

	raft_options_init(&ro);
	printf("defaults: tick = 100 ms (host choice), election timeout %d ticks randomized in [%d, %d), heartbeat %d tick, max inflight %u, max entries per append %u\n",
		   ro.election_ticks, ro.election_ticks, 2 * ro.election_ticks,
		   ro.heartbeat_ticks, ro.max_inflight, ro.max_msg_entries);
	measure_failover(3, 2000, 0, 0);
	measure_failover(5, 2000, 0, 0);
	measure_failover(5, 2000, 1, 0);
	measure_failover(3, 2000, 0, 100);
	measure_failover(5, 2000, 0, 100);
	measure_first_election(3, 2000);
	measure_first_election(5, 2000);
	return 0;
}
