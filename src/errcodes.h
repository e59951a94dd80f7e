/*-------------------------------------------------------------------------
 *
 * errcodes.h
 *	  The SQLSTATE class "LD" and every licence error licdata raises.
 *
 * Clients tell "not licensed" apart from a bug by the class: every error a
 * licence decision produces has a SQLSTATE starting with LD.  Errors that
 * are not licence decisions (bad input to an operator function, permission
 * to call an operator function) use PostgreSQL's own codes.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_ERRCODES_H
#define LICDATA_ERRCODES_H

#include "utils/elog.h"

/* LD001: no purpose declared (licdata.purpose is empty) */
#define ERRCODE_LD_NO_PURPOSE			MAKE_SQLSTATE('L','D','0','0','1')
/* LD002: the declared purpose is not among the licence's purposes */
#define ERRCODE_LD_PURPOSE_NOT_LICENSED	MAKE_SQLSTATE('L','D','0','0','2')
/* LD003: the query reads a column outside the licence's scope */
#define ERRCODE_LD_COLUMN_NOT_LICENSED	MAKE_SQLSTATE('L','D','0','0','3')
/* LD004: licence not yet valid, or expired */
#define ERRCODE_LD_LICENCE_NOT_VALID	MAKE_SQLSTATE('L','D','0','0','4')
/* LD005: licence suspended or revoked, or no licence for this dataset */
#define ERRCODE_LD_NO_LICENCE			MAKE_SQLSTATE('L','D','0','0','5')
/* LD006: a quota is reached (rows per query, rows per day, queries per day) */
#define ERRCODE_LD_QUOTA_EXCEEDED		MAKE_SQLSTATE('L','D','0','0','6')
/* LD007: the licence requires a consent reference and none is set */
#define ERRCODE_LD_CONSENT_REQUIRED		MAKE_SQLSTATE('L','D','0','0','7')
/* LD008: aggregate-only licence and the query would return raw rows */
#define ERRCODE_LD_AGGREGATE_ONLY		MAKE_SQLSTATE('L','D','0','0','8')
/* LD009: metering could not be recorded, so the query is refused */
#define ERRCODE_LD_METERING_FAILED		MAKE_SQLSTATE('L','D','0','0','9')
/* LD010: the licence terms changed after the statement was planned */
#define ERRCODE_LD_LICENCE_CHANGED		MAKE_SQLSTATE('L','D','0','1','0')
/* LD011: licdata is not loaded or not set up, so it cannot decide */
#define ERRCODE_LD_NOT_READY			MAKE_SQLSTATE('L','D','0','1','1')
/* LD012: EXPLAIN of a statement that reads a dataset, in a licensee's session */
#define ERRCODE_LD_EXPLAIN_REFUSED		MAKE_SQLSTATE('L','D','0','1','2')

#endif							/* LICDATA_ERRCODES_H */
