/*-------------------------------------------------------------------------
 *
 * ddl_guard.h
 *	  Database commands never blocked by a deadline worker, and extension
 *	  commands told to the launcher.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_DDL_GUARD_H
#define REO_DDL_GUARD_H

extern void ReoDdlGuardInit(void);

#endif							/* REO_DDL_GUARD_H */
