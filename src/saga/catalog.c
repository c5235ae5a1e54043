/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Saga definitions: parsing and validation of the jsonb that
 *	  distx.saga_define() takes, value references, and the canonical form
 *	  that tells whether a definition changed.
 *
 * A definition is a jsonb array of step objects (distx.saga_step() builds
 * one):
 *
 *	 name				step name, an identifier unique in the saga
 *	 node				a distx node (foreign server), or null / "local"
 *	 forward			the forward statement (one statement)
 *	 compensate			the statement that undoes it (optional)
 *	 params				value references bound to $1, $2, ... of forward
 *	 compensate_params	the same for compensate (default: params)
 *	 max_attempts		attempts before the step fails for good (default 3)
 *	 base_delay_ms		first retry delay cap (default 100)
 *	 multiplier			growth of the delay cap per retry (default 2)
 *	 max_delay_ms		largest delay cap (default 30000)
 *	 timeout_ms			time limit of one attempt (default 60000)
 *	 non_retryable		SQLSTATEs (or two-character classes) that fail the
 *						step at once
 *
 * Value references: $input (the run input as json), $input.a.b (a value
 * inside it), $steps.<step> (the output row of an earlier step as json),
 * $steps.<step>.<column>[.key...], $idempotency_key, $run_id.  A forward
 * statement may reference only earlier steps; a compensation also its own
 * step.  Strings bind as their text, numbers and booleans as their JSON
 * text, objects and arrays as json text, null and missing values as NULL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "parser/scanner.h"
#include "parser/gram.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/float.h"
#include "utils/numeric.h"

#include "remote/node.h"
#include "saga/saga.h"

#define DEFAULT_MAX_ATTEMPTS	3
#define DEFAULT_BASE_DELAY_MS	100
#define DEFAULT_MULTIPLIER		2.0
#define DEFAULT_MAX_DELAY_MS	30000
#define DEFAULT_TIMEOUT_MS		60000

static const char *const step_keys[] = {
	"name", "node", "forward", "compensate", "params", "compensate_params",
	"max_attempts", "base_delay_ms", "multiplier", "max_delay_ms",
	"timeout_ms", "non_retryable", NULL
};

static bool
valid_identifier(const char *s)
{
	const char *p;

	if (s == NULL || *s == '\0')
		return false;
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return strlen(s) < NAMEDATALEN;
}

/*
 * Parse a value reference.  With elog_on_error false, returns NULL for a
 * malformed one.
 */
SagaRef *
saga_parse_ref(const char *ref, bool elog_on_error)
{
	SagaRef    *r = palloc0(sizeof(SagaRef));
	char	   *copy;
	char	   *tok;
	char	   *save;
	List	   *parts = NIL;
	ListCell   *lc;
	char	   *head;

	if (ref == NULL || ref[0] != '$')
		goto bad;
	if (strcmp(ref, "$idempotency_key") == 0)
	{
		r->kind = SAGA_REF_IDEMPOTENCY_KEY;
		return r;
	}
	if (strcmp(ref, "$run_id") == 0)
	{
		r->kind = SAGA_REF_RUN_ID;
		return r;
	}

	/* split at dots; no component may be empty */
	copy = pstrdup(ref + 1);
	if (copy[0] == '\0' || copy[strlen(copy) - 1] == '.' || strstr(copy, "..") != NULL)
		goto bad;
	for (tok = strtok_r(copy, ".", &save); tok; tok = strtok_r(NULL, ".", &save))
		parts = lappend(parts, tok);
	head = (char *) linitial(parts);
	if (strcmp(head, "input") == 0)
	{
		r->kind = SAGA_REF_INPUT;
		for_each_from(lc, parts, 1)
			r->path = lappend(r->path, lfirst(lc));
		return r;
	}
	if (strcmp(head, "steps") == 0 && list_length(parts) >= 2)
	{
		r->kind = SAGA_REF_STEP;
		r->step = (char *) lsecond(parts);
		for_each_from(lc, parts, 2)
			r->path = lappend(r->path, lfirst(lc));
		return r;
	}

bad:
	if (elog_on_error)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid saga value reference \"%s\"", ref ? ref : "(null)"),
				 errhint("Use $input, $input.<key>[.<key>...], $steps.<step>, $steps.<step>.<column>[.<key>...], $idempotency_key or $run_id.")));
	return NULL;
}

