/*-------------------------------------------------------------------------
 *
 * fold.c
 *	  Count the dataset rows a licensee's statement folds into one value.
 *
 * Metering counts the rows a statement delivers; a statement can also
 * fold many rows into one delivered value.  In a licensee statement that
 * reads a dataset, after the licence rewrite (rewrite.c), this pass puts a
 * row counter (licdata._count_row / licdata._count_value, meter.c) at
 * every place where rows are folded, at every query level:
 *
 *	- every aggregate but the scalar summaries (count, sum, avg, min, max,
 *	  the stddev / variance / regression family, bool_and / bool_or /
 *	  every, bit_and / bit_or / bit_xor): string_agg, array_agg, json_agg,
 *	  jsonb_agg, json(b)_object_agg, xmlagg, ordered-set aggregates and
 *	  every user-defined aggregate count each input row they take, through
 *	  a counter added to their FILTER (so a row their own FILTER drops is
 *	  not counted); the same for such aggregates used as window functions;
 *	- window functions that return another row's value (lag, lead,
 *	  first_value, last_value, nth_value ...) count each value returned;
 *	- ARRAY(SELECT ...) and scalar (SELECT ...) subqueries count each row
 *	  they return (a recursive CTE that appends one looked-up row per step
 *	  is counted here);
 *	- the recursive term of a recursive CTE counts each row it produces;
 *	- a query level that joins k >= 2 rows of one dataset into each row
 *	  it returns (self-joins) counts k per row; a join of different
 *	  datasets delivers one row of each per result row, billed on each
 *	  dataset's own licence;
 *	- a volatile built-in function fed with row data keeps it beyond the
 *	  row (set_config, pg_notify, setval, advisory locks, large objects):
 *	  each call counts one row.  The licensee's own functions are counted
 *	  per call where they run (meter.c, through fmgr_hook).
 *
 * The counters count into the running statement's "rows produced inside
 * it" (nested rows), and the statement is billed the larger of the rows it
 * delivered and those (meter.c): SELECT string_agg(name, ',') FROM people
 * over 1,000 rows is billed 1,000 rows, and a rows quota stops it on the
 * row that passes the limit.  The rewrite's own subqueries (the licensed
 * reads of a dataset) are not touched.  When a statement reads no dataset
 * nothing is added.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "catalog/pg_proc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "licdata.h"
#include "meter.h"
#include "rewrite.h"

typedef struct FoldContext
{
	bool		serial;			/* calls a function counted per call */
	Oid			reader_role;
	Oid			count_row;		/* licdata._count_row(boolean, internal) */
	Oid			count_value;	/* licdata._count_value(anyelement, internal) */
	List	   *skip;			/* the masks the rewrite put in place */
} FoldContext;

/* Aggregates that return one summary value, not the rows they read. */
static const char *const scalar_aggs[] = {
	"count", "sum", "avg", "min", "max",
	"stddev", "stddev_samp", "stddev_pop", "variance", "var_samp", "var_pop",
	"corr", "covar_pop", "covar_samp",
	"regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2",
	"regr_slope", "regr_sxx", "regr_sxy", "regr_syy",
	"bool_and", "bool_or", "every", "bit_and", "bit_or", "bit_xor",
	NULL
};

/* Window functions whose value is not taken from another row. */
static const char *const rank_windows[] = {
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile",
	NULL
};

static bool
builtin_named(Oid fn, const char *const *names)
{
	char	   *name;

	if (get_func_namespace(fn) != PG_CATALOG_NAMESPACE)
		return false;
	name = get_func_name(fn);
	for (const char *const *a = names; *a; a++)
	{
		if (strcmp(*a, name) == 0)
			return true;
	}
	return false;
}

/*
 * Per backend, what the pass needs to know of a function: the two
 * counters' OIDs, and per function whether it is counted per call
 * (licdata_meter_counts_calls) and whether it is a volatile built-in.
 * Looked up once, not at every statement; dropped at every change of
 * pg_proc (a function replaced, licdata's SQL objects recreated) and of
 * role membership (which owners count as operators).
 */
#define FN_MEMO_SIZE 64

typedef struct FnMemo
{
	Oid			fn;
	bool		counts;			/* counted per call */
	bool		volatile_builtin;	/* volatile, in pg_catalog */
} FnMemo;

