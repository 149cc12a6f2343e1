/*-------------------------------------------------------------------------
 *
 * chunk.c
 *	  A chunk: its candidates, their release in one part, and the fallback
 *	  that finds the orders that cannot be released.  The middle layer of
 *	  the release path (job.c, this file, sql.c); every step is named
 *	  Chunk..., and the helpers that only compute values from the
 *	  candidates are not.
 *
 * A chunk is taken oldest first with FOR UPDATE SKIP LOCKED and copied out
 * of SPI, which fixes the locked set once, and released as one part
 * (ChunkTryPart()) in a subtransaction.  If that fails, the chunk's counter rows
 * are locked once, in id order, by the chunk's transaction, and the chunk
 * is split in halves until each failing order stands alone: a few
 * subtransactions per bad order, and no deadlock with another run.
 * Guarantees: a failed or vetoed order is audited, which leaves it alone
 * for release_expired_orders.retry_backoff; notifications that cannot be
 * written are skipped, never the release.
 *
 * A part: the orders, their audit and notifications first, then the
 * product rows and then the round rows, each locked in id order and
 * incremented as the part's last writes, so that a hot counter row is held only briefly.
 * Guarantees: a part's writes commit together or not at all; the audit's
 * stock and share deltas are corrected to what the counter updates really
 * wrote; the orders a trigger vetoed are marked, not released.
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
#include "sql.h"
#include "util.h"

/* Columns of a candidate, in the order STMT_RECORD wants them. */
#define C_ID		0
#define C_NUMBER	1
#define C_USER		2
#define C_PRODUCT	3
#define C_ROUND		4
#define C_QUANTITY	5
#define C_NCOLS		6

typedef enum CandidateState
{
	CAND_PENDING,
	CAND_RELEASED,
	CAND_VETOED,
	CAND_FAILED
} CandidateState;

typedef struct Candidate
{
	Datum		values[C_NCOLS];
	char		nulls[C_NCOLS];
	CandidateState state;
	ErrorData  *error;			/* for CAND_FAILED */
	bool		veto_written;	/* a trigger wrote the row back as pending */
} Candidate;

/* A chunk being released, and the part of it being tried. */
typedef struct Chunk
{
	ReoRun	   *run;
	Candidate  *c;
	int			n;
	Datum		notes;			/* text appended to orders.notes */
	/* the part being released: indexes into c */
	int		   *part;
	int			part_n;
	int64		part_released;
	bool		vetoes_written; /* the part rolled back for veto_written rows */
	bool		counted;		/* the run row counts the chunk already */

	/*
	 * With 1.0's objects, the products [0] and rounds [1] of the part that
	 * did not move by what was asked (ids, what moved, why), for the
	 * audit written after them; has_unmoved false: all moved
	 */
	Datum		unmoved[2][3];
	bool		has_unmoved[2];
} Chunk;

static int	ChunkSelect(ReoRun *run, int wanted, Candidate **out);
static void ChunkCandidateArgs(ReoRun *run, int wanted, Datum *values);
static int	ChunkStillDue(ReoRun *run, Datum picked, Candidate *c);
static ErrorData *ChunkTryPart(Chunk *chunk, int *part_in, int part_n);
static void ChunkReleasePart(void *arg);
static void ChunkWriteAudit(Chunk *chunk, int vetoed);
static void ChunkReturnCounters(Chunk *chunk, bool rounds);
static void ChunkCheckStillReleased(Chunk *chunk, Candidate **sorted);
static void ChunkLockCounters(Chunk *chunk, int col, ReoStatement stmt);
static void ChunkBisect(Chunk *chunk, int *part_in, int part_n_in, ErrorData *known);
static bool ChunkRetryWithoutNotifications(Chunk *chunk, int *part, int part_n, ErrorData *edata);
static void ChunkSkipNotifications(ReoRun *run, ErrorData *edata);
static void ChunkRecord(Chunk *chunk, Candidate *c);
static bool SameUuid(Datum a, Datum b);
static void CopyCandidates(SPITupleTable *tt, uint64 n, Candidate *c);
static Datum PartIds(Chunk *chunk);
static Candidate **SortedPart(Chunk *chunk);
static Candidate *FindCandidate(Candidate **sorted, int n, Datum id);
static Datum ReleasedColumn(Chunk *chunk, int col, Oid type, int len, bool byval, char align);
static int	CounterShares(Chunk *chunk, int col, Datum *ids, Datum *qty);
static Datum CounterIds(Chunk *chunk, int col, int *count);

