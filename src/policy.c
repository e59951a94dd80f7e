/*-------------------------------------------------------------------------
 *
 * policy.c
 *	  Backend-local cache of licdata's catalog: published datasets (and the
 *	  tables that inherit from them), licensees, licences and masks, and the
 *	  licensee this session acts for.
 *
 * The cache is loaded in one go from the catalog tables (as the bootstrap
 * superuser, so a licensee's session can load it without any privilege on
 * them) and lives in a child of CacheMemoryContext.  It is dropped when a
 * catalog table gets a relcache invalidation (licdata._catalog_changed()
 * sends one after every change, so every backend sees the change at its
 * next statement), and the acting-licensee answer is dropped when role
 * membership changes.
 *
 * licdata_policy_generation counts drops; a plan remembers the generation
 * it was built under, so the executor can tell a plan built under terms
 * that no longer hold.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "errcodes.h"
#include "licdata.h"

uint64		licdata_policy_generation = 1;
bool		licdata_policy_loading = false;

static MemoryContext policy_cxt = NULL;
static bool policy_valid = false;
static HTAB *dataset_hash = NULL;	/* relid -> DatasetEntry */
static HTAB *relmap_hash = NULL;	/* any relid -> dataset relid or InvalidOid */
static HTAB *licensee_hash = NULL;	/* roleid -> LicdataLicensee */
static List *licensee_list = NIL;
static List *licence_list = NIL;

/* The acting-licensee answer for (session user, current user). */
static bool acting_valid = false;
static Oid	acting_session = InvalidOid;
static Oid	acting_current = InvalidOid;
static const LicdataLicensee *acting = NULL;

typedef struct DatasetEntry
{
	Oid			relid;
	LicdataDataset *ds;
} DatasetEntry;

typedef struct RelmapEntry
{
	Oid			relid;
	Oid			dataset;
} RelmapEntry;

static void
policy_invalidate(void)
{
	policy_valid = false;
	acting_valid = false;
	licdata_policy_generation++;
}

static void
policy_relcache_callback(Datum arg, Oid relid)
{
	const LicdataCatalog *c;

	if (relid == InvalidOid)
	{
		policy_invalidate();
		return;
	}
	if (!policy_valid)
		return;
	/* A change to a dataset's table (e.g. a new partition) redoes the map. */
	if (dataset_hash && hash_search(dataset_hash, &relid, HASH_FIND, NULL))
	{
		if (relmap_hash)
			hash_destroy(relmap_hash);
		relmap_hash = NULL;
	}
	/*
	 * Don't look up the catalog here (no catalog access in callbacks); the
	 * catalog module keeps its OIDs until told otherwise.
	 */
	c = licdata_catalog_cached();
	if (c == NULL || relid == c->datasets || relid == c->licensees ||
		relid == c->licences || relid == c->masks || relid == c->authorities)
		policy_invalidate();
}

static void
policy_role_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	acting_valid = false;
}

void
licdata_policy_init(void)
{
	CacheRegisterRelcacheCallback(policy_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, policy_role_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, policy_role_callback, (Datum) 0);
}

static char *
spi_text(HeapTuple tup, TupleDesc td, int col)
{
	char	   *v = SPI_getvalue(tup, td, col);

	return v;					/* palloc'd in the current context, NULL for NULL */
}

static List *
text_array_to_list(Datum d, Oid elemtype)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int16		typlen;
	bool		typbyval;
	char		typalign;
	List	   *result = NIL;

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(arr, elemtype, typlen, typbyval, typalign, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			continue;
		if (elemtype == NAMEOID)
			result = lappend(result, pstrdup(NameStr(*DatumGetName(elems[i]))));
		else
			result = lappend(result, TextDatumGetCString(elems[i]));
	}
	return result;
}

static void
run_query(const char *sql)
{
	int			rc = SPI_execute(sql, true, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "licdata: catalog query failed: %s", SPI_result_code_string(rc));
}

