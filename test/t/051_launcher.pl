# The deadline workers, one per database (README, Deadline worker): with the
# library preloaded, CREATE EXTENSION in a database is enough for a worker
# to serve it and DROP EXTENSION stops it; DROP DATABASE and ALTER DATABASE
# RENAME of a served database are never blocked, whether its worker sleeps
# or is in the middle of a run; a worker runs as its role (session_user and
# current_user in the application's trigger), with the database's and the
# role's settings, and a change of either applies without a restart; an
# order committed close to its deadline is released at once with the wake
# trigger, and within the poll interval without it; orders held by a payment
# do not delay one that falls due; max_workers caps the workers, and
# health() is critical in a database left without one.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use IPC::Run;
use FindBin;

my $node = PostgreSQL::Test::Cluster->new('launcher');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'release_expired_orders'
release_expired_orders.timeout_minutes = 1
release_expired_orders.max_workers = 4
max_worker_processes = 16
});
$node->start;

# A database with the application's tables, a product, and the extension.
sub make_shop
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->command_ok(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db),
			'-f', "$FindBin::Bin/../fixtures/app_schema.sql"
		],
		"application tables in $db");
	$node->safe_psql(
		$db, q{
		SET client_min_messages = error;
		CREATE EXTENSION release_expired_orders;
		INSERT INTO products (id, name, stock) VALUES ('11111111-0000-0000-0000-000000000001', 'p1', 0);
		CREATE TABLE seen (order_number text, session_role name, current_role_ name, timeout text);
		CREATE FUNCTION note_release() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.status = 'expired' THEN
				INSERT INTO public.seen VALUES (NEW.order_number, session_user, current_user,
					current_setting('release_expired_orders.timeout_minutes'));
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER note_release BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION note_release();
		GRANT INSERT ON seen TO PUBLIC;});
	return;
}

# The pid of the worker serving db, once one does (not $not).
sub worker_pid
{
	my ($db, $not) = @_;
	$not //= 0;
	$node->poll_query_until(
		$db, qq{
		SELECT count(*) = 1 FROM release_expired_orders.worker_status() w
		  JOIN pg_stat_activity a ON a.pid = w.pid
		 WHERE a.backend_type = 'release_expired_orders worker' AND a.datname = current_database()
		   AND w.pid <> $not})
	  or return undef;
	return $node->safe_psql($db, 'SELECT pid FROM release_expired_orders.worker_status()');
}

# Workers running, by database.
sub workers
{
	return $node->safe_psql(
		'postgres', q{
		SELECT coalesce(string_agg(datname, ' ' ORDER BY datname), '') FROM pg_stat_activity
		 WHERE backend_type = 'release_expired_orders worker'});
}

# An order of db created $ago before now, committed now; returns the time
# just before its commit, when it becomes visible.
sub place
{
	my ($db, $number, $ago) = @_;
	return $node->safe_psql(
		$db, qq{
		INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
		VALUES (gen_random_uuid(), '$number', gen_random_uuid(), '11111111-0000-0000-0000-000000000001',
				'direct_buy', 1, 10, (clock_timestamp() AT TIME ZONE 'UTC') - interval '$ago')
		RETURNING clock_timestamp()});
}

# Milliseconds from max(deadline, the moment it became visible) to its
# release, with the database's timeout; undef when not released within
# $timeout seconds.
sub release_lag
{
	my ($db, $number, $committed, $timeout) = @_;
	my $q = qq{
		SELECT round(extract(epoch FROM e.created_at - greatest(
				(o.created_at AT TIME ZONE 'UTC')
					+ make_interval(mins => current_setting('release_expired_orders.timeout_minutes')::int),
				'$committed'::timestamptz)) * 1000)
		  FROM orders o JOIN release_expired_orders.order_events e ON e.order_id = o.id AND e.outcome = 'released'
		 WHERE o.order_number = '$number'};
	for (1 .. $timeout * 20)
	{
		my $lag = $node->safe_psql($db, $q);
		return $lag if $lag ne '';
		usleep(50_000);
	}
	return undef;
}

# Discovery: CREATE EXTENSION is enough, in any number of databases.
make_shop('shop_a');
make_shop('shop_b');
ok(worker_pid('shop_a'), 'CREATE EXTENSION: a worker serves shop_a');
ok(worker_pid('shop_b'), 'and another serves shop_b');
$node->safe_psql('postgres', 'CREATE DATABASE empty');
sleep 2;
is(workers(), 'shop_a shop_b', 'none in databases without the extension');

