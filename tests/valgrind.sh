#!/bin/sh
# valgrind.sh: orderd, paysim, loadgen and orderctl under valgrind memcheck through a few hundred orders: no invalid access, no definite or indirect leak.
#
# Writes a throwaway configuration (topics, consumer group, Redis prefix and
# journal of its own, as tests/pipeline.sh does), runs orderd and
# orderd-paysim under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect
# and orderd-loadgen --verify (under valgrind too) for ORDERD_VALGRIND_ORDERS
# orders (default 300), stops them with SIGTERM, then runs a few orderctl
# commands the same way, and reads valgrind's logs.  "Still reachable" and
# "possibly lost" blocks (librdkafka's threads at exit) are not errors;
# anything else is.  Needs the servers of tests/servers.sh; valgrind is about
# 20x slower, hence the long timeouts.  Not registered in a
# --enable-sanitizers build (valgrind cannot run ASan binaries).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ORDERD_BIN:-$top/src}
orders=${ORDERD_VALGRIND_ORDERS:-300}
skus=20
dir=$(mktemp -d "${TMPDIR:-/tmp}/valgrind.XXXXXX")
n=0 fails=0
check() {
	n=$((n + 1))
	if eval "$2"; then echo "ok $n - $1"; else echo "not ok $n - $1"; fails=$((fails + 1)); fi
}
bail() { echo "Bail out! $*"; echo "valgrind: scratch kept in $dir" >&2; exit 1; }
: "${ORDERD_TEST_BOOTSTRAP:?run through tests/servers.sh}"
: "${ORDERD_TEST_REDIS_PORT:?run through tests/servers.sh}"
command -v valgrind >/dev/null || bail "valgrind is not installed (contrib/install-deps.sh)"

name=vg$$-$(date +%s)
. "$top/tests/conf.sh"
test_conf "$dir/orderd.conf" "$name" "$dir" normal
printf '[saga]\npayment_timeout_ms = 600000\n' >>"$dir/orderd.conf"
conf="-c $dir/orderd.conf"
# Each program under valgrind writes its own log; exit 99 means valgrind found
# errors.  A plain command, not a function, so that $! of a background one is
# valgrind itself (a backgrounded function would be a subshell).
VG="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect
	--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30"
# A valgrind log is clean when it reports no error and no definite or indirect leak.
clean_log() {
	! grep -qE 'Invalid (read|write|free)|uninitialised|Mismatched free|overlap|definitely lost|indirectly lost|Syscall param|Process terminating' "$dir/$1"
}

"$bin/orderctl" $conf topics create --partitions 3 >/dev/null 2>"$dir/topics.err" ||
	bail "orderctl topics create failed: $(cat "$dir/topics.err")"
$VG --log-file="$dir/orderctl-stock.vg" "$bin/orderctl" $conf stock add sku-0 1000 >/dev/null 2>"$dir/stock.err"
st=$?
check "orderctl stock add under valgrind: exit 0, clean (exit $st)" '[ "$st" = 0 ] && clean_log orderctl-stock.vg'
i=1
while [ "$i" -lt "$skus" ]; do
	"$bin/orderctl" $conf stock add "sku-$i" 1000 >/dev/null || bail "stock add sku-$i failed"
	i=$((i + 1))
done

# Background programs keep their stdout off the TAP stream: a straggler must
# not hold the test driver's pipe open.
# A short max.poll.interval.ms, so that an idle orderd which stops polling its
# consumer (and so leaves its group) shows within the test.
$VG --log-file="$dir/orderd.vg" "$bin/orderd" $conf -s kafka.session.timeout.ms=6000 \
	-s kafka.max.poll.interval.ms=10000 >"$dir/orderd.out" 2>"$dir/orderd.log" &
opid=$!
$VG --log-file="$dir/paysim.vg" "$bin/orderd-paysim" $conf --fail-ratio 0.1 \
	--duplicate-ratio 0.05 --group "$name-paysim" >"$dir/paysim.out" 2>"$dir/paysim.log" &
ppid=$!
trap 'kill -9 "$opid" "$ppid" 2>/dev/null' EXIT
i=0 up=0
while [ "$i" -lt 1200 ]; do
	if grep -q 'engine: consuming' "$dir/orderd.log" 2>/dev/null; then up=1; break; fi
	kill -0 "$opid" 2>/dev/null || break
	i=$((i + 1))
	sleep 0.1