/*
 * Load the whole catalog into policy_cxt.  Runs as the bootstrap superuser
 * with a restricted security context and search_path pinned to pg_catalog,
 * pg_temp (searchpath.c); every operator is written OPERATOR(pg_catalog.x).
 */
static void
policy_load(void)
{
	Oid			save_userid;
	int			save_sec;
	MemoryContext oldcxt;
	HASHCTL		ctl;
	int			save_nestlevel;

	if (policy_cxt == NULL)
		policy_cxt = AllocSetContextCreate(CacheMemoryContext, "licdata policy cache",
										   ALLOCSET_DEFAULT_SIZES);

	/* Drop the old cache before loading the new one. */
	MemoryContextReset(policy_cxt);
	dataset_hash = NULL;
	relmap_hash = NULL;
	licensee_hash = NULL;
	licensee_list = NIL;
	licence_list = NIL;
	acting_valid = false;

	oldcxt = MemoryContextSwitchTo(policy_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(DatasetEntry);
	ctl.hcxt = policy_cxt;
	dataset_hash = hash_create("licdata datasets", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = sizeof(LicdataLicensee);
	licensee_hash = hash_create("licdata licensees", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	MemoryContextSwitchTo(oldcxt);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	licdata_policy_loading = true;
	PG_TRY();
	{
		TupleDesc	td;

		/*
		 * Runs as superuser in the caller's session: nothing the caller
		 * created or put in search_path may resolve here.
		 */
		save_nestlevel = licdata_pin_search_path();

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "licdata: SPI_connect failed");

		/* datasets */
		run_query("SELECT d.dataset::pg_catalog.oid, d.dataset::pg_catalog.text, "
				  "d.price_per_query::pg_catalog.text, d.price_per_row::pg_catalog.text "
				  "FROM licdata.datasets d JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.dataset::pg_catalog.oid "
				  "WHERE d.unpublished_at IS NULL");
		td = SPI_tuptable->tupdesc;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			bool		isnull;
			Oid			relid = DatumGetObjectId(SPI_getbinval(t, td, 1, &isnull));
			DatasetEntry *e;
			LicdataDataset *ds;

			oldcxt = MemoryContextSwitchTo(policy_cxt);
			ds = palloc0(sizeof(LicdataDataset));
			ds->relid = relid;
			ds->name = spi_text(t, td, 2);
			ds->price_per_query = spi_text(t, td, 3);
			ds->price_per_row = spi_text(t, td, 4);
			e = hash_search(dataset_hash, &relid, HASH_ENTER, NULL);
			e->ds = ds;
			MemoryContextSwitchTo(oldcxt);
		}

		/* licensees */
		run_query("SELECT l.licensee::pg_catalog.oid, l.key_id, l.org_name FROM licdata.licensees l "
				  "JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) l.licensee::pg_catalog.oid ORDER BY l.licensee::pg_catalog.oid");
		td = SPI_tuptable->tupdesc;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			bool		isnull;
			Oid			roleid = DatumGetObjectId(SPI_getbinval(t, td, 1, &isnull));
			LicdataLicensee *l;

			oldcxt = MemoryContextSwitchTo(policy_cxt);
			l = hash_search(licensee_hash, &roleid, HASH_ENTER, NULL);
			l->roleid = roleid;
			l->key_id = DatumGetInt64(SPI_getbinval(t, td, 2, &isnull));
			l->org_name = spi_text(t, td, 3);
			licensee_list = lappend(licensee_list, l);
			MemoryContextSwitchTo(oldcxt);
		}

		/* licences */
		/*
		 * max_lookups_per_day is read through to_jsonb so that the library
		 * still loads the catalog of a 1.0 installation (no such column),
		 * e.g. while ALTER EXTENSION licdata UPDATE runs.
		 */
		run_query("SELECT id, licensee::pg_catalog.oid, dataset::pg_catalog.oid, purposes, columns, row_filter, "
				  "valid_from, valid_until, max_rows_per_query, max_rows_per_day, max_queries_per_day, "
				  "require_consent_ref, price_per_query::pg_catalog.text, price_per_row::pg_catalog.text, "
				  "mode, min_group_size, status, "
				  "(pg_catalog.to_jsonb(l) OPERATOR(pg_catalog.->>) 'max_lookups_per_day')::pg_catalog.int8 "
				  "FROM licdata.licences l ORDER BY id");
		td = SPI_tuptable->tupdesc;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			bool		isnull;
			LicdataLicence *lic;
			DatasetEntry *e;
			Datum		d;
			char	   *s;

			oldcxt = MemoryContextSwitchTo(policy_cxt);
			lic = palloc0(sizeof(LicdataLicence));
			lic->id = DatumGetInt64(SPI_getbinval(t, td, 1, &isnull));
			lic->licensee = DatumGetObjectId(SPI_getbinval(t, td, 2, &isnull));
			lic->dataset = DatumGetObjectId(SPI_getbinval(t, td, 3, &isnull));
			lic->purposes = text_array_to_list(SPI_getbinval(t, td, 4, &isnull), TEXTOID);
			d = SPI_getbinval(t, td, 5, &isnull);
			lic->columns = isnull ? NIL : text_array_to_list(d, NAMEOID);
			lic->row_filter = spi_text(t, td, 6);
			lic->valid_from = DatumGetTimestampTz(SPI_getbinval(t, td, 7, &isnull));
			d = SPI_getbinval(t, td, 8, &isnull);
			if (isnull)
				TIMESTAMP_NOEND(lic->valid_until);
			else
				lic->valid_until = DatumGetTimestampTz(d);
			d = SPI_getbinval(t, td, 9, &isnull);
			lic->max_rows_per_query = isnull ? 0 : DatumGetInt64(d);
			d = SPI_getbinval(t, td, 10, &isnull);
			lic->max_rows_per_day = isnull ? 0 : DatumGetInt64(d);
			d = SPI_getbinval(t, td, 11, &isnull);
			lic->max_queries_per_day = isnull ? 0 : DatumGetInt64(d);
			lic->require_consent_ref = DatumGetBool(SPI_getbinval(t, td, 12, &isnull));
			lic->price_per_query = spi_text(t, td, 13);
			lic->price_per_row = spi_text(t, td, 14);
			s = spi_text(t, td, 15);
			lic->aggregate_mode = (strcmp(s, "aggregate") == 0);
			lic->min_group_size = DatumGetInt32(SPI_getbinval(t, td, 16, &isnull));
			s = spi_text(t, td, 17);
			lic->status = s[0];
			d = SPI_getbinval(t, td, 18, &isnull);
			lic->max_lookups_per_day = isnull ? 0 : DatumGetInt64(d);
			licence_list = lappend(licence_list, lic);
			e = hash_search(dataset_hash, &lic->dataset, HASH_FIND, NULL);
			if (e)
				e->ds->licences = lappend(e->ds->licences, lic);
			MemoryContextSwitchTo(oldcxt);
		}

		/* masks */
		run_query("SELECT dataset::pg_catalog.oid, column_name, method, params::pg_catalog.text, "
				  "licence_id, purpose FROM licdata.masks ORDER BY id");
		td = SPI_tuptable->tupdesc;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			bool		isnull;
			Oid			relid = DatumGetObjectId(SPI_getbinval(t, td, 1, &isnull));
			DatasetEntry *e = hash_search(dataset_hash, &relid, HASH_FIND, NULL);
			LicdataMask *m;
			Datum		d;

			if (e == NULL)
				continue;
			oldcxt = MemoryContextSwitchTo(policy_cxt);
			m = palloc0(sizeof(LicdataMask));
			m->column_name = spi_text(t, td, 2);
			m->method = spi_text(t, td, 3);
			m->params = spi_text(t, td, 4);
			d = SPI_getbinval(t, td, 5, &isnull);
			m->licence_id = isnull ? 0 : DatumGetInt64(d);
			m->purpose = spi_text(t, td, 6);
			e->ds->masks = lappend(e->ds->masks, m);
			MemoryContextSwitchTo(oldcxt);
		}
		SPI_finish();
		licdata_unpin_search_path(save_nestlevel);
	}
	PG_FINALLY();
	{
		licdata_policy_loading = false;
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();

	policy_valid = true;
}

