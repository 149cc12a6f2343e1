/*-------------------------------------------------------------------------
 *
 * due.c
 *	  The orders that are due, or will be, and their deadlines, by the
 *	  job's own candidate statements without their locks: for preview(),
 *	  oldest_deadline(), the metrics and the deadline worker's sleep.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "app_schema.h"
#include "due.h"
#include "settings.h"
#include "sql.h"
#include "util.h"
#include "windows.h"

/*
 * Call fn for each order that is due at now (oldest deadline first, up to
 * limit), by the job's candidate statement without its locks; orders that
 * failed or were vetoed after backoff_since are left out.  now may be
 * infinity: every pending order, by deadline.  Only deadlines from "from"
 * on (DT_NOBEGIN: all), found by the scan's keyset, so that the orders
 * before it cost nothing.  Returns the count.
 */
uint64
ReoDueOrders(int timeout_minutes, int limit, TimestampTz now, TimestampTz from,
			 TimestampTz backoff_since, ReoDueFn fn, void *arg)
{
	AppSchema	app;
	char	   *notifications_problem;
	ReoWindows		windows;
	Datum		args[7];
	pg_uuid_t	nil = {{0}};
	SPITupleTable *tt;
	uint64		n;

	ReoDiscoverSchema(&app, reo_app_schema, false, &notifications_problem);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	StmtUseSchema(&app);
	ReoReadWindows(&app, &windows, true);
	if (windows.in_force)
	{
		args[0] = TimestampTzGetDatum(now);
		args[1] = TimestampTzGetDatum(from);
		args[2] = UUIDPGetDatum(&nil);
		args[3] = Int32GetDatum(limit);
		args[4] = TimestampTzGetDatum(backoff_since);
		args[5] = Int32GetDatum(timeout_minutes);
		args[6] = CStringGetTextDatum(reo_naive_time_zone);
		n = StmtQuery(STMT_PREVIEW_W, args, NULL);
	}
	else
	{
		TimestampTz cutoff = TIMESTAMP_NOT_FINITE(now) ? now :
			now - REO_MINUTES(timeout_minutes);

		args[0] = ReoTimeValue(cutoff, app.orders_created_tz, reo_naive_time_zone);
		/* the keyset is on created_at: a deadline from "from" on */
		args[1] = TIMESTAMP_NOT_FINITE(from) ? TimestampGetDatum(from) :
			ReoTimeValue(from - REO_MINUTES(timeout_minutes), app.orders_created_tz,
						 reo_naive_time_zone);
		args[2] = UUIDPGetDatum(&nil);
		args[3] = Int32GetDatum(limit);
		args[4] = TimestampTzGetDatum(backoff_since);
		args[5] = args[6] = args[0];
		if (!app.orders_created_tz)
		{
			Timestamp	from_wall,
						to_wall;

			ReoWallClockNotYet(cutoff, reo_naive_time_zone, &from_wall, &to_wall);
			args[5] = TimestampGetDatum(from_wall);
			args[6] = TimestampGetDatum(to_wall);
		}
		n = StmtQuery(STMT_PREVIEW, args, NULL);
	}
	tt = SPI_tuptable;
	for (uint64 i = 0; i < n; i++)
	{
		ReoDueOrder o;
		TimestampTz created;
		bool		isnull;

		for (int col = 0; col < 7; col++)
			o.values[col] = SPI_getbinval(tt->vals[i], tt->tupdesc, col + 1, &o.nulls[col]);
		created = DatumGetTimestampTz(o.values[6]);
		if (!app.orders_created_tz)
			created = ReoFromWallClock(created, reo_naive_time_zone);
		o.values[6] = TimestampTzGetDatum(created);
		if (windows.in_force)
		{
			o.window_minutes = DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 8, &isnull));
			o.deadline = DatumGetTimestampTz(SPI_getbinval(tt->vals[i], tt->tupdesc, 9, &isnull));
		}
		else
		{
			o.window_minutes = timeout_minutes;
			o.deadline = ReoDeadline(created, timeout_minutes);
		}
		fn(&o, arg);
	}
	SPI_finish();
	return n;
}

