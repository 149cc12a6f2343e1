# The job's statements never JIT-compile, on a server where JIT is
# available and on.  jit_above_cost = 0 makes every statement a candidate:
# a statement of the test itself is compiled (the setup can make it
# happen), and pg_stat_statements, tracking nested statements, shows that
# none of those the extension runs was (a CALL that releases, one that
# finds nothing, preview(), oldest_deadline() and the metrics view), with
# payment windows and without.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::Bin;
use AppFixture;

my $node = PostgreSQL::Test::Cluster->new('no_jit');

# A server built without contrib or without LLVM (the assertion-enabled
# build is both) cannot show it: neither the module nor the provider exists.
my $pkglibdir = $node->config_data('--pkglibdir');
foreach my $module ('pg_stat_statements', 'llvmjit')
{
	plan skip_all => "this server has no $module module"
	  unless -e "$pkglibdir/$module.so";
}

$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
jit = on
jit_above_cost = 0
jit_optimize_above_cost = -1
jit_inline_above_cost = -1
});
$node->start;

if ($node->safe_psql('postgres', 'SELECT pg_jit_available()') ne 't')
{
	plan skip_all => 'this server has no JIT provider (llvmjit)';
}

create_app_tables($node);
$node->safe_psql(
	'postgres', q{
	SET client_min_messages = error;
	CREATE EXTENSION release_expired_orders;
	CREATE EXTENSION pg_stat_statements;
	INSERT INTO products (id, name, stock) VALUES ('11111111-0000-0000-0000-000000000001', 'p1', 0);
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	SELECT gen_random_uuid(), 'O' || n, '44444444-0000-0000-0000-000000000001',
		'11111111-0000-0000-0000-000000000001', CASE WHEN n % 2 = 0 THEN 'direct_buy' ELSE 'recharge' END,
		1, 10, now() - n * interval '1 minute' - interval '30 seconds'
	FROM generate_series(1, 200) n;
	CREATE INDEX ON orders (type, created_at, id)
		WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
	CREATE INDEX ON orders (created_at, id)
		WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
	ANALYZE orders;
	SELECT pg_stat_statements_reset();
});

# The setup can make it happen: the test's own statement is compiled.
$node->safe_psql('postgres', q{SELECT count(*) FROM orders WHERE quantity > 0});
is( $node->safe_psql(
		'postgres',
		q{SELECT sum(jit_functions) > 0 FROM pg_stat_statements WHERE query LIKE '%quantity >%'}),
	't',
	'a statement of the test is JIT-compiled');

# Each in a fresh session, as pg_cron and a scraper run them.
my @calls = (
	q{CALL release_expired_orders(60, 1000)},
	q{CALL release_expired_orders(60, 1000)},
	q{SELECT count(*) FROM release_expired_orders.preview()},
	q{SELECT release_expired_orders.oldest_deadline()},
	q{SELECT count(*) FROM release_expired_orders.metrics},
	q{INSERT INTO release_expired_orders.payment_windows VALUES ('recharge', NULL, 20), ('direct_buy', NULL, 4320)},
	q{CALL release_expired_orders(60, 1000)},
	q{CALL release_expired_orders(60, 1000)},
	q{SELECT count(*) FROM release_expired_orders.preview()},
	q{SELECT release_expired_orders.oldest_deadline()},
	q{SELECT count(*) FROM release_expired_orders.metrics});
$node->safe_psql('postgres', $_) for @calls;

is($node->safe_psql('postgres', q{SELECT count(*) FROM orders WHERE status = 'expired'}),
	'161', 'the runs released the orders due: 141 older than 60 minutes, then 20 recharges older than 20');
my $nested = $node->safe_psql(
	'postgres', q{
	SELECT count(*) FILTER (WHERE query LIKE 'WITH RECURSIVE types%') > 0
		   AND count(*) FILTER (WHERE query LIKE 'SELECT o.created_at FROM%') > 0,
		   COALESCE(sum(jit_functions), 0),
		   COALESCE(string_agg(left(query, 60), ' | ') FILTER (WHERE jit_functions > 0), '')
	FROM pg_stat_statements WHERE NOT toplevel});
is($nested, 't|0|', "no statement the extension ran was JIT-compiled");

done_testing();
