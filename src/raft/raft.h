/*-------------------------------------------------------------------------
 *
 * raft.h
 *	  Public API of the distx Raft core.
 *
 * The core is a pure, deterministic state machine in plain C99: it does no
 * I/O, reads no clock, draws no randomness of its own and includes no
 * PostgreSQL header.  The host (the distx background worker, or the test
 * simulator under test/raft/) drives it with these inputs:
 *
 *	raft_tick()        one unit of logical time passed
 *	raft_step()        an encoded message arrived from a peer
 *	raft_propose()     a client wants an entry replicated (leader only);
 *	raft_propose_config() / raft_transfer_leadership() likewise
 *	raft_advance()     the storage acknowledgement: "everything in the
 *	                   last Ready is durable (entries up to the last one
 *	                   handed out, hard state, snapshot), its messages are
 *	                   sent and its committed entries applied".  A leader
 *	                   counts its own entries towards a majority only from
 *	                   here on.
 *	raft_compact()     the state machine made a snapshot; drop the log
 *	raft_bootstrap() / raft_restore()  initial or persisted state
 *
 * and collects the output with raft_has_ready() / raft_ready_get():
 *
 *	raft_ready rd;
 *	while (raft_has_ready(r))
 *	{
 *		raft_ready_get(r, &rd);
 *		1. if rd.snapshot: persist it, replacing the whole stored log, and
 *		   restore the state machine from rd.snapshot->data;
 *		2. persist rd.entries: first drop stored entries with index >=
 *		   rd.entries[0].index, then append them;
 *		3. if rd.has_hard_state: persist rd.hard_state;
 *		   (1-3 must be durable, e.g. fsync'ed, before step 4; ideally
 *		   in one atomic write, but entries first and hard state after
 *		   is also safe: raft_restore() copes with a crash in between)
 *		4. send rd.messages[i].buf to rd.messages[i].to (best effort: a
 *		   lost message is fine, Raft retries);
 *		5. apply rd.committed in order;
 *		6. raft_advance(r, &rd);
 *	}
 *
 * Between raft_ready_get() and raft_advance() the host must not call any
 * other function of the same node (they return RAFT_EINVAL): the pointers
 * in the Ready, message buffers included, point into the node's memory
 * and stay valid exactly until raft_advance().  Committed entries may be
 * among rd.entries of the same Ready; step 2 comes first, so they are
 * durable before they are applied.
 *
 * Timing and randomness come from the host: raft_tick() is the only
 * clock (the host picks the period; 100 ms suits the defaults) and
 * raft_options.rand the only source of randomness, so the same inputs
 * always give the same outputs.
 *
 * Errors: RAFT_EDECODE from raft_step() means the message was malformed and
 * was ignored; the node is fine.  RAFT_ENOMEM or RAFT_EFATAL from any call
 * means the node can no longer be trusted in memory: the host must
 * raft_free() it and build a new one with raft_restore() from what it has
 * persisted.  Restarting from durable state is always safe in Raft, so this
 * is the one recovery path for everything unexpected.
 *
 * Copyright (c) distx authors
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_RAFT_H
#define DISTX_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_id;		/* node id; 0 (RAFT_NONE) means nobody */
typedef uint64_t raft_term;
typedef uint64_t raft_index;

#define RAFT_NONE			((raft_id) 0)

/* Largest cluster configuration the core accepts. */
#define RAFT_MAX_VOTERS		16

/* Return codes (0 or negative). */
#define RAFT_OK				0
#define RAFT_ENOTLEADER		(-1)	/* only the leader can do that */
#define RAFT_ENOMEM			(-2)	/* allocation failed; node is broken */
#define RAFT_EINVAL			(-3)	/* bad argument */
#define RAFT_EBUSY			(-4)	/* config change or transfer pending */
#define RAFT_EDECODE		(-5)	/* malformed message, ignored */
#define RAFT_ECOMPACTED		(-6)	/* index already compacted */
#define RAFT_EFATAL			(-7)	/* invariant broken; node is broken */

extern const char *raft_strerror(int rc);

/* Entry types: the host only ever sees NORMAL entries' data as its own. */
typedef enum raft_entry_type
{
	RAFT_ENTRY_NORMAL = 1,		/* host data */
	RAFT_ENTRY_NOOP = 2,		/* appended by each new leader */
	RAFT_ENTRY_CONFIG = 3		/* data = raft_config_encode() output */
} raft_entry_type;

typedef struct raft_entry
{
	raft_term	term;
	raft_index	index;
	uint8_t		type;			/* raft_entry_type */
	uint32_t	len;
	uint8_t    *data;			/* len bytes, owned by whoever made it */
} raft_entry;

