/*-------------------------------------------------------------------------
 *
 * worker_state.c
 *	  The deadline workers' state in shared memory, and the two SQL
 *	  functions that read it: worker_status() and wake_worker().
 *
 * There is a slot per database a worker serves, max_workers of them; the
 * launcher claims a slot for a database and starts a worker into it, the
 * worker reports in it, and gives it back with the reason it exited.  Any
 * backend may read a slot, wake its worker, ask the launcher to look at a
 * database again (an extension was created there), or pause a database:
 * its worker is stopped and none is started while the backend that paused
 * it runs DROP DATABASE, ALTER DATABASE RENAME and the like, which a
 * connected worker would block.
 *
 * The state exists only when the library is in shared_preload_libraries
 * (shared memory is sized at postmaster start).  One spinlock protects it:
 * every access copies a few fields and does nothing else while holding
 * it; latches are set, and signals sent, after it is released.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "commands/dbcommands.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "worker_state.h"

#define ERROR_TEXT_LEN 512
#define RECHECK_MAX 64			/* databases to look at again, then "all" */
#define PAUSE_MAX 32			/* database commands running at once */
#define PAUSE_WAIT_MS 10000		/* for a worker to exit before a command */

typedef struct WorkerSlot
{
	Oid			database;		/* InvalidOid: the slot is free */
	NameData	name;
	NameData	role;
	NameData	asked_role;		/* the role its settings name, when another */
	bool		starting;		/* started by the launcher, not attached yet */
	bool		stop;			/* the launcher or a command asks it to exit */
	ReoWorkerExit exit;			/* why it exited */
	pid_t		pid;			/* 0: not running */
	Latch	   *latch;
	TimestampTz started_at;
	TimestampTz last_wake;
	TimestampTz next_wake;		/* DT_NOBEGIN while awake */
	int64		shortest;		/* usecs; see ReoLateOrderWakes() */
	double		last_lag_ms;
	bool		have_lag;
	TimestampTz last_error_at;
	char		last_error[ERROR_TEXT_LEN];
} WorkerSlot;

typedef struct PausedDatabase
{
	Oid			database;
	pid_t		by;
} PausedDatabase;

typedef struct SharedState
{
	slock_t		mutex;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	char		launcher_note[ERROR_TEXT_LEN];
	int			nrecheck;
	bool		recheck_all;
	Oid			recheck[RECHECK_MAX];
	PausedDatabase paused[PAUSE_MAX];
	WorkerSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} SharedState;

int			reo_max_workers = 4;

static SharedState *state = NULL;
static int	my_slot = -1;		/* a worker's own slot */

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
StateSize(void)
{
	return add_size(offsetof(SharedState, slots),
					mul_size(sizeof(WorkerSlot), Max(reo_max_workers, 1)));
}

static void
RequestShmem(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(StateSize()));
}

