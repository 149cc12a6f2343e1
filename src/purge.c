/*-------------------------------------------------------------------------
 *
 * purge.c
 *	  purge_history(), and the job's own trim of its history: a call of it
 *	  when there may be something to delete, and never at the cost of the
 *	  release.
 *
 * purge_history() runs as its caller and decides by its caller's current
 * user (GetUserId(): the role after SET ROLE, the owner of a SECURITY
 * DEFINER function that calls it, the deadline worker's role), never by
 * the session's login: a caller that is not a member of the extension's
 * owner (superusers are) may delete nothing newer than the configured
 * retention.  The limit is the exact timestamp it deletes up to, now()
 * less older_than, against now() less the retention, so an interval whose
 * units compare one way and subtract another ('-120 mons 3630 days')
 * cannot widen it.  The deletes then run as the extension's owner, who
 * owns the history, and the caller's user is back in every path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "purge.h"
#include "restore.h"
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
 * is let through, to get the warning that says so.  Without probe (1.0's
 * objects, whose job role may not read order_events), purge_history()
 * decides alone, as the 1.0 library let it.
 */
static bool
PurgeDue(bool probe)
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
	if (!probe)
		return true;
	horizon = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp() -
								  retention - PURGE_SLACK(retention));
	if (StmtExecute(STMT_PURGE_DUE, &horizon, NULL) != 1)
		elog(ERROR, "asking whether history is due for a purge returned no row");
	due = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return due;
}

static void
PurgeFn(void *arg)
{
	if (!PurgeDue(*(bool *) arg))
		return;
	StmtExecute(STMT_PURGE, NULL, NULL);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Trim history older than release_expired_orders.history_retention, a
 * bounded amount per run; probe: ask first whether anything is old enough.  A failure to purge must not cost the release
 * anything: it is rolled back on its own and reported as a warning.
 */
void
ReoPurgeHistory(bool probe)
{
	ErrorData  *edata = ReoInSubtransaction(PurgeFn, &probe);

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

/* Run one statement of the purge; returns the rows it deleted. */
static int64
PurgeStatement(const char *sql, TimestampTz horizon, int64 limit)
{
	Oid			types[2] = {TIMESTAMPTZOID, INT8OID};
	Datum		values[2] = {TimestampTzGetDatum(horizon), Int64GetDatum(limit)};
	int			rc = SPI_execute_with_args(sql, 2, types, values, NULL, false, 0);

	if (rc != SPI_OK_DELETE && rc != SPI_OK_SELECT)
		elog(ERROR, "purging history failed: %s", SPI_result_code_string(rc));
	return (int64) SPI_processed;
}

/*
 * The deletes, as the extension's owner: at most limit rows of each table,
 * oldest first, older than horizon.  A run still running stays.  Audit rows
 * are appended in time order: when the oldest is recent there is nothing to
 * do, and a scan for old rows would read them all.  pg_cron keeps a row per
 * run of every job for ever: this job's go with the history (the job's by
 * name, and earlier jobs' that called the procedure in this database, since
 * a job unscheduled and scheduled again gets a new id).  The pattern is an
 * escape string literal, read the same whatever standard_conforming_strings
 * says.
 */
static int64
PurgeAsOwner(TimestampTz horizon, int64 limit)
{
	int64		total = 0;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	total += PurgeStatement(
		"DELETE FROM " REO_SCHEMA ".runs r WHERE r.id IN ("
		" SELECT o.id FROM " REO_SCHEMA ".runs o"
		" WHERE o.started_at < $1 AND o.outcome <> 'running'"
		" ORDER BY o.started_at, o.id LIMIT $2)", horizon, limit);
	total += PurgeStatement(
		"DELETE FROM " REO_SCHEMA ".order_events e WHERE e.id IN ("
		" SELECT o.id FROM " REO_SCHEMA ".order_events o"
		" WHERE o.created_at < $1"
		" AND (SELECT f.created_at FROM " REO_SCHEMA ".order_events f ORDER BY f.id LIMIT 1) < $1"
		" ORDER BY o.id LIMIT $2)", horizon, limit);
	if (OidIsValid(get_extension_oid("pg_cron", true)))
		total += PurgeStatement(
			"DELETE FROM cron.job_run_details d WHERE d.runid IN ("
			" SELECT o.runid FROM cron.job_run_details o"
			" WHERE o.end_time < $1 AND o.database = current_database()"
			" AND (o.jobid IN (SELECT j.jobid FROM cron.job j"
			"                  WHERE j.jobname = " REO_SCHEMA ".job_name())"
			"      OR o.command ~* E'^\\\\s*CALL\\\\s+(\"?[^\"]+\"?\\\\.)?release_expired_orders\\\\s*\\\\(')"
			" ORDER BY o.runid LIMIT $2)", horizon, limit);
	SPI_finish();
	return total;
}

PG_FUNCTION_INFO_V1(reo_purge_history);

/*
 * purge_history(older_than interval DEFAULT NULL): delete run, audit and
 * pg_cron history older than older_than (NULL: history_retention), at most
 * purge_limit rows per table; returns how many rows it deleted.  Its
 * search_path is pinned by its definition.
 */
Datum
reo_purge_history(PG_FUNCTION_ARGS)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz allowed;
	TimestampTz horizon;
	Interval   *older_than;
	Interval	zero = {0};
	Oid			owner;
	Oid			save_user;
	int			save_sec;
	int64		total = 0;

	ReoCheckSettings();
	allowed = now - (TimestampTz) reo_history_retention_min * USECS_PER_MINUTE;
	if (PG_ARGISNULL(0))
	{
		older_than = palloc0(sizeof(Interval));
		older_than->time = (TimestampTz) reo_history_retention_min * USECS_PER_MINUTE;
	}
	else
		older_than = PG_GETARG_INTERVAL_P(0);
	horizon = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_mi_interval,
													  TimestampTzGetDatum(now),
													  IntervalPGetDatum(older_than)));
	if (horizon > now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(older_than),
												   IntervalPGetDatum(&zero))) < 0 ?
				 errdetail("The value given was %s.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(older_than)))) :
				 errdetail("The value given was %s, which compares as positive, but now() less it is in the future.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(older_than)))),
				 errhint("Pass NULL to use the setting release_expired_orders.history_retention.")));

	owner = ReoExtensionOwner();
	/* Only a superuser may set history_retention: this is the configured one. */
	if (horizon > allowed && !is_member_of_role(GetUserId(), owner))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be shorter than the configured release_expired_orders.history_retention (%d min)",
						reo_history_retention_min),
				 errdetail("older_than is %s; only the owner of the extension or a superuser may purge newer history, and role %s is neither.",
						   DatumGetCString(DirectFunctionCall1(interval_out,
															   IntervalPGetDatum(older_than))),
						   quote_identifier(GetUserNameFromId(GetUserId(), false))),
				 errhint("Pass NULL, or a longer older_than; to keep less history, set release_expired_orders.history_retention in postgresql.conf or with ALTER DATABASE or ALTER ROLE ... SET, or purge as the owner of the extension.")));
	if (reo_purge_limit <= 0)
		PG_RETURN_INT64(0);

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		total = PurgeAsOwner(horizon, reo_purge_limit);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	PG_RETURN_INT64(total);
}