static void
policy_ensure(void)
{
	if (!policy_valid)
		policy_load();
}

bool
licdata_any_datasets(void)
{
	policy_ensure();
	return hash_get_num_entries(dataset_hash) > 0;
}

/*
 * The dataset a relation belongs to: the dataset itself, or a table that
 * inherits from (or is a partition of) one.  NULL when none.
 */
LicdataDataset *
licdata_dataset_for_rel(Oid relid)
{
	DatasetEntry *e;
	RelmapEntry *m;
	bool		found;
	Oid			dataset = InvalidOid;

	policy_ensure();
	if (hash_get_num_entries(dataset_hash) == 0)
		return NULL;
	e = hash_search(dataset_hash, &relid, HASH_FIND, NULL);
	if (e)
		return e->ds;

	if (relmap_hash == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelmapEntry);
		ctl.hcxt = policy_cxt;
		relmap_hash = hash_create("licdata relation map", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	m = hash_search(relmap_hash, &relid, HASH_FIND, NULL);
	if (m == NULL)
	{
		/* Walk up the inheritance tree looking for a dataset. */
		Oid			cur = relid;
		int			depth = 0;

		while (has_superclass(cur) && depth++ < 64)
		{
			List	   *parents = NIL;
			Relation	inhrel;
			ScanKeyData key;
			SysScanDesc scan;
			HeapTuple	tup;
			ListCell   *plc;

			inhrel = table_open(InheritsRelationId, AccessShareLock);
			ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber,
						F_OIDEQ, ObjectIdGetDatum(cur));
			scan = systable_beginscan(inhrel, InheritsRelidSeqnoIndexId, true, NULL, 1, &key);
			while (HeapTupleIsValid(tup = systable_getnext(scan)))
				parents = lappend_oid(parents, ((Form_pg_inherits) GETSTRUCT(tup))->inhparent);
			systable_endscan(scan);
			table_close(inhrel, AccessShareLock);
			if (parents == NIL)
				break;
			cur = InvalidOid;
			foreach(plc, parents)
			{
				Oid			p = lfirst_oid(plc);

				if (hash_search(dataset_hash, &p, HASH_FIND, NULL))
				{
					dataset = p;
					break;
				}
				if (!OidIsValid(cur))
					cur = p;
			}
			if (OidIsValid(dataset) || !OidIsValid(cur))
				break;
		}
		m = hash_search(relmap_hash, &relid, HASH_ENTER, &found);
		m->dataset = dataset;
	}
	if (!OidIsValid(m->dataset))
		return NULL;
	e = hash_search(dataset_hash, &m->dataset, HASH_FIND, NULL);
	return e ? e->ds : NULL;
}

