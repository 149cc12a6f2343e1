# On a streaming standby the job changes nothing and says so (README, Faults): a
# NOTICE, and a summary whose outcome is 'skipped'.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use AppFixture;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;
create_app_tables($primary);
$primary->safe_psql(
	'postgres', q{
	SET client_min_messages = warning;
	CREATE EXTENSION release_expired_orders;
	INSERT INTO products (id, name, stock) VALUES
		('11111111-0000-0000-0000-000000000001', 'p1', 10);
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	SELECT gen_random_uuid(), 'O' || n, gen_random_uuid(),
		'11111111-0000-0000-0000-000000000001', 'direct_buy', 1, 10,
		(now() AT TIME ZONE 'UTC') - interval '2 hours'
	  FROM generate_series(1, 3) n;
});
$primary->backup('backup');

my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'the standby is in recovery');

my ($rc, $stdout, $stderr) =
  $standby->psql('postgres', 'CALL release_expired_orders(30, 100)');
is($rc, 0, 'CALL on the standby succeeds');
like($stderr, qr/NOTICE:.*standby/, 'it says why it did nothing');
like($stdout, qr/"outcome": "skipped"/, 'the summary marks the run skipped');
like($stdout, qr/"successful": 0\b/, 'the summary released nothing');

# Nothing changed: orders still pending and no run recorded, on both sides.
$primary->wait_for_catchup($standby);
for my $node ($primary, $standby)
{
	is( $node->safe_psql(
			'postgres', q{
		SELECT (SELECT count(*) FROM orders WHERE status = 'pending')
		    || ' ' || (SELECT stock FROM products)
		    || ' ' || (SELECT count(*) FROM release_expired_orders.runs)}),
		'3 10 0',
		$node->name . ': orders pending, stock untouched, no run row');
}

# The same CALL on the primary does release them.
like($primary->safe_psql('postgres', 'CALL release_expired_orders(30, 100)'),
	qr/"successful": 3\b/, 'the primary releases them');

$standby->stop;
$primary->stop;
done_testing();
