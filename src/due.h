/*-------------------------------------------------------------------------
 *
 * due.h
 *	  The orders that are or will be due, and their deadlines.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_DUE_H
#define REO_DUE_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* An order that is, or will be, due; values as the candidate columns. */
typedef struct ReoDueOrder
{
	Datum		values[7];		/* id ... quantity, created_at (timestamptz) */
	bool		nulls[7];
	int			window_minutes;
	TimestampTz deadline;
} ReoDueOrder;

typedef void (*ReoDueFn) (const ReoDueOrder *order, void *arg);

extern uint64 ReoDueOrders(int timeout_minutes, int limit, TimestampTz now, TimestampTz from,
						   TimestampTz backoff_since, ReoDueFn fn, void *arg);
extern TimestampTz ReoDeadline(TimestampTz created, int minutes);
extern void ReoNextDeadlines(int timeout_minutes, bool *any, TimestampTz *any_at,
							 bool *due, TimestampTz *due_at);
extern bool ReoNextDeadline(int timeout_minutes, bool all, TimestampTz *deadline);
extern int	ReoShortestWindow(int timeout_minutes);

#endif							/* REO_DUE_H */
