/*-------------------------------------------------------------------------
 *
 * connection.h
 *	  Connections to distx nodes: a per-backend cache keyed by user mapping,
 *	  remote transactions that follow the local one (savepoints included),
 *	  latch-aware waits, cancel, and remote errors passed through.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_CONNECTION_H
#define DISTX_CONNECTION_H

#include "libpq-fe.h"
#include "remote/node.h"
#include "utils/hsearch.h"

#define DISTX_GID_LEN 200

typedef struct DistxConn
{
	Oid			umid;			/* hash key: OID of the user mapping */
	PGconn	   *conn;			/* NULL when not connected */
	Oid			serverid;
	Oid			userid;
	char		servername[NAMEDATALEN];
	int			max_prepared_xacts; /* the node's max_prepared_transactions */

	/* state of the remote transaction joined to the local one */
	int			xact_depth;		/* 0 none, 1 transaction, >1 savepoints */
	bool		wrote;			/* a command that can write ran */
	bool		maybe_wrote;	/* only SELECTs ran: they may have written */
	bool		prepared;		/* PREPARE TRANSACTION succeeded */
	bool		changing_xact_state;	/* xact control in progress */
	bool		holds_slot;		/* bulkhead slot held for this xact */
	bool		fresh;			/* opened for this use: no reconnect */
	char		gid[DISTX_GID_LEN];

	/*
	 * A COMMIT PREPARED sent without waiting for its answer (see
	 * distx.second_phase_wait); collected before the next use.
	 */
	bool		pending_result;
	char		pending_gid[DISTX_GID_LEN];

	/* invalidation: drop the connection when the server or mapping changes */
	bool		invalidated;
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
} DistxConn;

/* GUC: how long cleanup after commit or abort waits for a node (ms) */
extern int	distx_cleanup_timeout;
extern bool distx_second_phase_wait;

extern void connection_define_gucs(void);

/* the connection for a node (conn_exec_params joins it to the transaction) */
extern DistxConn *conn_get(DistxNode *node);

/* iterate the connection cache (NULL when there is none yet) */
extern HTAB *conn_cache(void);

/*
 * run a statement with bind parameters in the remote transaction at the
 * local nest level (opened with it if need be); errors are raised
 */
extern PGresult *conn_exec_params(DistxConn *c, DistxNode *node,
								  const char *sql, int nparams,
								  const char *const *values);
/* run a statement over the simple query protocol; errors are raised */
extern void conn_exec_simple(DistxConn *c, const char *sql);

/* asynchronous steps for the parallel phases of 2PC */
extern bool conn_send_simple(DistxConn *c, const char *sql);
extern PGresult *conn_wait_result(DistxConn *c);
extern bool conn_wait_cleanup(DistxConn *c, const char *sql, int elevel,
							  TimestampTz deadline, bool ignore_missing);
extern bool conn_exec_cleanup(DistxConn *c, const char *sql, int elevel,
							  bool ignore_missing);
extern bool conn_cancel_and_drain(DistxConn *c, TimestampTz deadline);

extern void conn_report_error(int elevel, PGresult *res, DistxConn *c,
							  const char *sql);
extern void conn_end_xact(DistxConn *c, bool keep);
extern void conn_disconnect(DistxConn *c);
extern void conn_collect_pending(DistxConn *c);

/* a plain connection, outside the cache (recovery uses these) */
extern PGconn *conn_connect(DistxNode *node);
extern PGconn *conn_connect_within(DistxNode *node, int timeout_ms);
extern void conn_close(PGconn *conn);

#endif							/* DISTX_CONNECTION_H */
