/*-------------------------------------------------------------------------
 *
 * release_expired_orders.c
 *	  Entry point and settings: CALL release_expired_orders(timeout_minutes,
 *	  batch_limit, INOUT summary).
 *
 * The procedure checks its arguments and the application's tables before it
 * writes anything, records a run row, then releases chunk after chunk.  In a
 * plain CALL (non-atomic, as pg_cron runs it) it commits after every chunk;
 * inside a transaction block it works in the caller's transaction.  Each
 * chunk runs in a subtransaction so that an error which ends the run can
 * still be written to the run row before it is raised again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "nodes/parsenodes.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "release_expired_orders.h"

PG_MODULE_MAGIC;

#define TIMEOUT_MAX 525600		/* one year of minutes */
#define BATCH_MAX 1000000

int			reo_timeout_minutes = 30;
int			reo_batch_limit = 100;
int			reo_chunk_size = 1000;
int			reo_lock_timeout_ms = 5000;
char	   *reo_naive_time_zone = NULL;
char	   *reo_app_schema = NULL;
bool		reo_write_notifications = true;
int			reo_slow_run_ms = 60000;
int			reo_alert_after_min = 20;
int			reo_history_retention_min = 30 * 24 * 60;
int			reo_purge_limit = 10000;

void		_PG_init(void);

/*
 * A value SET before the library was loaded is a placeholder; when the
 * library loads, PostgreSQL only warns about an invalid one and keeps the
 * default.  We remember such a value and refuse to run until the setting
 * is assigned again, so that a bad setting is an error, not a silent
 * default.
 */
typedef enum SettingId
{
	S_TIMEOUT, S_BATCH, S_CHUNK, S_LOCK_TIMEOUT, S_NAIVE_TZ, S_APP_SCHEMA,
	S_NOTIFICATIONS, S_SLOW_RUN, S_ALERT_AFTER, S_RETENTION, S_PURGE_LIMIT,
	S_COUNT
} SettingId;

static const char *const setting_names[S_COUNT] = {
	"release_expired_orders.timeout_minutes",
	"release_expired_orders.batch_limit",
	"release_expired_orders.chunk_size",
	"release_expired_orders.lock_timeout",
	"release_expired_orders.naive_time_zone",
	"release_expired_orders.app_schema",
	"release_expired_orders.write_notifications",
	"release_expired_orders.slow_run_ms",
	"release_expired_orders.alert_after",
	"release_expired_orders.history_retention",
	"release_expired_orders.purge_limit",
};
static char *rejected[S_COUNT];
static bool settings_defined = false;

#define ASSIGN_HOOK(fn, type, id) \
	static void fn(type newval, void *extra) \
	{ \
		if (settings_defined) \
			rejected[id] = NULL; \
	}
ASSIGN_HOOK(AssignTimeout, int, S_TIMEOUT)
ASSIGN_HOOK(AssignBatch, int, S_BATCH)
ASSIGN_HOOK(AssignChunk, int, S_CHUNK)
ASSIGN_HOOK(AssignLockTimeout, int, S_LOCK_TIMEOUT)
ASSIGN_HOOK(AssignNaiveTz, const char *, S_NAIVE_TZ)
ASSIGN_HOOK(AssignAppSchema, const char *, S_APP_SCHEMA)
ASSIGN_HOOK(AssignNotifications, bool, S_NOTIFICATIONS)
ASSIGN_HOOK(AssignSlowRun, int, S_SLOW_RUN)
ASSIGN_HOOK(AssignAlertAfter, int, S_ALERT_AFTER)
ASSIGN_HOOK(AssignRetention, int, S_RETENTION)
ASSIGN_HOOK(AssignPurgeLimit, int, S_PURGE_LIMIT)

/* A zone that pg_tzset() can load, so that conversions cannot fail later. */
static bool
CheckNaiveTimeZone(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0' || pg_tzset(*newval) == NULL)
	{
		GUC_check_errdetail("Time zone \"%s\" is not recognized.",
							*newval ? *newval : "");
		GUC_check_errhint("Use a name from pg_timezone_names, such as \"UTC\".");
		return false;
	}
	return true;
}

/* A schema name the catalogs could hold; existence is checked per run. */
static bool
CheckAppSchema(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0' || strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errdetail("The schema name must have 1 to %d bytes.",
							NAMEDATALEN - 1);
		GUC_check_errhint("Set it to the schema that holds the application's orders table.");
		return false;
	}
	return true;
}

