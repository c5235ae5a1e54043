/*-------------------------------------------------------------------------
 *
 * transport.h
 *	  How the Raft worker sends messages to its peers: one libpq connection
 *	  per peer, made with the distx server of the peer's name and the user
 *	  mapping the worker's role (the bootstrap superuser) or PUBLIC has for
 *	  it, so pg_hba, passwords and TLS apply.  Messages are batched and
 *	  delivered with
 *
 *		SELECT distx._raft_deliver(cluster_id, from_id, from_name, batch)
 *
 *	  where batch is a bytea of [u32 length][message] frames; the receiving
 *	  backend copies them into its server's shared-memory inbox and wakes
 *	  the Raft worker there.  The function returns the receiver's node id,
 *	  which the sender checks.
 *
 *	  Everything is asynchronous (PQconnectStartParams, PQsendQueryParams,
 *	  non-blocking flushes): the worker adds the peers' sockets to its wait
 *	  and calls transport_progress() when woken.  A slow or dead peer never
 *	  blocks it: each peer has a bounded queue, messages to a peer without
 *	  a connection or with a full queue are dropped (Raft resends), and a
 *	  connection attempt or delivery that takes too long is abandoned.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_CLUSTER_TRANSPORT_H
#define DISTX_CLUSTER_TRANSPORT_H

#include "storage/latch.h"

#include "cluster/cluster.h"

extern void transport_init(uint64 cluster_id, uint64 self_id, const char *self_name);

/* the server name of a peer (learnt from the members or from its messages) */
extern void transport_set_peer(uint64 id, const char *name);
extern const char *transport_peer_name(uint64 id);

/* queue a message (copied) */
extern void transport_send(uint64 to, const uint8 *buf, uint32 len);

/* send what is queued to idle peers at once */
extern void transport_kick(void);

/* the sockets to wait for; returns how many events were added */
extern int	transport_max_events(void);
extern void transport_add_events(WaitEventSet *set);

/* make progress on every peer after a wait; never blocks */
extern void transport_progress(WaitEvent *occurred, int noccurred);

/* for the status view */
extern int	transport_status(ClusterPeerInfo *out, int max);

extern void transport_shutdown(void);

#endif							/* DISTX_CLUSTER_TRANSPORT_H */
