--
-- The Raft cluster of distx nodes (src/cluster)
--
-- Every node declares every member, itself included, as a distx server
-- under the same name (run the same CREATE SERVER / CREATE USER MAPPING
-- statements on every node); the Raft worker reaches its peers through
-- those servers with the user mapping of the bootstrap superuser or PUBLIC.
-- distx.cluster_init() on the first node, distx.cluster_add_node(server)
-- for each other one.  A server that never joined a cluster keeps the
-- single-node behaviour and runs no Raft worker.
--
-- The tables below are the replicated state: they are written only by the
-- Raft worker, applying committed entries in log order; the applied index
-- is stored in the same transaction.

CREATE TABLE distx.cluster_nodes (
	node_id bigint PRIMARY KEY,
	node name NOT NULL UNIQUE,
	system_id bigint NOT NULL,
	added_at timestamptz NOT NULL
);
REVOKE ALL ON distx.cluster_nodes FROM PUBLIC;
COMMENT ON TABLE distx.cluster_nodes IS
'nodes of the distx cluster by the server name every node uses for them (replicated; maintained by distx)';

CREATE TABLE distx.raft_applied (
	applied_index bigint NOT NULL,
	applied_term bigint NOT NULL
);
INSERT INTO distx.raft_applied VALUES (0, 0);
REVOKE ALL ON distx.raft_applied FROM PUBLIC;
COMMENT ON TABLE distx.raft_applied IS
'index of the last Raft entry applied to the replicated tables (maintained by distx)';

-- Decisions of distributed transactions in a cluster: origin is the gid
-- prefix of the coordinator that ran the transaction (distx.gid_prefix()
-- there), xid its transaction.  The first decision for (origin, xid) wins.
-- conditional: the commit holds only if the origin's xid committed.
CREATE TABLE distx.cluster_decisions (
	origin text NOT NULL,
	xid xid8 NOT NULL,
	outcome text NOT NULL CHECK (outcome IN ('commit', 'abort')),
	conditional boolean NOT NULL,
	participants name[] NOT NULL,
	participant_oids oid[] NOT NULL,
	term bigint NOT NULL,
	decided_at timestamptz NOT NULL,
	PRIMARY KEY (origin, xid)
);
REVOKE ALL ON distx.cluster_decisions FROM PUBLIC;
COMMENT ON TABLE distx.cluster_decisions IS
'decisions of distributed transactions, replicated in the distx cluster (first decision wins; term: of the Raft entry)';

