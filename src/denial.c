/*-------------------------------------------------------------------------
 *
 * denial.c
 *	  Refusing a licensee's statement: the denial is metered (an audit
 *	  record, written and closed in the journal, which the transaction's
 *	  abort does not undo), then raised.  Every refusal of a licence check
 *	  above the meter (rewrite, aggregate checks, token, utility, the
 *	  executor's safety net) goes through here, so none is raised
 *	  unaudited.  The meter's own refusals (at ExecutorStart, quotas) write
 *	  their denial records themselves, so the meter does not depend on this
 *	  module (no cycle: denial -> meter -> journal).
 *
 * One refusal is not metered: on a hot standby, licensee statements are
 * refused before anything is recorded (licdata_refuse_on_standby, decide.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

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
	licdata_decision_refusal(&d, sqlerrcode, buf.data, detail, hint);
	licdata_refuse_decision(ds, &d, licence_id);
}
