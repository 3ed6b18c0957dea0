#!/bin/sh
# changelog.sh: orderctl reconcile --changelog against hand-made state topic records and Redis keys written to match, then broken.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
dir=$(mktemp -d "${TMPDIR:-/tmp}/changelog.XXXXXX")
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() {
	if eval "$2"; then
		ok "$1"
	else
		not_ok "$1"
		sed 's/^/# /' "$dir/out" "$dir/err" 2>/dev/null | head -20
	fi
}
# Runs a command; its status in st, its stdout in $dir/out, stderr in $dir/err.
run() { "$@" >"$dir/out" 2>"$dir/err"; st=$?; }
json() { python3 -c "import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" \
	"$dir/out" 2>/dev/null; }

: "${ORDERD_TEST_REDIS_PORT:?run through tests/servers.sh}"
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
: "${ORDERD_TEST_KAFKA_DIR:?run through tests/servers.sh}"
name=chl$$
topic=$name.state
. "$top/tests/conf.sh"
test_conf "$dir/c.conf" "$name" "$dir"
C="$bin/orderctl -c $dir/c.conf"
R="redis-cli -p $ORDERD_TEST_REDIS_PORT"
stock() { echo "$name:{$1}:stock"; }
resv() { echo "$name:{$1}:r:$2"; }

"$top/contrib/kafka.sh" topics "$ORDERD_TEST_KAFKA_DIR" "$topic:3" >"$dir/topics.log" 2>&1
rc=$?
check "the state topic is created" '[ "$rc" = 0 ]'

# One order's state, as orderd publishes it: rec ORDER EPOCH VERSION STATE LINES.
rec() {
	printf '%s\t{"order_id":"%s","epoch":%s,"version":%s,"partition":0,"state":"%s",' \
		"$1" "$1" "$2" "$3" "$4"
	printf '"reason":null,"reason_sku":null,"customer_id":"c-1","amount_cents":100,'
	printf '"currency":"EUR","items":[],"lines":"%s","payment_id":null,' "$5"
	printf '"created_event_id":"e-%s","traceparent":null,"created_at":1,"updated_at":2,' "$1"
	printf '"deadline_at":null,"events":["e-%s"],"parked":[]}\n' "$1"
}
# Writes stdin's "KEY<TAB>VALUE" lines to one partition, in order; an
# empty value is a tombstone.
produce() {
	kcat -b "$ORDERD_TEST_BOOTSTRAP" -P -t "$topic" -p "$1" -K '\t' -Z -q 2>>"$dir/kcat.log"
}

# o-1: the higher (epoch, version) at the LOWER offset: CONFIRMED wins.
# o-2: same epoch, version 3 (RESERVED) before version 2 (NEW).
# o-8: CONFIRMED, then a tombstone (which outranks no record).
{
	rec o-1 2 1 CONFIRMED 'sku-a 2;sku-b 1'
	rec o-1 1 7 RESERVED 'sku-a 2;sku-b 1'
	rec o-8 1 4 CONFIRMED 'sku-b 1'
	printf 'o-8\t\n'
} | produce 0
rc=$?
check "records of partition 0 are produced" '[ "$rc" = 0 ]'
{
	rec o-2 1 3 RESERVED 'sku-a 3'
	rec o-2 1 2 NEW 'sku-a 3'
	rec o-3 1 2 REJECTED 'sku-c 9'
	printf 'o-7\t\n'
} | produce 1
rc=$?
check "records of partition 1 are produced" '[ "$rc" = 0 ]'
# o-5 is in NEW: Redis holds its line, the changelog does not yet.
# o-6 is NONE: parked events only, no lines.
{
	rec o-4 1 5 CANCELLED 'sku-b 2'
	rec o-5 1 1 NEW 'sku-c 1'
	printf 'o-6\t{"order_id":"o-6","epoch":1,"version":1,"partition":2,"state":"NONE",'
	printf '"reason":null,"reason_sku":null,"customer_id":null,"amount_cents":null,'
	printf '"currency":null,"items":null,"lines":"","payment_id":null,'
	printf '"created_event_id":null,"traceparent":null,"created_at":1,"updated_at":1,'
	printf '"deadline_at":null,"events":[],"parked":[{"event_id":"p-1","topic":"payments",'
	printf '"partition":2,"offset":7,"type":"PaymentSucceeded","received_at":1,'
	printf '"traceparent":null,"payload":"{}"}]}\n'
} | produce 2
rc=$?
check "records of partition 2 are produced" '[ "$rc" = 0 ]'

# Redis as orderd leaves it: stock added through orderctl, then what the
# Lua steps of these orders did.
for s in "sku-a 10" "sku-b 10" "sku-c 5"; do
	$C stock add $s >/dev/null 2>>"$dir/setup.log" || echo "stock add $s failed" >>"$dir/setup.log"
done
{
	$R HINCRBY "$(stock sku-a)" available -5
	$R HINCRBY "$(stock sku-a)" reserved 3
	$R HINCRBY "$(stock sku-a)" sold 2
	$R HINCRBY "$(stock sku-b)" available -2
	$R HINCRBY "$(stock sku-b)" sold 2
	$R HINCRBY "$(stock sku-c)" available -1
	$R HINCRBY "$(stock sku-c)" reserved 1
	$R HSET "$(resv sku-a o-1)" state COMMITTED qty 2 order o-1
	$R HSET "$(resv sku-b o-1)" state COMMITTED qty 1 order o-1
	$R HSET "$(resv sku-a o-2)" state RESERVED qty 3 order o-2
	$R HSET "$(resv sku-c o-3)" state REJECTED qty 9 order o-3
	$R HSET "$(resv sku-b o-4)" state RELEASED qty 2 order o-4
	$R HSET "$(resv sku-c o-5)" state RESERVED qty 1 order o-5
	$R HSET "$(resv sku-b o-8)" state COMMITTED qty 1 order o-8
} >>"$dir/setup.log" 2>&1
check "Redis is set up (setup.log has no error)" '! grep -qi "err\|fail" "$dir/setup.log"'

