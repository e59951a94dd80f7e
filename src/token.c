/*-------------------------------------------------------------------------
 *
 * token.c
 *	  licdata.token(dataset, column, value): the caller's masked form of a
 *	  value it already holds, so that a licensee can find, say, its own
 *	  applicant in a pseudonymised column without ever seeing other values:
 *
 *		WHERE id_number = licdata.token('pd.people', 'id_number', '1101...')
 *
 *	It applies exactly the mask the licensee's query would see for that
 *	column under its licence and declared purpose, is decided like a query
 *	(purpose, validity, consent, column scope: LD001-LD007, denials
 *	audited), and is metered with the statement that calls it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "denial.h"
#include "errcodes.h"
#include "licdata.h"
#include "meter.h"

typedef struct VarToConst
{
	AttrNumber	attnum;
	Const	   *value;
} VarToConst;

static Node *
var_to_const(Node *node, VarToConst *ctx)
{
	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varattno == ctx->attnum)
		return (Node *) copyObject(ctx->value);
	return expression_tree_mutator(node, var_to_const, (void *) ctx);
}

/*
 * The last lookup of one call site (kept in fn_mcxt, for one query): a
 * token() call evaluated again with the same arguments in the same
 * statement -- WHERE id_number = licdata.token('pd.people', 'id_number',
 * '1101...') is evaluated for every row scanned -- is one lookup, served
 * from here, not metered again.  A different value, purpose, consent
 * reference, role or policy generation is a new lookup.
 */
typedef struct TokenCache
{
	bool		valid;
	Oid			relid;
	NameData	col;
	Oid			userid;
	Oid			session_userid;
	uint64		generation;
	char	   *purpose;
	char	   *consent_ref;
	text	   *value;
	bool		isnull;
	Datum		result;
} TokenCache;

static Datum token_compute(FunctionCallInfo fcinfo);

static bool
same_string(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

PG_FUNCTION_INFO_V1(licdata_token);
Datum
licdata_token(PG_FUNCTION_ARGS)
{
	TokenCache *tc = (TokenCache *) fcinfo->flinfo->fn_extra;
	Datum		result;
	MemoryContext old;
	text	   *value;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		return token_compute(fcinfo);
	value = PG_GETARG_TEXT_PP(2);
	if (tc != NULL && tc->valid &&
		tc->relid == PG_GETARG_OID(0) &&
		strcmp(NameStr(tc->col), NameStr(*PG_GETARG_NAME(1))) == 0 &&
		tc->userid == GetUserId() && tc->session_userid == GetSessionUserId() &&
		tc->generation == licdata_policy_generation &&
		same_string(tc->purpose, licdata_purpose) &&
		same_string(tc->consent_ref, licdata_consent_ref) &&
		VARSIZE_ANY_EXHDR(tc->value) == VARSIZE_ANY_EXHDR(value) &&
		memcmp(VARDATA_ANY(tc->value), VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value)) == 0)
	{
		if (tc->isnull)
			PG_RETURN_NULL();
		return tc->result;
	}

	result = token_compute(fcinfo);

	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (tc == NULL)
		tc = fcinfo->flinfo->fn_extra = palloc0(sizeof(TokenCache));
	else
	{
		tc->valid = false;
		if (tc->purpose)
			pfree(tc->purpose);
		if (tc->consent_ref)
			pfree(tc->consent_ref);
		pfree(tc->value);
		if (!tc->isnull)
			pfree(DatumGetPointer(tc->result));
	}
	tc->relid = PG_GETARG_OID(0);
	namestrcpy(&tc->col, NameStr(*PG_GETARG_NAME(1)));
	tc->userid = GetUserId();
	tc->session_userid = GetSessionUserId();
	tc->generation = licdata_policy_generation;
	tc->purpose = licdata_purpose ? pstrdup(licdata_purpose) : NULL;
	tc->consent_ref = licdata_consent_ref ? pstrdup(licdata_consent_ref) : NULL;
	tc->value = DatumGetTextPCopy(PointerGetDatum(value));
	tc->isnull = fcinfo->isnull;
	tc->result = fcinfo->isnull ? (Datum) 0 : PointerGetDatum(DatumGetTextPCopy(result));
	tc->valid = true;
	MemoryContextSwitchTo(old);
	return result;
}

