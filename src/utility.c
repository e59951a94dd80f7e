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
 * COPY dataset TO by an operator or a superuser is audited like a SELECT:
 * COPY of a table reads it without the executor when row-level security
 * does not apply (a superuser, pg_dump), so the executor hooks never see it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "nodes/plannodes.h"

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
		LicdataDecision d;

		if (rte->rtekind != RTE_RELATION || rte->checkAsUser != c->reader_role)
			continue;
		ds = licdata_dataset_for_rel(rte->relid);
		if (ds == NULL)
			continue;
		memset(&d, 0, sizeof(d));
		d.sqlerrcode = ERRCODE_LD_EXPLAIN_REFUSED;
		d.message = psprintf("EXPLAIN of a statement that reads dataset %s is not served to licensees",
							 ds->name);
		d.detail = pstrdup("A plan's row estimates and counts are drawn from the whole dataset, including rows and groups the licence does not serve.");
		d.hint = pstrdup("Run the statement without EXPLAIN, or ask the operator to look at its plan.");
		licdata_meter_denial(ds, &d, 0);
		licdata_raise_decision(&d);
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
