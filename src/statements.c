/*-------------------------------------------------------------------------
 *
 * statements.c
 *	  The text of every SQL statement the extension's C code runs, each
 *	  written whole, in the order of ReoStatement, with the types of its
 *	  parameters; and the expansion of the few placeholders that make a
 *	  text fit the application's tables (ReoStatementSQL).
 *
 * Guarantees: each statement names every relation, function and operator
 * with its schema, so that whatever the caller's search_path, nothing
 * planted in another schema is resolved: operators are written
 * OPERATOR(pg_catalog.=) and so on, so that no look-alike operator in
 * another schema is chosen.  The search_path itself is left alone, so that
 * the application's own triggers behave as they do for the application.
 *
 * Placeholders: a text names what depends on the application's tables
 * with {name}, a lower-case letter then lower-case letters, digits or
 * underscores between braces (anything else between braces, such as the
 * array literal '{55P03,40P01,40001}', is text).  Their values are set in
 * one place, Placeholders() below, from the AppSchema:
 *
 *	{app}			the application's schema, quoted with quote_identifier
 *	{at_zone7}		empty when orders.created_at is timestamptz; otherwise
 *					" AT TIME ZONE $7", which turns an absolute time into
 *					created_at's local time and back ($7 is the zone)
 *	{at_zone5}		the same with the zone in $5 (still_due)
 *	{at_utc}		empty when orders.created_at is timestamptz; otherwise
 *					" AT TIME ZONE 'UTC'"
 *	{due_naive}		empty when orders.created_at is timestamptz; otherwise
 *					that order o's created_at is not in [$6, $7), the
 *					wall-clock times a DST change keeps from being due yet
 *					(see candidates)
 *	{kind_methods}	the payment methods that have windows of their own, in
 *					a kind that is a whole order type: NULL when orders has
 *					no payment_method column
 *	{method_kinds}	the kinds of a type and payment method: empty when
 *					orders has no payment_method column
 *	{in_kind}		the payment-method conditions that put an order o in
 *					kind k: empty when orders has no payment_method column
 *	{method_window}	the window of an order's type and payment method, m:
 *					none when orders has no payment_method column
 *	{ignored}		the payment windows that cannot apply: every row when
 *					orders has no type column, a method's row when it has
 *					no payment_method column
 *
 * Parameter types that follow a column of the application's tables
 * (timestamp or timestamptz) are written as the markers of ColumnType and
 * resolved when the text is expanded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "statements.h"

/*
 * A parameter of the type of one of the application's columns: timestamp
 * or timestamptz, as the column is.  No type has an OID this small.
 */
typedef enum ColumnType
{
	TS_ORDERS_CREATED = 1,		/* orders.created_at */
	TS_ORDERS_UPDATED,			/* orders.updated_at */
	TS_PRODUCTS_UPDATED,		/* products.updated_at */
	TS_ROUNDS_UPDATED,			/* lottery_rounds.updated_at */
	TS_NOTIFICATIONS,			/* notifications.sent_at and created_at */
	TS_LAST = TS_NOTIFICATIONS
} ColumnType;

typedef struct StatementDef
{
	const char *name;			/* as statements() shows it */
	const char *text;			/* with {placeholders} */
	Oid			argtypes[REO_MAX_ARGS]; /* $1 ..., up to the first 0 */
	int			expected_rc;	/* what SPI reports when it ran */
	int			cursor_options; /* CURSOR_OPT_CUSTOM_PLAN or _GENERIC_PLAN;
								 * 0: the plan cache chooses */
	bool		notifications;	/* writes the application's notifications */
} StatementDef;

