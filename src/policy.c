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
 * Rules that keep it right under concurrency (the way relcache does it):
 *	- It is loaded under a snapshot taken for the load (the latest one), never
 *	  the caller's: in REPEATABLE READ and SERIALIZABLE the caller's snapshot
 *	  is the transaction's, and a licence suspended since would be cached as
 *	  active -- for later transactions too, once its invalidation is consumed.
 *	- The invalidation callbacks only set flags and bump a counter; they never
 *	  free memory.  The counter is bumped unconditionally, also while a load
 *	  is running (a load takes locks, and locks absorb invalidations): a load
 *	  that saw the counter move loads again.
 *	- A load never frees the cache it replaces: that one is retired and freed
 *	  at the end of the transaction, so a caller that holds a dataset or
 *	  licence pointer across a call that can reload keeps valid memory.
 *	- The hook layer reloads at its safe points (the start of the planner
 *	  hook and of ExecutorStart, after accepting invalidations); a statement
 *	  keeps the values it decided (rewrite.h LicdataUse), not cache pointers.
 *
 * licdata_policy_generation counts loads and drops: caches derived from this
 * one (parsed row filters and masks, rewrite.c) are dropped when it moves.
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
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "errcodes.h"
#include "licdata.h"

uint64		licdata_policy_generation = 1;
bool		licdata_policy_loading = false;

static MemoryContext policy_cxt = NULL;
static List *retired_cxts = NIL;	/* replaced caches, freed at transaction end */
static MemoryContext relmap_cxt = NULL;	/* relmap_hash, rebuilt when stale */
static bool policy_valid = false;
static bool relmap_stale = false;
static uint64 policy_inval_count = 0;	/* bumped by every relevant invalidation */
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
	policy_inval_count++;
	licdata_policy_generation++;
}

/*
 * Relcache invalidation: set flags, free nothing (see the file header).
 * Runs wherever invalidations are accepted, a load in progress included.
 */
static void
policy_relcache_callback(Datum arg, Oid relid)
{
	const LicdataCatalog *c;

	if (relid == InvalidOid)
	{
		policy_invalidate();
		relmap_stale = true;
		return;
	}
	/* A change to a dataset's table (e.g. a new partition) redoes the map. */
	if (dataset_hash == NULL || hash_search(dataset_hash, &relid, HASH_FIND, NULL))
		relmap_stale = true;
	/*
	 * Don't look up the catalog here (no catalog access in callbacks); the
	 * catalog module keeps its OIDs until told otherwise.
	 */
	c = licdata_catalog_cached();
	if (c == NULL || relid == c->datasets || relid == c->licensees ||
		relid == c->licences || relid == c->masks || relid == c->authorities)
		policy_invalidate();
}

/* Free the caches replaced during the transaction (nobody holds them now). */
static void
policy_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			while (retired_cxts != NIL)
			{
				MemoryContext cxt = linitial(retired_cxts);

				retired_cxts = list_delete_first(retired_cxts);
				MemoryContextDelete(cxt);
			}
			break;
		default:
			break;
	}
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
	RegisterXactCallback(policy_xact_callback, NULL);
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
 * Load the whole catalog into a new policy_cxt, retiring the old one.  Runs
 * as the bootstrap superuser with a restricted security context, under a
 * snapshot of its own (see the file header), with search_path pinned to
 * pg_catalog, pg_temp (searchpath.c); every operator is written
 * OPERATOR(pg_catalog.x).
 */
