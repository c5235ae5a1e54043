/*-------------------------------------------------------------------------
 *
 * raft.c
 *	  The Raft state machine: elections (with PreVote and CheckQuorum),
 *	  replication, commitment, snapshots, single-server membership changes
 *	  and leadership transfer.  See raft.h for how the host drives it.
 *
 * The structure follows etcd's raft: one step() per message, a role
 * specific step function, per-follower progress with flow control, and a
 * Ready/Advance handshake that makes the host persist term, vote and
 * entries before any message that depends on them leaves the node.
 *
 * Error handling: an allocation failure or a broken invariant sets a
 * sticky error and marks the node broken; every entry point then returns
 * that error and produces no more output.  The host restarts the node from
 * its durable state, which is always safe in Raft.  Internal functions
 * check r->broken after anything that may fail so that nothing is built
 * on top of a half-done change.
 *
 *-------------------------------------------------------------------------
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"
#include "raft_alloc.h"
#include "raft_codec.h"
#include "raft_log.h"
#include "raft_progress.h"

typedef enum campaign_kind
{
	CAMPAIGN_PRE,
	CAMPAIGN_ELECTION,
	CAMPAIGN_TRANSFER
} campaign_kind;

struct raft_node
{
	raft_options opt;
	raft_id		id;

	/* persistent (through Ready) */
	raft_term	term;
	raft_id		vote;
	raft_log	log;
	raft_snapshot snap;			/* latest snapshot, data owned */
	bool		snap_pending;	/* snap must be persisted and applied */

	/* volatile */
	raft_role	role;
	raft_id		leader;
	raft_config conf;
	raft_index	conf_index;		/* 0: configuration from the snapshot */
	raft_progress prs[RAFT_MAX_VOTERS];	/* one per voter, conf order */
	uint32_t	n_prs;

	/* votes received in the current (pre-)campaign */
	raft_id		votes_from[RAFT_MAX_VOTERS];
	bool		votes_granted[RAFT_MAX_VOTERS];
	uint32_t	n_votes;
	bool		self_vote_pending;	/* candidate: own vote not durable yet */

	int			election_elapsed;
	int			heartbeat_elapsed;
	int			randomized_timeout;
	uint64_t	ticks;

	raft_id		transferee;		/* leadership transfer target */
	raft_index	pending_conf_index; /* leader: no config change until this
									 * index is committed */

	/* output */
	raft_outmsg *msgs;
	size_t		n_msgs;
	size_t		cap_msgs;
	raft_hard_state prev_hs;	/* last hard state handed out */

	/* what the outstanding Ready handed out */
	bool		in_ready;
	bool		rd_snapshot;
	raft_index	rd_stable_to;
	raft_index	rd_applied_to;
	size_t		rd_n_msgs;
	raft_hard_state rd_hs;

	bool		started;		/* bootstrap/restore done or first input */
	bool		broken;
	int			err;
};

static void step_message(raft_node *r, const raft_message *m);
static void become_follower(raft_node *r, raft_term term, raft_id leader);
static void bcast_append(raft_node *r);
static bool maybe_send_append(raft_node *r, raft_progress *pr, bool send_if_empty);

/* ---------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------
 */
static const char *const role_names[] = {
	"follower", "pre-candidate", "candidate", "leader"
};

const char *
raft_role_name(raft_role role)
{
	if ((int) role < 0 || (int) role > 3)
		return "?";
	return role_names[role];
}

const char *
raft_progress_state_name(raft_progress_state s)
{
	switch (s)
	{
		case RAFT_PROGRESS_PROBE:
			return "probe";
		case RAFT_PROGRESS_REPLICATE:
			return "replicate";
		case RAFT_PROGRESS_SNAPSHOT:
			return "snapshot";
	}
	return "?";
}

const char *
raft_strerror(int rc)
{
	switch (rc)
	{
		case RAFT_OK:
			return "ok";
		case RAFT_ENOTLEADER:
			return "not the leader";
		case RAFT_ENOMEM:
			return "out of memory";
		case RAFT_EINVAL:
			return "invalid argument";
		case RAFT_EBUSY:
			return "a configuration change or leadership transfer is pending";
		case RAFT_EDECODE:
			return "malformed message";
		case RAFT_ECOMPACTED:
			return "index already compacted";
		case RAFT_EFATAL:
			return "raft node is broken";
	}
	return "unknown error";
}

