
-------------------------------------------------------------------------------
-- Column types: vclock (vector clock), hlc (hybrid logical clock timestamp)
-- and lww (last-write-wins register).  C code in src/types/.
-------------------------------------------------------------------------------

-- vclock ---------------------------------------------------------------------

CREATE TYPE distx.vclock;

CREATE FUNCTION distx.vclock_in(cstring) RETURNS distx.vclock
	AS 'MODULE_PATHNAME', 'vclock_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.vclock_out(distx.vclock) RETURNS cstring
	AS 'MODULE_PATHNAME', 'vclock_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.vclock_recv(internal) RETURNS distx.vclock
	AS 'MODULE_PATHNAME', 'vclock_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.vclock_send(distx.vclock) RETURNS bytea
	AS 'MODULE_PATHNAME', 'vclock_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE distx.vclock (
	INPUT = distx.vclock_in,
	OUTPUT = distx.vclock_out,
	RECEIVE = distx.vclock_recv,
	SEND = distx.vclock_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = extended
);
COMMENT ON TYPE distx.vclock IS 'vector clock: {"node": counter, ...}';

CREATE FUNCTION distx.vclock_increment(distx.vclock, node text) RETURNS distx.vclock
	AS 'MODULE_PATHNAME', 'vclock_increment' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.vclock_increment(distx.vclock, text) IS 'the clock with the counter of node one higher';
CREATE FUNCTION distx.vclock_merge(distx.vclock, distx.vclock) RETURNS distx.vclock
	AS 'MODULE_PATHNAME', 'vclock_merge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.vclock_merge(distx.vclock, distx.vclock) IS 'pointwise maximum of two clocks';
CREATE FUNCTION distx.vclock_get(distx.vclock, node text) RETURNS bigint
	AS 'MODULE_PATHNAME', 'vclock_get' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.vclock_get(distx.vclock, text) IS 'the counter of node (0 when absent)';
CREATE FUNCTION distx.vclock_compare(distx.vclock, distx.vclock) RETURNS text
	AS 'MODULE_PATHNAME', 'vclock_compare' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.vclock_compare(distx.vclock, distx.vclock) IS 'before, after, equal or concurrent';
CREATE FUNCTION distx.vclock_entries(distx.vclock, OUT node text, OUT counter bigint)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'vclock_entries' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.vclock_entries(distx.vclock) IS 'the entries of a clock as rows, sorted by node';
CREATE FUNCTION distx.vclock_size(distx.vclock) RETURNS integer
	AS 'MODULE_PATHNAME', 'vclock_size' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.vclock_size(distx.vclock) IS 'number of nodes with a nonzero counter';

