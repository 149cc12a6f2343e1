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
 * Errors that no retry of a smaller part can get past: a cancel (the
 * operator, or statement_timeout bounding the whole CALL), lack of
 * resources, internal errors.  They end the run, and nothing catches them
 * for the purge either.
 */
bool
ReoErrorIsFatal(ErrorData *edata)
{
	int			category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	return edata->elevel > ERROR ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_SYSTEM_ERROR) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_INTERNAL_ERROR);
}

/*
 * Errors that end the run from inside a chunk: the fatal ones, a missing
 * privilege or object (class 42, such as no UPDATE on products) and a
 * read-only transaction.  Every order would fail the same way, so failing
 * them one by one would only list each as a poison order.
 */
bool
ReoErrorEndsRun(ErrorData *edata)
{
	int			category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	return ReoErrorIsFatal(edata) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION) ||
		edata->sqlerrcode == ERRCODE_READ_ONLY_SQL_TRANSACTION;
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

/* The inverse of ReoWallClock(): a wall-clock time in zone, as a time. */
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
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	offset = DetermineTimeZoneOffset(&tm, tz);
	if (tm2timestamp(&tm, fsec, &offset, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
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