static const StatementDef statements[STMT_COUNT] = {
	/*
	 * What a candidate is, the one definition: an order whose three
	 * statuses are pending (README, How it decides "expired"), created
	 * before the cutoff, after the keyset position, and not failed or
	 * vetoed since $5 (now less the retry backoff); oldest first.  The job
	 * locks them so that a payment or another run holding a row is skipped,
	 * not awaited; preview() takes the same selection without locks.
	 *
	 * The backoff check is a probe of order_events_retry_idx per order
	 * walked (OFFSET 0 keeps it a subplan): as an anti-join, once
	 * order_events had grown and been analyzed mid-drain, the planner
	 * hashed it and sorted every remaining candidate of the backlog for
	 * each chunk (40 ms instead of 2).  An audit row makes its order wait
	 * out the retry backoff when it is a veto, or a failure that says
	 * something about the order (not a lock timeout, a deadlock or a
	 * serialization failure); the install script's partial index
	 * order_events_retry_idx has the same predicate.
	 *
	 * Parameters: $1 the cutoff and $2, $3 the keyset position (created_at,
	 * id), in created_at's type; $4 the limit; $5 the start of the retry
	 * backoff; $6 and $7, where created_at has no time zone, the wall-clock
	 * times before the cutoff that are not due yet (ReoWallClockNotYet; an
	 * empty range but within a DST change's reach).  A created_at in the
	 * hour a DST change repeats or skips reads as a later instant than the
	 * wall-clock cutoff assumes, and such an order is not due before its
	 * deadline, the one preview() shows (never early).  The range is
	 * reckoned in C by the rules the rest of the job reads created_at by,
	 * so that no zone is read in SQL, where a name such as "CET" is an
	 * abbreviation's fixed offset.
	 */
	[STMT_CANDIDATES] = {
		.name = "candidates",
		.text =
		"SELECT o.id, o.order_number::pg_catalog.text, o.user_id, o.product_id, o.round_id, o.quantity, o.created_at"
		" FROM {app}.orders o"
		" WHERE o.status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.created_at OPERATOR(pg_catalog.<) $1"
		" AND o.created_at OPERATOR(pg_catalog.>=) $2"
		" AND (o.created_at, o.id) OPERATOR(pg_catalog.>) ($2, $3){due_naive}"
		" AND NOT EXISTS (SELECT FROM release_expired_orders.order_events f"
			" WHERE f.order_id OPERATOR(pg_catalog.=) o.id"
			" AND f.created_at OPERATOR(pg_catalog.>) $5"
			" AND (f.outcome OPERATOR(pg_catalog.=) 'vetoed'"
				" OR (f.outcome OPERATOR(pg_catalog.=) 'failed'"
					" AND f.sqlstate OPERATOR(pg_catalog.<>) ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[])))"
			" OFFSET 0)"
		" ORDER BY o.created_at, o.id LIMIT $4 FOR UPDATE OF o SKIP LOCKED",
		.argtypes = {TS_ORDERS_CREATED, TS_ORDERS_CREATED, UUIDOID, INT4OID,
		TIMESTAMPTZOID, TS_ORDERS_CREATED, TS_ORDERS_CREATED},
		.expected_rc = SPI_OK_SELECT,

		/*
		 * A generic plan cannot know how many candidates lie after the
		 * keyset position and may sort them all; with the values, the
		 * planner walks the (created_at, id) index from that position and
		 * stops at LIMIT.
		 */
		.cursor_options = CURSOR_OPT_CUSTOM_PLAN,
	},

	/* The same selection, without locks. */
	[STMT_PREVIEW] = {
		.name = "preview",
		.text =
		"SELECT o.id, o.order_number::pg_catalog.text, o.user_id, o.product_id, o.round_id, o.quantity, o.created_at"
		" FROM {app}.orders o"
		" WHERE o.status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.created_at OPERATOR(pg_catalog.<) $1"
		" AND o.created_at OPERATOR(pg_catalog.>=) $2"
		" AND (o.created_at, o.id) OPERATOR(pg_catalog.>) ($2, $3){due_naive}"
		" AND NOT EXISTS (SELECT FROM release_expired_orders.order_events f"
			" WHERE f.order_id OPERATOR(pg_catalog.=) o.id"
			" AND f.created_at OPERATOR(pg_catalog.>) $5"
			" AND (f.outcome OPERATOR(pg_catalog.=) 'vetoed'"
				" OR (f.outcome OPERATOR(pg_catalog.=) 'failed'"
					" AND f.sqlstate OPERATOR(pg_catalog.<>) ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[])))"
			" OFFSET 0)"
		" ORDER BY o.created_at, o.id LIMIT $4",
		.argtypes = {TS_ORDERS_CREATED, TS_ORDERS_CREATED, UUIDOID, INT4OID,
		TIMESTAMPTZOID, TS_ORDERS_CREATED, TS_ORDERS_CREATED},
		.expected_rc = SPI_OK_SELECT,
		.cursor_options = CURSOR_OPT_CUSTOM_PLAN,
	},

	/*
	 * The candidates when payment windows are in force: each order's
	 * deadline is created_at plus the window of its type and payment
	 * method, and candidates come oldest deadline first.  Up to $4 orders
	 * by deadline, without locks: the job locks what it picked with a
	 * statement of its own (lock_orders), so that orders another
	 * transaction holds never hide the due orders behind them.  Columns:
	 * those of the plain statement, then the window in minutes and the
	 * deadline.
	 *
	 * The scan stays index-driven: the distinct order types among pending
	 * orders are found by a skip scan (types: one index probe per type
	 * with an index on (type, created_at, id) for pending orders), and that
	 * probe also gives the type's oldest pending order.  The kinds: one
	 * per pending order type (its any-method window, else $6), one per
	 * window of a type and payment method, and one for orders without a
	 * type.  A kind's excluded lists the methods that have windows of their
	 * own; its oldest and oldest_id are the type's oldest pending order.
	 * A payment method's window is a kind of its own (type and method); the
	 * rest of that type keeps the type's window.  The type is compared in
	 * its own type (text, varchar, bpchar, an enum or a domain), so that
	 * the index serves it; payment methods as text.  The windows are read
	 * once per statement, by hash, not once per type.
	 *
	 * due: each kind's candidates, oldest first, up to the limit; none is
	 * looked for in a kind whose oldest order is not due, so a run that
	 * finds nothing costs one probe per type.  Within a type of one window
	 * the deadline order is the created_at order, so each kind is an index
	 * range that stops at its own cutoff and its LIMIT; ordered as the
	 * index on (type, created_at, id) is (the type is fixed, so this is
	 * their created_at order, and no other index, the application's on
	 * (status, created_at) say, can give it without a sort).  The range's
	 * lower bound is also written as a plain "created_at >=", which the
	 * keyset row comparison implies: the bounds depend on each kind's
	 * window, so the plan is generic whatever the statement's parameters
	 * and estimates the range with the planner's defaults.  Both indexes
	 * then see the same pair of bounds on created_at.  Without it, the
	 * (status, created_at) index, which turns the row comparison into that
	 * bound and counts the pair as one narrow range, looked far more
	 * selective than this one, for which the row comparison alone counted
	 * a third of the rows: once order_events had grown enough for its
	 * probe to be costed as an index scan, the kept plan read every
	 * pending order past the cutoff, probed order_events for each and
	 * sorted them, for each chunk (80 ms instead of 0.5 in a backlog of
	 * 100,000 orders due at once).  Orders
	 * without a type have the default window.  The kinds' candidates are
	 * merged by deadline (picked).  The picked orders are read back by
	 * their key, one by one (the LIMIT keeps the planner from a hash join
	 * that reads the whole table when it believes it small).
	 *
	 * An order's deadline, created_at plus its window, is never an error: a
	 * created_at so late that the sum could leave the timestamp range has
	 * no deadline (infinity), and one so early that its zone's offset could
	 * take it out of the range (before 2 December 4714 BC: a zone's offset,
	 * a POSIX one included, is under 168 hours) is read as UTC.
	 * Every other deadline is exact, so that the order of deadlines within
	 * a kind is the order of created_at, which the scan's position relies
	 * on.
	 *
	 * Parameters: $1 the run's now (infinity for "the next deadline"), $2
	 * and $3 the keyset position (deadline, id), $4 the limit, $5 the start
	 * of the retry backoff, $6 the window of an order no row matches, $7
	 * the zone of created_at without time zone.
	 *
	 * The wall-clock ranges find the orders by index; the deadline, an
	 * absolute time, decides: a created_at in the hour a DST change repeats
	 * or skips reads as a later instant than the range assumed, and such an
	 * order is not due before that deadline (never early).
	 */
	[STMT_PREVIEW_W] = {
		.name = "preview_windowed",
		.text =
		"WITH RECURSIVE types (type, oldest, oldest_id) AS ( (SELECT o.type, o.created_at, o.id"
				" FROM {app}.orders o"
				" WHERE o.status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.type IS NOT NULL"
				" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
				" LIMIT 1)"
			" UNION ALL"
			" SELECT n.type, n.created_at, n.id"
			" FROM types t"
			" CROSS JOIN LATERAL (SELECT o.type, o.created_at, o.id"
				" FROM {app}.orders o"
				" WHERE o.status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.type OPERATOR(pg_catalog.>) t.type"
				" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
				" LIMIT 1) n),"
		" by_type (order_type, found, minutes, methods) AS ( SELECT w.order_type, pg_catalog.bool_or(w.payment_method IS NULL), pg_catalog.max(w.timeout_minutes) FILTER (WHERE w.payment_method IS NULL),"
			" pg_catalog.array_agg(w.payment_method) FILTER (WHERE w.payment_method IS NOT NULL)"
			" FROM release_expired_orders.payment_windows w"
			" GROUP BY w.order_type),"
		" kinds (type, method, excluded, minutes, oldest, oldest_id) AS ( SELECT t.type, NULL::pg_catalog.text, {kind_methods},"
			" CASE WHEN a.found THEN a.minutes ELSE $6 END, t.oldest, t.oldest_id"
			" FROM types t"
			" LEFT JOIN by_type a"
			" ON a.order_type OPERATOR(pg_catalog.=) t.type::pg_catalog.text{method_kinds}),"
		" due AS (SELECT c.*"
			" FROM kinds k"
			" CROSS JOIN LATERAL ( SELECT o.id, k.minutes, CASE"
				" WHEN o.created_at OPERATOR(pg_catalog.>=) '100000-01-01' THEN 'infinity'::pg_catalog.timestamptz"
				" WHEN o.created_at OPERATOR(pg_catalog.>) '4714-12-02 BC' THEN (o.created_at{at_zone7}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => k.minutes)"
				" ELSE (o.created_at{at_utc}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => k.minutes) END AS deadline"
				" FROM {app}.orders o"
				" WHERE o.type OPERATOR(pg_catalog.=) k.type"
				" AND o.status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'{in_kind}"
				" AND o.created_at OPERATOR(pg_catalog.<) (($1 OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => k.minutes)){at_zone7})"
				" AND o.created_at OPERATOR(pg_catalog.>=) (($2 OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => k.minutes)){at_zone7})"
				" AND (o.created_at, o.id) OPERATOR(pg_catalog.>) ((($2 OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => k.minutes)){at_zone7}), $3)"
				" AND NOT EXISTS (SELECT FROM release_expired_orders.order_events f"
					" WHERE f.order_id OPERATOR(pg_catalog.=) o.id"
					" AND f.created_at OPERATOR(pg_catalog.>) $5"
					" AND (f.outcome OPERATOR(pg_catalog.=) 'vetoed'"
						" OR (f.outcome OPERATOR(pg_catalog.=) 'failed'"
							" AND f.sqlstate OPERATOR(pg_catalog.<>) ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[])))"
					" OFFSET 0)"
				" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
				" LIMIT $4) c"
			" WHERE k.oldest OPERATOR(pg_catalog.<) (($1 OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => k.minutes)){at_zone7})"
			" UNION ALL (SELECT o.id, $6, CASE"
				" WHEN o.created_at OPERATOR(pg_catalog.>=) '100000-01-01' THEN 'infinity'::pg_catalog.timestamptz"
				" WHEN o.created_at OPERATOR(pg_catalog.>) '4714-12-02 BC' THEN (o.created_at{at_zone7}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => $6)"
				" ELSE (o.created_at{at_utc}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => $6) END"
				" FROM {app}.orders o"
				" WHERE o.type IS NULL AND o.status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.created_at OPERATOR(pg_catalog.<) (($1 OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => $6)){at_zone7})"
				" AND o.created_at OPERATOR(pg_catalog.>=) (($2 OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => $6)){at_zone7})"
				" AND (o.created_at, o.id) OPERATOR(pg_catalog.>) ((($2 OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => $6)){at_zone7}), $3)"
				" AND NOT EXISTS (SELECT FROM release_expired_orders.order_events f"
					" WHERE f.order_id OPERATOR(pg_catalog.=) o.id"
					" AND f.created_at OPERATOR(pg_catalog.>) $5"
					" AND (f.outcome OPERATOR(pg_catalog.=) 'vetoed'"
						" OR (f.outcome OPERATOR(pg_catalog.=) 'failed'"
							" AND f.sqlstate OPERATOR(pg_catalog.<>) ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[])))"
					" OFFSET 0)"
				" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
				" LIMIT $4)),"
		" picked AS (SELECT d.id, d.minutes, d.deadline"
			" FROM due d"
			" WHERE (d.deadline, d.id) OPERATOR(pg_catalog.>) ($2, $3)"
			" AND d.deadline OPERATOR(pg_catalog.<) $1"
			" ORDER BY d.deadline, d.id LIMIT $4)"
		" SELECT o.id, o.order_number::pg_catalog.text, o.user_id, o.product_id, o.round_id, o.quantity, o.created_at, p.minutes, p.deadline"
		" FROM picked p"
		" CROSS JOIN LATERAL (SELECT o.id, o.order_number, o.user_id, o.product_id, o.round_id, o.quantity, o.created_at"
			" FROM {app}.orders o"
			" WHERE o.id OPERATOR(pg_catalog.=) p.id LIMIT 1) o"
		" ORDER BY p.deadline, p.id",
		.argtypes = {TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID, INT4OID,
		TIMESTAMPTZOID, INT4OID, TEXTOID},
		.expected_rc = SPI_OK_SELECT,

		/*
		 * Each range's bounds are parameters of its index scan, so one plan
		 * serves every run; planning this statement anew for each would
		 * cost more than running it when nothing is due.
		 */
		.cursor_options = CURSOR_OPT_GENERIC_PLAN,
	},

	/*
	 * The next deadlines, one index probe per kind (the kinds as in
	 * preview_windowed): that of any pending order (those waiting out the
	 * retry backoff included), and that of an order not held back since $5
	 * (with $5 infinity, the same).  A kind that is a whole type takes its
	 * oldest order from the probe that found the type; a kind of a payment
	 * method, or the rest of a type that has one, is probed on its own.
	 * Only a kind whose oldest order is held back is scanned further.  The
	 * last two subqueries are the deadline of the oldest pending order
	 * without a type, then of the oldest one not held back.  Parameters as
	 * preview_windowed's ($1 to $4 unused).
	 */
	[STMT_NEXT_W] = {
		.name = "next_deadlines_windowed",
		.text =
		"WITH RECURSIVE types (type, oldest, oldest_id) AS ( (SELECT o.type, o.created_at, o.id"
				" FROM {app}.orders o"
				" WHERE o.status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.type IS NOT NULL"
				" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
				" LIMIT 1)"
			" UNION ALL"
			" SELECT n.type, n.created_at, n.id"
			" FROM types t"
			" CROSS JOIN LATERAL (SELECT o.type, o.created_at, o.id"
				" FROM {app}.orders o"
				" WHERE o.status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.type OPERATOR(pg_catalog.>) t.type"
				" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
				" LIMIT 1) n),"
		" by_type (order_type, found, minutes, methods) AS ( SELECT w.order_type, pg_catalog.bool_or(w.payment_method IS NULL), pg_catalog.max(w.timeout_minutes) FILTER (WHERE w.payment_method IS NULL),"
			" pg_catalog.array_agg(w.payment_method) FILTER (WHERE w.payment_method IS NOT NULL)"
			" FROM release_expired_orders.payment_windows w"
			" GROUP BY w.order_type),"
		" kinds (type, method, excluded, minutes, oldest, oldest_id) AS ( SELECT t.type, NULL::pg_catalog.text, {kind_methods},"
			" CASE WHEN a.found THEN a.minutes ELSE $6 END, t.oldest, t.oldest_id"
			" FROM types t"
			" LEFT JOIN by_type a"
			" ON a.order_type OPERATOR(pg_catalog.=) t.type::pg_catalog.text{method_kinds}),"
		" deadlines (any_kind, not_held) AS ( SELECT CASE"
			" WHEN h.created_at OPERATOR(pg_catalog.>=) '100000-01-01' THEN 'infinity'::pg_catalog.timestamptz"
			" WHEN h.created_at OPERATOR(pg_catalog.>) '4714-12-02 BC' THEN (h.created_at{at_zone7}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => k.minutes)"
			" ELSE (h.created_at{at_utc}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => k.minutes) END,"
			" CASE WHEN $5 OPERATOR(pg_catalog.=) 'infinity'::pg_catalog.timestamptz"
			" OR NOT EXISTS (SELECT FROM release_expired_orders.order_events f"
				" WHERE f.order_id OPERATOR(pg_catalog.=) h.id"
				" AND f.created_at OPERATOR(pg_catalog.>) $5"
				" AND (f.outcome OPERATOR(pg_catalog.=) 'vetoed'"
					" OR (f.outcome OPERATOR(pg_catalog.=) 'failed'"
						" AND f.sqlstate OPERATOR(pg_catalog.<>) ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[])))) THEN CASE"
			" WHEN h.created_at OPERATOR(pg_catalog.>=) '100000-01-01' THEN 'infinity'::pg_catalog.timestamptz"
			" WHEN h.created_at OPERATOR(pg_catalog.>) '4714-12-02 BC' THEN (h.created_at{at_zone7}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => k.minutes)"
			" ELSE (h.created_at{at_utc}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => k.minutes) END"
			" ELSE (SELECT CASE"
				" WHEN o.created_at OPERATOR(pg_catalog.>=) '100000-01-01' THEN 'infinity'::pg_catalog.timestamptz"
				" WHEN o.created_at OPERATOR(pg_catalog.>) '4714-12-02 BC' THEN (o.created_at{at_zone7}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => k.minutes)"
				" ELSE (o.created_at{at_utc}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => k.minutes) END"
				" FROM {app}.orders o"
				" WHERE o.type OPERATOR(pg_catalog.=) k.type"
				" AND o.status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'{in_kind}"
				" AND NOT EXISTS (SELECT FROM release_expired_orders.order_events f"
					" WHERE f.order_id OPERATOR(pg_catalog.=) o.id"
					" AND f.created_at OPERATOR(pg_catalog.>) $5"
					" AND (f.outcome OPERATOR(pg_catalog.=) 'vetoed'"
						" OR (f.outcome OPERATOR(pg_catalog.=) 'failed'"
							" AND f.sqlstate OPERATOR(pg_catalog.<>) ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[])))"
					" OFFSET 0)"
				" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
				" LIMIT 1) END"
			" FROM kinds k"
			" CROSS JOIN LATERAL ( SELECT k.oldest AS created_at, k.oldest_id AS id"
				" WHERE k.method IS NULL AND k.excluded IS NULL"
				" UNION ALL (SELECT o.created_at, o.id"
					" FROM {app}.orders o"
					" WHERE o.type OPERATOR(pg_catalog.=) k.type"
					" AND o.status OPERATOR(pg_catalog.=) 'pending'"
					" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
					" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'{in_kind}"
					" AND NOT (k.method IS NULL"
						" AND k.excluded IS NULL)"
					" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
					" LIMIT 1)) h)"
		" SELECT LEAST(pg_catalog.min(d.any_kind), (SELECT CASE"
				" WHEN o.created_at OPERATOR(pg_catalog.>=) '100000-01-01' THEN 'infinity'::pg_catalog.timestamptz"
				" WHEN o.created_at OPERATOR(pg_catalog.>) '4714-12-02 BC' THEN (o.created_at{at_zone7}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => $6)"
				" ELSE (o.created_at{at_utc}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => $6) END"
				" FROM {app}.orders o"
				" WHERE o.type IS NULL AND o.status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending' AND true"
				" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
				" LIMIT 1)),"
		" LEAST(pg_catalog.min(d.not_held), (SELECT CASE"
				" WHEN o.created_at OPERATOR(pg_catalog.>=) '100000-01-01' THEN 'infinity'::pg_catalog.timestamptz"
				" WHEN o.created_at OPERATOR(pg_catalog.>) '4714-12-02 BC' THEN (o.created_at{at_zone7}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => $6)"
				" ELSE (o.created_at{at_utc}) OPERATOR(pg_catalog.+) pg_catalog.make_interval(mins => $6) END"
				" FROM {app}.orders o"
				" WHERE o.type IS NULL AND o.status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
				" AND NOT EXISTS (SELECT FROM release_expired_orders.order_events f"
					" WHERE f.order_id OPERATOR(pg_catalog.=) o.id"
					" AND f.created_at OPERATOR(pg_catalog.>) $5"
					" AND (f.outcome OPERATOR(pg_catalog.=) 'vetoed'"
						" OR (f.outcome OPERATOR(pg_catalog.=) 'failed'"
							" AND f.sqlstate OPERATOR(pg_catalog.<>) ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[])))"
					" OFFSET 0)"
				" ORDER BY o.type USING OPERATOR(pg_catalog.<) , o.created_at USING OPERATOR(pg_catalog.<) , o.id"
				" LIMIT 1))"
		" FROM deadlines d",
		.argtypes = {TIMESTAMPTZOID, TIMESTAMPTZOID, UUIDOID, INT4OID,
		TIMESTAMPTZOID, INT4OID, TEXTOID},
		.expected_rc = SPI_OK_SELECT,

		/*
		 * Every probe is an index range whose bounds come from the row
		 * before it, so the parameters' values cannot make a better plan.
		 * Left to the plan cache, the generic plan's estimate (each "not
		 * held" subquery costed as a long walk) looked dearer than the
		 * first custom plans, and every look planned the statement again:
		 * 0.7 ms of the deadline worker's 0.9 ms look, at each wake and
		 * between the runs of a drain.
		 */
		.cursor_options = CURSOR_OPT_GENERIC_PLAN,
	},

	/*
	 * The oldest pending order created before $1, if any: one probe of the
	 * recommended index, and a statement much cheaper to parse and plan in
	 * a fresh session than the candidate scan, which a run that finds
	 * nothing then never prepares.  Asked as "the first in created_at
	 * order" and not as EXISTS: the planner then costs a sequential scan at
	 * the whole table and its sort, whatever it believes of how many orders
	 * match (a paid order keeps status 'pending', so the three statuses and
	 * created_at are far from independent), and the index is the cheaper
	 * path by construction.
	 */
	[STMT_ANY_DUE] = {
		.name = "any_due",
		.text =
		"SELECT o.created_at"
		" FROM {app}.orders o"
		" WHERE o.status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.created_at OPERATOR(pg_catalog.<) $1"
		" ORDER BY o.created_at USING OPERATOR(pg_catalog.<) LIMIT 1",
		.argtypes = {TS_ORDERS_CREATED},
		.expected_rc = SPI_OK_SELECT,
	},

	/* Whether there are payment windows. */
	[STMT_ANY_WINDOW] = {
		.name = "any_window",
		.text =
		"SELECT EXISTS (SELECT FROM release_expired_orders.payment_windows)",
		.expected_rc = SPI_OK_SELECT,
	},

	/*
	 * The windows in force and those that cannot apply ({ignored}).
	 * Columns: whether any applies, the ignored rows as text, the shortest
	 * window that applies, and those that apply as JSON (for the run row).
	 */
	[STMT_WINDOWS] = {
		.name = "windows",
		.text =
		"SELECT pg_catalog.count(*) FILTER (WHERE NOT ({ignored})) OPERATOR(pg_catalog.>) 0,"
		" pg_catalog.string_agg(pg_catalog.format('(%L, %L)', w.order_type, w.payment_method), ', ' ORDER BY w.order_type, w.payment_method) FILTER (WHERE {ignored}),"
		" pg_catalog.min(w.timeout_minutes) FILTER (WHERE NOT ({ignored})),"
		" pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('order_type', w.order_type, 'payment_method', w.payment_method, 'timeout_minutes', w.timeout_minutes) ORDER BY w.order_type, w.payment_method) FILTER (WHERE NOT ({ignored}))::pg_catalog.text"
		" FROM release_expired_orders.payment_windows w",
		.expected_rc = SPI_OK_SELECT,
	},

	/*
	 * Lock the windowed candidates picked ($1, in deadline order), skipping
	 * those another transaction holds, each checked again under its lock;
	 * columns as the plain candidate statement's.
	 */
	[STMT_LOCK_ORDERS] = {
		.name = "lock_orders",
		.text =
		"SELECT o.id, o.order_number::pg_catalog.text, o.user_id, o.product_id, o.round_id, o.quantity, o.created_at"
		" FROM pg_catalog.unnest($1) WITH ORDINALITY p (id, pos)"
		" JOIN {app}.orders o ON o.id OPERATOR(pg_catalog.=) p.id"
		" WHERE o.status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
		" ORDER BY p.pos FOR UPDATE OF o SKIP LOCKED",
		.argtypes = {UUIDARRAYOID},
		.expected_rc = SPI_OK_SELECT,
	},

	/*
	 * Of the windowed candidates the job has just locked ($1), those still
	 * due at $2 by the row's current type, payment method and created_at,
	 * and not failed or vetoed since $4: a transaction that committed
	 * between the pick and the lock (a customer choosing a bank transfer,
	 * with its longer window) is seen here, since the rows are now locked.
	 * $3 is the window of an order no row matches, $5 the zone of
	 * created_at without time zone.
	 */
	[STMT_STILL_DUE] = {
		.name = "still_due",
		.text =
		"SELECT o.id"
		" FROM {app}.orders o{method_window}"
		" LEFT JOIN LATERAL (SELECT true AS found, w.timeout_minutes AS minutes"
			" FROM release_expired_orders.payment_windows w"
			" WHERE w.order_type OPERATOR(pg_catalog.=) o.type::pg_catalog.text"
			" AND w.payment_method IS NULL) a ON true"
		" WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)"
		" AND o.status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.created_at OPERATOR(pg_catalog.<) (($2 OPERATOR(pg_catalog.-) pg_catalog.make_interval(mins => CASE"
					" WHEN m.found THEN m.minutes WHEN a.found THEN a.minutes"
					" ELSE $3 END)){at_zone5})"
		" AND NOT EXISTS (SELECT FROM release_expired_orders.order_events f"
			" WHERE f.order_id OPERATOR(pg_catalog.=) o.id"
			" AND f.created_at OPERATOR(pg_catalog.>) $4"
			" AND (f.outcome OPERATOR(pg_catalog.=) 'vetoed'"
				" OR (f.outcome OPERATOR(pg_catalog.=) 'failed'"
					" AND f.sqlstate OPERATOR(pg_catalog.<>) ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[]))))",
		.argtypes = {UUIDARRAYOID, TIMESTAMPTZOID, INT4OID, TIMESTAMPTZOID,
		TEXTOID},
		.expected_rc = SPI_OK_SELECT,
	},

	/*
	 * The release of a part of a chunk: its orders, with the pending
	 * statuses checked again under the row lock, and the application's
	 * notifications of the orders released.  It runs the application's
	 * code (the triggers of orders and notifications), so it writes nothing
	 * of the extension's own.  Returns one row per order it updated: the
	 * id, and whether the row really became expired/cancelled/cancelled; a
	 * trigger may have returned OLD or written the old statuses back, and
	 * an order a trigger skipped (returned NULL) is not returned at all.
	 * Statuses are compared as text, so that any string or enum type of the
	 * application compares the same.
	 *
	 * The pending statuses are checked with texteq() rather than the =
	 * operator on purpose: the planner then cannot match them to the
	 * recommended partial index, whose entries for already released orders
	 * it would otherwise read for every chunk, and finds the orders by
	 * primary key.
	 *
	 * Where no notifications are written, this is release_quiet's text.
	 */
	[STMT_RELEASE] = {
		.name = "release",
		.text =
		"WITH released AS ( UPDATE {app}.orders o"
			" SET status = 'expired', payment_status = 'cancelled', fulfillment_status = 'cancelled', updated_at = $2, notes = pg_catalog.concat(o.notes, $3)"
			" WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)"
			" AND pg_catalog.texteq(o.status::pg_catalog.text, 'pending')"
			" AND pg_catalog.texteq(o.payment_status::pg_catalog.text, 'pending')"
			" AND pg_catalog.texteq(o.fulfillment_status::pg_catalog.text, 'pending')"
			" RETURNING o.id, o.user_id, pg_catalog.texteq(o.status::pg_catalog.text, 'expired')"
			" AND pg_catalog.texteq(o.payment_status::pg_catalog.text, 'cancelled')"
			" AND pg_catalog.texteq(o.fulfillment_status::pg_catalog.text, 'cancelled') AS became),"
		" notified AS ("
			" INSERT INTO {app}.notifications (id, user_id, type, content, status, sent_at, created_at)"
			" SELECT pg_catalog.gen_random_uuid(), COALESCE(r.user_id, '00000000-0000-0000-0000-000000000000'::pg_catalog.uuid), 'system_audit', pg_catalog.concat('过期订单清理: order_released_successfully - 订单: ', r.id), 'sent', $4, $4"
			" FROM released r"
			" WHERE $5 AND r.became)"
		" SELECT r.id, r.became"
		" FROM released r",
		.argtypes = {UUIDARRAYOID, TS_ORDERS_UPDATED, TEXTOID, TS_NOTIFICATIONS,
		BOOLOID},
		.expected_rc = SPI_OK_SELECT,

		/*
		 * One generic plan finds the part's orders by primary key whatever
		 * the number of ids; planning the statement again for every chunk
		 * cost about half a millisecond, the largest fixed cost of a chunk
		 * of 100.
		 */
		.cursor_options = CURSOR_OPT_GENERIC_PLAN,
	},

	/*
	 * The same, without notifications (they are off, or were found to
	 * fail): the statement does not touch notifications at all, since even
	 * an INSERT of no rows would fire the application's statement triggers
	 * there.  Its parameters are release's.
	 */
	[STMT_RELEASE_QUIET] = {
		.name = "release_quiet",
		.text =
		"WITH released AS ( UPDATE {app}.orders o"
			" SET status = 'expired', payment_status = 'cancelled', fulfillment_status = 'cancelled', updated_at = $2, notes = pg_catalog.concat(o.notes, $3)"
			" WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)"
			" AND pg_catalog.texteq(o.status::pg_catalog.text, 'pending')"
			" AND pg_catalog.texteq(o.payment_status::pg_catalog.text, 'pending')"
			" AND pg_catalog.texteq(o.fulfillment_status::pg_catalog.text, 'pending')"
			" RETURNING o.id, o.user_id, pg_catalog.texteq(o.status::pg_catalog.text, 'expired')"
			" AND pg_catalog.texteq(o.payment_status::pg_catalog.text, 'cancelled')"
			" AND pg_catalog.texteq(o.fulfillment_status::pg_catalog.text, 'cancelled') AS became),"
		" unused AS (SELECT $4, $5)"
		" SELECT r.id, r.became"
		" FROM released r",
		.argtypes = {UUIDARRAYOID, TS_ORDERS_UPDATED, TEXTOID, TS_NOTIFICATIONS,
		BOOLOID},
		.expected_rc = SPI_OK_SELECT,
		.cursor_options = CURSOR_OPT_GENERIC_PLAN,
	},

	/*
	 * The audit rows of a part's released orders, from what the locked rows
	 * reserved before the update (whatever a trigger did to the row), and
	 * the run row's counts when the part is the whole chunk ($10): $8
	 * orders found, $9 vetoed by a trigger that skipped the update.
	 */
	[STMT_AUDIT] = {
		.name = "audit",
		.text =
		"WITH events AS ("
			" INSERT INTO release_expired_orders.order_events (run_id, order_id, order_number, user_id, product_id, round_id, quantity, outcome, prev_status, prev_payment_status, prev_fulfillment_status, stock_delta, shares_delta)"
			" SELECT $1, c.id, c.num, c.usr, c.product, c.round, c.qty, 'released', 'pending', 'pending', 'pending',"
			" CASE WHEN c.product IS NOT NULL AND c.qty OPERATOR(pg_catalog.>) 0 THEN c.qty"
			" ELSE 0 END, CASE WHEN c.round IS NOT NULL"
			" AND c.qty OPERATOR(pg_catalog.>) 0 THEN OPERATOR(pg_catalog.-) c.qty"
			" ELSE 0 END"
			" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)) c (id, num, usr, product, round, qty))"
		" UPDATE release_expired_orders.runs"
		" SET found = found OPERATOR(pg_catalog.+) $8, released = released OPERATOR(pg_catalog.+) pg_catalog.cardinality($2), vetoed = vetoed OPERATOR(pg_catalog.+) $9"
		" WHERE id OPERATOR(pg_catalog.=) $1 AND $10",
		.argtypes = {INT8OID, UUIDARRAYOID, TEXTARRAYOID, UUIDARRAYOID,
		UUIDARRAYOID, UUIDARRAYOID, INT4ARRAYOID, INT4OID, INT4OID, BOOLOID},
		.expected_rc = SPI_OK_UPDATE,
		.cursor_options = CURSOR_OPT_GENERIC_PLAN,
	},

	/*
	 * The orders of $1 that are no longer expired/cancelled/cancelled at
	 * the end of their part: a trigger of the application (on any of its
	 * tables) put them back after the release updated them.
	 */
	[STMT_STILL_RELEASED] = {
		.name = "still_released",
		.text =
		"SELECT o.id"
		" FROM {app}.orders o"
		" WHERE o.id OPERATOR(pg_catalog.=) ANY ($1)"
		" AND NOT COALESCE(pg_catalog.texteq(o.status::pg_catalog.text, 'expired')"
			" AND pg_catalog.texteq(o.payment_status::pg_catalog.text, 'cancelled')"
			" AND pg_catalog.texteq(o.fulfillment_status::pg_catalog.text, 'cancelled'), false)",
		.argtypes = {UUIDARRAYOID},
		.expected_rc = SPI_OK_SELECT,
		.cursor_options = CURSOR_OPT_GENERIC_PLAN,
	},

	/*
	 * The products' part of the release, the chunk's last writes: lock the
	 * rows in id order (so that runs, purchases and undo never deadlock),
	 * then add each row's aggregated quantity to its stock.  Returns, in id
	 * order, the rows whose counter did not move by the quantity asked
	 * (missing, skipped or changed by a trigger), with what did move and
	 * why, so that the audit can be corrected from what was really written;
	 * and the rows it locked with their values before, for stock_moved.
	 */
	[STMT_PRODUCTS] = {
		.name = "products",
		.text =
		"WITH d AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) d (id, qty)),"
		" locked AS (SELECT t.id, t.stock AS before"
			" FROM {app}.products t"
			" WHERE t.id OPERATOR(pg_catalog.=) ANY ($1)"
			" ORDER BY t.id FOR NO KEY UPDATE OF t),"
		" done AS (UPDATE {app}.products t"
			" SET stock = pg_catalog.int4(COALESCE(t.stock, 0) OPERATOR(pg_catalog.+) d.qty), updated_at = $3"
			" FROM d, locked l"
			" WHERE t.id OPERATOR(pg_catalog.=) d.id AND l.id OPERATOR(pg_catalog.=) t.id"
			" RETURNING t.id, pg_catalog.int8(COALESCE(t.stock, 0) OPERATOR(pg_catalog.-) COALESCE(l.before, 0)) AS applied)"
		" SELECT pg_catalog.array_agg(d.id ORDER BY d.id) FILTER (WHERE x.id IS NULL"
			" OR x.applied OPERATOR(pg_catalog.<>) d.qty),"
		" pg_catalog.array_agg(COALESCE(x.applied, 0) ORDER BY d.id) FILTER (WHERE x.id IS NULL"
			" OR x.applied OPERATOR(pg_catalog.<>) d.qty),"
		" pg_catalog.array_agg(CASE"
			" WHEN x.id IS NOT NULL THEN 'stock_skipped' WHEN EXISTS (SELECT FROM locked l"
				" WHERE l.id OPERATOR(pg_catalog.=) d.id) THEN 'stock_skipped'"
			" ELSE 'product_not_found' END ORDER BY d.id) FILTER (WHERE x.id IS NULL"
			" OR x.applied OPERATOR(pg_catalog.<>) d.qty),"
		" (SELECT pg_catalog.array_agg(l.id ORDER BY l.id)"
			" FROM locked l),"
		" (SELECT pg_catalog.array_agg(l.before ORDER BY l.id)"
			" FROM locked l)"
		" FROM d"
		" LEFT JOIN done x ON x.id OPERATOR(pg_catalog.=) d.id",
		.argtypes = {UUIDARRAYOID, INT8ARRAYOID, TS_PRODUCTS_UPDATED},
		.expected_rc = SPI_OK_SELECT,

		/*
		 * The generic plan finds the rows by primary key; the custom plans
		 * of the first chunks, which see how many ids there are, read the
		 * whole table twice (to lock, then to update), whatever its size.
		 */
		.cursor_options = CURSOR_OPT_GENERIC_PLAN,
	},

	/*
	 * The same for the lottery rounds' sold shares, which go down by the
	 * quantity: a round with no shares sold keeps them, one with fewer is
	 * clamped at 0.
	 */
	[STMT_ROUNDS] = {
		.name = "rounds",
		.text =
		"WITH d AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) d (id, qty)),"
		" locked AS (SELECT t.id, t.sold_shares AS before"
			" FROM {app}.lottery_rounds t"
			" WHERE t.id OPERATOR(pg_catalog.=) ANY ($1)"
			" ORDER BY t.id FOR NO KEY UPDATE OF t),"
		" done AS (UPDATE {app}.lottery_rounds t"
			" SET sold_shares = CASE"
			" WHEN COALESCE(t.sold_shares, 0) OPERATOR(pg_catalog.<=) 0 THEN t.sold_shares"
			" ELSE pg_catalog.int4(GREATEST(0, t.sold_shares OPERATOR(pg_catalog.-) d.qty)) END, updated_at = $3"
			" FROM d, locked l"
			" WHERE t.id OPERATOR(pg_catalog.=) d.id AND l.id OPERATOR(pg_catalog.=) t.id"
			" RETURNING t.id, pg_catalog.int8(COALESCE(l.before, 0) OPERATOR(pg_catalog.-) COALESCE(t.sold_shares, 0)) AS applied)"
		" SELECT pg_catalog.array_agg(d.id ORDER BY d.id) FILTER (WHERE x.id IS NULL"
			" OR x.applied OPERATOR(pg_catalog.<>) d.qty),"
		" pg_catalog.array_agg(COALESCE(x.applied, 0) ORDER BY d.id) FILTER (WHERE x.id IS NULL"
			" OR x.applied OPERATOR(pg_catalog.<>) d.qty),"
		" pg_catalog.array_agg(CASE"
			" WHEN x.id IS NOT NULL THEN 'shares_clamped' WHEN EXISTS (SELECT FROM locked l"
				" WHERE l.id OPERATOR(pg_catalog.=) d.id) THEN 'shares_skipped'"
			" ELSE 'round_not_found' END ORDER BY d.id) FILTER (WHERE x.id IS NULL"
			" OR x.applied OPERATOR(pg_catalog.<>) d.qty),"
		" (SELECT pg_catalog.array_agg(l.id ORDER BY l.id)"
			" FROM locked l),"
		" (SELECT pg_catalog.array_agg(l.before ORDER BY l.id)"
			" FROM locked l)"
		" FROM d"
		" LEFT JOIN done x ON x.id OPERATOR(pg_catalog.=) d.id",
		.argtypes = {UUIDARRAYOID, INT8ARRAYOID, TS_ROUNDS_UPDATED},
		.expected_rc = SPI_OK_SELECT,
		.cursor_options = CURSOR_OPT_GENERIC_PLAN,
	},

	/*
	 * What the products of a part really moved, read after every trigger of
	 * the application has fired (an AFTER trigger may write the row again,
	 * a BEFORE trigger may move it by more than asked): the rows asked for
	 * ($1, quantities $2) whose stock did not move by the quantity, in the
	 * same form as products reports them.  $3 and $4 are the rows it locked
	 * and their values before; the rows stay locked until the commit, so
	 * nothing else moved them.
	 */
	[STMT_STOCK_MOVED] = {
		.name = "stock_moved",
		.text =
		"WITH d AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) d (id, qty)),"
		" l AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4)) l (id, before)),"
		" f AS (SELECT d.id, d.qty, l.before, l.id IS NOT NULL"
			" AND t.id IS NOT NULL AS found, CASE WHEN l.id IS NOT NULL"
			" AND t.id IS NOT NULL THEN pg_catalog.int8(COALESCE(t.stock, 0) OPERATOR(pg_catalog.-) COALESCE(l.before, 0))"
			" ELSE 0 END AS applied"
			" FROM d"
			" LEFT JOIN l ON l.id OPERATOR(pg_catalog.=) d.id"
			" LEFT JOIN {app}.products t ON t.id OPERATOR(pg_catalog.=) d.id)"
		" SELECT pg_catalog.array_agg(f.id ORDER BY f.id),"
		" pg_catalog.array_agg(f.applied ORDER BY f.id), pg_catalog.array_agg(CASE"
			" WHEN NOT f.found THEN 'product_not_found'"
			" ELSE 'stock_skipped' END ORDER BY f.id)"
		" FROM f"
		" WHERE NOT f.found OR f.applied OPERATOR(pg_catalog.<>) f.qty",
		.argtypes = {UUIDARRAYOID, INT8ARRAYOID, UUIDARRAYOID, INT4ARRAYOID},
		.expected_rc = SPI_OK_SELECT,
	},

	/*
	 * The same for the lottery rounds' shares: a round with no shares sold
	 * keeps them, one with fewer is clamped at 0.
	 */
	[STMT_SHARES_MOVED] = {
		.name = "shares_moved",
		.text =
		"WITH d AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) d (id, qty)),"
		" l AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4)) l (id, before)),"
		" f AS (SELECT d.id, d.qty, l.before, l.id IS NOT NULL"
			" AND t.id IS NOT NULL AS found, CASE WHEN l.id IS NOT NULL"
			" AND t.id IS NOT NULL THEN pg_catalog.int8(COALESCE(l.before, 0) OPERATOR(pg_catalog.-) COALESCE(t.sold_shares, 0))"
			" ELSE 0 END AS applied"
			" FROM d"
			" LEFT JOIN l ON l.id OPERATOR(pg_catalog.=) d.id"
			" LEFT JOIN {app}.lottery_rounds t ON t.id OPERATOR(pg_catalog.=) d.id)"
		" SELECT pg_catalog.array_agg(f.id ORDER BY f.id),"
		" pg_catalog.array_agg(f.applied ORDER BY f.id), pg_catalog.array_agg(CASE"
			" WHEN NOT f.found THEN 'round_not_found'"
			" WHEN f.applied OPERATOR(pg_catalog.=) CASE"
			" WHEN COALESCE(f.before, 0) OPERATOR(pg_catalog.<=) 0 THEN 0"
			" ELSE LEAST(f.before, f.qty) END THEN 'shares_clamped'"
			" ELSE 'shares_skipped' END ORDER BY f.id)"
		" FROM f"
		" WHERE NOT f.found OR f.applied OPERATOR(pg_catalog.<>) f.qty",
		.argtypes = {UUIDARRAYOID, INT8ARRAYOID, UUIDARRAYOID, INT4ARRAYOID},
		.expected_rc = SPI_OK_SELECT,
	},

	/* Lock product rows in id order before a fallback. */
	[STMT_LOCK_PRODUCTS] = {
		.name = "lock_products",
		.text =
		"SELECT t.id"
		" FROM {app}.products t"
		" WHERE t.id OPERATOR(pg_catalog.=) ANY ($1)"
		" ORDER BY t.id FOR NO KEY UPDATE OF t",
		.argtypes = {UUIDARRAYOID},
		.expected_rc = SPI_OK_SELECT,
	},

	/* Lock round rows in id order before a fallback. */
	[STMT_LOCK_ROUNDS] = {
		.name = "lock_rounds",
		.text =
		"SELECT t.id"
		" FROM {app}.lottery_rounds t"
		" WHERE t.id OPERATOR(pg_catalog.=) ANY ($1)"
		" ORDER BY t.id FOR NO KEY UPDATE OF t",
		.argtypes = {UUIDARRAYOID},
		.expected_rc = SPI_OK_SELECT,
	},

	/*
	 * Correct the audit of released orders whose product did not move by
	 * their quantity: each order's share of what did move is found in the
	 * part's order ($2, oldest first), and what moved beyond the quantities
	 * asked (or the wrong way) goes to the part's last order; each order
	 * whose share is not its quantity gets an anomaly row whose delta
	 * corrects its released row's, so that the deltas sum to what moved.
	 * The audit is only ever appended to, so the role running the job needs
	 * no right to change it; an order's deltas are the sum over its
	 * release's rows.  Runs only when products or stock_moved reported such
	 * rows.
	 */
	[STMT_FIX_STOCK] = {
		.name = "fix_stock",
		.text =
		"WITH p AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5)) p (id, applied, kind)),"
		" k AS (SELECT *"
			" FROM pg_catalog.unnest($2) WITH ORDINALITY k (id, pos)),"
		" o AS (SELECT e.order_id, e.order_number, e.user_id, e.product_id, e.round_id, e.quantity, p.id AS counter, p.applied, p.kind,"
			" pg_catalog.sum(e.quantity) OVER (PARTITION BY p.id ORDER BY k.pos) AS upto,"
			" pg_catalog.row_number() OVER (PARTITION BY p.id ORDER BY k.pos DESC) AS from_last"
			" FROM release_expired_orders.order_events e"
			" JOIN p ON e.product_id OPERATOR(pg_catalog.=) p.id"
			" JOIN k ON k.id OPERATOR(pg_catalog.=) e.order_id"
			" WHERE e.run_id OPERATOR(pg_catalog.=) $1"
			" AND e.outcome OPERATOR(pg_catalog.=) 'released'"
			" AND e.quantity OPERATOR(pg_catalog.>) 0),"
		" c AS (SELECT o.*,"
			" LEAST(o.upto, GREATEST(o.applied, 0)) OPERATOR(pg_catalog.-) LEAST(o.upto OPERATOR(pg_catalog.-) o.quantity, GREATEST(o.applied, 0)) AS share"
			" FROM o),"
		" g AS (SELECT c.*, c.share OPERATOR(pg_catalog.+) CASE"
			" WHEN c.from_last OPERATOR(pg_catalog.=) 1 THEN c.applied OPERATOR(pg_catalog.-) pg_catalog.sum(c.share) OVER (PARTITION BY c.counter)"
			" ELSE 0 END AS moved"
			" FROM c)"
		" INSERT INTO release_expired_orders.order_events (run_id, order_id, order_number, user_id, product_id, round_id, quantity, outcome, prev_status, prev_payment_status, prev_fulfillment_status, stock_delta, message)"
		" SELECT $1, g.order_id, g.order_number, g.user_id, g.product_id, g.round_id, g.quantity, g.kind, 'pending', 'pending', 'pending', pg_catalog.int4(g.moved OPERATOR(pg_catalog.-) g.quantity),"
		" CASE"
		" WHEN g.kind OPERATOR(pg_catalog.=) 'product_not_found' THEN pg_catalog.concat('product ', g.product_id, ' does not exist; stock not returned')"
		" ELSE pg_catalog.concat('a trigger on products skipped or changed the update of product ', g.product_id, '; stock returned: ', g.moved, ' of ', g.quantity) END"
		" FROM g"
		" WHERE g.moved OPERATOR(pg_catalog.<>) g.quantity",
		.argtypes = {INT8OID, UUIDARRAYOID, UUIDARRAYOID, INT8ARRAYOID,
		TEXTARRAYOID},
		.expected_rc = SPI_OK_INSERT,
	},

	/* The same for lottery rounds, after rounds or shares_moved. */
	[STMT_FIX_SHARES] = {
		.name = "fix_shares",
		.text =
		"WITH p AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5)) p (id, applied, kind)),"
		" k AS (SELECT *"
			" FROM pg_catalog.unnest($2) WITH ORDINALITY k (id, pos)),"
		" o AS (SELECT e.order_id, e.order_number, e.user_id, e.product_id, e.round_id, e.quantity, p.id AS counter, p.applied, p.kind,"
			" pg_catalog.sum(e.quantity) OVER (PARTITION BY p.id ORDER BY k.pos) AS upto,"
			" pg_catalog.row_number() OVER (PARTITION BY p.id ORDER BY k.pos DESC) AS from_last"
			" FROM release_expired_orders.order_events e"
			" JOIN p ON e.round_id OPERATOR(pg_catalog.=) p.id"
			" JOIN k ON k.id OPERATOR(pg_catalog.=) e.order_id"
			" WHERE e.run_id OPERATOR(pg_catalog.=) $1"
			" AND e.outcome OPERATOR(pg_catalog.=) 'released'"
			" AND e.quantity OPERATOR(pg_catalog.>) 0),"
		" c AS (SELECT o.*,"
			" LEAST(o.upto, GREATEST(o.applied, 0)) OPERATOR(pg_catalog.-) LEAST(o.upto OPERATOR(pg_catalog.-) o.quantity, GREATEST(o.applied, 0)) AS share"
			" FROM o),"
		" g AS (SELECT c.*, c.share OPERATOR(pg_catalog.+) CASE"
			" WHEN c.from_last OPERATOR(pg_catalog.=) 1 THEN c.applied OPERATOR(pg_catalog.-) pg_catalog.sum(c.share) OVER (PARTITION BY c.counter)"
			" ELSE 0 END AS moved"
			" FROM c)"
		" INSERT INTO release_expired_orders.order_events (run_id, order_id, order_number, user_id, product_id, round_id, quantity, outcome, prev_status, prev_payment_status, prev_fulfillment_status, shares_delta, message)"
		" SELECT $1, g.order_id, g.order_number, g.user_id, g.product_id, g.round_id, g.quantity, g.kind, 'pending', 'pending', 'pending', pg_catalog.int4(g.quantity OPERATOR(pg_catalog.-) g.moved),"
		" CASE"
		" WHEN g.kind OPERATOR(pg_catalog.=) 'round_not_found' THEN pg_catalog.concat('lottery round ', g.round_id, ' does not exist; shares not returned')"
		" WHEN g.kind OPERATOR(pg_catalog.=) 'shares_clamped' THEN pg_catalog.concat('lottery round ', g.round_id, ' had ', g.applied, ' sold shares, fewer than the quantity returned; clamped at 0')"
		" ELSE pg_catalog.concat('a trigger on lottery_rounds skipped or changed the update of round ', g.round_id, '; shares returned: ', g.moved, ' of ', g.quantity) END"
		" FROM g"
		" WHERE g.moved OPERATOR(pg_catalog.<>) g.quantity",
		.argtypes = {INT8OID, UUIDARRAYOID, UUIDARRAYOID, INT8ARRAYOID,
		TEXTARRAYOID},
		.expected_rc = SPI_OK_INSERT,
	},

	/*
	 * One order that failed or that a trigger vetoed: its audit row, which
	 * also starts its retry backoff.
	 */
	[STMT_RECORD] = {
		.name = "record",
		.text =
		"INSERT INTO release_expired_orders.order_events (run_id, order_id, order_number, user_id, product_id, round_id, quantity, outcome, prev_status, prev_payment_status, prev_fulfillment_status, sqlstate, message)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 'pending', 'pending', $9, $10)",
		.argtypes = {INT8OID, UUIDOID, TEXTOID, UUIDOID, UUIDOID, UUIDOID,
		INT4OID, TEXTOID, TEXTOID, TEXTOID},
		.expected_rc = SPI_OK_INSERT,
	},

	/*
	 * The application's notification of an order that failed; its content
	 * is the application's own (README, Audit).
	 */
	[STMT_NOTE_FAILED] = {
		.name = "note_failed",
		.text =
		"INSERT INTO {app}.notifications (id, user_id, type, content, status, sent_at, created_at)"
		" VALUES (pg_catalog.gen_random_uuid(), '00000000-0000-0000-0000-000000000000'::pg_catalog.uuid, 'system_audit', pg_catalog.concat('过期订单清理: order_release_failed - 订单: ', $1), 'sent', $2, $2)",
		.argtypes = {UUIDOID, TS_NOTIFICATIONS},
		.expected_rc = SPI_OK_INSERT,
		.notifications = true,
	},

	[STMT_CONSTRAINTS] = {
		.name = "constraints",
		.text =
		"SET CONSTRAINTS ALL IMMEDIATE",
		.expected_rc = SPI_OK_UTILITY,
	},

	/*
	 * A new run row, after marking as interrupted every run whose backend
	 * is gone: a live run is one whose backend, identified by its pid and
	 * start time, still exists, which no other session can fake.  (A run
	 * begun while the objects were 1.0's has no start time: once they are
	 * 1.2's, it counts as gone, lock or not.)
	 */
	[STMT_RUN_BEGIN] = {
		.name = "run_begin",
		.text =
		"WITH stale AS ( UPDATE release_expired_orders.runs r"
			" SET outcome = 'interrupted', error = 'the backend running it ended before the run finished'"
			" WHERE r.outcome OPERATOR(pg_catalog.=) 'running'"
			" AND NOT COALESCE(release_expired_orders.run_is_alive(r.backend_pid, r.backend_start), false))"
		" INSERT INTO release_expired_orders.runs (started_at, timeout_minutes, batch_limit, chunk_size, cutoff, atomic, backend_start, windows, scheduler)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8::pg_catalog.jsonb, $9)"
		" RETURNING id",
		.argtypes = {TIMESTAMPTZOID, INT4OID, INT4OID, INT4OID, TIMESTAMPTZOID,
		BOOLOID, TIMESTAMPTZOID, TEXTOID, TEXTOID},
		.expected_rc = SPI_OK_INSERT_RETURNING,
	},

	[STMT_RUN_PROGRESS] = {
		.name = "run_progress",
		.text =
		"UPDATE release_expired_orders.runs"
		" SET found = found OPERATOR(pg_catalog.+) $2, released = released OPERATOR(pg_catalog.+) $3, failed = failed OPERATOR(pg_catalog.+) $4, vetoed = vetoed OPERATOR(pg_catalog.+) $5"
		" WHERE id OPERATOR(pg_catalog.=) $1",
		.argtypes = {INT8OID, INT4OID, INT4OID, INT4OID, INT4OID},
		.expected_rc = SPI_OK_UPDATE,
	},

	/* Close a run. */
	[STMT_RUN_END] = {
		.name = "run_end",
		.text =
		"UPDATE release_expired_orders.runs"
		" SET ended_at = $4, duration_ms = $5, outcome = $2, error = $3, warnings = $6"
		" WHERE id OPERATOR(pg_catalog.=) $1",
		.argtypes = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID,
		TEXTOID},
		.expected_rc = SPI_OK_UPDATE,
	},

	/*
	 * The batch notification of a run that released anything.  A statement
	 * of its own, run only then, so that a run that finds nothing does not
	 * open the notifications table.
	 */
	[STMT_RUN_NOTE] = {
		.name = "run_note",
		.text =
		"INSERT INTO {app}.notifications (id, user_id, type, content, status, sent_at, created_at)"
		" VALUES (pg_catalog.gen_random_uuid(), '00000000-0000-0000-0000-000000000000'::pg_catalog.uuid, 'system_audit', '过期订单清理: batch_processing_completed - 订单: N/A', 'sent', $1, $1)",
		.argtypes = {TS_NOTIFICATIONS},
		.expected_rc = SPI_OK_INSERT,
		.notifications = true,
	},

	/*
	 * Whether the oldest finished run or the oldest audit row is older than
	 * $1: two index probes, so that a run with nothing to purge does not
	 * pay for compiling and planning purge_history() in every fresh
	 * session.
	 */
	[STMT_PURGE_DUE] = {
		.name = "purge_due",
		.text =
		"SELECT COALESCE((SELECT r.started_at"
				" FROM release_expired_orders.runs r"
				" WHERE r.outcome OPERATOR(pg_catalog.<>) 'running'"
				" ORDER BY r.started_at LIMIT 1) OPERATOR(pg_catalog.<) $1, false)"
		" OR COALESCE((SELECT e.created_at"
				" FROM release_expired_orders.order_events e"
				" ORDER BY e.id LIMIT 1) OPERATOR(pg_catalog.<) $1, false)",
		.argtypes = {TIMESTAMPTZOID},
		.expected_rc = SPI_OK_SELECT,
	},

	[STMT_PURGE] = {
		.name = "purge",
		.text =
		"SELECT release_expired_orders.purge_history()",
		.expected_rc = SPI_OK_SELECT,
	},

	/*
	 * The statements above, as they run where the extension's objects are
	 * still 1.0's (until ALTER EXTENSION UPDATE), in 1.0's form: its job
	 * role may only insert into order_events, and its restore_order()
	 * reads what a release moved from the released row alone.
	 */

	/* candidates without the retry backoff, which 1.0 did not have */
	[STMT_CANDIDATES_1_0] = {
		.name = "candidates_1_0",
		.text =
		"SELECT o.id, o.order_number::pg_catalog.text, o.user_id, o.product_id, o.round_id, o.quantity, o.created_at"
		" FROM {app}.orders o"
		" WHERE o.status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.payment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.fulfillment_status OPERATOR(pg_catalog.=) 'pending'"
		" AND o.created_at OPERATOR(pg_catalog.<) $1"
		" AND o.created_at OPERATOR(pg_catalog.>=) $2"
		" AND (o.created_at, o.id) OPERATOR(pg_catalog.>) ($2, $3){due_naive}"
		" ORDER BY o.created_at, o.id LIMIT $4 FOR UPDATE OF o SKIP LOCKED",
		.argtypes = {TS_ORDERS_CREATED, TS_ORDERS_CREATED, UUIDOID, INT4OID,
		TIMESTAMPTZOID, TS_ORDERS_CREATED, TS_ORDERS_CREATED},
		.expected_rc = SPI_OK_SELECT,
		.cursor_options = CURSOR_OPT_CUSTOM_PLAN,
	},

	/*
	 * The audit, written after the counters have moved: each released row
	 * carries what its order really moved, and an order whose counter did
	 * not move by its quantity gets a row of 1.0's outcomes (deltas 0)
	 * saying why.  $11-$13 and $14-$16 are the products and rounds that
	 * did not move by what was asked, as products/stock_moved and
	 * rounds/shares_moved report them (NULL: none); what moved is shared
	 * among a counter's orders in part order, as fix_stock does.  A veto
	 * counts as a failure.
	 */
	[STMT_AUDIT_1_0] = {
		.name = "audit_1_0",
		.text =
		"WITH c AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)) WITH ORDINALITY c (id, num, usr, product, round, qty, pos)),"
		" ps AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($11), pg_catalog.unnest($12), pg_catalog.unnest($13)) p (id, applied, kind)),"
		" rs AS (SELECT *"
			" FROM ROWS FROM (pg_catalog.unnest($14), pg_catalog.unnest($15), pg_catalog.unnest($16)) r (id, applied, kind)),"
		" so AS (SELECT c.id, c.qty, p.id AS counter, p.applied, p.kind,"
			" pg_catalog.sum(c.qty) OVER (PARTITION BY p.id ORDER BY c.pos) AS upto,"
			" pg_catalog.row_number() OVER (PARTITION BY p.id ORDER BY c.pos DESC) AS from_last"
			" FROM c JOIN ps p ON p.id OPERATOR(pg_catalog.=) c.product"
			" WHERE c.qty OPERATOR(pg_catalog.>) 0),"
		" ro AS (SELECT c.id, c.qty, r.id AS counter, r.applied, r.kind,"
			" pg_catalog.sum(c.qty) OVER (PARTITION BY r.id ORDER BY c.pos) AS upto,"
			" pg_catalog.row_number() OVER (PARTITION BY r.id ORDER BY c.pos DESC) AS from_last"
			" FROM c JOIN rs r ON r.id OPERATOR(pg_catalog.=) c.round"
			" WHERE c.qty OPERATOR(pg_catalog.>) 0),"
		" sc AS (SELECT so.*, LEAST(so.upto, GREATEST(so.applied, 0)) OPERATOR(pg_catalog.-) LEAST(so.upto OPERATOR(pg_catalog.-) so.qty, GREATEST(so.applied, 0)) AS share"
			" FROM so),"
		" rc AS (SELECT ro.*, LEAST(ro.upto, GREATEST(ro.applied, 0)) OPERATOR(pg_catalog.-) LEAST(ro.upto OPERATOR(pg_catalog.-) ro.qty, GREATEST(ro.applied, 0)) AS share"
			" FROM ro),"
		" sm AS (SELECT sc.id, sc.qty, sc.counter, sc.applied, sc.kind, sc.share OPERATOR(pg_catalog.+) CASE"
			" WHEN sc.from_last OPERATOR(pg_catalog.=) 1 THEN sc.applied OPERATOR(pg_catalog.-) pg_catalog.sum(sc.share) OVER (PARTITION BY sc.counter)"
			" ELSE 0 END AS moved"
			" FROM sc),"
		" rm AS (SELECT rc.id, rc.qty, rc.counter, rc.applied, rc.kind, rc.share OPERATOR(pg_catalog.+) CASE"
			" WHEN rc.from_last OPERATOR(pg_catalog.=) 1 THEN rc.applied OPERATOR(pg_catalog.-) pg_catalog.sum(rc.share) OVER (PARTITION BY rc.counter)"
			" ELSE 0 END AS moved"
			" FROM rc),"
		" events AS ("
			" INSERT INTO release_expired_orders.order_events (run_id, order_id, order_number, user_id, product_id, round_id, quantity, outcome, prev_status, prev_payment_status, prev_fulfillment_status, stock_delta, shares_delta, message)"
			" SELECT $1, c.id, c.num, c.usr, c.product, c.round, c.qty, 'released', 'pending', 'pending', 'pending',"
			" pg_catalog.int4(CASE WHEN sm.id IS NOT NULL THEN sm.moved"
				" WHEN c.product IS NOT NULL AND c.qty OPERATOR(pg_catalog.>) 0 THEN c.qty"
				" ELSE 0 END),"
			" pg_catalog.int4(CASE WHEN rm.id IS NOT NULL THEN OPERATOR(pg_catalog.-) rm.moved"
				" WHEN c.round IS NOT NULL AND c.qty OPERATOR(pg_catalog.>) 0 THEN OPERATOR(pg_catalog.-) c.qty"
				" ELSE 0 END),"
			" NULL::pg_catalog.text"
			" FROM c LEFT JOIN sm ON sm.id OPERATOR(pg_catalog.=) c.id"
			" LEFT JOIN rm ON rm.id OPERATOR(pg_catalog.=) c.id"
			" UNION ALL"
			" SELECT $1, c.id, c.num, c.usr, c.product, c.round, c.qty,"
			" 'product_not_found',"
			" 'pending', 'pending', 'pending', 0, 0,"
			" CASE WHEN sm.kind OPERATOR(pg_catalog.=) 'product_not_found' THEN pg_catalog.concat('product ', c.product, ' does not exist; stock not returned')"
			" ELSE pg_catalog.concat('a trigger on products skipped or changed the update of product ', c.product, '; stock returned: ', sm.moved, ' of ', c.qty) END"
			" FROM c JOIN sm ON sm.id OPERATOR(pg_catalog.=) c.id"
			" WHERE sm.moved OPERATOR(pg_catalog.<>) sm.qty"
			" UNION ALL"
			" SELECT $1, c.id, c.num, c.usr, c.product, c.round, c.qty,"
			" CASE WHEN rm.kind OPERATOR(pg_catalog.=) 'shares_clamped' THEN 'shares_clamped' ELSE 'round_not_found' END,"
			" 'pending', 'pending', 'pending', 0, 0,"
			" CASE WHEN rm.kind OPERATOR(pg_catalog.=) 'round_not_found' THEN pg_catalog.concat('lottery round ', c.round, ' does not exist; shares not returned')"
			" WHEN rm.kind OPERATOR(pg_catalog.=) 'shares_clamped' THEN pg_catalog.concat('lottery round ', c.round, ' had ', rm.applied, ' sold shares, fewer than the quantity returned; clamped at 0')"
			" ELSE pg_catalog.concat('a trigger on lottery_rounds skipped or changed the update of round ', c.round, '; shares returned: ', rm.moved, ' of ', c.qty) END"
			" FROM c JOIN rm ON rm.id OPERATOR(pg_catalog.=) c.id"
			" WHERE rm.moved OPERATOR(pg_catalog.<>) rm.qty)"
		" UPDATE release_expired_orders.runs"
		" SET found = found OPERATOR(pg_catalog.+) $8, released = released OPERATOR(pg_catalog.+) pg_catalog.cardinality($2), failed = failed OPERATOR(pg_catalog.+) $9"
		" WHERE id OPERATOR(pg_catalog.=) $1 AND $10",
		.argtypes = {INT8OID, UUIDARRAYOID, TEXTARRAYOID, UUIDARRAYOID,
			UUIDARRAYOID, UUIDARRAYOID, INT4ARRAYOID, INT4OID, INT4OID, BOOLOID,
			UUIDARRAYOID, INT8ARRAYOID, TEXTARRAYOID,
		UUIDARRAYOID, INT8ARRAYOID, TEXTARRAYOID},
		.expected_rc = SPI_OK_UPDATE,
		.cursor_options = CURSOR_OPT_GENERIC_PLAN,
	},

	/*
	 * 1.0's runs have no vetoed, warnings, windows, scheduler nor
	 * backend_start.  A live run is one whose backend holds its session
	 * advisory lock ($7: this database), as 1.0 marked them.
	 */
	[STMT_RUN_BEGIN_1_0] = {
		.name = "run_begin_1_0",
		.text =
		"WITH stale AS ( UPDATE release_expired_orders.runs r"
			" SET outcome = 'interrupted', error = 'the backend running it ended before the run finished'"
			" WHERE r.outcome OPERATOR(pg_catalog.=) 'running'"
			" AND NOT EXISTS (SELECT FROM pg_catalog.pg_locks l"
				" WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory'"
				" AND l.database OPERATOR(pg_catalog.=) $7"
				" AND l.classid OPERATOR(pg_catalog.=) '1919250176'::pg_catalog.oid"
				" AND l.objid OPERATOR(pg_catalog.=) pg_catalog.oid(r.id OPERATOR(pg_catalog.%) 4294967296)"
				" AND l.objsubid OPERATOR(pg_catalog.=) 2"
				" AND l.pid OPERATOR(pg_catalog.=) r.backend_pid AND l.granted))"
		" INSERT INTO release_expired_orders.runs (started_at, timeout_minutes, batch_limit, chunk_size, cutoff, atomic)"
		" VALUES ($1, $2, $3, $4, $5, $6)"
		" RETURNING id",
		.argtypes = {TIMESTAMPTZOID, INT4OID, INT4OID, INT4OID, TIMESTAMPTZOID,
		BOOLOID, OIDOID},
		.expected_rc = SPI_OK_INSERT_RETURNING,
	},

	[STMT_RUN_PROGRESS_1_0] = {
		.name = "run_progress_1_0",
		.text =
		"UPDATE release_expired_orders.runs"
		" SET found = found OPERATOR(pg_catalog.+) $2, released = released OPERATOR(pg_catalog.+) $3, failed = failed OPERATOR(pg_catalog.+) $4 OPERATOR(pg_catalog.+) $5"
		" WHERE id OPERATOR(pg_catalog.=) $1",
		.argtypes = {INT8OID, INT4OID, INT4OID, INT4OID, INT4OID},
		.expected_rc = SPI_OK_UPDATE,
	},

	/* run_end's $6 (the warnings) has no column in 1.0: not a parameter. */
	[STMT_RUN_END_1_0] = {
		.name = "run_end_1_0",
		.text =
		"UPDATE release_expired_orders.runs"
		" SET ended_at = $4, duration_ms = $5, outcome = $2, error = $3"
		" WHERE id OPERATOR(pg_catalog.=) $1",
		.argtypes = {INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, FLOAT8OID},
		.expected_rc = SPI_OK_UPDATE,
	},
};

