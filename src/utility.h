/*-------------------------------------------------------------------------
 *
 * utility.h
 *	  Utility statements as licdata handles them (utility.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_UTILITY_H
#define LICDATA_UTILITY_H

#include "executor/execdesc.h"
#include "nodes/plannodes.h"
#include "tcop/cmdtag.h"

extern int	licdata_explain_depth;
extern void licdata_explain_check(QueryDesc *qd);
extern uint64 licdata_utility_copy_audit_begin(Node *stmt);
extern PlannedStmt *licdata_utility_copy_for_licensee(PlannedStmt *pstmt, bool readOnlyTree);
extern void licdata_utility_refuse_dataset_ddl(Node *stmt);
extern bool licdata_utility_is_records_restore(Node *stmt);
extern void licdata_utility_refuse_records_truncate(Node *stmt);
extern void licdata_utility_copy_audit_end(uint64 token, QueryCompletion *qc);

#endif							/* LICDATA_UTILITY_H */
