# No release happens in a database while a restore into it is in progress,
# and the ids the job writes never collide with restored ones.  The dump
# has due orders, and its tables' data comes in name order: orders, then a
# big orders_archive (a slow load), then products, then the extension's
# history.  While it is restored into the database the deadline worker
# serves, a CALL loop runs there too.  Were either to release mid-restore,
# it would find no product (audited product_not_found, stock never given
# back) and its run row would collide with the dumped run ids, so that the
# history would fail to load.  Restored with psql (plain format, also
# --single-transaction, and a dump made with --enable-row-security, which
# leaves row_security on) and pg_restore (custom format, also -j 2 and
# --single-transaction): afterwards the history is the source's, and the
# due orders are released with their stock.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;

my $db = 'shop';
my $node = PostgreSQL::Test::Cluster->new('restore_guard');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'release_expired_orders'
release_expired_orders.worker_database = '$db'
});
$node->start;

# The source: one release made (run 1), two orders due and not released.
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->command_ok(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('src'),
		'-f', "$FindBin::Bin/../fixtures/app_schema.sql"
	],
	'application tables created');
$node->safe_psql(
	'src', q{
	SET client_min_messages = error;
	CREATE EXTENSION release_expired_orders;
	CREATE TABLE orders_archive (id bigint PRIMARY KEY, note text);
	INSERT INTO orders_archive SELECT n, repeat('x', 40) FROM generate_series(1, 1000000) n;
	INSERT INTO products (id, name, stock) VALUES ('11111111-0000-0000-0000-000000000001', 'p1', 0);
	INSERT INTO orders (id, order_number, user_id, product_id, type, quantity, total_amount, created_at)
	SELECT ('33333333-0000-0000-0000-00000000000' || n)::uuid, 'O' || n,
		'44444444-0000-0000-0000-000000000001', '11111111-0000-0000-0000-000000000001',
		'direct_buy', 1, 10.00, (now() AT TIME ZONE 'UTC') - interval '2 hours' + n * interval '1 minute'
	  FROM generate_series(1, 3) n;
	CALL release_expired_orders(batch_limit => 1);
});

my $history = q{SELECT string_agg(concat_ws(' | ', r.id, r.started_at, r.outcome, r.released), E'\n'
		ORDER BY r.id) FROM release_expired_orders.runs r};
my $source_history = $node->safe_psql('src', $history);
# (runs after the restore are numbered after the restored ones)
$history .= ' WHERE r.id <= ' . $node->safe_psql('src', 'SELECT max(id) FROM release_expired_orders.runs');
is($node->safe_psql('src', 'SELECT string_agg(order_number || \' \' || status, \', \' ORDER BY order_number) FROM orders'),
	'O1 expired, O2 pending, O3 pending', 'the source has a release and two due orders');

my $dumpdir = PostgreSQL::Test::Utils::tempdir;
$node->command_ok([ 'pg_dump', '-Fc', '-f', "$dumpdir/shop.dump", '-d', $node->connstr('src') ],
	'custom dump');
$node->command_ok([ 'pg_dump', '-Fp', '--enable-row-security', '-f', "$dumpdir/shop_rls.sql", '-d', $node->connstr('src') ],
	'a plain dump that keeps row_security on');
$node->command_ok([ 'pg_dump', '-Fp', '-f', "$dumpdir/shop.sql", '-d', $node->connstr('src') ],
	'plain dump');

# A CALL every 20 ms into the target, whatever it answers.
sub start_call_loop
{
	my $connstr = $node->connstr($db);
	my $script = qq{while :; do psql -X -q -d "$connstr" -c 'CALL release_expired_orders()' >/dev/null 2>&1; sleep 0.02; done};
	return IPC::Run::start([ 'bash', '-c', $script ]);
}

my @restores = (
	[ 'psql', [ 'psql', '-X', '-q', '-d', 'DB', '-f', "$dumpdir/shop.sql" ] ],
	[ 'psql, dump made with --enable-row-security',
		[ 'psql', '-X', '-q', '-d', 'DB', '-f', "$dumpdir/shop_rls.sql" ] ],
	[ 'psql --single-transaction',
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '-d', 'DB', '-f', "$dumpdir/shop.sql" ] ],
	[ 'pg_restore', [ 'pg_restore', '-d', 'DB', "$dumpdir/shop.dump" ] ],
	[ 'pg_restore -j 2', [ 'pg_restore', '-j', '2', '-d', 'DB', "$dumpdir/shop.dump" ] ],
	[ 'pg_restore --single-transaction',
		[ 'pg_restore', '--single-transaction', '--exit-on-error', '-d', 'DB', "$dumpdir/shop.dump" ] ]);

foreach my $r (@restores)
{
	my ($name, $cmd) = @$r;
	$node->safe_psql('postgres', "DROP DATABASE IF EXISTS $db WITH (FORCE)");
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	my $loop = start_call_loop();
	my @cmd = map { $_ eq 'DB' ? $node->connstr($db) : $_ } @$cmd;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(\@cmd, '>', \$stdout, '2>', \$stderr);
	ok($ok, "$name: exits with 0");
	unlike($stderr, qr/ERROR/, "$name: no error");
	is($node->safe_psql($db, $history), $source_history, "$name: the run history is the source's");

	# Once the restoring session is gone, the due orders are released, with
	# their stock: by the worker or by the CALL loop.
	ok( $node->poll_query_until(
			$db, q{SELECT count(*) = 3 FROM orders WHERE status = 'expired'}),
		"$name: the due orders are released after the restore");
	$loop->kill_kill;
	is( $node->safe_psql(
			$db, q{
		SELECT string_agg(DISTINCT e.outcome, ', ') FROM release_expired_orders.order_events e}),
		'released', "$name: every order released, none without its product");
	is($node->safe_psql($db, 'SELECT stock FROM products'), '3', "$name: and their stock given back");
}

$node->stop;
done_testing();