run $C reconcile --changelog
check "a matching Redis is clean: exit 0" '[ "$st" = 0 ] && grep -q "^reconcile: ok" "$dir/out"'
check "the summary counts 11 records, 2 tombstones, 7 orders, 1 in NEW" \
	'grep -q "11 records (2 tombstones), 7 orders, 1 in NEW" "$dir/out"'
run $C reconcile --changelog --json
check "--json: ok, 7 orders, 1 in NEW, sku-c unsettled" \
	'[ "$st" = 0 ] && json "d[\"ok\"] and d[\"problems\"] == [] and d[\"skus\"] == 3 and
	d[\"unsettled_skus\"] == 1 and d[\"changelog\"][\"orders\"] == 7 and
	d[\"changelog\"][\"new_orders\"] == 1 and d[\"changelog\"][\"records\"] == 11 and
	d[\"changelog\"][\"tombstones\"] == 2 and d[\"changelog\"][\"topic\"] == \"$topic\""'

# Broken one at a time, each put back.
$R HSET "$(resv sku-a o-2)" state COMMITTED >/dev/null
run $C reconcile --changelog
check "a RESERVED order whose record says COMMITTED is drift: exit 1" \
	'[ "$st" = 1 ] && grep -q "^changelog_redis_mismatch *sku-a *o-2 " "$dir/out" &&
	grep -q "^reconcile: DRIFT" "$dir/out"'
$R HSET "$(resv sku-a o-2)" state RESERVED >/dev/null

$R HSET "$(resv sku-a o-1)" qty 3 >/dev/null
run $C reconcile --changelog --json
check "a CONFIRMED line with another qty is drift (--json)" \
	'[ "$st" = 1 ] && json "not d[\"ok\"] and [(p[\"kind\"], p[\"sku\"], p[\"order_id\"])
	for p in d[\"problems\"]] == [(\"changelog_redis_mismatch\", \"sku-a\", \"o-1\")]"'
$R HSET "$(resv sku-a o-1)" qty 2 >/dev/null

$R HSET "$(resv sku-b o-4)" state RESERVED >/dev/null
run $C reconcile --changelog
check "a CANCELLED order still holding stock is drift" \
	'[ "$st" = 1 ] && grep -q "^terminal_order_holds_stock *sku-b *o-4 " "$dir/out"'
$R HSET "$(resv sku-b o-4)" state RELEASED >/dev/null

$R HINCRBY "$(stock sku-b)" sold 1 >/dev/null
run $C reconcile --changelog
check "a changed counter breaks the invariant and the sold sum: exit 1" \
	'[ "$st" = 1 ] && grep -q "^invariant *sku-b " "$dir/out" &&
	grep -q "^counter_drift *sku-b .*changelog: reserved 0, sold 2; Redis: reserved 0, sold 3" "$dir/out"'
$R HINCRBY "$(stock sku-b)" sold -1 >/dev/null

$R HSET "$(resv sku-a o-99)" state RESERVED qty 1 order o-99 >/dev/null
run $C reconcile --changelog
check "a reservation of an order the changelog does not know is drift" \
	'[ "$st" = 1 ] && grep -q "^reservation_without_order *sku-a *o-99 " "$dir/out"'
$R DEL "$(resv sku-a o-99)" >/dev/null

run $C reconcile --changelog
check "put back, Redis is clean again" '[ "$st" = 0 ]'

run $C -s "topics.state=$name.nosuch" reconcile --changelog
check "a missing state topic is exit 2, in one line naming it" \
	'[ "$st" = 2 ] && [ "$(wc -l <"$dir/err")" = 1 ] && grep -q "$name.nosuch" "$dir/err"'
run $C -s topics.state= reconcile --changelog
check "an empty topics.state is exit 2" '[ "$st" = 2 ] && grep -q "topics.state" "$dir/err"'
run $C reconcile --changelog --bogus
check "reconcile with an unknown argument is exit 2" '[ "$st" = 2 ]'

keys_before=$($R --scan --pattern "$name:*" | sort | md5sum)
run $C recover --rebuild-redis --force
check "recover --rebuild-redis with topics.state set, without --only-instance, is refused (exit 1, naming both), Redis untouched" \
	'[ "$st" = 1 ] && grep -q "topics.state is set ($topic)" "$dir/err" && grep -q -- "--only-instance" "$dir/err" && [ "$(wc -l <"$dir/err")" = 1 ] &&
	[ "$($R --scan --pattern "$name:*" | sort | md5sum)" = "$keys_before" ] && [ -n "$($R --scan --pattern "$name:*")" ]'
run $C recover --rebuild-redis --only-instance
check "with --only-instance it is not that refusal" '[ "$st" != 0 ] && ! grep -q "topics.state" "$dir/err"'

printf 'o-9\tnot json\n' | produce 0
run $C reconcile --changelog
check "an unreadable record is drift, with its offset" \
	'[ "$st" = 1 ] && grep -q "^changelog_bad_record *- *o-9 *$topic \[0\] offset 4: " "$dir/out"'

echo "1..$n"
[ "$fails" = 0 ] && rm -rf "$dir"
[ "$fails" = 0 ]