static void
policy_load_once(void)
{
	Oid			save_userid;
	int			save_sec;
	MemoryContext oldcxt;
	HASHCTL		ctl;
	Snapshot	snap;
	int			save_nestlevel;

	if (policy_cxt != NULL)
	{
		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		retired_cxts = lappend(retired_cxts, policy_cxt);
		MemoryContextSwitchTo(oldcxt);
	}
	policy_cxt = AllocSetContextCreate(CacheMemoryContext, "licdata policy cache",
									   ALLOCSET_DEFAULT_SIZES);
	dataset_hash = NULL;
	relmap_stale = true;
	licensee_hash = NULL;
	licensee_list = NIL;
	licence_list = NIL;
	acting_valid = false;
	acting = NULL;
	licdata_policy_generation++;

	oldcxt = MemoryContextSwitchTo(policy_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(DatasetEntry);
	ctl.hcxt = policy_cxt;
	dataset_hash = hash_create("licdata datasets", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.entrysize = sizeof(LicdataLicensee);
	licensee_hash = hash_create("licdata licensees", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	MemoryContextSwitchTo(oldcxt);

	/*
	 * The catalog as committed now.  (A parallel leader cannot take a new
	 * snapshot; it keeps the statement's, taken after the safe point that
	 * accepted invalidations.)
	 */
	snap = IsInParallelMode() ? GetActiveSnapshot() : GetLatestSnapshot();
	PushActiveSnapshot(snap);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	licdata_policy_loading = true;
	PG_TRY();
	{
		TupleDesc	td;

		/*
		 * Columns added in 1.1 are read only when present, so that a 1.0
		 * installation keeps working for ALTER EXTENSION licdata UPDATE
		 * (their absence means the 1.0 behaviour: refuse, session scope).
		 */
		const LicdataCatalog *cat = licdata_catalog();
		bool		has_scope = cat && get_attnum(cat->licensees, "purpose_scope") != InvalidAttrNumber;
		bool		has_unlicensed = cat && get_attnum(cat->licences, "unlicensed_columns") != InvalidAttrNumber;

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
		run_query(has_scope ?
				  "SELECT l.licensee::pg_catalog.oid, l.key_id, l.org_name, l.purpose_scope FROM licdata.licensees l "
				  "JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) l.licensee::pg_catalog.oid ORDER BY l.licensee::pg_catalog.oid" :
				  "SELECT l.licensee::pg_catalog.oid, l.key_id, l.org_name, 'session' FROM licdata.licensees l "
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
			l->purpose_xact = (strcmp(spi_text(t, td, 4), "transaction") == 0);
			licensee_list = lappend(licensee_list, l);
			MemoryContextSwitchTo(oldcxt);
		}

		/*
		 * Under a library/SQL version mismatch only the datasets and the
		 * licensees are needed (to know whom to refuse, decide.c), and the
		 * queries below may name columns the installed version lacks.  The
		 * two queries above must stay valid against every released
		 * version's tables.
		 */
		if (!licdata_catalog()->version_ok)
			goto loaded;

		/* licences */
		run_query(psprintf("SELECT id, licensee::pg_catalog.oid, dataset::pg_catalog.oid, purposes, columns, row_filter, "
				  "valid_from, valid_until, max_rows_per_query, max_rows_per_day, max_queries_per_day, "
				  "require_consent_ref, price_per_query::pg_catalog.text, price_per_row::pg_catalog.text, "
				  "mode, min_group_size, status, "
				  "%s, "
				  /* read through to_jsonb: absent from a 1.0 installation's table */
				  "(pg_catalog.to_jsonb(l) OPERATOR(pg_catalog.->>) 'max_lookups_per_day')::pg_catalog.int8 "
				  "FROM licdata.licences l ORDER BY id", has_unlicensed ? "unlicensed_columns" : "'refuse'"));
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
			s = spi_text(t, td, 18);
			lic->unlicensed_null = (strcmp(s, "null") == 0);
			d = SPI_getbinval(t, td, 19, &isnull);
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
loaded:
		SPI_finish();
		licdata_unpin_search_path(save_nestlevel);
	}
	PG_FINALLY();
	{
		licdata_policy_loading = false;
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	/* (on an error, the transaction's abort pops what was pushed) */
	PopActiveSnapshot();
}

/*
 * Load until no invalidation arrived during the load.  After a few tries
 * under a stream of changes the last load serves this call and the cache
 * stays marked invalid, so the next call loads again.
 */
static void
policy_load(void)
{
	for (int attempt = 0; attempt < 4; attempt++)
	{
		uint64		seen = policy_inval_count;

		policy_load_once();
		if (policy_inval_count == seen)
		{
			policy_valid = true;
			return;
		}
	}
}

static void
policy_ensure(void)
{
	if (!policy_valid || dataset_hash == NULL)
		policy_load();
}

/*
 * A safe point (the start of the planner hook and of ExecutorStart): take
 * in the invalidations that arrived since the last statement and reload the
 * cache if they touched it.
 */
void
licdata_policy_refresh(void)
{
	AcceptInvalidationMessages();
	policy_ensure();
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
/*
 * The last dataset found by its own relid, for the policy generation it was
 * found in: a statement asks for its dataset in the rewrite, the
 * permission check and the meter.  (Tables that inherit from a dataset are
 * not remembered here: their map has its own staleness.)
 */
static Oid	last_ds_relid = InvalidOid;
static LicdataDataset *last_ds = NULL;
static uint64 last_ds_generation = 0;

LicdataDataset *
licdata_dataset_for_rel(Oid relid)
{
	DatasetEntry *e;
	RelmapEntry *m;
	bool		found;
	Oid			dataset = InvalidOid;

	policy_ensure();
	if (relid == last_ds_relid && OidIsValid(relid) && policy_valid &&
		last_ds_generation == licdata_policy_generation)
		return last_ds;
	if (hash_get_num_entries(dataset_hash) == 0)
		return NULL;
	e = hash_search(dataset_hash, &relid, HASH_FIND, NULL);
	if (e)
	{
		if (policy_valid && !licdata_policy_loading)
		{
			last_ds_relid = relid;
			last_ds = e->ds;
			last_ds_generation = licdata_policy_generation;
		}
		return e->ds;
	}

	/*
	 * The map is rebuilt when stale; no pointer into it outlives this
	 * function, and the callbacks below (has_superclass, table_open accept
	 * invalidations) only mark it stale, so it stays valid here.
	 */
	if (relmap_hash == NULL || relmap_stale)
	{
		HASHCTL		ctl;

		if (relmap_cxt == NULL)
			relmap_cxt = AllocSetContextCreate(CacheMemoryContext, "licdata relation map",
											   ALLOCSET_SMALL_SIZES);
		MemoryContextReset(relmap_cxt);
		relmap_stale = false;
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelmapEntry);
		ctl.hcxt = relmap_cxt;
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
	/* a licensee's keyed values only under matching versions */
	licdata_require_version_for_licensee();
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
