/*-------------------------------------------------------------------------
 *
 * sql_windows.c
 *	  The candidate statement when payment windows are in force: each
 *	  order's deadline is created_at plus the window of its type and
 *	  payment method, and candidates come oldest deadline first.
 *
 * The scan stays index-driven: the distinct order types among pending
 * orders are found by a skip scan (one index probe per type with an index
 * on (type, created_at, id) for pending orders), and that probe also gives
 * the type's oldest pending order.  A kind whose oldest order is not due
 * is not scanned at all, so a run that finds nothing costs one probe per
 * type.  Within a type of one window the deadline order is the created_at
 * order, so each type is an index range that stops at its own cutoff and
 * its LIMIT.  A payment method's window is a kind of its own (type and
 * method); the rest of that type keeps the type's window.  The kinds'
 * candidates are merged by deadline.  The type is compared in its own
 * type (text, varchar, bpchar, an enum or a domain), so that the index
 * serves it; payment methods as text.  The windows are read once per
 * statement, by hash, not once per type.
 *
 * Parameters: $1 the run's now (infinity for "the next deadline"), $2 and
 * $3 the keyset position (deadline, id), $4 the limit, $5 the start of the
 * retry backoff, $6 the window of an order no row matches, $7 the zone of
 * created_at without time zone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "sql_build.h"

#define MINUTES(w) "pg_catalog.make_interval(mins => " w ")"

/*
 * A time expression converted between absolute time and created_at's
 * convention; "AT TIME ZONE" goes either way.
 */
static const char *
Conv(const AppSchema *app, const char *expr)
{
	if (app->orders_created_tz)
		return expr;
	return psprintf("(%s AT TIME ZONE $7)", expr);
}

/*
 * An order's deadline, created_at plus its window, never an error: a
 * created_at so late that the sum could leave the timestamp range has no
 * deadline (infinity), and one so early that its zone's offset could take
 * it out of the range (the first days of 4714 BC) is read as UTC.  Every
 * other deadline is exact, so that the order of deadlines within a kind is
 * the order of created_at, which the scan's position relies on.
 */
static const char *
Deadline(const AppSchema *app, const char *created, const char *minutes)
{
	return psprintf("CASE WHEN %s" GE "'100000-01-01'"
					" THEN 'infinity'::pg_catalog.timestamptz"
					" WHEN %s" GT "'4714-11-26 BC'"
					" THEN %s" PLUS MINUTES("%s")
					" ELSE %s" PLUS MINUTES("%s") " END",
					created, created, Conv(app, created), minutes,
					app->orders_created_tz ? created :
					psprintf("(%s AT TIME ZONE 'UTC')", created),
					minutes);
}

/*
 * The kinds: one per pending order type (its any-method window, else $6),
 * one per window of a type and payment method, and one for orders without
 * a type.  excluded lists the methods that have windows of their own;
 * oldest and oldest_id are the type's oldest pending order, which the
 * probe that found the type read.
 */
static void
AppendKinds(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	appendStringInfo(&b->sql,
					 "WITH RECURSIVE types (type, oldest, oldest_id) AS ("
					 " (SELECT o.type, o.created_at, o.id FROM %s.orders o WHERE" PENDING("o")
					 " AND o.type IS NOT NULL"
					 " ORDER BY o.type USING" LT ", o.created_at USING" LT ", o.id LIMIT 1)"
					 " UNION ALL"
					 " SELECT n.type, n.created_at, n.id FROM types t CROSS JOIN LATERAL"
					 " (SELECT o.type, o.created_at, o.id FROM %s.orders o WHERE" PENDING("o")
					 " AND o.type" GT "t.type"
					 " ORDER BY o.type USING" LT ", o.created_at USING" LT ", o.id LIMIT 1) n),"
					 " by_type (order_type, found, minutes, methods) AS ("
					 " SELECT w.order_type, pg_catalog.bool_or(w.payment_method IS NULL),"
					 " pg_catalog.max(w.timeout_minutes) FILTER (WHERE w.payment_method IS NULL),"
					 " pg_catalog.array_agg(w.payment_method) FILTER (WHERE w.payment_method IS NOT NULL)"
					 " FROM " REO_SCHEMA ".payment_windows w GROUP BY w.order_type),"
					 " kinds (type, method, excluded, minutes, oldest, oldest_id) AS ("
					 " SELECT t.type, NULL::pg_catalog.text, %s,"
					 " CASE WHEN a.found THEN a.minutes ELSE $6 END, t.oldest, t.oldest_id"
					 " FROM types t LEFT JOIN by_type a ON a.order_type" EQ "t.type::pg_catalog.text",
					 nsp, nsp,
					 app->orders_payment_method ? "a.methods" : "NULL::pg_catalog.text[]");
	if (app->orders_payment_method)
		appendStringInfoString(&b->sql,
							   " UNION ALL SELECT t.type, m.payment_method, NULL,"
							   " m.timeout_minutes, t.oldest, t.oldest_id"
							   " FROM types t JOIN " REO_SCHEMA ".payment_windows m"
							   " ON m.order_type" EQ "t.type::pg_catalog.text"
							   " WHERE m.payment_method IS NOT NULL");
	appendStringInfoString(&b->sql, "),");
}

