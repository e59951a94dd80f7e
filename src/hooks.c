/*-------------------------------------------------------------------------
 *
 * hooks.c
 *	  Every hook licdata installs, and nothing but dispatch: each keeps the
 *	  previous hook and calls it (or the standard function), and each does
 *	  nothing unless licdata is created in this database.
 *
 *	planner_hook			rewrite a licensee's query (rewrite.c) and tag
 *							the plan with the terms it was built under
 *	ExecutorStart_hook		re-check the licence, open the usage record;
 *							then count the rows its writes take (meter.c)
 *	ExecutorRun_hook		count rows sent (meter.c)
 *	ExecutorFinish_hook		nesting depth
 *	ExecutorEnd_hook		close the usage record
 *	ExecutorCheckPerms_hook	safety net: a licensee never reaches a dataset
 *							other than through a licence
 *	ProcessUtility_hook		COPY dataset TO -> COPY (SELECT ...) TO for
 *							licensees; DO / CALL blocks metered as one;
 *							FETCH / MOVE of a held cursor counted; DDL that
 *							would change what licences serve refused
 *	needs_fmgr_hook			SQL functions are not inlined in licensee
 *							sessions, so their queries are planned (and
 *							rewritten) on their own; the licensee's own
 *							functions go through fmgr_hook
 *	fmgr_hook				each call of a licensee's own function counts
 *							a row of the running statement (meter.c)
 *
 * Nesting depth counts executor runs and metered utility blocks, restored
 * in PG_FINALLY so an error cannot leave it wrong.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "commands/copy.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "miscadmin.h"
#include "errcodes.h"
#include "hooks.h"
#include "licdata.h"
#include "meter.h"
#include "rewrite.h"

/* Tags in PlannedStmt->invalItems: never a real syscache id, so never matched. */
#define TAG_DATASET		(-0x4C44)
#define TAG_FINGERPRINT	(-0x4C45)

static planner_hook_type prev_planner = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ExecutorCheckPerms_hook_type prev_CheckPerms = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static needs_fmgr_hook_type prev_needs_fmgr = NULL;
static fmgr_hook_type prev_fmgr = NULL;

static int	depth = 0;

extern bool licdata_records_writable;

/* The licensee this session acts for, when licdata is active here. */
static const LicdataLicensee *
acting(void)
{
	if (licdata_policy_loading || !IsTransactionState())
		return NULL;
	if (licdata_catalog() == NULL)
		return NULL;
	return licdata_acting_licensee();
}

/*
 * A fingerprint of what a plan serves for a dataset: the licence and its
 * scope, the purpose, and every mask that could apply.  Plans carry it; the
 * executor compares it with the current terms.
 */
static uint32
fingerprint(LicdataDataset *ds, const LicdataLicence *lic)
{
	uint32		h = hash_bytes((const unsigned char *) &lic->id, sizeof(lic->id));
	ListCell   *lc;
	const char *purpose = licdata_purpose ? licdata_purpose : "";

#define MIX(s) do { const char *s_ = (s) ? (s) : "\x01"; \
		h = hash_combine(h, hash_bytes((const unsigned char *) s_, strlen(s_))); } while (0)
	MIX(purpose);
	MIX(lic->row_filter);
	foreach(lc, lic->columns)
		MIX((const char *) lfirst(lc));
	h = hash_combine(h, (uint32) lic->aggregate_mode * 7919 + (uint32) lic->min_group_size);
	foreach(lc, ds->masks)
	{
		const LicdataMask *m = lfirst(lc);

		if (m->licence_id != 0 && m->licence_id != lic->id)
			continue;
		if (m->purpose && strcmp(m->purpose, purpose) != 0)
			continue;
		MIX(m->column_name);
		MIX(m->method);
		MIX(m->params);
		h = hash_combine(h, (uint32) m->licence_id);
		MIX(m->purpose);
	}
#undef MIX
	return h;
}

bool
licdata_plan_fingerprint_matches(PlannedStmt *ps, LicdataDataset *ds, const LicdataLicence *lic)
{
	ListCell   *lc;
	bool		next_is_ours = false;

	foreach(lc, ps->invalItems)
	{
		PlanInvalItem *item = lfirst(lc);

		if (item->cacheId == TAG_DATASET)
			next_is_ours = (item->hashValue == (uint32) ds->relid);
		else if (item->cacheId == TAG_FINGERPRINT && next_is_ours)
			return item->hashValue == fingerprint(ds, lic);
	}
	/* A plan that reads a dataset through a licence always carries a tag. */
	return false;
}

