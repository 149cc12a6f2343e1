/*-------------------------------------------------------------------------
 *
 * sql_build.h
 *	  What the files that build the SQL texts share: the statement being
 *	  built, and the qualified operators every text uses.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_SQL_BUILD_H
#define REO_SQL_BUILD_H

#include "postgres.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"

#include "app_schema.h"
#include "sql.h"
#include "util.h"

#define MAX_ARGS REO_MAX_ARGS

/* Contents of the application-compatible notifications (README, Audit). */
#define NOTE_PREFIX "过期订单清理: "
#define NIL_UUID "'00000000-0000-0000-0000-000000000000'::pg_catalog.uuid"

/* Operators, qualified so that no look-alike in another schema is chosen. */
#define EQ " OPERATOR(pg_catalog.=) "
#define NE " OPERATOR(pg_catalog.<>) "
#define LT " OPERATOR(pg_catalog.<) "
#define LE " OPERATOR(pg_catalog.<=) "

/* The three statuses of an order that may expire (README, How it decides "expired"), for alias o. */
#define PENDING(o) " " o ".status" EQ "'pending' AND " o ".payment_status" EQ "'pending'" \
	" AND " o ".fulfillment_status" EQ "'pending'"
#define GT " OPERATOR(pg_catalog.>) "
#define GE " OPERATOR(pg_catalog.>=) "
#define PLUS " OPERATOR(pg_catalog.+) "
#define MINUS " OPERATOR(pg_catalog.-) "

#define EVENTS REO_SCHEMA ".order_events"
/*
 * An audit row that makes its order wait out the retry backoff: a veto, or
 * a failure that says something about the order (not a lock timeout, a
 * deadlock or a serialization failure).  The install script's partial
 * index order_events_retry_idx has the same predicate.
 */
#define BACKOFF_ROW "(f.outcome" EQ "'vetoed' OR (f.outcome" EQ "'failed'" \
	" AND f.sqlstate" NE "ALL ('{55P03,40P01,40001}'::pg_catalog.bpchar[])))"
#define EVENT_COLUMNS "run_id, order_id, order_number, user_id, product_id, round_id, quantity, outcome"

typedef struct BuiltStatement
{
	StringInfoData sql;
	int			nargs;
	Oid			argtypes[MAX_ARGS];
	int			expected_rc;
	int			cursor_options; /* CURSOR_OPT_CUSTOM_PLAN or _GENERIC_PLAN, or 0 */
} BuiltStatement;

static inline Oid
TsType(bool tz)
{
	return tz ? TIMESTAMPTZOID : TIMESTAMPOID;
}

static inline void
Args(BuiltStatement *b, int nargs, const Oid *types)
{
	Assert(nargs <= MAX_ARGS);
	b->nargs = nargs;
	memcpy(b->argtypes, types, nargs * sizeof(Oid));
}

/* sql_release.c: the texts of a part's release */
extern void BuildRelease(BuiltStatement *b, const AppSchema *app, const char *nsp,
						 bool notify);
extern void BuildAudit(BuiltStatement *b);
extern void BuildCounters(BuiltStatement *b, const char *nsp, bool tz, bool rounds);
extern void BuildCountersMoved(BuiltStatement *b, const char *nsp, bool rounds);
extern void BuildFixAudit(BuiltStatement *b, bool rounds);
extern void BuildRecord(BuiltStatement *b);
extern void BuildNoteFailed(BuiltStatement *b, const AppSchema *app, const char *nsp);

/* sql_windows.c: the candidates when payment windows are in force */
extern void BuildWindowedCandidates(BuiltStatement *b, const AppSchema *app,
									const char *nsp);
extern void BuildNextDeadlines(BuiltStatement *b, const AppSchema *app,
							   const char *nsp);
extern void BuildStillDue(BuiltStatement *b, const AppSchema *app, const char *nsp);
extern void BuildWindowsInForce(BuiltStatement *b, const AppSchema *app);

#endif							/* REO_SQL_BUILD_H */