/* The conditions that put an order o in kind k (after its type). */
static const char *
InKind(const AppSchema *app)
{
	if (!app->orders_payment_method)
		return "";
	return " AND (k.method IS NULL OR o.payment_method::pg_catalog.text" EQ "k.method)"
		" AND (k.excluded IS NULL OR o.payment_method IS NULL"
		" OR o.payment_method::pg_catalog.text" NE "ALL (k.excluded))";
}

/*
 * A kind's orders in the order of the index on (type, created_at, id): the
 * type is fixed, so this is their created_at order, and no other index (the
 * application's on (status, created_at), say) can give it without a sort.
 */
#define BY_TYPE_ORDER "ORDER BY o.type USING" LT ", o.created_at USING" LT ", o.id "

/*
 * Not failed or vetoed since then: a probe of order_events_retry_idx per
 * order walked (OFFSET 0 keeps it a subplan, as in the plain candidates).
 */
#define NOT_HELD_BACK(since) " NOT EXISTS (SELECT FROM " EVENTS " f" \
	" WHERE f.order_id" EQ "o.id AND f.created_at" GT since " AND " BACKOFF_ROW " OFFSET 0)"

/*
 * One kind's candidates, oldest first, up to the limit; none is looked for
 * in a kind whose oldest order is not due.
 */
static void
AppendPerKind(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	const char *cutoff = Conv(app, "($1" MINUS MINUTES("k.minutes") ")");

	appendStringInfo(&b->sql,
					 " due AS (SELECT c.* FROM kinds k CROSS JOIN LATERAL ("
					 " SELECT o.id, k.minutes, %s AS deadline FROM %s.orders o"
					 " WHERE o.type" EQ "k.type AND" PENDING("o") "%s"
					 " AND o.created_at" LT "%s"
					 " AND (o.created_at, o.id)" GT "(%s, $3)"
					 " AND" NOT_HELD_BACK("$5")
					 " " BY_TYPE_ORDER "LIMIT $4) c"
					 " WHERE k.oldest" LT "%s",
					 Deadline(app, "o.created_at", "k.minutes"), nsp, InKind(app),
					 cutoff, Conv(app, "($2" MINUS MINUTES("k.minutes") ")"), cutoff);

	/* Orders without a type have the default window. */
	appendStringInfo(&b->sql,
					 " UNION ALL (SELECT o.id, $6, %s FROM %s.orders o"
					 " WHERE o.type IS NULL AND" PENDING("o")
					 " AND o.created_at" LT "%s AND (o.created_at, o.id)" GT "(%s, $3)"
					 " AND" NOT_HELD_BACK("$5")
					 " " BY_TYPE_ORDER "LIMIT $4)),",
					 Deadline(app, "o.created_at", "$6"), nsp,
					 Conv(app, "($1" MINUS MINUTES("$6") ")"),
					 Conv(app, "($2" MINUS MINUTES("$6") ")"));
}

