#!/bin/sh
# instances.sh: three orderd instances in one consumer group on 6 partitions, 20,000 orders, one stopped, one killed, one added: nothing lost.
#
# Each instance has its own journal; the saga state of a partition follows
# it through the changelog topic.  During the run instance 1 is stopped
# with SIGTERM, instance 2 killed with SIGKILL and instance 4 started.
# Passes when loadgen saw every order answered once (missing 0, no two
# different outcomes), the changelog-based reconcile is clean (every
# order's reservations and every sku's counters agree with Redis), and the
# instances logged their restores.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
dir=$(mktemp -d "${TMPDIR:-/tmp}/instances.XXXXXX")
name=mi$$-$(date +%s)
orders=${ORDERD_INSTANCES_ORDERS:-20000}
fails=0
check() {
	if eval "$2"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi
}
. "$top/tests/conf.sh"
test_conf "$dir/base.conf" "$name" "$dir"
ctl() { "$bin/orderctl" -c "$dir/base.conf" "$@"; }
pids=
cleanup() { for p in $pids; do kill -9 "$p" 2>/dev/null; done; }
trap cleanup EXIT

# Instance N: its own journal and static member id.
start() {
	"$bin/orderd" -c "$dir/base.conf" -s "journal.path=$dir/journal-$1.db" \
		-s "consumer.instance_id=$name-$1" 2>"$dir/orderd-$1.log" &
	eval "pid$1=$!"
	pids="$pids $!"
}
# Waits until instance N logs a line matching $2 (or dies).
wait_log() {
	n=0
	until grep -q "$2" "$dir/orderd-$1.log" 2>/dev/null; do
		n=$((n + 1))
		[ "$n" -lt 600 ] || { echo "instances: orderd $1 never logged '$2'" >&2; return 1; }
		sleep 0.1
	done
}

ctl topics create --partitions 6 >/dev/null || { echo "topics create failed" >&2; exit 1; }
i=0
while [ "$i" -lt 100 ]; do
	ctl stock add "sku-$i" 600 >/dev/null || { echo "stock add failed" >&2; exit 1; }
	i=$((i + 1))
done
start 1; start 2; start 3
for n in 1 2 3; do wait_log "$n" "engine: assigned partitions" || exit 1; done
"$bin/orderd-paysim" -c "$dir/base.conf" --fail-ratio 0.1 --duplicate-ratio 0.05 \
	--group "$name-paysim" 2>"$dir/paysim.log" &
ppid=$!
pids="$pids $ppid"

"$bin/orderd-loadgen" -c "$dir/base.conf" --orders "$orders" --rate 800 --skus 100 \
	--lines-max 3 --sku-prefix sku- --id-prefix "$name-" --verify --timeout-s 400 \
	>"$dir/figures" 2>"$dir/loadgen.log" &
lpid=$!
sleep 6
kill -TERM "$pid1"
wait "$pid1"; st1=$?
sleep 4
kill -KILL "$pid2"
wait "$pid2" 2>/dev/null
sleep 3
start 4
wait "$lpid"; lg=$?
kill -TERM "$ppid"; wait "$ppid"
kill -TERM "$pid3"; wait "$pid3"; st3=$?
kill -TERM "$pid4"; wait "$pid4"; st4=$?
trap - EXIT
ctl reconcile --changelog --json >"$dir/reconcile.json" 2>"$dir/reconcile.err"
rc=$?
cat "$dir/figures"

fig() { awk -v k="$1" '$1 == k { print $2 }' "$dir/figures"; }
restored() { sed -n 's/.*engine: assigned partitions.*restored \([0-9]*\) orders.*/\1/p' "$dir/orderd-$1.log" | awk '{ s += $1 } END { print s + 0 }'; }
check "loadgen verified every order (exit $lg)" '[ "$lg" = 0 ]'
check "$orders orders produced" '[ "$(fig orders)" = "$orders" ]'
check "missing 0" '[ "$(fig missing)" = 0 ]'
check "no order with two different outcomes" '[ "$(fig conflicts)" = 0 ]'
check "some orders of each outcome" '[ "$(fig confirmed)" -gt 0 ] && [ "$(fig rejected)" -gt 0 ] && [ "$(fig cancelled)" -gt 0 ]'
check "instance 1 stopped cleanly on SIGTERM (exit $st1)" '[ "$st1" = 0 ]'
check "instances 3 and 4 stopped cleanly (exit $st3, $st4)" '[ "$st3" = 0 ] && [ "$st4" = 0 ]'
check "instance 4 took partitions over and restored orders from the changelog" \
	'[ "$(restored 4)" -gt 0 ]'
check "instance 3 got more partitions when the others left" \
	'[ "$(grep -c "engine: assigned partitions" "$dir/orderd-3.log")" -ge 2 ]'
check "revocations finished their work before letting go" \
	'grep -q "partitions revoked: steps finished, outbox flushed, offsets committed" "$dir/orderd-3.log"'
check "reconcile against the changelog is clean (exit $rc)" \
	'[ "$rc" = 0 ] && grep -q "\"ok\":true" "$dir/reconcile.json"'
check "every order is in the changelog, none mid-saga" \
	'python3 -c "import json,sys; d=json.load(open(sys.argv[1]))[\"changelog\"]; sys.exit(0 if d[\"orders\"] >= $orders and d[\"new_orders\"] == 0 else 1)" "$dir/reconcile.json"'
echo "1..12"
if [ "$fails" = 0 ]; then
	rm -rf "$dir"
else
	echo "instances: scratch kept in $dir" >&2
	tail -n 5 "$dir"/orderd-*.log "$dir/reconcile.err" "$dir/loadgen.log" >&2
fi
[ "$fails" = 0 ]
