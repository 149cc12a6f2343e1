# Shared by the TAP tests: the application's tables of
# test/fixtures/app_schema.sql, created in a node's postgres database.
package AppFixture;

use strict;
use warnings;

use Exporter 'import';
use FindBin;

our @EXPORT = qw(create_app_tables);

# create_app_tables($node [, app_ts => 'timestamptz']): one passing test.
sub create_app_tables
{
	my ($node, %opt) = @_;
	my @vars = $opt{app_ts} ? ('-v', "app_ts=$opt{app_ts}") : ();

	$node->command_ok(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', @vars,
			'-d', $node->connstr('postgres'),
			'-f', "$FindBin::Bin/../fixtures/app_schema.sql"
		],
		'application tables created');
	return;
}

1;
