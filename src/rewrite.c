/*-------------------------------------------------------------------------
 *
 * rewrite.c
 *	  Serve every published table a licensee's query reaches through the
 *	  licence that allows it.
 *
 * Runs in the planner hook, on the query after the rewriter: views are
 * expanded, CTEs, subqueries and sublinks are all in the tree, row-level
 * security quals are attached.  SQL set-returning functions that the
 * planner would inline later are kept from inlining (hooks.c), so they are
 * planned, and rewritten, on their own.
 *
 * Each range-table entry that reads a published table (or a table that
 * inherits from one) is replaced, in place, by a subquery
 *
 *		SELECT <col 1 or its mask or NULL>, ..., <col n ...> FROM <table>
 *
 * whose one range-table entry
 *	- reads the table as licdata_reader (the licensee needs no GRANT; the
 *	  executor hook refuses any published table reached otherwise),
 *	- carries the licence's row filter as a security qual, after the quals
 *	  row-level security already put there, so the planner evaluates it
 *	  before any leaky function of the licensee's query sees a row
 *	  (security-barrier ordering, exactly as for RLS policies), and
 *	- keeps TABLESAMPLE and inheritance.
 * The subquery is not a security barrier itself, so the planner pulls it
 * up: the licensee's quals on unmasked columns still use indexes, and
 * every use of a masked column above -- WHERE, JOIN, GROUP BY, ORDER BY,
 * window functions, casts in error messages -- sees only the masked value.
 * Columns outside the licence are refused if the query reads them (LD003)
 * and are NULL otherwise; a whole-row reference reads every column.  Under
 * unlicensed_columns = 'null' they are not refused: they read as NULL of
 * their type everywhere in the query, so a predicate, join or ORDER BY on
 * one sees NULL and learns nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/heap.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/acl.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "errcodes.h"
#include "denial.h"
#include "licdata.h"
#include "rewrite.h"

/* Parsed row filters and masks, per relation, dropped with the policy. */
typedef struct ExprCacheEntry
{
	int64		licence_id;		/* for row filters; 0 for masks */
	const LicdataMask *mask;	/* for masks */
	Oid			relid;
	AttrNumber	attnum;
	Node	   *expr;
	bool		is_volatile;	/* calls a volatile function */
} ExprCacheEntry;

/*
 * The masks that apply to a relation's columns under a licence and
 * purpose (licdata_mask_for per column), per (licence, purpose, relation):
 * a licensee's every statement asks the same.
 */
typedef struct ColumnMasks
{
	int64		licence_id;
	char	   *purpose;
	Oid			relid;
	int			natts;
	const LicdataMask **masks;	/* per attribute, NULL when none */
} ColumnMasks;

static MemoryContext expr_cxt = NULL;
static List *expr_cache = NIL;
static List *column_masks = NIL;
static uint64 expr_generation = 0;

/* Drop the caches built under an older policy (call before any lookup). */
static void
expr_cache_check(void)
{
	if (expr_cxt == NULL)
		expr_cxt = AllocSetContextCreate(CacheMemoryContext, "licdata expression cache",
										 ALLOCSET_SMALL_SIZES);
	if (expr_generation != licdata_policy_generation)
	{
		MemoryContextReset(expr_cxt);
		expr_cache = NIL;
		column_masks = NIL;
		expr_generation = licdata_policy_generation;
	}
}

static ExprCacheEntry *cached_entry(int64 licence_id, const LicdataMask *mask, Oid relid,
									AttrNumber attnum, const char *filter);

static Node *
cached_expr(int64 licence_id, const LicdataMask *mask, Oid relid, AttrNumber attnum,
			const char *filter)
{
	return copyObject(cached_entry(licence_id, mask, relid, attnum, filter)->expr);
}

/*
 * The cache entry itself (not a copy): valid only until the policy
 * generation moves (anything that can accept invalidations).
 */
