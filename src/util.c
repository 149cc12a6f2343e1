/*-------------------------------------------------------------------------
 *
 * util.c
 *	  The internal subtransaction, error classification and time helpers.
 *
 * Guarantees: ReoInSubtransaction() leaves the memory context and resource
 * owner as it found them whatever fn() does; a timestamp without time zone
 * is always computed with the full zone rules of the zone name (never an
 * abbreviation's fixed offset), the same rule the setting is checked with.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "pgtime.h"
#include "utils/datetime.h"
#include "utils/regproc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "util.h"

/*
 * Run fn(arg) in an internal subtransaction, as PL/Python's SPI calls do.
 * Returns NULL when it succeeded, or the error, copied into the caller's
 * memory context, after rolling the subtransaction back.
 */
ErrorData *
ReoInSubtransaction(void (*fn) (void *), void *arg)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/*
 * Errors that no retry of a smaller part can get past: a cancel by the
 * operator or by statement_timeout (bounding the whole CALL), raised by
 * the server's own interrupt handling, and anything above ERROR.  The
 * same SQLSTATE raised by the application's code (a trigger may RAISE
 * query_canceled) is an error of its order like any other.  They end the
 * run, and nothing catches them for the purge either.
 */
bool
ReoErrorIsFatal(ErrorData *edata)
{
	return edata->elevel > ERROR ||
		(ERRCODE_TO_CATEGORY(edata->sqlerrcode) ==
		 ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION) &&
		 edata->funcname != NULL && strcmp(edata->funcname, "ProcessInterrupts") == 0);
}

/*
 * Errors that end the run from inside a chunk: only the fatal ones.  An
 * error raised while releasing orders, of any class (a missing privilege
 * or function in a trigger, a constraint, a resource the application's
 * code ran out of), is found out by releasing smaller parts, and fails the
 * orders it hits and no other.
 */
bool
ReoErrorEndsRun(ErrorData *edata)
{
	return ReoErrorIsFatal(edata);
}

/*
 * Errors that say nothing about the order itself: a lock wait that timed
 * out, a deadlock, a serialization failure.  The next run simply retries
 * such an order, with no backoff.
 */
bool
ReoErrorIsTransient(ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) ==
		ERRCODE_TO_CATEGORY(ERRCODE_TRANSACTION_ROLLBACK);
}

/*
 * The argument n of a SQL-callable function, named name, must not be NULL:
 * a function the catalog does not declare STRICT (or an older version's
 * declaration) must still never read a NULL as a value.
 */
void
ReoRequireArgument(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" of %s must not be null",
						name, format_procedure(fcinfo->flinfo->fn_oid)),
				 errhint("Pass a value; the function has no meaning for NULL.")));
}

/* Format a time as ISO 8601 in UTC with milliseconds, as JavaScript does. */
char *
ReoIsoUtc(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (fsec / 1000));
}

/* The zone named zone, by pg_tzset(): the rule the setting is checked by. */
static pg_tz *
LoadZone(const char *zone)
{
	pg_tz	   *tz = pg_tzset(zone);

	if (tz == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("time zone \"%s\" is not recognized", zone),
				 errhint("Set release_expired_orders.naive_time_zone to a name from pg_timezone_names, such as \"UTC\".")));
	return tz;
}

/*
 * The wall-clock time of t in the zone named zone, by that zone's full
 * rules.  SQL's timezone(text, timestamptz) would read a name such as
 * "CET" as the abbreviation's fixed offset; the setting is checked with
 * pg_tzset(), so it is applied with pg_tzset() too.
 */