static FnMemo fn_memo[FN_MEMO_SIZE];
static Oid	memo_count_row = InvalidOid;
static Oid	memo_count_value = InvalidOid;
static bool memo_registered = false;
static uint64 memo_resets = 0;

static void
fn_memo_reset(Datum arg, int cacheid, uint32 hashvalue)
{
	memo_resets++;
	memset(fn_memo, 0, sizeof(fn_memo));
	memo_count_row = InvalidOid;
	memo_count_value = InvalidOid;
}

static void
fn_memo_register(void)
{
	if (memo_registered)
		return;
	CacheRegisterSyscacheCallback(PROCOID, fn_memo_reset, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, fn_memo_reset, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, fn_memo_reset, (Datum) 0);
	memo_registered = true;
}

static const FnMemo *
fn_info(Oid fn)
{
	FnMemo	   *m = &fn_memo[fn % FN_MEMO_SIZE];
	FnMemo		fresh;
	uint64		resets;

	fn_memo_register();
	if (OidIsValid(fn) && m->fn == fn)
		return m;
	resets = memo_resets;
	fresh.fn = fn;
	fresh.counts = licdata_meter_counts_calls(fn);
	fresh.volatile_builtin = get_func_namespace(fn) == PG_CATALOG_NAMESPACE &&
		func_volatile(fn) == PROVOLATILE_VOLATILE;
	/* kept only when no invalidation arrived during the lookups */
	if (resets == memo_resets)
	{
		*m = fresh;
		return m;
	}
	m = palloc(sizeof(FnMemo));
	*m = fresh;
	return m;
}

static Oid
counter_function(const char *name, Oid argtype)
{
	Oid			argtypes[2] = {argtype, INTERNALOID};
	Oid		   *memo = (argtype == BOOLOID) ? &memo_count_row : &memo_count_value;
	uint64		resets;
	Oid			fn;

	fn_memo_register();
	if (OidIsValid(*memo))
		return *memo;
	resets = memo_resets;
	fn = licdata_internal_function(name, 2, argtypes, false);
	if (resets == memo_resets)
		*memo = fn;
	return fn;
}

static Const *
null_internal(void)
{
	return makeNullConst(INTERNALOID, -1, InvalidOid);
}

/* _count_value(e): e, counting one row each time it is evaluated */
static Expr *
count_value(FoldContext *fc, Expr *e)
{
	Oid			type = exprType((Node *) e);

	return (Expr *) makeFuncExpr(fc->count_value, type,
								 list_make2(e, null_internal()),
								 exprCollation((Node *) e), exprCollation((Node *) e),
								 COERCE_EXPLICIT_CALL);
}

/* _count_row(filter): the filter, counting each row it lets through */
static Expr *
count_filter(FoldContext *fc, Expr *filter)
{
	if (filter == NULL)
		filter = (Expr *) makeBoolConst(true, false);
	return (Expr *) makeFuncExpr(fc->count_row, BOOLOID,
								 list_make2(filter, null_internal()),
								 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
}

/*
 * The dataset table rte reads when it is one of the rewrite's licensed
 * reads (its subquery, or the entry served in place), else InvalidOid.
 */
static Oid
licensed_read(FoldContext *fc, RangeTblEntry *rte)
{
	RangeTblEntry *inner;

	if (rte->rtekind == RTE_RELATION)
		return rte->checkAsUser == fc->reader_role ? rte->relid : InvalidOid;
	if (rte->rtekind != RTE_SUBQUERY || rte->subquery == NULL ||
		list_length(rte->subquery->rtable) != 1)
		return InvalidOid;
	inner = linitial_node(RangeTblEntry, rte->subquery->rtable);
	if (inner->rtekind == RTE_RELATION && inner->checkAsUser == fc->reader_role)
		return inner->relid;
	return InvalidOid;
}

/* The first target entry a subquery returns (its value in a sublink). */
static TargetEntry *
first_output(Query *q)
{
	ListCell   *lc;

	foreach(lc, q->targetList)
	{
		TargetEntry *te = lfirst(lc);

		if (!te->resjunk)
			return te;
	}
	return NULL;
}

static void fold_query(Query *q, FoldContext *fc);

/* Does an expression depend on rows (not only on constants)? */
static bool
row_data_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) || IsA(node, Param) || IsA(node, SubLink) ||
		IsA(node, Aggref) || IsA(node, WindowFunc))
		return true;
	return expression_tree_walker(node, row_data_walker, context);
}

