/*-------------------------------------------------------------------------
 *
 * hooks.h
 *	  Installing licdata's hooks (hooks.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef LICDATA_HOOKS_H
#define LICDATA_HOOKS_H

extern void licdata_hooks_install(void);

#endif							/* LICDATA_HOOKS_H */
