/*-------------------------------------------------------------------------
 *
 * aggregate.c
 *	  Aggregate-only licences: "usable but not visible".
 *
 * Under a licence with mode = 'aggregate', the only values that leave the
 * database from the dataset are aggregates of groups of at least
 * min_group_size distinct rows of the dataset.  The rewrite calls
 * licdata_aggregate_wrap for each such range-table entry and
 * licdata_aggregate_finish_level once per query level; this file proves the
 * level safe or refuses it (LD008) -- it never guesses:
 *
 *	1. The level that reads the dataset aggregates (aggregate functions or
 *	   GROUP BY) and has no window functions; otherwise its rows would leave.
 *	2. Its aggregates are from an allow-list (count, sum, avg, stddev,
 *	   variance and friends, corr, covar); min, max, percentiles, array_agg,
 *	   string_agg, json_agg, bool_and ... return one individual's value and
 *	   are refused.  Their arguments are plain columns of the level's
 *	   aggregate-licensed datasets (or *), with no FILTER and no ORDER BY:
 *	   sum(CASE WHEN id = 42 THEN salary END) would isolate one entity
 *	   inside a large group, and so would sum(own.is_42) over a column of
 *	   the licensee's own table that tags one entity.
 *	   The walk covers every sublink below the level: an aggregate written
 *	   inside a subquery whose arguments are the level's columns belongs to
 *	   the level (agglevelsup > 0), and is refused there -- (SELECT
 *	   max(t.revenue)) in a select list or HAVING would otherwise escape.
 *	   GROUPING SETS, ROLLUP and CUBE are refused: a suppressed group's
 *	   size and sums follow from the released ones by subtraction.
 *	3. Every expression evaluated per input row -- WHERE, JOIN ON, GROUP
 *	   BY -- that involves the dataset calls only leakproof functions and
 *	   operators (and numeric comparisons, which cannot fail), so neither
 *	   errors (1/0) nor side effects (a function that RAISEs its argument)
 *	   can leak a row; subqueries there may not refer to the dataset.
 *	4. A gate licdata._agg_gate(count(DISTINCT <row id>), count(<row id>),
 *	   min_group_size, internal) decides HAVING first (CASE WHEN gate THEN
 *	   <licensee's HAVING> ELSE false): a group is released only when it
 *	   holds at least min_group_size distinct dataset rows AND no dataset
 *	   row appears in it twice -- a join that repeats one row (duplicates in
 *	   the licensee's own table) would weight that entity inside a large
 *	   group.  The licensee's HAVING never sees a suppressed group.
 *	   Nothing the statement reports depends on the suppressed groups: no
 *	   notice, and rows_aggregated (kept per statement by meter.c) counts
 *	   the rows of released groups only -- whether a group was suppressed
 *	   or empty looks the same.  The gate takes an internal argument, so
 *	   SQL cannot call it; only this rewrite builds the call.
 * The output of such a level is aggregates of large groups, so whatever
 * the query does with it above is safe.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "utils/regproc.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_oper.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "errcodes.h"
#include "licdata.h"
#include "meter.h"
#include "rewrite.h"

typedef struct AggregateTarget
{
	Index		rti;
	AttrNumber	rowid_attno;
	Oid			rowid_type;
	int			min_group_size;
	LicdataDataset *ds;
	int64		licence_id;
} AggregateTarget;

typedef struct AggregateLevel
{
	Query	   *q;
	List	   *targets;		/* of AggregateTarget * */
} AggregateLevel;

static const char *const allowed_aggs[] = {
	"count", "sum", "avg", "stddev", "stddev_samp", "stddev_pop",
	"variance", "var_samp", "var_pop", "corr", "covar_pop", "covar_samp",
	NULL
};

static void
refuse(LicdataRewrite *ctx, AggregateTarget *t, const char *msg, const char *detail)
{
	LicdataDecision d;

	memset(&d, 0, sizeof(d));
	d.sqlerrcode = ERRCODE_LD_AGGREGATE_ONLY;
	d.message = psprintf("licence %lld allows only aggregates of dataset %s: %s",
						 (long long) t->licence_id, t->ds->name, msg);
	d.detail = pstrdup(detail);
	d.hint = psprintf("Aggregate with count, sum, avg, stddev or variance over plain columns, with GROUP BY; groups of fewer than %d rows are suppressed.",
					  t->min_group_size);
	licdata_rewrite_refuse(ctx, t->ds, &d);
}

