/*-------------------------------------------------------------------------
 *
 * job.c
 *	  The job: one release as a whole, for whoever asks for one (the
 *	  procedure, the deadline worker).  Its checks before any write, its run
 *	  row, its transactions and its loop over chunks.
 *
 * The release path has three layers, each named by its prefix:
 *   Job...   (this file) a run: its row, its transactions, its loop;
 *   Chunk... (chunk.c) a chunk: its candidates, their release, the
 *            fallback that isolates the orders that cannot be released;
 *   Stmt...  (sql.c) the statements, each written whole in statements.c.
 * Each layer calls only the layers below it, and util.c's helpers.
 *
 * In a plain CALL (non-atomic, as pg_cron runs it) a run commits after
 * every chunk, and every transaction it starts runs at READ COMMITTED with
 * its constraints checked at once, whatever the session's defaults: the
 * re-check of an order under its row lock depends on the first, and the
 * second makes a deferred constraint fail its own order instead of the
 * commit.  Inside a transaction block it works in the caller's
 * transaction.  A run is alive while its row says "running" and the
 * backend it names (pid and start time) exists; nothing another session
 * can take or hold says so.  Guarantees: a run that fails as a whole, also
 * while committing, is recorded as failed with the real error; committed
 * chunks stay whole.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "catalog/namespace.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "app_schema.h"
#include "chunk.h"
#include "job.h"
#include "purge.h"
#include "restore.h"
#include "run.h"
#include "settings.h"
#include "sql.h"
#include "summary.h"
#include "util.h"
#include "windows.h"

/*
 * A run stops taking candidates once this many times batch_limit orders
 * have failed or been vetoed in it: failures do not use up its budget, but
 * their cost stays bounded.
 */
#define SKIPPED_FACTOR 10

/* The key of 1.0's run locks (its classid in pg_locks; see JobLockRun10). */
#define RUN_LOCK_KEY_1_0 1919250176

/* One chunk of the loop, the body of its subtransaction. */
typedef struct JobStep
{
	ReoRun	   *run;
	int			wanted;
	bool		probe;			/* ask first whether anything is due */
	int			found;
} JobStep;

static const char *JobRun(ReoRun *run);
static const char *JobLoop(ReoRun *run, volatile bool *in_commit);
static void JobChunkStep(void *arg);
static bool JobAnyDue(ReoRun *run);
static void JobBegin(ReoRun *run);
static void JobEnd(ReoRun *run, const char *outcome, const char *error);
static void JobLockRun10(ReoRun *run, bool lock);
static void JobCheckAuditPrivilege(void);
static void JobFail(ReoRun *run, int level, ErrorData *edata, volatile bool *in_commit);
static int	JobPushSettings(ReoRun *run);
static void JobBeginTransaction(void);
static void JobCommit(ReoRun *run, int level, bool async, volatile bool *in_commit);
static void JobSkipFlush(ReoRun *run);
static const char *JobOutcome(ReoRun *run);
static char *JobWarnIgnoredWindows(const ReoWindows *w, const AppSchema *app);
static char *JobJoinWarnings(char *a, char *b);

/* The version of the extension installed in this database, or NULL. */
char *
ReoInstalledVersion(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	char	   *version = NULL;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("release_expired_orders"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * The library runs against the SQL objects of every released version: a
 * package installs one library for every database of the cluster, and a
 * database keeps releasing with the objects it has until ALTER EXTENSION
 * UPDATE.  1.1's tables are 1.2's; 1.0's lack the run row's later columns
 * and the later outcomes, and have no payment windows (see
 * objects_1_0).  Returns whether the objects are 1.0's.  A database
 * without the extension, or with a version this library does not know,
 * gets an error.
 */
bool
ReoCheckInstalledVersion(void)
{
	char	   *version = ReoInstalledVersion();

	if (version == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"release_expired_orders\" is not installed in database \"%s\"",
						get_database_name(MyDatabaseId)),
				 errhint("Run CREATE EXTENSION release_expired_orders; in that database.")));
	if (strcmp(version, REO_VERSION) != 0 && strcmp(version, "1.1") != 0 &&
		strcmp(version, "1.0") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("release_expired_orders %s is installed in database \"%s\", but the library is version %s",
						version, get_database_name(MyDatabaseId), REO_VERSION),
				 errhint("Install release_expired_orders %s or later; a server that preloads the library (shared_preload_libraries) keeps the one it started with until it restarts.",
						 version)));
	return strcmp(version, "1.0") == 0;
}

