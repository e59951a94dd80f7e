/*-------------------------------------------------------------------------
 *
 * expr.c
 *	  Parse and check the two kinds of expression the operator gives
 *	  licdata: a licence's row filter and a column's mask.
 *
 * A row filter is parsed as exactly one SQL expression (the grammar's
 * PL/pgSQL expression mode, then every clause but one target is refused),
 * so "true; DROP TABLE x" or "true) OR (1=1" are syntax errors, never SQL.
 * It is analysed against the dataset alone, with search_path pinned to
 * pg_catalog, pg_temp, and must be boolean, non-volatile, free of subqueries and
 * aggregates, reference only the dataset's own user columns, and call only
 * functions of pg_catalog.
 *
 * A mask is never SQL text: the call to the masking function is built as a
 * parse tree (function name, column reference, constants), then analysed
 * against the dataset the same way, and cast back to the column's type.
 *
 * Both return a node tree whose Vars have varno 1 (the dataset).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "mb/pg_wchar.h"
#include "parser/parse_func.h"
#include "utils/regproc.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parse_collate.h"
#include "parser/parse_expr.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "parser/scanner.h"
#include "common/keywords.h"
#include "rewrite/rewriteManip.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/varlena.h"
#include "utils/syscache.h"

#include "licdata.h"

/* What a node tree may call: functions of pg_catalog and licdata's only. */
static bool
builtin_schema(Oid nsp)
{
	return nsp == PG_CATALOG_NAMESPACE || nsp == get_namespace_oid(LICDATA_SCHEMA, true) ||
		nsp == get_namespace_oid(LICDATA_INTERNAL_SCHEMA, true);
}

/*
 * Built-in functions that are not volatile and yet read the rows of any
 * table they are given (through SPI): a row filter reads its own row only.
 */
static const char *const table_readers[] = {
	"table_to_xml", "table_to_xml_and_xmlschema",
	"schema_to_xml", "schema_to_xml_and_xmlschema",
	"database_to_xml", "database_to_xml_and_xmlschema",
	NULL
};

static bool
check_func_builtin(Oid funcid, void *context)
{
	Oid			nsp = get_func_namespace(funcid);

	if (nsp == PG_CATALOG_NAMESPACE)
	{
		char	   *fname = get_func_name(funcid);

		for (const char *const *r = table_readers; *r; r++)
		{
			if (strcmp(*r, fname) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("row filter must not read other tables"),
						 errdetail("%s reads the rows of the tables it is given.", format_procedure(funcid)),
						 errhint("Express the condition over the dataset's own columns.")));
		}
	}
	if (!builtin_schema(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("row filter may only call built-in functions and operators"),
				 errdetail("It calls %s, which is defined in schema \"%s\".",
						   format_procedure(funcid), get_namespace_name(nsp)),
				 errhint("Write the filter with built-in functions only.")));
	return false;
}

/*
 * Every function a node would run: calls, operators (also in row
 * comparisons and IS DISTINCT FROM), type I/O of casts (check_functions_in_node);
 * and the constraints of a domain a value is cast to, which may call
 * anything.
 */
static bool
check_funcs_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	(void) check_functions_in_node(node, check_func_builtin, context);
	if (IsA(node, CoerceToDomain))
	{
		Oid			domain = ((CoerceToDomain *) node)->resulttype;
		HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(domain));
		Oid			nsp;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for type %u", domain);
		nsp = ((Form_pg_type) GETSTRUCT(tup))->typnamespace;
		ReleaseSysCache(tup);
		if (!builtin_schema(nsp))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row filter may only call built-in functions and operators"),
					 errdetail("It casts to domain %s, whose constraints may call any function.",
							   format_type_be_qualified(domain)),
					 errhint("Write the filter with built-in types and functions only.")));
	}
	return expression_tree_walker(node, check_funcs_walker, context);
}

static bool
check_vars_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		if (v->varlevelsup != 0 || v->varno != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row filter may only reference the dataset's own columns")));
		if (v->varattno <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row filter may only reference the dataset's own user columns"),
					 errdetail("Whole-row references and system columns are not allowed."),
					 errhint("Name the columns the filter depends on.")));
	}
	return expression_tree_walker(node, check_vars_walker, context);
}

/*
 * Does the function (a pg_proc tuple) carry its own search_path setting
 * (CREATE/ALTER FUNCTION ... SET search_path) that a licensee cannot
 * redirect?  The setting must end with pg_temp (so the licensee's temporary
 * objects are found last, never first) and must not name "$user" (in a
 * licensee's session that is the licensee's own schema).  A function with
 * a setting is never inlined; fmgr applies the setting around every call,
 * including the calls the function itself makes.
 */
