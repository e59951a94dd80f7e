/*-------------------------------------------------------------------------
 *
 * hooks.c
 *	  Every hook licdata installs, and nothing but dispatch: each keeps the
 *	  previous hook and calls it (or the standard function), and each does
 *	  nothing unless licdata is created in this database.
 *
 *	planner_hook			safe point: reload the policy if it changed;
 *							rewrite a licensee's query (rewrite.c) and tag
 *							the plan with the terms it decided (plantag.c)
 *	ExecutorStart_hook		safe point; refuse EXPLAIN of a dataset for
 *							licensees (utility.c); re-check the licence
 *							and open the usage record; then count the
 *							rows its writes take (meter.c)
 *	ExecutorRun_hook		count rows sent (meter.c)
 *	ExecutorFinish_hook		nesting depth
 *	ExecutorEnd_hook		close the usage record
 *	ExecutorCheckPerms_hook	safety net: a licensee never reaches a dataset
 *							other than through a licence (denial.c)
 *	ProcessUtility_hook		utility.c: COPY dataset TO -> COPY (SELECT ...)
 *							TO for licensees, audit of operators' COPY TO,
 *							DDL that would change what licences serve
 *							refused, restores of the records let through,
 *							EXPLAIN tracked; meter.c: DO / CALL blocks
 *							metered as one, FETCH / MOVE of a held cursor
 *							counted
 *	needs_fmgr_hook			functions in procedural languages (SQL,
 *							PL/pgSQL, ...) go through fmgr in licensee
 *							sessions: SQL functions are not inlined, so
 *							their queries are planned (and rewritten) on
 *							their own, and fmgr_hook sees every call
 *	fmgr_hook				data products (product.c): a call of a
 *							published product is decided and metered, and
 *							its body reads datasets as published; and
 *							each call of a licensee's own function counts
 *							a row of the running statement (meter.c)
 *
 * Nesting depth counts executor runs and metered utility blocks, restored
 * in PG_CATCH so an error cannot leave it wrong; there too the SQLSTATE of
 * an error passing through is handed to the meter (the statement's outcome).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "optimizer/planner.h"
#include "tcop/utility.h"
#include "utils/inval.h"
#include "utils/syscache.h"

#include "denial.h"
#include "errcodes.h"
#include "hooks.h"
#include "licdata.h"
#include "meter.h"
#include "plantag.h"
#include "product.h"
#include "rewrite.h"
#include "utility.h"

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
session_licensee(void)
{
	if (licdata_policy_loading || !IsTransactionState())
		return NULL;
	if (licdata_catalog() == NULL)
		return NULL;
	return licdata_acting_licensee();
}

/*
 * The licensee whose licences apply to what runs now: none while a data
 * product's body runs (product.c), which reads datasets as published.
 */
static const LicdataLicensee *
acting(void)
{
	if (licdata_product_depth > 0)
		return NULL;
	return session_licensee();
}

