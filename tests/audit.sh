#!/bin/sh
# audit.sh: the views of sql/audit.sql and the README's examples of them, on the journal of a small real run and on one made stuck on purpose.
#
# Runs tests/pipeline.sh (300 orders over 20 skus, short of stock, 20% failed
# payments) against the servers of tests/servers.sh, then: every README
# example runs as written (its tmp/demo/journal.db swapped for this run's
# journal) and prints rows; the timelines of confirmed, cancelled and
# rejected orders read in saga order; stock_ledger agrees with orderctl
# stock show --json sku by sku; stuck_sagas and unpublished_outbox are empty;
# reading the views leaves the journal file byte for byte as it was.  Then
# a copy of the journal is made stuck (a step without a result, an order
# past its deadline, waiting and parked events, an unpublished output) and
# the views must show exactly that.  Last, orderd runs on a copy of the
# journal with half its rows aged past [retention]: exactly those go.
# TAP output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
dir=$(mktemp -d "${TMPDIR:-/tmp}/audit.XXXXXX")
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
note() { echo "# $*"; }
# The views, read as the README says: the shell's .read of sql/audit.sql.
v() { (cd "$top" && sqlite3 -cmd '.read sql/audit.sql' "$1" "$2"); }

t0=$(date +%s)
if ! "$top/tests/pipeline.sh" "$dir" 300 20 40 0.2 0.05 3 3 >"$dir/out" 2>"$dir/err"; then
	echo "Bail out! tests/pipeline.sh failed: $(tail -n 5 "$dir/err" | tr '\n' ' ')"
	exit 1
fi
note "pipeline: $(tr '\n' ' ' <"$dir/out") in $(($(date +%s) - t0)) s, scratch $dir"
db=$dir/journal.db
conf="-c $dir/orderd.conf"
before=$(cksum <"$db")

# 1. Every README example of the views, as written but for the journal's path.
grep "^    sqlite3 .*-cmd '.read sql/audit.sql' tmp/demo/journal.db " "$top/README.md" |
	sed "s|tmp/demo/journal.db|'$db'|" >"$dir/examples"
check "the README has at least five examples of the views" '[ "$(wc -l <"$dir/examples")" -ge 5 ]'
i=0
while IFS= read -r line; do
	i=$((i + 1))
	(cd "$top" && sh -c "$line") >"$dir/example.$i" 2>&1
	st=$?
	check "README example $i exits 0 and prints rows: $(echo "$line" | sed 's/.*journal.db.* "//; s/"$//' | cut -c1-60)" \
		'[ "$st" = 0 ] && [ "$(wc -l <"$dir/example.$i")" -ge 4 ] && ! grep -qi "error" "$dir/example.$i"'
done <"$dir/examples"

# 2. Timelines: every order of each outcome reads in saga order.  Repeated
# names (one step per sku) collapse to one; ignored repeats are left out.
seq_of() {
	v "$db" "SELECT order_id, what, name FROM order_timeline
	    WHERE order_id IN (SELECT order_id FROM orders WHERE $1)
	      AND NOT (what = 'event' AND detail LIKE 'ignored%')" |
	awk -F'|' '$1 != o { if (o != "") print s; o = $1; s = ""; last = "" }
	    $3 != last { s = s (s == "" ? "" : ",") $3; last = $3 }
	    END { if (o != "") print s }' | sort | uniq -c | sed 's/^ *//'
}
seq_of "state = 'CONFIRMED'" >"$dir/seq.confirmed"
seq_of "state = 'CANCELLED' AND reason = 'payment_failed'" >"$dir/seq.cancelled"
seq_of "state = 'REJECTED' AND reason = 'out_of_stock'" >"$dir/seq.rejected"
confirmed=$(sqlite3 "$db" "SELECT count(*) FROM orders WHERE state = 'CONFIRMED'")
cancelled=$(sqlite3 "$db" "SELECT count(*) FROM orders WHERE state = 'CANCELLED' AND reason = 'payment_failed'")
note "confirmed $confirmed, cancelled (payment_failed) $cancelled"
check "all $confirmed confirmed orders: OrderCreated, reserve, PaymentRequested, PaymentSucceeded, commit, OrderConfirmed" \
	'[ "$confirmed" -gt 0 ] && [ "$(cat "$dir/seq.confirmed")" = "$confirmed OrderCreated,reserve,PaymentRequested,PaymentSucceeded,commit,OrderConfirmed" ]'
