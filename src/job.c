/*-------------------------------------------------------------------------
 *
 * job.c
 *	  A release as a whole, for whoever asks for one: the procedure and the
 *	  deadline worker run the same code, with the same checks before any
 *	  write.  And the orders that are due, or will be, by the job's own
 *	  candidate statements: for preview(), for the worker's sleep and for
 *	  the metrics.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "app_schema.h"
#include "job.h"
#include "restore.h"
#include "run.h"
#include "settings.h"
#include "sql.h"
#include "summary.h"
#include "util.h"

#define MINUTES(m) ((TimestampTz) (m) * SECS_PER_MINUTE * USECS_PER_SEC)

/* The payment windows in force, read once per run or per look. */
typedef struct Windows
{
	bool		in_force;
	char	   *ignored;		/* rows that cannot apply, or NULL */
	int			shortest;		/* shortest window that applies, or 0 */
	char	   *json;			/* those that apply, or NULL */
} Windows;

/*
 * The library runs against the SQL objects of its own version and of 1.1,
 * whose tables 1.2 did not change: installing the new library does not stop
 * a database that has not run ALTER EXTENSION UPDATE yet.  Older objects get
 * a clear error instead of statements that fail on a missing column.  A
 * database without the extension (only the deadline worker can get here
 * then) gets one too.
 */
void
ReoCheckInstalledVersion(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("release_expired_orders"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (version == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"release_expired_orders\" is not installed in database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errhint("Run CREATE EXTENSION release_expired_orders; in that database.")));
	if (strcmp(version, REO_VERSION) != 0 && strcmp(version, "1.1") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("release_expired_orders %s is installed in database \"%s\", but the library is version %s",
						version, get_database_name(MyDatabaseId), REO_VERSION),
				 errhint("Run ALTER EXTENSION release_expired_orders UPDATE;")));
}

/*
 * Read the windows in force; SPI is connected and the schema in use.  With
 * read_only, in the snapshot of the statement that called the extension.
 * Windows in force need orders.type and payment_method compared exactly.
 */
static void
ReadWindows(const AppSchema *app, Windows *w, bool read_only)
{
	uint64		(*run) (ReoStatement, Datum *, const char *) =
		read_only ? ReoQuery : ReoExecute;
	SPITupleTable *tt;
	bool		isnull;
	Datum		d;

	memset(w, 0, sizeof(Windows));

	/*
	 * Most installations have no windows: a probe of the table is cheaper to
	 * plan, in a fresh session, than the aggregate that describes them.
	 */
	if (run(STMT_ANY_WINDOW, NULL, NULL) != 1)
		elog(ERROR, "probing the payment windows returned no row");
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		SPI_freetuptable(SPI_tuptable);
		return;
	}
	SPI_freetuptable(SPI_tuptable);
	if (run(STMT_WINDOWS, NULL, NULL) != 1)
		elog(ERROR, "reading the payment windows returned no row");
	tt = SPI_tuptable;
	w->in_force = DatumGetBool(SPI_getbinval(tt->vals[0], tt->tupdesc, 1, &isnull));
	d = SPI_getbinval(tt->vals[0], tt->tupdesc, 2, &isnull);
	if (!isnull)
		w->ignored = TextDatumGetCString(d);
	d = SPI_getbinval(tt->vals[0], tt->tupdesc, 3, &isnull);
	if (!isnull)
		w->shortest = DatumGetInt32(d);
	d = SPI_getbinval(tt->vals[0], tt->tupdesc, 4, &isnull);
	if (!isnull)
		w->json = TextDatumGetCString(d);
	SPI_freetuptable(tt);
	if (w->in_force)
		ReoCheckWindowCollations(app);
}

/* A warning for windows that cannot apply; the text for the run row. */
static char *
WarnIgnoredWindows(const Windows *w, const AppSchema *app)
{
	if (w->ignored == NULL)
		return NULL;
	ereport(WARNING,
			(errmsg("release_expired_orders ignores payment windows %s", w->ignored),
			 errdetail(app->orders_type ?
					   "Relation \"%s.orders\" has no column \"payment_method\", so a window for a payment method never applies." :
					   "Relation \"%s.orders\" has no column \"type\", so no payment window applies.",
					   app->schema),
			 errhint("Delete those rows from release_expired_orders.payment_windows, or add the column to orders.")));
	return psprintf("payment windows ignored: %s", w->ignored);
}

