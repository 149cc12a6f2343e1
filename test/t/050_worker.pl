# The deadline worker (README, Deadline worker): with the library preloaded and
# worker_database set (a 1.1 configuration: only that database is served),
# due orders are released within 2 s of their deadline and never before, by
# runs whose scheduler is 'worker'; a run that uses up batch_limit is
# followed by another at once; a reload that changes the role starts a
# worker as the new role; pg_terminate_backend() is followed by a restart; a
# standby runs no worker and a promoted one serves; worker_database naming a
# database without the extension, or one that does not exist, leaves every
# database unserved, quietly; an empty worker_database serves every database
# that has the extension.  (t/051_launcher.pl tests the rest,
# t/052_worker_findings.pl the findings of review 21.)
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use AppFixture;

my $primary = PostgreSQL::Test::Cluster->new('worker_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'release_expired_orders'
release_expired_orders.worker_database = 'postgres'
release_expired_orders.timeout_minutes = 1
release_expired_orders.batch_limit = 2
});
$primary->start;
create_app_tables($primary);
$primary->safe_psql(
	'postgres', q{
	SET client_min_messages = error;
	CREATE EXTENSION release_expired_orders;
	INSERT INTO products (id, name, stock) VALUES ('11111111-0000-0000-0000-000000000001', 'p1', 0);
	CREATE ROLE reo_worker SUPERUSER NOLOGIN;
});

# The worker's pid, once one serves (pg_stat_activity agrees).
sub worker_pid
{
	my ($node, $not) = @_;
	$not //= 0;
	$node->poll_query_until(
		'postgres', qq{
		SELECT count(*) = 1 FROM release_expired_orders.worker_status() w
		  JOIN pg_stat_activity a ON a.pid = w.pid
		 WHERE a.backend_type = 'release_expired_orders worker' AND w.pid <> $not})
	  or return undef;
	return $node->safe_psql('postgres', 'SELECT pid FROM release_expired_orders.worker_status()');
}

# Orders PREFIX1.. due in the given seconds from now (the 1 minute timeout
# applies), then wake_worker() as an application that placed them would.
sub place_due
{
	my ($node, $prefix, @secs) = @_;
	my $values = join(', ', map { "($_, " . $secs[$_ - 1] . ')' } 1 .. @secs);
	$node->safe_psql(
		'postgres', qq{
		INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
		SELECT gen_random_uuid(), '$prefix' || n, gen_random_uuid(),
			'11111111-0000-0000-0000-000000000001', 'direct_buy', 1, 10,
			(clock_timestamp() AT TIME ZONE 'UTC') - interval '1 minute' + s * interval '1 second'
		  FROM (VALUES $values) v (n, s);
		SELECT release_expired_orders.wake_worker();});
	return;
}

# "released early late": released orders of PREFIX, those released before
# their deadline, and those more than 2 s after it; once all N are released.
sub released_on_time
{
	my ($node, $prefix, $n) = @_;
	my $events = qq{
		FROM orders o JOIN release_expired_orders.order_events e
		  ON e.order_id = o.id AND e.outcome = 'released'
		WHERE o.order_number LIKE '$prefix%'};
	$node->poll_query_until('postgres', "SELECT count(*) = $n $events")
	  or return 'timed out: ' . $node->safe_psql('postgres', "SELECT count(*) $events");
	return $node->safe_psql(
		'postgres', qq{
		SELECT count(*) || ' '
			|| count(*) FILTER (WHERE e.created_at <= (o.created_at AT TIME ZONE 'UTC') + interval '1 minute') || ' '
			|| count(*) FILTER (WHERE e.created_at > (o.created_at AT TIME ZONE 'UTC') + interval '62 seconds')
		$events});
}

my $pid = worker_pid($primary);
ok($pid, 'the worker serves the database');

# Three orders due in 2, 3 and 4 s, each released at its own deadline.
place_due($primary, 'A', 2, 3, 4);
is(released_on_time($primary, 'A', 3), '3 0 0',
	'due orders released within 2 s of their deadline, none before');
is( $primary->safe_psql(
		'postgres', q{
	SELECT string_agg(DISTINCT r.scheduler || ' ' || r.run_by || ' ' || r.outcome, ', ')
	  FROM release_expired_orders.order_events e JOIN release_expired_orders.runs r ON r.id = e.run_id
	  JOIN orders o ON o.id = e.order_id WHERE o.order_number LIKE 'A%'}),
	'worker ' . $primary->safe_psql('postgres', 'SELECT current_user') . ' success',
	'by worker runs, as the database owner');

# Five due at once with batch_limit 2: runs follow each other at once.
place_due($primary, 'B', 2, 2, 2, 2, 2);
is(released_on_time($primary, 'B', 5), '5 0 0', 'a full run is followed by another at once');
is( $primary->safe_psql(
		'postgres', q{
	SELECT count(DISTINCT e.run_id) FROM release_expired_orders.order_events e
	  JOIN orders o ON o.id = e.order_id WHERE o.order_number LIKE 'B%'}),
	'3', 'in runs of at most batch_limit');

is( $primary->safe_psql(
		'postgres', q{
	SELECT database || ' ' || (started_at < last_wake) || ' ' || (last_lag_ms BETWEEN 0 AND 1000)
		|| ' ' || (next_wake > now())
	  FROM release_expired_orders.worker_status()}),
	'postgres true true true', 'worker_status(): database, wakes, lag, next wake');