/*
 * Release up to "wanted" expired orders after the run's keyset position.
 * Returns how many candidates were found; adds the outcome to the run.
 */
int
ChunkRelease(ReoRun *run, int wanted)
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
	chunk.n = ChunkSelect(run, wanted, &chunk.c);
	if (chunk.n == 0)
		return 0;

	notes = psprintf("\n[系统] 订单超时已过期 - %s",
					 ReoIsoUtc(GetCurrentTransactionStartTimestamp()));
	chunk.notes = CStringGetTextDatum(pg_any_to_server(notes, strlen(notes), PG_UTF8));
	all = palloc(sizeof(int) * chunk.n);
	for (int i = 0; i < chunk.n; i++)
		all[i] = i;

	edata = ChunkTryPart(&chunk, all, chunk.n);
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
		ChunkLockCounters(&chunk, C_PRODUCT, STMT_LOCK_PRODUCTS);
		ChunkLockCounters(&chunk, C_ROUND, STMT_LOCK_ROUNDS);
		for (int i = 0; i < chunk.n; i++)
			if (chunk.c[i].state == CAND_PENDING)
				all[pending++] = i;
		/* The whole chunk's error is known only when nothing was taken out. */
		ChunkBisect(&chunk, all, pending, pending == chunk.n ? edata : NULL);
	}

	for (int i = 0; i < chunk.n; i++)
		if (chunk.c[i].state == CAND_FAILED || chunk.c[i].state == CAND_VETOED)
			ChunkRecord(&chunk, &chunk.c[i]);

	/* A chunk released in one part was counted by its release statement. */
	if (!chunk.counted)
	{
		progress[0] = Int64GetDatum(run->run_id);
		progress[1] = Int32GetDatum(chunk.n);
		progress[2] = Int32GetDatum((int32) (run->released - released_before));
		progress[3] = Int32GetDatum((int32) (run->failed - failed_before));
		progress[4] = Int32GetDatum((int32) (run->vetoed - vetoed_before));
		StmtExecute(STMT_RUN_PROGRESS, progress, NULL);
	}
	run->found += chunk.n;
	return chunk.n;
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
ChunkSelect(ReoRun *run, int wanted, Candidate **out)
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
		ChunkCandidateArgs(run, wanted, values);
		n = StmtExecute(STMT_CANDIDATES, values, NULL);
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

		ChunkCandidateArgs(run, asked, values);
		n = StmtExecute(STMT_PREVIEW_W, values, NULL);
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

		found += ChunkStillDue(run, picked, c + found);
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

/* The arguments of the candidate statements, from the run's keyset position. */
static void
ChunkCandidateArgs(ReoRun *run, int wanted, Datum *values)
{
	values[0] = run->windowed ? TimestampTzGetDatum(run->reference) :
		TimestampGetDatum(run->cutoff_value);
	values[1] = run->windowed ? TimestampTzGetDatum(run->after_deadline) :
		TimestampGetDatum(run->after_created);
	values[2] = UUIDPGetDatum(&run->after_id);
	values[3] = Int32GetDatum(wanted);
	values[4] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp() -
									(TimestampTz) run->retry_backoff_s * USECS_PER_SEC);
	values[5] = run->windowed ? Int32GetDatum(run->timeout_minutes) :
		TimestampGetDatum(run->not_yet_from);
	values[6] = run->windowed ? CStringGetTextDatum(run->naive_time_zone) :
		TimestampGetDatum(run->not_yet_to);
}

