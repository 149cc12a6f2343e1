/*-------------------------------------------------------------------------
 *
 * scheduler.c
 *	  What started a run of the procedure, from facts a session cannot
 *	  set: pg_cron, or a plain CALL.  (The deadline worker says so itself.)
 *
 * pg_cron runs a job in one of two ways.  With cron.use_background_workers
 * on, in a background worker it registers with library "pg_cron" and
 * entry point "CronBackgroundWorker": MyBgworkerEntry says so.  Otherwise
 * its launcher opens a libpq connection as the job's role and, once the
 * connection is up and before it sends the command, records the backend's
 * pid as job_pid of the run's row in cron.job_run_details (status
 * "sending", then "running"; end_time is set when the command returns).
 * Only pg_cron writes that table (PUBLIC may read and delete its own rows,
 * not insert or update them).  The table exists in pg_cron's database
 * (cron.database_name) only, and has rows only with cron.log_run on: a job
 * that pg_cron runs over libpq in another database
 * (cron.schedule_in_database), or with cron.log_run off, is recorded as a
 * CALL.
 *
 * application_name is only a filter: pg_cron's connections have
 * "pg_cron" (its fallback_application_name), and only a session that says
 * so pays for the look at cron.job_run_details.  It is never the proof.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "scheduler.h"

/*
 * Whether cron.job_run_details, pg_cron's own table in this database, has
 * a run in progress whose job_pid is this backend.
 */
static bool
CronRecordsThisBackend(void)
{
	Oid			cron = get_extension_oid("pg_cron", true);
	Oid			nsp;
	Oid			relid;
	Relation	rel;
	TupleDesc	desc;
	AttrNumber	pid_att;
	AttrNumber	status_att;
	AttrNumber	end_att;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	if (!OidIsValid(cron) || !OidIsValid(nsp = get_namespace_oid("cron", true)))
		return false;
	relid = get_relname_relid("job_run_details", nsp);
	if (!OidIsValid(relid) || getExtensionOfObject(RelationRelationId, relid) != cron)
		return false;
	pid_att = get_attnum(relid, "job_pid");
	status_att = get_attnum(relid, "status");
	end_att = get_attnum(relid, "end_time");
	if (pid_att == InvalidAttrNumber || status_att == InvalidAttrNumber ||
		end_att == InvalidAttrNumber)
		return false;

	rel = table_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	ScanKeyInit(&key, pid_att, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(MyProcPid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	while (!found && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		status = heap_getattr(tuple, status_att, desc, &isnull);
		char	   *s;

		if (isnull)
			continue;
		(void) heap_getattr(tuple, end_att, desc, &isnull);
		if (!isnull)
			continue;
		s = TextDatumGetCString(status);
		found = strcmp(s, "sending") == 0 || strcmp(s, "running") == 0;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* "pg_cron" when pg_cron runs this session's command, else "call". */
const char *
ReoScheduler(void)
{
	const char *app;

	if (MyBgworkerEntry != NULL)
		return strcmp(MyBgworkerEntry->bgw_library_name, "pg_cron") == 0 &&
			strcmp(MyBgworkerEntry->bgw_function_name, "CronBackgroundWorker") == 0 ?
			"pg_cron" : "call";
	app = GetConfigOption("application_name", true, false);
	if (app == NULL || strcmp(app, "pg_cron") != 0)
		return "call";
	return CronRecordsThisBackend() ? "pg_cron" : "call";
}
