/*-------------------------------------------------------------------------
 *
 * denial.c
 *	  Refusing a licensee's statement: the denial is metered (an audit
 *	  record, written and closed in the journal, which the transaction's
 *	  abort does not undo), then raised.  Every refusal of a licence check
 *	  goes through here, so none can be raised unaudited.
 *
 * One refusal is not metered: on a hot standby, licensee statements are
 * refused before anything is recorded (a standby's records never reach the
 * primary's tables; see licdata_refuse_on_standby).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xlog.h"
#include "lib/stringinfo.h"

#include "denial.h"
#include "errcodes.h"
#include "meter.h"

/* Meter the refusal d of a statement that reads ds (NULL: none), raise it. */
void
licdata_refuse_decision(LicdataDataset *ds, const LicdataDecision *d, int64 licence_id)
{
	licdata_meter_denial(ds, d, licence_id);
	licdata_raise_decision(d);
}

/* Build a refusal from its parts, meter it, raise it. */
void
licdata_refuse(LicdataDataset *ds, int64 licence_id, int sqlerrcode,
			   const char *detail, const char *hint, const char *fmt,...)
{
	LicdataDecision d;
	StringInfoData buf;
	va_list		args;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	memset(&d, 0, sizeof(d));
	d.sqlerrcode = sqlerrcode;
	d.message = buf.data;
	d.detail = detail ? pstrdup(detail) : NULL;
	d.hint = hint ? pstrdup(hint) : NULL;
	licdata_refuse_decision(ds, &d, licence_id);
}

/*
 * A hot standby serves no licensee statement that reaches a dataset: the
 * usage and audit records it would make cannot reach the primary (this
 * version has no records hand-off from standbys), so serving it would be
 * serving it unmetered.  Refused at once (LD009), before any quota wait.
 */
void
licdata_refuse_on_standby(void)
{
	if (!RecoveryInProgress())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_LD_METERING_FAILED),
			 errmsg("licensed datasets are not served to licensees on a standby server"),
			 errdetail("This server is in recovery: the usage and audit records of the statement could not reach the primary, so it would be served unmetered."),
			 errhint("Run the statement on the primary server; licensee access on standbys needs the hand-off of their records to the primary, which this version of licdata does not have.")));
}