/*
 * Lock the windowed candidates picked, skipping the held ones, then keep
 * those still due by their rows as they are now that they are locked (a
 * transaction that committed in between may have given an order a longer
 * window).  Copies them to c; returns how many.
 */
static int
ChunkStillDue(ReoRun *run, Datum picked, Candidate *c)
{
	uint64		locked = StmtExecute(STMT_LOCK_ORDERS, &picked, NULL);
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
	due = StmtExecute(STMT_STILL_DUE, args, NULL);
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

			still = SameUuid(c[i].values[C_ID],
								SPI_getbinval(tt->vals[j], tt->tupdesc, 1, &isnull));
		}
		if (still)
			c[kept++] = c[i];
	}
	SPI_freetuptable(tt);
	return kept;
}

/*
 * Try the part in a subtransaction; on failure, undo the states the body
 * set and return the error.  Orders a trigger wrote back as pending are
 * vetoed, and the rest of the part is tried again without them (the
 * caller's array is left as it was; its vetoed orders are no longer
 * pending).
 */
static ErrorData *
ChunkTryPart(Chunk *chunk, int *part_in, int part_n)
{
	/* a copy: the orders a trigger vetoed are taken out of it, not the caller's */
	int		   *part = palloc(sizeof(int) * Max(part_n, 1));

	memcpy(part, part_in, sizeof(int) * part_n);
	for (;;)
	{
		ErrorData  *edata;
		int			kept = 0;

		chunk->part = part;
		chunk->part_n = part_n;
		chunk->part_released = 0;
		chunk->vetoes_written = false;
		edata = ReoInSubtransaction(ChunkReleasePart, chunk);
		if (edata == NULL)
		{
			if (part_n == chunk->n)
				chunk->counted = true;
			return NULL;
		}
		for (int k = 0; k < part_n; k++)
		{
			Candidate  *c = &chunk->c[part[k]];

			c->state = c->veto_written ? CAND_VETOED : CAND_PENDING;
			if (!c->veto_written)
				part[kept++] = part[k];
		}
		if (!chunk->vetoes_written)
			return edata;
		FreeErrorData(edata);
		if (kept == 0)
			return NULL;
		part_n = kept;
	}
}

/*
 * Release the part; the body of a subtransaction.  The orders first (as
 * the owner of orders: the application's triggers run there), then their
 * audit, then the counters in id order, products before rounds, as the
 * application's purchases take them.  A row that a trigger wrote back as
 * pending is a veto: the part is rolled back, so that nothing of that
 * order changes, and tried again without it.
 */
static void
ChunkReleasePart(void *arg)
{
	Chunk	   *chunk = (Chunk *) arg;
	ReoRun	   *run = chunk->run;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	SPITupleTable *tt;
	Candidate **sorted = SortedPart(chunk);
	Datum		values[5];
	uint64		n;
	int			released = 0;
	int			vetoed = 0;

	values[0] = PartIds(chunk);
	values[1] = ReoTimeValue(now, run->app.orders_updated_tz, run->naive_time_zone);
	values[2] = chunk->notes;
	values[3] = ReoTimeValue(now, run->app.notifications_tz, run->naive_time_zone);
	values[4] = BoolGetDatum(run->write_notifications);
	n = StmtExecute(run->write_notifications ? STMT_RELEASE : STMT_RELEASE_QUIET, values, NULL);
	tt = SPI_tuptable;
	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		id = SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull);
		bool		became = DatumGetBool(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull)) &&
			!isnull;
		Candidate  *c = FindCandidate(sorted, chunk->part_n, id);

		if (became)
			c->state = CAND_RELEASED;
		else
		{
			c->veto_written = true;
			chunk->vetoes_written = true;
		}
	}
	SPI_freetuptable(tt);
	if (chunk->vetoes_written)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg_internal("a trigger on orders kept orders of the part pending")));

	/* An order the update did not return was skipped by a trigger. */
	for (int k = 0; k < chunk->part_n; k++)
	{
		Candidate  *c = &chunk->c[chunk->part[k]];

		if (c->state == CAND_RELEASED)
			released++;
		else
		{
			c->state = CAND_VETOED;
			vetoed++;
		}
	}
	if (!run->app.objects_1_0)
		ChunkWriteAudit(chunk, vetoed);
	ChunkReturnCounters(chunk, false);
	ChunkReturnCounters(chunk, true);
	if (run->app.objects_1_0)
		ChunkWriteAudit(chunk, vetoed); /* what really moved, in 1.0's form */
	if (run->app.triggers && released > 0)
		ChunkCheckStillReleased(chunk, sorted);
	chunk->part_released = released;
}

