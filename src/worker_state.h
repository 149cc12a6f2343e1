/*-------------------------------------------------------------------------
 *
 * worker_state.h
 *	  What the deadline worker tells the rest of the cluster about itself,
 *	  in shared memory: worker_status() and wake_worker() read it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_WORKER_STATE_H
#define REO_WORKER_STATE_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* What the worker reports at each step; DT_NOBEGIN means "none". */
extern void ReoWorkerStateInit(void);
extern void ReoWorkerStateStarted(const char *database);
extern void ReoWorkerStateRole(const char *role);
extern void ReoWorkerStateWoke(TimestampTz wake, TimestampTz deadline);
extern void ReoWorkerStateSleeps(TimestampTz next_wake);
extern void ReoWorkerStateError(const char *message);

#endif							/* REO_WORKER_STATE_H */
