/*-------------------------------------------------------------------------
 *
 * api_test.c
 *	  Direct tests of the raft.h API as a host uses it: option checks, the
 *	  Ready/Advance contract on a single node and on three nodes wired
 *	  together by hand, misuse, garbage input, restore validation,
 *	  compaction, the status view, and allocation failures.
 *
 * Prints "ok - ..." / "not ok - ..." lines; run_check.sh numbers them.
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"
#include "raft_codec.h"

static int	failures = 0;
static uint64_t rng = 12345;

static uint64_t
test_rand(void *ctx)
{
	(void) ctx;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void
report(bool ok, const char *desc)
{
	printf("%s - api: %s\n", ok ? "ok" : "not ok", desc);
	if (!ok)
		failures++;
}

static raft_node *
mk(raft_id id, const raft_allocator *a)
{
	raft_options o;

	raft_options_init(&o);
	o.id = id;
	o.rand = test_rand;
	if (a)
		o.allocator = *a;
	return raft_new(&o, NULL);
}

/* Drain one node's Readys, delivering messages into the others. */
typedef struct net
{
	raft_node  *n[4];			/* index = id */
	int			count;
	raft_index	applied[4];
} net;

static int
drain(net *w, raft_id id)
{
	raft_node  *r = w->n[id];
	raft_ready	rd;
	size_t		k;
	int			rc;

	while (raft_has_ready(r))
	{
		if ((rc = raft_ready_get(r, &rd)) != RAFT_OK)
			return rc;
		/* persist: nothing to do for this in-memory test */
		for (k = 0; k < rd.n_committed; k++)
			w->applied[id] = rd.committed[k].index;
		if ((rc = raft_advance(r, &rd)) != RAFT_OK)
			return rc;
	}
	return RAFT_OK;
}

/* Deliver every pending message in the network until quiet. */
static int
settle(net *w)
{
	int			rounds,
				rc;
	raft_id		id;

	for (rounds = 0; rounds < 1000; rounds++)
	{
		bool		any = false;

		for (id = 1; id <= (raft_id) w->count; id++)
		{
			raft_node  *r = w->n[id];
			raft_ready	rd;
			size_t		k;
			raft_outmsg *copy;
			size_t		nmsg;

			if (!raft_has_ready(r))
				continue;
			any = true;
			if ((rc = raft_ready_get(r, &rd)) != RAFT_OK)
				return rc;
			for (k = 0; k < rd.n_committed; k++)
				w->applied[id] = rd.committed[k].index;
			/* copy messages out: their buffers die at advance */
			nmsg = rd.n_messages;
			copy = malloc(sizeof(raft_outmsg) * (nmsg ? nmsg : 1));
			for (k = 0; k < nmsg; k++)
			{
				copy[k] = rd.messages[k];
				copy[k].buf = malloc(copy[k].len);
				memcpy(copy[k].buf, rd.messages[k].buf, copy[k].len);
			}
			if ((rc = raft_advance(r, &rd)) != RAFT_OK)
				return rc;
			for (k = 0; k < nmsg; k++)
			{
				if (copy[k].to >= 1 && copy[k].to <= (raft_id) w->count)
				{
					rc = raft_step(w->n[copy[k].to], copy[k].buf, copy[k].len);
					if (rc != RAFT_OK)
						return rc;
				}
				free(copy[k].buf);
			}
			free(copy);
		}
		if (!any)
			return RAFT_OK;
	}
	return RAFT_EFATAL;
}

/* An allocator that fails from the n-th call on. */
static long alloc_budget;

static void *
fail_alloc(void *ctx, size_t size)
{
	(void) ctx;
	if (alloc_budget-- <= 0)
		return NULL;
	return malloc(size);
}

static void *
fail_realloc(void *ctx, void *p, size_t size)
{
	(void) ctx;
	if (alloc_budget-- <= 0)
		return NULL;
	return realloc(p, size);
}

static void
plain_free(void *ctx, void *p)
{
	(void) ctx;
	free(p);
}