/*
 * The highest $n a statement references (0 if none), found with the SQL
 * scanner so that strings, quoted identifiers and comments do not count.
 * A statement may be given more parameters than it uses (a compensation
 * takes the forward statement's by default); only the ones it uses are
 * sent.
 */
int
saga_sql_max_param(const char *sql)
{
	core_yyscan_t yyscanner;
	core_yy_extra_type yyextra;
	core_YYSTYPE yylval;
	YYLTYPE		yylloc;
	int			max = 0;
	int			tok;

	yyscanner = scanner_init(sql, &yyextra, &ScanKeywords, ScanKeywordTokens);
	while ((tok = core_yylex(&yylval, &yylloc, yyscanner)) != 0)
		if (tok == PARAM && yylval.ival > max)
			max = yylval.ival;
	scanner_finish(yyscanner);
	return max;
}

bool
saga_sqlstate_listed(List *sqlstates, const char *sqlstate)
{
	ListCell   *lc;

	if (sqlstate == NULL)
		return false;
	foreach(lc, sqlstates)
	{
		const char *s = (const char *) lfirst(lc);

		if (strlen(s) == 2 ? strncmp(s, sqlstate, 2) == 0 : strcmp(s, sqlstate) == 0)
			return true;
	}
	return false;
}

/*
 * ----------------------------------------------------------------------
 * jsonb field access with errors that name the step
 * ----------------------------------------------------------------------
 */

typedef struct StepCtx
{
	const char *saga;
	int			step_no;
	JsonbContainer *obj;
} StepCtx;

#define STEP_ERROR(sc, code, ...) \
	ereport(ERROR, \
			(errcode(code), \
			 errmsg("invalid step %d of saga \"%s\"", (sc)->step_no, (sc)->saga), \
			 errdetail(__VA_ARGS__)))

static bool
get_field(StepCtx *sc, const char *key, JsonbValue *v)
{
	JsonbValue *found = getKeyJsonValueFromContainer(sc->obj, key, strlen(key), v);

	return found != NULL && v->type != jbvNull;
}

static char *
get_string(StepCtx *sc, const char *key, bool required)
{
	JsonbValue	v;

	if (!get_field(sc, key, &v))
	{
		if (required)
			STEP_ERROR(sc, ERRCODE_INVALID_PARAMETER_VALUE,
					   "Field \"%s\" is required.", key);
		return NULL;
	}
	if (v.type != jbvString)
		STEP_ERROR(sc, ERRCODE_INVALID_PARAMETER_VALUE,
				   "Field \"%s\" must be a string.", key);
	return pnstrdup(v.val.string.val, v.val.string.len);
}

static double
get_number(StepCtx *sc, const char *key, double dflt)
{
	JsonbValue	v;

	if (!get_field(sc, key, &v))
		return dflt;
	if (v.type != jbvNumeric)
		STEP_ERROR(sc, ERRCODE_INVALID_PARAMETER_VALUE,
				   "Field \"%s\" must be a number.", key);
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8,
											  NumericGetDatum(v.val.numeric)));
}

static int
get_int(StepCtx *sc, const char *key, int dflt, int min, int max)
{
	double		d = get_number(sc, key, dflt);

	if (d != (double) (int64) d || d < min || d > max)
		STEP_ERROR(sc, ERRCODE_INVALID_PARAMETER_VALUE,
				   "Field \"%s\" must be an integer between %d and %d, not %g.",
				   key, min, max, d);
	return (int) d;
}

/* an array of strings; *present tells whether the field was given */
static List *
get_string_list(StepCtx *sc, const char *key, bool *present)
{
	JsonbValue	v;
	JsonbIterator *it;
	JsonbValue	elem;
	JsonbIteratorToken tok;
	List	   *result = NIL;

	*present = get_field(sc, key, &v);
	if (!*present)
		return NIL;
	if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
		STEP_ERROR(sc, ERRCODE_INVALID_PARAMETER_VALUE,
				   "Field \"%s\" must be an array of strings.", key);
	it = JsonbIteratorInit(v.val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (elem.type != jbvString)
			STEP_ERROR(sc, ERRCODE_INVALID_PARAMETER_VALUE,
					   "Field \"%s\" must be an array of strings.", key);
		result = lappend(result, pnstrdup(elem.val.string.val, elem.val.string.len));
	}
	return result;
}