/*
 * The statement that runs for stmt where the extension's objects are still
 * 1.0's: its 1.0 form, or itself.
 */
static ReoStatement
Form1_0(ReoStatement stmt)
{
	switch (stmt)
	{
		case STMT_CANDIDATES:
			return STMT_CANDIDATES_1_0;
		case STMT_AUDIT:
			return STMT_AUDIT_1_0;
		case STMT_RUN_BEGIN:
			return STMT_RUN_BEGIN_1_0;
		case STMT_RUN_PROGRESS:
			return STMT_RUN_PROGRESS_1_0;
		case STMT_RUN_END:
			return STMT_RUN_END_1_0;
		default:
			return stmt;
	}
}

/*
 * The fragments some placeholders expand to, where orders has a
 * payment_method column (windows per payment method apply).
 */

/* {kind_methods}: the methods of a type that have windows of their own. */
static const char kind_methods[] = "a.methods";

/* {method_kinds}: one kind per window of a type and payment method. */
static const char method_kinds[] =
	" UNION ALL SELECT t.type, m.payment_method, NULL,"
	" m.timeout_minutes, t.oldest, t.oldest_id"
	" FROM types t JOIN release_expired_orders.payment_windows m"
	" ON m.order_type OPERATOR(pg_catalog.=) t.type::pg_catalog.text"
	" WHERE m.payment_method IS NOT NULL";