done
check "orderd starts under valgrind" '[ "$up" = 1 ]'
[ "$up" = 1 ] || { tail -n 20 "$dir/orderd.log" "$dir/orderd.vg" >&2; bail "orderd did not start"; }

# Idle for twice max.poll.interval.ms first.
sleep 20

# Stock for most orders; about 10% of the payments fail, so some are cancelled.
$VG --log-file="$dir/loadgen.vg" "$bin/orderd-loadgen" $conf --orders "$orders" --rate 50 \
	--skus "$skus" --lines-max 3 --sku-prefix sku- --verify \
	--timeout-s "${ORDERD_VALGRIND_TIMEOUT:-600}" >"$dir/figures" 2>"$dir/loadgen.log"
lg=$?
fig() { awk -v k="$1" '$1 == k { print $2 }' "$dir/figures"; }
check "loadgen --verify: $orders orders answered through orderd under valgrind (exit $lg)" \
	'[ "$lg" = 0 ] && [ "$(fig orders)" = "$orders" ] && [ "$(fig missing)" = 0 ]'
check "no order with two outcomes, some confirmed and some cancelled" \
	'[ "$(fig conflicts)" = 0 ] && [ "$(fig confirmed)" -gt 0 ] && [ "$(fig cancelled)" -gt 0 ]'
check "valgrind: orderd-loadgen clean" 'clean_log loadgen.vg'

# SIGTERM, then wait: under valgrind the drain, the journal checkpoint and the
# leak scan take a while.
stop() {
	kill -TERM "$1" 2>/dev/null
	i=0
	while kill -0 "$1" 2>/dev/null && [ "$i" -lt 1200 ]; do i=$((i + 1)); sleep 0.1; done
	kill -0 "$1" 2>/dev/null && { echo "valgrind: $2 still running 120 s after SIGTERM" >&2; kill -9 "$1"; }
	wait "$1"
}
stop "$ppid" orderd-paysim
ps=$?
stop "$opid" orderd
od=$?
trap - EXIT
check "orderd-paysim exits 0 on SIGTERM under valgrind, clean (exit $ps; 99 = valgrind errors)" \
	'[ "$ps" = 0 ] && clean_log paysim.vg'
check "orderd exits 0 on SIGTERM under valgrind (exit $od; 99 = valgrind errors)" '[ "$od" = 0 ]'
check "orderd stayed in its consumer group, idle or busy (no MAXPOLL in its log)" \
	'! grep -q MAXPOLL "$dir/orderd.log"'
check "valgrind: no error in orderd (ERROR SUMMARY 0 or none printed)" \
	'! grep -qE "ERROR SUMMARY: [1-9]" "$dir/orderd.vg"'
check "valgrind: no invalid access, uninitialised value or definite/indirect leak in orderd" 'clean_log orderd.vg'

$VG --log-file="$dir/orderctl-reconcile.vg" "$bin/orderctl" $conf reconcile --json >"$dir/reconcile.json" 2>"$dir/reconcile.err"
st=$?
check "orderctl reconcile under valgrind: clean journal and Redis, clean log (exit $st)" \
	'[ "$st" = 0 ] && grep -q "\"ok\":true" "$dir/reconcile.json" && clean_log orderctl-reconcile.vg'
$VG --log-file="$dir/orderctl-show.vg" "$bin/orderctl" $conf order show "$(sqlite3 "$dir/journal.db" 'SELECT order_id FROM orders LIMIT 1')" \
	--json >/dev/null 2>"$dir/show.err"
st=$?
check "orderctl order show under valgrind: exit 0, clean (exit $st)" '[ "$st" = 0 ] && clean_log orderctl-show.vg'

echo "1..$n"
cat "$dir/figures" | sed 's/^/# /'
if [ "$fails" = 0 ]; then
	rm -rf "$dir"
else
	for f in "$dir"/*.vg; do echo "---- $f" >&2; head -n 80 "$f" >&2; done
	tail -n 20 "$dir/orderd.log" "$dir/paysim.log" "$dir/loadgen.log" >&2
	echo "valgrind: scratch kept in $dir" >&2
fi
[ "$fails" = 0 ]
