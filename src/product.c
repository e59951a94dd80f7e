/*-------------------------------------------------------------------------
 *
 * product.c
 *	  Data products: an operator's SQL or PL/pgSQL function, published with
 *	  licdata.publish_product, that licensees call by name under a product
 *	  licence.  Inside its body the datasets it reads are read as published
 *	  (raw); outside it the licensee's own licences apply.  Each call is
 *	  decided, metered (calls, rows returned) and audited (with its
 *	  arguments).
 *
 * How a call is served.  In a licensee's session every function written
 * in a procedural language (SQL, PL/pgSQL, ...) goes through fmgr's hook
 * (hooks.c's needs_fmgr_hook says so; it also stops SQL functions being
 * inlined).  At FHET_START of a published product, licdata_product_fmgr
 * puts product_call in place of the function's own entry point for that
 * call; product_call has the call's FunctionCallInfo, so it can:
 *	1. decide the call (decide.c, as for a dataset: LD001 LD002 LD004 LD005
 *	   LD007), refusing before the body runs (a denial record first);
 *	2. check the function is still what publish_product accepted (owner an
 *	   operator, SQL or PL/pgSQL, VOLATILE, PARALLEL UNSAFE, the search_path
 *	   recorded at publish in its SET clause), refusing otherwise;
 *	3. take the day quota of calls and count the call (meter.c);
 *	4. run the body as the function's owner, with licdata_product_depth
 *	   raised (the hooks then read datasets as published and audit the
 *	   reads with the call), in a security-restricted operation (no SET
 *	   ROLE, no temporary objects, no held cursors: the body cannot leave
 *	   state behind in the licensee's session), no parallel plans (a worker
 *	   would not know it serves a product), messages below ERROR not sent
 *	   to the client, and a set result materialised;
 *	5. count the rows returned (1 for a scalar call, the tuplestore's rows
 *	   for a set), and, with the product's hide_errors, replace any error
 *	   raised inside by a generic one (the original goes to the server log
 *	   only), since an error message can carry a data value.
 * The search_path of the body is the one pinned in the function's SET
 * clause (fmgr applies it before the hook runs), so nothing the licensee
 * creates or sets redirects a name in it.
 *
 * Licensee code never runs with the depth raised: a function not owned by
 * an operator entered while it is raised (reached through a domain, a
 * polymorphic argument, a trigger) resets it to 0 for its duration.
 * Products called inside a product are the author's business: they run
 * as the author wrote them, not metered again.  EXPLAIN ANALYZE of a
 * statement that calls a product is refused for licensees (its timings and
 * buffer counts describe the data the body reads).
 *
 * The cache of published products and their licences lives in its own
 * memory context and is dropped by a relcache invalidation of
 * licdata.products or licdata.licences (the catalog trigger sends one).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/proclang.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/parsenodes.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "errcodes.h"
#include "licdata.h"
#include "meter.h"
#include "product.h"

int			licdata_product_depth = 0;

/* A product licence: a licence (decided by decide.c) plus its day quota. */
typedef struct ProductLicence
{
	LicdataLicence lic;			/* first: decide.c returns a pointer to it */
	int64		max_calls_per_day;	/* 0 = no limit */
} ProductLicence;

typedef struct Product
{
	Oid			fn;				/* hash key */
	LicdataDataset ds;			/* relid InvalidOid, name = signature, licences */
	char	   *price_per_call;
	char	   *price_per_row;
	char	   *search_path;	/* "search_path=..." as publish recorded it */
	bool		hide_errors;
} Product;

static MemoryContext product_cxt = NULL;
static List *retired_cxts = NIL;	/* replaced caches, freed at transaction end */
static HTAB *product_hash = NULL;
static bool cache_valid = false;
static Oid	products_relid = InvalidOid;	/* licdata.products, when known */
static Oid	licences_relid = InvalidOid;

/* What a function is, for this FmgrInfo (fmgr keeps it per call site). */
#define CALL_PLAIN		0		/* nothing to do */
#define CALL_PRODUCT	1		/* a published product, licensee session */
#define CALL_FOREIGN	2		/* not owned by an operator, licensee session */