# Each worker releases its own database's orders, as the database's owner.
place('shop_a', 'A1', '58 seconds');
place('shop_b', 'B1', '58 seconds');
my $lag_a = release_lag('shop_a', 'A1', '-infinity', 10);
my $lag_b = release_lag('shop_b', 'B1', '-infinity', 10);
ok(defined $lag_a && $lag_a >= 0 && $lag_a < 1000, "shop_a's order released on time ($lag_a ms)");
ok(defined $lag_b && $lag_b >= 0 && $lag_b < 1000, "shop_b's order released on time ($lag_b ms)");
my $owner = $node->safe_psql('postgres', 'SELECT current_user');
is($node->safe_psql('shop_a', q{SELECT session_role || ' ' || current_role_ FROM seen WHERE order_number = 'A1'}),
	"$owner $owner", "session_user and current_user in the application's trigger: the database's owner");

# The role: worker_role set for the database, a role with LOGIN; then one
# without (on 15 and 16 the worker becomes it after connecting).
$node->safe_psql('postgres', q{
	CREATE ROLE shop_job LOGIN SUPERUSER;
	CREATE ROLE shop_nologin NOLOGIN SUPERUSER;
	ALTER DATABASE shop_a SET release_expired_orders.worker_role = 'shop_job';});
$node->poll_query_until('shop_a', q{SELECT role = 'shop_job' AND pid IS NOT NULL FROM release_expired_orders.worker_status()})
  or diag('worker_status() never showed shop_job');
place('shop_a', 'A2', '58 seconds');
ok(defined release_lag('shop_a', 'A2', '-infinity', 10), 'released after the role changed');
is($node->safe_psql('shop_a', q{SELECT session_role || ' ' || current_role_ FROM seen WHERE order_number = 'A2'}),
	"shop_job $owner", 'as the role ALTER DATABASE ... SET named, without a restart (the trigger runs as the owner of orders)');
is($node->safe_psql('shop_a', q{SELECT run_by FROM release_expired_orders.runs ORDER BY id DESC LIMIT 1}),
	'shop_job', 'the run row names it');
$node->safe_psql('postgres', q{ALTER DATABASE shop_a SET release_expired_orders.worker_role = 'shop_nologin'});
$node->poll_query_until('shop_a', q{SELECT role = 'shop_nologin' AND pid IS NOT NULL FROM release_expired_orders.worker_status()})
  or diag('worker_status() never showed shop_nologin');
place('shop_a', 'A3', '58 seconds');
ok(defined release_lag('shop_a', 'A3', '-infinity', 10), 'released as a role without LOGIN');
is($node->safe_psql('shop_a', q{SELECT session_role || ' ' || current_role_ FROM seen WHERE order_number = 'A3'}),
	"shop_nologin $owner", 'session_user is that role');
# What a CALL by the role itself shows, for comparison.
$node->safe_psql('shop_a', q{
	BEGIN;
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	VALUES (gen_random_uuid(), 'A4', gen_random_uuid(), '11111111-0000-0000-0000-000000000001',
			'direct_buy', 1, 10, (clock_timestamp() AT TIME ZONE 'UTC') - interval '31 minutes');
	SET LOCAL ROLE shop_nologin;
	CALL release_expired_orders(1, 10);
	COMMIT;});
is($node->safe_psql('shop_a', q{SELECT current_role_ FROM seen WHERE order_number = 'A4'}),
	$owner, 'as for a CALL by the role: the application\'s code runs as the owner of orders');

# A role that may not drop or rename a served database stops nothing.
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN');
my $before = worker_pid('shop_a');
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE shop_a', extra_params => ['-U', 'mallory']);
like($err, qr/must be owner of database shop_a/, 'an unprivileged DROP DATABASE is refused');
sleep 1;
is(worker_pid('shop_a'), $before, "and the database's worker was not stopped");

# worker_role naming a role that is then dropped: the worker says so and
# tries again, never running as another role; once the setting names an
# existing role again, it serves.
$node->safe_psql('postgres', q{
	CREATE ROLE shop_temp LOGIN SUPERUSER;
	ALTER DATABASE shop_a SET release_expired_orders.worker_role = 'shop_temp';});