/*
 * Called for each aggregate-licensed entry rti of level q, before the entry
 * becomes subquery sub: add the hidden row-id column and remember the gate.
 */
void
licdata_aggregate_wrap(Query *q, Index rti, Query *sub, const LicdataLicence *lic,
					   LicdataDataset *ds, LicdataRewrite *ctx)
{
	RangeTblEntry *rte = rt_fetch(rti, q->rtable);
	RangeTblEntry *inner = linitial_node(RangeTblEntry, sub->rtable);
	AggregateTarget *t = palloc0(sizeof(AggregateTarget));
	AggregateLevel *lvl = NULL;
	Expr	   *rowid;
	ListCell   *lc;

	t->rti = rti;
	t->ds = ds;
	t->licence_id = lic->id;
	t->min_group_size = lic->min_group_size;
	t->rowid_attno = list_length(sub->targetList) + 1;

	/* ctid identifies a row within one table; with children add tableoid. */
	if (inner->inh)
	{
		RowExpr    *r = makeNode(RowExpr);

		r->args = list_make2(makeVar(1, TableOidAttributeNumber, OIDOID, -1, InvalidOid, 0),
							 makeVar(1, SelfItemPointerAttributeNumber, TIDOID, -1, InvalidOid, 0));
		r->row_typeid = RECORDOID;
		r->row_format = COERCE_IMPLICIT_CAST;
		r->colnames = list_make2(makeString("tableoid"), makeString("ctid"));
		r->location = -1;
		rowid = (Expr *) r;
		t->rowid_type = RECORDOID;
	}
	else
	{
		rowid = (Expr *) makeVar(1, SelfItemPointerAttributeNumber, TIDOID, -1, InvalidOid, 0);
		t->rowid_type = TIDOID;
	}
	sub->targetList = lappend(sub->targetList,
							  makeTargetEntry(rowid, t->rowid_attno,
											  pstrdup("licdata_rowid"), false));
	rte->eref->colnames = lappend(rte->eref->colnames, makeString(pstrdup("licdata_rowid")));

	foreach(lc, ctx->aggregate_levels)
	{
		AggregateLevel *l = lfirst(lc);

		if (l->q == q)
			lvl = l;
	}
	if (lvl == NULL)
	{
		lvl = palloc0(sizeof(AggregateLevel));
		lvl->q = q;
		ctx->aggregate_levels = lappend(ctx->aggregate_levels, lvl);
	}
	lvl->targets = lappend(lvl->targets, t);
}

/* ---- checks ---- */

typedef struct VarSearch
{
	Index		rti;
	int			sublevels;		/* current depth below the level */
	bool		found;
} VarSearch;

static bool
refers_walker(Node *node, VarSearch *vs)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		if (v->varno == vs->rti && v->varlevelsup == vs->sublevels)
		{
			vs->found = true;
			return true;
		}
		return false;
	}
	if (IsA(node, Query))
	{
		bool		r;

		vs->sublevels++;
		r = query_tree_walker((Query *) node, refers_walker, vs, 0);
		vs->sublevels--;
		return r;
	}
	return expression_tree_walker(node, refers_walker, vs);
}

/* Does node refer to range-table entry rti (directly or through joins)? */
static bool
refers_to(Query *q, Node *node, Index rti)
{
	VarSearch	vs = {rti, 0, false};
	ListCell   *lc;
	Index		j = 0;

	refers_walker(node, &vs);
	if (vs.found)
		return true;
	/* Join alias Vars stand for the joined relations' columns. */
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		j++;
		if (rte->rtekind == RTE_JOIN)
		{
			VarSearch	inner = {rti, 0, false};

			refers_walker((Node *) rte->joinaliasvars, &inner);
			if (inner.found)
			{
				VarSearch	uses = {j, 0, false};

				refers_walker(node, &uses);
				if (uses.found)
					return true;
			}
		}
	}
	return false;
}

