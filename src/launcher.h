/*-------------------------------------------------------------------------
 *
 * launcher.h
 *	  The launcher of the deadline workers, one per database that has the
 *	  extension, and the settings that say which databases and as whom.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_LAUNCHER_H
#define REO_LAUNCHER_H

#include "postgres.h"

extern char *reo_worker_database;
extern char *reo_worker_role;
extern bool reo_deadline_worker;

extern void ReoLauncherInit(void);
extern PGDLLEXPORT void reo_launcher_main(Datum arg);

#endif							/* REO_LAUNCHER_H */