static ExprCacheEntry *
cached_entry(int64 licence_id, const LicdataMask *mask, Oid relid, AttrNumber attnum,
			 const char *filter)
{
	ListCell   *lc;
	ExprCacheEntry *e;
	MemoryContext old;
	Node	   *expr;

	expr_cache_check();
	foreach(lc, expr_cache)
	{
		e = lfirst(lc);
		if (e->licence_id == licence_id && e->mask == mask && e->relid == relid &&
			e->attnum == attnum)
			return e;
	}
	if (mask)
		expr = licdata_build_mask_expr(relid, attnum, mask->method, mask->params, false);
	else
	{
		/*
		 * A row filter calls built-in functions only (expr.c): its constant
		 * parts (a cast of a literal) are folded once here rather than by
		 * the planner at every statement.  Only immutable calls fold, as
		 * the planner would fold them.
		 */
		expr = licdata_parse_row_filter(relid, filter, false);
		expr = eval_const_expressions(NULL, expr);
	}

	/* the build may have moved the generation: the entry goes in the new cache */
	expr_cache_check();
	old = MemoryContextSwitchTo(expr_cxt);
	e = palloc0(sizeof(ExprCacheEntry));
	e->licence_id = licence_id;
	e->mask = mask;
	e->relid = relid;
	e->attnum = attnum;
	e->expr = copyObject(expr);
	e->is_volatile = contain_volatile_functions(expr);
	expr_cache = lappend(expr_cache, e);
	MemoryContextSwitchTo(old);
	return e;
}

/*
 * The masks that apply to each column of relid (natts attributes, names
 * from tupdesc) under lic and purpose.  Valid until the policy generation
 * moves.
 */
static const LicdataMask **
masks_by_column(LicdataDataset *ds, const LicdataLicence *lic, const char *purpose,
				Oid relid, TupleDesc tupdesc)
{
	ListCell   *lc;
	ColumnMasks *cm;
	MemoryContext old;

	expr_cache_check();
	if (purpose == NULL)
		purpose = "";
	foreach(lc, column_masks)
	{
		cm = lfirst(lc);
		if (cm->licence_id == lic->id && cm->relid == relid && cm->natts == tupdesc->natts &&
			strcmp(cm->purpose, purpose) == 0)
			return cm->masks;
	}
	old = MemoryContextSwitchTo(expr_cxt);
	cm = palloc0(sizeof(ColumnMasks));
	cm->licence_id = lic->id;
	cm->purpose = pstrdup(purpose);
	cm->relid = relid;
	cm->natts = tupdesc->natts;
	cm->masks = palloc0(sizeof(LicdataMask *) * Max(tupdesc->natts, 1));
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (!att->attisdropped)
			cm->masks[i] = licdata_mask_for(ds, lic, purpose, NameStr(att->attname));
	}
	column_masks = lappend(column_masks, cm);
	MemoryContextSwitchTo(old);
	return cm->masks;
}

static bool
licence_covers(const LicdataLicence *lic, const char *colname)
{
	ListCell   *lc;

	if (lic->columns == NIL)
		return true;
	foreach(lc, lic->columns)
	{
		if (strcmp((const char *) lfirst(lc), colname) == 0)
			return true;
	}
	return false;
}

static void
refuse_column(LicdataRewrite *ctx, LicdataDataset *ds, const LicdataLicence *lic,
			  const char *colname, bool whole_row)
{
	LicdataDecision d;

	memset(&d, 0, sizeof(d));
	d.sqlerrcode = ERRCODE_LD_COLUMN_NOT_LICENSED;
	if (whole_row)
		d.message = psprintf("whole-row reference to dataset %s reads column \"%s\", which licence %lld does not cover",
							 ds->name, colname, (long long) lic->id);
	else
		d.message = psprintf("column \"%s\" of dataset %s is outside licence %lld",
							 colname, ds->name, (long long) lic->id);
	d.detail = pstrdup("The licence covers only some of the dataset's columns.");
	d.hint = pstrdup("Select only licensed columns (see licdata.my_licences), or ask the operator to extend the licence.");
	licdata_rewrite_refuse(ctx, ds, &d);
}

