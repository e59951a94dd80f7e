/*-------------------------------------------------------------------------
 *
 * decide.c
 *	  Licence decisions.  Pure: given a dataset, a licensee, the declared
 *	  purpose and consent reference and the time, return which licence
 *	  serves the query or why none does.  Only licdata_raise_decision (called
 *	  from the hook layer) turns a refusal into an error.
 *
 * Order of the checks, and the SQLSTATE of each refusal:
 *	1. no purpose declared								LD001
 *	2. no licence at all for this dataset				LD005
 *	3. no licence for the purpose						LD002 (lists the licensed ones)
 *	4. licences for the purpose, none active			LD005 (suspended / revoked)
 *	5. active, none valid now							LD004 (not yet valid / expired)
 *	6. consent reference required and not set			LD007
 * When several licences fit, the most recently granted one serves.
 *
 * Messages name the dataset, the licence and the purpose, never data.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "errcodes.h"
#include "licdata.h"

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

	memset(out, 0, sizeof(*out));

	foreach(lc, ds->licences)
	{
		LicdataLicence *lic = lfirst(lc);

		if (lic->licensee == who->roleid)
			mine = lappend(mine, lic);
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
	if (chosen->require_consent_ref &&
		(consent_ref == NULL || strspn(consent_ref, " \t\r\n") == strlen(consent_ref)))
	{
		refuse(out, ERRCODE_LD_CONSENT_REQUIRED,
			   psprintf("licence %lld for %s %s requires a consent reference",
						(long long) chosen->id, KIND(ds), ds->name),
			   pstrdup("Each query under this licence must name the data subject's consent or business case."),
			   pstrdup("Run SET licdata.consent_ref = '<reference>' (for example the loan application number) first."));
		return;
	}
	out->sqlerrcode = 0;
	out->licence = chosen;
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