$node->poll_query_until('shop_a', q{SELECT role = 'shop_temp' AND pid IS NOT NULL FROM release_expired_orders.worker_status()})
  or diag('worker_status() never showed shop_temp');
$node->safe_psql('postgres', 'DROP ROLE shop_temp');
$node->poll_query_until('shop_a', q{SELECT last_error ~ 'role "shop_temp" that release_expired_orders.worker_role names does not exist'
	FROM release_expired_orders.worker_status()})
  or diag('worker_status() never showed the missing role');
place('shop_a', 'A5', '58 seconds');
is(release_lag('shop_a', 'A5', '-infinity', 5), undef,
	'a dropped worker role: an order falls due and nothing releases it as another role');
$node->safe_psql('postgres', q{ALTER DATABASE shop_a SET release_expired_orders.worker_role = 'shop_nologin'});
ok(defined release_lag('shop_a', 'A5', '-infinity', 10), 'with the setting fixed, it serves again');
is($node->safe_psql('shop_a', q{SELECT session_role FROM seen WHERE order_number = 'A5'}), 'shop_nologin',
	'as the role the setting names');

# Settings of the database, then of the role, apply without a restart: an
# order 45 minutes old is not expired with a 60-minute timeout.
$node->safe_psql('postgres', 'ALTER DATABASE shop_b SET release_expired_orders.timeout_minutes = 60');
sleep 3;
place('shop_b', 'B45', '45 minutes');
place('shop_b', 'B61', '61 minutes');
ok(defined release_lag('shop_b', 'B61', '-infinity', 10), 'a 61-minute-old order is released');
is($node->safe_psql('shop_b', q{SELECT status FROM orders WHERE order_number = 'B45'}),
	'pending', 'ALTER DATABASE ... SET timeout_minutes = 60: a 45-minute-old order is not');
is($node->safe_psql('shop_b', q{SELECT timeout FROM seen WHERE order_number = 'B61'}), '60',
	"the application's trigger sees the database's setting");
$node->safe_psql('postgres', q{ALTER ROLE shop_nologin IN DATABASE shop_a SET release_expired_orders.timeout_minutes = 30});
sleep 3;
place('shop_a', 'A31', '31 minutes');
ok(defined release_lag('shop_a', 'A31', '-infinity', 10), 'ALTER ROLE ... SET: released');
is($node->safe_psql('shop_a', q{SELECT timeout FROM seen WHERE order_number = 'A31'}), '30',
	"with the role's setting");

# Late arrivals.  Without the wake trigger, an order committed 2 s before
# its deadline is found by the next poll (1 s by default).
my $committed = place('shop_b', 'L0', '59 minutes 58 seconds');
my $lag = release_lag('shop_b', 'L0', $committed, 10);
ok(defined $lag && $lag >= 0 && $lag < 1500, "without the trigger, within the poll interval ($lag ms)");

# With polls off, only the trigger wakes the worker: first show that the
# order then waits, then that the trigger releases such orders at once.
$node->safe_psql('postgres',
	'ALTER SYSTEM SET release_expired_orders.worker_poll_interval = 0; SELECT pg_reload_conf()');
sleep 2;
place('shop_b', 'L1', '60 minutes 30 seconds');
is(release_lag('shop_b', 'L1', '-infinity', 4), undef,
	'with polls off and no trigger, an order committed past its deadline waits');
is($node->safe_psql('shop_b', 'SELECT release_expired_orders.add_wake_trigger()'),
	'public.orders: trigger release_expired_orders_wake', 'add_wake_trigger()');
my @lags;
for my $i (1 .. 10)
{
	my $ago = $i % 2 ? '60 minutes 5 seconds' : '59 minutes 59.5 seconds';
	my $at = place('shop_b', "T$i", $ago);
	push @lags, release_lag('shop_b', "T$i", $at, 5) // 99999;
}
my @sorted = sort { $a <=> $b } @lags;
# Polls are off: without the trigger nothing would release them (above).
# The bound is loose for a loaded or assertion-enabled server; the target,
# p99 100 ms, is measured by test/bench/deadline.sh.
ok($sorted[-1] < 1000 && $sorted[0] >= 0, "with the wake trigger, late orders released within 1 s (@lags)");
is($node->safe_psql('shop_b', q{
	SELECT count(*) FROM orders o JOIN release_expired_orders.order_events e ON e.order_id = o.id
	 WHERE o.order_number LIKE 'T%' AND e.outcome = 'released'
	   AND e.created_at < (o.created_at AT TIME ZONE 'UTC') + interval '60 minutes'}),
	'0', 'and none before its deadline');

