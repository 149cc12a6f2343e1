# A deadlock between the job and the application is one order's fault
# (README, Faults): the job's writes for that order are rolled back, the order stays
# pending, is counted failed with SQLSTATE 40P01, the others are released,
# and the next run releases it.
#
# The deadlock is made certain, not likely: session "holder_p2" holds product
# p2 and then waits for order O1 (a payment), while the job holds O1 and
# waits for p2.  Session "holder_p1" holding p1 makes the job lock O1 and O2
# first and reach p2 only after the payment already waits.  The job has the
# short deadlock_timeout, so it is always the one that detects the deadlock.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use AppFixture;

my $o1 = '33333333-0000-0000-0000-000000000001';
my $p1 = '11111111-0000-0000-0000-000000000001';
my $p2 = '11111111-0000-0000-0000-000000000002';

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;
create_app_tables($node);
$node->safe_psql(
	'postgres', qq{
	SET client_min_messages = warning;
	CREATE EXTENSION release_expired_orders;
	INSERT INTO products (id, name, stock) VALUES ('$p1', 'p1', 10), ('$p2', 'p2', 10);
	-- O1 (p1) is older than O2 (p2); both expired.
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	VALUES ('$o1', 'O1', gen_random_uuid(), '$p1', 'direct_buy', 1, 10,
	        (now() AT TIME ZONE 'UTC') - interval '3 hours'),
	       ('33333333-0000-0000-0000-000000000002', 'O2', gen_random_uuid(), '$p2', 'direct_buy', 1, 10,
	        (now() AT TIME ZONE 'UTC') - interval '2 hours');
});

sub waiting_for_lock
{
	my ($pid) = @_;
	return $node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid");
}

my $holder_p1 = $node->background_psql('postgres');
my $holder_p2 = $node->background_psql('postgres');
my $job = $node->background_psql('postgres', on_error_stop => 0);
$holder_p1->query_safe("BEGIN; SELECT FROM products WHERE id = '$p1' FOR UPDATE");
$holder_p2->query_safe("SET deadlock_timeout = '60s'; BEGIN; "
	  . "SELECT FROM products WHERE id = '$p2' FOR UPDATE");

my $job_pid = $job->query_safe("SET deadlock_timeout = '100ms'; SELECT pg_backend_pid()");
$job->query_until(
	qr/started/, q{
	\echo started
	CALL release_expired_orders(30, 100);
});
ok(waiting_for_lock($job_pid), 'the job holds O1 and O2 and waits for p1');

my $holder_p2_pid = $holder_p2->query_safe('SELECT pg_backend_pid()');
$holder_p2->query_until(
	qr/started/, qq{
	\\echo started
	UPDATE orders SET payment_status = 'paid', fulfillment_status = 'completed'
	 WHERE id = '$o1' AND payment_status = 'pending';
});
ok(waiting_for_lock($holder_p2_pid), 'the payment of O1 waits for the job');

# Let the job go on to p2: the deadlock.
$holder_p1->query_safe('COMMIT');
$node->poll_query_until('postgres',
	"SELECT outcome <> 'running' FROM release_expired_orders.runs")
  or die 'the run did not end';
$job->query('SELECT 1');    # collect the CALL's result
$holder_p2->query_safe('COMMIT');

is( $node->safe_psql(
		'postgres', q{
	SELECT found || ' ' || released || ' ' || failed || ' ' || outcome
	  FROM release_expired_orders.runs}),
	'2 1 1 partial',
	'the run released one order and failed one');
is( $node->safe_psql(
		'postgres', q{
	SELECT string_agg(order_number || ':' || status || ':' || payment_status, ' ' ORDER BY order_number)
	  FROM orders}),
	'O1:expired:cancelled O2:pending:pending',
	'O1 released (its payment came too late), O2 still pending');
is( $node->safe_psql(
		'postgres', q{
	SELECT order_number || ' ' || sqlstate || ' ' || message
	  FROM release_expired_orders.order_events WHERE outcome = 'failed'}),
	'O2 40P01 deadlock detected',
	'the deadlock is recorded with its SQLSTATE and message');
is($node->safe_psql('postgres', 'SELECT string_agg(stock::text, \' \' ORDER BY name) FROM products'),
	'11 10', 'only O1 returned its stock');

like($node->safe_psql('postgres', 'CALL release_expired_orders(30, 100)'),
	qr/"successful": 1\b/, 'the next run releases O2');
is($node->safe_psql('postgres', 'SELECT string_agg(stock::text, \' \' ORDER BY name) FROM products'),
	'11 11', 'and returns its stock');

$_->quit for ($holder_p1, $holder_p2, $job);
$node->stop;
done_testing();