/*
 * The windowed candidate statement: up to $4 orders by deadline, without
 * locks.  The job locks what it picked with a statement of its own, so
 * that orders another transaction holds never hide the due orders behind
 * them.  Columns: those of the plain statement, then the window in minutes
 * and the deadline.  The picked orders are read back by their key, one by
 * one (the LIMIT keeps the planner from a hash join that reads the whole
 * table when it believes it small).
 */
void
BuildWindowedCandidates(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID, INT4OID,
	TIMESTAMPTZOID, INT4OID, TEXTOID};

	AppendKinds(b, app, nsp);
	AppendPerKind(b, app, nsp);
	appendStringInfo(&b->sql,
					 " picked AS (SELECT d.id, d.minutes, d.deadline FROM due d"
					 " WHERE (d.deadline, d.id)" GT "($2, $3)"
					 " ORDER BY d.deadline, d.id LIMIT $4)"
					 " SELECT o.id, o.order_number::pg_catalog.text, o.user_id, o.product_id,"
					 " o.round_id, o.quantity, o.created_at, p.minutes, p.deadline"
					 " FROM picked p CROSS JOIN LATERAL (SELECT o.id, o.order_number, o.user_id,"
					 " o.product_id, o.round_id, o.quantity, o.created_at FROM %s.orders o"
					 " WHERE o.id" EQ "p.id LIMIT 1) o"
					 " ORDER BY p.deadline, p.id",
					 nsp);
	Args(b, 7, types);
	b->expected_rc = SPI_OK_SELECT;
	/*
	 * Each range's bounds are parameters of its index scan, so one plan
	 * serves every run; planning this statement anew for each would cost
	 * more than running it when nothing is due.
	 */
	b->cursor_options = CURSOR_OPT_GENERIC_PLAN;
}

/* The deadline of the oldest pending order without a type that passes cond. */
static const char *
Untyped(const AppSchema *app, const char *nsp, const char *cond)
{
	return psprintf("(SELECT %s FROM %s.orders o WHERE o.type IS NULL AND" PENDING("o")
					" AND%s " BY_TYPE_ORDER "LIMIT 1)",
					Deadline(app, "o.created_at", "$6"), nsp, cond);
}

/*
 * The next deadlines, one index probe per kind: that of any pending order
 * (those waiting out the retry backoff included), and that of an order not
 * held back since $5 (with $5 infinity, the same).  A kind that is a whole
 * type takes its oldest order from the probe that found the type; a kind
 * of a payment method, or the rest of a type that has one, is probed on
 * its own.  Only a kind whose oldest order is held back is scanned further.
 * Parameters as the windowed candidates ($1 to $4 unused).
 */
void
BuildNextDeadlines(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID, INT4OID,
	TIMESTAMPTZOID, INT4OID, TEXTOID};
	const char *first = psprintf("(SELECT %s FROM %s.orders o WHERE o.type" EQ "k.type AND"
								 PENDING("o") "%s AND" NOT_HELD_BACK("$5")
								 " " BY_TYPE_ORDER "LIMIT 1)",
								 Deadline(app, "o.created_at", "k.minutes"), nsp, InKind(app));

	AppendKinds(b, app, nsp);
	appendStringInfo(&b->sql,
					 " deadlines (any_kind, not_held) AS ("
					 " SELECT %s, CASE WHEN $5" EQ "'infinity'::pg_catalog.timestamptz OR NOT EXISTS ("
					 "SELECT FROM " EVENTS " f WHERE f.order_id" EQ "h.id"
					 " AND f.created_at" GT "$5 AND " BACKOFF_ROW ") THEN %s ELSE %s END"
					 " FROM kinds k CROSS JOIN LATERAL ("
					 " SELECT k.oldest AS created_at, k.oldest_id AS id"
					 " WHERE k.method IS NULL AND k.excluded IS NULL"
					 " UNION ALL (SELECT o.created_at, o.id FROM %s.orders o WHERE o.type" EQ "k.type AND"
					 PENDING("o") "%s AND NOT (k.method IS NULL AND k.excluded IS NULL) "
					 BY_TYPE_ORDER "LIMIT 1)) h)"
					 " SELECT LEAST(pg_catalog.min(d.any_kind), %s),"
					 " LEAST(pg_catalog.min(d.not_held), %s) FROM deadlines d",
					 Deadline(app, "h.created_at", "k.minutes"),
					 Deadline(app, "h.created_at", "k.minutes"), first,
					 nsp, InKind(app),
					 Untyped(app, nsp, " true"), Untyped(app, nsp, NOT_HELD_BACK("$5")));
	Args(b, 7, types);
	b->expected_rc = SPI_OK_SELECT;
}

