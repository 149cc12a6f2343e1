#!/usr/bin/env bash
# Invariant soak of release_expired_orders (README, Releasing an order; Faults): purchases, payments
# and several concurrent runs of the job hammer the same products, rounds
# and orders for a fixed time; then every product, round and order is
# checked.  Orders the job fails on (lock timeouts) must stay pending and
# be released by a later run; orders the application refuses to cancel
# (a trigger raising or vetoing, a deferred constraint) stay pending and
# never keep the others from being released.
#
#   pg_virtualenv -o shared_preload_libraries=pg_cron test/soak/run.sh [options]
#
# Runs against the cluster named by the PG* environment variables, as a user
# that may create databases.  Creates its own database and drops it at the
# end (--keep keeps it).
#
# Options:
#   --seconds N    how long the workload runs (default 60)
#   --smoke        20 seconds; for CI
#   --clients N    purchase/payment clients (default 4)
#   --jobs N       concurrent job clients (default 2)
#   --products N   products, each with one lottery round (default 10)
#   --keep         keep the database for inspection
#
# Prints what it checked and exits non-zero on any violation, on a
# deadlock or other error in any client, or when the workload did not
# produce both paid and expired orders.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
seconds=60
clients=4
jobs=2
products=10
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
		--seconds) seconds=$2; shift 2 ;;
		--smoke) seconds=20; shift ;;
		--clients) clients=$2; shift 2 ;;
		--jobs) jobs=$2; shift 2 ;;
		--products) products=$2; shift 2 ;;
		--keep) keep=1; shift ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done

db=reo_soak_$$
psql=(psql -X -q -v ON_ERROR_STOP=1 -d "$db")
log=$(mktemp -d "${TMPDIR:-/tmp}/reo-soak.XXXXXX")
cleanup() {
	if [ $keep = 0 ]; then
		dropdb --if-exists "$db" || true
	else
		echo "soak: database $db kept"
	fi
	rm -rf "$log"
}
trap cleanup EXIT

echo "soak: database $db, $seconds s, $clients purchase/payment clients, $jobs job clients, $products products"
createdb "$db"
"${psql[@]}" -f "$here/../fixtures/app_schema.sql"
"${psql[@]}" <<SQL
SET client_min_messages = error;
CREATE EXTENSION release_expired_orders;
-- Direct buys have a payment window of 29 minutes (README, Payment windows), lottery wins
-- the 30 of the CALL; the index health() recommends with windows.
INSERT INTO release_expired_orders.payment_windows VALUES ('direct_buy', NULL, 29);
CREATE INDEX orders_pending_idx ON orders (type, created_at, id)
	WHERE status = 'pending' AND payment_status = 'pending' AND fulfillment_status = 'pending';
CREATE SEQUENCE soak_order_number;
-- Orders the application refuses to cancel (notes set by place.sql, one in
-- 100 each): a trigger that raises, one that vetoes (returns NULL), and a
-- deferred constraint that fails at commit.  Payments still go through.
CREATE FUNCTION soak_refuse() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF NEW.status = 'expired' AND OLD.notes = 'soak-poison' THEN
		RAISE EXCEPTION 'order % may not be cancelled', OLD.order_number;
	END IF;
	IF NEW.status = 'expired' AND OLD.notes = 'soak-veto' THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END \$\$;
CREATE TRIGGER soak_refuse BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION soak_refuse();
CREATE FUNCTION soak_deferred() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
	IF NEW.status = 'expired' AND NEW.notes LIKE 'soak-deferred%' THEN
		RAISE EXCEPTION 'order % is held by a deferred rule', NEW.order_number
			USING ERRCODE = 'check_violation';
	END IF;
	RETURN NULL;
END \$\$;
CREATE CONSTRAINT TRIGGER soak_deferred AFTER UPDATE ON orders DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION soak_deferred();
CREATE TABLE soak_payments (order_id uuid, paid boolean NOT NULL);
-- Products and their rounds, with the stock and shares they started with.
CREATE TABLE soak_products (n integer PRIMARY KEY, product_id uuid NOT NULL,
	round_id uuid NOT NULL, initial_stock integer NOT NULL, initial_sold integer NOT NULL);
INSERT INTO soak_products
SELECT n, gen_random_uuid(), gen_random_uuid(), 1000000, 0
  FROM generate_series(1, $products) n;