check "all $cancelled orders cancelled for payment_failed: OrderCreated, reserve, PaymentRequested, PaymentFailed, release, OrderCancelled" \
	'[ "$cancelled" -gt 0 ] && [ "$(cat "$dir/seq.cancelled")" = "$cancelled OrderCreated,reserve,PaymentRequested,PaymentFailed,release,OrderCancelled" ]'
check "every out_of_stock order: OrderCreated, reserve, (release,) OrderRejected" \
	'[ -s "$dir/seq.rejected" ] && ! grep -Ev "^[0-9]+ OrderCreated,reserve,(release,)?OrderRejected\$" "$dir/seq.rejected"'
check "timeline times never go back within an order" \
	'[ "$(v "$db" "SELECT order_id, at FROM order_timeline" | awk -F"|" "\$1 == o && \$2 < t { bad++ } { o = \$1; t = \$2 } END { print bad + 0 }")" = 0 ]'
check "the timeline has every event, step and output of the journal (changelog records aside)" \
	'[ "$(v "$db" "SELECT count(*) FROM order_timeline WHERE what IN ('"'event'"', '"'step'"', '"'output'"')")" = "$(sqlite3 "$db" "SELECT (SELECT count(*) FROM inbox WHERE order_id IS NOT NULL) + (SELECT count(*) FROM saga_steps) + (SELECT count(*) FROM outbox WHERE order_id IS NOT NULL AND type <> '"'OrderState'"')")" ]'
check "at_utc is at in ISO 8601 UTC" \
	'[ "$(v "$db" "SELECT count(*) FROM order_timeline WHERE at_utc != strftime('"'%Y-%m-%dT%H:%M:%fZ'"', at / 1000.0, '"'unixepoch'"') OR at_utc NOT LIKE '"'20__-__-__T__:__:__.___Z'"'")" = 0 ]'

# 3. stock_ledger against Redis, through the shell's own JSON functions.
"$bin/orderctl" $conf stock show --json >"$dir/stock.json" 2>"$dir/stock.err"
check "orderctl stock show --json" '[ $? = 0 ] && [ -s "$dir/stock.json" ]'
mismatch=$(v "$db" "SELECT count(*) FROM stock_ledger l
    FULL JOIN (SELECT json_extract(value, '\$.sku') AS sku, json_extract(value, '\$.available') AS available,
                      json_extract(value, '\$.reserved') AS reserved, json_extract(value, '\$.sold') AS sold,
                      json_extract(value, '\$.added') AS added
                 FROM json_each(CAST(readfile('$dir/stock.json') AS TEXT), '\$.skus')) r ON r.sku = l.sku
    WHERE l.sku IS NULL OR r.sku IS NULL OR l.added != r.added OR l.held != r.reserved
       OR l.committed != r.sold OR l.available != r.available OR l.in_flight != 0" 2>&1)
check "stock_ledger equals orderctl stock show for all 20 skus (added, held=reserved, committed=sold, available)" \
	'[ "$mismatch" = 0 ] && [ "$(v "$db" "SELECT count(*) FROM stock_ledger")" = 20 ]'
check "stock_ledger: reserved = committed + released + held, something of each" \
	'[ "$(v "$db" "SELECT count(*) FROM stock_ledger WHERE reserved != committed + released + held")" = 0 ] &&
	 [ "$(v "$db" "SELECT sum(committed) > 0 AND sum(released) > 0 FROM stock_ledger")" = 1 ]'

# 4. A clean run leaves nothing stuck or unpublished, and reading wrote nothing.
check "stuck_sagas is empty after a clean run" '[ "$(v "$db" "SELECT count(*) FROM stuck_sagas")" = 0 ]'
check "unpublished_outbox is empty after a clean run" '[ "$(v "$db" "SELECT count(*) FROM unpublished_outbox")" = 0 ]'
check "the views are TEMP: the journal has no view of its own" \
	'[ "$(v "$db" "SELECT count(*) FROM main.sqlite_schema WHERE type = '"'view'"'")" = 0 ]'
check "reading the views left the journal file unchanged" '[ "$(cksum <"$db")" = "$before" ]'
check "the views read a journal opened read-only" \
	'[ "$(cd "$top" && sqlite3 -readonly -cmd ".read sql/audit.sql" "$db" "SELECT count(*) > 0 FROM order_timeline")" = 1 ]'

# 5. A journal made stuck on purpose: one row per kind of trouble, and one
# of each that is too recent to count.
cp "$db" "$dir/stuck.db"
sqlite3 "$dir/stuck.db" >"$dir/stuck.err" 2>&1 <<'SQL'
CREATE TEMP TABLE now AS SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) AS ms;
CREATE TEMP TABLE pick AS
  SELECT (SELECT order_id FROM orders WHERE state = 'CONFIRMED' ORDER BY order_id LIMIT 1 OFFSET 0) AS flying,
         (SELECT order_id FROM orders WHERE state = 'CONFIRMED' ORDER BY order_id LIMIT 1 OFFSET 1) AS late,
         (SELECT order_id FROM orders WHERE state = 'CONFIRMED' ORDER BY order_id LIMIT 1 OFFSET 2) AS fresh,
         (SELECT order_id FROM orders WHERE state = 'CONFIRMED' ORDER BY order_id LIMIT 1 OFFSET 3) AS unpub;