static PlanInvalItem *
tag(int id, uint32 value)
{
	PlanInvalItem *item = makeNode(PlanInvalItem);

	item->cacheId = id;
	item->hashValue = value;
	return item;
}

static PlannedStmt *
licdata_planner(Query *parse, const char *query_string, int cursorOptions,
				ParamListInfo boundParams)
{
	const LicdataLicensee *who = acting();
	LicdataRewrite ctx;
	bool		rewrote = false;
	PlannedStmt *result;

	if (who)
	{
		memset(&ctx, 0, sizeof(ctx));
		ctx.who = who;
		ctx.purpose = licdata_purpose;
		ctx.consent_ref = licdata_consent_ref;
		ctx.now = GetCurrentTimestamp();
		ctx.reader_role = licdata_catalog()->reader_role;
		ctx.guard_func = licdata_catalog()->guard_func;
		rewrote = licdata_rewrite(parse, &ctx);
		if (rewrote && ctx.serial_only)
			cursorOptions &= ~CURSOR_OPT_PARALLEL_OK;
	}

	if (prev_planner)
		result = prev_planner(parse, query_string, cursorOptions, boundParams);
	else
		result = standard_planner(parse, query_string, cursorOptions, boundParams);

	if (rewrote)
	{
		ListCell   *lc;

		/* Any catalog change invalidates the plan; so does a role change. */
		result->relationOids = list_concat(result->relationOids, licdata_catalog_relids());
		result->dependsOnRole = true;
		foreach(lc, ctx.uses)
		{
			LicdataUse *u = lfirst(lc);
			LicdataDataset *ds = licdata_dataset_for_rel(u->dataset);
			LicdataLicence *lic = licdata_licence_by_id(u->licence_id);

			if (ds == NULL || lic == NULL)
				continue;
			result->invalItems = lappend(result->invalItems, tag(TAG_DATASET, (uint32) ds->relid));
			result->invalItems = lappend(result->invalItems, tag(TAG_FINGERPRINT, fingerprint(ds, lic)));
		}
	}
	return result;
}

void
licdata_rewrite_note_use(LicdataRewrite *ctx, LicdataDataset *ds, const LicdataLicence *lic)
{
	ListCell   *lc;
	LicdataUse *u;

	foreach(lc, ctx->uses)
	{
		u = lfirst(lc);
		if (u->dataset == ds->relid && u->licence_id == lic->id)
			return;
	}
	u = palloc0(sizeof(LicdataUse));
	u->dataset = ds->relid;
	u->licence_id = lic->id;
	u->aggregate = lic->aggregate_mode;
	ctx->uses = lappend(ctx->uses, u);
}

void
licdata_rewrite_refuse(LicdataRewrite *ctx, LicdataDataset *ds, const LicdataDecision *d)
{
	licdata_meter_denial(ds, d, d->licence ? d->licence->id : 0);
	licdata_raise_decision(d);
}

static void
licdata_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	/*
	 * Parallel workers run a part of the leader's plan: the leader meters
	 * it, and the plan a worker receives carries no tags.
	 */
	bool		meter = !IsParallelWorker() && !licdata_policy_loading;

	if (meter && acting() != NULL)
		AcceptInvalidationMessages();
	if (meter && IsTransactionState() && licdata_catalog() != NULL)
		licdata_meter_executor_start(queryDesc, eflags, depth);
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	if (meter && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		licdata_meter_executor_started(queryDesc);
}

static void
licdata_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
					bool execute_once)
{
	DestReceiver *orig = queryDesc->dest;
	DestReceiver *wrapper = (licdata_policy_loading || IsParallelWorker()) ? NULL :
		licdata_meter_wrap_dest(queryDesc, orig);

	if (wrapper)
		queryDesc->dest = wrapper;
	depth++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		depth--;
		queryDesc->dest = orig;
		licdata_meter_unwrap_dest(queryDesc, wrapper);
	}
	PG_END_TRY();
}

static void
licdata_ExecutorFinish(QueryDesc *queryDesc)
{
	depth++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		depth--;
	}
	PG_END_TRY();
}

