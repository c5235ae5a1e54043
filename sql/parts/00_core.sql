/* distx--0.1.sql: assembled from sql/parts/ by the Makefile */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION distx" to load this file. \quit

COMMENT ON SCHEMA distx IS 'distx: atomic cross-database transactions, sagas, CRDT column types, Raft coordinator failover';

-- Everybody may use the schema; what each function or view allows is
-- decided on the object (superuser-only functions revoke EXECUTE).
GRANT USAGE ON SCHEMA distx TO PUBLIC;
