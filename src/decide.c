/*-------------------------------------------------------------------------
 *
 * decide.c
 *	  Licence decisions.  Pure: given a dataset, a licensee, the declared
 *	  purpose and consent reference and the time, return which licence
 *	  serves the query or why none does.  Only licdata_raise_decision (called
 *	  from the hook layer) turns a refusal into an error.
 *
 * Order of the checks, and the SQLSTATE of each refusal:
 *	0. library and SQL objects of different versions	LD011 (run ALTER EXTENSION licdata UPDATE)
 *	1. no purpose declared								LD001
 *	2. no licence at all for this dataset				LD005
 *	3. no licence for the purpose						LD002 (lists the licensed ones)
 *	4. licences for the purpose, none active			LD005 (suspended / revoked)
 *	5. active, none valid now							LD004 (not yet valid / expired)
 *	6. consent reference required and not set			LD007
 * The purpose and consent reference passed in are those in force for the
 * licensee (licdata_purpose_for): under purpose scope 'transaction' a value
 * set for the session arrives as "", and the hints say to use SET LOCAL.
 * When several licences fit, the most recently granted one serves.
 *
 * Messages name the dataset, the licence and the purpose, never data.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "errcodes.h"
#include "licdata.h"
#include "replica.h"

/*
 * A data product (product.c) is decided like a dataset: its licences hang
 * off a LicdataDataset whose relid is InvalidOid and whose name is the
 * product's signature.  Messages name which of the two it is.
 */
#define KIND(ds) (OidIsValid((ds)->relid) ? "dataset" : "product")

static bool
has_purpose(const LicdataLicence *lic, const char *purpose)
{
	ListCell   *lc;

	foreach(lc, lic->purposes)
	{
		if (strcmp((const char *) lfirst(lc), purpose) == 0)
			return true;
	}
	return false;
}

static void
refuse(LicdataDecision *out, int code, char *msg, char *detail, char *hint)
{
	out->sqlerrcode = code;
	out->message = msg;
	out->detail = detail;
	out->hint = hint;
	out->licence = NULL;
}

static char *
licensed_purposes(List *mine)
{
	StringInfoData buf;
	List	   *seen = NIL;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, mine)
	{
		LicdataLicence *lic = lfirst(lc);
		ListCell   *pc;

		if (lic->status == 'r')
			continue;
		foreach(pc, lic->purposes)
		{
			char	   *p = lfirst(pc);
			ListCell   *sc;
			bool		dup = false;

			foreach(sc, seen)
			{
				if (strcmp(lfirst(sc), p) == 0)
					dup = true;
			}
			if (dup)
				continue;
			seen = lappend(seen, p);
			appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", p);
		}
	}
	return buf.len ? buf.data : pstrdup("none");
}

/*
 * The licences chosen since the policy cache last changed, per (dataset,
 * licensee, purpose), with the span of time over which the choice holds:
 * between the validity boundaries (valid_from, valid_until) of the
 * purpose's active licences nearest to the time it was made, the same
 * licence is chosen at any instant.  A licensee's every statement asks the
 * same question; outside the span, under another policy generation (any
 * load or invalidation of the policy cache: a grant, a status, a validity
 * changed) or while the cache loads, it is decided again.  Only choices
 * are kept, never refusals; the version and consent checks, which do not
 * depend on the licences, are made at every call.  As for the
 * fingerprints below, the dataset and licence are the policy cache's own
 * structures, which stay unchanged while the generation stays; so only
 * datasets are kept, never data products (product.c keeps their licences
 * in a cache of its own).
 */
#define DECIDE_MEMO_SIZE 8

typedef struct DecisionMemo
{
	const LicdataDataset *ds;
	Oid			roleid;
	char		purpose[NAMEDATALEN];
	TimestampTz from;			/* the choice holds for from <= now < until */
	TimestampTz until;
	LicdataLicence *chosen;
} DecisionMemo;

static DecisionMemo decide_memo[DECIDE_MEMO_SIZE];
static int	decide_memo_used = 0;
static int	decide_memo_next = 0;
static uint64 decide_memo_generation = 0;

static LicdataLicence *
decide_memo_find(const LicdataDataset *ds, Oid roleid, const char *purpose, TimestampTz now)
{
	if (decide_memo_generation != licdata_policy_generation || licdata_policy_loading)
	{
		decide_memo_used = 0;
		decide_memo_next = 0;
		decide_memo_generation = licdata_policy_generation;
		return NULL;
	}
	for (int i = 0; i < decide_memo_used; i++)
	{
		DecisionMemo *m = &decide_memo[i];

		if (m->ds == ds && m->roleid == roleid && m->from <= now && now < m->until &&
			strcmp(m->purpose, purpose) == 0)
			return m->chosen;
	}
	return NULL;
}

