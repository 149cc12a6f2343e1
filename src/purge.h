/*-------------------------------------------------------------------------
 *
 * purge.h
 *	  The job's own trim of its history.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_PURGE_H
#define REO_PURGE_H

extern void ReoPurgeHistory(void);

#endif							/* REO_PURGE_H */