/*
 * {in_kind}: an order o of kind k's type is in k when k is its payment
 * method's, or k is the whole type and the method has no window of its
 * own.
 */
static const char in_kind[] =
	" AND (k.method IS NULL"
	" OR o.payment_method::pg_catalog.text OPERATOR(pg_catalog.=) k.method)"
	" AND (k.excluded IS NULL OR o.payment_method IS NULL"
	" OR o.payment_method::pg_catalog.text OPERATOR(pg_catalog.<>) ALL (k.excluded))";

/* {method_window}: the window of the order's type and payment method. */
static const char method_window[] =
	" LEFT JOIN LATERAL (SELECT true AS found, w.timeout_minutes AS minutes"
	" FROM release_expired_orders.payment_windows w"
	" WHERE w.order_type OPERATOR(pg_catalog.=) o.type::pg_catalog.text"
	" AND w.payment_method OPERATOR(pg_catalog.=) o.payment_method::pg_catalog.text) m ON true";

/*
 * {due_naive}: order o's created_at without time zone is not among the
 * wall-clock times [$6, $7) before the cutoff that a DST change keeps from
 * being due yet.
 */
static const char due_naive[] =
	" AND NOT (o.created_at OPERATOR(pg_catalog.>=) $6"
	" AND o.created_at OPERATOR(pg_catalog.<) $7)";

