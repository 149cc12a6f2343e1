/*-------------------------------------------------------------------------
 *
 * worker_step.h
 *	  One step of the deadline worker: look at the deadlines, run the job
 *	  when something is due, and say when to look again.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_WORKER_STEP_H
#define REO_WORKER_STEP_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* What one step leaves for the next. */
typedef struct ReoProgress
{
	bool		just_ran;		/* the previous step was a run */
	bool		ran_full;		/* which released batch_limit orders */
	TimestampTz last_run_ref;	/* and took the orders due before this */
	int			stuck_ms;		/* delay for orders still due after a run */
	int64		shortest;		/* usecs: the shortest window that applies */
} ReoProgress;

extern TimestampTz ReoWorkerStep(ReoProgress *p, TimestampTz *deadline);

#endif							/* REO_WORKER_STEP_H */
