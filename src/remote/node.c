/*-------------------------------------------------------------------------
 *
 * node.c
 *	  distx nodes are foreign servers of FOREIGN DATA WRAPPER distx, and
 *	  their credentials are user mappings, exactly as with postgres_fdw.
 *
 * The validator accepts on a server every libpq connection option except
 * the credentials, and on a user mapping only the credentials (user,
 * password, sslcert, sslkey, sslpassword) plus password_required, which only
 * a superuser may turn off.  USAGE on the server decides who may use a node.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "access/table.h"
#include "access/genam.h"
#include "access/skey.h"

#include "remote/node.h"

PG_FUNCTION_INFO_V1(distx_fdw_validator);

typedef struct NodeOption
{
	const char *keyword;
	Oid			context;		/* catalog where the option may appear */
} NodeOption;

static NodeOption *node_options = NULL;

/* options that live on the user mapping: the credentials */
static bool
is_mapping_option(const char *keyword)
{
	return strcmp(keyword, "user") == 0 ||
		strcmp(keyword, "password") == 0 ||
		strcmp(keyword, "sslcert") == 0 ||
		strcmp(keyword, "sslkey") == 0 ||
		strcmp(keyword, "sslpassword") == 0;
}

static void
init_node_options(void)
{
	PQconninfoOption *lopt;
	PQconninfoOption *defaults;
	int			n = 0;
	int			i = 0;

	if (node_options)
		return;

	defaults = PQconndefaults();
	if (!defaults)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not get libpq's default connection options.")));
	for (lopt = defaults; lopt->keyword; lopt++)
		n++;

	node_options = MemoryContextAllocZero(TopMemoryContext,
										  sizeof(NodeOption) * (n + 2));
	for (lopt = defaults; lopt->keyword; lopt++)
	{
		/*
		 * Debug options, and options that distx sets itself or that would
		 * change the nature of the connection, are not accepted.
		 */
		if (strchr(lopt->dispchar, 'D') ||
			strcmp(lopt->keyword, "replication") == 0 ||
			strcmp(lopt->keyword, "fallback_application_name") == 0 ||
			strcmp(lopt->keyword, "client_encoding") == 0)
			continue;
		node_options[i].keyword = MemoryContextStrdup(TopMemoryContext,
													  lopt->keyword);
		node_options[i].context = is_mapping_option(lopt->keyword) ?
			UserMappingRelationId : ForeignServerRelationId;
		i++;
	}
	node_options[i].keyword = "password_required";
	node_options[i].context = UserMappingRelationId;
	PQconninfoFree(defaults);
}

static bool
is_valid_option(const char *keyword, Oid context)
{
	NodeOption *opt;

	for (opt = node_options; opt->keyword; opt++)
		if (opt->context == context && strcmp(opt->keyword, keyword) == 0)
			return true;
	return false;
}

Datum
distx_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options_list = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *cell;

	init_node_options();

	foreach(cell, options_list)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (!is_valid_option(def->defname, catalog))
		{
			StringInfoData buf;
			NodeOption *opt;

			initStringInfo(&buf);
			for (opt = node_options; opt->keyword; opt++)
				if (opt->context == catalog)
					appendStringInfo(&buf, "%s%s", buf.len > 0 ? ", " : "",
									 opt->keyword);

			if (catalog == ForeignServerRelationId && is_mapping_option(def->defname))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("option \"%s\" belongs on a user mapping, not on a server",
								def->defname),
						 errhint("Credentials are given with CREATE USER MAPPING ... OPTIONS (user '...', password '...').")));
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 buf.len > 0
					 ? errhint("Valid options in this context are: %s.", buf.data)
					 : errhint("There are no valid options in this context.")));
		}

		if (strcmp(def->defname, "password_required") == 0)
		{
			bool		pw_required = defGetBoolean(def);

			if (!pw_required && !superuser())
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("password_required=false is superuser-only"),
						 errhint("User mappings with the password_required option set to false may only be created or modified by the superuser.")));
		}
	}

	PG_RETURN_VOID();
}

bool
node_is_distx_server(ForeignServer *server)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);

	return strcmp(fdw->fdwname, "distx") == 0;
}

/*
 * The user mapping of a role for a server, or the PUBLIC one; NULL if there
 * is none.  (GetUserMapping() raises an error without a hint.)
 */
static UserMapping *
find_user_mapping(Oid userid, Oid serverid)
{
	HeapTuple	tp;
	Datum		datum;
	bool		isnull;
	UserMapping *um;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
						 ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER,
							 ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return NULL;

	um = (UserMapping *) palloc(sizeof(UserMapping));
	um->umid = ((Form_pg_user_mapping) GETSTRUCT(tp))->oid;
	um->userid = userid;
	um->serverid = serverid;
	datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
							Anum_pg_user_mapping_umoptions, &isnull);
	um->options = isnull ? NIL : untransformRelOptions(datum);
	ReleaseSysCache(tp);
	return um;
}

