/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher of the deadline workers: one background worker, with no
 *	  database, that starts a worker for each database that has the
 *	  extension, as the role that database asks for, and stops it when it
 *	  should no longer run.
 *
 * No list of databases to keep: every database that accepts connections
 * (not a template, not half-dropped) is tried once.  Its worker finds
 * whether the extension is there; where it is not, the worker exits
 * saying so, and the database is not tried again until an extension is
 * created in it (ddl_guard.c tells the launcher).  The launcher reads only
 * pg_database and pg_authid, which a process with no database can: it
 * starts a worker as the server's release_expired_orders.worker_role, or
 * the database's owner.  Once connected, the worker sees the settings of
 * its database and role; when they name another role (worker_role set
 * with ALTER DATABASE ... SET), it exits asking for that role, and is
 * started again at once as it.  The launcher looks every NAPTIME_MS and
 * whenever it is woken (a worker exited, an extension was created, a
 * database command ended, a reload).
 *
 * A worker that fails is started again after a delay that doubles from
 * RESTART_FIRST_MS to RESTART_MAX_MS, from the first again once a worker
 * ran RESTART_RESET_MS; one asked to stop is started again at once.  At most max_workers run; a database
 * beyond them waits, and worker_status() and health() there say so.  With
 * release_expired_orders.worker_database set (a 1.1 configuration), only
 * that database is served; release_expired_orders.deadline_worker = off
 * (for a database, or the server) leaves databases out.
 *
 * The launcher starts once recovery is over (a standby runs none, a
 * promoted one starts it), and the postmaster restarts it after an error.
 * It adopts the workers a previous launcher left running.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "launcher.h"
#include "worker_state.h"

#define NAPTIME_MS 1000
#define RESTART_FIRST_MS 1000
#define RESTART_MAX_MS 60000
#define RESTART_RESET_MS 10000	/* a worker that ran this long: delays anew */
#define MAX_RECHECKS 64

char	   *reo_worker_database = NULL;
char	   *reo_worker_role = NULL;
bool		reo_deadline_worker = true;

/* What the launcher knows of a database. */
typedef struct KnownDatabase
{
	Oid			oid;			/* hash key */
	char		name[NAMEDATALEN];
	bool		listed;			/* in the latest read of pg_database */
	bool		wanted;			/* a worker should serve it */
	bool		no_extension;	/* its worker found none: not tried again */
	bool		disabled;		/* deadline_worker is off there: likewise */
	int			slot;			/* -1: none */
	bool		running;		/* a worker was started into the slot */
	BackgroundWorkerHandle *handle; /* NULL for an adopted worker */
	TimestampTz started_at;		/* of its latest worker */
	TimestampTz recheck_at;		/* latest ask to look at it again */
	TimestampTz restart_at;
	int			restart_ms;
	char		asked_role[NAMEDATALEN];	/* by its worker, or empty */
	/* read at each look */
	Oid			role;
	bool		login;
	char		role_name[NAMEDATALEN];
} KnownDatabase;

static HTAB *known = NULL;

/*
 * Define the settings of the workers and, when preloading, register the
 * launcher.  Called from _PG_init() before ReoDefineSettings(), which
 * reserves the prefix and drops undefined placeholders.
 */
