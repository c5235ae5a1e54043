/*-------------------------------------------------------------------------
 *
 * gid.h
 *	  Global transaction identifiers of distx prepared transactions.
 *
 * A gid is distx_<system identifier>_<database oid>_<xid>_<server oid>:
 * the origin server (its system identifier is unique per cluster), the
 * origin database, the origin's 64-bit transaction id (unique across
 * restarts, because it is WAL-logged), and the participant.  In single-node
 * mode recovery only touches gids whose origin and database are its own; in
 * a cluster the acting coordinator resolves the gids of every member.
 *
 *-------------------------------------------------------------------------
 */
#ifndef DISTX_GID_H
#define DISTX_GID_H

#include "access/transam.h"

extern void gid_format(char *buf, size_t len, FullTransactionId fxid, Oid serverid);
extern char *gid_prefix(void);	/* "distx_<sysid>_<dboid>_" */
extern bool gid_parse(const char *gid, FullTransactionId *fxid, Oid *serverid);
extern bool gid_parse_any(const char *gid, char **origin, uint64 *sysid,
						  Oid *dboid, FullTransactionId *fxid, Oid *serverid);

#endif							/* DISTX_GID_H */
