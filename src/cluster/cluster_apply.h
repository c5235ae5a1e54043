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
 *	ENTRY_NODE_ADD	u64 system id, i64 proposed-at (timestamptz), u16 name
 *					length, name.  Gives the server of that name a node id:
 *					its existing id when the name is known with the same
 *					system identifier, else max(node_id) + 1 (ids are never
 *					reused).  The result of applying it is the id.
 *
 * Snapshot format: "DXSN" u32 version, then sections: u8 tag, u32 length,
 * payload.  Tag 1 (nodes): u32 count, then per node u64 id, u64 system id,
 * i64 added_at, u16 name length, name.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_CLUSTER_APPLY_H
#define DISTX_CLUSTER_APPLY_H

#include "cluster/cluster.h"
#include "raft/raft.h"

#define ENTRY_NODE_ADD		1

/* encoders: palloc'ed entry bytes */
extern uint8 *cluster_encode_node_add(const char *name, uint64 system_id,
									  uint32 *len);

/*
 * Apply committed entries (every type; only NORMAL ones change tables) and
 * store the last one's index as the applied index.  Must run inside a
 * transaction; results[i] receives what entry i returned (0 if nothing).
 */
extern void cluster_apply_entries(const raft_entry *entries, size_t n,
								  int64 *results);

/* The applied index stored in distx.raft_applied (inside a transaction). */
extern uint64 cluster_applied_index(void);

/* The members by name (inside a transaction). */
extern int	cluster_load_members(ClusterMember *members, int max);

/* Snapshots of the replicated tables (inside a transaction). */
extern uint8 *cluster_snapshot_make(uint32 *len);
extern void cluster_snapshot_restore(const uint8 *data, uint32 len,
									 uint64 index, uint64 term);

#endif							/* DISTX_CLUSTER_APPLY_H */
