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
#include "utils/builtins.h"

#include "part.h"
#include "sql.h"
#include "util.h"

/* Do two candidates' uuid columns hold the same value? */
bool
ReoSameUuid(Datum a, Datum b)
{
	return memcmp(DatumGetPointer(a), DatumGetPointer(b), UUID_LEN) == 0;
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
		if (m > 0 && ReoSameUuid(id_elems[m - 1], shares[i].id))
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

/*
 * Give back the part's stock or shares, and correct the audit where a
 * counter did not move by what was asked.  When the application's tables
 * have triggers, what moved is read again after the statement (an AFTER
 * trigger may have written the row again).
 */
static void
ReturnCounters(Chunk *chunk, bool rounds)
{
	ReoRun	   *run = chunk->run;
	Datum		values[5];
	Datum		asked[2];
	bool		isnull;
	SPITupleTable *tt;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (CounterShares(chunk, rounds ? C_ROUND : C_PRODUCT, &asked[0], &asked[1]) == 0)
		return;
	values[0] = asked[0];
	values[1] = asked[1];
	values[2] = ReoTimeValue(now, rounds ? run->app.rounds_updated_tz :
							 run->app.products_updated_tz, run->naive_time_zone);
	ReoExecute(rounds ? STMT_ROUNDS : STMT_PRODUCTS, values, NULL);
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
		ReoExecute(rounds ? STMT_SHARES_MOVED : STMT_STOCK_MOVED, moved, NULL);
		SPI_freetuptable(tt);
		tt = SPI_tuptable;
	}

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
 * The audit rows of the part's released orders, and the run row's counts
 * when the part is the whole chunk.
 */
static void
WriteAudit(Chunk *chunk, int vetoed)
{
	Datum		values[10];

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
	ReoExecute(STMT_AUDIT, values, NULL);
}

/*
 * An order that a trigger of the application put back to pending after
 * the release updated it (an AFTER trigger, or one on another table) is a
 * veto too: the part is rolled back and tried again without it, so that
 * nothing is given back for an order that stays pending.  Only when the
 * application's tables have triggers.
 */
static void
CheckStillReleased(Chunk *chunk, Candidate **sorted)
{
	Datum		ids = ReleasedColumn(chunk, C_ID, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
	uint64		n = ReoExecute(STMT_STILL_RELEASED, &ids, NULL);
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

/*
 * Release the part; the body of a subtransaction.  The orders first (as
 * the owner of orders: the application's triggers run there), then their
 * audit, then the counters in id order, products before rounds, as the
 * application's purchases take them.  A row that a trigger wrote back as
 * pending is a veto: the part is rolled back, so that nothing of that
 * order changes, and tried again without it.
 */
static void
ReleasePart(void *arg)
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
	n = ReoExecute(run->write_notifications ? STMT_RELEASE : STMT_RELEASE_QUIET, values, NULL);
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
	WriteAudit(chunk, vetoed);
	ReturnCounters(chunk, false);
	ReturnCounters(chunk, true);
	if (run->app.triggers && released > 0)
		CheckStillReleased(chunk, sorted);
	chunk->part_released = released;
}

/*
 * Try the part in a subtransaction; on failure, undo the states the body
 * set and return the error.  Orders a trigger wrote back as pending are
 * vetoed, and the rest of the part is tried again without them (the
 * caller's array is left as it was; its vetoed orders are no longer
 * pending).
 */
ErrorData *
ReoTryPart(Chunk *chunk, int *part_in, int part_n)
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
		edata = ReoInSubtransaction(ReleasePart, chunk);
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