static void
licdata_ExecutorEnd(QueryDesc *queryDesc)
{
	if (!licdata_policy_loading && !IsParallelWorker())
		licdata_meter_executor_end(queryDesc);
	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * The safety net: in a licensee's session, every published table a plan
 * reads must be read through a licence (as licdata_reader, which only the
 * rewrite sets).  A path the rewrite did not see fails here, closed.
 */
static bool
licdata_CheckPerms(List *rangeTable, bool ereport_on_violation)
{
	const LicdataLicensee *who = acting();

	if (who)
	{
		Oid			reader = licdata_catalog()->reader_role;
		ListCell   *lc;

		foreach(lc, rangeTable)
		{
			RangeTblEntry *rte = lfirst(lc);
			LicdataDataset *ds;

			if (rte->rtekind != RTE_RELATION || rte->checkAsUser == reader)
				continue;
			ds = licdata_dataset_for_rel(rte->relid);
			if (ds == NULL)
				continue;
			if (!ereport_on_violation)
				return false;
			{
				LicdataDecision d;

				memset(&d, 0, sizeof(d));
				d.sqlerrcode = ERRCODE_LD_NO_LICENCE;
				d.message = psprintf("dataset %s was reached other than through a licence", ds->name);
				d.detail = pstrdup("licdata could not apply the licence on this path, so it refuses the statement.");
				d.hint = pstrdup("Query the dataset directly or through a view; report the statement to the operator.");
				licdata_meter_denial(ds, &d, 0);
				licdata_raise_decision(&d);
			}
		}
	}
	if (prev_CheckPerms)
		return prev_CheckPerms(rangeTable, ereport_on_violation);
	return true;
}

/* COPY dataset [(cols)] TO ... becomes COPY (SELECT cols FROM dataset) TO ... */
static PlannedStmt *
rewrite_copy(PlannedStmt *pstmt, bool readOnlyTree)
{
	CopyStmt   *cs = (CopyStmt *) pstmt->utilityStmt;
	Oid			relid;
	SelectStmt *sel;
	List	   *targets = NIL;
	ListCell   *lc;

	if (cs->is_from || cs->relation == NULL || cs->query != NULL)
		return pstmt;
	relid = RangeVarGetRelid(cs->relation, NoLock, true);
	if (!OidIsValid(relid) || licdata_dataset_for_rel(relid) == NULL)
		return pstmt;
	if (readOnlyTree)
		pstmt = copyObject(pstmt);
	cs = (CopyStmt *) pstmt->utilityStmt;

	if (cs->attlist == NIL)
	{
		ColumnRef  *star = makeNode(ColumnRef);
		ResTarget  *rt = makeNode(ResTarget);

		star->fields = list_make1(makeNode(A_Star));
		star->location = -1;
		rt->val = (Node *) star;
		rt->location = -1;
		targets = list_make1(rt);
	}
	else
	{
		foreach(lc, cs->attlist)
		{
			ColumnRef  *cr = makeNode(ColumnRef);
			ResTarget  *rt = makeNode(ResTarget);

			cr->fields = list_make1(makeString(pstrdup(strVal(lfirst(lc)))));
			cr->location = -1;
			rt->val = (Node *) cr;
			rt->location = -1;
			targets = lappend(targets, rt);
		}
	}
	sel = makeNode(SelectStmt);
	sel->targetList = targets;
	sel->fromClause = list_make1(cs->relation);
	cs->query = (Node *) sel;
	cs->relation = NULL;
	cs->attlist = NIL;
	return pstmt;
}

/*
 * DDL that would silently change what a licence serves is refused while a
 * table is published: masks, licences and row filters name columns, so a
 * renamed column would come out unmasked and a retyped one would no longer
 * fit its mask.  (Dropping a column or the table is allowed: a dropped
 * column is simply gone, and a dropped table is unpublished by the
 * licdata_table_dropped event trigger.)
 */
static void
refuse_dataset_ddl(Node *stmt)
{
	LicdataDataset *ds = NULL;
	const char *what = NULL;

	if (IsA(stmt, RenameStmt))
	{
		RenameStmt *rs = (RenameStmt *) stmt;

		if (rs->renameType == OBJECT_COLUMN && rs->relation)
		{
			Oid			relid = RangeVarGetRelid(rs->relation, NoLock, true);

			if (OidIsValid(relid))
				ds = licdata_dataset_for_rel(relid);
			what = "rename a column of";
		}
	}
	else if (IsA(stmt, AlterTableStmt))
	{
		AlterTableStmt *at = (AlterTableStmt *) stmt;
		ListCell   *lc;

		foreach(lc, at->cmds)
		{
			AlterTableCmd *cmd = lfirst(lc);

			if (cmd->subtype == AT_AlterColumnType)
			{
				Oid			relid = RangeVarGetRelid(at->relation, NoLock, true);

				if (OidIsValid(relid))
					ds = licdata_dataset_for_rel(relid);
				what = "change a column type of";
				break;
			}
		}
	}
	if (ds)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot %s published dataset %s", what, ds->name),
				 errdetail("Licences, masks and row filters of the dataset name its columns; the change would alter what licensees are served."),
				 errhint("Revoke its licences and unpublish it with licdata.unpublish first, or publish a new table.")));
}