typedef struct CallState
{
	int			kind;
	Oid			fn;
	PGFunction	real;			/* the function's own entry point */
	bool		checked;		/* the function's safety was checked */
	Oid			owner;
	bool		secdef;			/* SECURITY DEFINER: fmgr switches the user */
	int			saved_depth;	/* CALL_FOREIGN: product depth before it */
	bool		switched;		/* CALL_FOREIGN: user switched back to the caller */
	Oid			saved_user;
	int			saved_sec;
	FunctionCallInfo fcinfo;	/* for the audit of the arguments */
} CallState;

/* Handed from FHET_START to product_call, which runs right after it. */
static CallState *pending = NULL;

/* The user that called the product now running (the licensee's role). */
static Oid	product_caller = InvalidOid;

/* > 0 while a licensee's EXPLAIN ANALYZE runs */
static int	explain_analyze = 0;

static Datum product_call(PG_FUNCTION_ARGS);

/*
 * A product's name for messages and the audit, the same in every session:
 * schema-qualified, argument types as format_type_be writes them.
 */
static char *
product_name(Oid fn)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Form_pg_proc pf;
	StringInfoData buf;

	if (!HeapTupleIsValid(tup))
		return psprintf("%u", fn);
	pf = (Form_pg_proc) GETSTRUCT(tup);
	initStringInfo(&buf);
	appendStringInfo(&buf, "%s(",
					 quote_qualified_identifier(get_namespace_name(pf->pronamespace),
												NameStr(pf->proname)));
	for (int i = 0; i < pf->pronargs; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? "," : "", format_type_be(pf->proargtypes.values[i]));
	appendStringInfoChar(&buf, ')');
	ReleaseSysCache(tup);
	return buf.data;
}

/* ---- cache ---- */

static void
product_relcache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == products_relid || relid == licences_relid ||
		!OidIsValid(products_relid))
		cache_valid = false;
}

static void
product_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		licdata_product_depth = 0;
		explain_analyze = 0;
		pending = NULL;
	}
	/* Free the caches replaced during the transaction (nobody holds them now). */
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
	{
		while (retired_cxts != NIL)
		{
			MemoryContext cxt = linitial(retired_cxts);

			retired_cxts = list_delete_first(retired_cxts);
			MemoryContextDelete(cxt);
		}
	}
}

void
licdata_product_init(void)
{
	CacheRegisterRelcacheCallback(product_relcache_callback, (Datum) 0);
	RegisterXactCallback(product_xact_callback, NULL);
}

static List *
text_array_list(Datum d)
{
	ArrayType  *arr = DatumGetArrayTypeP(d);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	List	   *result = NIL;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (!nulls[i])
			result = lappend(result, TextDatumGetCString(elems[i]));
	}
	return result;
}

/*
 * Load the published products and their licences.  Runs as the bootstrap
 * superuser in a restricted security context; the SQL names every object
 * with its schema and uses no operator, so the caller's search_path cannot
 * redirect it.
 */
