# The extension in a second database of the cluster (README, Scheduling): pg_cron lives
# in one database, so CREATE EXTENSION elsewhere schedules nothing and
# prints the statement to run in pg_cron's database.  Run as printed, it
# adds a job of that database's own name (pg_cron 1.4 upserts a job on its
# name and role: with one name for all, it replaced the first database's
# job), and the job releases that database's orders.
use strict;
use warnings;

use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use AppFixture;

my $node = PostgreSQL::Test::Cluster->new('cron2');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '@{[ $node->host ]}'
});
$node->start;

create_app_tables($node);
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron; CREATE EXTENSION release_expired_orders;');

$node->safe_psql('postgres', 'CREATE DATABASE shop2');
$node->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('shop2'),
		'-f', "$FindBin::Bin/../fixtures/app_schema.sql"
	],
	'application tables created in shop2');
my ($ret, $stdout, $stderr) = $node->psql('shop2', 'CREATE EXTENSION release_expired_orders');
is($ret, 0, 'extension created in shop2');
my ($hint) = $stderr =~ /run there: (SELECT cron\.schedule_in_database\(.*?\));/;
ok(defined $hint, 'CREATE EXTENSION prints the statement to run in pg_cron\'s database')
  or diag($stderr);
$hint //= 'SELECT 1';

$node->safe_psql('postgres', $hint);
is( $node->safe_psql(
		'postgres', q{
	SELECT string_agg(concat_ws(' | ', jobname, schedule, command, database), E'\n' ORDER BY jobid)
	  FROM cron.job}),
	"release-expired-orders_invoke | */10 * * * * | CALL public.release_expired_orders() | postgres\n"
	  . "release-expired-orders_invoke\@shop2 | */10 * * * * | CALL public.release_expired_orders() | shop2",
	'the hint added a job for shop2 and left the first database\'s job alone');

# The job of shop2 runs there: every minute, it releases shop2's orders.
$node->safe_psql(
	'shop2', q{
	INSERT INTO products (id, name, stock) VALUES ('11111111-0000-0000-0000-000000000001', 'p1', 0);
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	VALUES ('33333333-0000-0000-0000-000000000001', 'O1', '44444444-0000-0000-0000-000000000001',
		'11111111-0000-0000-0000-000000000001', 'direct_buy', 1, 10.00,
		(now() AT TIME ZONE 'UTC') - interval '2 hours');
});
$node->safe_psql('postgres',
	q{SELECT cron.alter_job(jobid, schedule => '* * * * *') FROM cron.job WHERE database = 'shop2'});
my $ran = 0;
foreach my $i (1 .. 150)
{
	$ran = $node->safe_psql(
		'postgres', q{
		SELECT count(*) > 0 FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
		 WHERE j.database = 'shop2' AND d.status IN ('succeeded', 'failed')}) eq 't';
	last if $ran;
	sleep 1;
}
ok($ran, 'pg_cron ran the job of shop2');
is( $node->safe_psql(
		'postgres', q{
	SELECT d.status FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid
	 WHERE j.database = 'shop2' ORDER BY d.runid LIMIT 1}),
	'succeeded', 'and it succeeded');
is( $node->safe_psql(
		'shop2', q{
	SELECT o.status || ' ' || r.outcome || ' ' || r.released
	  FROM orders o, release_expired_orders.runs r ORDER BY r.id LIMIT 1}),
	'expired success 1', 'it released the order of shop2, and recorded the run there');

$node->stop;
done_testing();