/* {method_window} where there are no payment methods: never found. */
static const char no_method_window[] =
	" LEFT JOIN LATERAL (SELECT NULL::pg_catalog.bool AS found,"
	" NULL::pg_catalog.int4 AS minutes) m ON true";

typedef struct Placeholder
{
	const char *name;
	const char *value;
} Placeholder;

#define PLACEHOLDERS 10

/*
 * Each placeholder's value for the application's tables app (see the top
 * of the file for what each means).
 */
static void
Placeholders(const AppSchema *app, Placeholder *p)
{
	bool		tz = app->orders_created_tz;
	bool		methods = app->orders_payment_method;
	const char *ignored;
	int			n = 0;

	if (!app->orders_type)
		ignored = "true";
	else if (!methods)
		ignored = "w.payment_method IS NOT NULL";
	else
		ignored = "false";

	p[n++] = (Placeholder) {"app", quote_identifier(app->schema)};
	p[n++] = (Placeholder) {"at_zone7", tz ? "" : " AT TIME ZONE $7"};
	p[n++] = (Placeholder) {"at_zone5", tz ? "" : " AT TIME ZONE $5"};
	p[n++] = (Placeholder) {"at_utc", tz ? "" : " AT TIME ZONE 'UTC'"};
	p[n++] = (Placeholder) {"due_naive", tz ? "" : due_naive};
	p[n++] = (Placeholder) {"kind_methods",
		methods ? kind_methods : "NULL::pg_catalog.text[]"};
	p[n++] = (Placeholder) {"method_kinds", methods ? method_kinds : ""};
	p[n++] = (Placeholder) {"in_kind", methods ? in_kind : ""};
	p[n++] = (Placeholder) {"method_window",
		methods ? method_window : no_method_window};
	p[n++] = (Placeholder) {"ignored", ignored};
	Assert(n == PLACEHOLDERS);
}

