/*-------------------------------------------------------------------------
 *
 * node.h
 *	  distx nodes: foreign servers of the distx foreign-data wrapper, their
 *	  option validation, and the lookup of a node with its user mapping.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_NODE_H
#define DISTX_NODE_H

#include "foreign/foreign.h"

typedef struct DistxNode
{
	Oid			serverid;
	Oid			userid;			/* local role whose mapping is used */
	Oid			umid;			/* user mapping OID */
	char	   *servername;
	ForeignServer *server;
	UserMapping *mapping;
} DistxNode;

/* find a node by name, checking USAGE and the user mapping */
extern DistxNode *node_lookup(const char *servername, bool check_usage);
extern DistxNode *node_lookup_by_oid(Oid serverid, Oid userid, bool check_usage);
extern List *node_list_all(void);	/* OIDs of all distx servers */
extern bool node_is_distx_server(ForeignServer *server);

/* libpq connection parameters for a node; NULL-terminated arrays */
extern void node_conn_params(DistxNode *node, const char ***keywords,
							 const char ***values);
extern bool node_password_required(DistxNode *node);

#endif							/* DISTX_NODE_H */