static bool
function_pins_search_path(HeapTuple proctup)
{
	bool		isnull;
	Datum		d = SysCacheGetAttr(PROCOID, proctup, Anum_pg_proc_proconfig, &isnull);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	bool		ok = false;

	if (isnull)
		return false;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		char	   *item;
		char	   *value;
		List	   *schemas;
		ListCell   *lc;

		if (nulls[i])
			continue;
		item = TextDatumGetCString(elems[i]);
		if (strncmp(item, "search_path=", 12) != 0)
			continue;
		value = pstrdup(item + 12);
		ok = false;
		if (!SplitIdentifierString(value, ',', &schemas) || schemas == NIL)
			return false;
		foreach(lc, schemas)
		{
			if (strcmp((const char *) lfirst(lc), "$user") == 0)
				return false;
		}
		ok = (strcmp((const char *) llast(schemas), "pg_temp") == 0);
	}
	return ok;
}

/*
 * Analyse a raw expression against relation relid alone, with search_path
 * pinned to pg_catalog, pg_temp (searchpath.c).  The result has varno 1.
 */
static Node *
analyse_for_rel(Oid relid, Node *raw, const char *what, Oid want_type, const char *sourcetext)
{
	ParseState *pstate;
	Relation	rel;
	ParseNamespaceItem *nsitem;
	Node	   *expr;
	int			save_nestlevel;

	save_nestlevel = licdata_pin_search_path();

	pstate = make_parsestate(NULL);
	pstate->p_sourcetext = sourcetext;	/* for error positions, or NULL */
	rel = relation_open(relid, AccessShareLock);
	nsitem = addRangeTableEntryForRelation(pstate, rel, AccessShareLock, NULL, false, false);
	addNSItemToQuery(pstate, nsitem, false, true, true);
	expr = transformExpr(pstate, raw, EXPR_KIND_POLICY);
	if (want_type == BOOLOID)
		expr = coerce_to_boolean(pstate, expr, what);
	assign_expr_collations(pstate, expr);
	relation_close(rel, NoLock);
	free_parsestate(pstate);

	licdata_unpin_search_path(save_nestlevel);
	return expr;
}

/*
 * Errors while parsing or analysing a row filter: a position points into
 * the filter (shown as the internal query), not into the statement that
 * passed it; other errors name the filter.
 */
static void
row_filter_error_callback(void *arg)
{
	const char *filter = (const char *) arg;
	int			pos = geterrposition();

	if (getinternalerrposition() > 0)
		return;					/* already points into the filter */
	if (pos > 0)
	{
		errposition(0);
		internalerrposition(pos);
		internalerrquery(filter);
	}
	else
		errcontext("row filter: %s", filter);
}

/* Does the filter scan without error up to (not including) byte len? */
static bool
scans_cleanly(const char *filter, int len)
{
	char	   *prefix = pnstrdup(filter, len);
	MemoryContext cxt = CurrentMemoryContext;
	ErrorContextCallback *save_context = error_context_stack;
	bool		ok = true;

	/* Only the scanner runs here: nothing but memory to clean up on error. */
	error_context_stack = NULL;
	PG_TRY();
	{
		core_yy_extra_type yyextra;
		core_yyscan_t scanner = scanner_init(prefix, &yyextra, &ScanKeywords, ScanKeywordTokens);
		core_YYSTYPE lval;
		YYLTYPE		loc;

		while (core_yylex(&lval, &loc, scanner) != 0)
			;
		scanner_finish(scanner);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	error_context_stack = save_context;
	return ok;
}

/*
 * A comment in a row filter is refused: the filter is shown to operators,
 * auditors and the licensee as the licence's terms, and a comment would
 * show something that is not enforced (or hide part of what is).  "--" or
 * "slash-star" starts a comment where the text before it scans as complete
 * tokens (inside a string or quoted name the prefix is unterminated).
 */
static void
refuse_comments(const char *filter)
{
	for (const char *c = filter; *c; c++)
	{
		if (!((c[0] == '-' && c[1] == '-') || (c[0] == '/' && c[1] == '*')))
			continue;
		if (scans_cleanly(filter, c - filter))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("row filter must not contain comments"),
					 errdetail("The filter is kept and shown as the licence's terms; a comment would show text that is not enforced."),
					 errhint("Remove the comment, or record the note in the dataset's description."),
					 internalerrposition(c - filter + 1),
					 internalerrquery(filter)));
	}
}

/*
 * Parse and check a licence's row filter for relation relid (the dataset
 * or a table inheriting from it).  Errors describe what is wrong.
 */
