# DROP EXTENSION and ALTER EXTENSION ... UPDATE never fail because of the
# deadline worker (README, Deadline worker).  In CI, DROP EXTENSION once
# failed with "deadlock detected" against a worker "looking for the next
# deadline": the worker held a lock on one of the extension's tables (its
# look reads payment_windows, then order_events) and waited for another
# that the DROP had already taken.  Here the order is forced: a session
# takes order_events, the worker blocks on it while holding
# payment_windows, and the same session then drops the extension, which
# needs payment_windows.  The command's session stops the worker first, as
# for a database command (ddl_guard.c), so that the user's command is never
# the one the deadlock detector cancels.  An unprivileged role's DROP
# EXTENSION, which fails anyway, does not stop the worker.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep gettimeofday tv_interval);
use FindBin;

my $node = PostgreSQL::Test::Cluster->new('extension_commands');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'release_expired_orders'
release_expired_orders.worker_poll_interval = 200
release_expired_orders.max_workers = 10
max_worker_processes = 16
max_connections = 60
});
$node->start;

sub poll
{
	my ($db, $query, $secs) = @_;
	my $t0 = [gettimeofday()];
	while (tv_interval($t0) < $secs)
	{
		my ($ret, $out) = $node->psql($db, $query);
		return 1 if $ret == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

sub worker_pid
{
	my ($db) = @_;
	poll('postgres', qq{SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'release_expired_orders worker' AND datname = '$db'}, 15)
	  or return undef;
	return $node->safe_psql('postgres', qq{SELECT pid FROM pg_stat_activity
		WHERE backend_type = 'release_expired_orders worker' AND datname = '$db'});
}

sub make_shop
{
	my ($db, $version) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->command_ok(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr($db),
			'-f', "$FindBin::Bin/../fixtures/app_schema.sql"
		],
		"application tables in $db");
	$node->safe_psql($db, "SET client_min_messages = error; CREATE EXTENSION release_expired_orders VERSION '$version'");
	return;
}

# Holds order_events in a transaction of its own session until the worker
# of $db waits for it, then runs $command there; returns the command's
# error output ('' when it succeeded) and rolls back or commits.
sub with_worker_blocked
{
	my ($db, $command, $end) = @_;
	my $session = $node->background_psql($db, on_error_stop => 0);
	$session->query_safe('BEGIN; LOCK TABLE release_expired_orders.order_events IN ACCESS EXCLUSIVE MODE');
	my $blocked = poll('postgres', qq{SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'release_expired_orders worker' AND datname = '$db'
		  AND wait_event_type = 'Lock'}, 15);
	ok($blocked, "$db: the worker waits for order_events, holding payment_windows");
	# past the worker's own deadlock check: only the command's would find the cycle
	sleep 2;
	my ($out, $ret) = $session->query($command);
	my $err = $session->{stderr};
	$session->{stderr} = '';
	$session->query($end);
	$session->quit;
	return $err // '';
}

# DROP EXTENSION.
make_shop('shop_drop', '1.2');
ok(worker_pid('shop_drop'), 'a worker serves shop_drop');
my $err = with_worker_blocked('shop_drop', 'DROP EXTENSION release_expired_orders', 'COMMIT');
unlike($err, qr/deadlock detected/, 'DROP EXTENSION with the worker in the middle of its look: no deadlock');
is($node->safe_psql('shop_drop', q{SELECT count(*) FROM pg_extension WHERE extname = 'release_expired_orders'}),
	'0', 'the extension is dropped');
ok(poll('postgres', q{SELECT count(*) = 0 FROM pg_stat_activity
	WHERE backend_type = 'release_expired_orders worker' AND datname = 'shop_drop'}, 10),
	'and no worker serves the database');
$node->safe_psql('shop_drop', 'SET client_min_messages = error; CREATE EXTENSION IF NOT EXISTS release_expired_orders');
ok(worker_pid('shop_drop'), 'CREATE EXTENSION again: a worker serves it again');

# ALTER EXTENSION ... UPDATE, from 1.1, whose worker serves it too.
make_shop('shop_update', '1.1');
ok(worker_pid('shop_update'), 'a worker serves shop_update on 1.1');
$err = with_worker_blocked('shop_update', 'ALTER EXTENSION release_expired_orders UPDATE', 'COMMIT');
unlike($err, qr/deadlock detected|ERROR/, 'ALTER EXTENSION UPDATE with the worker in the middle of its look: no error');
is($node->safe_psql('shop_update', q{SELECT extversion FROM pg_extension WHERE extname = 'release_expired_orders'}),
	'1.2', 'the extension is updated');
ok(worker_pid('shop_update'), 'and a worker serves the database');

# In a transaction, the worker stays away until it ends: a worker started
# after the DROP statement waited for the dropped tables and, after the
# COMMIT, failed on them (review of this change, finding 03).
make_shop('shop_xact', '1.2');
ok(worker_pid('shop_xact'), 'a worker serves shop_xact');
$node->safe_psql('shop_xact', q{
	BEGIN;
	DROP EXTENSION release_expired_orders;
	SELECT pg_sleep(3);
	SET client_min_messages = error;
	CREATE EXTENSION release_expired_orders;
	COMMIT;});
ok(worker_pid('shop_xact'), 'DROP and CREATE EXTENSION in one transaction: a worker serves the database');
sleep 2;
is($node->safe_psql('shop_xact', q{SELECT coalesce(last_error, '') FROM release_expired_orders.worker_status()}),
	'', 'and it has no error (no table of the dropped extension was waited for)');

# Other commands drop the extension too: DROP SCHEMA public CASCADE (its
# schema) and DROP OWNED BY its owner.  The worker's look waits for a lock
# no longer than 100 ms, so that it lets go of what it holds before such a
# command's deadlock check (review of this change, finding 01).
make_shop('shop_schema', '1.2');
ok(worker_pid('shop_schema'), 'a worker serves shop_schema');
$err = with_worker_blocked('shop_schema', 'DROP SCHEMA public CASCADE', 'COMMIT');
unlike($err, qr/deadlock detected|ERROR/, 'DROP SCHEMA public CASCADE with the worker in the middle of its look: no error');
is($node->safe_psql('shop_schema', q{SELECT count(*) FROM pg_extension WHERE extname = 'release_expired_orders'}),
	'0', 'the extension is dropped with the schema');
$node->safe_psql('postgres', 'CREATE ROLE admin2 SUPERUSER LOGIN');
$node->safe_psql('postgres', 'CREATE DATABASE shop_owned');
$node->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('shop_owned'),
		'-f', "$FindBin::Bin/../fixtures/app_schema.sql"
	],
	'application tables in shop_owned');
