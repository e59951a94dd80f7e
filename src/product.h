/*-------------------------------------------------------------------------
 *
 * product.h
 *	  Data products (product.c): an operator's SQL or PL/pgSQL function
 *	  licensed, decided and metered per call, whose body reads datasets as
 *	  published.
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_PRODUCT_H
#define LICDATA_PRODUCT_H

#include "fmgr.h"
#include "nodes/nodes.h"

/*
 * > 0 while a product's body runs for a licensee: the hooks then treat the
 * session as the product's owner (an operator), so the body reads datasets
 * as published.  Reset to 0 for the duration of any function not owned by
 * an operator that the body reaches, and at transaction abort.
 */
extern int	licdata_product_depth;

extern void licdata_product_init(void);
extern void licdata_product_fmgr(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg);
extern bool licdata_product_utility_begin(Node *stmt);
extern void licdata_product_utility_end(bool began);

#endif							/* LICDATA_PRODUCT_H */
