/*-------------------------------------------------------------------------
 *
 * catalog.c
 *	  Is licdata installed in this database, and the OIDs of its objects.
 *
 * Every hook asks licdata_catalog() first: NULL means the extension is not
 * created in this database (or is being created or dropped), and the hook
 * does nothing.  The answer is cached per backend and dropped whenever
 * pg_namespace changes or one of licdata's tables gets a relcache
 * invalidation, so CREATE/DROP EXTENSION in another session is noticed at
 * the next statement.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "licdata.h"

static LicdataCatalog cat;
static enum
{
	CAT_UNKNOWN,
	CAT_ABSENT,
	CAT_PRESENT
}			cat_state = CAT_UNKNOWN;

static void
catalog_syscache_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	cat_state = CAT_UNKNOWN;
}

static void
catalog_relcache_callback(Datum arg, Oid relid)
{
	if (cat_state != CAT_PRESENT)
		return;
	if (relid == InvalidOid || relid == cat.datasets || relid == cat.licensees ||
		relid == cat.licences || relid == cat.masks || relid == cat.authorities)
		cat_state = CAT_UNKNOWN;
}

void
licdata_catalog_init(void)
{
	CacheRegisterSyscacheCallback(NAMESPACEOID, catalog_syscache_callback, (Datum) 0);
	CacheRegisterRelcacheCallback(catalog_relcache_callback, (Datum) 0);
}

/*
 * Returns the OIDs of licdata's objects in this database, or NULL when the
 * extension is not (fully) created here.  Needs a transaction.
 */
const LicdataCatalog *
licdata_catalog(void)
{
	Oid			ext;
	Oid			nsp;

	if (cat_state == CAT_PRESENT)
		return &cat;
	if (cat_state == CAT_ABSENT)
		return NULL;
	if (!IsTransactionState())
		return NULL;

	cat_state = CAT_ABSENT;
	/* While CREATE EXTENSION runs, its objects are half there: stay out. */
	if (creating_extension)
	{
		cat_state = CAT_UNKNOWN;
		return NULL;
	}
	nsp = get_namespace_oid(LICDATA_SCHEMA, true);
	if (!OidIsValid(nsp))
		return NULL;
	ext = get_extension_oid("licdata", true);
	if (!OidIsValid(ext))
		return NULL;

	memset(&cat, 0, sizeof(cat));
	cat.schema = nsp;
	cat.datasets = get_relname_relid("datasets", nsp);
	cat.licensees = get_relname_relid("licensees", nsp);
	cat.licences = get_relname_relid("licences", nsp);
	cat.masks = get_relname_relid("masks", nsp);
	cat.authorities = get_relname_relid("authorities", nsp);
	cat.reader_role = get_role_oid(LICDATA_READER_ROLE, true);
	cat.operator_role = get_role_oid(LICDATA_OPERATOR_ROLE, true);
	cat.auditor_role = get_role_oid(LICDATA_AUDITOR_ROLE, true);
	cat.extension_owner = BOOTSTRAP_SUPERUSERID;
	cat.guard_func = LookupFuncName(list_make2(makeString(LICDATA_SCHEMA), makeString("guard")),
									0, NULL, true);

	if (!OidIsValid(cat.datasets) || !OidIsValid(cat.licensees) ||
		!OidIsValid(cat.licences) || !OidIsValid(cat.masks) ||
		!OidIsValid(cat.reader_role) || !OidIsValid(cat.operator_role))
		return NULL;

	cat_state = CAT_PRESENT;
	return &cat;
}

/* The cached answer only, without catalog access (for callbacks). */
const LicdataCatalog *
licdata_catalog_cached(void)
{
	return cat_state == CAT_PRESENT ? &cat : NULL;
}

/* The catalog tables a licensed plan depends on (for plan invalidation). */
List *
licdata_catalog_relids(void)
{
	const LicdataCatalog *c = licdata_catalog();

	if (c == NULL)
		return NIL;
	return list_make4_oid(c->datasets, c->licensees, c->licences, c->masks);
}