/*
 * Functions PostgreSQL does not mark leakproof but that cannot fail or have
 * side effects for any input: numeric comparisons (statistics filter on
 * amounts, e.g. revenue >= a reporting threshold).
 */
static bool
never_fails(Oid funcid)
{
	switch (funcid)
	{
		case F_NUMERIC_EQ:
		case F_NUMERIC_NE:
		case F_NUMERIC_LT:
		case F_NUMERIC_LE:
		case F_NUMERIC_GT:
		case F_NUMERIC_GE:
			return true;
		default:
			return false;
	}
}

typedef struct LeakCheck
{
	Oid			bad_func;
	bool		has_sublink;
} LeakCheck;

static bool
leak_walker(Node *node, LeakCheck *lc)
{
	Oid			funcid = InvalidOid;

	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
	{
		lc->has_sublink = true;
		return true;
	}
	if (IsA(node, Aggref))
		return false;			/* its arguments are checked on their own */
	if (IsA(node, FuncExpr))
		funcid = ((FuncExpr *) node)->funcid;
	else if (IsA(node, OpExpr) || IsA(node, DistinctExpr) || IsA(node, NullIfExpr))
		funcid = get_opcode(((OpExpr *) node)->opno);
	else if (IsA(node, ScalarArrayOpExpr))
		funcid = get_opcode(((ScalarArrayOpExpr *) node)->opno);
	else if (IsA(node, CoerceViaIO) || IsA(node, ArrayCoerceExpr) ||
			 IsA(node, ConvertRowtypeExpr) || IsA(node, RowCompareExpr) ||
			 IsA(node, MinMaxExpr) || IsA(node, SQLValueFunction) ||
			 IsA(node, XmlExpr) || IsA(node, CoerceToDomain))
	{
		/* Input/output conversions and the like can fail on a value. */
		lc->bad_func = InvalidOid;
		lc->has_sublink = true;
		return true;
	}
	if (OidIsValid(funcid) && !get_func_leakproof(funcid) && !never_fails(funcid))
	{
		lc->bad_func = funcid;
		return true;
	}
	return expression_tree_walker(node, leak_walker, lc);
}

static void
check_leakproof(LicdataRewrite *ctx, AggregateTarget *t, Query *q, Node *expr, const char *where)
{
	LeakCheck	lc = {InvalidOid, false};

	if (expr == NULL || !refers_to(q, expr, t->rti))
		return;
	if (leak_walker(expr, &lc))
	{
		if (lc.has_sublink)
			refuse(ctx, t, psprintf("the %s cannot be proved safe", where),
				   "Subqueries, conversions and similar constructs that read the dataset before its rows are aggregated could reveal single rows.");
		refuse(ctx, t, psprintf("the %s calls %s, which is not leakproof", where,
								format_procedure(lc.bad_func)),
			   "A function that is not leakproof could reveal single rows through an error or a side effect before they are aggregated.");
	}
}

static bool
agg_allowed(Oid aggfnoid)
{
	char	   *name;

	if (get_func_namespace(aggfnoid) != PG_CATALOG_NAMESPACE)
		return false;
	name = get_func_name(aggfnoid);
	for (const char *const *a = allowed_aggs; *a; a++)
	{
		if (strcmp(*a, name) == 0)
			return true;
	}
	return false;
}

/*
 * Resolve a Var of level q through join alias Vars to the base relation's
 * Var; NULL when it stands for an expression (a merged USING column of a
 * FULL JOIN is a COALESCE).
 */
static Var *
resolve_var(Query *q, Var *v)
{
	while (v->varlevelsup == 0 && v->varno > 0 && v->varno <= list_length(q->rtable))
	{
		RangeTblEntry *rte = rt_fetch(v->varno, q->rtable);
		Node	   *e;

		if (rte->rtekind != RTE_JOIN || v->varattno <= 0 ||
			v->varattno > list_length(rte->joinaliasvars))
			break;
		e = strip_implicit_coercions((Node *) list_nth(rte->joinaliasvars, v->varattno - 1));
		if (e == NULL || !IsA(e, Var))
			return NULL;
		v = (Var *) e;
	}
	return v;
}