/*
 * The audit rows of the part's released orders, and the run row's counts
 * when the part is the whole chunk.  With 1.0's objects, after the
 * counters, with what did not move.
 */
static void
ChunkWriteAudit(Chunk *chunk, int vetoed)
{
	Datum		values[16];
	char		nulls[16];

	values[0] = Int64GetDatum(chunk->run->run_id);
	values[1] = ReleasedColumn(chunk, C_ID, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
	values[2] = ReleasedColumn(chunk, C_NUMBER, TEXTOID, -1, false, TYPALIGN_INT);
	values[3] = ReleasedColumn(chunk, C_USER, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
	values[4] = ReleasedColumn(chunk, C_PRODUCT, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
	values[5] = ReleasedColumn(chunk, C_ROUND, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
	values[6] = ReleasedColumn(chunk, C_QUANTITY, INT4OID, sizeof(int32), true, TYPALIGN_INT);
	values[7] = Int32GetDatum(chunk->n);
	values[8] = Int32GetDatum(vetoed);
	/* A whole chunk in one part is counted in the run row by the same statement. */
	values[9] = BoolGetDatum(chunk->part_n == chunk->n);
	memset(nulls, ' ', sizeof(nulls));
	for (int r = 0; r < 2; r++)
		for (int k = 0; k < 3; k++)
		{
			values[10 + 3 * r + k] = chunk->has_unmoved[r] ? chunk->unmoved[r][k] : (Datum) 0;
			nulls[10 + 3 * r + k] = chunk->has_unmoved[r] ? ' ' : 'n';
		}
	StmtExecute(STMT_AUDIT, values, nulls);
}

/*
 * Give back the part's stock or shares, and correct the audit where a
 * counter did not move by what was asked.  When the application's tables
 * have triggers, what moved is read again after the statement (an AFTER
 * trigger may have written the row again).
 */
static void
ChunkReturnCounters(Chunk *chunk, bool rounds)
{
	ReoRun	   *run = chunk->run;
	Datum		values[5];
	Datum		asked[2];
	bool		isnull;
	SPITupleTable *tt;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	chunk->has_unmoved[rounds] = false;
	if (CounterShares(chunk, rounds ? C_ROUND : C_PRODUCT, &asked[0], &asked[1]) == 0)
		return;
	values[0] = asked[0];
	values[1] = asked[1];
	values[2] = ReoTimeValue(now, rounds ? run->app.rounds_updated_tz :
							 run->app.products_updated_tz, run->naive_time_zone);
	StmtExecute(rounds ? STMT_ROUNDS : STMT_PRODUCTS, values, NULL);
	tt = SPI_tuptable;
	if (run->app.triggers)
	{
		Datum		moved[4];

		moved[0] = asked[0];
		moved[1] = asked[1];
		moved[2] = SPI_getbinval(tt->vals[0], tt->tupdesc, 4, &isnull);
		moved[3] = SPI_getbinval(tt->vals[0], tt->tupdesc, 5, &isnull);
		if (isnull)
		{
			/* no row was locked: every row asked for is missing */
			moved[2] = PointerGetDatum(construct_empty_array(UUIDOID));
			moved[3] = PointerGetDatum(construct_empty_array(INT4OID));
		}
		StmtExecute(rounds ? STMT_SHARES_MOVED : STMT_STOCK_MOVED, moved, NULL);
		SPI_freetuptable(tt);
		tt = SPI_tuptable;
	}

	/* Rows that did not move by their quantity: rare, so a second statement. */
	values[2] = SPI_getbinval(tt->vals[0], tt->tupdesc, 1, &isnull);
	if (!isnull && run->app.objects_1_0)
	{
		/* copied for the audit, which comes next: the tuples are freed below */
		for (int k = 0; k < 3; k++)
			chunk->unmoved[rounds][k] =
				datumCopy(SPI_getbinval(tt->vals[0], tt->tupdesc, k + 1, &isnull), false, -1);
		chunk->has_unmoved[rounds] = true;
	}
	else if (!isnull)
	{
		values[3] = SPI_getbinval(tt->vals[0], tt->tupdesc, 2, &isnull);
		values[4] = SPI_getbinval(tt->vals[0], tt->tupdesc, 3, &isnull);
		values[0] = Int64GetDatum(run->run_id);
		values[1] = PartIds(chunk);
		StmtExecute(rounds ? STMT_FIX_SHARES : STMT_FIX_STOCK, values, NULL);
	}
	SPI_freetuptable(tt);
}

/*
 * An order that a trigger of the application put back to pending after
 * the release updated it (an AFTER trigger, or one on another table) is a
 * veto too: the part is rolled back and tried again without it, so that
 * nothing is given back for an order that stays pending.  Only when the
 * application's tables have triggers.
 */
static void
ChunkCheckStillReleased(Chunk *chunk, Candidate **sorted)
{
	Datum		ids = ReleasedColumn(chunk, C_ID, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
	uint64		n = StmtExecute(STMT_STILL_RELEASED, &ids, NULL);
	SPITupleTable *tt = SPI_tuptable;

	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Candidate  *c = FindCandidate(sorted, chunk->part_n,
									  SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));

		c->veto_written = true;
		chunk->vetoes_written = true;
	}
	SPI_freetuptable(tt);
	if (chunk->vetoes_written)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_ACTION_EXCEPTION),
				 errmsg_internal("a trigger put released orders of the part back to pending")));
}

