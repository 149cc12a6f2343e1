/*-------------------------------------------------------------------------
 *
 * job.h
 *	  The job: a release as a whole, for whoever asks for one (the
 *	  procedure, the deadline worker).
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_JOB_H
#define REO_JOB_H

#include "postgres.h"

#include "summary.h"

extern char *ReoInstalledVersion(void);
extern bool ReoCheckInstalledVersion(void);
extern void ReoReleaseJob(int timeout_minutes, int batch_limit, bool atomic,
						  const char *scheduler, ReoSummary *summary);

#endif							/* REO_JOB_H */