/* A cluster configuration: the set of voting members. */
typedef struct raft_config
{
	uint32_t	n;
	raft_id		voters[RAFT_MAX_VOTERS];
} raft_config;

/* What must be durable before messages go out. */
typedef struct raft_hard_state
{
	raft_term	term;
	raft_id		vote;
	raft_index	commit;
} raft_hard_state;

/*
 * A snapshot: the state machine's state after applying every entry up to
 * and including index, plus the configuration in force at that index.
 * data is opaque to the core (made by the host's state machine).
 */
typedef struct raft_snapshot
{
	raft_index	index;
	raft_term	term;
	raft_config config;
	uint32_t	len;
	uint8_t    *data;
} raft_snapshot;

typedef enum raft_role
{
	RAFT_FOLLOWER = 0,
	RAFT_PRE_CANDIDATE = 1,
	RAFT_CANDIDATE = 2,
	RAFT_LEADER = 3
} raft_role;

extern const char *raft_role_name(raft_role role);

/* Optional allocator; all three NULL means malloc/realloc/free. */
typedef struct raft_allocator
{
	void	   *(*alloc) (void *ctx, size_t size);
	void	   *(*realloc) (void *ctx, void *ptr, size_t size);
	void		(*free) (void *ctx, void *ptr);
	void	   *ctx;
} raft_allocator;

typedef struct raft_options
{
	raft_id		id;				/* this node, != RAFT_NONE */

	/*
	 * Timing, in ticks.  A follower that hears nothing from a leader for a
	 * random time in [election_ticks, 2 * election_ticks) starts an
	 * election; a leader sends heartbeats every heartbeat_ticks.  With a
	 * 100 ms tick the defaults give 1-2 s election timeouts.
	 */
	int			election_ticks; /* default 10 */
	int			heartbeat_ticks;	/* default 1 */

	bool		pre_vote;		/* default true */
	bool		check_quorum;	/* default true */

	uint32_t	max_inflight;	/* append messages in flight per peer, 64 */
	uint32_t	max_msg_entries;	/* entries per append message, 64 */
	uint32_t	max_msg_bytes;	/* entry bytes per append (soft), 1 MiB */

	/* Randomness: must be set.  Returns a uniformly random 64-bit value. */
	uint64_t	(*rand) (void *ctx);
	void	   *rand_ctx;

	/* Optional one-line trace of state changes, for debugging. */
	void		(*trace) (void *ctx, raft_id id, const char *line);
	void	   *trace_ctx;

	raft_allocator allocator;
} raft_options;

/* One message to send: the encoded bytes (see raft_codec.h). */
typedef struct raft_outmsg
{
	raft_id		to;
	uint8_t		type;			/* RAFT_MSG_*, for the host's information */
	uint32_t	len;
	uint8_t    *buf;
} raft_outmsg;

typedef struct raft_ready
{
	/* Snapshot received from the leader: persist and restore it.  */
	const raft_snapshot *snapshot;

	/* Entries to persist (may overwrite stored entries, see above). */
	const raft_entry *entries;
	size_t		n_entries;

	bool		has_hard_state;
	raft_hard_state hard_state;

	/* Send after 1-3 are durable. */
	const raft_outmsg *messages;
	size_t		n_messages;

	/* Committed entries to apply, in order (all types: skip non-NORMAL). */
	const raft_entry *committed;
	size_t		n_committed;
} raft_ready;

/* Per-peer replication state, for the status view. */
typedef enum raft_progress_state
{
	RAFT_PROGRESS_PROBE = 0,	/* finding where the follower's log matches */
	RAFT_PROGRESS_REPLICATE = 1,	/* streaming entries */
	RAFT_PROGRESS_SNAPSHOT = 2	/* waiting for a snapshot to be installed */
} raft_progress_state;

extern const char *raft_progress_state_name(raft_progress_state s);

typedef struct raft_peer_status
{
	raft_id		id;
	raft_index	match;
	raft_index	next;
	raft_progress_state state;
	uint64_t	last_contact;	/* ticks since we last heard from the peer
								 * (leader only; UINT64_MAX: never) */
} raft_peer_status;

