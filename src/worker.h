/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  The deadline worker: a background worker that releases each order at
 *	  its deadline.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_WORKER_H
#define REO_WORKER_H

#include "postgres.h"

extern char *reo_worker_database;
extern char *reo_worker_role;

extern void ReoWorkerInit(void);
extern PGDLLEXPORT void reo_worker_main(Datum arg);

#endif							/* REO_WORKER_H */
