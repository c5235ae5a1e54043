/*-------------------------------------------------------------------------
 *
 * exec.c
 *	  The session API: distx.exec() and distx.query().
 *
 * The statement runs on the node inside a remote transaction joined to the
 * local one (see connection.c and txn/txn.c).  Parameters travel as bind
 * parameters in text form with no declared type, so the node infers each
 * one from its use, exactly like PQexecParams with no parameter types; NULL
 * array elements are SQL NULLs.  Nothing is ever spliced into the SQL text.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "distx.h"
#include "remote/connection.h"
#include "remote/node.h"
#include "txn/txn.h"

PG_FUNCTION_INFO_V1(distx_exec);
PG_FUNCTION_INFO_V1(distx_query);

/* text[] to an array of C strings (NULL for SQL NULL) */
static const char **
params_from_array(FunctionCallInfo fcinfo, int argno, int *nparams)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			i;
	const char **values;

	*nparams = 0;
	if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
		return NULL;
	arr = PG_GETARG_ARRAYTYPE_P(argno);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("parameters must be a one-dimensional array")));
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many parameters: %d", n),
				 errdetail("At most 65535 parameters can be bound.")));
	values = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
		values[i] = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
	*nparams = n;
	return values;
}

static DistxConn *
begin_remote(FunctionCallInfo fcinfo, char **sql, DistxNode **nodep)
{
	DistxNode  *node;
	DistxConn  *c;

	distx_require_preload("distx remote execution");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("node name must not be null")));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("SQL statement must not be null")));

	node = node_lookup(NameStr(*PG_GETARG_NAME(0)), true);
	*sql = text_to_cstring(PG_GETARG_TEXT_PP(1));
	c = conn_get(node);
	txn_note_participant(node->serverid);
	*nodep = node;
	return c;
}

/*
 * A command tagged SELECT may still have written (SELECT INTO, a function
 * with side effects): the commit asks the node.  Anything else is taken as
 * a write.
 */
static void
note_command(DistxConn *c, PGresult *res)
{
	const char *tag = PQcmdStatus(res);

	if (strncmp(tag, "SELECT", 6) == 0 || strncmp(tag, "SHOW", 4) == 0)
		c->maybe_wrote = true;
	else
		c->wrote = true;
}

Datum
distx_exec(PG_FUNCTION_ARGS)
{
	char	   *sql;
	DistxNode  *node;
	DistxConn  *c;
	const char **values;
	int			nparams;
	PGresult   *volatile res = NULL;
	volatile int64 rows = 0;

	values = params_from_array(fcinfo, 2, &nparams);
	c = begin_remote(fcinfo, &sql, &node);

	PG_TRY();
	{
		const char *ntuples;

		res = conn_exec_params(c, node, sql, nparams, values);
		note_command(c, res);
		ntuples = PQcmdTuples(res);
		if (ntuples[0] != '\0')
			rows = strtoi64(ntuples, NULL, 10);
		else if (PQresultStatus(res) == PGRES_TUPLES_OK)
			rows = PQntuples(res);
	}
	PG_FINALLY();
	{
		PQclear(res);
	}
	PG_END_TRY();

	PG_RETURN_INT64(rows);
}

Datum
distx_query(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *sql;
	DistxNode  *node;
	DistxConn  *c;
	const char **values;
	int			nparams;
	PGresult   *volatile res = NULL;

	/* the column definition list gives the result's shape */
	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("distx.query must be called in FROM with a column definition list"),
				 errhint("For example: SELECT * FROM distx.query('node', 'SELECT id, name FROM t') AS t(id int, name text).")));

	values = params_from_array(fcinfo, 2, &nparams);
	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	c = begin_remote(fcinfo, &sql, &node);

	PG_TRY();
	{
		TupleDesc	tupdesc = rsinfo->setDesc;
		AttInMetadata *attinmeta;
		int			nfields;
		int			ntuples;
		int			row;
		char	  **cstrings;

		res = conn_exec_params(c, node, sql, nparams, values);
		note_command(c, res);
		nfields = PQnfields(res);
		ntuples = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) : 0;

		if (PQresultStatus(res) == PGRES_TUPLES_OK && nfields != tupdesc->natts)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("remote query returned %d columns, but the column definition list has %d",
							nfields, tupdesc->natts)));
		attinmeta = TupleDescGetAttInMetadata(tupdesc);
		cstrings = palloc(sizeof(char *) * Max(nfields, 1));
		for (row = 0; row < ntuples; row++)
		{
			HeapTuple	tuple;
			int			col;

			for (col = 0; col < nfields; col++)
				cstrings[col] = PQgetisnull(res, row, col) ? NULL :
					PQgetvalue(res, row, col);
			tuple = BuildTupleFromCStrings(attinmeta, cstrings);
			tuplestore_puttuple(rsinfo->setResult, tuple);
			heap_freetuple(tuple);
		}
	}
	PG_FINALLY();
	{
		PQclear(res);
	}
	PG_END_TRY();

	return (Datum) 0;
}
