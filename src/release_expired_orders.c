/*-------------------------------------------------------------------------
 *
 * release_expired_orders.c
 *	  _PG_init and the SQL entry points, nothing else.
 *
 * CALL release_expired_orders(timeout_minutes, batch_limit, INOUT summary)
 * checks its arguments and the application's tables before it writes
 * anything, then hands over to run.c.  The small functions below expose
 * to SQL the rules the C code owns, so that the PL/pgSQL side of the
 * extension never writes them again: what a candidate is (preview), whether
 * a run is alive, the settings and argument ranges, the column conventions,
 * the row-level security rule and the notifications rule.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
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

PG_FUNCTION_INFO_V1(reo_run_is_alive);

/*
 * run_is_alive(backend_pid, backend_start): whether the backend that
 * started a run still exists.  The pid alone could have been reused; the
 * pair cannot, and no other session can hold or fake it.
 */
Datum
reo_run_is_alive(PG_FUNCTION_ARGS)
{
	int			pid = PG_GETARG_INT32(0);
	TimestampTz started = PG_GETARG_TIMESTAMPTZ(1);
	int			n = pgstat_fetch_stat_numbackends();

	for (int i = 1; i <= n; i++)
	{
		/* 16 renamed the lookup by position; 15 and 14 have the old name. */
#if PG_VERSION_NUM >= 160000
		LocalPgBackendStatus *local = pgstat_get_local_beentry_by_index(i);
#else
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
#endif

		if (local != NULL && local->backendStatus.st_procpid == pid &&
			local->backendStatus.st_proc_start_timestamp == started)
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}

PG_FUNCTION_INFO_V1(reo_setting);

/* setting(name): release_expired_orders.NAME, integers in their base unit. */
Datum
reo_setting(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(ReoSettingValue(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

PG_FUNCTION_INFO_V1(reo_check_argument);

/* check_argument(name, value): the procedure's own argument check. */
Datum
reo_check_argument(PG_FUNCTION_ARGS)
{
	const char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be null here", name),
				 errhint("Pass NULL to the procedure itself to use the setting release_expired_orders.%s.",
						 name)));
	ReoCheckArgument(name, PG_GETARG_INT32(1));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(reo_app_column_is_tz);

/* app_column_is_tz(schema, table, column), by the release's column rule. */
Datum
reo_app_column_is_tz(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(ReoColumnIsTz(text_to_cstring(PG_GETARG_TEXT_PP(0)),
								 text_to_cstring(PG_GETARG_TEXT_PP(1)),
								 text_to_cstring(PG_GETARG_TEXT_PP(2))));
}

PG_FUNCTION_INFO_V1(reo_wall_clock);

/* wall_clock(t, zone): t as wall-clock time in zone, by its full rules. */
Datum
reo_wall_clock(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMP(ReoWallClock(PG_GETARG_TIMESTAMPTZ(0),
									 text_to_cstring(PG_GETARG_TEXT_PP(1))));
}

PG_FUNCTION_INFO_V1(reo_row_security_problem);

/*
 * row_security_problem(role): the application's tables on which
 * row-level security applies to role, or NULL.
 */
Datum
reo_row_security_problem(PG_FUNCTION_ARGS)
{
	char	   *problem;

	ReoCheckSettings();
	problem = ReoRowSecurityProblem(reo_app_schema,
									get_role_oid(NameStr(*PG_GETARG_NAME(0)), false));
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

PG_FUNCTION_INFO_V1(reo_notifications_problem);

/*
 * notifications_problem(): why the job would skip the application's
 * notifications, or NULL when it writes them (or there is no such table).
 */
Datum
reo_notifications_problem(PG_FUNCTION_ARGS)
{
	AppSchema	app;
	char	   *problem;

	ReoCheckSettings();
	if (!reo_write_notifications)
		PG_RETURN_NULL();
	ReoDiscoverSchema(&app, reo_app_schema, true, &problem);
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

PG_FUNCTION_INFO_V1(reo_audit_guard);

/*
 * Trigger on release_expired_orders.order_events: restore_order() trusts
 * the released rows and their deltas to move stock, so they are written only
 * by the extension's own statements.  Anyone with INSERT may add a restored
 * row (restore_order() runs as its caller); the table's owner and
 * superusers (pg_restore, purge_history()) may do anything.
 */
Datum
reo_audit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	bool		owner;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "audit_guard() must be called as a trigger");
	rel = trigdata->tg_relation;
	/* 16 replaced the per-class owner checks with object_ownercheck(). */
#if PG_VERSION_NUM >= 160000
	owner = object_ownercheck(RelationRelationId, RelationGetRelid(rel), GetUserId());
#else
	owner = pg_class_ownercheck(RelationGetRelid(rel), GetUserId());
#endif
	if (!ReoInOwnStatement() && !owner && !superuser())
	{
		bool		restored = false;

		if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) &&
			TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		{
			int			attnum = SPI_fnumber(RelationGetDescr(rel), "outcome");
			bool		isnull;
			Datum		outcome = heap_getattr(trigdata->tg_trigtuple, attnum,
											   RelationGetDescr(rel), &isnull);

			restored = !isnull &&
				strcmp(TextDatumGetCString(outcome), "restored") == 0;
		}
		if (!restored)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("only release_expired_orders writes its audit rows in \"%s\"",
							RelationGetRelationName(rel)),
					 errdetail("restore_order() trusts these rows to move stock and shares."),
					 errhint("Let the job and restore_order() write them; the owner of the table may correct history by hand.")));
	}
	if (!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		return PointerGetDatum(NULL);
	return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
						   trigdata->tg_newtuple : trigdata->tg_trigtuple);
}