static PlannedStmt *
licdata_planner(Query *parse, const char *query_string, int cursorOptions,
				ParamListInfo boundParams)
{
	const LicdataLicensee *who;
	LicdataRewrite ctx;
	bool		rewrote = false;
	PlannedStmt *result;

	/* A safe point: the policy is reloaded here if it changed. */
	if (!licdata_policy_loading && IsTransactionState() && licdata_catalog() != NULL)
		licdata_policy_refresh();
	who = acting();
	if (who)
	{
		memset(&ctx, 0, sizeof(ctx));
		ctx.who = who;
		ctx.purpose = licdata_purpose_for(who);
		ctx.consent_ref = licdata_consent_ref_for(who);
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

	/*
	 * A plan made inside a data product's body reads datasets as published:
	 * tie it to the role it was made for (the product's owner), so that a
	 * cached plan of an operator's function is never reused outside the
	 * product, nor a licensee's rewritten plan inside it.
	 */
	if (licdata_product_depth > 0)
	{
		result->dependsOnRole = true;
		licdata_plan_tag_product(result);
	}

	if (rewrote)
	{
		/* Any catalog change invalidates the plan; so does a role change. */
		result->relationOids = list_concat(result->relationOids, licdata_catalog_relids());
		result->dependsOnRole = true;
		/* The terms as the rewrite decided them, not as they are now. */
		licdata_plan_tag(result, ctx.uses);
	}
	return result;
}

static void
licdata_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	/*
	 * Parallel workers run a part of the leader's plan: the leader meters
	 * it, and the plan a worker receives carries no tags.
	 */
	bool		meter = !IsParallelWorker() && !licdata_policy_loading;

	/* A safe point: the policy is reloaded here if it changed. */
	if (meter && IsTransactionState() && licdata_catalog() != NULL)
		licdata_policy_refresh();
	PG_TRY();
	{
		if (meter && licdata_explain_depth > 0 && IsTransactionState())
			licdata_explain_check(queryDesc);
		if (meter && IsTransactionState() && licdata_catalog() != NULL)
			licdata_meter_executor_start(queryDesc, eflags, depth);
		if (prev_ExecutorStart)
			prev_ExecutorStart(queryDesc, eflags);
		else
			standard_ExecutorStart(queryDesc, eflags);
		if (meter && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
			licdata_meter_executor_started(queryDesc);
	}
	PG_CATCH();
	{
		licdata_meter_note_error();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * A plan made inside a data product's body reads datasets as published: it
 * runs only inside a product.  Outside one (a cursor the body opened and the
 * licensee FETCHes from after the call) it is refused.
 */
static void
refuse_product_plan_outside(QueryDesc *queryDesc)
{
	if (licdata_product_depth > 0 || queryDesc->plannedstmt == NULL)
		return;
	if (licdata_plan_is_product(queryDesc->plannedstmt) && session_licensee() != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_LD_NO_LICENCE),
				 errmsg("a query of a data product's body cannot run outside the product"),
				 errdetail("It reads datasets as published; only the product's own call may run it (a cursor the product opened cannot be read after the call)."),
				 errhint("Use the product's result.")));
}

static void
licdata_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
					bool execute_once)
{
	DestReceiver *orig = queryDesc->dest;
	DestReceiver *wrapper;

	refuse_product_plan_outside(queryDesc);
	wrapper = (licdata_policy_loading || IsParallelWorker()) ? NULL :
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
	PG_CATCH();
	{
		depth--;
		queryDesc->dest = orig;
		licdata_meter_unwrap_dest(queryDesc, wrapper);
		licdata_meter_note_error();
		PG_RE_THROW();
	}
	PG_END_TRY();
	depth--;
	queryDesc->dest = orig;
	licdata_meter_unwrap_dest(queryDesc, wrapper);
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
	PG_CATCH();
	{
		depth--;
		licdata_meter_note_error();
		PG_RE_THROW();
	}
	PG_END_TRY();
	depth--;
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
			licdata_refuse(ds, 0, ERRCODE_LD_NO_LICENCE,
						   "licdata could not apply the licence on this path, so it refuses the statement.",
						   "Query the dataset directly or through a view; report the statement to the operator.",
						   "dataset %s was reached other than through a licence", ds->name);
		}
	}
	if (prev_CheckPerms)
		return prev_CheckPerms(rangeTable, ereport_on_violation);
	return true;
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
	uint64		copy_audit = 0;
	bool		restore = false;
	bool		was_writable = licdata_records_writable;
	bool		explain_analyze = false;

	if (IsA(stmt, CopyStmt) && acting() != NULL)
		pstmt = licdata_utility_copy_for_licensee(pstmt, readOnlyTree);
	if ((IsA(stmt, RenameStmt) || IsA(stmt, AlterTableStmt)) &&
		IsTransactionState() && licdata_catalog() != NULL)
		licdata_utility_refuse_dataset_ddl(stmt);
	/*
	 * pg_restore COPYs the record tables back: a superuser's COPY FROM into
	 * them is let through their write guard (verify_audit checks the chain).
	 */
	if (IsTransactionState() && licdata_utility_is_records_restore(stmt))
		restore = true;
	if (IsA(stmt, TruncateStmt) && IsTransactionState())
		licdata_utility_refuse_records_truncate(stmt);
	if ((IsA(stmt, DoStmt) || IsA(stmt, CallStmt)) && acting() != NULL)
		block = licdata_meter_block_begin();
	if (IsA(stmt, CopyStmt) && IsTransactionState() && !licdata_policy_loading)
		copy_audit = licdata_utility_copy_audit_begin(stmt);

	if (IsA(stmt, FetchStmt))
		counting = licdata_meter_fetch_dest(stmt, dest, &held_id);
	if (counting)
		dest = counting;
	if (block)
		depth++;
	if (restore)
		licdata_records_writable = true;
	if (IsA(stmt, ExplainStmt))
		licdata_explain_depth++;
	/* product.c: a licensee's EXPLAIN ANALYZE may not run a data product */
	explain_analyze = licdata_product_utility_begin(stmt);
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		if (IsA(stmt, ExplainStmt))
			licdata_explain_depth--;
		if (block)
			depth--;
		licdata_records_writable = was_writable;
		licdata_product_utility_end(explain_analyze);
		if (counting || held_id)
			licdata_meter_fetch_done(counting, held_id);
		licdata_meter_note_error();
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (IsA(stmt, ExplainStmt))
		licdata_explain_depth--;
	if (block)
		depth--;
	licdata_records_writable = was_writable;
	licdata_product_utility_end(explain_analyze);
	if (counting || held_id)
		licdata_meter_fetch_done(counting, held_id);
	licdata_utility_copy_audit_end(copy_audit, qc);
	if (block)
		licdata_meter_block_end(block);
	/* ALTER EXTENSION licdata UPDATE: every backend re-reads the version */
	if (IsA(stmt, AlterExtensionStmt) &&
		strcmp(((AlterExtensionStmt *) stmt)->extname, "licdata") == 0)
		licdata_catalog_extension_altered();
}