/*
 * Serving a dataset in place
 * --------------------------
 * The subquery of wrap_rte is always pulled up by the planner (it is not a
 * security barrier, and its target list holds only columns, constants and
 * masks): the planner puts the inner entry, read as licdata_reader with the
 * quals, in its place and replaces the query's references to its columns
 * by the subquery's target list.  When that is cheap to do here, it is
 * done here, on the entry itself, which saves building the subquery and
 * the planner's copy and pull-up of it (a third of a simple point lookup's
 * cost):
 *	- the entry is read as licdata_reader with the row-security quals it
 *	  has and then the licence's row filter, exactly as the inner entry;
 *	- the query's references to a masked column (at this level or, from
 *	  subqueries and sublinks, from below) are replaced by the mask; the
 *	  entry's own quals keep reading the stored values, as the inner
 *	  entry's do.
 * Only where this gives the same tree as the planner's pull-up: no
 * whole-row reference, no column the query reads that the licence covers
 * only as NULL, no aggregate licence, and for masks a SELECT with no outer
 * join and no grouping sets at this level (where the planner would wrap a
 * pulled-up mask in a PlaceHolderVar) and no volatile mask.  Everything
 * else takes the subquery.
 */
typedef struct InPlaceMasks
{
	LicdataRewrite *ctx;
	Index		rti;
	int			natts;
	Node	  **masks;			/* per attribute: the mask (varno rti) or NULL */
	int			sublevels;		/* refs_masked_walker's depth */
} InPlaceMasks;

static bool
has_outer_join(Node *jtnode)
{
	if (jtnode == NULL)
		return false;
	if (IsA(jtnode, FromExpr))
	{
		ListCell   *lc;

		foreach(lc, ((FromExpr *) jtnode)->fromlist)
		{
			if (has_outer_join(lfirst(lc)))
				return true;
		}
		return false;
	}
	if (IsA(jtnode, JoinExpr))
	{
		JoinExpr   *j = (JoinExpr *) jtnode;

		return j->jointype != JOIN_INNER || has_outer_join(j->larg) || has_outer_join(j->rarg);
	}
	return false;				/* RangeTblRef */
}

/*
 * A copy of a cached mask, to put in a query: copyObject, with the nodes a
 * mask is mostly made of (a function call, its argument list, relabelling,
 * the column, constants) copied whole rather than field by field.
 */
static Node *
copy_mask(const Node *node)
{
	if (node == NULL)
		return NULL;
	switch (nodeTag(node))
	{
		case T_Var:
			{
				Var		   *v = palloc(sizeof(Var));

				*v = *(const Var *) node;
				return (Node *) v;
			}
		case T_Const:
			{
				Const	   *c = palloc(sizeof(Const));

				*c = *(const Const *) node;
				if (!c->constbyval && !c->constisnull)
					c->constvalue = datumCopy(c->constvalue, false, c->constlen);
				return (Node *) c;
			}
		case T_RelabelType:
			{
				RelabelType *r = palloc(sizeof(RelabelType));

				*r = *(const RelabelType *) node;
				r->arg = (Expr *) copy_mask((Node *) r->arg);
				return (Node *) r;
			}
		case T_FuncExpr:
			{
				FuncExpr   *f = palloc(sizeof(FuncExpr));

				*f = *(const FuncExpr *) node;
				f->args = (List *) copy_mask((Node *) f->args);
				return (Node *) f;
			}
		case T_List:
			{
				List	   *l = list_copy((const List *) node);
				ListCell   *lc;

				foreach(lc, l)
					lfirst(lc) = copy_mask(lfirst(lc));
				return (Node *) l;
			}
		default:
			return (Node *) copyObject(node);
	}
}

