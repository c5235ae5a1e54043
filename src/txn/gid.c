/*-------------------------------------------------------------------------
 *
 * gid.c
 *	  Formatting and parsing of distx gids (see gid.h).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "txn/gid.h"

char *
gid_prefix(void)
{
	return psprintf("distx_" UINT64_FORMAT "_%u_",
					GetSystemIdentifier(), MyDatabaseId);
}

void
gid_format(char *buf, size_t len, FullTransactionId fxid, Oid serverid)
{
	snprintf(buf, len, "distx_" UINT64_FORMAT "_%u_" UINT64_FORMAT "_%u",
			 GetSystemIdentifier(), MyDatabaseId,
			 U64FromFullTransactionId(fxid), serverid);
}

/*
 * Parse a gid of this origin and database.  Returns false for anything
 * else, including distx gids of other origins, which are never touched.
 */
bool
gid_parse(const char *gid, FullTransactionId *fxid, Oid *serverid)
{
	char	   *prefix = gid_prefix();
	size_t		plen = strlen(prefix);
	const char *p;
	char	   *end;
	uint64		x;
	unsigned long s;

	if (strncmp(gid, prefix, plen) != 0)
		return false;
	p = gid + plen;
	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	x = strtou64(p, &end, 10);
	if (errno != 0 || *end != '_')
		return false;
	p = end + 1;
	if (*p < '0' || *p > '9')
		return false;
	s = strtoul(p, &end, 10);
	if (errno != 0 || *end != '\0' || s > PG_UINT32_MAX)
		return false;
	*fxid = FullTransactionIdFromU64(x);
	*serverid = (Oid) s;
	return true;
}

/*
 * Parse a distx gid of any origin (cluster mode: the acting coordinator
 * resolves the gids of every member).  *origin gets the gid's prefix,
 * "distx_<sysid>_<dboid>_", palloc'ed.
 */
bool
gid_parse_any(const char *gid, char **origin, uint64 *sysid, Oid *dboid,
			  FullTransactionId *fxid, Oid *serverid)
{
	const char *p;
	char	   *end;
	uint64		u[4];
	int			i;

	if (strncmp(gid, "distx_", 6) != 0)
		return false;
	p = gid + 6;
	for (i = 0; i < 4; i++)
	{
		if (*p < '0' || *p > '9')
			return false;
		errno = 0;
		u[i] = strtou64(p, &end, 10);
		if (errno != 0 || *end != (i < 3 ? '_' : '\0'))
			return false;
		if (i == 3)
			break;
		p = end + 1;
		if (i == 1)
		{
			/* the end of the origin: "distx_<sysid>_<dboid>_" */
			*origin = pnstrdup(gid, p - gid);
		}
	}
	if (u[1] > PG_UINT32_MAX || u[3] > PG_UINT32_MAX)
		return false;
	*sysid = u[0];
	*dboid = (Oid) u[1];
	*fxid = FullTransactionIdFromU64(u[2]);
	*serverid = (Oid) u[3];
	return true;
}

PG_FUNCTION_INFO_V1(distx_gid_prefix);

Datum
distx_gid_prefix(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(gid_prefix()));
}
