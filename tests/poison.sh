#!/bin/sh
# poison.sh: an outbox row the broker refuses for good (too large for its topic) dies instead of holding back everything: the other orders' outputs go, its order's later rows wait, orderctl outbox retry publishes it once the cause is gone.
#
# Against the servers of tests/servers.sh: the run's payment-requests topic
# gets max.message.bytes = 450 (kafka.admin.ConfigCommand, the class of
# kafka-configs.sh, from the broker's own install), small enough for a
# PaymentRequested of a short customer_id, too small for one of 256 bytes.
# Three orders: o-big (the long customer_id), o-a and o-b.  Then:
# o-a's and o-b's PaymentRequested are published, o-big's row is dead with
# the broker's error in orderctl outbox list --dead and on /metrics; a
# cancellation of o-big and one of o-a: o-a's OrderCancelled goes, o-big's
# is held behind its dead row; max.message.bytes is deleted again and
# orderctl outbox retry publishes o-big's PaymentRequested exactly once
# (one copy of its deterministic event id on the topic), then its
# OrderCancelled.  TAP output.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
: "${ORDERD_TEST_KAFKA_DIR:?run through tests/servers.sh}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/poison.XXXXXX")
name=poison$$-$(date +%s)
b=$ORDERD_TEST_BOOTSTRAP
n=0
fails=0
pids=
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
note() { echo "# $*"; }
cleanup() { for p in $pids; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
bail() {
	echo "Bail out! $*"
	for f in "$dir"/*.log; do
		[ -f "$f" ] && { echo "# --- $f"; tail -n 15 "$f" | sed 's/^/# /'; }
	done
	exit 1
}
port=$(python3 -c 'import socket
s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
. "$top/tests/conf.sh"
test_conf "$dir/orderd.conf" "$name" "$dir" normal "127.0.0.1:$port"
ctl() { "$bin/orderctl" -c "$dir/orderd.conf" "$@"; }
db=$dir/journal.db
pr=$name.payment-requests
oe=$name.order-events

# Waits up to $2 s for the command $1 (eval'd) to succeed.
wait_until() {
	i=0
	until eval "$1"; do
		i=$((i + 1))
		[ "$i" -lt $(($2 * 10)) ] || return 1
		sleep 0.1
	done
}
# Every message of topic $1 as "KEY HEADERS".
topic() { kcat -b "$b" -C -t "$1" -e -q -f '%k %h\n' 2>>"$dir/kcat.log"; }
# How many messages of topic $1 have key $2.
count() { topic "$1" | awk -v k="$2" '$1 == k' | wc -l; }
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
configs() {
	"$top/contrib/kafka.sh" tool "$ORDERD_TEST_KAFKA_DIR" kafka.admin.ConfigCommand \
		--bootstrap-server "$b" --entity-type topics --entity-name "$pr" "$@" \
		>>"$dir/configs.log" 2>&1
}
# OrderCreated of order $1 for customer $2.
created() {
	printf '{"event_id":"%s-created","type":"OrderCreated","order_id":"%s","customer_id":"%s","items":[{"sku":"sku-0","qty":1}],"amount_cents":500,"currency":"EUR"}\n' \
		"$1" "$1" "$2" | kcat -b "$b" -P -t "$name.orders" -k "$1" 2>>"$dir/kcat.log"
}
cancel() {
	printf '{"event_id":"%s-cancel","type":"OrderCancellationRequested","order_id":"%s"}\n' \
		"$1" "$1" | kcat -b "$b" -P -t "$name.orders" -k "$1" 2>>"$dir/kcat.log"
}

ctl topics create --partitions 1 >/dev/null 2>"$dir/ctl.log" || bail "topics create failed"
configs --alter --add-config max.message.bytes=450 || bail "kafka-configs --alter failed"
ctl stock add sku-0 100 >/dev/null 2>>"$dir/ctl.log" || bail "stock add failed"
"$bin/orderd" -c "$dir/orderd.conf" 2>"$dir/orderd.log" &
opid=$!
pids="$pids $opid"
wait_until 'grep -q "engine: assigned partitions" "$dir/orderd.log"' 60 ||
	bail "orderd never took its partitions"

long=$(printf 'c%.0s' $(seq 256))
created o-big "$long"
created o-a c-a
created o-b c-b
wait_until '[ "$(count "$pr" o-a)" = 1 ] && [ "$(count "$pr" o-b)" = 1 ]' 60
check "the other orders' PaymentRequested are published (o-a, o-b)" \
	'[ "$(count "$pr" o-a)" = 1 ] && [ "$(count "$pr" o-b)" = 1 ]'
wait_until 'ctl outbox list --dead --json 2>>"$dir/ctl.log" | grep -q "\"order_id\":\"o-big\""' 30
ctl outbox list --dead --json >"$dir/dead.json" 2>>"$dir/ctl.log"
ctl outbox list --dead >"$dir/dead.txt" 2>>"$dir/ctl.log"
note "$(tail -n 1 "$dir/dead.txt")"
dead=$(python3 -c 'import json, sys
rows = json.load(open(sys.argv[1]))["rows"]
print(" ".join("%s|%s|%s|%s|%s" % (r["id"], r["order_id"], r["type"], r["state"], r["last_error"]) for r in rows))' "$dir/dead.json")
id=${dead%%|*}
check "o-big's PaymentRequested is dead with the broker's error: $dead" \
	'[ "$(echo "$dead" | cut -d"|" -f2-)" = "o-big|PaymentRequested|dead|Broker: Message size too large" ]'
check "outbox list --dead (text) shows it" 'grep -q "^$id  *dead  *o-big  *PaymentRequested .*Broker: Message size too large" "$dir/dead.txt"'
check "nothing of o-big on $pr" '[ "$(count "$pr" o-big)" = 0 ]'
check "the log says it is dead and what to do" \
	'grep -q "ERROR relay: outbox row $id (order .o-big. to .$pr.) is dead after [0-9]* failed deliver.*: Broker: Message size too large;.*orderctl outbox list --dead" "$dir/orderd.log"'
check "/metrics: orderd_outbox_dead 1, orderd_relay_dead_total 1" \
	'wait_until "[ \"\$(metric orderd_outbox_dead)\" = 1 ]" 10 && [ "$(metric orderd_relay_dead_total)" = 1 ]'
check "orderctl outbox counts it" 'ctl outbox 2>>"$dir/ctl.log" | grep -q "^dead  *1 "'

# The order's later rows wait behind it; another order's do not.
cancel o-big
cancel o-a
wait_until '[ "$(count "$oe" o-a)" = 1 ]' 60
check "o-a's OrderCancelled is published" '[ "$(count "$oe" o-a)" = 1 ]'
wait_until 'ctl outbox list --json 2>>"$dir/ctl.log" | grep -q "\"state\":\"held\",\"order_id\":\"o-big\",\"type\":\"OrderCancelled\""' 30
check "o-big's OrderCancelled is held behind its dead row, not published" \
	'ctl outbox list --json 2>>"$dir/ctl.log" | grep -q "\"state\":\"held\",\"order_id\":\"o-big\",\"type\":\"OrderCancelled\"" && [ "$(count "$oe" o-big)" = 0 ]'
# Retrying changes nothing while the cause is there... but first the cause goes.
configs --alter --delete-config max.message.bytes || bail "kafka-configs --delete-config failed"
ctl outbox retry "$id" >"$dir/retry.out" 2>>"$dir/ctl.log"
rst=$?
check "orderctl outbox retry $id: exit 0, says so" \
	'[ "$rst" = 0 ] && grep -q "^outbox row $id (PaymentRequested of order o-big to $pr) is pending again" "$dir/retry.out"'
wait_until '[ "$(count "$pr" o-big)" -ge 1 ] && [ "$(count "$oe" o-big)" -ge 1 ]' 60
eid=$(sqlite3 "$db" "SELECT event_id FROM outbox WHERE id = $id")
check "o-big's PaymentRequested is on $pr exactly once, under its event id $eid" \
	'[ "$(count "$pr" o-big)" = 1 ] && [ "$(topic "$pr" | grep -c "event_id=$eid")" = 1 ]'
check "... and its OrderCancelled after it" '[ "$(count "$oe" o-big)" = 1 ]'
check "the row is published, with its attempts counted from the retry" \
	'[ "$(sqlite3 "$db" "SELECT published_at IS NOT NULL AND dead_at IS NULL AND retried_at IS NOT NULL AND attempts = 1 FROM outbox WHERE id = $id")" = 1 ]'
check "outbox list --dead is empty, /metrics orderd_outbox_dead 0" \
	'[ "$(ctl outbox list --dead --json 2>>"$dir/ctl.log")" = "{\"rows\":[]}" ] && wait_until "[ \"\$(metric orderd_outbox_dead)\" = 0 ]" 10'
ctl outbox retry "$id" >"$dir/retry2.out" 2>>"$dir/ctl.log"
rst=$?
check "retrying it again is a no-op (exit 0): $(cat "$dir/retry2.out")" \
	'[ "$rst" = 0 ] && grep -q "is published, not dead: nothing to retry" "$dir/retry2.out"'
ctl outbox retry 999999 >/dev/null 2>"$dir/retry3.err"
rst=$?
check "retrying a row that does not exist: exit 1, says so" \
	'[ "$rst" = 1 ] && grep -q "outbox row 999999: no such row" "$dir/retry3.err"'
wait_until '[ "$(sqlite3 "$db" "SELECT count(*) FROM outbox WHERE published_at IS NULL")" = 0 ]' 30
check "every outbox row is published in the end" \
	'[ "$(sqlite3 "$db" "SELECT count(*) FROM outbox WHERE published_at IS NULL")" = 0 ]'
kill -TERM "$opid"
wait "$opid"
st=$?
check "orderd stops cleanly (status $st)" '[ "$st" = 0 ]'

trap - EXIT
cleanup
echo "1..$n"
if [ "$fails" -eq 0 ]; then rm -rf "$dir"; exit 0; fi
echo "poison: scratch kept in $dir" >&2
exit 1