static void
check_known_keys(StepCtx *sc)
{
	JsonbIterator *it = JsonbIteratorInit(sc->obj);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		const char *const *k;
		bool		known = false;
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		for (k = step_keys; *k; k++)
			if (strcmp(*k, key) == 0)
				known = true;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid step %d of saga \"%s\"", sc->step_no, sc->saga),
					 errdetail("Unknown field \"%s\".", key),
					 errhint("Valid fields are name, node, forward, compensate, params, compensate_params, max_attempts, base_delay_ms, multiplier, max_delay_ms, timeout_ms and non_retryable.")));
	}
}

/* check the references of one statement; own_step: may reference itself */
static void
check_refs(StepCtx *sc, List *refs, List *earlier, const char *self,
		   const char *what)
{
	ListCell   *lc;

	foreach(lc, refs)
	{
		const char *text = (const char *) lfirst(lc);
		SagaRef    *r = saga_parse_ref(text, false);

		if (r == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid step %d of saga \"%s\"", sc->step_no, sc->saga),
					 errdetail("Parameter \"%s\" of the %s statement is not a value reference.",
							   text, what),
					 errhint("Use $input, $input.<key>[.<key>...], $steps.<step>, $steps.<step>.<column>[.<key>...], $idempotency_key or $run_id.")));
		if (r->kind == SAGA_REF_STEP)
		{
			ListCell   *lc2;
			bool		ok = false;

			foreach(lc2, earlier)
				if (strcmp((char *) lfirst(lc2), r->step) == 0)
					ok = true;
			if (self && strcmp(self, r->step) == 0)
				ok = true;
			if (!ok)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("invalid step %d of saga \"%s\"", sc->step_no, sc->saga),
						 errdetail("Parameter \"%s\" of the %s statement references the output of step \"%s\", which no earlier step produces.",
								   text, what, r->step)));
		}
	}
}

static void
append_json_string_list(StringInfo buf, List *list)
{
	ListCell   *lc;

	appendStringInfoChar(buf, '[');
	foreach(lc, list)
	{
		if (lc != list_head(list))
			appendStringInfoString(buf, ", ");
		escape_json(buf, (char *) lfirst(lc));
	}
	appendStringInfoChar(buf, ']');
}

static void
append_step_json(StringInfo buf, SagaStepDef *s)
{
	appendStringInfoString(buf, "{\"name\": ");
	escape_json(buf, s->name);
	appendStringInfoString(buf, ", \"node\": ");
	if (s->node_name)
		escape_json(buf, s->node_name);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ", \"forward\": ");
	escape_json(buf, s->forward_sql);
	appendStringInfoString(buf, ", \"compensate\": ");
	if (s->compensate_sql)
		escape_json(buf, s->compensate_sql);
	else
		appendStringInfoString(buf, "null");
	appendStringInfoString(buf, ", \"params\": ");
	append_json_string_list(buf, s->forward_params);
	appendStringInfoString(buf, ", \"compensate_params\": ");
	append_json_string_list(buf, s->compensate_params);
	appendStringInfo(buf, ", \"max_attempts\": %d, \"base_delay_ms\": %d, "
					 "\"multiplier\": %s, \"max_delay_ms\": %d, \"timeout_ms\": %d",
					 s->max_attempts, s->base_delay_ms,
					 float8out_internal(s->multiplier),
					 s->max_delay_ms, s->timeout_ms);
	appendStringInfoString(buf, ", \"non_retryable\": ");
	append_json_string_list(buf, s->non_retryable);
	appendStringInfoChar(buf, '}');
}

