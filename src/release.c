/*-------------------------------------------------------------------------
 *
 * release.c
 *	  Candidate selection and the release of one chunk of expired orders.
 *
 * A chunk is taken oldest first with FOR UPDATE SKIP LOCKED and copied out,
 * which fixes the locked set once.  The fast path releases the whole chunk
 * in one subtransaction: product rows, then round rows, are locked in id
 * order, and one statement does every write.  If that fails, the chunk is
 * retried order by order, each in its own subtransaction, so that one bad
 * order is rolled back and recorded as failed while the rest are released.
 * The order rows stay locked by the enclosing transaction throughout.
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
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/uuid.h"

#include "release_expired_orders.h"

/* Columns of a candidate, in the order STMT_RECORD_FAILURE wants them. */
#define C_ID		0
#define C_NUMBER	1
#define C_USER		2
#define C_PRODUCT	3
#define C_ROUND		4
#define C_QUANTITY	5
#define C_NCOLS		6

typedef struct Candidate
{
	Datum		values[C_NCOLS];
	char		nulls[C_NCOLS];
	Datum		created_at;
} Candidate;

typedef struct Chunk
{
	ReoRun	   *run;
	Candidate  *c;
	int			n;
	Datum		notes;			/* text appended to orders.notes */
	/* the part being released, and how many it released */
	int			first;
	int			count;
	int64		released;
} Chunk;

/*
 * The current transaction's now() in a column's convention: as is for
 * timestamptz, as wall-clock time in naive_time_zone for timestamp.
 */
Datum
ReoNowValue(ReoRun *run, bool tz)
{
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (tz)
		return TimestampTzGetDatum(now);
	return DirectFunctionCall2(timestamptz_zone,
							   CStringGetTextDatum(run->naive_time_zone),
							   TimestampTzGetDatum(now));
}

/*
 * Errors that must end the run rather than fail one order: a cancel (the
 * operator, or statement_timeout bounding the whole CALL), lack of
 * resources and internal errors.
 */
bool
ReoRethrowable(ErrorData *edata)
{
	int			category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);

	return edata->elevel > ERROR ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_OPERATOR_INTERVENTION) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_INSUFFICIENT_RESOURCES) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_SYSTEM_ERROR) ||
		category == ERRCODE_TO_CATEGORY(ERRCODE_INTERNAL_ERROR);
}

/*
 * Errors that end the run from inside a chunk: those above, and a missing
 * privilege or object (SQLSTATE class 42, such as no UPDATE on products).
 * Every order would fail the same way, so failing them one by one would
 * only list each as a poison order with a notification of its own.
 */
static bool
EndsRun(ErrorData *edata)
{
	return ReoRethrowable(edata) ||
		ERRCODE_TO_CATEGORY(edata->sqlerrcode) ==
		ERRCODE_TO_CATEGORY(ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION);
}

/*
 * Run fn(arg) in an internal subtransaction.  Returns NULL when it
 * succeeded, or the error, copied into the caller's memory context, after
 * rolling the subtransaction back.  Memory context and resource owner are
 * restored either way.
 */
ErrorData *
ReoInSubtransaction(void (*fn) (void *), void *arg)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_END_TRY();
	return edata;
}

/*
 * A uuid[] of one column of the chunk's part, without NULLs; with
 * counters_only, only of orders whose quantity moves counters.
 */
static Datum
UuidArray(Chunk *chunk, int col, bool counters_only, int *count)
{
	Datum	   *elems = palloc(sizeof(Datum) * chunk->count);
	int			n = 0;

	for (int i = chunk->first; i < chunk->first + chunk->count; i++)
	{
		Candidate  *c = &chunk->c[i];

		if (c->nulls[col] == 'n')
			continue;
		/* Counters move only for a positive quantity (SPEC 4). */
		if (counters_only && (c->nulls[C_QUANTITY] == 'n' ||
							  DatumGetInt32(c->values[C_QUANTITY]) <= 0))
			continue;
		elems[n++] = c->values[col];
	}
	*count = n;
	return PointerGetDatum(construct_array(elems, n, UUIDOID, UUID_LEN, false,
										   TYPALIGN_CHAR));
}

/* Lock the product or round rows of the chunk's part, in id order. */
static void
LockCounters(Chunk *chunk, int col, ReoStatement stmt)
{
	int			count;
	Datum		ids = UuidArray(chunk, col, true, &count);

	if (count == 0)
		return;
	ReoExecute(stmt, &ids, NULL);
	SPI_freetuptable(SPI_tuptable);
}