typedef struct ChunkLock
{
	ReoStatement stmt;
	Datum		ids;
} ChunkLock;

static void
ChunkLockFn(void *arg)
{
	ChunkLock   *step = (ChunkLock *) arg;

	StmtExecute(step->stmt, &step->ids, NULL);
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Before a fallback, lock the chunk's product or round rows in id order in
 * the chunk's own transaction, so that the parts tried after it wait for
 * nothing and cannot deadlock with another run.  A row that stays locked
 * past lock_timeout fails the chunk's orders that need it, with that error.
 */
static void
ChunkLockCounters(Chunk *chunk, int col, ReoStatement stmt)
{
	int			count;
	Datum		ids = CounterIds(chunk, col, &count);
	ChunkLock	step = {stmt, ids};
	ErrorData  *edata;
	Datum	   *elems;

	if (count == 0)
		return;
	edata = ReoInSubtransaction(ChunkLockFn, &step);
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
		edata = ReoInSubtransaction(ChunkLockFn, &step);
		if (edata == NULL)
			continue;
		if (ReoErrorEndsRun(edata))
			ReThrowError(edata);
		for (int i = 0; i < chunk->n; i++)
		{
			Candidate  *c = &chunk->c[i];

			if (c->state == CAND_PENDING && c->nulls[col] != 'n' &&
				SameUuid(c->values[col], elems[j]))
			{
				c->state = CAND_FAILED;
				c->error = edata;
			}
		}
	}
}

/*
 * Release what can be released of part, splitting it in halves on failure
 * until each failing order stands alone.  A chunk with one bad order costs
 * about 2 log2(n) subtransactions instead of n.
 */
static void
ChunkBisect(Chunk *chunk, int *part_in, int part_n_in, ErrorData *known)
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
		edata = ChunkTryPart(chunk, part, part_n);
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
		if (!ChunkRetryWithoutNotifications(chunk, part, 1, edata))
		{
			chunk->c[part[0]].state = CAND_FAILED;
			chunk->c[part[0]].error = edata;
		}
		return;
	}
	half = part_n / 2;
	ChunkBisect(chunk, part, half, NULL);
	ChunkBisect(chunk, part + half, part_n - half, NULL);
}