/*
 * In a licensee's session, functions in procedural languages go through
 * fmgr: SQL functions are not inlined, so every query they run is planned
 * and rewritten on its own; and fmgr_hook sees every call, which data
 * products need (product.c: a product's call, and licensee code reached
 * from inside a product).  Asked of the session, not of the product depth:
 * the answer is kept in plans and FmgrInfos made inside a product too.
 */
/*
 * The answer per function (is it in a procedural language?), for the last
 * few functions asked about: a licensee's generic plan asks it for each of
 * its mask functions at every execution.  Emptied at every change of
 * pg_proc, so a function replaced in another language is asked again.
 */
#define LANG_MEMO_SIZE 16

typedef struct LangMemo
{
	Oid			fn_oid;
	bool		procedural;
} LangMemo;

static LangMemo lang_memo[LANG_MEMO_SIZE];
static bool lang_memo_registered = false;
static uint64 lang_memo_resets = 0;

static void
lang_memo_reset(Datum arg, int cacheid, uint32 hashvalue)
{
	lang_memo_resets++;
	memset(lang_memo, 0, sizeof(lang_memo));
}

static bool
licdata_needs_fmgr(Oid fn_oid)
{
	HeapTuple	tup;
	Oid			lang;
	bool		procedural;
	LangMemo   *m;
	uint64		resets;

	if (prev_needs_fmgr && prev_needs_fmgr(fn_oid))
		return true;
	if (session_licensee() == NULL)
		return false;
	if (!lang_memo_registered)
	{
		CacheRegisterSyscacheCallback(PROCOID, lang_memo_reset, (Datum) 0);
		lang_memo_registered = true;
	}
	m = &lang_memo[fn_oid % LANG_MEMO_SIZE];
	if (OidIsValid(fn_oid) && m->fn_oid == fn_oid)
		return m->procedural;
	resets = lang_memo_resets;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(tup))
		return false;
	lang = ((Form_pg_proc) GETSTRUCT(tup))->prolang;
	ReleaseSysCache(tup);
	procedural = (lang != INTERNALlanguageId && lang != ClanguageId);
	/* kept only when no invalidation arrived during the lookup */
	if (resets == lang_memo_resets)
	{
		m->fn_oid = fn_oid;
		m->procedural = procedural;
	}
	return procedural;
}

/* Data products (product.c). */
static void
licdata_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
	if (prev_fmgr)
		prev_fmgr(event, flinfo, arg);
	licdata_product_fmgr(event, flinfo, arg);
	licdata_meter_fmgr(event, flinfo, arg);
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