Node *
licdata_parse_row_filter(Oid relid, const char *filter, bool for_check)
{
	List	   *parsed;
	RawStmt    *raw;
	SelectStmt *sel;
	ResTarget  *rt;
	Node	   *expr;
	ErrorContextCallback errcb;

	if (filter == NULL || filter[0] == '\0' || strspn(filter, " \t\r\n") == strlen(filter))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("row filter must not be empty"),
				 errhint("Pass NULL to license every row, or a boolean expression over the dataset's columns.")));

	errcb.callback = row_filter_error_callback;
	errcb.arg = (void *) filter;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	parsed = raw_parser(filter, RAW_PARSE_PLPGSQL_EXPR);
	if (for_check)
		refuse_comments(filter);
	if (list_length(parsed) != 1)
		goto not_one_expr;
	raw = linitial_node(RawStmt, parsed);
	if (!IsA(raw->stmt, SelectStmt))
		goto not_one_expr;
	sel = (SelectStmt *) raw->stmt;
	if (list_length(sel->targetList) != 1 || sel->fromClause || sel->whereClause ||
		sel->groupClause || sel->havingClause || sel->windowClause || sel->distinctClause ||
		sel->sortClause || sel->limitCount || sel->limitOffset || sel->lockingClause ||
		sel->withClause || sel->intoClause || sel->valuesLists || sel->op != SETOP_NONE)
		goto not_one_expr;
	rt = linitial_node(ResTarget, sel->targetList);
	if (rt->name != NULL || rt->indirection != NIL || IsA(rt->val, A_Star) ||
		(IsA(rt->val, ColumnRef) && IsA(llast(((ColumnRef *) rt->val)->fields), A_Star)))
		goto not_one_expr;

	expr = analyse_for_rel(relid, rt->val, "row_filter", BOOLOID, filter);

	if (checkExprHasSubLink(expr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("row filter must not contain a subquery"),
				 errdetail("A row filter is evaluated on the dataset's own row alone."),
				 errhint("Express the condition over the dataset's columns.")));
	if (contain_volatile_functions(expr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("row filter must not call volatile functions"),
				 errdetail("The rows a licence covers must not change from one evaluation to the next."),
				 errhint("Use immutable or stable functions only.")));
	check_vars_walker(expr, NULL);
	check_funcs_walker(expr, NULL);
	error_context_stack = errcb.previous;
	return expr;

not_one_expr:
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("row filter must be a single boolean expression"),
			 errdetail("The filter is an expression over the dataset's columns, such as region = '110000', not a query or several statements."),
			 errhint("Remove FROM, WHERE, AS, semicolons and other clauses from the filter.")));
	return NULL;				/* keep compiler quiet */
}

/* ---- masks ---- */

typedef enum MaskTypeClass
{
	MT_TEXT,
	MT_DATE,
	MT_NUM,
	MT_ANY
} MaskTypeClass;

typedef struct MaskMethod
{
	const char *name;
	MaskTypeClass types;
	const char *types_desc;
} MaskMethod;

static const MaskMethod mask_methods[] = {
	{"redact", MT_ANY, "any type"},
	{"partial", MT_TEXT, "text, varchar and char"},
	{"email", MT_TEXT, "text, varchar and char"},
	{"cn_mobile", MT_TEXT, "text, varchar and char"},
	{"cn_id", MT_TEXT, "text, varchar and char"},
	{"cn_name", MT_TEXT, "text, varchar and char"},
	{"pseudonym", MT_TEXT, "text, varchar and char"},
	{"fpe", MT_TEXT, "text, varchar and char"},
	{"date_trunc", MT_DATE, "date, timestamp and timestamptz"},
	{"bucket", MT_NUM, "smallint, integer, bigint, numeric, real and double precision"},
	{"noise", MT_NUM, "integer, bigint, numeric and double precision"},
	{"function", MT_ANY, "any type the function takes and returns"},
	{NULL, MT_ANY, NULL}
};

static const MaskMethod *
find_method(const char *method)
{
	for (const MaskMethod *m = mask_methods; m->name; m++)
	{
		if (strcmp(m->name, method) == 0)
			return m;
	}
	return NULL;
}

static bool
type_fits(MaskTypeClass cls, Oid typid, const char *method)
{
	typid = getBaseType(typid);
	switch (cls)
	{
		case MT_TEXT:
			return typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID;
		case MT_DATE:
			return typid == DATEOID || typid == TIMESTAMPOID || typid == TIMESTAMPTZOID;
		case MT_NUM:
			if (strcmp(method, "noise") == 0)
				return typid == INT4OID || typid == INT8OID || typid == NUMERICOID || typid == FLOAT8OID;
			return typid == INT2OID || typid == INT4OID || typid == INT8OID ||
				typid == NUMERICOID || typid == FLOAT4OID || typid == FLOAT8OID;
		case MT_ANY:
			return true;
	}
	return false;
}