static char *
JoinWarnings(char *a, char *b)
{
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	return psprintf("%s; %s", a, b);
}

/*
 * Run the job once: checks, then run.c.  Fills *summary, whose strings are
 * in the caller's memory context.  SPI is connected and finished here.
 */
void
ReoReleaseJob(int timeout_minutes, int batch_limit, bool atomic, const char *scheduler,
			  ReoSummary *out)
{
	MemoryContext caller = CurrentMemoryContext;
	ReoRun		runbuf = {0};
	ReoRun	   *run = &runbuf;
	ReoSummary	summary = {0};
	Windows		windows;
	char	   *notifications_problem;

	ReoCheckInstalledVersion();
	run->atomic = atomic;
	run->timeout_minutes = timeout_minutes;
	run->batch_limit = batch_limit;
	run->chunk_size = reo_chunk_size;
	run->retry_backoff_s = reo_retry_backoff_s;
	run->lock_timeout_ms = reo_lock_timeout_ms;
	run->scheduler = scheduler;
	run->started = GetCurrentTimestamp();
	summary.started = run->started;
	summary.timeout_minutes = run->timeout_minutes;

	if (RecoveryInProgress())
	{
		ereport(NOTICE,
				(errmsg("release_expired_orders skipped: the server is a standby"),
				 errdetail("A server in recovery cannot release orders."),
				 errhint("Run the job on the primary.")));
		summary.outcome = "skipped";
		summary.message = "skipped: the server is in recovery";
		*out = summary;
		return;
	}
	if ((summary.message = ReoRestoreSkipsRun()) != NULL)
	{
		summary.outcome = "skipped";
		*out = summary;
		return;
	}

	/* Every check that can refuse the run happens before any write. */
	ReoDiscoverSchema(&run->app, reo_app_schema, reo_write_notifications,
					  &notifications_problem);
	ReoCheckJobPrivileges(&run->app);
	if (notifications_problem)
		ereport(WARNING,
				(errmsg("release_expired_orders does not write the application's notifications: %s",
						notifications_problem),
				 errhint("Give the column a default, or set release_expired_orders.write_notifications to off.")));
	run->write_notifications = run->app.notifications;
	run->warnings = notifications_problem ?
		psprintf("notifications skipped: %s", notifications_problem) : NULL;

	/*
	 * The cutoff is fixed once, from the first transaction's now(): created_at
	 * without time zone is wall-clock time in naive_time_zone, whatever the
	 * session's TimeZone.  With payment windows, each order's deadline is
	 * measured against the same now().
	 */
	run->reference = GetCurrentTransactionStartTimestamp();
	run->cutoff = run->reference - MINUTES(run->timeout_minutes);
	run->cutoff_value = DatumGetTimestamp(ReoTimeValue(run->cutoff, run->app.orders_created_tz,
													   reo_naive_time_zone));
	run->after_created = DT_NOBEGIN;
	run->after_deadline = DT_NOBEGIN;

	if (SPI_connect_ext(run->atomic ? 0 : SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* SPI's procedure context survives the commits between chunks. */
	run->cxt = AllocSetContextCreate(CurrentMemoryContext,
									 "release_expired_orders run",
									 ALLOCSET_DEFAULT_SIZES);
	run->chunk_cxt = AllocSetContextCreate(run->cxt,
										   "release_expired_orders chunk",
										   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(run->cxt);
	run->naive_time_zone = pstrdup(reo_naive_time_zone);
	if (run->warnings)
		run->warnings = pstrdup(run->warnings);
	ReoInitErrorList(&run->errors, run->cxt);
	ReoUseSchema(&run->app);
	ReadWindows(&run->app, &windows, false);
	run->windowed = windows.in_force;
	if (run->windowed)
		ReoCheckWindowPrivileges(&run->app);
	run->windows_json = windows.json;

	/*
	 * No order is due unless created before now less the timeout.  With
	 * windows there is no probe: the windowed statement goes type by type
	 * and skips a type whose oldest order is not due, which is what a probe
	 * would learn, and the recommended index then leads with the type.
	 */
	run->probe_first = !run->windowed;
	run->due_before = DatumGetTimestamp(ReoTimeValue(run->reference -
													 MINUTES(run->timeout_minutes),
													 run->app.orders_created_tz,
													 run->naive_time_zone));
	run->warnings = JoinWarnings(run->warnings, WarnIgnoredWindows(&windows, &run->app));
	summary.windows = windows.json;

	summary.outcome = ReoRunExecute(run);
	summary.run_id = run->run_id;
	summary.found = run->found;
	summary.released = run->released;
	summary.failed = run->failed;
	summary.vetoed = run->vetoed;
	summary.elapsed_ms = (GetCurrentTimestamp() - run->started) / 1000;
	if (run->found == 0)
		summary.message = "no expired orders to release";
	else
		summary.message = psprintf("released " INT64_FORMAT " of " INT64_FORMAT
								   " expired orders, " INT64_FORMAT " failed%s",
								   run->released, run->found, run->failed,
								   run->vetoed > 0 ?
								   psprintf(", " INT64_FORMAT " vetoed", run->vetoed) : "");
	/* What outlives SPI's memory goes to the caller's. */
	summary.message = MemoryContextStrdup(caller, summary.message);
	if (summary.windows)
		summary.windows = MemoryContextStrdup(caller, summary.windows);
	summary.errors = MemoryContextStrdup(caller, run->errors.json.data);
	*out = summary;
	SPI_finish();
}

/*
 * Call fn for each order that is due at now (oldest deadline first, up to
 * limit), by the job's candidate statement without its locks; orders that
 * failed or were vetoed after backoff_since are left out.  now may be
 * infinity: every pending order, by deadline.  Returns the count.
 */
uint64
ReoDueOrders(int timeout_minutes, int limit, TimestampTz now,
			 TimestampTz backoff_since, ReoDueFn fn, void *arg)
{
	AppSchema	app;
	char	   *notifications_problem;
	Windows		windows;
	Datum		args[7];
	pg_uuid_t	nil = {{0}};
	SPITupleTable *tt;
	uint64		n;

	ReoDiscoverSchema(&app, reo_app_schema, false, &notifications_problem);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ReoUseSchema(&app);
	ReadWindows(&app, &windows, true);
	if (windows.in_force)
	{
		args[0] = TimestampTzGetDatum(now);
		args[1] = TimestampTzGetDatum(DT_NOBEGIN);
		args[2] = UUIDPGetDatum(&nil);
		args[3] = Int32GetDatum(limit);
		args[4] = TimestampTzGetDatum(backoff_since);
		args[5] = Int32GetDatum(timeout_minutes);
		args[6] = CStringGetTextDatum(reo_naive_time_zone);
		n = ReoQuery(STMT_PREVIEW_W, args, NULL);
	}
	else
	{
		TimestampTz cutoff = TIMESTAMP_NOT_FINITE(now) ? now :
			now - MINUTES(timeout_minutes);

		args[0] = ReoTimeValue(cutoff, app.orders_created_tz, reo_naive_time_zone);
		args[1] = TimestampGetDatum(DT_NOBEGIN);
		args[2] = UUIDPGetDatum(&nil);
		args[3] = Int32GetDatum(limit);
		args[4] = TimestampTzGetDatum(backoff_since);
		n = ReoQuery(STMT_PREVIEW, args, NULL);
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
	if (created > END_TIMESTAMP - MINUTES(minutes) - 1)
		return DT_NOEND;
	return created + MINUTES(minutes);
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
	Windows		windows;
	Datum		args[7];
	pg_uuid_t	nil = {{0}};
	bool		isnull;

	ReoDiscoverSchema(&app, reo_app_schema, false, &notifications_problem);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ReoUseSchema(&app);
	ReadWindows(&app, &windows, true);
	if (!windows.in_force)
	{
		SPI_finish();
		*any = ReoDueOrders(timeout_minutes, 1, DT_NOEND, DT_NOEND, KeepDeadline, any_at) > 0;
		if (due != NULL)
			*due = *any && ReoDueOrders(timeout_minutes, 1, DT_NOEND, since,
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
		if (ReoQuery(STMT_NEXT_W, args, NULL) != 1)
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
	Windows		windows;

	ReoDiscoverSchema(&app, reo_app_schema, false, &notifications_problem);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ReoUseSchema(&app);
	ReadWindows(&app, &windows, true);
	SPI_finish();
	if (windows.in_force && windows.shortest > 0)
		return Min(windows.shortest, timeout_minutes);
	return timeout_minutes;
}
