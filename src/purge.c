/*-------------------------------------------------------------------------
 *
 * purge.c
 *	  The job's own trim of its history: purge_history() when there may be
 *	  something to delete, and never at the cost of the release.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/timestamp.h"

#include "purge.h"
#include "settings.h"
#include "sql.h"
#include "util.h"

/*
 * History kept this much longer than the retention (at most an hour) is
 * purged in one go: with a job every minute, one run in sixty pays for
 * purge_history(), the others for two index probes.
 */
#define PURGE_SLACK(retention) Min(USECS_PER_HOUR, (retention) / 24)

/*
 * Whether purge_history() may have anything to delete, by the retention it
 * uses itself.  pg_cron's run details of the job age with its run rows, so
 * they are trimmed with them.  A role that may not execute purge_history()
 * is let through, to get the warning that says so.
 */
static bool
PurgeDue(void)
{
	Oid			argtypes[] = {INTERVALOID};
	Oid			fn = LookupFuncName(list_make2(makeString(REO_SCHEMA),
											   makeString("purge_history")),
									1, argtypes, true);
	TimestampTz retention = (TimestampTz) reo_history_retention_min * SECS_PER_MINUTE * USECS_PER_SEC;
	Datum		horizon;
	bool		isnull;
	bool		due;

#if PG_VERSION_NUM >= 160000
	if (!OidIsValid(fn) || object_aclcheck(ProcedureRelationId, fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
#else
	if (!OidIsValid(fn) || pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
#endif
		return true;
	if (reo_purge_limit <= 0)
		return false;
	horizon = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp() -
								  retention - PURGE_SLACK(retention));
	if (ReoExecute(STMT_PURGE_DUE, &horizon, NULL) != 1)
		elog(ERROR, "asking whether history is due for a purge returned no row");
	due = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return due;
}

static void
PurgeFn(void *arg)
{
	if (!PurgeDue())
		return;
	ReoExecute(STMT_PURGE, NULL, NULL);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Trim history older than release_expired_orders.history_retention, a
 * bounded amount per run.  A failure to purge must not cost the release
 * anything: it is rolled back on its own and reported as a warning.
 */
void
ReoPurgeHistory(void)
{
	ErrorData  *edata = ReoInSubtransaction(PurgeFn, NULL);

	if (edata == NULL)
		return;
	if (ReoErrorIsFatal(edata))
		ReThrowError(edata);
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("release_expired_orders could not purge old history: %s",
					edata->message),
			 edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE ?
			 errhint("Grant EXECUTE on FUNCTION release_expired_orders.purge_history(interval) to the role that runs the job.") : 0));
}
