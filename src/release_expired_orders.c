/*-------------------------------------------------------------------------
 *
 * release_expired_orders.c
 *	  _PG_init and the SQL entry points, nothing else.
 *
 * CALL release_expired_orders(timeout_minutes, batch_limit, INOUT summary)
 * checks its arguments and the application's tables before it writes
 * anything, then hands over to job.c.  The small functions below expose
 * to SQL the candidate statement (preview) and the texts of the statements
 * (statements); sql_functions.c exposes the other rules the C code owns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/int.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "app_schema.h"
#include "ddl_guard.h"
#include "due.h"
#include "job.h"
#include "launcher.h"
#include "scheduler.h"
#include "settings.h"
#include "sql.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	/* First: ReoDefineSettings() reserves the prefix for defined names only. */
	ReoLauncherInit();
	ReoWorkerDefineSettings();
	if (process_shared_preload_libraries_in_progress)
		ReoDdlGuardInit();
	ReoDefineSettings();
}

/* Build the INOUT summary as the one-column record a procedure returns. */
static Datum
SummaryResult(FunctionCallInfo fcinfo, const ReoSummary *summary)
{
	TupleDesc	tupdesc;
	Datum		value;
	bool		isnull = false;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type of release_expired_orders must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	value = DirectFunctionCall1(jsonb_in, CStringGetDatum(ReoSummaryJson(summary)));
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

/*
 * CALL release_expired_orders(timeout_minutes, batch_limit, INOUT summary)
 */
static Datum
ReleaseExpiredOrders(FunctionCallInfo fcinfo)
{
	bool		atomic = true;
	int			timeout_minutes;
	int			batch_limit;
	ReoSummary	summary;

	if (fcinfo->context && IsA(fcinfo->context, CallContext))
		atomic = castNode(CallContext, fcinfo->context)->atomic;
	ArgumentsOrSettings(fcinfo, &timeout_minutes, &batch_limit);
	ReoReleaseJob(timeout_minutes, batch_limit, atomic, ReoScheduler(), &summary);
	PG_RETURN_DATUM(SummaryResult(fcinfo, &summary));
}

/*
 * The 1.1 procedure's symbol.  It differs from 1.0's so that a session
 * still running the 1.0 library after ALTER EXTENSION UPDATE gets "could
 * not find function" instead of a release that ignores payment windows.
 */
PG_FUNCTION_INFO_V1(reo_release_v1_1);

Datum
reo_release_v1_1(PG_FUNCTION_ARGS)
{
	return ReleaseExpiredOrders(fcinfo);
}

/*
 * 1.0's symbol: a database whose SQL objects are still 1.0 reaches the
 * version check (an error that says to run ALTER EXTENSION UPDATE).
 */
PG_FUNCTION_INFO_V1(release_expired_orders);

Datum
release_expired_orders(PG_FUNCTION_ARGS)
{
	return ReleaseExpiredOrders(fcinfo);
}

typedef struct PreviewState
{
	Tuplestorestate *store;
	TupleDesc	tupdesc;
	TimestampTz now;
} PreviewState;

static void
PreviewRow(const ReoDueOrder *order, void *arg)
{
	PreviewState *state = (PreviewState *) arg;
	Datum		values[10];
	bool		nulls[10] = {0};
	TimestampTz created;
	int64		diff;

	memcpy(values, order->values, sizeof(order->values));
	memcpy(nulls, order->nulls, sizeof(order->nulls));
	/* The age of an order whose created_at is infinite, or that far, is NULL. */
	created = DatumGetTimestampTz(values[6]);
	if (nulls[6] || TIMESTAMP_NOT_FINITE(created) ||
		pg_sub_s64_overflow(state->now, created, &diff))
		nulls[7] = true;
	else
		values[7] = DirectFunctionCall2(timestamp_mi, TimestampTzGetDatum(state->now), values[6]);
	values[8] = Int32GetDatum(order->window_minutes);
	values[9] = TimestampTzGetDatum(order->deadline);
	tuplestore_putvalues(state->store, state->tupdesc, values, nulls);
}

PG_FUNCTION_INFO_V1(reo_preview);

/*
 * preview(timeout_minutes, batch_limit): the orders the next call would
 * release, oldest deadline first, by the job's own candidate statement
 * without its locks; created_at as timestamptz, the age, the window that
 * applies and the deadline.
 */
Datum
reo_preview(PG_FUNCTION_ARGS)
{
	int			timeout_minutes;
	int			batch_limit;
	PreviewState state;

	ArgumentsOrSettings(fcinfo, &timeout_minutes, &batch_limit);
	state.now = GetCurrentTransactionStartTimestamp();
	InitMaterializedSRF(fcinfo, 0);
	state.store = ((ReturnSetInfo *) fcinfo->resultinfo)->setResult;
	state.tupdesc = ((ReturnSetInfo *) fcinfo->resultinfo)->setDesc;
	(void) ReoDueOrders(timeout_minutes, batch_limit, state.now, DT_NOBEGIN,
						state.now - (TimestampTz) reo_retry_backoff_s * USECS_PER_SEC,
						PreviewRow, &state);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(reo_statements);

/*
 * statements(): each statement the job runs in this database, as it runs
 * it against the application's tables as they are now, with the types of
 * its parameters, so that an operator can PREPARE and EXPLAIN it.
 */
Datum
reo_statements(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AppSchema	app;
	char	   *notifications_problem;

	InitMaterializedSRF(fcinfo, 0);
	ReoDiscoverSchema(&app, reo_app_schema, reo_write_notifications,
					  &notifications_problem);
	StmtUseSchema(&app);
	for (int stmt = 0; stmt < STMT_COUNT; stmt++)
	{
		const char *name;
		char	   *sql;
		int			nargs;
		Oid			argtypes[REO_MAX_ARGS];
		Datum		elems[REO_MAX_ARGS];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (!StmtRuns((ReoStatement) stmt))
			continue;
		sql = StmtText((ReoStatement) stmt, &name, &nargs, argtypes);
		for (int i = 0; i < nargs; i++)
			elems[i] = ObjectIdGetDatum(argtypes[i]);
		values[0] = CStringGetTextDatum(name);
		values[1] = CStringGetTextDatum(sql);
		values[2] = PointerGetDatum(construct_array(elems, nargs, REGTYPEOID,
													sizeof(Oid), true, TYPALIGN_INT));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