static Node *
in_place_mask(Var *var, InPlaceMasks *im)
{
	Node	   *mask;

	if (var->varattno <= 0 || var->varattno > im->natts ||
		im->masks[var->varattno - 1] == NULL)
		return (Node *) copyObject(var);
	mask = copy_mask(im->masks[var->varattno - 1]);
	if (im->rti != 1)
		ChangeVarNodes(mask, 1, im->rti, 0);
	if (var->varlevelsup > 0)
		IncrementVarSublevelsUp(mask, var->varlevelsup, 0);
	im->ctx->inplace_masks = lappend(im->ctx->inplace_masks, mask);
	return mask;
}

static Node *
in_place_mask_callback(Var *var, replace_rte_variables_context *context)
{
	return in_place_mask(var, (InPlaceMasks *) context->callback_arg);
}

/*
 * Does node reference a masked column of entry im->rti (at im->sublevels
 * query levels up)?  Walks exactly where replace_rte_variables goes:
 * expressions, and inner queries (sublinks) one level further down.
 */
static bool
refs_masked_walker(Node *node, InPlaceMasks *im)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		return var->varno == (int) im->rti && var->varlevelsup == (Index) im->sublevels &&
			var->varattno > 0 && var->varattno <= im->natts &&
			im->masks[var->varattno - 1] != NULL;
	}
	if (IsA(node, CurrentOfExpr))
		return ((CurrentOfExpr *) node)->cvarno == im->rti && im->sublevels == 0;
	if (IsA(node, Query))
	{
		bool		found;

		im->sublevels++;
		found = query_tree_walker((Query *) node, refs_masked_walker, (void *) im, 0);
		im->sublevels--;
		return found;
	}
	return expression_tree_walker(node, refs_masked_walker, (void *) im);
}

/* The masks replaced in one part of q (replace_rte_variables on it). */
static Node *
replace_in_part(Query *q, Node *part, InPlaceMasks *im)
{
	return replace_rte_variables(part, im->rti, 0, in_place_mask_callback, im,
								 &q->hasSubLinks);
}

/*
 * Replace every reference to a masked column of entry im->rti in q (at
 * this level and, through sublinks and LATERAL, below) by the mask.
 *
 * replace_rte_variables over the whole query copies all of it; a point
 * lookup's masked columns appear in a few target entries only.  So: the
 * query without its target list, join tree and HAVING is first searched
 * (query_tree_walker, which reaches everything query_tree_mutator does);
 * if it references a masked column anywhere, the whole query is replaced
 * as before.  Otherwise only the target entries, join tree and HAVING that
 * reference one are replaced, each on its own.  Either way no reference
 * to a masked column is left where replace_rte_variables would have
 * replaced it; the search walks the same places.
 */
static void
replace_masked_columns(Query *q, InPlaceMasks *im)
{
	List	   *tlist = q->targetList;
	FromExpr   *jointree = q->jointree;
	Node	   *having = q->havingQual;
	bool		rest;
	ListCell   *lc;

	q->targetList = NIL;
	q->jointree = NULL;
	q->havingQual = NULL;
	im->sublevels = 0;
	/* (an error here abandons q, as any error in the rewrite does) */
	rest = query_tree_walker(q, refs_masked_walker, (void *) im, 0);
	q->targetList = tlist;
	q->jointree = jointree;
	q->havingQual = having;

	if (rest)
	{
		Query	   *newq;

		newq = (Query *) replace_rte_variables((Node *) q, im->rti, 0, in_place_mask_callback,
											   im, NULL);
		/* the caller holds q: the replaced tree goes into it */
		memcpy(q, newq, sizeof(Query));
		return;
	}

	foreach(lc, q->targetList)
	{
		TargetEntry *te = lfirst(lc);

		/* the common case, a column itself, without the mutator */
		if (IsA(te->expr, Var))
		{
			if (refs_masked_walker((Node *) te->expr, im))
				te->expr = (Expr *) in_place_mask((Var *) te->expr, im);
		}
		else if (refs_masked_walker((Node *) te->expr, im))
			te->expr = (Expr *) replace_in_part(q, (Node *) te->expr, im);
	}
	if (refs_masked_walker((Node *) q->jointree, im))
		q->jointree = (FromExpr *) replace_in_part(q, (Node *) q->jointree, im);
	if (refs_masked_walker(q->havingQual, im))
		q->havingQual = replace_in_part(q, q->havingQual, im);
}

