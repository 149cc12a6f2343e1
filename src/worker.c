/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  A deadline worker: a background worker, started by the launcher for
 *	  one database, that sleeps until the earliest deadline of any pending
 *	  order, runs the job (the same run as a CALL: chunks, commits, audit,
 *	  run row with scheduler 'worker'), and sleeps again.
 *
 * It never sleeps longer than the shortest payment window (no order placed
 * after a look can be due sooner), nor than worker_poll_interval: an order
 * that becomes visible close to its deadline (committed long after its
 * created_at, imported, or from a clock behind the database's) is found by
 * the next poll, or at once when the application's orders table has the
 * wake trigger (late_orders.c).  It never releases early: a run takes only
 * orders whose deadline is before its transaction's start, and the sleep
 * is rounded up.  Between looks it holds no transaction and no snapshot.
 *
 * The role.  It connects as the role the launcher read for the database
 * (release_expired_orders.worker_role, or the database's owner), so that
 * session_user and current_user are that role for everything the job runs,
 * and the settings of the database and of the role apply as at a login.
 * From PostgreSQL 17 on a role without LOGIN can be connected as a
 * background worker; before 17 it cannot, and the worker connects as the
 * bootstrap superuser, becomes the role as SET SESSION AUTHORIZATION does
 * and applies the role's own settings itself (settings of the bootstrap
 * superuser that the role does not override then apply too).  The launcher
 * stops and starts it again when the role or a setting changes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "catalog/pg_db_role_setting.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "job.h"
#include "launcher.h"
#include "settings.h"
#include "worker.h"
#include "worker_state.h"
#include "worker_step.h"

#define RETRY_FIRST_MS 1000		/* first delay after a failure */
#define BUSY_RETRY_MS 1000		/* between looks while a lock is held */
#define RETRY_MAX_MS 60000

int			reo_worker_poll_ms = 1000;

static uint32 wait_event_info = PG_WAIT_EXTENSION;

/* Define the workers' own settings; from _PG_init(). */
void
ReoWorkerDefineSettings(void)
{
	DefineCustomIntVariable("release_expired_orders.worker_poll_interval",
							"Longest a deadline worker sleeps without looking for orders that became due; 0: as long as the deadlines allow.",
							"An order that becomes visible close to its deadline waits up to this long, unless the wake trigger is installed (add_wake_trigger()).",
							&reo_worker_poll_ms, 1000, 0, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* Milliseconds before retrying after a failed step, 0 after a good one. */
static int	retry_ms = 0;

/* Looks in a row that gave up on a lock another session holds. */
static int	busy_tries = 0;
static volatile bool busy = false;

/* The settings that applied when the worker connected. */
static uint32 settings_at_start;

/* Its database's name, for messages outside a transaction. */
static char *database_name = "";

/* The database's extension objects are 1.0's: no worker until updated. */
static bool old_objects = false;

/*
 * A hash of every pg_db_role_setting row that applies to the worker: in
 * its database for its role, for its role, in its database, and for all.
 * In a transaction.
 */
static uint32
SettingsFingerprint(void)
{
	Oid			role = GetSessionUserId();
	Relation	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	HeapTuple	tuple;
	uint32		h = 0;

	while ((tuple = systable_getnext(scan)) != NULL)
	{
		Form_pg_db_role_setting form = (Form_pg_db_role_setting) GETSTRUCT(tuple);
		bool		isnull;
		Datum		d;

		if ((form->setdatabase != MyDatabaseId && OidIsValid(form->setdatabase)) ||
			(form->setrole != role && OidIsValid(form->setrole)))
			continue;
		d = heap_getattr(tuple, Anum_pg_db_role_setting_setconfig,
						 RelationGetDescr(rel), &isnull);
		h = hash_combine(h, hash_bytes_uint32(form->setdatabase));
		h = hash_combine(h, hash_bytes_uint32(form->setrole));
		if (!isnull)
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(d);

			h = hash_combine(h, hash_bytes((const unsigned char *) VARDATA_ANY(v),
										   VARSIZE_ANY_EXHDR(v)));
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return h;
}

/*
 * Whether the worker should go on as it is; in a transaction.  It exits
 * when deadline_worker is off for its database, when its settings name
 * another role (it asks the launcher for it), and when a setting that
 * applies to it changed since it connected (it is started again with it).
 */
static ReoWorkerExit
StillWanted(void)
{
	const char *role;
	HeapTuple	tuple;

	/* first: this session's settings are those of its connection */
	if (SettingsFingerprint() != settings_at_start)
	{
		ereport(LOG,
				(errmsg("release_expired_orders deadline worker of database \"%s\" exits to apply changed settings",
						database_name)));
		return WORKER_EXIT_STOPPED;
	}
	if (!reo_deadline_worker)
		return WORKER_EXIT_DISABLED;
	role = reo_worker_role;
	if (role[0] == '\0')
	{
		tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
		role = GetUserNameFromId(((Form_pg_database) GETSTRUCT(tuple))->datdba, true);
		ReleaseSysCache(tuple);
		if (role == NULL)
			return WORKER_EXIT_STOPPED;
	}
	/* a role dropped under it: started again as what its settings name now */
	if (GetUserNameFromId(GetSessionUserId(), true) == NULL)
		return WORKER_EXIT_STOPPED;
	/* a role that does not exist is an error, retried, not another role */
	if (!OidIsValid(get_role_oid(role, true)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" that release_expired_orders.worker_role names does not exist", role),
				 errhint("Create the role, or set release_expired_orders.worker_role for the database to an existing role (empty: the database's owner).")));
	if (strcmp(role, GetUserNameFromId(GetSessionUserId(), false)) != 0)
	{
		ereport(LOG,
				(errmsg("release_expired_orders deadline worker of database \"%s\" exits to run as role \"%s\"",
						database_name, role)));
		ReoWorkerAskRole(role);
		return WORKER_EXIT_STOPPED;
	}
	return WORKER_EXIT_NONE;
}

/*
 * Run one step in its own transaction and leave no transaction or snapshot
 * behind.  Returns why the worker must exit instead (the extension is not
 * installed, or StillWanted() says so), or WORKER_EXIT_NONE.
 */
static ReoWorkerExit
StepInTransaction(ReoProgress *p, TimestampTz *wake, TimestampTz *deadline,
				  MemoryContext cxt)
{
	ReoWorkerExit exit;
	char	   *version;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	XactIsoLevel = XACT_READ_COMMITTED; /* before any snapshot, as job.c does */
	/* Not a transaction context: a run commits the transaction it starts in. */
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_RUNNING, "release_expired_orders: looking for the next deadline");
	version = ReoInstalledVersion();
	if (version == NULL)
		exit = WORKER_EXIT_NO_EXTENSION;
	else if (strcmp(version, "1.0") == 0)
	{
		/* 1.0 had no worker; its objects keep being served by CALL */
		ereport(LOG,
				(errmsg("release_expired_orders deadline worker: database \"%s\" has the extension's version 1.0, which has no deadline worker",
						get_database_name(MyDatabaseId)),
				 errhint("Run ALTER EXTENSION release_expired_orders UPDATE; in that database.")));
		exit = WORKER_EXIT_NO_EXTENSION;
		old_objects = true;
	}
	else
		exit = StillWanted();
	if (exit != WORKER_EXIT_NONE)
	{
		CommitTransactionCommand();
		return exit;
	}
	ReoCheckSettings();
	ReoCheckInstalledVersion();
	*wake = ReoWorkerStep(p, deadline);
	CommitTransactionCommand();
	return WORKER_EXIT_NONE;
}

/*
 * Sleep until wake (or, with poll, the poll interval, whichever comes
 * first), or until the latch is set; then note the wake.
 */
static void
SleepUntil(TimestampTz wake, TimestampTz deadline, int64 shortest, bool poll)
{
	TimestampTz now = GetCurrentTimestamp();

	if (poll && reo_worker_poll_ms > 0 && wake > now + (TimestampTz) reo_worker_poll_ms * 1000)
	{
		wake = now + (TimestampTz) reo_worker_poll_ms * 1000;
		deadline = DT_NOBEGIN;	/* a poll, not a deadline */
	}
	if (wake > now)
	{
		/* Rounded up: a wake for a deadline is never before it. */
		int64		ms = Min((wake - now + 999) / 1000, (int64) PG_INT32_MAX);
		int			rc;

		ReoWorkerStateSleeps(wake, shortest);
		pgstat_report_activity(STATE_IDLE, NULL);
		pgstat_report_stat(false);
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   (long) ms, wait_event_info);
		ResetLatch(MyLatch);
		if (rc & WL_LATCH_SET)
			deadline = DT_NOBEGIN;	/* woken early: no lag to report */
		ReoWorkerStateWoke(GetCurrentTimestamp(), deadline);
	}
	CHECK_FOR_INTERRUPTS();
}

#if PG_VERSION_NUM < 170000
/*
 * Apply the settings of one pg_db_role_setting row, as a login would,
 * except session_authorization and role: this session's authenticated
 * user is the bootstrap superuser, and a setting must not take the worker
 * back to it.
 */
static void
ApplyRoleSettings(Relation rel, Snapshot snapshot, Oid database, Oid role,
				  GucSource source)
{
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tuple;

	ScanKeyInit(&keys[0], Anum_pg_db_role_setting_setdatabase, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(database));
	ScanKeyInit(&keys[1], Anum_pg_db_role_setting_setrole, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(role));
	scan = systable_beginscan(rel, DbRoleSettingDatidRolidIndexId, true, snapshot, 2, keys);
	while ((tuple = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_db_role_setting_setconfig,
									 RelationGetDescr(rel), &isnull);
		Datum	   *elems;
		bool	   *nulls;
		Datum	   *keep;
		int			n;
		int			k = 0;

		if (isnull)
			continue;
		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &n);
		keep = palloc(sizeof(Datum) * Max(n, 1));
		for (int i = 0; i < n; i++)
		{
			char	   *s;

			if (nulls[i])
				continue;
			s = TextDatumGetCString(elems[i]);
			if (pg_strncasecmp(s, "session_authorization=", 22) == 0 ||
				pg_strncasecmp(s, "role=", 5) == 0)
				continue;
			keep[k++] = elems[i];
		}
		if (k > 0)
			ProcessGUCArray(construct_array(keep, k, TEXTOID, -1, false, TYPALIGN_INT),
							PGC_SUSET, source, GUC_ACTION_SET);
	}
	systable_endscan(scan);
}