-- A commit answered long ago loses its result: in flight for 5 minutes.
UPDATE saga_steps SET result = NULL, done_at = NULL, intent_at = (SELECT ms FROM now) - 300000
 WHERE id = (SELECT min(id) FROM saga_steps WHERE kind = 'commit' AND order_id = (SELECT flying FROM pick));
-- Another one only 10 s ago: not stuck yet.
UPDATE saga_steps SET result = NULL, done_at = NULL, intent_at = (SELECT ms FROM now) - 10000
 WHERE id = (SELECT min(id) FROM saga_steps WHERE kind = 'commit' AND order_id = (SELECT fresh FROM pick));
-- An order back in RESERVED, its deadline 2 minutes gone and not fired.
UPDATE orders SET state = 'RESERVED' WHERE order_id = (SELECT late FROM pick);
INSERT INTO deadlines (order_id, due_at) SELECT late, (SELECT ms FROM now) - 120000 FROM pick;
-- A payment parked for 10 minutes for an order never created, one waiting.
INSERT INTO inbox (event_id, topic, kafka_partition, kafka_offset, type, order_id, status, received_at, payload)
  VALUES ('stuck-parked', 'payments', 0, 999999, 'PaymentSucceeded', 'never-created', 'parked',
          (SELECT ms FROM now) - 600000, '{}'),
         ('stuck-waiting', 'payments', 0, 1000000, 'PaymentFailed', (SELECT flying FROM pick), 'waiting',
          (SELECT ms FROM now) - 240000, '{}'),
         ('fresh-parked', 'payments', 0, 1000001, 'PaymentSucceeded', 'never-created-2', 'parked',
          (SELECT ms FROM now) - 5000, '{}');
-- An OrderConfirmed the broker never acknowledged.
UPDATE outbox SET published_at = NULL, attempts = 3, last_error = 'Broker: Message size too large'
 WHERE order_id = (SELECT unpub FROM pick) AND type = 'OrderConfirmed';
SELECT flying, late, fresh, unpub FROM pick;
SQL
check "made a journal stuck on purpose" '[ $? = 0 ] && [ "$(wc -l <"$dir/stuck.err")" = 1 ]'
IFS='|' read -r flying late fresh unpub <"$dir/stuck.err"
note "stuck: step in flight $flying, deadline passed $late, recent step $fresh, unpublished $unpub"
stuck=$(v "$dir/stuck.db" "SELECT coalesce(order_id, '-') || ' ' || coalesce(state, '-') || ' ' || problem FROM stuck_sagas ORDER BY problem, order_id")
printf '%s\n' "$stuck" | sed 's/^/#   /'
expect=$(printf '%s\n' "$late RESERVED deadline_passed" "never-created - event_parked" \
	"$flying CONFIRMED event_waiting" "$flying CONFIRMED step_in_flight")
check "stuck_sagas lists exactly the step in flight, the passed deadline, the waiting and the parked event" \
	'[ "$stuck" = "$expect" ]'