/*
 * Try the part again without notifications after it failed with them;
 * when that succeeds, they were the cause and stay off for the run.
 */
static bool
ChunkRetryWithoutNotifications(Chunk *chunk, int *part, int part_n, ErrorData *edata)
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
	if (ChunkTryPart(chunk, part, part_n) != NULL)
	{
		run->write_notifications = true;
		return false;
	}
	ChunkSkipNotifications(run, edata);
	run->released += chunk->part_released;
	return true;
}

/*
 * The notifications are a courtesy to old dashboards and never block a
 * release: once writing them is seen to fail, the run goes on without them,
 * with a WARNING and a note in its row for health().
 */
static void
ChunkSkipNotifications(ReoRun *run, ErrorData *edata)
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
 * Audit one failed or vetoed order, which starts its retry backoff, and
 * list a failure in the summary.
 */
typedef struct ChunkRecordNote
{
	Datum	   *values;
	char	   *nulls;
} ChunkRecordNote;

static void
ChunkRecordNoteFn(void *arg)
{
	ChunkRecordNote *step = (ChunkRecordNote *) arg;

	StmtExecute(STMT_NOTE_FAILED, step->values, step->nulls);
}

static void
ChunkRecord(Chunk *chunk, Candidate *c)
{
	ChunkRecordNote	step;
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

	/*
	 * 1.0's objects have no vetoed outcome: a veto is audited as failed
	 * with triggered_data_change_violation, which starts the same backoff.
	 */
	if (!failed && run->app.objects_1_0)
	{
		values[7] = CStringGetTextDatum("failed");
		sqlstate = unpack_sql_state(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION);
	}
	values[8] = sqlstate ? CStringGetTextDatum(sqlstate) : (Datum) 0;
	nulls[8] = sqlstate ? ' ' : 'n';
	values[9] = CStringGetTextDatum(message);
	StmtExecute(STMT_RECORD, values, nulls);

	/* The application's notification of a failure, never at the audit's cost. */
	if (failed && run->write_notifications)
	{
		note[0] = c->values[C_ID];
		note[1] = ReoTimeValue(GetCurrentTransactionStartTimestamp(),
							   run->app.notifications_tz, run->naive_time_zone);
		step.values = note;
		step.nulls = NULL;
		edata = ReoInSubtransaction(ChunkRecordNoteFn, &step);
		if (edata != NULL)
		{
			if (ReoErrorEndsRun(edata))
				ReThrowError(edata);
			ChunkSkipNotifications(run, edata);
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

/* Do two candidates' uuid columns hold the same value? */
static bool
SameUuid(Datum a, Datum b)
{
	return memcmp(DatumGetPointer(a), DatumGetPointer(b), UUID_LEN) == 0;
}

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

/* A uuid[] of the part's ids, in candidate order. */
static Datum
PartIds(Chunk *chunk)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(chunk->part_n, 1));

	for (int i = 0; i < chunk->part_n; i++)
		elems[i] = chunk->c[chunk->part[i]].values[C_ID];
	return PointerGetDatum(construct_array(elems, chunk->part_n, UUIDOID,
										   UUID_LEN, false, TYPALIGN_CHAR));
}

static int
CompareCandidateIds(const void *a, const void *b)
{
	const Candidate *x = *(Candidate *const *) a;
	const Candidate *y = *(Candidate *const *) b;

	return memcmp(DatumGetPointer(x->values[C_ID]), DatumGetPointer(y->values[C_ID]), UUID_LEN);
}

/* The part's candidates sorted by id, to find a returned row's candidate. */
static Candidate **
SortedPart(Chunk *chunk)
{
	Candidate **sorted = palloc(sizeof(Candidate *) * Max(chunk->part_n, 1));

	for (int i = 0; i < chunk->part_n; i++)
		sorted[i] = &chunk->c[chunk->part[i]];
	qsort(sorted, chunk->part_n, sizeof(Candidate *), CompareCandidateIds);
	return sorted;
}

static Candidate *
FindCandidate(Candidate **sorted, int n, Datum id)
{
	Candidate	key;
	Candidate  *keyp = &key;
	Candidate **found;

	key.values[C_ID] = id;
	found = bsearch(&keyp, sorted, n, sizeof(Candidate *), CompareCandidateIds);
	if (found == NULL)
		elog(ERROR, "the release returned an order that is not in the part");
	return *found;
}

/*
 * An array of one candidate column over the part's released candidates
 * (NULLs kept), for the audit statement.
 */
static Datum
ReleasedColumn(Chunk *chunk, int col, Oid type, int len, bool byval, char align)
{
	int			n = 0;
	Datum	   *elems = palloc(sizeof(Datum) * Max(chunk->part_n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(chunk->part_n, 1));
	int			dims[1];
	int			lbs[1] = {1};

	for (int i = 0; i < chunk->part_n; i++)
	{
		Candidate  *c = &chunk->c[chunk->part[i]];

		if (c->state != CAND_RELEASED)
			continue;
		elems[n] = c->values[col];
		nulls[n] = (c->nulls[col] == 'n');
		n++;
	}
	dims[0] = n;
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, type, len,
											  byval, align));
}