/* ---- tiny raw-tree builders ---- */

static Node *
raw_int(int v)
{
	A_Const    *c = makeNode(A_Const);

	c->val.ival.type = T_Integer;
	c->val.ival.ival = v;
	c->location = -1;
	return (Node *) c;
}

static Node *
raw_str(const char *s)
{
	A_Const    *c = makeNode(A_Const);

	c->val.sval.type = T_String;
	c->val.sval.sval = pstrdup(s);
	c->location = -1;
	return (Node *) c;
}

static Node *
raw_null(void)
{
	A_Const    *c = makeNode(A_Const);

	c->isnull = true;
	c->location = -1;
	return (Node *) c;
}

static Node *
raw_cast(Node *arg, TypeName *tn)
{
	TypeCast   *tc = makeNode(TypeCast);

	tc->arg = arg;
	tc->typeName = tn;
	tc->location = -1;
	return (Node *) tc;
}

static Node *
raw_col(const char *name)
{
	ColumnRef  *cr = makeNode(ColumnRef);

	cr->fields = list_make1(makeString(pstrdup(name)));
	cr->location = -1;
	return (Node *) cr;
}

/*
 * The schema of licdata's mask functions: licdata_internal, or licdata under
 * 1.0's SQL objects (ALTER EXTENSION licdata UPDATE not run yet), where only
 * an operator's set_mask builds mask expressions.
 */
static const char *
mask_schema(void)
{
	return OidIsValid(get_namespace_oid(LICDATA_INTERNAL_SCHEMA, true)) ?
		LICDATA_INTERNAL_SCHEMA : LICDATA_SCHEMA;
}

static Node *
raw_call(const char *fname, List *args)
{
	return (Node *) makeFuncCall(list_make2(makeString(pstrdup(mask_schema())), makeString(pstrdup(fname))),
								 args, COERCE_EXPLICIT_CALL, -1);
}

/* ---- jsonb params ---- */

typedef struct MaskParams
{
	Jsonb	   *jb;
	const char *method;
} MaskParams;

static void
bad_param(const MaskParams *p, const char *msg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid params for mask method \"%s\": %s", p->method, msg),
			 errhint("%s", hint)));
}

static JsonbValue *
get_param(const MaskParams *p, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(&p->jb->root, JB_FOBJECT, &k);
}

/* Refuse keys the method does not know: a typo must not go unnoticed. */
static void
check_keys(const MaskParams *p, const char *const *allowed)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			depth = 0;

	if (!JB_ROOT_IS_OBJECT(p->jb) || JB_ROOT_IS_SCALAR(p->jb))
		bad_param(p, "params must be a JSON object", "Pass an object such as '{}'.");
	it = JsonbIteratorInit(&p->jb->root);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
			depth++;
		else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
			depth--;
		else if (tok == WJB_KEY && depth == 1)
		{
			bool		ok = false;
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			for (const char *const *a = allowed; *a; a++)
			{
				if (strcmp(*a, key) == 0)
					ok = true;
			}
			if (!ok)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown parameter \"%s\" for mask method \"%s\"", key, p->method),
						 errhint("See the README's table of masking methods for each method's parameters.")));
		}
	}
}

/* Is a JSON number a whole number from min to max? */
static bool
numeric_is_whole(Numeric num)
{
	Datum		trunc = DirectFunctionCall2(numeric_trunc, NumericGetDatum(num), Int32GetDatum(0));

	return DatumGetBool(DirectFunctionCall2(numeric_eq, NumericGetDatum(num), trunc));
}

static bool
numeric_in_range(Numeric num, int64 min, int64 max)
{
	Datum		lo = DirectFunctionCall1(int8_numeric, Int64GetDatum(min));
	Datum		hi = DirectFunctionCall1(int8_numeric, Int64GetDatum(max));

	return !DatumGetBool(DirectFunctionCall2(numeric_lt, NumericGetDatum(num), lo)) &&
		!DatumGetBool(DirectFunctionCall2(numeric_gt, NumericGetDatum(num), hi));
}

static int
int_param(const MaskParams *p, const char *key, int dflt, int min, int max)
{
	JsonbValue *v = get_param(p, key);

	if (v == NULL)
		return dflt;
	if (v->type != jbvNumeric || !numeric_is_whole(v->val.numeric))
		bad_param(p, psprintf("\"%s\" must be a whole number", key),
				  psprintf("Pass an integer from %d to %d.", min, max));
	if (!numeric_in_range(v->val.numeric, min, max))
		bad_param(p, psprintf("\"%s\" is out of range", key),
				  psprintf("Pass an integer from %d to %d.", min, max));
	return DatumGetInt32(DirectFunctionCall1(numeric_int4, NumericGetDatum(v->val.numeric)));
}

