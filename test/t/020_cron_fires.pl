# The job for real under pg_cron: CREATE EXTENSION schedules it when
# pg_cron is in the database, schedule('* * * * *') makes it run every
# minute, and within a couple of minutes cron.job_run_details shows a
# succeeded run that released the expired orders, with its run row
# (scheduler pg_cron, over libpq and in pg_cron's background workers) and a
# healthy cron_job check.  Dropping the extension without unscheduling
# makes the next run fail, visibly, in cron.job_run_details.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use AppFixture;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
# pg_cron reaches the database over libpq: through the node's socket.
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '@{[ $node->host ]}'
});
$node->start;

create_app_tables($node);

$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CREATE EXTENSION release_expired_orders');
is($ret, 0, 'extension created');
unlike($stderr, qr/WARNING/, 'no warning when pg_cron is there');
is( $node->safe_psql(
		'postgres', q{
	SELECT string_agg(schedule || ' ' || command || ' ' || active, '; ')
	  FROM cron.job WHERE jobname = 'release-expired-orders_invoke'}),
	'*/10 * * * * CALL public.release_expired_orders() true',
	'CREATE EXTENSION scheduled the job every 10 minutes');

$node->safe_psql(
	'postgres', q{
	SELECT release_expired_orders.schedule('* * * * *');
	INSERT INTO products (id, name, stock) VALUES ('11111111-0000-0000-0000-000000000001', 'p1', 0);
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	SELECT ('33333333-0000-0000-0000-00000000000' || n)::uuid, 'O' || n,
		'44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001',
		'direct_buy', 1, 10.00,
		(now() AT TIME ZONE 'UTC') - CASE WHEN n = 4 THEN interval '5 minutes' ELSE interval '2 hours' END
	  FROM generate_series(1, 4) n;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM cron.job'),
	'1', 'scheduling again left one job');

# Wait for a run of the job to finish, up to 150 s (it fires at the next
# minute).
sub wait_for_run
{
	my ($status) = @_;
	my $query = qq{
		SELECT count(*) > 0 FROM cron.job_run_details d
		  JOIN cron.job j ON j.jobid = d.jobid
		 WHERE j.jobname = 'release-expired-orders_invoke' AND d.status = '$status'};
	foreach my $i (1 .. 150)
	{
		return 1 if $node->safe_psql('postgres', $query) eq 't';
		sleep 1;
	}
	return 0;
}

ok(wait_for_run('succeeded'), 'pg_cron ran the job and it succeeded');
is( $node->safe_psql(
		'postgres', q{
	SELECT string_agg(order_number || ' ' || status, ', ' ORDER BY order_number) FROM orders}),
	'O1 expired, O2 expired, O3 expired, O4 pending',
	'the expired orders were released, the young one kept');
is($node->safe_psql('postgres', 'SELECT stock FROM products'),
	'3', 'their stock was returned');
is( $node->safe_psql(
		'postgres', q{
	SELECT outcome || ' ' || released || ' ' || scheduler FROM release_expired_orders.runs
	 WHERE released > 0 ORDER BY id LIMIT 1}),
	'success 3 pg_cron', 'the run is recorded, as started by pg_cron');
is( $node->safe_psql(
		'postgres', q{
	SELECT status FROM release_expired_orders.health() WHERE "check" = 'cron_job'}),
	'ok', 'health() finds the job');
is( $node->safe_psql(
		'postgres', q{
	SELECT status FROM release_expired_orders.health() WHERE "check" = 'last_success'}),
	'ok', 'health() finds a recent successful run');

# The same with pg_cron's background workers: the run is still recorded as
# started by pg_cron (the worker pg_cron registered, not a session that
# says so).
$node->append_conf('postgresql.conf', 'cron.use_background_workers = on');
$node->restart;
$node->safe_psql(
	'postgres', q{
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	VALUES ('33333333-0000-0000-0000-000000000005', 'O5', '44444444-0000-0000-0000-000000000001',
		'11111111-0000-0000-0000-000000000001', 'direct_buy', 1, 10.00,
		(now() AT TIME ZONE 'UTC') - interval '2 hours');
});
ok( $node->poll_query_until(
		'postgres', q{
	SELECT count(*) > 0 FROM release_expired_orders.order_events e
	  JOIN orders o ON o.id = e.order_id WHERE o.order_number = 'O5' AND e.outcome = 'released'},
		't'),
	'pg_cron in background workers ran the job');
is( $node->safe_psql(
		'postgres', q{
	SELECT r.outcome || ' ' || r.released || ' ' || r.scheduler
	  FROM release_expired_orders.order_events e JOIN release_expired_orders.runs r ON r.id = e.run_id
	  JOIN orders o ON o.id = e.order_id WHERE o.order_number = 'O5'}),
	'success 1 pg_cron', 'the run is recorded, as started by pg_cron, in its background worker');

# Forgetting to unschedule before DROP EXTENSION: the job fails, and says why.
$node->safe_psql('postgres', 'DROP EXTENSION release_expired_orders');
ok(wait_for_run('failed'), 'the orphaned job fails');
like(
	$node->safe_psql(
		'postgres', q{
	SELECT d.return_message FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
	 WHERE j.jobname = 'release-expired-orders_invoke' AND d.status = 'failed'
	 ORDER BY d.runid DESC LIMIT 1}),
	qr/procedure public\.release_expired_orders\(\) does not exist/,
	'its failure names the missing procedure');

$node->stop;
done_testing();
