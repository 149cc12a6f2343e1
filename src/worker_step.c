/*-------------------------------------------------------------------------
 *
 * worker_step.c
 *	  One step of the deadline worker, in a transaction as its role: the
 *	  earliest deadlines, a run when something is due, and when to look
 *	  again.
 *
 * Asleep, the worker waits for the earliest deadline, and never longer
 * than the shortest payment window from its look (no order placed after
 * the look can be due sooner) or, while orders wait out the retry
 * backoff, than the backoff.  After a run that used up batch_limit it
 * looks again at once.  Orders still due after a run (a payment holds
 * them) are tried again after a delay that doubles from 1 s to 60 s, but
 * an order that falls due in the meantime is released at its deadline.
 * While a restore into the database is in progress it releases nothing
 * and looks again every second.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "due.h"
#include "job.h"
#include "restore.h"
#include "settings.h"
#include "worker_step.h"

#define STUCK_FIRST_MS 1000
#define STUCK_MAX_MS 60000
#define RESTORE_POLL_MS 1000	/* while a restore is in progress */
#define LOOK_LOCK_TIMEOUT_MS 100	/* a tenth of deadlock_timeout's default */

static void
KeepDeadline(const ReoDueOrder *order, void *arg)
{
	*(TimestampTz *) arg = order->deadline;
}

/*
 * The earliest deadline at or after since, DT_NOEND if none: what the
 * orders a run could not take (a payment holds them), however many, must
 * not delay.  The scan starts at since, by its keyset.
 */
static TimestampTz
FirstDeadlineFrom(int timeout_minutes, TimestampTz since)
{
	TimestampTz found = DT_NOEND;
	TimestampTz backoff_since = GetCurrentTransactionStartTimestamp() -
		(TimestampTz) reo_retry_backoff_s * USECS_PER_SEC;

	(void) ReoDueOrders(timeout_minutes, 1, DT_NOEND, since, backoff_since,
						KeepDeadline, &found);
	return found;
}

/*
 * Run the job as a CALL does, and return how many orders it released.  In
 * a non-atomic SPI connection each statement takes its snapshot through
 * the active portal, which SPI_commit() then lets go of: the worker plays
 * the CALL's portal, active for the length of the run, its context the
 * parent of SPI's.  On error it is marked failed, as PortalRun() does, and
 * the abort drops it.
 */
static int64
RunJob(int timeout_minutes)
{
	Portal		portal = CreatePortal("release_expired_orders worker", true, true);
	MemoryContext saved_cxt = PortalContext;
	ReoSummary	summary;

	portal->visible = false;
	PortalDefineQuery(portal, NULL, "CALL release_expired_orders()", CMDTAG_CALL, NIL, NULL);
	PortalStart(portal, NULL, 0, InvalidSnapshot);
	MarkPortalActive(portal);
	ActivePortal = portal;
	PortalContext = portal->portalContext;
	PG_TRY();
	{
		ReoReleaseJob(timeout_minutes, reo_batch_limit, false, "worker", &summary);
	}
	PG_CATCH();
	{
		MarkPortalFailed(portal);
		ActivePortal = NULL;
		PortalContext = saved_cxt;
		PG_RE_THROW();
	}
	PG_END_TRY();

	/*
	 * The last statement's snapshot belongs to the portal: let go of it, as
	 * PortalRunUtility() does after a CALL, before the transaction commits.
	 */
	if (portal->portalSnapshot != NULL && ActiveSnapshotSet())
	{
		if (portal->portalSnapshot == GetActiveSnapshot())
			PopActiveSnapshot();
		portal->portalSnapshot = NULL;
	}
	ActivePortal = NULL;
	PortalContext = saved_cxt;
	MarkPortalDone(portal);
	PortalDrop(portal, false);
	return summary.released;
}

/*
 * One step, in a READ COMMITTED transaction as the worker's role: look at
 * the deadlines and run the job when something is due.  Returns when to
 * wake (at or before now: at once); *deadline is the order's deadline the
 * wake is for, or DT_NOBEGIN.  The looks run under a snapshot of their own
 * (SPI needs one, outside a portal), popped before a run, which must find
 * none.
 */
