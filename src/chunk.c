/*-------------------------------------------------------------------------
 *
 * chunk.c
 *	  One chunk: its candidates, the fast path, and the fallback that finds
 *	  the orders that cannot be released.
 *
 * A chunk is taken oldest first with FOR UPDATE SKIP LOCKED and copied out
 * of SPI, which fixes the locked set once, and released as one part
 * (part.c) in a subtransaction.  If that fails, the chunk's counter rows
 * are locked once, in id order, by the chunk's transaction, and the chunk
 * is split in halves until each failing order stands alone: a few
 * subtransactions per bad order, and no deadlock with another run.
 * Guarantees: a failed or vetoed order is audited, which leaves it alone
 * for release_expired_orders.retry_backoff; notifications that cannot be
 * written are skipped, never the release.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "chunk.h"
#include "part.h"
#include "sql.h"
#include "util.h"

/* Copy n candidate rows of a tuple table out of SPI, into c. */
static void
CopyCandidates(SPITupleTable *tt, uint64 n, Candidate *c)
{
	for (uint64 i = 0; i < n; i++)
	{
		for (int col = 0; col < C_NCOLS; col++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(tt->vals[i], tt->tupdesc, col + 1, &isnull);

			c[i].nulls[col] = isnull ? 'n' : ' ';
			if (isnull)
				continue;
			if (col == C_NUMBER)
				c[i].values[col] = PointerGetDatum(DatumGetTextPCopy(d));
			else if (col == C_QUANTITY)
				c[i].values[col] = d;
			else
				c[i].values[col] = datumCopy(d, false, UUID_LEN);
		}
	}
}

/* The arguments of the candidate statements, from the run's keyset position. */
static void
CandidateArgs(ReoRun *run, int wanted, Datum *values)
{
	values[0] = run->windowed ? TimestampTzGetDatum(run->reference) :
		TimestampGetDatum(run->cutoff_value);
	values[1] = run->windowed ? TimestampTzGetDatum(run->after_deadline) :
		TimestampGetDatum(run->after_created);
	values[2] = UUIDPGetDatum(&run->after_id);
	values[3] = Int32GetDatum(wanted);
	values[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp() -
									(TimestampTz) run->retry_backoff_s * USECS_PER_SEC);
	values[5] = Int32GetDatum(run->timeout_minutes);
	values[6] = CStringGetTextDatum(run->naive_time_zone);
}

/*
 * Lock the windowed candidates picked, skipping the held ones, then keep
 * those still due by their rows as they are now that they are locked (a
 * transaction that committed in between may have given an order a longer
 * window).  Copies them to c; returns how many.
 */
static int
StillDue(ReoRun *run, Datum picked, Candidate *c)
{
	uint64		locked = ReoExecute(STMT_LOCK_ORDERS, &picked, NULL);
	SPITupleTable *tt = SPI_tuptable;
	Datum	   *ids;
	Datum		args[5];
	uint64		due;
	int			kept = 0;

	if (locked == 0)
	{
		SPI_freetuptable(tt);
		return 0;
	}
	CopyCandidates(tt, locked, c);
	SPI_freetuptable(tt);

	ids = palloc(sizeof(Datum) * locked);
	for (uint64 i = 0; i < locked; i++)
		ids[i] = c[i].values[C_ID];
	args[0] = PointerGetDatum(construct_array(ids, (int) locked, UUIDOID, UUID_LEN, false,
											  TYPALIGN_CHAR));
	args[1] = TimestampTzGetDatum(run->reference);
	args[2] = Int32GetDatum(run->timeout_minutes);
	args[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp() -
								  (TimestampTz) run->retry_backoff_s * USECS_PER_SEC);
	args[4] = CStringGetTextDatum(run->naive_time_zone);
	due = ReoExecute(STMT_STILL_DUE, args, NULL);
	tt = SPI_tuptable;

	/* keep the candidate order; usually every one is still due */
	if (due == locked)
	{
		SPI_freetuptable(tt);
		return (int) locked;
	}
	for (uint64 i = 0; i < locked; i++)
	{
		bool		still = false;

		for (uint64 j = 0; j < due && !still; j++)
		{
			bool		isnull;

			still = ReoSameUuid(c[i].values[C_ID],
								SPI_getbinval(tt->vals[j], tt->tupdesc, 1, &isnull));
		}
		if (still)
			c[kept++] = c[i];
	}
	SPI_freetuptable(tt);
	return kept;
}

/*
 * Take the next candidates after the keyset position, locked, copied out
 * of SPI (which fixes the locked set once).  Without windows one statement
 * walks the index past the orders another transaction holds.  With
 * windows the orders are picked by deadline first and then locked, and
 * the picking goes on past the held ones until wanted are locked or none
 * are left, so that held orders never hide the due orders behind them.
 */