const LicdataLicensee *
licdata_licensee_for_role(Oid roleid)
{
	policy_ensure();
	return hash_search(licensee_hash, &roleid, HASH_FIND, NULL);
}

/*
 * The licensee a role acts for: itself when registered, else the one
 * registered licensee it is a member of (superuser powers do not count).
 * A role that is a member of two licensees is refused: it cannot be told
 * which licence to use.
 */
static const LicdataLicensee *
resolve_licensee(Oid roleid)
{
	const LicdataLicensee *found = NULL;
	ListCell   *lc;

	found = hash_search(licensee_hash, &roleid, HASH_FIND, NULL);
	if (found)
		return found;
	foreach(lc, licensee_list)
	{
		const LicdataLicensee *l = lfirst(lc);

		if (is_member_of_role_nosuper(roleid, l->roleid))
		{
			if (found)
				ereport(ERROR,
						(errcode(ERRCODE_LD_NO_LICENCE),
						 errmsg("role \"%s\" acts for more than one licensee",
								GetUserNameFromId(roleid, false)),
						 errdetail("It is a member of \"%s\" and of \"%s\".",
								   GetUserNameFromId(found->roleid, false),
								   GetUserNameFromId(l->roleid, false)),
						 errhint("Ask the operator to leave the role in one licensee only.")));
			found = l;
		}
	}
	return found;
}

