/*-------------------------------------------------------------------------
 *
 * worker_state.c
 *	  The deadline worker's state in shared memory, and the two SQL
 *	  functions that read it: worker_status() and wake_worker().
 *
 * The state exists only when the library is in shared_preload_libraries
 * (shared memory is sized at postmaster start).  One spinlock protects it:
 * every access copies a few fields and does nothing else while holding it.
 * The worker writes; any backend reads, or sets the worker's latch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "worker_state.h"

#define ERROR_TEXT_LEN 512

typedef struct WorkerState
{
	slock_t		mutex;
	pid_t		pid;			/* 0: not running */
	Latch	   *latch;			/* the running worker's, or NULL */
	NameData	database;
	NameData	role;			/* the role of its latest look, or empty */
	TimestampTz started_at;
	TimestampTz last_wake;
	TimestampTz next_wake;		/* DT_NOBEGIN while awake */
	double		last_lag_ms;
	bool		have_lag;
	TimestampTz last_error_at;
	char		last_error[ERROR_TEXT_LEN];
} WorkerState;

static WorkerState *state = NULL;

#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* From 15 on, shared memory must be asked for in this hook. */
static void
RequestShmem(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerState)));
}

/* Create (postmaster) or attach to (EXEC_BACKEND children) the state. */
static void
StartupShmem(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	state = ShmemInitStruct("release_expired_orders worker", sizeof(WorkerState), &found);
	if (!found)
	{
		memset(state, 0, sizeof(WorkerState));
		SpinLockInit(&state->mutex);
		state->started_at = DT_NOBEGIN;
		state->last_wake = DT_NOBEGIN;
		state->next_wake = DT_NOBEGIN;
		state->last_error_at = DT_NOBEGIN;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Install the hooks; from _PG_init() while preloading only. */
void
ReoWorkerStateInit(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = RequestShmem;
#else
	RequestShmem();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = StartupShmem;
}

/* However the worker exits, it stops being "running". */
static void
WorkerExited(int code, Datum arg)
{
	SpinLockAcquire(&state->mutex);
	state->pid = 0;
	state->latch = NULL;
	state->next_wake = DT_NOBEGIN;
	SpinLockRelease(&state->mutex);
}

/* The worker starts serving database. */
void
ReoWorkerStateStarted(const char *database)
{
	Assert(state != NULL);
	SpinLockAcquire(&state->mutex);
	state->pid = MyProcPid;
	state->latch = MyLatch;
	namestrcpy(&state->database, database);
	state->started_at = GetCurrentTimestamp();
	state->last_wake = DT_NOBEGIN;
	state->next_wake = DT_NOBEGIN;
	state->have_lag = false;
	SpinLockRelease(&state->mutex);
	on_shmem_exit(WorkerExited, (Datum) 0);
}

void
ReoWorkerStateRole(const char *role)
{
	SpinLockAcquire(&state->mutex);
	namestrcpy(&state->role, role);
	SpinLockRelease(&state->mutex);
}

/* Awake at wake; deadline is the one it slept for, or DT_NOBEGIN. */
void
ReoWorkerStateWoke(TimestampTz wake, TimestampTz deadline)
{
	SpinLockAcquire(&state->mutex);
	state->last_wake = wake;
	state->next_wake = DT_NOBEGIN;
	if (deadline != DT_NOBEGIN)
	{
		state->last_lag_ms = (double) (wake - deadline) / 1000.0;
		state->have_lag = true;
	}
	SpinLockRelease(&state->mutex);
}

void
ReoWorkerStateSleeps(TimestampTz next_wake)
{
	SpinLockAcquire(&state->mutex);
	state->next_wake = next_wake;
	SpinLockRelease(&state->mutex);
}

void
ReoWorkerStateError(const char *message)
{
	TimestampTz now = GetCurrentTimestamp();

	SpinLockAcquire(&state->mutex);
	strlcpy(state->last_error, message, sizeof(state->last_error));
	state->last_error_at = now;
	SpinLockRelease(&state->mutex);
}

/* release_expired_orders.worker_database, empty when not set. */
static const char *
ConfiguredDatabase(void)
{
	const char *db = GetConfigOption("release_expired_orders.worker_database", true, false);

	return db ? db : "";
}

static Datum
TimeOrNull(TimestampTz t, bool *isnull)
{
	*isnull = (t == DT_NOBEGIN);
	return TimestampTzGetDatum(t);
}

PG_FUNCTION_INFO_V1(reo_worker_status);

/*
 * worker_status(): one row when the library was preloaded and a worker is
 * configured (pid NULL when it is not running), no row otherwise.
 */
Datum
reo_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	WorkerState copy;
	Datum		values[9];
	bool		nulls[9] = {0};
	const char *role;

	InitMaterializedSRF(fcinfo, 0);
	if (state == NULL || ConfiguredDatabase()[0] == '\0')
		return (Datum) 0;

	SpinLockAcquire(&state->mutex);
	memcpy(&copy, state, sizeof(WorkerState));
	SpinLockRelease(&state->mutex);

	values[0] = Int32GetDatum((int32) copy.pid);
	nulls[0] = (copy.pid == 0);
	if (copy.pid == 0 || NameStr(copy.database)[0] == '\0')
		namestrcpy(&copy.database, ConfiguredDatabase());
	values[1] = NameGetDatum(&copy.database);
	role = NameStr(copy.role);
	if (role[0] == '\0')
		role = GetConfigOption("release_expired_orders.worker_role", true, false);
	nulls[2] = (role == NULL || role[0] == '\0');
	if (!nulls[2])
		namestrcpy(&copy.role, role);
	values[2] = NameGetDatum(&copy.role);
	values[3] = TimeOrNull(copy.pid ? copy.started_at : DT_NOBEGIN, &nulls[3]);
	values[4] = TimeOrNull(copy.last_wake, &nulls[4]);
	values[5] = TimeOrNull(copy.pid ? copy.next_wake : DT_NOBEGIN, &nulls[5]);
	values[6] = Float8GetDatum(copy.last_lag_ms);
	nulls[6] = !copy.have_lag;
	values[7] = CStringGetTextDatum(copy.last_error);
	nulls[7] = (copy.last_error_at == DT_NOBEGIN);
	values[8] = TimeOrNull(copy.last_error_at, &nulls[8]);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(reo_wake_worker);

/*
 * wake_worker(): make the worker look for the next deadline now (after an
 * order with a short window was placed, or a window changed).  false when
 * no worker is running.
 */
Datum
reo_wake_worker(PG_FUNCTION_ARGS)
{
	Latch	   *latch = NULL;

	if (state == NULL)
		PG_RETURN_BOOL(false);
	SpinLockAcquire(&state->mutex);
	if (state->pid != 0)
		latch = state->latch;
	SpinLockRelease(&state->mutex);

	/*
	 * Not under the spinlock (SetLatch may make a system call).  A latch
	 * whose worker just exited belongs to a PGPROC that stays in shared
	 * memory: at worst its next owner wakes up once for nothing.
	 */
	if (latch != NULL)
		SetLatch(latch);
	PG_RETURN_BOOL(latch != NULL);
}