/*
 * Could any of the dataset's masks apply under this licence and purpose?
 * When none can, the per-column lookups are skipped.
 */
static bool
masks_may_apply(const LicdataDataset *ds, const LicdataLicence *lic, const char *purpose)
{
	ListCell   *lc;

	foreach(lc, ds->masks)
	{
		const LicdataMask *m = lfirst(lc);

		if (m->licence_id == 0)
			return true;
		if (m->licence_id == lic->id &&
			(m->purpose == NULL || (purpose && strcmp(m->purpose, purpose) == 0)))
			return true;
	}
	return false;
}

static bool
serve_in_place(Query *q, Index rti, RangeTblEntry *rte, LicdataDataset *ds,
			   const LicdataLicence *lic, TupleDesc tupdesc, bool whole_row,
			   LicdataRewrite *ctx)
{
	Node	  **masks = NULL;
	bool		any_mask = false;
	const LicdataMask **by_column = NULL;
	uint64		generation = licdata_policy_generation;
	List	   *quals;
	ListCell   *lc;
	int			x;

	Node	   *filter = NULL;

	if (lic->aggregate_mode || whole_row)
		return false;
	/* first the filter (a copy): building it can accept invalidations */
	if (lic->row_filter)
		filter = cached_expr(lic->id, NULL, rte->relid, 0, lic->row_filter);
	generation = licdata_policy_generation;
	if (masks_may_apply(ds, lic, ctx->purpose))
		by_column = masks_by_column(ds, lic, ctx->purpose, rte->relid, tupdesc);
	x = -1;
	while ((x = bms_next_member(rte->selectedCols, x)) >= 0)
	{
		AttrNumber	attno = x + FirstLowInvalidHeapAttributeNumber;
		Form_pg_attribute att;
		const LicdataMask *m;
		ExprCacheEntry *entry;

		if (attno <= 0)
			return false;		/* refused before, or whole row: not here */
		att = TupleDescAttr(tupdesc, attno - 1);
		if (att->attisdropped || !licence_covers(lic, NameStr(att->attname)))
			return false;		/* read as NULL: the subquery does that */
		m = by_column ? by_column[attno - 1] : NULL;
		if (m == NULL)
			continue;
		/*
		 * masks are replaced only where the pull-up would not wrap them
		 * (asked at the first masked column: the answer is the level's)
		 */
		if (!any_mask &&
			(q->commandType != CMD_SELECT || q->groupingSets != NIL ||
			 ctx->aggregate_levels != NIL || has_outer_join((Node *) q->jointree)))
			return false;
		entry = cached_entry(0, m, rte->relid, attno, NULL);
		/*
		 * Building a mask can accept invalidations: if the policy moved,
		 * by_column and the entries taken so far may be gone; the subquery
		 * takes fresh copies.
		 */
		if (licdata_policy_generation != generation || entry->is_volatile)
			return false;
		if (masks == NULL)
			masks = palloc0(sizeof(Node *) * tupdesc->natts);
		masks[attno - 1] = entry->expr;	/* copied where it is put */
		any_mask = true;
	}

	/* The entry itself: read as licdata_reader, under the quals. */
	quals = NIL;
	foreach(lc, rte->securityQuals)
	{
		Node	   *qual = lfirst(lc);

		if (IsA(qual, FuncExpr) && ((FuncExpr *) qual)->funcid == ctx->guard_func &&
			((FuncExpr *) qual)->args == NIL)
			continue;
		quals = lappend(quals, qual);
	}
	if (filter)
	{
		if (rti != 1)
			ChangeVarNodes(filter, 1, rti, 0);
		if (checkExprHasSubLink(filter))
			q->hasSubLinks = true;
		quals = lappend(quals, filter);
	}
	rte->checkAsUser = ctx->reader_role;
	rte->requiredPerms = ACL_SELECT;
	rte->insertedCols = NULL;
	rte->updatedCols = NULL;
	rte->extraUpdatedCols = NULL;
	rte->securityQuals = NIL;	/* kept out of the replacement below */
	if (quals != NIL)
		q->hasRowSecurity = true;

	if (any_mask)
	{
		InPlaceMasks im;

		im.ctx = ctx;
		im.rti = rti;
		im.natts = tupdesc->natts;
		im.masks = masks;
		im.sublevels = 0;
		replace_masked_columns(q, &im);
		rte = rt_fetch(rti, q->rtable);
	}
	rte->securityQuals = quals;
	return true;
}

