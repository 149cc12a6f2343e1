--
-- statements() returns each statement the job runs in this database, as it
-- runs it, with the types of its parameters; each one can be prepared and
-- EXPLAINed as written (a utility statement, SET CONSTRAINTS, only shown).
--
\set SHOW_CONTEXT never
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
RESET client_min_messages;
\set app_ts timestamptz
\set ECHO none
\i test/fixtures/app_schema.sql
\set ECHO all

-- Prepare a statement and EXPLAIN it with NULL for each parameter; the
-- lines of the plan.
CREATE FUNCTION pg_temp.explain(statement text, argument_types regtype[]) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	line text;
	n integer := coalesce(cardinality(argument_types), 0);
BEGIN
	EXECUTE format('PREPARE reo_statement%s AS %s',
				   CASE WHEN n > 0 THEN '(' || array_to_string(argument_types, ', ') || ')' ELSE '' END,
				   statement);
	FOR line IN EXECUTE format('EXPLAIN (COSTS OFF) EXECUTE reo_statement%s',
							   CASE WHEN n > 0 THEN '(' || array_to_string(array_fill('NULL'::text, ARRAY[n]), ', ') || ')' ELSE '' END)
	LOOP
		RETURN NEXT line;
	END LOOP;
	DEALLOCATE reo_statement;
END $$;

-- Every statement, in the order of src/statements.h; each EXPLAINed (the number of
-- plan lines is positive), the utility statement excepted.
SELECT s.name, cardinality(s.argument_types) AS parameters,
	   CASE WHEN s.statement ~ '^SET ' THEN NULL
			ELSE (SELECT count(*) > 0 FROM pg_temp.explain(s.statement, s.argument_types)) END AS explained
FROM release_expired_orders.statements() WITH ORDINALITY s (name, statement, argument_types, n)
ORDER BY s.n;

-- A statement names every relation with its schema: the job's candidate
-- statement, as an operator would read it.
SELECT statement ~ 'FROM public\.orders o' AS reads_public_orders,
	   statement ~ 'LIMIT \$4' AS limited, argument_types
FROM release_expired_orders.statements() WHERE name = 'candidates';

-- With payment windows in force, the windowed candidate statement reads
-- the windows; its plan still EXPLAINs.
INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 15);
SELECT (SELECT count(*) > 0 FROM pg_temp.explain(statement, argument_types)) AS explained
FROM release_expired_orders.statements() WHERE name = 'preview_windowed';
DELETE FROM release_expired_orders.payment_windows;

-- With notifications off (a legal setting the job's own hints suggest), the
-- statements that write them do not run and are not listed; the release
-- without them is, and every statement listed still EXPLAINs.
SET release_expired_orders.write_notifications = off;
SELECT count(*) > 20 AS listed,
	   count(*) FILTER (WHERE name IN ('release', 'note_failed', 'run_note')) AS writing_notifications,
	   count(*) FILTER (WHERE name = 'release_quiet') AS release_quiet,
	   bool_and(statement ~ '^SET ' OR (SELECT count(*) > 0 FROM pg_temp.explain(statement, argument_types))) AS explained
FROM release_expired_orders.statements();
RESET release_expired_orders.write_notifications;

DROP EXTENSION release_expired_orders;
DROP TABLE orders, products, lottery_rounds, notifications;