/* Create (postmaster) or attach to (EXEC_BACKEND children) the state. */
static void
StartupShmem(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	state = ShmemInitStruct("release_expired_orders workers", StateSize(), &found);
	if (!found)
	{
		memset(state, 0, StateSize());
		SpinLockInit(&state->mutex);
		for (int i = 0; i < reo_max_workers; i++)
		{
			state->slots[i].next_wake = DT_NOBEGIN;
			state->slots[i].last_error_at = DT_NOBEGIN;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Install the hooks; from _PG_init() while preloading only. */
void
ReoWorkerStateInit(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = RequestShmem;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = StartupShmem;
}

/* Whether the state exists: the library was preloaded. */
bool
ReoWorkerStateReady(void)
{
	return state != NULL;
}

/* ---------------------------------------------------------------- launcher */

static void
LauncherExited(int code, Datum arg)
{
	SpinLockAcquire(&state->mutex);
	state->launcher_pid = 0;
	state->launcher_latch = NULL;
	SpinLockRelease(&state->mutex);
}

void
ReoLauncherStarted(void)
{
	SpinLockAcquire(&state->mutex);
	state->launcher_pid = MyProcPid;
	state->launcher_latch = MyLatch;
	state->recheck_all = true;
	/* a worker that was starting when the previous launcher died never will */
	for (int i = 0; i < reo_max_workers; i++)
		state->slots[i].starting = false;
	SpinLockRelease(&state->mutex);
	on_shmem_exit(LauncherExited, (Datum) 0);
}

/* What worker_status() says of a database that has no slot. */
void
ReoLauncherNote(const char *note)
{
	SpinLockAcquire(&state->mutex);
	strlcpy(state->launcher_note, note, sizeof(state->launcher_note));
	SpinLockRelease(&state->mutex);
}

void
ReoLauncherWake(void)
{
	Latch	   *latch;

	if (state == NULL)
		return;
	SpinLockAcquire(&state->mutex);
	latch = state->launcher_latch;
	SpinLockRelease(&state->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/*
 * The databases to look at again since the last call, at most max of
 * them; *all when more were asked for than were kept.
 */
int
ReoTakeRechecks(Oid *databases, int max, bool *all)
{
	int			n;

	SpinLockAcquire(&state->mutex);
	n = Min(state->nrecheck, max);
	memcpy(databases, state->recheck, n * sizeof(Oid));
	*all = state->recheck_all || state->nrecheck > max;
	state->nrecheck = 0;
	state->recheck_all = false;
	SpinLockRelease(&state->mutex);
	return n;
}

/* Under the lock: whether a live backend has paused the database. */
static bool
PausedLocked(Oid database)
{
	for (int i = 0; i < PAUSE_MAX; i++)
		if (state->paused[i].database == database && state->paused[i].by != 0)
			return true;
	return false;
}

/*
 * Whether a backend that is still alive has paused the database; a pause
 * whose backend died (it could not take it back) is dropped here.
 */
bool
ReoDatabasePaused(Oid database)
{
	pid_t		by[PAUSE_MAX];
	int			n = 0;
	bool		paused = false;

	SpinLockAcquire(&state->mutex);
	for (int i = 0; i < PAUSE_MAX; i++)
		if (state->paused[i].database == database && state->paused[i].by != 0)
			by[n++] = state->paused[i].by;
	SpinLockRelease(&state->mutex);
	for (int i = 0; i < n; i++)
	{
		if (BackendPidGetProc(by[i]) != NULL)
			paused = true;
		else
		{
			SpinLockAcquire(&state->mutex);
			for (int j = 0; j < PAUSE_MAX; j++)
				if (state->paused[j].by == by[i] && state->paused[j].database == database)
					state->paused[j].database = InvalidOid;
			SpinLockRelease(&state->mutex);
		}
	}
	return paused;
}

static int
FindLocked(Oid database)
{
	for (int i = 0; i < reo_max_workers; i++)
		if (state->slots[i].database == database)
			return i;
	return -1;
}

/* The slot of the database, or -1. */
int
ReoSlotFind(Oid database)
{
	int			i;

	SpinLockAcquire(&state->mutex);
	i = FindLocked(database);
	SpinLockRelease(&state->mutex);
	return i;
}

/* A free slot for the database, or -1 when max_workers are in use. */
int
ReoSlotClaim(Oid database, const char *name, const char *role)
{
	int			i;

	SpinLockAcquire(&state->mutex);
	i = FindLocked(InvalidOid);
	if (i >= 0)
	{
		WorkerSlot *s = &state->slots[i];

		memset(s, 0, sizeof(WorkerSlot));
		s->database = database;
		namestrcpy(&s->name, name);
		namestrcpy(&s->role, role);
		s->starting = true;
		s->started_at = DT_NOBEGIN;
		s->last_wake = DT_NOBEGIN;
		s->next_wake = DT_NOBEGIN;
		s->last_error_at = DT_NOBEGIN;
	}
	SpinLockRelease(&state->mutex);
	return i;
}

/* Start again into the slot of a worker that failed, keeping its error. */
void
ReoSlotRestart(int slot, const char *name, const char *role)
{
	WorkerSlot *s = &state->slots[slot];

	SpinLockAcquire(&state->mutex);
	namestrcpy(&s->name, name);
	namestrcpy(&s->role, role);
	NameStr(s->asked_role)[0] = '\0';
	s->starting = true;
	s->stop = false;
	s->exit = WORKER_EXIT_NONE;
	SpinLockRelease(&state->mutex);
}

/* Whether no worker runs in the slot, nor is about to. */
bool
ReoSlotGone(int slot)
{
	bool		gone;

	SpinLockAcquire(&state->mutex);
	gone = state->slots[slot].pid == 0 && !state->slots[slot].starting;
	SpinLockRelease(&state->mutex);
	return gone;
}

Oid
ReoSlotDatabase(int slot)
{
	Oid			database;

	SpinLockAcquire(&state->mutex);
	database = state->slots[slot].database;
	SpinLockRelease(&state->mutex);
	return database;
}

void
ReoSlotRelease(int slot)
{
	SpinLockAcquire(&state->mutex);
	state->slots[slot].database = InvalidOid;
	state->slots[slot].pid = 0;
	state->slots[slot].latch = NULL;
	SpinLockRelease(&state->mutex);
}

/*
 * Why the worker of the slot exited, and the role it asked for (a
 * NAMEDATALEN buffer; empty when none); its last error stays for
 * worker_status().
 */
ReoWorkerExit
ReoSlotExit(int slot, char *asked_role)
{
	ReoWorkerExit why;

	SpinLockAcquire(&state->mutex);
	why = state->slots[slot].exit;
	state->slots[slot].starting = false;
	if (NameStr(state->slots[slot].asked_role)[0] != '\0')
		strlcpy(asked_role, NameStr(state->slots[slot].asked_role), NAMEDATALEN);
	SpinLockRelease(&state->mutex);
	return why;
}

/* Ask the worker of the slot to exit, and wake it. */
void
ReoSlotStop(int slot)
{
	Latch	   *latch;

	SpinLockAcquire(&state->mutex);
	state->slots[slot].stop = true;
	latch = state->slots[slot].latch;
	SpinLockRelease(&state->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

/* ---------------------------------------------------------------- a worker */

/* However the worker exits, it stops being "running". */
static void
WorkerDetach(int code, Datum arg)
{
	WorkerSlot *s = &state->slots[my_slot];

	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&state->mutex);
	s->pid = 0;
	s->latch = NULL;
	s->next_wake = DT_NOBEGIN;
	if (s->exit == WORKER_EXIT_NONE)
	{
		/* killed, or a FATAL: its message is in the server log only */
		s->exit = WORKER_EXIT_ERROR;
		snprintf(s->last_error, sizeof(s->last_error),
				 "the worker exited with code %d; see the server log", code);
		s->last_error_at = now;
	}
	SpinLockRelease(&state->mutex);
}

/*
 * Take the slot the launcher started this worker for; false when it must
 * not run (the launcher or a database command asked it to stop meanwhile).
 */
bool
ReoWorkerAttach(int slot, Oid database)
{
	WorkerSlot *s = &state->slots[slot];
	bool		ok;

	SpinLockAcquire(&state->mutex);
	ok = s->database == database && !s->stop && !PausedLocked(database);
	if (ok)
	{
		s->pid = MyProcPid;
		s->latch = MyLatch;
		s->started_at = GetCurrentTimestamp();
		s->exit = WORKER_EXIT_NONE;
	}
	else if (s->database == database)
		s->exit = WORKER_EXIT_STOPPED;
	s->starting = false;
	SpinLockRelease(&state->mutex);
	if (ok)
	{
		my_slot = slot;
		on_shmem_exit(WorkerDetach, (Datum) 0);
	}
	return ok;
}

void
ReoWorkerSetExit(ReoWorkerExit why)
{
	SpinLockAcquire(&state->mutex);
	state->slots[my_slot].exit = why;
	SpinLockRelease(&state->mutex);
}

/* The worker's settings name another role: it exits to be started as it. */
void
ReoWorkerAskRole(const char *role)
{
	SpinLockAcquire(&state->mutex);
	namestrcpy(&state->slots[my_slot].asked_role, role);
	state->slots[my_slot].exit = WORKER_EXIT_STOPPED;
	SpinLockRelease(&state->mutex);
}

bool
ReoWorkerStopAsked(void)
{
	bool		stop;

	SpinLockAcquire(&state->mutex);
	stop = state->slots[my_slot].stop;
	SpinLockRelease(&state->mutex);
	return stop;
}

void
ReoWorkerStateRole(const char *role)
{
	SpinLockAcquire(&state->mutex);
	namestrcpy(&state->slots[my_slot].role, role);
	SpinLockRelease(&state->mutex);
}

/* Awake at wake; deadline is the one it slept for, or DT_NOBEGIN. */
void
ReoWorkerStateWoke(TimestampTz wake, TimestampTz deadline)
{
	WorkerSlot *s = &state->slots[my_slot];

	SpinLockAcquire(&state->mutex);
	s->last_wake = wake;
	s->next_wake = DT_NOBEGIN;
	if (deadline != DT_NOBEGIN)
	{
		s->last_lag_ms = (double) (wake - deadline) / 1000.0;
		s->have_lag = true;
	}
	SpinLockRelease(&state->mutex);
}

/*
 * Asleep until next_wake; an order created at t cannot be due before
 * t + shortest (the shortest window that applies, in microseconds).
 */
void
ReoWorkerStateSleeps(TimestampTz next_wake, int64 shortest)
{
	WorkerSlot *s = &state->slots[my_slot];

	SpinLockAcquire(&state->mutex);
	s->next_wake = next_wake;
	s->shortest = shortest;
	SpinLockRelease(&state->mutex);
}

void
ReoWorkerStateError(const char *message)
{
	TimestampTz now = GetCurrentTimestamp();
	WorkerSlot *s = &state->slots[my_slot];

	SpinLockAcquire(&state->mutex);
	strlcpy(s->last_error, message, sizeof(s->last_error));
	s->last_error_at = now;
	SpinLockRelease(&state->mutex);
}

/* ---------------------------------------------------------------- any backend */

/*
 * Ask the launcher to look at the database again (an extension was
 * created, a setting changed); InvalidOid: every database.
 */
void
ReoRecheckDatabase(Oid database)
{
	if (state == NULL)
		return;
	SpinLockAcquire(&state->mutex);
	if (!OidIsValid(database))
		state->recheck_all = true;
	else if (state->nrecheck < RECHECK_MAX)
		state->recheck[state->nrecheck++] = database;
	else
		state->recheck_all = true;
	SpinLockRelease(&state->mutex);
	ReoLauncherWake();
}

/* Wake the database's worker, if one runs; whether one does. */
static bool
WakeWorker(Oid database)
{
	Latch	   *latch = NULL;
	int			i;

	if (state == NULL)
		return false;
	SpinLockAcquire(&state->mutex);
	i = FindLocked(database);
	if (i >= 0 && state->slots[i].pid != 0)
		latch = state->slots[i].latch;
	SpinLockRelease(&state->mutex);

	/*
	 * A latch whose worker just exited belongs to a PGPROC that stays in
	 * shared memory: at worst its next owner wakes up once for nothing.
	 */
	if (latch != NULL)
		SetLatch(latch);
	return latch != NULL;
}

void
ReoWakeAllWorkers(void)
{
	Latch	   *latches[1000];
	int			n = 0;

	if (state == NULL)
		return;
	SpinLockAcquire(&state->mutex);
	for (int i = 0; i < reo_max_workers && n < (int) lengthof(latches); i++)
		if (state->slots[i].pid != 0 && state->slots[i].latch != NULL)
			latches[n++] = state->slots[i].latch;
	SpinLockRelease(&state->mutex);
	for (int i = 0; i < n; i++)
		SetLatch(latches[i]);
}

void
ReoWakeDatabaseWorker(Oid database)
{
	(void) WakeWorker(database);
}

/*
 * Whether an order created at created must wake the database's worker:
 * it runs, and is awake (it may have looked before the order was
 * visible) or asleep past the order's earliest possible deadline.
 */
bool
ReoLateOrderWakes(Oid database, TimestampTz created)
{
	bool		wake = false;
	int			i;

	if (state == NULL)
		return false;
	SpinLockAcquire(&state->mutex);
	i = FindLocked(database);
	if (i >= 0 && state->slots[i].pid != 0)
	{
		WorkerSlot *s = &state->slots[i];

		wake = s->next_wake == DT_NOBEGIN ||
			created < s->next_wake - s->shortest;
	}
	SpinLockRelease(&state->mutex);
	return wake;
}

/*
 * Stop the database's worker and keep the launcher from starting one until
 * ReoResumeDatabase(), or until this backend exits: a command that needs
 * the database to itself (DROP DATABASE, ALTER DATABASE RENAME, a CREATE
 * DATABASE that copies it) is never blocked by the worker, whatever it is
 * doing.  Waits up to PAUSE_WAIT_MS for the worker to exit; the command
 * then reports any session still connected, as it would.
 */
void
ReoPauseDatabase(Oid database)
{
	pid_t		pid = 0;
	Latch	   *latch = NULL;
	int			i;
	int			entry = -1;
	TimestampTz give_up = GetCurrentTimestamp() + (TimestampTz) PAUSE_WAIT_MS * 1000;

	if (state == NULL || !OidIsValid(database))
		return;
	SpinLockAcquire(&state->mutex);
	/* this backend's own pause of the database, else a free entry */
	for (int j = 0; j < PAUSE_MAX && entry < 0; j++)
		if (state->paused[j].database == database && state->paused[j].by == MyProcPid)
			entry = j;
	for (int j = 0; j < PAUSE_MAX && entry < 0; j++)
		if (state->paused[j].by == 0 || state->paused[j].database == InvalidOid)
			entry = j;
	if (entry < 0)
	{
		SpinLockRelease(&state->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("release_expired_orders cannot stop the deadline worker of this database: %d database commands keep workers stopped already",
						PAUSE_MAX),
				 errhint("Run the command again once one of the others has ended.")));
	}
	state->paused[entry].database = database;
	state->paused[entry].by = MyProcPid;
	i = FindLocked(database);
	if (i >= 0)
	{
		state->slots[i].stop = true;
		/* asked to stop, not failed: no delay added to its restart */
		if (state->slots[i].exit == WORKER_EXIT_NONE)
			state->slots[i].exit = WORKER_EXIT_STOPPED;
		pid = state->slots[i].pid;
		latch = state->slots[i].latch;
	}
	SpinLockRelease(&state->mutex);
	if (i < 0)
		return;
	if (pid != 0)
		kill(pid, SIGTERM);
	if (latch != NULL)
		SetLatch(latch);

	for (;;)
	{
		bool		gone;

		SpinLockAcquire(&state->mutex);
		gone = state->slots[i].database != database ||
			(state->slots[i].pid == 0 && !state->slots[i].starting);
		if (!gone && pid == 0 && state->slots[i].pid != 0)
			pid = state->slots[i].pid; /* it attached just now */
		SpinLockRelease(&state->mutex);
		if (gone || GetCurrentTimestamp() > give_up)
			break;
		if (pid != 0)
			kill(pid, SIGTERM);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* The command is over: the launcher may serve the database again. */
void
ReoResumeDatabase(Oid database)
{
	if (state == NULL || !OidIsValid(database))
		return;
	SpinLockAcquire(&state->mutex);
	for (int j = 0; j < PAUSE_MAX; j++)
		if (state->paused[j].database == database && state->paused[j].by == MyProcPid)
		{
			state->paused[j].database = InvalidOid;
			state->paused[j].by = 0;
		}
	SpinLockRelease(&state->mutex);
	ReoLauncherWake();
}

/* ---------------------------------------------------------------- SQL */

static Datum
TimeOrNull(TimestampTz t, bool *isnull)
{
	*isnull = (t == DT_NOBEGIN);
	return TimestampTzGetDatum(t);
}

/*
 * Whether this database is to be served, by the settings this session
 * sees: deadline_worker on, and worker_database empty or naming it.
 */
static bool
DatabaseServed(void)
{
	const char *only = GetConfigOption("release_expired_orders.worker_database", true, false);
	const char *on = GetConfigOption("release_expired_orders.deadline_worker", true, false);

	if (on != NULL && strcmp(on, "off") == 0)
		return false;
	return only == NULL || only[0] == '\0' ||
		strcmp(only, get_database_name(MyDatabaseId)) == 0;
}

PG_FUNCTION_INFO_V1(reo_worker_status);

/*
 * worker_status(): the worker of this database, one row when the library
 * was preloaded with max_workers above 0 and the database is to be served
 * (pid NULL when none runs, and last_error says why), no row otherwise.
 */
Datum
reo_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerSlot	copy;
	Datum		values[9];
	bool		nulls[9] = {0};
	char		note[ERROR_TEXT_LEN];
	pid_t		launcher;
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	if (state == NULL || reo_max_workers == 0 || !DatabaseServed())
		return (Datum) 0;

	SpinLockAcquire(&state->mutex);
	i = FindLocked(MyDatabaseId);
	if (i >= 0)
		memcpy(&copy, &state->slots[i], sizeof(WorkerSlot));
	launcher = state->launcher_pid;
	strlcpy(note, state->launcher_note, sizeof(note));
	SpinLockRelease(&state->mutex);

	if (i < 0)
	{
		memset(&copy, 0, sizeof(copy));
		copy.started_at = copy.last_wake = copy.next_wake = DT_NOBEGIN;
		copy.last_error_at = DT_NOBEGIN;
		if (launcher == 0)
			strlcpy(copy.last_error, "the launcher of the deadline workers is not running",
					sizeof(copy.last_error));
		else if (note[0] != '\0')
			strlcpy(copy.last_error, note, sizeof(copy.last_error));
		else
			strlcpy(copy.last_error, "no deadline worker serves this database yet",
					sizeof(copy.last_error));
	}
	namestrcpy(&copy.name, get_database_name(MyDatabaseId));

	values[0] = Int32GetDatum((int32) copy.pid);
	nulls[0] = (copy.pid == 0);
	values[1] = NameGetDatum(&copy.name);
	values[2] = NameGetDatum(&copy.role);
	nulls[2] = (NameStr(copy.role)[0] == '\0');
	values[3] = TimeOrNull(copy.pid ? copy.started_at : DT_NOBEGIN, &nulls[3]);
	values[4] = TimeOrNull(copy.last_wake, &nulls[4]);
	values[5] = TimeOrNull(copy.pid ? copy.next_wake : DT_NOBEGIN, &nulls[5]);
	values[6] = Float8GetDatum(copy.last_lag_ms);
	nulls[6] = !copy.have_lag;
	values[7] = CStringGetTextDatum(copy.last_error);
	nulls[7] = (copy.last_error[0] == '\0');
	values[8] = TimeOrNull(copy.last_error_at, &nulls[8]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(reo_wake_worker);

/*
 * wake_worker(): make this database's worker look for the next deadline
 * now (after an order with a short window was placed, or a window
 * changed).  false when no worker runs.
 */
Datum
reo_wake_worker(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(WakeWorker(MyDatabaseId));
}