#if defined(__GNUC__)
static void tracef(raft_node *r, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
#endif

static void
tracef(raft_node *r, const char *fmt,...)
{
	char		line[256];
	va_list		ap;

	if (r->opt.trace == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	r->opt.trace(r->opt.trace_ctx, r->id, line);
}

/* Mark the node broken; the first error wins. */
static void
fail(raft_node *r, int err, const char *why)
{
	if (!r->broken)
	{
		r->broken = true;
		r->err = err;
		tracef(r, "BROKEN: %s (%s)", why, raft_strerror(err));
	}
}

static uint32_t
quorum_of(uint32_t n)
{
	return n / 2 + 1;
}

static bool
promotable(const raft_node *r)
{
	return raft_config_has(&r->conf, r->id);
}

/*
 * May this node start an election?  A voter of its latest configuration
 * may.  So may a node whose latest configuration removed it but is not
 * committed yet: that is a leader that proposed its own removal and lost
 * leadership before the change committed.  It may hold the only copy of
 * the change, and the remaining voters may need it to win (they will not
 * vote for a log behind theirs), so it must be able to come back, finish
 * the change and step down.  This is safe because a candidate counts
 * votes only in its own latest configuration, where it has no vote.
 */
static bool
can_campaign(const raft_node *r)
{
	if (promotable(r))
		return true;
	return r->conf.n > 0 && r->conf_index > r->log.committed;
}

static raft_progress *
progress_of(raft_node *r, raft_id id)
{
	uint32_t	i;

	for (i = 0; i < r->n_prs; i++)
		if (r->prs[i].id == id)
			return &r->prs[i];
	return NULL;
}

static void
reset_randomized_timeout(raft_node *r)
{
	uint64_t	x = r->opt.rand(r->opt.rand_ctx);

	r->randomized_timeout = r->opt.election_ticks +
		(int) (x % (uint64_t) r->opt.election_ticks);
}

static raft_term
term_at(const raft_node *r, raft_index i)
{
	raft_term	t;

	(void) raft_log_term(&r->log, i, &t);
	return t;
}

/* ---------------------------------------------------------------------
 * Sending: messages are encoded at once, so the outbox owns plain bytes
 * and later changes to the log cannot affect what was already sent.
 * ---------------------------------------------------------------------
 */
static void
send_msg(raft_node *r, raft_message *m)
{
	size_t		size;
	uint8_t    *buf;
	raft_outmsg *out;

	if (r->broken)
		return;
	m->from = r->id;
	size = raft_msg_encoded_size(m);
	if (size == 0 || size > UINT32_MAX)
	{
		fail(r, RAFT_EFATAL, "message too large to encode");
		return;
	}
	if (r->n_msgs == r->cap_msgs)
	{
		size_t		ncap = r->cap_msgs ? r->cap_msgs * 2 : 16;
		raft_outmsg *nm = raft_mem_realloc(&r->opt.allocator, r->msgs,
										   ncap * sizeof(raft_outmsg));

		if (nm == NULL)
		{
			fail(r, RAFT_ENOMEM, "growing outbox");
			return;
		}
		r->msgs = nm;
		r->cap_msgs = ncap;
	}
	buf = raft_mem_alloc(&r->opt.allocator, size);
	if (buf == NULL)
	{
		fail(r, RAFT_ENOMEM, "encoding message");
		return;
	}
	if (raft_msg_encode(m, buf, size) != size)
	{
		raft_mem_free(&r->opt.allocator, buf);
		fail(r, RAFT_EFATAL, "encoding message");
		return;
	}
	out = &r->msgs[r->n_msgs++];
	out->to = m->to;
	out->type = m->type;
	out->len = (uint32_t) size;
	out->buf = buf;
}

/* A message of the current term with nothing else filled in. */
static void
msg_init(raft_node *r, raft_message *m, uint8_t type, raft_id to)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->to = to;
	m->term = r->term;
}

static void
free_outbox(raft_node *r, size_t n)
{
	size_t		i;

	for (i = 0; i < n && i < r->n_msgs; i++)
		raft_mem_free(&r->opt.allocator, r->msgs[i].buf);
	if (n >= r->n_msgs)
		r->n_msgs = 0;
	else
	{
		memmove(r->msgs, r->msgs + n, (r->n_msgs - n) * sizeof(raft_outmsg));
		r->n_msgs -= n;
	}
}

/* ---------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------
 */

/*
 * Install a configuration and rebuild the progress set to match it,
 * keeping what we know about peers that stay.
 */
static void
set_config(raft_node *r, const raft_config *c, raft_index index)
{
	raft_progress nprs[RAFT_MAX_VOTERS];
	bool		kept[RAFT_MAX_VOTERS];
	uint32_t	i,
				j;

	memset(kept, 0, sizeof(kept));
	for (i = 0; i < c->n; i++)
	{
		bool		found = false;

		for (j = 0; j < r->n_prs; j++)
		{
			if (r->prs[j].id == c->voters[i])
			{
				nprs[i] = r->prs[j];
				kept[j] = true;
				found = true;
				break;
			}
		}
		if (!found)
		{
			if (raft_progress_init(&nprs[i], c->voters[i],
								   raft_log_last_index(&r->log) + 1,
								   r->opt.max_inflight,
								   &r->opt.allocator) != RAFT_OK)
			{
				/* undo the new ones; the node is broken anyway */
				for (j = 0; j <= i; j++)
				{
					bool		was_kept = false;
					uint32_t	k;

					for (k = 0; k < r->n_prs; k++)
						if (r->prs[k].id == nprs[j].id && kept[k])
							was_kept = true;
					if (!was_kept)
						raft_progress_free(&nprs[j], &r->opt.allocator);
				}
				fail(r, RAFT_ENOMEM, "allocating progress");
				return;
			}
			if (c->voters[i] == r->id)
				nprs[i].match = r->log.stable;
			nprs[i].last_contact = r->ticks;
		}
	}
	for (j = 0; j < r->n_prs; j++)
		if (!kept[j])
			raft_progress_free(&r->prs[j], &r->opt.allocator);
	memcpy(r->prs, nprs, sizeof(raft_progress) * c->n);
	r->n_prs = c->n;
	r->conf = *c;
	r->conf_index = index;

	if (r->transferee != RAFT_NONE && !raft_config_has(c, r->transferee))
		r->transferee = RAFT_NONE;
	tracef(r, "config at %llu: %u voters%s", (unsigned long long) index, c->n,
		   promotable(r) ? "" : " (not including me)");
}

/* The configuration in force at index: last config entry <= index. */
static int
config_at(raft_node *r, raft_index index, raft_config *c, raft_index *cidx)
{
	raft_index	i = index;

	if (i > raft_log_last_index(&r->log))
		i = raft_log_last_index(&r->log);
	for (; i > r->log.snap_index; i--)
	{
		const raft_entry *e = raft_log_entry(&r->log, i);

		if (e->type == RAFT_ENTRY_CONFIG)
		{
			*cidx = i;
			return raft_config_decode(e->data, e->len, c);
		}
	}
	*c = r->snap.config;
	*cidx = 0;
	return RAFT_OK;
}

/* After the log changed around configuration entries: re-derive. */
static void
recompute_config(raft_node *r)
{
	raft_config c;
	raft_index	cidx;

	if (config_at(r, raft_log_last_index(&r->log), &c, &cidx) != RAFT_OK)
	{
		fail(r, RAFT_EFATAL, "undecodable configuration entry in log");
		return;
	}
	if (cidx != r->conf_index || memcmp(&c, &r->conf, sizeof(c)) != 0 ||
		r->n_prs != c.n)
		set_config(r, &c, cidx);
}

/* ---------------------------------------------------------------------
 * Role changes
 * ---------------------------------------------------------------------
 */
static void
reset(raft_node *r, raft_term term)
{
	uint32_t	i;

	if (term != r->term)
	{
		r->term = term;
		r->vote = RAFT_NONE;
	}
	r->leader = RAFT_NONE;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	reset_randomized_timeout(r);
	r->transferee = RAFT_NONE;
	r->n_votes = 0;
	r->self_vote_pending = false;
	r->pending_conf_index = 0;
	for (i = 0; i < r->n_prs; i++)
	{
		raft_progress *pr = &r->prs[i];

		pr->state = RAFT_PROGRESS_PROBE;
		pr->probe_sent = false;
		pr->pending_snapshot = 0;
		pr->snapshot_ticks = 0;
		pr->stall_ticks = 0;
		pr->recent_active = true;
		raft_inflights_reset(&pr->ins);
		pr->match = (pr->id == r->id) ? r->log.stable : 0;
		pr->next = raft_log_last_index(&r->log) + 1;
	}
}

static void
become_follower(raft_node *r, raft_term term, raft_id leader)
{
	raft_role	old = r->role;
	raft_term	old_term = r->term;

	reset(r, term);
	r->role = RAFT_FOLLOWER;
	r->leader = leader;
	if (old != RAFT_FOLLOWER || old_term != term)
		tracef(r, "follower at term %llu (was %s at %llu), leader %llu",
			   (unsigned long long) term, raft_role_name(old),
			   (unsigned long long) old_term, (unsigned long long) leader);
}

static void
become_pre_candidate(raft_node *r)
{
	/* No term change: that is the point of PreVote. */
	r->role = RAFT_PRE_CANDIDATE;
	r->leader = RAFT_NONE;
	r->n_votes = 0;
	r->transferee = RAFT_NONE;
	tracef(r, "pre-candidate at term %llu", (unsigned long long) r->term);
}

static void
become_candidate(raft_node *r)
{
	reset(r, r->term + 1);
	r->vote = r->id;
	r->role = RAFT_CANDIDATE;
	tracef(r, "candidate at term %llu", (unsigned long long) r->term);
}

static void
append_local(raft_node *r, uint8_t type, const void *data, uint32_t len)
{
	raft_entry	e;
	int			rc;

	e.term = r->term;
	e.index = raft_log_last_index(&r->log) + 1;
	e.type = type;
	e.len = len;
	e.data = (uint8_t *) data;
	rc = raft_log_append(&r->log, &e);
	if (rc != RAFT_OK)
		fail(r, rc, "appending to log");
}

static void
become_leader(raft_node *r)
{
	reset(r, r->term);
	r->role = RAFT_LEADER;
	r->leader = r->id;
	tracef(r, "LEADER at term %llu (last %llu/t%llu)",
		   (unsigned long long) r->term,
		   (unsigned long long) raft_log_last_index(&r->log),
		   (unsigned long long) raft_log_last_term(&r->log));

	/*
	 * The no-op commits everything before it the moment it commits, and
	 * until it does we accept no configuration change: a change proposed
	 * before the leader has committed an entry of its own term could be
	 * lost in a way that breaks single-server changes (Ongaro, raft-dev
	 * 2015).
	 */
	append_local(r, RAFT_ENTRY_NOOP, NULL, 0);
	r->pending_conf_index = raft_log_last_index(&r->log);
}

/* ---------------------------------------------------------------------
 * Elections
 * ---------------------------------------------------------------------
 */

/* Record a vote; returns granted and rejected counts among voters. */
static void
poll(raft_node *r, raft_id from, bool granted, uint32_t *ngranted,
	 uint32_t *nrejected)
{
	uint32_t	i;
	bool		seen = false;

	if (raft_config_has(&r->conf, from))
	{
		for (i = 0; i < r->n_votes; i++)
			if (r->votes_from[i] == from)
				seen = true;
		if (!seen && r->n_votes < RAFT_MAX_VOTERS)
		{
			r->votes_from[r->n_votes] = from;
			r->votes_granted[r->n_votes] = granted;
			r->n_votes++;
		}
	}
	*ngranted = *nrejected = 0;
	for (i = 0; i < r->n_votes; i++)
	{
		if (r->votes_granted[i])
			(*ngranted)++;
		else
			(*nrejected)++;
	}
}

static void
campaign(raft_node *r, campaign_kind kind)
{
	raft_term	vote_term;
	uint8_t		type;
	uint32_t	i,
				g,
				rej;

	if (!can_campaign(r))
	{
		tracef(r, "not campaigning: not a voter");
		return;
	}
	if (kind == CAMPAIGN_PRE)
	{
		become_pre_candidate(r);
		vote_term = r->term + 1;
		type = RAFT_MSG_PREVOTE;
	}
	else
	{
		become_candidate(r);
		vote_term = r->term;
		type = RAFT_MSG_VOTE;
	}
	if (kind == CAMPAIGN_PRE)
	{
		/* a pre-vote binds nothing, so our own counts at once */
		poll(r, r->id, true, &g, &rej);
		if (g >= quorum_of(r->conf.n))
		{
			/* single-voter cluster */
			campaign(r, CAMPAIGN_ELECTION);
			return;
		}
	}
	else
	{
		/*
		 * Our vote for ourselves counts only once it is durable (see
		 * raft_advance): a candidate that won on a vote it then lost in a
		 * crash could vote for another candidate in the same term.  Peers'
		 * answers cannot arrive earlier anyway, since the requests leave
		 * only after the same Ready has been persisted.
		 */
		r->self_vote_pending = true;
	}
	for (i = 0; i < r->conf.n; i++)
	{
		raft_message m;

		if (r->conf.voters[i] == r->id)
			continue;
		msg_init(r, &m, type, r->conf.voters[i]);
		m.term = vote_term;
		m.index = raft_log_last_index(&r->log);
		m.log_term = raft_log_last_term(&r->log);
		if (kind == CAMPAIGN_TRANSFER)
			m.flags |= RAFT_MSGF_TRANSFER;
		send_msg(r, &m);
	}
}

static void
hup(raft_node *r, bool transfer)
{
	if (r->role == RAFT_LEADER)
		return;
	if (transfer)
		campaign(r, CAMPAIGN_TRANSFER);
	else if (r->opt.pre_vote)
		campaign(r, CAMPAIGN_PRE);
	else
		campaign(r, CAMPAIGN_ELECTION);
}

static void
handle_vote_request(raft_node *r, const raft_message *m)
{
	raft_message resp;
	bool		can_vote;
	bool		up_to_date;
	uint8_t		rtype = (m->type == RAFT_MSG_VOTE) ?
		RAFT_MSG_VOTE_RESP : RAFT_MSG_PREVOTE_RESP;

	/*
	 * We can vote if we already voted for it (a repeated request), if we
	 * have not voted and know no leader in this term, or, for a PreVote,
	 * if the candidate's future term is beyond ours (a PreVote does not
	 * bind us to anything).
	 */
	can_vote = r->vote == m->from ||
		(r->vote == RAFT_NONE && r->leader == RAFT_NONE) ||
		(m->type == RAFT_MSG_PREVOTE && m->term > r->term);
#ifdef RAFT_BUG_VOTE_IGNORES_LOG
	up_to_date = true;
#else
	up_to_date = raft_log_is_up_to_date(&r->log, m->index, m->log_term);
#endif
	msg_init(r, &resp, rtype, m->from);
	if (can_vote && up_to_date)
	{
		/* A granted PreVote answers in the term the candidate asked for. */
		resp.term = m->term;
		if (m->type == RAFT_MSG_VOTE)
		{
			r->election_elapsed = 0;
			r->vote = m->from;
		}
		tracef(r, "grant %s to %llu for term %llu",
			   m->type == RAFT_MSG_VOTE ? "vote" : "pre-vote",
			   (unsigned long long) m->from, (unsigned long long) m->term);
	}
	else
		resp.flags |= RAFT_MSGF_REJECT;
	send_msg(r, &resp);
}

/* ---------------------------------------------------------------------
 * Log replication: leader side
 * ---------------------------------------------------------------------
 */
static void
send_snapshot(raft_node *r, raft_progress *pr)
{
	raft_message m;

	if (!pr->recent_active)
		return;					/* do not ship a snapshot into the void */
	msg_init(r, &m, RAFT_MSG_SNAPSHOT, pr->id);
	m.snapshot = r->snap;
	send_msg(r, &m);
	raft_progress_become_snapshot(pr, r->snap.index);
	tracef(r, "snapshot %llu to %llu", (unsigned long long) r->snap.index,
		   (unsigned long long) pr->id);
}

static bool
maybe_send_append(raft_node *r, raft_progress *pr, bool send_if_empty)
{
	raft_message m;
	raft_index	prev = pr->next - 1;
	raft_term	prev_term;
	raft_index	last = raft_log_last_index(&r->log);
	uint32_t	n = 0;
	uint64_t	bytes = 0;

	if (r->broken || pr->id == r->id || raft_progress_is_paused(pr))
		return false;
	if (!raft_log_term(&r->log, prev, &prev_term))
	{
		/* The entries it needs are gone (or next is bogus): snapshot. */
		if (prev < r->log.snap_index)
		{
			send_snapshot(r, pr);
			return true;
		}
		/* next beyond our log: should not happen; restart probing */
		raft_progress_become_probe(pr);
		pr->next = last + 1;
		prev = last;
		prev_term = raft_log_last_term(&r->log);
	}
	while (prev + 1 + n <= last && n < r->opt.max_msg_entries)
	{
		const raft_entry *e = raft_log_entry(&r->log, prev + 1 + n);

		if (n > 0 && bytes + e->len > r->opt.max_msg_bytes)
			break;
		bytes += e->len;
		n++;
	}
	if (n == 0 && !send_if_empty)
		return false;
	msg_init(r, &m, RAFT_MSG_APPEND, pr->id);
	m.index = prev;
	m.log_term = prev_term;
	m.commit = r->log.committed;
	m.n_entries = n;
	m.entries = n > 0 ? (raft_entry *) raft_log_entry(&r->log, prev + 1) : NULL;
	send_msg(r, &m);
	raft_progress_sent(pr, prev + n, n);
	return true;
}

static void
bcast_append(raft_node *r)
{
	uint32_t	i;

	for (i = 0; i < r->n_prs; i++)
		maybe_send_append(r, &r->prs[i], true);
}

static void
bcast_heartbeat(raft_node *r)
{
	uint32_t	i;

	for (i = 0; i < r->n_prs; i++)
	{
		raft_progress *pr = &r->prs[i];
		raft_message m;

		if (pr->id == r->id)
			continue;
		msg_init(r, &m, RAFT_MSG_HEARTBEAT, pr->id);
		/* never let a follower commit past what we know it has */
		m.commit = pr->match < r->log.committed ? pr->match : r->log.committed;
		send_msg(r, &m);
	}
}

static void
send_timeout_now(raft_node *r, raft_id to)
{
	raft_message m;

	msg_init(r, &m, RAFT_MSG_TIMEOUT_NOW, to);
	send_msg(r, &m);
	tracef(r, "TimeoutNow to %llu", (unsigned long long) to);
}

static int
cmp_desc(const void *a, const void *b)
{
	raft_index	x = *(const raft_index *) a;
	raft_index	y = *(const raft_index *) b;

	return x > y ? -1 : (x < y ? 1 : 0);
}

static void
commit_to(raft_node *r, raft_index c)
{
	if (c <= r->log.committed)
		return;
	if (c > raft_log_last_index(&r->log))
	{
		fail(r, RAFT_EFATAL, "commit index beyond the log");
		return;
	}
	r->log.committed = c;
}

/*
 * A leader that is not in the configuration it manages steps down once
 * that configuration is committed; it first nudges the most up-to-date
 * voter so the cluster does not have to wait for an election timeout.
 */
static void
maybe_step_down_removed(raft_node *r)
{
	uint32_t	i;
	raft_progress *best = NULL;

	if (r->role != RAFT_LEADER || promotable(r) ||
		r->conf_index > r->log.committed)
		return;
	for (i = 0; i < r->n_prs; i++)
		if (best == NULL || r->prs[i].match > best->match)
			best = &r->prs[i];
	if (best != NULL && best->match == raft_log_last_index(&r->log))
		send_timeout_now(r, best->id);
	tracef(r, "removed from the configuration: stepping down");
	become_follower(r, r->term, RAFT_NONE);
}

/* Advance the commit index to what a majority has; true if it moved. */
static bool
maybe_commit(raft_node *r)
{
	raft_index	m[RAFT_MAX_VOTERS];
	raft_index	mci;
	uint32_t	i;

	if (r->n_prs == 0)
		return false;
	for (i = 0; i < r->n_prs; i++)
		m[i] = (r->prs[i].id == r->id) ? r->log.stable : r->prs[i].match;
	qsort(m, r->n_prs, sizeof(raft_index), cmp_desc);
	mci = m[quorum_of(r->n_prs) - 1];
	if (mci <= r->log.committed)
		return false;
#ifndef RAFT_BUG_COMMIT_OLD_TERM

	/*
	 * Only entries of the leader's own term are committed by counting
	 * replicas; older ones are committed indirectly (Raft paper 5.4.2).
	 */
	if (term_at(r, mci) != r->term)
		return false;
#else
	if (term_at(r, mci) != r->term)
		tracef(r, "BUG: committing %llu of old term %llu by counting replicas",
			   (unsigned long long) mci, (unsigned long long) term_at(r, mci));
#endif
	commit_to(r, mci);
	return !r->broken;
}

/* After commit moved on a leader: tell everyone, and maybe leave. */
static void
leader_committed(raft_node *r)
{
	bcast_append(r);
	maybe_step_down_removed(r);
}

static void
leader_step(raft_node *r, const raft_message *m)
{
	raft_progress *pr = progress_of(r, m->from);
	raft_index	last = raft_log_last_index(&r->log);

	if (pr == NULL || pr->id == r->id)
		return;
	switch (m->type)
	{
		case RAFT_MSG_APPEND_RESP:
			pr->recent_active = true;
			pr->last_contact = r->ticks;
			pr->ever_contacted = true;
			if (m->flags & RAFT_MSGF_REJECT)
			{
				raft_index	probe = m->hint;

				/*
				 * The follower told us the last index where its log might
				 * match ours (hint, with its term); skip back to the last
				 * index of ours with a term no newer than that.
				 */
				if (m->log_term > 0)
					probe = raft_log_find_conflict_by_term(&r->log, m->hint,
														   m->log_term);
				if (raft_progress_maybe_decr_to(pr, m->index, probe))
				{
					if (pr->state == RAFT_PROGRESS_REPLICATE)
						raft_progress_become_probe(pr);
					maybe_send_append(r, pr, true);
				}
			}
			else
			{
				bool		was_paused = raft_progress_is_paused(pr);

				if (m->index > last)
					return;		/* cannot ack what we never had */
				if (raft_progress_maybe_update(pr, m->index))
				{
					if (pr->state == RAFT_PROGRESS_PROBE)
						raft_progress_become_replicate(pr);
					else if (pr->state == RAFT_PROGRESS_SNAPSHOT &&
							 pr->match >= pr->pending_snapshot)
					{
						raft_progress_become_probe(pr);
						raft_progress_become_replicate(pr);
					}
					else if (pr->state == RAFT_PROGRESS_REPLICATE)
						raft_inflights_free_le(&pr->ins, m->index);

					if (maybe_commit(r))
						leader_committed(r);
					else if (was_paused)
						maybe_send_append(r, pr, true);
					if (r->role != RAFT_LEADER)
						return;
					while (maybe_send_append(r, pr, false))
						;
					if (m->from == r->transferee &&
						pr->match == raft_log_last_index(&r->log))
						send_timeout_now(r, m->from);
				}
				else if (pr->state == RAFT_PROGRESS_SNAPSHOT &&
						 pr->match >= pr->pending_snapshot)
				{
					raft_progress_become_probe(pr);
					maybe_send_append(r, pr, true);
				}
			}
			break;

		case RAFT_MSG_HEARTBEAT_RESP:
			pr->recent_active = true;
			pr->last_contact = r->ticks;
			pr->ever_contacted = true;
			pr->probe_sent = false;
			if (pr->state == RAFT_PROGRESS_REPLICATE)
			{
				if (raft_inflights_full(&pr->ins))
					raft_inflights_free_first(&pr->ins);

				/*
				 * Nothing was acknowledged for a whole heartbeat round
				 * while entries are outstanding: an append was probably
				 * lost, and the follower will not tell us about the gap
				 * until we send again, so fall back to probing.
				 */
				if (pr->match < last && pr->ins.count > 0 &&
					pr->stall_ticks > 2 * r->opt.heartbeat_ticks)
				{
					raft_progress_become_probe(pr);
				}
			}
			if (pr->match < last)
				maybe_send_append(r, pr, true);
			break;

		default:
			break;
	}
}

/* ---------------------------------------------------------------------
 * Log replication: follower side
 * ---------------------------------------------------------------------
 */
static void
handle_append(raft_node *r, const raft_message *m)
{
	raft_message resp;

	msg_init(r, &resp, RAFT_MSG_APPEND_RESP, m->from);
	if (m->index < r->log.committed)
	{
		/* Old news: tell the leader how far we are committed. */
		resp.index = r->log.committed;
		send_msg(r, &resp);
		return;
	}
	if (raft_log_match_term(&r->log, m->index, m->log_term))
	{
		raft_index	last_new = m->index + m->n_entries;
		raft_index	ci = raft_log_find_conflict(&r->log, m->entries,
												m->n_entries);

		if (ci != 0)
		{
			uint32_t	k;
			bool		conf_touched = false;

			if (ci <= r->log.committed)
			{
				fail(r, RAFT_EFATAL, "leader conflicts with committed entry");
				return;
			}
			if (ci <= raft_log_last_index(&r->log))
			{
				tracef(r, "truncating log from %llu (last %llu)",
					   (unsigned long long) ci,
					   (unsigned long long) raft_log_last_index(&r->log));
				if (r->conf_index >= ci)
					conf_touched = true;
				raft_log_truncate(&r->log, ci);
			}
			for (k = (uint32_t) (ci - m->index - 1); k < m->n_entries; k++)
			{
				int			rc = raft_log_append(&r->log, &m->entries[k]);

				if (rc != RAFT_OK)
				{
					fail(r, rc, "appending entries");
					return;
				}
				if (m->entries[k].type == RAFT_ENTRY_CONFIG)
					conf_touched = true;
			}
			if (conf_touched)
				recompute_config(r);
			if (r->broken)
				return;
		}
		commit_to(r, m->commit < last_new ? m->commit : last_new);
		resp.index = last_new;
	}
	else
	{
		/*
		 * Reject, and say where our log might match: the last index (not
		 * beyond the probe point) whose term is no newer than the
		 * leader's term there, so the leader can skip a whole term of
		 * conflicting entries in one round trip.
		 */
		raft_index	hint = raft_log_find_conflict_by_term(&r->log, m->index,
														  m->log_term);

		resp.flags |= RAFT_MSGF_REJECT;
		resp.index = m->index;
		resp.hint = hint;
		resp.log_term = term_at(r, hint);
	}
	send_msg(r, &resp);
}

static void
handle_heartbeat(raft_node *r, const raft_message *m)
{
	raft_message resp;
	raft_index	c = m->commit;

	if (c > raft_log_last_index(&r->log))
		c = raft_log_last_index(&r->log);
	commit_to(r, c);
	msg_init(r, &resp, RAFT_MSG_HEARTBEAT_RESP, m->from);
	send_msg(r, &resp);
}

/* Install snap as our snapshot (copying its data). */
static bool
install_snapshot(raft_node *r, const raft_snapshot *s)
{
	uint8_t    *data = NULL;

	if (s->len > 0)
	{
		data = raft_mem_alloc(&r->opt.allocator, s->len);
		if (data == NULL)
		{
			fail(r, RAFT_ENOMEM, "copying snapshot");
			return false;
		}
		memcpy(data, s->data, s->len);
	}
	raft_mem_free(&r->opt.allocator, r->snap.data);
	r->snap = *s;
	r->snap.data = data;
	return true;
}

static void
handle_snapshot(raft_node *r, const raft_message *m)
{
	const raft_snapshot *s = &m->snapshot;
	raft_message resp;

	msg_init(r, &resp, RAFT_MSG_APPEND_RESP, m->from);
	if (s->index <= r->log.committed)
	{
		resp.index = r->log.committed;
		send_msg(r, &resp);
		return;
	}
	if (raft_log_match_term(&r->log, s->index, s->term))
	{
		/* We have the entries: just learn that they are committed. */
		commit_to(r, s->index);
		resp.index = r->log.committed;
		send_msg(r, &resp);
		return;
	}
	if (!install_snapshot(r, s))
		return;
	raft_log_reset(&r->log, s->index, s->term);
	r->log.committed = s->index;
	r->snap_pending = true;
	set_config(r, &s->config, 0);
	tracef(r, "installed snapshot %llu/t%llu from %llu",
		   (unsigned long long) s->index, (unsigned long long) s->term,
		   (unsigned long long) m->from);
	resp.index = s->index;
	send_msg(r, &resp);
}

/* ---------------------------------------------------------------------
 * Message dispatch
 * ---------------------------------------------------------------------
 */
static void
candidate_step(raft_node *r, const raft_message *m)
{
	uint32_t	g,
				rej;
	uint8_t		want = (r->role == RAFT_PRE_CANDIDATE) ?
		RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;

	switch (m->type)
	{
		case RAFT_MSG_APPEND:
			become_follower(r, m->term, m->from);
			handle_append(r, m);
			break;
		case RAFT_MSG_HEARTBEAT:
			become_follower(r, m->term, m->from);
			handle_heartbeat(r, m);
			break;
		case RAFT_MSG_SNAPSHOT:
			become_follower(r, m->term, m->from);
			handle_snapshot(r, m);
			break;
		case RAFT_MSG_VOTE_RESP:
		case RAFT_MSG_PREVOTE_RESP:
			if (m->type != want)
				break;
			poll(r, m->from, (m->flags & RAFT_MSGF_REJECT) == 0, &g, &rej);
			if (g >= quorum_of(r->conf.n))
			{
				if (r->role == RAFT_PRE_CANDIDATE)
					campaign(r, CAMPAIGN_ELECTION);
				else
				{
					become_leader(r);
					bcast_append(r);
				}
			}
			else if (rej >= quorum_of(r->conf.n))
			{
				/* lost: back to follower, wait for the next timeout */
				become_follower(r, r->term, RAFT_NONE);
			}
			break;
		default:
			break;
	}
}

static void
follower_step(raft_node *r, const raft_message *m)
{
	switch (m->type)
	{
		case RAFT_MSG_APPEND:
			r->election_elapsed = 0;
			r->leader = m->from;
			handle_append(r, m);
			break;
		case RAFT_MSG_HEARTBEAT:
			r->election_elapsed = 0;
			r->leader = m->from;
			handle_heartbeat(r, m);
			break;
		case RAFT_MSG_SNAPSHOT:
			r->election_elapsed = 0;
			r->leader = m->from;
			handle_snapshot(r, m);
			break;
		case RAFT_MSG_TIMEOUT_NOW:
			tracef(r, "TimeoutNow from %llu: campaigning",
				   (unsigned long long) m->from);
			hup(r, true);
			break;
		default:
			break;
	}
}

static void
step_message(raft_node *r, const raft_message *m)
{
	if (m->term > r->term)
	{
		if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE)
		{
			bool		force = (m->flags & RAFT_MSGF_TRANSFER) != 0;
			bool		in_lease = r->opt.check_quorum &&
				r->leader != RAFT_NONE &&
				r->election_elapsed < r->opt.election_ticks;

			/*
			 * We heard from a live leader within the minimum election
			 * timeout: this candidate cannot have a good reason, so do
			 * not even let it raise our term (this is what stops a
			 * removed or partitioned node from disrupting the cluster).
			 */
			if (!force && in_lease)
			{
				tracef(r, "ignoring %s from %llu at term %llu: leader lease",
					   raft_msg_type_name(m->type),
					   (unsigned long long) m->from,
					   (unsigned long long) m->term);
				return;
			}
		}
		if (m->type == RAFT_MSG_PREVOTE)
		{
			/* a PreVote never changes our term */
		}
		else if (m->type == RAFT_MSG_PREVOTE_RESP &&
				 (m->flags & RAFT_MSGF_REJECT) == 0)
		{
			/* a granted PreVote carries the future term: keep ours */
		}
		else if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
				 m->type == RAFT_MSG_SNAPSHOT)
			become_follower(r, m->term, m->from);
		else
		{
			/*
			 * A higher term from a non-leader: follow the term, but keep
			 * the election timer running, as the paper says (only a live
			 * leader or a granted vote resets it).  Resetting it here lets
			 * a candidate with a stale log, which can never win, keep the
			 * up-to-date nodes from ever timing out (seen in the simulator
			 * without PreVote).
			 */
			int			elapsed = r->election_elapsed;

			become_follower(r, m->term, RAFT_NONE);
			r->election_elapsed = elapsed;
		}
	}
	else if (m->term < r->term)
	{
		if ((r->opt.check_quorum || r->opt.pre_vote) &&
			(m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT))
		{
			/*
			 * A stale leader.  Answer with our term so it steps down:
			 * with PreVote our term can be ahead of the leader's without
			 * us ever having disrupted it, and without this answer it
			 * would never learn.
			 */
			raft_message resp;

			msg_init(r, &resp, RAFT_MSG_APPEND_RESP, m->from);
			send_msg(r, &resp);
		}
		else if (m->type == RAFT_MSG_PREVOTE)
		{
			raft_message resp;

			msg_init(r, &resp, RAFT_MSG_PREVOTE_RESP, m->from);
			resp.flags |= RAFT_MSGF_REJECT;
			send_msg(r, &resp);
		}
		return;
	}
	if (r->broken)
		return;

	if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE)
	{
		handle_vote_request(r, m);
		return;
	}
	switch (r->role)
	{
		case RAFT_LEADER:
			leader_step(r, m);
			break;
		case RAFT_CANDIDATE:
		case RAFT_PRE_CANDIDATE:
			candidate_step(r, m);
			break;
		case RAFT_FOLLOWER:
			follower_step(r, m);
			break;
	}
}