/* One counter row's share of the part: id and quantity to give back. */
typedef struct CounterShare
{
	Datum		id;
	int64		qty;
} CounterShare;

static int
CompareShares(const void *a, const void *b)
{
	return memcmp(DatumGetPointer(((const CounterShare *) a)->id),
				  DatumGetPointer(((const CounterShare *) b)->id), UUID_LEN);
}

/*
 * What the part's released orders give back to each product or round, in
 * id order: the quantity the locked row reserved before the update, when
 * the row names that counter and the quantity is positive.  Returns the
 * number of counter rows; *ids and *qty are the arrays to pass.
 */
static int
CounterShares(Chunk *chunk, int col, Datum *ids, Datum *qty)
{
	CounterShare *shares = palloc(sizeof(CounterShare) * Max(chunk->part_n, 1));
	Datum	   *id_elems;
	Datum	   *qty_elems;
	int			n = 0;
	int			m = 0;

	for (int i = 0; i < chunk->part_n; i++)
	{
		Candidate  *c = &chunk->c[chunk->part[i]];

		if (c->state != CAND_RELEASED || c->nulls[col] == 'n' ||
			c->nulls[C_QUANTITY] == 'n' || DatumGetInt32(c->values[C_QUANTITY]) <= 0)
			continue;
		shares[n].id = c->values[col];
		shares[n].qty = DatumGetInt32(c->values[C_QUANTITY]);
		n++;
	}
	if (n == 0)
		return 0;
	qsort(shares, n, sizeof(CounterShare), CompareShares);
	id_elems = palloc(sizeof(Datum) * n);
	qty_elems = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		if (m > 0 && SameUuid(id_elems[m - 1], shares[i].id))
		{
			qty_elems[m - 1] = Int64GetDatum(DatumGetInt64(qty_elems[m - 1]) + shares[i].qty);
			continue;
		}
		id_elems[m] = shares[i].id;
		qty_elems[m] = Int64GetDatum(shares[i].qty);
		m++;
	}
	*ids = PointerGetDatum(construct_array(id_elems, m, UUIDOID, UUID_LEN, false,
										   TYPALIGN_CHAR));
	*qty = PointerGetDatum(construct_array(qty_elems, m, INT8OID, sizeof(int64),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	return m;
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
			seen = SameUuid(elems[j], c->values[col]);
		if (!seen)
			elems[n++] = c->values[col];
	}
	*count = n;
	return PointerGetDatum(construct_array(elems, n, UUIDOID, UUID_LEN, false,
										   TYPALIGN_CHAR));
}
