/*-------------------------------------------------------------------------
 *
 * windows.c
 *	  The payment windows in force, read once per run or per look: whether
 *	  any apply, the rows that cannot, the shortest, and their description
 *	  for the run row.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"

#include "app_schema.h"
#include "sql.h"
#include "windows.h"

/*
 * Read the windows in force; SPI is connected and the schema in use.  With
 * read_only, in the snapshot of the statement that called the extension.
 * ReoWindows in force need orders.type and payment_method compared exactly.
 */
void
ReoReadWindows(const AppSchema *app, ReoWindows *w, bool read_only)
{
	uint64		(*run) (ReoStatement, Datum *, const char *) =
		read_only ? StmtQuery : StmtExecute;
	SPITupleTable *tt;
	bool		isnull;
	Datum		d;

	memset(w, 0, sizeof(ReoWindows));
	if (app->objects_1_0)
		return;					/* 1.0 has no payment windows */

	/*
	 * Most installations have no windows: a probe of the table is cheaper to
	 * plan, in a fresh session, than the aggregate that describes them.
	 */
	if (run(STMT_ANY_WINDOW, NULL, NULL) != 1)
		elog(ERROR, "probing the payment windows returned no row");
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
	{
		SPI_freetuptable(SPI_tuptable);
		return;
	}
	SPI_freetuptable(SPI_tuptable);
	if (run(STMT_WINDOWS, NULL, NULL) != 1)
		elog(ERROR, "reading the payment windows returned no row");
	tt = SPI_tuptable;
	w->in_force = DatumGetBool(SPI_getbinval(tt->vals[0], tt->tupdesc, 1, &isnull));
	d = SPI_getbinval(tt->vals[0], tt->tupdesc, 2, &isnull);
	if (!isnull)
		w->ignored = TextDatumGetCString(d);
	d = SPI_getbinval(tt->vals[0], tt->tupdesc, 3, &isnull);
	if (!isnull)
		w->shortest = DatumGetInt32(d);
	d = SPI_getbinval(tt->vals[0], tt->tupdesc, 4, &isnull);
	if (!isnull)
		w->json = TextDatumGetCString(d);
	SPI_freetuptable(tt);
	if (w->in_force)
		ReoCheckWindowCollations(app);
}
