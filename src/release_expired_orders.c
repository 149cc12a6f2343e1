/*-------------------------------------------------------------------------
 *
 * release_expired_orders.c
 *	  _PG_init and the SQL entry points, nothing else.
 *
 * CALL release_expired_orders(timeout_minutes, batch_limit, INOUT summary)
 * checks its arguments and the application's tables before it writes
 * anything, then hands over to run.c.  The small functions below expose
 * to SQL the candidate statement (preview); sql_functions.c exposes the
 * other rules the C code owns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "app_schema.h"
#include "run.h"
#include "settings.h"
#include "sql.h"
#include "summary.h"
#include "util.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	ReoDefineSettings();
}

/*
 * The library runs only against the SQL objects of its own version: after
 * make install of a new version, a database not yet upgraded gets a clear
 * error instead of statements that fail on a missing column.
 */
static void
CheckInstalledVersion(void)
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
	if (version != NULL && strcmp(version, REO_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("release_expired_orders %s is installed in database \"%s\", but the library is version %s",
						version, get_database_name(MyDatabaseId), REO_VERSION),
				 errhint("Run ALTER EXTENSION release_expired_orders UPDATE;")));
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

/* The arguments, or the settings for NULL, checked against their ranges. */
static void
ArgumentsOrSettings(FunctionCallInfo fcinfo, int *timeout_minutes, int *batch_limit)
{
	ReoCheckSettings();
	*timeout_minutes = PG_ARGISNULL(0) ? reo_timeout_minutes : PG_GETARG_INT32(0);
	*batch_limit = PG_ARGISNULL(1) ? reo_batch_limit : PG_GETARG_INT32(1);
	ReoCheckArgument("timeout_minutes", *timeout_minutes);
	ReoCheckArgument("batch_limit", *batch_limit);
}

/* The cutoff for created_at in its own convention. */
static int64
CutoffValue(TimestampTz cutoff, const AppSchema *app)
{
	return app->orders_created_tz ? cutoff : ReoWallClock(cutoff, reo_naive_time_zone);
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
	ReoSummary	summary = {0};
	char	   *notifications_problem;
	char	   *json;

	run->atomic = true;
	if (fcinfo->context && IsA(fcinfo->context, CallContext))
		run->atomic = castNode(CallContext, fcinfo->context)->atomic;
	CheckInstalledVersion();
	ArgumentsOrSettings(fcinfo, &run->timeout_minutes, &run->batch_limit);
	run->chunk_size = reo_chunk_size;
	run->retry_backoff_s = reo_retry_backoff_s;
	run->lock_timeout_ms = reo_lock_timeout_ms;
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
		PG_RETURN_DATUM(SummaryResult(fcinfo, ReoSummaryJson(&summary, NULL)));
	}

	/* Every check that can refuse the run happens before any write. */
	ReoDiscoverSchema(&run->app, reo_app_schema, reo_write_notifications,
					  &notifications_problem);
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
	 * session's TimeZone.
	 */
	run->cutoff = GetCurrentTransactionStartTimestamp() -
		(TimestampTz) run->timeout_minutes * SECS_PER_MINUTE * USECS_PER_SEC;
	run->cutoff_value = CutoffValue(run->cutoff, &run->app);
	run->after_created = DT_NOBEGIN;

	if (SPI_connect_ext(run->atomic ? 0 : SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* SPI's procedure context survives the commits between chunks. */
	run->cxt = AllocSetContextCreate(CurrentMemoryContext,
									 "release_expired_orders run",
									 ALLOCSET_DEFAULT_SIZES);
	run->chunk_cxt = AllocSetContextCreate(run->cxt,
										   "release_expired_orders chunk",
										   ALLOCSET_DEFAULT_SIZES);
	run->naive_time_zone = MemoryContextStrdup(run->cxt, reo_naive_time_zone);
	if (run->warnings)
		run->warnings = MemoryContextStrdup(run->cxt, run->warnings);
	MemoryContextSwitchTo(run->cxt);
	ReoInitErrorList(&run->errors, run->cxt);
	ReoUseSchema(&run->app);

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
	json = ReoSummaryJson(&summary, &run->errors);
	json = strcpy(SPI_palloc(strlen(json) + 1), json);	/* outlives SPI */

	SPI_finish();
	PG_RETURN_DATUM(SummaryResult(fcinfo, json));
}

/* A tuplestore for a set-returning function in materialize mode. */
static Tuplestorestate *
MaterializedResult(FunctionCallInfo fcinfo, TupleDesc *tupdesc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	Tuplestorestate *store;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	*tupdesc = CreateTupleDescCopy(*tupdesc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(old);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = *tupdesc;
	return store;
}

PG_FUNCTION_INFO_V1(reo_preview);

/*
 * preview(timeout_minutes, batch_limit): the orders the next call would
 * release, oldest first, by the job's own candidate statement without its
 * locks; created_at as timestamptz and the age.
 */
Datum
reo_preview(PG_FUNCTION_ARGS)
{
	int			timeout_minutes;
	int			batch_limit;
	AppSchema	app;
	char	   *notifications_problem;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	Datum		args[5];
	pg_uuid_t	nil = {{0}};
	SPITupleTable *tt;
	uint64		n;

	ArgumentsOrSettings(fcinfo, &timeout_minutes, &batch_limit);
	ReoDiscoverSchema(&app, reo_app_schema, false, &notifications_problem);
	store = MaterializedResult(fcinfo, &tupdesc);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	ReoUseSchema(&app);
	args[0] = TimestampGetDatum(CutoffValue(now - (TimestampTz) timeout_minutes *
											SECS_PER_MINUTE * USECS_PER_SEC, &app));
	args[1] = TimestampGetDatum(DT_NOBEGIN);
	args[2] = UUIDPGetDatum(&nil);
	args[3] = Int32GetDatum(batch_limit);
	args[4] = TimestampTzGetDatum(now - (TimestampTz) reo_retry_backoff_s * USECS_PER_SEC);
	n = ReoExecute(STMT_PREVIEW, args, NULL);
	tt = SPI_tuptable;
	for (uint64 i = 0; i < n; i++)
	{
		Datum		values[8];
		bool		nulls[8];
		TimestampTz created;

		for (int col = 0; col < 7; col++)
			values[col] = SPI_getbinval(tt->vals[i], tt->tupdesc, col + 1, &nulls[col]);
		created = DatumGetTimestampTz(values[6]);
		if (!app.orders_created_tz)
			created = ReoFromWallClock(created, reo_naive_time_zone);
		values[6] = TimestampTzGetDatum(created);
		values[7] = DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(now), values[6]);
		nulls[7] = false;
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