/* ---------------------------------------------------------------------
 * Public API: lifecycle
 * ---------------------------------------------------------------------
 */
void
raft_options_init(raft_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->election_ticks = 10;
	opt->heartbeat_ticks = 1;
	opt->pre_vote = true;
	opt->check_quorum = true;
	opt->max_inflight = 64;
	opt->max_msg_entries = 64;
	opt->max_msg_bytes = 1024 * 1024;
}

raft_node *
raft_new(const raft_options *opt, int *err)
{
	raft_node  *r;

	if (err)
		*err = RAFT_EINVAL;
	if (opt == NULL || opt->id == RAFT_NONE || opt->rand == NULL ||
		opt->election_ticks < 1 || opt->heartbeat_ticks < 1 ||
		opt->heartbeat_ticks >= opt->election_ticks ||
		opt->max_inflight < 1 || opt->max_msg_entries < 1)
		return NULL;
	r = raft_mem_alloc(&opt->allocator, sizeof(raft_node));
	if (r == NULL)
	{
		if (err)
			*err = RAFT_ENOMEM;
		return NULL;
	}
	memset(r, 0, sizeof(*r));
	r->opt = *opt;
	r->id = opt->id;
	raft_log_init(&r->log, &r->opt.allocator);
	r->role = RAFT_FOLLOWER;
	reset_randomized_timeout(r);
	if (err)
		*err = RAFT_OK;
	return r;
}

