/*-------------------------------------------------------------------------
 *
 * chunk.h
 *	  The release of one chunk of expired orders: the middle layer of the
 *	  release path.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_CHUNK_H
#define REO_CHUNK_H

#include "run.h"

extern int	ChunkRelease(ReoRun *run, int wanted);

#endif							/* REO_CHUNK_H */
