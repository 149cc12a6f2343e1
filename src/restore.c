/*-------------------------------------------------------------------------
 *
 * restore.c
 *	  Whether a backend is alive (a run's, a restore's), and whether a
 *	  restore of pg_dump output into this database is in progress: while
 *	  one is, nothing is released here.
 *
 * A restore creates the extension early and loads the application's data
 * table by table afterwards, the extension's history last.  A release in
 * between would find orders whose products are not loaded yet (audited
 * product_not_found, stock never given back), and its run row would take
 * an id that the history being restored holds.  So the install script,
 * when it sees a restore (row_security off, or application_name
 * pg_restore), records the backend that runs it in the table restores,
 * which pg_dump does not dump, and every run, by CALL, pg_cron or the
 * deadline worker, first asks whether that restore is still going on:
 *
 * - while that backend is alive (pid and start time, as for a run): psql
 *   of a plain dump, pg_restore, each --single-transaction;
 * - or while a backend of the same login role that started after it, and
 *   whose application_name is pg_restore, is connected to this database:
 *   the connections of a parallel pg_restore (-j), whose leader leaves
 *   its first connection before the data is loaded.  Only a role that
 *   restored the extension can hold releases up this way;
 * - or while the history's identity sequence still has the mark the install
 *   script put on it: the dump sets the sequence in its data section, so
 *   the mark bridges the moment between the first connection of a parallel
 *   pg_restore and the others, when none is connected.  A restore that
 *   never loads the data (a schema-only dump, one abandoned halfway) or a
 *   CREATE EXTENSION taken for a restore leaves the mark: restore_finished()
 *   removes it, with the record.
 *
 * A database that has the objects of 1.1 has no such table: the answer is
 * no, as 1.1 would have released.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "commands/sequence.h"
#include "utils/timestamp.h"

#include "restore.h"
#include "util.h"

/* The backends of the server, by position; 16 renamed the lookup. */
static PgBackendStatus *
Backend(int i)
{
#if PG_VERSION_NUM >= 160000
	LocalPgBackendStatus *local = pgstat_get_local_beentry_by_index(i);
#else
	LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
#endif

	return local == NULL ? NULL : &local->backendStatus;
}

/*
 * Whether the backend with this pid and start time still exists.  The pid
 * alone could have been reused; the pair cannot, and no other session can
 * hold or fake it.
 */
bool
ReoBackendIsAlive(int pid, TimestampTz started)
{
	int			n = pgstat_fetch_stat_numbackends();

	for (int i = 1; i <= n; i++)
	{
		PgBackendStatus *b = Backend(i);

		if (b != NULL && b->st_procpid == pid && b->st_proc_start_timestamp == started)
			return true;
	}
	return false;
}

/*
 * A connection of pg_restore by role to this database that started at or
 * after since: the other connections of a parallel restore.  Returns its
 * pid, or 0.
 */
static int
LaterRestoreConnection(Oid role, TimestampTz since)
{
	int			n = pgstat_fetch_stat_numbackends();

	for (int i = 1; i <= n; i++)
	{
		PgBackendStatus *b = Backend(i);

		if (b != NULL && b->st_procpid != MyProcPid &&
			b->st_backendType == B_BACKEND && b->st_databaseid == MyDatabaseId &&
			b->st_userid == role && b->st_proc_start_timestamp >= since &&
			b->st_appname != NULL && strcmp(b->st_appname, "pg_restore") == 0)
			return b->st_procpid;
	}
	return 0;
}

/* The owner of the extension. */
Oid
ReoExtensionOwner(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			owner;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("release_expired_orders"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (!HeapTupleIsValid(tuple))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"release_expired_orders\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION release_expired_orders;")));
	owner = ((Form_pg_extension) GETSTRUCT(tuple))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return owner;
}

/*
 * Whether runs_id_seq still has the restore's mark, read as the owner of
 * the extension (the job's role need not read the sequence).
 */
static bool
HistoryMarked(Oid nsp)
{
	Oid			seq = get_relname_relid("runs_id_seq", nsp);
	Oid			save_user;
	int			save_sec;
	Datum		last = (Datum) 0;
	bool		isnull = true;

	if (!OidIsValid(seq))
		return false;
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(ReoExtensionOwner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		LOCAL_FCINFO(fcinfo, 1);

		InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
		fcinfo->args[0].value = ObjectIdGetDatum(seq);
		fcinfo->args[0].isnull = false;
		last = pg_sequence_last_value(fcinfo);
		isnull = fcinfo->isnull;
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	return !isnull && DatumGetInt64(last) == REO_RESTORE_MARK;
}

/*
 * The pid of a backend restoring pg_dump output into this database, or 0.
 * Read from the table directly, without a snapshot of the caller's and
 * whatever the caller's privileges: the rows are the extension's own.
 */
int
ReoRestoringBackend(void)
{
	Oid			nsp = get_namespace_oid(REO_SCHEMA, true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid("restores", nsp) : InvalidOid;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	int			found = 0;

	if (!OidIsValid(relid))
		return 0;				/* the objects of 1.1 */
	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (found == 0 && HeapTupleIsValid(tuple = systable_getnext(scan)))
	{
		bool		isnull[3];
		Datum		pid = heap_getattr(tuple, 1, RelationGetDescr(rel), &isnull[0]);
		Datum		started = heap_getattr(tuple, 2, RelationGetDescr(rel), &isnull[1]);
		Datum		role = heap_getattr(tuple, 3, RelationGetDescr(rel), &isnull[2]);

		if (isnull[0] || isnull[1] || isnull[2])
			continue;
		if (ReoBackendIsAlive(DatumGetInt32(pid), DatumGetTimestampTz(started)))
			found = DatumGetInt32(pid);
		else if ((found = LaterRestoreConnection(DatumGetObjectId(role),
												 DatumGetTimestampTz(started))) == 0 &&
				 HistoryMarked(nsp))
			found = DatumGetInt32(pid);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * For a run about to start: NULL when no restore is in progress; else, after
 * a NOTICE that says so, the message of the skipped run's summary.
 */
const char *
ReoRestoreSkipsRun(void)
{
	int			pid = ReoRestoringBackend();

	if (pid == 0)
		return NULL;
	ereport(NOTICE,
			(errmsg("release_expired_orders skipped: a restore into database \"%s\" is in progress",
					get_database_name(MyDatabaseId)),
			 errdetail("Backend %d is restoring pg_dump output, or began to; until the restore has loaded the data, a release would find orders without their products and write ids the restored history holds.",
					   pid),
			 errhint("Releases resume by themselves once the restore ends; if this was not a restore, or it was abandoned, run SELECT release_expired_orders.restore_finished(); as the owner of the extension.")));
	return "skipped: a restore into this database is in progress";
}

PG_FUNCTION_INFO_V1(reo_restoring_backend);

/*
 * restoring_backend(): the pid of a backend restoring pg_dump output into
 * this database, or NULL; while there is one, nothing is released.
 */
Datum
reo_restoring_backend(PG_FUNCTION_ARGS)
{
	int			pid = ReoRestoringBackend();

	if (pid == 0)
		PG_RETURN_NULL();
	PG_RETURN_INT32(pid);
}