static void
product_load(void)
{
	const LicdataCatalog *c = licdata_catalog();
	Oid			save_userid;
	int			save_sec;
	HASHCTL		ctl;

	/*
	 * Never free the cache being replaced: product_call holds its Product
	 * and ProductLicence across the product's body, and the body can reach
	 * a reload (a first call site's call_state, or licensee code that calls
	 * another product with the depth reset) after an invalidation from
	 * another session; the old cache is retired and freed at transaction
	 * end, as policy.c does.
	 */
	if (product_cxt != NULL)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		retired_cxts = lappend(retired_cxts, product_cxt);
		MemoryContextSwitchTo(oldcxt);
	}
	product_hash = NULL;
	product_cxt = AllocSetContextCreate(CacheMemoryContext, "licdata product cache",
										ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(Product);
	ctl.hcxt = product_cxt;
	product_hash = hash_create("licdata products", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	if (c == NULL)
		return;
	licences_relid = c->licences;
	products_relid = get_relname_relid("products", c->schema);
	cache_valid = true;			/* an invalidation during the load clears it */
	if (!OidIsValid(products_relid))
		return;					/* 1.0 catalog: no products */

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		TupleDesc	td;
		MemoryContext oldcxt;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "licdata: SPI_connect failed");
		if (SPI_execute("SELECT p.product::pg_catalog.oid, p.price_per_call::pg_catalog.text, "
						"p.price_per_row::pg_catalog.text, p.hide_errors, p.search_path "
						"FROM licdata.products p WHERE p.unpublished_at IS NULL", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "licdata: could not read licdata.products");
		td = SPI_tuptable->tupdesc;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			bool		isnull;
			Oid			fn = DatumGetObjectId(SPI_getbinval(t, td, 1, &isnull));
			Product    *p;

			oldcxt = MemoryContextSwitchTo(product_cxt);
			p = hash_search(product_hash, &fn, HASH_ENTER, NULL);
			memset(&p->ds, 0, sizeof(p->ds));
			p->ds.relid = InvalidOid;
			p->ds.name = product_name(fn);
			p->price_per_call = SPI_getvalue(t, td, 2);
			p->price_per_row = SPI_getvalue(t, td, 3);
			p->hide_errors = DatumGetBool(SPI_getbinval(t, td, 4, &isnull));
			p->search_path = SPI_getvalue(t, td, 5);
			MemoryContextSwitchTo(oldcxt);
		}

		if (SPI_execute("SELECT l.id, l.licensee::pg_catalog.oid, l.product::pg_catalog.oid, l.purposes, "
						"l.valid_from, l.valid_until, l.max_calls_per_day, l.require_consent_ref, "
						"l.price_per_query::pg_catalog.text, l.price_per_row::pg_catalog.text, l.status "
						"FROM licdata.licences l WHERE l.product IS NOT NULL ORDER BY l.id", false, 0) != SPI_OK_SELECT)
			elog(ERROR, "licdata: could not read the product licences");
		td = SPI_tuptable->tupdesc;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			bool		isnull;
			Oid			fn = DatumGetObjectId(SPI_getbinval(t, td, 3, &isnull));
			Product    *p = hash_search(product_hash, &fn, HASH_FIND, NULL);
			ProductLicence *pl;
			Datum		d;
			char	   *s;

			if (p == NULL)
				continue;		/* product unpublished: nothing to serve */
			oldcxt = MemoryContextSwitchTo(product_cxt);
			pl = palloc0(sizeof(ProductLicence));
			pl->lic.id = DatumGetInt64(SPI_getbinval(t, td, 1, &isnull));
			pl->lic.licensee = DatumGetObjectId(SPI_getbinval(t, td, 2, &isnull));
			pl->lic.purposes = text_array_list(SPI_getbinval(t, td, 4, &isnull));
			pl->lic.valid_from = DatumGetTimestampTz(SPI_getbinval(t, td, 5, &isnull));
			d = SPI_getbinval(t, td, 6, &isnull);
			if (isnull)
				TIMESTAMP_NOEND(pl->lic.valid_until);
			else
				pl->lic.valid_until = DatumGetTimestampTz(d);
			d = SPI_getbinval(t, td, 7, &isnull);
			pl->max_calls_per_day = isnull ? 0 : DatumGetInt64(d);
			pl->lic.require_consent_ref = DatumGetBool(SPI_getbinval(t, td, 8, &isnull));
			pl->lic.price_per_query = SPI_getvalue(t, td, 9);
			pl->lic.price_per_row = SPI_getvalue(t, td, 10);
			s = SPI_getvalue(t, td, 11);
			pl->lic.status = s[0];
			p->ds.licences = lappend(p->ds.licences, pl);
			MemoryContextSwitchTo(oldcxt);
		}
		SPI_finish();
	}
	PG_CATCH();
	{
		cache_valid = false;
		SetUserIdAndSecContext(save_userid, save_sec);
		PG_RE_THROW();
	}
	PG_END_TRY();
	SetUserIdAndSecContext(save_userid, save_sec);
}

static Product *
product_lookup(Oid fn)
{
	if (!cache_valid || product_hash == NULL)
		product_load();
	if (product_hash == NULL)
		return NULL;
	return hash_search(product_hash, &fn, HASH_FIND, NULL);
}

/* ---- checks ---- */

static Oid
plpgsql_oid(void)
{
	static Oid	oid = InvalidOid;

	if (!OidIsValid(oid))
		oid = get_language_oid("plpgsql", true);
	return oid;
}

/*
 * Is the function still what publish_product accepted?  Returns NULL when
 * it is, else why not (a sentence for the error detail).  Sets *owner.
 */