Timestamp
ReoWallClock(TimestampTz t, const char *zone)
{
	pg_tz	   *tz = LoadZone(zone);
	struct pg_tm tm;
	fsec_t		fsec;
	int			offset;
	Timestamp	result;

	if (TIMESTAMP_NOT_FINITE(t))
		return t;
	if (timestamp2tm(t, &offset, &tm, &fsec, NULL, tz) != 0 ||
		tm2timestamp(&tm, fsec, NULL, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

/*
 * The inverse of ReoWallClock(): a wall-clock time in zone, as a time.  A
 * wall-clock time at an end of the range that the zone's offset takes out
 * of it becomes the infinity on its side, never an error: the application
 * may store any value of its column.
 */
TimestampTz
ReoFromWallClock(Timestamp t, const char *zone)
{
	pg_tz	   *tz = LoadZone(zone);
	struct pg_tm tm;
	fsec_t		fsec;
	int			offset;
	TimestampTz result;

	if (TIMESTAMP_NOT_FINITE(t))
		return t;
	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return t < 0 ? DT_NOBEGIN : DT_NOEND;
	offset = DetermineTimeZoneOffset(&tm, tz);
	if (tm2timestamp(&tm, fsec, &offset, &result) != 0 || !IS_VALID_TIMESTAMP(result))
		return t < 0 ? DT_NOBEGIN : DT_NOEND;
	return result;
}

/*
 * The wall-clock times before ReoWallClock(cutoff, zone) that
 * ReoFromWallClock() reads as the cutoff or later, as [*from, *to): none
 * (both the wall-clock cutoff) but within a DST change's reach.  A
 * wall-clock time in the hour a change skips or repeats reads as the later
 * of its instants, so that after a change forward (cutoff in [T, T + d),
 * T the change, d what it adds), the skipped times from the cutoff's
 * wall-clock time less d on are not yet past it; and before a change back
 * (cutoff in (T - d, T)), neither are the repeated times from the start of
 * the repeat on.  The candidates without time zone are those before the
 * wall-clock cutoff and not in this range: exactly those whose deadline,
 * the one preview() shows, has passed.  As DetermineTimeZoneOffset()
 * assumes, offsets are under a day and changes two days apart; were two
 * changes within reach, the range covers both (later, never early).
 */
void
ReoWallClockNotYet(TimestampTz cutoff, const char *zone, Timestamp *from, Timestamp *to)
{
	pg_tz	   *tz = LoadZone(zone);
	Timestamp	wall = ReoWallClock(cutoff, zone);
	pg_time_t	t,
				boundary;
	pg_time_t	last;
	long int	before,
				after;
	int			before_dst,
				after_dst;

	*from = *to = wall;
	if (TIMESTAMP_NOT_FINITE(cutoff))
		return;
	t = timestamptz_to_time_t(cutoff) - 2 * SECS_PER_DAY;
	last = timestamptz_to_time_t(cutoff) + 2 * SECS_PER_DAY;
	for (int i = 0; i < 8; i++)
	{
		TimestampTz change;
		TimestampTz reach;
		Timestamp	lo,
					hi;

		if (pg_next_dst_boundary(&t, &before, &before_dst, &boundary,
								 &after, &after_dst, tz) != 1 ||
			boundary > last)
			break;
		change = time_t_to_timestamptz(boundary);
		reach = (TimestampTz) labs(after - before) * USECS_PER_SEC;
		if (after > before && cutoff >= change && cutoff < change + reach)
		{
			lo = cutoff + (TimestampTz) before * USECS_PER_SEC;
			hi = change + (TimestampTz) after * USECS_PER_SEC;
		}
		else if (after < before && cutoff < change && cutoff > change - reach)
		{
			lo = change + (TimestampTz) after * USECS_PER_SEC;
			hi = cutoff + (TimestampTz) before * USECS_PER_SEC;
		}
		else
		{
			t = boundary;
			continue;
		}
		if (*from == *to)
		{
			*from = lo;
			*to = hi;
		}
		else
		{
			*from = Min(*from, lo);
			*to = Max(*to, hi);
		}
		t = boundary;
	}
	/* only what lies before the wall-clock cutoff matters */
	if (*to > wall)
		*to = wall;
	if (*from > *to)
		*from = *to;
}

/*
 * t as the value of a column of either convention: as is for timestamptz,
 * as wall-clock time in zone for timestamp without time zone.
 */
Datum
ReoTimeValue(TimestampTz t, bool tz, const char *zone)
{
	if (tz)
		return TimestampTzGetDatum(t);
	return TimestampGetDatum(ReoWallClock(t, zone));
}
