/*-------------------------------------------------------------------------
 *
 * chunk.h
 *	  The release of one chunk of expired orders.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_CHUNK_H
#define REO_CHUNK_H

#include "run.h"

extern int	ReoReleaseChunk(ReoRun *run, int wanted);

#endif							/* REO_CHUNK_H */