/*
 * Run the job once: its checks, then JobRun().  Fills *summary, whose strings are
 * in the caller's memory context.  SPI is connected and finished here.
 */
void
ReoReleaseJob(int timeout_minutes, int batch_limit, bool atomic, const char *scheduler,
			  ReoSummary *out)
{
	MemoryContext caller = CurrentMemoryContext;
	ReoRun		runbuf = {0};
	ReoRun	   *run = &runbuf;
	ReoSummary	summary = {0};
	ReoWindows		windows;
	char	   *notifications_problem;
	bool		objects_1_0;

	objects_1_0 = ReoCheckInstalledVersion();
	run->atomic = atomic;
	run->timeout_minutes = timeout_minutes;
	run->batch_limit = batch_limit;
	run->chunk_size = reo_chunk_size;
	run->retry_backoff_s = reo_retry_backoff_s;
	run->lock_timeout_ms = reo_lock_timeout_ms;
	run->scheduler = scheduler;
	run->started = GetCurrentTimestamp();
	summary.started = run->started;
	summary.timeout_minutes = run->timeout_minutes;

	if (RecoveryInProgress())
	{
		ereport(NOTICE,
				(errmsg("release_expired_orders skipped: the server is a standby"),
				 errdetail("A server in recovery cannot release orders."),
				 errhint("Run the job on the primary.")));
		summary.outcome = "skipped";
		summary.message = "skipped: the server is in recovery";
		*out = summary;
		return;
	}
	if ((summary.message = ReoRestoreSkipsRun()) != NULL)
	{
		summary.outcome = "skipped";
		*out = summary;
		return;
	}

	/* Every check that can refuse the run happens before any write. */
	ReoDiscoverSchema(&run->app, reo_app_schema, reo_write_notifications,
					  &notifications_problem);
	run->app.objects_1_0 = objects_1_0;
	ReoCheckJobPrivileges(&run->app);
	if (!objects_1_0)
		JobCheckAuditPrivilege();
	if (notifications_problem)
		ereport(WARNING,
				(errmsg("release_expired_orders does not write the application's notifications: %s",
						notifications_problem),
				 errhint("Give the column a default, or set release_expired_orders.write_notifications to off.")));
	run->write_notifications = run->app.notifications;
	run->warnings = notifications_problem ?
		psprintf("notifications skipped: %s", notifications_problem) : NULL;

	/*
	 * The cutoff is fixed once, from the first transaction's now(): created_at
	 * without time zone is wall-clock time in naive_time_zone, whatever the
	 * session's TimeZone.  With payment windows, each order's deadline is
	 * measured against the same now().
	 */
	run->reference = GetCurrentTransactionStartTimestamp();
	run->cutoff = run->reference - REO_MINUTES(run->timeout_minutes);
	run->cutoff_value = DatumGetTimestamp(ReoTimeValue(run->cutoff, run->app.orders_created_tz,
													   reo_naive_time_zone));
	run->not_yet_from = run->not_yet_to = run->cutoff_value;
	if (!run->app.orders_created_tz)
		ReoWallClockNotYet(run->cutoff, reo_naive_time_zone,
						   &run->not_yet_from, &run->not_yet_to);
	run->after_created = DT_NOBEGIN;
	run->after_deadline = DT_NOBEGIN;

	if (SPI_connect_ext(run->atomic ? 0 : SPI_OPT_NONATOMIC) != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	/* SPI's procedure context survives the commits between chunks. */
	run->cxt = AllocSetContextCreate(CurrentMemoryContext,
									 "release_expired_orders run",
									 ALLOCSET_DEFAULT_SIZES);
	run->chunk_cxt = AllocSetContextCreate(run->cxt,
										   "release_expired_orders chunk",
										   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(run->cxt);
	run->naive_time_zone = pstrdup(reo_naive_time_zone);
	if (run->warnings)
		run->warnings = pstrdup(run->warnings);
	ReoInitErrorList(&run->errors, run->cxt);
	StmtUseSchema(&run->app);
	ReoReadWindows(&run->app, &windows, false);
	run->windowed = windows.in_force;
	if (run->windowed)
		ReoCheckWindowPrivileges(&run->app);
	run->windows_json = windows.json;

	/*
	 * No order is due unless created before now less the timeout.  With
	 * windows there is no probe: the windowed statement goes type by type
	 * and skips a type whose oldest order is not due, which is what a probe
	 * would learn, and the recommended index then leads with the type.
	 */
	run->probe_first = !run->windowed;
	run->due_before = DatumGetTimestamp(ReoTimeValue(run->reference -
													 REO_MINUTES(run->timeout_minutes),
													 run->app.orders_created_tz,
													 run->naive_time_zone));
	run->warnings = JobJoinWarnings(run->warnings, JobWarnIgnoredWindows(&windows, &run->app));
	summary.windows = windows.json;

	/* 1.0's mark goes with the run, whichever way it ends (as 1.0's did) */
	PG_TRY();
	{
		summary.outcome = JobRun(run);
	}
	PG_CATCH();
	{
		if (run->run_lock_1_0)
			JobLockRun10(run, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	summary.run_id = run->run_id;
	summary.found = run->found;
	summary.released = run->released;
	summary.failed = run->failed;
	summary.vetoed = run->vetoed;
	summary.elapsed_ms = (GetCurrentTimestamp() - run->started) / 1000;
	if (run->found == 0)
		summary.message = "no expired orders to release";
	else
		summary.message = psprintf("released " INT64_FORMAT " of " INT64_FORMAT
								   " expired orders, " INT64_FORMAT " failed%s",
								   run->released, run->found, run->failed,
								   run->vetoed > 0 ?
								   psprintf(", " INT64_FORMAT " vetoed", run->vetoed) : "");
	/* What outlives SPI's memory goes to the caller's. */
	summary.message = MemoryContextStrdup(caller, summary.message);
	if (summary.windows)
		summary.windows = MemoryContextStrdup(caller, summary.windows);
	summary.errors = MemoryContextStrdup(caller, run->errors.json.data);
	*out = summary;
	SPI_finish();
}

/*
 * Run the job; SPI is connected.  Returns the outcome.  A commit that
 * fails (from 15 on, SPI_commit() has then started a new transaction) is
 * recorded in the run row before the error is raised again.
 */
static const char *
JobRun(ReoRun *run)
{
	volatile bool in_commit = false;
	const char *outcome = NULL;

	if (run->atomic)
	{
		if (IsolationUsesXactSnapshot())
			ereport(ERROR,
					(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
					 errmsg("release_expired_orders must run at the READ COMMITTED isolation level"),
					 errdetail("An order is checked again under its row lock, which needs each statement's own snapshot."),
					 errhint("Call it outside a transaction block, where it starts its own READ COMMITTED transactions, or use BEGIN ISOLATION LEVEL READ COMMITTED.")));

		/*
		 * The application's code runs in a security-restricted operation,
		 * which cannot queue a deferred trigger: the application's
		 * deferrable constraints are checked at the end of each statement
		 * here too, for the rest of the caller's transaction; the caller's
		 * other constraints are left as they are.
		 */
		{
			char	   *set = ReoDeferrableConstraints(&run->app);

			if (set != NULL && SPI_execute(set, false, 0) != SPI_OK_UTILITY)
				elog(ERROR, "setting the application's constraints immediate failed");
		}
		return JobLoop(run, &in_commit);
	}

	/*
	 * The caller's transaction is committed first, synchronously, so that
	 * every transaction of the run is one the run started itself.
	 */
	MemoryContextSwitchTo(run->chunk_cxt);
	SPI_commit();
#if PG_VERSION_NUM < 150000
	SPI_start_transaction();
#endif
	MemoryContextSwitchTo(run->cxt);
	JobBeginTransaction();

	PG_TRY();
	{
		outcome = JobLoop(run, &in_commit);
	}
	PG_CATCH();
	{
#if PG_VERSION_NUM >= 150000
		if (in_commit && run->run_id > 0)
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(run->cxt);
			edata = CopyErrorData();
			FlushErrorState();
			in_commit = false;
			JobBeginTransaction();
			JobFail(run, NewGUCNestLevel(), edata, &in_commit);
		}
#endif
		PG_RE_THROW();
	}
	PG_END_TRY();
	return outcome;
}

/*
 * Release chunks until batch_limit orders were released, none are left,
 * or too many failed; then purge and close the run.  Returns the outcome.
 * The last transaction, with the run row's outcome, is committed by the
 * caller with the CALL.
 */
static const char *
JobLoop(ReoRun *run, volatile bool *in_commit)
{
	int			level = JobPushSettings(run);
	int64		skipped_max = (int64) run->batch_limit * SKIPPED_FACTOR;
	const char *outcome;

	JobBegin(run);
	JobCommit(run, level, true, in_commit);
	for (bool first = true;; first = false)
	{
		int			remaining = (int) (run->batch_limit - run->released);
		JobStep	step = {run, Min(remaining, run->chunk_size), first && run->probe_first, 0};
		ErrorData  *edata;

		level = JobPushSettings(run);
		edata = ReoInSubtransaction(JobChunkStep, &step);
		if (edata != NULL)
			JobFail(run, level, edata, in_commit);
		if (step.found < step.wanted || run->released >= run->batch_limit ||
			run->failed + run->vetoed >= skipped_max)
			break;
		JobCommit(run, level, false, in_commit);
	}

	/*
	 * The purge comes after the last chunk's locks are released (and after
	 * its settings are undone); the CALL commits the run row's outcome.
	 */
	JobCommit(run, level, false, in_commit);
	ReoPurgeHistory(!run->app.objects_1_0);
	outcome = JobOutcome(run);
	JobEnd(run, outcome, NULL);
	if (run->found == 0)
		JobSkipFlush(run);
	return outcome;
}


static void
JobChunkStep(void *arg)
{
	JobStep  *step = (JobStep *) arg;

	MemoryContextReset(step->run->chunk_cxt);
	MemoryContextSwitchTo(step->run->chunk_cxt);

	/*
	 * The run's own writes grow order_events by a row per order: a kept
	 * plan made when it was empty probes it by a sequential scan, for each
	 * candidate.  A long run makes its plans again when a table has doubled
	 * since they were made, as a new run would; the sizes are read from
	 * the relations, not from ANALYZE, which may not have run.
	 */
	StmtUseSchema(&step->run->app);
	if (step->probe && !JobAnyDue(step->run))
		step->found = 0;
	else
		step->found = ChunkRelease(step->run, step->wanted);
}

/*
 * Whether any order may be due.  Most runs of a job scheduled every minute
 * find nothing, and pg_cron starts each in a fresh session: this probe
 * spares them preparing the candidate scan.  A false "yes" costs one
 * index probe.
 */
static bool
JobAnyDue(ReoRun *run)
{
	Datum		value = TimestampGetDatum(run->due_before);
	bool		due = StmtExecute(STMT_ANY_DUE, &value, NULL) > 0;

	SPI_freetuptable(SPI_tuptable);
	return due;
}

/*
 * A run that finished is "partial" when any order failed or was vetoed,
 * even if none was released: "failed" is kept for a run that errored as a
 * whole, so that one poison order does not read as a broken job.
 */
static const char *
JobOutcome(ReoRun *run)
{
	return run->failed + run->vetoed > 0 ? "partial" : "success";
}

/* Insert the run row; sets run->run_id. */
static void
JobBegin(ReoRun *run)
{
	Datum		values[9];
	char		nulls[9];
	bool		isnull;

	memset(nulls, ' ', sizeof(nulls));

	values[0] = TimestampTzGetDatum(run->started);
	values[1] = Int32GetDatum(run->timeout_minutes);
	values[2] = Int32GetDatum(run->batch_limit);
	values[3] = Int32GetDatum(run->chunk_size);
	values[4] = TimestampTzGetDatum(run->cutoff);
	values[5] = BoolGetDatum(run->atomic);
	values[6] = TimestampTzGetDatum(MyStartTimestamp);
	values[7] = run->windows_json ? CStringGetTextDatum(run->windows_json) : (Datum) 0;
	nulls[7] = run->windows_json ? ' ' : 'n';
	values[8] = CStringGetTextDatum(run->scheduler);
	if (run->app.objects_1_0)
		values[6] = ObjectIdGetDatum(MyDatabaseId);
	if (StmtExecute(STMT_RUN_BEGIN, values, nulls) != 1)
		elog(ERROR, "inserting the run row returned no id");
	run->run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	if (run->app.objects_1_0)
		JobLockRun10(run, true);
}

/*
 * The candidate statements read the audit for the retry backoff (since
 * 1.1; 1.0's job role could only insert into it): a role that may not
 * gets an error that says what to grant, before anything is written.
 */
static void
JobCheckAuditPrivilege(void)
{
	Oid			rel = get_relname_relid("order_events", get_namespace_oid(REO_SCHEMA, false));

	if (OidIsValid(rel) && pg_class_aclcheck(rel, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table order_events"),
				 errdetail("release_expired_orders reads its audit for the retry backoff since version 1.1."),
				 errhint("GRANT SELECT ON release_expired_orders.order_events TO %s;",
						 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
}

/*
 * With 1.0's objects, a run is alive while its backend holds a session
 * advisory lock keyed on the run's id, as the 1.0 library marked it: 1.0's
 * health() and job_status() read it, and so do the runs that a backend
 * still running the 1.0 library begins (run_begin_1_0 reads it too).
 */
static void
JobLockRun10(ReoRun *run, bool lock)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) RUN_LOCK_KEY_1_0,
						 (uint32) (run->run_id % UINT64CONST(4294967296)), 2);
	if (!lock)
	{
		if (run->run_lock_1_0)
			(void) LockRelease(&tag, ExclusiveLock, true);
		run->run_lock_1_0 = false;
		return;
	}

	/*
	 * Never waited for: any role may take this advisory lock, and one that
	 * holds it must not stop the job.  The run then goes unmarked.
	 */
	run->run_lock_1_0 =
		LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
	if (!run->run_lock_1_0)
		ereport(WARNING,
				(errmsg("release_expired_orders run " INT64_FORMAT " is not marked alive: another session holds advisory lock (%u, %u)",
						run->run_id, (uint32) RUN_LOCK_KEY_1_0,
						(uint32) (run->run_id % UINT64CONST(4294967296))),
				 errhint("Find the session in pg_locks, or run ALTER EXTENSION release_expired_orders UPDATE, whose runs are marked otherwise.")));
}

static void
JobNoteFn(void *arg)
{
	StmtExecute(STMT_RUN_NOTE, (Datum *) arg, NULL);
}

/*
 * Close the run row with its outcome; writes the batch notification when
 * the run released anything (a committed chunk counted in the row is also
 * counted in run->released).
 */
static void
JobEnd(ReoRun *run, const char *outcome, const char *error)
{
	Datum		values[6];
	char		nulls[6];
	TimestampTz now = GetCurrentTimestamp();

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(run->run_id);
	values[1] = CStringGetTextDatum(outcome);
	values[2] = error ? CStringGetTextDatum(error) : (Datum) 0;
	nulls[2] = error ? ' ' : 'n';
	values[3] = TimestampTzGetDatum(now);
	values[4] = Float8GetDatum((double) (now - run->started) / 1000.0);
	values[5] = run->warnings ? CStringGetTextDatum(run->warnings) : (Datum) 0;
	nulls[5] = run->warnings ? ' ' : 'n';
	StmtExecute(STMT_RUN_END, values, nulls);
	if (run->app.objects_1_0)
		JobLockRun10(run, false);
	if (run->write_notifications && run->released > 0)
	{
		ErrorData  *edata;
		Datum		sent = ReoTimeValue(GetCurrentTransactionStartTimestamp(),
										run->app.notifications_tz, run->naive_time_zone);

		/* The notifications never cost the run: one that fails is skipped. */
		edata = ReoInSubtransaction(JobNoteFn, &sent);
		if (edata != NULL)
		{
			if (ReoErrorIsFatal(edata))
				ReThrowError(edata);
			ereport(WARNING,
					(errcode(edata->sqlerrcode),
					 errmsg("release_expired_orders skipped the application's batch notification: %s",
							edata->message),
					 errhint("Make %s.notifications accept the rows release_expired_orders writes, or set release_expired_orders.write_notifications to off.",
							 quote_identifier(run->app.schema))));
		}
	}
}

/*
 * Record the run as failed with the error that ended it, commit that when
 * the CALL may, and raise the error again.
 */
static void
JobFail(ReoRun *run, int level, ErrorData *edata, volatile bool *in_commit)
{
	JobEnd(run, "failed", edata->message);
	JobCommit(run, level, false, in_commit);
	ReThrowError(edata);
}

/*
 * Settings for the statements of one of the run's transactions: the
 * bounded wait for product and round rows.  Undone by AtEOXact_GUC()
 * before the transaction ends, so that the caller's own setting is back
 * when the CALL returns.
 */
static int
JobPushSettings(ReoRun *run)
{
	int			level = NewGUCNestLevel();
	char		buf[32];

	snprintf(buf, sizeof(buf), "%dms", run->lock_timeout_ms);
	(void) set_config_option("lock_timeout", buf,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	return level;
}

/*
 * The start of a transaction the run began itself: READ COMMITTED, set
 * before any snapshot is taken (as StartTransaction() sets the default),
 * and every constraint checked at the end of its statement.
 */
static void
JobBeginTransaction(void)
{
	Assert(!FirstSnapshotSet);
	XactIsoLevel = XACT_READ_COMMITTED;
	StmtExecute(STMT_CONSTRAINTS, NULL, NULL);
}

/*
 * JobCommit the work so far and start the next transaction, when the CALL may
 * commit.  An async commit does not wait for the WAL flush: it is used for
 * the run row alone, which the next synchronous commit flushes with it.
 */
static void
JobCommit(ReoRun *run, int level, bool async, volatile bool *in_commit)
{
	AtEOXact_GUC(true, level);
	if (run->atomic)
		return;
	if (async)
		(void) set_config_option("synchronous_commit", "off",
								 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
								 true, 0, false);

	/*
	 * Ending and starting a transaction leaves a little garbage in the
	 * current memory context; the chunk context is reset before the next
	 * chunk, so a long run's memory does not grow with each commit.
	 */
	MemoryContextSwitchTo(run->chunk_cxt);
	*in_commit = true;
	SPI_commit();
#if PG_VERSION_NUM < 150000
	/* Before 15, SPI_commit() leaves starting the next one to the caller. */
	SPI_start_transaction();
#endif
	*in_commit = false;
	MemoryContextSwitchTo(run->cxt);
	JobBeginTransaction();
}

/*
 * A run that found nothing has written only its own row (and perhaps
 * purged history) by the time the CALL commits: that commit need not wait
 * for the WAL flush, which is most of what an idle run costs with fsync
 * on.  A crash within three times wal_writer_delay may lose the row of a
 * run that changed nothing.  Only when the transaction is the run's own: inside the
 * caller's transaction block the commit is the caller's.
 */
static void
JobSkipFlush(ReoRun *run)
{
	if (run->atomic)
		return;
	(void) set_config_option("synchronous_commit", "off",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
}

/* A warning for windows that cannot apply; the text for the run row. */
static char *
JobWarnIgnoredWindows(const ReoWindows *w, const AppSchema *app)
{
	if (w->ignored == NULL)
		return NULL;
	ereport(WARNING,
			(errmsg("release_expired_orders ignores payment windows %s", w->ignored),
			 errdetail(app->orders_type ?
					   "Relation \"%s.orders\" has no column \"payment_method\", so a window for a payment method never applies." :
					   "Relation \"%s.orders\" has no column \"type\", so no payment window applies.",
					   app->schema),
			 errhint("Delete those rows from release_expired_orders.payment_windows, or add the column to orders.")));
	return psprintf("payment windows ignored: %s", w->ignored);
}

static char *
JobJoinWarnings(char *a, char *b)
{
	if (a == NULL)
		return b;
	if (b == NULL)
		return a;
	return psprintf("%s; %s", a, b);
}