static char *
str_param(const MaskParams *p, const char *key, const char *dflt)
{
	JsonbValue *v = get_param(p, key);

	if (v == NULL)
		return dflt ? pstrdup(dflt) : NULL;
	if (v->type != jbvString)
		bad_param(p, psprintf("\"%s\" must be a string", key), "Pass a JSON string.");
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* A scalar JSON value as text (for constants cast to the column type). */
static char *
scalar_param_text(const MaskParams *p, const char *key, bool *present, bool *isnull)
{
	JsonbValue *v = get_param(p, key);

	*present = (v != NULL);
	*isnull = false;
	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvNull:
			*isnull = true;
			return NULL;
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			bad_param(p, psprintf("\"%s\" must be a scalar", key), "Pass a string, number or boolean.");
	}
	return NULL;
}

/*
 * The keyed masks read the key of the licensee the session acts for.  The
 * mask tree is analysed against the variants a licensee could name in SQL
 * (licdata.mask_pseudonym(text, integer), mask_fpe(text, text),
 * mask_noise(value, double precision, double precision)), which are not
 * granted to PUBLIC; each call is then switched to the variant with a
 * trailing argument of type internal.  No SQL expression has that type (not
 * even NULL::internal), so only a tree built here can call those variants:
 * a licensee computes no keyed value of its choosing (see 30_masks.sql).
 * The argument is a NULL constant, which EXPLAIN VERBOSE can print; the
 * variants are therefore not strict.
 */
static const char *const keyed_masks[] = {"mask_pseudonym", "mask_fpe", "mask_noise", NULL};

static Node *
keyed_calls_mutator(Node *node, void *context)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *fe = (FuncExpr *) expression_tree_mutator(node, keyed_calls_mutator, context);
		HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fe->funcid));
		Form_pg_proc proc;
		bool		keyed = false;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for function %u", fe->funcid);
		proc = (Form_pg_proc) GETSTRUCT(tup);
		if (proc->pronamespace == get_namespace_oid(mask_schema(), true))
		{
			for (const char *const *k = keyed_masks; *k; k++)
				keyed |= (strcmp(NameStr(proc->proname), *k) == 0);
		}
		if (keyed && proc->pronargs > 0 &&
			proc->proargtypes.values[proc->pronargs - 1] != INTERNALOID &&
			proc->proargtypes.values[proc->pronargs - 1] != REGROLEOID)
		{
			Oid			argtypes[FUNC_MAX_ARGS];
			int			nargs = proc->pronargs;
			Oid			rw;

			memcpy(argtypes, proc->proargtypes.values, nargs * sizeof(Oid));
			argtypes[nargs] = INTERNALOID;
			rw = licdata_internal_function(NameStr(proc->proname), nargs + 1, argtypes, true);
			if (!OidIsValid(rw) && licdata_catalog() != NULL && !licdata_catalog()->version_ok)
			{
				/*
				 * 1.0's SQL objects under this library (ALTER EXTENSION
				 * licdata UPDATE not run yet): only an operator's set_mask
				 * checks a mask expression now -- licensees are refused
				 * (decide.c) -- so the expression is checked as 1.0 had it.
				 */
				ReleaseSysCache(tup);
				return (Node *) fe;
			}
			if (!OidIsValid(rw))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("function %s.%s(..., internal) does not exist", LICDATA_INTERNAL_SCHEMA, NameStr(proc->proname)),
						 errdetail("The installed SQL objects of licdata are older than its library."),
						 errhint("Run ALTER EXTENSION licdata UPDATE.")));
			fe->funcid = rw;
			fe->args = lappend(list_copy(fe->args),
							   makeConst(INTERNALOID, -1, InvalidOid, SIZEOF_DATUM,
										 (Datum) 0, true, true));
		}
		ReleaseSysCache(tup);
		return (Node *) fe;
	}
	return expression_tree_mutator(node, keyed_calls_mutator, context);
}

/*
 * Build the masking expression for column attnum of relation relid:
 * method applied to the column, cast back to the column's type.
 */