/*
 * Replace range-table entry rti of query q (a published table) by the
 * licensed subquery described in the file header.
 */
static void
wrap_rte(Query *q, Index rti, RangeTblEntry *rte, LicdataDataset *ds, LicdataRewrite *ctx)
{
	LicdataDecision d;
	LicdataLicence *lic;
	Relation	rel;
	TupleDesc	tupdesc;
	RangeTblEntry *inner;
	Query	   *sub;
	List	   *tlist = NIL;
	List	   *quals;
	Bitmapset  *cols;
	int			x;
	bool		whole_row = false;
	char	   *bad_col = NULL;
	bool		bad_whole = false;
	ListCell   *lc;

	/* A standby cannot meter (fail closed, before anything else). */
	licdata_refuse_on_standby();

	/* Licences never allow writing or locking a dataset. */
	if ((int) rti == q->resultRelation ||
		(rte->requiredPerms & ~(AclMode) ACL_SELECT) != 0 ||
		get_parse_rowmark(q, rti) != NULL)
	{
		d.sqlerrcode = ERRCODE_INSUFFICIENT_PRIVILEGE;
		d.message = psprintf("licensees cannot modify or lock dataset %s", ds->name);
		d.detail = pstrdup("A licence allows reading a dataset, never writing it or locking its rows.");
		d.hint = pstrdup("Copy what you are licensed to read into a table of your own.");
		d.licence = NULL;
		licdata_rewrite_refuse(ctx, ds, &d);
	}

	licdata_decide(ds, ctx->who, ctx->purpose, ctx->consent_ref, ctx->now, &d);
	if (d.sqlerrcode != 0)
		licdata_rewrite_refuse(ctx, ds, &d);
	lic = d.licence;

	rel = relation_open(rte->relid, NoLock);
	tupdesc = RelationGetDescr(rel);

	/* Columns the query reads: system columns are never licensed. */
	cols = rte->selectedCols;
	/*
	 * A licence of every column, and no system column or whole row read
	 * (members come in order: the first is a user column): nothing to check.
	 */
	x = bms_next_member(cols, -1);
	if (lic->columns == NIL && (x < 0 || x + FirstLowInvalidHeapAttributeNumber > 0))
		cols = NULL;
	x = -1;
	while ((x = bms_next_member(cols, x)) >= 0)
	{
		AttrNumber	attno = x + FirstLowInvalidHeapAttributeNumber;

		if (attno == InvalidAttrNumber)
			whole_row = true;
		else if (attno < 0)
		{
			const FormData_pg_attribute *sys = SystemAttributeDefinition(attno);

			bad_col = pstrdup(NameStr(sys->attname));
			break;
		}
		else if (!lic->unlicensed_null &&
				 !licence_covers(lic, NameStr(TupleDescAttr(tupdesc, attno - 1)->attname)))
		{
			bad_col = pstrdup(NameStr(TupleDescAttr(tupdesc, attno - 1)->attname));
			break;
		}
	}
	if (bad_col == NULL && whole_row && !lic->unlicensed_null)
	{
		for (int i = 0; i < tupdesc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(tupdesc, i);

			if (!att->attisdropped && !licence_covers(lic, NameStr(att->attname)))
			{
				bad_col = pstrdup(NameStr(att->attname));
				bad_whole = true;
				break;
			}
		}
	}
	if (bad_col)
	{
		relation_close(rel, NoLock);
		refuse_column(ctx, ds, lic, bad_col, bad_whole);
	}

	if (serve_in_place(q, rti, rte, ds, lic, tupdesc, whole_row, ctx))
	{
		relation_close(rel, NoLock);
		licdata_rewrite_note_use(ctx, ds, lic);
		return;
	}

	/* The subquery's target list: one entry per attribute, in order. */
	for (int i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		AttrNumber	attno = i + 1;
		Expr	   *e;
		char	   *name = pstrdup(NameStr(att->attname));

		if (att->attisdropped)
			e = (Expr *) makeNullConst(INT4OID, -1, InvalidOid);
		else if (!licence_covers(lic, name))
			e = (Expr *) makeNullConst(att->atttypid, att->atttypmod, att->attcollation);
		else
		{
			const LicdataMask *m = licdata_mask_for(ds, lic, ctx->purpose, name);

			if (m)
				e = (Expr *) cached_expr(0, m, rte->relid, attno, NULL);
			else
				e = (Expr *) makeVar(1, attno, att->atttypid, att->atttypmod, att->attcollation, 0);
		}
		tlist = lappend(tlist, makeTargetEntry(e, attno, name, false));
	}
	relation_close(rel, NoLock);

	/* The inner range-table entry: the table itself, read as licdata_reader. */
	inner = copyObject(rte);
	inner->checkAsUser = ctx->reader_role;
	inner->requiredPerms = ACL_SELECT;
	inner->insertedCols = NULL;
	inner->updatedCols = NULL;
	inner->extraUpdatedCols = NULL;
	inner->lateral = false;
	inner->alias = NULL;
	/*
	 * Keep the row-security quals already on the entry, except the guard
	 * policy's own licdata.guard(): it only says licdata is loaded, which
	 * this rewrite proves, and it would cost a call per row.
	 */
	quals = NIL;
	foreach(lc, rte->securityQuals)
	{
		Node	   *q = lfirst(lc);

		if (IsA(q, FuncExpr) && ((FuncExpr *) q)->funcid == ctx->guard_func &&
			((FuncExpr *) q)->args == NIL)
			continue;
		quals = lappend(quals, copyObject(q));
	}
	ChangeVarNodes((Node *) quals, rti, 1, 0);
	if (lic->row_filter)
		quals = lappend(quals, cached_expr(lic->id, NULL, rte->relid, 0, lic->row_filter));
	inner->securityQuals = quals;

	sub = makeNode(Query);
	sub->commandType = CMD_SELECT;
	sub->querySource = QSRC_ORIGINAL;
	sub->canSetTag = true;
	sub->rtable = list_make1(inner);
	{
		RangeTblRef *rtr = makeNode(RangeTblRef);

		rtr->rtindex = 1;
		sub->jointree = makeFromExpr(list_make1(rtr), NULL);
	}
	sub->targetList = tlist;
	sub->hasRowSecurity = (quals != NIL);

	if (lic->aggregate_mode)
		licdata_aggregate_wrap(q, rti, sub, lic, ds, ctx);

	/* Turn the outer entry into the subquery, keeping its alias and names. */
	rte->rtekind = RTE_SUBQUERY;
	rte->subquery = sub;
	rte->security_barrier = false;
	rte->relid = InvalidOid;
	rte->relkind = 0;
	rte->rellockmode = 0;
	rte->tablesample = NULL;
	rte->inh = false;
	rte->requiredPerms = 0;
	rte->checkAsUser = InvalidOid;
	rte->selectedCols = NULL;
	rte->insertedCols = NULL;
	rte->updatedCols = NULL;
	rte->extraUpdatedCols = NULL;
	rte->securityQuals = NIL;
	q->hasRowSecurity = q->hasRowSecurity || sub->hasRowSecurity;

	licdata_rewrite_note_use(ctx, ds, lic);
}

