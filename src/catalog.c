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
 * Version check: the cached answer also says whether the SQL objects in
 * this database (pg_extension.extversion) are the version this library was
 * built for (LICDATA_VERSION, from the Makefile's EXTVERSION).  When they
 * are not (the package was upgraded and ALTER EXTENSION licdata UPDATE has
 * not run yet), licensees are refused (LD011, decide.c; keyed functions,
 * licdata_acting_key_id) with a hint to update, operators keep working so
 * that they can, and the background worker leaves the journal alone
 * (worker.c) until the versions match.  ALTER EXTENSION licdata changes
 * only pg_extension, which sends no invalidation that reaches us, so the
 * utility hook calls licdata_catalog_extension_altered() after it: a
 * relcache invalidation of licdata's catalog tables, sent at commit to
 * every backend like any catalog change.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "errcodes.h"
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

#ifndef LICDATA_VERSION
#error "LICDATA_VERSION must be defined (the Makefile passes EXTVERSION)"
#endif

/*
 * The installed version of extension licdata (pg_extension.extversion)
 * into buf; false when the extension is not there.
 */
static bool
installed_version(char *buf, size_t buflen)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("licdata"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			char	   *v = TextDatumGetCString(d);

			strlcpy(buf, v, buflen);
			pfree(v);
			found = true;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
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
	cat.internal_schema = get_namespace_oid(LICDATA_INTERNAL_SCHEMA, true);
	cat.datasets = get_relname_relid("datasets", nsp);
	cat.licensees = get_relname_relid("licensees", nsp);
	cat.licences = get_relname_relid("licences", nsp);
	cat.masks = get_relname_relid("masks", nsp);
	cat.authorities = get_relname_relid("authorities", nsp);
	cat.reader_role = get_role_oid(LICDATA_READER_ROLE, true);
	cat.operator_role = get_role_oid(LICDATA_OPERATOR_ROLE, true);
	cat.auditor_role = get_role_oid(LICDATA_AUDITOR_ROLE, true);
	cat.extension_owner = BOOTSTRAP_SUPERUSERID;
	cat.guard_func = licdata_internal_function("guard", 0, NULL, true);
	if (!OidIsValid(cat.guard_func))	/* 1.0's SQL objects */
		cat.guard_func = LookupFuncName(list_make2(makeString(LICDATA_SCHEMA), makeString("guard")),
										0, NULL, true);
	if (!installed_version(cat.sql_version, sizeof(cat.sql_version)))
		return NULL;
	cat.version_ok = (strcmp(cat.sql_version, LICDATA_VERSION) == 0);

	if (!OidIsValid(cat.datasets) || !OidIsValid(cat.licensees) ||
		!OidIsValid(cat.licences) || !OidIsValid(cat.masks) ||
		!OidIsValid(cat.reader_role) || !OidIsValid(cat.operator_role))
		return NULL;

	cat_state = CAT_PRESENT;
	return &cat;
}

/*
 * A function of schema licdata_internal by exact name and argument types.
 * Licensees have no USAGE on that schema (its functions are not theirs to
 * call by name), so this is a catalog lookup that checks no privilege --
 * unlike LookupFuncName, which would refuse a licensee's backend.  The
 * functions found are put into plans by OID; EXECUTE is checked there.
 */
Oid
licdata_internal_function(const char *name, int nargs, const Oid *argtypes, bool missing_ok)
{
	Oid			nsp = get_namespace_oid(LICDATA_INTERNAL_SCHEMA, true);
	Oid			fn = InvalidOid;

	if (OidIsValid(nsp))
		fn = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum(name),
							 PointerGetDatum(buildoidvector(argtypes, nargs)),
							 ObjectIdGetDatum(nsp));
	if (!OidIsValid(fn) && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %s.%s of licdata does not exist", LICDATA_INTERNAL_SCHEMA, name),
				 errdetail("The extension's SQL objects are not those of library version %s.", LICDATA_VERSION),
				 errhint("Run ALTER EXTENSION licdata UPDATE in this database.")));
	return fn;
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

/*
 * After ALTER EXTENSION licdata (UPDATE): make every backend read the
 * catalog answer, and with it the installed version, again (see the file
 * header).  The invalidation is transactional: other backends see it when
 * the ALTER commits.
 */
void
licdata_catalog_extension_altered(void)
{
	Oid			nsp = get_namespace_oid(LICDATA_SCHEMA, true);
	Oid			relid;

	cat_state = CAT_UNKNOWN;
	if (!OidIsValid(nsp))
		return;
	relid = get_relname_relid("licences", nsp);
	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
	relid = get_relname_relid("datasets", nsp);
	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
}

/*
 * The refusal of a licensee while the library and the SQL objects differ
 * in version: message, detail and hint (palloc'd), for a decision or an
 * error.
 */
void
licdata_version_mismatch_texts(const LicdataCatalog *c, char **msg, char **detail,
							   char **hint)
{
	*msg = psprintf("licdata cannot serve licensees: its library is version %s but the extension in this database is version %s",
					LICDATA_VERSION, c->sql_version);
	*detail = pstrdup("The server runs a newer or older licdata library than the SQL objects installed in this database; licensees are not served until they match.");
	*hint = pstrdup("Ask the operator to run ALTER EXTENSION licdata UPDATE in this database.");
}

/*
 * Raise the refusal above when the versions differ (for SQL functions that
 * serve a licensee outside the query rewrite).
 */
void
licdata_require_version_for_licensee(void)
{
	const LicdataCatalog *c = licdata_catalog();
	char	   *msg;
	char	   *detail;
	char	   *hint;

	if (c == NULL || c->version_ok)
		return;
	licdata_version_mismatch_texts(c, &msg, &detail, &hint);
	ereport(ERROR,
			(errcode(ERRCODE_LD_NOT_READY),
			 errmsg_internal("%s", msg),
			 errdetail_internal("%s", detail),
			 errhint("%s", hint)));
}