static const char *
product_unsafe(Product *p, Oid *owner)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(p->fn));
	Form_pg_proc pf;
	const char *why = NULL;
	bool		isnull;
	Datum		config;
	bool		pinned = false;

	if (!HeapTupleIsValid(tup))
		return "The function no longer exists.";
	pf = (Form_pg_proc) GETSTRUCT(tup);
	*owner = pf->proowner;
	config = SysCacheGetAttr(PROCOID, tup, Anum_pg_proc_proconfig, &isnull);
	if (!isnull && p->search_path)
	{
		List	   *settings = text_array_list(config);
		ListCell   *lc;

		foreach(lc, settings)
		{
			if (strcmp((char *) lfirst(lc), p->search_path) == 0)
				pinned = true;
		}
	}
	if (!licdata_role_is_operator(pf->proowner))
		why = "Its owner is not an operator.";
	else if (pf->prolang != SQLlanguageId && pf->prolang != plpgsql_oid())
		why = "It is no longer written in SQL or PL/pgSQL.";
	else if (pf->provolatile != PROVOLATILE_VOLATILE || pf->proparallel != PROPARALLEL_UNSAFE)
		why = "It is no longer VOLATILE and PARALLEL UNSAFE.";
	else if (!pinned)
		why = "Its search_path is no longer the one pinned when it was published.";
	ReleaseSysCache(tup);
	return why;
}

/* The call's arguments as SQL literals, for the audit (at most about 4 kB). */
#define ARGS_TEXT_MAX 4000

