/*-------------------------------------------------------------------------
 *
 * plantag.c
 *	  The terms a plan was built under, carried in the plan.
 *
 * A licensee's plan records, per dataset it reads through a licence, the
 * fingerprint of the terms the rewrite applied (decide.c), computed when the
 * rewrite decided -- not after planning, when the policy cache may have been
 * reloaded under newer terms.  ExecutorStart compares it with the current
 * terms and refuses a plan built under others (LD010): a cached or prepared
 * plan never serves terms that no longer hold.
 *
 * The tags ride in PlannedStmt->invalItems, the plan cache's list of
 * syscache entries the plan depends on, which survives plan copying and
 * caching.  Each tag is three items: the dataset's OID, then the high and
 * the low 32 bits of the fingerprint.  Their cacheId values are negative:
 * the plan cache's syscache callback (PlanCacheSysCallback) only compares an
 * item's cacheId with the id of the syscache being invalidated, which is
 * never negative, so a tag never matches and never invalidates a plan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/makefuncs.h"
#include "utils/syscache.h"

#include "plantag.h"

#define TAG_DATASET		(-0x4C44)
#define TAG_FP_HIGH		(-0x4C45)
#define TAG_FP_LOW		(-0x4C46)
#define TAG_PRODUCT		(-0x4C47)	/* planned inside a data product's body */

StaticAssertDecl(TAG_DATASET < 0 && TAG_FP_HIGH < 0 && TAG_FP_LOW < 0 && TAG_PRODUCT < 0 &&
				 SysCacheSize > 0,
				 "plan tags must never equal a syscache id");

static PlanInvalItem *
tag(int id, uint32 value)
{
	PlanInvalItem *item = makeNode(PlanInvalItem);

	item->cacheId = id;
	item->hashValue = value;
	return item;
}

/* Tag a plan with the uses (LicdataUse) its rewrite decided. */
void
licdata_plan_tag(PlannedStmt *ps, List *uses)
{
	ListCell   *lc;

	foreach(lc, uses)
	{
		LicdataUse *u = lfirst(lc);

		ps->invalItems = lappend(ps->invalItems, tag(TAG_DATASET, (uint32) u->dataset));
		ps->invalItems = lappend(ps->invalItems, tag(TAG_FP_HIGH, (uint32) (u->fingerprint >> 32)));
		ps->invalItems = lappend(ps->invalItems, tag(TAG_FP_LOW, (uint32) u->fingerprint));
	}
}

/*
 * Was every part of the plan that reads 'dataset' built under the terms
 * whose fingerprint is given?  A plan with no tag for the dataset was not
 * built through a licence for it: false.
 */
bool
licdata_plan_terms_match(PlannedStmt *ps, Oid dataset, uint64 fingerprint)
{
	ListCell   *lc;
	bool		found = false;
	bool		ours = false;
	uint32		high = 0;

	foreach(lc, ps->invalItems)
	{
		PlanInvalItem *item = lfirst(lc);

		switch (item->cacheId)
		{
			case TAG_DATASET:
				ours = (item->hashValue == (uint32) dataset);
				break;
			case TAG_FP_HIGH:
				high = item->hashValue;
				break;
			case TAG_FP_LOW:
				if (ours)
				{
					if ((((uint64) high) << 32 | item->hashValue) != fingerprint)
						return false;
					found = true;
				}
				ours = false;
				break;
			default:
				break;
		}
	}
	return found;
}

/* Mark a plan made inside a data product's body (product.c). */
void
licdata_plan_tag_product(PlannedStmt *ps)
{
	ps->invalItems = lappend(ps->invalItems, tag(TAG_PRODUCT, 1));
}

/* Was the plan made inside a data product's body? */
bool
licdata_plan_is_product(PlannedStmt *ps)
{
	ListCell   *lc;

	foreach(lc, ps->invalItems)
	{
		PlanInvalItem *item = lfirst(lc);

		if (item->cacheId == TAG_PRODUCT)
			return true;
	}
	return false;
}