static int
SelectCandidates(ReoRun *run, int wanted, Candidate **out)
{
	Candidate  *c = palloc0(sizeof(Candidate) * Max(wanted, 1));
	Datum		values[7];
	SPITupleTable *tt;
	uint64		n;
	int			found = 0;
	bool		isnull;
	TimestampTz prev_deadline;
	pg_uuid_t	prev_id;

	*out = c;
	if (!run->windowed)
	{
		CandidateArgs(run, wanted, values);
		n = ReoExecute(STMT_CANDIDATES, values, NULL);
		tt = SPI_tuptable;
		CopyCandidates(tt, n, c);
		if (n > 0)
		{
			/* created_at is never NULL here: it passed "created_at < cutoff". */
			run->after_created = DatumGetTimestamp(SPI_getbinval(tt->vals[n - 1],
																 tt->tupdesc, 7, &isnull));
			memcpy(&run->after_id, DatumGetUUIDP(c[n - 1].values[C_ID]), UUID_LEN);
		}
		SPI_freetuptable(tt);
		return (int) n;
	}

	prev_deadline = run->after_deadline;
	prev_id = run->after_id;
	for (;;)
	{
		int			asked = wanted - found;
		Datum	   *ids;
		Datum		picked;

		CandidateArgs(run, asked, values);
		n = ReoExecute(STMT_PREVIEW_W, values, NULL);
		tt = SPI_tuptable;
		if (n == 0)
		{
			SPI_freetuptable(tt);
			break;
		}
		ids = palloc(sizeof(Datum) * n);
		for (uint64 i = 0; i < n; i++)
			ids[i] = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull);
		picked = PointerGetDatum(construct_array(ids, (int) n, UUIDOID, UUID_LEN, false,
												 TYPALIGN_CHAR));
		run->after_deadline = DatumGetTimestampTz(SPI_getbinval(tt->vals[n - 1],
																tt->tupdesc, 9, &isnull));
		memcpy(&run->after_id, DatumGetUUIDP(ids[n - 1]), UUID_LEN);
		SPI_freetuptable(tt);

		found += StillDue(run, picked, c + found);
		if (found >= wanted || (int) n < asked)
			break;
		/* Never the same position twice: the loop always moves on. */
		if (run->after_deadline < prev_deadline ||
			(run->after_deadline == prev_deadline &&
			 memcmp(&run->after_id, &prev_id, UUID_LEN) <= 0))
			elog(ERROR, "the windowed candidate scan did not move past (%s, %s)",
				 timestamptz_to_str(prev_deadline),
				 DatumGetCString(DirectFunctionCall1(uuid_out, UUIDPGetDatum(&prev_id))));
		prev_deadline = run->after_deadline;
		prev_id = run->after_id;
	}
	return found;
}

/* A uuid[] of the chunk's distinct, non-NULL product or round ids. */
static Datum
CounterIds(Chunk *chunk, int col, int *count)
{
	Datum	   *elems = palloc(sizeof(Datum) * chunk->n);
	int			n = 0;

	for (int i = 0; i < chunk->n; i++)
	{
		Candidate  *c = &chunk->c[i];
		bool		seen = false;

		/* Counters move only for a positive quantity (README, Releasing an order). */
		if (c->nulls[col] == 'n' || c->nulls[C_QUANTITY] == 'n' ||
			DatumGetInt32(c->values[C_QUANTITY]) <= 0)
			continue;
		for (int j = 0; j < n && !seen; j++)
			seen = ReoSameUuid(elems[j], c->values[col]);
		if (!seen)
			elems[n++] = c->values[col];
	}
	*count = n;
	return PointerGetDatum(construct_array(elems, n, UUIDOID, UUID_LEN, false,
										   TYPALIGN_CHAR));
}

typedef struct LockStep
{
	ReoStatement stmt;
	Datum		ids;
} LockStep;