CREATE FUNCTION distx.vclock_eq(distx.vclock, distx.vclock) RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.vclock_ne(distx.vclock, distx.vclock) RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.vclock_before(distx.vclock, distx.vclock) RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_before' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.vclock_after(distx.vclock, distx.vclock) RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_after' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.vclock_before_eq(distx.vclock, distx.vclock) RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_before_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.vclock_after_eq(distx.vclock, distx.vclock) RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_after_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.vclock_concurrent(distx.vclock, distx.vclock) RETURNS boolean
	AS 'MODULE_PATHNAME', 'vclock_concurrent' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.vclock_hash(distx.vclock) RETURNS integer
	AS 'MODULE_PATHNAME', 'vclock_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.vclock_hash_extended(distx.vclock, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME', 'vclock_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR distx.= (
	LEFTARG = distx.vclock, RIGHTARG = distx.vclock, FUNCTION = distx.vclock_eq,
	COMMUTATOR = OPERATOR(distx.=), NEGATOR = OPERATOR(distx.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES
);
CREATE OPERATOR distx.<> (
	LEFTARG = distx.vclock, RIGHTARG = distx.vclock, FUNCTION = distx.vclock_ne,
	COMMUTATOR = OPERATOR(distx.<>), NEGATOR = OPERATOR(distx.=),
	RESTRICT = neqsel, JOIN = neqjoinsel
);
-- happens-before and happens-after (strict), and their reflexive forms; a
-- partial order, so there is deliberately no btree operator class
CREATE OPERATOR distx.<< (
	LEFTARG = distx.vclock, RIGHTARG = distx.vclock, FUNCTION = distx.vclock_before,
	COMMUTATOR = OPERATOR(distx.>>)
);
CREATE OPERATOR distx.>> (
	LEFTARG = distx.vclock, RIGHTARG = distx.vclock, FUNCTION = distx.vclock_after,
	COMMUTATOR = OPERATOR(distx.<<)
);
CREATE OPERATOR distx.<<= (
	LEFTARG = distx.vclock, RIGHTARG = distx.vclock, FUNCTION = distx.vclock_before_eq,
	COMMUTATOR = OPERATOR(distx.>>=)
);
CREATE OPERATOR distx.>>= (
	LEFTARG = distx.vclock, RIGHTARG = distx.vclock, FUNCTION = distx.vclock_after_eq,
	COMMUTATOR = OPERATOR(distx.<<=)
);
-- concurrent (a ∥ b): neither happened before the other
CREATE OPERATOR distx.?|| (
	LEFTARG = distx.vclock, RIGHTARG = distx.vclock, FUNCTION = distx.vclock_concurrent,
	COMMUTATOR = OPERATOR(distx.?||)
);

CREATE OPERATOR CLASS distx.vclock_hash_ops
	DEFAULT FOR TYPE distx.vclock USING hash AS
		OPERATOR 1 distx.= (distx.vclock, distx.vclock),
		FUNCTION 1 distx.vclock_hash(distx.vclock),
		FUNCTION 2 distx.vclock_hash_extended(distx.vclock, bigint);

CREATE AGGREGATE distx.vclock_merge_agg(distx.vclock) (
	SFUNC = distx.vclock_merge,
	STYPE = distx.vclock,
	COMBINEFUNC = distx.vclock_merge,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE distx.vclock_merge_agg(distx.vclock) IS 'pointwise maximum of all clocks';

CREATE FUNCTION distx.vclock_to_jsonb(distx.vclock) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'vclock_to_jsonb' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.jsonb_to_vclock(jsonb) RETURNS distx.vclock
	AS 'MODULE_PATHNAME', 'jsonb_to_vclock' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (distx.vclock AS jsonb) WITH FUNCTION distx.vclock_to_jsonb(distx.vclock);
CREATE CAST (jsonb AS distx.vclock) WITH FUNCTION distx.jsonb_to_vclock(jsonb);

-- hlc ------------------------------------------------------------------------

CREATE TYPE distx.hlc;

CREATE FUNCTION distx.hlc_in(cstring) RETURNS distx.hlc
	AS 'MODULE_PATHNAME', 'hlc_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.hlc_out(distx.hlc) RETURNS cstring
	AS 'MODULE_PATHNAME', 'hlc_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.hlc_recv(internal) RETURNS distx.hlc
	AS 'MODULE_PATHNAME', 'hlc_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.hlc_send(distx.hlc) RETURNS bytea
	AS 'MODULE_PATHNAME', 'hlc_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE distx.hlc (
	INPUT = distx.hlc_in,
	OUTPUT = distx.hlc_out,
	RECEIVE = distx.hlc_recv,
	SEND = distx.hlc_send,
	INTERNALLENGTH = 16,
	ALIGNMENT = double,
	STORAGE = plain
);
COMMENT ON TYPE distx.hlc IS 'hybrid logical clock timestamp: physical time (UTC), logical counter, node id';

CREATE FUNCTION distx.hlc_now() RETURNS distx.hlc
	AS 'MODULE_PATHNAME', 'hlc_now' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.hlc_now() IS 'a new timestamp of this server''s clock, greater than every one it issued before';