$node->safe_psql('shop_owned', 'SET ROLE admin2; SET client_min_messages = error; CREATE EXTENSION release_expired_orders');
ok(worker_pid('shop_owned'), 'a worker serves shop_owned, whose extension admin2 owns');
$err = with_worker_blocked('shop_owned', 'DROP OWNED BY admin2 CASCADE', 'COMMIT');
unlike($err, qr/deadlock detected|ERROR/, 'DROP OWNED BY its owner with the worker in the middle of its look: no error');
is($node->safe_psql('shop_owned', q{SELECT count(*) FROM pg_extension WHERE extname = 'release_expired_orders'}),
	'0', 'the extension is dropped with what its owner owns');

# With a server deadlock_timeout shorter than the look's 100 ms, the look
# gives up within half of it (review, third round, finding 02).
$node->safe_psql('postgres', q{ALTER SYSTEM SET deadlock_timeout = '20ms'; SELECT pg_reload_conf()});
make_shop('shop_short', '1.2');
ok(worker_pid('shop_short'), 'a worker serves shop_short');
$err = with_worker_blocked('shop_short', 'DROP SCHEMA public CASCADE', 'COMMIT');
unlike($err, qr/deadlock detected|ERROR/, 'deadlock_timeout = 20ms: DROP SCHEMA public CASCADE is not the victim either');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET deadlock_timeout; SELECT pg_reload_conf()});