static SagaStepDef *
parse_step(const char *saga, int step_no, JsonbValue *elem, List *earlier)
{
	StepCtx		sc;
	SagaStepDef *s = palloc0(sizeof(SagaStepDef));
	char	   *node;
	bool		present;
	ListCell   *lc;

	sc.saga = saga;
	sc.step_no = step_no;
	if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid step %d of saga \"%s\"", step_no, saga),
				 errdetail("A step must be a JSON object."),
				 errhint("Build steps with distx.saga_step().")));
	sc.obj = elem->val.binary.data;
	check_known_keys(&sc);

	s->step_no = step_no;
	s->name = get_string(&sc, "name", true);
	if (!valid_identifier(s->name))
		STEP_ERROR(&sc, ERRCODE_INVALID_PARAMETER_VALUE,
				   "Step name \"%s\" is not an identifier (letters, digits and underscores, not starting with a digit).",
				   s->name);
	foreach(lc, earlier)
		if (strcmp((char *) lfirst(lc), s->name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("invalid step %d of saga \"%s\"", step_no, saga),
					 errdetail("Step name \"%s\" is used twice.", s->name)));

	node = get_string(&sc, "node", false);
	if (node == NULL || strcmp(node, "local") == 0)
	{
		s->node_id = InvalidOid;
		s->node_name = NULL;
	}
	else
	{
		ForeignServer *server = GetForeignServerByName(node, true);

		if (server == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("distx node \"%s\" does not exist", node),
					 errdetail("Step %d (\"%s\") of saga \"%s\" runs on it.",
							   step_no, s->name, saga),
					 errhint("Nodes are foreign servers: CREATE SERVER %s FOREIGN DATA WRAPPER distx OPTIONS (host '...', dbname '...').",
							 quote_identifier(node))));
		if (!node_is_distx_server(server))
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("server \"%s\" is not a distx node", node),
					 errdetail("Its foreign-data wrapper is not distx.")));
		s->node_id = server->serverid;
		s->node_name = pstrdup(server->servername);
	}

	s->forward_sql = get_string(&sc, "forward", true);
	if (s->forward_sql[strspn(s->forward_sql, " \t\r\n")] == '\0')
		STEP_ERROR(&sc, ERRCODE_INVALID_PARAMETER_VALUE,
				   "The forward statement must not be empty.");
	s->compensate_sql = get_string(&sc, "compensate", false);
	if (s->compensate_sql &&
		s->compensate_sql[strspn(s->compensate_sql, " \t\r\n")] == '\0')
		s->compensate_sql = NULL;

	s->forward_params = get_string_list(&sc, "params", &present);
	s->compensate_params = get_string_list(&sc, "compensate_params", &present);
	if (!present)
		s->compensate_params = list_copy(s->forward_params);
	if (list_length(s->forward_params) > 100 || list_length(s->compensate_params) > 100)
		STEP_ERROR(&sc, ERRCODE_PROGRAM_LIMIT_EXCEEDED,
				   "A statement may have at most 100 parameters.");
	if (saga_sql_max_param(s->forward_sql) > list_length(s->forward_params))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_PARAMETER),
				 errmsg("invalid step %d of saga \"%s\"", step_no, saga),
				 errdetail_plural("The forward statement references $%d, but the step has %d parameter.",
								  "The forward statement references $%d, but the step has %d parameters.",
								  list_length(s->forward_params),
								  saga_sql_max_param(s->forward_sql),
								  list_length(s->forward_params))));
	if (s->compensate_sql &&
		saga_sql_max_param(s->compensate_sql) > list_length(s->compensate_params))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_PARAMETER),
				 errmsg("invalid step %d of saga \"%s\"", step_no, saga),
				 errdetail_plural("The compensating statement references $%d, but the step has %d compensation parameter.",
								  "The compensating statement references $%d, but the step has %d compensation parameters.",
								  list_length(s->compensate_params),
								  saga_sql_max_param(s->compensate_sql),
								  list_length(s->compensate_params))));
	check_refs(&sc, s->forward_params, earlier, NULL, "forward");
	check_refs(&sc, s->compensate_params, earlier, s->name, "compensating");

	/* the retry policy */
	s->max_attempts = get_int(&sc, "max_attempts", DEFAULT_MAX_ATTEMPTS, 1, 1000);
	s->base_delay_ms = get_int(&sc, "base_delay_ms", DEFAULT_BASE_DELAY_MS, 0, 86400000);
	s->multiplier = get_number(&sc, "multiplier", DEFAULT_MULTIPLIER);
	if (!(s->multiplier >= 1.0 && s->multiplier <= 100.0))
		STEP_ERROR(&sc, ERRCODE_INVALID_PARAMETER_VALUE,
				   "Field \"multiplier\" must be between 1 and 100, not %g.",
				   s->multiplier);
	s->max_delay_ms = get_int(&sc, "max_delay_ms",
							  Max(DEFAULT_MAX_DELAY_MS, s->base_delay_ms), 0, 86400000);
	if (s->max_delay_ms < s->base_delay_ms)
		STEP_ERROR(&sc, ERRCODE_INVALID_PARAMETER_VALUE,
				   "Field \"max_delay_ms\" (%d) must not be less than \"base_delay_ms\" (%d).",
				   s->max_delay_ms, s->base_delay_ms);
	s->timeout_ms = get_int(&sc, "timeout_ms", DEFAULT_TIMEOUT_MS, 1, PG_INT32_MAX);

	s->non_retryable = get_string_list(&sc, "non_retryable", &present);
	foreach(lc, s->non_retryable)
	{
		const char *code = (const char *) lfirst(lc);
		size_t		len = strlen(code);
		size_t		i;
		bool		ok = (len == 5 || len == 2);

		for (i = 0; ok && i < len; i++)
			if (!((code[i] >= '0' && code[i] <= '9') || (code[i] >= 'A' && code[i] <= 'Z')))
				ok = false;
		if (!ok)
			STEP_ERROR(&sc, ERRCODE_INVALID_PARAMETER_VALUE,
					   "\"%s\" in \"non_retryable\" is not a SQLSTATE (five digits or upper-case letters) or a SQLSTATE class (two).",
					   code);
	}
	return s;
}