/*
 * Of the windowed candidates the job has just locked ($1), those still due
 * at $2 by the row's current type, payment method and created_at, and not
 * failed or vetoed since $4: a transaction that committed between the
 * pick and the lock (a customer choosing a bank transfer, with its longer
 * window) is seen here, since the rows are now locked.  $3 is the window
 * of an order no row matches, $5 the zone of created_at without time zone.
 */
void
BuildStillDue(BuiltStatement *b, const AppSchema *app, const char *nsp)
{
	Oid			types[] = {UUIDARRAYOID, TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID, TEXTOID};
	const char *bound = "($2" MINUS MINUTES("CASE WHEN m.found THEN m.minutes"
											" WHEN a.found THEN a.minutes ELSE $3 END") ")";

	appendStringInfo(&b->sql, "SELECT o.id FROM %s.orders o", nsp);
	if (app->orders_payment_method)
		appendStringInfoString(&b->sql,
							   " LEFT JOIN LATERAL (SELECT true AS found, w.timeout_minutes AS minutes"
							   " FROM " REO_SCHEMA ".payment_windows w"
							   " WHERE w.order_type" EQ "o.type::pg_catalog.text"
							   " AND w.payment_method" EQ "o.payment_method::pg_catalog.text) m ON true");
	else
		appendStringInfoString(&b->sql,
							   " LEFT JOIN LATERAL (SELECT NULL::pg_catalog.bool AS found,"
							   " NULL::pg_catalog.int4 AS minutes) m ON true");
	appendStringInfo(&b->sql,
					 " LEFT JOIN LATERAL (SELECT true AS found, w.timeout_minutes AS minutes"
					 " FROM " REO_SCHEMA ".payment_windows w"
					 " WHERE w.order_type" EQ "o.type::pg_catalog.text"
					 " AND w.payment_method IS NULL) a ON true"
					 " WHERE o.id" EQ "ANY ($1) AND" PENDING("o")
					 " AND o.created_at" LT "%s"
					 " AND NOT EXISTS (SELECT FROM " EVENTS " f"
					 " WHERE f.order_id" EQ "o.id AND f.created_at" GT "$4 AND " BACKOFF_ROW ")",
					 app->orders_created_tz ? bound : psprintf("(%s AT TIME ZONE $5)", bound));
	Args(b, 5, types);
	b->expected_rc = SPI_OK_SELECT;
}

/*
 * The windows in force and those that cannot apply: every row when orders
 * has no type column, a method's row when it has no payment_method column.
 * Columns: whether any applies, the ignored rows as text, the shortest
 * window that applies, and those that apply as JSON (for the run row).
 */
void
BuildWindowsInForce(BuiltStatement *b, const AppSchema *app)
{
	const char *ignored = !app->orders_type ? "true" :
		!app->orders_payment_method ? "w.payment_method IS NOT NULL" : "false";

	appendStringInfo(&b->sql,
					 "SELECT pg_catalog.count(*) FILTER (WHERE NOT (%s))" GT "0,"
					 " pg_catalog.string_agg(pg_catalog.format('(%%L, %%L)', w.order_type,"
					 " w.payment_method), ', ' ORDER BY w.order_type, w.payment_method)"
					 " FILTER (WHERE %s),"
					 " pg_catalog.min(w.timeout_minutes) FILTER (WHERE NOT (%s)),"
					 " pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('order_type', w.order_type,"
					 " 'payment_method', w.payment_method, 'timeout_minutes', w.timeout_minutes)"
					 " ORDER BY w.order_type, w.payment_method) FILTER (WHERE NOT (%s))::pg_catalog.text"
					 " FROM " REO_SCHEMA ".payment_windows w",
					 ignored, ignored, ignored, ignored);
	b->expected_rc = SPI_OK_SELECT;
}