void
raft_free(raft_node *r)
{
	uint32_t	i;
	raft_allocator a;

	if (r == NULL)
		return;
	a = r->opt.allocator;
	free_outbox(r, r->n_msgs);
	raft_mem_free(&a, r->msgs);
	for (i = 0; i < r->n_prs; i++)
		raft_progress_free(&r->prs[i], &a);
	raft_log_free(&r->log);
	raft_mem_free(&a, r->snap.data);
	raft_mem_free(&a, r);
}

int
raft_bootstrap(raft_node *r, const raft_config *config)
{
	uint32_t	i,
				j;
	uint8_t		buf[5 + 8 * RAFT_MAX_VOTERS];

	if (r->broken)
		return r->err;
	if (r->started || config == NULL || config->n < 1 ||
		config->n > RAFT_MAX_VOTERS)
		return RAFT_EINVAL;
	for (i = 0; i < config->n; i++)
	{
		if (config->voters[i] == RAFT_NONE)
			return RAFT_EINVAL;
		for (j = 0; j < i; j++)
			if (config->voters[i] == config->voters[j])
				return RAFT_EINVAL;
	}
	r->started = true;

	/*
	 * The initial configuration is entry 1 of term 1, committed by fiat:
	 * every founding member writes the same entry, so the logs agree, and
	 * a node that joins later receives it like any other entry (it has
	 * no other way to learn the configuration in force before the first
	 * change).
	 */
	r->term = 1;
	raft_config_encode(config, buf);
	append_local(r, RAFT_ENTRY_CONFIG, buf, raft_config_encoded_size(config));
	if (r->broken)
		return r->err;
	r->log.committed = 1;
	set_config(r, config, 1);
	become_follower(r, r->term, RAFT_NONE);
	return r->broken ? r->err : RAFT_OK;
}