/*
 * Parse and validate a definition.  Raises an error for anything wrong;
 * nothing is written.
 */
SagaDef *
saga_parse_definition(const char *name, Jsonb *steps)
{
	SagaDef    *def = palloc0(sizeof(SagaDef));
	List	   *earlier = NIL;
	StringInfoData buf;
	ListCell   *lc;
	int			n = 0;

	if (name == NULL || name[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("saga name must not be empty")));
	if (strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("saga name \"%s\" is too long", name),
				 errdetail("Saga names have at most %d bytes.", NAMEDATALEN - 1)));
	def->name = pstrdup(name);

	if (steps == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("saga \"%s\" has no steps", name),
				 errdetail("A saga needs at least one step.")));

	if (JB_ROOT_IS_OBJECT(steps))
	{
		/* one step given as an object */
		JsonbValue	v;

		v.type = jbvBinary;
		v.val.binary.data = &steps->root;
		v.val.binary.len = VARSIZE(steps) - VARHDRSZ;
		def->steps = lappend(def->steps, parse_step(name, 1, &v, NIL));
	}
	else if (JB_ROOT_IS_ARRAY(steps) && !JB_ROOT_IS_SCALAR(steps))
	{
		JsonbIterator *it = JsonbIteratorInit(&steps->root);
		JsonbValue	v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			SagaStepDef *s;

			if (tok != WJB_ELEM)
				continue;
			n++;
			if (v.type == jbvNull)
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("invalid step %d of saga \"%s\"", n, name),
						 errdetail("A step must be a JSON object, not null.")));
			s = parse_step(name, n, &v, earlier);
			def->steps = lappend(def->steps, s);
			earlier = lappend(earlier, s->name);
		}
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("steps of saga \"%s\" must be a JSON array of step objects", name),
				 errhint("Build steps with distx.saga_step().")));

	if (def->steps == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("saga \"%s\" has no steps", name),
				 errdetail("A saga needs at least one step.")));

	/* the canonical form: every field, defaults filled in */
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	foreach(lc, def->steps)
	{
		if (lc != list_head(def->steps))
			appendStringInfoString(&buf, ", ");
		append_step_json(&buf, (SagaStepDef *) lfirst(lc));
	}
	appendStringInfoChar(&buf, ']');
	def->normalized = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														 CStringGetDatum(buf.data)));
	def->owner = GetUserId();
	return def;
}
