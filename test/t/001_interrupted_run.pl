# A backend killed in the middle of a committing run (README, Faults): every chunk
# that committed is complete (order expired, audit row, notification, stock
# and shares returned), nothing is half done, the run row reads
# 'interrupted' once the next run has looked at it, and the next run
# releases the rest.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use AppFixture;

my $orders = 60;
my $chunk = 5;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;

# The application's tables, with timestamptz this time.
create_app_tables($node, app_ts => 'timestamptz');
$node->safe_psql(
	'postgres', qq{
	SET client_min_messages = warning;
	CREATE EXTENSION release_expired_orders;
	INSERT INTO products (id, name, stock) VALUES
		('11111111-0000-0000-0000-000000000001', 'p1', 1000),
		('11111111-0000-0000-0000-000000000002', 'p2', 1000);
	INSERT INTO lottery_rounds (id, product_id, round_number, total_shares, sold_shares, status) VALUES
		('22222222-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001', 1, 5000, 500, 'active'),
		('22222222-0000-0000-0000-000000000002', '11111111-0000-0000-0000-000000000002', 2, 5000, 500, 'active');
	INSERT INTO orders (id, order_number, user_id, product_id, round_id, type, quantity, total_amount, created_at)
	SELECT gen_random_uuid(), 'O' || n, gen_random_uuid(),
		('11111111-0000-0000-0000-00000000000' || (1 + n % 2))::uuid,
		('22222222-0000-0000-0000-00000000000' || (1 + n % 2))::uuid,
		'lottery_win', 1 + n % 3, 10, now() - interval '2 hours' + n * interval '1 second'
	  FROM generate_series(1, $orders) n;
	-- Slows every order update down, so that the run can be killed midway.
	CREATE FUNCTION slow_update() RETURNS trigger LANGUAGE plpgsql
		AS \$\$BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END\$\$;
	CREATE TRIGGER slow_update BEFORE UPDATE ON orders
		FOR EACH ROW EXECUTE FUNCTION slow_update();
});

# What must hold at any moment: expired orders are exactly the audited ones,
# each once, with their notification, and the counters moved by exactly
# their quantities; no order is half changed.
sub check_consistent
{
	my ($label) = @_;
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM orders
		 WHERE (status = 'expired') <> (payment_status = 'cancelled')
		    OR (status = 'expired') <> (fulfillment_status = 'cancelled')
		    OR (status = 'expired') <> (notes IS NOT NULL)
		    OR (status = 'expired') <> (updated_at IS NOT NULL)}),
		'0', "$label: no order is half released");
	is( $node->safe_psql(
			'postgres', q{
		SELECT count(*) FROM orders o
		 WHERE (o.status = 'expired') <> ((SELECT count(*) FROM release_expired_orders.order_events e
		          WHERE e.order_id = o.id AND e.outcome = 'released') = 1)
		    OR (SELECT count(*) FROM release_expired_orders.order_events e
		         WHERE e.order_id = o.id AND e.outcome = 'released') > 1}),
		'0', "$label: exactly the expired orders have one 'released' audit row");
	is( $node->safe_psql(
			'postgres', q{
		SELECT (SELECT count(*) FROM orders WHERE status = 'expired')
		     = (SELECT count(*) FROM notifications
		         WHERE content LIKE '%order_released_successfully%')}),
		't', "$label: one notification per expired order");
	is( $node->safe_psql(
			'postgres', q{
		SELECT string_agg(p.name || ':' || (p.stock = 1000 + coalesce(x.qty, 0))
		                  || ':' || (r.sold_shares = 500 - coalesce(x.qty, 0)), ' ' ORDER BY p.name)
		  FROM products p JOIN lottery_rounds r ON r.product_id = p.id
		  LEFT JOIN (SELECT product_id, sum(quantity) AS qty FROM orders
		              WHERE status = 'expired' GROUP BY product_id) x ON x.product_id = p.id}),
		'p1:true:true p2:true:true',
		"$label: stock and sold shares moved by exactly the expired quantities");
}

# A committing run in chunks of $chunk, killed once some chunks committed.
my $job = $node->background_psql('postgres', on_error_stop => 0);
$job->query_until(
	qr/started/, qq{
	SET release_expired_orders.chunk_size = $chunk;
	\\echo started
	CALL release_expired_orders(30, 1000);
});
$node->poll_query_until('postgres',
	'SELECT released >= 10 FROM release_expired_orders.runs')
  or die 'the run did not commit two chunks';
my $pid = $node->safe_psql('postgres',
	'SELECT backend_pid FROM release_expired_orders.runs');
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $pid)")
  or die 'the run backend did not end';
eval { $job->quit };    # psql lost its connection: that was the point

my $released = $node->safe_psql('postgres',
	"SELECT count(*) FROM orders WHERE status = 'expired'");
ok($released > 0 && $released < $orders,
	"killed midway: $released of $orders released");
is($released % $chunk, 0, 'only whole chunks were committed');
is( $node->safe_psql('postgres',
		'SELECT released || \' \' || outcome FROM release_expired_orders.runs'),
	"$released running",
	'the run row counts the committed chunks; its backend is gone');
check_consistent('after the kill');

# The next run marks the dead run interrupted and releases the rest.
$node->safe_psql('postgres', 'DROP TRIGGER slow_update ON orders');
my $summary = $node->safe_psql('postgres',
	"SET release_expired_orders.chunk_size = $chunk; "
	  . "CALL release_expired_orders(30, 1000)");
like($summary, qr/"successful": @{[$orders - $released]}\b/,
	'the next run releases the rest');
is( $node->safe_psql('postgres',
		'SELECT string_agg(outcome || \':\' || released, \' \' ORDER BY id) FROM release_expired_orders.runs'),
	"interrupted:$released success:" . ($orders - $released),
	'the killed run reads interrupted, the next one success');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM orders WHERE status = 'expired'"),
	$orders, 'every order is released in the end');
check_consistent('after the next run');

$node->stop;
done_testing();