static void
LockStepFn(void *arg)
{
	LockStep   *step = (LockStep *) arg;

	ReoExecute(step->stmt, &step->ids, NULL);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Before a fallback, lock the chunk's product or round rows in id order in
 * the chunk's own transaction, so that the parts tried after it wait for
 * nothing and cannot deadlock with another run.  A row that stays locked
 * past lock_timeout fails the chunk's orders that need it, with that error.
 */
static void
LockCounters(Chunk *chunk, int col, ReoStatement stmt)
{
	int			count;
	Datum		ids = CounterIds(chunk, col, &count);
	LockStep	step = {stmt, ids};
	ErrorData  *edata;
	Datum	   *elems;

	if (count == 0)
		return;
	edata = ReoInSubtransaction(LockStepFn, &step);
	if (edata == NULL)
		return;
	if (ReoErrorEndsRun(edata))
		ReThrowError(edata);

	/* One row at a time, still in id order, to find the one that waits. */
	deconstruct_array(DatumGetArrayTypeP(ids), UUIDOID, UUID_LEN, false,
					  TYPALIGN_CHAR, &elems, NULL, &count);
	for (int j = 0; j < count; j++)
	{
		step.ids = PointerGetDatum(construct_array(&elems[j], 1, UUIDOID, UUID_LEN,
												   false, TYPALIGN_CHAR));
		edata = ReoInSubtransaction(LockStepFn, &step);
		if (edata == NULL)
			continue;
		if (ReoErrorEndsRun(edata))
			ReThrowError(edata);
		for (int i = 0; i < chunk->n; i++)
		{
			Candidate  *c = &chunk->c[i];

			if (c->state == CAND_PENDING && c->nulls[col] != 'n' &&
				ReoSameUuid(c->values[col], elems[j]))
			{
				c->state = CAND_FAILED;
				c->error = edata;
			}
		}
	}
}

/*
 * The notifications are a courtesy to old dashboards and never block a
 * release: once writing them is seen to fail, the run goes on without them,
 * with a WARNING and a note in its row for health().
 */
static void
SkipNotifications(ReoRun *run, ErrorData *edata)
{
	run->write_notifications = false;
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("release_expired_orders skipped the application's notifications: %s",
					edata->message),
			 errdetail("The orders were released without them."),
			 errhint("Make %s.notifications accept the rows release_expired_orders writes, or set release_expired_orders.write_notifications to off.",
					 quote_identifier(run->app.schema))));
	run->warnings = MemoryContextStrdup(run->cxt,
										psprintf("notifications skipped: %s", edata->message));
}

/*
 * Try the part again without notifications after it failed with them;
 * when that succeeds, they were the cause and stay off for the run.
 */
static bool
SucceedsWithoutNotifications(Chunk *chunk, int *part, int part_n, ErrorData *edata)
{
	ReoRun	   *run = chunk->run;

	/*
	 * Even for an error that says nothing about the order (a trigger on
	 * notifications may raise a serialization failure for every row): if
	 * the order goes through without them, they were the cause.
	 */
	if (!run->write_notifications)
		return false;
	run->write_notifications = false;
	if (ReoTryPart(chunk, part, part_n) != NULL)
	{
		run->write_notifications = true;
		return false;
	}
	SkipNotifications(run, edata);
	run->released += chunk->part_released;
	return true;
}

/*
 * Release what can be released of part, splitting it in halves on failure
 * until each failing order stands alone.  A chunk with one bad order costs
 * about 2 log2(n) subtransactions instead of n.
 */
static void
Bisect(Chunk *chunk, int *part_in, int part_n_in, ErrorData *known)
{
	ErrorData  *edata = known;
	int		   *part = palloc(sizeof(int) * Max(part_n_in, 1));
	int			part_n = 0;
	int			half;

	/* Only the orders still pending: a trigger may have vetoed some meanwhile. */
	for (int i = 0; i < part_n_in; i++)
		if (chunk->c[part_in[i]].state == CAND_PENDING)
			part[part_n++] = part_in[i];
	if (part_n != part_n_in)
		edata = NULL;			/* the error was that of another set of orders */
	if (part_n == 0)
		return;
	if (edata == NULL)
	{
		edata = ReoTryPart(chunk, part, part_n);
		if (edata == NULL)
		{
			chunk->run->released += chunk->part_released;
			return;
		}
		if (ReoErrorEndsRun(edata))
			ReThrowError(edata);
	}
	if (part_n == 1)
	{
		if (!SucceedsWithoutNotifications(chunk, part, 1, edata))
		{
			chunk->c[part[0]].state = CAND_FAILED;
			chunk->c[part[0]].error = edata;
		}
		return;
	}
	half = part_n / 2;
	Bisect(chunk, part, half, NULL);
	Bisect(chunk, part + half, part_n - half, NULL);
}

/*
 * Audit one failed or vetoed order, which starts its retry backoff, and
 * list a failure in the summary.
 */
typedef struct RecordStep
{
	Datum	   *values;
	char	   *nulls;
} RecordStep;

static void
RecordFn(void *arg)
{
	RecordStep *step = (RecordStep *) arg;

	ReoExecute(STMT_NOTE_FAILED, step->values, step->nulls);
}