static const char *
call_args_text(void *arg)
{
	CallState  *st = (CallState *) arg;
	FunctionCallInfo fcinfo = st->fcinfo;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s(", product_name(st->fn));
	for (int i = 0; i < fcinfo->nargs; i++)
	{
		Oid			type = get_fn_expr_argtype(fcinfo->flinfo, i);

		if (buf.len > ARGS_TEXT_MAX)
			break;

		if (i > 0)
			appendStringInfoString(&buf, ", ");
		if (fcinfo->args[i].isnull)
			appendStringInfoString(&buf, "NULL");
		else if (!OidIsValid(type))
			appendStringInfoString(&buf, "?");
		else
		{
			Oid			out;
			bool		varlena;

			getTypeOutputInfo(type, &out, &varlena);
			appendStringInfoString(&buf,
								   quote_literal_cstr(OidOutputFunctionCall(out, fcinfo->args[i].value)));
		}
	}
	if (buf.len > ARGS_TEXT_MAX)
	{
		/* a batch of 20,000 codes: its start, and how long it was */
		int			len = buf.len;

		buf.len = pg_mbcliplen(buf.data, buf.len, ARGS_TEXT_MAX);
		buf.data[buf.len] = '\0';
		appendStringInfo(&buf, "... (%d bytes of arguments)", len);
	}
	else
		appendStringInfoChar(&buf, ')');
	return buf.data;
}

/* Errors that pass out of a product unchanged: they carry no data value. */
static bool
passes_through(int sqlerrcode)
{
	const char *s = unpack_sql_state(sqlerrcode);

	return strncmp(s, "LD", 2) == 0 ||	/* licdata's own (metering) */
		strncmp(s, "57", 2) == 0 ||		/* cancel, shutdown */
		strncmp(s, "53", 2) == 0 ||		/* out of memory, disk, connections */
		strncmp(s, "40", 2) == 0;		/* serialization failure, deadlock */
}

static void
refuse(Product *p, LicdataDecision *d, int64 licence_id)
{
	licdata_meter_product_denial(p->fn, d, licence_id);
	licdata_raise_decision(d);
}

/* ---- the call ---- */

/*
 * A licensee's call of a published product (see the file header).  Runs
 * in place of the function's own entry point, right after fmgr's
 * FHET_START.
 */
static Datum
product_call(PG_FUNCTION_ARGS)
{
	CallState  *st = pending;
	const LicdataLicensee *who;
	Product    *p;
	LicdataDecision d;
	ProductLicence *pl;
	ReturnSetInfo *rsi = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			save_userid;
	int			save_sec;
	int			save_depth = licdata_product_depth;
	int			gucnest;
	uint64		stmt_id;
	int			use;
	int64		rows;
	Datum		result;
	MemoryContext callcxt = CurrentMemoryContext;

	pending = NULL;
	if (st == NULL)
		elog(ERROR, "licdata: data product called without its fmgr state");
	if (licdata_product_depth > 0)
		return st->real(fcinfo);	/* a product inside a product: the author's call */

	p = product_lookup(st->fn);
	if (p == NULL)
	{
		memset(&d, 0, sizeof(d));
		d.sqlerrcode = ERRCODE_LD_NO_LICENCE;
		d.message = psprintf("data product %s is not published", product_name(st->fn));
		d.detail = pstrdup("The operator unpublished it after this statement began.");
		d.hint = pstrdup("See licdata.my_licences for the products you may call.");
		licdata_meter_product_denial(st->fn, &d, 0);
		licdata_raise_decision(&d);
	}
	who = licdata_acting_licensee();
	if (who == NULL)
		return st->real(fcinfo);	/* no longer a licensee (the catalog changed
									 * since the call site was set up): the
									 * function runs as any function, with the
									 * caller's rights */
	/* a standby cannot hand the call's record to the primary (decide.c) */
	licdata_refuse_on_standby();
	licdata_decide(&p->ds, who, licdata_purpose_for(who), licdata_consent_ref_for(who),
				   GetCurrentTimestamp(), &d);
	if (d.sqlerrcode != 0)
		refuse(p, &d, d.licence ? d.licence->id : 0);
	pl = (ProductLicence *) d.licence;
	if (explain_analyze > 0)
	{
		memset(&d, 0, sizeof(d));
		d.sqlerrcode = ERRCODE_LD_EXPLAIN_REFUSED;
		d.message = psprintf("EXPLAIN ANALYZE cannot run data product %s", p->ds.name);
		d.detail = pstrdup("Its timings and buffer counts would describe the data the product reads.");
		d.hint = pstrdup("Run the statement without EXPLAIN ANALYZE.");
		refuse(p, &d, pl->lic.id);
	}
	if (!st->checked)
	{
		const char *why = product_unsafe(p, &st->owner);

		if (why)
		{
			memset(&d, 0, sizeof(d));
			d.sqlerrcode = ERRCODE_LD_NOT_READY;
			d.message = psprintf("data product %s cannot be served", p->ds.name);
			d.detail = pstrdup(why);
			d.hint = pstrdup("Ask the operator to publish it again with licdata.publish_product.");
			refuse(p, &d, pl->lic.id);
		}
		st->checked = true;
	}

	st->fcinfo = fcinfo;
	use = licdata_meter_product_call(p->fn, &pl->lic,
									 pl->lic.price_per_query ? pl->lic.price_per_query : p->price_per_call,
									 pl->lic.price_per_row ? pl->lic.price_per_row : p->price_per_row,
									 pl->max_calls_per_day, call_args_text, st, &stmt_id);

	/* A set result comes back in one piece: one call, its rows counted. */
	if (fcinfo->flinfo->fn_retset && rsi && IsA(rsi, ReturnSetInfo))
		rsi->allowedModes |= SFRM_Materialize_Preferred;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	gucnest = NewGUCNestLevel();
	/*
	 * No parallel plan inside the body: a worker would not know it runs for
	 * a product (and would refuse the read as the licensee's).
	 */
	(void) set_config_option("max_parallel_workers_per_gather", "0", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (p->hide_errors)
		(void) set_config_option("client_min_messages", "error", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	SetUserIdAndSecContext(st->owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	licdata_product_depth = 1;
	/*
	 * The licensee's role: the outer user (SET ROLE's), which fmgr's switch
	 * for a SECURITY DEFINER product does not change.
	 */
	product_caller = GetOuterUserId();
	PG_TRY();
	{
		result = st->real(fcinfo);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		licdata_product_depth = save_depth;
		SetUserIdAndSecContext(save_userid, save_sec);
		MemoryContextSwitchTo(callcxt);
		edata = CopyErrorData();
		if (!p->hide_errors || passes_through(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("data product %s failed", p->ds.name),
				 errdetail("The product's own error is not shown, as it could contain data the product reads."),
				 errdetail_log("The product raised SQLSTATE %s: %s", unpack_sql_state(edata->sqlerrcode),
							   edata->message ? edata->message : ""),
				 errhint("Check the arguments; the operator can read the reason in the server log.")));
	}
	PG_END_TRY();
	licdata_product_depth = save_depth;
	SetUserIdAndSecContext(save_userid, save_sec);
	AtEOXact_GUC(true, gucnest);

	if (fcinfo->flinfo->fn_retset && rsi && IsA(rsi, ReturnSetInfo))
	{
		if (rsi->returnMode == SFRM_Materialize)
			rows = rsi->setResult ? (int64) tuplestore_tuple_count(rsi->setResult) : 0;
		else
			ereport(ERROR,
					(errcode(ERRCODE_LD_METERING_FAILED),
					 errmsg("could not meter the rows of data product %s, so the call is refused",
							p->ds.name),
					 errdetail("The product returned its rows one by one instead of as a set."),
					 errhint("Call the product in the FROM clause.")));
	}
	else
		rows = 1;
	licdata_meter_product_rows(stmt_id, use, rows);
	return result;
}

/* ---- fmgr hook (dispatched from hooks.c) ---- */

static CallState *
call_state(FmgrInfo *flinfo, Datum *arg)
{
	CallState  *st;
	HeapTuple	tup;
	Oid			owner = InvalidOid;

	if (*arg != (Datum) 0)
		return (CallState *) DatumGetPointer(*arg);
	st = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(CallState));
	st->fn = flinfo->fn_oid;
	st->kind = CALL_PLAIN;
	*arg = PointerGetDatum(st);
	/*
	 * Products are PARALLEL UNSAFE, so a parallel worker never calls one
	 * (and no product depth is ever raised in a worker).
	 */
	if (IsParallelWorker() || !IsTransactionState() || licdata_policy_loading ||
		licdata_catalog() == NULL || licdata_acting_licensee() == NULL)
		return st;
	if (product_lookup(st->fn) != NULL)
	{
		st->kind = CALL_PRODUCT;
		return st;
	}
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(st->fn));
	if (HeapTupleIsValid(tup))
	{
		owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
		st->secdef = ((Form_pg_proc) GETSTRUCT(tup))->prosecdef;
		ReleaseSysCache(tup);
	}
	if (!OidIsValid(owner) || !licdata_role_is_operator(owner))
		st->kind = CALL_FOREIGN;
	return st;
}

void
licdata_product_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg)
{
	CallState  *st;

	if (event == FHET_START)
	{
		st = call_state(flinfo, arg);
		if (st->kind == CALL_PRODUCT)
		{
			if (flinfo->fn_addr != product_call)
			{
				st->real = flinfo->fn_addr;
				flinfo->fn_addr = product_call;
			}
			pending = st;
		}
		else if (st->kind == CALL_FOREIGN)
		{
			/*
			 * Licensee code never runs with raw access, nor as the
			 * product's owner: reached from inside a product, it runs with
			 * the depth reset and as the role that called the product
			 * (unless it is SECURITY DEFINER: fmgr has switched to its
			 * owner then).
			 */
			st->saved_depth = licdata_product_depth;
			st->switched = false;
			if (licdata_product_depth > 0 && !st->secdef && OidIsValid(product_caller))
			{
				GetUserIdAndSecContext(&st->saved_user, &st->saved_sec);
				SetUserIdAndSecContext(product_caller, st->saved_sec | SECURITY_LOCAL_USERID_CHANGE);
				st->switched = true;
			}
			licdata_product_depth = 0;
		}
		return;
	}
	/* FHET_END, FHET_ABORT */
	st = (CallState *) DatumGetPointer(*arg);
	if (st && st->kind == CALL_FOREIGN)
	{
		licdata_product_depth = st->saved_depth;
		if (st->switched)
			SetUserIdAndSecContext(st->saved_user, st->saved_sec);
		st->switched = false;
	}
}

/* ---- EXPLAIN ANALYZE (dispatched from hooks.c's utility hook) ---- */

bool
licdata_product_utility_begin(Node *stmt)
{
	ListCell   *lc;

	if (!IsA(stmt, ExplainStmt) || licdata_product_depth > 0 || !IsTransactionState() ||
		licdata_catalog() == NULL || licdata_acting_licensee() == NULL)
		return false;
	foreach(lc, ((ExplainStmt *) stmt)->options)
	{
		DefElem    *opt = lfirst(lc);

		if (strcmp(opt->defname, "analyze") == 0 && defGetBoolean(opt))
		{
			explain_analyze++;
			return true;
		}
	}
	return false;
}

void
licdata_product_utility_end(bool began)
{
	if (began && explain_analyze > 0)
		explain_analyze--;
}