CREATE FUNCTION distx.hlc_observe(distx.hlc) RETURNS distx.hlc
	AS 'MODULE_PATHNAME', 'hlc_observe' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.hlc_observe(distx.hlc) IS 'fold a received timestamp into this server''s clock and return a new timestamp greater than it';
CREATE FUNCTION distx.hlc(timestamptz, logical bigint DEFAULT 0, node integer DEFAULT 0)
	RETURNS distx.hlc
	AS 'MODULE_PATHNAME', 'hlc_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.hlc(timestamptz, bigint, integer) IS 'an hlc from its parts';
CREATE FUNCTION distx.hlc_to_timestamptz(distx.hlc) RETURNS timestamptz
	AS 'MODULE_PATHNAME', 'hlc_to_timestamptz' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.hlc_logical(distx.hlc) RETURNS bigint
	AS 'MODULE_PATHNAME', 'hlc_logical' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.hlc_node(distx.hlc) RETURNS integer
	AS 'MODULE_PATHNAME', 'hlc_node' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE CAST (distx.hlc AS timestamptz) WITH FUNCTION distx.hlc_to_timestamptz(distx.hlc);

-- this server's identity (distx.node_name, distx.node_id)
CREATE FUNCTION distx.node_name() RETURNS text
	AS 'MODULE_PATHNAME', 'distx_node_name_sql' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.node_name() IS 'this node''s name in vector clocks (distx.node_name, by default derived from the system identifier)';
CREATE FUNCTION distx.node_id() RETURNS integer
	AS 'MODULE_PATHNAME', 'distx_node_id_sql' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.node_id() IS 'this node''s id in hlc timestamps (distx.node_id, by default derived from the node name)';

