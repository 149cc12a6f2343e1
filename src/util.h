/*-------------------------------------------------------------------------
 *
 * util.h
 *	  Small helpers every other file may use: the internal subtransaction,
 *	  which errors end a run, and time in the application's conventions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_UTIL_H
#define REO_UTIL_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "utils/elog.h"

/* The schema that holds the extension's own tables and helpers. */
#define REO_SCHEMA "release_expired_orders"

/* A number of minutes as a TimestampTz interval. */
#define REO_MINUTES(m) ((TimestampTz) (m) * SECS_PER_MINUTE * USECS_PER_SEC)

extern ErrorData *ReoInSubtransaction(void (*fn) (void *), void *arg);
extern bool ReoErrorEndsRun(ErrorData *edata);
extern bool ReoErrorIsTransient(ErrorData *edata);
extern bool ReoErrorIsFatal(ErrorData *edata);

extern void ReoRequireArgument(FunctionCallInfo fcinfo, int n, const char *name);
extern char *ReoIsoUtc(TimestampTz t);
extern Timestamp ReoWallClock(TimestampTz t, const char *zone);
extern TimestampTz ReoFromWallClock(Timestamp t, const char *zone);
extern void ReoWallClockNotYet(TimestampTz cutoff, const char *zone,
							   Timestamp *from, Timestamp *to);
extern Datum ReoTimeValue(TimestampTz t, bool tz, const char *zone);

#endif							/* REO_UTIL_H */