/* Release chunk->count orders from chunk->first; the subtransaction body. */
static void
ReleasePart(void *arg)
{
	Chunk	   *chunk = (Chunk *) arg;
	ReoRun	   *run = chunk->run;
	Datum		values[7];
	int			count;
	bool		isnull;

	LockCounters(chunk, C_PRODUCT, STMT_LOCK_PRODUCTS);
	LockCounters(chunk, C_ROUND, STMT_LOCK_ROUNDS);

	values[0] = UuidArray(chunk, C_ID, false, &count);
	values[1] = Int64GetDatum(run->run_id);
	values[2] = ReoNowValue(run, run->app.orders_updated_tz);
	values[3] = chunk->notes;
	values[4] = ReoNowValue(run, run->app.products_updated_tz);
	values[5] = ReoNowValue(run, run->app.rounds_updated_tz);
	values[6] = ReoNowValue(run, run->app.notifications_tz);
	ReoExecute(STMT_RELEASE, values, NULL);
	chunk->released = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1,
												  &isnull));
	SPI_freetuptable(SPI_tuptable);
}

/* Take the next candidates after the keyset position, copied out of SPI. */
static int
SelectCandidates(ReoRun *run, int wanted, Candidate **out)
{
	Datum		values[4];
	SPITupleTable *tt;
	Candidate  *c;
	uint64		n;
	bool		isnull;

	values[0] = run->cutoff_value;
	values[1] = run->after_created;
	values[2] = UUIDPGetDatum(&run->after_id);
	values[3] = Int32GetDatum(wanted);
	n = ReoExecute(STMT_CANDIDATES, values, NULL);
	tt = SPI_tuptable;

	c = palloc0(sizeof(Candidate) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		for (int col = 0; col < C_NCOLS; col++)
		{
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
		/* created_at is never NULL here: it passed "created_at < cutoff". */
		c[i].created_at = SPI_getbinval(tt->vals[i], tt->tupdesc, 7, &isnull);
		Assert(!isnull);
	}
	SPI_freetuptable(tt);

	if (n > 0)
	{
		run->after_created = c[n - 1].created_at;
		memcpy(&run->after_id, DatumGetUUIDP(c[n - 1].values[C_ID]), UUID_LEN);
	}
	*out = c;
	return (int) n;
}

/*
 * Does candidate i share a product or round with an order that timed out
 * waiting for a lock earlier in this chunk?  Retrying it would only wait
 * again for lock_timeout.
 */
static bool
BlockedBy(Chunk *chunk, int i, const bool *timed_out)
{
	Candidate  *c = &chunk->c[i];

	for (int j = 0; j < i; j++)
	{
		Candidate  *o = &chunk->c[j];

		if (!timed_out[j])
			continue;
		for (int col = C_PRODUCT; col <= C_ROUND; col++)
			if (c->nulls[col] != 'n' && o->nulls[col] != 'n' &&
				memcmp(DatumGetPointer(c->values[col]),
					   DatumGetPointer(o->values[col]), UUID_LEN) == 0)
				return true;
	}
	return false;
}

/*
 * Retry a failed chunk order by order; each failure is audited.  Adds to
 * chunk->released and returns the number of failed orders.
 */
static int
ReleaseOneByOne(Chunk *chunk)
{
	ReoRun	   *run = chunk->run;
	int			failed = 0;
	int64		released = 0;
	bool	   *timed_out = palloc0(sizeof(bool) * chunk->n);
	ErrorData  *last_timeout = NULL;

	for (int i = 0; i < chunk->n; i++)
	{
		ErrorData  *edata;

		if (last_timeout != NULL && BlockedBy(chunk, i, timed_out))
		{
			edata = last_timeout;
			timed_out[i] = true;
		}
		else
		{
			chunk->first = i;
			chunk->count = 1;
			chunk->released = 0;
			edata = ReoInSubtransaction(ReleasePart, chunk);
			if (edata == NULL)
			{
				released += chunk->released;
				continue;
			}
			if (EndsRun(edata))
				ReThrowError(edata);
			if (edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
			{
				timed_out[i] = true;
				last_timeout = edata;
			}
		}
		ReoRecordFailure(run, chunk->c[i].values, chunk->c[i].nulls, edata);
		failed++;
	}
	chunk->released = released;
	return failed;
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
	int			failed = 0;
	char	   *notes;

	memset(&chunk, 0, sizeof(chunk));
	chunk.run = run;
	chunk.n = SelectCandidates(run, wanted, &chunk.c);
	if (chunk.n == 0)
		return 0;

	notes = psprintf("\n[系统] 订单超时已过期 - %s",
					 ReoIsoUtc(GetCurrentTransactionStartTimestamp()));
	chunk.notes = CStringGetTextDatum(pg_any_to_server(notes, strlen(notes),
													   PG_UTF8));
	chunk.first = 0;
	chunk.count = chunk.n;
	edata = ReoInSubtransaction(ReleasePart, &chunk);
	if (edata != NULL)
	{
		if (EndsRun(edata))
			ReThrowError(edata);
		ereport(DEBUG1,
				(errmsg_internal("release_expired_orders: chunk of %d failed (%s), retrying order by order",
								 chunk.n, edata->message)));
		failed = ReleaseOneByOne(&chunk);
	}

	ReoRunProgress(run, chunk.n, (int) chunk.released, failed);
	run->found += chunk.n;
	run->released += chunk.released;
	run->failed += failed;
	return chunk.n;
}