int
raft_restore(raft_node *r, const raft_hard_state *hs,
			 const raft_snapshot *snap,
			 const raft_entry *entries, size_t n_entries,
			 raft_index applied)
{
	size_t		k;
	raft_index	last;
	raft_term	prev_term;

	if (r->broken)
		return r->err;
	if (r->started || hs == NULL || (n_entries > 0 && entries == NULL))
		return RAFT_EINVAL;
	r->started = true;
	if (snap != NULL)
	{
		if (!install_snapshot(r, snap))
			return r->err;
		raft_log_reset(&r->log, snap->index, snap->term);
	}
	prev_term = r->log.snap_term;
	for (k = 0; k < n_entries; k++)
	{
		const raft_entry *e = &entries[k];
		int			rc;

		if (e->index <= r->log.snap_index)
			continue;			/* already covered by the snapshot */
		if (e->index != raft_log_last_index(&r->log) + 1 ||
			e->term < prev_term || e->term == 0 ||
			e->type < RAFT_ENTRY_NORMAL || e->type > RAFT_ENTRY_CONFIG)
		{
			fail(r, RAFT_EINVAL, "restored entries are not a valid log");
			return RAFT_EINVAL;
		}
		prev_term = e->term;
		rc = raft_log_append(&r->log, e);
		if (rc != RAFT_OK)
		{
			fail(r, rc, "restoring entries");
			return rc;
		}
	}
	last = raft_log_last_index(&r->log);
	r->log.stable = last;

	/*
	 * If the host wrote entries but crashed before the hard state, our
	 * log can hold entries of a term newer than the stored term; we must
	 * have been in that term, and had not voted in it durably.
	 */
	r->term = hs->term;
	r->vote = hs->vote;
	if (raft_log_last_term(&r->log) > r->term)
	{
		r->term = raft_log_last_term(&r->log);
		r->vote = RAFT_NONE;
	}
	r->log.committed = hs->commit;
	if (r->log.committed < applied)
		r->log.committed = applied;
	if (r->log.committed < r->log.snap_index)
		r->log.committed = r->log.snap_index;
	if (r->log.committed > last)
		r->log.committed = last;
	r->log.applied = applied;
	if (r->log.applied < r->log.snap_index)
		r->log.applied = r->log.snap_index;
	if (r->log.applied > r->log.committed)
		r->log.applied = r->log.committed;
	r->prev_hs.term = r->term;
	r->prev_hs.vote = r->vote;
	r->prev_hs.commit = r->log.committed;
	recompute_config(r);
	become_follower(r, r->term, RAFT_NONE);
	return r->broken ? r->err : RAFT_OK;
}