static void
decide_memo_add(const LicdataDataset *ds, Oid roleid, const char *purpose,
				TimestampTz from, TimestampTz until, LicdataLicence *chosen,
				uint64 generation)
{
	DecisionMemo *m;

	/* a purpose too long for a NAME is not remembered (never a prefix match) */
	if (strlen(purpose) >= NAMEDATALEN || licdata_policy_loading ||
		generation != licdata_policy_generation ||
		decide_memo_generation != generation)
		return;
	m = &decide_memo[decide_memo_next];
	m->ds = ds;
	m->roleid = roleid;
	strlcpy(m->purpose, purpose, NAMEDATALEN);
	m->from = from;
	m->until = until;
	m->chosen = chosen;
	decide_memo_next = (decide_memo_next + 1) % DECIDE_MEMO_SIZE;
	if (decide_memo_used < DECIDE_MEMO_SIZE)
		decide_memo_used++;
}

/* Refuse for want of a consent reference when the chosen licence needs one. */
static bool
consent_missing(LicdataDataset *ds, const LicdataLicensee *who, LicdataLicence *chosen,
				const char *consent_ref, LicdataDecision *out)
{
	if (chosen->require_consent_ref &&
		(consent_ref == NULL || strspn(consent_ref, " \t\r\n") == strlen(consent_ref)))
	{
		refuse(out, ERRCODE_LD_CONSENT_REQUIRED,
			   psprintf("licence %lld for %s %s requires a consent reference",
						(long long) chosen->id, KIND(ds), ds->name),
			   pstrdup("Each query under this licence must name the data subject's consent or business case."),
			   licdata_purpose_session_only(who)
			   ? pstrdup("This licensee's purpose scope is \"transaction\": run SET LOCAL licdata.consent_ref = '<reference>' in the transaction of the query; a reference set for the session is ignored.")
			   : pstrdup("Run SET licdata.consent_ref = '<reference>' (for example the loan application number) first."));
		return true;
	}
	return false;
}