CREATE FUNCTION distx.hlc_cmp(distx.hlc, distx.hlc) RETURNS integer
	AS 'MODULE_PATHNAME', 'hlc_cmp' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.hlc_lt(distx.hlc, distx.hlc) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlc_lt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.hlc_le(distx.hlc, distx.hlc) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlc_le' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.hlc_eq(distx.hlc, distx.hlc) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlc_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.hlc_ne(distx.hlc, distx.hlc) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlc_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.hlc_ge(distx.hlc, distx.hlc) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlc_ge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.hlc_gt(distx.hlc, distx.hlc) RETURNS boolean
	AS 'MODULE_PATHNAME', 'hlc_gt' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.hlc_larger(distx.hlc, distx.hlc) RETURNS distx.hlc
	AS 'MODULE_PATHNAME', 'hlc_larger' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.hlc_smaller(distx.hlc, distx.hlc) RETURNS distx.hlc
	AS 'MODULE_PATHNAME', 'hlc_smaller' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.hlc_hash(distx.hlc) RETURNS integer
	AS 'MODULE_PATHNAME', 'hlc_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.hlc_hash_extended(distx.hlc, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME', 'hlc_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR distx.< (
	LEFTARG = distx.hlc, RIGHTARG = distx.hlc, FUNCTION = distx.hlc_lt,
	COMMUTATOR = OPERATOR(distx.>), NEGATOR = OPERATOR(distx.>=),
	RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR distx.<= (
	LEFTARG = distx.hlc, RIGHTARG = distx.hlc, FUNCTION = distx.hlc_le,
	COMMUTATOR = OPERATOR(distx.>=), NEGATOR = OPERATOR(distx.>),
	RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR distx.= (
	LEFTARG = distx.hlc, RIGHTARG = distx.hlc, FUNCTION = distx.hlc_eq,
	COMMUTATOR = OPERATOR(distx.=), NEGATOR = OPERATOR(distx.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR distx.<> (
	LEFTARG = distx.hlc, RIGHTARG = distx.hlc, FUNCTION = distx.hlc_ne,
	COMMUTATOR = OPERATOR(distx.<>), NEGATOR = OPERATOR(distx.=),
	RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR distx.>= (
	LEFTARG = distx.hlc, RIGHTARG = distx.hlc, FUNCTION = distx.hlc_ge,
	COMMUTATOR = OPERATOR(distx.<=), NEGATOR = OPERATOR(distx.<),
	RESTRICT = scalargesel, JOIN = scalargejoinsel
);
CREATE OPERATOR distx.> (
	LEFTARG = distx.hlc, RIGHTARG = distx.hlc, FUNCTION = distx.hlc_gt,
	COMMUTATOR = OPERATOR(distx.<), NEGATOR = OPERATOR(distx.<=),
	RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);

CREATE OPERATOR CLASS distx.hlc_btree_ops
	DEFAULT FOR TYPE distx.hlc USING btree AS
		OPERATOR 1 distx.< ,
		OPERATOR 2 distx.<= ,
		OPERATOR 3 distx.= ,
		OPERATOR 4 distx.>= ,
		OPERATOR 5 distx.> ,
		FUNCTION 1 distx.hlc_cmp(distx.hlc, distx.hlc);
CREATE OPERATOR CLASS distx.hlc_hash_ops
	DEFAULT FOR TYPE distx.hlc USING hash AS
		OPERATOR 1 distx.= ,
		FUNCTION 1 distx.hlc_hash(distx.hlc),
		FUNCTION 2 distx.hlc_hash_extended(distx.hlc, bigint);

CREATE AGGREGATE distx.max(distx.hlc) (
	SFUNC = distx.hlc_larger, STYPE = distx.hlc, COMBINEFUNC = distx.hlc_larger,
	SORTOP = OPERATOR(distx.>), PARALLEL = SAFE
);
CREATE AGGREGATE distx.min(distx.hlc) (
	SFUNC = distx.hlc_smaller, STYPE = distx.hlc, COMBINEFUNC = distx.hlc_smaller,
	SORTOP = OPERATOR(distx.<), PARALLEL = SAFE
);

-- lww ------------------------------------------------------------------------

CREATE TYPE distx.lww;

CREATE FUNCTION distx.lww_in(cstring) RETURNS distx.lww
	AS 'MODULE_PATHNAME', 'lww_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.lww_out(distx.lww) RETURNS cstring
	AS 'MODULE_PATHNAME', 'lww_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.lww_recv(internal) RETURNS distx.lww
	AS 'MODULE_PATHNAME', 'lww_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.lww_send(distx.lww) RETURNS bytea
	AS 'MODULE_PATHNAME', 'lww_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE distx.lww (
	INPUT = distx.lww_in,
	OUTPUT = distx.lww_out,
	RECEIVE = distx.lww_recv,
	SEND = distx.lww_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = int4,
	STORAGE = extended
);
COMMENT ON TYPE distx.lww IS 'last-write-wins register: a jsonb value, the hlc of its write and a vector clock';

-- Writes on this node.  lww_new and lww_set are not called lww: a one-argument
-- call lww('text') would be taken for a cast to the type lww.  The text
-- overloads let string literals through (as JSON strings).
CREATE FUNCTION distx.lww_new(value anyelement) RETURNS distx.lww
	AS 'MODULE_PATHNAME', 'lww_new' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE FUNCTION distx.lww_new(value text) RETURNS distx.lww
	AS 'MODULE_PATHNAME', 'lww_new' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION distx.lww_new(anyelement) IS 'a register holding to_jsonb(value), written on this node now';
COMMENT ON FUNCTION distx.lww_new(text) IS 'a register holding to_jsonb(value), written on this node now';
CREATE FUNCTION distx.lww_set(old distx.lww, value anyelement) RETURNS distx.lww
	AS 'MODULE_PATHNAME', 'lww_set' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE FUNCTION distx.lww_set(old distx.lww, value text) RETURNS distx.lww
	AS 'MODULE_PATHNAME', 'lww_set' LANGUAGE C VOLATILE PARALLEL SAFE;
COMMENT ON FUNCTION distx.lww_set(distx.lww, anyelement) IS 'a write on this node that replaces old: ordered after it and causally following it';
COMMENT ON FUNCTION distx.lww_set(distx.lww, text) IS 'a write on this node that replaces old: ordered after it and causally following it';
CREATE FUNCTION distx.lww(value jsonb, ts distx.hlc, clock distx.vclock) RETURNS distx.lww
	AS 'MODULE_PATHNAME', 'lww_make' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.lww(jsonb, distx.hlc, distx.vclock) IS 'a register from its parts';
CREATE FUNCTION distx.lww_value(distx.lww) RETURNS jsonb
	AS 'MODULE_PATHNAME', 'lww_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.lww_value_text(distx.lww) RETURNS text
	AS 'MODULE_PATHNAME', 'lww_value_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.lww_value_text(distx.lww) IS 'the value as text, like ->>';
CREATE FUNCTION distx.lww_hlc(distx.lww) RETURNS distx.hlc
	AS 'MODULE_PATHNAME', 'lww_hlc' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.lww_clock(distx.lww) RETURNS distx.vclock
	AS 'MODULE_PATHNAME', 'lww_clock' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.lww_merge(distx.lww, distx.lww) RETURNS distx.lww
	AS 'MODULE_PATHNAME', 'lww_merge' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.lww_merge(distx.lww, distx.lww) IS 'join of two registers: the later write (by hlc), with the clocks merged';
CREATE FUNCTION distx.lww_concurrent(distx.lww, distx.lww) RETURNS boolean
	AS 'MODULE_PATHNAME', 'lww_concurrent' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.lww_concurrent(distx.lww, distx.lww) IS 'true when the two writes were concurrent (neither clock covers the other)';
CREATE FUNCTION distx.lww_compare(distx.lww, distx.lww) RETURNS text
	AS 'MODULE_PATHNAME', 'lww_compare' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION distx.lww_compare(distx.lww, distx.lww) IS 'vclock_compare of the clocks: before, after, equal or concurrent';
CREATE FUNCTION distx.lww_eq(distx.lww, distx.lww) RETURNS boolean
	AS 'MODULE_PATHNAME', 'lww_eq' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.lww_ne(distx.lww, distx.lww) RETURNS boolean
	AS 'MODULE_PATHNAME', 'lww_ne' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION distx.lww_hash(distx.lww) RETURNS integer
	AS 'MODULE_PATHNAME', 'lww_hash' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION distx.lww_hash_extended(distx.lww, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME', 'lww_hash_extended' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR distx.= (
	LEFTARG = distx.lww, RIGHTARG = distx.lww, FUNCTION = distx.lww_eq,
	COMMUTATOR = OPERATOR(distx.=), NEGATOR = OPERATOR(distx.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES
);
CREATE OPERATOR distx.<> (
	LEFTARG = distx.lww, RIGHTARG = distx.lww, FUNCTION = distx.lww_ne,
	COMMUTATOR = OPERATOR(distx.<>), NEGATOR = OPERATOR(distx.=),
	RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR distx.?|| (
	LEFTARG = distx.lww, RIGHTARG = distx.lww, FUNCTION = distx.lww_concurrent,
	COMMUTATOR = OPERATOR(distx.?||)
);
CREATE OPERATOR CLASS distx.lww_hash_ops
	DEFAULT FOR TYPE distx.lww USING hash AS
		OPERATOR 1 distx.= ,
		FUNCTION 1 distx.lww_hash(distx.lww),
		FUNCTION 2 distx.lww_hash_extended(distx.lww, bigint);

CREATE AGGREGATE distx.lww_merge_agg(distx.lww) (
	SFUNC = distx.lww_merge,
	STYPE = distx.lww,
	COMBINEFUNC = distx.lww_merge,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE distx.lww_merge_agg(distx.lww) IS 'join of all registers';
