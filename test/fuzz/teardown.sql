-- Drop what test/fuzz/setup.sql and the application fixture created.
DROP TABLE orders, products, lottery_rounds, notifications, fuzz_results, fuzz_orders_before,
	fuzz_products_before, fuzz_rounds_before, fuzz_products_all, fuzz_rounds_all;
DROP FUNCTION fuzz_pick(text[]), fuzz_uuid(), fuzz_generate(int, text), fuzz_args(), fuzz_snapshot(),
	fuzz_refused(int), fuzz_assert(int, text, boolean, text), fuzz_check(int, jsonb, int, text, boolean);
