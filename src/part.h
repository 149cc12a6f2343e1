/*-------------------------------------------------------------------------
 *
 * part.h
 *	  A chunk's candidates, and the release of a part of them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef REO_PART_H
#define REO_PART_H

#include "run.h"

/* Columns of a candidate, in the order STMT_RECORD wants them. */
#define C_ID		0
#define C_NUMBER	1
#define C_USER		2
#define C_PRODUCT	3
#define C_ROUND		4
#define C_QUANTITY	5
#define C_NCOLS		6

typedef enum CandidateState
{
	CAND_PENDING,
	CAND_RELEASED,
	CAND_VETOED,
	CAND_FAILED
} CandidateState;

typedef struct Candidate
{
	Datum		values[C_NCOLS];
	char		nulls[C_NCOLS];
	CandidateState state;
	ErrorData  *error;			/* for CAND_FAILED */
	bool		veto_written;	/* a trigger wrote the row back as pending */
} Candidate;

typedef struct Chunk
{
	ReoRun	   *run;
	Candidate  *c;
	int			n;
	Datum		notes;			/* text appended to orders.notes */
	/* the part being released: indexes into c */
	int		   *part;
	int			part_n;
	int64		part_released;
	bool		vetoes_written; /* the part rolled back for veto_written rows */
	bool		counted;		/* the run row counts the chunk already */
} Chunk;

extern bool ReoSameUuid(Datum a, Datum b);
extern ErrorData *ReoTryPart(Chunk *chunk, int *part, int part_n);

#endif							/* REO_PART_H */