typedef struct raft_status
{
	raft_id		id;
	raft_role	role;
	raft_term	term;
	raft_id		vote;
	raft_id		leader;			/* as far as this node knows */
	raft_index	commit;
	raft_index	applied;
	raft_index	first_index;	/* first entry still in the log */
	raft_index	last_index;
	raft_term	last_term;
	raft_index	snapshot_index;
	raft_config config;
	raft_index	config_index;	/* entry that made config (0: snapshot) */
	raft_id		transferee;		/* leadership transfer target, or NONE */
	uint64_t	ticks;			/* ticks seen since creation */
	int			election_elapsed;	/* ticks since the election timer was
									 * reset (follower: since it last heard
									 * from the leader) */
	int			election_timeout;	/* current randomized timeout, ticks */
	uint32_t	n_peers;		/* leader only: one per voter, self included */
	raft_peer_status peers[RAFT_MAX_VOTERS];
} raft_status;

typedef struct raft_node raft_node;

/* --- lifecycle --- */
extern void raft_options_init(raft_options *opt);
extern raft_node *raft_new(const raft_options *opt, int *err);
extern void raft_free(raft_node *r);

/*
 * A founding member of a brand-new cluster: every founding member must be
 * bootstrapped with the same configuration.  The configuration becomes
 * entry 1 (term 1, type CONFIG, already committed); the first Ready
 * carries it to be persisted and applied like any entry.  A node that
 * will join an existing cluster calls neither this nor raft_restore(): it
 * starts empty, is added with raft_propose_config() on the leader, and
 * learns everything (entry 1 included, or a snapshot) from the leader.
 */
extern int	raft_bootstrap(raft_node *r, const raft_config *config);

/*
 * Restart from persisted state: hard state, the latest snapshot (NULL if
 * none) and the stored entries after it (entries at or below the snapshot
 * index are skipped), and the index the host's state machine has applied
 * (committed entries above it will be delivered again).
 */
extern int	raft_restore(raft_node *r, const raft_hard_state *hs,
						 const raft_snapshot *snap,
						 const raft_entry *entries, size_t n_entries,
						 raft_index applied);

/* --- inputs --- */
extern int	raft_tick(raft_node *r);
extern int	raft_step(raft_node *r, const uint8_t *buf, size_t len);

/* Leader only.  data is copied.  *index / *term (may be NULL) tell where
 * the entry went: it is committed iff the entry at that index, once
 * applied, has that term. */
extern int	raft_propose(raft_node *r, const void *data, uint32_t len,
						 raft_index *index, raft_term *term);

/* Single-server change, one at a time, effective as soon as appended. */
typedef enum raft_config_op
{
	RAFT_CONFIG_ADD = 1,
	RAFT_CONFIG_REMOVE = 2
} raft_config_op;

extern int	raft_propose_config(raft_node *r, raft_config_op op, raft_id id,
								raft_index *index);

/* Hand leadership to "to" (e.g. before a clean shutdown). */
extern int	raft_transfer_leadership(raft_node *r, raft_id to);

/* Start an election now (tests, or a host that knows better). */
extern int	raft_campaign(raft_node *r);

/* --- outputs --- */
extern bool raft_has_ready(const raft_node *r);
extern int	raft_ready_get(raft_node *r, raft_ready *rd);
extern int	raft_advance(raft_node *r, const raft_ready *rd);

/*
 * Log compaction: the host's state machine has produced data, its state
 * after applying every entry up to index (index <= applied).  The core
 * keeps a copy (to send to lagging followers) and drops the log up to
 * index.  *meta (may be NULL) receives index, term and configuration; the
 * host persists meta plus data as its latest snapshot, after which it may
 * drop stored entries up to index.
 */
extern int	raft_compact(raft_node *r, raft_index index,
						 const void *data, uint32_t len, raft_snapshot *meta);

/* --- inspection --- */
extern void raft_get_status(const raft_node *r, raft_status *st);
extern raft_role raft_get_role(const raft_node *r);
extern raft_term raft_get_term(const raft_node *r);
extern raft_id raft_get_leader(const raft_node *r);
extern raft_index raft_get_commit(const raft_node *r);
extern raft_index raft_get_applied(const raft_node *r);
extern raft_index raft_get_last_index(const raft_node *r);
extern const raft_snapshot *raft_get_snapshot(const raft_node *r);

/* The entry at index, or NULL if compacted or beyond the log. */
extern const raft_entry *raft_get_entry(const raft_node *r, raft_index index);

/* Term of the entry at index; false if unknown (compacted or beyond). */
extern bool raft_get_term_at(const raft_node *r, raft_index index,
							 raft_term *term);

/* Configuration entry payload. */
extern uint32_t raft_config_encoded_size(const raft_config *c);
extern void raft_config_encode(const raft_config *c, uint8_t *buf);
extern int	raft_config_decode(const uint8_t *buf, size_t len, raft_config *c);
extern bool raft_config_has(const raft_config *c, raft_id id);

#endif							/* DISTX_RAFT_H */