void
licdata_decide(LicdataDataset *ds, const LicdataLicensee *who, const char *purpose,
			   const char *consent_ref, TimestampTz now, LicdataDecision *out)
{
	List	   *mine = NIL;
	List	   *for_purpose = NIL;
	LicdataLicence *chosen = NULL;
	LicdataLicence *active_any = NULL;
	LicdataLicence *inactive_any = NULL;
	ListCell   *lc;
	uint64		generation = licdata_policy_generation;
	TimestampTz from = DT_NOBEGIN;
	TimestampTz until = DT_NOEND;
	bool		memo_ok = OidIsValid(ds->relid);

	memset(out, 0, sizeof(*out));

	{
		const LicdataCatalog *c = licdata_catalog_cached();

		if (c != NULL && !c->version_ok)
		{
			char	   *msg;
			char	   *detail;
			char	   *hint;

			licdata_version_mismatch_texts(c, &msg, &detail, &hint);
			refuse(out, ERRCODE_LD_NOT_READY, msg, detail, hint);
			return;
		}
	}

	/*
	 * A choice made before, still valid now.  Datasets only: a data
	 * product's licences hang off product.c's own cache, which is reloaded
	 * without the policy generation moving.
	 */
	if (memo_ok && purpose != NULL && purpose[0] != '\0')
	{
		chosen = decide_memo_find(ds, who->roleid, purpose, now);
		if (chosen != NULL)
		{
			if (!consent_missing(ds, who, chosen, consent_ref, out))
				out->licence = chosen;
			return;
		}
	}

	foreach(lc, ds->licences)
	{
		LicdataLicence *lic = lfirst(lc);

		if (lic->licensee == who->roleid)
			mine = lappend(mine, lic);
	}

	if ((purpose == NULL || purpose[0] == '\0') && licdata_purpose_session_only(who))
	{
		refuse(out, ERRCODE_LD_NO_PURPOSE,
			   psprintf("no purpose declared for dataset %s in this transaction", ds->name),
			   pstrdup("This licensee's purpose scope is \"transaction\": only a purpose set with SET LOCAL in the current transaction counts; a purpose set for the session is ignored."),
			   pstrdup("Run BEGIN; SET LOCAL licdata.purpose = '<purpose>'; before the query, and COMMIT after it."));
		return;
	}
	if (purpose == NULL || purpose[0] == '\0')
	{
		refuse(out, ERRCODE_LD_NO_PURPOSE,
			   psprintf("no purpose declared for %s %s", KIND(ds), ds->name),
			   pstrdup("Queries on licensed datasets are served only for a declared purpose."),
			   mine ? psprintf("Run SET licdata.purpose = '<purpose>' first; licensed purposes: %s.",
							   licensed_purposes(mine))
			   : pstrdup("Run SET licdata.purpose = '<purpose>' first, or put -c licdata.purpose=<purpose> in the connection options."));
		return;
	}

	if (mine == NIL)
	{
		refuse(out, ERRCODE_LD_NO_LICENCE,
			   psprintf("no licence for %s %s", KIND(ds), ds->name),
			   psprintf("Licensee \"%s\" holds no licence for this dataset.",
						GetUserNameFromId(who->roleid, false)),
			   pstrdup("Ask the operator for a licence, or query only datasets you are licensed for (see licdata.my_licences)."));
		return;
	}

	foreach(lc, mine)
	{
		LicdataLicence *lic = lfirst(lc);

		if (has_purpose(lic, purpose))
			for_purpose = lappend(for_purpose, lic);
	}
	if (for_purpose == NIL)
	{
		refuse(out, ERRCODE_LD_PURPOSE_NOT_LICENSED,
			   psprintf("purpose \"%s\" is not licensed for %s %s; licensed purposes: %s",
						purpose, KIND(ds), ds->name, licensed_purposes(mine)),
			   psprintf("The licences of \"%s\" for this dataset do not include the purpose \"%s\".",
						GetUserNameFromId(who->roleid, false), purpose),
			   pstrdup("Declare one of the licensed purposes with SET licdata.purpose, or ask the operator to extend the licence."));
		return;
	}

	foreach(lc, for_purpose)
	{
		LicdataLicence *lic = lfirst(lc);

		if (lic->status != 'a')
		{
			inactive_any = lic;
			continue;
		}
		active_any = lic;
		if (lic->valid_from <= now && now < lic->valid_until)
			chosen = lic;		/* ordered by id: the last one wins */
		/* the boundaries nearest to now: the choice holds between them */
		if (lic->valid_from <= now)
			from = Max(from, lic->valid_from);
		else
			until = Min(until, lic->valid_from);
		if (lic->valid_until <= now)
			from = Max(from, lic->valid_until);
		else
			until = Min(until, lic->valid_until);
	}
	if (active_any == NULL)
	{
		refuse(out, ERRCODE_LD_NO_LICENCE,
			   psprintf("licence %lld for %s %s is %s",
						(long long) inactive_any->id, KIND(ds), ds->name,
						inactive_any->status == 's' ? "suspended" : "revoked"),
			   inactive_any->status == 's'
			   ? pstrdup("The operator has suspended this licence.")
			   : pstrdup("The operator has revoked this licence."),
			   pstrdup("Contact the operator."));
		return;
	}
	if (chosen == NULL)
	{
		if (now < active_any->valid_from)
			refuse(out, ERRCODE_LD_LICENCE_NOT_VALID,
				   psprintf("licence %lld for %s %s is not yet valid",
							(long long) active_any->id, KIND(ds), ds->name),
				   psprintf("It is valid from %s.", timestamptz_to_str(active_any->valid_from)),
				   pstrdup("Query again once the licence is valid."));
		else
			refuse(out, ERRCODE_LD_LICENCE_NOT_VALID,
				   psprintf("licence %lld for %s %s has expired",
							(long long) active_any->id, KIND(ds), ds->name),
				   psprintf("It was valid until %s.", timestamptz_to_str(active_any->valid_until)),
				   pstrdup("Ask the operator to renew the licence."));
		return;
	}
	if (memo_ok)
		decide_memo_add(ds, who->roleid, purpose, from, until, chosen, generation);
	if (consent_missing(ds, who, chosen, consent_ref, out))
		return;
	out->sqlerrcode = 0;
	out->licence = chosen;
}

/* Fill d as a refusal (message already formatted, in palloc'd memory). */
void
licdata_decision_refusal(LicdataDecision *d, int sqlerrcode, char *message,
						 const char *detail, const char *hint)
{
	memset(d, 0, sizeof(*d));
	d->sqlerrcode = sqlerrcode;
	d->message = message;
	d->detail = detail ? pstrdup(detail) : NULL;
	d->hint = hint ? pstrdup(hint) : NULL;
}

/*
 * A hot standby serves a licensee statement that reaches a dataset (or
 * token(), or a data product) only while its records reach the primary:
 * refused at once (LD009, with the cause in the hint) when its worker has
 * not handed them over for longer than licdata.standby_grace, before any
 * quota wait.  Day quotas are refused on standbys separately (LD006,
 * meter.c): they are held on the primary only.
 */
