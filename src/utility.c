/*-------------------------------------------------------------------------
 *
 * utility.c
 *	  Utility statements as licdata handles them.
 *
 * EXPLAIN in a licensee's session.  A plan shows what the licensee's query
 * result could not: row estimates come from the statistics of the whole
 * table, so under predicates on unmasked columns they describe the rows
 * the licence's row filter leaves out; EXPLAIN ANALYZE shows actual row
 * counts per node (the size of the table under a sort, of aggregate groups
 * an aggregate-only licence suppresses) and runs the statement with its
 * rows sent nowhere.  So EXPLAIN, with any options, of a statement that
 * reads a dataset through a licence is refused (LD012) and audited as a
 * denial; a licensee's EXPLAIN of statements over its own tables is left
 * alone.  The check runs at ExecutorStart, which every EXPLAIN reaches
 * (EXPLAIN EXECUTE of a plan cached before included), and refuses any
 * statement that reads a dataset while an EXPLAIN runs (functions that
 * EXPLAIN ANALYZE runs included).  (auto_explain writes plans to the
 * server log, which licensees do not read.)
 *
 * COPY dataset TO by a licensee becomes COPY (SELECT ...) TO, so the query
 * is rewritten and metered like any other.
 *
 * DDL that would change what licences serve (renaming or retyping a column
 * of a published table) is refused.
 *
 * A superuser's COPY FROM into the record tables is a restore (pg_restore):
 * it is let through their write guard.
 *
 * COPY dataset TO by an operator or a superuser is audited like a SELECT:
 * COPY of a table reads it without the executor when row-level security
 * does not apply (a superuser, pg_dump), so the executor hooks never see it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/plannodes.h"
#include "utils/lsyscache.h"

#include "denial.h"
#include "errcodes.h"
#include "licdata.h"
#include "meter.h"
#include "utility.h"

/* EXPLAINs running now (ProcessUtility, hooks.c). */
int			licdata_explain_depth = 0;

/*
 * Refuse qd if an EXPLAIN is running in a licensee's session and qd reads a
 * dataset through a licence (its plan's range table reads it as
 * licdata_reader: the rewrite served it).
 */
void
licdata_explain_check(QueryDesc *qd)
{
	const LicdataCatalog *c;
	ListCell   *lc;

	if (licdata_explain_depth == 0 || qd->plannedstmt == NULL)
		return;
	c = licdata_catalog();
	if (c == NULL || licdata_acting_licensee() == NULL)
		return;
	foreach(lc, qd->plannedstmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		LicdataDataset *ds;

		if (rte->rtekind != RTE_RELATION || rte->checkAsUser != c->reader_role)
			continue;
		ds = licdata_dataset_for_rel(rte->relid);
		if (ds == NULL)
			continue;
		licdata_refuse(ds, 0, ERRCODE_LD_EXPLAIN_REFUSED,
					   "A plan's row estimates and counts are drawn from the whole dataset, including rows and groups the licence does not serve.",
					   "Run the statement without EXPLAIN, or ask the operator to look at its plan.",
					   "EXPLAIN of a statement that reads dataset %s is not served to licensees",
					   ds->name);
	}
}

/*
 * Before an operator's (or superuser's) COPY: if it copies a published
 * table (or a table that inherits from one) out, open its audit record.
 * Returns the token for licdata_utility_copy_audit_end, or 0.
 */
uint64
licdata_utility_copy_audit_begin(Node *stmt)
{
	CopyStmt   *cs = (CopyStmt *) stmt;
	LicdataDataset *ds;
	Oid			relid;

	if (!IsA(stmt, CopyStmt) || cs->is_from || cs->relation == NULL || cs->query != NULL)
		return 0;
	if (licdata_catalog() == NULL || licdata_acting_licensee() != NULL)
		return 0;
	relid = RangeVarGetRelid(cs->relation, NoLock, true);
	if (!OidIsValid(relid))
		return 0;
	ds = licdata_dataset_for_rel(relid);
	if (ds == NULL)
		return 0;
	return licdata_meter_operator_copy_begin(ds);
}

void
licdata_utility_copy_audit_end(uint64 token, QueryCompletion *qc)
{
	if (token != 0)
		licdata_meter_operator_copy_end(token, qc ? qc->nprocessed : 0);
}

/* COPY dataset [(cols)] TO ... becomes COPY (SELECT cols FROM dataset) TO ... */
PlannedStmt *
licdata_utility_copy_for_licensee(PlannedStmt *pstmt, bool readOnlyTree)
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
void
licdata_utility_refuse_dataset_ddl(Node *stmt)
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
bool
licdata_utility_is_records_restore(Node *stmt)
{
	CopyStmt   *cs;
	const LicdataCatalog *c;
	Oid			relid;
	char	   *name;

	if (!IsA(stmt, CopyStmt))
		return false;
	cs = (CopyStmt *) stmt;
	if (!cs->is_from || cs->relation == NULL || !superuser())
		return false;
	c = licdata_catalog();
	if (c == NULL)
		return false;
	relid = RangeVarGetRelid(cs->relation, NoLock, true);
	if (!OidIsValid(relid))
		return false;
	/* NULL if dropped meanwhile (looked up without a lock) */
	name = get_rel_name(relid);
	if (name == NULL)
		return false;
	if (get_rel_namespace(relid) == c->schema)
		return strcmp(name, "audit_checkpoints") == 0;
	/* the records: the batches, the rows of before 1.1, what was moved */
	return get_rel_namespace(relid) == c->internal_schema &&
		(strcmp(name, "record_batches") == 0 || strcmp(name, "usage_rows") == 0 ||
		 strcmp(name, "audit_rows") == 0 || strcmp(name, "journal_moved") == 0);
}

/*
 * TRUNCATE of the record views (licdata.usage, licdata.audit_log) is
 * refused as their write guard refuses writes (PostgreSQL would say only
 * that a view is not a table).
 */
void
licdata_utility_refuse_records_truncate(Node *stmt)
{
	const LicdataCatalog *c;
	ListCell   *lc;

	if (!IsA(stmt, TruncateStmt))
		return;
	c = licdata_catalog();
	if (c == NULL)
		return;
	foreach(lc, ((TruncateStmt *) stmt)->relations)
	{
		Oid			relid = RangeVarGetRelid(lfirst_node(RangeVar, lc), NoLock, true);
		char	   *name;

		if (!OidIsValid(relid) || get_rel_namespace(relid) != c->schema ||
			get_rel_relkind(relid) != RELKIND_VIEW)
			continue;
		name = get_rel_name(relid);
		if (name && (strcmp(name, "usage") == 0 || strcmp(name, "audit_log") == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("%s is written only by licdata", name),
					 errdetail("Usage and audit records are moved from the journal by licdata's background worker and are never changed."),
					 errhint("Use licdata.purge_records to apply a retention period.")));
	}
}
