/*-------------------------------------------------------------------------
 *
 * part.c
 *	  The release of a part of a chunk: the fast path's statements.
 *
 * The orders, their audit and notifications first, then the product rows
 * and then the round rows, each locked in id order and incremented as the
 * part's last writes, so that a hot counter row is held only briefly.
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
#include "utils/array.h"

#include "part.h"
#include "sql.h"
#include "util.h"

/* Do two candidates' uuid columns hold the same value? */
bool
ReoSameUuid(Datum a, Datum b)
{
	return memcmp(DatumGetPointer(a), DatumGetPointer(b), UUID_LEN) == 0;
}

/* A uuid[] of the part's ids. */
static Datum
PartIds(Chunk *chunk)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(chunk->part_n, 1));

	for (int i = 0; i < chunk->part_n; i++)
		elems[i] = chunk->c[chunk->part[i]].values[C_ID];
	return PointerGetDatum(construct_array(elems, chunk->part_n, UUIDOID,
										   UUID_LEN, false, TYPALIGN_CHAR));
}

/* Mark the part's candidates that the release statement's array lists. */
static void
MarkVetoed(Chunk *chunk, Datum array)
{
	Datum	   *ids;
	int			n;

	deconstruct_array(DatumGetArrayTypeP(array), UUIDOID, UUID_LEN, false,
					  TYPALIGN_CHAR, &ids, NULL, &n);
	for (int k = 0; k < chunk->part_n; k++)
	{
		Candidate  *c = &chunk->c[chunk->part[k]];

		for (int j = 0; j < n; j++)
			if (ReoSameUuid(c->values[C_ID], ids[j]))
				c->state = CAND_VETOED;
	}
}

/*
 * Give back the part's stock or shares, and correct the audit where a
 * counter did not move by what was asked.  ids and qty come from the
 * release statement, aggregated per counter row and sorted by id.
 */
static void
ReturnCounters(Chunk *chunk, Datum ids, Datum qty, bool rounds)
{
	ReoRun	   *run = chunk->run;
	Datum		values[5];
	bool		isnull;
	SPITupleTable *tt;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	values[0] = ids;
	values[1] = qty;
	values[2] = ReoTimeValue(now, rounds ? run->app.rounds_updated_tz :
							 run->app.products_updated_tz, run->naive_time_zone);
	ReoExecute(rounds ? STMT_ROUNDS : STMT_PRODUCTS, values, NULL);
	tt = SPI_tuptable;

	/* Rows that did not move by their quantity: rare, so a second statement. */
	values[2] = SPI_getbinval(tt->vals[0], tt->tupdesc, 1, &isnull);
	if (!isnull)
	{
		values[3] = SPI_getbinval(tt->vals[0], tt->tupdesc, 2, &isnull);
		values[4] = SPI_getbinval(tt->vals[0], tt->tupdesc, 3, &isnull);
		values[0] = Int64GetDatum(run->run_id);
		values[1] = PartIds(chunk);
		ReoExecute(rounds ? STMT_FIX_SHARES : STMT_FIX_STOCK, values, NULL);
	}
	SPI_freetuptable(tt);
}

/*
 * Release the part; the body of a subtransaction.  The orders first, then
 * the counters in id order, products before rounds, as the application's
 * purchases take them.
 */
static void
ReleasePart(void *arg)
{
	Chunk	   *chunk = (Chunk *) arg;
	ReoRun	   *run = chunk->run;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	SPITupleTable *tt;
	Datum		values[7];
	Datum		row[6];
	bool		isnull[6];

	values[0] = PartIds(chunk);
	values[1] = Int64GetDatum(run->run_id);
	values[2] = ReoTimeValue(now, run->app.orders_updated_tz, run->naive_time_zone);
	values[3] = chunk->notes;
	values[4] = ReoTimeValue(now, run->app.notifications_tz, run->naive_time_zone);
	values[5] = BoolGetDatum(run->write_notifications);
	/* A whole chunk in one part is counted in the run row by the same statement. */
	values[6] = BoolGetDatum(chunk->part_n == chunk->n);
	ReoExecute(STMT_RELEASE, values, NULL);
	tt = SPI_tuptable;
	for (int col = 0; col < 6; col++)
		row[col] = SPI_getbinval(tt->vals[0], tt->tupdesc, col + 1, &isnull[col]);

	chunk->part_released = DatumGetInt64(row[0]);
	if (!isnull[2])
		ReturnCounters(chunk, row[2], row[3], false);
	if (!isnull[4])
		ReturnCounters(chunk, row[4], row[5], true);
	if (!isnull[1])
		MarkVetoed(chunk, row[1]);
	for (int k = 0; k < chunk->part_n; k++)
		if (chunk->c[chunk->part[k]].state == CAND_PENDING)
			chunk->c[chunk->part[k]].state = CAND_RELEASED;
	SPI_freetuptable(tt);
}

/*
 * Try the part in a subtransaction; on failure, undo the states the body
 * set and return the error.
 */
ErrorData *
ReoTryPart(Chunk *chunk, int *part, int part_n)
{
	ErrorData  *edata;

	chunk->part = part;
	chunk->part_n = part_n;
	chunk->part_released = 0;
	edata = ReoInSubtransaction(ReleasePart, chunk);
	if (edata == NULL && part_n == chunk->n)
		chunk->counted = true;
	if (edata != NULL)
		for (int k = 0; k < part_n; k++)
			chunk->c[part[k]].state = CAND_PENDING;
	return edata;
}
