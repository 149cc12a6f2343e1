/*-------------------------------------------------------------------------
 *
 * scheduler.h
 *	  What started a run of the procedure.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_SCHEDULER_H
#define REO_SCHEDULER_H

extern const char *ReoScheduler(void);

#endif							/* REO_SCHEDULER_H */