# A lock held for long is not a failure of the worker: it says so once in
# the log and looks again every second, without an error in
# worker_status() (review, third round, finding 01: an error and its
# statement logged at every deadlock_timeout, "tries again in 60000 ms").
make_shop('shop_busy', '1.2');
ok(worker_pid('shop_busy'), 'a worker serves shop_busy');
my $log_at = -s $node->logfile;
my $holder = $node->background_psql('shop_busy');
$holder->query_safe('BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE');
sleep 6;
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'release_expired_orders worker' AND datname = 'shop_busy'}), '1',
	'while orders is locked for 6 s, the worker stays');
my $log = substr(slurp_file($node->logfile), $log_at);
my @waits = ($log =~ /shop_busy\" waits for a lock another session holds/g);
my @fails = ($log =~ /shop_busy\" tries again in/g);
ok(@waits == 1 && @fails == 0, 'it says once that it waits for a lock (' . scalar(@waits) . ' times), and no failure (' . scalar(@fails) . ')');
$holder->query_safe('COMMIT');
$holder->quit;
is($node->safe_psql('shop_busy', q{SELECT coalesce(last_error, '') FROM release_expired_orders.worker_status()}),
	'', 'and worker_status() has no error');

# Many DROP or ALTER EXTENSION commands in one transaction keep one pause,
# not one each: the others' database commands still find room (review,
# third round, finding 03: 32 of them filled the table, and another
# database's DROP DATABASE failed while its worker was connected).
make_shop('shop_victim', '1.2');
ok(worker_pid('shop_victim'), 'a worker serves shop_victim');
my $alter = $node->background_psql('shop_update');
$alter->query_safe('SET client_min_messages = warning; BEGIN');
$alter->query_safe('ALTER EXTENSION release_expired_orders UPDATE') for 1 .. 40;
my ($dret, $dout, $derr) = $node->psql('postgres', 'DROP DATABASE shop_victim');
is($dret, 0, "40 ALTER EXTENSION in one open transaction: another database's DROP DATABASE works ($derr)");
$alter->query_safe('COMMIT');
$alter->quit;

# The pause table holds 32 commands at once: one more is refused with an
# error that says why, not left to fail later on a worker that came back.
my @holders;
for my $i (1 .. 32)
{
	my $db = "shop_full$i";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, 'SET client_min_messages = error; CREATE EXTENSION release_expired_orders');
	my $h = $node->background_psql($db);
	$h->query_safe('SET client_min_messages = warning; BEGIN; ALTER EXTENSION release_expired_orders UPDATE');
	push @holders, $h;
}
make_shop('shop_33', '1.2');
($dret, $dout, $derr) = $node->psql('postgres', 'DROP DATABASE shop_33');
like($derr, qr/cannot stop the deadline worker of this database: 32 database commands keep workers stopped already/,
	'with 32 ALTER EXTENSION transactions open, a 33rd database command is refused with the reason');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'shop_33'}), '1',
	'and changes nothing');
$_->query_safe('COMMIT') for @holders;
$_->quit for @holders;
($dret, $dout, $derr) = $node->psql('postgres', 'DROP DATABASE shop_33');
is($dret, 0, "once they have ended, the command works ($derr)");

# A role that may not drop the extension does not stop the worker.
$node->safe_psql('postgres', 'CREATE ROLE mallory LOGIN');
my $pid = worker_pid('shop_update');
my ($ret, $out, $stderr) = $node->psql('shop_update', 'SET ROLE mallory; DROP EXTENSION release_expired_orders');
like($stderr, qr/must be owner of extension/, "an unprivileged role's DROP EXTENSION fails");
sleep 1;
is(worker_pid('shop_update'), $pid, 'and the worker is the same one');

done_testing();