void
ReoLauncherInit(void)
{
	BackgroundWorker worker;

	DefineCustomStringVariable("release_expired_orders.worker_database",
							   "Only database the deadline workers serve; empty: every database that has the extension.",
							   "Kept for 1.1 configurations.",
							   &reo_worker_database, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("release_expired_orders.worker_role",
							   "Role a deadline worker runs the job as; empty: the database's owner.",
							   "Set it for a database with ALTER DATABASE ... SET.",
							   &reo_worker_role, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("release_expired_orders.deadline_worker",
							 "Whether a deadline worker serves the database.",
							 "Set it to off for a database with ALTER DATABASE ... SET, or for the server.",
							 &reo_deadline_worker, true, PGC_SUSET, 0, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	/* Sizes shared memory: defined only while preloading, as it can be read. */
	DefineCustomIntVariable("release_expired_orders.max_workers",
							"Most deadline workers running at once, one per database; 0: none.",
							"Each is a background worker, and so is the launcher: max_worker_processes, shared with parallel query, must leave room for them.",
							&reo_max_workers, 4, 0, 1000, PGC_POSTMASTER, 0, NULL, NULL, NULL);
	ReoWorkerStateInit();
	if (reo_max_workers == 0)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	strlcpy(worker.bgw_library_name, "release_expired_orders", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "reo_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "release_expired_orders launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "release_expired_orders launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/*
 * Read the databases and what each should run with; marks each known
 * database listed or not.  In a transaction of its own.
 */
static void
ReadDatabases(void)
{
	HASH_SEQ_STATUS seq;
	KnownDatabase *db;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "release_expired_orders launcher: reading the databases");

	hash_seq_init(&seq, known);
	while ((db = hash_seq_search(&seq)) != NULL)
		db->listed = false;

	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database form = (Form_pg_database) GETSTRUCT(tuple);
		bool		found;
		const char *role_name;
		HeapTuple	role_tuple;

		if (!form->datallowconn || form->datistemplate ||
			form->datconnlimit == DATCONNLIMIT_INVALID_DB)
			continue;
		db = hash_search(known, &form->oid, HASH_ENTER, &found);
		if (!found)
		{
			db->slot = -1;
			db->running = false;
			db->handle = NULL;
			db->no_extension = false;
			db->disabled = false;
			db->restart_at = 0;
			db->restart_ms = 0;
			db->started_at = 0;
			db->recheck_at = 0;
			db->asked_role[0] = '\0';
		}
		db->listed = true;
		strlcpy(db->name, NameStr(form->datname), NAMEDATALEN);
		db->wanted = reo_worker_database[0] == '\0' ||
			strcmp(reo_worker_database, db->name) == 0;

		/*
		 * The role: what the database's worker last asked for (its
		 * worker_role, as set for the database), else the server's, else
		 * the owner.  The worker checks it once connected.
		 */
		if (db->asked_role[0] && !OidIsValid(get_role_oid(db->asked_role, true)))
			db->asked_role[0] = '\0';	/* renamed or dropped since */
		role_name = db->asked_role[0] ? db->asked_role :
			reo_worker_role[0] ? reo_worker_role : NULL;
		db->role = role_name ? get_role_oid(role_name, true) : form->datdba;
		if (role_name == NULL)
			role_name = GetUserNameFromId(form->datdba, true);
		strlcpy(db->role_name, role_name ? role_name : "", NAMEDATALEN);
		db->login = false;
		role_tuple = SearchSysCache1(AUTHOID, ObjectIdGetDatum(db->role));
		if (HeapTupleIsValid(role_tuple))
		{
			db->login = ((Form_pg_authid) GETSTRUCT(role_tuple))->rolcanlogin;
			ReleaseSysCache(role_tuple);
		}
		else
			db->role = InvalidOid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Whether the worker of db has exited. */
static bool
WorkerGone(KnownDatabase *db)
{
	pid_t		pid;

	if (db->handle != NULL)
		return GetBackgroundWorkerPid(db->handle, &pid) == BGWH_STOPPED;
	return ReoSlotGone(db->slot);
}

/* Start a worker for db in its slot; false when none could be started. */
static bool
StartWorker(KnownDatabase *db)
{
	BackgroundWorker worker;
	ReoWorkerStart start;

	memset(&start, 0, sizeof(start));
	start.slot = db->slot;
	start.database = db->oid;
	start.role = db->role;
	start.login = db->login;
	strlcpy(start.role_name, db->role_name, NAMEDATALEN);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "release_expired_orders", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "reo_worker_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "release_expired_orders worker for database %s", db->name);
	strlcpy(worker.bgw_type, "release_expired_orders worker", BGW_MAXLEN);
	StaticAssertStmt(sizeof(ReoWorkerStart) <= BGW_EXTRALEN, "ReoWorkerStart must fit in bgw_extra");
	memcpy(worker.bgw_extra, &start, sizeof(start));
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &db->handle))
	{
		db->handle = NULL;
		return false;
	}
	return true;
}

/*
 * One look: read the databases, take back the slots of workers that
 * exited, stop those that should not run as they are, start the missing
 * ones.  Returns the time of the next restart due, or 0.
 */
static TimestampTz
Look(void)
{
	Oid			rechecks[MAX_RECHECKS];
	bool		all;
	int			n = ReoTakeRechecks(rechecks, MAX_RECHECKS, &all);
	HASH_SEQ_STATUS seq;
	KnownDatabase *db;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = 0;
	int			waiting = 0;
	int			no_room = 0;
	List	   *order = NIL;
	ListCell   *lc;

	/*
	 * Databases to look at again (an extension was created there, a
	 * setting changed): what a worker started before then found may be
	 * out of date.
	 */
	hash_seq_init(&seq, known);
	while ((db = hash_seq_search(&seq)) != NULL)
		for (int i = -1; i < n; i++)
			if (i < 0 ? all : rechecks[i] == db->oid)
			{
				db->no_extension = db->disabled = false;
				db->recheck_at = now;
			}

	/* Workers that exited (what they asked for is read next). */
	hash_seq_init(&seq, known);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		if (db->slot < 0 || !db->running)
			continue;
		if (WorkerGone(db))
		{
			ReoWorkerExit why = ReoSlotExit(db->slot, db->asked_role);

			elog(DEBUG2, "release_expired_orders launcher: the worker of database %s exited (%d)",
				 db->name, (int) why);
			db->running = false;
			if (db->handle != NULL)
				pfree(db->handle);
			db->handle = NULL;
			/* a worker that ran a while starts its delays from the first */
			if (now - db->started_at >= (TimestampTz) RESTART_RESET_MS * 1000)
				db->restart_ms = 0;

			/*
			 * One that exited within a second of its start, even asked to,
			 * waits as a failed one does: nothing a setting can do makes
			 * the launcher start workers in a tight loop.
			 */
			if (why == WORKER_EXIT_STOPPED && db->listed && db->wanted &&
				now - db->started_at < USECS_PER_SEC && db->asked_role[0] != '\0')
				why = WORKER_EXIT_ERROR;
			if (db->listed && db->wanted &&
				(why == WORKER_EXIT_ERROR || why == WORKER_EXIT_NONE))
			{
				/* keep the slot: its error stays for worker_status() */
				db->restart_ms = db->restart_ms ?
					Min(db->restart_ms * 2, RESTART_MAX_MS) : RESTART_FIRST_MS;
				db->restart_at = now + (TimestampTz) db->restart_ms * 1000;
				continue;
			}
			if (why == WORKER_EXIT_NO_EXTENSION && db->recheck_at <= db->started_at)
				db->no_extension = true;
			if (why == WORKER_EXIT_DISABLED && db->recheck_at <= db->started_at)
				db->disabled = true;
			ReoSlotRelease(db->slot);
			db->slot = -1;
			db->restart_at = 0;
			db->restart_ms = 0;
		}
	}

	/*
	 * The databases now, and the workers that must stop; a slot kept for a
	 * restart that will not come is given back.
	 */
	ReadDatabases();
	hash_seq_init(&seq, known);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		if (db->listed && db->wanted)
			continue;
		if (db->running)
			ReoSlotStop(db->slot);
		else if (db->slot >= 0)
		{
			ReoSlotRelease(db->slot);
			db->slot = -1;
			db->restart_at = 0;
			db->restart_ms = 0;
		}
	}

	/* Databases that left the list, with their workers gone. */
	hash_seq_init(&seq, known);
	while ((db = hash_seq_search(&seq)) != NULL)
	{
		if (db->listed || db->running)
			continue;
		if (db->slot >= 0)
			ReoSlotRelease(db->slot);
		hash_search(known, &db->oid, HASH_REMOVE, NULL);
	}

	/* Start what is missing, oldest database first. */
	hash_seq_init(&seq, known);
	while ((db = hash_seq_search(&seq)) != NULL)
		if (db->listed && db->wanted && !db->no_extension && !db->disabled &&
			!db->running)
			order = lappend_oid(order, db->oid);
	list_sort(order, list_oid_cmp);
	foreach(lc, order)
	{
		Oid			oid = lfirst_oid(lc);

		db = hash_search(known, &oid, HASH_FIND, NULL);
		if (db->restart_at > now)
		{
			if (next == 0 || db->restart_at < next)
				next = db->restart_at;
			continue;
		}
		if (ReoDatabasePaused(db->oid))
			continue;
		if (db->slot < 0)
			db->slot = ReoSlotClaim(db->oid, db->name, db->role_name);
		else
			ReoSlotRestart(db->slot, db->name, db->role_name);
		if (db->slot < 0)
		{
			waiting++;
			continue;
		}
		if (StartWorker(db))
		{
			db->running = true;
			db->started_at = now;
		}
		else
		{
			/* no background worker slot left: max_worker_processes */
			no_room++;
			ReoSlotRelease(db->slot);
			db->slot = -1;
			waiting++;
		}
	}
	if (waiting > 0)
		ReoLauncherNote(psprintf("no deadline worker serves this database yet: %d database%s wait%s for one; %s",
								 waiting, waiting == 1 ? "" : "s", waiting == 1 ? "s" : "",
								 no_room > 0 ?
								 "max_worker_processes leaves no room for another background worker" :
								 psprintf("release_expired_orders.max_workers = %d are in use", reo_max_workers)));
	else
		ReoLauncherNote("");
	return next;
}

/* Adopt the workers a previous launcher left running. */
static void
AdoptWorkers(void)
{
	for (int i = 0; i < reo_max_workers; i++)
	{
		Oid			database = ReoSlotDatabase(i);
		KnownDatabase *db;
		bool		found;

		if (!OidIsValid(database))
			continue;
		if (ReoSlotGone(i))
		{
			ReoSlotRelease(i);
			continue;
		}
		db = hash_search(known, &database, HASH_ENTER, &found);
		memset(((char *) db) + sizeof(Oid), 0, sizeof(KnownDatabase) - sizeof(Oid));
		db->slot = i;
		db->running = true;
		db->handle = NULL;
	}
}

/* The launcher's entry point. */
void
reo_launcher_main(Datum arg)
{
	HASHCTL		ctl;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	/* No database: the shared catalogs only. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("release_expired_orders launcher");

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(KnownDatabase);
	known = hash_create("release_expired_orders databases", 64, &ctl, HASH_ELEM | HASH_BLOBS);
	ReoLauncherStarted();
	AdoptWorkers();
	ereport(LOG,
			(errmsg("release_expired_orders launcher started: up to %d deadline workers, %s",
					reo_max_workers,
					reo_worker_database[0] ? psprintf("for database \"%s\" only", reo_worker_database) :
					"one for each database that has the extension")));

	for (;;)
	{
		TimestampTz next;
		long		ms = NAPTIME_MS;

		if (ConfigReloadPending)
		{
			KnownDatabase *db;
			HASH_SEQ_STATUS seq;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* deadline_worker may be on again in the server's settings */
			hash_seq_init(&seq, known);
			while ((db = hash_seq_search(&seq)) != NULL)
				db->disabled = false;
		}
		next = Look();
		if (next != 0)
		{
			TimestampTz now = GetCurrentTimestamp();

			ms = Max(Min((next - now + 999) / 1000, ms), 1);
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}