/* ---------------------------------------------------------------------
 * Public API: inputs
 * ---------------------------------------------------------------------
 */
static int
check_callable(raft_node *r)
{
	if (r->broken)
		return r->err;
	if (r->in_ready)
		return RAFT_EINVAL;		/* raft_advance() first */
	r->started = true;
	return RAFT_OK;
}

int
raft_tick(raft_node *r)
{
	int			rc;
	uint32_t	i;

	if ((rc = check_callable(r)) != RAFT_OK)
		return rc;
	r->ticks++;
	if (r->role != RAFT_LEADER)
	{
		r->election_elapsed++;
		if (can_campaign(r) && r->election_elapsed >= r->randomized_timeout)
		{
			r->election_elapsed = 0;
			hup(r, false);
		}
		return r->broken ? r->err : RAFT_OK;
	}

	r->heartbeat_elapsed++;
	r->election_elapsed++;
	for (i = 0; i < r->n_prs; i++)
	{
		raft_progress *pr = &r->prs[i];

		/*
		 * stall_ticks feeds the lost-append detection of REPLICATE (see
		 * the heartbeat response); in SNAPSHOT state a lost snapshot is
		 * retried after one election timeout.
		 */
		pr->stall_ticks++;
		if (pr->state == RAFT_PROGRESS_SNAPSHOT &&
			++pr->snapshot_ticks >= r->opt.election_ticks)
			raft_progress_become_probe(pr);
	}
	if (r->election_elapsed >= r->opt.election_ticks)
	{
		r->election_elapsed = 0;
		if (r->opt.check_quorum)
		{
			uint32_t	active = 0;

			for (i = 0; i < r->n_prs; i++)
			{
				if (r->prs[i].id == r->id || r->prs[i].recent_active)
					active++;
				if (r->prs[i].id != r->id)
					r->prs[i].recent_active = false;
			}
			if (active < quorum_of(r->conf.n))
			{
				tracef(r, "CheckQuorum: only %u of %u active, stepping down",
					   active, r->conf.n);
				become_follower(r, r->term, RAFT_NONE);
				return r->broken ? r->err : RAFT_OK;
			}
		}
		if (r->transferee != RAFT_NONE)
		{
			tracef(r, "leadership transfer to %llu timed out",
				   (unsigned long long) r->transferee);
			r->transferee = RAFT_NONE;
		}
	}
	if (r->heartbeat_elapsed >= r->opt.heartbeat_ticks)
	{
		r->heartbeat_elapsed = 0;
		bcast_heartbeat(r);
	}
	return r->broken ? r->err : RAFT_OK;
}

