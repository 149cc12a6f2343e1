/*-------------------------------------------------------------------------
 *
 * windows.h
 *	  The payment windows in force.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_WINDOWS_H
#define REO_WINDOWS_H

#include "postgres.h"

#include "app_schema.h"

/* The payment windows in force, read once per run or per look. */
typedef struct ReoWindows
{
	bool		in_force;
	char	   *ignored;		/* rows that cannot apply, or NULL */
	int			shortest;		/* shortest window that applies, or 0 */
	char	   *json;			/* those that apply, or NULL */
} ReoWindows;

extern void ReoReadWindows(const AppSchema *app, ReoWindows *w, bool read_only);

#endif							/* REO_WINDOWS_H */