/* Whether c may follow the first letter of a placeholder's name. */
static inline bool
IsNameChar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/*
 * text with each {name} replaced by its value; an unknown name is an error
 * of the texts above.
 */
static char *
Expand(const char *text, const Placeholder *p)
{
	StringInfoData out;
	const char *s = text;

	initStringInfo(&out);
	while (*s != '\0')
	{
		const char *end = s + 1;
		size_t		len;
		int			i;

		if (s[0] != '{' || !(s[1] >= 'a' && s[1] <= 'z'))
		{
			appendStringInfoChar(&out, *s++);
			continue;
		}
		while (IsNameChar(*end))
			end++;
		if (*end != '}')
		{
			appendStringInfoChar(&out, *s++);
			continue;
		}
		len = end - (s + 1);
		for (i = 0; i < PLACEHOLDERS; i++)
			if (strlen(p[i].name) == len && strncmp(p[i].name, s + 1, len) == 0)
				break;
		if (i == PLACEHOLDERS)
			elog(ERROR, "unknown placeholder {%.*s} in a statement of release_expired_orders",
				 (int) len, s + 1);
		appendStringInfoString(&out, p[i].value);
		s = end + 1;
	}
	return out.data;
}

/* A parameter's type: the column's for a ColumnType marker. */
static Oid
ParameterType(Oid type, const AppSchema *app)
{
	bool		tz;

	switch (type)
	{
		case TS_ORDERS_CREATED:
			tz = app->orders_created_tz;
			break;
		case TS_ORDERS_UPDATED:
			tz = app->orders_updated_tz;
			break;
		case TS_PRODUCTS_UPDATED:
			tz = app->products_updated_tz;
			break;
		case TS_ROUNDS_UPDATED:
			tz = app->rounds_updated_tz;
			break;
		case TS_NOTIFICATIONS:
			tz = app->notifications_tz;
			break;
		default:
			return type;
	}
	return tz ? TIMESTAMPTZOID : TIMESTAMPOID;
}