void
licdata_refuse_on_standby(void)
{
	if (!RecoveryInProgress())
		return;
	/*
	 * A standby serves licensees only while its worker hands their records
	 * to the primary (replica.c): refused at once, LD009, when it has not
	 * for longer than licdata.standby_grace.
	 */
	licdata_replica_check_serving();
}

void
licdata_raise_decision(const LicdataDecision *d)
{
	ereport(ERROR,
			(errcode(d->sqlerrcode),
			 errmsg_internal("%s", d->message),
			 d->detail ? errdetail_internal("%s", d->detail) : 0,
			 d->hint ? errhint("%s", d->hint) : 0));
	pg_unreachable();
}

/*
 * A 64-bit fingerprint of the terms a licence serves a dataset under: the
 * licence and its scope (columns, row filter, mode), the purpose, and every
 * mask that could apply.  The rewrite computes it when it decides (rewrite.c)
 * and the plan carries it (plantag.c); ExecutorStart computes it again from
 * the current terms, and a plan built under other terms is refused (LD010).
 */
static uint64 terms_fingerprint(const LicdataDataset *ds, const LicdataLicence *lic,
								const char *purpose);

/*
 * The fingerprints computed since the policy cache last changed, per
 * (dataset, licence, purpose): a generic plan's every execution asks for
 * the same one.  The dataset and licence are the policy cache's own
 * structures, which are not changed or freed while the generation stays
 * (policy.c), so their addresses identify them; any load or invalidation
 * of the policy cache moves the generation and empties the memo.
 */
#define FP_MEMO_SIZE 8

typedef struct FingerprintMemo
{
	const LicdataDataset *ds;
	const LicdataLicence *lic;
	char		purpose[NAMEDATALEN];
	uint64		fingerprint;
} FingerprintMemo;

static FingerprintMemo fp_memo[FP_MEMO_SIZE];
static int	fp_memo_used = 0;
static int	fp_memo_next = 0;
static uint64 fp_memo_generation = 0;

uint64
licdata_terms_fingerprint(const LicdataDataset *ds, const LicdataLicence *lic,
						  const char *purpose)
{
	uint64		generation = licdata_policy_generation;
	uint64		h;
	FingerprintMemo *m;

	if (purpose == NULL)
		purpose = "";
	if (fp_memo_generation != generation || licdata_policy_loading)
	{
		fp_memo_used = 0;
		fp_memo_next = 0;
		fp_memo_generation = generation;
	}
	for (int i = 0; i < fp_memo_used; i++)
	{
		m = &fp_memo[i];
		if (m->ds == ds && m->lic == lic && strcmp(m->purpose, purpose) == 0)
			return m->fingerprint;
	}
	h = terms_fingerprint(ds, lic, purpose);
	/* a purpose too long for a NAME is not remembered (never a prefix match) */
	if (strlen(purpose) < NAMEDATALEN && !licdata_policy_loading &&
		generation == licdata_policy_generation)
	{
		m = &fp_memo[fp_memo_next];
		m->ds = ds;
		m->lic = lic;
		strlcpy(m->purpose, purpose, NAMEDATALEN);
		m->fingerprint = h;
		fp_memo_next = (fp_memo_next + 1) % FP_MEMO_SIZE;
		if (fp_memo_used < FP_MEMO_SIZE)
			fp_memo_used++;
	}
	return h;
}

static uint64
terms_fingerprint(const LicdataDataset *ds, const LicdataLicence *lic,
				  const char *purpose)
{
	uint64		h = hash_bytes_extended((const unsigned char *) &lic->id, sizeof(lic->id), 0x4C44);
	ListCell   *lc;

#define MIX(s) do { const char *s_ = (s) ? (s) : "\x01"; \
		h = hash_combine64(h, hash_bytes_extended((const unsigned char *) s_, strlen(s_), 0x4C44)); } while (0)
#define MIXINT(v) do { int64 v_ = (v); \
		h = hash_combine64(h, hash_bytes_extended((const unsigned char *) &v_, sizeof(v_), 0x4C44)); } while (0)
	MIX(purpose);
	MIX(lic->row_filter);
	MIXINT(list_length(lic->columns));
	foreach(lc, lic->columns)
		MIX((const char *) lfirst(lc));
	MIXINT(lic->aggregate_mode);
	MIXINT(lic->min_group_size);
	foreach(lc, ds->masks)
	{
		const LicdataMask *m = lfirst(lc);

		if (m->licence_id != 0 && m->licence_id != lic->id)
			continue;
		if (m->purpose && strcmp(m->purpose, purpose) != 0)
			continue;
		MIX(m->column_name);
		MIX(m->method);
		MIX(m->params);
		MIXINT(m->licence_id);
		MIX(m->purpose);
	}
#undef MIX
#undef MIXINT
	return h;
}
