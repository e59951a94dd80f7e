/*-------------------------------------------------------------------------
 *
 * packed.h
 *	  Record batches: many usage or audit rows packed into one bytea, the
 *	  way the flusher stores them (licdata_internal.record_batches), and
 *	  read back as rows by licdata_internal._unpack_usage/_unpack_audit
 *	  (the views licdata.usage and licdata.audit_log).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_PACKED_H
#define LICDATA_PACKED_H

#include "access/tupdesc.h"
#include "lib/stringinfo.h"

typedef struct PackRef
{
	char		kind;			/* 'c' relation, 'r' role */
	Oid			oid;
} PackRef;

typedef struct PackWriter
{
	StringInfoData buf;			/* the header */
	StringInfo	rows;			/* the rows: the caller's, or own_rows */
	StringInfoData own_rows;
	TupleDesc	td;				/* the row type's (not copied) */
	int32		nrows;
	PackRef    *refs;			/* the relations and roles the rows name */
	int			nrefs;
	int			maxrefs;
} PackWriter;

extern void licdata_pack_begin(PackWriter *w, TupleDesc td, StringInfo rows);
extern void licdata_pack_row(PackWriter *w, const Datum *values, const bool *nulls);
extern bytea *licdata_pack_end(PackWriter *w);

#endif							/* LICDATA_PACKED_H */