static bool
contain_row_data(Node *node)
{
	return row_data_walker(node, NULL);
}

/*
 * Count each row query q returns: its first output, or, for a set
 * operation (whose own target list the planner rebuilds), each branch's.
 */
static void
count_outputs(FoldContext *fc, Query *q, Node *setop)
{
	if (setop == NULL)
		setop = q->setOperations;
	if (setop == NULL)
	{
		TargetEntry *te = first_output(q);

		if (te)
			te->expr = count_value(fc, te->expr);
	}
	else if (IsA(setop, SetOperationStmt))
	{
		count_outputs(fc, q, ((SetOperationStmt *) setop)->larg);
		count_outputs(fc, q, ((SetOperationStmt *) setop)->rarg);
	}
	else if (IsA(setop, RangeTblRef))
	{
		RangeTblEntry *r = rt_fetch(((RangeTblRef *) setop)->rtindex, q->rtable);

		if (r->rtekind == RTE_SUBQUERY && r->subquery)
			count_outputs(fc, r->subquery, NULL);
	}
}

static Node *
window_mutator(Node *node, FoldContext *fc)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, WindowFunc))
	{
		WindowFunc *w = (WindowFunc *) node;

		if (w->winagg)
		{
			if (!builtin_named(w->winfnoid, scalar_aggs))
				w->aggfilter = count_filter(fc, w->aggfilter);
			return node;
		}
		if (w->args != NIL && !builtin_named(w->winfnoid, rank_windows))
			return (Node *) count_value(fc, (Expr *) w);
		return node;
	}
	if (IsA(node, Query))
		return node;
	return expression_tree_mutator(node, window_mutator, fc);
}

static bool
counted_function(Oid fn, void *context)
{
	return fn_info(fn)->counts;
}

static bool
fold_walker(Node *node, FoldContext *fc)
{
	if (node == NULL)
		return false;
	/*
	 * The nodes most of a query is made of, which hold no function call, no
	 * aggregate, no sublink and no mask: taken without the general checks
	 * below.  (A list and a target entry only hold other nodes.)
	 */
	switch (nodeTag(node))
	{
		case T_Var:
		case T_Const:
		case T_Param:
		case T_CaseTestExpr:
		case T_RangeTblRef:
			return false;
		case T_List:
			{
				ListCell   *lc;

				foreach(lc, (List *) node)
				{
					if (fold_walker(lfirst(lc), fc))
						return true;
				}
				return false;
			}
		case T_TargetEntry:
			return fold_walker((Node *) ((TargetEntry *) node)->expr, fc);
		case T_FromExpr:
			{
				FromExpr   *f = (FromExpr *) node;

				return fold_walker((Node *) f->fromlist, fc) || fold_walker(f->quals, fc);
			}
		default:
			break;
	}
	/* a mask the rewrite put in place is the licence's, like its subquery */
	if (fc->skip != NIL && list_member_ptr(fc->skip, node))
		return false;
	/*
	 * The licensee's own functions are counted where they are called; a
	 * parallel worker could not count into the statement, so such a
	 * statement is planned without parallel workers.  A domain's CHECK
	 * constraint may call one too.
	 */
	if (!fc->serial &&
		(IsA(node, CoerceToDomain) || check_functions_in_node(node, counted_function, NULL)))
		fc->serial = true;
	if (IsA(node, Query))
	{
		fold_query((Query *) node, fc);
		return false;
	}
	if (IsA(node, Aggref))
	{
		Aggref	   *a = (Aggref *) node;

		if (!builtin_named(a->aggfnoid, scalar_aggs))
			a->aggfilter = count_filter(fc, a->aggfilter);
		/* arguments and the filter may hold sublinks */
		return expression_tree_walker(node, fold_walker, fc);
	}
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *f = (FuncExpr *) node;

		if (!f->funcretset && f->funcid != fc->count_value && f->funcid != fc->count_row &&
			fn_info(f->funcid)->volatile_builtin &&
			contain_row_data((Node *) f->args))
		{
			/*
			 * A volatile built-in fed with row data keeps it beyond the
			 * row: set_config, pg_notify, setval, advisory locks, large
			 * objects.  The call becomes _count_value(call), in place.
			 */
			FuncExpr   *call = makeNode(FuncExpr);

			memcpy(call, f, sizeof(FuncExpr));
			f->funcid = fc->count_value;
			f->funcvariadic = false;
			f->funcformat = COERCE_EXPLICIT_CALL;
			f->inputcollid = call->funccollid;
			f->args = list_make2(call, null_internal());
			return expression_tree_walker((Node *) call->args, fold_walker, fc);
		}
		return expression_tree_walker(node, fold_walker, fc);
	}
	if (IsA(node, SubLink))
	{
		SubLink    *sl = (SubLink *) node;

		if (sl->subLinkType == EXPR_SUBLINK || sl->subLinkType == ARRAY_SUBLINK)
			count_outputs(fc, (Query *) sl->subselect, NULL);
		return expression_tree_walker(node, fold_walker, fc);
	}
	return expression_tree_walker(node, fold_walker, fc);
}