void
_PG_init(void)
{
	char	   *placeholder[S_COUNT];

	for (int i = 0; i < S_COUNT; i++)
	{
		const char *value = GetConfigOption(setting_names[i], true, false);

		placeholder[i] = value ? MemoryContextStrdup(TopMemoryContext, value) : NULL;
	}

	DefineCustomIntVariable("release_expired_orders.timeout_minutes",
							"Minutes after which an unpaid order expires.",
							"Used when release_expired_orders is called with timeout_minutes NULL.",
							&reo_timeout_minutes, 30, 1, TIMEOUT_MAX,
							PGC_USERSET, 0, NULL, AssignTimeout, NULL);
	DefineCustomIntVariable("release_expired_orders.batch_limit",
							"Most orders one call releases.",
							"Used when release_expired_orders is called with batch_limit NULL.",
							&reo_batch_limit, 100, 1, BATCH_MAX,
							PGC_USERSET, 0, NULL, AssignBatch, NULL);
	DefineCustomIntVariable("release_expired_orders.chunk_size",
							"Orders released per transaction in a committing CALL.",
							"Also bounds the memory of a run.",
							&reo_chunk_size, 1000, 1, 100000,
							PGC_USERSET, 0, NULL, AssignChunk, NULL);
	DefineCustomIntVariable("release_expired_orders.lock_timeout",
							"Longest wait for a product or lottery round row.",
							"Orders whose rows stay locked longer are counted failed and retried by the next run.",
							&reo_lock_timeout_ms, 5000, 1, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS, NULL, AssignLockTimeout, NULL);
	DefineCustomStringVariable("release_expired_orders.naive_time_zone",
							   "Time zone of timestamp without time zone columns.",
							   "The application stores UTC wall-clock time.",
							   &reo_naive_time_zone, "UTC",
							   PGC_USERSET, 0, CheckNaiveTimeZone, AssignNaiveTz, NULL);
	DefineCustomStringVariable("release_expired_orders.app_schema",
							   "Schema of the application's tables.",
							   NULL,
							   &reo_app_schema, "public",
							   PGC_USERSET, 0, CheckAppSchema, AssignAppSchema, NULL);
	DefineCustomBoolVariable("release_expired_orders.write_notifications",
							 "Write the application's system_audit notifications.",
							 "Only when the notifications table exists.",
							 &reo_write_notifications, true,
							 PGC_USERSET, 0, NULL, AssignNotifications, NULL);
	DefineCustomIntVariable("release_expired_orders.slow_run_ms",
							"health() warns when the last run took longer.",
							NULL,
							&reo_slow_run_ms, 60000, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS, NULL, AssignSlowRun, NULL);
	DefineCustomIntVariable("release_expired_orders.alert_after",
							"health() is critical when no run succeeded for this long.",
							"Twice the scheduled interval is a good value.",
							&reo_alert_after_min, 20, 1, 525600,
							PGC_USERSET, GUC_UNIT_MIN, NULL, AssignAlertAfter, NULL);
	DefineCustomIntVariable("release_expired_orders.history_retention",
							"How long run and audit history is kept.",
							"Older history is purged by the job itself.",
							&reo_history_retention_min, 30 * 24 * 60, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_MIN, NULL, AssignRetention, NULL);
	DefineCustomIntVariable("release_expired_orders.purge_limit",
							"Most history rows of each table one run purges.",
							"Bounds the cost the purge adds to a run.",
							&reo_purge_limit, 10000, 0, INT_MAX,
							PGC_USERSET, 0, NULL, AssignPurgeLimit, NULL);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("release_expired_orders");
#else
	EmitWarningsOnPlaceholders("release_expired_orders");
#endif

	/* Which placeholder values did PostgreSQL just reject with a warning? */
	for (int i = 0; i < S_COUNT; i++)
		if (placeholder[i] != NULL &&
			set_config_option(setting_names[i], placeholder[i], PGC_USERSET,
							  PGC_S_SESSION, GUC_ACTION_SET, false, DEBUG5,
							  false) == 0)
			rejected[i] = placeholder[i];
	settings_defined = true;
}