static void
RecordOutcome(Chunk *chunk, Candidate *c)
{
	RecordStep	step;
	ErrorData  *edata;
	ReoRun	   *run = chunk->run;
	bool		failed = (c->state == CAND_FAILED);
	const char *sqlstate = failed ? unpack_sql_state(c->error->sqlerrcode) : NULL;
	const char *message = failed ?
		(c->error->message ? c->error->message : "unknown error") :
		c->veto_written ?
		"a trigger on orders kept the order pending (a BEFORE trigger returned OLD or wrote its statuses back); the order stays pending" :
		"a trigger on orders skipped the update (a BEFORE trigger returned NULL); the order stays pending";
	Datum		values[10];
	char		nulls[10];
	Datum		note[2];

	memset(nulls, ' ', sizeof(nulls));
	values[0] = Int64GetDatum(run->run_id);
	memcpy(values + 1, c->values, C_NCOLS * sizeof(Datum));
	memcpy(nulls + 1, c->nulls, C_NCOLS);
	values[7] = CStringGetTextDatum(failed ? "failed" : "vetoed");
	values[8] = sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0;
	nulls[8] = sqlstate ? ' ' : 'n';
	values[9] = CStringGetTextDatum(message);
	ReoExecute(STMT_RECORD, values, nulls);

	/* The application's notification of a failure, never at the audit's cost. */
	if (failed && run->write_notifications)
	{
		note[0] = c->values[C_ID];
		note[1] = ReoTimeValue(GetCurrentTransactionStartTimestamp(),
							   run->app.notifications_tz, run->naive_time_zone);
		step.values = note;
		step.nulls = NULL;
		edata = ReoInSubtransaction(RecordFn, &step);
		if (edata != NULL)
		{
			if (ReoErrorEndsRun(edata))
				ReThrowError(edata);
			SkipNotifications(run, edata);
		}
	}

	if (failed)
	{
		run->failed++;
		ReoListError(&run->errors,
					 DatumGetCString(DirectFunctionCall1(uuid_out, c->values[C_ID])),
					 c->nulls[C_NUMBER] == 'n' ? NULL : TextDatumGetCString(c->values[C_NUMBER]),
					 psprintf("%s (SQLSTATE %s)", message, sqlstate));
	}
	else
		run->vetoed++;
}

/*
 * Release up to "wanted" expired orders after the run's keyset position.
 * Returns how many candidates were found; adds the outcome to the run.
 */
int
ReoReleaseChunk(ReoRun *run, int wanted)
{
	Chunk		chunk;
	ErrorData  *edata;
	char	   *notes;
	int		   *all;
	int			pending = 0;
	int64		released_before = run->released;
	int64		failed_before = run->failed;
	int64		vetoed_before = run->vetoed;
	Datum		progress[5];

	memset(&chunk, 0, sizeof(chunk));
	chunk.run = run;
	chunk.n = SelectCandidates(run, wanted, &chunk.c);
	if (chunk.n == 0)
		return 0;

	notes = psprintf("\n[系统] 订单超时已过期 - %s",
					 ReoIsoUtc(GetCurrentTransactionStartTimestamp()));
	chunk.notes = CStringGetTextDatum(pg_any_to_server(notes, strlen(notes), PG_UTF8));
	all = palloc(sizeof(int) * chunk.n);
	for (int i = 0; i < chunk.n; i++)
		all[i] = i;

	edata = ReoTryPart(&chunk, all, chunk.n);
	if (edata == NULL)
		run->released += chunk.part_released;
	else if (ReoErrorEndsRun(edata))
		ReThrowError(edata);
	else
	{
		/* (a failure of the notifications is found, and skipped, as any other) */
		ereport(DEBUG1,
				(errmsg_internal("release_expired_orders: chunk of %d failed (%s), splitting it",
								 chunk.n, edata->message)));
		LockCounters(&chunk, C_PRODUCT, STMT_LOCK_PRODUCTS);
		LockCounters(&chunk, C_ROUND, STMT_LOCK_ROUNDS);
		for (int i = 0; i < chunk.n; i++)
			if (chunk.c[i].state == CAND_PENDING)
				all[pending++] = i;
		/* The whole chunk's error is known only when nothing was taken out. */
		Bisect(&chunk, all, pending, pending == chunk.n ? edata : NULL);
	}

	for (int i = 0; i < chunk.n; i++)
		if (chunk.c[i].state == CAND_FAILED || chunk.c[i].state == CAND_VETOED)
			RecordOutcome(&chunk, &chunk.c[i]);

	/* A chunk released in one part was counted by its release statement. */
	if (!chunk.counted)
	{
		progress[0] = Int64GetDatum(run->run_id);
		progress[1] = Int32GetDatum(chunk.n);
		progress[2] = Int32GetDatum((int32) (run->released - released_before));
		progress[3] = Int32GetDatum((int32) (run->failed - failed_before));
		progress[4] = Int32GetDatum((int32) (run->vetoed - vetoed_before));
		ReoExecute(STMT_RUN_PROGRESS, progress, NULL);
	}
	run->found += chunk.n;
	return chunk.n;
}
