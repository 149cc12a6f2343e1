# A pg_dump / pg_restore round trip: every pg_cron job of the
# database comes back exactly (schedule, command, active flag, this job's
# customised schedule included), so do the run and audit history with
# their identity sequences, and restore_order() can undo a release made
# before the dump.  Custom format with pg_restore (plain, --exit-on-error,
# --single-transaction) and plain format with psql (plain, ON_ERROR_STOP,
# --single-transaction), each without an error.
#
# The jobs' schedules never fire during the test (29 February, 1 January),
# so that pg_cron changes nothing while the histories are compared.
use strict;
use warnings;

use FindBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $db = 'shop';

sub cron_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = '$db'
cron.host = '@{[ $node->host ]}'
});
	$node->start;
	return $node;
}

my $src = cron_node('source');
my $dst = cron_node('target');

# The source: the application with jobs of its own, one of them inactive,
# the extension's job on a customised schedule, and a run that released
# orders.
$src->safe_psql('postgres', "CREATE DATABASE $db");
$src->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $src->connstr($db),
		'-f', "$FindBin::Bin/../fixtures/app_schema.sql"
	],
	'application tables created');
$src->safe_psql(
	$db, q{
	CREATE EXTENSION pg_cron;
	SELECT cron.schedule('app-yearly-report', '0 0 1 1 *', 'SELECT 1');
	SELECT cron.schedule('app-leap-vacuum', '30 2 29 2 *', 'VACUUM public.orders');
	SELECT cron.alter_job(jobid, active => false) FROM cron.job WHERE jobname = 'app-leap-vacuum';
	CREATE EXTENSION release_expired_orders;
	SELECT release_expired_orders.schedule('15 3 29 2 *', 20, 500);
	INSERT INTO products (id, name, stock) VALUES ('11111111-0000-0000-0000-000000000001', 'p1', 0);
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	SELECT ('33333333-0000-0000-0000-00000000000' || n)::uuid, 'O' || n,
		'44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001',
		'direct_buy', 1, 10.00, (now() AT TIME ZONE 'UTC') - interval '2 hours'
	  FROM generate_series(1, 3) n;
	CALL release_expired_orders();
});

my %query = (
	jobs => q{SELECT string_agg(concat_ws(' | ', jobid, jobname, schedule, command, database,
			username, active), E'\n' ORDER BY jobid) FROM cron.job},
	runs => q{SELECT string_agg(concat_ws(' | ', id, started_at, outcome, found, released), E'\n'
			ORDER BY id) FROM release_expired_orders.runs},
	events => q{SELECT string_agg(concat_ws(' | ', id, run_id, order_number, outcome, stock_delta),
			E'\n' ORDER BY id) FROM release_expired_orders.order_events},
	orders => q{SELECT string_agg(order_number || ' ' || status, ', ' ORDER BY order_number)
			FROM orders});
my %before = map { $_ => $src->safe_psql($db, $query{$_}) } keys %query;
like($before{jobs}, qr/15 3 29 2 \* \| CALL public\.release_expired_orders\(timeout_minutes => 20, batch_limit => 500\) \| $db \| \S+ \| t$/m,
	'the source has the customised job');
like($before{jobs}, qr/app-leap-vacuum .* \| f$/m, 'and an inactive job of the application');
like($before{events}, qr/O3 \| released/, 'and released orders in the audit');

my $dumpdir = PostgreSQL::Test::Utils::tempdir;
$src->command_ok([ 'pg_dump', '-Fc', '-f', "$dumpdir/shop.dump", '-d', $src->connstr($db) ],
	'custom dump');
$src->command_ok([ 'pg_dump', '-Fp', '-f', "$dumpdir/shop.sql", '-d', $src->connstr($db) ],
	'plain dump');

my @restores = (
	[ 'pg_restore', [ 'pg_restore', '-d', 'DB', "$dumpdir/shop.dump" ] ],
	[ 'pg_restore --exit-on-error',
		[ 'pg_restore', '--exit-on-error', '-d', 'DB', "$dumpdir/shop.dump" ] ],
	[ 'pg_restore --single-transaction',
		[ 'pg_restore', '--single-transaction', '-d', 'DB', "$dumpdir/shop.dump" ] ],
	[ 'psql', [ 'psql', '-X', '-q', '-d', 'DB', '-f', "$dumpdir/shop.sql" ] ],
	[ 'psql ON_ERROR_STOP',
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'DB', '-f', "$dumpdir/shop.sql" ] ],
	[ 'psql --single-transaction',
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction',
		  '-d', 'DB', '-f', "$dumpdir/shop.sql" ] ]);

foreach my $r (@restores)
{
	my ($name, $cmd) = @$r;
	# pg_cron's launcher is connected to the database: drop it by force.
	$dst->safe_psql('postgres', "DROP DATABASE IF EXISTS $db WITH (FORCE)");
	$dst->safe_psql('postgres', "CREATE DATABASE $db");
	my @cmd = map { $_ eq 'DB' ? $dst->connstr($db) : $_ } @$cmd;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(\@cmd, '>', \$stdout, '2>', \$stderr);
	ok($ok, "$name: exits with 0");
	unlike($stderr, qr/error/i, "$name: no error");
	# (pg_restore does not show the server's warnings; psql does.)
	like($stderr, qr/WARNING:  release_expired_orders is not scheduled: this looks like a restore/,
		"$name: CREATE EXTENSION saw a restore and scheduled nothing")
	  if $name =~ /^psql/;
	foreach my $what (sort keys %query)
	{
		is($dst->safe_psql($db, $query{$what}), $before{$what}, "$name: $what as in the source");
	}
	# The history keeps working: undo of a release made before the dump,
	# and a new run numbered after the restored ones, once the restoring
	# session has gone (until then nothing is released: see 031).
	ok( $dst->poll_query_until(
			$db, 'SELECT release_expired_orders.restoring_backend() IS NULL'),
		"$name: the restore is over once its session has gone");
	is( $dst->safe_psql(
			$db, q{
		SELECT status FROM release_expired_orders.restore_order('33333333-0000-0000-0000-000000000001')}),
		'pending', "$name: restore_order() undoes a release made before the dump");
	$dst->safe_psql($db, 'CALL release_expired_orders(batch_limit => 1)');
	is( $dst->safe_psql(
			$db, q{
		SELECT string_agg(outcome || ' ' || released, ', ' ORDER BY id)
		  FROM release_expired_orders.runs WHERE id > (SELECT min(id) FROM release_expired_orders.runs)}),
		'success 1', "$name: a new run after the restore is recorded");
	is( $dst->safe_psql(
			$db, q{
		SELECT status FROM release_expired_orders.health() WHERE "check" = 'cron_job'}),
		'ok', "$name: health() finds the restored job");
}

$src->stop;
$dst->stop;
done_testing();
