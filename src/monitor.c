/*-------------------------------------------------------------------------
 *
 * monitor.c
 *	  What operators watch while and after the job runs: the mark that a run
 *	  is alive, and the summary each call returns.
 *
 * A running run holds a session advisory lock keyed on its id.  It shows in
 * pg_locks for as long as the backend lives, and goes with it: health() and
 * the next run read it to tell a run still working from one whose backend
 * died.  The summary keeps the shape of the old serverless function's
 * response, so that the dashboards built on it keep working.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/json.h"

#include "release_expired_orders.h"

/* How many failed orders the returned summary lists at most. */
#define MAX_LISTED_ERRORS 100

/*
 * Take or drop the session advisory lock that tells pg_locks this run's
 * backend is alive.  It is keyed on the run id, so each run has its own.
 */
void
ReoLockRun(int64 run_id, bool lock)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) REO_RUN_LOCK_KEY,
						 (uint32) (run_id % UINT64CONST(4294967296)), 2);
	if (lock)
		(void) LockAcquire(&tag, ExclusiveLock, true, false);
	else
		(void) LockRelease(&tag, ExclusiveLock, true);
}

/*
 * Remember a failed order for the summary's "errors" list, which is capped
 * so that a run's memory does not grow with the number of failures.
 */
void
ReoListError(ReoRun *run, const char *order_id, const char *order_number,
			 const char *error)
{
	MemoryContext old;

	if (run->errors_listed >= MAX_LISTED_ERRORS)
		return;
	old = MemoryContextSwitchTo(run->cxt);
	if (run->errors_listed > 0)
		appendStringInfoChar(&run->errors, ',');
	appendStringInfoString(&run->errors, "{\"orderId\": ");
	escape_json(&run->errors, order_id);
	appendStringInfoString(&run->errors, ", \"orderNumber\": ");
	escape_json(&run->errors, order_number);
	appendStringInfoString(&run->errors, ", \"error\": ");
	escape_json(&run->errors, error);
	appendStringInfoChar(&run->errors, '}');
	run->errors_listed++;
	MemoryContextSwitchTo(old);
}

/*
 * The summary in the shape of the old serverless function's response, so
 * that existing dashboards keep working; "outcome" is new.
 */
char *
ReoSummaryJson(ReoRun *run, const char *outcome, const char *message,
			   int64 elapsed_ms)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"success\": %s, \"message\": ",
					 strcmp(outcome, "failed") == 0 ? "false" : "true");
	escape_json(&buf, message);
	appendStringInfo(&buf, ", \"summary\": {\"totalFound\": " INT64_FORMAT
					 ", \"processed\": " INT64_FORMAT
					 ", \"successful\": " INT64_FORMAT
					 ", \"failed\": " INT64_FORMAT
					 ", \"processingTimeMs\": " INT64_FORMAT
					 ", \"timestamp\": \"%s\", \"timeoutMinutes\": %d, \"runId\": ",
					 run->found, run->released + run->failed, run->released,
					 run->failed, elapsed_ms, ReoIsoUtc(run->started),
					 run->timeout_minutes);
	if (run->run_id > 0)
		appendStringInfo(&buf, INT64_FORMAT, run->run_id);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"outcome\": \"%s\"}, \"errors\": [%s]}",
					 outcome, run->errors.data ? run->errors.data : "");
	return buf.data;
}
