/*-------------------------------------------------------------------------
 *
 * utility.h
 *	  Utility statements as licdata handles them (utility.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_UTILITY_H
#define LICDATA_UTILITY_H

#include "executor/execdesc.h"

extern int	licdata_explain_depth;
extern void licdata_explain_check(QueryDesc *qd);

#endif							/* LICDATA_UTILITY_H */