static DistxNode *
node_finish_lookup(ForeignServer *server, Oid userid, bool check_usage)
{
	DistxNode  *node;
	UserMapping *um;

	if (!node_is_distx_server(server))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" is not a distx node", server->servername),
				 errdetail("Its foreign-data wrapper is not distx.")));

	if (check_usage)
	{
		AclResult	aclresult;

		aclresult = pg_foreign_server_aclcheck(server->serverid, userid, ACL_USAGE);
		if (aclresult != ACLCHECK_OK)
			aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);
	}

	um = find_user_mapping(userid, server->serverid);
	if (um == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("user mapping not found for role \"%s\" on distx node \"%s\"",
						GetUserNameFromId(userid, false), server->servername),
				 errhint("Create one with CREATE USER MAPPING FOR %s SERVER %s OPTIONS (user '...', password '...').",
						 quote_identifier(GetUserNameFromId(userid, false)),
						 quote_identifier(server->servername))));

	node = palloc0(sizeof(DistxNode));
	node->serverid = server->serverid;
	node->userid = userid;
	node->umid = um->umid;
	node->servername = pstrdup(server->servername);
	node->server = server;
	node->mapping = um;
	return node;
}

DistxNode *
node_lookup(const char *servername, bool check_usage)
{
	ForeignServer *server;

	if (servername == NULL || servername[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("node name must not be empty")));

	server = GetForeignServerByName(servername, true);
	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("distx node \"%s\" does not exist", servername),
				 errhint("Nodes are foreign servers: CREATE SERVER %s FOREIGN DATA WRAPPER distx OPTIONS (host '...', dbname '...').",
						 quote_identifier(servername))));
	return node_finish_lookup(server, GetUserId(), check_usage);
}

DistxNode *
node_lookup_by_oid(Oid serverid, Oid userid, bool check_usage)
{
	ForeignServer *server = GetForeignServerExtended(serverid, FSV_MISSING_OK);

	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("distx node with OID %u does not exist", serverid)));
	return node_finish_lookup(server, userid, check_usage);
}

/* OIDs of every server of the distx wrapper in this database */
List *
node_list_all(void)
{
	List	   *result = NIL;
	ForeignDataWrapper *fdw = GetForeignDataWrapperByName("distx", true);
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;

	if (fdw == NULL)
		return NIL;
	rel = table_open(ForeignServerRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_foreign_server srv = (Form_pg_foreign_server) GETSTRUCT(tup);

		if (srv->srvfdw == fdw->fdwid)
			result = lappend_oid(result, srv->oid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

bool
node_password_required(DistxNode *node)
{
	ListCell   *cell;

	foreach(cell, node->mapping->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "password_required") == 0)
			return defGetBoolean(def);
	}
	return true;
}

void
node_conn_params(DistxNode *node, const char ***keywords_out,
				 const char ***values_out)
{
	int			n;
	int			i = 0;
	const char **keywords;
	const char **values;
	ListCell   *cell;

	n = list_length(node->server->options) + list_length(node->mapping->options) + 3;
	keywords = palloc0(n * sizeof(char *));
	values = palloc0(n * sizeof(char *));

	foreach(cell, node->server->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		keywords[i] = def->defname;
		values[i] = defGetString(def);
		i++;
	}
	foreach(cell, node->mapping->options)
	{
		DefElem    *def = (DefElem *) lfirst(cell);

		if (strcmp(def->defname, "password_required") == 0)
			continue;
		keywords[i] = def->defname;
		values[i] = defGetString(def);
		i++;
	}
	keywords[i] = "fallback_application_name";
	values[i] = "distx";
	i++;
	/* the remote server converts to our encoding */
	keywords[i] = "client_encoding";
	values[i] = GetDatabaseEncodingName();
	i++;
	keywords[i] = NULL;
	values[i] = NULL;

	/*
	 * A non-superuser must authenticate with a password: otherwise a
	 * "trust" or "peer" line on the remote side would let anybody act as
	 * the coordinator's OS user there.
	 */
	if (!superuser_arg(node->userid) && node_password_required(node))
	{
		bool		has_password = false;

		for (i = 0; keywords[i] != NULL; i++)
			if (strcmp(keywords[i], "password") == 0 && values[i][0] != '\0')
				has_password = true;
		if (!has_password)
			ereport(ERROR,
					(errcode(ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED),
					 errmsg("password is required"),
					 errdetail("Non-superusers must provide a password in the user mapping for distx node \"%s\".",
							   node->servername)));
	}

	*keywords_out = keywords;
	*values_out = values;
}