/*
 * Become role, which cannot log in, as SET SESSION AUTHORIZATION does, and
 * apply its settings as a login would: for it in this database, then for
 * it anywhere.
 */
static void
BecomeRole(Oid role)
{
	Relation	rel;
	Snapshot	snapshot;

	StartTransactionCommand();
	SetSessionAuthorization(role, superuser_arg(role));
	rel = table_open(DbRoleSettingRelationId, AccessShareLock);
	snapshot = RegisterSnapshot(GetCatalogSnapshot(DbRoleSettingRelationId));
	ApplyRoleSettings(rel, snapshot, MyDatabaseId, role, PGC_S_DATABASE_USER);
	ApplyRoleSettings(rel, snapshot, InvalidOid, role, PGC_S_USER);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
}
#endif

/* Connect to the database as the role the launcher chose. */
static void
Connect(const ReoWorkerStart *start)
{
	if (!OidIsValid(start->role))
	{
		char	   *message = psprintf("role \"%s\" that release_expired_orders.worker_role names does not exist",
									   start->role_name);

		ReoWorkerStateError(message);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("%s", message),
				 errhint("Create the role, or set release_expired_orders.worker_role for the database to an existing role (empty: the database's owner).")));
	}
#if PG_VERSION_NUM >= 170000
	BackgroundWorkerInitializeConnectionByOid(start->database, start->role,
											  BGWORKER_BYPASS_ROLELOGINCHECK);