static void
fold_query(Query *q, FoldContext *fc)
{
	ListCell   *lc;
	List	   *read_relids = NIL;	/* every licensed read, once there are two */
	Oid			first_read = InvalidOid;
	int			most = 0;		/* most reads of one dataset */

	check_stack_depth();
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		Oid			read = licensed_read(fc, rte);

		/* (a list only when a level reads more than once: self-joins) */
		if (OidIsValid(read) && !OidIsValid(first_read))
			first_read = read;
		else if (OidIsValid(read))
		{
			if (read_relids == NIL)
				read_relids = list_make1_oid(first_read);
			read_relids = lappend_oid(read_relids, read);
		}
		else if (rte->rtekind == RTE_SUBQUERY && rte->subquery)
			fold_query(rte->subquery, fc);
		else if (rte->rtekind == RTE_FUNCTION)
			(void) expression_tree_walker((Node *) rte->functions, fold_walker, fc);
		else if (rte->rtekind == RTE_VALUES)
			(void) expression_tree_walker((Node *) rte->values_lists, fold_walker, fc);
	}
	foreach(lc, q->cteList)
	{
		CommonTableExpr *cte = lfirst(lc);
		Query	   *cq = (Query *) cte->ctequery;

		fold_query(cq, fc);
		if (cte->cterecursive && cq->setOperations &&
			IsA(cq->setOperations, SetOperationStmt))
		{
				SetOperationStmt *op = (SetOperationStmt *) cq->setOperations;

			count_outputs(fc, cq, op->rarg);
		}
	}
	(void) query_tree_walker(q, fold_walker, fc,
							 QTW_IGNORE_RANGE_TABLE | QTW_IGNORE_CTE_SUBQUERIES);
	if (q->hasWindowFuncs)
	{
		foreach(lc, q->targetList)
		{
			TargetEntry *te = lfirst(lc);

			te->expr = (Expr *) window_mutator((Node *) te->expr, fc);
		}
	}

	/*
	 * A row joining k rows of one dataset (a self-join) carries k of them.
	 * Rows of different datasets are counted on their own licences: a join
	 * of two datasets delivers one row of each per result row.
	 */
	foreach(lc, read_relids)
	{
		int			n = 0;
		ListCell   *lc2;

		foreach(lc2, read_relids)
			if (lfirst_oid(lc2) == lfirst_oid(lc))
				n++;
		most = Max(most, n);
	}
	if (most >= 2 && !q->hasAggs && q->groupClause == NIL && q->groupingSets == NIL &&
		q->setOperations == NULL)
	{
		TargetEntry *te = first_output(q);

		for (int i = 0; te && i < most; i++)
			te->expr = count_value(fc, te->expr);
	}
}

/*
 * Add the row counters to a licensee statement that reads a dataset
 * (licdata_rewrite has run on it).  Sets ctx->serial_only when the
 * statement calls a function counted per call (the planner hook then plans
 * it without parallel workers).
 */
void
licdata_fold_count(Query *parse, LicdataRewrite *ctx)
{
	FoldContext fc;

	fc.serial = false;
	fc.reader_role = ctx->reader_role;
	fc.count_row = counter_function("_count_row", BOOLOID);
	fc.count_value = counter_function("_count_value", ANYELEMENTOID);
	fc.skip = ctx->inplace_masks;
	fold_query(parse, &fc);
	ctx->serial_only = fc.serial;
}
