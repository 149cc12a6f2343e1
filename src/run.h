/*-------------------------------------------------------------------------
 *
 * run.h
 *	  One run of the job: what it was asked, what it knows, what it did;
 *	  kept by the job (job.c) and added to by each chunk (chunk.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_RUN_H
#define REO_RUN_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/uuid.h"

#include "app_schema.h"
#include "summary.h"

/*
 * Everything one call of the procedure knows and accumulates.  Lives in a
 * memory context that survives the commits between chunks.  Timestamps are
 * kept as values, not Datums, because a Datum of a timestamp points into
 * memory on builds where 8-byte values are passed by reference.
 */
typedef struct ReoRun
{
	/* arguments and settings, fixed at the start */
	int			timeout_minutes;
	int			batch_limit;
	int			chunk_size;
	int			retry_backoff_s;
	int			lock_timeout_ms;
	bool		atomic;
	char	   *naive_time_zone;
	AppSchema	app;
	bool		write_notifications;	/* turned off when they cannot be written */
	char	   *warnings;		/* for the run row, or NULL */
	const char *scheduler;		/* "call", "pg_cron" or "worker" */

	/* payment windows, read once at the start */
	bool		windowed;		/* in force: the windowed statements */
	char	   *windows_json;	/* those that apply, for the run row */

	/* times */
	TimestampTz started;
	TimestampTz reference;		/* the first transaction's now() */
	TimestampTz cutoff;			/* created_at older than this expires */
	int64		cutoff_value;	/* cutoff in created_at's convention */
	int64		not_yet_from;	/* created_at without time zone in */
	int64		not_yet_to;		/* [from, to) is not due yet (DST) */
	bool		probe_first;	/* ask whether anything is due before the scan */
	int64		due_before;		/* nothing is due unless created before this */

	/*
	 * keyset position: the last candidate taken, in created_at's convention,
	 * or by its deadline when windows are in force
	 */
	int64		after_created;
	TimestampTz after_deadline;
	pg_uuid_t	after_id;

	/* results */
	int64		run_id;
	bool		run_lock_1_0;	/* holds 1.0's lock that marks it alive */
	int64		found;
	int64		released;
	int64		failed;
	int64		vetoed;
	ReoErrorList errors;
	MemoryContext cxt;			/* survives commits; holds this struct */
	MemoryContext chunk_cxt;	/* reset for every chunk */
} ReoRun;

#endif							/* REO_RUN_H */
