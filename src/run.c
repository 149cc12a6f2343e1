/*-------------------------------------------------------------------------
 *
 * run.c
 *	  A run: its row, its liveness, the loop over chunks, the commits, and
 *	  the outcome.
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

#include "access/xact.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "chunk.h"
#include "purge.h"
#include "run.h"
#include "settings.h"
#include "sql.h"
#include "util.h"

/*
 * A run stops taking candidates once this many times batch_limit orders
 * have failed or been vetoed in it: failures do not use up its budget, but
 * their cost stays bounded.
 */
#define SKIPPED_FACTOR 10

/*
 * Settings for the statements of one of the run's transactions: the
 * bounded wait for product and round rows.  Undone by AtEOXact_GUC()
 * before the transaction ends, so that the caller's own setting is back
 * when the CALL returns.
 */
static int
PushRunSettings(ReoRun *run)
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
BeginOwnTransaction(void)
{
	Assert(!FirstSnapshotSet);
	XactIsoLevel = XACT_READ_COMMITTED;
	ReoExecute(STMT_CONSTRAINTS, NULL, NULL);
}

/*
 * Commit the work so far and start the next transaction, when the CALL may
 * commit.  An async commit does not wait for the WAL flush: it is used for
 * the run row alone, which the next synchronous commit flushes with it.
 */
static void
Commit(ReoRun *run, int level, bool async, volatile bool *in_commit)
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
	BeginOwnTransaction();
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
SkipFlushOfRunRow(ReoRun *run)
{
	if (run->atomic)
		return;
	(void) set_config_option("synchronous_commit", "off",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
							 true, 0, false);
}

/* Insert the run row; sets run->run_id. */
static void
RunBegin(ReoRun *run)
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
	if (ReoExecute(STMT_RUN_BEGIN, values, nulls) != 1)
		elog(ERROR, "inserting the run row returned no id");
	run->run_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
}

static void
RunNoteFn(void *arg)
{
	ReoExecute(STMT_RUN_NOTE, (Datum *) arg, NULL);
}

/*
 * Close the run row with its outcome; writes the batch notification when
 * the run released anything (a committed chunk counted in the row is also
 * counted in run->released).
 */
static void
RunEnd(ReoRun *run, const char *outcome, const char *error)
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
	ReoExecute(STMT_RUN_END, values, nulls);
	if (run->write_notifications && run->released > 0)
	{
		ErrorData  *edata;
		Datum		sent = ReoTimeValue(GetCurrentTransactionStartTimestamp(),
										run->app.notifications_tz, run->naive_time_zone);

		/* The notifications never cost the run: one that fails is skipped. */
		edata = ReoInSubtransaction(RunNoteFn, &sent);
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
 * Whether any order may be due.  Most runs of a job scheduled every minute
 * find nothing, and pg_cron starts each in a fresh session: this probe
 * spares them preparing the candidate scan.  A false "yes" costs one
 * index probe.
 */
static bool
AnyOrderDue(ReoRun *run)
{
	Datum		value = TimestampGetDatum(run->due_before);
	bool		due = ReoExecute(STMT_ANY_DUE, &value, NULL) > 0;

	SPI_freetuptable(SPI_tuptable);
	return due;
}

typedef struct ChunkStep
{
	ReoRun	   *run;
	int			wanted;
	bool		probe;			/* ask first whether anything is due */
	int			found;
} ChunkStep;

static void
ChunkStepFn(void *arg)
{
	ChunkStep  *step = (ChunkStep *) arg;

	MemoryContextReset(step->run->chunk_cxt);
	MemoryContextSwitchTo(step->run->chunk_cxt);
	if (step->probe && !AnyOrderDue(step->run))
		step->found = 0;
	else
		step->found = ReoReleaseChunk(step->run, step->wanted);
}

/*
 * A run that finished is "partial" when any order failed or was vetoed,
 * even if none was released: "failed" is kept for a run that errored as a
 * whole, so that one poison order does not read as a broken job.
 */
static const char *
RunOutcome(ReoRun *run)
{
	return run->failed + run->vetoed > 0 ? "partial" : "success";
}

/*
 * Record the run as failed with the error that ended it, commit that when
 * the CALL may, and raise the error again.
 */
static void
FailRun(ReoRun *run, int level, ErrorData *edata, volatile bool *in_commit)
{
	RunEnd(run, "failed", edata->message);
	Commit(run, level, false, in_commit);
	ReThrowError(edata);
}

/*
 * Release chunks until batch_limit orders were released, none are left,
 * or too many failed; then purge and close the run.  Returns the outcome.
 * The last transaction, with the run row's outcome, is committed by the
 * caller with the CALL.
 */
static const char *
ReleaseAll(ReoRun *run, volatile bool *in_commit)
{
	int			level = PushRunSettings(run);
	int64		skipped_max = (int64) run->batch_limit * SKIPPED_FACTOR;
	const char *outcome;

	RunBegin(run);
	Commit(run, level, true, in_commit);
	for (bool first = true;; first = false)
	{
		int			remaining = (int) (run->batch_limit - run->released);
		ChunkStep	step = {run, Min(remaining, run->chunk_size), first && run->probe_first, 0};
		ErrorData  *edata;

		level = PushRunSettings(run);
		edata = ReoInSubtransaction(ChunkStepFn, &step);
		if (edata != NULL)
			FailRun(run, level, edata, in_commit);
		if (step.found < step.wanted || run->released >= run->batch_limit ||
			run->failed + run->vetoed >= skipped_max)
			break;
		Commit(run, level, false, in_commit);
	}

	/*
	 * The purge comes after the last chunk's locks are released (and after
	 * its settings are undone); the CALL commits the run row's outcome.
	 */
	Commit(run, level, false, in_commit);
	ReoPurgeHistory();
	outcome = RunOutcome(run);
	RunEnd(run, outcome, NULL);
	if (run->found == 0)
		SkipFlushOfRunRow(run);
	return outcome;
}

/*
 * Run the job; SPI is connected.  Returns the outcome.  A commit that
 * fails (from 15 on, SPI_commit() has then started a new transaction) is
 * recorded in the run row before the error is raised again.
 */
const char *
ReoRunExecute(ReoRun *run)
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
		return ReleaseAll(run, &in_commit);
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
	BeginOwnTransaction();

	PG_TRY();
	{
		outcome = ReleaseAll(run, &in_commit);
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
			BeginOwnTransaction();
			FailRun(run, NewGUCNestLevel(), edata, &in_commit);
		}
#endif
		PG_RE_THROW();
	}
	PG_END_TRY();
	return outcome;
}