/* Refuse to run on a default that stands in for a rejected value. */
static void
CheckRejectedSettings(void)
{
	for (int i = 0; i < S_COUNT; i++)
		if (rejected[i] != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for parameter \"%s\": \"%s\"",
							setting_names[i], rejected[i]),
					 errdetail("The value was set before the library was loaded, so PostgreSQL ignored it and kept the default."),
					 errhint("Set the parameter again with a valid value, or RESET it.")));
}

/* Refuse an argument outside its range, before anything is written. */
static void
CheckArgument(const char *name, int value, int max)
{
	if (value < 1 || value > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and %d", name, max),
				 errdetail("The value given was %d.", value),
				 errhint("Pass NULL to use the setting release_expired_orders.%s.",
						 name)));
}

/*
 * Settings for the statements of one transaction: the bounded wait for
 * product and round rows.  Undone by AtEOXact_GUC() before the transaction
 * ends, so that the caller's own setting is back when the CALL returns.
 */
static int
PushRunSettings(void)
{
	int			level = NewGUCNestLevel();
	char		buf[32];

	snprintf(buf, sizeof(buf), "%dms", reo_lock_timeout_ms);
	(void) set_config_option("lock_timeout", buf,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return level;
}

/*
 * Commit the current transaction's part of the run, when the CALL may
 * commit.  An async commit does not wait for the WAL flush: it is used for
 * the run row alone, which the next synchronous commit flushes with it.
 */
static void
CommitPart(ReoRun *run, int level, bool async)
{
	AtEOXact_GUC(true, level);
	if (run->atomic)
		return;
	if (async)
		(void) set_config_option("synchronous_commit", "off",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
								 true, 0, false);

	/*
	 * Ending and starting a transaction leaves a little garbage in the
	 * current memory context; the chunk context is reset before the next
	 * chunk, so a long run's memory does not grow with each commit.
	 */
	MemoryContextSwitchTo(run->chunk_cxt);
	SPI_commit();
#if PG_VERSION_NUM < 150000
	SPI_start_transaction();
#endif
	MemoryContextSwitchTo(run->cxt);
}

typedef struct ChunkStep
{
	ReoRun	   *run;
	int			wanted;
	int			found;
} ChunkStep;

static void
ChunkStepFn(void *arg)
{
	ChunkStep  *step = (ChunkStep *) arg;

	MemoryContextReset(step->run->chunk_cxt);
	MemoryContextSwitchTo(step->run->chunk_cxt);
	step->found = ReoReleaseChunk(step->run, step->wanted);
}

/*
 * A run that finished is "partial" when any order failed, even if none was
 * released: "failed" is kept for a run that errored as a whole, so that
 * one poison order does not read as a broken job (health() lists it).
 */
static const char *
RunOutcome(ReoRun *run)
{
	return run->failed > 0 ? "partial" : "success";
}

/*
 * Release chunks until batch_limit orders were taken or none are left, and
 * close the run.  Every chunk but the last is committed here; the last one,
 * with the run row's outcome, is committed by the caller with the CALL.
 */
static void
ReleaseAll(ReoRun *run)
{
	int			remaining = run->batch_limit;

	for (;;)
	{
		int			level = PushRunSettings();
		ChunkStep	step = {run, Min(remaining, run->chunk_size), 0};
		ErrorData  *edata = ReoInSubtransaction(ChunkStepFn, &step);

		if (edata != NULL)
		{
			/* The run fails as a whole: say so in its row, then raise. */
			ReoRunEnd(run, "failed", edata->message);
			ReoLockRun(run->run_id, false);
			run->run_id = -run->run_id;
			CommitPart(run, level, false);
			ReThrowError(edata);
		}
		remaining -= step.found;
		if (remaining == 0 || step.found < step.wanted)
		{
			ReoPurgeHistory();
			ReoRunEnd(run, RunOutcome(run), NULL);
			AtEOXact_GUC(true, level);
			return;
		}
		CommitPart(run, level, false);
	}
}

/* Build the INOUT summary as the one-column record a procedure returns. */
static Datum
SummaryResult(FunctionCallInfo fcinfo, const char *json)
{
	TupleDesc	tupdesc;
	Datum		value;
	bool		isnull = false;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type of release_expired_orders must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	value = DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
	return HeapTupleGetDatum(heap_form_tuple(tupdesc, &value, &isnull));
}

PG_FUNCTION_INFO_V1(release_expired_orders);

/*
 * CALL release_expired_orders(timeout_minutes, batch_limit, INOUT summary)
 */
Datum
release_expired_orders(PG_FUNCTION_ARGS)
{
	ReoRun		runbuf = {0};
	ReoRun	   *run = &runbuf;
	MemoryContext run_cxt;
	bool		atomic = true;
	int			level;
	char	   *json;
	char	   *message;
	int64		elapsed_ms;
	volatile bool locked = false;

	if (fcinfo->context && IsA(fcinfo->context, CallContext))
		atomic = castNode(CallContext, fcinfo->context)->atomic;

	CheckRejectedSettings();
	run->timeout_minutes = PG_ARGISNULL(0) ? reo_timeout_minutes : PG_GETARG_INT32(0);
	run->batch_limit = PG_ARGISNULL(1) ? reo_batch_limit : PG_GETARG_INT32(1);
	CheckArgument("timeout_minutes", run->timeout_minutes, TIMEOUT_MAX);
	CheckArgument("batch_limit", run->batch_limit, BATCH_MAX);
	run->chunk_size = reo_chunk_size;
	run->atomic = atomic;
	run->naive_time_zone = pstrdup(reo_naive_time_zone);
	run->started = GetCurrentTimestamp();

	if (RecoveryInProgress())
	{
		ereport(NOTICE,
				(errmsg("release_expired_orders skipped: the server is a standby"),
				 errdetail("A server in recovery cannot release orders."),
				 errhint("Run the job on the primary.")));
		json = ReoSummaryJson(run, "skipped",
							  "skipped: the server is in recovery", 0);
		PG_RETURN_DATUM(SummaryResult(fcinfo, json));
	}

	/* Every check that can refuse the run happens before any write. */
	ReoDiscoverSchema(&run->app, reo_write_notifications);

	/*
	 * The cutoff is fixed once, from the first transaction's now(): created_at
	 * without time zone is UTC wall-clock time (naive_time_zone), whatever the
	 * session's TimeZone.
	 */
	run->cutoff = GetCurrentTransactionStartTimestamp() -
		(TimestampTz) run->timeout_minutes * SECS_PER_MINUTE * USECS_PER_SEC;
	run->cutoff_value = run->app.orders_created_tz ?
		TimestampTzGetDatum(run->cutoff) :
		DirectFunctionCall2(timestamptz_zone,
							CStringGetTextDatum(run->naive_time_zone),
							TimestampTzGetDatum(run->cutoff));
	run->after_created = TimestampGetDatum(DT_NOBEGIN);

	if (SPI_connect_ext(atomic ? 0 : SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* SPI's procedure context survives the commits between chunks. */
	run_cxt = AllocSetContextCreate(CurrentMemoryContext,
									"release_expired_orders run",
									ALLOCSET_DEFAULT_SIZES);
	run->cxt = run_cxt;
	run->chunk_cxt = AllocSetContextCreate(run_cxt,
										   "release_expired_orders chunk",
										   ALLOCSET_DEFAULT_SIZES);
	run->naive_time_zone = MemoryContextStrdup(run_cxt, run->naive_time_zone);
	MemoryContextSwitchTo(run_cxt);
	initStringInfo(&run->errors);

	ReoUseSchema(&run->app);
	level = PushRunSettings();
	ReoRunBegin(run);
	locked = true;

	PG_TRY();
	{
		CommitPart(run, level, true);
		ReleaseAll(run);
		ReoLockRun(run->run_id, false);
		locked = false;
	}
	PG_CATCH();
	{
		if (locked && run->run_id > 0)
			ReoLockRun(run->run_id, false);
		PG_RE_THROW();
	}
	PG_END_TRY();

	elapsed_ms = (GetCurrentTimestamp() - run->started) / 1000;
	if (run->found == 0)
		message = pstrdup("no expired orders to release");
	else
		message = psprintf("released " INT64_FORMAT " of " INT64_FORMAT
						   " expired orders, " INT64_FORMAT " failed",
						   run->released, run->found, run->failed);
	json = ReoSummaryJson(run, RunOutcome(run), message, elapsed_ms);
	json = strcpy(SPI_palloc(strlen(json) + 1), json);	/* outlives SPI */

	SPI_finish();
	PG_RETURN_DATUM(SummaryResult(fcinfo, json));
}