/* Is this COPY FROM filling one of licdata's record tables (a restore)? */
static bool
is_records_restore(Node *stmt)
{
	CopyStmt   *cs;
	const LicdataCatalog *c;
	Oid			relid;

	if (!IsA(stmt, CopyStmt))
		return false;
	cs = (CopyStmt *) stmt;
	if (!cs->is_from || cs->relation == NULL || !superuser())
		return false;
	c = licdata_catalog();
	if (c == NULL)
		return false;
	relid = RangeVarGetRelid(cs->relation, NoLock, true);
	return OidIsValid(relid) && get_rel_namespace(relid) == c->schema &&
		(strcmp(get_rel_name(relid), "usage") == 0 ||
		 strcmp(get_rel_name(relid), "audit_log") == 0 ||
		 strcmp(get_rel_name(relid), "audit_checkpoints") == 0);
}

static void
licdata_ProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	void	   *block = NULL;
	DestReceiver *counting = NULL;
	uint64		held_id = 0;
	bool		restore = false;
	bool		was_writable = licdata_records_writable;

	if (IsA(stmt, CopyStmt) && acting() != NULL)
		pstmt = rewrite_copy(pstmt, readOnlyTree);
	if ((IsA(stmt, RenameStmt) || IsA(stmt, AlterTableStmt)) &&
		IsTransactionState() && licdata_catalog() != NULL)
		refuse_dataset_ddl(stmt);
	/*
	 * pg_restore COPYs the record tables back: a superuser's COPY FROM into
	 * them is let through their write guard (verify_audit checks the chain).
	 */
	if (IsTransactionState() && is_records_restore(stmt))
		restore = true;
	if ((IsA(stmt, DoStmt) || IsA(stmt, CallStmt)) && acting() != NULL)
		block = licdata_meter_block_begin();

	if (IsA(stmt, FetchStmt))
		counting = licdata_meter_fetch_dest(stmt, dest, &held_id);
	if (counting)
		dest = counting;
	if (block)
		depth++;
	if (restore)
		licdata_records_writable = true;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		if (block)
			depth--;
		licdata_records_writable = was_writable;
		if (counting || held_id)
			licdata_meter_fetch_done(counting, held_id);
	}
	PG_END_TRY();
	if (block)
		licdata_meter_block_end(block);
}

/*
 * In a licensee's session, SQL functions go through fmgr (and are not
 * inlined), so every query they run is planned and rewritten on its own.
 */
static bool
licdata_needs_fmgr(Oid fn_oid)
{
	HeapTuple	tup;
	bool		sql;

	if (prev_needs_fmgr && prev_needs_fmgr(fn_oid))
		return true;
	if (acting() == NULL)
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(tup))
		return false;
	sql = ((Form_pg_proc) GETSTRUCT(tup))->prolang == SQLlanguageId;
	ReleaseSysCache(tup);
	/* the licensee's own functions: each call is counted (meter.c) */
	return sql || licdata_meter_counts_calls(fn_oid);
}

static void
licdata_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *private)
{
	if (prev_fmgr)
		prev_fmgr(event, flinfo, private);
	licdata_meter_fmgr(event, flinfo, private);
}

void
licdata_hooks_install(void)
{
	prev_planner = planner_hook;
	planner_hook = licdata_planner;
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = licdata_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = licdata_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = licdata_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = licdata_ExecutorEnd;
	prev_CheckPerms = ExecutorCheckPerms_hook;
	ExecutorCheckPerms_hook = licdata_CheckPerms;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = licdata_ProcessUtility;
	prev_needs_fmgr = needs_fmgr_hook;
	needs_fmgr_hook = licdata_needs_fmgr;
	prev_fmgr = fmgr_hook;
	fmgr_hook = licdata_fmgr;
}
