/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  A deadline worker: a background worker that releases each order of
 *	  its database at its deadline.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_WORKER_H
#define REO_WORKER_H

#include "postgres.h"

extern int	reo_worker_poll_ms;

extern void ReoWorkerDefineSettings(void);
extern PGDLLEXPORT void reo_worker_main(Datum arg);

#endif							/* REO_WORKER_H */
