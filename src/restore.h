/*-------------------------------------------------------------------------
 *
 * restore.h
 *	  Backend liveness, and a restore into this database in progress.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_RESTORE_H
#define REO_RESTORE_H

#include "postgres.h"

#include "datatype/timestamp.h"

/*
 * The value the install script gives runs_id_seq in a restore, until the
 * dump sets it: the restore has not loaded the history yet.
 */
#define REO_RESTORE_MARK INT64CONST(9223372036854775000)

extern Oid	ReoExtensionOwner(void);
extern bool ReoBackendIsAlive(int pid, TimestampTz started);
extern int	ReoRestoringBackend(void);
extern const char *ReoRestoreSkipsRun(void);

#endif							/* REO_RESTORE_H */