# Held orders: 150 due orders held by a payment do not hide another that
# falls due.  The worker is off for the database while they are placed and
# locked, then on again.
$node->safe_psql('postgres', 'ALTER DATABASE shop_b SET release_expired_orders.deadline_worker = off');
$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'release_expired_orders worker' AND datname = 'shop_b'})
  or diag('the worker of shop_b did not stop');
is($node->safe_psql('shop_b', q{
	SELECT (SELECT status || ': ' || detail FROM release_expired_orders.health() WHERE "check" = 'worker')
		|| ' / ' || coalesce((SELECT value::text FROM release_expired_orders.metrics WHERE metric = 'worker_running'), 'NULL')}),
	'ok: not served: release_expired_orders.deadline_worker is off for this database / NULL',
	'deadline_worker = off: health() says the database is not served, and the metric is NULL, not 0');
$node->safe_psql('shop_b', q{
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	SELECT gen_random_uuid(), 'H' || n, gen_random_uuid(), '11111111-0000-0000-0000-000000000001',
		   'direct_buy', 1, 10, (clock_timestamp() AT TIME ZONE 'UTC') - interval '61 minutes'
	  FROM generate_series(1, 150) n});
my $payment = $node->background_psql('shop_b');
$payment->query_safe(q{BEGIN; SELECT count(*) FROM (SELECT FROM orders WHERE order_number LIKE 'H%' FOR UPDATE) held});
$node->safe_psql('postgres', 'ALTER DATABASE shop_b RESET release_expired_orders.deadline_worker');
ok(worker_pid('shop_b'), 'deadline_worker on again: the worker serves shop_b');
sleep 3;
place('shop_b', 'N1', '59 minutes 57 seconds');
$lag = release_lag('shop_b', 'N1', '-infinity', 10);
# Hidden behind the held ones, it would wait as long as they are held.
ok(defined $lag && $lag >= 0 && $lag < 1000, "an order falling due behind 150 held ones: $lag ms after its deadline");
is($node->safe_psql('shop_b', q{SELECT count(*) FROM orders WHERE order_number LIKE 'H%' AND status = 'pending'}),
	'150', 'the held orders wait for their payment');
$payment->query_safe('ROLLBACK');
$payment->quit;
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET release_expired_orders.worker_poll_interval; SELECT pg_reload_conf()');

# DROP EXTENSION stops the worker; CREATE EXTENSION brings one back.
$node->safe_psql('shop_b', 'DROP TRIGGER release_expired_orders_wake ON orders; DROP EXTENSION release_expired_orders');
$node->poll_query_until('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'release_expired_orders worker' AND datname = 'shop_b'})
  or diag('the worker of shop_b did not stop');
is(workers(), 'shop_a', 'DROP EXTENSION stops the worker');
$node->safe_psql('shop_b', 'SET client_min_messages = error; CREATE EXTENSION release_expired_orders');
ok(worker_pid('shop_b'), 'CREATE EXTENSION starts one again');

# What the guard is for: any other session connected to a database makes
# ALTER DATABASE RENAME and DROP DATABASE fail, as the worker did before.
my $bystander = IPC::Run::start(
	[ 'psql', '-X', '-q', '-d', $node->connstr('shop_b'), '-c', 'SELECT pg_sleep(60)' ],
	'<', \undef, '>', \my $bystander_out, '2>', \my $bystander_err);
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE datname = 'shop_b' AND query = 'SELECT pg_sleep(60)'})
  or diag('the bystander session never connected');
($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE shop_b RENAME TO shop_x');
like($err, qr/is being accessed by other users/, 'a connected session blocks RENAME');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE shop_b');
like($err, qr/is being accessed by other users/, 'and DROP DATABASE');
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	WHERE datname = 'shop_b' AND query = 'SELECT pg_sleep(60)'});
$bystander->finish;