int
raft_step(raft_node *r, const uint8_t *buf, size_t len)
{
	raft_message m;
	int			rc;

	if ((rc = check_callable(r)) != RAFT_OK)
		return rc;
	rc = raft_msg_decode(buf, len, &m, &r->opt.allocator);
	if (rc == RAFT_ENOMEM)
	{
		fail(r, rc, "decoding message");
		return rc;
	}
	if (rc != RAFT_OK)
		return rc;				/* garbage is ignored, state untouched */
	if (m.to != r->id)
	{
		raft_msg_free_decoded(&m, &r->opt.allocator);
		return RAFT_EINVAL;
	}
	step_message(r, &m);
	raft_msg_free_decoded(&m, &r->opt.allocator);
	return r->broken ? r->err : RAFT_OK;
}

int
raft_propose(raft_node *r, const void *data, uint32_t len,
			 raft_index *index, raft_term *term)
{
	int			rc;

	if ((rc = check_callable(r)) != RAFT_OK)
		return rc;
	if (len > RAFT_WIRE_MAX_DATA || (len > 0 && data == NULL))
		return RAFT_EINVAL;
	if (r->role != RAFT_LEADER || !promotable(r))
		return RAFT_ENOTLEADER;
	if (r->transferee != RAFT_NONE)
		return RAFT_EBUSY;
	append_local(r, RAFT_ENTRY_NORMAL, data, len);
	if (r->broken)
		return r->err;
	if (index)
		*index = raft_log_last_index(&r->log);
	if (term)
		*term = r->term;
	bcast_append(r);
	return r->broken ? r->err : RAFT_OK;
}

int
raft_propose_config(raft_node *r, raft_config_op op, raft_id id,
					raft_index *index)
{
	raft_config c;
	uint8_t		buf[5 + 8 * RAFT_MAX_VOTERS];
	uint32_t	i,
				k;
	int			rc;

	if ((rc = check_callable(r)) != RAFT_OK)
		return rc;
	if (id == RAFT_NONE)
		return RAFT_EINVAL;
	if (r->role != RAFT_LEADER || !promotable(r))
		return RAFT_ENOTLEADER;
	if (r->transferee != RAFT_NONE ||
		r->pending_conf_index > r->log.committed)
		return RAFT_EBUSY;
	c = r->conf;
	if (op == RAFT_CONFIG_ADD)
	{
		if (raft_config_has(&c, id) || c.n >= RAFT_MAX_VOTERS)
			return RAFT_EINVAL;
		c.voters[c.n++] = id;
	}
	else if (op == RAFT_CONFIG_REMOVE)
	{
		if (!raft_config_has(&c, id) || c.n <= 1)
			return RAFT_EINVAL;
		for (i = 0, k = 0; i < c.n; i++)
			if (c.voters[i] != id)
				c.voters[k++] = c.voters[i];
		c.voters[k] = RAFT_NONE;
		c.n = k;
	}
	else
		return RAFT_EINVAL;

	raft_config_encode(&c, buf);
	append_local(r, RAFT_ENTRY_CONFIG, buf, raft_config_encoded_size(&c));
	if (r->broken)
		return r->err;
	r->pending_conf_index = raft_log_last_index(&r->log);
	if (index)
		*index = r->pending_conf_index;
	/* effective as soon as appended */
	set_config(r, &c, r->pending_conf_index);
	if (r->broken)
		return r->err;
	tracef(r, "proposed config %s %llu at %llu",
		   op == RAFT_CONFIG_ADD ? "add" : "remove",
		   (unsigned long long) id,
		   (unsigned long long) r->pending_conf_index);
	/* a smaller quorum may already cover older entries */
	if (maybe_commit(r))
		leader_committed(r);
	if (r->role == RAFT_LEADER)
		bcast_append(r);
	return r->broken ? r->err : RAFT_OK;
}

int
raft_transfer_leadership(raft_node *r, raft_id to)
{
	raft_progress *pr;
	int			rc;

	if ((rc = check_callable(r)) != RAFT_OK)
		return rc;
	if (r->role != RAFT_LEADER)
		return RAFT_ENOTLEADER;
	if (to == r->id)
		return RAFT_OK;
	pr = progress_of(r, to);
	if (pr == NULL)
		return RAFT_EINVAL;
	if (r->transferee == to)
		return RAFT_OK;
	r->transferee = to;
	/* give the transfer one election timeout to finish */
	r->election_elapsed = 0;
	tracef(r, "transferring leadership to %llu", (unsigned long long) to);
	if (pr->match == raft_log_last_index(&r->log))
		send_timeout_now(r, to);
	else
		maybe_send_append(r, pr, true);
	return r->broken ? r->err : RAFT_OK;
}

int
raft_campaign(raft_node *r)
{
	int			rc;

	if ((rc = check_callable(r)) != RAFT_OK)
		return rc;
	if (!can_campaign(r))
		return RAFT_EINVAL;
	hup(r, false);
	return r->broken ? r->err : RAFT_OK;
}