/*
 * Record that the statement uses licence lic on dataset ds, with the
 * fingerprint of the terms just applied (the plan is tagged with it).
 */
void
licdata_rewrite_note_use(LicdataRewrite *ctx, LicdataDataset *ds, const LicdataLicence *lic)
{
	ListCell   *lc;
	LicdataUse *u;
	uint64		fp = licdata_terms_fingerprint(ds, lic, ctx->purpose);

	foreach(lc, ctx->uses)
	{
		u = lfirst(lc);
		if (u->dataset == ds->relid && u->licence_id == lic->id && u->fingerprint == fp)
			return;
	}
	u = palloc0(sizeof(LicdataUse));
	u->dataset = ds->relid;
	u->licence_id = lic->id;
	u->aggregate = lic->aggregate_mode;
	u->fingerprint = fp;
	ctx->uses = lappend(ctx->uses, u);
}

/* Refuse the statement: a denial record, then the error (denial.c). */
void
licdata_rewrite_refuse(LicdataRewrite *ctx, LicdataDataset *ds, const LicdataDecision *d)
{
	licdata_refuse_decision(ds, d, d->licence ? d->licence->id : 0);
}

static void rewrite_query(Query *q, LicdataRewrite *ctx);

static bool
rewrite_walker(Node *node, LicdataRewrite *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		rewrite_query((Query *) node, ctx);
		return false;
	}
	return expression_tree_walker(node, rewrite_walker, (void *) ctx);
}