/*
 * created plus a window, never past the timestamp range: a time so late
 * that the sum would leave it has no deadline (infinity), and an infinite
 * created_at keeps its infinity.
 */
TimestampTz
ReoDeadline(TimestampTz created, int minutes)
{
	if (TIMESTAMP_NOT_FINITE(created))
		return created;
	if (created > END_TIMESTAMP - REO_MINUTES(minutes) - 1)
		return DT_NOEND;
	return created + REO_MINUTES(minutes);
}

static void
KeepDeadline(const ReoDueOrder *order, void *arg)
{
	*(TimestampTz *) arg = order->deadline;
}

/*
 * The earliest deadline of any pending order (*any) and of one not held
 * back by the retry backoff (*due, when asked for), each false when there
 * is none.  With payment windows one statement answers both, with one
 * index probe per order type.
 */
void
ReoNextDeadlines(int timeout_minutes, bool *any, TimestampTz *any_at,
				 bool *due, TimestampTz *due_at)
{
	TimestampTz since = GetCurrentTransactionStartTimestamp() -
		(TimestampTz) reo_retry_backoff_s * USECS_PER_SEC;
	AppSchema	app;
	char	   *notifications_problem;
	ReoWindows		windows;
	Datum		args[7];
	pg_uuid_t	nil = {{0}};
	bool		isnull;

	ReoDiscoverSchema(&app, reo_app_schema, false, &notifications_problem);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	StmtUseSchema(&app);
	ReoReadWindows(&app, &windows, true);
	if (!windows.in_force)
	{
		SPI_finish();
		*any = ReoDueOrders(timeout_minutes, 1, DT_NOEND, DT_NOBEGIN, DT_NOEND, KeepDeadline, any_at) > 0;
		if (due != NULL)
			*due = *any && ReoDueOrders(timeout_minutes, 1, DT_NOEND, DT_NOBEGIN, since,
										KeepDeadline, due_at) > 0;
	}
	else
	{
		args[0] = TimestampTzGetDatum(DT_NOEND);
		args[1] = TimestampTzGetDatum(DT_NOBEGIN);
		args[2] = UUIDPGetDatum(&nil);
		args[3] = Int32GetDatum(1);
		args[4] = TimestampTzGetDatum(due != NULL ? since : DT_NOEND);
		args[5] = Int32GetDatum(timeout_minutes);
		args[6] = CStringGetTextDatum(reo_naive_time_zone);
		if (StmtQuery(STMT_NEXT_W, args, NULL) != 1)
			elog(ERROR, "reading the next deadlines returned no row");
		*any_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		*any = !isnull;
		if (due != NULL)
		{
			*due_at = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
			*due = !isnull;
		}
		SPI_finish();
	}

	/*
	 * An order whose deadline is not finite (created at infinity, or so
	 * late that created_at plus its window leaves the range) never expires:
	 * it is no deadline.
	 */
	if (*any && TIMESTAMP_IS_NOEND(*any_at))
		*any = false;
	if (due != NULL && *due && TIMESTAMP_IS_NOEND(*due_at))
		*due = false;
}

/*
 * The earliest deadline of any pending order, false when there is none;
 * with all, also of orders waiting out the retry backoff.
 */
bool
ReoNextDeadline(int timeout_minutes, bool all, TimestampTz *deadline)
{
	bool		any;
	bool		due;
	TimestampTz any_at;

	if (all)
	{
		ReoNextDeadlines(timeout_minutes, &any, deadline, NULL, NULL);
		return any;
	}
	ReoNextDeadlines(timeout_minutes, &any, &any_at, &due, deadline);
	return due;
}

/*
 * The shortest window that applies: no order placed from now on can be due
 * sooner than that from now.
 */
int
ReoShortestWindow(int timeout_minutes)
{
	AppSchema	app;
	char	   *notifications_problem;
	ReoWindows		windows;

	ReoDiscoverSchema(&app, reo_app_schema, false, &notifications_problem);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	StmtUseSchema(&app);
	ReoReadWindows(&app, &windows, true);
	SPI_finish();
	if (windows.in_force && windows.shortest > 0)
		return Min(windows.shortest, timeout_minutes);
	return timeout_minutes;
}