int
raft_compact(raft_node *r, raft_index index, const void *data, uint32_t len,
			 raft_snapshot *meta)
{
	raft_snapshot s;
	raft_index	cidx;
	int			rc;

	if ((rc = check_callable(r)) != RAFT_OK)
		return rc;
	if (len > 0 && data == NULL)
		return RAFT_EINVAL;
	if (index <= r->log.snap_index)
		return RAFT_ECOMPACTED;
	if (index > r->log.applied)
		return RAFT_EINVAL;
	memset(&s, 0, sizeof(s));
	s.index = index;
	s.term = term_at(r, index);
	if (config_at(r, index, &s.config, &cidx) != RAFT_OK)
	{
		fail(r, RAFT_EFATAL, "undecodable configuration entry in log");
		return r->err;
	}
	if (s.config.n == 0)
		return RAFT_EINVAL;		/* a joining node that knows nothing yet */
	s.len = len;
	s.data = (uint8_t *) data;
	if (!install_snapshot(r, &s))
		return r->err;
	raft_log_compact(&r->log, index, s.term);
	if (meta)
		*meta = r->snap;
	tracef(r, "compacted log up to %llu/t%llu", (unsigned long long) index,
		   (unsigned long long) s.term);
	return RAFT_OK;
}

/* ---------------------------------------------------------------------
 * Public API: Ready / Advance
 * ---------------------------------------------------------------------
 */
static raft_index
apply_limit(const raft_node *r)
{
	raft_index	c = r->log.committed;
	raft_index	last = raft_log_last_index(&r->log);

	return c < last ? c : last;
}

bool
raft_has_ready(const raft_node *r)
{
	if (r->broken || r->in_ready)
		return false;
	if (r->snap_pending || r->n_msgs > 0)
		return true;
	if (raft_log_last_index(&r->log) > r->log.stable)
		return true;
	if (r->term != r->prev_hs.term || r->vote != r->prev_hs.vote ||
		r->log.committed != r->prev_hs.commit)
		return true;
	return apply_limit(r) > r->log.applied;
}

int
raft_ready_get(raft_node *r, raft_ready *rd)
{
	raft_index	last = raft_log_last_index(&r->log);
	raft_index	lo;

	memset(rd, 0, sizeof(*rd));
	if (r->broken)
		return r->err;
	if (r->in_ready)
		return RAFT_EINVAL;
	r->in_ready = true;

	r->rd_snapshot = r->snap_pending;
	if (r->snap_pending)
		rd->snapshot = &r->snap;

	r->rd_stable_to = 0;
	if (last > r->log.stable)
	{
		rd->entries = raft_log_entry(&r->log, r->log.stable + 1);
		rd->n_entries = (size_t) (last - r->log.stable);
		r->rd_stable_to = last;
	}

	rd->hard_state.term = r->term;
	rd->hard_state.vote = r->vote;
	rd->hard_state.commit = r->log.committed;
	rd->has_hard_state = memcmp(&rd->hard_state, &r->prev_hs,
								sizeof(raft_hard_state)) != 0;
	r->rd_hs = rd->hard_state;

	rd->messages = r->msgs;
	rd->n_messages = r->n_msgs;
	r->rd_n_msgs = r->n_msgs;

	/*
	 * Committed entries, once any snapshot has been restored; none of
	 * them can be below the snapshot.
	 */
	r->rd_applied_to = 0;
	if (!r->snap_pending)
	{
		lo = r->log.applied > r->log.snap_index ?
			r->log.applied : r->log.snap_index;
		if (apply_limit(r) > lo)
		{
			rd->committed = raft_log_entry(&r->log, lo + 1);
			rd->n_committed = (size_t) (apply_limit(r) - lo);
			r->rd_applied_to = apply_limit(r);
		}
	}
	return RAFT_OK;
}

int
raft_advance(raft_node *r, const raft_ready *rd)
{
	raft_progress *self;

	(void) rd;					/* we remember what we handed out */
	if (r->broken)
		return r->err;
	if (!r->in_ready)
		return RAFT_EINVAL;
	r->in_ready = false;

	if (r->rd_snapshot)
	{
		r->snap_pending = false;
		if (r->log.applied < r->snap.index)
			r->log.applied = r->snap.index;
	}
	if (r->rd_stable_to > r->log.stable)
		r->log.stable = r->rd_stable_to;
	if (r->rd_applied_to > r->log.applied)
		r->log.applied = r->rd_applied_to;
	r->prev_hs = r->rd_hs;
	free_outbox(r, r->rd_n_msgs);

	/* A candidate's own vote is now durable: count it. */
	if (r->role == RAFT_CANDIDATE && r->self_vote_pending &&
		r->prev_hs.term == r->term && r->prev_hs.vote == r->id)
	{
		uint32_t	g,
					rej;

		r->self_vote_pending = false;
		poll(r, r->id, true, &g, &rej);
		if (g >= quorum_of(r->conf.n))
		{
			become_leader(r);
			bcast_append(r);
		}
	}

	/* Our own entries count towards a majority once they are durable. */
	if (r->role == RAFT_LEADER)
	{
		self = progress_of(r, r->id);
		if (self != NULL)
			raft_progress_maybe_update(self, r->log.stable);
		if (maybe_commit(r))
			leader_committed(r);
	}
	return r->broken ? r->err : RAFT_OK;
}

/* ---------------------------------------------------------------------
 * Public API: inspection
 * ---------------------------------------------------------------------
 */
void
raft_get_status(const raft_node *r, raft_status *st)
{
	uint32_t	i;

	memset(st, 0, sizeof(*st));
	st->id = r->id;
	st->role = r->role;
	st->term = r->term;
	st->vote = r->vote;
	st->leader = r->leader;
	st->commit = r->log.committed;
	st->applied = r->log.applied;
	st->first_index = raft_log_first_index(&r->log);
	st->last_index = raft_log_last_index(&r->log);
	st->last_term = raft_log_last_term(&r->log);
	st->snapshot_index = r->log.snap_index;
	st->config = r->conf;
	st->config_index = r->conf_index;
	st->transferee = r->transferee;
	st->ticks = r->ticks;
	st->election_elapsed = r->election_elapsed;
	st->election_timeout = r->randomized_timeout;
	if (r->role != RAFT_LEADER)
		return;
	st->n_peers = r->n_prs;
	for (i = 0; i < r->n_prs; i++)
	{
		const raft_progress *pr = &r->prs[i];
		raft_peer_status *ps = &st->peers[i];

		ps->id = pr->id;
		ps->match = pr->id == r->id ? r->log.stable : pr->match;
		ps->next = pr->next;
		ps->state = pr->state;
		if (pr->id == r->id)
			ps->last_contact = 0;
		else if (!pr->ever_contacted)
			ps->last_contact = UINT64_MAX;
		else
			ps->last_contact = r->ticks - pr->last_contact;
	}
}

raft_role
raft_get_role(const raft_node *r)
{
	return r->role;
}

raft_term
raft_get_term(const raft_node *r)
{
	return r->term;
}

raft_id
raft_get_leader(const raft_node *r)
{
	return r->leader;
}

raft_index
raft_get_commit(const raft_node *r)
{
	return r->log.committed;
}

raft_index
raft_get_applied(const raft_node *r)
{
	return r->log.applied;
}

raft_index
raft_get_last_index(const raft_node *r)
{
	return raft_log_last_index(&r->log);
}

const raft_snapshot *
raft_get_snapshot(const raft_node *r)
{
	return &r->snap;
}

const raft_entry *
raft_get_entry(const raft_node *r, raft_index index)
{
	return raft_log_entry(&r->log, index);
}

bool
raft_get_term_at(const raft_node *r, raft_index index, raft_term *term)
{
	return raft_log_term(&r->log, index, term);
}