TimestampTz
ReoWorkerStep(ReoProgress *p, TimestampTz *deadline)
{
	int			timeout = reo_timeout_minutes;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	TimestampTz backoff = (TimestampTz) reo_retry_backoff_s * USECS_PER_SEC;
	TimestampTz due_at = 0;
	TimestampTz any_at = 0;
	TimestampTz next = DT_NOEND;
	TimestampTz wake;
	bool		any;
	bool		due;
	bool		stuck;
	int			shortest = 0;
	TimestampTz look_start;
	int			level;
	char		look_timeout[32];

	*deadline = DT_NOBEGIN;
	if (ReoRestoringBackend() != 0)
	{
		/* Nothing is released while a restore is in progress: look again soon. */
		pgstat_report_activity(STATE_RUNNING, "release_expired_orders: waiting for a restore to end");
		p->just_ran = false;
		return now + (TimestampTz) RESTORE_POLL_MS * 1000;
	}
	/*
	 * The look waits for a lock no longer than LOOK_LOCK_TIMEOUT: it takes
	 * the extension's and the application's tables one statement at a
	 * time, and a command that drops or alters them (DROP SCHEMA ...
	 * CASCADE, DROP OWNED, a migration) may hold one it needs and wait for
	 * one it holds.  Giving up first, before that command's deadlock check
	 * (deadlock_timeout, 1 s by default), the look lets go of what it
	 * holds: the command is never the deadlock detector's victim, and the
	 * look is tried again a second later (worker.c).  Half the server's
	 * deadlock_timeout when that is shorter; a command's session that sets
	 * its own shorter still may win the race.  The run keeps the job's own
	 * lock_timeout.
	 */
	level = NewGUCNestLevel();
	snprintf(look_timeout, sizeof(look_timeout), "%dms",
			 Max(Min(LOOK_LOCK_TIMEOUT_MS, DeadlockTimeout / 2), 1));
	(void) set_config_option("lock_timeout", look_timeout,
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	PushActiveSnapshot(GetTransactionSnapshot());
	look_start = GetCurrentTimestamp();
	ReoNextDeadlines(timeout, &any, &any_at, &due, &due_at);
	/* Still due after a run that did not use up batch_limit: a payment holds it. */
	stuck = due && due_at < now && p->just_ran && !p->ran_full && due_at < p->last_run_ref;
	if (stuck)
		next = FirstDeadlineFrom(timeout, p->last_run_ref);
	shortest = ReoShortestWindow(timeout);
	p->shortest = (int64) shortest * SECS_PER_MINUTE * USECS_PER_SEC;
	/* The look's cost, for test/bench/run.sh (log_min_messages = debug1). */
	elog(DEBUG1, "release_expired_orders deadline worker: look took " INT64_FORMAT " us",
		 (int64) (GetCurrentTimestamp() - look_start));
	PopActiveSnapshot();
	AtEOXact_GUC(true, level);

	*deadline = DT_NOBEGIN;
	if (stuck)
	{
		/* Tried again later, not in a tight loop; new deadlines still count. */
		p->stuck_ms = p->stuck_ms ? Min(p->stuck_ms * 2, STUCK_MAX_MS) : STUCK_FIRST_MS;
		p->just_ran = false;
		wake = now + (TimestampTz) p->stuck_ms * 1000;
		if (next < wake)
			*deadline = wake = next;
		return wake;
	}
	if (due && due_at < now)
	{
		pgstat_report_activity(STATE_RUNNING, "release_expired_orders: releasing the orders that are due");
		p->ran_full = RunJob(timeout) >= reo_batch_limit;
		p->just_ran = true;
		p->last_run_ref = now;
		return now;
	}

	p->just_ran = false;
	p->stuck_ms = 0;
	wake = now + (TimestampTz) shortest * SECS_PER_MINUTE * USECS_PER_SEC;
	if (due && due_at < wake)
		*deadline = wake = due_at;
	/* Orders waiting out the retry backoff are tried again after it. */
	if (any && (!due || any_at < due_at) && now + backoff < wake)
	{
		wake = now + backoff;
		*deadline = DT_NOBEGIN;
	}
	return wake;
}