int
main(void)
{
	raft_options o;
	raft_node  *r;
	raft_config c;
	raft_ready	rd;
	raft_status st;
	raft_index	idx;
	raft_term	term;
	int			rc,
				k;
	bool		ok;
	uint8_t		garbage[100];

	/* options */
	raft_options_init(&o);
	ok = raft_new(&o, &rc) == NULL && rc == RAFT_EINVAL;	/* id 0, no rand */
	o.id = 1;
	ok = ok && raft_new(&o, &rc) == NULL;	/* no rand */
	o.rand = test_rand;
	o.heartbeat_ticks = o.election_ticks;
	ok = ok && raft_new(&o, &rc) == NULL;
	report(ok, "raft_new rejects bad options");

	/* single node: bootstrap, first Ready, election, proposal, commit */
	r = mk(1, NULL);
	memset(&c, 0, sizeof(c));
	c.n = 1;
	c.voters[0] = 1;
	ok = raft_bootstrap(r, &c) == RAFT_OK && raft_has_ready(r);
	ok = ok && raft_ready_get(r, &rd) == RAFT_OK && rd.n_entries == 1 &&
		rd.entries[0].index == 1 && rd.entries[0].type == RAFT_ENTRY_CONFIG &&
		rd.has_hard_state && rd.hard_state.term == 1 &&
		rd.hard_state.commit == 1 && rd.n_committed == 1 && rd.snapshot == NULL;
	/* misuse while a Ready is out */
	ok = ok && raft_tick(r) == RAFT_EINVAL &&
		raft_propose(r, "x", 1, NULL, NULL) == RAFT_EINVAL &&
		raft_ready_get(r, &rd) == RAFT_EINVAL;
	ok = ok && raft_advance(r, &rd) == RAFT_OK && !raft_has_ready(r);
	report(ok, "bootstrap: entry 1 is the configuration, committed; no calls while a Ready is out");

	ok = raft_propose(r, "x", 1, NULL, NULL) == RAFT_ENOTLEADER;
	/*
	 * A single voter does not lead before its vote for itself is durable:
	 * a crash before that must leave no leader of the term behind.
	 */
	ok = ok && raft_campaign(r) == RAFT_OK && raft_get_role(r) == RAFT_CANDIDATE &&
		raft_ready_get(r, &rd) == RAFT_OK && rd.has_hard_state &&
		rd.hard_state.vote == 1 && raft_get_role(r) == RAFT_CANDIDATE &&
		raft_advance(r, &rd) == RAFT_OK && raft_get_role(r) == RAFT_LEADER;
	while (raft_has_ready(r))
	{
		raft_ready_get(r, &rd);
		raft_advance(r, &rd);
	}
	ok = ok && raft_get_role(r) == RAFT_LEADER && raft_get_term(r) == 2 &&
		raft_get_commit(r) == 2;	/* its no-op, durable and committed */
	ok = ok && raft_propose(r, "hello", 5, &idx, &term) == RAFT_OK &&
		idx == 3 && term == 2;
	ok = ok && raft_ready_get(r, &rd) == RAFT_OK && rd.n_entries == 1 &&
		rd.n_committed == 0;	/* not durable yet, so not committed */
	ok = ok && raft_advance(r, &rd) == RAFT_OK;
	ok = ok && raft_ready_get(r, &rd) == RAFT_OK && rd.n_committed == 1 &&
		rd.committed[0].len == 5 && memcmp(rd.committed[0].data, "hello", 5) == 0;
	ok = ok && raft_advance(r, &rd) == RAFT_OK && raft_get_applied(r) == 3;
	report(ok, "single node: leads only once its own vote is durable, commits only what is durable");

	/* garbage and misaddressed input */
	for (k = 0; k < (int) sizeof(garbage); k++)
		garbage[k] = (uint8_t) k;
	raft_get_status(r, &st);
	ok = raft_step(r, garbage, sizeof(garbage)) == RAFT_EDECODE &&
		raft_step(r, NULL, 0) == RAFT_EDECODE && !raft_has_ready(r);
	{
		raft_message m;
		uint8_t		buf[256];
		size_t		len;
		raft_status st2;

		memset(&m, 0, sizeof(m));
		m.type = RAFT_MSG_HEARTBEAT;
		m.from = 2;
		m.to = 7;
		m.term = 99;
		len = raft_msg_encode(&m, buf, sizeof(buf));
		ok = ok && raft_step(r, buf, len) == RAFT_EINVAL;
		raft_get_status(r, &st2);
		ok = ok && st2.term == st.term && st2.role == st.role;
	}
	report(ok, "garbage and misaddressed messages are refused without effect");

	/* compaction */
	ok = raft_compact(r, 4, "s", 1, NULL) == RAFT_EINVAL;	/* beyond applied */
	{
		raft_snapshot meta;

		ok = ok && raft_compact(r, 3, "snap", 4, &meta) == RAFT_OK &&
			meta.index == 3 && meta.term == 2 && meta.config.n == 1 &&
			meta.len == 4 && raft_get_entry(r, 3) == NULL &&
			raft_compact(r, 2, "s", 1, NULL) == RAFT_ECOMPACTED;
		ok = ok && raft_propose(r, "y", 1, &idx, NULL) == RAFT_OK && idx == 4;
	}
	while (raft_has_ready(r))
	{
		raft_ready_get(r, &rd);
		raft_advance(r, &rd);
	}
	report(ok, "compaction: bounds, snapshot metadata, log continues after it");

	/* configuration changes on the single node */
	ok = raft_propose_config(r, RAFT_CONFIG_REMOVE, 9, NULL) == RAFT_EINVAL &&
		raft_propose_config(r, RAFT_CONFIG_ADD, 1, NULL) == RAFT_EINVAL &&
		raft_propose_config(r, RAFT_CONFIG_REMOVE, 1, NULL) == RAFT_EINVAL;
	ok = ok && raft_propose_config(r, RAFT_CONFIG_ADD, 2, &idx) == RAFT_OK &&
		raft_propose_config(r, RAFT_CONFIG_ADD, 3, NULL) == RAFT_EBUSY;
	raft_get_status(r, &st);
	ok = ok && st.config.n == 2 && st.config_index == idx;
	report(ok, "config changes: validated, one at a time, effective when appended");
	raft_free(r);

	/* three nodes wired by hand: replication and the status view */
	{
		net			w;
		raft_id		id;

		memset(&w, 0, sizeof(w));
		w.count = 3;
		c.n = 3;
		c.voters[0] = 1;
		c.voters[1] = 2;
		c.voters[2] = 3;
		for (id = 1; id <= 3; id++)
		{
			w.n[id] = mk(id, NULL);
			raft_bootstrap(w.n[id], &c);
		}
		ok = settle(&w) == RAFT_OK;
		ok = ok && raft_campaign(w.n[2]) == RAFT_OK && settle(&w) == RAFT_OK &&
			raft_get_role(w.n[2]) == RAFT_LEADER;
		for (k = 0; k < 10; k++)
			ok = ok && raft_propose(w.n[2], "e", 1, &idx, NULL) == RAFT_OK;
		ok = ok && settle(&w) == RAFT_OK && raft_tick(w.n[2]) == RAFT_OK &&
			settle(&w) == RAFT_OK;
		raft_get_status(w.n[2], &st);
		ok = ok && st.role == RAFT_LEADER && st.leader == 2 && st.n_peers == 3 &&
			st.commit == idx && w.applied[1] == idx && w.applied[3] == idx;
		for (k = 0; k < (int) st.n_peers; k++)
			ok = ok && st.peers[k].match == idx && st.peers[k].next == idx + 1 &&
				st.peers[k].last_contact == 0 &&
				(st.peers[k].id == 2 || st.peers[k].state == RAFT_PROGRESS_REPLICATE);
		raft_get_status(w.n[1], &st);
		ok = ok && st.role == RAFT_FOLLOWER && st.leader == 2 && st.n_peers == 0;
		ok = ok && drain(&w, 1) == RAFT_OK;
		report(ok, "three nodes: election, replication, status view (match/next/last contact)");

		/* restore validation */
		r = mk(1, NULL);
		{
			raft_hard_state hs = {2, 0, 0};
			raft_entry	e[2];

			memset(e, 0, sizeof(e));
			e[0].term = 1;
			e[0].index = 1;
			e[0].type = RAFT_ENTRY_NORMAL;
			e[1] = e[0];
			e[1].index = 3;		/* gap */
			ok = raft_restore(r, &hs, NULL, e, 2, 0) == RAFT_EINVAL;
		}
		raft_free(r);
		report(ok, "restore refuses a log with a gap");
		for (id = 1; id <= 3; id++)
			raft_free(w.n[id]);
	}

	/* allocation failures: every budget from 0 up, never a crash */
	{
		raft_allocator a;
		long		budget;
		bool		all_ok = true;

		a.alloc = fail_alloc;
		a.realloc = fail_realloc;
		a.free = plain_free;
		a.ctx = NULL;
		for (budget = 0; budget < 60; budget++)
		{
			int			steps;

			alloc_budget = budget;
			r = mk(1, &a);
			if (r == NULL)
				continue;
			c.n = 1;
			c.voters[0] = 1;
			rc = raft_bootstrap(r, &c);
			for (steps = 0; steps < 40 && rc == RAFT_OK; steps++)
			{
				rc = raft_tick(r);
				if (rc == RAFT_OK && raft_get_role(r) == RAFT_LEADER)
					rc = raft_propose(r, "data", 4, NULL, NULL);
				while (rc == RAFT_OK && raft_has_ready(r))
				{
					rc = raft_ready_get(r, &rd);
					if (rc == RAFT_OK)
						rc = raft_advance(r, &rd);
				}
			}
			/* once broken, the node stays broken and says so */
			if (rc != RAFT_OK)
			{
				if (rc != RAFT_ENOMEM ||
					raft_tick(r) != RAFT_ENOMEM || raft_has_ready(r))
					all_ok = false;
			}
			raft_free(r);
		}
		report(all_ok, "allocation failures at every point: ENOMEM, node stays broken, no crash");
	}

	return failures ? 1 : 0;
}