#else
	if (start->login)
		BackgroundWorkerInitializeConnectionByOid(start->database, start->role, 0);
	else
	{
		BackgroundWorkerInitializeConnectionByOid(start->database, InvalidOid, 0);
		BecomeRole(start->role);
	}
#endif
}

/*
 * A worker's entry point.  A step that fails is logged, rolled back and
 * retried after a delay that doubles from RETRY_FIRST_MS to RETRY_MAX_MS;
 * a reload or wake_worker() cuts the delay short.  It exits when the
 * launcher or a database command asks it to, and when the extension is
 * not (or no longer) installed.
 */
void
reo_worker_main(Datum arg)
{
	ReoWorkerStart start;
	MemoryContext cxt;
	ReoProgress progress = {0};

	memcpy(&start, MyBgworkerEntry->bgw_extra, sizeof(start));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	if (!ReoWorkerAttach(start.slot, start.database))
		proc_exit(0);
	Connect(&start);
	pgstat_report_appname("release_expired_orders worker");
#if PG_VERSION_NUM >= 170000
	wait_event_info = WaitEventExtensionNew("ReleaseExpiredOrdersDeadline");
#endif
	ReoWorkerStateRole(start.role_name);
	StartTransactionCommand();
	settings_at_start = SettingsFingerprint();
	database_name = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();
	ereport(DEBUG1,
			(errmsg_internal("release_expired_orders deadline worker serves database \"%s\" as role \"%s\"",
							 database_name, start.role_name)));

	cxt = AllocSetContextCreate(TopMemoryContext, "release_expired_orders worker",
								ALLOCSET_DEFAULT_SIZES);
	/* A non-atomic SPI connection lives in PortalContext, as in a CALL. */
	PortalContext = cxt;
	ResetLatch(MyLatch);		/* the first step looks anyway */
	for (;;)
	{
		TimestampTz wake = 0;
		TimestampTz deadline = DT_NOBEGIN;
		ReoWorkerExit exit = WORKER_EXIT_NONE;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			retry_ms = 0;		/* a reload may have fixed the failure */
		}
		if (ReoWorkerStopAsked())
		{
			ReoWorkerSetExit(WORKER_EXIT_STOPPED);
			proc_exit(0);
		}
		busy = false;
		PG_TRY();
		{
			exit = StepInTransaction(&progress, &wake, &deadline, cxt);
			retry_ms = 0;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			HOLD_INTERRUPTS();
			MemoryContextSwitchTo(TopMemoryContext);
			edata = CopyErrorData();
			busy = edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
			if (!busy)
				EmitErrorReport();
			AbortCurrentTransaction();
			FlushErrorState();
			pgstat_report_activity(STATE_IDLE, NULL);
			RESUME_INTERRUPTS();
			if (busy)
			{
				/*
				 * A lock another session holds (the look gives up soon, see
				 * worker_step.c): not a failure.  Said once in the log, then
				 * at DEBUG1 while it lasts; looked for again every
				 * BUSY_RETRY_MS.
				 */
				ereport(busy_tries++ == 0 ? LOG : DEBUG1,
						(errmsg("release_expired_orders deadline worker of database \"%s\" waits for a lock another session holds, and looks again every %d ms: %s",
								database_name, BUSY_RETRY_MS, edata->message)));
				wake = GetCurrentTimestamp() + (TimestampTz) BUSY_RETRY_MS * 1000;
			}
			else
			{
				ReoWorkerStateError(edata->message);
				retry_ms = retry_ms ? Min(retry_ms * 2, RETRY_MAX_MS) : RETRY_FIRST_MS;
				ereport(LOG,
						(errmsg("release_expired_orders deadline worker of database \"%s\" tries again in %d ms: %s",
								database_name, retry_ms, edata->message)));
				wake = GetCurrentTimestamp() + (TimestampTz) retry_ms * 1000;
			}
			FreeErrorData(edata);
			progress.just_ran = false;
			progress.shortest = 0;
		}
		PG_END_TRY();
		if (!busy)
			busy_tries = 0;
		if (exit != WORKER_EXIT_NONE)
		{
			if (exit == WORKER_EXIT_NO_EXTENSION && !old_objects)
				ereport(LOG,
						(errmsg("release_expired_orders deadline worker: database \"%s\" does not have the extension, and is not served until CREATE EXTENSION",
								database_name)));
			ReoWorkerSetExit(exit);
			proc_exit(0);
		}
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(cxt);
		/* after a failure, the retry's delay; no poll cuts it short */
		SleepUntil(wake, deadline, progress.shortest, retry_ms == 0 && !busy);
	}
}
