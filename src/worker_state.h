/*-------------------------------------------------------------------------
 *
 * worker_state.h
 *	  What the launcher and the per-database deadline workers tell the rest
 *	  of the cluster, in shared memory: a slot per database served, the
 *	  databases to look at again, and those whose DDL waits for no worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_WORKER_STATE_H
#define REO_WORKER_STATE_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"

/* Why a worker's slot was given back. */
typedef enum ReoWorkerExit
{
	WORKER_EXIT_NONE,			/* still running, or never started */
	WORKER_EXIT_ERROR,			/* failed: started again after a delay */
	WORKER_EXIT_NO_EXTENSION,	/* the database has no release_expired_orders */
	WORKER_EXIT_DISABLED,		/* deadline_worker is off for the database */
	WORKER_EXIT_STOPPED			/* asked to stop, or for another role or new
								 * settings: started again at once */
} ReoWorkerExit;

/* What the launcher starts a worker with (its bgw_extra). */
typedef struct ReoWorkerStart
{
	int			slot;
	Oid			database;
	Oid			role;			/* the role to run as */
	bool		login;			/* connect as the role; else become it */
	char		role_name[NAMEDATALEN];
} ReoWorkerStart;

extern int	reo_max_workers;

extern void ReoWorkerStateInit(void);
extern bool ReoWorkerStateReady(void);

/* the launcher */
extern void ReoLauncherStarted(void);
extern void ReoLauncherWake(void);
extern int	ReoTakeRechecks(Oid *databases, int max, bool *all);
extern bool ReoDatabasePaused(Oid database);
extern int	ReoSlotFind(Oid database);
extern int	ReoSlotClaim(Oid database, const char *name, const char *role);
extern void ReoSlotRestart(int slot, const char *name, const char *role);
extern void ReoSlotRelease(int slot);
extern bool ReoSlotGone(int slot);
extern Oid	ReoSlotDatabase(int slot);
extern void ReoSlotStarting(int slot, pid_t pid);
extern ReoWorkerExit ReoSlotExit(int slot, char *asked_role);
extern void ReoSlotStop(int slot);
extern void ReoLauncherNote(const char *note);

/* a worker */
extern bool ReoWorkerAttach(int slot, Oid database);
extern void ReoWorkerSetExit(ReoWorkerExit why);
extern void ReoWorkerAskRole(const char *role);
extern bool ReoWorkerStopAsked(void);
extern void ReoWorkerStateRole(const char *role);
extern void ReoWorkerStateWoke(TimestampTz wake, TimestampTz deadline);
extern void ReoWorkerStateSleeps(TimestampTz next_wake, int64 shortest_window);
extern void ReoWorkerStateError(const char *message);

/* any backend */
extern void ReoRecheckDatabase(Oid database);
extern void ReoWakeDatabaseWorker(Oid database);
extern void ReoWakeAllWorkers(void);
extern bool ReoLateOrderWakes(Oid database, TimestampTz created);
extern void ReoPauseDatabase(Oid database);
extern void ReoResumeDatabase(Oid database);

#endif							/* REO_WORKER_STATE_H */