/* Is v (of level q) a column of one of the level's aggregate-licensed entries? */
static bool
is_target_column(Query *q, AggregateLevel *lvl, Var *v)
{
	ListCell   *lc;

	if (v->varlevelsup != 0)
		return false;
	v = resolve_var(q, v);
	if (v == NULL)
		return false;
	foreach(lc, lvl->targets)
	{
		AggregateTarget *t = lfirst(lc);

		if (v->varno == t->rti)
			return true;
	}
	return false;
}

typedef struct AggCheck
{
	Query	   *q;
	AggregateLevel *lvl;
	int			depth;			/* sublink depth below q */
	Aggref	   *bad;
	const char *why;
} AggCheck;

/*
 * Check every aggregate that belongs to level q, wherever it is written:
 * in q itself (depth 0) or inside a sublink below it (agglevelsup equal to
 * the sublink depth).  Range-table subqueries are levels of their own
 * (LATERAL ones that see q's rows are refused by the caller).
 */
static bool
aggs_walker(Node *node, AggCheck *ac)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref))
	{
		Aggref	   *a = (Aggref *) node;
		ListCell   *lc;

		if ((int) a->agglevelsup != ac->depth)
			return expression_tree_walker(node, aggs_walker, ac);	/* an inner level's */
		ac->bad = a;
		if (ac->depth > 0)
		{
			ac->why = "is written inside a subquery";
			return true;
		}
		if (!agg_allowed(a->aggfnoid))
		{
			ac->why = "is not an aggregate that hides individual values";
			return true;
		}
		if (a->aggfilter != NULL || a->aggorder != NIL || a->aggdirectargs != NIL)
		{
			ac->why = "uses FILTER or ORDER BY";
			return true;
		}
		foreach(lc, a->args)
		{
			TargetEntry *te = lfirst(lc);
			Node	   *e = (Node *) te->expr;

			if (IsA(e, Const))
				continue;
			if (!IsA(e, Var))
			{
				ac->why = "has an argument that is not a plain column";
				return true;
			}
			if (!is_target_column(ac->q, ac->lvl, (Var *) e))
			{
				ac->why = "has an argument that is not a column of the aggregate-licensed dataset";
				return true;
			}
		}
		ac->bad = NULL;
		return false;
	}
	if (IsA(node, GroupingFunc))
	{
		ac->why = "GROUPING() is not allowed";
		return true;
	}
	if (IsA(node, Query))
	{
		bool		r;

		/* below q, subqueries in FROM may refer to q too */
		ac->depth++;
		r = query_tree_walker((Query *) node, aggs_walker, ac, 0);
		ac->depth--;
		return r;
	}
	return expression_tree_walker(node, aggs_walker, ac);
}

/* count(DISTINCT <row id>) or count(<row id>) over entry t's rows */
static Aggref *
make_count_rowid(AggregateTarget *t, bool distinct)
{
	Aggref	   *a = makeNode(Aggref);
	Var		   *v = makeVar(t->rti, t->rowid_attno, t->rowid_type, -1, InvalidOid, 0);
	TargetEntry *te = makeTargetEntry((Expr *) v, 1, NULL, false);
	SortGroupClause *sgc = makeNode(SortGroupClause);
	Oid			sortop,
				eqop;
	bool		hashable;

	get_sort_group_operators(t->rowid_type, true, true, false, &sortop, &eqop, NULL, &hashable);
	te->ressortgroupref = distinct ? 1 : 0;
	sgc->tleSortGroupRef = 1;
	sgc->eqop = eqop;
	sgc->sortop = sortop;
	sgc->nulls_first = false;
	sgc->hashable = hashable;

	a->aggfnoid = F_COUNT_ANY;
	a->aggtype = INT8OID;
	a->aggcollid = InvalidOid;
	a->inputcollid = InvalidOid;
	a->aggtranstype = InvalidOid;
	a->aggargtypes = list_make1_oid(t->rowid_type);
	a->aggdirectargs = NIL;
	a->args = list_make1(te);
	a->aggorder = NIL;
	a->aggdistinct = distinct ? list_make1(sgc) : NIL;
	a->aggfilter = NULL;
	a->aggstar = false;
	a->aggvariadic = false;
	a->aggkind = AGGKIND_NORMAL;
	a->agglevelsup = 0;
	a->aggsplit = AGGSPLIT_SIMPLE;
	a->aggno = -1;
	a->aggtransno = -1;
	a->location = -1;
	return a;
}

