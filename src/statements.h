/*-------------------------------------------------------------------------
 *
 * statements.h
 *	  The SQL statements the C code runs, and their texts as they fit the
 *	  application's tables.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_STATEMENTS_H
#define REO_STATEMENTS_H

#include "postgres.h"

#include "app_schema.h"

typedef enum ReoStatement
{
	STMT_CANDIDATES,			/* lock the next expired orders */
	STMT_PREVIEW,				/* the same selection, without locks */
	STMT_PREVIEW_W,				/* the same with payment windows */
	STMT_NEXT_W,				/* the next deadlines, with payment windows */
	STMT_ANY_DUE,				/* whether any order may be due */
	STMT_ANY_WINDOW,			/* whether there are payment windows */
	STMT_WINDOWS,				/* the payment windows in force */
	STMT_LOCK_ORDERS,			/* lock the windowed candidates picked */
	STMT_STILL_DUE,				/* those still due under their lock */
	STMT_RELEASE,				/* orders and notifications of a part */
	STMT_RELEASE_QUIET,			/* the same, without notifications */
	STMT_AUDIT,					/* the part's released rows, its run counts */
	STMT_STILL_RELEASED,		/* the part's orders a trigger put back */
	STMT_PRODUCTS,				/* stock, the chunk's last writes */
	STMT_ROUNDS,				/* shares, likewise */
	STMT_STOCK_MOVED,			/* what really moved, after all triggers */
	STMT_SHARES_MOVED,
	STMT_LOCK_PRODUCTS,			/* before a fallback: lock in id order */
	STMT_LOCK_ROUNDS,
	STMT_FIX_STOCK,				/* audit what the stock update did not do */
	STMT_FIX_SHARES,
	STMT_RECORD,				/* one failed or vetoed order */
	STMT_NOTE_FAILED,			/* its notification */
	STMT_CONSTRAINTS,			/* SET CONSTRAINTS ALL IMMEDIATE */
	STMT_RUN_BEGIN,
	STMT_RUN_PROGRESS,
	STMT_RUN_END,
	STMT_RUN_NOTE,			/* the batch notification of a run */
	STMT_PURGE_DUE,			/* whether any history is old enough */
	STMT_PURGE,
	/* 1.0's objects: the same, for its tables (run for the ones above) */
	STMT_CANDIDATES_1_0,
	STMT_AUDIT_1_0,
	STMT_RUN_BEGIN_1_0,
	STMT_RUN_PROGRESS_1_0,
	STMT_RUN_END_1_0,
	STMT_COUNT
} ReoStatement;

/* At most this many parameters in a statement. */
#define REO_MAX_ARGS 16

/* A statement as it runs against one shape of the application's tables. */
typedef struct ReoSQL
{
	const char *name;			/* as statements() shows it */
	char	   *text;			/* in the server's encoding */
	int			nargs;
	Oid			argtypes[REO_MAX_ARGS]; /* of $1 ... */
	int			expected_rc;	/* what SPI reports when it ran */
	int			cursor_options; /* CURSOR_OPT_CUSTOM_PLAN or _GENERIC_PLAN,
								 * or 0 */
} ReoSQL;

extern bool ReoStatementRuns(ReoStatement stmt, const AppSchema *app);
extern void ReoStatementSQL(ReoStatement stmt, const AppSchema *app, ReoSQL *sql);

#endif							/* REO_STATEMENTS_H */
