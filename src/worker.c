/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The deadline worker: a background worker that sleeps until the
 *	  earliest deadline of any pending order, runs the job (the same run as
 *	  a CALL: chunks, commits, audit, run row with scheduler 'worker'), and
 *	  sleeps again.
 *
 * It is registered at postmaster start when the library is in
 * shared_preload_libraries and release_expired_orders.worker_database is
 * set; it starts once recovery is over (a standby runs none, a promoted
 * one starts it) and the postmaster restarts it RESTART_SECONDS after it
 * exits with an error (a crash, pg_terminate_backend, a database that does
 * not exist).  It never sleeps longer than the shortest payment window: no
 * order placed after a look can be due sooner.  It never releases early:
 * a run takes only orders whose deadline is before its transaction's
 * start, and the sleep is rounded up.  Between looks it holds no
 * transaction and no snapshot.
 *
 * The role.  The worker connects as the bootstrap superuser and, for each
 * look and run, becomes release_expired_orders.worker_role (empty: the
 * database's owner, read at each look) as SET SESSION AUTHORIZATION does:
 * session_user and current_user are that role for everything the job
 * runs, across the run's commits, with no security context that a commit
 * would have to carry.  This works the same on PostgreSQL 15, 17 and 18,
 * for a role that cannot log in (often the owner of a database), and lets
 * a reload change the role without a reconnect.  Connecting as the role
 * instead (BackgroundWorkerInitializeConnection(db, role)) would refuse a
 * NOLOGIN role on 15 (17 added BGWORKER_BYPASS_ROLELOGINCHECK) and could
 * not learn the owner before connecting.  What it does not give: the
 * role's own ALTER ROLE ... SET settings do not apply (the database's and
 * postgresql.conf's do).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "job.h"
#include "settings.h"
#include "worker.h"
#include "worker_state.h"
#include "worker_step.h"

#define RESTART_SECONDS 5
#define RETRY_FIRST_MS 1000		/* first delay after a failure */
#define RETRY_MAX_MS 60000

char	   *reo_worker_database = NULL;
char	   *reo_worker_role = NULL;

static uint32 wait_event_info = PG_WAIT_EXTENSION;

/*
 * Define the worker's settings and, when preloading with a database set,
 * register the worker.  Called from _PG_init() before ReoDefineSettings(),
 * which reserves the prefix and drops undefined placeholders.
 */
void
ReoWorkerInit(void)
{
	BackgroundWorker worker;

	DefineCustomStringVariable("release_expired_orders.worker_database",
							   "Database the deadline worker serves; empty: no worker.",
							   "Read at server start, with release_expired_orders in shared_preload_libraries.",
							   &reo_worker_database, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("release_expired_orders.worker_role",
							   "Role the deadline worker runs the job as; empty: the database's owner.",
							   NULL, &reo_worker_role, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	ReoWorkerStateInit();
	if (reo_worker_database[0] == '\0')
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = RESTART_SECONDS;
	strlcpy(worker.bgw_library_name, "release_expired_orders", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "reo_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "release_expired_orders deadline worker", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "release_expired_orders worker", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/* The role to run as: worker_role, or the database's owner; read per look. */
static Oid
WorkerRole(void)
{
	HeapTuple	tuple;
	Oid			role;

	if (reo_worker_role[0] != '\0')
	{
		role = get_role_oid(reo_worker_role, true);
		if (!OidIsValid(role))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("role \"%s\" named by release_expired_orders.worker_role does not exist",
							reo_worker_role),
					 errhint("Create the role, or set release_expired_orders.worker_role to an existing role (empty: the database's owner) and reload.")));
		return role;
	}
	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
	role = ((Form_pg_database) GETSTRUCT(tuple))->datdba;
	ReleaseSysCache(tuple);
	return role;
}

/* The bootstrap superuser the worker connected as. */
static Oid	worker_user;

/* Milliseconds before retrying after a failed step, 0 after a good one. */
static int	retry_ms = 0;

/*
 * Run one step in its own transaction, as the worker's role, and leave no
 * transaction or snapshot behind.  On error the caller aborts and then
 * calls BecomeWorker().
 */
static TimestampTz
StepInTransaction(ReoProgress *p, TimestampTz *deadline, MemoryContext cxt)
{
	Oid			role;
	TimestampTz wake;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	XactIsoLevel = XACT_READ_COMMITTED; /* before any snapshot, as job.c does */
	/* Not a transaction context: a run commits the transaction it starts in. */
	MemoryContextSwitchTo(cxt);
	pgstat_report_activity(STATE_RUNNING, "release_expired_orders: looking for the next deadline");
	ReoCheckSettings();
	ReoCheckInstalledVersion();
	role = WorkerRole();
	ReoWorkerStateRole(GetUserNameFromId(role, false));
	SetSessionAuthorization(role, superuser_arg(role));
	wake = ReoWorkerStep(p, deadline);
	CommitTransactionCommand();
	return wake;
}

/* Back to the worker's own user, and idle. */
static void
BecomeWorker(void)
{
	SetSessionAuthorization(worker_user, true);
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);
}

/* Sleep until wake, or until the latch is set; then note the wake. */
static void
SleepUntil(TimestampTz wake, TimestampTz deadline)
{
	TimestampTz now = GetCurrentTimestamp();

	if (wake > now)
	{
		/* Rounded up: a wake for a deadline is never before it. */
		int64		ms = Min((wake - now + 999) / 1000, (int64) PG_INT32_MAX);
		int			rc;

		ReoWorkerStateSleeps(wake);
		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   (long) ms, wait_event_info);
		ResetLatch(MyLatch);
		if (rc & WL_LATCH_SET)
			deadline = DT_NOBEGIN;	/* woken early: no lag to report */
		ReoWorkerStateWoke(GetCurrentTimestamp(), deadline);
	}
	CHECK_FOR_INTERRUPTS();
}

/* Apply a reload; a change of database needs a new connection. */
static void
Reload(const char *database)
{
	if (!ConfigReloadPending)
		return;
	ConfigReloadPending = false;
	ProcessConfigFile(PGC_SIGHUP);
	retry_ms = 0;				/* a reload may have fixed the failure */
	if (reo_worker_database[0] == '\0')
	{
		ereport(LOG,
				(errmsg("release_expired_orders deadline worker stops: release_expired_orders.worker_database is now empty")));
		proc_exit(0);			/* not restarted */
	}
	if (strcmp(reo_worker_database, database) != 0)
	{
		ereport(LOG,
				(errmsg("release_expired_orders deadline worker exits to serve database \"%s\" instead of \"%s\"",
						reo_worker_database, database),
				 errdetail("The postmaster starts it again in %d seconds.", RESTART_SECONDS)));
		proc_exit(1);			/* restarted, for the new database */
	}
}

/*
 * The worker's entry point.  A step that fails is logged, rolled back and
 * retried after a delay that doubles from RETRY_FIRST_MS to RETRY_MAX_MS;
 * a reload or wake_worker() cuts the delay short.
 */
void
reo_worker_main(Datum arg)
{
	char	   *database;
	MemoryContext cxt;
	ReoProgress progress = {0};

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (reo_worker_database[0] == '\0')
	{
		ereport(LOG,
				(errmsg("release_expired_orders deadline worker stops: release_expired_orders.worker_database is empty")));
		proc_exit(0);
	}
	database = MemoryContextStrdup(TopMemoryContext, reo_worker_database);
	ReoWorkerStateStarted(database);
	/* A database that does not exist is FATAL: the restart delay backs off. */
	BackgroundWorkerInitializeConnection(database, NULL, 0);
	worker_user = GetUserId();
	pgstat_report_appname("release_expired_orders worker");
#if PG_VERSION_NUM >= 170000
	wait_event_info = WaitEventExtensionNew("ReleaseExpiredOrdersDeadline");
#endif
	ereport(LOG,
			(errmsg("release_expired_orders deadline worker serves database \"%s\"", database)));

	cxt = AllocSetContextCreate(TopMemoryContext, "release_expired_orders worker",
								ALLOCSET_DEFAULT_SIZES);
	/* A non-atomic SPI connection lives in PortalContext, as in a CALL. */
	PortalContext = cxt;
	ResetLatch(MyLatch);		/* the first step looks anyway */
	for (;;)
	{
		TimestampTz wake;
		TimestampTz deadline = DT_NOBEGIN;

		Reload(database);
		PG_TRY();
		{
			wake = StepInTransaction(&progress, &deadline, cxt);
			BecomeWorker();
			retry_ms = 0;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			HOLD_INTERRUPTS();
			MemoryContextSwitchTo(TopMemoryContext);
			edata = CopyErrorData();
			EmitErrorReport();
			AbortCurrentTransaction();
			FlushErrorState();
			BecomeWorker();
			RESUME_INTERRUPTS();
			ReoWorkerStateError(edata->message);
			retry_ms = retry_ms ? Min(retry_ms * 2, RETRY_MAX_MS) : RETRY_FIRST_MS;
			ereport(LOG,
					(errmsg("release_expired_orders deadline worker tries again in %d ms: %s",
							retry_ms, edata->message)));
			FreeErrorData(edata);
			progress.just_ran = false;
			wake = GetCurrentTimestamp() + (TimestampTz) retry_ms * 1000;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(cxt);
		SleepUntil(wake, deadline);
	}
}