/*
 * Whether the job ever runs the statement against the application's tables
 * app: not those that write notifications when it writes none (release is
 * then release_quiet).
 */
bool
ReoStatementRuns(ReoStatement stmt, const AppSchema *app)
{
	if ((int) stmt < 0 || (int) stmt >= STMT_COUNT)
		elog(ERROR, "invalid statement %d", (int) stmt);
	if (stmt >= STMT_CANDIDATES_1_0)
		return app->objects_1_0;
	/* 1.0: the audit is written whole after the counters; no purge probe */
	if (app->objects_1_0 &&
		(Form1_0(stmt) != stmt || stmt == STMT_FIX_STOCK ||
		 stmt == STMT_FIX_SHARES || stmt == STMT_PURGE_DUE))
		return false;
	if (stmt == STMT_RELEASE)
		return app->notifications;
	return !statements[stmt].notifications || app->notifications;
}

/*
 * A statement as the job runs it against the application's tables app: its
 * text with the placeholders expanded, in the server's encoding (the texts
 * are UTF-8; the notifications' are not ASCII), and what it is run with.
 */
void
ReoStatementSQL(ReoStatement stmt, const AppSchema *app, ReoSQL *sql)
{
	const StatementDef *def;
	Placeholder p[PLACEHOLDERS];
	char	   *text;

	if ((int) stmt < 0 || (int) stmt >= STMT_COUNT)
		elog(ERROR, "invalid statement %d", (int) stmt);
	def = &statements[stmt];
	Assert(def->name != NULL && def->text != NULL);
	if (def->notifications && !app->notifications)
		elog(ERROR, "release_expired_orders writes no notifications here");
	if (stmt == STMT_RELEASE && !app->notifications)
		def = &statements[STMT_RELEASE_QUIET];
	if (app->objects_1_0)
		def = &statements[Form1_0(stmt)];

	sql->name = statements[stmt].name;
	sql->nargs = 0;
	while (sql->nargs < REO_MAX_ARGS && def->argtypes[sql->nargs] != InvalidOid)
	{
		sql->argtypes[sql->nargs] = ParameterType(def->argtypes[sql->nargs], app);
		sql->nargs++;
	}
	sql->expected_rc = def->expected_rc;
	sql->cursor_options = def->cursor_options;
	Placeholders(app, p);
	text = Expand(def->text, p);
	sql->text = pg_any_to_server(text, strlen(text), PG_UTF8);
}