CREATE FUNCTION distx.cluster_init(node_name name DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'distx_cluster_init'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx.cluster_init(name) FROM PUBLIC;
COMMENT ON FUNCTION distx.cluster_init(name) IS
'make this server node 1 of a new distx cluster; node_name: the server name the other nodes use for it (found by default); returns the cluster id (superuser)';

CREATE FUNCTION distx.cluster_add_node(server name)
RETURNS bigint
AS 'MODULE_PATHNAME', 'distx_cluster_add_node'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx.cluster_add_node(name) FROM PUBLIC;
COMMENT ON FUNCTION distx.cluster_add_node(name) IS
'add the distx server of that name to the cluster (forwarded to the leader); returns its node id (superuser)';

CREATE FUNCTION distx.cluster_remove_node(server name)
RETURNS void
AS 'MODULE_PATHNAME', 'distx_cluster_remove_node'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx.cluster_remove_node(name) FROM PUBLIC;
COMMENT ON FUNCTION distx.cluster_remove_node(name) IS
'remove a node from the voters of the cluster (forwarded to the leader) (superuser)';

CREATE FUNCTION distx.leader()
RETURNS text
AS 'MODULE_PATHNAME', 'distx_leader'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION distx.leader() IS
'server name of the Raft leader as far as this node knows; NULL when unknown or not in a cluster';

-- Internal: called by other nodes over libpq.  The role of the user
-- mappings between nodes needs EXECUTE on these.
CREATE FUNCTION distx._cluster_whoami(OUT cluster_id bigint, OUT node_id bigint,
	OUT token bigint, OUT system_id bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'distx_cluster_whoami'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx._cluster_whoami() FROM PUBLIC;

-- The status of transactions of this server, for the recovery of the
-- cluster's coordinator: 'committed', 'aborted', 'in progress', 'future'
-- (not handed out yet: lost in a crash before its WAL reached disk, never
-- committed) or NULL (too old to tell).
CREATE FUNCTION distx._xact_status(xids xid8[], OUT xid xid8, OUT status text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'distx_xact_status'
LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
REVOKE ALL ON FUNCTION distx._xact_status(xid8[]) FROM PUBLIC;

CREATE FUNCTION distx._cluster_join(cluster_id bigint, node_id bigint, node_name name)
RETURNS void
AS 'MODULE_PATHNAME', 'distx_cluster_join'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx._cluster_join(bigint, bigint, name) FROM PUBLIC;

CREATE FUNCTION distx._cluster_leave(cluster_id bigint, node_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'distx_cluster_leave'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx._cluster_leave(bigint, bigint) FROM PUBLIC;

CREATE FUNCTION distx._cluster_quiesce(hold_ms integer, min_applied bigint DEFAULT 0)
RETURNS void
AS 'MODULE_PATHNAME', 'distx_cluster_quiesce'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx._cluster_quiesce(integer, bigint) FROM PUBLIC;

CREATE FUNCTION distx._raft_deliver(cluster_id bigint, from_id bigint,
	from_name text, batch bytea)
RETURNS bigint
AS 'MODULE_PATHNAME', 'distx_raft_deliver'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx._raft_deliver(bigint, bigint, text, bytea) FROM PUBLIC;

CREATE FUNCTION distx._raft_propose(cluster_id bigint, kind int, arg bigint,
	entry bytea, OUT rc int, OUT idx bigint, OUT term bigint, OUT result bigint,
	OUT leader bigint, OUT errmsg text)
RETURNS record
AS 'MODULE_PATHNAME', 'distx_raft_propose'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx._raft_propose(bigint, int, bigint, bytea) FROM PUBLIC;

CREATE FUNCTION distx._cluster_decide(origin text, xid xid8, commit boolean,
	conditional boolean, participants name[], participant_oids oid[] DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'distx_cluster_decide'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx._cluster_decide(text, xid8, boolean, boolean, name[], oid[]) FROM PUBLIC;
COMMENT ON FUNCTION distx._cluster_decide(text, xid8, boolean, boolean, name[], oid[]) IS
'internal: record the decision of a distributed transaction in the cluster; returns the decision that won (the first one)';

CREATE FUNCTION distx._cluster_forget(origin text, xid xid8)
RETURNS void
AS 'MODULE_PATHNAME', 'distx_cluster_forget'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx._cluster_forget(text, xid8) FROM PUBLIC;

CREATE FUNCTION distx._raft_status(OUT node_id bigint, OUT node text,
	OUT is_self boolean, OUT voter boolean, OUT role text, OUT term bigint,
	OUT leader text, OUT commit_index bigint, OUT applied_index bigint,
	OUT last_index bigint, OUT match_index bigint, OUT next_index bigint,
	OUT progress text, OUT last_contact_ms bigint, OUT connected boolean,
	OUT messages_dropped bigint, OUT last_error text, OUT cluster_id bigint,
	OUT coordinator boolean, OUT last_heard_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'distx_raft_status'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE VIEW distx.raft_status AS
SELECT s.node_id, s.node, s.is_self, s.voter, s.role, s.term, s.leader,
	   s.commit_index, s.applied_index, s.last_index,
	   s.match_index, s.next_index, s.progress,
	   s.last_contact_ms * interval '1 millisecond' AS last_contact,
	   s.connected, s.messages_dropped, s.last_error, s.cluster_id,
	   s.coordinator,
	   clock_timestamp() - s.last_heard_at AS last_heard
FROM distx._raft_status() s;
COMMENT ON VIEW distx.raft_status IS
'this node''s Raft state (first row: role, term, leader, commit and applied index, whether it acts as the coordinator) and, per peer, replication progress (match/next index, last contact: known on the leader), the link to it and how long ago a message from it arrived (every node)';
GRANT SELECT ON distx.raft_status TO PUBLIC;
