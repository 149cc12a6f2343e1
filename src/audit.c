/*-------------------------------------------------------------------------
 *
 * audit.c
 *	  The run history and the per-order audit trail.
 *
 * A run row is written when a run starts and closed when it ends; between
 * the two the run is marked alive (monitor.c), so that a run whose backend
 * died is recognisable as interrupted rather than "running" for ever.
 * Released orders are audited by the release statement itself (statements.c);
 * failures are audited here, one row each, after their writes were rolled
 * back.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datetime.h"

#include "release_expired_orders.h"

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

/* Insert the run row and mark the run alive; sets run->run_id. */
void
ReoRunBegin(ReoRun *run)
{
	Datum		values[7];
	bool		isnull;

	values[0] = TimestampTzGetDatum(run->started);
	values[1] = Int32GetDatum(run->timeout_minutes);
	values[2] = Int32GetDatum(run->batch_limit);
	values[3] = Int32GetDatum(run->chunk_size);
	values[4] = TimestampTzGetDatum(run->cutoff);
	values[5] = BoolGetDatum(run->atomic);
	values[6] = ObjectIdGetDatum(MyDatabaseId);
	if (ReoExecute(STMT_RUN_BEGIN, values, NULL) != 1)
		elog(ERROR, "inserting the run row returned no id");
	run->run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	ReoLockRun(run->run_id, true);
}

/* Add one chunk's counts to the run row, in the chunk's transaction. */
void
ReoRunProgress(ReoRun *run, int found, int released, int failed)
{
	Datum		values[4];

	values[0] = Int64GetDatum(run->run_id);
	values[1] = Int32GetDatum(found);
	values[2] = Int32GetDatum(released);
	values[3] = Int32GetDatum(failed);
	ReoExecute(STMT_RUN_PROGRESS, values, NULL);
}

/* Close the run row with its outcome; writes the batch notification. */
void
ReoRunEnd(ReoRun *run, const char *outcome, const char *error)
{
	Datum		values[6];
	char		nulls[6] = "      ";
	TimestampTz now = GetCurrentTimestamp();

	values[0] = Int64GetDatum(run->run_id);
	values[1] = CStringGetTextDatum(outcome);
	values[2] = error ? CStringGetTextDatum(error) : (Datum) 0;
	nulls[2] = error ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(now);
	values[4] = Float8GetDatum((double) (now - run->started) / 1000.0);
	values[5] = ReoNowValue(run, run->app.notifications_tz);
	ReoExecute(STMT_RUN_END, values, nulls);
}

static void
PurgeFn(void *arg)
{
	ReoExecute(STMT_PURGE, NULL, NULL);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Trim history older than release_expired_orders.history_retention, a
 * bounded amount per run.  A failure to purge must not cost the release
 * its chunk: it is rolled back on its own and reported as a warning.
 */
void
ReoPurgeHistory(void)
{
	ErrorData  *edata = ReoInSubtransaction(PurgeFn, NULL);

	if (edata == NULL)
		return;
	if (ReoRethrowable(edata))
		ReThrowError(edata);
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("release_expired_orders could not purge old history: %s",
					edata->message),
			 edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE ?
			 errhint("Grant EXECUTE on FUNCTION release_expired_orders.purge_history(interval) to the role that runs the job.") : 0));
}

/*
 * Audit one order whose release failed, and remember it for the summary.
 * order holds id, order_number, user_id, product_id, round_id, quantity.
 */
void
ReoRecordFailure(ReoRun *run, Datum *order, const char *nulls,
				 ErrorData *edata)
{
	Datum		values[10];
	char		n[10];
	const char *sqlstate = unpack_sql_state(edata->sqlerrcode);
	const char *message = edata->message ? edata->message : "unknown error";

	memcpy(values + 1, order, 6 * sizeof(Datum));
	memcpy(n + 1, nulls, 6);
	values[0] = Int64GetDatum(run->run_id);
	n[0] = ' ';
	values[7] = CStringGetTextDatum(sqlstate);
	n[7] = ' ';
	values[8] = CStringGetTextDatum(message);
	n[8] = ' ';
	values[9] = ReoNowValue(run, run->app.notifications_tz);
	n[9] = ' ';
	ReoExecute(STMT_RECORD_FAILURE, values, n);

	ReoListError(run, DatumGetCString(DirectFunctionCall1(uuid_out, order[0])),
				 TextDatumGetCString(order[1]),
				 psprintf("%s (SQLSTATE %s)", message, sqlstate));
}