check "stuck_sagas: ages and detail" \
	'[ "$(v "$dir/stuck.db" "SELECT age_s >= 299 AND age_s < 400 AND detail LIKE '"'1 step(s) without a result: commit sku-%'"' FROM stuck_sagas WHERE problem = '"'step_in_flight'"'")" = 1 ]'
check "unpublished_outbox lists exactly the unacknowledged OrderConfirmed" \
	'[ "$(v "$dir/stuck.db" "SELECT order_id || '"' '"' || type || '"' '"' || attempts || '"' '"' || last_error FROM unpublished_outbox")" = "$unpub OrderConfirmed 3 Broker: Message size too large" ]'
check "the timeline shows the step in flight and the unpublished output" \
	'v "$dir/stuck.db" "SELECT detail FROM order_timeline WHERE order_id = '"'$flying'"'" | grep -q "IN FLIGHT" &&
	 v "$dir/stuck.db" "SELECT detail FROM order_timeline WHERE order_id = '"'$unpub'"'" | grep -q "NOT PUBLISHED (3 attempts: Broker"'
check "stock_ledger flags the sku of the step in flight" \
	'[ "$(v "$dir/stuck.db" "SELECT sum(in_flight) FROM stock_ledger")" = 2 ]'

# 6. Retention in a running orderd: age half the inbox and the older half
# of the outbox by 200 hours, start orderd on that journal with small
# batches, and the aged rows, and only they, must go within seconds.
cp "$db" "$dir/aged.db"
sqlite3 "$dir/aged.db" "UPDATE inbox SET received_at = received_at - 720000000 WHERE rowid % 2 = 0;
    UPDATE outbox SET created_at = created_at - 720000000, published_at = published_at - 720000000
     WHERE id <= (SELECT max(id) / 2 FROM outbox);"
aged_in=$(sqlite3 "$dir/aged.db" "SELECT count(*) FROM inbox WHERE rowid % 2 = 0")
young_in=$(sqlite3 "$dir/aged.db" "SELECT count(*) FROM inbox WHERE rowid % 2 = 1")
aged_out=$(sqlite3 "$dir/aged.db" "SELECT max(id) / 2 FROM outbox")
all_out=$(sqlite3 "$dir/aged.db" "SELECT count(*) FROM outbox")
kept=$(sqlite3 "$dir/aged.db" "SELECT (SELECT count(*) FROM orders) || ' ' || (SELECT count(*) FROM saga_steps) || ' ' || (SELECT count(*) FROM stock_adjustments)")
"$bin/orderd" $conf -s "journal.path=$dir/aged.db" -s retention.batch=100 2>"$dir/aged.log" &
apid=$!
i=0
until grep -q "retention: deleted" "$dir/aged.log" || [ "$i" -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM "$apid"; wait "$apid"; ast=$?
note "$(grep "retention:" "$dir/aged.log" | tail -n 1)"
check "a running orderd deleted the $aged_in aged inbox and $aged_out aged outbox rows in batches of 100, and stopped cleanly" \
	'[ "$ast" = 0 ] && ! grep -q "handles left open" "$dir/aged.log" && grep -q "retention: deleted $aged_in inbox rows (max age 168 h), $aged_out published outbox rows (max age 168 h)" "$dir/aged.log"'
check "retention kept the young rows, the orders, steps and stock additions" \
	'[ "$(sqlite3 "$dir/aged.db" "SELECT count(*) FROM inbox")" = "$young_in" ] &&
	 [ "$(sqlite3 "$dir/aged.db" "SELECT count(*) FROM outbox")" = "$((all_out - aged_out))" ] &&
	 [ "$(sqlite3 "$dir/aged.db" "SELECT (SELECT count(*) FROM orders) || '"' '"' || (SELECT count(*) FROM saga_steps) || '"' '"' || (SELECT count(*) FROM stock_adjustments)")" = "$kept" ]'
check "stock_ledger reads the same after retention" \
	'[ "$(v "$dir/aged.db" "SELECT * FROM stock_ledger")" = "$(v "$db" "SELECT * FROM stock_ledger")" ]'

echo "1..$n"
if [ "$fails" = 0 ]; then rm -rf "$dir"; else echo "# audit: scratch kept in $dir"; fi
[ "$fails" = 0 ]
