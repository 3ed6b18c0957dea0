#!/bin/sh
# chaos.sh: 20,000 orders while orderd is killed at every crash point and at random, and Redis and the broker restart.
#
# orderd is SIGKILLed at each named crash point (ORDERD_CRASH_AT) and at
# random times, at least 10 kills in all, and restarted each time; Redis
# (AOF, appendfsync always) and the Kafka broker are restarted once each
# while it runs.  Then every order must have exactly one terminal outcome
# (the same event id may come twice, two different outcomes never), the
# journal and Redis must reconcile, every sku's invariant must hold and no
# terminal order may hold stock.  It runs its own broker and Redis: the
# restarts must not disturb the other tests.  TAP output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
orders=${ORDERD_CHAOS_ORDERS:-20000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/chaos.XXXXXX")
n=0
fails=0
opid=
ppid=
lpid=

ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
note() { echo "# $*"; }
bail() {
	echo "Bail out! $*"
	for f in "$dir"/kafka/kafka.log "$dir"/redis/redis.log "$dir"/orderd.log; do
		[ -f "$f" ] && { echo "# --- tail of $f"; tail -n 20 "$f" | sed 's/^/# /'; }
	done
	exit 1
}
cleanup() {
	for p in $opid $ppid $lpid; do kill -9 "$p" 2>/dev/null; done
	"$top/contrib/kafka.sh" stop "$dir/kafka" >/dev/null 2>&1
	"$top/contrib/redis.sh" stop "$dir/redis" >/dev/null 2>&1
}
trap cleanup EXIT

kb=$("$top/contrib/kafka.sh" start "$dir/kafka" 2>"$dir/kafka.err") || bail "the broker did not start: $(cat "$dir/kafka.err")"
rp=$("$top/contrib/redis.sh" start "$dir/redis" --aof 2>"$dir/redis.err") || bail "redis did not start: $(cat "$dir/redis.err")"
note "broker $kb, redis $rp (AOF), scratch $dir"
cat >"$dir/orderd.conf" <<CONF
[kafka]
bootstrap.servers = $kb
[redis]
port = $rp
timeout_ms = 1000
[journal]
path = $dir/journal.db
[topics]
orders = orders
payments = payments
payment_requests = payment-requests
order_events = order-events
dlq = orders.dlq
state = orderd.state
[consumer]
group = orderd-chaos
; a restarted orderd takes its partitions back at once
instance_id = chaos-1
[http]
listen =
CONF
conf="-c $dir/orderd.conf"
"$bin/orderctl" $conf topics create --partitions 3 >/dev/null || bail "topics create failed"
i=0
while [ "$i" -lt 200 ]; do
	"$bin/orderctl" $conf stock add "sku-$i" 320 >/dev/null || bail "stock add failed"
	i=$((i + 1))
done

"$bin/orderd-paysim" $conf --fail-ratio 0.1 --duplicate-ratio 0.05 2>"$dir/paysim.log" &
ppid=$!
"$bin/orderd-loadgen" $conf --orders "$orders" --rate 1000 --skus 200 --lines-max 3 \
	--verify --timeout-s 600 >"$dir/figures" 2>"$dir/loadgen.log" &
lpid=$!

# Starts orderd, with a crash point armed when $1 is not empty.
start_orderd() {
	echo "=== start ${1:-(no crash point)}" >>"$dir/orderd.log"
	if [ -n "$1" ]; then
		ORDERD_CRASH_AT=$1 "$bin/orderd" $conf 2>>"$dir/orderd.log" &
	else
		"$bin/orderd" $conf 2>>"$dir/orderd.log" &
	fi
	opid=$!
}
# Waits up to $1 seconds for orderd to end; sets st to its exit status, or
# to "running".  (Not in a subshell: only this shell can wait for it.)
wait_orderd() {
	t=0
	while kill -0 "$opid" 2>/dev/null; do
		[ "$(awk '{print $3}' "/proc/$opid/stat" 2>/dev/null)" = Z ] && break
		t=$((t + 1))
		[ "$t" -gt $(($1 * 10)) ] && { st=running; return; }
		sleep 0.1
	done
	wait "$opid"
	st=$?
}

kills=0
for point in mid-batch:4 after-intent-commit:6 after-redis:8 during-recovery:1 \
	after-produce:12 after-delivery:12; do
	start_orderd "$point"
	wait_orderd 90
	name=${point%%:*}
	if [ "$st" = running ]; then
		kill -9 "$opid"; wait "$opid" 2>/dev/null
		not_ok "orderd reached crash point $name within 90 s"
	else
		check "orderd was killed at $name (exit $st)" \
			'[ "$st" = 137 ] && grep -q "fault: crashing at $name" "$dir/orderd.log"'
	fi
	kills=$((kills + 1))
done

# Random kills, with Redis and the broker restarted while orderd runs.
for r in 1 2 3 4 5; do
	start_orderd ""
	sleep "$(awk -v s="$r$$" 'BEGIN { srand(s); printf "%.1f", 1 + rand() * 3 }')"
	if [ "$r" = 2 ]; then
		"$top/contrib/redis.sh" restart "$dir/redis" >/dev/null 2>&1 || bail "redis restart failed"
		note "redis restarted"
		sleep 1
	fi
	if [ "$r" = 4 ]; then
		"$top/contrib/kafka.sh" restart "$dir/kafka" >/dev/null 2>&1 || bail "broker restart failed"
		note "broker restarted"
		sleep 2
	fi
	kill -9 "$opid" 2>/dev/null
	wait "$opid" 2>/dev/null
	kills=$((kills + 1))
done
check "at least 10 kills ($kills)" '[ "$kills" -ge 10 ]'

# The last orderd runs until every order is answered.
start_orderd ""
wait "$lpid"
lg=$?
lpid=
kill -TERM "$ppid"; wait "$ppid"; ppid=
kill -TERM "$opid"; wait_orderd 60; opid=
"$bin/orderctl" $conf reconcile --json >"$dir/reconcile.json"
rc=$?
sed 's/^/# /' "$dir/figures"
fig() { awk -v k="$1" '$1 == k { print $2 }' "$dir/figures"; }
q() { sqlite3 "$dir/journal.db" "$1"; }
check "loadgen found every order answered (exit $lg)" '[ "$lg" = 0 ]'
check "missing 0" '[ "$(fig missing)" = 0 ]'
check "no order with two different outcomes" '[ "$(fig conflicts)" = 0 ]'
check "$orders orders produced" '[ "$(fig orders)" = "$orders" ]'
check "the last orderd stopped cleanly on SIGTERM (exit $st)" '[ "$st" = 0 ]'
check "reconcile clean: invariants, counters, no stock held by a terminal order" \
	'[ "$rc" = 0 ] && grep -q "\"ok\":true" "$dir/reconcile.json"'
check "every order is in the journal and terminal" \
	'[ "$(q "SELECT count(*) FROM orders WHERE state IN (\"CONFIRMED\",\"REJECTED\",\"CANCELLED\")")" = "$orders" ]'
check "one terminal output per order" \
	'[ "$(q "SELECT count(*) FROM (SELECT order_id FROM outbox WHERE type IN (\"OrderConfirmed\",\"OrderRejected\",\"OrderCancelled\") GROUP BY order_id HAVING count(*) != 1)")" = 0 ]'
check "no step left in flight" '[ "$(q "SELECT count(*) FROM saga_steps WHERE result IS NULL")" = 0 ]'
check "every outbox row published" '[ "$(q "SELECT count(*) FROM outbox WHERE published_at IS NULL")" = 0 ]'
check "recovery said what it recovered" 'grep -q "recovered from the journal: [1-9]" "$dir/orderd.log"'
echo "1..$n"
if [ "$fails" = 0 ]; then
	cleanup
	trap - EXIT
	rm -rf "$dir"
else
	echo "# chaos: scratch kept in $dir"
fi
[ "$fails" = 0 ]