Node *
licdata_build_mask_expr(Oid relid, AttrNumber attnum, const char *method,
						const char *params_json, bool for_check)
{
	const MaskMethod *mm = find_method(method);
	MaskParams	p;
	HeapTuple	atttup;
	Form_pg_attribute att;
	char	   *colname;
	Oid			typid;
	int32		typmod;
	Oid			collid;
	bool		relabel_varchar;
	TypeName   *coltype;
	TypeName   *texttype = makeTypeNameFromOid(TEXTOID, -1);
	Node	   *raw = NULL;
	Node	   *expr;

	if (mm == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown mask method \"%s\"", method),
				 errhint("Use one of redact, partial, email, cn_mobile, cn_id, cn_name, pseudonym, fpe, date_trunc, bucket, noise, function.")));

	p.method = method;
	p.jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(params_json)));

	atttup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid), Int16GetDatum(attnum));
	if (!HeapTupleIsValid(atttup))
		elog(ERROR, "cache lookup failed for attribute %d of relation %u", attnum, relid);
	att = (Form_pg_attribute) GETSTRUCT(atttup);
	colname = pstrdup(NameStr(att->attname));
	typid = att->atttypid;
	typmod = att->atttypmod;
	collid = att->attcollation;
	ReleaseSysCache(atttup);
	coltype = makeTypeNameFromOid(typid, typmod);
	relabel_varchar = (typid == VARCHAROID && mm->types == MT_TEXT);

	if (!type_fits(mm->types, typid, method))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("mask method \"%s\" does not fit column \"%s\" of type %s",
						method, colname, format_type_with_typemod(typid, typmod)),
				 errdetail("Method \"%s\" applies to %s.", method, mm->types_desc),
				 errhint("Choose a method for the column's type; see the README's table of masking methods.")));

	if (strcmp(method, "redact") == 0)
	{
		static const char *const keys[] = {"with", NULL};
		bool		present,
					isnull;
		char	   *with;

		check_keys(&p, keys);
		with = scalar_param_text(&p, "with", &present, &isnull);
		raw = raw_cast((present && !isnull) ? raw_str(with) : raw_null(), coltype);
	}
	else if (strcmp(method, "partial") == 0)
	{
		static const char *const keys[] = {"keep_first", "keep_last", "pad", NULL};
		int			kf,
					kl;
		char	   *pad;

		check_keys(&p, keys);
		kf = int_param(&p, "keep_first", 1, 0, 1000);
		kl = int_param(&p, "keep_last", 1, 0, 1000);
		pad = str_param(&p, "pad", "*");
		if (pg_mbstrlen(pad) != 1)
			bad_param(&p, "\"pad\" must be one character", "Pass a single character such as \"*\".");
		raw = raw_call("mask_partial", list_make4(raw_cast(raw_col(colname), texttype),
												  raw_int(kf), raw_int(kl), raw_str(pad)));
		raw = relabel_varchar ? raw : raw_cast(raw, coltype);
	}
	else if (strcmp(method, "email") == 0 || strcmp(method, "cn_mobile") == 0 ||
			 strcmp(method, "cn_id") == 0 || strcmp(method, "cn_name") == 0)
	{
		static const char *const keys[] = {NULL};

		check_keys(&p, keys);
		raw = raw_call(psprintf("mask_%s", method),
					   list_make1(raw_cast(raw_col(colname), texttype)));
		raw = relabel_varchar ? raw : raw_cast(raw, coltype);
	}
	else if (strcmp(method, "pseudonym") == 0)
	{
		static const char *const keys[] = {"length", NULL};
		int			len;
		int			maxlen = typmod > (int32) VARHDRSZ ? typmod - VARHDRSZ : 64;

		check_keys(&p, keys);
		if (maxlen < 8)
			bad_param(&p, psprintf("a pseudonym (8 characters or more) does not fit column \"%s\" of type %s",
								   colname, format_type_with_typemod(typid, typmod)),
					  "Mask the column with another method, such as redact or partial.");
		len = int_param(&p, "length", 16, 8, 64);
		if (len > maxlen)
			bad_param(&p, psprintf("a pseudonym of %d characters does not fit column \"%s\" of type %s",
								   len, colname, format_type_with_typemod(typid, typmod)),
					  psprintf("Pass \"length\" of at most %d.", maxlen));
		raw = raw_call("mask_pseudonym", list_make2(raw_cast(raw_col(colname), texttype), raw_int(len)));
		raw = relabel_varchar ? raw : raw_cast(raw, coltype);
	}
	else if (strcmp(method, "fpe") == 0)
	{
		static const char *const keys[] = {"alphabet", NULL};
		char	   *alphabet;

		check_keys(&p, keys);
		alphabet = str_param(&p, "alphabet", "0123456789");
		if (pg_mbstrlen(alphabet) < 2 || pg_mbstrlen(alphabet) != (int) strlen(alphabet))
			bad_param(&p, "\"alphabet\" must have at least two ASCII characters",
					  "Pass for example \"0123456789\" or \"0123456789X\".");
		for (const char *a = alphabet; *a; a++)
		{
			if (strchr(a + 1, *a))
				bad_param(&p, "\"alphabet\" must not repeat a character",
						  "Name each character once.");
		}
		raw = raw_call("mask_fpe", list_make2(raw_cast(raw_col(colname), texttype), raw_str(alphabet)));
		raw = relabel_varchar ? raw : raw_cast(raw, coltype);
	}
	else if (strcmp(method, "date_trunc") == 0)
	{
		static const char *const keys[] = {"unit", NULL};
		static const char *const units[] = {"year", "quarter", "month", "week", "day", "hour", NULL};
		char	   *unit;
		bool		ok = false;

		check_keys(&p, keys);
		unit = str_param(&p, "unit", "month");
		for (const char *const *u = units; *u; u++)
		{
			if (strcmp(*u, unit) == 0)
				ok = true;
		}
		if (!ok)
			bad_param(&p, "unknown \"unit\"", "Use year, quarter, month, week, day or hour.");
		raw = raw_call("mask_date_trunc", list_make2(raw_col(colname), raw_str(unit)));
		raw = raw_cast(raw, coltype);
	}
	else if (strcmp(method, "bucket") == 0)
	{
		static const char *const keys[] = {"width", NULL};
		bool		present,
					isnull;
		char	   *width;
		TypeName   *basetype = makeTypeNameFromOid(getBaseType(typid), -1);

		check_keys(&p, keys);
		width = scalar_param_text(&p, "width", &present, &isnull);
		if (!present || isnull)
			bad_param(&p, "\"width\" is required", "Pass a positive bucket width, e.g. {\"width\": 1000}.");
		if (get_param(&p, "width")->type != jbvNumeric)
			bad_param(&p, "\"width\" must be a number", "Pass a positive bucket width, e.g. {\"width\": 1000}.");
		if (DatumGetBool(DirectFunctionCall2(numeric_le,
											 NumericGetDatum(get_param(&p, "width")->val.numeric),
											 DirectFunctionCall1(int4_numeric, Int32GetDatum(0)))))
			bad_param(&p, "\"width\" must be positive", "Pass a positive bucket width, e.g. {\"width\": 1000}.");
		{
			/* An integer column's bucket width must be a whole number of its type. */
			Oid			base = getBaseType(typid);
			int64		maxw = base == INT2OID ? PG_INT16_MAX :
				base == INT4OID ? PG_INT32_MAX :
				base == INT8OID ? PG_INT64_MAX : 0;

			if (maxw > 0 && (!numeric_is_whole(get_param(&p, "width")->val.numeric) ||
							 !numeric_in_range(get_param(&p, "width")->val.numeric, 1, maxw)))
				bad_param(&p, psprintf("\"width\" must be a whole number from 1 to " INT64_FORMAT " for column \"%s\" of type %s",
									   maxw, colname, format_type_be(typid)),
						  "Pass a whole bucket width that fits the column's type, e.g. {\"width\": 1000}.");
		}
		raw = raw_call("mask_bucket", list_make2(raw_cast(raw_col(colname), basetype),
												 raw_cast(raw_str(width), basetype)));
		raw = raw_cast(raw, coltype);
	}
	else if (strcmp(method, "noise") == 0)
	{
		static const char *const keys[] = {"relative", "absolute", NULL};
		JsonbValue *rel = get_param(&p, "relative");
		JsonbValue *abs = get_param(&p, "absolute");
		JsonbValue *given;
		TypeName   *f8 = makeTypeNameFromOid(FLOAT8OID, -1);
		TypeName   *basetype = makeTypeNameFromOid(getBaseType(typid), -1);
		char	   *amount;

		check_keys(&p, keys);
		if ((rel == NULL) == (abs == NULL))
			bad_param(&p, "give exactly one of \"relative\" and \"absolute\"",
					  "Pass e.g. {\"relative\": 0.05} for up to 5 % noise, or {\"absolute\": 100}.");
		given = rel ? rel : abs;
		if (given->type != jbvNumeric ||
			DatumGetBool(DirectFunctionCall2(numeric_le, NumericGetDatum(given->val.numeric),
											 DirectFunctionCall1(int4_numeric, Int32GetDatum(0)))))
			bad_param(&p, "the noise amount must be a positive number",
					  "Pass e.g. {\"relative\": 0.05} or {\"absolute\": 100}.");
		if (rel && DatumGetBool(DirectFunctionCall2(numeric_gt, NumericGetDatum(given->val.numeric),
													DirectFunctionCall1(int4_numeric, Int32GetDatum(10)))))
			bad_param(&p, "\"relative\" must be at most 10", "Pass a fraction such as 0.05.");
		amount = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(given->val.numeric)));
		raw = raw_call("mask_noise",
					   list_make3(raw_cast(raw_col(colname), basetype),
								  rel ? raw_cast(raw_str(amount), f8) : raw_cast(raw_null(), f8),
								  abs ? raw_cast(raw_str(amount), f8) : raw_cast(raw_null(), f8)));
		raw = raw_cast(raw, coltype);
	}
	else if (strcmp(method, "function") == 0)
	{
		static const char *const keys[] = {"name", NULL};
		char	   *fname;
		List	   *names;
		Oid			argtype = getBaseType(typid);
		Oid			fnoid;
		HeapTuple	proctup;
		Form_pg_proc proc;

		check_keys(&p, keys);
		fname = str_param(&p, "name", NULL);
		if (fname == NULL)
			bad_param(&p, "\"name\" is required", "Pass the schema-qualified function name, e.g. {\"name\": \"ops.mask_salary\"}.");
		names = stringToQualifiedNameList(fname);
		if (list_length(names) < 2)
			bad_param(&p, "\"name\" must be schema-qualified",
					  "Pass the function as schema.function, e.g. {\"name\": \"ops.mask_salary\"}.");
		fnoid = LookupFuncName(names, 1, &argtype, true);
		if (!OidIsValid(fnoid) && argtype != typid)
			fnoid = LookupFuncName(names, 1, &typid, true);
		if (!OidIsValid(fnoid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("function %s(%s) does not exist", fname, format_type_be(typid)),
					 errhint("Create a function of one argument of the column's type that returns the same type.")));
		proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fnoid));
		if (!HeapTupleIsValid(proctup))
			elog(ERROR, "cache lookup failed for function %u", fnoid);
		proc = (Form_pg_proc) GETSTRUCT(proctup);
		if (proc->proretset || proc->prokind != PROKIND_FUNCTION ||
			getBaseType(proc->prorettype) != getBaseType(typid) ||
			proc->provolatile == PROVOLATILE_VOLATILE)
		{
			ReleaseSysCache(proctup);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("function %s cannot mask column \"%s\"", fname, colname),
					 errdetail("A masking function returns one value of the column's type (%s) and is immutable or stable.",
							   format_type_be(typid)),
					 errhint("Declare it RETURNS %s IMMUTABLE (or STABLE), not as a set-returning or volatile function.",
							 format_type_be(typid))));
		}
		if (!function_pins_search_path(proctup))
		{
			ReleaseSysCache(proctup);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("function %s cannot mask column \"%s\": it does not pin search_path", fname, colname),
					 errdetail("A masking function runs in the licensee's session; without a search_path setting of its own that ends with pg_temp and does not name \"$user\", the names in its body would resolve through the licensee's search_path."),
					 errhint("Run ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp (schemas the function needs may come before pg_temp).",
							 format_procedure(fnoid))));
		}
		ReleaseSysCache(proctup);
		raw = (Node *) makeFuncCall(names, list_make1(raw_col(colname)), COERCE_EXPLICIT_CALL, -1);
		raw = raw_cast(raw, coltype);
	}

	if (strcmp(method, "function") == 0)
		expr = analyse_for_rel(relid, raw, method, InvalidOid, NULL);
	else
	{
		/*
		 * licdata's own mask functions are in schema licdata_internal, on
		 * which licensees (whose queries build these expressions) have no
		 * USAGE: the names are resolved as the bootstrap superuser.  The
		 * expression holds only the column, constants, casts to the column's
		 * type and those functions; EXECUTE is checked when the plan runs.
		 * An operator's function mask is resolved as the session's user.
		 */
		Oid			save_userid;
		int			save_sec;

		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
							   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
		PG_TRY();
		{
			expr = analyse_for_rel(relid, raw, method, InvalidOid, NULL);
		}
		PG_FINALLY();
		{
			SetUserIdAndSecContext(save_userid, save_sec);
		}
		PG_END_TRY();
	}
	expr = keyed_calls_mutator(expr, NULL);

	/*
	 * A text mask of a varchar(n) column: the character-for-character masks
	 * keep the value's length, and a pseudonym's length was checked against
	 * n above, so the result always fits; relabel it as the column's type
	 * instead of calling the length coercion for every row.
	 */
	if (relabel_varchar && exprType(expr) == TEXTOID)
		expr = (Node *) makeRelabelType((Expr *) expr, typid, typmod, collid,
										COERCE_IMPLICIT_CAST);
	if (exprType(expr) != typid)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("mask method \"%s\" does not keep the type of column \"%s\"", method, colname),
				 errhint("Choose a method for the column's type.")));
	return expr;
}