INSERT INTO products (id, name, price, stock, status)
SELECT product_id, 'soak ' || n, 10.00, initial_stock, 'active' FROM soak_products;
INSERT INTO lottery_rounds (id, product_id, round_number, total_shares, sold_shares, status)
SELECT round_id, product_id, 1, 100000000, initial_sold, 'active' FROM soak_products;
SQL

# Purchases and payments in one pgbench, the job in another, a client that
# holds product rows longer than the job's lock_timeout in a third, all at once.
# A deadlock or any other error aborts a client and fails the soak.
status=0
pgbench -n -M extended -c "$clients" -j "$clients" -T "$seconds" -D products="$products" \
	-f "$here/place.sql@3" -f "$here/pay.sql@1" "$db" >"$log/app.out" 2>"$log/app.err" &
app=$!
# The job's role defaults to SERIALIZABLE: the job runs at READ COMMITTED anyway.
PGOPTIONS="${PGOPTIONS:-} -c release_expired_orders.chunk_size=25 -c release_expired_orders.lock_timeout=100ms -c default_transaction_isolation=serializable" \
	pgbench -n -M simple -c "$jobs" -j "$jobs" -T "$seconds" \
	-f "$here/job.sql" "$db" >"$log/job.out" 2>"$log/job.err" &
job=$!
pgbench -n -M simple -c 1 -T "$seconds" -D products="$products" \
	-f "$here/hold.sql" "$db" >"$log/hold.out" 2>"$log/hold.err" &
hold=$!
wait $app || { echo "soak: the purchase/payment clients failed:"; cat "$log/app.err"; status=1; }
wait $job || { echo "soak: the job clients failed:"; cat "$log/job.err"; status=1; }
wait $hold || { echo "soak: the lock holder failed:"; cat "$log/hold.err"; status=1; }
for f in app job hold; do
	if grep -qiE 'error|abort|deadlock' "$log/$f.err"; then
		echo "soak: errors in the $f clients:"; grep -iE 'error|abort|deadlock' "$log/$f.err" | sort | uniq -c | head -20
		status=1
	fi
	grep -E '^(number of transactions actually processed|tps)' "$log/$f.out" | sed "s/^/soak: $f: /"
done

# One last run, so that the check also covers a quiet database: every
# order the application lets go is released, whatever is ahead of it.
"${psql[@]}" -c 'CALL release_expired_orders(30, 1000000)' >/dev/null

"${psql[@]}" -A -F ' | ' -t <<'SQL'
SELECT 'orders placed ' || count(*)
	|| ', paid ' || count(*) FILTER (WHERE payment_status = 'paid')
	|| ', expired ' || count(*) FILTER (WHERE status = 'expired')
	|| ', still pending ' || count(*) FILTER (WHERE status = 'pending' AND payment_status = 'pending')
  FROM orders;
SELECT 'payments ' || count(*) || ', too late (0 rows) ' || count(*) FILTER (WHERE NOT paid)
  FROM soak_payments WHERE order_id <> '00000000-0000-0000-0000-000000000000';
SELECT 'runs ' || sum(n) || ' (' || string_agg(outcome || ' ' || n, ', ') || ')'
  FROM (SELECT outcome, count(*) AS n FROM release_expired_orders.runs GROUP BY 1 ORDER BY 1) r;
SELECT 'order events: ' || string_agg(outcome || ' ' || n, ', ')
  FROM (SELECT outcome || coalesce(' ' || sqlstate, '') AS outcome, count(*) AS n
          FROM release_expired_orders.order_events GROUP BY 1 ORDER BY 1) e;
SQL

echo "soak: invariant | checked | violations"
"${psql[@]}" -A -F ' | ' -t -f "$here/check.sql" | tee "$log/check.out" | sed 's/^/soak: /'
violations=$(awk -F ' [|] ' '{ s += $3 } END { print s + 0 }' "$log/check.out")
activity=$("${psql[@]}" -A -t -c "SELECT count(*) FILTER (WHERE payment_status = 'paid') > 0
	AND count(*) FILTER (WHERE status = 'expired') > 0 FROM orders")
if [ "$violations" != 0 ]; then
	echo "soak: FAILED: $violations violations"; status=1
fi
if [ "$activity" != t ]; then
	echo "soak: FAILED: the workload produced no paid or no expired orders"; status=1
fi
if [ $status = 0 ]; then echo "soak: ok"; fi
exit $status