is( $primary->safe_psql(
		'postgres', q{SELECT status FROM release_expired_orders.health() WHERE "check" = 'worker'}),
	'ok', 'health(): the worker check is ok');
is( $primary->safe_psql(
		'postgres', q{
	SELECT string_agg(metric || '=' || CASE WHEN metric = 'worker_lag_seconds' THEN (value BETWEEN 0 AND 1)::text
											 ELSE value::text END, ' ' ORDER BY metric)
	  FROM release_expired_orders.metrics WHERE metric LIKE 'worker%'}),
	'worker_lag_seconds=true worker_running=1', 'metrics: the worker runs, and its last wake was less than a second late');

# SIGHUP: a new role, one that cannot log in: a worker as that role serves.
$primary->safe_psql('postgres',
	"ALTER SYSTEM SET release_expired_orders.worker_role = 'reo_worker'; SELECT pg_reload_conf()");
my $role_pid = worker_pid($primary, $pid);
ok($role_pid && $role_pid != $pid, 'a reload that changes the role starts a worker as the new role');
$pid = $role_pid;
place_due($primary, 'C', 2);
is(released_on_time($primary, 'C', 1), '1 0 0', 'after a reload, still on time');
is( $primary->safe_psql(
		'postgres', q{
	SELECT r.run_by || ' ' || w.role FROM release_expired_orders.runs r, release_expired_orders.worker_status() w
	 ORDER BY r.id DESC LIMIT 1}),
	'reo_worker reo_worker', 'the reloaded worker_role runs the job');
$primary->safe_psql('postgres', 'SELECT pg_reload_conf()');
sleep 1;
is($primary->safe_psql('postgres', 'SELECT pid FROM release_expired_orders.worker_status()'),
	$pid, 'a reload that changes nothing does not restart it');

# pg_terminate_backend: the postmaster starts a new worker, which serves.
$primary->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
my $new_pid = worker_pid($primary, $pid);
ok($new_pid && $new_pid != $pid, 'the postmaster restarted the worker after pg_terminate_backend');
place_due($primary, 'D', 2);
is(released_on_time($primary, 'D', 1), '1 0 0', 'the restarted worker serves');
unlike(slurp_file($primary->logfile), qr/WARNING: .*(still active|leak)/,
	"the worker's runs leave no snapshot or resource behind");

# A standby runs no worker, changes nothing; promoted, it serves.
$primary->backup('backup');
my $standby = PostgreSQL::Test::Cluster->new('worker_standby');
$standby->init_from_backup($primary, 'backup', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);
sleep 2;
is( $standby->safe_psql(
		'postgres', q{
	SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'release_expired_orders worker')
		|| ' ' || (SELECT count(*) FILTER (WHERE pid IS NULL) FROM release_expired_orders.worker_status())
		|| ' ' || (SELECT status FROM release_expired_orders.health() WHERE "check" = 'worker')}),
	'0 1 ok', 'the standby runs no worker, and health() says why');
unlike(slurp_file($standby->logfile), qr/deadline worker/, 'nor tries to');
$primary->stop;
$standby->promote;
ok(worker_pid($standby), 'the promoted standby starts the worker');
place_due($standby, 'E', 2);
is(released_on_time($standby, 'E', 1), '1 0 0', 'and it serves');

# worker_database naming a database without the extension: its worker
# finds none and is not started again; the database it served before is
# no longer served, and health() there says so.
$standby->safe_psql('postgres', 'CREATE DATABASE noext');
my $offset = -s $standby->logfile;
$standby->safe_psql('postgres',
	"ALTER SYSTEM SET release_expired_orders.worker_database = 'noext'; SELECT pg_reload_conf()");
$standby->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'release_expired_orders worker'})
  or diag('a worker still runs');
sleep 4;
my $log = substr(slurp_file($standby->logfile), $offset);
my $starts = () = $log =~ /database "noext" does not have the extension, and is not served until CREATE EXTENSION/g;
is($starts, 1, 'noext: its worker found no extension, said so once, and was not started again');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'release_expired_orders worker'}),
	'0', 'no worker runs');
is($standby->safe_psql('postgres', q{SELECT status || ': ' || detail FROM release_expired_orders.health() WHERE "check" = 'worker'}),
	'ok: not served: release_expired_orders.worker_database names database noext only',
	'health() in the database no longer served says why');

# A database that does not exist: nothing to serve, nothing logged.
$offset = -s $standby->logfile;
$standby->safe_psql('postgres',
	"ALTER SYSTEM SET release_expired_orders.worker_database = 'nosuchdb'; SELECT pg_reload_conf()");
sleep 4;
$log = substr(slurp_file($standby->logfile), $offset);
unlike($log, qr/FATAL/, 'a worker_database that does not exist: no worker, no FATAL');

# An empty worker_database: every database that has the extension.
$standby->safe_psql('postgres',
	"ALTER SYSTEM SET release_expired_orders.worker_database = ''; SELECT pg_reload_conf()");
ok(worker_pid($standby), 'an empty worker_database: the database with the extension is served again');
is( $standby->safe_psql(
		'postgres', q{
	SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'release_expired_orders worker')
		|| ' ' || (SELECT count(*) FROM release_expired_orders.worker_status())}),
	'1 1', 'one worker, none in noext');

$standby->stop;
done_testing();
