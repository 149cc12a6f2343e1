/*-------------------------------------------------------------------------
 *
 * release_expired_orders.h
 *	  Shared declarations of the release_expired_orders extension.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RELEASE_EXPIRED_ORDERS_H
#define RELEASE_EXPIRED_ORDERS_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/elog.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* The schema that holds the extension's own tables and helpers. */
#define REO_SCHEMA "release_expired_orders"

/* Advisory lock key that marks a run as alive in pg_locks (classid). */
#define REO_RUN_LOCK_KEY 1919250176

/* Settings (release_expired_orders.*), defined in release_expired_orders.c. */
extern int	reo_timeout_minutes;
extern int	reo_batch_limit;
extern int	reo_chunk_size;
extern int	reo_lock_timeout_ms;
extern char *reo_naive_time_zone;
extern char *reo_app_schema;
extern bool reo_write_notifications;
extern int	reo_slow_run_ms;
extern int	reo_alert_after_min;
extern int	reo_history_retention_min;
extern int	reo_purge_limit;

/*
 * What the catalog says about the application's tables: the parts of their
 * shape that change the SQL we run.  Filled by ReoDiscoverSchema().
 */
typedef struct AppSchema
{
	char		schema[NAMEDATALEN];
	bool		orders_created_tz;	/* orders.created_at is timestamptz */
	bool		orders_updated_tz;
	bool		products_updated_tz;
	bool		rounds_updated_tz;
	bool		notifications;	/* write notifications rows */
	bool		notifications_tz;	/* notifications.sent_at/created_at */
} AppSchema;

/* schema.c */
extern void ReoDiscoverSchema(AppSchema *app, bool want_notifications);

/* statements.c */
typedef enum ReoStatement
{
	STMT_CANDIDATES,
	STMT_LOCK_PRODUCTS,
	STMT_LOCK_ROUNDS,
	STMT_RELEASE,
	STMT_RECORD_FAILURE,
	STMT_RUN_BEGIN,
	STMT_RUN_PROGRESS,
	STMT_RUN_END,
	STMT_PURGE,
	STMT_COUNT
} ReoStatement;

extern void ReoUseSchema(const AppSchema *app);
extern uint64 ReoExecute(ReoStatement stmt, Datum *values, const char *nulls);

/*
 * Everything one call of the procedure knows and accumulates.  Lives in a
 * memory context that survives the commits between chunks.
 */
typedef struct ReoRun
{
	/* arguments and settings, fixed at the start */
	int			timeout_minutes;
	int			batch_limit;
	int			chunk_size;
	bool		atomic;
	char	   *naive_time_zone;
	AppSchema	app;

	/* times */
	TimestampTz started;
	TimestampTz cutoff;			/* created_at older than this expires */
	Datum		cutoff_value;	/* cutoff in created_at's convention */

	/* keyset position: the last candidate taken */
	Datum		after_created;
	pg_uuid_t	after_id;

	/* results */
	int64		run_id;
	int64		found;
	int64		released;
	int64		failed;
	int			errors_listed;
	StringInfoData errors;		/* JSON array body of {orderId, ...} */
	MemoryContext cxt;			/* survives commits; holds this struct */
	MemoryContext chunk_cxt;	/* reset for every chunk */
} ReoRun;

/* release.c */
extern int	ReoReleaseChunk(ReoRun *run, int wanted);
extern Datum ReoNowValue(ReoRun *run, bool tz);
extern bool ReoRethrowable(ErrorData *edata);
extern ErrorData *ReoInSubtransaction(void (*fn) (void *), void *arg);

/* audit.c */
extern void ReoRunBegin(ReoRun *run);
extern void ReoRunProgress(ReoRun *run, int found, int released, int failed);
extern void ReoRunEnd(ReoRun *run, const char *outcome, const char *error);
extern void ReoRecordFailure(ReoRun *run, Datum *order, const char *nulls,
							 ErrorData *edata);
extern void ReoPurgeHistory(void);
extern char *ReoIsoUtc(TimestampTz t);

/* monitor.c */
extern void ReoLockRun(int64 run_id, bool lock);
extern void ReoListError(ReoRun *run, const char *order_id,
						 const char *order_number, const char *error);
extern char *ReoSummaryJson(ReoRun *run, const char *outcome,
							const char *message, int64 elapsed_ms);

#endif							/* RELEASE_EXPIRED_ORDERS_H */