# ALTER DATABASE RENAME and DROP DATABASE while the worker sleeps.
my $t0 = [Time::HiRes::gettimeofday()];
$node->safe_psql('postgres', 'ALTER DATABASE shop_b RENAME TO shop_c');
ok(Time::HiRes::tv_interval($t0) < 3, 'ALTER DATABASE RENAME of a served database is not blocked');
ok(worker_pid('shop_c'), 'the renamed database is served again');
$t0 = [Time::HiRes::gettimeofday()];
$node->safe_psql('postgres', 'DROP DATABASE shop_c');
ok(Time::HiRes::tv_interval($t0) < 3, 'DROP DATABASE of a served database is not blocked');

# ... and while it is in the middle of a run (a trigger of the application
# sleeps in it).
$node->safe_psql('shop_a', q{
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN PERFORM pg_sleep(60); RETURN NEW; END $$;
	CREATE TRIGGER slow BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION slow();});
place('shop_a', 'S1', '31 minutes');
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'release_expired_orders worker' AND datname = 'shop_a' AND wait_event = 'PgSleep'})
  or diag('the worker never reached the sleeping trigger');
$t0 = [Time::HiRes::gettimeofday()];
$node->safe_psql('postgres', 'ALTER DATABASE shop_a RENAME TO shop_d');
ok(Time::HiRes::tv_interval($t0) < 3, 'RENAME while the worker is in a run: not blocked');
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pg_stat_activity
	WHERE backend_type = 'release_expired_orders worker' AND datname = 'shop_d' AND wait_event = 'PgSleep'})
  or diag('the worker of shop_d never reached the sleeping trigger');
$t0 = [Time::HiRes::gettimeofday()];
$node->safe_psql('postgres', 'DROP DATABASE shop_d');
ok(Time::HiRes::tv_interval($t0) < 3, 'DROP DATABASE while the worker is in a run: not blocked');
is(workers(), '', 'no worker left');

# The cap: max_workers = 1 and two databases; health() is critical in the
# one left without a worker, and says why.
$node->append_conf('postgresql.conf', 'release_expired_orders.max_workers = 1');
$node->restart;
make_shop('shop_e');
make_shop('shop_f');
sleep 3;
is(workers(), 'shop_e', 'max_workers = 1: one worker');
is($node->safe_psql('shop_f', q{SELECT status FROM release_expired_orders.health() WHERE "check" = 'worker'}),
	'critical', 'health() is critical in the database left without one');
like($node->safe_psql('shop_f', q{SELECT detail FROM release_expired_orders.health() WHERE "check" = 'worker'}),
	qr/no deadline worker runs for this database: .*1 database waits for one; release_expired_orders.max_workers = 1 are in use/,
	'and says why');
is($node->safe_psql('shop_e', q{SELECT status FROM release_expired_orders.health() WHERE "check" = 'worker'}),
	'ok', 'and ok in the served one');
$node->safe_psql('shop_e', 'DROP EXTENSION release_expired_orders');
ok(worker_pid('shop_f'), 'a freed worker serves the waiting database');

# A database whose extension objects are still 1.0's, under this library
# (a package replaced it): no worker, as 1.0 had none, and the log says
# why; ALTER EXTENSION UPDATE there starts one at once.
$node->safe_psql('shop_f', 'DROP EXTENSION release_expired_orders');
$node->safe_psql('postgres', 'CREATE DATABASE shop_old');
$node->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('shop_old'),
		'-f', "$FindBin::Bin/../fixtures/app_schema.sql"
	],
	'application tables in shop_old');
$node->safe_psql('shop_old',
	q{SET client_min_messages = error; CREATE EXTENSION release_expired_orders VERSION '1.0'});
$node->wait_for_log(qr/database "shop_old" has the extension's version 1\.0, which has no deadline worker/);
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE backend_type = 'release_expired_orders worker'}),
	'no worker for 1.0 objects');
sleep 1;
is(workers(), '', 'and none started again');
$node->safe_psql('shop_old', 'ALTER EXTENSION release_expired_orders UPDATE');
ok(worker_pid('shop_old'), 'ALTER EXTENSION UPDATE starts its worker');

unlike(slurp_file($node->logfile), qr/TRAP|terminated by signal|still active|leak/,
	'no assertion, crash or leak in the server log');
$node->stop;
done_testing();
