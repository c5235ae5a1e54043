--
-- Nodes, the session API and 2PC (src/remote, src/txn)
--

CREATE FUNCTION distx.fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME', 'distx_fdw_validator'
LANGUAGE C STRICT;

-- Nodes are servers of this wrapper; credentials are user mappings.
CREATE FOREIGN DATA WRAPPER distx VALIDATOR distx.fdw_validator;

-- Commit decisions of distributed transactions (written through the apply
-- path; a row exists iff its transaction committed; resolved rows are
-- deleted by recovery).
CREATE TABLE distx.decisions (
	xid xid8 PRIMARY KEY,
	participants oid[] NOT NULL,
	decided_at timestamptz NOT NULL
);
REVOKE ALL ON distx.decisions FROM PUBLIC;
COMMENT ON TABLE distx.decisions IS 'commit decisions of distributed transactions; maintained by distx';

CREATE FUNCTION distx.exec(node name, sql text, VARIADIC params text[] DEFAULT '{}')
RETURNS bigint
AS 'MODULE_PATHNAME', 'distx_exec'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION distx.exec(name, text, text[]) IS
'run a statement on a node inside the current transaction; returns the rows affected';

CREATE FUNCTION distx.query(node name, sql text, VARIADIC params text[] DEFAULT '{}')
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'distx_query'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION distx.query(name, text, text[]) IS
'run a query on a node inside the current transaction; use with a column definition list';

CREATE FUNCTION distx.recover(OUT committed int, OUT rolled_back int,
	OUT in_doubt int, OUT unreachable int, OUT forgotten int)
RETURNS record
AS 'MODULE_PATHNAME', 'distx_recover'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION distx.recover() FROM PUBLIC;
COMMENT ON FUNCTION distx.recover() IS
'resolve distx prepared transactions on every node now (superuser)';

CREATE FUNCTION distx._node_health(OUT serverid oid, OUT circuit text,
	OUT consecutive_failures int, OUT in_use int, OUT open_connections int,
	OUT in_doubt int, OUT last_error text, OUT last_failure_at timestamptz,
	OUT opened_at timestamptz, OUT last_success_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'distx_node_health'
LANGUAGE C VOLATILE;

CREATE VIEW distx.node_health AS
SELECT s.srvname AS node,
	   coalesce(h.circuit, 'closed') AS circuit,
	   coalesce(h.consecutive_failures, 0) AS consecutive_failures,
	   CASE WHEN h.circuit = 'open'
			THEN greatest(h.opened_at + current_setting('distx.circuit_reset_timeout')::interval - now(),
						  interval '0')
	   END AS retry_after,
	   coalesce(h.in_use, 0) AS in_use,
	   coalesce(h.open_connections, 0) AS open_connections,
	   coalesce(h.in_doubt, 0) AS in_doubt,
	   h.last_error,
	   h.last_failure_at,
	   h.last_success_at
FROM pg_catalog.pg_foreign_server s
JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'distx'
LEFT JOIN distx._node_health() h ON h.serverid = s.oid;
COMMENT ON VIEW distx.node_health IS
'per node: circuit breaker state, failures, connections in use and open, in-doubt prepared transactions';

CREATE FUNCTION distx._inflight(OUT pid int, OUT xid bigint, OUT state text,
	OUT participants oid[], OUT participant_states text[], OUT started_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'distx_inflight'
LANGUAGE C VOLATILE;

CREATE FUNCTION distx.gid_prefix()
RETURNS text
AS 'MODULE_PATHNAME', 'distx_gid_prefix'
LANGUAGE C STABLE;

CREATE VIEW distx.transactions AS
SELECT distx.gid_prefix() || i.xid || '_*' AS gid,
	   i.xid::text::xid8 AS xid,
	   i.pid,
	   i.state,
	   ARRAY(SELECT s.srvname FROM unnest(i.participants) WITH ORDINALITY p(oid, n)
			 JOIN pg_catalog.pg_foreign_server s ON s.oid = p.oid ORDER BY p.n) AS participants,
	   i.participant_states,
	   clock_timestamp() - i.started_at AS age
FROM distx._inflight() i
UNION ALL
SELECT distx.gid_prefix() || d.xid || '_*',
	   d.xid,
	   NULL,
	   'committed',
	   ARRAY(SELECT s.srvname FROM unnest(d.participants) p(oid)
			 JOIN pg_catalog.pg_foreign_server s ON s.oid = p.oid ORDER BY s.srvname),
	   NULL,
	   clock_timestamp() - d.decided_at
FROM distx.decisions d
WHERE NOT EXISTS (SELECT 1 FROM distx._inflight() i WHERE i.xid::text::xid8 = d.xid);
COMMENT ON VIEW distx.transactions IS
'distributed transactions in flight in sessions, and committed ones whose second phase is not confirmed yet';

GRANT SELECT ON distx.node_health, distx.transactions TO PUBLIC;
