/*-------------------------------------------------------------------------
 *
 * purge.h
 *	  The job's own trim of its history.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_PURGE_H
#define REO_PURGE_H

extern void ReoPurgeHistory(bool probe);

#endif							/* REO_PURGE_H */
