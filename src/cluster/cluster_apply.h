/*-------------------------------------------------------------------------
 *
 * cluster_apply.h
 *	  The replicated state machine: the format of NORMAL Raft entries, how
 *	  committed entries are applied to the distx tables (in log order, with
 *	  the applied index stored in the same local transaction), and
 *	  snapshots of those tables.
 *
 * Entry format: u8 kind, then the kind's fields, integers little-endian.
 *
 *	ENTRY_NODE_ADD	u8 flags, u64 system id, i64 proposed-at (timestamptz),
 *					u16 name length, name.  Gives the server of that name a
 *					node id: its existing id when the name is known with the
 *					same system identifier and the server still has its Raft
 *					state (flag NODE_ADD_FRESH clear), else max(node_id) + 1
 *					(ids are never reused, and a server that lost its Raft
 *					state never gets its old id back: it would have forgotten
 *					its vote).  The result of applying it is the id.
 *
 *	ENTRY_DECISION	u8 outcome (1 commit, 2 abort), u8 conditional, u64 xid,
 *					i64 proposed-at, str origin, u16 count, then per
 *					participant: u32 OID (in the origin's catalog), str
 *					server name.  The decision of a distributed transaction:
 *					origin is the gid prefix of the coordinator that ran it
 *					(distx.gid_prefix() there), xid its transaction.  The
 *					first decision for (origin, xid) wins: later ones change
 *					nothing, and the result of applying any of them is the
 *					winning outcome (1 commit, 2 abort).  conditional: the
 *					commit holds only if the origin's xid committed (the
 *					transaction also wrote on the origin).
 *	ENTRY_FORGET	u64 xid, str origin.  Drops the decision once every
 *					participant is resolved.  (Written by distx before
 *					ENTRY_FORGET_MANY; still applied from older logs.)
 *	ENTRY_FORGET_MANY  u16 n, then n times: u64 xid, str origin.  Drops
 *					those decisions: recovery forgets what one pass found
 *					resolved in one entry, not one entry per transaction.
 *
 *	ENTRY_SAGA		u8 op, u64 term, i64 proposed-at, then the op's fields.
 *					A change of saga state (see saga_state.h for the ops and
 *					their fields).  term is the acting coordinator term of
 *					the worker that proposed it, 0 for a change made by a
 *					session: an entry with a term other than 0 that is
 *					committed in another term than its own is refused (it
 *					changes nothing and its result is SAGA_ENTRY_REFUSED), so
 *					a coordinator whose leadership ended never claims or
 *					records a step after another leader committed an entry.
 *					Every op is idempotent; proposed-at is the time written
 *					to the tables, so that every node writes the same.
 *
 * str: u16 length, bytes (no NUL).  text: u32 length (0xFFFFFFFF for
 * NULL), bytes (no NUL).  list: u16 count, then count texts.
 *
 * Snapshot format: "DXSN" u32 version, then sections: u8 tag, u32 length,
 * payload.  Tag 1 (nodes): u32 count, then per node u64 id, u64 system id,
 * i64 added_at, str name.  Tag 2 (decisions): u32 count, then per decision
 * str origin, u64 xid, u8 outcome, u8 conditional, u64 term, i64
 * decided_at, u16 count, per participant u32 OID and str name.  Tag 3
 * (sagas): per table, u8 table (1 saga_def, 2 saga_def_step, 3 saga_run,
 * 4 saga_run_step, 5 saga_attempt, in that order), u32 count, then per row
 * the text of the row as a jsonb object (to_jsonb of the row; role OIDs
 * travel as names in the extra keys _owner and _started_by, and server OIDs
 * are looked up again by name where the snapshot is installed).
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_CLUSTER_APPLY_H
#define DISTX_CLUSTER_APPLY_H

#include "cluster/cluster.h"
#include "lib/stringinfo.h"
#include "raft/raft.h"

#define ENTRY_NODE_ADD		1
#define NODE_ADD_FRESH		0x01	/* the server has no Raft identity */
#define ENTRY_DECISION		2
#define ENTRY_FORGET		3
#define ENTRY_SAGA			4
#define ENTRY_FORGET_MANY	5
#define FORGET_MANY_MAX		1000	/* decisions per ENTRY_FORGET_MANY */

#define DECISION_COMMIT		1
#define DECISION_ABORT		2

#define DECISION_ORIGIN_MAX	200	/* bytes of an origin (gid prefix) */

/* the codec of entries, for kinds encoded elsewhere (saga_state.c) */
typedef struct EntryReader
{
	const uint8 *p;
	uint32		left;
	const char *what;
} EntryReader;

#define ENTRY_TEXT_NULL		0xFFFFFFFFu

extern void entry_put_u8(StringInfo buf, uint8 v);
extern void entry_put_u16(StringInfo buf, uint16 v);
extern void entry_put_u32(StringInfo buf, uint32 v);
extern void entry_put_u64(StringInfo buf, uint64 v);
extern void entry_put_text(StringInfo buf, const char *s);
extern uint8 entry_get_u8(EntryReader *r);
extern uint16 entry_get_u16(EntryReader *r);
extern uint32 entry_get_u32(EntryReader *r);
extern uint64 entry_get_u64(EntryReader *r);
extern char *entry_get_text(EntryReader *r);
extern void entry_get_end(EntryReader *r);	/* error if bytes are left */

/* encoders: palloc'ed entry bytes */
extern uint8 *cluster_encode_node_add(const char *name, uint64 system_id,
									  bool fresh, uint32 *len);

extern uint8 *cluster_encode_decision(const char *origin, uint64 xid,
									  int outcome, bool conditional,
									  const Oid *oids, const char *const *names,
									  int n, uint32 *len);
/* as many of the n as fit in max_len bytes (at least one); *taken says */
extern uint8 *cluster_encode_forget_many(int n, const char *const *origins,
										 const uint64 *xids, uint32 max_len,
										 int *taken, uint32 *len);

/*
 * Apply committed entries (every type; only NORMAL ones change tables) and
 * store the last one's index as the applied index.  Must run inside a
 * transaction; results[i] receives what entry i returned (0 if nothing).
 */
extern void cluster_apply_entries(const raft_entry *entries, size_t n,
								  int64 *results);

/* Empty the replicated tables, applied index 0 (a fresh member). */
extern void cluster_reset_replicated_state(void);

/* The applied index stored in distx.raft_applied (inside a transaction). */
extern uint64 cluster_applied_index(void);

/* The members by name (inside a transaction). */
extern int	cluster_load_members(ClusterMember *members, int max);

/* Snapshots of the replicated tables (inside a transaction). */
extern uint8 *cluster_snapshot_make(uint32 *len);
extern void cluster_snapshot_restore(const uint8 *data, uint32 len,
									 uint64 index, uint64 term);

#endif							/* DISTX_CLUSTER_APPLY_H */