static Oid
gate_function(void)
{
	Oid			argtypes[4] = {INT8OID, INT8OID, INT4OID, INTERNALOID};
	return licdata_internal_function("_agg_gate", 4, argtypes, false);
}

void
licdata_aggregate_finish_level(Query *q, LicdataRewrite *ctx)
{
	AggregateLevel *lvl = NULL;
	ListCell   *lc;
	List	   *gates = NIL;

	foreach(lc, ctx->aggregate_levels)
	{
		AggregateLevel *l = lfirst(lc);

		if (l->q == q)
			lvl = l;
	}
	if (lvl == NULL)
		return;
	ctx->aggregate_levels = list_delete_ptr(ctx->aggregate_levels, lvl);

	foreach(lc, lvl->targets)
	{
		AggregateTarget *t = lfirst(lc);
		AggCheck	ac = {q, lvl, 0, NULL, NULL};
		ListCell   *gc;
		FuncExpr   *gate;

		if (q->commandType != CMD_SELECT)
			refuse(ctx, t, "the statement reads it row by row",
				   "UPDATE, DELETE, MERGE and INSERT read a dataset row by row; only SELECT with aggregates is allowed.");
		if (!q->hasAggs && q->groupClause == NIL && q->groupingSets == NIL)
			refuse(ctx, t, "the query would return raw rows",
				   "The query level that reads the dataset does not aggregate it.");
		if (q->hasWindowFuncs)
			refuse(ctx, t, "window functions keep rows",
				   "A window function returns one value per row of the dataset.");
		if (q->hasTargetSRFs)
			refuse(ctx, t, "set-returning functions in the select list are not allowed",
				   "A set-returning function could expand a group into its rows.");
		if (q->distinctClause != NIL && q->hasDistinctOn)
			refuse(ctx, t, "DISTINCT ON is not allowed", "DISTINCT ON picks single rows.");
		if (q->groupingSets != NIL)
			refuse(ctx, t, "GROUPING SETS, ROLLUP and CUBE are not allowed",
				   "The totals of grouping sets give the size and sums of a suppressed group by subtraction.");
		(void) query_tree_walker(q, aggs_walker, &ac, QTW_IGNORE_RANGE_TABLE);
		if (ac.bad)
			refuse(ctx, t, psprintf("aggregate %s %s", format_procedure(ac.bad->aggfnoid), ac.why),
				   "Only count, sum, avg, stddev, variance, corr and covar over plain columns of the dataset, written at the dataset's own query level, are released: min, max, percentiles and array or string aggregates return an individual's value, and expressions or the licensee's own columns inside an aggregate can isolate one row.");

		/* Expressions evaluated before the group threshold. */
		check_leakproof(ctx, t, q, q->jointree->quals, "WHERE clause");
		foreach(gc, q->rtable)
		{
			RangeTblEntry *rte = lfirst(gc);

			if (rte->rtekind == RTE_SUBQUERY && rte->lateral &&
				refers_to(q, (Node *) rte->subquery, t->rti))
				refuse(ctx, t, "a LATERAL subquery reads its rows",
					   "A LATERAL subquery sees the dataset's rows one by one.");
			if (rte->rtekind == RTE_FUNCTION && refers_to(q, (Node *) rte->functions, t->rti))
				refuse(ctx, t, "a function in FROM reads its rows",
					   "A function in FROM sees the dataset's rows one by one.");
		}
		{
			List	   *joinquals = NIL;
			List	   *stack = list_make1(q->jointree);

			while (stack != NIL)
			{
				Node	   *n = linitial(stack);

				stack = list_delete_first(stack);
				if (IsA(n, JoinExpr))
				{
					JoinExpr   *je = (JoinExpr *) n;

					joinquals = lappend(joinquals, je->quals);
					stack = lappend(stack, je->larg);
					stack = lappend(stack, je->rarg);
				}
				else if (IsA(n, FromExpr))
				{
					ListCell   *fc;

					foreach(fc, ((FromExpr *) n)->fromlist)
						stack = lappend(stack, lfirst(fc));
				}
			}
			foreach(gc, joinquals)
				check_leakproof(ctx, t, q, (Node *) lfirst(gc), "JOIN condition");
		}
		foreach(gc, q->targetList)
		{
			TargetEntry *te = lfirst(gc);

			if (te->ressortgroupref != 0 &&
				get_sortgroupref_clause_noerr(te->ressortgroupref, q->groupClause) != NULL)
				check_leakproof(ctx, t, q, (Node *) te->expr, "GROUP BY clause");
		}

		gate = makeFuncExpr(gate_function(), BOOLOID,
							list_make4(make_count_rowid(t, true),
									   make_count_rowid(t, false),
									   makeConst(INT4OID, -1, InvalidOid, sizeof(int32),
												 Int32GetDatum(t->min_group_size), false, true),
									   makeNullConst(INTERNALOID, -1, InvalidOid)),
							InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
		gates = lappend(gates, gate);
	}

	/*
	 * The gates decide first: the licensee's own HAVING is evaluated only for
	 * groups that passed them (a CASE fixes the order, which an AND would
	 * not), so it never sees the aggregates of a suppressed group.
	 */
	{
		Node	   *gate = (Node *) (list_length(gates) == 1 ? linitial(gates) :
									 makeBoolExpr(AND_EXPR, gates, -1));

		if (q->havingQual)
		{
			CaseExpr   *ce = makeNode(CaseExpr);
			CaseWhen   *cw = makeNode(CaseWhen);

			cw->expr = (Expr *) gate;
			cw->result = (Expr *) q->havingQual;
			cw->location = -1;
			ce->casetype = BOOLOID;
			ce->casecollid = InvalidOid;
			ce->arg = NULL;
			ce->args = list_make1(cw);
			ce->defresult = (Expr *) makeBoolConst(false, false);
			ce->location = -1;
			gate = (Node *) ce;
		}
		q->havingQual = gate;
	}
	q->hasAggs = true;
}

/*
 * licdata._agg_gate(distinct_rows bigint, rows bigint, min_group_size
 *					  integer, internal) RETURNS boolean
 *	The group threshold: true when the group holds at least min_group_size
 *	distinct dataset rows, each once.  The rows of a released group are
 *	counted into the running statement's rows_aggregated; a suppressed
 *	group leaves no trace.  The internal argument (a NULL the rewrite
 *	supplies, so EXPLAIN can print the call) keeps SQL from calling it: SQL
 *	has no expression of type internal, not even NULL::internal.
 */
PG_FUNCTION_INFO_V1(licdata_agg_gate_internal);
Datum
licdata_agg_gate_internal(PG_FUNCTION_ARGS)
{
	int64		distinct_rows;
	int64		rows;
	int32		min;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_BOOL(false);
	distinct_rows = PG_GETARG_INT64(0);
	rows = PG_GETARG_INT64(1);
	min = PG_GETARG_INT32(2);
	if (distinct_rows < Max(min, 2) || rows != distinct_rows)
		PG_RETURN_BOOL(false);
	licdata_meter_note_aggregated(distinct_rows);
	PG_RETURN_BOOL(true);
}

/*
 * The 1.0 gate, licdata._agg_gate(bigint, integer): callable by anyone,
 * it let a licensee compute thresholds and counted into backend-wide
 * counters.  The 1.1 library no longer serves it.
 */
PG_FUNCTION_INFO_V1(licdata_agg_gate);
Datum
licdata_agg_gate(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("licdata._agg_gate(bigint, integer) is no longer supported"),
			 errdetail("The installed licdata SQL objects are older than the loaded library."),
			 errhint("Run ALTER EXTENSION licdata UPDATE.")));
	PG_RETURN_NULL();
}