static void
rewrite_query(Query *q, LicdataRewrite *ctx)
{
	Index		rti;

	check_stack_depth();
	/*
	 * Inner queries first, so the subqueries made here are not revisited.
	 * A level without sublinks holds inner queries only in its range table
	 * (subqueries) and its CTEs: the walk over its expressions is skipped.
	 * (The planner itself handles sublinks only where hasSubLinks is set.)
	 */
	if (q->hasSubLinks)
		query_tree_walker(q, rewrite_walker, (void *) ctx, 0);
	else
	{
		ListCell   *lc;

		foreach(lc, q->cteList)
			rewrite_query(castNode(Query, ((CommonTableExpr *) lfirst(lc))->ctequery), ctx);
		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst(lc);

			if (rte->rtekind == RTE_SUBQUERY && rte->subquery != NULL)
				rewrite_query(rte->subquery, ctx);
		}
	}

	/* by index: serving in place can replace the range table's list */
	for (rti = 1; rti <= list_length(q->rtable); rti++)
	{
		RangeTblEntry *rte = rt_fetch(rti, q->rtable);
		LicdataDataset *ds;

		if (rte->rtekind != RTE_RELATION)
			continue;
		ds = licdata_dataset_for_rel(rte->relid);
		if (ds == NULL)
			continue;
		/* Already served through a licence (idempotent on replanning). */
		if (rte->checkAsUser == ctx->reader_role)
			continue;
		wrap_rte(q, rti, rte, ds, ctx);
	}
	if (ctx->aggregate_levels != NIL)
		licdata_aggregate_finish_level(q, ctx);
}

/*
 * Rewrite a licensee's query in place.  Returns true when it reads at least
 * one dataset.  Refusals are raised through licdata_rewrite_refuse.
 */
bool
licdata_rewrite(Query *parse, LicdataRewrite *ctx)
{
	rewrite_query(parse, ctx);
	if (ctx->uses == NIL)
		return false;
	licdata_fold_count(parse, ctx);
	return true;
}
