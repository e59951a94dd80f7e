/*-------------------------------------------------------------------------
 *
 * denial.h
 *	  Refusing a licensee's statement (denial.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_DENIAL_H
#define LICDATA_DENIAL_H

#include "licdata.h"

extern void licdata_refuse_decision(LicdataDataset *ds, const LicdataDecision *d,
									int64 licence_id) pg_attribute_noreturn();
extern void licdata_refuse(LicdataDataset *ds, int64 licence_id, int sqlerrcode,
						   const char *detail, const char *hint,
						   const char *fmt,...) pg_attribute_printf(6, 7) pg_attribute_noreturn();

#endif							/* LICDATA_DENIAL_H */