static Datum
token_compute(FunctionCallInfo fcinfo)
{
	Oid			relid;
	char	   *col;
	const LicdataLicensee *who;
	LicdataDataset *ds;
	AttrNumber	attnum;
	LicdataDecision d;
	const LicdataMask *m;
	Oid			typid,
				typinput,
				typioparam,
				typoutput;
	int32		typmod;
	Oid			collid;
	Const	   *c;
	Node	   *expr;
	VarToConst	ctx;
	ExprState  *es;
	ExprContext *econtext;
	Datum		result;
	bool		isnull;
	bool		isvarlena;
	ListCell   *lc;
	bool		covered;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("dataset and column_name must not be null"),
				 errhint("Call licdata.token('schema.table', 'column', 'value').")));
	if (PG_ARGISNULL(2))
		PG_RETURN_NULL();
	relid = PG_GETARG_OID(0);
	col = NameStr(*PG_GETARG_NAME(1));

	if (licdata_catalog() == NULL)
		ereport(ERROR, (errcode(ERRCODE_LD_NOT_READY),
						errmsg("licdata is not set up in this database")));
	who = licdata_acting_licensee();
	if (who == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("licdata.token can only be called by a licensee"),
				 errdetail("Operators read raw values and need no tokens."),
				 errhint("Use licdata.mask_pseudonym(value, length, licensee) to compute a licensee's token.")));
	ds = licdata_dataset_for_rel(relid);
	if (ds == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("relation with OID %u is not a published dataset", relid),
				 errhint("See licdata.my_licences for the datasets you are licensed for.")));
	attnum = get_attnum(relid, col);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of dataset %s does not exist", col, ds->name),
				 errhint("Name a column of the dataset.")));

	licdata_refuse_on_standby();
	licdata_decide(ds, who, licdata_purpose_for(who), licdata_consent_ref_for(who), GetCurrentTimestamp(), &d);
	if (d.sqlerrcode != 0)
		licdata_refuse_decision(ds, &d, 0);
	covered = (d.licence->columns == NIL);
	foreach(lc, d.licence->columns)
	{
		if (strcmp(lfirst(lc), col) == 0)
			covered = true;
	}
	if (!covered)
	{
		LicdataDecision cd;

		memset(&cd, 0, sizeof(cd));
		cd.sqlerrcode = ERRCODE_LD_COLUMN_NOT_LICENSED;
		cd.message = psprintf("column \"%s\" of dataset %s is outside licence %lld",
							  col, ds->name, (long long) d.licence->id);
		cd.detail = pstrdup("The licence covers only some of the dataset's columns.");
		cd.hint = pstrdup("Ask for tokens of licensed columns only (see licdata.my_licences).");
		licdata_refuse_decision(ds, &cd, d.licence->id);
	}
	licdata_meter_lookup(ds, d.licence);

	m = licdata_mask_for(ds, d.licence, licdata_purpose_for(who), col);
	if (m == NULL)
		PG_RETURN_DATUM(PG_GETARG_DATUM(2));	/* unmasked column: the value itself */

	/*
	 * Noise is keyed and deterministic: the noisy form of values of the
	 * licensee's choosing would let it tabulate a range and invert the
	 * noise of the values it reads.  A noisy value is no lookup key anyway.
	 */
	if (strcmp(m->method, "noise") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("licdata.token does not serve column \"%s\" of dataset %s, which is masked with noise",
						col, ds->name),
				 errdetail("Tokens of a noisy column would let the noise be inverted."),
				 errhint("Ask for tokens of pseudonym or fpe columns.")));

	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &collid);
	getTypeInputInfo(typid, &typinput, &typioparam);
	c = makeConst(typid, typmod, collid, get_typlen(typid),
				  OidInputFunctionCall(typinput, text_to_cstring(PG_GETARG_TEXT_PP(2)),
									   typioparam, typmod),
				  false, get_typbyval(typid));
	expr = licdata_build_mask_expr(relid, attnum, m->method, m->params, false);
	ctx.attnum = attnum;
	ctx.value = c;
	expr = var_to_const(expr, &ctx);

	econtext = CreateStandaloneExprContext();
	es = ExecInitExpr((Expr *) expr, NULL);
	result = ExecEvalExprSwitchContext(es, econtext, &isnull);
	if (isnull)
	{
		FreeExprContext(econtext, true);
		PG_RETURN_NULL();
	}
	getTypeOutputInfo(typid, &typoutput, &isvarlena);
	{
		char	   *out = OidOutputFunctionCall(typoutput, result);

		FreeExprContext(econtext, true);
		PG_RETURN_TEXT_P(cstring_to_text(out));
	}
}

/*
 * licdata._lookups_used(licence_id): today's licdata.token() calls of a
 * licence, for my_licences.  A licensee sees its own licences only.
 */
PG_FUNCTION_INFO_V1(licdata_lookups_used);
Datum
licdata_lookups_used(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);

	if (!licdata_role_is_operator(GetUserId()) && !licdata_role_is_auditor(GetUserId()))
	{
		LicdataLicence *lic = licdata_catalog() ? licdata_licence_by_id(id) : NULL;
		const LicdataLicensee *who = licdata_catalog() ? licdata_acting_licensee() : NULL;

		if (lic == NULL || who == NULL || lic->licensee != who->roleid)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to read the lookups of licence %lld", (long long) id),
					 errhint("See licdata.my_licences for your own licences.")));
	}
	PG_RETURN_INT64(licdata_meter_lookups_today(id));
}
