/*-------------------------------------------------------------------------
 *
 * plantag.h
 *	  The terms a plan was built under, carried in the plan (plantag.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_PLANTAG_H
#define LICDATA_PLANTAG_H

#include "nodes/plannodes.h"

#include "rewrite.h"

extern void licdata_plan_tag(PlannedStmt *ps, List *uses);
extern bool licdata_plan_terms_match(PlannedStmt *ps, Oid dataset, uint64 fingerprint);
extern void licdata_plan_tag_product(PlannedStmt *ps);
extern bool licdata_plan_is_product(PlannedStmt *ps);

#endif							/* LICDATA_PLANTAG_H */
