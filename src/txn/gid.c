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

PG_FUNCTION_INFO_V1(distx_gid_prefix);

Datum
distx_gid_prefix(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(gid_prefix()));
}