/* The licensee a role acts for, for the operator API's checks. */
const LicdataLicensee *
licdata_licensee_acted_by(Oid roleid)
{
	policy_ensure();
	return resolve_licensee(roleid);
}

/*
 * The licensee this session acts for, or NULL.  Keyed on the session user
 * first, so SET ROLE and SECURITY DEFINER functions cannot leave a
 * licensee's licence; a non-licensee session user that SETs ROLE to a
 * licensee (an operator trying a licensee's view) acts for it too.
 */
const LicdataLicensee *
licdata_acting_licensee(void)
{
	Oid			su = GetSessionUserId();
	Oid			cu = GetUserId();

	if (acting_valid && policy_valid && su == acting_session && cu == acting_current)
		return acting;
	if (licdata_policy_loading)
		return NULL;
	policy_ensure();
	acting = NULL;
	if (licensee_list != NIL)
	{
		acting = resolve_licensee(su);
		if (acting == NULL && cu != su)
			acting = resolve_licensee(cu);
	}
	acting_session = su;
	acting_current = cu;
	acting_valid = true;
	return acting;
}

bool
licdata_acting_key_id(int64 *key_id)
{
	const LicdataLicensee *l;

	if (licdata_catalog() == NULL)
		return false;
	l = licdata_acting_licensee();
	if (l == NULL)
		return false;
	*key_id = l->key_id;
	return true;
}

bool
licdata_role_is_operator(Oid roleid)
{
	const LicdataCatalog *c;

	if (superuser_arg(roleid))
		return true;
	c = licdata_catalog();
	return c != NULL && has_privs_of_role(roleid, c->operator_role);
}

bool
licdata_role_is_auditor(Oid roleid)
{
	const LicdataCatalog *c;

	if (superuser_arg(roleid))
		return true;
	c = licdata_catalog();
	return c != NULL && OidIsValid(c->auditor_role) && has_privs_of_role(roleid, c->auditor_role);
}

/*
 * The mask that applies to a column under a licence and purpose, by
 * precedence: (licence, purpose), then licence, then the dataset default.
 */
const LicdataMask *
licdata_mask_for(LicdataDataset *ds, const LicdataLicence *lic, const char *purpose,
				 const char *column)
{
	const LicdataMask *by_purpose = NULL;
	const LicdataMask *by_licence = NULL;
	const LicdataMask *by_dataset = NULL;
	ListCell   *lc;

	foreach(lc, ds->masks)
	{
		const LicdataMask *m = lfirst(lc);

		if (strcmp(m->column_name, column) != 0)
			continue;
		if (m->licence_id == 0)
			by_dataset = m;
		else if (lic && m->licence_id == lic->id)
		{
			if (m->purpose == NULL)
				by_licence = m;
			else if (purpose && strcmp(m->purpose, purpose) == 0)
				by_purpose = m;
		}
	}
	if (by_purpose)
		return by_purpose;
	if (by_licence)
		return by_licence;
	return by_dataset;
}

LicdataLicence *
licdata_licence_by_id(int64 id)
{
	ListCell   *lc;

	policy_ensure();
	foreach(lc, licence_list)
	{
		LicdataLicence *l = lfirst(lc);

		if (l->id == id)
			return l;
	}
	return NULL;
}
